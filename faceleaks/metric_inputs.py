"""Checked inputs and interval type shared by ``metrics`` and ``people_bootstrap``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from faceleaks.errors import DataError, UndefinedMetricWarning

__all__ = ["ConfidenceInterval", "check_scores", "percentile_ci"]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A two-sided interval ``[low, high]`` at ``level`` (a fraction, e.g. 0.95)."""

    low: float
    high: float
    level: float = 0.95


def check_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` (n,) int in {0, 1} with both classes and finite ``scores`` (n,) float64; else ``DataError``."""
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise DataError(f"labels {labels.shape} and scores {scores.shape} differ in length")
    if not np.all(np.isfinite(scores)):
        raise DataError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite")
    if not set(np.unique(labels)) <= {0, 1}:
        raise DataError("labels must be 0 (non-member) or 1 (member)")
    if labels.min(initial=1) == labels.max(initial=0):
        raise DataError("need at least one member (1) and one non-member (0) to compute a ROC")
    return labels, scores


def percentile_ci(replicates: np.ndarray, level: float, what: str) -> ConfidenceInterval:
    """Percentile interval of ``replicates`` (n_bootstrap,); NaN + ``UndefinedMetricWarning`` if any is NaN."""
    if np.isnan(replicates).any():
        warnings.warn(f"{what}: {int(np.isnan(replicates).sum())} of {replicates.size} resamples cannot resolve it "
                      "(too few non-member decisions, or one class): NaN", UndefinedMetricWarning, stacklevel=3)
        return ConfidenceInterval(float("nan"), float("nan"), level)
    lo, hi = np.quantile(replicates, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return ConfidenceInterval(float(lo), float(hi), level)
