"""Label-only identity attack: how consistently a box labels a person's photos and their augmentations.

Adaptive attack against output defences (issue 14) [reconstructed after Choquette-Choo et al.
2021, arXiv 2007.14321, Sec. 4, and Li & Zhang 2021, arXiv 2007.15528, moved to identity level].
A teacher fine-tuned on a person maps that person's photos close together, so the student gives
them, and light augmentations of them, the same label more often than it does for a stranger.
For a person's k photos plus ``n_augment`` augmented queries of each (``augment``: flips, small
shifts, brightness; made attacker-side on the uint8 crops), the statistic is

- ``agreement``: the fraction of the k * (1 + n_augment) queries whose top-1 label equals the
  person's modal label (any output: posterior, top-k, rounded posteriors or labels only);
- ``margin``: the mean over those queries of p[modal label] - max over other labels of p (top-k
  and rounded posteriors included; the zeros of a top-k row count as such).

Calibration as for the other shadow-free attacks: the statistic of known non-member reference
identities queried on the victim box gives the mean and standard deviation that standardise every
score, and the threshold is the standardised references' ``1 - target_fpr`` quantile.
"""

from __future__ import annotations

import numpy as np

from faceleaks.attacks.base import (Level, MembershipAttack, MembershipScores, PublicBase, ReferenceSet, first_k_groups,
                                   stack_groups)
from faceleaks.attacks.membership.augment import AUGMENTATIONS, with_variants
from faceleaks.errors import ConfigError, DataError
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["LabelOnlyAttack", "LABEL_ONLY_STATISTICS", "agreement_and_margin"]

LABEL_ONLY_STATISTICS = ("agreement", "margin")


def agreement_and_margin(values: np.ndarray, kind: OutputKind, groups: list[np.ndarray]) -> np.ndarray:
    """(n_groups, 2) float64: [label agreement, mean margin of the modal label] per group of rows.

    Parameters
    ----------
    values : ndarray (n,) int64 labels (LABEL) or (n, n_classes) float scores (other kinds)
    kind : OutputKind of ``values``
    groups : list of int index arrays, the rows of each identity (queries and their variants)

    Returns
    -------
    ndarray (n_groups, 2) float64; the margin column is NaN for labels.

    Examples
    --------
    >>> p = np.array([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])
    >>> agreement_and_margin(p, OutputKind.POSTERIOR, [np.array([0, 1, 2])]).round(3).tolist()
    [[0.667, 0.1]]
    """
    labels = values if kind is OutputKind.LABEL else np.asarray(values).argmax(axis=1)
    out = np.full((len(groups), 2), np.nan)
    for i, g in enumerate(groups):
        ids, counts = np.unique(labels[g], return_counts=True)
        modal = ids[counts.argmax()]
        out[i, 0] = counts.max() / len(g)
        if kind is not OutputKind.LABEL:
            p = np.asarray(values[g], dtype=np.float64)
            others = np.delete(p, modal, axis=1).max(axis=1) if p.shape[1] > 1 else np.zeros(len(p))
            out[i, 1] = float((p[:, modal] - others).mean())
    return out


class LabelOnlyAttack(MembershipAttack):
    """Identity-level membership from label agreement (or margins) over a person's augmented photos.

    Parameters
    ----------
    statistic : {"agreement", "margin"}; ``margin`` needs scores (posterior or top-k outputs)
    k : int >= 1, photos per identity
    n_augment : int in 0..8, augmented queries per photo (``augment.AUGMENTATIONS``, in order)
    target_fpr : float in (0, 1), FPR (fraction) of the threshold on the reference identities

    Raises
    ------
    ConfigError
        Unknown statistic, k < 1, a bad ``n_augment`` or ``target_fpr``.
    """

    def __init__(self, *, statistic: str = "agreement", k: int = 5, n_augment: int = 4,
                 target_fpr: float = 0.05) -> None:
        self.statistic = statistic
        self.k = k
        self.n_augment = n_augment
        self.target_fpr = target_fpr
        if statistic not in LABEL_ONLY_STATISTICS:
            raise ConfigError(f"unknown statistic {statistic!r}; choose one of {LABEL_ONLY_STATISTICS}")
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"LabelOnlyAttack needs k >= 1 photos per identity, got {k!r}")
        if not isinstance(n_augment, int) or not 0 <= n_augment <= len(AUGMENTATIONS):
            raise ConfigError(f"n_augment={n_augment!r} must be an integer in 0..{len(AUGMENTATIONS)}")
        if k == 1 and n_augment == 0:
            raise ConfigError("LabelOnlyAttack with k=1 needs n_augment >= 1 (one label agrees with itself)")
        if not 0.0 < target_fpr < 1.0:
            raise ConfigError(f"target_fpr must be a fraction in (0, 1), got {target_fpr!r}")
        self.name = f"label-only-{statistic}@k={k}"

    needs = frozenset({"references"})

    @classmethod
    def for_setting(cls, params, *, level, k, output_kind):
        """``{..., k}`` at IDENTITY level (k = 1 only with augmentations); None otherwise."""
        if level is not Level.IDENTITY or (k == 1 and params.get("n_augment", 4) == 0):
            return None
        return {**params, "k": k}

    def supports(self, kind: OutputKind) -> bool:
        """Agreement: every output kind; margin: posterior and top-k scores only."""
        return self.statistic == "agreement" or kind is not OutputKind.LABEL

    def _statistic(self, box: BlackBox, images: np.ndarray, local: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """(n_groups,) raw statistic of each group of ``images`` through ``box``, and queries sent."""
        variants = with_variants(images, "augment", self.n_augment)  # (1 + m, n, S, S, 3)
        m1, n = variants.shape[:2]
        result = box.query(variants.reshape(m1 * n, *variants.shape[2:]))
        rows = [np.concatenate([g + j * n for j in range(m1)]) for g in local]
        column = 0 if self.statistic == "agreement" else 1
        return agreement_and_margin(result.values, result.kind, rows)[:, column], m1 * n

    def _fit(self, references: list[ReferenceSet], *, public_base: PublicBase | None = None, shadows=(),
             pool: ReferenceSet | None = None) -> "LabelOnlyAttack":
        refs = [r for r in references if not np.any(r.is_member)]
        if not refs:
            raise DataError("LabelOnlyAttack needs references of known non-members queried on the victim box")
        _, groups = first_k_groups(refs[0].identity_ids, self.k)
        if len(groups) < 5:
            raise DataError(f"LabelOnlyAttack needs >= 5 reference identities with k={self.k} photos, got {len(groups)}")
        idx, local = stack_groups(groups)
        null, self.n_queries_fit_ = self._statistic(refs[0].box, np.asarray(refs[0].images)[idx], local)
        self.mean_, self.std_ = float(null.mean()), float(max(null.std(), 1e-12))
        self.threshold_ = float(np.quantile((null - self.mean_) / self.std_, 1.0 - self.target_fpr))
        return self

    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None = None) -> MembershipScores:
        names, groups = first_k_groups(identity_ids, self.k, strict=True)
        idx, local = stack_groups(groups)
        raw, n_queries = self._statistic(box, np.asarray(images)[idx], local)
        scores = (raw - self.mean_) / self.std_
        return MembershipScores(scores, np.array(names), Level.IDENTITY, self.name, self.threshold_, n_queries)
