"""The owner's side of every in-process box: a private table of endpoints behind opaque handles.

An attack receives a box and may only query it. In one Python process an attribute is enough to
reach the victim's weights (``box._student.teacher``) or to peel an output defence off
(``label_only.box``), so the boxes of ``faceleaks.serving`` keep nothing that answers them:
each one registers what it asks (a student's ``predict_proba``, an inner box's ``query``) in
the table below and keeps only its handle, a bare ``object()`` that only the table and the box
hold (it cannot be forged or guessed, unlike an integer id). The entry is released by
``weakref.finalize`` when the box is garbage-collected, so the table keeps no model alive.

::

    attack ──► box (handle, output_kind, input_size) ──► _TABLE[handle] ──► inner box / student

What this seals, and what not: nothing a walk of the box's attributes, slots, closures and
properties can reach leads to a ``torch.nn.Module``, a tensor or a member list (checked by
``tests/serving/test_sealed.py``). It is not a security boundary against code that imports
this module or walks ``gc``: attack modules may import only ``serving.protocol`` (import-linter),
and a victim that must be out of the attacker's process is served over HTTP (``serving.http``).
Boxes cannot be pickled (their endpoint lives in this process); ``copy`` returns the box itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceleaks.errors import QueryError
from faceleaks.serving.protocol import BlackBox, DeclaredBox, QueryResult
from faceleaks.serving.validation import Contract, check_answer, contract_of

__all__ = ["register", "call", "counts", "n_endpoints", "HandleBox", "WrappingBox"]


@dataclass(eq=False)
class _Endpoint:
    answer: Callable[[np.ndarray], QueryResult]
    contract: Contract | None = None
    n_images: int = 0
    n_calls: int = 0


_TABLE: dict[object, _Endpoint] = {}


def _release(handle: object) -> None:
    _TABLE.pop(handle, None)


def register(owner: object, answer: Callable[[np.ndarray], QueryResult], *,
             contract: Contract | None = None) -> object:
    """Keep ``answer`` owner-side for as long as ``owner`` lives; return its opaque handle.

    Parameters
    ----------
    owner : object supporting weak references (the box that will hold the handle)
    answer : callable mapping uint8 (n, S, S, 3) images to a ``QueryResult`` of n rows; it must
        not refer to ``owner`` (the table would keep the owner alive forever)
    contract : Contract, optional
        What ``answer`` promises (``serving.validation``); every answer is checked against it.

    Returns
    -------
    handle : object
        A fresh ``object()``; pass it to ``call`` and ``counts``.
    """
    handle = object()
    _TABLE[handle] = _Endpoint(answer, contract)
    weakref.finalize(owner, _release, handle)
    return handle


def _entry(handle: object) -> _Endpoint:
    entry = _TABLE.get(handle)
    if entry is None:
        raise QueryError("this box's endpoint is gone: a box answers only in the process that built it "
                         "(it cannot be pickled); serve it over HTTP (serving.http) to query it elsewhere")
    return entry


def call(handle: object, images: np.ndarray) -> QueryResult:
    """Ask the endpoint behind ``handle``; count the images and the call once it has answered.

    Parameters
    ----------
    handle : object returned by ``register``
    images : ndarray of shape (n_queries, S, S, 3), uint8 RGB

    Returns
    -------
    QueryResult of n_queries rows.

    Raises
    ------
    QueryError
        If the endpoint was released or belongs to another process, the endpoint fails (any
        exception it raises becomes a ``QueryError`` naming the box), or its answer breaks its
        contract (``serving.validation.check_answer``).
    """
    entry = _entry(handle)
    result = _ask_endpoint(entry, images)
    if entry.contract is not None:
        check_answer(result, len(images), entry.contract)
    entry.n_images += len(images)
    entry.n_calls += 1
    return result


def _ask_endpoint(entry: _Endpoint, images: np.ndarray) -> QueryResult:
    """``entry.answer(images)``; an unexpected exception becomes one ``QueryError`` naming the box."""
    name = entry.contract.name if entry.contract is not None else "endpoint"
    try:
        return entry.answer(images)
    except QueryError as err:
        if type(err) is not QueryError or entry.contract is None or str(err).startswith("box "):
            raise
        raise QueryError(f"box {name}: {err}") from err
    except Exception as err:  # a box may fail in any way (IndexError, KeyError, JSONDecodeError, ...)
        raise QueryError(f"box {name} failed: {type(err).__name__}: {err}") from err


def counts(handle: object) -> tuple[int, int]:
    """``(n_images, n_calls)`` answered through ``handle`` so far (failed calls are not counted)."""
    entry = _entry(handle)
    return entry.n_images, entry.n_calls


def n_endpoints() -> int:
    """Number of live endpoints (to check that released boxes free what they wrapped)."""
    return len(_TABLE)


class HandleBox(DeclaredBox):
    """Base of boxes whose answerer lives in the table: not picklable, copies are the box itself.

    A box stands for a service, so ``copy.copy`` and ``copy.deepcopy`` (e.g. of a fitted attack
    holding one) return the same box, keeping ``box is other`` identities and its endpoint.
    """

    __slots__ = ()

    def __copy__(self) -> HandleBox:
        return self

    def __deepcopy__(self, memo: dict) -> HandleBox:
        return self

    def __reduce_ex__(self, protocol: int):
        raise QueryError(f"a {type(self).__name__} cannot be pickled: what answers it stays in the owner's "
                         "process; serve it over HTTP (serving.http.serve_in_thread) to query it elsewhere")


class WrappingBox(HandleBox):
    """Base of a box over another box, which it keeps owner-side (no ``.box`` to peel it off).

    Parameters
    ----------
    box : BlackBox
        The inner box; its ``output_kind`` and ``input_size`` are read once, here.
    """

    def __init__(self, box: BlackBox) -> None:
        self._kind = box.output_kind
        self._input_size = int(box.input_size)
        self._inner = contract_of(box)
        self._handle = register(self, box.query, contract=self._inner)

    @property
    def row_sum_tolerance(self) -> float:
        """The inner box's declared row-sum tolerance (probability units): a wrapper that passes answers
        on unchanged keeps its inner box's contract; one that changes them declares its own."""
        return self._inner.tolerance

    @property
    def row_sum_tolerance_offset(self) -> float:
        """With a per-class tolerance, the fixed part the inner box adds (0 otherwise), kept likewise."""
        return self._inner.tolerance if self._inner.per_class > 0 else 0.0

    @property
    def row_sum_tolerance_per_class(self) -> float:
        """The inner box's per-class row-sum tolerance (0 unless it rounds), kept like ``row_sum_tolerance``."""
        return self._inner.per_class

    def _ask(self, images: np.ndarray) -> QueryResult:
        """The inner box's answer to ``images`` (n_queries, S, S, 3) uint8."""
        return call(self._handle, images)
