"""Feature extraction through a box, and calibration of attack scores on reference data.

Calibration [reconstructed]: the attacker queries each box (the victim student, or its own
shadow students) with photos of people it knows are not members of that box's teacher, and
standardises every feature by those non-members' mean and standard deviation on *that box*.
Scores from different models then share one scale, so a threshold chosen on shadow data (best
balanced accuracy) transfers to the victim. Without mixed (shadow) references, the threshold is
the ``1 - target_fpr`` quantile of the victim's known non-members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceleaks.attacks.base import Level, ReferenceSet, first_k_groups, stack_groups
from faceleaks.attacks.features import identity_features, instance_features
from faceleaks.errors import DataError
from faceleaks.metrics import best_threshold
from faceleaks.serving.protocol import BlackBox

__all__ = ["Extracted", "extract", "BoxStandardizer", "fit_standardizer"]


@dataclass(frozen=True)
class Extracted:
    """Features (m, f) float64 for m photos or identities, their ids (m,), truth (m,) and queries sent."""

    features: np.ndarray
    ids: np.ndarray
    is_member: np.ndarray
    n_queries: int


def extract(box: BlackBox, images: np.ndarray, identity_ids: np.ndarray, *, level: Level, k: int,
            names: tuple[str, ...], image_ids: np.ndarray | None = None,
            is_member: np.ndarray | None = None, strict: bool = True) -> Extracted:
    """Query ``box`` and compute features.

    At IDENTITY level the first ``k`` photos of each identity (input order) are used; an
    identity with fewer raises ``DataError`` if ``strict`` (scoring) or is dropped (references).
    """
    n = len(images)
    truth = np.zeros(n, bool) if is_member is None else np.asarray(is_member, bool)
    if level is Level.INSTANCE:
        ids = np.asarray(image_ids if image_ids is not None else np.arange(n).astype(str)).astype(str)
        result = box.query(images)
        return Extracted(instance_features(result, names), ids, truth, n)
    kept, groups = first_k_groups(identity_ids, k, strict=strict)
    if not kept:
        raise DataError(f"no identity has k={k} photos")
    sel, local = stack_groups(groups)
    result = box.query(np.asarray(images)[sel])
    feats = identity_features(result, local, names)
    return Extracted(feats, np.array(kept), np.array([truth[g[0]] for g in groups]), len(sel))


@dataclass
class BoxStandardizer:
    """Per-box standardisation by known non-members: z = (x - mean) / std, feature-wise."""

    boxes: list[BlackBox] = field(default_factory=list)
    stats: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, box: BlackBox, nonmember_features: np.ndarray) -> None:
        mu = nonmember_features.mean(axis=0)
        sd = nonmember_features.std(axis=0)
        self.boxes.append(box)
        self.stats.append((mu, np.where(sd > 1e-12, sd, 1.0)))

    def knows(self, box: BlackBox) -> bool:
        return any(b is box for b in self.boxes)

    def transform(self, box: BlackBox, features: np.ndarray) -> np.ndarray:
        for b, (mu, sd) in zip(self.boxes, self.stats):
            if b is box:
                return (features - mu) / sd
        return features


def fit_standardizer(refs: Sequence[ReferenceSet], extracted: Sequence[Extracted]) -> BoxStandardizer:
    """One standardiser entry per distinct box, from that box's known non-members."""
    std = BoxStandardizer()
    for ref, ex in zip(refs, extracted):
        if std.knows(ref.box):
            continue
        same = [e for r, e in zip(refs, extracted) if r.box is ref.box]
        non = np.concatenate([e.features[~e.is_member] for e in same])
        if len(non) >= 2:
            std.add(ref.box, non)
    return std


def choose_threshold(scores: np.ndarray, is_member: np.ndarray, *, target_fpr: float) -> float:
    """Best balanced-accuracy threshold if both classes are present, else the (1 - target_fpr) quantile."""
    if is_member.any() and (~is_member).any():
        return best_threshold(is_member.astype(int), scores)
    if len(scores) == 0:
        raise DataError("no reference scores to calibrate a threshold on")
    return float(np.quantile(scores, 1.0 - target_fpr))
