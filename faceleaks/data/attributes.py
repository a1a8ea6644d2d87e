"""Sensitive-attribute labels (gender, race, age group) and the attacker's labelled budgets.

Codes follow UTKFace everywhere (Zhang, Song & Qi, CVPR 2017): gender 0 = male, 1 = female;
race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others. ``-1`` marks a label that is excluded
(unknown, ambiguous, multi-valued); every exclusion is counted under a reason.

LFW labels come from ``lfw/attributes/lfw_labels.csv`` (see ``../shared/data/SOURCES.md``):

- gender per image, column ``gender_afifi`` (Afifi & Abdelhamed 2019): ``M`` -> 0, ``F`` -> 1;
  ``ambiguous`` and empty cells are excluded. Per person: ``gender_person_majority``.
- race per person, column ``race_uscsail`` (USC-SAIL, noisy and partial): caucasian -> White,
  african -> Black, eastasian -> Asian, asianindian -> Indian, latino / nativeamerican /
  pacificislander / other -> Others. **Multi-valued rule** [reconstructed]: a comma-joined label
  is kept only when all its parts map to the same UTKFace class (``"latino,other"`` -> Others);
  a mix of classes (``"african,caucasian"``) is excluded and counted as ``multi-valued``.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceleaks.data.faces import FaceSet
from faceleaks.errors import ConfigError, DataError
from faceleaks.seeding import make_rng

__all__ = [
    "GENDERS", "RACES", "LFW_RACE_MAP", "LabelColumn", "LfwAttributes", "map_lfw_gender", "map_lfw_race",
    "find_lfw_attributes", "load_lfw_attributes", "label_column", "class_counts", "sample_budget",
    "utk_pools", "top_up", "LabelledFaces", "choose_lfw_targets",
]

GENDERS = ("male", "female")
RACES = ("White", "Black", "Asian", "Indian", "Others")
LFW_RACE_MAP = {"caucasian": 0, "african": 1, "eastasian": 2, "asianindian": 3, "latino": 4,
                "nativeamerican": 4, "pacificislander": 4, "other": 4}
_GENDER_MAP = {"M": 0, "F": 1}


def map_lfw_gender(value: str) -> tuple[int, str]:
    """(code, status) for one ``gender_afifi`` cell: ``(0|1, "ok")``, ``(-1, "ambiguous"|"unknown")``.

    Examples
    --------
    >>> map_lfw_gender("F"), map_lfw_gender("ambiguous"), map_lfw_gender("")
    ((1, 'ok'), (-1, 'ambiguous'), (-1, 'unknown'))
    """
    value = (value or "").strip()
    if value in _GENDER_MAP:
        return _GENDER_MAP[value], "ok"
    return -1, "unknown" if not value else ("ambiguous" if value == "ambiguous" else f"unrecognised:{value}")


def map_lfw_race(value: str) -> tuple[int, str]:
    """(code, status) for one ``race_uscsail`` cell, with the multi-valued rule of the module docstring.

    Examples
    --------
    >>> map_lfw_race("african"), map_lfw_race("latino,other"), map_lfw_race("african,caucasian")
    ((1, 'ok'), (4, 'ok'), (-1, 'multi-valued'))
    """
    parts = [p.strip() for p in (value or "").split(",") if p.strip()]
    if not parts:
        return -1, "unknown"
    unknown = [p for p in parts if p not in LFW_RACE_MAP]
    if unknown:
        return -1, f"unrecognised:{unknown[0]}"
    codes = {LFW_RACE_MAP[p] for p in parts}
    return (codes.pop(), "ok") if len(codes) == 1 else (-1, "multi-valued")


@dataclass(frozen=True)
class LabelColumn:
    """One attribute's labels for a list of items, with exclusions counted.

    Attributes
    ----------
    ids : ndarray (n,) str, image ids (or person names at identity level)
    labels : ndarray (n,) int64, class index in [0, len(classes)) or -1 where excluded
    classes : tuple of str, class names in code order
    excluded : dict reason -> number of items excluded for it
    """

    ids: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    excluded: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.labels):
            raise DataError(f"{len(self.ids)} ids but {len(self.labels)} labels")
        bad = (self.labels < -1) | (self.labels >= len(self.classes))
        if bad.any():
            raise DataError(f"labels outside [-1, {len(self.classes)}): {np.unique(self.labels[bad])[:5]}")

    @property
    def known(self) -> np.ndarray:
        """(n,) bool, True where the label is usable."""
        return self.labels >= 0

    def keep_known(self) -> "LabelColumn":
        """The items with a usable label (exclusion counts carried over)."""
        k = self.known
        return LabelColumn(self.ids[k], self.labels[k], self.classes, dict(self.excluded))


def label_column(ids, coded: list[tuple[int, str]], classes: tuple[str, ...]) -> LabelColumn:
    """Build a ``LabelColumn`` from (code, status) pairs such as ``map_lfw_gender`` returns."""
    labels = np.array([c for c, _ in coded], dtype=np.int64)
    excluded = dict(sorted(Counter(s for c, s in coded if c < 0).items()))
    return LabelColumn(np.asarray(ids, dtype=str), labels, classes, excluded)


def class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    """Number of items per class (excluded ``-1`` labels ignored), a list of length ``n_classes``."""
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=n_classes).astype(int).tolist()


@dataclass(frozen=True)
class LfwAttributes:
    """LFW labels read from ``lfw_labels.csv``.

    Attributes
    ----------
    image_gender : image id -> (code, status) from ``gender_afifi``
    person_race : person -> (code, status) from ``race_uscsail``
    person_gender : person -> (code, status) from ``gender_person_majority``
    person_of : image id -> person
    n_images : person -> number of LFW photos
    """

    image_gender: dict[str, tuple[int, str]]
    person_race: dict[str, tuple[int, str]]
    person_gender: dict[str, tuple[int, str]]
    person_of: dict[str, str]
    n_images: dict[str, int]

    def gender(self, image_ids) -> LabelColumn:
        """Per-image gender of ``image_ids``; ids missing from the CSV count as ``not-in-csv``."""
        return label_column(image_ids, [self.image_gender.get(i, (-1, "not-in-csv")) for i in image_ids], GENDERS)

    def race(self, image_ids) -> LabelColumn:
        """Per-image race (the person's label) of ``image_ids``."""
        coded = [self.person_race.get(self.person_of.get(i, ""), (-1, "not-in-csv")) for i in image_ids]
        return label_column(image_ids, coded, RACES)

    def identity_gender(self, people) -> LabelColumn:
        """Per-person majority gender (``gender_person_majority``) of ``people``."""
        return label_column(people, [self.person_gender.get(p, (-1, "not-in-csv")) for p in people], GENDERS)


def find_lfw_attributes(lfw_root: Path, explicit: str | os.PathLike | None = None) -> Path:
    """Locate ``lfw_labels.csv``: ``explicit``, ``$FACELEAKS_LFW_ATTRIBUTES``, then beside the photos.

    ``lfw_root`` is the folder of person folders (e.g. ``.../lfw/lfw-deepfunneled``); the file
    is looked for in ``lfw_root/../attributes/`` and ``lfw_root/attributes/``.

    Raises
    ------
    DataError
        If no candidate exists; the message lists the places looked.
    """
    looked = [Path(explicit).expanduser()] if explicit else []
    if os.environ.get("FACELEAKS_LFW_ATTRIBUTES"):
        looked.append(Path(os.environ["FACELEAKS_LFW_ATTRIBUTES"]).expanduser())
    root = Path(lfw_root)
    looked += [root.parent / "attributes" / "lfw_labels.csv", root / "attributes" / "lfw_labels.csv"]
    for path in looked:
        if path.is_file():
            return path
    raise DataError("LFW attribute labels (lfw_labels.csv) not found. Looked in:\n  "
                    + "\n  ".join(map(str, looked))
                    + "\nSet FACELEAKS_LFW_ATTRIBUTES or attributes.lfw_labels to the CSV (see SOURCES.md).")


def load_lfw_attributes(path: Path) -> LfwAttributes:
    """Read ``lfw_labels.csv`` (columns path, person, n_images_person, gender_afifi, race_uscsail,
    gender_person_majority); ``DataError`` if unreadable or a column is missing."""
    need = {"path", "person", "n_images_person", "gender_afifi", "race_uscsail", "gender_person_majority"}
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = need - set(reader.fieldnames or [])
            rows = list(reader)
    except OSError as err:
        raise DataError(f"cannot read LFW attribute labels {path}: {err}") from err
    if missing:
        raise DataError(f"{path} lacks column(s) {sorted(missing)}")
    if not rows:
        raise DataError(f"{path} has no rows")
    image_gender, person_of, race, pgender, n_images = {}, {}, {}, {}, {}
    for r in rows:
        iid = Path(r["path"]).stem
        person = r["person"]
        image_gender[iid] = map_lfw_gender(r["gender_afifi"])
        person_of[iid] = person
        race.setdefault(person, map_lfw_race(r["race_uscsail"]))
        pgender.setdefault(person, map_lfw_gender(r["gender_person_majority"]))
        n_images[person] = int(r["n_images_person"])
    return LfwAttributes(image_gender, race, pgender, person_of, n_images)


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
            raise DataError(f"budget n={n_per_class} per class needs {need} labelled auxiliary photos of class "
                            f"{names[c]!r} but only {pool.size} exist; lower the budget or enlarge the auxiliary pool")
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
        raise DataError(f"budget n={minimum} per class needs {minimum} labelled auxiliary photos of class {name!r} "
                        f"but only {counts[short[0]]} exist; lower the budget")
    taken = set(extra)
    return pool + extra, [i for i in rest if i not in taken]


@dataclass(frozen=True)
class LabelledFaces:
    """Faces with one ``LabelColumn`` per attribute.

    ``name`` says which set (``utk-aux``, ``utk-targets``, ``lfw-targets``, ``lfw-identities``).
    Columns are aligned with ``faces.image_ids``, except for identity sets, whose columns list
    people (``faces.identities``).
    """

    name: str
    faces: FaceSet
    labels: dict[str, LabelColumn]


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
