"""Empirical (epsilon, delta) lower bounds from membership decisions, with Clopper-Pearson intervals.

The auditing recipe of Jagielski et al. 2020 ("Auditing differentially private machine learning",
arXiv 2006.07709, section 3) and Nasr et al. 2021 ("Adversary instantiation", arXiv 2101.04535)
[paper]: if the training mechanism is (eps, delta)-DP with respect to adding or removing one
record (here: one *person*, with all their photos), then every membership test, whatever its
threshold, satisfies

    TPR <= e^eps * FPR + delta     and     TNR <= e^eps * FNR + delta,

so an upper confidence bound on FPR and a lower one on TPR give, with the stated confidence,

    eps >= eps_lb = max(log((TPR_lo - delta) / FPR_hi), log((TNR_lo - delta) / FNR_hi), 0).

Confidence split [reconstructed: the papers quote a 95 % Clopper-Pearson interval without the
split]. ``TNR_lo = 1 - FPR_hi`` and ``FNR_hi = 1 - TPR_lo`` (Clopper-Pearson bounds are symmetric
under swapping successes and failures), so both inequalities fail only if ``TPR_lo > TPR`` or
``FPR_hi < FPR``: two one-sided bounds, each taken at ``1 - (1 - confidence) / 2`` (the ends of a
two-sided interval at ``confidence``), and the max over both inequalities costs nothing more
(union bound: the statement ``eps >= eps_lb`` fails with probability at most ``1 - confidence``).

Independence [reconstructed]. Clopper-Pearson treats the member decisions as independent
Bernoulli trials with one common TPR, and the non-member decisions likewise with one FPR. At
identity level with random inclusion, decisions share people (one person is audited by several
victims) and victims (one victim scores many people), so they are positively correlated and the
effective number of trials is smaller than the count: the intervals are too narrow and the bound
is optimistic to that extent. It is exact when each decision comes from a fresh, independently
trained victim. The threshold is chosen on one part of the decisions and the counts are taken on
another (e.g. other victims), so the choice does not bias the counts; if the parts share people,
the same correlation caveat applies across them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

from faceleaks.errors import ConfigError, DataError

__all__ = ["EpsilonBound", "clopper_pearson", "epsilon_lower_bound", "empirical_epsilon"]


@dataclass(frozen=True)
class EpsilonBound:
    """An empirical lower bound on the identity-level epsilon of the mechanism that made the victims.

    Attributes
    ----------
    epsilon : float
        The lower bound (nats, >= 0) from the evaluation counts at ``threshold``.
    threshold : float
        Decision rule "member if score >= threshold", chosen on the fit part (``inf``: nobody).
    tp, fn, fp, tn : int
        Evaluation counts at ``threshold`` (members called members, members missed, ...).
    tpr_low, fpr_high, tnr_low, fnr_high : float
        One-sided Clopper-Pearson bounds (fractions) used, each at ``1 - (1 - confidence) / 2``.
    delta : float
        The delta the bound holds at.
    confidence : float
        Probability (fraction) that ``epsilon`` is below the mechanism's true epsilon.
    fit_epsilon : float
        The bound the chosen threshold reached on the fit part (optimistic: chosen there).
    """

    epsilon: float
    threshold: float
    tp: int
    fn: int
    fp: int
    tn: int
    tpr_low: float
    fpr_high: float
    tnr_low: float
    fnr_high: float
    delta: float
    confidence: float
    fit_epsilon: float


def _check_level(delta: float, confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence={confidence!r} must be a fraction in (0, 1), e.g. 0.95")
    if not 0.0 <= delta < 1.0:
        raise ConfigError(f"delta={delta!r} must be in [0, 1), e.g. 1e-5")


def clopper_pearson(successes, trials, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided exact (Clopper-Pearson) interval of a binomial proportion [paper: Clopper & Pearson 1934].

    Each end is a one-sided bound at ``1 - (1 - confidence) / 2``. Same values as
    ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method="exact")``, vectorised
    through the beta quantiles.

    Parameters
    ----------
    successes, trials : int or array-like of int, broadcastable
        Counts, ``0 <= successes <= trials`` and ``trials >= 1``.
    confidence : float
        Two-sided coverage, a fraction in (0, 1).

    Returns
    -------
    low, high : ndarray of float64 fractions, the broadcast shape (0-d for scalar input)

    Raises
    ------
    DataError
        For negative counts, ``successes > trials`` or ``trials < 1``.
    ConfigError
        For ``confidence`` outside (0, 1).
    """
    _check_level(0.0, confidence)
    k, n = np.broadcast_arrays(np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64))
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n) or np.any(k != np.round(k)):
        raise DataError(f"need integer counts 0 <= successes <= trials with trials >= 1; "
                        f"got successes={successes!r}, trials={trials!r}")
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, beta.ppf(tail, np.maximum(k, 1), n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1.0 - tail, k + 1, np.maximum(n - k, 1)), 1.0)
    return low, high


def _bounds(tp, fn, fp, tn, delta: float, confidence: float) -> dict[str, np.ndarray]:
    tpr_low, _ = clopper_pearson(tp, np.asarray(tp) + fn, confidence=confidence)
    _, fpr_high = clopper_pearson(fp, np.asarray(fp) + tn, confidence=confidence)
    tnr_low, fnr_high = 1.0 - fpr_high, 1.0 - tpr_low
    best = np.zeros(np.shape(tpr_low))
    for num, den in ((tpr_low - delta, fpr_high), (tnr_low - delta, fnr_high)):
        ok = (num > 0) & (den > 0)
        best = np.maximum(best, np.log(np.where(ok, num, 1.0) / np.where(ok, den, 1.0)))
    return {"epsilon": best, "tpr_low": tpr_low, "fpr_high": fpr_high, "tnr_low": tnr_low,
            "fnr_high": fnr_high}


def epsilon_lower_bound(*, tp: int, fn: int, fp: int, tn: int, delta: float = 1e-5,
                        confidence: float = 0.95) -> float:
    """Lower bound on epsilon (nats, >= 0) at ``delta`` from one test's counts [paper; split: reconstructed].

    ``max(log((TPR_lo - delta) / FPR_hi), log((TNR_lo - delta) / FNR_hi), 0)`` with one-sided
    Clopper-Pearson bounds, each at ``1 - (1 - confidence) / 2`` (see the module docstring for
    why this split covers both inequalities and what independence it assumes). The counts must
    come from decisions not used to choose the test's threshold.

    Parameters
    ----------
    tp, fn : int
        Members called members / called non-members (``tp + fn >= 1``).
    fp, tn : int
        Non-members called members / called non-members (``fp + tn >= 1``).
    delta : float
        In [0, 1).
    confidence : float
        Probability (fraction in (0, 1)) that the bound holds.

    Returns
    -------
    float, >= 0; 0 when the test shows nothing (e.g. TPR equal to FPR).

    Raises
    ------
    DataError
        For negative or non-integer counts, or no members / no non-members.
    ConfigError
        For ``delta`` or ``confidence`` out of range.

    Examples
    --------
    >>> round(epsilon_lower_bound(tp=880, fn=120, fp=120, tn=880), 2)
    1.8
    >>> epsilon_lower_bound(tp=50, fn=50, fp=50, tn=50)
    0.0
    """
    _check_level(delta, confidence)
    return float(_bounds(tp, fn, fp, tn, delta, confidence)["epsilon"])


def _split(scores, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise DataError(f"{name} scores {s.shape} and labels {y.shape} differ in length")
    if not np.all(np.isfinite(s)):
        raise DataError(f"{name}: {int((~np.isfinite(s)).sum())} scores are NaN or infinite")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise DataError(f"{name} labels must be 0 (non-member) or 1 (member)")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise DataError(f"{name} part needs at least one member (1) and one non-member (0)")
    return np.sort(s[y == 1]), np.sort(s[y == 0])


def _counts(pos: np.ndarray, neg: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    tp = pos.size - np.searchsorted(pos, thresholds, side="left")
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")
    return tp, pos.size - tp, fp, neg.size - fp


def empirical_epsilon(fit_scores, fit_labels, eval_scores, eval_labels, *, delta: float = 1e-5,
                      confidence: float = 0.95) -> EpsilonBound:
    """Empirical epsilon lower bound: threshold chosen on the fit part, counts from the eval part.

    Every threshold "member if score >= t" (t one of the fit scores, or ``inf``) is scored by
    :func:`epsilon_lower_bound` on the fit counts; the best one is applied to the eval decisions,
    whose counts give the bound [paper: Jagielski et al. 2020; Nasr et al. 2021]. Keep the parts
    disjoint, ideally by victim (e.g. fit on some victims' decisions, evaluate on the others').

    Parameters
    ----------
    fit_scores, eval_scores : array-like of shape (n_fit,), (n_eval,), float
        Membership scores, higher = more likely member; finite.
    fit_labels, eval_labels : array-like of the same shapes, int
        1 = member, 0 = non-member; each part needs both.
    delta : float
        In [0, 1) (1e-5 by default).
    confidence : float
        Probability (fraction in (0, 1)) that ``epsilon`` does not exceed the true epsilon,
        under the independence stated in the module docstring.

    Returns
    -------
    EpsilonBound

    Raises
    ------
    DataError
        For NaN scores, mismatched lengths, labels other than 0/1, or a part missing a class.
    ConfigError
        For ``delta`` or ``confidence`` out of range.
    """
    _check_level(delta, confidence)
    fit_pos, fit_neg = _split(fit_scores, fit_labels, "fit")
    ev_pos, ev_neg = _split(eval_scores, eval_labels, "eval")
    thresholds = np.append(np.unique(np.concatenate([fit_pos, fit_neg])), np.inf)
    fit_eps = _bounds(*_counts(fit_pos, fit_neg, thresholds), delta, confidence)["epsilon"]
    best = int(np.argmax(fit_eps))
    tp, fn, fp, tn = (int(c[0]) for c in _counts(ev_pos, ev_neg, thresholds[best : best + 1]))
    b = _bounds(tp, fn, fp, tn, delta, confidence)
    return EpsilonBound(epsilon=float(b["epsilon"]), threshold=float(thresholds[best]), tp=tp, fn=fn, fp=fp,
                        tn=tn, tpr_low=float(b["tpr_low"]), fpr_high=float(b["fpr_high"]),
                        tnr_low=float(b["tnr_low"]), fnr_high=float(b["fnr_high"]), delta=float(delta),
                        confidence=float(confidence), fit_epsilon=float(fit_eps[best]))
