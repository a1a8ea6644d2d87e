"""Every registered membership attack against one contract (in the spirit of scikit-learn's
``parametrize_with_checks``): the cases are the default plan's attacks at instance level and at
k=2, under posterior, top-k and label outputs, plus the diagnostic residual statistics of
base-model diffing (no longer default), so every registered attack and statistic is covered."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from faceleaks.attacks.base import RESOURCES, Level, MembershipScores
from faceleaks.attacks.registry import create_attack, plan_attacks, registered_attacks
from faceleaks.config import DEFAULT_MEMBERSHIP_ATTACKS, AttackSpec
from faceleaks.config.defence import ADAPTIVE_MEMBERSHIP_ATTACKS
from faceleaks.errors import DataError, NotFittedError, QueryBudgetExceeded, UnsupportedOutputError
from faceleaks.serving.protocol import OutputKind
from faceleaks.serving.wrappers import BudgetedBlackBox

from .world import ALLOWED, SpyBox, make_world, member_box

_NAMES = {cls: name for name, cls in registered_attacks().items()}
DIAGNOSTICS = (AttackSpec("base-diff", {"statistic": "combined"}),
               AttackSpec("lira", {"statistic": "residual_norm", "online": True}),
               AttackSpec("lira", {"statistic": "residual_coherence", "online": True}),
               AttackSpec("shadow-combination", {"statistics": ("compactness", "residual_norm", "residual_coherence")}))


def _cases() -> list[tuple[OutputKind, str, dict]]:
    out = []
    for kind in (OutputKind.POSTERIOR, OutputKind.TOPK, OutputKind.LABEL):
        for level, k in ((Level.INSTANCE, 1), (Level.IDENTITY, 2)):
            specs = DEFAULT_MEMBERSHIP_ATTACKS + DIAGNOSTICS + ADAPTIVE_MEMBERSHIP_ATTACKS
            for a in plan_attacks(specs, level=level, k=k, output_kind=kind,
                                  has_public_base=True, has_shadows=True, has_pool=True, seed=0):
                out.append((kind, _NAMES[type(a)], a.get_params()))
    return out


CASES = _cases()
IDS = [f"{kind.value}-{create_attack(name, **params).name}" for kind, name, params in CASES]
contract = pytest.mark.parametrize("kind,name,params", CASES, ids=IDS)


def _fitted(kind, name, params, world=None):
    world = world or make_world(kind)
    return create_attack(name, **params).fit(**world.resources()), world


def _score(attack, world, order=None) -> MembershipScores:
    idx = np.arange(len(world.images)) if order is None else order
    return attack.score(world.victim, world.images[idx], identity_ids=world.identity_ids[idx],
                        image_ids=world.image_ids[idx])


def test_every_registered_attack_is_checked():
    assert {name for _, name, _ in CASES} == set(registered_attacks())


@contract
def test_constructor_keeps_keyword_only_params_unchanged(kind, name, params):
    attack = create_attack(name, **params)
    signature = inspect.signature(type(attack).__init__).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in signature if p.name != "self")
    assert attack.get_params() == params  # stored under the same names, unchanged
    assert attack.needs <= RESOURCES
    attack.fit(**make_world(kind).resources())
    assert attack.get_params() == params  # fit does not touch them
    assert not [a for a in vars(attack) if a.endswith("_") and a[:-1] in params]


@contract
def test_score_before_fit_raises_not_fitted(kind, name, params):
    world = make_world(kind)
    with pytest.raises(NotFittedError):
        _score(create_attack(name, **params), world)


@contract
def test_fit_returns_self_and_scores_are_finite_one_per_target(kind, name, params):
    world = make_world(kind)
    attack = create_attack(name, **params)
    assert attack.fit(**world.resources()) is attack
    s = _score(attack, world)
    n = len(world.images) if s.level is Level.INSTANCE else len(set(world.identity_ids.tolist()))
    assert s.scores.shape == (n,) and s.ids.shape == (n,) and len(set(s.ids.tolist())) == n
    assert s.scores.dtype == np.float64 and np.all(np.isfinite(s.scores))
    assert s.attack == attack.name and s.n_queries > 0 and np.isfinite(s.threshold)


@contract
def test_deterministic_for_a_seed(kind, name, params):
    first, world = _fitted(kind, name, params)
    again, _ = _fitted(kind, name, params, world)
    a, b = _score(first, world), _score(again, world)
    assert a.scores.tobytes() == b.scores.tobytes() and a.ids.tolist() == b.ids.tolist()


@contract
def test_touches_boxes_only_through_the_protocol(kind, name, params):
    spies = []
    world = make_world(kind, wrap=lambda box: spies.append(SpyBox(box)) or spies[-1])
    attack = create_attack(name, **params).fit(**world.resources())
    _score(attack, world)
    read = set().union(*(set(s.accessed) for s in spies))
    assert read <= ALLOWED, f"attack read {sorted(read - ALLOWED)} on a box"
    assert "query" in world.victim.accessed


@contract
def test_lets_a_query_budget_error_propagate(kind, name, params):
    budgeted = []
    world = make_world(kind, wrap=lambda box: budgeted.append(BudgetedBlackBox(box, budget=10**9)) or budgeted[-1])
    attack = create_attack(name, **params).fit(**world.resources())
    world.victim.budget = world.victim.used + 1  # the attacker's allowance runs out now
    with pytest.raises(QueryBudgetExceeded):
        _score(attack, world)


@contract
def test_unsupported_output_kind_is_a_clear_error(kind, name, params):
    attack, world = _fitted(kind, name, params)
    others = [o for o in (OutputKind.POSTERIOR, OutputKind.TOPK, OutputKind.LABEL) if not attack.supports(o)]
    if not others:
        pytest.skip(f"{attack.name} supports every output kind")
    for other in others:
        with pytest.raises(UnsupportedOutputError, match=other.value):
            attack.score(member_box(set(), 0, other), world.images, identity_ids=world.identity_ids,
                         image_ids=world.image_ids)
        with pytest.raises(UnsupportedOutputError, match=other.value):
            create_attack(name, **params).fit(**make_world(other).resources())


@contract
def test_a_missing_resource_is_named(kind, name, params):
    attack = create_attack(name, **params)
    words = {"references": "references", "public_base": "public base", "shadows": "shadow models",
             "pool": "reference pool"}
    for resource in sorted(attack.needs):
        with pytest.raises(DataError, match=words[resource]):
            create_attack(name, **params).fit(**make_world(kind).resources(drop=resource))


@contract
def test_never_sees_member_labels(kind, name, params):
    """``score`` takes no truth, and the order of the queries (members first or last) changes nothing."""
    assert list(inspect.signature(create_attack(name, **params).score).parameters) == [
        "box", "images", "identity_ids", "image_ids"]
    attack, world = _fitted(kind, name, params)
    members_first = np.argsort(~world.truth, kind="stable")
    members_last = np.argsort(world.truth, kind="stable")
    a, b = _score(attack, world, members_first), _score(attack, world, members_last)
    by_id = dict(zip(b.ids.tolist(), b.scores))
    np.testing.assert_allclose(a.scores, [by_id[i] for i in a.ids.tolist()], rtol=1e-9, atol=1e-12)


@contract
def test_an_attack_that_does_not_need_the_pool_ignores_it(kind, name, params):
    """Bitwise the same scores with and without the reference pool, unless the attack uses it."""
    attack = create_attack(name, **params)
    world = make_world(kind)
    with_pool = _score(create_attack(name, **params).fit(**world.resources()), world)
    if "pool" in attack.needs:
        with pytest.raises(DataError, match="reference pool"):
            create_attack(name, **params).fit(**world.resources(drop="pool"))
        return
    without = _score(create_attack(name, **params).fit(**world.resources(drop="pool")), world)
    uses_pool = "consistency_gap" in params.get("statistics", ())
    assert (with_pool.scores.tobytes() == without.scores.tobytes()) is not uses_pool
