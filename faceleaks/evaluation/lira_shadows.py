"""The attacker's shadow teachers for identity-level LiRA [reconstructed after Carlini et al. 2022].

For each setting, S shadow teachers are fine-tuned from the public base (the victim's recipe) on
the attacker's own shadow identities (``AttackerData.shadow_train``: reference identities only,
disjoint from every victim identity) plus a random half of the target people (the candidates
it audits, each with the photos it holds of them); each gets shadow students built like the
victim's. Which targets go into which shadow is the attacker's own seeded coin flip, one
generator per (setting, pair of shadows): shadows 2i and 2i+1 take complementary halves, so with
an even S every target is IN exactly half the shadows. It never sees the victim's member list,
and shadow j is the same whether S is 8 or 16, so a larger S reuses the cached smaller one.

Leakage guard (tested): apart from the coin-flipped targets, which LiRA's definition puts IN
half the shadows whatever their true status, no shadow trains on a victim member, victim
non-member or student identity (``check_shadow_plans``).

Shadow teachers are independent tasks: they are fine-tuned through ``faceleaks.executor``
(local processes by default, or Ray) and cached by a hash of their configuration, training
photos and seed, so reruns, larger S and other attacks reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceleaks.attacks.base import ShadowModel
from faceleaks.config import ExperimentConfig
from faceleaks.data.splits import MembershipSplit
from faceleaks.errors import DataError
from faceleaks.evaluation.attacker import AttackerData
from faceleaks.evaluation.dataset import Dataset
from faceleaks.evaluation.owner import build_students, build_teacher
from faceleaks.models.dlib_parallel import FinetuneJob, finetune_dlib_teachers
from faceleaks.progress import track
from faceleaks.seeding import derive_seed, make_rng
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.sealed import seal
from faceleaks.serving.wrappers import CachingBlackBox

__all__ = ["ShadowPlan", "LiraShadows", "plan_lira_shadows", "check_shadow_plans", "build_lira_shadows"]


@dataclass(frozen=True)
class ShadowPlan:
    """One shadow teacher: its name, the targets it includes (IN) and all its training photos.

    ``train`` maps identity -> photo ids: the attacker's shadow identities plus ``targets_in``.
    """

    setting: str
    index: int
    name: str
    targets_in: frozenset[str]
    train: dict[str, list[str]]


def plan_lira_shadows(attacker: AttackerData, targets: dict[str, dict[str, list[str]]], *, n_shadows: int,
                      seed: int) -> list[ShadowPlan]:
    """The S shadow teachers of each setting, from the attacker's data and coin flips only.

    Parameters
    ----------
    attacker : the attacker's reference identities and its shadow split of them
    targets : setting -> {audited person: photo ids the attacker holds of them}
    n_shadows : S, shadow teachers per setting
    seed : run seed; shadows 2i and 2i+1 of a setting split the targets by one draw from
        ``derive_seed(seed, "lira", setting, str(i))``
    """
    plans = []
    for setting, held in targets.items():
        people = sorted(held)
        for j in range(n_shadows):
            # shadows 2i and 2i+1 split the targets into complementary halves (LiRA's balanced
            # design): with an even S every person is IN exactly S/2 shadows
            rng = make_rng(derive_seed(seed, "lira", setting, str(j // 2)))
            first_half = {p for p, u in zip(people, rng.random(len(people))) if u < 0.5}
            chosen = frozenset(first_half if j % 2 == 0 else set(people) - first_half)
            train = {**attacker.shadow_train, **{p: list(held[p]) for p in sorted(chosen)}}
            plans.append(ShadowPlan(setting, j, f"lira-{setting}-{j}", chosen, train))
    return plans


def check_shadow_plans(plans: list[ShadowPlan], split: MembershipSplit) -> None:
    """Raise ``DataError`` if a shadow trains on a victim identity other than a coin-flipped target.

    The attacker's own shadow identities must all be reference identities: never a victim member,
    non-member, or an identity of the victim's students.
    """
    allowed = set(split.identities("reference"))
    for plan in plans:
        own = set(plan.train) - plan.targets_in
        leaked = sorted(own - allowed)
        if leaked:
            roles = {r: sorted(set(split.identities(r)) & set(leaked)) for r in ("member", "nonmember", "student",
                                                                                "shadow_student")}
            raise DataError(f"shadow {plan.name} would train on victim identities outside the reference role: "
                            f"{ {r: v for r, v in roles.items() if v} or leaked }")


@dataclass(frozen=True)
class LiraShadows:
    """What ``build_lira_shadows`` built.

    models : (setting, student name) -> S shadow students, each with every identity its teacher trained on
    n_trained : shadow teachers fine-tuned in this call (the others came from the cache)
    train_seconds : seconds spent fine-tuning all the shadow teachers, as recorded when each was
        trained (in this call or an earlier one), with ``train_threads`` torch threads each; None if
        a cached checkpoint predates that record
    """

    models: dict[tuple[str, str], list[ShadowModel]]
    n_trained: int
    train_seconds: float | None
    train_threads: int | None


def build_lira_shadows(data: Dataset, cfg: ExperimentConfig, attacker: AttackerData, targets: dict[str, dict[str, list[str]]],
                       *, cache_dir: Path) -> LiraShadows:
    """Plan, fine-tune (or load) and wrap the shadow teachers and students of every setting.

    ``targets[setting]`` maps each audited identity to the photo ids the attacker holds of it.
    Shadow teachers not yet cached are fine-tuned through ``cfg.runtime.executor`` first.
    Raises ``DataError`` if a plan would leak a victim identity or the teacher kind has no public base.
    """
    plans = plan_lira_shadows(attacker, targets, n_shadows=cfg.attack.n_shadow_teachers, seed=cfg.seed)
    check_shadow_plans(plans, data.split)
    if cfg.teacher.kind != "dlib":
        raise DataError(f"LiRA shadow teachers are fine-tuned from the public dlib base; teacher kind "
                        f"{cfg.teacher.kind!r} has no public base")
    jobs = []
    for plan in plans:
        faces = data.photos([i for ids in plan.train.values() for i in ids])
        jobs.append(FinetuneJob(faces.images, faces.identities, faces.image_ids,
                                derive_seed(cfg.seed, plan.name), plan.name))
    rt = cfg.runtime
    n_trained = finetune_dlib_teachers(jobs, cfg.teacher, cache_dir=cache_dir, backend=rt.executor,
                                       workers=rt.workers, ray_address=rt.ray_address)
    out: dict[tuple[str, str], list[ShadowModel]] = {}
    seconds, threads = [], set()
    for plan in track(plans, "LiRA shadow students"):
        teacher = build_teacher(data, cfg, plan.train, name=plan.name, cache_dir=cache_dir)
        seconds.append(teacher.info.get("train_seconds"))
        threads.add(teacher.info.get("train_threads"))
        for name, (student, _) in build_students(teacher, data, cfg, shadow=True, prefix=f"lira-{plan.index}").items():
            box = seal(CachingBlackBox(reveal(LocalBlackBox(student), cfg.attack.output, top_k=cfg.attack.top_k)))
            out.setdefault((plan.setting, name), []).append(ShadowModel(box, frozenset(plan.train)))
    known = None not in seconds
    return LiraShadows(out, n_trained, round(sum(seconds), 2) if known else None,
                       threads.pop() if known and len(threads) == 1 else None)
