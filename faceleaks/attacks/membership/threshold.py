"""Threshold attacks: one feature, higher = member, with a calibrated threshold.

Instance level reproduces the confidence/entropy baselines (Yeom et al. 2018, arXiv 1709.01604;
Song & Mittal 2021, arXiv 2003.10595 [paper]); identity level thresholds a statistic of the k
outputs of one person (FaceLeaks' aggregate idea [paper, abstract]; statistic [reconstructed]).
"""

from __future__ import annotations

import numpy as np

from faceleaks.attacks.base import Level, MembershipAttack, MembershipScores, ReferenceSet
from faceleaks.attacks.calibration import choose_threshold, extract, fit_standardizer
from faceleaks.attacks.features import IDENTITY_FEATURES, INSTANCE_FEATURES, LABEL_FEATURES, NEEDS_K2, check_features
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["ThresholdAttack"]


class ThresholdAttack(MembershipAttack):
    """Score = one feature (standardised per box); member if score >= ``threshold_``.

    Parameters
    ----------
    feature : str
        An instance feature (``max_posterior``, ``neg_entropy``, ``neg_modified_entropy``) at
        INSTANCE level, or an identity feature (``mean_max_posterior``, ``mean_neg_entropy``,
        ``compactness``, ``label_agreement``) at IDENTITY level.
    level : {"instance", "identity"}
    k : int
        Photos per identity (IDENTITY level); 1 at INSTANCE level.
    target_fpr : float
        FPR (fraction) for the threshold when only non-member references exist.
    """

    def __init__(self, *, feature: str, level: str = "instance", k: int = 1, target_fpr: float = 0.05) -> None:
        self.feature = feature
        self.level = level
        self.k = k
        self.target_fpr = target_fpr
        lvl = Level(level)
        check_features((feature,), level=level, k=k)
        self.name = f"{feature}" if lvl is Level.INSTANCE else f"{feature}@k={k}"

    @classmethod
    def for_setting(cls, params, *, level, k, output_kind):
        """``{feature, level[, k]}``: an instance feature at INSTANCE level, an identity feature
        defined for k photos at IDENTITY level; None otherwise."""
        feature = params["feature"]
        if level is Level.INSTANCE:
            return {**params, "level": "instance"} if feature in INSTANCE_FEATURES else None
        if feature not in IDENTITY_FEATURES or (feature in NEEDS_K2 and k < 2):
            return None
        return {**params, "level": "identity", "k": k}

    def supports(self, kind: OutputKind) -> bool:
        """Label outputs only for ``label_agreement``; every feature works on posteriors and top-k."""
        return kind is not OutputKind.LABEL or self.feature in LABEL_FEATURES

    def _extract(self, box, images, identity_ids, **kw):
        return extract(box, images, identity_ids, level=Level(self.level), k=self.k,
                       names=(self.feature,), **kw)

    def _fit(self, references: list[ReferenceSet], *, public_base=None, shadows=(), pool=None) -> "ThresholdAttack":
        ex = [self._extract(r.box, r.images, r.identity_ids, is_member=r.is_member, strict=False)
              for r in references]
        self.calibrator_ = fit_standardizer(references, ex)
        mixed = [(r, e) for r, e in zip(references, ex) if e.is_member.any() and (~e.is_member).any()]
        use = mixed or list(zip(references, ex))
        z = np.concatenate([self.calibrator_.transform(r.box, e.features)[:, 0] for r, e in use])
        truth = np.concatenate([e.is_member for _, e in use])
        self.threshold_ = choose_threshold(z, truth, target_fpr=self.target_fpr)
        self.n_queries_fit_ = int(sum(e.n_queries for e in ex))
        return self

    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None = None) -> MembershipScores:
        e = self._extract(box, images, identity_ids, image_ids=image_ids)
        z = self.calibrator_.transform(box, e.features)[:, 0]
        return MembershipScores(z, e.ids, Level(self.level), self.name, self.threshold_, e.n_queries)
