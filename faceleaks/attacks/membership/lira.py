"""Identity-level likelihood-ratio attack with shadow teachers (LiRA, Carlini et al., S&P 2022,
arXiv 2112.03570, Sec. IV [paper]; per identity instead of per example [reconstructed]).

The attacker fine-tunes S shadow teachers from the public base on data it controls, each target
person's photos included in a random half of them ("online") or in none ("offline"), and builds a
shadow student on each with the victim's recipe. For a target person it computes an identity
statistic of k photos on the victim and on every shadow (``compactness``, ..., the
``consistency_gap`` against each box's own surrogate fitted on the reference pool, or the diagnostic
diffing statistics ``residual_norm`` / ``residual_coherence``, see ``identity_stats``), fits Gaussians to
the shadows where the person was IN and OUT (per-person means, variances pooled over people, as
LiRA does with few shadows), and scores the log-likelihood ratio (online) or the standardised
distance from the OUT distribution (offline). Higher = member.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from faceleaks.attacks.base import Level, MembershipAttack, MembershipScores, PublicBase, ReferenceSet, ShadowModel
from faceleaks.attacks.features import LABEL_FEATURES
from faceleaks.attacks.membership.consistency import check_pool_size
from faceleaks.attacks.membership.diffing import RAW_DIFF_STATISTICS
from faceleaks.attacks.membership.identity_stats import (POOL_STATISTICS, IdentityStatistics, check_statistic,
                                                         common_nonmember_references, shadow_identities,
                                                         statistic_min_k, target_groups)
from faceleaks.errors import DataError
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["IdentityLiRAAttack", "fit_in_out", "shadow_statistics", "statistic_supports", "likelihood_ratio",
           "DEFAULT_POOL_SIZE"]

DEFAULT_POOL_SIZE = 1000
"""Pool photos each box's consistency-gap surrogate is fitted on, on the shadow paths (LiRA, combination)."""


def statistic_supports(statistic: str, kind: OutputKind) -> bool:
    """Whether an identity statistic is computable from outputs of ``kind``.

    Diffing statistics and the consistency gap need full posteriors; ``label_agreement`` works on
    labels; the others need posteriors or top-k.
    """
    if statistic in RAW_DIFF_STATISTICS or statistic in POOL_STATISTICS:
        return kind is OutputKind.POSTERIOR
    return kind is not OutputKind.LABEL or statistic in LABEL_FEATURES


def likelihood_ratio(x: np.ndarray, mu_in: np.ndarray, sd_in, mu_out: np.ndarray, sd_out) -> np.ndarray:
    """Log-likelihood ratio of ``x`` under N(mu_in, sd_in^2) against N(mu_out, sd_out^2), elementwise.

    LiRA's online test (Carlini et al. 2022, arXiv 2112.03570, Eq. 4 [paper]); higher = IN.
    """
    return norm.logpdf(x, mu_in, sd_in) - norm.logpdf(x, mu_out, sd_out)


def fit_in_out(shadow: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-person means and a pooled standard deviation of ``shadow`` where ``mask`` is True.

    Parameters
    ----------
    shadow : ndarray (S, n_people[, n_stats]) float64, a statistic on each shadow
    mask : ndarray (S, n_people) bool, which shadows count (e.g. those where the person was IN)

    Returns
    -------
    (mu (n_people[, n_stats]), sd (scalar or (n_stats,))): a person with no such shadow gets the
    mean of the others' means; sd is the pooled within-person standard deviation (sum of squares
    over the sum of per-person counts minus one), 1 when no person has two such values, floored at 1e-6.

    Raises
    ------
    DataError
        ``mask`` is False everywhere: no shadow holds any of the people in that role, so there is no
        distribution to fit (e.g. online LiRA with shadows none of the audited people trained).
    """
    if not np.any(mask):
        raise DataError("no shadow model holds any audited person in the needed role (IN or OUT): LiRA needs "
                        "shadows trained with and without the audited people")
    m = np.broadcast_to(mask.reshape(mask.shape + (1,) * (shadow.ndim - 2)), shadow.shape)
    counts = m.sum(0)
    mu = np.where(counts > 0, np.where(m, shadow, 0.0).sum(0) / np.maximum(counts, 1), np.nan)
    fill = np.nanmean(mu, axis=0) if np.isfinite(mu).any() else 0.0
    mu = np.where(np.isfinite(mu), mu, np.nan_to_num(fill))
    # pooled within-person variance: each person's mean used up one degree of freedom
    dof = np.maximum(counts - 1, 0).sum(0)
    ss = np.where(m, (shadow - mu) ** 2, 0.0).sum(axis=(0, 1))
    sd = np.where(dof > 0, np.sqrt(ss / np.maximum(dof, 1)), 1.0)
    return mu, np.maximum(sd, 1e-6)


def shadow_statistics(stats: IdentityStatistics, shadows: Sequence[ShadowModel], images: np.ndarray,
                      groups: list[np.ndarray]) -> np.ndarray:
    """(S, n_people, n_stats) float64: ``stats`` of every target group through every shadow."""
    return np.stack([stats(s.box, images, groups) for s in shadows])


class IdentityLiRAAttack(MembershipAttack):
    """Per-identity LiRA over shadow students.

    Parameters
    ----------
    statistic : str, one of ``SHADOW_STATISTICS`` (``compactness``, ``consistency_gap``, ...)
    k : int, photos per identity
    online : bool, use IN and OUT shadows (True) or OUT only (False)
    ridge : float, L2 penalty of the residual surrogates (``residual_norm`` / ``residual_coherence`` only)
    pool_size : int >= 20 or None, reference-pool photos each box's consistency-gap surrogate is
        fitted on (a seeded subsample of the pool minus every shadow's identities; None: all);
        ``consistency_gap`` only
    seed : int, seed of that subsample

    Raises
    ------
    ConfigError
        Unknown statistic, k too small for it, or a bad ``pool_size``.
    """

    def __init__(self, *, statistic: str = "compactness", k: int = 5, online: bool = True, ridge: float = 1.0,
                 pool_size: int | None = DEFAULT_POOL_SIZE, seed: int = 0) -> None:
        self.statistic, self.k, self.online, self.ridge = statistic, k, online, ridge
        self.pool_size, self.seed = pool_size, seed
        check_statistic(statistic, k)
        check_pool_size(pool_size)
        self.name = f"lira-{'online' if online else 'offline'}-{statistic}@k={k}"

    @property
    def needs(self) -> frozenset[str]:
        """Shadows; residual statistics also need the public base and known non-member references, the
        consistency gap the public base and the reference pool."""
        extra = {"public_base", "references"} if self.statistic in RAW_DIFF_STATISTICS else (
            {"public_base", "pool"} if self.statistic in POOL_STATISTICS else set())
        return frozenset({"shadows"} | extra)

    @classmethod
    def for_setting(cls, params, *, level, k, output_kind):
        """``{..., k}`` at IDENTITY level when the statistic is defined for k photos; None otherwise."""
        if level is not Level.IDENTITY or k < statistic_min_k(params.get("statistic", "compactness")):
            return None
        return {**params, "k": k}

    def supports(self, kind: OutputKind) -> bool:
        """Whether ``statistic`` is computable from ``kind`` (see ``statistic_supports``)."""
        return statistic_supports(self.statistic, kind)

    def _fit(self, references: list[ReferenceSet], *, public_base: PublicBase | None = None,
             shadows: list[ShadowModel], pool: ReferenceSet | None = None) -> "IdentityLiRAAttack":
        """Keep the shadow models; residual statistics also fit one surrogate per box on the known
        non-members in ``references`` that no shadow trained on (needs ``public_base``), the
        consistency gap one per box on the pool photos of people no shadow trained on.

        The threshold is 0 online (equal likelihoods) and 2 standard deviations above the OUT mean offline.

        Raises ``DataError`` with fewer than 2 shadows.
        """
        if len(shadows) < 2:
            raise DataError(f"IdentityLiRAAttack needs at least 2 shadow models, got {len(shadows)}")
        self.shadows_ = list(shadows)
        refs = common_nonmember_references(references, shadows) if public_base is not None else None
        self.stats_ = IdentityStatistics((self.statistic,), self.k, references=refs, public_base=public_base,
                                         ridge=self.ridge, pool=pool, pool_size=self.pool_size, seed=self.seed,
                                         exclude=shadow_identities(shadows))
        self.threshold_ = 0.0 if self.online else 2.0
        return self

    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None = None) -> MembershipScores:
        names, groups = target_groups(identity_ids, self.k)
        victim = self.stats_(box, images, groups)[:, 0]
        shadow = shadow_statistics(self.stats_, self.shadows_, images, groups)[:, :, 0]
        is_in = np.array([[n in s.members for n in names] for s in self.shadows_])
        scores = self._llr(victim, shadow, is_in)
        n_queries = len(np.concatenate(groups))
        return MembershipScores(scores, np.array(names), Level.IDENTITY, self.name, self.threshold_, n_queries)

    def _llr(self, victim: np.ndarray, shadow: np.ndarray, is_in: np.ndarray) -> np.ndarray:
        mu_out, sd_out = fit_in_out(shadow, ~is_in)
        if not self.online:
            return (victim - mu_out) / sd_out
        mu_in, sd_in = fit_in_out(shadow, is_in)
        return likelihood_ratio(victim, mu_in, sd_in, mu_out, sd_out)
