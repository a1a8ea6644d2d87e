"""Repeat the experiment over several seeds (new split, new training each time) and summarise.

One split of a few hundred identities moves membership AUCs by about ±0.05, so attack variants
are compared by their mean and spread over seeds, not by one run.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faceleaks.config import ExperimentConfig
from faceleaks.errors import UndefinedMetricWarning
from faceleaks.evaluation.results import MembershipReport, RocCurve, RunRecord
from faceleaks.evaluation.stages import STAGE_FAILED
from faceleaks.evaluation.sweep_results import SweepRow
from faceleaks.metrics import auc_score, bootstrap_auc_ci, roc_curve, tpr_at_fpr
from faceleaks.seeding import derive_seed

__all__ = ["run_seeds", "summarise_seeds"]


def run_seeds(cfg: ExperimentConfig, seeds: list[int], *, out_dir: Path, cache_dir: Path,
              run: Callable[..., RunRecord], on_record: Callable[[RunRecord, Path], None] | None = None,
              ) -> list[RunRecord]:
    """Run ``run(cfg_with_seed, out_dir=out_dir/seed-N, cache_dir=...)`` for each seed.

    A seed whose ``results.json`` already exists in its folder is loaded, not rerun (resume), unless
    a stage of it failed (a ``STAGE_FAILED`` warning).
    """
    records = []
    for seed in seeds:
        sub = Path(out_dir) / f"seed-{seed}"
        sub.mkdir(parents=True, exist_ok=True)
        done = sub / "results.json"
        if done.exists():  # a seed with a failed stage runs again
            record = RunRecord.from_json(done)
            if not any(w.startswith(STAGE_FAILED) for w in record.warnings):
                records.append(record)
                continue
        record = run(dataclasses.replace(cfg, seed=seed, output_dir=str(sub)), out_dir=sub, cache_dir=cache_dir)
        if on_record is not None:
            on_record(record, sub)
        records.append(record)
    return records


def summarise_seeds(records: list[RunRecord], *, n_bootstrap: int | None = None) -> list[SweepRow]:
    """Per (teacher, student, setting, level, attack): AUC mean, standard deviation and per-seed values.

    Identity-level rows also pool the people of all seeds (each seed's victim is a new teacher,
    so a person-seed pair is one sample): ``pooled_auc`` with a bootstrap 95 % CI
    (``pooled_auc_ci``; it resamples people, since one person recurs over seeds, among members and
    among non-members separately), ``pooled_tpr_at_fpr`` at the run's ``attack.fprs`` (NaN, with an
    ``UndefinedMetricWarning``, where even the pool has fewer than 1 / FPR non-members), the pooled
    ROC curve (``pooled_roc``, at most 300 points) and the pooled counts. Pooling is what resolves
    TPR at 1 % FPR with ~50 non-members per seed.

    Parameters
    ----------
    records : list of RunRecord
        One run per seed; ``records[0].config["attack"]`` gives ``fprs`` and ``n_bootstrap``.
    n_bootstrap : int, optional
        Bootstrap resamples of the pooled CI (default: the run's ``attack.n_bootstrap``, else 1000).

    Returns
    -------
    rows : list of SweepRow
        Sorted by (teacher, student, setting, level, attack); pooled fields None where not pooled.
    """
    groups: dict[tuple, list[tuple[int, MembershipReport]]] = defaultdict(list)
    for r in records:
        for m in r.membership:
            groups[(m.teacher, m.student, m.setting, m.level, m.attack)].append((r.seed, m))
    attack_cfg = records[0].config.get("attack", {}) if records else {}
    fprs = tuple(attack_cfg.get("fprs", ()))
    n_bootstrap = n_bootstrap or int(attack_cfg.get("n_bootstrap", 1000))
    rows = []
    for key, vals in sorted(groups.items()):
        aucs = np.array([m.auc for _, m in vals])
        pooled = _pooled(key, [m for _, m in vals], fprs, n_bootstrap) if key[3] == "identity" else {}
        rows.append(SweepRow(*key, auc_mean=float(aucs.mean()),
                             auc_std=float(aucs.std(ddof=1)) if len(aucs) > 1 else 0.0,
                             seeds=tuple(s for s, _ in vals), aucs=tuple(aucs.tolist()), **pooled))
    return rows


def _pooled(key: tuple, reports: list[MembershipReport], fprs: tuple, n_bootstrap: int) -> dict[str, Any]:
    """The ``pooled_*`` fields of a ``SweepRow`` for one identity-level group (empty with < 2 members
    or non-members); ``key`` is (teacher, student, setting, level, attack), which seeds the bootstrap."""
    teacher, student, setting, _, attack = key
    pos = [(p, v) for m in reports for p, v in m.member_scores.items()]
    neg = [(p, v) for m in reports for p, v in m.nonmember_scores.items()]
    if len(pos) < 2 or len(neg) < 2:
        return {}
    y = np.r_[np.ones(len(pos), int), np.zeros(len(neg), int)]
    sc = np.array([v for _, v in pos + neg], dtype=float)
    people = np.array([p for p, _ in pos + neg])
    ci = bootstrap_auc_ci(y, sc, groups=people, n_bootstrap=n_bootstrap,
                          seed=derive_seed(0, "pooled", teacher, student, setting, attack))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        tprs = {float(f): tpr_at_fpr(y, sc, f) for f in fprs}
    fpr, tpr, _ = roc_curve(y, sc)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 300)).round().astype(int))
    return {"pooled_auc": auc_score(y, sc), "pooled_auc_ci": (ci.low, ci.high),
            "pooled_roc": RocCurve(fpr[keep].round(6).tolist(), tpr[keep].round(6).tolist()),
            "pooled_tpr_at_fpr": tprs, "pooled_n_members": len(pos), "pooled_n_nonmembers": len(neg)}
