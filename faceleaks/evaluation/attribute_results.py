"""Typed results of the attribute-inference experiment, and the metrics behind them (torch-free).

Metrics per (attribute, variant, student, output, attack, budget):

- balanced accuracy: the mean over the classes present in the targets of each class's recall
  (chance = 1 / n_classes whatever the imbalance; as ``sklearn.metrics.balanced_accuracy_score``);
- macro-F1: the mean F1 over the classes present in the truth or the predictions (as
  ``sklearn.metrics.f1_score(average="macro")``, 0 where undefined);
- ROC AUC of P(class 1) for binary attributes (NaN otherwise or when the targets hold one class).

95 % CIs are percentile bootstraps that resample the targets (photos, or people at identity level)
with replacement (AUC: within each class, as ``faceleaks.metrics.bootstrap_auc_ci``); with several
auxiliary draws each replicate also picks a draw.
All values are fractions in [0, 1]. JSON goes through ``faceleaks.evaluation.jsonio`` (NaN as ``null``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceleaks.config import AttributeConfig
from faceleaks.errors import DataError
from faceleaks.evaluation.jsonio import (SCHEMA_VERSION, check_schema, from_jsonable, read_json, to_jsonable,
                                         write_json)
from faceleaks.metrics import auc_score, bootstrap_auc_replicates
from faceleaks.seeding import make_rng

__all__ = [
    "SCHEMA_VERSION", "AttributeConfig", "ClassificationMetrics", "AttributeScore", "LabelSummary",
    "AttributeRecord",
    "classification_metrics", "confusion_counts", "balanced_accuracy_from_confusion", "macro_f1_from_confusion",
]

_NAN_CI = (float("nan"), float("nan"))


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts of each row: (B, n) int labels -> (B, n_classes, n_classes) int64, [b, true, pred]."""
    y_true, y_pred = np.atleast_2d(y_true), np.atleast_2d(y_pred)
    b = y_true.shape[0]
    codes = (np.arange(b)[:, None] * n_classes * n_classes + y_true * n_classes + y_pred).ravel()
    return np.bincount(codes, minlength=b * n_classes * n_classes).reshape(b, n_classes, n_classes)


def balanced_accuracy_from_confusion(conf: np.ndarray) -> np.ndarray:
    """(B,) mean recall over the classes present in the truth of each confusion matrix (B, C, C)."""
    support = conf.sum(axis=2)
    tp = np.diagonal(conf, axis1=1, axis2=2)
    present = support > 0
    recall = np.where(present, tp / np.maximum(support, 1), 0.0)
    return recall.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def macro_f1_from_confusion(conf: np.ndarray) -> np.ndarray:
    """(B,) mean F1 over the classes present in the truth or the predictions (0 where undefined)."""
    tp = np.diagonal(conf, axis1=1, axis2=2)
    n_true, n_pred = conf.sum(axis=2), conf.sum(axis=1)
    present = (n_true + n_pred) > 0
    f1 = np.where(present, 2 * tp / np.maximum(n_true + n_pred, 1), 0.0)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


@dataclass(frozen=True)
class ClassificationMetrics:
    """Point estimates (fractions) and their 95 % bootstrap CIs (low, high)."""

    balanced_accuracy: float
    balanced_accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    auc: float
    auc_ci: tuple[float, float]


def classification_metrics(y_true, proba, y_pred, n_classes: int, *, n_bootstrap: int,
                           seed: int | np.random.Generator, level: float = 0.95) -> ClassificationMetrics:
    """Balanced accuracy, macro-F1 and (binary only) AUC of an attack's guesses, with bootstrap CIs.

    Guesses may come from R independent auxiliary draws: each point estimate is the mean over the
    draws, and each bootstrap replicate picks a draw at random and resamples the targets, so the
    CI covers both the choice of the few labelled faces and the targets [reconstructed].

    Parameters
    ----------
    y_true : ndarray (n,) int64 in [0, n_classes), the targets' true attribute
    proba : ndarray (n, n_classes) or (R, n, n_classes) float64, the attack's probabilities
    y_pred : ndarray (n,) or (R, n) int64, the attack's decisions
    n_bootstrap : int, bootstrap replicates
    seed : int or numpy Generator
    level : float, CI coverage as a fraction

    Raises
    ------
    DataError
        If there are no targets or the shapes disagree.

    Examples
    --------
    >>> m = classification_metrics(np.array([0, 1, 1]), np.eye(2)[[0, 1, 0]], np.array([0, 1, 0]), 2,
    ...                            n_bootstrap=50, seed=0)
    >>> round(m.balanced_accuracy, 3), round(m.auc, 3)
    (0.75, 0.75)
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred, proba = np.atleast_2d(np.asarray(y_pred, dtype=np.int64)), np.asarray(proba, dtype=np.float64)
    proba = proba[None] if proba.ndim == 2 else proba
    if len(y_true) == 0 or y_pred.shape[1] != len(y_true) or proba.shape[:2] != y_pred.shape:
        raise DataError(f"need >= 1 target and matching shapes; got {y_true.shape}, {y_pred.shape}, {proba.shape}")
    rng = make_rng(seed)
    r, n = y_pred.shape
    conf = confusion_counts(np.broadcast_to(y_true, (r, n)), y_pred, n_classes)
    idx, draw = rng.integers(0, n, size=(n_bootstrap, n)), rng.integers(0, r, size=n_bootstrap)
    boot = confusion_counts(y_true[idx], y_pred[draw[:, None], idx], n_classes)
    alpha = (1.0 - level) / 2.0

    def ci(values: np.ndarray) -> tuple[float, float]:
        lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
        return float(lo), float(hi)

    auc, auc_ci = float("nan"), _NAN_CI
    if n_classes == 2 and len(np.unique(y_true)) == 2:
        auc = float(np.mean([auc_score(y_true, p[:, 1]) for p in proba]))
        auc_ci = ci(bootstrap_auc_replicates(y_true, proba[..., 1], n_bootstrap=n_bootstrap, seed=rng))
    return ClassificationMetrics(
        float(balanced_accuracy_from_confusion(conf).mean()), ci(balanced_accuracy_from_confusion(boot)),
        float(macro_f1_from_confusion(conf).mean()), ci(macro_f1_from_confusion(boot)), auc, auc_ci)


@dataclass(frozen=True)
class AttributeScore:
    """How well one attack (or baseline) inferred one attribute.

    Attributes
    ----------
    attribute : ``gender`` | ``race`` | ``age-group``
    variant : ``cross-dataset`` (auxiliary UTKFace, targets LFW) | ``same-distribution`` (UTKFace -> UTKFace)
    level : ``instance`` (one guess per photo) | ``identity`` (per person, from ``k`` photos)
    k : int, photos per person (1 at instance level)
    student : the victim student queried; ``-`` for prior-only, ``teacher-embedding`` for the white-box reference
    output : what the box revealed (``posterior``, ``topk``, ``label``); ``none`` / ``embedding`` for baselines
    attack : ``logreg`` | ``knn`` | ``cluster`` | ``prior-only``
    role : ``attack`` | ``prior-only`` (no model access) | ``white-box`` (teacher embeddings, evaluation only)
    budget : labelled auxiliary faces per attribute value, ``"1"`` ... or ``"all"``
    n_aux : int, labelled auxiliary faces used
    n_targets : int, targets scored (photos, or people at identity level)
    balanced_accuracy, macro_f1, auc : float fractions (AUC NaN unless binary)
    *_ci : (low, high) 95 % bootstrap CI
    n_queries : int, images the attacker itself sent to the box per draw (its labelled auxiliary
        faces; the targets' outputs are observed, not queried); 0 for baselines
    n_draws : int, independent draws of the auxiliary faces pooled in the metrics
    """

    attribute: str
    variant: str
    level: str
    k: int
    student: str
    output: str
    attack: str
    role: str
    budget: str
    n_aux: int
    n_targets: int
    balanced_accuracy: float
    balanced_accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    auc: float
    auc_ci: tuple[float, float]
    n_queries: int
    n_draws: int = 1


@dataclass(frozen=True)
class LabelSummary:
    """Class counts of one labelled set, and how many items were excluded and why.

    ``dataset`` is ``utk-aux`` (the attacker's labelled pool; budget ``all`` uses all of it),
    ``utk-targets``, ``lfw-targets`` or ``lfw-identities`` (people, identity level).
    """

    attribute: str
    dataset: str
    classes: tuple[str, ...]
    counts: tuple[int, ...]
    excluded: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AttributeRecord:
    """Everything the attribute experiment measured. ``timings_s`` are wall-clock seconds per stage.

    ``scores``: the attacks; ``baselines``: prior-only and the white-box reference (instance level);
    ``identity``: attacks and baselines at identity level (gender, k photos per person);
    ``queries``: images sent per ``student/output`` box.
    """

    seed: int
    settings: dict[str, Any]
    scores: tuple[AttributeScore, ...]
    baselines: tuple[AttributeScore, ...]
    identity: tuple[AttributeScore, ...]
    labels: tuple[LabelSummary, ...]
    queries: dict[str, int]
    timings_s: dict[str, float]
    warnings: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON values (NaN -> None, tuples -> lists), as written to ``attributes.json``."""
        return to_jsonable(self)

    def to_json(self, path: Path) -> None:
        """Write ``attributes.json`` (NaN as ``null``, ``schema_version`` 2)."""
        write_json(self, path)

    @classmethod
    def from_json(cls, path: Path) -> "AttributeRecord":
        """Read ``attributes.json``; ``ArtifactError`` if it is of another schema version or malformed."""
        return read_json(cls, path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "AttributeRecord":
        """Inverse of ``to_dict`` (None -> NaN in metrics).

        Raises
        ------
        ArtifactError
            If ``raw`` is of another ``schema_version`` or does not hold an attribute record.
        """
        check_schema(raw, "attribute record")
        return from_jsonable(cls, raw)

    def rows(self) -> tuple[AttributeScore, ...]:
        """Every score: attacks, baselines and identity level."""
        return self.scores + self.baselines + self.identity
