"""Typed rows of a sweep over seeds (``sweep.json``), torch-free; the report layer reads them.

``summarise_seeds`` builds one ``SweepRow`` per (teacher, student, setting, level, attack).
``sweep.json`` goes through ``faceleaks.evaluation.jsonio`` (NaN as ``null``, FPR keys as
``"0.001"``) and keeps the layout it had before typed rows (``schema_version`` 1, identity rows
without a pool carry no ``pooled_*`` key), so the files of a sweep are unchanged byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceleaks.errors import ArtifactError
from faceleaks.evaluation.jsonio import from_jsonable, to_jsonable, write_json
from faceleaks.evaluation.results import RocCurve

__all__ = ["SWEEP_SCHEMA_VERSION", "SweepRow", "sweep_to_jsonable", "write_sweep_json", "read_sweep_json"]

SWEEP_SCHEMA_VERSION = 1
"""Version of the layout of ``sweep.json`` (1 since sweeps were written; typed rows kept it)."""

_POOLED = ("pooled_auc", "pooled_auc_ci", "pooled_roc", "pooled_tpr_at_fpr", "pooled_n_members",
           "pooled_n_nonmembers")


@dataclass(frozen=True)
class SweepRow:
    """One (teacher, student, setting, level, attack) over the seeds of a sweep.

    Attributes
    ----------
    teacher, student, setting, level, attack : str
        As in ``MembershipReport`` (``teacher`` is ``victim`` or ``control``; ``level``
        ``instance`` or ``identity``; ``attack`` e.g. ``lira-online-compactness@k=5``).
    auc_mean, auc_std : float
        Mean and sample standard deviation (ddof=1; 0.0 for one seed) of the per-seed AUCs, fractions.
    seeds : tuple of int
        The seeds of the runs that have this row, in the order of the records.
    aucs : tuple of float
        The AUC of each of ``seeds``, fractions in [0, 1].
    pooled_auc : float or None
        AUC of the people of all seeds pooled (a person-seed pair is one sample); None when the
        row is not pooled (instance level, or fewer than 2 members or non-members).
    pooled_auc_ci : (float, float) or None
        95 % bootstrap CI of ``pooled_auc`` resampling people within members and non-members.
    pooled_roc : RocCurve or None
        Pooled ROC curve, at most 300 points, fractions rounded to 6 decimals.
    pooled_tpr_at_fpr : dict of float to float, or None
        FPR fraction (e.g. ``0.01``) -> pooled TPR (fraction); NaN where the pool has fewer than
        1 / FPR non-members.
    pooled_n_members, pooled_n_nonmembers : int or None
        Person-seed pairs pooled among members and non-members.

    Raises
    ------
    ArtifactError
        If only some of the pooled fields other than ``pooled_auc`` are set (``pooled_auc`` is
        None after reading a NaN AUC back from JSON).
    """

    teacher: str
    student: str
    setting: str
    level: str
    attack: str
    auc_mean: float
    auc_std: float
    seeds: tuple[int, ...]
    aucs: tuple[float, ...]
    pooled_auc: float | None = None
    pooled_auc_ci: tuple[float, float] | None = None
    pooled_roc: RocCurve | None = None
    pooled_tpr_at_fpr: dict[float, float] | None = None
    pooled_n_members: int | None = None
    pooled_n_nonmembers: int | None = None

    def __post_init__(self) -> None:
        given = [name for name in _POOLED[1:] if getattr(self, name) is not None]
        if given and len(given) < len(_POOLED) - 1:
            missing = sorted(set(_POOLED[1:]) - set(given))
            raise ArtifactError(f"sweep row {self.teacher}/{self.student}/{self.setting}/{self.attack} has "
                                f"{given} but not {missing}: give every pooled field or none (rerun the sweep "
                                "to regenerate sweep.json)")

    @property
    def is_pooled(self) -> bool:
        """True when the row holds the pooled metrics (identity level with >= 2 members and non-members)."""
        return self.pooled_n_members is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON values (NaN -> None, FPR keys as ``"0.01"``); a row that is not pooled has no ``pooled_*`` key.

        Examples
        --------
        >>> SweepRow("victim", "s", "training-photos", "instance", "t", 0.5, 0.0, (0,), (float("nan"),)).to_dict()
        {'teacher': 'victim', 'student': 's', 'setting': 'training-photos', 'level': 'instance', 'attack': 't', \
'auc_mean': 0.5, 'auc_std': 0.0, 'seeds': [0], 'aucs': [None]}
        """
        raw = to_jsonable(self)
        return raw if self.is_pooled else {k: v for k, v in raw.items() if k not in _POOLED}


def sweep_to_jsonable(rows: list[SweepRow]) -> dict[str, Any]:
    """The content of ``sweep.json``: ``{"schema_version": 1, "rows": [row.to_dict(), ...]}``."""
    return {"schema_version": SWEEP_SCHEMA_VERSION, "rows": [row.to_dict() for row in rows]}


def write_sweep_json(rows: list[SweepRow], path: Path) -> None:
    """Write ``rows`` to ``path`` (``sweep.json``) with :func:`faceleaks.evaluation.jsonio.write_json`."""
    write_json(sweep_to_jsonable(rows), path)


def read_sweep_json(path: Path) -> list[SweepRow]:
    """Read the rows of a ``sweep.json`` written by :func:`write_sweep_json`.

    Returns
    -------
    rows : list of SweepRow
        In file order; NaN where the file has ``null`` (``pooled_auc``: None).

    Raises
    ------
    ArtifactError
        If the file is not JSON, has no ``schema_version`` or another one than
        ``SWEEP_SCHEMA_VERSION``, or its rows do not fit ``SweepRow``.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot read {path} ({err}); rerun the sweep to regenerate it") from err
    found = raw.get("schema_version") if isinstance(raw, dict) else None
    if found != SWEEP_SCHEMA_VERSION:
        raise ArtifactError(f"{path} has schema_version {found}; this faceleaks reads sweep.json schema_version "
                            f"{SWEEP_SCHEMA_VERSION}: rerun the sweep (`faceleaks run --seeds ...`) to regenerate it")
    try:
        return from_jsonable(list[SweepRow], raw.get("rows"))
    except ArtifactError as err:
        raise ArtifactError(f"{path}: {err}") from err
