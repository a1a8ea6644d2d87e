import numpy as np
import pytest

from faceleaks.errors import QueryError, UnsupportedOutputError
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.perturb import LabelOnlyBlackBox, TopKBlackBox, reveal
from faceleaks.serving.protocol import OutputKind
from faceleaks.serving.wrappers import CachingBlackBox, CountingBlackBox
from tests.fakes import fake_box, population


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
