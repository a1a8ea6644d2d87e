"""Empirical epsilon lower bounds: Clopper-Pearson against scipy, randomized response (a mechanism
whose epsilon is known), properties of the bound, and the fit / eval separation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, binomtest

from faceleaks.errors import ConfigError, DataError
from faceleaks.privacy_bounds import EpsilonBound, clopper_pearson, empirical_epsilon, epsilon_lower_bound


@pytest.mark.parametrize("k,n", [(0, 1), (0, 10), (3, 10), (10, 10), (1, 1000), (997, 1000), (500, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_matches_scipy_binomtest(k, n, confidence):
    low, high = clopper_pearson(k, n, confidence=confidence)
    ref = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    assert float(low) == pytest.approx(ref.low, abs=1e-12)
    assert float(high) == pytest.approx(ref.high, abs=1e-12)


def test_clopper_pearson_is_vectorised_and_checks_counts():
    low, high = clopper_pearson([0, 3, 10], 10)
    assert low.shape == high.shape == (3,)
    assert low[0] == 0.0 and high[2] == 1.0 and np.all(low < high)
    with pytest.raises(DataError, match="successes <= trials"):
        clopper_pearson(11, 10)
    with pytest.raises(DataError, match="trials >= 1"):
        clopper_pearson(0, 0)
    with pytest.raises(ConfigError, match="confidence=1.5"):
        clopper_pearson(1, 10, confidence=1.5)


def _randomized_response(eps: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n decisions, half members: each reports its true bit with probability e^eps / (1 + e^eps),
    an eps-DP mechanism (delta = 0) whose best test has TPR / FPR = TNR / FNR = e^eps exactly."""
    labels = np.arange(n) % 2
    truthful = rng.random(n) < np.exp(eps) / (1.0 + np.exp(eps))
    return np.where(truthful, labels, 1 - labels).astype(float), labels


def _rr_bounds(eps, n, seeds, confidence):
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        fit, ev = _randomized_response(eps, n, rng), _randomized_response(eps, n, rng)
        out.append(empirical_epsilon(*fit, *ev, confidence=confidence).epsilon)
    return np.array(out)


@pytest.mark.parametrize("eps", [1.0, 2.0, 4.0])
def test_randomized_response_bound_comes_within_30_percent_with_2000_decisions_per_part(eps):
    # 2,000 decisions per part (1,000 members + 1,000 non-members to fit, as many to evaluate)
    bounds = _rr_bounds(eps, 2000, range(200), 0.95)
    assert np.all(bounds >= 0.7 * eps), bounds.min()
    assert np.median(bounds) < eps
    # with few decisions the bound is loose, never tight by chance
    assert np.median(_rr_bounds(eps, 100, range(50), 0.95)) < 0.7 * eps


@pytest.mark.parametrize("eps", [1.0, 2.0, 4.0])
def test_randomized_response_bound_exceeds_true_eps_no_more_often_than_the_confidence_allows(eps):
    # a 95 % bound may exceed the true eps in up to 5 % of repetitions; allow the binomial noise of
    # 400 repetitions (99.9 % quantile of Bin(400, 0.05) = 35) and no more
    bounds = _rr_bounds(eps, 2000, range(1000, 1400), 0.95)
    assert int((bounds > eps).sum()) <= binom.ppf(0.999, 400, 0.05)
    # at 99.9 % confidence: never, over 200 repetitions (measured rate <= 0.1 %)
    assert np.all(_rr_bounds(eps, 2000, range(2000, 2200), 0.999) <= eps)


def test_bound_is_zero_for_a_useless_attack():
    rng = np.random.default_rng(0)
    labels = np.arange(4000) % 2
    scores = rng.normal(size=4000)  # independent of membership
    bound = empirical_epsilon(scores[:2000], labels[:2000], scores[2000:], labels[2000:])
    assert bound.epsilon == 0.0
    const = empirical_epsilon(np.zeros(10), labels[:10], np.zeros(10), labels[:10])
    assert const.epsilon == 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500), st.integers(1, 20), st.integers(1, 20))
def test_equal_tpr_and_fpr_give_zero(a, b, m, n):
    # TPR = FPR = a / (a + b) with m (a + b) members and n (a + b) non-members
    assert epsilon_lower_bound(tp=a * m, fn=b * m, fp=a * n, tn=b * n) == 0.0


counts = st.integers(0, 300)


@settings(max_examples=300, deadline=None)
@given(counts, counts, counts, counts)
def test_bound_is_monotone_in_the_counts(tp, fn, fp, tn):
    base = epsilon_lower_bound(tp=tp, fn=fn + 1, fp=fp, tn=tn + 1)
    assert base >= 0.0
    # a member moved from missed to caught raises TPR and lowers FNR: never a smaller bound
    assert epsilon_lower_bound(tp=tp + 1, fn=fn, fp=fp, tn=tn + 1) >= base - 1e-12
    # a non-member moved from rejected to accepted raises FPR and lowers TNR: never a larger bound
    assert epsilon_lower_bound(tp=tp, fn=fn + 1, fp=fp + 1, tn=tn) <= base + 1e-12
    # larger delta or higher confidence: never a larger bound
    assert epsilon_lower_bound(tp=tp, fn=fn + 1, fp=fp, tn=tn + 1, delta=0.01) <= base + 1e-12
    assert epsilon_lower_bound(tp=tp, fn=fn + 1, fp=fp, tn=tn + 1, confidence=0.99) <= base + 1e-12


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_more_decisions_at_the_same_rates_never_loosen_the_bound(tp, fn, fp, tn):
    one = epsilon_lower_bound(tp=tp, fn=fn + 1, fp=fp, tn=tn + 1)
    assert epsilon_lower_bound(tp=4 * tp, fn=4 * (fn + 1), fp=4 * fp, tn=4 * (tn + 1)) >= one - 1e-12


def test_bound_matches_the_formula_by_hand():
    tp, fn, fp, tn, delta = 900, 100, 30, 970, 1e-5
    tpr_lo = binomtest(tp, tp + fn).proportion_ci(0.95, method="exact").low
    fpr_hi = binomtest(fp, fp + tn).proportion_ci(0.95, method="exact").high
    expected = max(np.log((tpr_lo - delta) / fpr_hi), np.log((1 - fpr_hi - delta) / (1 - tpr_lo)), 0.0)
    assert epsilon_lower_bound(tp=tp, fn=fn, fp=fp, tn=tn, delta=delta) == pytest.approx(expected, rel=1e-12)
    # the complementary test (few false negatives): the TNR / FNR inequality gives the bound
    mirrored = epsilon_lower_bound(tp=970, fn=30, fp=100, tn=900, delta=0.0)
    assert mirrored == pytest.approx(epsilon_lower_bound(tp=900, fn=100, fp=30, tn=970, delta=0.0), rel=1e-12)


def test_threshold_is_chosen_on_the_fit_part_and_counted_on_the_eval_part():
    labels = np.array([1] * 100 + [0] * 100)
    fit = np.r_[np.full(100, 2.0), np.full(100, 0.0)]      # perfectly separated at threshold 2
    ev = np.r_[np.full(60, 2.0), np.full(40, 0.0), np.full(10, 2.0), np.full(90, 0.0)]
    bound = empirical_epsilon(fit, labels, ev, labels)
    assert isinstance(bound, EpsilonBound)
    assert bound.threshold == 2.0
    assert (bound.tp, bound.fn, bound.fp, bound.tn) == (60, 40, 10, 90)
    assert bound.epsilon == pytest.approx(epsilon_lower_bound(tp=60, fn=40, fp=10, tn=90), rel=1e-12)
    assert bound.fit_epsilon > bound.epsilon > 0.0
    assert bound.tnr_low == pytest.approx(1 - bound.fpr_high) and bound.fnr_high == pytest.approx(1 - bound.tpr_low)
    # swapped parts: the eval part's own (worse) optimum is not what the fit part would pick
    assert empirical_epsilon(ev, labels, fit, labels).epsilon > bound.epsilon


def test_bad_inputs_name_the_value():
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8])
    with pytest.raises(DataError, match="eval part needs at least one member"):
        empirical_epsilon(s, y, s, np.zeros(4))
    with pytest.raises(DataError, match="fit: 1 scores are NaN"):
        empirical_epsilon(np.r_[s[:3], np.nan], y, s, y)
    with pytest.raises(DataError, match="differ in length"):
        empirical_epsilon(s, y[:3], s, y)
    with pytest.raises(ConfigError, match="delta=1.0"):
        empirical_epsilon(s, y, s, y, delta=1.0)
    with pytest.raises(DataError, match="trials >= 1"):
        epsilon_lower_bound(tp=0, fn=0, fp=1, tn=1)
