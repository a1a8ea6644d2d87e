"""Averaging attack: repeat each query, average the answers, then the consistency gap.

Adaptive attack against output noise (issue 14) [reconstructed]. Fresh noise on every answer
averages out: with ``n_repeats`` answers per photo its standard deviation falls by sqrt(n_repeats).
Noise that is the same for the same image (HMAC-seeded) does not, unless the repeats are
different images: ``variants = "jitter"`` (default) flips one low bit of one byte per repeat,
the same face to the model but a new image to the noise, and to any cache; ``"augment"`` uses
light augmentations (flip, shifts, brightness; they also move the model's answer); ``"same"``
sends identical copies (defeated by an answer cache or by per-image noise).
The averaged posteriors then go through the consistency gap of base-model diffing
(``diffing.BaseDiffAttack``, ``consistency``): the surrogate is fitted on averaged answers of the
reference pool and references, so the public-base prediction meets the same noise floor.

Query cost: every photo is sent ``n_repeats`` times (``MembershipScores.n_queries`` counts them).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from faceleaks.attacks.base import MembershipScores
from faceleaks.attacks.membership.augment import AUGMENTATIONS, with_variants
from faceleaks.attacks.membership.consistency import box_log_posteriors, precise_centered_log_posterior
from faceleaks.attacks.membership.diffing import BaseDiffAttack
from faceleaks.errors import ConfigError, UnsupportedOutputError
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["AveragingAttack", "VARIANTS"]

VARIANTS = ("jitter", "augment", "same")


class AveragingAttack(BaseDiffAttack):
    """The consistency gap on posteriors averaged over ``n_repeats`` queries of each photo.

    Parameters
    ----------
    k : int >= 2, photos per identity
    n_repeats : int >= 1, answers averaged per photo (1: plain base-model diffing)
    variants : {"jitter", "augment", "same"}, how the repeats differ (see the module docstring;
        ``augment`` allows at most 9 repeats)
    target_fpr : float, FPR (fraction) of the threshold on the reference identities
    pool_size : int >= 20 or None, pool photos of the surrogate (each costs ``n_repeats`` queries)
    seed : int, seed of that pool subsample
    floor : float >= 0 or None, probability units; averaged posteriors below it are raised to it
        before the log (an attacker who knows the noise scale floors near scale / n_repeats, where
        a clipped-to-zero average says nothing); None floors only at the smallest positive float

    Raises
    ------
    ConfigError
        k < 2, a bad ``n_repeats``, ``variants`` or ``pool_size``.
    """

    def __init__(self, *, k: int = 5, n_repeats: int = 4, variants: str = "jitter", target_fpr: float = 0.05,
                 pool_size: int | None = 300, seed: int = 0, floor: float | None = None) -> None:
        super().__init__(statistic="consistency_gap", k=k, target_fpr=target_fpr, pool_size=pool_size, seed=seed)
        self.n_repeats = n_repeats
        self.variants = variants
        self.floor = floor
        if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float)) or not floor >= 0):
            raise ConfigError(f"floor={floor!r} must be None or a number >= 0 (probability units)")
        if variants not in VARIANTS:
            raise ConfigError(f"unknown variants {variants!r}; choose one of {VARIANTS}")
        top = len(AUGMENTATIONS) + 1 if variants == "augment" else 10_000
        if not isinstance(n_repeats, int) or isinstance(n_repeats, bool) or not 1 <= n_repeats <= top:
            raise ConfigError(f"n_repeats={n_repeats!r} must be an integer in 1..{top} for variants {variants!r}")
        floor_tag = "" if floor is None else f"-floor{floor:.3g}"
        self.name = f"averaging-{variants}x{n_repeats}{floor_tag}-consistency_gap@k={k}"

    def supports(self, kind: OutputKind) -> bool:
        """Posteriors only (noisy or not): labels go to the label-only attack."""
        return kind is OutputKind.POSTERIOR

    def _log_posteriors(self, box: BlackBox, images: np.ndarray) -> np.ndarray:
        """(n, n_classes) float64 centred log of the posteriors averaged over the repeats."""
        if self.n_repeats == 1 and self.floor is None:
            return box_log_posteriors(box, images)
        if box.output_kind is not OutputKind.POSTERIOR:
            raise UnsupportedOutputError(f"averaging needs posterior outputs, the box returns {box.output_kind.value}")
        stacked = with_variants(np.asarray(images), self.variants, self.n_repeats - 1)
        r, n = stacked.shape[:2]
        values = np.asarray(box.query(stacked.reshape(r * n, *stacked.shape[2:])).values, dtype=np.float64)
        mean = values.reshape(r, n, -1).mean(axis=0)
        return precise_centered_log_posterior(mean if self.floor is None else np.maximum(mean, self.floor))

    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None = None) -> MembershipScores:
        scores = super()._score(box, images, identity_ids=identity_ids, image_ids=image_ids)
        return replace(scores, n_queries=scores.n_queries * self.n_repeats)
