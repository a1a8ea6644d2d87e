"""``seal(box)``: the box handed to an attack, exposing only ``query``, ``output_kind``,
``input_size`` and ``n_queries``.

Whatever ``box`` is (a local student with its defences, counters and caches, an HTTP client, a
test fake whose function is public), the sealed box keeps it owner-side (``serving.endpoints``)
and holds only an opaque handle, its declared output kind and its crop size; it counts the
images it answers in the owner's table, so an attack can read ``n_queries`` but not reset it.
Sealing returns a new object: seal once per victim and hand the same sealed box to every attack,
since attacks recognise a box by identity (``box is other``).
"""

from __future__ import annotations

import numpy as np

from faceleaks.errors import QueryError
from faceleaks.serving.endpoints import HandleBox, call, counts, register
from faceleaks.serving.protocol import BlackBox, QueryResult
from faceleaks.serving.validation import contract_of

__all__ = ["SealedBlackBox", "seal"]


class SealedBlackBox(HandleBox):
    """A read-only box: ``query``, ``output_kind``, ``input_size``, ``n_queries`` and nothing else.

    Parameters
    ----------
    box : BlackBox
        The owner-side stack to answer with; kept in the owner's table until this box is
        garbage-collected.

    Raises
    ------
    QueryError
        If ``box`` is not a ``BlackBox`` (``query``, ``output_kind``, ``input_size``).

    Examples
    --------
    >>> from faceleaks.serving.function import FunctionBlackBox
    >>> inner = FunctionBlackBox(lambda x: np.full((len(x), 2), 0.5, np.float32), input_size=2)
    >>> box = seal(inner)
    >>> box.query(np.zeros((3, 2, 2, 3), np.uint8)).values.shape, box.n_queries
    ((3, 2), 3)
    >>> hasattr(box, "fn"), box is seal(inner)
    (False, False)
    """

    __slots__ = ("_handle", "_kind", "_input_size", "__weakref__")

    def __init__(self, box: BlackBox) -> None:
        if not isinstance(box, BlackBox):
            raise QueryError(f"seal() needs a BlackBox (query, output_kind, input_size), got a "
                             f"{type(box).__name__}; wrap a plain function in FunctionBlackBox first")
        object.__setattr__(self, "_kind", box.output_kind)
        object.__setattr__(self, "_input_size", int(box.input_size))
        object.__setattr__(self, "_handle", register(self, box.query, contract=contract_of(box)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a sealed box is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a sealed box is read-only: cannot delete {name!r}")

    @property
    def n_queries(self) -> int:
        """Images answered through this box so far (calls that failed are not counted)."""
        return counts(self._handle)[0]

    def query(self, images: np.ndarray) -> QueryResult:
        """Answer for each uint8 (n_queries, S, S, 3) RGB crop, as the sealed stack answers it.

        Raises
        ------
        QueryError
            For malformed images, a failing stack, an answer that breaks the black-box contract
            (``serving.validation``), or a box unpickled in another process.
        """
        return call(self._handle, images)

    def __repr__(self) -> str:
        return f"SealedBlackBox(output_kind={self._kind.value}, input_size={self._input_size})"


def seal(box: BlackBox) -> SealedBlackBox:
    """The box to hand to attacks: ``box`` kept owner-side behind a new ``SealedBlackBox``.

    Parameters
    ----------
    box : BlackBox
        The full owner-side stack (student, output reductions, counters, caches) or a client.

    Returns
    -------
    SealedBlackBox
        A new object on every call; its ``n_queries`` starts at 0.
    """
    return SealedBlackBox(box)
