import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from faceleaks import metrics
from faceleaks.errors import ConfigError, DataError, UndefinedMetricWarning


def _data(seed, n_pos=60, n_neg=140, shift=0.7, ties=False):
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.normal(shift, 1, n_pos), rng.normal(0, 1, n_neg)])
    if ties:
        s = np.round(s, 1)
    y = np.concatenate([np.ones(n_pos, int), np.zeros(n_neg, int)])
    return y, s


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(seed, ties):
    y, s = _data(seed, ties=ties)
    assert metrics.auc_score(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    b = np.ones((1, len(y)), bool) & (y == 1)
    assert metrics.rank_auc(b, s[None, :])[0] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def _tpr_at_fpr_bruteforce(y, s, fpr):
    best = 0.0
    for t in np.concatenate([np.unique(s), [np.inf]]):
        pred = s >= t
        f = pred[y == 0].mean()
        if f <= fpr + 1e-12:
            best = max(best, pred[y == 1].mean())
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.1, 0.3])
def test_tpr_at_fpr_bruteforce(seed, fpr):
    y, s = _data(seed, n_neg=200, ties=seed % 2 == 0)
    assert metrics.tpr_at_fpr(y, s, fpr) == pytest.approx(_tpr_at_fpr_bruteforce(y, s, fpr))


def test_tpr_at_unresolvable_fpr_is_nan_with_warning():
    y, s = _data(0, n_neg=50)
    with pytest.warns(UndefinedMetricWarning, match="needs >= 1000 non-members, have 50"):
        assert np.isnan(metrics.tpr_at_fpr(y, s, 0.001))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(metrics.tpr_at_fpr(y, s, 0.02))  # 50 * 0.02 = 1 negative: resolvable


def test_advantage_and_balanced_accuracy_match_definitions():
    y, s = _data(3)
    fpr, tpr, thr = skm.roc_curve(y, s)
    assert metrics.advantage_score(y, s) == pytest.approx(np.max(tpr - fpr))
    t = metrics.best_threshold(y, s)
    bacc = metrics.balanced_accuracy_score(y, s, t)
    assert bacc == pytest.approx(skm.balanced_accuracy_score(y, s >= t))
    assert bacc == pytest.approx(0.5 + metrics.advantage_score(y, s) / 2)


def test_bootstrap_ci_contains_auc_and_is_seeded():
    y, s = _data(1)
    a = metrics.bootstrap_auc_ci(y, s, n_bootstrap=500, seed=4)
    b = metrics.bootstrap_auc_ci(y, s, n_bootstrap=500, seed=4)
    assert a == b
    assert a.low < metrics.auc_score(y, s) < a.high
    assert 0.05 < a.high - a.low < 0.3


def test_bootstrap_ci_covers_true_auc_most_of_the_time():
    # true AUC of N(0.7,1) vs N(0,1) is Phi(0.7 / sqrt(2))
    from scipy.stats import norm

    true = norm.cdf(0.7 / np.sqrt(2))
    hits = 0
    for seed in range(40):
        y, s = _data(100 + seed)
        ci = metrics.bootstrap_auc_ci(y, s, n_bootstrap=300, seed=seed)
        hits += ci.low <= true <= ci.high
    assert hits >= 33  # nominal 95 %: 38 of 40 expected


def test_bad_input_is_an_error():
    with pytest.raises(DataError, match="NaN"):
        metrics.auc_score([0, 1], [0.1, np.nan])
    with pytest.raises(DataError, match="at least one member"):
        metrics.auc_score([1, 1], [0.1, 0.2])
    with pytest.raises(DataError, match="differ in length"):
        metrics.auc_score([0, 1, 1], [0.1, 0.2])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_subnormal=False), min_size=4, max_size=40), st.integers(0, 10**6))
def test_auc_of_negated_scores(scores, seed):
    s = np.array(scores)
    y = np.random.default_rng(seed).permutation(np.arange(len(s)) % 2)
    assert metrics.auc_score(y, -s) == pytest.approx(1 - metrics.auc_score(y, s), abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_subnormal=False), min_size=20, max_size=60), st.integers(0, 10**6))
def test_tpr_at_fpr_is_monotone(scores, seed):
    s = np.array(scores)
    y = np.random.default_rng(seed).permutation(np.arange(len(s)) % 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        vals = [metrics.tpr_at_fpr(y, s, f) for f in (0.05, 0.1, 0.2, 0.5, 0.9)]
    finite = [v for v in vals if np.isfinite(v)]
    assert finite == sorted(finite)


def test_cluster_bootstrap_is_wider_for_correlated_photos():
    rng = np.random.default_rng(0)
    person = np.repeat(np.arange(40), 10)  # 40 people x 10 near-identical photos
    y = (person < 20).astype(int)
    s = rng.normal(0, 1, 40)[person] + rng.normal(0, 0.05, 400)
    naive = metrics.bootstrap_auc_ci(y, s, n_bootstrap=400, seed=1)
    clustered = metrics.bootstrap_auc_ci(y, s, groups=person, n_bootstrap=400, seed=1)
    assert (clustered.high - clustered.low) > 2 * (naive.high - naive.low)
    assert clustered.low <= metrics.auc_score(y, s) <= clustered.high
    # singleton groups reproduce the ordinary bootstrap's width
    single = metrics.bootstrap_auc_ci(y, s, groups=np.arange(400), n_bootstrap=400, seed=1)
    assert abs((single.high - single.low) - (naive.high - naive.low)) < 0.03


def _slow_stratified_aucs(y, draws, n_bootstrap, seed):
    """Obviously correct loop: the same draws as ``bootstrap_auc_replicates`` (members, then
    non-members, then one row of ``draws`` per replicate), each AUC from scikit-learn."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    pi = pos[rng.integers(0, pos.size, (n_bootstrap, pos.size))]
    ni = neg[rng.integers(0, neg.size, (n_bootstrap, neg.size))]
    pick = rng.integers(0, len(draws), n_bootstrap) if len(draws) > 1 else np.zeros(n_bootstrap, int)
    return np.array([skm.roc_auc_score(np.r_[np.ones(pos.size), np.zeros(neg.size)],
                                       draws[pick[b]][np.r_[pi[b], ni[b]]]) for b in range(n_bootstrap)])


@pytest.mark.parametrize("n_draws", [1, 3])
def test_bootstrap_replicates_match_a_slow_loop(n_draws):
    y, s = _data(4, n_pos=20, n_neg=30, ties=True)
    draws = s[None] + np.random.default_rng(1).normal(0, 0.5, (n_draws, len(s)))
    got = metrics.bootstrap_auc_replicates(y, draws if n_draws > 1 else draws[0], n_bootstrap=50, seed=9)
    np.testing.assert_allclose(got, _slow_stratified_aucs(y, draws, 50, 9), atol=1e-12)


def test_bootstrap_ci_is_the_quantiles_of_the_replicates():
    y, s = _data(5)
    aucs = metrics.bootstrap_auc_replicates(y, s, n_bootstrap=300, seed=2)
    ci = metrics.bootstrap_auc_ci(y, s, n_bootstrap=300, seed=2, level=0.9)
    assert (ci.low, ci.high) == tuple(np.quantile(aucs, [0.05, 0.95]))
    with pytest.raises(DataError, match="groups need 1-D"):
        metrics.bootstrap_auc_replicates(y, np.stack([s, s]), groups=y, n_bootstrap=10)
    with pytest.raises(DataError, match="must be finite"):
        metrics.bootstrap_auc_replicates(y, np.stack([s, np.r_[s[:-1], np.nan]]), n_bootstrap=10)


# --- bootstrap over people (decisions sharing people, e.g. one per victim) ------------------------


def _shared_people(seed, n_people=60, max_decisions=8, ties=False):
    """Each person makes 1..max_decisions decisions, as a member in some and a non-member in others,
    with a person effect shared by all their decisions."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_decisions + 1, n_people)
    person = np.repeat([f"p{i}" for i in range(n_people)], sizes)
    y = rng.integers(0, 2, person.size)
    s = rng.normal(0, 1, n_people)[np.repeat(np.arange(n_people), sizes)] + 0.8 * y + rng.normal(0, 0.5, y.size)
    return y, (np.round(s, 1) if ties else s), person


def _slow_people_bootstrap(y, s, person, fprs, n_bootstrap, seed):
    """Obviously correct loop: the same people drawn as ``bootstrap_people_replicates`` (people in
    sorted order of their ids), every decision of each drawn person kept, metrics from
    ``tpr_at_fpr`` and scikit-learn on the concatenated resample."""
    people = np.unique(person.astype(str))
    picks = np.random.default_rng(seed).integers(0, people.size, (n_bootstrap, people.size))
    aucs, tprs = [], []
    for b in range(n_bootstrap):
        idx = np.concatenate([np.flatnonzero(person == people[p]) for p in picks[b]])
        yb, sb = y[idx], s[idx]
        both = 0 < yb.sum() < yb.size
        aucs.append(skm.roc_auc_score(yb, sb) if both else np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            tprs.append([metrics.tpr_at_fpr(yb, sb, f) if both else np.nan for f in fprs])
    return np.array(aucs), np.array(tprs).reshape(n_bootstrap, len(fprs))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n_people", [3, 60])
def test_people_bootstrap_matches_a_slow_loop(ties, n_people):
    y, s, person = _shared_people(7, n_people=n_people, ties=ties)
    fprs = (0.005, 0.0075, 0.05, 0.5)  # 60 people: 0.005 never resolvable, 0.0075 in ~2 of 3 resamples
    aucs, tprs = metrics.bootstrap_people_replicates(y, s, groups=person, fprs=fprs, n_bootstrap=300, seed=3)
    slow_aucs, slow_tprs = _slow_people_bootstrap(y, s, person, fprs, 300, 3)
    np.testing.assert_allclose(aucs, slow_aucs, atol=1e-12)
    np.testing.assert_allclose(tprs, slow_tprs, atol=1e-12)
    assert np.isnan(tprs[:, 0]).all() and np.isfinite(tprs[:, 3]).all()


def test_people_bootstrap_without_groups_resamples_decisions():
    y, s, _ = _shared_people(2)
    a = metrics.bootstrap_people_replicates(y, s, fprs=(0.1,), n_bootstrap=50, seed=1)
    b = metrics.bootstrap_people_replicates(y, s, groups=np.arange(y.size), fprs=(0.1,), n_bootstrap=50, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(DataError, match="groups .* differ in length"):
        metrics.bootstrap_people_replicates(y, s, groups=np.arange(3), n_bootstrap=5)


def test_tpr_ci_is_nan_with_warning_when_resamples_cannot_resolve_the_fpr():
    y, s, person = _shared_people(0, n_people=200)  # about 450 non-member decisions
    with pytest.warns(UndefinedMetricWarning, match=r"TPR at FPR=0.001: \d+ of 200 resamples cannot resolve it"):
        ci = metrics.bootstrap_tpr_at_fpr_ci(y, s, 0.001, groups=person, n_bootstrap=200, seed=0)
    assert np.isnan(ci.low) and np.isnan(ci.high)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ci = metrics.bootstrap_tpr_at_fpr_ci(y, s, 0.05, groups=person, n_bootstrap=200, seed=0)
    assert ci.low <= metrics.tpr_at_fpr(y, s, 0.05) <= ci.high and ci.level == 0.95


def test_people_bootstrap_is_wider_than_a_decision_bootstrap_for_shared_people():
    rng = np.random.default_rng(5)
    person = np.repeat(np.arange(150), 20)  # 150 people x 20 victims, strong person effect
    y = rng.integers(0, 2, person.size)
    s = 2.0 * rng.normal(0, 1, 150)[person] + 1.0 * y + rng.normal(0, 0.3, person.size)
    by_person = metrics.bootstrap_tpr_at_fpr_ci(y, s, 0.01, groups=person, n_bootstrap=300, seed=1)
    by_decision = metrics.bootstrap_tpr_at_fpr_ci(y, s, 0.01, n_bootstrap=300, seed=1)
    assert (by_person.high - by_person.low) > 2 * (by_decision.high - by_decision.low)
    auc_person = metrics.bootstrap_people_auc_ci(y, s, groups=person, n_bootstrap=300, seed=1)
    auc_decision = metrics.bootstrap_people_auc_ci(y, s, n_bootstrap=300, seed=1)
    assert auc_person.low <= metrics.auc_score(y, s) <= auc_person.high
    assert (auc_person.high - auc_person.low) > 1.3 * (auc_decision.high - auc_decision.low)


def test_tpr_at_fpr_zero_is_defined_and_bad_fprs_are_refused():
    y = np.array([1, 1, 1, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.05])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.tpr_at_fpr(y, s, 0.0) == pytest.approx(2 / 3)  # 0.9, 0.8 above every non-member
    fpr, tpr, _ = skm.roc_curve(y, s)
    assert metrics.tpr_at_fpr(y, s, 0.0) == pytest.approx(tpr[fpr == 0].max())
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="FPR must be a fraction"):
            metrics.tpr_at_fpr(y, s, bad)
    _, tprs = metrics.bootstrap_people_replicates(y, s, fprs=(0.0,), n_bootstrap=20, seed=0)
    assert np.isfinite(tprs).any()  # resolvable at FPR 0 (NaN only where a resample lacks a member)


def test_advantage_is_signed():
    y, s = _data(3)
    adv = metrics.advantage_score(y, s)
    assert adv > 0
    assert metrics.advantage_score(y, -s) < 0  # worse than chance: negative, not clipped to 0
    fpr, tpr, _ = skm.roc_curve(y, -s)
    assert metrics.advantage_score(y, -s) == pytest.approx(-np.max(fpr - tpr))
