"""The black-box interface: the only way attacks reach a victim student.

A ``BlackBox`` takes face crops and returns what a deployed API would: the posterior vector,
its top-k entries, or only the label. It never exposes weights. Modelled on httpx's one-method
``BaseTransport``: wrappers (counting, caching, budgets, output defences) are BlackBoxes too.

In one process an attribute can lead anywhere, so the boxes of ``faceleaks.serving`` keep what
answers them owner-side (``serving.endpoints``), and the box an attack receives is sealed
(``serving.sealed.seal``): it exposes ``query``, ``output_kind``, ``input_size`` and ``n_queries``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from faceleaks.errors import QueryError

__all__ = ["OutputKind", "QueryResult", "BlackBox", "DeclaredBox", "check_images"]


class OutputKind(enum.Enum):
    """What a box returns per query.

    POSTERIOR: (n, n_classes) float32, rows sum to 1.
    TOPK: (n, n_classes) float32 posteriors with all but the k largest entries set to 0.
    LABEL: (n,) int64 predicted class.
    """

    POSTERIOR = "posterior"
    TOPK = "topk"
    LABEL = "label"


@dataclass(frozen=True)
class QueryResult:
    """A box's answer; ``values`` shape and dtype depend on ``kind`` (see ``OutputKind``)."""

    kind: OutputKind
    values: np.ndarray

    def __post_init__(self) -> None:
        v = self.values
        if self.kind is OutputKind.LABEL:
            if v.ndim != 1:
                raise QueryError(f"LABEL outputs must be (n,), got {v.shape}")
        elif v.ndim != 2:
            raise QueryError(f"{self.kind.value} outputs must be (n, n_classes), got {v.shape}")
        elif not np.all(np.isfinite(v)):
            raise QueryError(f"the box returned {int((~np.isfinite(v)).sum())} NaN/inf output values")


@runtime_checkable
class BlackBox(Protocol):
    """Query access to a model. ``query`` takes uint8 (n, S, S, 3) RGB crops of ``input_size``."""

    @property
    def output_kind(self) -> OutputKind:
        """What ``query`` returns (posterior, top-k or label)."""

    @property
    def input_size(self) -> int:
        """Side S, pixels, of the square crops the box accepts."""

    def query(self, images: np.ndarray) -> QueryResult:
        """Answer for each image: uint8 (n, S, S, 3) RGB in, ``QueryResult`` of n rows out.

        Raises ``QueryError`` for malformed images, a failed or unreachable model, or NaN outputs.
        """


class DeclaredBox:
    """Base of a box whose output kind and input size are fixed when it is built: subclasses set
    ``_kind`` (OutputKind) and ``_input_size`` (int, pixels) and get ``BlackBox``'s two properties."""

    __slots__ = ()
    _kind: OutputKind
    _input_size: int

    @property
    def output_kind(self) -> OutputKind:
        """What ``query`` returns (posterior, top-k or label)."""
        return self._kind

    @property
    def input_size(self) -> int:
        """Side S, pixels, of the square crops the box accepts."""
        return self._input_size


def check_images(images: np.ndarray, size: int) -> np.ndarray:
    """Validate a query batch: uint8 (n, size, size, 3); raises ``QueryError`` otherwise."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise QueryError(f"queries must be uint8 (n, {size}, {size}, 3) RGB crops, got {images.dtype} {images.shape}")
    return images
