"""Base-model diffing: compare a victim student's outputs with what the public base predicts.

Beyond the paper [reconstructed]. The victim teacher is a public face model fine-tuned on the
members. From photos of people it knows are not members, the attacker fits a ridge map from the
public base's embeddings to the victim student's centred log-posteriors (the logits up to a
constant: a softmax undone). For a target person it computes the residuals of the victim's
outputs on k of their photos against that surrogate: fine-tuning moved the members' photos, so
their residuals are larger and point the same way. No shadow model is needed.

Statistics per identity (k photos):

- ``consistency_gap`` (the default; see ``consistency``): the box's compactness over the k photos
  minus the compactness the surrogate predicts, the surrogate fitted (ridge, alpha by leave-one-out
  CV, L2-normalised embeddings with intercept) on the attacker's **reference pool** (``pool``: many
  known non-members, a few photos each) plus the reference identities;
- diagnostics, with a ridge surrogate of fixed penalty ``ridge`` fitted on the reference identities
  only: ``residual_norm`` (mean L2 norm of the residuals), ``residual_coherence`` (mean pairwise
  cosine similarity of the residuals) and ``combined`` (the sum of both, each standardised by the
  references).

Scores are standardised by the statistics of held-out reference identities (5-fold cross-fitting,
so no reference is scored by a surrogate that saw it); the threshold is their ``1 - target_fpr``
quantile.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge

from faceleaks.attacks.base import (Level, MembershipAttack, MembershipScores, PublicBase, ReferenceSet, first_k_groups,
                                   stack_groups)
from faceleaks.attacks.features import centered_log_posterior, mean_pairwise_cosine
from faceleaks.attacks.membership.consistency import (GAP_STATISTICS, box_log_posteriors, check_pool_size,
                                                      fit_surrogate, gap_statistic, normalise_rows, pool_indices)
from faceleaks.errors import ConfigError, DataError, UnsupportedOutputError
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["BaseDiffAttack", "DIFF_STATISTICS", "RAW_DIFF_STATISTICS", "box_logits", "residual_statistics"]

DIFF_STATISTICS = GAP_STATISTICS + ("residual_norm", "residual_coherence", "combined")
_N_FOLDS = 5
RAW_DIFF_STATISTICS = ("residual_norm", "residual_coherence")


def box_logits(box: BlackBox, images: np.ndarray) -> np.ndarray:
    """(n, n_classes) float64 centred log-posteriors of ``box`` (its logits up to a constant per row).

    Raises ``UnsupportedOutputError`` unless the box returns posteriors.
    """
    if box.output_kind is not OutputKind.POSTERIOR:
        raise UnsupportedOutputError("base-model diffing needs posterior outputs")
    return centered_log_posterior(np.asarray(box.query(images).values, dtype=np.float64))


def residual_statistics(surrogate: Ridge, e: np.ndarray, z: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """(n_groups, 2) float64 [mean residual L2 norm, mean pairwise residual cosine] per identity.

    ``e`` (n, d) public-base embeddings, ``z`` (n, c) the box's centred log-posteriors of the same
    photos, ``groups[i]`` the rows of identity i (>= 2 rows each).
    """
    r = z - surrogate.predict(e)
    return np.array([[np.linalg.norm(r[g], axis=1).mean(), mean_pairwise_cosine(r[g])] for g in groups])


class BaseDiffAttack(MembershipAttack):
    """Identity-level membership from a box's outputs against a surrogate built on the public base.

    Parameters
    ----------
    statistic : {"consistency_gap", "fisher_gap", "residual_norm", "residual_coherence", "combined"}
        ``consistency_gap`` (default) and ``fisher_gap`` (its pairs Fisher-transformed,
        ``consistency.consistency_gaps``) need the reference pool (``fit(..., pool=...)``); the
        residual statistics are diagnostics and ignore the pool.
    k : int >= 2, photos per identity
    ridge : float, L2 penalty of the residual statistics' surrogate (``Ridge(alpha=ridge)``); the
        consistency gap chooses its own by cross-validation (``consistency.GAP_ALPHAS``)
    target_fpr : float, FPR (fraction) of the threshold on the reference identities
    pool_size : int >= 20 or None, photos of the pool the consistency gap's surrogate is fitted on
        (a seeded subsample; None: all)
    seed : int, seed of that subsample

    Raises
    ------
    ConfigError
        Unknown statistic, k < 2 or a bad ``pool_size``.
    """

    def __init__(self, *, statistic: str = "consistency_gap", k: int = 5, ridge: float = 1.0,
                 target_fpr: float = 0.05, pool_size: int | None = None, seed: int = 0) -> None:
        self.statistic = statistic
        self.k = k
        self.ridge = ridge
        self.target_fpr = target_fpr
        self.pool_size = pool_size
        self.seed = seed
        if statistic not in DIFF_STATISTICS:
            raise ConfigError(f"unknown statistic {statistic!r}; choose one of {DIFF_STATISTICS}")
        if k < 2:
            raise ConfigError(f"BaseDiffAttack needs k >= 2 photos per identity, got {k}")
        check_pool_size(pool_size)
        self.name = f"base-diff-{statistic}@k={k}"

    @property
    def needs(self) -> frozenset[str]:
        """References and the public base; the consistency gap also needs the reference pool."""
        return frozenset({"references", "public_base"} | ({"pool"} if self.statistic in GAP_STATISTICS else set()))

    @classmethod
    def for_setting(cls, params, *, level, k, output_kind):
        """``{..., k}`` at IDENTITY level with k >= 2; None otherwise."""
        return {**params, "k": k} if level is Level.IDENTITY and k >= 2 else None

    def supports(self, kind: OutputKind) -> bool:
        """Posteriors only: the surrogate maps to the box's full centred log-posteriors."""
        return kind is OutputKind.POSTERIOR

    def _fit(self, references: list[ReferenceSet], *, public_base: PublicBase | None = None,
             shadows=(), pool: ReferenceSet | None = None) -> "BaseDiffAttack":
        refs = [r for r in references if not np.any(r.is_member)]
        if not refs:
            raise DataError("BaseDiffAttack needs references of known non-members queried on the victim box")
        ref = refs[0]
        names, groups = first_k_groups(ref.identity_ids, self.k)
        if len(groups) < 10:
            raise DataError(f"BaseDiffAttack needs >= 10 reference identities with k={self.k} photos, got {len(groups)}")
        idx, local = stack_groups(groups)
        self.box_, self.public_base_ = ref.box, public_base
        if self.statistic in GAP_STATISTICS:
            null = self._fit_gap(ref, idx, local, set(names), pool)
        else:
            null = self._fit_residuals(ref, idx, local)
        self.mean_, self.std_ = null.mean(0), np.maximum(null.std(0), 1e-12)
        self.null_scores_ = self._combine(null)
        self.threshold_ = float(np.quantile(self.null_scores_, 1.0 - self.target_fpr))
        return self

    def _fit_residuals(self, ref: ReferenceSet, idx: np.ndarray, local: list[np.ndarray]) -> np.ndarray:
        """(n_ref, 2) cross-fitted residual statistics of the references; fits ``surrogate_``."""
        z = box_logits(ref.box, ref.images[idx])
        e = np.asarray(self.public_base_.embed(ref.images[idx]), dtype=np.float64)
        folds = np.arange(len(local)) % _N_FOLDS
        null = np.zeros((len(local), 2))
        for f in range(_N_FOLDS):
            train = np.concatenate([local[i] for i in np.flatnonzero(folds != f)])
            held = [local[i] for i in np.flatnonzero(folds == f)]
            sur = Ridge(alpha=self.ridge).fit(e[train], z[train])
            null[folds == f] = residual_statistics(sur, e, z, held)
        self.surrogate_ = Ridge(alpha=self.ridge).fit(e, z)
        self.n_queries_fit_ = len(idx)
        return null

    def _fit_gap(self, ref: ReferenceSet, idx: np.ndarray, local: list[np.ndarray], ref_names: set[str],
                 pool: ReferenceSet) -> np.ndarray:
        """(n_ref, 1) cross-fitted consistency gaps of the references; fits ``surrogate_`` on the
        pool (minus any reference identity) plus every reference photo."""
        if pool.box is not ref.box:
            raise DataError("BaseDiffAttack: the reference pool must be queried on the victim box (pool.box is not "
                            "the box of the known non-member references)")
        pidx = pool_indices(pool, pool_size=self.pool_size, seed=self.seed, exclude=ref_names)
        zp, ep = self._log_posteriors(pool.box, pool.images[pidx]), self._embed(pool.images[pidx])
        z, e = self._log_posteriors(ref.box, ref.images[idx]), self._embed(ref.images[idx])
        folds = np.arange(len(local)) % _N_FOLDS
        null = np.zeros((len(local), 1))
        for f in range(_N_FOLDS):
            train = np.concatenate([local[i] for i in np.flatnonzero(folds != f)])
            held = [local[i] for i in np.flatnonzero(folds == f)]
            sur = fit_surrogate(np.vstack([ep, e[train]]), np.vstack([zp, z[train]]))
            null[folds == f, 0] = gap_statistic(self.statistic, z, sur.predict(e), held)
        self.surrogate_ = fit_surrogate(np.vstack([ep, e]), np.vstack([zp, z]))
        self.n_queries_fit_ = len(idx) + len(pidx)
        return null

    def _log_posteriors(self, box: BlackBox, images: np.ndarray) -> np.ndarray:
        """(n, n_classes) float64 centred log-posteriors of ``box`` on ``images`` (a hook: the averaging
        attack queries repeats and averages them first)."""
        return box_log_posteriors(box, images)

    def _embed(self, images: np.ndarray) -> np.ndarray:
        return normalise_rows(self.public_base_.embed(images))

    def _combine(self, raw: np.ndarray) -> np.ndarray:
        zs = (raw - self.mean_) / self.std_
        if self.statistic in GAP_STATISTICS:
            return zs[:, 0]
        return {"residual_norm": zs[:, 0], "residual_coherence": zs[:, 1], "combined": zs.sum(1)}[self.statistic]

    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None = None) -> MembershipScores:
        if box is not self.box_:
            raise DataError("BaseDiffAttack scores the box its surrogate was fitted on")
        names, groups = first_k_groups(identity_ids, self.k, strict=True)
        idx, local = stack_groups(groups)
        if self.statistic in GAP_STATISTICS:
            z = self._log_posteriors(box, images[idx])
            raw = gap_statistic(self.statistic, z, self.surrogate_.predict(self._embed(images[idx])), local)[:, None]
        else:
            z = box_logits(box, images[idx])
            e = np.asarray(self.public_base_.embed(images[idx]), dtype=np.float64)
            raw = residual_statistics(self.surrogate_, e, z, local)
        scores = self._combine(raw)
        return MembershipScores(scores, np.array(names), Level.IDENTITY, self.name, self.threshold_, len(idx))
