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

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from faceleaks.attacks.attribute.base import (AttributeAttack, AttributeGuesses, AttributeReferenceSet, full_proba,
                                              output_features)
from faceleaks.attacks.attribute.registry import (ATTRIBUTE_ATTACKS, create_attribute_attack,
                                                  register_attribute_attack)
from faceleaks.attacks.base import Level
from faceleaks.seeding import make_rng

__all__ = [
    "AttributeReferenceSet", "AttributeGuesses", "AttributeAttack", "LogisticAttributeAttack",
    "KnnAttributeAttack", "ClusterAttributeAttack", "PriorOnlyAttributeAttack", "ATTRIBUTE_ATTACKS",
    "create_attribute_attack", "output_features",
]


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
        return full_proba(self.model_.classes_, p, self.n_classes_)


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
        p = full_proba(self.model_.classes_, self.model_.predict_proba(self.scaler_.transform(features)), self.n_classes_)
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
    is_baseline = True

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


for _cls in (LogisticAttributeAttack, KnnAttributeAttack, ClusterAttributeAttack, PriorOnlyAttributeAttack):
    register_attribute_attack(_cls.name, _cls)
