"""Random inclusion at identity level: who is in which victim, leave-one-out LiRA, pooled metrics.

Torch-free arithmetic of the N-victim protocol (``evaluation.random_inclusion`` builds the
models). The protocol is the LiRA paper's evaluation (Carlini et al. 2022, arXiv 2112.03570,
Sec. V-A [paper]) moved to people [reconstructed]: each of N victim teachers trains on a seeded
random half of a candidate pool of people; each victim is attacked with the other N - 1 as its
shadow models (leave-one-out, online: no extra training); all (victim, person) decisions are
pooled, so thousands of non-member decisions resolve TPR at 0.1 % FPR.

Because every person is a member of about half the victims, chosen by coin flips independent of
who the person is, a score that does not depend on membership cannot separate the labels: the
negative control (the unmodified base scored with the same shadows and labels) sits at AUC 0.5
by construction, whatever the people's photo counts or looks.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from faceleaks.attacks.membership.lira import fit_in_out, likelihood_ratio
from faceleaks.errors import ConfigError, DataError, UndefinedMetricWarning
from faceleaks.evaluation.inclusion_results import Decisions, EpsilonRecord, InclusionRow
from faceleaks.evaluation.results import RocCurve
from faceleaks.metrics import auc_score, bootstrap_people_replicates, roc_curve, tpr_at_fpr
from faceleaks.privacy_bounds import empirical_epsilon
from faceleaks.seeding import derive_seed, make_rng

__all__ = ["assign_members", "nonmember_decisions", "choose_n_victims", "loo_lira_scores", "pool_decisions",
           "summarise_decisions", "log_roc"]


def assign_members(n_people: int, n_victims: int, *, seed: int, fraction: float = 0.5) -> np.ndarray:
    """Which pool people each victim trains on: a seeded random ``fraction`` of the pool per victim.

    Parameters
    ----------
    n_people : int >= 2, size of the candidate pool
    n_victims : int >= 1
    seed : int; victim v draws from ``derive_seed(seed, "inclusion", str(v))``, so adding victims
        never changes the earlier ones (their cached teachers stay valid)
    fraction : float in (0, 1), share of the pool in each victim (``round(fraction * n_people)`` people)

    Returns
    -------
    is_member : ndarray (n_victims, n_people) bool

    Raises
    ------
    ConfigError
        ``fraction`` outside (0, 1) or a pool too small to hold members and non-members.

    Examples
    --------
    >>> m = assign_members(10, 3, seed=0)
    >>> m.shape, m.sum(axis=1).tolist()
    ((3, 10), [5, 5, 5])
    """
    n_in = int(round(fraction * n_people))
    if not 0.0 < fraction < 1.0 or not 1 <= n_in < n_people:
        raise ConfigError(f"each victim must train on some but not all of the {n_people} pool people; "
                          f"fraction={fraction!r} gives {n_in}: use a fraction in (0, 1) and a larger pool")
    out = np.zeros((n_victims, n_people), dtype=bool)
    for v in range(n_victims):
        out[v, make_rng(derive_seed(seed, "inclusion", str(v))).permutation(n_people)[:n_in]] = True
    return out


def nonmember_decisions(is_member: np.ndarray, eligible: np.ndarray) -> int:
    """Non-member (victim, person) decisions among ``eligible`` people: ``(~is_member & eligible).sum()``."""
    return int((~is_member & np.asarray(eligible, dtype=bool)[None, :]).sum())


def choose_n_victims(eligible: np.ndarray, *, seed: int, target: int = 3000, fraction: float = 0.5,
                     n_min: int = 4, n_max: int = 400) -> int:
    """The fewest victims (at least ``n_min``) whose draws give ``target`` non-member decisions.

    Parameters
    ----------
    eligible : ndarray (n_people,) bool, people audited at the k the target is set for (k = 5)
    seed, fraction : as in :func:`assign_members` (the same draws are counted)
    target : int, non-member decisions wanted (3,000: TPR at 0.1 % FPR then rests on >= 3 false positives)
    n_min, n_max : bounds on N (LiRA online needs >= 2 shadows, so N >= 3)

    Raises
    ------
    ConfigError
        No eligible person, or ``n_max`` victims are not enough.
    """
    eligible = np.asarray(eligible, dtype=bool)
    per_victim = eligible.sum() * (1.0 - fraction)
    if per_victim <= 0:
        raise ConfigError("no pool person has enough training photos for k = 5: lower k or use a larger pool")
    n = max(n_min, math.ceil(target / per_victim))
    while nonmember_decisions(assign_members(len(eligible), n, seed=seed, fraction=fraction), eligible) < target:
        n += 1
        if n > n_max:
            raise ConfigError(f"{n_max} victims give fewer than {target} non-member decisions; lower the target")
    return n


def loo_lira_scores(stats: np.ndarray, is_member: np.ndarray, *, online: bool = True,
                    scored: np.ndarray | None = None) -> np.ndarray:
    """LiRA scores of every victim, each against the other N - 1 as shadows (leave-one-out).

    For victim v the Gaussians are fitted on rows ``!= v`` of ``stats`` exactly as
    ``IdentityLiRAAttack`` fits its shadows (``fit_in_out``: per-person means, variance pooled over
    the people scored together), and the statistic of ``scored[v]`` is scored under them.

    Parameters
    ----------
    stats : ndarray (N, n_people) float64, the identity statistic of each person through each victim
    is_member : ndarray (N, n_people) bool, who each victim trained on (IN / OUT of each shadow)
    online : bool, log-likelihood ratio of IN vs OUT (True) or the z-score against OUT (False)
    scored : ndarray (N, n_people) float64, the statistic to score in turn v (default ``stats``; the
        negative control passes its own statistic repeated N times)

    Returns
    -------
    scores : ndarray (N, n_people) float64, higher = member

    Raises
    ------
    DataError
        Fewer than 3 victims (2 shadows each), or shapes that differ.
    """
    stats = np.asarray(stats, dtype=np.float64)
    scored = stats if scored is None else np.asarray(scored, dtype=np.float64)
    if stats.shape != is_member.shape or scored.shape != stats.shape or len(stats) < 3:
        raise DataError(f"leave-one-out LiRA needs >= 3 victims and matching (N, n_people) arrays; got stats "
                        f"{stats.shape}, is_member {is_member.shape}, scored {scored.shape}")
    out = np.empty_like(stats)
    for v in range(len(stats)):
        others = np.arange(len(stats)) != v
        mu_out, sd_out = fit_in_out(stats[others], ~is_member[others])
        if online:
            mu_in, sd_in = fit_in_out(stats[others], is_member[others])
            out[v] = likelihood_ratio(scored[v], mu_in, sd_in, mu_out, sd_out)
        else:
            out[v] = (scored[v] - mu_out) / sd_out
    return out


def pool_decisions(scores: np.ndarray, is_member: np.ndarray, people: np.ndarray) -> Decisions:
    """All decisions of ``scores`` (N, n_k): column j is pool person ``people[j]``, row v victim v.

    ``is_member`` is (N, n_k) bool on the same columns.

    Examples
    --------
    >>> d = pool_decisions(np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[True, False], [False, True]]), np.array([4, 9]))
    >>> d.victim, d.person, d.is_member
    ((0, 0, 1, 1), (4, 9, 4, 9), (True, False, False, True))
    """
    n, people = len(scores), np.asarray(people)
    return Decisions(victim=tuple(np.repeat(np.arange(n), len(people)).tolist()),
                     person=tuple(np.tile(people, n).tolist()),
                     is_member=tuple(np.asarray(is_member, dtype=bool).ravel().tolist()),
                     score=tuple(np.asarray(scores, dtype=np.float64).ravel().tolist()))


def log_roc(labels: np.ndarray, scores: np.ndarray, n_points: int = 300) -> RocCurve:
    """The ROC at ``n_points`` log-spaced FPRs from one false positive to 1 (best TPR at FPR <= each).

    Rounded to 6 decimals; a log-log plot of it is the LiRA paper's figure.
    """
    fpr, tpr, _ = roc_curve(labels, scores)
    n_neg = int((np.asarray(labels) == 0).sum())
    grid = np.unique(np.concatenate([np.logspace(np.log10(1.0 / n_neg), 0.0, n_points), [1.0]]))
    best = np.array([tpr[fpr <= g + 1e-12].max() for g in grid])
    return RocCurve([round(float(g), 6) for g in grid], [round(float(t), 6) for t in best])


def _epsilon(d: Decisions, n_victims: int, delta: float, confidence: float) -> EpsilonRecord | None:
    """Threshold chosen on the first half of the victims, counts from the second half."""
    if n_victims < 2:
        return None
    victim, y, s = np.array(d.victim), np.array(d.is_member, dtype=int), np.array(d.score)
    fit = victim < n_victims // 2
    if len(np.unique(y[fit])) < 2 or len(np.unique(y[~fit])) < 2:
        return None
    b = empirical_epsilon(s[fit], y[fit], s[~fit], y[~fit], delta=delta, confidence=confidence)
    return EpsilonRecord(epsilon=b.epsilon, threshold=b.threshold if math.isfinite(b.threshold) else None,
                         tp=b.tp, fn=b.fn, fp=b.fp, tn=b.tn, tpr_low=b.tpr_low, fpr_high=b.fpr_high,
                         fit_epsilon=b.fit_epsilon, delta=b.delta, confidence=b.confidence,
                         fit_victims=tuple(range(n_victims // 2)), eval_victims=tuple(range(n_victims // 2, n_victims)))


def summarise_decisions(d: Decisions, *, attack: str, teacher: str, student: str, k: int, n_victims: int,
                        n_shadow_models: int, fprs: tuple[float, ...], n_bootstrap: int, seed: int,
                        delta: float = 1e-5, confidence: float = 0.95) -> InclusionRow:
    """Metrics of pooled decisions: AUC and TPR at each FPR with 95 % intervals, ROC, epsilon bound.

    Intervals come from a bootstrap over **people** (``metrics.bootstrap_people_replicates`` with
    ``groups`` = the person, 95 % percentile intervals; the same resamples as
    ``metrics.bootstrap_people_auc_ci`` and ``metrics.bootstrap_tpr_at_fpr_ci``): a person's decisions
    on all victims are resampled together, since they share the person's photos. The victims are
    not resampled, so the intervals leave out the variation between victims [reconstructed]. An
    interval is NaN where some resample cannot resolve the FPR (too few non-member decisions).

    Raises
    ------
    DataError
        The decisions hold no member or no non-member.
    """
    y, s = np.array(d.is_member, dtype=int), np.array(d.score, dtype=np.float64)
    rng_seed = derive_seed(seed, "inclusion-bootstrap", teacher, student, attack)
    aucs, tprs_b = bootstrap_people_replicates(y, s, groups=np.array(d.person), fprs=tuple(fprs),
                                               n_bootstrap=n_bootstrap, seed=rng_seed)
    tprs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # NaN says it; the report shows n/a
        for f in fprs:
            tprs[f] = tpr_at_fpr(y, s, f)
    return InclusionRow(attack=attack, teacher=teacher, student=student, k=k, n_shadow_models=n_shadow_models,
                        n_people=len(set(d.person)), n_member_decisions=int(y.sum()),
                        n_nonmember_decisions=int((y == 0).sum()), auc=auc_score(y, s), auc_ci=_percentiles(aucs),
                        tpr_at_fpr=tprs, tpr_ci={f: _percentiles(tprs_b[:, j]) for j, f in enumerate(fprs)},
                        roc=log_roc(y, s), epsilon=_epsilon(d, n_victims, delta, confidence), decisions=d)


def _percentiles(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates; (NaN, NaN) if any replicate is NaN (unresolved)."""
    if np.isnan(replicates).any():
        return float("nan"), float("nan")
    lo, hi = np.quantile(replicates, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)
