"""Sensitive-attribute labels (gender, race): codes, LFW's label CSV, label columns.

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
from faceleaks.errors import DataError

__all__ = [
    "GENDERS", "RACES", "LFW_RACE_MAP", "LabelColumn", "LfwAttributes", "LabelledFaces", "map_lfw_gender",
    "map_lfw_race", "find_lfw_attributes", "load_lfw_attributes", "label_column", "class_counts",
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
