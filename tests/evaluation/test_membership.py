"""The attacker's evaluation: query order and the k-photo eligibility rule."""

import numpy as np

from faceleaks.data.splits import n_train_photos
from faceleaks.evaluation.membership import _query_order, eligible_first_k


def _stacked(n_people: int, photos: int) -> np.ndarray:
    # members first, then non-members, as the evaluation stacks them
    return np.repeat([f"p{i:02d}" for i in range(n_people)], photos)


def test_query_order_is_a_permutation_that_keeps_each_persons_photo_order():
    idents = _stacked(20, 3)
    order = _query_order(idents, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(len(idents)))
    for person in np.unique(idents):
        rows = [r for r in order if idents[r] == person]
        assert rows == sorted(rows), person


def test_query_order_does_not_put_the_first_group_first():
    idents = _stacked(20, 3)
    is_member = np.array([int(p[1:]) < 10 for p in idents])  # the first half of the stack
    for seed in range(5):
        shuffled = is_member[_query_order(idents, np.random.default_rng(seed))]
        first_half = shuffled[: len(shuffled) // 2]
        assert 0 < first_half.sum() < len(first_half), seed


def test_query_order_depends_on_the_seed_only():
    idents = _stacked(10, 2)
    a = _query_order(idents, np.random.default_rng(3))
    assert np.array_equal(a, _query_order(idents, np.random.default_rng(3)))
    assert not np.array_equal(a, _query_order(idents, np.random.default_rng(4)))


def test_eligible_first_k_applies_one_photo_count_rule_to_both_groups():
    lists = {"a": list("abcdefghij"), "b": list("abcd"), "c": list("abc")}
    totals = {"a": 10, "b": 4, "c": 20}
    got = eligible_first_k(lists, 2, totals, 0.5)
    assert got == {"a": ["a", "b"], "b": ["a", "b"], "c": ["a", "b"]}
    got = eligible_first_k(lists, 3, totals, 0.5)
    # "b" has 4 photos in all: 2 train + 2 held out, so k = 3 is not possible for it
    assert set(got) == {"a", "c"} and n_train_photos(4, 0.5) == 2
    assert eligible_first_k(lists, 4, totals, 0.5) == {"a": list("abcd")}
