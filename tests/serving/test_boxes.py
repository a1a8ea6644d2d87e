import numpy as np
import pytest

from faceleaks.errors import QueryBudgetExceeded, QueryError, UnsupportedOutputError
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.perturb import LabelOnlyBlackBox, TopKBlackBox, reveal
from faceleaks.serving.endpoints import WrappingBox
from faceleaks.serving.protocol import OutputKind, QueryResult
from faceleaks.serving.sealed import seal
from faceleaks.serving.wrappers import BudgetedBlackBox, CachingBlackBox, CountingBlackBox
from tests.fakes import N_CLASSES, fake_box, population


def test_caching_sends_each_distinct_image_once():
    counting = CountingBlackBox(fake_box())
    box = CachingBlackBox(counting)
    images = population(k=3)[0]
    first = box.query(images[:30]).values
    both = box.query(np.concatenate([images[:30], images[:30], images[30:40]])).values
    assert counting.n_queries == 40
    np.testing.assert_array_equal(both[:30], first)
    np.testing.assert_array_equal(both[30:60], first)


def test_topk_and_label_only():
    images = population(k=2)[0]
    p = fake_box().query(images).values
    top = TopKBlackBox(fake_box(), k=2).query(images)
    assert top.kind is OutputKind.TOPK and top.values.shape == p.shape
    assert ((top.values > 0).sum(1) == 2).all()
    np.testing.assert_allclose(top.values.max(1), p.max(1))
    lab = LabelOnlyBlackBox(fake_box()).query(images)
    np.testing.assert_array_equal(lab.values, p.argmax(1))
    assert reveal(fake_box(), "posterior").output_kind is OutputKind.POSTERIOR
    with pytest.raises(UnsupportedOutputError):
        TopKBlackBox(LabelOnlyBlackBox(fake_box()), k=2)


def test_bad_queries_and_nan_outputs_are_errors():
    box = fake_box()
    with pytest.raises(QueryError, match="uint8"):
        box.query(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(QueryError, match="uint8"):
        box.query(np.zeros((2, 9, 9, 3), np.uint8))
    nan_box = FunctionBlackBox(lambda x: np.full((len(x), 3), np.nan, np.float32), input_size=8)
    with pytest.raises(QueryError, match="NaN"):
        nan_box.query(np.zeros((2, 8, 8, 3), np.uint8))


def _first_unseen(batches):
    """Reference: per call, the distinct images not sent before, in order of first occurrence."""
    sent, calls = set(), []
    for batch in batches:
        new = []
        for im in batch:
            key = im.tobytes()
            if key not in sent:
                sent.add(key)
                new.append(key)
        calls.append(new)
    return [c for c in calls if c]


def test_caching_sends_unseen_images_once_in_first_occurrence_order():
    received = []
    inner = fake_box()

    def record(x):
        received.append([im.tobytes() for im in x])
        return inner.query(x).values

    box = CachingBlackBox(FunctionBlackBox(record, input_size=inner.input_size))
    images = population(k=2)[0]
    rng = np.random.default_rng(0)
    batches = [images[rng.integers(0, len(images), 25)] for _ in range(4)]
    answers = [box.query(b).values for b in batches]
    assert received == _first_unseen(batches)
    for b, a in zip(batches, answers):
        np.testing.assert_array_equal(a, inner.query(b).values)


def test_empty_queries_keep_the_inner_box_shape():
    empty = population(k=1)[0][:0]
    for box in (CachingBlackBox(fake_box()), CachingBlackBox(LabelOnlyBlackBox(fake_box()))):
        inner_kind = box.output_kind
        result = box.query(empty)
        assert result.kind is inner_kind and len(result.values) == 0


def test_budget_refuses_the_call_that_would_exceed_it():
    box = BudgetedBlackBox(fake_box(), budget=5)
    box.query(population(k=1)[0][:4])
    with pytest.raises(QueryBudgetExceeded, match="4 of 5 used"):
        box.query(population(k=1)[0][:2])
    assert box.used == 4


class _Rounding(WrappingBox):
    """A stand-in output defence: rounds posteriors to ``decimals`` and declares the tolerance that keeps."""

    def __init__(self, box, *, decimals, declare=True):
        super().__init__(box)
        self.decimals = decimals
        self._declare = declare

    @property
    def row_sum_tolerance(self):
        return None if not self._declare else 0.5 * 10.0 ** -self.decimals * N_CLASSES

    def query(self, images):
        return QueryResult(self.output_kind, np.round(self._ask(images).values, self.decimals))


def test_a_wrapper_declares_the_row_sum_tolerance_its_outputs_keep():
    images = population(k=2)[0]
    rounded = seal(_Rounding(fake_box(), decimals=1))
    assert rounded.query(images).values.shape == (len(images), N_CLASSES)
    undeclared = seal(_Rounding(fake_box(), decimals=1, declare=False))  # default: 1e-3
    with pytest.raises(QueryError, match="_Rounding broke the black-box contract: rows must sum to 1"):
        undeclared.query(images)
