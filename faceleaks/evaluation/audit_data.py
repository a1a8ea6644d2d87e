"""An auditor's photos: folders of raw photos, one sub-folder per person, aligned as dlib aligns them.

[reconstructed] Each photo is read (``data.faces.load_faces``, cached per photo), the largest
face dlib's HOG detector finds in it (``dlib.get_frontal_face_detector()``, one upsampling step)
is aligned to a 150 x 150 chip with the 5-point landmarks (``data.chips.align_chips``: dlib's
``get_face_chip``, padding 0.25). A photo with no face, or one that cannot be read, is listed
with the reason and skipped, never fatal. Photos are taken in sorted file-name order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceleaks.data.chips import align_chips, hog_detector
from faceleaks.data.faces import FaceSet, load_faces
from faceleaks.errors import DataError

__all__ = ["AuditChipper", "PhotoFolder", "read_people", "PHOTO_SUFFIXES"]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class AuditChipper:
    """Raw photo (H, W, 3) uint8 → the dlib chip (size, size, 3) uint8 of its largest detected face.

    Raises ``ValueError("no face found ...")`` when the HOG detector finds none (``load_faces``
    then lists the photo as skipped).
    """

    size: int = 150
    padding: float = 0.25
    upsample: int = 1

    @property
    def spec(self) -> str:
        """Cache key naming every setting."""
        return f"audit-dlib5-hoglargest-u{self.upsample}-{self.size}-{self.padding:.3f}"

    def __call__(self, photo: np.ndarray) -> np.ndarray:
        """The aligned chip of the largest face in ``photo``."""
        dets = list(hog_detector()(np.ascontiguousarray(photo), self.upsample))
        if not dets:
            raise ValueError("no face found by dlib's HOG detector")
        d = max(dets, key=lambda r: r.width() * r.height())
        box = np.array([[d.left(), d.top(), d.right(), d.bottom()]], np.int64)
        return align_chips(photo[None], box, size=self.size, padding=self.padding)[0]


@dataclass(frozen=True)
class PhotoFolder:
    """The aligned photos of one folder of people.

    Attributes
    ----------
    images : ndarray (n, 150, 150, 3) uint8, the chips, grouped by person in sorted order
    identities : ndarray (n,) str, the person (sub-folder name) of each chip
    image_ids : ndarray (n,) str, ``person/file name`` of each chip
    skipped : list of (``person/file name``, reason): photos with no face or unreadable
    """

    images: np.ndarray
    identities: np.ndarray
    image_ids: np.ndarray
    skipped: list[tuple[str, str]]

    @property
    def people(self) -> list[str]:
        """Sorted people with at least one usable photo."""
        return sorted(set(self.identities.tolist()))


def _photos(folder: Path) -> tuple[list[Path], list[str], list[str]]:
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder: give a folder with one sub-folder of photos per person")
    paths, ids, people = [], [], []
    for person in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for photo in sorted(p for p in person.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
            paths.append(photo)
            ids.append(f"{person.name}/{photo.name}")
            people.append(person.name)
    if not paths:
        raise DataError(f"{folder} holds no photos ({', '.join(PHOTO_SUFFIXES)}) in sub-folders: give one "
                        "sub-folder of photos per person")
    return paths, ids, people


def read_people(folder: str | Path, *, cache_dir: Path | None = None, chipper: AuditChipper = AuditChipper(),
                what: str = "photos") -> PhotoFolder:
    """Read and align every photo of ``folder/<person>/*``.

    Raises
    ------
    DataError
        ``folder`` is not a folder, holds no photo, or no photo has a face.
    """
    folder = Path(folder)
    paths, ids, people = _photos(folder)
    by_path = {str(p): i for p, i in zip(paths, ids)}
    try:
        faces: FaceSet = load_faces(paths, ids, people, chipper, cache_dir=cache_dir, description=f"aligning {what}")
    except DataError as err:
        raise DataError(f"no usable face in the {len(paths)} photos of {folder}: {err}") from err
    skipped = [(by_path.get(p, p), reason.split(": ", 1)[-1]) for p, reason in faces.unreadable]
    return PhotoFolder(faces.images, faces.identities.astype(str), faces.image_ids.astype(str), skipped)
