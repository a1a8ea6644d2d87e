"""Whom the attacker audits, with which photos, in which order [reconstructed].

The evaluation lists (members' training or held-out photos, non-members' photos, each seeded), the
photo-count rule that makes a person eligible at k (one rule for members and non-members), the
photos the attacker's IN shadows train on, and the seeded query order. Ground truth stays in the
evaluation layer: attacks receive photos and identity ids only.
"""

from __future__ import annotations

import numpy as np

from faceleaks.config import ExperimentConfig
from faceleaks.data.splits import n_train_photos
from faceleaks.evaluation.attacker import SETTINGS
from faceleaks.evaluation.dataset import Dataset
from faceleaks.seeding import derive_seed, make_rng

__all__ = ["SETTINGS", "evaluation_lists", "setting_photos", "held_photos", "eligible_first_k", "sample_photos",
           "query_order"]


def evaluation_lists(data: Dataset, setting: str, seed: int, *,
                     photos: str = "half") -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Members' photos for ``setting`` and non-members' photos, each person's list shuffled (seeded).

    ``photos``: which of a member's photos its teacher trained on (``TeacherRecipe.photos``).
    Returns (members, nonmembers): identity -> readable photo ids. ``training-photos``: the
    member's training photos (the split's ``member_train`` under "half", all under "all");
    ``unseen-photos``: the rest (empty under "all"). Non-members: all their photos.
    """
    rng = make_rng(derive_seed(seed, "eval-order", setting))
    split = data.split
    have = set(data.faces.image_ids.tolist())

    def shuffled(ids: list[str]) -> list[str]:
        ids = [i for i in ids if i in have]
        return [ids[i] for i in rng.permutation(len(ids))]

    def member_photos(m: str) -> list[str]:
        if photos == "all":
            return split.photos[m] if setting == "training-photos" else []
        return split.member_train[m] if setting == "training-photos" else split.member_heldout(m)

    members = {m: shuffled(member_photos(m)) for m in sorted(split.identities("member"))}
    nonmembers = {n: shuffled(split.photos[n]) for n in sorted(split.identities("nonmember"))}
    return members, nonmembers


def setting_photos(n_photos: int, setting: str, train_fraction: float, photos: str = "half") -> int:
    """How many photos a member with ``n_photos`` photos has in ``setting`` under the recipe's ``photos``:
    ``training-photos`` its training photos (``n_train_photos`` under "half", all under "all"), else the rest.

    Examples
    --------
    >>> [setting_photos(21, s, 0.5, p) for p in ("half", "all") for s in ("training-photos", "unseen-photos")]
    [10, 11, 21, 0]
    """
    n_train = n_photos if photos == "all" else n_train_photos(n_photos, train_fraction)
    return n_train if setting == "training-photos" else n_photos - n_train


def held_photos(data: Dataset, setting: str, cfg: ExperimentConfig) -> dict[str, list[str]]:
    """The photos of each audited person that the attacker's IN shadow teachers train on.

    ``training-photos``: the photos the attacker queries come from this set (LiRA's classic IN):
    a member's training photos (half, or all under the recipe's ``photos = "all"``), and as many
    of a non-member. ``unseen-photos``: the query photos stay unseen by the IN shadows too, so they
    get every photo except the first ``min(max k, n - n_train)`` of the query list; nothing under
    "all" (no unseen photos). Members and non-members with the same photo count get the same number
    of photos, or LiRA would rank that difference, not membership.
    """
    photos = cfg.teacher.resolved_recipe.photos
    if setting == "unseen-photos" and photos == "all":
        return {}
    members, nonmembers = evaluation_lists(data, setting, cfg.seed, photos=photos)
    have = set(data.faces.image_ids.tolist())
    kmax = max(cfg.attack.ks)
    out = {}
    for p, ids in {**members, **nonmembers}.items():
        n = len(data.split.photos[p])
        n_train = setting_photos(n, "training-photos", cfg.split.member_train_fraction, photos)
        if setting == "training-photos":
            out[p] = ids[:n_train]
        else:
            queried = set(ids[: n - n_train][:kmax])
            out[p] = [i for i in data.split.photos[p] if i in have and i not in queried]
    return out


def eligible_first_k(lists: dict[str, list[str]], k: int, totals: dict[str, int], train_fraction: float, *,
                     setting: str, photos: str = "half") -> dict[str, list[str]]:
    """First k photos (of ``lists``: identity -> photo ids) of each identity eligible at k in ``setting``.

    Eligible: a member with the identity's photo count (``totals``) would have at least k photos in
    ``setting`` (``setting_photos``: k training photos for ``training-photos``, whether or not any
    are held out; k held-out ones for ``unseen-photos``). One rule for members and non-members keeps
    the groups alike in photo counts (famous people have more photos, which would otherwise leak).
    """
    return {p: ids[:k] for p, ids in lists.items()
            if len(ids) >= k and setting_photos(totals[p], setting, train_fraction, photos) >= k}


def sample_photos(lists: dict[str, list[str]], n_max: int, rng: np.random.Generator,
                   per_identity: int) -> dict[str, list[str]]:
    """At most ``per_identity`` photos of each identity (equal weight per person), ``n_max`` in all."""
    flat = [(p, i) for p, ids in lists.items() for i in ids[:per_identity]]
    keep = sorted(rng.permutation(len(flat))[:n_max])
    out: dict[str, list[str]] = {}
    for j in keep:
        out.setdefault(flat[j][0], []).append(flat[j][1])
    return out


def query_order(identity_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A seeded permutation of the rows that keeps each identity's photos in their given order.

    Members and non-members are stacked group by group; without this the order in which photos
    reach the victim would carry the label. Identity-level attacks take each person's first k
    photos, so the order within a person is kept.
    """
    perm = rng.permutation(len(identity_ids))
    order = np.empty(len(identity_ids), dtype=np.int64)
    for person in np.unique(identity_ids):
        rows = np.flatnonzero(identity_ids == person)
        slots = np.flatnonzero(np.isin(perm, rows))  # ascending positions
        order[slots] = rows
    return order
