"""``faceleaks defend``: one privacy–utility sweep over defence settings, each attacked adaptively.

For every ``DefenceSetting`` of the grid (issue 14) [reconstructed protocol]:

1. the owner's victim: the run's teacher with the setting's training overrides (recipe, stages
   fine-tuned, ``privacy``: DP-SGD or label smoothing), its students and verification
   (``owner.build_owner``; teachers are cached, so output defences, which share one teacher, train
   nothing), the member identification accuracy of the teacher's own head and the enrolment
   accuracy (``defend_utility``);
2. every deployed student behind the setting's output defence (``serving.defences``), with its
   test accuracy through that API;
3. the attacker, who knows the defence: its shadow student behind the same defence (its own
   secret), the attacks of ``DefendConfig.attacks`` (per-photo thresholds, the headline
   ``base-diff`` Fisher gap, and the adaptive attacks: label-only agreement and margins with
   augmented queries; averaging of jittered repeats against noise) run by the one attack loop
   (``membership.attack_student``) on the chosen photo settings and k; queries counted per box;
   gender inference through the same defended API (``evaluation.attributes``, ``DEFEND_ATTRIBUTES``);
4. ``OUT/defend/<setting>/results.json`` (``DefenceRecord``), written atomically; a setting whose
   file holds the same key (setting and run settings) is read back instead of rerun.

No shadow teachers (LiRA) by default, to keep the sweep cheap (``DefendConfig.n_shadow_teachers``:
shadow teachers per victim recipe, their students behind each setting's defence); no negative control.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from faceleaks.attacks.base import ShadowModel
from faceleaks.config import ExperimentConfig, config_from_dict
from faceleaks.config.defence import DEFEND_ATTRIBUTES, DefenceSetting, DefendConfig, setting_key
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.attacker import TeacherPublicBase, make_attacker_data
from faceleaks.evaluation.defend_results import DefenceRecord, read_defence, write_defence
from faceleaks.evaluation.attributes import run_attribute_attacks
from faceleaks.evaluation.defend_utility import api_accuracy, enrolment_accuracy, identification_accuracy, student_test_set
from faceleaks.evaluation.lira_shadows import build_lira_shadows
from faceleaks.evaluation.membership import AttackPlan, attack_student, held_photos
from faceleaks.evaluation.owner import OwnerModels, build_owner, build_students, build_teacher
from faceleaks.models.dlib_teacher import dlib_base_teacher
from faceleaks.progress import track
from faceleaks.serving.defences import apply_output_defence
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.sealed import seal
from faceleaks.serving.validation import contract_of
from faceleaks.serving.wrappers import CountingBlackBox

__all__ = ["run_defend", "defence_secret", "setting_dir"]

log = logging.getLogger(__name__)


def defence_secret(seed: int, party: str = "owner") -> bytes:
    """A reproducible evaluation secret for ``party`` (owner or attacker), derived from the seed.

    For evaluation only: a deployment passes its own secret (``FACELEAKS_DEFENCE_SECRET``).
    """
    return hmac.new(b"faceleaks-defence-secret", f"{party}/{int(seed)}".encode(), hashlib.sha256).digest()


def setting_dir(out_dir: Path, setting: DefenceSetting) -> Path:
    """``out_dir/defend/<setting name>``."""
    return Path(out_dir) / "defend" / setting.name


@dataclass
class _Victim:
    """The owner's models for one teacher configuration, and what the attacker built against them."""

    owner: OwnerModels
    cache_dir: Path
    shadows: dict
    plan: AttackPlan
    identification: tuple[float, int]
    enrolment: float
    base_enrolment: float
    lira: dict = field(default_factory=dict)


def _run_settings(cfg: ExperimentConfig) -> dict:
    """The run's settings that change results (for the resume key): all but paths and progress."""
    d = cfg.to_dict()
    d.pop("output_dir", None)
    d["runtime"] = {k: v for k, v in d["runtime"].items() if k not in ("progress", "cache_dir", "workers",
                                                                       "executor", "threads")}
    return d


def _victim(cfg: ExperimentConfig, dcfg: DefendConfig, out_dir: Path, cache_dir: Path) -> _Victim:
    """Build (or load from the cache) the victim of ``cfg.teacher`` and the attacker's resources."""
    tag = hashlib.sha256(repr(sorted(cfg.teacher.to_dict().items())).encode()).hexdigest()[:10]
    victim_dir = Path(out_dir) / "defend" / "victims" / tag
    victim_dir.mkdir(parents=True, exist_ok=True)
    owner = build_owner(cfg, out_dir=victim_dir, cache_dir=cache_dir, need_head=True)
    data = owner.data
    attacker = make_attacker_data(data.split, train_fraction=cfg.split.member_train_fraction, seed=cfg.seed,
                                  photos=cfg.teacher.resolved_recipe.photos)
    shadow_teacher = build_teacher(data, cfg, attacker.shadow_train, name="shadow-teacher", cache_dir=cache_dir)
    shadows = build_students(shadow_teacher, data, cfg, shadow=True, prefix="shadow", names=dcfg.students)
    base = dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name="attacker-dlib-base")
    plan = AttackPlan(data, attacker, cfg, TeacherPublicBase(base))
    lira = {}
    if dcfg.n_shadow_teachers:
        targets = {s: held_photos(data, s, cfg) for s in dcfg.photo_settings}
        lira = build_lira_shadows(data, cfg, attacker, targets, cache_dir=cache_dir).models
    if cfg.teacher.resolved_recipe.photos == "all":  # the "held-out" photos trained it: no utility to measure
        measured = (float("nan"), 0), float("nan")
    else:
        measured = identification_accuracy(owner.teacher, data), enrolment_accuracy(owner.teacher, data)
    return _Victim(owner, Path(cache_dir), shadows, plan, *measured, enrolment_accuracy(base, data), lira)


def _setting_config(cfg: ExperimentConfig, setting: DefenceSetting, dcfg: DefendConfig) -> ExperimentConfig:
    """The run's settings with the setting's teacher overrides and the defend attack list."""
    out = config_from_dict({"teacher": dict(setting.teacher)}, cfg) if setting.teacher else cfg
    attack = replace(out.attack, membership=dcfg.attacks_for(setting.output), ks=(dcfg.k,),
                     n_shadow_teachers=dcfg.n_shadow_teachers)
    return replace(out, attack=attack)


def _attack(victim: _Victim, cfg: ExperimentConfig, setting: DefenceSetting, dcfg: DefendConfig,
            secret: bytes) -> tuple[list, dict[str, int], dict[str, float], list[str], tuple]:
    """Deploy every student behind the defence; attack those in ``dcfg.students``.

    Returns the membership reports, the images each attacked box answered, each student's test
    accuracy through its defended API, the warnings the attack loop raised, and the attribute scores
    (their queries counted under ``attributes/<student>``).
    """
    owner, reports, queries, defended = victim.owner, [], {}, {}
    plan = AttackPlan(owner.data, victim.plan.attacker, cfg, victim.plan.public_base,
                      _pool=victim.plan.pool_faces())
    attacker_secret = defence_secret(cfg.seed, "attacker")
    plan.lira_shadows = {key: [ShadowModel(seal(apply_output_defence(m.box, setting.output, secret=attacker_secret)),
                                           m.members) for m in models] for key, models in victim.lira.items()}
    for name, (student, _) in owner.students.items():
        n = len(student.classes)
        api = apply_output_defence(LocalBlackBox(student), setting.output, secret=secret, n_classes=n)
        defended[name] = api_accuracy(api, *student_test_set(owner.data, cfg, name))
        if name not in dcfg.students:
            continue
        shadow = victim.shadows[name][0]
        shadow_box = seal(apply_output_defence(LocalBlackBox(shadow), setting.output, secret=attacker_secret,
                                               n_classes=len(shadow.classes)))
        counting = CountingBlackBox(api)
        reports += attack_student(seal(counting), shadow_box, plan, {"teacher": "victim", "student": name},
                                  settings=dcfg.photo_settings)
        queries[name] = counting.n_queries
    attributes, spent = _attributes(victim, cfg, setting, dcfg, secret) if dcfg.attributes else ((), {})
    queries.update({f"attributes/{name.split('/')[0]}": n for name, n in spent.items()})
    return reports, queries, defended, plan.caught, attributes


def _attributes(victim: _Victim, cfg: ExperimentConfig, setting: DefenceSetting, dcfg: DefendConfig,
                secret: bytes) -> tuple[tuple, dict[str, int]]:
    """Gender inference (``DEFEND_ATTRIBUTES``) through each attacked student behind the defence, and the
    prior-only baseline: (the gender scores of ``run_attribute_attacks``, its queries per box)."""
    owner = victim.owner
    students = {n: st for n, st in owner.students.items() if n in dcfg.students}
    record = run_attribute_attacks(owner.data, students, owner.teacher, cfg, cache_dir=victim.cache_dir,
                                   seed=cfg.seed, settings=DEFEND_ATTRIBUTES,
                                   deploy=lambda box, n: apply_output_defence(box, setting.output, secret=secret,
                                                                              n_classes=n))
    keep = [a for a in (*record.scores, *record.baselines) if a.attribute == "gender"]
    return tuple(keep), dict(record.queries)


def _tolerance(setting: DefenceSetting, n_classes: int) -> tuple[str, float]:
    """(output kind, declared row-sum tolerance) of the defence on a posterior box of ``n_classes``."""
    probe = FunctionBlackBox(lambda x: np.full((len(x), n_classes), 1.0 / n_classes, np.float32), input_size=1)
    box = apply_output_defence(probe, setting.output, secret=b"probe", n_classes=n_classes)
    return box.output_kind.value, contract_of(box).tolerance_for(n_classes)


def _record(setting: DefenceSetting, key: str, cfg: ExperimentConfig, victim: _Victim, attacked: tuple,
            seconds: float, k: int) -> DefenceRecord:
    owner = victim.owner
    reports, queries, defended, caught, attributes = attacked
    n_classes = len(owner.students["lfw-identity"][0].classes) if "lfw-identity" in owner.students else 2
    kind, tol = _tolerance(setting, n_classes)
    overrides = ", ".join(f"{a}={b}" for a, b in sorted(setting.teacher.items()))
    info, privacy = owner.teacher.info, cfg.teacher.privacy
    return DefenceRecord(
        setting=setting.name, key=key, output_defence=setting.output.label, teacher_overrides=overrides,
        recipe=cfg.teacher.resolved_recipe.name, output_kind=kind, row_sum_tolerance=tol,
        identification_accuracy=victim.identification[0], n_identification_photos=victim.identification[1],
        enrolment_accuracy=victim.enrolment, base_enrolment_accuracy=victim.base_enrolment,
        privacy="none" if privacy.is_default else privacy.tag,
        dp_epsilon=float(info.get("dp_epsilon", float("nan"))), dp_delta=float(info.get("dp_delta", float("nan"))),
        verification=owner.verification, student_accuracy={n: float(a) for n, (_, a) in owner.students.items()},
        defended_student_accuracy=defended, membership=tuple(reports), k=k, queries=queries,
        seconds=round(seconds, 2), seed=cfg.seed, attributes=attributes, notes=tuple(sorted(set(caught))))


def _finished(path: Path, key: str) -> DefenceRecord | None:
    """The record at ``path`` if it was written for ``key``; None to (re)run the setting."""
    if not path.exists():
        return None
    try:
        record = read_defence(path)
    except ArtifactError as err:
        log.warning("rerunning: %s", err)
        return None
    return record if record.key == key else None


def run_defend(cfg: ExperimentConfig, dcfg: DefendConfig, *, out_dir: Path, cache_dir: Path,
               secret: bytes | None = None) -> list[DefenceRecord]:
    """Run (or resume) every setting of ``dcfg.grid``; returns their records in grid order.

    Parameters
    ----------
    cfg : the run's settings (``--quick`` preset or defaults, TOML, overrides)
    dcfg : the grid and what to attack (``DefendConfig``)
    out_dir : results go to ``out_dir/defend/<setting>/results.json``
    secret : the owner's secret for per-image noise (default: ``defence_secret(cfg.seed)``)

    Raises
    ------
    ConfigError, DataError
        Bad settings or data, before or while the first victim is built.
    """
    secret = secret or defence_secret(cfg.seed)
    victims: dict[str, _Victim] = {}
    records = []
    for setting in track(dcfg.grid, "defence settings"):
        cfg_s = _setting_config(cfg, setting, dcfg)
        key = setting_key(setting, {"run": _run_settings(cfg_s), "defend": dcfg.key_fields()})
        path = setting_dir(out_dir, setting) / "results.json"
        done = _finished(path, key)
        if done is not None:
            log.info("%s: already finished (%s), skipped", setting.name, path)
            records.append(done)
            continue
        t0 = time.perf_counter()
        tag = repr(sorted(cfg_s.teacher.to_dict().items()))
        if tag not in victims:
            victims.clear()  # one victim in memory at a time: the grid lists settings of one teacher together
            victims[tag] = _victim(cfg_s, dcfg, out_dir, cache_dir)
        attacked = _attack(victims[tag], cfg_s, setting, dcfg, secret)
        record = _record(setting, key, cfg_s, victims[tag], attacked, time.perf_counter() - t0, dcfg.k)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_defence(record, path)
        records.append(record)
    return records
