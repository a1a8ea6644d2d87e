"""Black-box output → attack features, per photo (instance) and per person (identity, k photos).

All functions take a ``QueryResult``'s values: posteriors (n, n_classes) float32 (TOPK rows have
zeros outside the top k) or labels (n,) int64. Each feature is oriented **higher = member**.

Instance features (Song & Mittal 2021, arXiv 2003.10595, Sec. 3 [paper]):
  ``max_posterior``; ``top2_posterior``/``top3_posterior`` (the sorted top-3 vector of ML-Leaks,
  Salem et al. 2019, arXiv 1806.01246 [paper]); ``neg_entropy``; ``neg_modified_entropy``, which needs the true label; through a
  student the teacher's member is not a class, so we use the predicted label [reconstructed].
Identity features over the k outputs of one person [reconstructed: the paper's statistic is not public]:
  ``mean_max_posterior``; ``mean_neg_entropy``; ``compactness``, the mean pairwise cosine similarity
  of centred log-posteriors (for a softmax head, log p - mean(log p) recovers the logits up to a
  constant, i.e. a linear view of the teacher's embedding, so photos the teacher was trained to
  cluster stay clustered); ``label_agreement``, the share of photos given the modal label (works on
  label-only APIs).
"""

from __future__ import annotations

import numpy as np

from faceleaks.errors import ConfigError, UnsupportedOutputError
from faceleaks.serving.protocol import OutputKind, QueryResult

__all__ = [
    "INSTANCE_FEATURES", "IDENTITY_FEATURES", "NEEDS_K2", "LABEL_FEATURES", "feature_usable", "check_features",
    "mean_pairwise_cosine", "pairwise_cosines", "max_posterior", "neg_entropy", "neg_modified_entropy", "centered_log_posterior",
    "compactness", "label_agreement", "instance_features", "identity_features",
]

_EPS = 1e-7


def _posteriors(result: QueryResult, feature: str) -> np.ndarray:
    if result.kind is OutputKind.LABEL:
        raise UnsupportedOutputError(f"feature {feature!r} needs posteriors; the box returns labels only")
    return np.asarray(result.values, dtype=np.float64)


def max_posterior(p: np.ndarray) -> np.ndarray:
    """(n,) largest posterior per row."""
    return p.max(axis=1)


def neg_entropy(p: np.ndarray) -> np.ndarray:
    """(n,) minus the Shannon entropy (nats) of each row; higher = more confident."""
    q = np.clip(p, _EPS, 1.0)
    return (p * np.log(q)).sum(axis=1)


def neg_modified_entropy(p: np.ndarray) -> np.ndarray:
    """(n,) minus Song & Mittal's modified entropy, with y = the predicted class."""
    y = p.argmax(axis=1)
    q = np.clip(p, _EPS, 1.0 - _EPS)
    py = q[np.arange(len(q)), y]
    rest = -(q * np.log(1.0 - q)).sum(axis=1) + py * np.log(1.0 - py)
    return -(-(1.0 - py) * np.log(py) + rest)


def centered_log_posterior(p: np.ndarray) -> np.ndarray:
    """(n, n_classes) log p minus its row mean: the logits up to an additive constant."""
    lp = np.log(np.clip(p, _EPS, 1.0))
    return lp - lp.mean(axis=1, keepdims=True)


def pairwise_cosines(x: np.ndarray) -> np.ndarray:
    """Cosine similarity of each unordered pair of distinct rows of ``x`` (m >= 2, d) float64: (m(m-1)/2,).

    Examples
    --------
    >>> pairwise_cosines(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])).tolist()
    [1.0, 0.0, 0.0]
    """
    z = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return (z @ z.T)[np.triu_indices(len(z), k=1)]


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine similarity over the ordered pairs of distinct rows of ``x`` (m >= 2, d) float64.

    Examples
    --------
    >>> mean_pairwise_cosine(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    0.3333333333333333
    """
    z = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    g = z @ z.T
    k = len(z)
    return float((g.sum() - np.trace(g)) / (k * (k - 1)))


def compactness(p: np.ndarray) -> float:
    """Mean pairwise cosine similarity of centred log-posteriors of one person's k >= 2 photos."""
    return mean_pairwise_cosine(centered_log_posterior(p))


def label_agreement(labels: np.ndarray) -> float:
    """Share of one person's k photos that get the most common label."""
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / len(labels))


def _sorted_rank(r: int):
    def top(p: np.ndarray) -> np.ndarray:
        """(n,) the r-th largest posterior (0 where the box returns fewer classes)."""
        s = -np.sort(-p, axis=1)
        return s[:, r] if s.shape[1] > r else np.zeros(len(s))

    return top


INSTANCE_FEATURES = {
    "max_posterior": max_posterior,
    "top2_posterior": _sorted_rank(1),
    "top3_posterior": _sorted_rank(2),
    "neg_entropy": neg_entropy,
    "neg_modified_entropy": neg_modified_entropy,
}
IDENTITY_FEATURES = ("mean_max_posterior", "mean_neg_entropy", "compactness", "label_agreement")
NEEDS_K2 = ("compactness", "label_agreement")
LABEL_FEATURES = ("label_agreement",)  # identity features computable from labels alone


def feature_usable(name: str, *, k: int, kind: OutputKind) -> bool:
    """Whether feature ``name`` is defined for ``k`` photos per identity and outputs of ``kind``."""
    return (k >= 2 or name not in NEEDS_K2) and (kind is not OutputKind.LABEL or name in LABEL_FEATURES)


def check_features(names: tuple[str, ...], *, level: str, k: int) -> None:
    """``ConfigError`` unless ``names`` are one or more features of ``level`` defined for ``k`` photos.

    ``level`` is ``"instance"`` (k must be 1) or ``"identity"`` (``NEEDS_K2`` features need k >= 2).
    """
    instance = level == "instance"
    known = INSTANCE_FEATURES if instance else IDENTITY_FEATURES
    bad = [f for f in names if f not in known] or ([] if names else ["<none>"])
    if bad:
        raise ConfigError(f"unknown {level} feature(s) {bad}; known: {sorted(known)}")
    if k < 1 or (instance and k != 1) or (any(f in NEEDS_K2 for f in names) and k < 2):
        raise ConfigError(f"k={k} is not valid for {level} feature(s) {list(names)}")


def instance_features(result: QueryResult, names: tuple[str, ...]) -> np.ndarray:
    """(n, len(names)) float64 instance features; ``ConfigError`` for an unknown name."""
    cols = []
    for name in names:
        if name not in INSTANCE_FEATURES:
            raise ConfigError(f"unknown instance feature {name!r}; known: {sorted(INSTANCE_FEATURES)}")
        cols.append(INSTANCE_FEATURES[name](_posteriors(result, name)))
    return np.stack(cols, axis=1)


def _one_identity(result: QueryResult, idx: np.ndarray, name: str) -> float:
    if name == "label_agreement":
        v = result.values[idx]
        return label_agreement(v if result.kind is OutputKind.LABEL else v.argmax(axis=1))
    p = _posteriors(result, name)[idx]
    if name == "mean_max_posterior":
        return float(max_posterior(p).mean())
    if name == "mean_neg_entropy":
        return float(neg_entropy(p).mean())
    return compactness(p)


def identity_features(result: QueryResult, groups: list[np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """(n_identities, len(names)) float64: each feature over the photos in each group.

    ``groups[i]`` indexes the rows of ``result.values`` that show identity i.
    """
    for name in names:
        if name not in IDENTITY_FEATURES:
            raise ConfigError(f"unknown identity feature {name!r}; known: {IDENTITY_FEATURES}")
    return np.array([[_one_identity(result, idx, n) for n in names] for idx in groups], dtype=np.float64)
