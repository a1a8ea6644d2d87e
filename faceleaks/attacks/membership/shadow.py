"""Shadow-model attack classifier (Shokri et al. 2017, arXiv 1610.05820; ML-Leaks, Salem et al.
2019, arXiv 1806.01246 [paper]), at instance level and, ours, at identity level [reconstructed].

The attacker trains its own shadow teacher (on identities it controls) and shadow student with
the victim's recipe, queries the shadow student with photos of its shadow members and
non-members, and learns a classifier from output features to membership. Features are
standardised per box by known non-members (see ``calibration``) so the classifier transfers.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from faceleaks.attacks.base import Level, MembershipAttack, MembershipScores, ReferenceSet
from faceleaks.attacks.calibration import extract, fit_standardizer
from faceleaks.attacks.features import (IDENTITY_FEATURES, INSTANCE_FEATURES, LABEL_FEATURES, check_features,
                                        feature_usable)
from faceleaks.errors import ConfigError, DataError
from faceleaks.seeding import make_rng
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["ShadowClassifierAttack"]


class ShadowClassifierAttack(MembershipAttack):
    """Learn membership from output features on shadow references; score = classifier log-odds.

    Parameters
    ----------
    features : tuple of str
        Instance features at INSTANCE level, identity features at IDENTITY level.
    level : {"instance", "identity"}
    k : int
        Photos per identity at IDENTITY level.
    classifier : {"logistic", "mlp"}
        scikit-learn ``LogisticRegression`` or a small ``MLPClassifier``; both class-balanced.
    seed : int
    """

    def __init__(self, *, features: tuple[str, ...], level: str = "instance", k: int = 1,
                 classifier: str = "logistic", seed: int = 0) -> None:
        self.features = tuple(features)
        self.level = level
        self.k = k
        self.classifier = classifier
        self.seed = seed
        lvl = Level(level)
        check_features(self.features, level=level, k=k)
        if classifier not in ("logistic", "mlp"):
            raise ConfigError(f"unknown classifier {classifier!r}; choose logistic or mlp")
        self.name = "shadow-classifier" if lvl is Level.INSTANCE else f"shadow-set-classifier@k={k}"

    @classmethod
    def for_setting(cls, params, *, level, k, output_kind):
        """``{features, level[, k]}`` when every feature is of ``level``; at IDENTITY level the
        features are narrowed to those defined for k photos and ``output_kind`` (None if none is)."""
        features = tuple(params["features"])
        if level is Level.INSTANCE:
            return {**params, "level": "instance"} if set(features) <= set(INSTANCE_FEATURES) else None
        if not set(features) <= set(IDENTITY_FEATURES):
            return None
        usable = tuple(f for f in features if feature_usable(f, k=k, kind=output_kind))
        return {**params, "features": usable, "level": "identity", "k": k} if usable else None

    def supports(self, kind: OutputKind) -> bool:
        """Label outputs only when every feature is computable from labels (``label_agreement``)."""
        return kind is not OutputKind.LABEL or set(self.features) <= set(LABEL_FEATURES)

    def _extract(self, box, images, identity_ids, **kw):
        return extract(box, images, identity_ids, level=Level(self.level), k=self.k, names=self.features, **kw)

    def _model(self):
        seed = int(make_rng(self.seed).integers(2**31 - 1))
        if self.classifier == "mlp":
            return MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=seed)
        return LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)

    def _fit(self, references: list[ReferenceSet], *, public_base=None, shadows=(),
             pool=None) -> "ShadowClassifierAttack":
        ex = [self._extract(r.box, r.images, r.identity_ids, is_member=r.is_member, strict=False)
              for r in references]
        self.calibrator_ = fit_standardizer(references, ex)
        mixed = [(r, e) for r, e in zip(references, ex) if e.is_member.any() and (~e.is_member).any()]
        if not mixed:
            raise DataError("ShadowClassifierAttack needs a shadow ReferenceSet with members and non-members")
        x = np.concatenate([self.calibrator_.transform(r.box, e.features) for r, e in mixed])
        y = np.concatenate([e.is_member for _, e in mixed]).astype(int)
        self.model_ = self._model().fit(x, y)
        self.threshold_ = 0.0
        self.n_queries_fit_ = int(sum(e.n_queries for e in ex))
        return self

    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None = None) -> MembershipScores:
        e = self._extract(box, images, identity_ids, image_ids=image_ids)
        x = self.calibrator_.transform(box, e.features)
        proba = np.clip(self.model_.predict_proba(x)[:, 1], 1e-12, 1 - 1e-12)
        logit = np.log(proba) - np.log1p(-proba)
        return MembershipScores(logit, e.ids, Level(self.level), self.name, self.threshold_, e.n_queries)
