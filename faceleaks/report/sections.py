"""The building blocks of ``report.html``: a ``Section`` of paragraphs, figures and tables, and the
registry of section builders per kind of result (the hook for audits and defence sweeps).

A section builder is one function taking the loaded record and returning a ``Section``; a section
whose data is absent returns ``Section(..., missing="what is missing and how to get it")`` and the
page shows that line instead of dropping the section silently. Builders are registered per record
kind (``run``, ``inclusion``, ``attributes``; later ``audit``, ``defences``) in page order:

>>> sorted(SECTION_BUILDERS)
['attributes', 'inclusion', 'run']

Text is plain (the template escapes it); numbers are formatted here, from the record only, with
:func:`pct` and ``format.fmt`` (the page's rounding, which the numeral test of the page repeats).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Table", "FigureBlock", "Section", "SectionBuilder", "SECTION_BUILDERS", "register_section", "pct", "fpr_label"]


@dataclass(frozen=True)
class Table:
    """A table: ``header`` cells and ``rows`` of cells (plain text), with a ``caption``."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class FigureBlock:
    """An embedded plot: ``uri`` a ``data:image/png;base64,...`` URI, ``alt`` text and a ``caption``;
    ``collapsed`` plots sit in a closed ``<details>`` block (detail a reader opens on demand)."""

    uri: str
    alt: str
    caption: str = ""
    collapsed: bool = False


@dataclass(frozen=True)
class Section:
    """One section of the page.

    Attributes
    ----------
    key : str, the HTML id (``verdict``, ``membership``, ...)
    title : str
    paragraphs : tuple of str, plain text (a paragraph per item)
    figures : tuple of FigureBlock
    tables : tuple of Table
    missing : str, when not empty the section's data is absent and this line says what and why
    lead : bool, set for the verdict (shown as the page's lead box)
    """

    key: str
    title: str
    paragraphs: tuple[str, ...] = ()
    figures: tuple[FigureBlock, ...] = ()
    tables: tuple[Table, ...] = ()
    missing: str = ""
    lead: bool = False


SectionBuilder = Callable[[Any], Section]

SECTION_BUILDERS: dict[str, list[SectionBuilder]] = {"run": [], "inclusion": [], "attributes": []}


def register_section(kind: str, builder: SectionBuilder) -> SectionBuilder:
    """Append ``builder`` to the sections of pages for records of ``kind`` (a new kind starts a list).

    Returns ``builder`` so it can be used as a decorator: ``@functools.partial(register_section, "audit")``.
    """
    SECTION_BUILDERS.setdefault(kind, []).append(builder)
    return builder


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals (``0.2735`` -> ``27.4 %``), ``n/a`` for NaN/None.

    Examples
    --------
    >>> pct(0.2735), pct(float("nan")), pct(1.0, 0)
    ('27.4 %', 'n/a', '100 %')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.{digits}f} %"


def fpr_label(f: float) -> str:
    """A false-positive rate as the page writes it: whole percent from 1 % up, one decimal below.

    Examples
    --------
    >>> fpr_label(0.1), fpr_label(0.01), fpr_label(0.001)
    ('10 %', '1 %', '0.1 %')
    """
    return pct(f, 0 if f >= 0.01 else 1)
