"""The consistency gap (issue 13, part 1) on synthetic boxes: a student whose logits are a linear map
of the public base's normalised embedding, with members' photos pulled towards their person's centre
(fine-tuning made the box more consistent about them than the map predicts)."""

import itertools

import numpy as np
import pytest

from faceleaks.attacks.base import PublicBase, ReferenceSet, ShadowModel
from faceleaks.attacks.features import centered_log_posterior
from faceleaks.attacks.membership.consistency import (GAP_ALPHAS, consistency_gaps, fit_surrogate, gap_statistic,
                                                      normalise_rows, pool_indices, precise_centered_log_posterior)
from faceleaks.attacks.registry import create_attack
from faceleaks.errors import ConfigError, DataError
from faceleaks.metrics import auc_score
from faceleaks.serving.function import FunctionBlackBox
from tests.fakes import SIZE, make_images

D, C = 16, 10


def _decode(images):
    """(identity index, is_member flag, photo index, offset) of each fake image."""
    return [(int(im[0, 0, 0]), int(im[0, 0, 1]), int(im[0, 0, 2]), int(im[0, 1, 0])) for im in images]


def _centre(off, ident):
    return np.random.default_rng([off, ident]).normal(0, 1, D)


class FakeBase(PublicBase):
    """Base embedding: a per-person centre plus per-photo noise, at a per-photo scale (normalised away)."""

    def embed(self, images):
        out = []
        for ident, _, j, off in _decode(images):
            rng = np.random.default_rng([off, ident, j])
            out.append((_centre(off, ident) + 0.8 * rng.normal(0, 1, D)) * rng.uniform(0.5, 2.0))
        return np.array(out)


def linear_box(members: set[str], *, seed: int = 99, pull: float = 0.6, noise: float = 0.0):
    """Logits = 4 W e/|e| + b, members' photos pulled by ``pull`` towards their person's centre;
    ``noise``: per-photo output noise the base cannot predict. float32 posteriors."""
    rng = np.random.default_rng(seed)
    w, b = rng.normal(0, 1, (C, D)), rng.normal(0, 1, C)
    base = FakeBase()

    def fn(images):
        e = normalise_rows(base.embed(images))
        for n, (ident, _, j, off) in enumerate(_decode(images)):
            if f"p{off}_{ident}" in members:
                e[n] = (1 - pull) * e[n] + pull * normalise_rows(_centre(off, ident)[None])[0]
            e[n] += noise * np.random.default_rng([seed, off, ident, j, 3]).normal(0, 1, D) / np.sqrt(D)
        z = 4.0 * e @ w.T + b
        p = np.exp(z - z.max(1, keepdims=True))
        return (p / p.sum(1, keepdims=True)).astype(np.float32)

    return FunctionBlackBox(fn, input_size=SIZE)


def _pool(box, n_people=240, offsets=(20, 21)):
    parts = [make_images(list(range(n_people // len(offsets))), [False] * (n_people // len(offsets)), 2, offset=o)
             for o in offsets]
    images, ids = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return ReferenceSet(box, images, ids, np.zeros(len(ids), bool))


def _refs(box, n=40, k=5):
    images, ids, _, _ = make_images(list(range(n)), [False] * n, k, offset=1)
    return [ReferenceSet(box, images, ids, np.zeros(len(ids), bool))]


def _targets(offset=3, n=60, k=5):
    images, ids, iids, _ = make_images(list(range(n)), [False] * n, k, offset=offset)
    return images, ids, iids


def test_gap_matches_a_slow_loop_over_pairs():
    rng = np.random.default_rng(0)
    z, z_hat = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    groups = [np.array([0, 3, 5]), np.array([1, 2]), np.array([4, 6, 7, 8])]

    def slow(x, g):
        cos = [x[i] @ x[j] / np.linalg.norm(x[i]) / np.linalg.norm(x[j]) for i, j in itertools.permutations(g, 2)]
        return sum(cos) / len(cos)

    np.testing.assert_allclose(consistency_gaps(z, z_hat, groups), [slow(z, g) - slow(z_hat, g) for g in groups])


def test_fisher_gap_matches_a_slow_loop_over_pairs_and_stays_finite_for_identical_outputs():
    rng = np.random.default_rng(1)
    z, z_hat = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    groups = [np.array([0, 3, 5]), np.array([1, 2]), np.array([4, 6, 7, 8])]

    def slow(g):
        cos = lambda x, i, j: x[i] @ x[j] / np.linalg.norm(x[i]) / np.linalg.norm(x[j])  # noqa: E731
        return np.mean([np.arctanh(cos(z, i, j)) - np.arctanh(cos(z_hat, i, j)) for i, j in itertools.combinations(g, 2)])

    np.testing.assert_allclose(consistency_gaps(z, z_hat, groups, fisher=True), [slow(g) for g in groups])
    np.testing.assert_allclose(gap_statistic("fisher_gap", z, z_hat, groups), [slow(g) for g in groups])
    same = np.repeat(z[:1], 3, axis=0)  # a box answering one photo's output for all: cos 1, clipped
    gap = consistency_gaps(same, z_hat[:3], [np.arange(3)], fisher=True)
    assert np.isfinite(gap).all() and gap[0] > 5.0
    with pytest.raises(ConfigError, match="unknown gap statistic"):
        gap_statistic("residual_norm", z, z_hat, groups)


def test_fisher_gap_weights_pairs_the_base_already_sees_as_alike():
    """Same raw cosine gain (0.04), two predicted cosines: the Fisher gap counts it more near 1."""
    def pair(c):  # two unit vectors at cosine c
        return np.array([[1.0, 0.0], [c, np.sqrt(1 - c * c)]])
    near, far = [consistency_gaps(pair(c + 0.04), pair(c), [np.arange(2)], fisher=True)[0] for c in (0.95, 0.3)]
    assert near > 3 * far > 0
    plain = [consistency_gaps(pair(c + 0.04), pair(c), [np.arange(2)])[0] for c in (0.95, 0.3)]
    np.testing.assert_allclose(plain, [0.04, 0.04])


def test_posteriors_are_floored_only_at_the_smallest_positive_float():
    p = np.array([[1e-20, 1.0 - 1e-20, 0.0]])
    z = precise_centered_log_posterior(p)
    lp = np.log([1e-20, 1.0, np.finfo(np.float64).tiny])
    np.testing.assert_allclose(z[0], lp - lp.mean())
    assert not np.allclose(z, centered_log_posterior(p))  # today's statistics clip at 1e-7
    z32 = precise_centered_log_posterior(np.array([[0.0, 1.0]], np.float32))
    assert np.isclose(z32[0, 0] - z32[0, 1], np.log(np.finfo(np.float32).tiny))


def test_gap_is_about_zero_when_the_box_is_a_linear_map_of_the_base():
    box = linear_box(set())
    pool = _pool(box)
    e = normalise_rows(FakeBase().embed(pool.images))
    sur = fit_surrogate(e, precise_centered_log_posterior(box.query(pool.images).values))
    images, ids, _ = _targets()
    groups = [np.flatnonzero(ids == n) for n in np.unique(ids)]
    z = precise_centered_log_posterior(box.query(images).values)
    gaps = consistency_gaps(z, sur.predict(normalise_rows(FakeBase().embed(images))), groups)
    assert np.abs(gaps).max() < 0.02


@pytest.mark.parametrize("statistic", ["consistency_gap", "fisher_gap"])
@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_base_diff_gap_finds_members_and_is_at_chance_without_them(noise, statistic):
    images, ids, iids = _targets()
    members = {f"p3_{i}" for i in range(30)}
    aucs = {}
    for name, mem in (("members", members), ("nobody", set())):
        box = linear_box(mem, noise=noise)
        attack = create_attack("base-diff", statistic=statistic, k=5)
        attack.fit(_refs(box), public_base=FakeBase(), pool=_pool(box))
        s = attack.score(box, images, identity_ids=ids, image_ids=iids)
        aucs[name] = auc_score(np.array([n in members for n in s.ids]), s.scores)
        assert attack.name == f"base-diff-{statistic}@k=5" and np.all(np.isfinite(s.scores))
        if name == "members":
            assert np.median(s.scores[[n in members for n in s.ids]]) > 1.0  # clearly positive, in null sds
            assert abs(np.median(s.scores[[n not in members for n in s.ids]])) < 1.0  # calibrated null
    assert aucs["members"] > 0.85  # this fake's noise is isotropic: Fisher's weighting buys nothing here
    assert 0.3 < aucs["nobody"] < 0.7


def test_ridge_cv_picks_a_larger_alpha_for_a_tiny_noisy_pool():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (D, C))

    def pool(n, noise):
        e = normalise_rows(rng.normal(size=(n, D)))
        return e, e @ w + noise * rng.normal(size=(n, C))

    tiny, big = fit_surrogate(*pool(25, 3.0)), fit_surrogate(*pool(2000, 0.05))
    assert tiny.alpha_ > 10 * big.alpha_
    assert big.alpha_ in GAP_ALPHAS and tiny.alpha_ in GAP_ALPHAS


def test_pool_subsample_is_seeded_and_leaves_out_excluded_people():
    pool = _pool(linear_box(set()))
    gone = {"p20_0", "p21_5"}
    idx = pool_indices(pool, pool_size=None, seed=0, exclude=gone)
    assert len(idx) == len(pool.images) - 4 and not gone & set(pool.identity_ids[idx].tolist())
    a, b = (pool_indices(pool, pool_size=100, seed=s, exclude=gone) for s in (3, 3))
    assert len(a) == 100 and a.tolist() == b.tolist() and np.all(np.diff(a) > 0)
    assert pool_indices(pool, pool_size=100, seed=4).tolist() != a.tolist()
    with pytest.raises(DataError, match="give a larger pool"):
        pool_indices(ReferenceSet(pool.box, pool.images[:10], pool.identity_ids[:10], pool.is_member[:10]),
                     pool_size=None, seed=0)
    with pytest.raises(ConfigError, match="pool_size=5"):
        create_attack("lira", statistic="consistency_gap", pool_size=5)


def test_base_diff_gap_needs_the_pool_on_the_victim_box():
    box = linear_box(set())
    attack = create_attack("base-diff", k=5)
    assert attack.statistic == "consistency_gap" and "pool" in attack.needs
    with pytest.raises(DataError, match="reference pool"):
        attack.fit(_refs(box), public_base=FakeBase())
    with pytest.raises(DataError, match="queried on the victim box"):
        attack.fit(_refs(box), public_base=FakeBase(), pool=_pool(linear_box(set(), seed=5)))


def _shadows(names, n_shadows=8):
    rng = np.random.default_rng(0)
    out = []
    for j in range(n_shadows):
        members = frozenset(n for n in names if rng.random() < 0.5)
        out.append(ShadowModel(linear_box(set(members), seed=200 + j), members))
    return out


@pytest.mark.parametrize("online", [True, False])
def test_lira_on_the_gap_uses_each_box_own_surrogate(online):
    images, ids, iids = _targets(n=40)
    names = sorted(set(ids.tolist()))
    shadows = _shadows(names)
    results = {}
    for label, mem in (("members", set(names[:20])), ("nobody", set())):
        victim = linear_box(mem, seed=99)
        attack = create_attack("lira", statistic="consistency_gap", k=5, online=online, pool_size=200)
        attack.fit(shadows=shadows, public_base=FakeBase(), pool=_pool(victim))
        s = attack.score(victim, images, identity_ids=ids, image_ids=iids)
        results[label] = auc_score(np.array([n in set(names[:20]) for n in s.ids]), s.scores)
    assert results["members"] > 0.9
    assert 0.25 < results["nobody"] < 0.75


def test_lira_leaves_shadow_members_out_of_the_pool():
    images, ids, iids = _targets(n=40)
    shadows = _shadows(sorted(set(ids.tolist())), n_shadows=4)
    victim = linear_box(set(ids[:50].tolist()))
    clean = _pool(victim)
    extra_images, extra_ids, _, _ = make_images(list(range(6)), [False] * 6, 2, offset=30)
    trained = {f"p30_{i}" for i in range(6)}  # pool people a shadow trained on
    shadows[0] = ShadowModel(shadows[0].box, shadows[0].members | trained)
    dirty = ReferenceSet(victim, np.concatenate([clean.images, extra_images]),
                         np.concatenate([clean.identity_ids, extra_ids]), np.zeros(len(clean.images) + 12, bool))
    scores = [create_attack("lira", statistic="consistency_gap", k=5, pool_size=None)
              .fit(shadows=shadows, public_base=FakeBase(), pool=p)
              .score(victim, images, identity_ids=ids, image_ids=iids).scores for p in (clean, dirty)]
    assert scores[0].tobytes() == scores[1].tobytes()
