"""Attack contracts and result types.

Attacks follow scikit-learn's estimator contract: keyword-only hyperparameters in ``__init__``,
``fit(references)`` calibrates, ``score(box, images, identity_ids=...)`` scores. They see victim
students only through ``BlackBox.query``; ``ReferenceSet`` carries what the attacker may know.

Sign convention: ``MembershipScores.scores`` are **higher = more likely member**, always.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceleaks.errors import DataError, NotFittedError
from faceleaks.serving.protocol import BlackBox

__all__ = ["Level", "ReferenceSet", "MembershipScores", "MembershipAttack", "PublicBase", "ShadowModel",
           "group_indices"]


class Level(enum.Enum):
    """INSTANCE: one score per photo. IDENTITY: one score per person, from k of their photos."""

    INSTANCE = "instance"
    IDENTITY = "identity"


@dataclass(frozen=True)
class ReferenceSet:
    """Photos with membership truth the attacker legitimately knows, and the box to query them on.

    Either a shadow student the attacker built itself (``is_member`` mixed), or the victim box
    queried with photos of people the attacker knows are not members (``is_member`` all False).

    Attributes
    ----------
    box : BlackBox
    images : ndarray (n, S, S, 3) uint8
    identity_ids : ndarray (n,) str
    is_member : ndarray (n,) bool, per photo (constant within an identity at identity level)
    """

    box: BlackBox
    images: np.ndarray
    identity_ids: np.ndarray
    is_member: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if len(self.identity_ids) != n or len(self.is_member) != n:
            raise DataError("ReferenceSet images, identity_ids and is_member differ in length")


class PublicBase(abc.ABC):
    """The attacker's own copy of the public model the victim teacher was fine-tuned from.

    ``embed(images)`` maps uint8 (n, S, S, 3) crops to float (n, d) embeddings. It is an attacker
    resource (the base is public), built by the experiment layer and passed to ``fit``.
    """

    @abc.abstractmethod
    def embed(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ShadowModel:
    """A shadow student the attacker built itself, and the identities its shadow teacher trained on."""

    box: BlackBox
    members: frozenset[str]


@dataclass(frozen=True)
class MembershipScores:
    """Scores of one attack; **higher = more likely member** of the teacher's training set.

    Attributes
    ----------
    scores : ndarray (n,) float64, finite
    ids : ndarray (n,) str; image ids (INSTANCE) or identity ids (IDENTITY)
    level : Level
    attack : str
    threshold : float, the attacker's calibrated decision threshold (member if score >= it)
    n_queries : int, images this call sent to the box (before the attacker's own cache)
    """

    scores: np.ndarray
    ids: np.ndarray
    level: Level
    attack: str
    threshold: float
    n_queries: int


def group_indices(identity_ids: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Sorted unique identities and, for each, the indices of its photos (in input order)."""
    identity_ids = np.asarray(identity_ids).astype(str)
    names, inverse = np.unique(identity_ids, return_inverse=True)
    return names.tolist(), [np.flatnonzero(inverse == i) for i in range(len(names))]


class MembershipAttack(abc.ABC):
    """Base class. Subclasses set ``name``, ``level`` and implement ``_features`` and ``fit``."""

    name: str = "attack"

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(references) first")

    @abc.abstractmethod
    def fit(self, references: Sequence[ReferenceSet]) -> "MembershipAttack":
        """Calibrate on what the attacker knows; returns self.

        Parameters
        ----------
        references : sequence of ReferenceSet
            Known non-members queried on the victim box (standardisation, threshold) and/or a
            shadow student with known members (threshold, classifier). Queries go through each
            set's box only.

        Raises
        ------
        DataError
            Too little reference data (e.g. no identity with k photos).
        UnsupportedOutputError
            The box's output kind lacks what the attack needs (e.g. labels for a posterior feature).
        """

    @abc.abstractmethod
    def score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
              image_ids: np.ndarray | None = None) -> MembershipScores:
        """Membership scores through ``box`` (higher = member).

        Parameters
        ----------
        box : BlackBox, the victim student's API
        images : ndarray (n, S, S, 3) uint8, aligned RGB crops of ``box.input_size``
        identity_ids : ndarray (n,) str, the person in each photo
        image_ids : ndarray (n,) str, optional; ids of the photos (INSTANCE level results)

        Returns
        -------
        MembershipScores
            One score per photo (INSTANCE) or per identity from its first k photos (IDENTITY).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        DataError
            An identity with fewer than k photos (IDENTITY level).
        """
