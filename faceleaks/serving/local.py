"""``LocalBlackBox``: a student served in-process."""

from __future__ import annotations

import numpy as np

from faceleaks.errors import QueryError
from faceleaks.models.student import Student
from faceleaks.serving.protocol import OutputKind, QueryResult, check_images

__all__ = ["LocalBlackBox"]


class LocalBlackBox:
    """Answers with the student's posteriors (n, n_classes) float32; never exposes the student."""

    output_kind = OutputKind.POSTERIOR

    def __init__(self, student: Student) -> None:
        self._student = student

    @property
    def input_size(self) -> int:
        return self._student.input_size

    @property
    def n_classes(self) -> int:
        return len(self._student.classes)

    def query(self, images: np.ndarray) -> QueryResult:
        images = check_images(images, self.input_size)
        if len(images) == 0:
            return QueryResult(OutputKind.POSTERIOR, np.zeros((0, self.n_classes), np.float32))
        p = self._student.predict_proba(images)
        if not np.all(np.isfinite(p)):
            raise QueryError(f"student {self._student.name} produced NaN posteriors")
        return QueryResult(OutputKind.POSTERIOR, p)
