"""What an API reveals: output reductions applied as BlackBox → BlackBox (top-k, label only)."""

from __future__ import annotations

import numpy as np

from faceleaks.errors import ConfigError, UnsupportedOutputError
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult

__all__ = ["TopKBlackBox", "LabelOnlyBlackBox", "reveal"]


class TopKBlackBox:
    """Keeps the ``k`` largest posterior entries per row and zeroes the rest (rows no longer sum to 1)."""

    def __init__(self, box: BlackBox, *, k: int) -> None:
        if box.output_kind is not OutputKind.POSTERIOR:
            raise UnsupportedOutputError("TopKBlackBox wraps a posterior box")
        if k < 1:
            raise ConfigError(f"top-k needs k >= 1, got {k}")
        self.box, self.k = box, int(k)

    output_kind = OutputKind.TOPK

    @property
    def input_size(self) -> int:
        return self.box.input_size

    def query(self, images: np.ndarray) -> QueryResult:
        p = self.box.query(images).values
        out = np.zeros_like(p)
        idx = np.argsort(-p, axis=1, kind="stable")[:, : self.k]
        np.put_along_axis(out, idx, np.take_along_axis(p, idx, axis=1), axis=1)
        return QueryResult(OutputKind.TOPK, out)


class LabelOnlyBlackBox:
    """Returns only the arg-max class, (n,) int64."""

    def __init__(self, box: BlackBox) -> None:
        if box.output_kind is OutputKind.LABEL:
            raise UnsupportedOutputError("box already returns labels")
        self.box = box

    output_kind = OutputKind.LABEL

    @property
    def input_size(self) -> int:
        return self.box.input_size

    def query(self, images: np.ndarray) -> QueryResult:
        p = self.box.query(images).values
        return QueryResult(OutputKind.LABEL, p.argmax(axis=1).astype(np.int64))


def reveal(box: BlackBox, output: str, *, top_k: int = 3) -> BlackBox:
    """Wrap a posterior box so it reveals ``output``: ``posterior``, ``topk`` or ``label``."""
    if output == "posterior":
        return box
    if output == "topk":
        return TopKBlackBox(box, k=top_k)
    if output == "label":
        return LabelOnlyBlackBox(box)
    raise ConfigError(f"unknown output {output!r}; choose posterior, topk or label")
