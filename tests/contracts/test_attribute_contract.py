"""Every registered attribute attack against one contract (as ``test_membership_contract``)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from faceleaks.attacks.attribute.base import AttributeReferenceSet
from faceleaks.attacks.attribute.registry import ATTRIBUTE_ATTACKS, create_attribute_attack, resolve_attribute_attacks
from faceleaks.config import AttributeConfig
from faceleaks.errors import ConfigError, NotFittedError, QueryBudgetExceeded, UnsupportedOutputError
from faceleaks.serving.protocol import OutputKind
from faceleaks.serving.wrappers import BudgetedBlackBox

from .world import ALLOWED, SpyBox, member_box
from tests.fakes import population

NAMES = sorted(ATTRIBUTE_ATTACKS)
contract = pytest.mark.parametrize("name", NAMES)


def _reference(box, n_classes=3) -> AttributeReferenceSet:
    images, idents, _, _ = population(12, 12, 2, offset=4)
    labels = np.array([int(i.split("_")[1]) % n_classes for i in idents])
    return AttributeReferenceSet(box, images, labels, n_classes)


def _targets():
    images, _, iids, _ = population(5, 5, 1, offset=5)
    return images, iids


def _infer(attack, box):
    images, iids = _targets()
    return attack.infer(box, images, ids=iids)


def test_names_come_from_one_registry():
    assert resolve_attribute_attacks(()) == resolve_attribute_attacks(AttributeConfig().attacks)
    assert set(resolve_attribute_attacks(())) | {"prior-only"} == set(ATTRIBUTE_ATTACKS)
    with pytest.raises(ConfigError, match="oracle"):
        resolve_attribute_attacks(("logreg", "oracle"))


@contract
def test_constructor_keeps_keyword_only_params_unchanged(name):
    attack = create_attribute_attack(name, seed=3)
    params = {p: getattr(attack, p) for p in inspect.signature(type(attack).__init__).parameters if p != "self"}
    assert all(p.kind is p.KEYWORD_ONLY for n, p in inspect.signature(type(attack).__init__).parameters.items()
               if n != "self")
    assert params["seed"] == 3
    attack.fit(_reference(member_box(set(), 0, OutputKind.POSTERIOR)))
    assert {p: getattr(attack, p) for p in params} == params


@contract
def test_infer_before_fit_raises_not_fitted(name):
    with pytest.raises(NotFittedError):
        _infer(create_attribute_attack(name), member_box(set(), 0, OutputKind.POSTERIOR))


@pytest.mark.parametrize("kind", [OutputKind.POSTERIOR, OutputKind.TOPK, OutputKind.LABEL], ids=lambda k: k.value)
@contract
def test_fit_returns_self_and_guesses_are_probabilities(name, kind):
    box = member_box(set(), 0, kind)
    attack = create_attribute_attack(name, seed=1)
    assert attack.fit(_reference(box)) is attack
    g = _infer(attack, box)
    n = len(_targets()[0])
    assert g.proba.shape == (n, 3) and np.all(np.isfinite(g.proba)) and np.allclose(g.proba.sum(1), 1.0)
    assert g.predicted.tolist() == g.proba.argmax(1).tolist() and g.ids.tolist() == _targets()[1].tolist()


@contract
def test_deterministic_for_a_seed(name):
    box = member_box(set(), 0, OutputKind.POSTERIOR)
    a = _infer(create_attribute_attack(name, seed=5).fit(_reference(box)), box)
    b = _infer(create_attribute_attack(name, seed=5).fit(_reference(box)), box)
    assert a.proba.tobytes() == b.proba.tobytes()


@contract
def test_touches_boxes_only_through_the_protocol(name):
    spy = SpyBox(member_box(set(), 0, OutputKind.POSTERIOR))
    _infer(create_attribute_attack(name).fit(_reference(spy)), spy)
    assert set(spy.accessed) <= ALLOWED, f"read {sorted(set(spy.accessed) - ALLOWED)} on a box"


@contract
def test_lets_a_query_budget_error_propagate(name):
    box = BudgetedBlackBox(member_box(set(), 0, OutputKind.POSTERIOR), budget=10**9)
    attack = create_attribute_attack(name).fit(_reference(box))
    box.budget = box.used + 1
    if ATTRIBUTE_ATTACKS[name].is_baseline:  # no model access: it must not query at all
        assert _infer(attack, box).n_queries == 0 and box.used == box.budget - 1
        return
    with pytest.raises(QueryBudgetExceeded):
        _infer(attack, box)


@contract
def test_an_output_kind_other_than_at_fit_is_a_clear_error(name):
    if ATTRIBUTE_ATTACKS[name].is_baseline:
        pytest.skip("a baseline never reads outputs")
    attack = create_attribute_attack(name).fit(_reference(member_box(set(), 0, OutputKind.POSTERIOR)))
    with pytest.raises(UnsupportedOutputError, match="label"):
        _infer(attack, member_box(set(), 0, OutputKind.LABEL))


@contract
def test_never_sees_target_labels(name):
    signature = inspect.signature(create_attribute_attack(name).infer).parameters
    assert list(signature) == ["box", "images", "ids"]
