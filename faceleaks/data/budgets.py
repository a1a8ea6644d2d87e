"""The attacker's labelled photos: disjoint UTKFace pools, nested per-class budgets, LFW targets.

Every draw is seeded (``seed`` an int or a NumPy generator) and deterministic for a seed; labels
are coded as in :mod:`faceleaks.data.labels` (``-1`` excluded, never drawn).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from faceleaks.data.labels import LfwAttributes
from faceleaks.errors import ConfigError, DataError
from faceleaks.seeding import make_rng

__all__ = ["sample_budget", "utk_pools", "top_up", "choose_lfw_targets"]


def _short_class(budget: int | str, need: int, name: str, have: int, fix: str) -> DataError:
    """The error for a class with fewer labelled auxiliary photos than a budget needs."""
    return DataError(f"budget n={budget} per class needs {need} labelled auxiliary photos of class {name!r} "
                     f"but only {have} exist; {fix}")


def sample_budget(labels: np.ndarray, n_per_class: int | str, n_classes: int, *, seed: int | np.random.Generator,
                  names: tuple[str, ...] | None = None) -> np.ndarray:
    """Indices of ``n_per_class`` labelled items of every class, drawn without replacement.

    Budgets are nested: with one seed, the sample for n=5 is contained in the sample for n=10
    (one seeded permutation per class, of which the first n are taken).

    Parameters
    ----------
    labels : ndarray (n,) int64, class in [0, n_classes) or -1 (excluded, never drawn)
    n_per_class : positive int, or ``"all"`` for every labelled item
    n_classes : int
    seed : int or numpy Generator
    names : class names for error messages (default: the indices)

    Returns
    -------
    idx : ndarray (n_classes * n_per_class,) int64 (or every labelled index for ``"all"``), sorted

    Raises
    ------
    DataError
        If a class has fewer than ``n_per_class`` labelled items (or none, for ``"all"``).
    ConfigError
        If ``n_per_class`` is neither a positive int nor ``"all"``.

    Examples
    --------
    >>> sample_budget(np.array([0, 1, 0, 1, -1, 0]), 2, 2, seed=0).size
    4
    """
    if n_per_class != "all" and not (isinstance(n_per_class, int) and n_per_class >= 1):
        raise ConfigError(f"a budget is a positive int per class or 'all', got {n_per_class!r}")
    labels = np.asarray(labels, dtype=np.int64)
    names = names or tuple(str(c) for c in range(n_classes))
    rng = make_rng(seed)
    out = []
    for c in range(n_classes):
        pool = np.flatnonzero(labels == c)
        need = 1 if n_per_class == "all" else n_per_class
        if pool.size < need:
            raise _short_class(n_per_class, need, names[c], pool.size, "lower the budget or enlarge the auxiliary pool")
        perm = pool[rng.permutation(pool.size)]
        out.append(perm if n_per_class == "all" else perm[:n_per_class])
    return np.sort(np.concatenate(out))


def utk_pools(all_ids, used_ids, *, n_aux: int, n_targets: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Split UTKFace photos not in ``used_ids`` into (auxiliary pool, targets, rest), disjoint.

    ``rest`` are the unused photos left over, from which ``top_up`` may add rare classes.
    Raises ``DataError`` if fewer than ``n_aux + n_targets`` unused photos exist.
    """
    used = set(used_ids)
    free = sorted(i for i in set(all_ids) if i not in used)
    if len(free) < n_aux + n_targets:
        raise DataError(f"only {len(free)} UTKFace photos are unused by the membership split; the attribute "
                        f"attack asks for {n_aux} auxiliary + {n_targets} target photos: lower them")
    order = [free[i] for i in make_rng(seed).permutation(len(free))]
    return order[:n_aux], order[n_aux : n_aux + n_targets], order[n_aux + n_targets :]


def top_up(pool: list[str], rest: list[str], label_of, n_classes: int, minimum: int, *,
           names: tuple[str, ...] | None = None) -> tuple[list[str], list[str]]:
    """Add to ``pool``, for each class with fewer than ``minimum`` members, photos of it from ``rest``.

    ``label_of(id) -> int`` gives the class (-1: excluded). Photos are taken from ``rest`` in its order.

    Returns
    -------
    pool : list of str, the input pool followed by the photos added
    rest : list of str, ``rest`` without the photos added

    Raises
    ------
    DataError
        If a class has fewer than ``minimum`` photos in ``pool`` and ``rest`` together: a budget of
        ``minimum`` per class cannot be drawn (raised before any photo is read).
    """
    counts = Counter(label_of(i) for i in pool)
    extra = []
    for i in rest:
        c = label_of(i)
        if 0 <= c < n_classes and counts[c] < minimum:
            extra.append(i)
            counts[c] += 1
    short = [c for c in range(n_classes) if counts[c] < minimum]
    if short:
        name = names[short[0]] if names else str(short[0])
        raise _short_class(minimum, minimum, name, counts[short[0]], "lower the budget")
    taken = set(extra)
    return pool + extra, [i for i in rest if i not in taken]


def choose_lfw_targets(lfw: LfwAttributes, *, exclude: set[str], n: int, max_per_person: int,
                       seed: int | np.random.Generator) -> list[str]:
    """Image ids of up to ``n`` LFW photos of people not in ``exclude``, ``max_per_person`` each at most.

    People are drawn round-robin over the race-labelled groups (rarest group first in each round,
    shuffled within a group, seeded) so that the few non-White labelled people are all included
    even for small ``n``; people without a usable race label come last [reconstructed: about
    77 % of LFW's race-labelled people are White].
    """
    by_person: dict[str, list[str]] = {}
    for iid, person in sorted(lfw.person_of.items()):
        if person not in exclude:
            by_person.setdefault(person, []).append(iid)
    race = {p: lfw.person_race.get(p, (-1, ""))[0] for p in by_person}
    rng = make_rng(seed)
    groups: dict[int, list[str]] = {}
    for c in sorted(set(race.values())):
        people = sorted(p for p in by_person if race[p] == c)
        groups[c] = [people[i] for i in rng.permutation(len(people))]
    labelled = sorted((c for c in groups if c >= 0), key=lambda c: (len(groups[c]), c))
    order = [g[r] for r in range(max(map(len, groups.values()), default=0)) for g in (groups[c] for c in labelled)
             if r < len(g)] + groups.get(-1, [])
    chosen: list[str] = []
    for person in order:
        photos = by_person[person]
        chosen += [photos[j] for j in rng.permutation(len(photos))[:max_per_person]]
        if len(chosen) >= n:
            return chosen[:n]
    return chosen
