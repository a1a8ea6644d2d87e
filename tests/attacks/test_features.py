import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceleaks.attacks import features as F
from faceleaks.serving.protocol import OutputKind, QueryResult


def _posteriors(seed, n, c=7):
    z = np.random.default_rng(seed).normal(0, 2, (n, c))
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def _slow_compactness(p):
    vecs = []
    for row in p:
        logs = [math.log(max(v, 1e-7)) for v in row]
        m = sum(logs) / len(logs)
        vecs.append([v - m for v in logs])
    sims = []
    for a, b in itertools.permutations(range(len(vecs)), 2):
        dot = sum(x * y for x, y in zip(vecs[a], vecs[b]))
        na = math.sqrt(sum(x * x for x in vecs[a]))
        nb = math.sqrt(sum(x * x for x in vecs[b]))
        sims.append(dot / (na * nb))
    return sum(sims) / len(sims)


def _slow_label_agreement(labels):
    counts = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    return max(counts.values()) / len(labels)


def _slow_entropy(row):
    return -sum(v * math.log(max(v, 1e-7)) for v in row)


def _slow_mentr(row):
    y = max(range(len(row)), key=lambda i: row[i])
    clip = [min(max(v, 1e-7), 1 - 1e-7) for v in row]
    out = -(1 - clip[y]) * math.log(clip[y])
    out -= sum(clip[i] * math.log(1 - clip[i]) for i in range(len(row)) if i != y)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_compactness_matches_slow_loop(seed, k):
    p = _posteriors(seed, k)
    assert F.compactness(p) == pytest.approx(_slow_compactness(p), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_instance_features_match_formulas(seed):
    p = _posteriors(seed, 12)
    np.testing.assert_allclose(F.neg_entropy(p), [-_slow_entropy(r) for r in p], atol=1e-9)
    np.testing.assert_allclose(F.neg_modified_entropy(p), [-_slow_mentr(r) for r in p], atol=1e-9)
    np.testing.assert_allclose(F.max_posterior(p), [max(r) for r in p])
    top3 = F.instance_features(QueryResult(OutputKind.POSTERIOR, p.astype(np.float32)),
                               ("max_posterior", "top2_posterior", "top3_posterior"))
    np.testing.assert_allclose(top3, [sorted(r, reverse=True)[:3] for r in p], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_identity_features_match_per_group_loop(seed):
    rng = np.random.default_rng(seed)
    p = _posteriors(seed, 30).astype(np.float32)
    groups = [np.sort(rng.choice(30, size=rng.integers(2, 8), replace=False)) for _ in range(5)]
    got = F.identity_features(QueryResult(OutputKind.POSTERIOR, p), groups, F.IDENTITY_FEATURES)
    for row, g in zip(got, groups):
        q = p[g].astype(np.float64)
        assert row[0] == pytest.approx(np.mean([max(r) for r in q]))
        assert row[1] == pytest.approx(np.mean([-_slow_entropy(r) for r in q]))
        assert row[2] == pytest.approx(_slow_compactness(q), abs=1e-6)
        assert row[3] == pytest.approx(_slow_label_agreement(q.argmax(1).tolist()))


def test_label_agreement_on_label_outputs():
    labels = np.array([3, 3, 1, 3, 2], dtype=np.int64)
    got = F.identity_features(QueryResult(OutputKind.LABEL, labels), [np.arange(5)], ("label_agreement",))
    assert got[0, 0] == pytest.approx(_slow_label_agreement(labels.tolist())) == 0.6


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 9))
def test_identity_aggregation_ignores_photo_order(seed, k):
    p = _posteriors(seed, k).astype(np.float32)
    perm = np.random.default_rng(seed + 1).permutation(k)
    a = F.identity_features(QueryResult(OutputKind.POSTERIOR, p), [np.arange(k)], F.IDENTITY_FEATURES)
    b = F.identity_features(QueryResult(OutputKind.POSTERIOR, p[perm]), [np.arange(k)], F.IDENTITY_FEATURES)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_centered_log_posterior_recovers_logits_up_to_a_constant():
    z = np.random.default_rng(0).normal(0, 1, (4, 5))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(F.centered_log_posterior(p), z - z.mean(1, keepdims=True), atol=1e-9)
