"""Typed results of a run and their JSON form (``results.json``, schema-versioned).

NaN metrics (undefined, e.g. TPR at 0.1 % FPR with 50 non-members) are written as JSON ``null``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "RocCurve", "MembershipReport", "RunRecord", "json_safe"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RocCurve:
    """ROC points: fpr, tpr fractions in [0, 1], ascending fpr."""

    fpr: list[float]
    tpr: list[float]


@dataclass(frozen=True)
class MembershipReport:
    """How well one attack separated the teacher's members from non-members.

    ``teacher`` is ``victim`` or ``control`` (a teacher that saw no evaluated identity); ``setting``
    is ``training-photos`` (members queried with the photos the teacher trained on) or
    ``unseen-photos`` (other photos of the members). Rates are fractions; ``tpr_at_fpr`` keys are
    FPR fractions as strings (``"0.01"``), values NaN where unresolvable. ``n_members`` and
    ``n_nonmembers`` count identities at both levels; ``n_member_photos`` / ``n_nonmember_photos``
    count the photos behind the scores. ``n_queries`` are the images the attack sent to the victim
    to score (calibration queries on known non-members are in ``RunRecord.queries``);
    ``n_shadow_models`` the shadow students it used; ``seconds`` the wall-clock time of its fit and
    score (training the shadows is in ``RunRecord.timings_s``, per audited person in ``RunRecord.cost``).
    ``member_scores`` / ``nonmember_scores``: identity -> score at identity level (empty at instance
    level), so a sweep can pool people over seeds (resampling people, who recur across seeds) to
    resolve TPR at low FPR.
    """

    attack: str
    level: str
    teacher: str
    student: str
    setting: str
    k: int
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_fpr: dict[str, float]
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


@dataclass
class RunRecord:
    """Everything a run measured. ``timings_s`` are wall-clock seconds per stage; ``attributes`` is
    the attribute-inference record (``AttributeRecord.to_dict()`` without its timings), or empty.
    ``cost`` holds what the shadow-teacher attacks spent: shadow teachers per setting, audited
    people per setting, seconds of shadow fine-tuning as recorded when each shadow was trained
    (``shadow_train_seconds``, total and per audited person; the same whether this run trained them
    or reused the cache) and this run's wall-clock seconds for the shadow stage (``shadow_seconds``,
    near 0 on a warm cache); empty without shadow teachers."""

    seed: int
    config: dict[str, Any]
    data: dict[str, Any]
    teacher: dict[str, Any]
    students: list[dict[str, Any]]
    membership: list[MembershipReport]
    queries: dict[str, int]
    timings_s: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    faceleaks_version: str = "0.1.0"
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _nan_to_none(asdict(self))

    def to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def from_json(cls, path: Path) -> "RunRecord":
        raw = json.loads(Path(path).read_text())
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path} has schema_version {raw.get('schema_version')}, expected {SCHEMA_VERSION}")
        raw = _none_to_nan(raw)
        raw["membership"] = [
            MembershipReport(**{**m, "auc_ci": tuple(m["auc_ci"]), "roc": RocCurve(**m["roc"])})
            for m in raw["membership"]
        ]
        return cls(**raw)


def json_safe(x: Any) -> Any:
    """``x`` with every NaN float (nested in dicts, lists, tuples) replaced by None (JSON ``null``)."""
    return _nan_to_none(x)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x


_NULLABLE = {"auc", "advantage", "balanced_accuracy", "threshold"}


def _none_to_nan(x: Any, key: str = "") -> Any:
    if x is None and (key in _NULLABLE or key.startswith("0.")):
        return float("nan")
    if isinstance(x, dict):
        return {k: _none_to_nan(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [_none_to_nan(v, key) for v in x]
    return x
