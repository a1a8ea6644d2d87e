"""``FunctionBlackBox``: a box around a plain function; the test fake (like httpx's MockTransport)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from faceleaks.serving.protocol import OutputKind, QueryResult, check_images

__all__ = ["FunctionBlackBox"]


class FunctionBlackBox:
    """Answers queries with ``fn(images) -> values`` (shape per ``kind``, see ``OutputKind``)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], *, kind: OutputKind = OutputKind.POSTERIOR,
                 input_size: int = 64) -> None:
        self.fn = fn
        self.kind = kind
        self._input_size = input_size

    @property
    def output_kind(self) -> OutputKind:
        return self.kind

    @property
    def input_size(self) -> int:
        return self._input_size

    def query(self, images: np.ndarray) -> QueryResult:
        images = check_images(images, self._input_size)
        return QueryResult(self.kind, np.asarray(self.fn(images)))
