"""Seeded random generators; the library never seeds global state."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["make_rng", "derive_seed"]


def make_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """Return a NumPy generator for ``seed`` (an int, or a generator passed through unchanged)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(int(seed))


def derive_seed(seed: int, *labels: str) -> int:
    """A stable 31-bit seed derived from ``seed`` and string labels (e.g. ``"teacher"``).

    Independent stages get independent, reproducible streams without sharing one generator,
    so adding a stage never changes the randomness of another.
    """
    digest = hashlib.sha256(("/".join([str(int(seed)), *labels])).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
