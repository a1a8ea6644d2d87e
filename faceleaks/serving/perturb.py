"""What an API reveals: output reductions applied as BlackBox → BlackBox (top-k, label only).

More output defences (rounding, noise) and their registry live in ``serving.defences``.

Each reduction keeps the box it reduces owner-side (``serving.endpoints``), so it cannot be
peeled off to reach the full posteriors.
"""

from __future__ import annotations

import numpy as np

from faceleaks.errors import ConfigError, UnsupportedOutputError
from faceleaks.serving.endpoints import WrappingBox
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult

__all__ = ["TopKBlackBox", "LabelOnlyBlackBox", "reveal"]


class TopKBlackBox(WrappingBox):
    """Keeps the ``k`` largest posterior entries per row and zeroes the rest.

    Parameters
    ----------
    box : BlackBox of kind POSTERIOR
    k : int >= 1
    renormalise : bool
        False (default, as before): the kept entries are the posteriors themselves, so a row sums
        to its top-k mass, in (0, 1]. True: the kept entries are divided by that mass (rows sum to 1).

    Raises
    ------
    ConfigError
        k < 1.
    UnsupportedOutputError
        A box that does not return full posteriors.
    """

    def __init__(self, box: BlackBox, *, k: int, renormalise: bool = False) -> None:
        if box.output_kind is not OutputKind.POSTERIOR:
            raise UnsupportedOutputError(f"TopKBlackBox needs a posterior box, got a {box.output_kind.value} box; "
                                         "apply top-k to the posterior box itself")
        if k < 1:
            raise ConfigError(f"top-k needs k >= 1, got {k}")
        super().__init__(box)
        self.k = int(k)
        self.renormalise = bool(renormalise)

    output_kind = OutputKind.TOPK

    row_sum_tolerance_per_class = 0.0

    @property
    def row_sum_tolerance(self) -> float:
        """How far a row's sum may exceed 1: float32 rounding (1e-6), or the inner box's own tolerance if
        larger. The contract's TOPK rule is a row sum in (0, 1 + tolerance]: renormalised rows sum to 1;
        otherwise a row keeps the top-k posteriors' mass, at most the inner row's sum. (A tolerance of 1,
        declared before, let top-k rows sum to 2.)"""
        return max(1e-6, self._inner.tolerance + self._inner.per_class * (self._inner.n_classes or 0))

    def query(self, images: np.ndarray) -> QueryResult:
        """(n_queries, n_classes) float32: the inner posteriors with all but the k largest set to 0."""
        p = self._ask(images).values
        out = np.zeros_like(p)
        idx = np.argsort(-p, axis=1, kind="stable")[:, : self.k]
        np.put_along_axis(out, idx, np.take_along_axis(p, idx, axis=1), axis=1)
        if self.renormalise:
            out = (out / np.maximum(out.sum(axis=1, keepdims=True), np.finfo(out.dtype).tiny)).astype(p.dtype)
        return QueryResult(OutputKind.TOPK, out)


class LabelOnlyBlackBox(WrappingBox):
    """Returns only the arg-max class, (n,) int64."""

    def __init__(self, box: BlackBox) -> None:
        if box.output_kind is OutputKind.LABEL:
            raise UnsupportedOutputError("LabelOnlyBlackBox needs a posterior or top-k box, got a label box; "
                                         "it already reveals only labels")
        super().__init__(box)

    output_kind = OutputKind.LABEL
    row_sum_tolerance = 0.0
    """Vacuous: label answers have no rows to sum."""
    row_sum_tolerance_per_class = 0.0

    def query(self, images: np.ndarray) -> QueryResult:
        """(n_queries,) int64: the arg-max class of each inner answer."""
        p = self._ask(images).values
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
