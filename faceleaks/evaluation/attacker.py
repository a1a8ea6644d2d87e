"""What the attacker holds: reference identities (known non-members of the victim teacher), its
own shadow split of them, and the sets of photos it queries. Built from the ``reference`` role of
the split only: the attacker never sees member or non-member lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceleaks.attacks.base import PublicBase, ReferenceSet
from faceleaks.data.splits import MembershipSplit, n_train_photos
from faceleaks.seeding import derive_seed, make_rng
from faceleaks.serving.protocol import BlackBox

__all__ = ["AttackerData", "make_attacker_data", "SETTINGS", "PhotoSource", "TeacherPublicBase"]

SETTINGS = ("training-photos", "unseen-photos")


@dataclass(frozen=True)
class AttackerData:
    """``photos``: reference identity -> its photo ids (shuffled). ``shadow_in`` identities train the
    shadow teacher on ``shadow_train`` photos; the rest of the references are shadow non-members.
    ``pool``: photo ids of the reference pool (many people with 1-2 photos, none a member of anything
    the attacker audits), for the base-model surrogate; empty when the split has none."""

    photos: dict[str, list[str]]
    shadow_in: list[str]
    shadow_train: dict[str, list[str]]
    pool: tuple[str, ...] = ()

    def shadow_heldout(self, identity: str) -> list[str]:
        used = set(self.shadow_train[identity])
        return [i for i in self.photos[identity] if i not in used]

    def shadow_out(self) -> list[str]:
        return sorted(set(self.photos) - set(self.shadow_in))


def make_attacker_data(split: MembershipSplit, *, train_fraction: float, seed: int,
                       photos: str = "half") -> AttackerData:
    """The attacker's seeded choice: half its reference identities go into its shadow teacher.

    ``photos``: the victim recipe's training photos (``half``: ``n_train_photos`` of each shadow
    identity, as the victim's members; ``all``: every photo), so the shadow follows the recipe.
    """
    rng = make_rng(derive_seed(seed, "attacker"))
    refs = sorted(split.identities("reference"))
    by_person = {r: [split.photos[r][i] for i in rng.permutation(len(split.photos[r]))] for r in refs}
    shadow_in = sorted(refs[i] for i in rng.permutation(len(refs))[: len(refs) // 2])
    n_train = (lambda n: n) if photos == "all" else (lambda n: n_train_photos(n, train_fraction))
    train = {r: by_person[r][: n_train(len(by_person[r]))] for r in shadow_in}
    return AttackerData(by_person, shadow_in, train, tuple(split.reference_pool))


class PhotoSource:
    """Turns photo-id lists into stacked arrays via a ``lookup(ids) -> FaceSet`` function."""

    def __init__(self, lookup) -> None:
        self.lookup = lookup

    def stack(self, by_identity: dict[str, list[str]]):
        """(images (n, S, S, 3) uint8, identity_ids (n,), image_ids (n,)) in the given order."""
        ids = [i for p in by_identity for i in by_identity[p]]
        faces = self.lookup(ids)
        return faces.images, faces.identities, faces.image_ids

    def reference_set(self, box: BlackBox, members: dict[str, list[str]], nonmembers: dict[str, list[str]]) -> ReferenceSet:
        images, idents, _ = self.stack({**members, **nonmembers})
        is_member = np.isin(idents, list(members))
        return ReferenceSet(box, images, idents, is_member)


class TeacherPublicBase(PublicBase):
    """The public base model as the attacker's resource: ``embed`` = that model's unit-norm embedding."""

    def __init__(self, teacher) -> None:
        self._teacher = teacher

    def embed(self, images: np.ndarray) -> np.ndarray:
        return self._teacher.embed(images)
