"""Defence-sweep records for the report tests, generated from simulated scores (no hand-typed results).

Three settings: ``none`` (undefended), ``round-1`` (rounding, weaker leak) and ``label-only``
(labels: no posterior attack, a weak label-only one); membership rows come from ``records._row``.
"""

from __future__ import annotations

import numpy as np

from faceleaks.evaluation.defend_results import HEADLINE_PREFIX, DefenceRecord, write_defence
from faceleaks.evaluation.results import VerificationRecord
from tests.report.records import _row

K = 5


def _setting(rng, name: str, defence: str, kind: str, shift: float, seed: int) -> DefenceRecord:
    rows = []
    if kind == "posterior":
        rows.append(_row(rng, "max_posterior", "victim", "training-photos", "instance", 1, shift / 3))
        rows.append(_row(rng, f"{HEADLINE_PREFIX}@k={K}", "victim", "training-photos", "identity", K, shift))
    rows.append(_row(rng, f"label-only-agreement@k={K}", "victim", "training-photos", "identity", K, shift / 2))
    acc = float(rng.uniform(0.6, 0.9))
    return DefenceRecord(
        setting=name, key=f"{seed}-{name}", output_defence=defence, teacher_overrides="", recipe="regularised",
        output_kind=kind, row_sum_tolerance=0.0 if kind == "label" else 1e-6,
        identification_accuracy=float(rng.uniform(0.8, 0.99)), n_identification_photos=int(rng.integers(300, 600)),
        enrolment_accuracy=float(rng.uniform(0.8, 0.99)), base_enrolment_accuracy=float(rng.uniform(0.7, 0.9)),
        privacy="none", dp_epsilon=float("nan"), dp_delta=float("nan"),
        verification=VerificationRecord(float(rng.uniform(0.9, 0.99)), 0.01, 600, 10),
        student_accuracy={"lfw-identity": acc, "utk-age": float(rng.uniform(0.5, 0.7))},
        defended_student_accuracy={"lfw-identity": acc - float(rng.uniform(0, 0.05)),
                                   "utk-age": float(rng.uniform(0.4, 0.7))},
        membership=tuple(rows), k=K, queries={"victim/lfw-identity": int(rng.integers(5000, 9000))},
        seconds=float(rng.uniform(20, 90)), seed=seed, notes=(f"simulated setting {name}",))


def defence_records(seed: int = 0) -> list[DefenceRecord]:
    """The sweep of one seed (see the module docstring)."""
    rng = np.random.default_rng(seed)
    return [_setting(rng, "none", "none", "posterior", 1.5, seed),
            _setting(rng, "round-1", "round(decimals=1)", "posterior", 0.8, seed),
            _setting(rng, "label-only", "label-only", "label", 0.3, seed)]


def write_sweep(out, records) -> list:
    """``out/defend/<setting>/results.json`` for each record, in order; returns the paths."""
    paths = []
    for r in records:
        (out / "defend" / r.setting).mkdir(parents=True, exist_ok=True)
        write_defence(r, out / "defend" / r.setting / "results.json")
        paths.append(out / "defend" / r.setting / "results.json")
    return paths
