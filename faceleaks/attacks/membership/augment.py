"""Attacker-side query variants of uint8 face crops: light augmentations and byte-level jitter.

Both are deterministic (no generator): the same photo always gives the same variants, whatever
order it is queried in, so scores do not depend on query order. [reconstructed: the augmentations
follow the label-only attacks of Choquette-Choo et al. 2021, arXiv 2007.14321, Sec. 4 (flips and
shifts), plus brightness.]

- ``augment(images, m)``: the first ``m`` of a fixed list (horizontal flip, shifts of about 2 % of
  the side up/down/left/right with edge replication, brightness x1.1 / x0.9, flip plus shift);
- ``jitter(images, r)``: the r-th repeat differs from the photo in one byte (its least significant
  bit flipped at a position that depends on r): the same face to any model, but a different image
  to a cache or to noise seeded by the image bytes.
"""

from __future__ import annotations

import numpy as np

from faceleaks.errors import ConfigError

__all__ = ["AUGMENTATIONS", "augment", "jitter", "with_variants"]


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(n, S, S, 3) uint8 shifted by (dy, dx) pixels, the vacated border filled with the edge pixels."""
    s = x.shape[1]
    rows = np.clip(np.arange(s) - dy, 0, s - 1)
    cols = np.clip(np.arange(s) - dx, 0, s - 1)
    return x[:, rows][:, :, cols]


def _bright(x: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.rint(x.astype(np.float32) * factor), 0, 255).astype(np.uint8)


def _step(x: np.ndarray) -> int:
    return max(1, int(round(0.02 * x.shape[1])))


AUGMENTATIONS = (
    ("flip", lambda x: x[:, :, ::-1]),
    ("shift-right", lambda x: _shift(x, 0, _step(x))),
    ("shift-down", lambda x: _shift(x, _step(x), 0)),
    ("shift-left", lambda x: _shift(x, 0, -_step(x))),
    ("shift-up", lambda x: _shift(x, -_step(x), 0)),
    ("brighter", lambda x: _bright(x, 1.1)),
    ("darker", lambda x: _bright(x, 0.9)),
    ("flip-shift", lambda x: _shift(x[:, :, ::-1], _step(x), _step(x))),
)


def augment(images: np.ndarray, m: int) -> list[np.ndarray]:
    """The first ``m`` augmentations of ``images`` (n, S, S, 3) uint8: a list of m such arrays.

    Raises
    ------
    ConfigError
        ``m`` outside 0..len(AUGMENTATIONS).
    """
    if not 0 <= m <= len(AUGMENTATIONS):
        raise ConfigError(f"n_augment={m} must be in 0..{len(AUGMENTATIONS)} (the fixed augmentations)")
    return [np.ascontiguousarray(fn(images)) for _, fn in AUGMENTATIONS[:m]]


def jitter(images: np.ndarray, r: int) -> np.ndarray:
    """``images`` (n, S, S, 3) uint8 with one byte's lowest bit flipped (repeat r >= 1; r = 0: a copy).

    Examples
    --------
    >>> x = np.zeros((1, 4, 4, 3), np.uint8)
    >>> int(np.abs(jitter(x, 3).astype(int) - x).sum()), bool((jitter(x, 0) == x).all())
    (1, True)
    """
    out = np.array(images, copy=True)
    if r:
        flat = out.reshape(len(out), -1)
        flat[:, (r * 7919) % flat.shape[1]] ^= 1
    return out


def with_variants(images: np.ndarray, variants: str, m: int) -> np.ndarray:
    """(m + 1, n, S, S, 3) uint8: the photos, then m variants of them (``augment`` / ``jitter`` / ``same``).

    Raises
    ------
    ConfigError
        An unknown ``variants`` or a bad ``m``.
    """
    if variants == "augment":
        extra = augment(images, m)
    elif variants == "jitter":
        extra = [jitter(images, r) for r in range(1, m + 1)]
    elif variants == "same":
        extra = [np.array(images, copy=True) for _ in range(m)]
    else:
        raise ConfigError(f"unknown query variants {variants!r}; choose augment, jitter or same")
    return np.stack([np.asarray(images), *extra])
