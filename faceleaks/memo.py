"""One content-addressed memo of per-image results (the one image-hash cache of the package).

A model's answer for an image, an embedding or a network activation depends only on the image's
pixels, so each distinct image is computed once: keys are SHA-1 digests of the image bytes.
Used by the attacker's answer cache (``serving.wrappers.CachingBlackBox``), the teachers'
embedding memo and the dlib activation store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["ImageMemo", "image_keys"]


def image_keys(images: np.ndarray) -> list[bytes]:
    """SHA-1 digest (20 bytes) of each image's bytes, in input order.

    Parameters
    ----------
    images : ndarray (n, ...) of any dtype; row i is hashed as C-contiguous bytes

    Returns
    -------
    list of n ``bytes``; equal images give equal keys.
    """
    return [hashlib.sha1(np.ascontiguousarray(im).tobytes()).digest() for im in images]


class ImageMemo:
    """Per-image results keyed by content; missing images are computed once, in first-seen order.

    Examples
    --------
    >>> memo = ImageMemo()
    >>> calls = []
    >>> f = lambda x: (calls.append(len(x)), x.sum(axis=(1, 2)).astype(float))[1]
    >>> imgs = np.array([[[1, 2]], [[3, 4]], [[1, 2]]], dtype=np.uint8)
    >>> memo.get(imgs, f).tolist(), calls
    ([3.0, 7.0, 3.0], [2])
    >>> memo.get(imgs[:1], f).tolist(), calls
    ([3.0], [2])
    """

    def __init__(self) -> None:
        self._store: dict[bytes, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: bytes) -> bool:
        return key in self._store

    def update(self, keys: Iterable[bytes], values: Iterable[np.ndarray]) -> None:
        """Store ``values[i]`` under ``keys[i]`` (e.g. results read back from a disk cache)."""
        self._store.update(zip(keys, values))

    def missing(self, keys: list[bytes]) -> list[int]:
        """Indices of the first occurrence of each key not yet stored, ascending."""
        first: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in self._store and k not in first:
                first[k] = i
        return list(first.values())

    def get(self, images: np.ndarray, compute: Callable[[np.ndarray], np.ndarray], *,
            keys: list[bytes] | None = None, empty_shape: tuple[int, ...] = (0,)) -> np.ndarray:
        """Results for ``images`` (n, ...), calling ``compute`` once on the distinct unseen ones.

        Parameters
        ----------
        images : ndarray (n, ...)
        compute : callable mapping an (m, ...) array of distinct images to (m, ...) results
        keys : the images' keys if already computed (``image_keys(images)``)
        empty_shape : shape returned when ``images`` is empty

        Returns
        -------
        ndarray (n, ...): row i is the result for image i.
        """
        keys = image_keys(images) if keys is None else keys
        todo = self.missing(keys)
        if todo:
            results = compute(np.asarray(images)[todo])
            self._store.update((keys[i], r) for i, r in zip(todo, results))
        if not keys:
            return np.zeros(empty_shape)
        return np.stack([self._store[k] for k in keys])
