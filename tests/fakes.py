"""Crafted populations and fake black boxes: attacks are tested without training anything.

Each fake image encodes (identity index, is_member, photo index) in its first pixel; the fake
student maps it to a posterior whose logits are a per-identity centre plus per-photo noise.
Members' photos are tighter around their centre and more confident, as an overfit teacher's are.
"""

from __future__ import annotations

import numpy as np

from faceleaks.attacks.base import ReferenceSet
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.protocol import OutputKind

SIZE = 8
N_CLASSES = 6


def make_images(identities: list[int], is_member: list[bool], k: int, offset: int = 0):
    """(n, 8, 8, 3) uint8 images, identity ids (n,) str, image ids (n,) str, per-photo truth (n,)."""
    imgs, idents, iids, truth = [], [], [], []
    for ident, mem in zip(identities, is_member):
        for j in range(k):
            im = np.zeros((SIZE, SIZE, 3), np.uint8)
            im[0, 0] = (ident, int(mem), j)
            im[0, 1, 0] = offset
            imgs.append(im)
            idents.append(f"p{offset}_{ident}")
            iids.append(f"p{offset}_{ident}_{j:04d}")
            truth.append(mem)
    return np.stack(imgs), np.array(idents), np.array(iids), np.array(truth)


def fake_posteriors(images: np.ndarray, *, seed: int = 0, gap: float = 1.0) -> np.ndarray:
    out = np.zeros((len(images), N_CLASSES), np.float32)
    for n, im in enumerate(images):
        ident, mem, j = (int(v) for v in im[0, 0])
        off = int(im[0, 1, 0])
        centre = np.random.default_rng([seed, off, ident]).normal(0, 1, N_CLASSES)
        noise = np.random.default_rng([seed, off, ident, j, 7]).normal(0, 1, N_CLASSES)
        sd = 1.0 - 0.6 * gap * mem
        z = (1.0 + 1.5 * gap * mem) * 0.6 * centre + sd * 0.6 * noise
        p = np.exp(z - z.max())
        out[n] = p / p.sum()
    return out


def fake_box(seed: int = 0, gap: float = 1.0, kind: OutputKind = OutputKind.POSTERIOR):
    def fn(images):
        p = fake_posteriors(images, seed=seed, gap=gap)
        return p.argmax(1).astype(np.int64) if kind is OutputKind.LABEL else p

    return FunctionBlackBox(fn, kind=kind, input_size=SIZE)


def population(n_members=20, n_non=20, k=6, offset=0):
    ids = list(range(n_members + n_non))
    return make_images(ids, [i < n_members for i in ids], k, offset)


def references(victim, shadow, k=6):
    """A victim-null reference set (known non-members) and a shadow set with members."""
    ri, rid, _, _ = make_images(list(range(20)), [False] * 20, k, offset=1)
    si, sid, _, st = population(15, 15, k, offset=2)
    return [ReferenceSet(victim, ri, rid, np.zeros(len(ri), bool)), ReferenceSet(shadow, si, sid, st)]


class SpyBox:
    """Exposes only the BlackBox interface and records every query."""

    def __init__(self, box):
        self._box = box
        self.calls = []

    @property
    def output_kind(self):
        return self._box.output_kind

    @property
    def input_size(self):
        return self._box.input_size

    def query(self, images):
        self.calls.append(len(images))
        return self._box.query(images)
