"""Output defences: valid distributions on many random rows, determinism, declared tolerances, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from faceleaks.config.defence import DEFAULT_DEFENCE_GRID, OutputDefenceSpec
from faceleaks.errors import ConfigError, QueryError, UnsupportedOutputError
from faceleaks.serving.defences import NoiseBlackBox, RoundingBlackBox, apply_output_defence
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.protocol import OutputKind, QueryResult
from faceleaks.serving.sealed import seal

SIZE = 4


def _box(p: np.ndarray, kind: OutputKind = OutputKind.POSTERIOR) -> FunctionBlackBox:
    """A box answering image i (its first byte) with row i of ``p``."""
    return FunctionBlackBox(lambda x: p[x[:, 0, 0, 0].astype(int)], kind=kind, input_size=SIZE)


def _images(n: int) -> np.ndarray:
    x = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    x[:, 0, 0, 0] = np.arange(n)
    return x


@st.composite
def posteriors(draw):
    """(n, c) float32 rows summing to 1, some extremely peaked (entries that underflow to 0)."""
    n, c = draw(st.integers(1, 12)), draw(st.integers(2, 50))
    logits = draw(arrays(np.float64, (n, c), elements=st.floats(-60, 60, allow_subnormal=False)))
    p = np.exp(logits - logits.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def _assert_valid(q: np.ndarray, tol: float) -> None:
    assert np.all(np.isfinite(q)) and np.all(q >= 0)
    assert np.all(np.abs(q.sum(1) - 1) <= tol)


@settings(max_examples=150, deadline=None)
@given(p=posteriors(), scale=st.floats(0, 2, allow_subnormal=False), laplace=st.booleans(), hmac=st.booleans(), seed=st.integers(0, 99))
def test_noise_keeps_valid_distributions(p, scale, laplace, hmac, seed):
    box = NoiseBlackBox(_box(p), scale=scale, distribution="laplace" if laplace else "gaussian",
                        same_noise_per_image=hmac, secret=b"s", seed=seed)
    q = box.query(_images(len(p))).values
    assert q.shape == p.shape and box.output_kind is OutputKind.POSTERIOR
    _assert_valid(q, box.row_sum_tolerance)


@settings(max_examples=100, deadline=None)
@given(p=posteriors(), d=st.integers(0, 6))
def test_rounding_keeps_its_declared_tolerance(p, d):
    box = RoundingBlackBox(_box(p), decimals=d, n_classes=p.shape[1])
    q = box.query(_images(len(p))).values
    assert np.all(q >= 0) and np.all(np.abs(q - p) <= 0.5 * 10.0 ** -d + 1e-7)
    assert np.all(np.abs(q.sum(1) - 1) <= box.row_sum_tolerance + 1e-6)
    assert box.row_sum_tolerance == pytest.approx(p.shape[1] * 0.5 * 10.0 ** -d)


@settings(max_examples=100, deadline=None)
@given(p=posteriors(), k=st.integers(1, 5), renormalise=st.booleans())
def test_topk_keeps_k_entries_and_its_tolerance(p, k, renormalise):
    box = apply_output_defence(_box(p), OutputDefenceSpec("topk", {"k": k, "renormalise": renormalise}))
    q = box.query(_images(len(p))).values
    assert box.output_kind is OutputKind.TOPK and np.all((q > 0).sum(1) <= k)
    mass = -np.sort(-p.astype(float), axis=1)[:, :k].sum(1) if renormalise else 1.0
    np.testing.assert_allclose(q.max(1), p.max(1) / mass, rtol=1e-5)
    assert np.all(np.isfinite(q)) and np.all(q >= 0)
    sums = q.sum(1, dtype=np.float64)
    assert np.all(sums > 0) and np.all(sums <= 1 + box.row_sum_tolerance)
    if renormalise:
        np.testing.assert_allclose(sums, 1.0, atol=box.row_sum_tolerance)
    assert box.row_sum_tolerance <= 1e-3  # the inner box's default; a tolerance of 1 would let rows sum to 2


@settings(max_examples=60, deadline=None)
@given(p=posteriors(), d=st.integers(0, 4))
def test_a_rounding_box_is_sealed_before_it_knows_its_classes(p, d):
    """The contract reads the per-class tolerance, so a rounding box built without n_classes (as a
    shadow's box is) can be sealed and queried, and still keeps n_classes * 0.5 * 10^-d."""
    box = seal(RoundingBlackBox(_box(p), decimals=d))
    q = box.query(_images(len(p))).values
    assert np.all(np.abs(q.sum(1) - 1) <= p.shape[1] * 0.5 * 10.0 ** -d + 1e-9)


def test_a_rounding_bound_met_with_equality_passes_the_contract():
    """32 entries of 0.03125 rounded to 4 decimals (half to even: 0.0312) sum to exactly 1 - 32 * 0.5e-4."""
    p = np.full((1, 32), 0.03125, np.float32)
    q = seal(RoundingBlackBox(_box(p), decimals=4)).query(_images(1)).values
    assert q[0, 0] == pytest.approx(0.0312) and abs(q.sum() - 1) == pytest.approx(32 * 0.5e-4)


def test_top_k_and_rounding_keep_the_slack_of_their_inner_box():
    """Posterior rows allowed to stray by the default 1e-3 stay allowed behind top-k and rounding."""
    p = np.full((2, 4), 0.25, np.float32)
    p[:, 0] += 8e-4  # rows sum to 1.0008: within the inner box's default 1e-3
    for spec in (OutputDefenceSpec("topk", {"k": 4}), OutputDefenceSpec("rounding", {"decimals": 6})):
        assert seal(apply_output_defence(_box(p), spec)).query(_images(2)).values.shape == (2, 4)


def test_the_contract_refuses_rows_beyond_the_per_class_tolerance():
    p = np.full((2, 4), 0.25, np.float32)
    box = RoundingBlackBox(_box(p), decimals=1)
    box.query = lambda x: QueryResult(OutputKind.POSTERIOR, np.full((len(x), 4), 0.4))  # sums to 1.6 > 1 + 4 * 0.05
    with pytest.raises(QueryError, match="rows must sum to 1 \\(tolerance 0.201"):
        seal(box).query(_images(2))


def test_fresh_noise_is_deterministic_per_seed_and_fresh_per_query():
    p = np.full((3, 5), 0.2, np.float32)
    a, b = (NoiseBlackBox(_box(p), scale=0.05, seed=7) for _ in range(2))
    first = a.query(_images(3)).values
    assert first.tobytes() == b.query(_images(3)).values.tobytes()  # same seed, same answers
    assert first.tobytes() != a.query(_images(3)).values.tobytes()  # a repeat gets new noise
    assert first.tobytes() != NoiseBlackBox(_box(p), scale=0.05, seed=8).query(_images(3)).values.tobytes()


def test_hmac_noise_is_the_same_per_image_and_depends_on_the_secret():
    p = np.full((3, 5), 0.2, np.float32)
    box = NoiseBlackBox(_box(p), scale=0.05, same_noise_per_image=True, secret="server-secret")
    x = _images(3)
    once = box.query(x).values
    np.testing.assert_array_equal(once, box.query(x).values)  # a repeat is no help to an averager
    np.testing.assert_array_equal(once[[2, 0]], box.query(x[[2, 0]]).values)  # per image, not per position
    other = NoiseBlackBox(_box(p), scale=0.05, same_noise_per_image=True, secret="another").query(x).values
    assert not np.array_equal(once, other)
    y = x.copy()
    y[:, 1, 1, 1] = 1  # one changed byte: fresh noise (what the averaging attack exploits)
    assert not np.array_equal(once, box.query(y).values)


def test_all_mass_vanishing_falls_back_to_the_clean_row():
    p = np.array([[0.5, 0.5], [0.1, 0.9]], np.float32)
    q = NoiseBlackBox(_box(p), scale=1e6, seed=0).query(_images(2)).values
    _assert_valid(q, 1e-9)  # huge noise: rows near one-hot
    from faceleaks.serving.defences import valid_rows
    np.testing.assert_allclose(valid_rows(p.astype(float), -np.ones((2, 2))), p, rtol=1e-6)  # no mass left


def test_label_defence_changes_the_kind():
    p = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)
    box = apply_output_defence(_box(p), OutputDefenceSpec("label"))
    assert box.output_kind is OutputKind.LABEL and box.query(_images(2)).values.tolist() == [1, 0]


@pytest.mark.parametrize("name,params,match", [
    ("gaussian", {"sigma": -0.1}, "noise scale"),
    ("laplace", {"scale": -1}, "noise scale"),
    ("gaussian", {"sigma": float("nan")}, "noise scale"),
    ("rounding", {"decimals": -1}, "decimals"),
    ("rounding", {"decimals": 1.5}, "decimals"),
    ("topk", {"k": 0}, "k"),
    ("gaussian", {"sigma": 0.1, "same_noise_per_image": True}, "secret"),
])
def test_bad_parameters_are_config_errors(name, params, match):
    with pytest.raises(ConfigError, match=match):
        apply_output_defence(_box(np.full((1, 3), 1 / 3, np.float32)), OutputDefenceSpec(name, params))


def test_unknown_defence_or_parameter_and_wrong_kind():
    with pytest.raises(ConfigError, match="unknown output defence"):
        OutputDefenceSpec("dropout")
    with pytest.raises(ConfigError, match="sigma"):
        OutputDefenceSpec("rounding", {"sigma": 1})
    with pytest.raises(UnsupportedOutputError, match="label"):
        apply_output_defence(_box(np.zeros(1, np.int64), OutputKind.LABEL), OutputDefenceSpec("gaussian", {"sigma": 1}))


def test_every_default_grid_defence_builds():
    p = np.full((2, 4), 0.25, np.float32)
    for setting in DEFAULT_DEFENCE_GRID:
        box = apply_output_defence(_box(p), setting.output, secret=b"k", n_classes=4)
        assert box.query(_images(2)).kind is box.output_kind


@pytest.mark.parametrize("decimals", [0, 1, 2])
def test_a_counting_wrapper_keeps_its_inner_rounding_contract(decimals):
    """Counting, caching and budget wrappers pass answers on unchanged, so they keep the inner box's
    contract: a counted rounding box is not held to the default 1e-3 (the bug that stopped
    ``faceleaks defend`` at its first rounding setting), while a counted plain box still is."""
    from faceleaks.serving.wrappers import CountingBlackBox

    p = np.random.default_rng(decimals).dirichlet(np.full(50, 0.3), size=6).astype(np.float32)
    counted = seal(CountingBlackBox(RoundingBlackBox(_box(p), decimals=decimals)))
    np.testing.assert_allclose(counted.query(_images(6)).values, np.round(p.astype(np.float64), decimals))
    loose = p.copy()
    loose[:, 0] += 0.01  # rows sum to 1.01: beyond the default tolerance
    with pytest.raises(QueryError, match="broke the black-box contract: rows must sum to 1 \\(tolerance 0.001\\)"):
        seal(CountingBlackBox(_box(loose))).query(_images(6))
