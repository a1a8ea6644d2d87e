"""Face photos in memory (``FaceSet``), read from disk once and cached as aligned crops (one file per photo).

A ``FaceSet`` holds uint8 RGB crops of one fixed size, each with an image id and an identity.
Unusable files are skipped, counted and reported with their path and reason, never fatal (unless
nothing is left): undecodable, a degenerate size (a side under ``MIN_SIDE`` pixels), over the
pixel limit (``MAX_PIXELS``, checked from the header before decoding: decompression bombs), a
name that is not valid UTF-8, or no face found by the chipper. [reconstructed] the two limits.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from faceleaks.atomic import atomic_save_npy
from faceleaks.errors import ArtifactError, DataError
from faceleaks.progress import track

__all__ = ["FaceSet", "Chipper", "CenterCrop", "load_faces", "display_path", "valid_name", "BAD_NAME", "MIN_SIDE",
           "MAX_PIXELS", "CHIP_PIPELINE_VERSION"]

log = logging.getLogger(__name__)

#: Smallest usable photo side, pixels (a 1x1 or 3x200 photo holds no face).
MIN_SIDE = 16
#: Largest usable photo, pixels (width x height), checked before decoding; LFW photos have 62,500.
MAX_PIXELS = 40_000_000
#: Version of the decode-and-chip code, part of every chip's cache key: raise it when a change of that
#: code changes the chips, so cached chips of the older code are never read.
CHIP_PIPELINE_VERSION = 2
#: Why a photo whose path is not valid UTF-8 is skipped.
BAD_NAME = "name not valid UTF-8: rename the file or folder"


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


class _Unusable(Exception):
    """A photo that cannot be used; the message is the reason listed in ``FaceSet.unreadable``."""


def display_path(path: str | os.PathLike) -> str:
    """``path`` as printable text: bytes that are not valid UTF-8 shown as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def valid_name(path: str | os.PathLike) -> bool:
    """Whether ``path`` (every folder and file name in it) is valid UTF-8; photos with other names are skipped."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode(data: bytes) -> np.ndarray:
    """The photo in ``data`` (H, W, 3) uint8 RGB, or ``_Unusable`` naming why not (header checked first)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if min(w, h) < MIN_SIDE:
                    raise _Unusable(f"degenerate size: {w}x{h} pixels (each side needs >= {MIN_SIDE})")
                if w * h > MAX_PIXELS:
                    raise _Unusable(f"over the pixel limit: {w}x{h} = {w * h:,} pixels (limit {MAX_PIXELS:,})")
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _Unusable(f"over the pixel limit (decompression bomb): {err}") from err
    except UnidentifiedImageError as err:  # its message names the in-memory buffer: leave that out
        raise _Unusable("undecodable: UnidentifiedImageError: cannot identify image file") from err
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise _Unusable(f"undecodable: {type(err).__name__}: {err}") from err


def _file_bytes(path: Path) -> bytes:
    """The photo file's bytes (read once: they key the chip cache and are decoded on a miss)."""
    if not valid_name(path):
        raise _Unusable(BAD_NAME)
    try:
        return path.read_bytes()
    except OSError as err:  # missing, a folder, unreadable
        raise _Unusable(f"undecodable: {type(err).__name__}: {err.strerror or err}") from err


def _chip(data: bytes, chipper: Chipper) -> np.ndarray:
    photo = _decode(data)
    try:
        return chipper(photo)
    except (DataError, ValueError, IndexError, RuntimeError) as err:
        raise _Unusable(f"no face found: {type(err).__name__}: {err}") from err


def _photo_key(data: bytes, spec: str) -> str:
    """Cache name of one photo's chip: a hash of the file's bytes, the chipper and ``CHIP_PIPELINE_VERSION``.

    Keyed by content, not by path or time: a photo changed in place gets a new chip, and copies of
    one photo share theirs.
    """
    digest = hashlib.sha256(f"{CHIP_PIPELINE_VERSION}|{spec}|".encode())
    digest.update(data)
    return digest.hexdigest()[:32]


def _chip_folder(cache_dir: Path, chipper: Chipper) -> Path:
    spec = re.sub(r"[^A-Za-z0-9_.-]", "_", chipper.spec)
    return Path(cache_dir) / "chips" / spec


def _save_chip(path: Path, chip: np.ndarray, unsaved: list[str]) -> None:
    """Cache ``chip`` atomically; a cache that cannot be written (full, read-only) is only logged.

    The first failure of a ``load_faces`` call is a warning, later ones are counted into ``unsaved``
    and summed up in one warning at the end (not one line per photo).
    """
    try:
        atomic_save_npy(path, chip)
    except ArtifactError as err:
        if not unsaved:
            log.warning("face chip not cached: %s", err)
        unsaved.append(str(err))


def _cached_chip(cached: Path, chipper: Chipper) -> np.ndarray | None:
    """The chip cached at ``cached``, or None if absent, torn or foreign (logged: it is made again)."""
    try:
        chip = np.load(cached, allow_pickle=False)
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001  torn or foreign (numpy may even raise SyntaxError): chip again
        log.warning("rebuilding unreadable cached chip %s: %s: %s", cached, type(err).__name__,
                    " ".join(str(err).split())[:200])
        return None
    if chip.dtype != np.uint8 or chip.shape != (chipper.size, chipper.size, 3):
        log.warning("rebuilding cached chip %s of %s %s", cached, chip.dtype, chip.shape)
        return None
    return chip


def load_faces(
    paths: list[Path], image_ids: list[str], identities: list[str], chipper: Chipper,
    *, cache_dir: Path | None = None, description: str = "reading faces",
    skipped: list[tuple[str, str]] = (),
) -> FaceSet:
    """Read and crop photos, each chip cached once in ``cache_dir/chips/<chipper spec>/``.

    The cache holds one ``.npy`` file (uint8, (S, S, 3)) per photo, named by a hash of the photo
    file's bytes, the chipper and ``CHIP_PIPELINE_VERSION`` (content-addressed), so the many photo
    sets of different splits and seeds share their chips: the cache never holds more than one chip
    per photo content and chipper (about 66 kB at 150 x 150). A photo changed in place has new
    bytes, hence a new key; a torn or foreign cached chip is logged and made again. Each photo file is
    read once (no other file-system call on a cache hit but the chip's own read); chips are written
    atomically, and a cache that cannot be written is only logged. Unusable photos are not
    cached: they are tried again, and reported again, on every call.

    ``skipped`` lists ``(path, reason)`` of photos found unusable before (e.g. when indexing);
    they head ``FaceSet.unreadable``.

    Raises
    ------
    DataError
        If no photo could be used. Unusable photos (see the module docstring) are otherwise
        skipped and listed in ``FaceSet.unreadable`` as ``(path, reason)``.
    """
    folder = _chip_folder(cache_dir, chipper) if cache_dir is not None else None
    crops, ok, bad, unsaved = [], [], list(skipped), []
    for i, path in enumerate(track(paths, description)):
        path = Path(path)
        try:
            data = _file_bytes(path)
            cached = None
            if folder is not None:
                key = _photo_key(data, chipper.spec)
                cached = folder / key[:2] / f"{key}.npy"
                chip = _cached_chip(cached, chipper)
                if chip is not None:
                    crops.append(chip)
                    ok.append(i)
                    continue
            chip = _chip(data, chipper)
        except _Unusable as err:
            log.warning("skipping photo %s: %s", display_path(path), err)
            bad.append((display_path(path), str(err)))
            continue
        crops.append(chip)
        ok.append(i)
        if cached is not None:
            _save_chip(cached, chip, unsaved)
    if len(unsaved) > 1:
        log.warning("%d face chips were not cached (first: %s)", len(unsaved), unsaved[0])
    if not ok:
        raise DataError(f"none of the {len(paths)} photos could be used (first: {bad[:1]})")
    return FaceSet(
        np.stack(crops).astype(np.uint8),
        np.array([image_ids[i] for i in ok]),
        np.array([identities[i] for i in ok]),
        bad,
    )
