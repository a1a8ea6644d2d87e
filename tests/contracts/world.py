"""A small crafted world for the contract checks: victim, references, shadows, public base, reference
pool, spies.

Faces are ``tests.fakes`` images; a box built with ``member_box(members, seed, kind)`` answers as a
student whose teacher trained on ``members`` (their photos come out tighter and more confident).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceleaks.attacks.base import PublicBase, ReferenceSet, ShadowModel
from faceleaks.attacks.features import centered_log_posterior
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.protocol import OutputKind
from tests.fakes import SIZE, fake_posteriors, make_images, population

ALLOWED = frozenset({"query", "output_kind", "input_size"})


def member_box(members: set[str], seed: int, kind: OutputKind) -> FunctionBlackBox:
    """A fake student of ``kind`` whose teacher's members are ``members`` (identity ids)."""

    def fn(images):
        x = images.copy()
        for n, im in enumerate(images):
            x[n, 0, 0, 1] = int(f"p{int(im[0, 1, 0])}_{int(im[0, 0, 0])}" in members)
        p = fake_posteriors(x, seed=seed)
        if kind is OutputKind.LABEL:
            return p.argmax(1).astype(np.int64)
        if kind is OutputKind.TOPK:
            p = np.where(p >= -np.sort(-p, axis=1)[:, 2:3], p, 0).astype(np.float32)
        return p

    return FunctionBlackBox(fn, kind=kind, input_size=SIZE)


class FakeBase(PublicBase):
    """The public base: what any student outputs for a person nobody trained on."""

    def embed(self, images):
        plain = images.copy()
        plain[:, 0, 0, 1] = 0
        return centered_log_posterior(fake_posteriors(plain, seed=0))


class SpyBox:
    """Forwards the BlackBox protocol and records the name of every attribute an attack reads."""

    def __init__(self, box) -> None:
        object.__setattr__(self, "_spied", box)
        object.__setattr__(self, "accessed", [])

    def __getattribute__(self, name):
        if not name.startswith("__") and name != "accessed":  # own methods read via object.__getattribute__
            object.__getattribute__(self, "accessed").append(name)
        return object.__getattribute__(self, name)

    @property
    def output_kind(self):
        return object.__getattribute__(self, "_spied").output_kind

    @property
    def input_size(self):
        return object.__getattribute__(self, "_spied").input_size

    def query(self, images):
        return object.__getattribute__(self, "_spied").query(images)


@dataclass
class World:
    """What an attack may receive, and the targets it scores (truth kept apart, for the test only)."""

    victim: object
    references: list[ReferenceSet]
    shadows: list[ShadowModel]
    public_base: PublicBase
    pool: ReferenceSet
    images: np.ndarray
    identity_ids: np.ndarray
    image_ids: np.ndarray
    truth: np.ndarray

    def resources(self, drop: str | None = None) -> dict:
        """Keyword arguments of ``fit``: every resource, or all but ``drop`` (given empty)."""
        out = {"references": self.references, "public_base": self.public_base, "shadows": self.shadows,
               "pool": self.pool}
        if drop:
            out[drop] = {"references": [], "public_base": None, "shadows": [], "pool": None}[drop]
        return out


def make_world(kind: OutputKind, wrap=lambda box: box) -> World:
    """The victim (20 members among 40 targets, 6 photos each), references, 6 shadows, a public base
    and a reference pool (120 known non-members, 2 photos each, queried on the victim).

    ``wrap`` is applied to every box (e.g. ``SpyBox``); the victim is wrapped once and the same
    object is both the victim reference box and the scored box.
    """
    images, idents, iids, truth = population(k=6)
    names = sorted(set(idents.tolist()))
    victim = wrap(member_box(set(names[:20]), 0, kind))
    ri, rid, _, _ = make_images(list(range(20)), [False] * 20, 6, offset=1)
    si, sid, _, st = population(15, 15, 6, offset=2)
    shadow_student = wrap(member_box({f"p2_{i}" for i in range(15)}, 1, kind))
    refs = [ReferenceSet(victim, ri, rid, np.zeros(len(ri), bool)), ReferenceSet(shadow_student, si, sid, st)]
    rng = np.random.default_rng(0)
    shadows = []
    for j in range(6):
        members = frozenset(n for n in names if rng.random() < 0.5)
        shadows.append(ShadowModel(wrap(member_box(set(members), 10 + j, kind)), members))
    pi, pid, _, _ = make_images(list(range(120)), [False] * 120, 2, offset=4)
    pool = ReferenceSet(victim, pi, pid, np.zeros(len(pi), bool))
    return World(victim, refs, shadows, FakeBase(), pool, images, idents, iids, truth)
