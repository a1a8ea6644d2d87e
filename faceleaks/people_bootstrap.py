"""Bootstrap over *people* for decisions sharing people (one person audited by several victims).

Moved out of ``metrics`` (which re-exports these names) to keep modules under 300 lines.
"""

from __future__ import annotations

import numpy as np

from faceleaks.errors import DataError
from faceleaks.metric_inputs import ConfidenceInterval, check_scores as _check, percentile_ci
from faceleaks.seeding import make_rng

__all__ = ["bootstrap_people_replicates", "bootstrap_people_auc_ci", "bootstrap_tpr_at_fpr_ci"]


def _weighted_auc_tpr(w, is_pos, inv, n_values, fprs) -> tuple[np.ndarray, np.ndarray]:
    flat = (inv[None, :] + n_values * np.arange(b := len(w))[:, None]).ravel()
    pos, neg = (np.bincount(flat, weights=(w * m).ravel(), minlength=b * n_values).reshape(b, n_values)
                for m in (is_pos, ~is_pos))  # weight per distinct score, highest first
    cpos, cneg = pos.cumsum(axis=1), neg.cumsum(axis=1)
    n_pos, n_neg = cpos[:, -1], cneg[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        aucs = (pos * (n_neg[:, None] - cneg + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        tprs = np.stack([np.where(cneg / n_neg[:, None] <= f + 1e-12, cpos, 0.0).max(axis=1) / n_pos
                         for f in fprs] + [np.empty(b)], axis=1)[:, : len(fprs)]
    f = np.asarray(fprs)[None, :]
    tprs[((f > 0) & (n_neg[:, None] * f < 1.0 - 1e-9)) | (n_pos[:, None] == 0)] = np.nan
    aucs[(n_pos == 0) | (n_neg == 0)] = np.nan
    return aucs, tprs


def bootstrap_people_replicates(labels, scores, *, groups=None, fprs: tuple[float, ...] = (), n_bootstrap: int = 1000,
                                seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """AUC and TPR at ``fprs`` (as :func:`tpr_at_fpr`) of bootstrap resamples of people [reconstructed].

    Each draws as many people as there are, with replacement, keeping all their decisions (not stratified).

    Parameters
    ----------
    labels, scores : array-like of shape (n,); 1 = member, scores finite, higher = member
    groups : array-like of shape (n,), optional; the person of each decision (default: one each)
    fprs : tuple of FPR fractions, e.g. ``(0.001, 0.01)``
    n_bootstrap : int; seed : int or numpy Generator (draws ``rng.integers(0, n_people, (n_bootstrap, n_people))``)

    Returns
    -------
    aucs : ndarray (n_bootstrap,), float64; NaN where a resample lacks a class
    tprs : ndarray (n_bootstrap, len(fprs)), float64; NaN where < ``1 / fpr`` non-members or no member

    Raises
    ------
    DataError
        For NaN scores, a single class, or ``groups`` of another length.
    """
    labels, scores = _check(labels, scores)
    groups = np.arange(labels.size) if groups is None else np.asarray(groups).ravel()
    if groups.shape != labels.shape:
        raise DataError(f"groups {groups.shape} and labels {labels.shape} differ in length")
    _, g = np.unique(groups.astype(str), return_inverse=True)
    picks = make_rng(seed).integers(0, g.max() + 1, size=(n_bootstrap, g.max() + 1))
    picks += (g.max() + 1) * np.arange(n_bootstrap)[:, None]  # people drawn; each decision weighs its person's draws
    w = np.bincount(picks.ravel(), minlength=picks.size).reshape(picks.shape)[:, g].astype(np.float64)
    values, inv = np.unique(-scores, return_inverse=True)
    parts = [_weighted_auc_tpr(w[i : i + 128], labels == 1, inv, values.size, tuple(fprs))
             for i in range(0, n_bootstrap, 128)]  # 128 replicates at a time bounds the memory
    return np.concatenate([a for a, _ in parts]), np.concatenate([t for _, t in parts])


def bootstrap_tpr_at_fpr_ci(labels, scores, fpr: float, *, groups=None, n_bootstrap: int = 1000,
                            level: float = 0.95, seed: int | np.random.Generator = 0) -> ConfidenceInterval:
    """Percentile CI of :func:`tpr_at_fpr` by a bootstrap over people (parameters, resampling and errors:
    :func:`bootstrap_people_replicates`) [reconstructed]. ``ConfidenceInterval(nan, nan, level)`` with
    an ``UndefinedMetricWarning`` if any resample has < ``1 / fpr`` non-member decisions or no member."""
    _, tprs = bootstrap_people_replicates(labels, scores, groups=groups, fprs=(fpr,), n_bootstrap=n_bootstrap,
                                          seed=seed)
    return percentile_ci(tprs[:, 0], level, f"TPR at FPR={fpr:g}")


def bootstrap_people_auc_ci(labels, scores, *, groups=None, n_bootstrap: int = 1000, level: float = 0.95,
                            seed: int | np.random.Generator = 0) -> ConfidenceInterval:
    """Percentile CI of the AUC by a bootstrap over people, members and non-members together (unlike
    :func:`bootstrap_auc_ci`, which resamples each side apart; see :func:`bootstrap_people_replicates`)
    [reconstructed]. NaN with an ``UndefinedMetricWarning`` if any resample lacks a class."""
    aucs, _ = bootstrap_people_replicates(labels, scores, groups=groups, n_bootstrap=n_bootstrap, seed=seed)
    return percentile_ci(aucs, level, "AUC")
