"""``LocalBlackBox``: a student served in-process, which the box itself does not keep.

The student's ``predict_proba`` is registered owner-side (``serving.endpoints``); the box keeps
only the handle and the crop size, so no attribute of it leads to the student, its teacher,
their weights or their training identities.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from faceleaks.errors import QueryError
from faceleaks.models.student import Student
from faceleaks.serving.endpoints import HandleBox, call, register
from faceleaks.serving.protocol import OutputKind, QueryResult, check_images

__all__ = ["LocalBlackBox"]


def _posteriors(predict_proba: Callable[[np.ndarray], np.ndarray], name: str, n_classes: int,
                images: np.ndarray) -> QueryResult:
    """The student's answer: (n_queries, n_classes) float32 posteriors; QueryError on NaN."""
    if len(images) == 0:
        return QueryResult(OutputKind.POSTERIOR, np.zeros((0, n_classes), np.float32))
    p = predict_proba(images)
    if not np.all(np.isfinite(p)):
        raise QueryError(f"student {name} produced NaN posteriors")
    return QueryResult(OutputKind.POSTERIOR, p)


class LocalBlackBox(HandleBox):
    """Answers with the student's posteriors (n_queries, n_classes) float32; never exposes the student.

    Parameters
    ----------
    student : Student
        The owner's model; only its bound ``predict_proba`` is kept, owner-side.
    """

    output_kind = OutputKind.POSTERIOR

    def __init__(self, student: Student) -> None:
        self._input_size = int(student.input_size)
        self._handle = register(self, partial(_posteriors, student.predict_proba, student.name,
                                              len(student.classes)))

    @property
    def input_size(self) -> int:
        """Side S, pixels, of the square crops the student takes."""
        return self._input_size

    def query(self, images: np.ndarray) -> QueryResult:
        """Posteriors for uint8 (n_queries, S, S, 3) RGB crops; ``QueryError`` on bad crops or NaN."""
        return call(self._handle, check_images(images, self._input_size))
