"""Identity statistics of target people through any box (victim or shadow), for shadow-calibrated attacks.

Three families [reconstructed]:

- naive: ``IDENTITY_FEATURES`` of the box's outputs on k photos of the person (e.g. ``compactness``);
- ``consistency_gap`` / ``fisher_gap`` (``consistency``): the box's compactness minus the compactness
  predicted by a surrogate of *that box* (``fisher_gap``: pair by pair, on Fisher-transformed cosines) (ridge, alpha by leave-one-out CV) fitted on the public base's
  L2-normalised embeddings of the attacker's reference pool. Every box gets its own surrogate,
  fitted on the same pool photos (a seeded subsample of ``pool_size``, minus any shadow's
  identities), cached once per box;
- diagnostics: ``residual_norm`` / ``residual_coherence`` of the box's centred log-posteriors
  against a fixed-penalty ridge surrogate of that box fitted on the public base's embeddings of
  known non-member references (``faceleaks.attacks.membership.diffing``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import Ridge

from faceleaks.attacks.base import PublicBase, ReferenceSet, ShadowModel, first_k_groups, stack_groups
from faceleaks.attacks.features import IDENTITY_FEATURES, NEEDS_K2, centered_log_posterior, identity_features
from faceleaks.attacks.membership.consistency import (GAP_STATISTICS, check_pool_size, fit_surrogate, gap_statistic,
                                                      normalise_rows, pool_indices, precise_centered_log_posterior)
from faceleaks.attacks.membership.diffing import RAW_DIFF_STATISTICS, box_logits, residual_statistics
from faceleaks.errors import ConfigError, DataError, UnsupportedOutputError
from faceleaks.memo import image_keys
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["SHADOW_STATISTICS", "POOL_STATISTICS", "IdentityStatistics", "common_nonmember_references",
           "target_groups", "check_statistic", "statistic_min_k", "shadow_identities"]

SHADOW_STATISTICS = IDENTITY_FEATURES + RAW_DIFF_STATISTICS + GAP_STATISTICS
POOL_STATISTICS = GAP_STATISTICS
"""Statistics that need the public base and the reference pool."""


def shadow_identities(shadows: Sequence[ShadowModel]) -> frozenset[str]:
    """Every identity any shadow teacher trained on."""
    return frozenset().union(*(s.members for s in shadows)) if shadows else frozenset()


def common_nonmember_references(references: Sequence[ReferenceSet], shadows: Sequence[ShadowModel]) -> ReferenceSet | None:
    """The known non-members of the victim (a reference set with no member) that no shadow trained on."""
    refs = [r for r in references if not np.any(r.is_member)]
    if not refs:
        return None
    ref = refs[0]
    used = set().union(*(s.members for s in shadows)) if shadows else set()
    keep = ~np.isin(ref.identity_ids.astype(str), sorted(used))
    return ReferenceSet(ref.box, ref.images[keep], ref.identity_ids[keep], ref.is_member[keep])


def statistic_min_k(name: str) -> int:
    """Fewest photos per identity ``name`` is defined for (1 or 2); ``ConfigError`` for an unknown name."""
    if name not in SHADOW_STATISTICS:
        raise ConfigError(f"unknown identity statistic {name!r}; known: {SHADOW_STATISTICS}")
    return 2 if name in NEEDS_K2 or name in RAW_DIFF_STATISTICS or name in GAP_STATISTICS else 1


def check_statistic(name: str, k: int) -> None:
    """``ConfigError`` unless ``name`` is in ``SHADOW_STATISTICS`` and defined for k photos."""
    if k < statistic_min_k(name):
        raise ConfigError(f"k={k} is not valid for {name!r} (needs k >= 2)")


class IdentityStatistics:
    """Computes ``names`` for groups of k photos through any box.

    Parameters
    ----------
    names : tuple of str, each in ``SHADOW_STATISTICS``
    k : int, photos per identity
    references : ReferenceSet of people known to be non-members of every box scored (needed by
        the residual statistics; >= 10 identities with k photos), or None
    public_base : PublicBase (needed by residual statistics and the consistency gap), or None
    ridge : float, L2 penalty of each box's residual surrogate
    pool : ReferenceSet, the attacker's reference pool (needed by the consistency gap), or None
    pool_size : int >= 20 or None, pool photos each box's consistency-gap surrogate is fitted on
        (seeded subsample; None: all)
    seed : int, seed of that subsample
    exclude : set of str, identities left out of the pool (e.g. every shadow's members)

    Raises
    ------
    ConfigError
        Unknown statistic, k too small for it, or a bad ``pool_size``.
    DataError
        Residual statistics without references / public base, too few references, or the
        consistency gap without the pool / public base, or too small a pool.
    """

    def __init__(self, names: tuple[str, ...], k: int, *, references: ReferenceSet | None = None,
                 public_base: PublicBase | None = None, ridge: float = 1.0, pool: ReferenceSet | None = None,
                 pool_size: int | None = None, seed: int = 0, exclude: frozenset[str] = frozenset()) -> None:
        for n in names:
            check_statistic(n, k)
        check_pool_size(pool_size)
        self.names, self.k, self.ridge = tuple(names), k, ridge
        self.naive = tuple(n for n in names if n in IDENTITY_FEATURES)
        self.diff = tuple(n for n in names if n in RAW_DIFF_STATISTICS)
        self.gap = tuple(n for n in names if n in GAP_STATISTICS)
        self.public_base = public_base
        self._surrogates: dict[int, tuple[BlackBox, Ridge]] = {}
        self._gap_surrogates: dict[int, tuple[BlackBox, object]] = {}
        self._base_cache: dict[bytes, np.ndarray] = {}
        if self.diff:
            if public_base is None or references is None:
                raise DataError(f"statistics {self.diff} need the public base model and known non-member references")
            _, groups = first_k_groups(references.identity_ids, k)
            if len(groups) < 10:
                raise DataError(f"diffing statistics need >= 10 reference identities with k={k} photos that are "
                                f"members of no shadow, got {len(groups)}")
            idx = np.concatenate(groups)
            self._ref_images = references.images[idx]
            self._ref_e = self._embed(self._ref_images)
        if self.gap:
            if public_base is None or pool is None:
                raise DataError(f"statistic {self.gap[0]!r} needs the public base model and the reference pool "
                                f"(pool=ReferenceSet of many known non-members)")
            pidx = pool_indices(pool, pool_size=pool_size, seed=seed, exclude=exclude)
            self._pool_images = pool.images[pidx]
            self._pool_e = normalise_rows(self._embed(self._pool_images))

    def _embed(self, images: np.ndarray) -> np.ndarray:
        key = b"".join(image_keys(images))
        if key not in self._base_cache:
            self._base_cache[key] = np.asarray(self.public_base.embed(images), dtype=np.float64)
        return self._base_cache[key]

    def _surrogate(self, box: BlackBox) -> Ridge:
        held = self._surrogates.get(id(box))
        if held is None or held[0] is not box:  # keep the box: its id cannot be reused meanwhile
            held = (box, Ridge(alpha=self.ridge).fit(self._ref_e, box_logits(box, self._ref_images)))
            self._surrogates[id(box)] = held
        return held[1]

    def gap_surrogate(self, box: BlackBox):
        """The consistency-gap surrogate of ``box`` (a fitted ``RidgeCV``), fitted on its first use.

        Queries ``box`` once with the pool photos; ``UnsupportedOutputError`` unless it returns posteriors.
        """
        held = self._gap_surrogates.get(id(box))
        if held is None or held[0] is not box:
            if box.output_kind is not OutputKind.POSTERIOR:
                raise UnsupportedOutputError(f"the consistency gap needs posterior outputs, the box returns "
                                             f"{box.output_kind.value}")
            z = precise_centered_log_posterior(box.query(self._pool_images).values)
            held = (box, fit_surrogate(self._pool_e, z))
            self._gap_surrogates[id(box)] = held
        return held[1]

    def __call__(self, box: BlackBox, images: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
        """(n_groups, len(names)) float64; ``groups[i]`` indexes ``images`` rows of identity i (k each)."""
        idx, local = stack_groups(groups)
        cols: dict[str, np.ndarray] = {}
        result = box.query(images[idx])
        if self.naive:
            feats = identity_features(result, local, self.naive)
            cols.update({n: feats[:, j] for j, n in enumerate(self.naive)})
        if (self.diff or self.gap) and result.kind is not OutputKind.POSTERIOR:
            raise UnsupportedOutputError(f"statistics {self.diff + self.gap} need posterior outputs, the box "
                                         f"returns {result.kind.value}")
        if self.diff:
            z = centered_log_posterior(np.asarray(result.values, dtype=np.float64))
            raw = residual_statistics(self._surrogate(box), self._embed(images[idx]), z, local)
            cols.update({n: raw[:, RAW_DIFF_STATISTICS.index(n)] for n in self.diff})
        if self.gap:
            z = precise_centered_log_posterior(result.values)
            z_hat = self.gap_surrogate(box).predict(normalise_rows(self._embed(images[idx])))
            cols.update({n: gap_statistic(n, z, z_hat, local) for n in self.gap})
        return np.stack([cols[n] for n in self.names], axis=1)


def target_groups(identity_ids: np.ndarray, k: int) -> tuple[list[str], list[np.ndarray]]:
    """Sorted identities and the indices of their first k photos; ``DataError`` if one has fewer."""
    return first_k_groups(identity_ids, k, strict=True)
