import numpy as np
import pytest

from faceleaks.attacks.base import ShadowModel
from faceleaks.attacks.registry import create_attack
from faceleaks.errors import ConfigError, DataError, NotFittedError
from faceleaks.metrics import auc_score
from faceleaks.serving.function import FunctionBlackBox
from tests.fakes import SIZE, fake_posteriors, make_images


def box_with_members(members: set[str], seed: int):
    """A fake student whose teacher trained on ``members``: their photos come out tighter."""

    def fn(images):
        flipped = images.copy()
        for n, im in enumerate(images):
            flipped[n, 0, 0, 1] = int(f"p{int(im[0, 1, 0])}_{int(im[0, 0, 0])}" in members)
        return fake_posteriors(flipped, seed=0)

    return FunctionBlackBox(fn, input_size=SIZE)


def _setup(gap_members, n_shadows=8):
    ids = list(range(40))
    images, idents, iids, _ = make_images(ids, [False] * 40, 5, offset=3)
    names = sorted(set(idents.tolist()))
    rng = np.random.default_rng(0)
    shadows = []
    for j in range(n_shadows):
        members = frozenset(n for n in names if rng.random() < 0.5)
        shadows.append(ShadowModel(box_with_members(set(members), j), members))
    victim_members = set(names[:20]) if gap_members else set()
    return box_with_members(victim_members, 99), shadows, images, idents, iids, victim_members


@pytest.mark.parametrize("online", [True, False])
def test_lira_separates_members(online):
    victim, shadows, images, idents, iids, members = _setup(True)
    attack = create_attack("lira", statistic="compactness", k=5, online=online).fit(shadows=shadows)
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    y = np.array([n in members for n in s.ids])
    assert auc_score(y, s.scores) > 0.8 and np.all(np.isfinite(s.scores))


def test_lira_without_members_is_at_chance():
    victim, shadows, images, idents, iids, _ = _setup(False)
    attack = create_attack("lira", statistic="compactness", k=5).fit(shadows=shadows)
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    y = np.array([int(n.split("_")[1]) < 20 for n in s.ids])  # an arbitrary split: nobody is a member
    assert 0.25 < auc_score(y, s.scores) < 0.75


def test_lira_errors():
    with pytest.raises(ConfigError):
        create_attack("lira", statistic="compactness", k=1)
    attack = create_attack("lira", k=5)
    with pytest.raises(NotFittedError):
        attack.score(box_with_members(set(), 0), np.zeros((5, SIZE, SIZE, 3), np.uint8), identity_ids=np.array(["a"] * 5))
    with pytest.raises(DataError, match="needs shadow models"):
        attack.fit(shadows=[])
    with pytest.raises(DataError, match="at least 2 shadow"):
        attack.fit(shadows=[ShadowModel(box_with_members(set(), 0), frozenset())])


class FakeBase:
    """The public base: what any student would output for a person nobody trained on."""

    def embed(self, images):
        from faceleaks.attacks.features import centered_log_posterior

        plain = images.copy()
        plain[:, 0, 0, 1] = 0
        return centered_log_posterior(fake_posteriors(plain, seed=0))


def _refs(victim, shadows):
    from faceleaks.attacks.base import ReferenceSet

    ri, rid, _, _ = make_images(list(range(30)), [False] * 30, 5, offset=7)
    return [ReferenceSet(victim, ri, rid, np.zeros(len(ri), bool))]


@pytest.mark.parametrize("statistic", ["residual_norm", "residual_coherence"])
def test_lira_on_diffing_statistics(statistic):
    victim, shadows, images, idents, iids, members = _setup(True)
    attack = create_attack("lira", statistic=statistic, k=5).fit(_refs(victim, shadows), shadows=shadows,
                                                                  public_base=FakeBase())
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    y = np.array([n in members for n in s.ids])
    assert auc_score(y, s.scores) > 0.8


def test_lira_diffing_needs_base_and_references():
    victim, shadows, *_ = _setup(True)
    with pytest.raises(DataError, match="public base"):
        create_attack("lira", statistic="residual_norm", k=5).fit(_refs(victim, shadows), shadows=shadows)
    with pytest.raises(DataError, match="non-member references"):
        create_attack("lira", statistic="residual_norm", k=5).fit([], shadows=shadows, public_base=FakeBase())
    few = _refs(victim, shadows)[0]
    keep = np.isin(few.identity_ids, [f"p7_{i}" for i in range(5)])
    from faceleaks.attacks.base import ReferenceSet

    few = ReferenceSet(victim, few.images[keep], few.identity_ids[keep], few.is_member[keep])
    with pytest.raises(DataError, match=">= 10 reference"):
        create_attack("lira", statistic="residual_norm", k=5).fit([few], shadows=shadows, public_base=FakeBase())


def test_references_that_trained_a_shadow_are_not_used():
    from faceleaks.attacks.membership.identity_stats import common_nonmember_references

    victim, shadows, *_ = _setup(True)
    refs = _refs(victim, shadows)
    used = {"p7_0", "p7_1"}
    shadows = [ShadowModel(s.box, s.members | used) for s in shadows]
    kept = common_nonmember_references(refs, shadows)
    assert not used & set(kept.identity_ids.tolist())
    assert len(set(kept.identity_ids.tolist())) == 28


def _pool(victim):
    from faceleaks.attacks.base import ReferenceSet

    pi, pid, _, _ = make_images(list(range(150)), [False] * 150, 2, offset=8)
    return ReferenceSet(victim, pi, pid, np.zeros(len(pi), bool))


@pytest.mark.parametrize("with_base,with_pool", [(False, False), (False, True), (True, False), (True, True)])
def test_shadow_combination_learns_from_shadows_only(with_base, with_pool):
    victim, shadows, images, idents, iids, members = _setup(True)
    attack = create_attack("shadow-combination", k=5).fit(_refs(victim, shadows), shadows=shadows,
                                                           public_base=FakeBase() if with_base else None,
                                                           pool=_pool(victim) if with_pool else None)
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    y = np.array([n in members for n in s.ids])
    assert auc_score(y, s.scores) > 0.8
    names = attack.stats_.names
    assert ("consistency_gap" in names) == (with_base and with_pool)
    assert {"compactness", "mean_max_posterior", "label_agreement"} <= set(names)


def test_shadow_combination_keeps_the_residual_diagnostics_with_a_base():
    victim, shadows, images, idents, iids, members = _setup(True)
    stats = ("compactness", "residual_norm", "residual_coherence")
    attack = create_attack("shadow-combination", k=5, statistics=stats).fit(_refs(victim, shadows), shadows=shadows,
                                                                             public_base=FakeBase())
    assert attack.stats_.names == stats
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    assert auc_score(np.array([n in members for n in s.ids]), s.scores) > 0.8


def test_shadow_combination_without_members_is_at_chance():
    victim, shadows, images, idents, iids, _ = _setup(False)
    attack = create_attack("shadow-combination", k=5).fit(shadows=shadows)
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    y = np.array([int(n.split("_")[1]) < 20 for n in s.ids])
    assert 0.25 < auc_score(y, s.scores) < 0.75


def test_shadow_combination_needs_three_shadows():
    _, shadows, *_ = _setup(True)
    with pytest.raises(DataError, match="at least 3"):
        create_attack("shadow-combination", k=5).fit(shadows=shadows[:2])


def test_in_out_fit_recovers_the_spread_without_bias():
    from faceleaks.attacks.membership.lira import fit_in_out

    rng = np.random.default_rng(0)
    S, n = 4, 3000  # few shadows per person: dividing by the count instead of the dof would give 0.87
    centres = rng.normal(0, 5, n)
    shadow = centres + rng.normal(0, 2.0, (S, n))
    mask = np.zeros((S, n), bool)
    mask[::2] = True  # two IN values per person
    mu, sd = fit_in_out(shadow, mask)
    assert abs(float(sd) / 2.0 - 1.0) < 0.05
    np.testing.assert_allclose(mu, shadow[::2].mean(0))
    shadow[1, 0] = np.nan  # a NaN where the mask is False does not spoil the fit
    mu2, sd2 = fit_in_out(shadow, mask)
    assert np.isfinite(sd2) and np.isclose(sd2, sd)


def test_online_lira_refuses_shadows_where_nobody_was_in():
    import numpy as np

    from faceleaks.attacks.membership.lira import fit_in_out
    from faceleaks.errors import DataError

    shadow = np.random.default_rng(0).normal(size=(4, 6))
    with pytest.raises(DataError, match="IN or OUT"):
        fit_in_out(shadow, np.zeros((4, 6), bool))
