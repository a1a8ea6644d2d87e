"""UTKFace aligned crops with age, gender and race labels (Zhang, Song & Qi, CVPR 2017).

Looked for at the ``utkface_dir`` setting, ``$FACELEAKS_UTKFACE_DIR``, ``$FACELEAKS_DATA_DIR/utkface``
and ``../shared/data/utkface`` (from the working directory and from the checkout). The folder holds
``labels.csv`` (columns path, age, gender, race) or, without it, ``*.jpg`` files named
``<age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]``. Gender 0 = male, 1 = female; race 0 White,
1 Black, 2 Asian, 3 Indian, 4 Others; -1 where a field is missing.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from faceleaks.data.folders import check_named_dirs, named_dirs, search_dirs
from faceleaks.errors import DataError

__all__ = ["UtkRecord", "UtkIndex", "find_utkface_root", "index_utkface", "scan_utkface", "AGE_RANGE"]

log = logging.getLogger(__name__)

_NOT_UTK = ("UTKFace photos (labels.csv or <age>_<gender>_<race>_*.jpg); point it at the folder holding "
            "labels.csv or the photos")



@dataclass(frozen=True)
class UtkRecord:
    """One UTKFace photo; ``age`` in years, ``gender`` and ``race`` as coded above (-1 unknown)."""

    image_id: str
    path: Path
    age: int
    gender: int
    race: int


def find_utkface_root(utkface_dir: str | os.PathLike | None = None) -> Path:
    """Return the UTKFace folder; ``DataError`` listing the places looked if none has photos.

    A folder named explicitly (``utkface_dir`` or ``$FACELEAKS_UTKFACE_DIR``) must hold photos.
    """
    check_named_dirs(named_dirs("utkface", "utkface_dir", utkface_dir, "FACELEAKS_UTKFACE_DIR"),
                     _has_photos, _NOT_UTK)
    looked = search_dirs("utkface", utkface_dir, "FACELEAKS_UTKFACE_DIR")
    for root in looked:
        if _has_photos(root):
            return root
    where = "\n  ".join(str(p) for p in looked)
    raise DataError("UTKFace not found. Looked in:\n  " + where + "\nSet FACELEAKS_UTKFACE_DIR "
                    "(or --utkface-dir) to a folder of UTKFace crops (<age>_<gender>_<race>_*.jpg).")


def _has_photos(root: Path) -> bool:
    return root.is_dir() and ((root / "labels.csv").is_file() or any(root.glob("*/*.jpg")) or any(root.glob("*.jpg")))


#: Valid label ranges (Zhang et al. 2017: ages 0 to 116; two genders; five race codes).
AGE_RANGE = (0, 116)
GENDERS = (0, 1)
RACES = (0, 1, 2, 3, 4)


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _label_problem(age: int | None, gender: int | None, race: int | None) -> str | None:
    """Why a row cannot be used (a reason counted in ``UtkIndex.excluded``), or None."""
    if age is None:
        return "age not an integer (malformed name or row)"
    if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        return f"age outside {AGE_RANGE[0]}..{AGE_RANGE[1]}"
    if gender is not None and gender not in GENDERS:
        return "gender not 0 or 1"
    if race is not None and race not in RACES:
        return "race not 0..4"
    return None


@dataclass(frozen=True)
class UtkIndex:
    """The usable UTKFace photos and the rows excluded at load time.

    Attributes
    ----------
    records : list of UtkRecord, sorted by path
    excluded : dict reason -> number of rows excluded for it (age not an integer, age outside
        0..116, gender not 0 or 1, race not 0..4)
    examples : tuple of (path, reason), the first few excluded rows (at most 20)
    """

    records: list[UtkRecord]
    excluded: dict[str, int]
    examples: tuple[tuple[str, str], ...] = ()


def _rows(root: Path) -> list[tuple[str, str, str, str]]:
    if (root / "labels.csv").is_file():
        try:
            with open(root / "labels.csv", newline="", encoding="utf-8") as fh:
                return [(r["path"], r["age"], r["gender"], r["race"]) for r in csv.DictReader(fh)]
        except (OSError, UnicodeDecodeError, KeyError, csv.Error) as err:
            raise DataError(f"cannot read {root / 'labels.csv'} ({type(err).__name__}: {err}); it needs UTF-8 "
                            "columns path, age, gender, race") from err
    rows = []
    for p in sorted(root.rglob("*.jpg")):
        parts = p.name.split("_")
        rows.append((str(p.relative_to(root)), *(parts + ["", "", ""])[:3]))
    return rows


def scan_utkface(root: Path) -> UtkIndex:
    """Every usable labelled photo under ``root`` and, per reason, the rows excluded.

    A gender or race that is missing (not an integer) is kept as -1 (unknown); one that is an
    integer outside its range excludes the row, as does an age that is missing or outside 0..116.

    Raises
    ------
    DataError
        If ``labels.csv`` cannot be read, or no row is usable.
    """
    records, excluded, examples = [], {}, []
    for rel, a, g, r in sorted(_rows(root)):
        age, gender, race = _int(a), _int(g), _int(r)
        problem = _label_problem(age, gender, race)
        if problem is not None:
            excluded[problem] = excluded.get(problem, 0) + 1
            if len(examples) < 20:
                examples.append((str(root / rel), problem))
            continue
        records.append(UtkRecord(Path(rel).name.split(".")[0], root / rel, age,
                                 -1 if gender is None else gender, -1 if race is None else race))
    if not records:
        raise DataError(f"no usable labelled UTKFace photos under {root} (excluded: {excluded or 'none found'})")
    if excluded:
        log.warning("UTKFace: excluded %d rows with labels out of range: %s", sum(excluded.values()), excluded)
    return UtkIndex(records, excluded, tuple(examples))


def index_utkface(root: Path) -> list[UtkRecord]:
    """Every usable labelled photo, sorted by path (``scan_utkface(root).records``). ``DataError`` if none."""
    return scan_utkface(root).records
