"""Exceptions and warnings raised by faceleaks.

::

    FaceLeaksError
     ├── ConfigError(ValueError)      an unknown or invalid setting
     ├── DataError                    missing/empty data, overlapping splits, too few photos
     ├── NotFittedError(AttributeError)  score/infer called before fit
     ├── QueryError                   a black box failed or returned bad outputs
     │    ├── QueryBudgetExceeded
     │    └── UnsupportedOutputError  e.g. an attack needing posteriors given labels
     ├── ArtifactError                a cached model or weights file is missing or corrupt
     └── TaskError                    a task run by the executor (e.g. a shadow teacher) failed

    FaceLeaksWarning(UserWarning)
     └── UndefinedMetricWarning       e.g. TPR at 0.1 % FPR with only 50 negatives
"""

from __future__ import annotations

__all__ = [
    "FaceLeaksError",
    "ConfigError",
    "DataError",
    "NotFittedError",
    "QueryError",
    "QueryBudgetExceeded",
    "UnsupportedOutputError",
    "ArtifactError",
    "TaskError",
    "FaceLeaksWarning",
    "UndefinedMetricWarning",
]


class FaceLeaksError(Exception):
    """Base class of every error faceleaks raises on purpose."""


class ConfigError(FaceLeaksError, ValueError):
    """An unknown or invalid setting; the message names it and the allowed values."""


class DataError(FaceLeaksError):
    """Data missing, empty, unreadable, too small for the request, or splits overlapping."""


class NotFittedError(FaceLeaksError, AttributeError):
    """An attack was used before ``fit``."""


class QueryError(FaceLeaksError):
    """A black box failed to answer or answered with malformed outputs (NaN, wrong shape)."""


class QueryBudgetExceeded(QueryError):
    """More queries were asked for than the box's budget allows."""


class TaskError(FaceLeaksError):
    """A task run by ``faceleaks.executor.run_tasks`` raised; the message names the task."""


class UnsupportedOutputError(QueryError):
    """The box's output kind does not carry what the attack needs."""


class ArtifactError(FaceLeaksError):
    """A cached model, weights file or manifest is missing, corrupt or of another version."""


class FaceLeaksWarning(UserWarning):
    """Base class of faceleaks warnings."""


class UndefinedMetricWarning(FaceLeaksWarning):
    """A metric cannot be resolved from the data (too few negatives); it is returned as NaN."""
