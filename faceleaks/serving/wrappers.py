"""Boxes that wrap boxes: counting queries, caching answers, enforcing a query budget.

Each keeps its inner box owner-side (``serving.endpoints``): a wrapper exposes ``query``,
``output_kind``, ``input_size`` and its own counters, never the box it wraps.
"""

from __future__ import annotations

import numpy as np

from faceleaks.errors import QueryBudgetExceeded
from faceleaks.memo import ImageMemo
from faceleaks.serving.endpoints import WrappingBox, counts
from faceleaks.serving.protocol import BlackBox, QueryResult

__all__ = ["CountingBlackBox", "CachingBlackBox", "BudgetedBlackBox"]


class CountingBlackBox(WrappingBox):
    """Counts images sent (``n_queries``) and calls made (``n_calls``) to the wrapped box.

    Only answered calls count: a call the inner box refuses or fails adds nothing.
    """

    @property
    def n_queries(self) -> int:
        """Images the wrapped box has answered through this wrapper."""
        return counts(self._handle)[0]

    @property
    def n_calls(self) -> int:
        """Calls the wrapped box has answered through this wrapper."""
        return counts(self._handle)[1]

    def query(self, images: np.ndarray) -> QueryResult:
        """The wrapped box's answer to ``images`` (n_queries, S, S, 3) uint8, counted."""
        return self._ask(images)


class CachingBlackBox(WrappingBox):
    """The attacker's memo of answers, keyed by image content: each distinct image is sent once.

    The images not yet answered are sent in one call, in the order of their first occurrence
    (``faceleaks.memo.ImageMemo``); an empty query is passed through, so its answer has the
    inner box's shape.
    """

    def __init__(self, box: BlackBox) -> None:
        super().__init__(box)
        self._memo = ImageMemo()

    def query(self, images: np.ndarray) -> QueryResult:
        """Answers (n_queries rows) for ``images`` (n_queries, S, S, 3) uint8, from the memo where known."""
        images = np.asarray(images)
        if len(images) == 0:
            return self._ask(images)
        return QueryResult(self.output_kind, self._memo.get(images, lambda todo: self._ask(todo).values))


class BudgetedBlackBox(WrappingBox):
    """Refuses (``QueryBudgetExceeded``) any call that would exceed ``budget`` images in total.

    Images of a call the inner box then fails still count as used.
    """

    def __init__(self, box: BlackBox, *, budget: int) -> None:
        super().__init__(box)
        self.budget = int(budget)
        self._used = 0

    @property
    def used(self) -> int:
        """Images charged to the budget so far."""
        return self._used

    def query(self, images: np.ndarray) -> QueryResult:
        """The wrapped box's answer, if ``len(images)`` more fits the budget."""
        if self._used + len(images) > self.budget:
            raise QueryBudgetExceeded(f"query of {len(images)} images exceeds the budget "
                                      f"({self._used} of {self.budget} used); raise the budget or query fewer images")
        self._used += len(images)
        return self._ask(images)
