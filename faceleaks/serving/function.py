"""``FunctionBlackBox``: a box around a plain function; the test fake (like httpx's MockTransport)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from faceleaks.serving.protocol import DeclaredBox, OutputKind, QueryResult, check_images

__all__ = ["FunctionBlackBox"]


class FunctionBlackBox(DeclaredBox):
    """Answers queries with ``fn(images) -> values`` (shape per ``kind``, see ``OutputKind``)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], *, kind: OutputKind = OutputKind.POSTERIOR,
                 input_size: int = 64) -> None:
        self.fn = fn
        self._kind = kind
        self._input_size = input_size

    def query(self, images: np.ndarray) -> QueryResult:
        images = check_images(images, self._input_size)
        return QueryResult(self._kind, np.asarray(self.fn(images)))
