"""Attribute attacks on crafted black boxes, identity aggregation, and the attribute metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from faceleaks.attacks.attribute.aggregate import aggregate_guesses, first_k
from faceleaks.attacks.attribute.classifier import (ATTRIBUTE_ATTACKS, AttributeGuesses, AttributeReferenceSet,
                                                    create_attribute_attack, output_features)
from faceleaks.attacks.base import Level
from faceleaks.errors import ConfigError, DataError, NotFittedError, QueryError, UnsupportedOutputError
from faceleaks.evaluation.attribute_results import (balanced_accuracy_from_confusion, classification_metrics,
                                                    confusion_counts, macro_f1_from_confusion)
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.protocol import OutputKind

from .fakes import SpyBox

SIZE, N_OUT = 8, 7
CENTRES = np.random.default_rng(99).normal(0, 1.5, (3, N_OUT))  # one logit centre per attribute value


def faces(labels, offset=0):
    """(n, 8, 8, 3) uint8: pixel (0,0) holds (attribute value, photo index low byte, offset)."""
    out = np.zeros((len(labels), SIZE, SIZE, 3), np.uint8)
    for i, c in enumerate(labels):
        out[i, 0, 0] = (c, i % 256, offset)
        out[i, 0, 1] = (i // 256, 0, 0)
    return out


def posteriors(images):
    """The hidden attribute shifts the student's logits; per-photo noise blurs it."""
    p = np.zeros((len(images), N_OUT), np.float32)
    for n, im in enumerate(images):
        c, lo, off = (int(v) for v in im[0, 0])
        z = CENTRES[c] + np.random.default_rng([c, lo, int(im[0, 1, 0]), off]).normal(0, 1.0, N_OUT)
        e = np.exp(z - z.max())
        p[n] = e / e.sum()
    return p


def box(output="posterior"):
    return reveal(FunctionBlackBox(posteriors, input_size=SIZE), output, top_k=3)


def population(n_per_class, n_classes=3, offset=0, seed=0):
    labels = np.repeat(np.arange(n_classes), n_per_class)
    labels = labels[np.random.default_rng(seed).permutation(len(labels))]
    return faces(labels, offset), labels


ATTACKS = ["logreg", "knn", "cluster"]


@pytest.mark.parametrize("name", ATTACKS)
@pytest.mark.parametrize("output", ["posterior", "topk", "label"])
def test_attacks_beat_chance_from_outputs(name, output):
    aux_x, aux_y = population(40, offset=1)
    tg_x, tg_y = population(60, offset=2)
    b = box(output)
    attack = create_attribute_attack(name, seed=0)
    assert attack.fit(AttributeReferenceSet(b, aux_x, aux_y, 3), unlabelled=b.query(tg_x)) is attack
    g = attack.infer(b, tg_x, ids=np.arange(len(tg_x)).astype(str))
    assert g.proba.shape == (180, 3) and np.allclose(g.proba.sum(1), 1.0)
    assert g.level is Level.INSTANCE and g.n_queries == 180
    bacc = skm.balanced_accuracy_score(tg_y, g.predicted)
    assert bacc > (0.45 if output == "label" else 0.6), bacc


@pytest.mark.parametrize("name", ATTACKS + ["prior-only"])
def test_attack_contract(name):
    cls = ATTRIBUTE_ATTACKS[name]
    attack = create_attribute_attack(name, seed=3)
    assert attack.seed == 3
    with pytest.raises(NotFittedError):
        attack.infer(box(), faces([0]), ids=np.array(["a"]))
    aux_x, aux_y = population(5, offset=1)
    spy = SpyBox(box())
    first = cls(seed=3).fit(AttributeReferenceSet(spy, aux_x, aux_y, 3)).infer(spy, faces([0, 1, 2]), ids=np.array(["a", "b", "c"]))
    again = cls(seed=3).fit(AttributeReferenceSet(spy, aux_x, aux_y, 3)).infer(spy, faces([0, 1, 2]), ids=np.array(["a", "b", "c"]))
    assert np.array_equal(first.proba, again.proba) and first.ids.tolist() == ["a", "b", "c"]
    if name == "prior-only":
        assert spy.calls == [] and first.n_queries == 0  # no model access at all
    else:
        assert spy.calls == [15, 3, 15, 3]  # the aux faces once per fit, the targets once per infer


def test_infer_outputs_is_observation_only_and_checks_the_kind():
    aux_x, aux_y = population(10, offset=1)
    attack = create_attribute_attack("logreg").fit(AttributeReferenceSet(box(), aux_x, aux_y, 3))
    observed = box().query(faces([0, 1]))
    assert attack.infer_outputs(observed, ids=np.array(["x", "y"])).n_queries == 0
    with pytest.raises(UnsupportedOutputError):
        attack.infer_outputs(box("label").query(faces([0, 1])), ids=np.array(["x", "y"]))
    with pytest.raises(UnsupportedOutputError):
        create_attribute_attack("cluster").fit(AttributeReferenceSet(box(), aux_x, aux_y, 3),
                                              unlabelled=box("label").query(faces([0])))


def test_prior_only_is_the_majority_auxiliary_class():
    b = FunctionBlackBox(lambda x: (_ for _ in ()).throw(QueryError("queried")), input_size=SIZE)
    attack = create_attribute_attack("prior-only").fit(AttributeReferenceSet(b, faces([0, 1, 1, 2]), np.array([0, 1, 1, 2]), 3))
    g = attack.infer(b, faces([0, 0]), ids=np.array(["a", "b"]))
    assert g.predicted.tolist() == [1, 1] and np.allclose(g.proba[0], [0.25, 0.5, 0.25])
    m = classification_metrics(np.array([0, 1, 2, 1]), np.tile(attack.prior_, (4, 1)), np.ones(4, int), 3,
                               n_bootstrap=20, seed=0)
    assert m.balanced_accuracy == pytest.approx(1 / 3)


def test_registry_and_reference_validation():
    with pytest.raises(ConfigError, match="unknown attribute attack"):
        create_attribute_attack("oracle")
    with pytest.raises(ConfigError, match="no parameter"):
        create_attribute_attack("knn", depth=3)
    with pytest.raises(DataError):
        AttributeReferenceSet(box(), faces([0, 1]), np.array([0, 5]), 3)
    with pytest.raises(DataError):
        AttributeReferenceSet(box(), faces([0, 1]), np.array([0]), 3)


def test_cluster_learns_from_unlabelled_outputs():
    aux_x, aux_y = population(1, offset=1)  # one label per class
    tg_x, tg_y = population(80, offset=2)
    b = box()
    with_unlabelled = create_attribute_attack("cluster", seed=0).fit(AttributeReferenceSet(b, aux_x, aux_y, 3),
                                                                    unlabelled=b.query(tg_x))
    g = with_unlabelled.infer(b, tg_x, ids=np.arange(240).astype(str))
    assert skm.balanced_accuracy_score(tg_y, g.predicted) > 0.5
    assert len(np.unique(g.predicted)) == 3


def test_label_features_are_one_hot():
    res = box("label").query(faces([0, 1, 2]))
    f = output_features(res, 9)
    assert f.shape == (3, 9) and np.allclose(f.sum(1), 1.0)


# identity level -------------------------------------------------------------------------------------

def _guesses(proba, ids):
    return AttributeGuesses(np.asarray(ids), proba, proba.argmax(1), "x", Level.INSTANCE, len(ids))


def test_first_k_and_aggregation_match_a_slow_loop():
    rng = np.random.default_rng(0)
    people = np.array(["a", "b", "a", "c", "b", "a", "c", "a"])
    idx = first_k(people, 2)
    assert people[idx].tolist().count("a") == 2 and idx.tolist() == [0, 1, 2, 3, 4, 6]
    assert first_k(people, 5).size == 0
    proba = rng.dirichlet(np.ones(3), size=len(people))
    agg = aggregate_guesses(_guesses(proba, people), people)
    for name, p in zip(agg.ids, agg.proba):
        rows = [proba[i] for i in range(len(people)) if people[i] == name]
        assert np.allclose(p, sum(rows) / len(rows))
    assert agg.level is Level.IDENTITY and agg.predicted.tolist() == agg.proba.argmax(1).tolist()
    with pytest.raises(DataError):
        aggregate_guesses(agg, agg.ids)
    with pytest.raises(ConfigError):
        first_k(people, 0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_aggregation_does_not_depend_on_photo_order(seed):
    rng = np.random.default_rng(seed)
    people = rng.choice(np.array(["p", "q", "r"]), size=12)
    proba = rng.dirichlet(np.ones(2), size=12)
    perm = rng.permutation(12)
    a = aggregate_guesses(_guesses(proba, people), people)
    b = aggregate_guesses(_guesses(proba[perm], people[perm]), people[perm])
    assert a.ids.tolist() == b.ids.tolist() and np.allclose(a.proba, b.proba)


# metrics --------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5), st.integers(1, 40))
def test_confusion_metrics_match_sklearn(seed, k, n):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = rng.integers(0, k, n)
    conf = confusion_counts(y, p, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when y_pred has classes absent from y_true
        ref_bacc = skm.balanced_accuracy_score(y, p)
        ref_f1 = skm.f1_score(y, p, average="macro", zero_division=0)
    assert balanced_accuracy_from_confusion(conf)[0] == pytest.approx(ref_bacc)
    assert macro_f1_from_confusion(conf)[0] == pytest.approx(ref_f1)


def test_classification_metrics_cis_and_auc():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    score = y + rng.normal(0, 0.8, 300)
    proba = np.stack([1 - 1 / (1 + np.exp(-score)), 1 / (1 + np.exp(-score))], 1)
    m = classification_metrics(y, proba, proba.argmax(1), 2, n_bootstrap=200, seed=0)
    assert m.balanced_accuracy_ci[0] <= m.balanced_accuracy <= m.balanced_accuracy_ci[1]
    assert m.macro_f1_ci[0] <= m.macro_f1 <= m.macro_f1_ci[1]
    assert m.auc == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert m.auc_ci[0] <= m.auc <= m.auc_ci[1]
    m3 = classification_metrics(np.array([0, 1, 2]), np.eye(3), np.array([0, 1, 2]), 3, n_bootstrap=10, seed=0)
    assert np.isnan(m3.auc) and m3.balanced_accuracy == 1.0
    with pytest.raises(DataError):
        classification_metrics(np.array([], int), np.zeros((0, 2)), np.array([], int), 2, n_bootstrap=5, seed=0)


def test_metrics_pool_auxiliary_draws():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    good = np.eye(2)[y]                       # a draw that is always right
    bad = np.eye(2)[rng.integers(0, 2, 200)]  # a draw that guesses
    one = classification_metrics(y, good, y, 2, n_bootstrap=200, seed=0)
    both = classification_metrics(y, np.stack([good, bad]), np.stack([y, bad.argmax(1)]), 2, n_bootstrap=200, seed=0)
    assert one.balanced_accuracy == 1.0 and one.auc == 1.0
    alone = skm.balanced_accuracy_score(y, bad.argmax(1))
    assert both.balanced_accuracy == pytest.approx((1.0 + alone) / 2)
    assert both.balanced_accuracy_ci[0] < 0.65 and both.balanced_accuracy_ci[1] == 1.0  # spans both draws
    assert both.auc_ci[0] < 0.65 and both.auc_ci[1] == 1.0
