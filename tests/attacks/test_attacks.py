import numpy as np
import pytest

from faceleaks.attacks.base import Level
from faceleaks.attacks.registry import create_attack, register_attack, registered_attacks
from faceleaks.errors import ConfigError, DataError, NotFittedError, QueryBudgetExceeded, UnsupportedOutputError
from faceleaks.metrics import auc_score
from faceleaks.serving.protocol import OutputKind
from faceleaks.serving.wrappers import BudgetedBlackBox
from tests.attacks.test_registry import expected_default_specs
from tests.fakes import SpyBox, fake_box, population, references

SPECS = [(lvl, k, name, params) for lvl, k in ((Level.INSTANCE, 1), (Level.IDENTITY, 1), (Level.IDENTITY, 2), (Level.IDENTITY, 5))
         for name, params in expected_default_specs(lvl, k, OutputKind.POSTERIOR)]
IDS = [f"{name}-{params.get('feature', 'clf')}-{lvl.value}-k{k}" for lvl, k, name, params in SPECS]


def _score(attack, box, k):
    images, idents, iids, truth = population(k=k)
    scores = attack.score(box, images, identity_ids=idents, image_ids=iids)
    if scores.level is Level.INSTANCE:
        y = truth
    else:
        y = np.array([s.startswith("p0_") and int(s.split("_")[1]) < 20 for s in scores.ids])
    return scores, y


@pytest.mark.parametrize("lvl,k,name,params", SPECS, ids=IDS)
def test_attack_contract(lvl, k, name, params):
    attack = create_attack(name, **params)
    before = dict(vars(attack))
    with pytest.raises(NotFittedError):
        _score(attack, fake_box(), max(k, 1))
    victim, shadow = SpyBox(fake_box(seed=0)), SpyBox(fake_box(seed=1))
    assert attack.fit(references(victim, shadow, k=max(k, 6))) is attack
    for key, value in before.items():  # constructor parameters unchanged by fit
        assert vars(attack)[key] == value
    scores, y = _score(attack, victim, max(k, 6))
    assert scores.scores.dtype == np.float64 and np.all(np.isfinite(scores.scores))
    assert scores.scores.shape == scores.ids.shape
    again, _ = _score(attack, victim, max(k, 6))
    np.testing.assert_array_equal(scores.scores, again.scores)
    # the fake members are tighter and more confident: every attack must find them
    assert auc_score(y, scores.scores) > 0.6
    assert victim.calls and shadow.calls


@pytest.mark.parametrize("lvl,k,name,params", SPECS[:2] + SPECS[-2:], ids=IDS[:2] + IDS[-2:])
def test_attack_respects_query_budget(lvl, k, name, params):
    victim = fake_box(seed=0)
    attack = create_attack(name, **params).fit(references(victim, fake_box(seed=1), k=6))
    images, idents, iids, _ = population(k=6)
    need = len(images) if lvl is Level.INSTANCE else 40 * k
    attack.score(BudgetedBlackBox(victim, budget=need), images, identity_ids=idents, image_ids=iids)
    with pytest.raises(QueryBudgetExceeded):
        attack.score(BudgetedBlackBox(victim, budget=need - 1), images, identity_ids=idents, image_ids=iids)


def test_no_signal_scores_near_chance():
    """Same distribution for members and non-members (gap=0): AUC must sit near 0.5."""
    victim = fake_box(seed=0, gap=0.0)
    attack = create_attack("threshold", feature="compactness", level="identity", k=5)
    attack.fit(references(victim, fake_box(seed=1, gap=0.0), k=6))
    aucs = []
    for offset in range(3, 9):
        images, idents, iids, _ = population(50, 50, k=5, offset=offset)
        s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
        y = np.array([int(i.split("_")[1]) < 50 for i in s.ids])
        aucs.append(auc_score(y, s.scores))
    assert abs(np.mean(aucs) - 0.5) < 0.06


def test_identity_with_fewer_photos_than_k_is_a_clear_error():
    victim = fake_box()
    attack = create_attack("threshold", feature="compactness", level="identity", k=10).fit(
        references(victim, fake_box(seed=1), k=10))
    images, idents, iids, _ = population(k=6)
    with pytest.raises(DataError, match="fewer photos than k=10"):
        attack.score(victim, images, identity_ids=idents, image_ids=iids)


def test_label_only_box_is_unsupported_for_posterior_features():
    victim = fake_box(kind=OutputKind.LABEL)
    attack = create_attack("threshold", feature="max_posterior")
    with pytest.raises(UnsupportedOutputError):
        attack.fit(references(victim, fake_box(seed=1, kind=OutputKind.LABEL)))
    ok = create_attack("threshold", feature="label_agreement", level="identity", k=5)
    ok.fit(references(victim, fake_box(seed=1, kind=OutputKind.LABEL)))


def test_registry_and_bad_parameters():
    assert {"threshold", "shadow"} <= set(registered_attacks())
    with pytest.raises(ValueError, match="already registered"):
        register_attack("threshold", type(create_attack("threshold", feature="max_posterior")))
    with pytest.raises(ConfigError, match="unknown attack"):
        create_attack("no-such-attack")
    with pytest.raises(ConfigError, match="no parameter"):
        create_attack("threshold", feature="max_posterior", temperature=2)
    with pytest.raises(ConfigError, match="unknown instance feature"):
        create_attack("threshold", feature="compactness")
    with pytest.raises(ConfigError, match="not valid"):
        create_attack("threshold", feature="compactness", level="identity", k=1)
