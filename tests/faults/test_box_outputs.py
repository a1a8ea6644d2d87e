"""Box outputs that break the black-box contract: one ``QueryError`` naming the box and the fault.

Kinds covered (one test or parametrised variant each): negative posteriors, rows not summing to 1,
all-zero rows, one column, too few rows, too many rows, a scalar answer, 3-D answers, integer
posteriors, NaN, inf, a label of 0.5, a label out of range, a negative label, top-k rows summing
above 1, the wrong kind, not a QueryResult, the inner box raising (IndexError, TypeError,
KeyError), an HTTP server answering one row for two images, malformed JSON and a missing key.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from faceleaks.errors import QueryError
from faceleaks.serving import client as client_mod
from faceleaks.serving import http as http_mod
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.protocol import OutputKind, QueryResult
from faceleaks.serving.sealed import seal
from faceleaks.serving.validation import Contract, check_answer
from faceleaks.serving.wrappers import CachingBlackBox, CountingBlackBox

S = 4
IMAGES = np.arange(3 * S * S * 3, dtype=np.uint8).reshape(3, S, S, 3)
GOOD = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]], np.float32)


def _box(values, kind=OutputKind.POSTERIOR, **attrs):
    box = FunctionBlackBox(lambda x: values(x) if callable(values) else values, kind=kind, input_size=S)
    for k, v in attrs.items():
        setattr(box, k, v)
    return box


class _Raw:
    """A box that returns whatever it is given, bypassing QueryResult's own checks."""

    input_size = S

    def __init__(self, answer, kind=OutputKind.POSTERIOR):
        self._answer, self.output_kind = answer, kind

    def query(self, images):
        return self._answer


BAD_POSTERIORS = {
    "negative": (np.array([[1.5, -0.5]] * 3, np.float32), "negative"),
    "not summing to 1": (np.array([[0.3, 0.3]] * 3, np.float32), "sum to 1"),
    "all zero": (np.zeros((3, 2), np.float32), "sum to 1"),
    "one column": (np.ones((3, 1), np.float32), "at least 2 columns"),
    "too few rows": (GOOD[:1], "1 rows for 3 images"),
    "too many rows": (np.concatenate([GOOD, GOOD]), "6 rows for 3 images"),
    "integer dtype": (np.array([[1, 0]] * 3), "floats"),
    "inf": (np.array([[np.inf, 0.0]] * 3, np.float32), "NaN/inf"),
}


@pytest.mark.parametrize("name", sorted(BAD_POSTERIORS))
@pytest.mark.parametrize("wrap", ["sealed", "wrapped"])
def test_bad_posteriors_are_one_query_error_naming_the_box(name, wrap):
    values, message = BAD_POSTERIORS[name]
    inner = _box(values)
    box = seal(inner) if wrap == "sealed" else CountingBlackBox(inner)
    with pytest.raises(QueryError, match=message) as info:
        box.query(IMAGES)
    assert "FunctionBlackBox" in str(info.value)
    assert box.n_queries == 0  # the failed call is not counted


def test_scalar_and_3d_and_wrong_kind_and_not_a_result():
    for answer, message in [(_unchecked(np.zeros((3, 2, 2), np.float32)), "shape"),
                            (QueryResult(OutputKind.LABEL, np.zeros(3, np.int64)), "returned label"),
                            (GOOD, "not a QueryResult"),
                            (_unchecked(np.float32(1.0)), "a scalar for 3 images")]:
        with pytest.raises(QueryError, match=message):
            seal(_Raw(answer)).query(IMAGES)


def _unchecked(values):
    """A QueryResult built without its own checks, as a foreign object could be."""
    result = QueryResult.__new__(QueryResult)
    object.__setattr__(result, "kind", OutputKind.POSTERIOR)
    object.__setattr__(result, "values", values)
    return result


def test_nan_posteriors():
    with pytest.raises(QueryError, match="NaN"):
        seal(_box(np.full((3, 2), np.nan, np.float32))).query(IMAGES)


@pytest.mark.parametrize("values, n_classes, message", [
    (np.array([0.5, 1.0, 0.0]), None, "integers"),
    (np.array([0, 1, 7]), 3, "< n_classes=3"),
    (np.array([0, -1, 1]), None, ">= 0"),
])
def test_bad_labels(values, n_classes, message):
    box = seal(_box(values, kind=OutputKind.LABEL, n_classes=n_classes))
    with pytest.raises(QueryError, match=message):
        box.query(IMAGES)


def test_topk_rows_summing_above_one_or_to_zero():
    with pytest.raises(QueryError, match="at most 1"):
        seal(_box(np.array([[0.9, 0.9]] * 3, np.float32), kind=OutputKind.TOPK)).query(IMAGES)
    with pytest.raises(QueryError, match="more than 0"):
        seal(_box(np.zeros((3, 2), np.float32), kind=OutputKind.TOPK)).query(IMAGES)
    ok = np.array([[0.6, 0.0]] * 3, np.float32)  # a top-1 row keeps less than 1: valid
    np.testing.assert_array_equal(seal(_box(ok, kind=OutputKind.TOPK)).query(IMAGES).values, ok)


def test_declared_tolerance_is_used():
    rounded = np.array([[0.33, 0.33, 0.33]] * 3, np.float32)  # sums to 0.99
    with pytest.raises(QueryError, match="tolerance 0.001"):
        seal(_box(rounded)).query(IMAGES)
    np.testing.assert_array_equal(seal(_box(rounded, row_sum_tolerance=0.015)).query(IMAGES).values, rounded)
    with pytest.raises(QueryError, match="row_sum_tolerance"):
        seal(_box(rounded, row_sum_tolerance=float("nan")))


@pytest.mark.parametrize("exc", [IndexError("index 5 is out of bounds"), TypeError("bad operand"),
                                 KeyError("values")])
def test_inner_exceptions_become_one_query_error(exc):
    def fail(images):
        raise exc
    counting = CountingBlackBox(_box(fail))
    box = seal(CachingBlackBox(counting))
    with pytest.raises(QueryError, match=type(exc).__name__) as info:
        box.query(IMAGES)
    assert "FunctionBlackBox" in str(info.value) and "\n" not in str(info.value)
    assert counting.n_queries == 0


def test_earlier_answers_survive_a_later_bad_answer():
    calls = []

    def flaky(images):
        calls.append(len(images))
        return GOOD[: len(images)] if len(calls) == 1 else np.full((len(images), 2), -1.0, np.float32)
    box = seal(CachingBlackBox(_box(flaky)))
    first = box.query(IMAGES[:2]).values
    with pytest.raises(QueryError, match="negative"):
        box.query(IMAGES)
    np.testing.assert_array_equal(box.query(IMAGES[:2]).values, first)  # still from the memo
    assert box.n_queries == 4


def _http_box(monkeypatch, answer):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/info":
            return httpx.Response(200, json={"name": "s", "output_kind": "posterior", "input_size": S})
        return answer(request)
    real = httpx.Client
    monkeypatch.setattr(client_mod.httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(handler), **kw))
    return seal(http_mod.HttpBlackBox("http://student.test", retries=1))


@pytest.mark.parametrize("answer, message", [
    (lambda r: httpx.Response(200, json={"kind": "posterior", "values": [[0.5, 0.5]]}), "1 rows for 3 images"),
    (lambda r: httpx.Response(200, content=b"{not json"), "JSONDecodeError"),
    (lambda r: httpx.Response(200, content=json.dumps({"kind": "posterior"}).encode()), "KeyError"),
])
def test_http_answers_are_held_to_the_contract(monkeypatch, answer, message):
    box = _http_box(monkeypatch, answer)
    with pytest.raises(QueryError, match=message) as info:
        box.query(IMAGES)
    assert "HttpBlackBox" in str(info.value)


finite = st.floats(-2, 2, allow_nan=False, allow_subnormal=False, width=32)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=finite))
def test_check_answer_accepts_exactly_valid_posteriors(values):
    sums = values.astype(np.float64).sum(1)
    valid = values.shape[1] >= 2 and values.min() >= 0 and np.all(np.abs(sums - 1) <= 1e-3)
    contract = Contract(OutputKind.POSTERIOR, "fake")
    if valid:
        assert check_answer(QueryResult(OutputKind.POSTERIOR, values), len(values), contract).values is values
    else:
        with pytest.raises(QueryError, match="fake"):
            check_answer(QueryResult(OutputKind.POSTERIOR, values), len(values), contract)
    normalised = np.abs(values) + 1e-3
    normalised = normalised / normalised.sum(1, keepdims=True)
    if values.shape[1] >= 2:
        check_answer(QueryResult(OutputKind.POSTERIOR, normalised), len(values), contract)
