"""The adaptive attacks: label-only agreement/margins with augmentations, and averaging against noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from faceleaks.attacks.membership.augment import augment, jitter, with_variants
from faceleaks.attacks.membership.averaging import AveragingAttack
from faceleaks.attacks.membership.label_only import LabelOnlyAttack, agreement_and_margin
from faceleaks.attacks.registry import create_attack
from faceleaks.errors import ConfigError, UnsupportedOutputError
from faceleaks.serving.defences import NoiseBlackBox
from faceleaks.serving.protocol import OutputKind
from faceleaks.serving.wrappers import CountingBlackBox
from tests.contracts.world import make_world, member_box
from tests.fakes import N_CLASSES, fake_box, population, references


def _separation(statistic: str, kind: OutputKind) -> float:
    """AUC over 80 + 80 people with 8 photos each: members' photos are tighter and more confident."""
    box = fake_box(kind=kind)
    images, idents, _, truth = population(80, 80, 8)
    attack = LabelOnlyAttack(statistic=statistic, k=8, n_augment=0).fit(references(box, box, k=8))
    s = attack.score(box, images, identity_ids=idents)
    member = {i: bool(t) for i, t in zip(idents.tolist(), truth)}
    return roc_auc_score([member[i] for i in s.ids.tolist()], s.scores)


@pytest.mark.parametrize("kind", [OutputKind.LABEL, OutputKind.POSTERIOR], ids=lambda k: k.value)
def test_agreement_separates_members_through_labels_alone(kind):
    assert _separation("agreement", kind) > 0.7


def test_margin_needs_scores_and_separates_members():
    assert _separation("margin", OutputKind.POSTERIOR) > 0.7
    world = make_world(OutputKind.POSTERIOR)
    attack = LabelOnlyAttack(statistic="margin", k=6, n_augment=0).fit(world.references)
    assert not attack.supports(OutputKind.LABEL)
    with pytest.raises(UnsupportedOutputError, match="label"):
        attack.score(member_box(set(), 0, OutputKind.LABEL), world.images, identity_ids=world.identity_ids)


def test_augmented_queries_are_counted():
    world = make_world(OutputKind.LABEL)
    counted = CountingBlackBox(world.victim)
    attack = LabelOnlyAttack(k=3, n_augment=4).fit(world.references)
    s = attack.score(counted, world.images, identity_ids=world.identity_ids)
    n_people = len(set(world.identity_ids.tolist()))
    assert s.n_queries == counted.n_queries == n_people * 3 * 5


def test_agreement_and_margin_against_a_loop():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=12)
    groups = [np.arange(0, 5), np.arange(5, 12)]
    got = agreement_and_margin(p, OutputKind.POSTERIOR, groups)
    for row, g in zip(got, groups):
        labels = [int(np.argmax(p[i])) for i in g]
        modal = max(set(labels), key=lambda c: (labels.count(c), -c))
        assert row[0] == pytest.approx(labels.count(modal) / len(g))
        margins = [p[i][modal] - max(p[i][j] for j in range(4) if j != modal) for i in g]
        assert row[1] == pytest.approx(np.mean(margins))


def test_variants_are_deterministic_and_shaped():
    x = np.random.default_rng(1).integers(0, 256, (3, 10, 10, 3), dtype=np.uint8)
    v = with_variants(x, "augment", 8)
    assert v.shape == (9, 3, 10, 10, 3) and v.dtype == np.uint8
    np.testing.assert_array_equal(v[0], x)
    np.testing.assert_array_equal(augment(x, 1)[0], x[:, :, ::-1])
    assert all(np.abs(jitter(x, r).astype(int) - x).sum(axis=(1, 2, 3)).tolist() == [1, 1, 1] for r in range(1, 9))
    np.testing.assert_array_equal(with_variants(x, "jitter", 3), with_variants(x, "jitter", 3))
    with pytest.raises(ConfigError, match="variants"):
        with_variants(x, "rotate", 2)
    with pytest.raises(ConfigError, match="n_augment"):
        augment(x, 9)


def _noisy(world, **kw):
    return NoiseBlackBox(world.victim, scale=0.2, seed=3, **kw)


def test_averaging_reduces_fresh_noise():
    world = make_world(OutputKind.POSTERIOR)
    x = world.images[:30]
    clean = AveragingAttack(n_repeats=1)._log_posteriors(world.victim, x)
    one = AveragingAttack(n_repeats=1)._log_posteriors(_noisy(world), x)
    many = AveragingAttack(n_repeats=16)._log_posteriors(_noisy(world), x)
    assert np.abs(many - clean).mean() < 0.5 * np.abs(one - clean).mean()


def test_identical_repeats_do_not_help_against_hmac_noise_but_jitter_does():
    world = make_world(OutputKind.POSTERIOR)
    x = world.images[:20]
    box = _noisy(world, same_noise_per_image=True, secret=b"s")
    single = AveragingAttack(n_repeats=1)._log_posteriors(box, x)
    np.testing.assert_allclose(AveragingAttack(n_repeats=6, variants="same")._log_posteriors(box, x), single)
    assert not np.allclose(AveragingAttack(n_repeats=6, variants="jitter")._log_posteriors(box, x), single)


def test_averaging_counts_every_repeat():
    world = make_world(OutputKind.POSTERIOR)
    res = world.resources()
    plain = create_attack("base-diff", k=2, pool_size=100).fit(**res)
    avg = create_attack("averaging", k=2, n_repeats=3, pool_size=100).fit(**res)
    args = dict(identity_ids=world.identity_ids)
    assert avg.score(world.victim, world.images, **args).n_queries == 3 * plain.score(world.victim, world.images,
                                                                                      **args).n_queries
    assert avg.name == "averaging-jitterx3-consistency_gap@k=2"


@pytest.mark.parametrize("params,match", [({"statistic": "loss"}, "statistic"), ({"k": 0}, "k >= 1"),
                                          ({"n_augment": 9}, "n_augment"), ({"k": 1, "n_augment": 0}, "n_augment")])
def test_label_only_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        LabelOnlyAttack(**params)


@pytest.mark.parametrize("params,match", [({"n_repeats": 0}, "n_repeats"), ({"variants": "x"}, "variants"),
                                          ({"variants": "augment", "n_repeats": 10}, "n_repeats"),
                                          ({"floor": -1.0}, "floor"), ({"k": 1}, "k >= 2")])
def test_averaging_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        AveragingAttack(**params)


def test_fake_world_has_the_classes_the_tests_assume():
    assert N_CLASSES >= 4
