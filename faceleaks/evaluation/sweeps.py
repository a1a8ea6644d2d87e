"""Repeat the experiment over several seeds (new split, new training each time) and summarise.

One split of a few hundred identities moves membership AUCs by about ±0.05, so attack variants
are compared by their mean and spread over seeds, not by one run.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceleaks.config import ExperimentConfig
from faceleaks.evaluation.results import RunRecord

__all__ = ["run_seeds", "summarise_seeds"]


def run_seeds(cfg: ExperimentConfig, seeds: list[int], *, out_dir: Path, cache_dir: Path,
              run: Callable[..., RunRecord], on_record: Callable[[RunRecord, Path], None] | None = None,
              ) -> list[RunRecord]:
    """Run ``run(cfg_with_seed, out_dir=out_dir/seed-N, cache_dir=...)`` for each seed.

    A seed whose ``results.json`` already exists in its folder is loaded, not rerun (resume).
    """
    records = []
    for seed in seeds:
        sub = Path(out_dir) / f"seed-{seed}"
        sub.mkdir(parents=True, exist_ok=True)
        done = sub / "results.json"
        if done.exists():
            records.append(RunRecord.from_json(done))
            continue
        record = run(dataclasses.replace(cfg, seed=seed, output_dir=str(sub)), out_dir=sub, cache_dir=cache_dir)
        if on_record is not None:
            on_record(record, sub)
        records.append(record)
    return records


def summarise_seeds(records: list[RunRecord]) -> list[dict]:
    """Per (teacher, student, setting, attack): AUC mean, standard deviation and per-seed values."""
    groups: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    for r in records:
        for m in r.membership:
            groups[(m.teacher, m.student, m.setting, m.level, m.attack)].append((r.seed, m.auc))
    rows = []
    for (teacher, student, setting, level, attack), vals in sorted(groups.items()):
        aucs = np.array([v for _, v in vals])
        rows.append({"teacher": teacher, "student": student, "setting": setting, "level": level, "attack": attack,
                     "auc_mean": float(aucs.mean()), "auc_std": float(aucs.std(ddof=1)) if len(aucs) > 1 else 0.0,
                     "seeds": [s for s, _ in vals], "aucs": aucs.tolist()})
    return rows
