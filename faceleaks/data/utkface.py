"""UTKFace aligned crops with age, gender and race labels (Zhang, Song & Qi, CVPR 2017).

Looked for at the ``utkface_dir`` setting, ``$FACELEAKS_UTKFACE_DIR``, ``$FACELEAKS_DATA_DIR/utkface``
and ``../shared/data/utkface`` (from the working directory and from the checkout). The folder holds
``labels.csv`` (columns path, age, gender, race) or, without it, ``*.jpg`` files named
``<age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]``. Gender 0 = male, 1 = female; race 0 White,
1 Black, 2 Asian, 3 Indian, 4 Others; -1 where a field is missing.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from faceleaks.data.folders import check_named_dirs, named_dirs, search_dirs
from faceleaks.errors import DataError

__all__ = ["UtkRecord", "find_utkface_root", "index_utkface"]

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


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


def index_utkface(root: Path) -> list[UtkRecord]:
    """Every labelled photo, sorted by path; rows without an age are skipped. ``DataError`` if none."""
    rows: list[tuple[str, str, str, str]] = []
    if (root / "labels.csv").is_file():
        with open(root / "labels.csv", newline="") as fh:
            rows = [(r["path"], r["age"], r["gender"], r["race"]) for r in csv.DictReader(fh)]
    else:
        for p in sorted(root.rglob("*.jpg")):
            parts = p.name.split("_")
            rows.append((str(p.relative_to(root)), *(parts + ["", "", ""])[:3]))
    records = [
        UtkRecord(Path(rel).name.split(".")[0], root / rel, _int(a), _int(g), _int(r))
        for rel, a, g, r in sorted(rows) if _int(a) >= 0
    ]
    if not records:
        raise DataError(f"no labelled UTKFace photos under {root}")
    return records
