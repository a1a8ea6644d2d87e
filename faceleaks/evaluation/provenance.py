"""Data-set fingerprints for a result's provenance: which photos, without copying or reading them.

``photo_list_digest`` hashes the sorted list of (path relative to a root, size in bytes) of the
photo files a result used [reconstructed]. It detects an added, removed, renamed or resized photo
(re-encoding almost always changes the size) at the cost of one ``stat`` per file, so it is cheap
enough to compute on every run (tens of milliseconds for LFW's 13,233 photos); it is not a hash of
the photos' bytes, and two folders with equal names and sizes hash equal.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["photo_list_digest", "folder_digest", "data_hashes", "DIGEST_WHAT"]

DIGEST_WHAT = "SHA-256 of the sorted (relative path, size in bytes) list of the photo files used"
"""What a digest of this module covers, in words the report quotes."""

_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}


def photo_list_digest(root: str | Path, paths: Iterable[str | Path]) -> str:
    """``sha256:<hex>`` over the sorted ``(relative path, size)`` of ``paths`` under ``root``.

    Parameters
    ----------
    root : folder the paths are made relative to (a path outside it is hashed as given)
    paths : photo files; a missing file is hashed with size -1 (so the digest still says "different")

    Examples
    --------
    >>> photo_list_digest("/nowhere", []) == "sha256:" + hashlib.sha256(b"").hexdigest()
    True
    """
    root = Path(root)
    entries = []
    for p in paths:
        p = Path(p)
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            rel = p.as_posix()
        try:
            size = os.stat(p).st_size
        except OSError:
            size = -1
        entries.append(f"{rel}\t{size}\n")
    h = hashlib.sha256()
    for line in sorted(entries):
        h.update(line.encode())
    return "sha256:" + h.hexdigest()


def folder_digest(root: str | Path) -> str:
    """:func:`photo_list_digest` of every photo file (by suffix) under ``root``, recursively."""
    root = Path(root)
    return photo_list_digest(root, (p for p in root.rglob("*") if p.suffix.lower() in _PHOTO_SUFFIXES and p.is_file()))


@functools.lru_cache(maxsize=16)
def _cached_digest(root: str, mtime_ns: int) -> str:
    return folder_digest(root)


def data_hashes(roots: dict[str, str | Path | None]) -> dict[str, str]:
    """name -> :func:`folder_digest` of each existing folder in ``roots`` (a missing one is left out).

    Cached in the process per folder and its modification time (a run with several stages, or a
    test session, lists each folder once); about a second for LFW and UTKFace together on a warm disk.
    """
    out = {}
    for name, root in roots.items():
        if root is not None and Path(root).is_dir():
            out[name] = _cached_digest(str(Path(root).resolve()), Path(root).stat().st_mtime_ns)
    return out
