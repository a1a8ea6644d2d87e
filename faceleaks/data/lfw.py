"""Labeled Faces in the Wild (LFW) in its standard folder layout.

``<root>/<Person_Name>/<Person_Name>_NNNN.jpg``, as in the official ``lfw.tgz``,
``lfw-funneled.tgz`` and ``lfw-deepfunneled.tgz`` archives (Huang et al. 2007).

Where LFW is looked for, in order:

1. the ``lfw_dir`` setting (``[data] lfw_dir`` / ``--lfw-dir``);
2. ``$FACELEAKS_LFW_DIR``;
3. ``$FACELEAKS_DATA_DIR/lfw``;
4. ``../shared/data/lfw`` from the working directory and from the faceleaks checkout;
5. scikit-learn's data home (``$SCIKIT_LEARN_DATA`` or ``~/scikit_learn_data``)``/lfw_home``;
6. if downloading is allowed, scikit-learn's ``fetch_lfw_people`` downloads the funneled set
   into 5 (about 250 MB, once).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from faceleaks.data.faces import BAD_NAME, display_path, valid_name
from faceleaks.data.folders import check_named_dirs, named_dirs, search_dirs
from faceleaks.errors import DataError

__all__ = ["LfwRecord", "find_lfw_root", "index_lfw", "candidate_dirs"]

log = logging.getLogger(__name__)

_IMAGE_FOLDERS = ("lfw-deepfunneled", "lfw_funneled", "lfw-funneled", "lfw")
_NOT_LFW = ("LFW photos (<Person>/<Person>_NNNN.jpg); point it at the folder containing lfw-deepfunneled/ "
            "or the person folders")


@dataclass(frozen=True)
class LfwRecord:
    """One LFW photo: ``image_id`` is the file stem, ``identity`` the person's folder name."""

    image_id: str
    identity: str
    path: Path


def _sklearn_home() -> Path:
    return Path(os.environ.get("SCIKIT_LEARN_DATA", "~/scikit_learn_data")).expanduser() / "lfw_home"


def candidate_dirs(lfw_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for LFW, in order (see the module docstring)."""
    return search_dirs("lfw", lfw_dir, "FACELEAKS_LFW_DIR", fallbacks=[_sklearn_home()])


def _image_folder(root: Path) -> Path | None:
    """The folder holding the per-person subfolders under ``root``, or None."""
    for name in _IMAGE_FOLDERS:
        if (root / name).is_dir() and any((root / name).iterdir()):
            return root / name
    if root.is_dir() and any(p.is_dir() and any(p.glob("*.jpg")) for p in list(root.iterdir())[:50]):
        return root
    return None


def _download(home: Path) -> None:
    from sklearn.datasets import fetch_lfw_people

    log.info("LFW not found locally: downloading with scikit-learn into %s", home.parent)
    # min_faces_per_person=300 keeps the in-memory load tiny; the download is the whole set.
    fetch_lfw_people(data_home=str(home.parent), funneled=True, min_faces_per_person=300,
                     download_if_missing=True)


def find_lfw_root(lfw_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Return the folder of per-person LFW subfolders.

    Raises
    ------
    DataError
        If an explicitly given folder has no LFW photos, or LFW is nowhere and cannot be
        downloaded; the message lists every folder looked in and what to do.
    """
    check_named_dirs(named_dirs("lfw", "lfw_dir", lfw_dir, "FACELEAKS_LFW_DIR"),
                     lambda folder: _image_folder(folder) is not None, _NOT_LFW)
    looked = candidate_dirs(lfw_dir)
    for root in looked:
        found = _image_folder(root)
        if found is not None:
            return found
    if download:
        try:
            _download(_sklearn_home())
        except OSError as err:  # URLError is an OSError
            log.warning("LFW download failed: %s", err)
        else:
            found = _image_folder(_sklearn_home())
            if found is not None:
                return found
    where = "\n  ".join(str(p) for p in looked)
    raise DataError(
        "LFW photos not found. Looked in:\n  " + where + "\n"
        + ("and the scikit-learn download failed. " if download else "(downloading is off). ")
        + "Set FACELEAKS_LFW_DIR (or --lfw-dir) to a folder with lfw-deepfunneled/<Person>/*.jpg, or "
        "FACELEAKS_DATA_DIR to a folder holding lfw/ and utkface/, "
        "or allow the download (scikit-learn's fetch_lfw_people) on a machine with network access."
    )


def index_lfw(root: Path, *, skipped: list[tuple[str, str]] | None = None) -> list[LfwRecord]:
    """All ``*.jpg`` photos under ``root/<Person>/``, sorted by identity then file name.

    A person folder or photo whose name is not valid UTF-8 is left out, logged, and appended to
    ``skipped`` (if given) as ``(path, reason)``, the path's invalid bytes as ``\\xNN`` escapes.
    Raises ``DataError`` if there are no photos.
    """
    records, bad = [], []
    for person in sorted(x for x in Path(root).iterdir() if x.is_dir()):
        for p in sorted(person.glob("*.jpg")):
            if valid_name(p):
                records.append(LfwRecord(p.stem, person.name, p))
            else:
                bad.append((display_path(p), BAD_NAME))
    for path, reason in bad:
        log.warning("skipping LFW photo %s: %s", path, reason)
    if skipped is not None:
        skipped.extend(bad)
    if not records:
        raise DataError(f"no LFW photos (<Person>/*.jpg) under {root}")
    return records
