"""The box an attack receives leads to no model, tensor or member list (issue 12, criterion 4).

Every box an attack can be handed (a local student, the same wrapped by output reductions, caches,
counters, budgets, sealed, and a student behind HTTP) is walked generically (``tests/serving/reach.py``)
after answering queries. The walker's power is checked on deliberately unsealed objects, one per
channel a model could hide in (today's ``LocalBlackBox`` kept the student in ``_student``).
"""

from __future__ import annotations

import copy
import functools
import gc
import pickle
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from faceleaks.errors import QueryError
from faceleaks.models.student import Student
from faceleaks.models.teacher import Teacher
from faceleaks.serving.endpoints import n_endpoints
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.http import HttpBlackBox, serve_in_thread
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.sealed import SealedBlackBox, seal
from faceleaks.serving.wrappers import BudgetedBlackBox, CachingBlackBox, CountingBlackBox
from tests.serving.reach import leaks

SIZE = 8
MEMBERS = ("SENTINEL-member-Ada-7f3a", "SENTINEL-member-Bo-91c2", "SENTINEL-member-Cy-05de")
SEALED_API = {"query", "output_kind", "input_size", "n_queries"}


def tiny_student() -> Student:
    """A real ``Student`` on a tiny torch teacher whose metadata lists the (sentinel) members."""
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE * 3, 4)).eval()
    nn.init.normal_(net[1].weight, generator=gen)

    @torch.no_grad()
    def raw_embed(images: np.ndarray) -> np.ndarray:
        return net(torch.from_numpy(images).float() / 255.0).numpy()

    teacher = Teacher("tiny-teacher", raw_embed, SIZE, {"members": list(MEMBERS), "embedding_dim": 4})
    return Student("tiny-student", teacher, nn.Linear(4, 3), ["a", "b", "c"], {"train_identities": list(MEMBERS)})


def images(n: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def _stacks(student: Student) -> dict:
    local = LocalBlackBox(student)
    return {
        "local": local,
        "topk": reveal(LocalBlackBox(student), "topk", top_k=2),
        "label": reveal(LocalBlackBox(student), "label"),
        "counting": CountingBlackBox(LocalBlackBox(student)),
        "caching": CachingBlackBox(CountingBlackBox(reveal(local, "topk", top_k=2))),
        "budgeted": BudgetedBlackBox(reveal(LocalBlackBox(student), "label"), budget=1000),
        "sealed": seal(CachingBlackBox(CountingBlackBox(reveal(LocalBlackBox(student), "label")))),
        "sealed-fake": seal(FunctionBlackBox(lambda x: student.predict_proba(x), input_size=SIZE)),
    }


@pytest.mark.parametrize("name", list(_stacks(tiny_student())))
def test_no_model_tensor_or_member_name_is_reachable_from_a_local_box(name):
    box = _stacks(tiny_student())[name]
    box.query(images(6))
    box.query(images(10))  # caches and counters hold state now
    assert leaks(box, MEMBERS) == []


def test_no_model_tensor_or_member_name_is_reachable_from_an_http_box():
    with serve_in_thread(seal(LocalBlackBox(tiny_student())), name="tiny") as url:
        for box in (HttpBlackBox(url), seal(CachingBlackBox(HttpBlackBox(url)))):
            assert box.query(images(5)).values.shape == (5, 3)
            assert leaks(box, MEMBERS) == []


# --- the walker finds what is hidden: one deliberately unsealed object per channel -------------

class TodaysLocalBox:
    """How ``LocalBlackBox`` kept its student before it was sealed."""

    def __init__(self, student: Student) -> None:
        self._student = student


class TodaysWrapper:
    """How wrappers kept their inner box (``label_only.box``)."""

    def __init__(self, box: object) -> None:
        self.box = box


class InSlot:
    __slots__ = ("_inner",)

    def __init__(self, inner: object) -> None:
        self._inner = inner


_HIDDEN: dict[str, object] = {}


class ThroughProperty:
    """Keeps nothing itself; a property hands out what a module-level table holds."""

    @property
    def model(self) -> object:
        return _HIDDEN["student"]


class InClassAttribute:
    registry: dict = {}


def _predict(student: Student, x: np.ndarray) -> np.ndarray:
    return student.predict_proba(x)


def _with_default(x, student=None):
    return x


def _unsealed(student: Student) -> dict:
    _HIDDEN["student"] = student
    InClassAttribute.registry["s"] = student
    fn = _with_default
    return {
        "attribute": TodaysLocalBox(student),
        "wrapper chain": TodaysWrapper(TodaysWrapper(TodaysLocalBox(student))),
        "slot": InSlot(student),
        "closure": FunctionBlackBox(lambda x: student.predict_proba(x), input_size=SIZE),
        "bound method": FunctionBlackBox(student.predict_proba, input_size=SIZE),
        "partial": FunctionBlackBox(functools.partial(_predict, student), input_size=SIZE),
        "default argument": InSlot(functools.update_wrapper(lambda x, s=student: x, fn)),
        "property": ThroughProperty(),
        "class attribute": InClassAttribute(),
        "weak reference": InSlot(weakref.ref(student)),
        "member list only": InSlot(np.array(MEMBERS)),
        "tensor only": InSlot({"t": (torch.zeros(2),)}),
    }


@pytest.mark.parametrize("channel", list(_unsealed(tiny_student())))
def test_the_walk_finds_a_model_hidden_in_each_channel(channel):
    student = tiny_student()
    found = leaks(_unsealed(student)[channel], MEMBERS)
    assert found, f"the walker missed a leak through {channel}"
    if channel not in ("member list only", "tensor only"):
        assert any(": Linear" in f or ": Sequential" in f for f in found), found
        assert any("member name" in f for f in found), found


# --- the sealed box's contract -------------------------------------------------------------------

def test_sealed_box_exposes_only_query_kind_size_and_count():
    inner = CountingBlackBox(reveal(LocalBlackBox(tiny_student()), "topk", top_k=2))
    box = seal(inner)
    assert isinstance(box, SealedBlackBox) and box is not seal(inner)
    assert {n for n in dir(box) if not n.startswith("_")} == SEALED_API
    assert box.output_kind is inner.output_kind and box.input_size == SIZE
    np.testing.assert_array_equal(box.query(images(7)).values, inner.query(images(7)).values)
    assert box.n_queries == 7 and inner.n_queries == 14
    with pytest.raises(QueryError):
        box.query(np.zeros((2, SIZE + 1, SIZE + 1, 3), np.uint8))
    assert box.n_queries == 7  # refused calls are not counted
    for name in ("n_queries", "_handle", "box", "_n_queries"):
        with pytest.raises(AttributeError):
            setattr(box, name, 0)
    assert box.n_queries == 7


def test_wrappers_have_no_inner_box_to_peel_off():
    local = LocalBlackBox(tiny_student())
    for wrapper in (reveal(local, "label"), reveal(local, "topk"), CountingBlackBox(local),
                    CachingBlackBox(local), BudgetedBlackBox(local, budget=3)):
        public = {n for n in dir(wrapper) if not n.startswith("_")}
        assert not public & {"box", "inner", "student", "fn"}, public
        assert not any(isinstance(v, (LocalBlackBox, Student)) for v in vars(wrapper).values())


def test_boxes_are_not_picklable_and_copies_are_the_box_itself():
    for box in (LocalBlackBox(tiny_student()), seal(FunctionBlackBox(np.asarray, input_size=SIZE))):
        with pytest.raises(QueryError, match="cannot be pickled"):
            pickle.dumps(box)
        assert copy.copy(box) is box and copy.deepcopy({"b": box})["b"] is box


def test_seal_refuses_what_is_not_a_box():
    with pytest.raises(QueryError, match="FunctionBlackBox"):
        seal(lambda x: x)


def test_released_boxes_free_the_model_they_served():
    gc.collect()
    before = n_endpoints()
    student = tiny_student()
    alive = weakref.ref(student)
    box = seal(CachingBlackBox(CountingBlackBox(reveal(LocalBlackBox(student), "label"))))
    box.query(images(3))
    assert n_endpoints() == before + 5  # one per box of the stack
    del student, box
    gc.collect()
    assert n_endpoints() == before and alive() is None
