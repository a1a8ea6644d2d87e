"""Typed results of a run (``results.json``, schema-versioned), torch-free.

A ``RunRecord`` holds frozen records all the way down: ``DataSummary``, ``TeacherRecord`` (with
its ``VerificationRecord`` and the negative control's ``ControlRecord``), ``StudentRecord``,
``MembershipReport``, the attribute study's ``AttributeRecord`` and the shadow ``CostRecord``.
JSON goes through ``faceleaks.evaluation.jsonio`` only (NaN metrics, e.g. TPR at 0.1 % FPR with
50 non-members, are written as ``null``); ``read_results`` of an older file raises ``ArtifactError``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceleaks.evaluation.attribute_results import AttributeRecord
from faceleaks.evaluation.jsonio import SCHEMA_VERSION, read_json, to_jsonable, write_json

__all__ = ["SCHEMA_VERSION", "RocCurve", "MembershipReport", "VerificationRecord", "ControlRecord", "TeacherRecord",
           "StudentRecord", "CostRecord", "DataSummary", "RunRecord", "AttributeRecord", "read_results",
           "write_results", "environment_versions"]

_NAN = float("nan")


@dataclass(frozen=True)
class RocCurve:
    """ROC points: ``fpr``, ``tpr`` fractions in [0, 1], ascending ``fpr``, same length."""

    fpr: list[float]
    tpr: list[float]


@dataclass(frozen=True)
class MembershipReport:
    """How well one attack separated the teacher's members from non-members.

    ``teacher`` is ``victim`` or ``control`` (a teacher that saw no evaluated identity); ``setting``
    is ``training-photos`` (members queried with the photos the teacher trained on) or
    ``unseen-photos`` (other photos of the members). Rates are fractions; ``tpr_at_fpr`` maps an
    FPR fraction (float, e.g. ``0.001``) to the TPR, NaN where unresolvable. ``n_members`` and
    ``n_nonmembers`` count identities at both levels; ``n_member_photos`` / ``n_nonmember_photos``
    count the photos behind the scores. ``n_queries`` are the images the attack sent to the victim
    to score (calibration queries on known non-members are in ``RunRecord.queries``);
    ``n_shadow_models`` the shadow students it used; ``seconds`` the wall-clock time of its fit and
    score (training the shadows is in ``RunRecord.timings_s``, per audited person in ``RunRecord.cost``).
    ``member_scores`` / ``nonmember_scores``: identity -> score at identity level (empty at instance
    level), so a sweep can pool people over seeds (resampling people, who recur across seeds) to
    resolve TPR at low FPR. ``recipe`` names how the teacher behind the row was trained
    (``TeacherConfig.recipe_name``: ``regularised`` or ``light`` for a fine-tuned teacher, ``base``
    for dlib's unmodified model, e.g. the default control; empty in files written before recipes).
    """

    attack: str
    level: str
    teacher: str
    student: str
    setting: str
    k: int
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_fpr: dict[float, float]
    advantage: float
    balanced_accuracy: float
    threshold: float
    n_members: int
    n_nonmembers: int
    n_member_photos: int
    n_nonmember_photos: int
    n_queries: int
    roc: RocCurve
    n_shadow_models: int = 0
    seconds: float = 0.0
    member_scores: dict[str, float] = field(default_factory=dict)
    nonmember_scores: dict[str, float] = field(default_factory=dict)
    recipe: str = ""


@dataclass(frozen=True)
class VerificationRecord:
    """LFW ``pairs.txt`` verification of a teacher on identities it did not train on.

    ``accuracy`` and ``std`` (over folds) are fractions, NaN when not measured (``note`` says why);
    ``n_pairs`` pairs kept, ``n_excluded_pairs`` dropped because they show a training identity.
    """

    accuracy: float
    std: float = _NAN
    n_pairs: int = 0
    n_folds: int = 0
    n_excluded_pairs: int = 0
    protocol: str = ""
    note: str = ""


@dataclass(frozen=True)
class ControlRecord:
    """The negative-control teacher: ``name``, ``kind`` (``dlib-base``, ``dlib``, ``scratch``), the
    ``n_member_identities`` it trained on and its ``verification``; or only a ``note`` when there is
    none (a ``dlib-base`` victim is itself the control)."""

    note: str = ""
    name: str | None = None
    kind: str | None = None
    n_member_identities: int | None = None
    verification: VerificationRecord | None = None


@dataclass(frozen=True)
class TeacherRecord:
    """The victim teacher: ``kind`` (``dlib``, ``scratch``, ``dlib-base``), its verification, its
    negative control, the member identities and photos it trained on (0 for ``dlib-base``), its
    classes, embedding size ``d`` and, when it was trained, final loss, train accuracy (fraction),
    residual units fine-tuned (dlib), seconds and torch threads of training (as recorded when it was
    trained; None for a teacher cached before these were recorded)."""

    kind: str
    verification: VerificationRecord
    control: ControlRecord
    n_member_identities: int
    n_classes: int
    n_train_photos: int
    embedding_dim: int
    final_loss: float | None = None
    train_accuracy: float | None = None
    unfreeze_last_n: int | None = None
    train_seconds: float | None = None
    train_threads: int | None = None
    dp_epsilon: float | None = None  # DP-SGD teachers (teacher.privacy): the RDP accountant's epsilon at dp_delta
    dp_delta: float | None = None

    @classmethod
    def from_info(cls, info: dict[str, Any], *, verification: VerificationRecord, control: ControlRecord,
                  n_member_identities: int) -> "TeacherRecord":
        """The record of a teacher whose model metadata is ``info`` (``Teacher.info``); other keys of
        ``info`` (``version``, ``cached``: cache bookkeeping) are not recorded, so reruns match."""
        known = {f.name for f in dataclasses.fields(cls)} - {"verification", "control", "n_member_identities"}
        return cls(verification=verification, control=control, n_member_identities=n_member_identities,
                   **{k: v for k, v in info.items() if k in known})


@dataclass(frozen=True)
class StudentRecord:
    """One student: ``name`` (e.g. ``lfw-identity``), the ``teacher`` it stands on (``victim`` or
    ``control``), test and train accuracy (fractions), training photos and classes."""

    name: str
    teacher: str
    test_accuracy: float
    n_train: int
    n_classes: int
    train_accuracy: float


@dataclass(frozen=True)
class CostRecord:
    """What the shadow-teacher attacks spent: shadow teachers and audited people per setting, seconds
    of shadow fine-tuning as recorded when each shadow was trained (``shadow_train_seconds``, total and
    per audited person; None if a cached shadow predates that record; the same whether this run trained
    them or reused the cache), with ``shadow_train_threads`` torch threads each, and this run's
    wall-clock seconds for the shadow stage (``shadow_seconds``, near 0 on a warm cache)."""

    n_shadow_teachers_per_setting: int
    n_audited_per_setting: dict[str, int]
    shadow_train_seconds: float | None
    shadow_train_threads: int | None
    shadow_train_seconds_per_audited: float | None
    n_shadow_teachers_trained_this_run: int
    shadow_seconds: float
    shadow_seconds_per_audited: float
    executor: str
    workers: int


@dataclass(frozen=True)
class DataSummary:
    """The data a run read: folders, identities per split role, photo counts, the photos skipped as
    unusable (``(path, reason)`` pairs: undecodable, degenerate size, over the pixel limit, name not
    valid UTF-8, no face found), the face-chip settings (``chip``, a cache key) and the UTKFace rows
    excluded at load time for labels out of range (``excluded_labels``, reason -> count; absent in
    files written before it, read as empty) and ``hashes``, data set -> ``sha256:<hex>`` of its
    folder's photo list (``evaluation.provenance.folder_digest``; empty in older files)."""

    lfw_root: str
    utkface_root: str
    n_identities: dict[str, int]
    n_member_train_photos: int
    n_lfw_photos: int
    n_utkface_photos: int
    n_unreadable: int
    unreadable: tuple[tuple[str, str], ...]
    chip: str
    excluded_labels: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """Everything a run measured. ``config`` is ``ExperimentConfig.to_dict()``; ``queries`` the images
    sent per ``teacher/student`` box; ``timings_s`` wall-clock seconds per stage (the attribute
    study's stages included); ``attributes`` the attribute record (its ``timings_s`` empty) or None;
    ``cost`` None without shadow teachers; ``environment`` the Python and library versions the run
    used (``environment_versions``; empty in files written before it was recorded).
    """

    seed: int
    config: dict[str, Any]
    data: DataSummary
    teacher: TeacherRecord
    students: tuple[StudentRecord, ...]
    membership: tuple[MembershipReport, ...]
    queries: dict[str, int]
    timings_s: dict[str, float]
    warnings: tuple[str, ...] = ()
    attributes: AttributeRecord | None = None
    cost: CostRecord | None = None
    faceleaks_version: str = "0.1.0"
    environment: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON values (NaN -> None, FPR keys as strings), as written to ``results.json``."""
        return to_jsonable(self)

    def to_json(self, path: Path) -> None:
        """Write ``results.json`` (see :func:`write_results`)."""
        write_results(self, path)

    @classmethod
    def from_json(cls, path: Path) -> "RunRecord":
        """Read ``results.json`` (see :func:`read_results`)."""
        return read_results(path)


def environment_versions() -> dict[str, str]:
    """Python's and the main libraries' versions, from installed package metadata (nothing imported)."""
    from importlib import metadata
    import platform

    out = {"python": platform.python_version()}
    for name in ("faceleaks", "torch", "numpy", "scikit-learn", "scipy", "matplotlib", "dlib-bin"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_results(record: RunRecord, path: Path) -> None:
    """Write ``record`` to ``path`` (``results.json``): JSON, NaN as ``null``, ``schema_version`` 2."""
    write_json(record, path)


def read_results(path: Path) -> RunRecord:
    """Read a ``results.json`` written by :func:`write_results`.

    Raises
    ------
    ArtifactError
        If the file is of another ``schema_version`` (1, or none: written by an older faceleaks;
        rerun to regenerate it) or does not hold a run record.
    """
    return read_json(RunRecord, path)

