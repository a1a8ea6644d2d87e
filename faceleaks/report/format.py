"""Number and table formatting shared by every report module (no other report import: no circles)."""

from __future__ import annotations

import math

__all__ = ["fmt", "markdown_table"]


def fmt(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals, or ``n/a`` for NaN or None.

    Examples
    --------
    >>> fmt(0.12345), fmt(float("nan")), fmt(None, 1)
    ('0.123', 'n/a', 'n/a')
    """
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table: ``header`` cells, then one line per row of cells.

    Examples
    --------
    >>> print(markdown_table(["a", "b"], [["1", "2"]]))
    | a | b |
    |---|---|
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
