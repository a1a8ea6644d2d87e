"""Identity statistics of target people through any box (victim or shadow), for shadow-calibrated attacks.

Two families [reconstructed]:

- naive: ``IDENTITY_FEATURES`` of the box's outputs on k photos of the person (e.g. ``compactness``);
- diffing: ``residual_norm`` / ``residual_coherence`` of the box's centred log-posteriors against a
  ridge surrogate of *that box* fitted on the public base's embeddings of known non-members
  (``faceleaks.attacks.membership.diffing``). Every box gets its own surrogate, fitted on the same
  reference photos: people who are members of neither the victim nor any shadow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import Ridge

from faceleaks.attacks.base import PublicBase, ReferenceSet, ShadowModel, first_k_groups, stack_groups
from faceleaks.attacks.features import IDENTITY_FEATURES, NEEDS_K2, centered_log_posterior, identity_features
from faceleaks.attacks.membership.diffing import RAW_DIFF_STATISTICS, box_logits, residual_statistics
from faceleaks.errors import ConfigError, DataError, UnsupportedOutputError
from faceleaks.memo import image_keys
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["SHADOW_STATISTICS", "IdentityStatistics", "common_nonmember_references", "target_groups",
           "check_statistic", "statistic_min_k"]

SHADOW_STATISTICS = IDENTITY_FEATURES + RAW_DIFF_STATISTICS


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
    return 2 if name in NEEDS_K2 or name in RAW_DIFF_STATISTICS else 1


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
        diffing statistics; >= 10 identities with k photos), or None
    public_base : PublicBase (needed by diffing statistics), or None
    ridge : float, L2 penalty of each box's surrogate

    Raises
    ------
    ConfigError
        Unknown statistic, or k too small for it.
    DataError
        Diffing statistics without references / public base, or too few references.
    """

    def __init__(self, names: tuple[str, ...], k: int, *, references: ReferenceSet | None = None,
                 public_base: PublicBase | None = None, ridge: float = 1.0) -> None:
        for n in names:
            check_statistic(n, k)
        self.names, self.k, self.ridge = tuple(names), k, ridge
        self.naive = tuple(n for n in names if n in IDENTITY_FEATURES)
        self.diff = tuple(n for n in names if n in RAW_DIFF_STATISTICS)
        self._surrogates: dict[int, tuple[BlackBox, Ridge]] = {}
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
            self.public_base = public_base
            self._ref_e = self._embed(self._ref_images)

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

    def __call__(self, box: BlackBox, images: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
        """(n_groups, len(names)) float64; ``groups[i]`` indexes ``images`` rows of identity i (k each)."""
        idx, local = stack_groups(groups)
        cols: dict[str, np.ndarray] = {}
        result = box.query(images[idx])
        if self.naive:
            feats = identity_features(result, local, self.naive)
            cols.update({n: feats[:, j] for j, n in enumerate(self.naive)})
        if self.diff:
            if result.kind is not OutputKind.POSTERIOR:
                raise UnsupportedOutputError("diffing statistics need posterior outputs")
            z = centered_log_posterior(np.asarray(result.values, dtype=np.float64))
            raw = residual_statistics(self._surrogate(box), self._embed(images[idx]), z, local)
            cols.update({n: raw[:, RAW_DIFF_STATISTICS.index(n)] for n in self.diff})
        return np.stack([cols[n] for n in self.names], axis=1)


def target_groups(identity_ids: np.ndarray, k: int) -> tuple[list[str], list[np.ndarray]]:
    """Sorted identities and the indices of their first k photos; ``DataError`` if one has fewer."""
    return first_k_groups(identity_ids, k, strict=True)
