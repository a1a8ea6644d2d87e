"""The end-to-end FaceLeaks experiment: the owner's models, then the attacker, then the record.

Flow [paper, abstract; details reconstructed]: the owner trains a teacher on member identities
and students on it (``evaluation.owner``); the attacker, holding only black-box access to each
student plus reference identities it knows are non-members, its own shadow models and the public
base model, runs per-photo and per-person membership attacks (``evaluation.membership``). A
negative control repeats every attack against students of a teacher that saw none of the
evaluated identities. This module only sequences the stages and assembles the ``RunRecord``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

from faceleaks.attacks.attribute.registry import resolve_attribute_attacks
from faceleaks.attacks.registry import check_attack_specs
from faceleaks.config import ExperimentConfig
from faceleaks.errors import UndefinedMetricWarning
from faceleaks.evaluation.attacker import SETTINGS, TeacherPublicBase, make_attacker_data
from faceleaks.evaluation.ceiling import ceiling_reports
from faceleaks.evaluation.dataset import Dataset
from faceleaks.evaluation.membership import AttackPlan, attack_student, held_photos, victim_endpoint
from faceleaks.evaluation.owner import OwnerModels, Timer, add_control, build_owner, build_students, build_teacher
from faceleaks.evaluation.provenance import data_hashes
from faceleaks.evaluation.attribute_results import AttributeRecord
from faceleaks.evaluation.stages import STAGE_FAILED, StageLog, stage_failure
from faceleaks.evaluation.results import (ControlRecord, CostRecord, DataSummary, MembershipReport, RunRecord, StudentRecord,
                                         TeacherRecord, environment_versions)
from faceleaks.models.dlib_teacher import dlib_base_teacher
from faceleaks.progress import track
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.protocol import OutputKind
from faceleaks.serving.sealed import seal
from faceleaks.serving.wrappers import CachingBlackBox, CountingBlackBox

__all__ = ["run_experiment", "failed_stages", "STAGE_FAILED", "StageLog"]

log = logging.getLogger(__name__)


def run_experiment(cfg: ExperimentConfig, *, out_dir: Path, cache_dir: Path,
                   stages: StageLog | None = None) -> RunRecord:
    """Run the whole experiment; writes ``split.json`` into ``out_dir`` and returns the record.

    Parameters
    ----------
    stages : where each finished stage is reported and what an earlier unfinished run of the same
        settings finished (``faceleaks.evaluation.stages``); None: nothing reported or reused

    A failure in the attribute or membership stage does not end the run: it is a ``STAGE_FAILED``
    warning in the record, which holds the stages that finished. Raises ``DataError`` /
    ``ConfigError`` with a clear message on bad data or settings before any stage finished.
    """
    stages = stages or StageLog()
    _check_attacks(cfg)
    timer = Timer()
    done = stages.reuse("membership")
    if done is not None and stages.reuse("attributes") is not None:
        return replace(done, warnings=tuple(w for w in done.warnings if not w.startswith(STAGE_FAILED)))
    owner = build_owner(cfg, out_dir=out_dir, cache_dir=cache_dir, timer=timer)
    failed: list[str] = []
    stages.finish("owner", _record(cfg, owner, [], {}, None, None, timer, []))
    earlier = stages.reuse("attributes")
    if earlier is not None:  # the study and its stage times, as the earlier run recorded them
        attributes = earlier.attributes
        timer.timings.update({k: v for k, v in earlier.timings_s.items() if k.startswith("attribute")})
    else:
        attributes = _attributes(owner, cfg, cache_dir, timer, failed)
    if not failed:
        stages.finish("attributes", _record(cfg, owner, [], {}, attributes, None, timer, []))
    if done is not None:  # membership finished earlier; only the attribute study ran again
        record = replace(done, attributes=attributes, timings_s={**done.timings_s, **timer.timings},
                         warnings=tuple(w for w in done.warnings if not w.startswith(STAGE_FAILED)) + tuple(failed))
        stages.finish("membership", record)
        return record
    try:
        reports, queries, cost, caught = _membership(owner, cfg, cache_dir, out_dir, timer)
    except Exception as err:  # a later stage keeps what finished; the CLI reports it in one line
        failed.append(stage_failure("membership", err))
        return _record(cfg, owner, [], {}, attributes, None, timer, failed)
    record = _record(cfg, owner, reports, queries, attributes, cost, timer, caught + failed)
    stages.finish("membership", record)
    return record


def _membership(owner: OwnerModels, cfg: ExperimentConfig, cache_dir: Path, out_dir: Path,
                timer: Timer) -> tuple[list[MembershipReport], dict[str, int], CostRecord | None, list[str]]:
    """The membership stage: shadows, the control, LiRA shadows, attacks and the white-box ceiling.

    Returns the reports, the images sent to each student, the shadow cost (None without LiRA
    shadows) and the warnings caught.
    """
    data = owner.data
    attacker = make_attacker_data(data.split, train_fraction=cfg.split.member_train_fraction, seed=cfg.seed,
                                  photos=cfg.teacher.resolved_recipe.photos)
    # The attacker assumes a fine-tuned public model: with the unmodified base as victim
    # ("dlib-base") its shadows are still fine-tuned ("dlib").
    shadow_cfg = replace(cfg, teacher=replace(cfg.teacher, kind="dlib")) if owner.is_control_run else cfg
    with timer("shadow"):
        shadow_teacher = build_teacher(data, shadow_cfg, attacker.shadow_train, name="shadow-teacher",
                                       cache_dir=cache_dir)
        shadows = build_students(shadow_teacher, data, shadow_cfg, shadow=True, prefix="shadow")
    if not owner.is_control_run:
        with timer("control"):
            add_control(owner, cfg, out_dir=out_dir, cache_dir=cache_dir, shadow_teacher=shadow_teacher)
    public_base = None if cfg.teacher.kind == "scratch" else TeacherPublicBase(
        dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name="attacker-dlib-base"))
    plan = AttackPlan(data, attacker, cfg, public_base)
    cost = _lira_shadows(plan, shadow_cfg, cache_dir, timer) if cfg.attack.n_shadow_teachers \
        and cfg.teacher.kind != "scratch" else None
    with timer("attacks"):
        reports, queries = _attack_students(owner, shadows, plan)
    if public_base is not None:
        with timer("white-box-ceiling"):
            teachers = [(owner.role, owner.teacher)] + ([("control", owner.control_teacher)]
                                                        if owner.control_teacher is not None else [])
            reports += ceiling_reports(teachers, public_base, plan)
    return reports, queries, cost, plan.caught


def _check_attacks(cfg: ExperimentConfig) -> None:
    """``ConfigError`` for an unknown attack name or parameter, before anything is trained."""
    check_attack_specs(cfg.attack.membership, ks=cfg.attack.ks, seed=cfg.seed,
                       output_kind=OutputKind(cfg.attack.output))
    if cfg.attributes.enabled:
        resolve_attribute_attacks(cfg.attributes.attacks)


def failed_stages(record: RunRecord) -> list[str]:
    """The stages of the run behind ``record`` that failed (their one-line reasons); empty if complete."""
    return [w[len(STAGE_FAILED):] for w in record.warnings if w.startswith(STAGE_FAILED)]


def _attributes(owner: OwnerModels, cfg: ExperimentConfig, cache_dir: Path, timer: Timer,
                failed: list[str]) -> AttributeRecord | None:
    """The attribute study on the victim students (None when disabled); its stage times go to ``timer``.

    A failure in the study (e.g. a ``DataError``: too few UTKFace photos) does not end the run: it is
    added to ``failed`` (a ``STAGE_FAILED`` warning in the record) and the record has no attributes.
    """
    if not cfg.attributes.enabled:
        return None
    from faceleaks.evaluation.attributes import run_attribute_attacks

    try:
        with timer("attributes"):
            record = run_attribute_attacks(owner.data, owner.students, owner.teacher, cfg, cache_dir=cache_dir,
                                           seed=cfg.seed)
    except Exception as err:  # the membership study goes on; the CLI reports the stage in one line
        failed.append(stage_failure("attributes", err))
        return None
    timer.timings.update(record.timings_s)
    return replace(record, timings_s={})


def _lira_shadows(plan: AttackPlan, shadow_cfg: ExperimentConfig, cache_dir: Path, timer: Timer) -> CostRecord:
    """Build the shadow teachers into ``plan.lira_shadows``; returns the cost record."""
    from faceleaks.evaluation.lira_shadows import build_lira_shadows

    cfg = plan.cfg
    with timer("lira-shadows"):
        settings = [s for s in SETTINGS if s == "training-photos" or cfg.teacher.resolved_recipe.has_unseen_photos]
        targets = {s: held_photos(plan.data, s, cfg) for s in settings}
        built = build_lira_shadows(plan.data, shadow_cfg, plan.attacker, targets, cache_dir=cache_dir)
    plan.lira_shadows = built.models
    n_targets = max(sum(len(t) for t in targets.values()), 1)
    train = built.train_seconds
    return CostRecord(
        n_shadow_teachers_per_setting=cfg.attack.n_shadow_teachers,
        n_audited_per_setting={s: len(t) for s, t in targets.items()},
        shadow_train_seconds=train, shadow_train_threads=built.train_threads,
        shadow_train_seconds_per_audited=None if train is None else round(train / n_targets, 3),
        n_shadow_teachers_trained_this_run=built.n_trained, shadow_seconds=timer.timings["lira-shadows"],
        shadow_seconds_per_audited=round(timer.timings["lira-shadows"] / n_targets, 3),
        executor=cfg.runtime.executor, workers=cfg.runtime.workers)


def _attack_students(owner: OwnerModels, shadows: dict, plan: AttackPlan) -> tuple[list[MembershipReport], dict[str, int]]:
    """Attack each deployed student through its API; returns the reports and images sent to each."""
    cfg = plan.cfg
    reports, queries = [], {}
    for role, name, student in track(owner.deployed(), "attacking students"):
        api = reveal(LocalBlackBox(student), cfg.attack.output, top_k=cfg.attack.top_k)
        shadow_box = seal(CachingBlackBox(reveal(LocalBlackBox(shadows[name][0]), cfg.attack.output,
                                                 top_k=cfg.attack.top_k)))
        with victim_endpoint(api, cfg.attack.transport, f"{role}/{name}") as victim:
            counting = CountingBlackBox(victim)
            # one sealed box per student: attacks see query, output_kind, input_size and n_queries only
            box = seal(CachingBlackBox(counting))
            reports += attack_student(box, shadow_box, plan, {"teacher": role, "student": name})
        queries[f"{role}/{name}"] = counting.n_queries
    return reports, queries


def _record(cfg: ExperimentConfig, owner: OwnerModels, reports: list[MembershipReport], queries: dict[str, int],
            attributes: AttributeRecord | None, cost: CostRecord | None, timer: Timer, caught: list[str]) -> RunRecord:
    data = owner.data
    control = ControlRecord(note="the victim teacher is itself the negative control")
    if owner.control_teacher is not None:
        control = ControlRecord(name=owner.control_teacher.name, kind=owner.control_teacher.info.get("kind"),
                                n_member_identities=len(data.split.identities("control_member")),
                                verification=owner.control_verification)
    teacher = TeacherRecord.from_info(
        {"kind": cfg.teacher.kind, **owner.teacher.info}, verification=owner.verification, control=control,
        n_member_identities=0 if owner.is_control_run else len(data.split.member_train))
    students = tuple(StudentRecord(name=n, teacher=role, test_accuracy=acc, n_train=s.info["n_train"],
                                   n_classes=s.info["n_classes"], train_accuracy=s.info["train_accuracy"])
                     for role, group in ((owner.role, owner.students), ("control", owner.control_students))
                     for n, (s, acc) in group.items())
    return RunRecord(seed=cfg.seed, config=cfg.to_dict(), data=_data_summary(data), teacher=teacher,
                     students=students, membership=tuple(reports), queries=queries, timings_s=timer.timings,
                     warnings=tuple(_warning_summary(caught)), attributes=attributes, cost=cost,
                     environment=environment_versions())


def _warning_summary(caught: list[str]) -> list[str]:
    """Distinct warnings; the many "TPR at FPR needs more non-members" ones folded into one line each FPR."""
    out, undefined = [], {}
    for w in sorted(set(caught)):
        if "needs >=" in w and "non-members" in w:
            fpr = w.split("TPR at FPR=")[1].split(" ")[0]
            undefined[fpr] = undefined.get(fpr, 0) + 1
        else:
            out.append(w)
    for fpr, n in sorted(undefined.items()):
        out.append(f"TPR at FPR={fpr} is null in {n} results: too few non-members to resolve that FPR")
    if undefined:
        warnings.warn("; ".join(out[-len(undefined):]), UndefinedMetricWarning, stacklevel=3)
    return out


def _data_summary(data: Dataset) -> DataSummary:
    split = data.split
    unreadable = data.faces.unreadable + data.utk_faces.unreadable
    roles = ("member", "nonmember", "reference", "student", "shadow_student")
    return DataSummary(
        lfw_root=str(data.lfw_root), utkface_root=str(data.utk_root),
        n_identities={r: len(split.identities(r)) for r in roles},
        n_member_train_photos=sum(map(len, split.member_train.values())),
        n_lfw_photos=int(len(data.faces)), n_utkface_photos=int(len(data.utk_faces)),
        n_unreadable=len(unreadable), unreadable=tuple((str(p), str(r)) for p, r in unreadable),
        chip=data.chipper.spec, excluded_labels=dict(data.utk_excluded),
        hashes=data_hashes({"LFW": data.lfw_root, "UTKFace": data.utk_root}))
