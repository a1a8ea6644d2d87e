"""The attacker's shadow teachers for identity-level LiRA [reconstructed after Carlini et al. 2022].

For each setting, S shadow teachers are fine-tuned from the public base (the victim's recipe) on
the attacker's own reference identities plus a random half of the target people (the candidates
it audits, each with the photos it holds of them); each gets shadow students built like the
victim's. Which targets went into which shadow is the attacker's own seeded coin flip: it never
sees the victim's member list.
"""

from __future__ import annotations

from pathlib import Path

from faceleaks.attacks.base import ShadowModel
from faceleaks.config import ExperimentConfig
from faceleaks.evaluation.attacker import AttackerData
from faceleaks.evaluation.pipeline import Dataset, build_students, build_teacher
from faceleaks.progress import track
from faceleaks.seeding import derive_seed, make_rng
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.wrappers import CachingBlackBox

__all__ = ["build_lira_shadows"]


def build_lira_shadows(data: Dataset, cfg: ExperimentConfig, attacker: AttackerData, targets: dict[str, dict[str, list[str]]],
                       *, cache_dir: Path) -> dict[tuple[str, str], list[ShadowModel]]:
    """(setting, student name) -> S shadow students with the target identities each one trained on.

    ``targets[setting]`` maps each audited identity to the photo ids the attacker holds of it.
    """
    out: dict[tuple[str, str], list[ShadowModel]] = {}
    n = cfg.attack.n_shadow_teachers
    for setting, held in targets.items():
        rng = make_rng(derive_seed(cfg.seed, "lira", setting))
        people = sorted(held)
        for j in track(range(n), f"LiRA shadow teachers ({setting})"):
            chosen = frozenset(p for p in people if rng.random() < 0.5)
            train = {**attacker.shadow_train, **{p: held[p] for p in chosen}}
            teacher = build_teacher(data, cfg, train, name=f"lira-{setting}-{j}", cache_dir=cache_dir)
            for name, (student, _) in build_students(teacher, data, cfg, shadow=True, prefix=f"lira-{j}").items():
                box = CachingBlackBox(reveal(LocalBlackBox(student), cfg.attack.output, top_k=cfg.attack.top_k))
                out.setdefault((setting, name), []).append(ShadowModel(box, chosen))
    return out
