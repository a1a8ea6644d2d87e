"""Typed, torch-free records of the random-inclusion (N-victim) run: ``inclusion.json``.

``run_random_inclusion`` (``evaluation.random_inclusion``) builds an ``InclusionRecord``: the
candidate pool, one ``VictimRecord`` per victim teacher, and one ``InclusionRow`` per (attack,
teacher, student, k) with every pooled (victim, person) decision, its metrics (AUC and TPR at low
FPR with intervals from a bootstrap over people) and the empirical epsilon lower bound. The report
layer (``report.inclusion``) reads these records only. JSON goes through
``faceleaks.evaluation.jsonio`` (NaN as ``null``, float keys as ``"0.001"``, ``schema_version``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceleaks.evaluation.jsonio import SCHEMA_VERSION, read_json, write_json
from faceleaks.evaluation.results import RocCurve

__all__ = ["Decisions", "EpsilonRecord", "InclusionRow", "VictimRecord", "VictimStatistics", "PoolSummary",
           "InclusionCost", "InclusionRecord", "write_inclusion", "read_inclusion"]


@dataclass(frozen=True)
class Decisions:
    """Every membership decision of one attack at one k, pooled over victims (parallel tuples).

    Attributes
    ----------
    victim : tuple of int, the victim teacher (index into ``InclusionRecord.victims``) of each decision
    person : tuple of int, the audited person (index into ``PoolSummary.people``)
    is_member : tuple of bool, whether that victim trained on that person (the truth)
    score : tuple of float, the attack's score (higher = member), float64 as computed
    """

    victim: tuple[int, ...]
    person: tuple[int, ...]
    is_member: tuple[bool, ...]
    score: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class EpsilonRecord:
    """Empirical identity-level epsilon lower bound of one row (``privacy_bounds.empirical_epsilon``).

    Attributes
    ----------
    epsilon : float, lower bound in nats (>= 0) at ``delta``, holding with probability ``confidence``
        if the evaluation decisions were independent Bernoulli trials (they share people: optimistic)
    threshold : float or None, "member if score >= threshold", chosen on ``fit_victims`` (None: nobody)
    tp, fn, fp, tn : int, counts on the decisions of ``eval_victims`` at ``threshold``
    tpr_low, fpr_high : float, one-sided Clopper-Pearson bounds (fractions) behind ``epsilon``
    fit_epsilon : float, the bound the threshold reached on the fit victims (optimistic: chosen there)
    delta : float; confidence : float (fraction)
    fit_victims, eval_victims : tuple of int, the victims that chose the threshold / gave the counts
    """

    epsilon: float
    threshold: float | None
    tp: int
    fn: int
    fp: int
    tn: int
    tpr_low: float
    fpr_high: float
    fit_epsilon: float
    delta: float
    confidence: float
    fit_victims: tuple[int, ...]
    eval_victims: tuple[int, ...]


@dataclass(frozen=True)
class InclusionRow:
    """One attack on one student at k photos per person, pooled over the victims.

    Attributes
    ----------
    attack : str, e.g. ``lira-online-compactness@k=5`` or ``compactness@k=5`` (no shadows)
    teacher : str, ``victim`` (the N fine-tuned teachers) or ``control`` (dlib's unmodified model,
        scored with each victim's shadows and labels: nobody is a member, so AUC must be 0.5)
    student, k : the student attacked and the photos per person
    n_shadow_models : int, shadows behind each score (N - 1 for LiRA, 0 for the naive score)
    n_people : int, distinct people audited at this k
    n_member_decisions, n_nonmember_decisions : int, (victim, person) pairs of each label
    auc : float; auc_ci : (low, high), 95 % bootstrap over people (all of a person's decisions together)
    tpr_at_fpr : FPR fraction -> TPR fraction (NaN where fewer than 1 / FPR non-member decisions)
    tpr_ci : FPR fraction -> (low, high), the same bootstrap over people (NaN where unresolved)
    roc : RocCurve, at most ~400 points, log-spaced in FPR from one false positive on
    epsilon : EpsilonRecord, or None when the victims are too few to split
    decisions : Decisions, every pooled decision (for re-analysis and plots)
    recipe : str, the teacher's fine-tuning recipe (``regularised``, ``light``; ``base`` for the control)
    """

    attack: str
    teacher: str
    student: str
    k: int
    n_shadow_models: int
    n_people: int
    n_member_decisions: int
    n_nonmember_decisions: int
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_fpr: dict[float, float]
    tpr_ci: dict[float, tuple[float, float]]
    roc: RocCurve
    epsilon: EpsilonRecord | None
    decisions: Decisions
    recipe: str = ""


@dataclass(frozen=True)
class VictimRecord:
    """One victim teacher: whom it trained on and what building and querying it cost.

    Attributes
    ----------
    index : int; name : str, the teacher's cache name
    n_members : int, pool people it trained on; n_train_photos : int, photos it trained on
    train_seconds : float or None, fine-tuning seconds as recorded when it was trained (None: unknown)
    cached : bool, whether the teacher came from the cache in this run
    student_accuracy : student name -> test accuracy (fraction)
    n_queries : int, images sent to its attacked students (each distinct photo once)
    seconds : float, this run's wall-clock seconds for its students and statistics (0 if resumed)
    resumed : bool, whether its statistics were read back from an earlier, interrupted run
    """

    index: int
    name: str
    n_members: int
    n_train_photos: int
    train_seconds: float | None
    cached: bool
    student_accuracy: dict[str, float]
    n_queries: int
    seconds: float
    resumed: bool = False


@dataclass(frozen=True)
class VictimStatistics:
    """One victim's saved measurements (``OUT/inclusion-victims/<name>.json``), the unit a run resumes by.

    Attributes
    ----------
    key : str, hash of everything the values depend on (recipe, students, members, query photos, ...)
    record : VictimRecord
    values : student -> k -> statistic -> its value (float64) for each person audited at k, in pool order
    schema_version : int
    """

    key: str
    record: VictimRecord
    values: dict[str, dict[int, dict[str, tuple[float, ...]]]]
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True)
class PoolSummary:
    """The candidate pool: every LFW person with enough photos whom no other role of the run uses.

    Attributes
    ----------
    people : tuple of str, the pool's people (the index ``Decisions.person`` refers to)
    n_photos : tuple of int, photos of each person (capped at ``data.max_images_per_identity``)
    n_train_photos : tuple of int, photos a victim trains on when the person is its member
    eligible : k -> people audited at k (their training photos number at least k)
    excluded_roles : tuple of str, split roles whose people were left out of the pool
    min_photos : int, fewest photos a pool person has
    """

    people: tuple[str, ...]
    n_photos: tuple[int, ...]
    n_train_photos: tuple[int, ...]
    eligible: dict[int, int]
    excluded_roles: tuple[str, ...]
    min_photos: int


@dataclass(frozen=True)
class InclusionCost:
    """What the run cost (seconds are wall clock on this machine).

    Attributes
    ----------
    seconds : float, the whole run
    train_seconds : float or None, fine-tuning all victims, as recorded when each was trained
    n_trained_this_run : int, victims fine-tuned now (the others came from the cache)
    seconds_per_victim : float, ``seconds / n_victims``
    seconds_per_audited_identity : float, ``seconds`` over the (victim, person) pairs audited at any k
    victim_queries_per_audited_identity : float, images sent to a victim per person it audits
    executor : str; workers : int
    """

    seconds: float
    train_seconds: float | None
    n_trained_this_run: int
    seconds_per_victim: float
    seconds_per_audited_identity: float
    victim_queries_per_audited_identity: float
    executor: str
    workers: int


@dataclass(frozen=True)
class InclusionRecord:
    """Everything ``faceleaks run --victims N`` measured (``inclusion.json``).

    Attributes
    ----------
    seed : int; config : dict, the run's settings (``ExperimentConfig.to_dict()``, the resolved recipe included)
    recipe : str, the victims' fine-tuning recipe (``regularised``, ``light``)
    n_victims : int; target_nonmember_decisions : int, the non-member decisions at k = 5 N was chosen for
    member_fraction : float, share of the pool each victim trains on
    statistics : tuple of str, the identity statistics attacked with LiRA
    pool : PoolSummary; victims : tuple of VictimRecord; rows : tuple of InclusionRow
    cost : InclusionCost; timings_s : stage -> seconds; warnings : tuple of str
    """

    seed: int
    config: dict[str, Any]
    recipe: str
    n_victims: int
    target_nonmember_decisions: int
    member_fraction: float
    statistics: tuple[str, ...]
    pool: PoolSummary
    victims: tuple[VictimRecord, ...]
    rows: tuple[InclusionRow, ...]
    cost: InclusionCost
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION


def write_inclusion(record: InclusionRecord, path: Path) -> None:
    """Write ``record`` to ``path`` (``inclusion.json``): JSON, NaN as ``null``, with ``schema_version``."""
    write_json(record, path)


def read_inclusion(path: Path) -> InclusionRecord:
    """Read an ``inclusion.json``; ``ArtifactError`` if unreadable, of another schema or another layout."""
    return read_json(InclusionRecord, path)
