"""The black-box contract, checked at the boundary: every answer a box gives through a handle.

Every box an attack receives is sealed (``serving.sealed``) and every wrapper asks its inner box
through ``serving.endpoints.call``; both check each answer against the ``Contract`` of the box
that gave it, so a local student, a wrapped stack, an HTTP client and a test fake are held to the
same rules:

- the answer is a ``QueryResult`` of the declared kind, with one row per image sent;
- POSTERIOR / TOPK: a 2-D float array of at least 2 columns, finite, non-negative; POSTERIOR
  rows sum to 1 within ``tolerance`` (absolute, probability units; default 1e-3), TOPK rows sum to more than 0 and
  at most 1 + ``tolerance``;
- LABEL: a 1-D integer array, every class in [0, n_classes) when ``n_classes`` is known.

A box (an output defence that rounds or adds noise) may declare how far its rows may stray from
summing to 1 with a ``row_sum_tolerance`` attribute (float, probability units); the contract then
uses it instead of the default for its kind. A box whose tolerance grows with the number of
classes, which it may learn only from its first answer (rounding: n_classes * 0.5 * 10^-d),
declares ``row_sum_tolerance_per_class`` (> 0) instead, and ``row_sum_tolerance_offset`` for what
its input rows may already stray: the contract then allows the offset plus that much per column of
each answer, so a box can be sealed before it has answered. A wrapper that passes its
inner box's answers on unchanged (counting, caching, budgets) keeps the inner box's contract
(``endpoints.WrappingBox``); one that changes them declares its own. [reconstructed] the rules and
defaults are ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceleaks.errors import QueryError
from faceleaks.serving.protocol import OutputKind, QueryResult

__all__ = ["DEFAULT_TOLERANCE", "Contract", "contract_of", "check_answer"]

#: Default allowed deviation of a row sum from 1 (POSTERIOR) or above 1 (TOPK), relative.
DEFAULT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Contract:
    """What a box promises about its answers.

    Parameters
    ----------
    kind : OutputKind
        The declared output kind.
    name : str
        The box, as named in error messages (its class name).
    tolerance : float
        Allowed |row sum - 1| for POSTERIOR (and excess over 1 for TOPK), probability units, >= 0.
    n_classes : int or None
        Number of classes, when the box declares it (checks LABEL classes and column counts).
    per_class : float
        Added to ``tolerance`` once per column of an answer (probability units, >= 0).
    """

    kind: OutputKind
    name: str
    tolerance: float = DEFAULT_TOLERANCE
    n_classes: int | None = None
    per_class: float = 0.0

    def tolerance_for(self, n_columns: int) -> float:
        """The allowed deviation for an answer of ``n_columns`` columns: tolerance + per_class * n_columns,
        plus, with a per-class tolerance, the float64 summation error of n_columns terms (a bound met
        with equality, as 32 entries of 0.03125 rounded to 4 decimals are, must not fail on the last bit)."""
        if self.per_class == 0:
            return self.tolerance
        return self.tolerance + self.per_class * n_columns + 4 * n_columns * float(np.finfo(np.float64).eps)


def contract_of(box: object) -> Contract:
    """The contract ``box`` declares: its ``output_kind``, optional ``row_sum_tolerance`` and ``n_classes``.

    Raises
    ------
    QueryError
        If the declared tolerance is not a finite number >= 0.
    """
    name = type(box).__name__
    per_class = getattr(box, "row_sum_tolerance_per_class", None)
    per_class = 0.0 if per_class is None else _declared(per_class, name, "row_sum_tolerance_per_class")
    if per_class > 0:  # plus what the rows may already stray before rounding (the inner box's tolerance)
        tol = _declared(getattr(box, "row_sum_tolerance_offset", 0.0), name, "row_sum_tolerance_offset")
    else:
        tol = getattr(box, "row_sum_tolerance", None)
        tol = DEFAULT_TOLERANCE if tol is None else _declared(tol, name, "row_sum_tolerance")
    n_classes = getattr(box, "n_classes", None)
    return Contract(box.output_kind, name, tol, None if n_classes is None else int(n_classes), per_class)


def _declared(value: object, name: str, what: str) -> float:
    """``value`` as a finite float >= 0, else ``QueryError`` naming the box and attribute."""
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise QueryError(f"box {name} declares {what}={value!r}; it must be a number >= 0") from err
    if not np.isfinite(out) or out < 0:
        raise QueryError(f"box {name} declares {what}={value!r}; it must be a finite number >= 0")
    return out


def _check_label(v: np.ndarray, c: Contract) -> str | None:
    if v.ndim != 1:
        return f"label answers must be (n,), got shape {v.shape}"
    if not np.issubdtype(v.dtype, np.integer):
        return f"label answers must be integers, got {v.dtype} (e.g. {v.ravel()[:1].tolist()})"
    if len(v) and v.min() < 0:
        return f"label answers must be classes >= 0, got {int(v.min())}"
    if c.n_classes is not None and len(v) and v.max() >= c.n_classes:
        return f"label answers must be classes < n_classes={c.n_classes}, got {int(v.max())}"
    return None


def _check_scores(v: np.ndarray, c: Contract) -> str | None:
    if v.ndim != 2:
        return f"{c.kind.value} answers must be (n, n_classes), got shape {v.shape}"
    if not np.issubdtype(v.dtype, np.floating):
        return f"{c.kind.value} answers must be floats, got {v.dtype}"
    if v.shape[1] < 2:
        return f"{c.kind.value} answers need at least 2 columns (classes), got {v.shape[1]}"
    if c.n_classes is not None and v.shape[1] != c.n_classes:
        return f"{c.kind.value} answers must have n_classes={c.n_classes} columns, got {v.shape[1]}"
    if len(v) == 0:
        return None
    if not np.all(np.isfinite(v)):
        return f"{int((~np.isfinite(v)).sum())} NaN/inf values"
    if v.min() < 0:
        return f"negative values (min {float(v.min()):.3g})"
    sums = v.sum(axis=1, dtype=np.float64)
    row, tol = int(np.argmax(np.abs(sums - 1))), c.tolerance_for(v.shape[1])
    if c.kind is OutputKind.POSTERIOR and abs(sums[row] - 1) > tol:
        return f"rows must sum to 1 (tolerance {tol:g}); row {row} sums to {sums[row]:.6g}"
    if c.kind is OutputKind.TOPK and (sums.max() > 1 + tol or sums.min() <= 0):
        row = int(np.argmax(sums)) if sums.max() > 1 + tol else int(np.argmin(sums))
        return f"top-k rows must sum to more than 0 and at most 1; row {row} sums to {sums[row]:.6g}"
    return None


def check_answer(result: object, n_images: int, contract: Contract) -> QueryResult:
    """``result`` if it keeps ``contract`` for a query of ``n_images`` images, else ``QueryError``.

    Parameters
    ----------
    result : object
        What the box returned; must be a ``QueryResult``.
    n_images : int
        Images sent in the query (the number of rows the answer must have).
    contract : Contract
        What the box declared.

    Returns
    -------
    QueryResult
        ``result`` itself.

    Raises
    ------
    QueryError
        Naming the box and what was wrong (type, kind, row count, shape, dtype, values).
    """
    name = contract.name
    if not isinstance(result, QueryResult):
        raise QueryError(f"box {name} answered a {type(result).__name__}, not a QueryResult")
    if result.kind is not contract.kind:
        raise QueryError(f"box {name} declares {contract.kind.value} answers but returned {result.kind.value}")
    v = np.asarray(result.values)
    if v.ndim == 0 or len(v) != n_images:
        got = "a scalar" if v.ndim == 0 else f"{len(v)} rows"
        raise QueryError(f"box {name} answered {got} for {n_images} images; a box must answer one row per image")
    problem = _check_label(v, contract) if contract.kind is OutputKind.LABEL else _check_scores(v, contract)
    if problem is not None:
        raise QueryError(f"box {name} broke the black-box contract: {problem}")
    return result
