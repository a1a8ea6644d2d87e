"""The candidate pool of the random-inclusion run and the photos each person is queried with.

Pool [reconstructed after the LiRA paper's random inclusion, Carlini et al. 2022, arXiv
2112.03570, Sec. V-A]: every LFW person with at least ``split.min_images_student`` photos (5;
capped at ``data.max_images_per_identity``) whom no role of the N-victim run uses. The only other
LFW people that run uses are the victims' student classes (split role ``student``, and
``control_member`` when present); the single-victim roles (members, non-members, references,
shadow students) do not exist there, so their people join the pool, where each victim's coin
flips make them members or not. The attacker's reference pool (``split.reference_pool``) holds
people with fewer photos, so it never overlaps.

Each person's photos get one seeded order, the same for every victim. A victim that has the person
as a member trains on the first ``n_train`` of them (the recipe's training photos); every victim
is queried with the first k (training-photos setting), so a person is audited at k when
``n_train >= k``, a rule that is the same for members and non-members.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceleaks.config import ExperimentConfig
from faceleaks.data.faces import FaceSet, load_faces
from faceleaks.data.lfw import index_lfw
from faceleaks.data.splits import group_by_identity, n_train_photos
from faceleaks.errors import DataError
from faceleaks.evaluation.dataset import Dataset
from faceleaks.seeding import derive_seed, make_rng

__all__ = ["InclusionPool", "EXCLUDED_ROLES", "candidate_pool", "train_photo_count", "QuerySet", "query_set"]

EXCLUDED_ROLES = ("student", "control_member")
"""Split roles whose people have a job in the N-victim run other than being audited."""


def train_photo_count(n_photos: int, cfg: ExperimentConfig) -> int:
    """Photos a victim trains on for a member with ``n_photos``, as the owner's recipe says.

    ``cfg.teacher.resolved_recipe.photos``: ``"all"`` (e.g. ``light``) trains on every photo;
    ``"half"`` (``regularised``) on ``split.member_train_fraction`` of them (``data.splits.n_train_photos``).

    Examples
    --------
    >>> from faceleaks.config import config_from_dict
    >>> train_photo_count(10, config_from_dict({})), train_photo_count(10, config_from_dict({"teacher": {"recipe": "light"}}))
    (5, 10)
    """
    if cfg.teacher.resolved_recipe.photos == "all":
        return n_photos
    return n_train_photos(n_photos, cfg.split.member_train_fraction)


@dataclass(frozen=True)
class InclusionPool:
    """The candidate pool.

    Attributes
    ----------
    people : tuple of str, sorted LFW names
    photos : person -> readable photo ids in the person's seeded order (capped)
    n_train : person -> photos a victim trains on when the person is a member (the first ones)
    faces : FaceSet holding every photo of ``photos``
    excluded_roles : tuple of str, split roles left out
    """

    people: tuple[str, ...]
    photos: dict[str, list[str]]
    n_train: dict[str, int]
    faces: FaceSet
    excluded_roles: tuple[str, ...] = EXCLUDED_ROLES

    def eligible(self, k: int) -> np.ndarray:
        """(n_people,) bool: people audited at k (at least k training photos)."""
        return np.array([self.n_train[p] >= k for p in self.people], dtype=bool)

    def train_ids(self, people) -> dict[str, list[str]]:
        """person -> the photo ids a victim trains on, for each of ``people``."""
        return {p: self.photos[p][: self.n_train[p]] for p in people}


def candidate_pool(data: Dataset, cfg: ExperimentConfig, *, cache_dir: Path | None,
                   exclude_roles: tuple[str, ...] = EXCLUDED_ROLES, max_people: int | None = None) -> InclusionPool:
    """Every LFW person with >= ``cfg.split.min_images_student`` readable photos outside ``exclude_roles``.

    Photos are read with the run's chipper (cached chips); each person's order is a seeded
    permutation (``derive_seed(cfg.seed, "inclusion-pool")``) cut at ``data.max_images_per_identity``.
    ``max_people`` keeps a seeded subset of that many people (None: all; small runs and tests).

    Raises
    ------
    DataError
        Fewer than 4 people qualify.
    """
    records = index_lfw(data.lfw_root)
    by_identity = group_by_identity([r.image_id for r in records], [r.identity for r in records])
    taken = {p for role in exclude_roles for p in data.split.roles.get(role, [])}
    low = cfg.split.min_images_student
    people = sorted(p for p, ids in by_identity.items() if len(ids) >= low and p not in taken)
    rng = make_rng(derive_seed(cfg.seed, "inclusion-pool"))
    if max_people is not None and max_people < len(people):
        people = sorted(people[i] for i in rng.permutation(len(people))[:max_people])
    order = {}
    for p in people:
        ids = sorted(by_identity[p])
        order[p] = [ids[i] for i in rng.permutation(len(ids))[: cfg.data.max_images_per_identity]]
    path = {r.image_id: r.path for r in records}
    wanted = [i for p in people for i in order[p]]
    faces = load_faces([path[i] for i in wanted], wanted, [i.rsplit("_", 1)[0] for i in wanted], data.chipper,
                       cache_dir=cache_dir, description="reading the inclusion pool")
    have = set(faces.image_ids.tolist())
    photos = {p: [i for i in order[p] if i in have] for p in people}
    people = [p for p in people if len(photos[p]) >= low]
    if len(people) < 4:
        raise DataError(f"the inclusion pool needs >= 4 people with >= {low} readable photos outside roles "
                        f"{exclude_roles}, found {len(people)}: use a larger LFW folder")
    return InclusionPool(tuple(people), {p: photos[p] for p in people},
                         {p: train_photo_count(len(photos[p]), cfg) for p in people}, faces, tuple(exclude_roles))


@dataclass(frozen=True)
class QuerySet:
    """The photos every victim is queried with, and which rows form each person's first k.

    Attributes
    ----------
    images : ndarray (n_queries, S, S, 3) uint8; identity_ids, image_ids : ndarray (n_queries,) str
    groups : k -> (people, rows): pool indices (n_k,) int of the people audited at k and, for each,
        the (k,) row indices of its first k photos
    """

    images: np.ndarray
    identity_ids: np.ndarray
    image_ids: np.ndarray
    groups: dict[int, tuple[np.ndarray, list[np.ndarray]]]


def query_set(pool: InclusionPool, ks: tuple[int, ...]) -> QuerySet:
    """The first ``min(n_train, max(ks))`` photos of each person (training-photos setting), grouped per k."""
    kmax = max(ks)
    ids = [i for p in pool.people for i in pool.photos[p][: min(pool.n_train[p], kmax)]]
    faces = pool.faces.subset(ids)
    rows = {p: np.flatnonzero(faces.identities == p) for p in pool.people}
    groups = {}
    for k in ks:
        audited = np.flatnonzero(pool.eligible(k))
        groups[k] = (audited, [rows[pool.people[j]][:k] for j in audited])
    return QuerySet(faces.images, faces.identities, faces.image_ids, groups)
