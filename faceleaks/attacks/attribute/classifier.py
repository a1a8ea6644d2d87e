"""Attribute inference from a student's black-box outputs: output -> sensitive attribute.

A student trained for one task (who is this? how old?) still returns outputs that are a
function of the teacher's embedding, and that embedding encodes gender, race and age. The
attacker queries the student with a few faces whose attribute it knows (an
``AttributeReferenceSet``), learns a map from outputs to the attribute, and applies it to the
outputs of a victim's photo, either observed (``infer_outputs``) or queried (``infer``)
[paper, abstract: "sensitive attributes ... can be inferred ... even in the case where the
adversary has limited auxiliary information"; the models below are reconstructed].

Features [reconstructed]: for posterior and top-k boxes, the centred log-posterior
(``attacks.features.centered_log_posterior``: for a softmax head the logits up to a constant,
i.e. a linear view of the teacher embedding); for label-only boxes, the one-hot label.

Attacks (scikit-learn contract; each has a feature-level core, ``fit_features`` /
``predict_proba_features``, which the evaluation also applies to the teacher's embeddings as a
white-box upper reference):

- ``logreg``: standardised features, multinomial logistic regression, class-balanced weights;
- ``knn``: standardised features, distance-weighted k nearest neighbours; votes divided by the
  auxiliary class frequencies (renormalised), so a class that dominates the auxiliary set does
  not win by default;
- ``cluster``: k-means on the outputs of unlabelled queries plus the labelled ones; each cluster
  is named by the class-frequency-normalised labels that fall in it (clusters without labels take
  the name of the nearest named cluster);
- ``prior-only``: baseline without model access, predicting the auxiliary labels' majority class
  with the auxiliary class frequencies as probabilities. It never queries the box.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from faceleaks.attacks.base import Level
from faceleaks.attacks.features import centered_log_posterior
from faceleaks.errors import DataError, NotFittedError, UnsupportedOutputError
from faceleaks.seeding import make_rng
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult

__all__ = [
    "AttributeReferenceSet", "AttributeGuesses", "AttributeAttack", "LogisticAttributeAttack",
    "KnnAttributeAttack", "ClusterAttributeAttack", "PriorOnlyAttributeAttack", "ATTRIBUTE_ATTACKS",
    "create_attribute_attack", "output_features",
]


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


def _full(classes: np.ndarray, p: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(p), n_classes))
    out[:, classes.astype(int)] = p
    return out


class AttributeAttack(abc.ABC):
    """Base class: ``fit`` queries the auxiliary faces, ``infer`` the victim's photos.

    ``uses_unlabelled`` is True for attacks that learn from the outputs of unlabelled queries.
    """

    name = "attribute-attack"
    uses_unlabelled = False

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


def _prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=n_classes) / len(labels)


class LogisticAttributeAttack(AttributeAttack):
    """Standardised features -> multinomial logistic regression (``C``: inverse L2 strength)."""

    name = "logreg"

    def __init__(self, *, C: float = 1.0, seed: int | np.random.Generator = 0) -> None:
        self.C = C
        self.seed = seed

    def fit_features(self, features, labels, *, n_classes, unlabelled=None):
        labels = np.asarray(labels, dtype=np.int64)
        self.scaler_ = StandardScaler().fit(features)
        self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000)
        self.model_.fit(self.scaler_.transform(features), labels)
        self.n_classes_ = int(n_classes)
        return self

    def predict_proba_features(self, features):
        self._check_fitted()
        p = self.model_.predict_proba(self.scaler_.transform(features))
        return _full(self.model_.classes_, p, self.n_classes_)


class KnnAttributeAttack(AttributeAttack):
    """Distance-weighted k-NN on standardised features; votes balanced by the auxiliary prior."""

    name = "knn"

    def __init__(self, *, n_neighbors: int = 10, seed: int | np.random.Generator = 0) -> None:
        self.n_neighbors = n_neighbors
        self.seed = seed

    def fit_features(self, features, labels, *, n_classes, unlabelled=None):
        labels = np.asarray(labels, dtype=np.int64)
        self.scaler_ = StandardScaler().fit(features)
        k = max(1, min(self.n_neighbors, len(labels)))
        self.model_ = KNeighborsClassifier(n_neighbors=k, weights="distance")
        self.model_.fit(self.scaler_.transform(features), labels)
        self.prior_ = _prior(labels, n_classes)
        self.n_classes_ = int(n_classes)
        return self

    def predict_proba_features(self, features):
        """Neighbour votes divided by the auxiliary class frequencies, renormalised (rows sum to 1)."""
        self._check_fitted()
        p = _full(self.model_.classes_, self.model_.predict_proba(self.scaler_.transform(features)), self.n_classes_)
        p = p * np.where(self.prior_ > 0, 1.0 / np.maximum(self.prior_, 1e-12), 0.0)
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)


class ClusterAttributeAttack(AttributeAttack):
    """k-means on unlabelled + labelled outputs; clusters named by the few labels.

    ``n_clusters_per_class`` clusters per attribute value (capped by the number of points).
    Without unlabelled queries it clusters the labelled outputs alone.
    """

    name = "cluster"
    uses_unlabelled = True

    def __init__(self, *, n_clusters_per_class: int = 4, seed: int | np.random.Generator = 0) -> None:
        self.n_clusters_per_class = n_clusters_per_class
        self.seed = seed

    def fit_features(self, features, labels, *, n_classes, unlabelled=None):
        labels = np.asarray(labels, dtype=np.int64)
        pool = features if unlabelled is None else np.vstack([unlabelled, features])
        self.scaler_ = StandardScaler().fit(pool)
        k = int(min(self.n_clusters_per_class * n_classes, len(np.unique(pool, axis=0))))
        state = int(make_rng(self.seed).integers(2**31 - 1))
        self.kmeans_ = KMeans(n_clusters=max(k, 1), n_init=3, random_state=state).fit(self.scaler_.transform(pool))
        assign = self.kmeans_.predict(self.scaler_.transform(features))
        counts = np.zeros((k, n_classes))
        np.add.at(counts, (assign, labels), 1.0)
        counts /= np.maximum(np.bincount(labels, minlength=n_classes), 1)  # class-frequency normalised
        named = counts.sum(axis=1) > 0
        centres = self.kmeans_.cluster_centers_
        for j in np.flatnonzero(~named):  # unnamed cluster -> nearest named one
            d = np.linalg.norm(centres[named] - centres[j], axis=1)
            counts[j] = counts[np.flatnonzero(named)[int(d.argmin())]]
        self.cluster_proba_ = (counts + 1e-3) / (counts + 1e-3).sum(axis=1, keepdims=True)
        self.n_classes_ = int(n_classes)
        return self

    def predict_proba_features(self, features):
        self._check_fitted()
        return self.cluster_proba_[self.kmeans_.predict(self.scaler_.transform(features))]


class PriorOnlyAttributeAttack(AttributeAttack):
    """Baseline without model access: the majority auxiliary class, the auxiliary prior as probabilities.

    Neither ``fit`` nor ``infer`` queries a box (``n_queries`` is 0). Ties go to the lower class index.
    """

    name = "prior-only"

    def __init__(self, *, seed: int | np.random.Generator = 0) -> None:
        self.seed = seed

    def fit(self, reference, *, unlabelled=None):
        self.output_kind_ = reference.box.output_kind
        self.n_labels_ = 0
        return self.fit_features(np.zeros((len(reference.labels), 0)), reference.labels, n_classes=reference.n_classes)

    def infer(self, box, images, *, ids):
        return self._constant(ids)

    def infer_outputs(self, result, *, ids):
        return self._constant(ids)

    def _constant(self, ids) -> AttributeGuesses:
        self._check_fitted()
        proba = np.tile(self.prior_, (len(ids), 1))
        return AttributeGuesses(np.asarray(ids).astype(str), proba, proba.argmax(axis=1).astype(np.int64), self.name,
                                Level.INSTANCE, 0)

    def fit_features(self, features, labels, *, n_classes, unlabelled=None):
        self.prior_ = _prior(np.asarray(labels, dtype=np.int64), n_classes)
        self.n_classes_ = int(n_classes)
        return self

    def predict_proba_features(self, features):
        self._check_fitted()
        return np.tile(self.prior_, (len(features), 1))


ATTRIBUTE_ATTACKS: dict[str, type[AttributeAttack]] = {
    "logreg": LogisticAttributeAttack,
    "knn": KnnAttributeAttack,
    "cluster": ClusterAttributeAttack,
    "prior-only": PriorOnlyAttributeAttack,
}


def create_attribute_attack(name: str, **params) -> AttributeAttack:
    """Build a registered attribute attack; ``ConfigError`` for an unknown name or parameter."""
    from faceleaks.attacks.registry import instantiate

    return instantiate(ATTRIBUTE_ATTACKS, name, params, what="attribute attack")
