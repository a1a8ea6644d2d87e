"""A combination of identity statistics, learned on shadow data only [reconstructed; beyond the paper].

For every target person and every statistic (naive, consistency gap and diffing diagnostics), the
per-person LiRA features are
computed as in ``lira``: the online log-likelihood ratio and the offline OUT z-score. A logistic
regression (scikit-learn, standardised inputs) learns how to weigh them from the shadows alone:
each shadow in turn plays the victim, its features computed against the *other* shadows
(leave-one-shadow-out), labelled by whether the person was IN that shadow (the attacker's own coin
flip). The victim is then scored with features against all shadows. No victim membership label
is ever used.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from faceleaks.attacks.base import Level, MembershipAttack, MembershipScores, PublicBase, ReferenceSet, ShadowModel
from faceleaks.attacks.features import IDENTITY_FEATURES
from faceleaks.attacks.membership.consistency import check_pool_size
from faceleaks.attacks.membership.identity_stats import (POOL_STATISTICS, IdentityStatistics, check_statistic,
                                                         common_nonmember_references, shadow_identities,
                                                         statistic_min_k, target_groups)
from faceleaks.attacks.membership.lira import (DEFAULT_POOL_SIZE, fit_in_out, likelihood_ratio, shadow_statistics,
                                               statistic_supports)
from faceleaks.errors import DataError
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["ShadowCombinationAttack", "DEFAULT_COMBINED"]

DEFAULT_COMBINED = ("compactness", "mean_max_posterior", "label_agreement", "consistency_gap")


def _lira_features(x: np.ndarray, shadow: np.ndarray, is_in: np.ndarray) -> np.ndarray:
    """(n, 2 F): online LLR and offline OUT z-score of each statistic; x (n, F), shadow (S, n, F)."""
    mu_out, sd_out = fit_in_out(shadow, ~is_in)
    mu_in, sd_in = fit_in_out(shadow, is_in)
    z_out = (x - mu_out) / sd_out
    return np.concatenate([likelihood_ratio(x, mu_in, sd_in, mu_out, sd_out), z_out], axis=1)


class ShadowCombinationAttack(MembershipAttack):
    """Logistic regression over per-person LiRA features of several statistics, trained on shadows.

    Parameters
    ----------
    statistics : tuple of str, from ``identity_stats.SHADOW_STATISTICS``; diffing ones are dropped
        (with the rest kept) when ``fit`` gets no public base, ``consistency_gap`` also when it
        gets no reference pool
    k : int >= 2, photos per identity
    C : float, inverse L2 strength of the logistic regression
    ridge : float, L2 penalty of the residual surrogates
    pool_size : int >= 20 or None, reference-pool photos each box's consistency-gap surrogate is
        fitted on (seeded subsample; None: all)
    seed : int, seed of that subsample

    Raises
    ------
    ConfigError
        Unknown statistic, k too small for one, or a bad ``pool_size``.
    """

    needs = frozenset({"shadows"})

    def __init__(self, *, statistics: tuple[str, ...] = DEFAULT_COMBINED, k: int = 5, C: float = 1.0,
                 ridge: float = 1.0, pool_size: int | None = DEFAULT_POOL_SIZE, seed: int = 0) -> None:
        self.statistics, self.k, self.C, self.ridge = tuple(statistics), k, C, ridge
        self.pool_size, self.seed = pool_size, seed
        for s in self.statistics:
            check_statistic(s, k)
        check_pool_size(pool_size)
        self.name = f"shadow-combination@k={k}"

    @classmethod
    def for_setting(cls, params, *, level, k, output_kind):
        """``{..., k}`` at IDENTITY level when every statistic is defined for k photos; None otherwise."""
        if level is not Level.IDENTITY or k < max(map(statistic_min_k, params.get("statistics", DEFAULT_COMBINED))):
            return None
        return {**params, "k": k}

    def supports(self, kind: OutputKind) -> bool:
        """Only kinds on which every configured statistic is defined (diffing ones: posteriors)."""
        return all(statistic_supports(s, kind) for s in self.statistics)

    def _fit(self, references: list[ReferenceSet], *, public_base: PublicBase | None = None,
             shadows: list[ShadowModel], pool: ReferenceSet | None = None) -> "ShadowCombinationAttack":
        """Keep the shadows (>= 3: one is left out in turn); the weights are learned in ``score``,
        once the target people are known, from their statistics on the shadows only.

        Diffing statistics are dropped (the rest kept) without a public base, the consistency gap
        without a public base or a reference pool. Raises ``DataError`` with fewer than 3 shadows.
        """
        if len(shadows) < 3:
            raise DataError(f"ShadowCombinationAttack needs at least 3 shadow models, got {len(shadows)}")
        names = tuple(s for s in self.statistics if s in IDENTITY_FEATURES or (
            public_base is not None and (s not in POOL_STATISTICS or pool is not None)))
        if not names:
            raise DataError("ShadowCombinationAttack: every statistic asked for needs the public base model "
                            "(and the consistency gap the reference pool)")
        self.shadows_ = list(shadows)
        refs = common_nonmember_references(references, shadows) if public_base is not None else None
        self.stats_ = IdentityStatistics(names, self.k, references=refs, public_base=public_base, ridge=self.ridge,
                                         pool=pool, pool_size=self.pool_size, seed=self.seed,
                                         exclude=shadow_identities(shadows))
        self.threshold_ = 0.0
        return self

    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None = None) -> MembershipScores:
        names, groups = target_groups(identity_ids, self.k)
        shadow = shadow_statistics(self.stats_, self.shadows_, images, groups)  # (S, n, F)
        is_in = np.array([[n in s.members for n in names] for s in self.shadows_])
        rows, labels = [], []
        for j in range(len(self.shadows_)):
            rest = np.arange(len(self.shadows_)) != j
            rows.append(_lira_features(shadow[j], shadow[rest], is_in[rest]))
            labels.append(is_in[j])
        y = np.concatenate(labels)
        if y.all() or not y.any():
            raise DataError("the shadows hold no IN/OUT mix of the targets to learn from")
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=1000))
        clf.fit(np.concatenate(rows), y)
        self.classifier_ = clf
        victim = self.stats_(box, images, groups)
        scores = clf.decision_function(_lira_features(victim, shadow, is_in))
        n_queries = len(np.concatenate(groups))
        return MembershipScores(scores, np.array(names), Level.IDENTITY, self.name, self.threshold_, n_queries)
