"""The attribute-attack contract: labelled auxiliary faces in, guesses out (see ``classifier``).

``AttributeAttack`` queries the auxiliary faces in ``fit`` and the victim's photos in ``infer``;
subclasses implement the feature-level core (``fit_features`` / ``predict_proba_features``).
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass

import numpy as np

from faceleaks.attacks.base import Level
from faceleaks.attacks.features import centered_log_posterior
from faceleaks.errors import DataError, NotFittedError, UnsupportedOutputError
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult

__all__ = ["AttributeReferenceSet", "AttributeGuesses", "AttributeAttack", "output_features", "full_proba"]


@dataclass(frozen=True)
class AttributeReferenceSet:
    """Labelled auxiliary faces the attacker holds, and the box it may query them on.

    Attributes
    ----------
    box : BlackBox
    images : ndarray (n, S, S, 3) uint8 RGB crops
    labels : ndarray (n,) int64 in [0, n_classes); the only labels an attack ever receives
    n_classes : int, number of attribute values (2 for gender, 5 for race, ...)
    """

    box: BlackBox
    images: np.ndarray
    labels: np.ndarray
    n_classes: int

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if len(labels) != len(self.images) or len(labels) == 0:
            raise DataError(f"reference set has {len(self.images)} images and {len(labels)} labels (need >= 1, equal)")
        if labels.min() < 0 or labels.max() >= self.n_classes:
            raise DataError(f"reference labels must lie in [0, {self.n_classes}); got {labels.min()}..{labels.max()}")


@dataclass(frozen=True)
class AttributeGuesses:
    """What an attack infers for each queried photo (INSTANCE) or person (IDENTITY).

    Attributes
    ----------
    ids : ndarray (n,) str, image ids or identity ids; join with the truth by id
    proba : ndarray (n, n_classes) float64, rows sum to 1
    predicted : ndarray (n,) int64, the attack's decision, the arg-max of ``proba``
    attack : str
    level : Level
    n_queries : int, images sent to the box by this call (0 for observed outputs)
    """

    ids: np.ndarray
    proba: np.ndarray
    predicted: np.ndarray
    attack: str
    level: Level
    n_queries: int

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.proba) == len(self.predicted)):
            raise DataError("guesses: ids, proba and predicted differ in length")


def output_features(result: QueryResult, n_labels: int) -> np.ndarray:
    """Black-box output -> attack features, (n_queries, d) float64.

    Posterior / top-k: centred log-posteriors, d = n_classes of the student. Label-only: one-hot
    over ``n_labels`` student classes (labels >= n_labels give an all-zero row).
    """
    if result.kind is OutputKind.LABEL:
        labels = np.asarray(result.values, dtype=np.int64)
        out = np.zeros((len(labels), n_labels))
        ok = (labels >= 0) & (labels < n_labels)
        out[np.flatnonzero(ok), labels[ok]] = 1.0
        return out
    return centered_log_posterior(np.asarray(result.values, dtype=np.float64))


def _width(results: list[QueryResult]) -> int:
    """Feature width for label-only outputs: one more than the largest label seen at fit time."""
    return int(max(int(np.max(r.values, initial=0)) for r in results)) + 1


def full_proba(classes: np.ndarray, p: np.ndarray, n_classes: int) -> np.ndarray:
    """(m, n_classes) float64: ``p`` (m, len(classes)) placed in the columns of ``classes``, 0 elsewhere."""
    out = np.zeros((len(p), n_classes))
    out[:, classes.astype(int)] = p
    return out


class AttributeAttack(abc.ABC):
    """Base class: ``fit`` queries the auxiliary faces, ``infer`` the victim's photos.

    ``uses_unlabelled`` is True for attacks that learn from the outputs of unlabelled queries;
    ``is_baseline`` for baselines (no model access) that the study runs apart from the attacks.
    """

    name = "attribute-attack"
    uses_unlabelled = False
    is_baseline = False  # True: a reference without model access, not run as an attack

    def fit(self, reference: AttributeReferenceSet, *, unlabelled: QueryResult | None = None) -> "AttributeAttack":
        """Query the labelled auxiliary faces and fit; returns self.

        Parameters
        ----------
        reference : AttributeReferenceSet, the labelled auxiliary faces (queried through its box)
        unlabelled : QueryResult, optional; outputs of unlabelled faces the attacker observed or
            queried (used by attacks with ``uses_unlabelled``; ignored by the others)
        """
        results = [reference.box.query(reference.images)]
        if unlabelled is not None and self.uses_unlabelled and len(unlabelled.values):
            if unlabelled.kind is not results[0].kind:
                raise UnsupportedOutputError(f"unlabelled outputs are {unlabelled.kind.value}, the box returns "
                                             f"{results[0].kind.value}")
            results.append(unlabelled)
        self.output_kind_ = results[0].kind
        self.n_labels_ = _width(results) if self.output_kind_ is OutputKind.LABEL else 0
        feats = [output_features(r, self.n_labels_) for r in results]
        return self.fit_features(feats[0], reference.labels, n_classes=reference.n_classes,
                                 unlabelled=feats[1] if len(feats) > 1 else None)

    def infer(self, box: BlackBox, images: np.ndarray, *, ids: np.ndarray) -> AttributeGuesses:
        """Query ``images`` and infer the attribute of each (``n_queries`` = len(images)).

        Raises ``NotFittedError`` before ``fit``; ``UnsupportedOutputError`` if ``box`` reveals
        another output kind than at fit.
        """
        self._check_fitted()
        return dataclasses.replace(self.infer_outputs(box.query(images), ids=ids), n_queries=len(images))

    def infer_outputs(self, result: QueryResult, *, ids: np.ndarray) -> AttributeGuesses:
        """Infer the attribute from outputs the attacker observed (the victim's own queries).

        Parameters
        ----------
        result : QueryResult of n queries, of the kind seen at fit
        ids : ndarray (n,) str, an id per query (kept with the guesses for joining)

        Returns
        -------
        AttributeGuesses at INSTANCE level, ``n_queries`` 0 (nothing was sent)
        """
        self._check_fitted()
        if result.kind is not self.output_kind_:
            raise UnsupportedOutputError(f"{self.name} was fitted on {self.output_kind_.value} outputs, "
                                         f"got {result.kind.value}")
        proba = self.predict_proba_features(output_features(result, self.n_labels_))
        return AttributeGuesses(np.asarray(ids).astype(str), proba, proba.argmax(axis=1).astype(np.int64), self.name,
                                Level.INSTANCE, 0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(reference) first")

    @abc.abstractmethod
    def fit_features(self, features: np.ndarray, labels: np.ndarray, *, n_classes: int,
                     unlabelled: np.ndarray | None = None) -> "AttributeAttack":
        """Fit on features (n, d) float64 and labels (n,) int64 in [0, n_classes); returns self."""

    @abc.abstractmethod
    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        """Features (m, d) float64 -> class probabilities (m, n_classes) float64, rows sum to 1."""
