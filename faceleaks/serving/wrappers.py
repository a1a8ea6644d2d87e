"""Boxes that wrap boxes: counting queries, caching answers, enforcing a query budget."""

from __future__ import annotations

import hashlib

import numpy as np

from faceleaks.errors import QueryBudgetExceeded
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult

__all__ = ["CountingBlackBox", "CachingBlackBox", "BudgetedBlackBox"]


class _Wrapper:
    def __init__(self, box: BlackBox) -> None:
        self.box = box

    @property
    def output_kind(self) -> OutputKind:
        return self.box.output_kind

    @property
    def input_size(self) -> int:
        return self.box.input_size


class CountingBlackBox(_Wrapper):
    """Counts images sent (``n_queries``) and calls made (``n_calls``) to the wrapped box."""

    def __init__(self, box: BlackBox) -> None:
        super().__init__(box)
        self.n_queries = 0
        self.n_calls = 0

    def query(self, images: np.ndarray) -> QueryResult:
        result = self.box.query(images)
        self.n_queries += len(images)
        self.n_calls += 1
        return result


class CachingBlackBox(_Wrapper):
    """The attacker's memo of answers, keyed by image content: each distinct image is sent once."""

    def __init__(self, box: BlackBox) -> None:
        super().__init__(box)
        self._memo: dict[bytes, np.ndarray] = {}

    def query(self, images: np.ndarray) -> QueryResult:
        keys = [hashlib.sha1(np.ascontiguousarray(im).tobytes()).digest() for im in images]
        first: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in self._memo and k not in first:
                first[k] = i
        if first:
            idx = np.array(sorted(first.values()))
            answer = self.box.query(np.asarray(images)[idx])
            for i, v in zip(idx, answer.values):
                self._memo[keys[i]] = v
        values = np.stack([self._memo[k] for k in keys]) if keys else np.zeros((0,))
        return QueryResult(self.output_kind, values)


class BudgetedBlackBox(_Wrapper):
    """Refuses (``QueryBudgetExceeded``) any call that would exceed ``budget`` images in total."""

    def __init__(self, box: BlackBox, *, budget: int) -> None:
        super().__init__(box)
        self.budget = int(budget)
        self.used = 0

    def query(self, images: np.ndarray) -> QueryResult:
        if self.used + len(images) > self.budget:
            raise QueryBudgetExceeded(f"query of {len(images)} images exceeds the budget "
                                      f"({self.used} of {self.budget} used)")
        self.used += len(images)
        return self.box.query(images)
