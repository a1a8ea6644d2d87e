"""Identity-disjoint splits: the ground truth of who is a member, written as a JSON manifest.

Roles of LFW identities (each identity has exactly one):

- ``member``: the teacher was trained on ``member_train`` photos of them; the other photos are
  held out ("unseen photos of members").
- ``nonmember``: never seen by the teacher; evaluated against members.
- ``reference``: never seen by the teacher, and the attacker knows it (calibration, shadow models).
- ``student``: the classes of the LFW identification student (the owner's downstream task).
- ``shadow_student``: identities the attacker uses for its own shadow student.
- ``control_member``: only when asked for (``n_control_members``): identities a fine-tuned
  negative-control teacher trains on (drawn like the student identities; never evaluated, never
  given to the attacker).

UTKFace photos (no identities) are split into the age student's train/test sets and the
attacker's shadow set. [reconstructed]: the paper's exact split is not public.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from faceleaks.atomic import atomic_write_text
from faceleaks.config import SplitConfig
from faceleaks.errors import ArtifactError, ConfigError, DataError
from faceleaks.seeding import derive_seed, make_rng

__all__ = ["MembershipSplit", "make_split", "n_train_photos", "draw_reference_pool", "photo_identity", "group_by_identity", "ROLES", "SCHEMA_VERSION"]

ROLES = ("member", "nonmember", "reference", "student", "shadow_student", "control_member")
SCHEMA_VERSION = 1


def _single_owner(groups: dict[str, list[str]], clash: Callable[[str, str, str], str]) -> dict[str, str]:
    """item -> the one group listing it; ``DataError(clash(item, first, second))`` if two do (or one twice)."""
    owner: dict[str, str] = {}
    for group, items in groups.items():
        for item in items:
            if item in owner:
                raise DataError(clash(item, owner[item], group))
            owner[item] = group
    return owner


@dataclass(frozen=True)
class MembershipSplit:
    """The manifest: the only ground truth of who is a member (written as JSON, ``schema_version`` 1).

    Attributes
    ----------
    seed : int, the seed the split was drawn with
    roles : role (one of ``ROLES``) -> identities (LFW person names); each identity has one role
    photos : identity -> its image ids (file stems), capped at ``max_images_per_identity``, in a
        seeded order
    member_train : member -> the first ``n_train_photos(len(photos[member]), fraction)`` of its photos,
        the ones the teacher trains on (the rest are held out)
    student_test : image ids held out from the LFW students (and the shadow student)
    utk : ``"train"`` / ``"test"`` / ``"shadow"`` -> disjoint UTKFace image ids
    reference_pool : LFW image ids of people with no role (at most ``pool_photos_per_person`` each): the
        attacker's known non-members for its base-model surrogate; empty when turned off
    """

    seed: int
    roles: dict[str, list[str]]
    photos: dict[str, list[str]]
    member_train: dict[str, list[str]]
    student_test: list[str]
    utk: dict[str, list[str]]
    reference_pool: list[str] = field(default_factory=list)

    def identities(self, role: str) -> list[str]:
        """The identities of ``role`` (a copy); ``DataError`` naming the roles if ``role`` is unknown."""
        if role not in ROLES:
            raise DataError(f"unknown role {role!r}; roles are {ROLES}")
        return list(self.roles.get(role, []))

    def member_heldout(self, identity: str) -> list[str]:
        """A member's photos the teacher did not train on, in ``photos`` order (``KeyError`` for a non-member)."""
        train = set(self.member_train[identity])
        return [i for i in self.photos[identity] if i not in train]

    def validate(self) -> None:
        """Raise ``DataError`` if any identity has two roles or photo sets overlap."""
        unknown = [role for role in self.roles if role not in ROLES]
        if unknown:
            raise DataError(f"manifest has unknown role {unknown[0]!r}; roles are {ROLES}")
        owner = _single_owner(self.roles, lambda ident, a, b: f"identity {ident!r} is both {a} and {b}: splits overlap")
        orphans = [ident for ident in self.photos if ident not in owner]
        if orphans:
            raise DataError(f"photos listed for {orphans[0]!r}, which has no role")
        _single_owner(self.photos, lambda iid, a, b: f"photo {iid!r} is listed for {a!r} and {b!r}")
        for ident, ids in self.member_train.items():
            if owner.get(ident) != "member" or not set(ids) <= set(self.photos[ident]):
                raise DataError(f"member_train for {ident!r} is not a subset of a member's photos")
        _single_owner(self.utk, lambda iid, a, b: f"UTKFace photo {iid!r} is in both {a} and {b}: "
                                                  "train/test/shadow photo sets overlap")
        taken = sorted({photo_identity(i) for i in self.reference_pool} & set(owner))
        if taken or len(set(self.reference_pool)) != len(self.reference_pool):
            raise DataError(f"the reference pool must hold distinct photos of people with no role; "
                            f"{taken[:1] or 'a repeated photo'} is not")

    def to_json(self, path: Path) -> None:
        """Write the manifest as JSON with its ``schema_version`` (read back with ``from_json``)."""
        atomic_write_text(path, json.dumps({"schema_version": SCHEMA_VERSION, **asdict(self)}, indent=1))

    @classmethod
    def from_json(cls, path: Path) -> "MembershipSplit":
        """Load and validate a manifest; ``ArtifactError`` if unreadable, ``DataError`` if overlapping."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ArtifactError(f"cannot read split manifest {path}: {err}") from err
        if raw.pop("schema_version", None) != SCHEMA_VERSION:
            raise ArtifactError(f"split manifest {path} is not schema version {SCHEMA_VERSION}")
        split = cls(**raw)
        split.validate()
        return split


def n_train_photos(n_photos: int, fraction: float) -> int:
    """How many of a member's ``n_photos`` photos its teacher trains on (the rest are held out).

    ``min(n_photos - 1, max(1, round(fraction * n_photos)))``: at least one training photo and at
    least one held-out photo whenever ``n_photos >= 2``; a lone photo is held out (0 returned).
    Used for the owner's members, the attacker's shadow members and the evaluation lists alike.

    Parameters
    ----------
    n_photos : int >= 1, photos of the identity (after capping to ``max_images_per_identity``)
    fraction : float in [0, 1], the share to train on (``SplitConfig.member_train_fraction``);
        ``round`` is Python's (halves to even: 0.5 * 5 -> 2)

    Returns
    -------
    n_train : int in [0, n_photos - 1]

    Raises
    ------
    DataError
        If ``n_photos < 1``: an identity without photos has nothing to split.
    ConfigError
        If ``fraction`` is not in [0, 1].

    Examples
    --------
    >>> n_train_photos(10, 0.5), n_train_photos(5, 0.5), n_train_photos(2, 0.9), n_train_photos(1, 0.5)
    (5, 2, 1, 0)
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"the training-photo fraction must be in [0, 1], got {fraction!r}; "
                          "set split.member_train_fraction to a fraction")
    if n_photos < 1:
        raise DataError(f"an identity with {n_photos} photos cannot be split into training and held-out "
                        "photos; drop identities without photos first")
    return min(n_photos - 1, max(1, int(round(fraction * n_photos))))


def photo_identity(image_id: str) -> str:
    """The LFW person of an image id (``George_W_Bush_0001`` -> ``George_W_Bush``)."""
    return image_id.rsplit("_", 1)[0]


def draw_reference_pool(by_identity: dict[str, list[str]], exclude: set[str], *, n_photos: int,
                        per_person: int, seed: int) -> list[str]:
    """The attacker's reference pool: ``n_photos`` photos of many people outside ``exclude``.

    People are visited in a seeded order and give at most ``per_person`` of their photos (a seeded
    choice) until ``n_photos`` are taken, so the pool spreads over as many people as it can
    [reconstructed]. Raises ``DataError`` if the people available hold fewer photos than asked.
    """
    rng = make_rng(seed)
    people = sorted(p for p in by_identity if p not in exclude)
    out: list[str] = []
    for i in rng.permutation(len(people)):
        ids = sorted(by_identity[people[i]])
        out += [ids[j] for j in rng.permutation(len(ids))[:per_person]][: n_photos - len(out)]
        if len(out) >= n_photos:
            return out
    raise DataError(f"the reference pool asks for {n_photos} photos but people with no role hold only "
                    f"{len(out)} (at most {per_person} each); lower split.n_reference_pool")


def _take(pool: list[str], n: int, what: str, cfg_name: str) -> list[str]:
    if len(pool) < n:
        raise DataError(f"need {n} identities for {what} but only {len(pool)} are left; "
                        f"lower split.{cfg_name} or the other identity counts")
    out = pool[:n]
    del pool[:n]
    return out


def make_split(by_identity: dict[str, list[str]], utk_ids: list[str], cfg: SplitConfig,
               *, max_images_per_identity: int, seed: int, n_control_members: int = 0) -> MembershipSplit:
    """Draw a seeded, identity-disjoint split.

    Parameters
    ----------
    by_identity : identity -> its readable LFW image ids
    utk_ids : readable UTKFace image ids
    cfg : counts and fractions (see ``SplitConfig``)
    n_control_members : identities for a fine-tuned control teacher (``control_member``), drawn
        from those left with ``min_images_student`` to ``min_images_membership - 1`` photos by a
        generator of their own, so every other role is the same as with 0

    Raises ``DataError`` if there are too few identities or UTKFace photos for the counts asked.
    """
    rng = make_rng(seed)
    names = sorted(by_identity)
    big = [n for n in names if len(by_identity[n]) >= cfg.min_images_membership]
    small = [n for n in names if cfg.min_images_student <= len(by_identity[n]) < cfg.min_images_membership]
    big = [big[i] for i in rng.permutation(len(big))]
    small = [small[i] for i in rng.permutation(len(small))]
    roles = {
        "member": _take(big, cfg.n_members, "members", "n_members"),
        "nonmember": _take(big, cfg.n_nonmembers, "non-members", "n_nonmembers"),
        "reference": _take(big, cfg.n_reference, "attacker references", "n_reference"),
        "student": _take(small, cfg.n_student_identities, "the LFW student", "n_student_identities"),
        "shadow_student": _take(small, cfg.n_shadow_student_identities, "the shadow student",
                                "n_shadow_student_identities"),
    }
    photos: dict[str, list[str]] = {}
    for ident in (i for ids in roles.values() for i in ids):
        ids = sorted(by_identity[ident])
        keep = rng.permutation(len(ids))[:max_images_per_identity]
        photos[ident] = [ids[i] for i in keep]
    member_train = {}
    for ident in roles["member"]:
        member_train[ident] = photos[ident][: n_train_photos(len(photos[ident]), cfg.member_train_fraction)]
    student_test = []
    for ident in roles["student"] + roles["shadow_student"]:
        n_test = max(1, int(round(cfg.student_test_fraction * len(photos[ident]))))
        student_test += photos[ident][:n_test]
    need = cfg.n_utkface_train + cfg.n_utkface_test
    if len(utk_ids) < 2 * need:
        raise DataError(f"UTKFace has {len(utk_ids)} readable photos; the split needs {2 * need} "
                        "(student train+test and the attacker's shadow copy): lower split.n_utkface_*")
    order = [sorted(utk_ids)[i] for i in rng.permutation(len(utk_ids))]
    utk = {"train": order[: cfg.n_utkface_train], "test": order[cfg.n_utkface_train : need],
           "shadow": order[need : 2 * need]}
    if n_control_members:
        extra = make_rng(derive_seed(seed, "control-members"))
        small = sorted(small)
        small = [small[i] for i in extra.permutation(len(small))]
        roles["control_member"] = _take(small, n_control_members, "the control teacher", "n_members")
        for ident in roles["control_member"]:
            ids = sorted(by_identity[ident])
            photos[ident] = [ids[i] for i in extra.permutation(len(ids))[:max_images_per_identity]]
    pool = []
    if cfg.n_reference_pool:  # its own generator: every role is the same with or without it
        few = {n: ids for n, ids in by_identity.items() if len(ids) < cfg.min_images_student}
        pool = draw_reference_pool(few, {i for ids in roles.values() for i in ids}, n_photos=cfg.n_reference_pool,
                                   per_person=cfg.pool_photos_per_person, seed=derive_seed(seed, "reference-pool"))
    split = MembershipSplit(seed, roles, photos, member_train, student_test, utk, pool)
    split.validate()
    return split


def group_by_identity(image_ids, identities) -> dict[str, list[str]]:
    """identity -> list of image ids, from two parallel sequences."""
    out: dict[str, list[str]] = defaultdict(list)
    for iid, ident in zip(image_ids, identities):
        out[str(ident)].append(str(iid))
    return dict(out)
