"""Face photos in memory (``FaceSet``), read from disk once and cached as aligned crops (one file per photo).

A ``FaceSet`` holds uint8 RGB crops of one fixed size, each with an image id and an identity.
Unreadable files are skipped, counted and reported, never fatal (unless nothing is left).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from faceleaks.errors import DataError
from faceleaks.progress import track

__all__ = ["FaceSet", "Chipper", "CenterCrop", "load_faces"]

log = logging.getLogger(__name__)


class Chipper(Protocol):
    """Turns one decoded photo (H, W, 3) uint8 RGB into a face crop (size, size, 3) uint8."""

    size: int

    @property
    def spec(self) -> str: ...

    def __call__(self, photo: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class CenterCrop:
    """Crop the central ``fraction`` of the photo's side and resize to ``size`` x ``size`` (bilinear).

    LFW deep-funneled photos are centred on the face, so a central crop is an alignment
    [reconstructed]: 0.5 keeps roughly eyebrows to chin on 250x250 LFW; 0.8 suits UTKFace crops.
    """

    fraction: float = 0.5
    size: int = 64

    @property
    def spec(self) -> str:
        return f"center-{self.fraction:.3f}-{self.size}"

    def __call__(self, photo: np.ndarray) -> np.ndarray:
        h, w = photo.shape[:2]
        side = int(round(min(h, w) * self.fraction))
        top, left = (h - side) // 2, (w - side) // 2
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        return np.asarray(crop.resize((self.size, self.size), Image.BILINEAR), dtype=np.uint8)


@dataclass(frozen=True)
class FaceSet:
    """Face crops with their ids.

    Attributes
    ----------
    images : ndarray of shape (n, S, S, 3), uint8 in [0, 255], aligned RGB crops
    image_ids : ndarray of shape (n,), str; unique (the file stem, e.g. ``George_W_Bush_0001``)
    identities : ndarray of shape (n,), str; the person (LFW) or ``""`` where unknown (UTKFace)
    unreadable : list of (path, reason) for files that were skipped
    """

    images: np.ndarray
    image_ids: np.ndarray
    identities: np.ndarray
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        if self.images.shape[0] != n or len(self.identities) != n:
            raise DataError("images, image_ids and identities differ in length")
        if len(set(self.image_ids.tolist())) != n:
            raise DataError("image ids are not unique")

    def __len__(self) -> int:
        return len(self.image_ids)

    def subset(self, image_ids) -> "FaceSet":
        """The photos with these ids, in the given order; ``DataError`` if one is unknown."""
        pos = {iid: i for i, iid in enumerate(self.image_ids.tolist())}
        try:
            idx = np.array([pos[i] for i in image_ids], dtype=np.int64)
        except KeyError as err:
            raise DataError(f"image id {err.args[0]!r} is not in this face set") from err
        return FaceSet(self.images[idx], self.image_ids[idx], self.identities[idx])


def _read(path: Path, chipper: Chipper) -> np.ndarray:
    with Image.open(path) as im:
        photo = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return chipper(photo)


def _photo_key(path: Path) -> str:
    """Cache name of one photo: a hash of its path and size (a replaced file gets a new chip)."""
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    return hashlib.sha256(f"{path}|{size}".encode()).hexdigest()[:24]


def _chip_folder(cache_dir: Path, chipper: Chipper) -> Path:
    spec = re.sub(r"[^A-Za-z0-9_.-]", "_", chipper.spec)
    return Path(cache_dir) / "chips" / spec


def _save_chip(path: Path, chip: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, chip)
    tmp.replace(path)


def load_faces(
    paths: list[Path], image_ids: list[str], identities: list[str], chipper: Chipper,
    *, cache_dir: Path | None = None, description: str = "reading faces",
) -> FaceSet:
    """Read and crop photos, each chip cached once in ``cache_dir/chips/<chipper spec>/``.

    The cache holds one ``.npy`` file (uint8, (S, S, 3)) per photo, named by a hash of the photo's
    path and size, so the many photo sets of different splits and seeds share their chips: the cache
    never holds more than one chip per photo and chipper (about 66 kB at 150 x 150). Unreadable photos
    are not cached: they are tried again, and reported again, on every call.

    Raises
    ------
    DataError
        If no photo could be read. Unreadable photos are otherwise skipped and listed in
        ``FaceSet.unreadable``.
    """
    folder = _chip_folder(cache_dir, chipper) if cache_dir is not None else None
    crops, ok, bad = [], [], []
    for i, path in enumerate(track(paths, description)):
        path = Path(path)
        cached = None
        if folder is not None:
            key = _photo_key(path)
            cached = folder / key[:2] / f"{key}.npy"
            if cached.exists():
                try:
                    chip = np.load(cached, allow_pickle=False)
                except (OSError, ValueError) as err:  # a torn or foreign file: chip the photo again
                    log.warning("ignoring unreadable cached chip %s: %s", cached, err)
                else:
                    if chip.dtype == np.uint8 and chip.shape == (chipper.size, chipper.size, 3):
                        crops.append(chip)
                        ok.append(i)
                        continue
        try:
            chip = _read(path, chipper)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            log.warning("skipping unreadable image %s: %s", path, err)
            bad.append((str(path), f"{type(err).__name__}: {err}"))
            continue
        crops.append(chip)
        ok.append(i)
        if cached is not None:
            _save_chip(cached, chip)
    if not ok:
        raise DataError(f"none of the {len(paths)} photos could be read (first: {bad[:1]})")
    return FaceSet(
        np.stack(crops).astype(np.uint8),
        np.array([image_ids[i] for i in ok]),
        np.array([identities[i] for i in ok]),
        bad,
    )
