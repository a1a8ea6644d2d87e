"""Every numeral of a page's visible text, and whether results.json holds it (after the page's rounding).

The page's text is read with the standard library's ``html.parser``; ``<style>``, ``<script>`` and
``<svg>`` content and all attributes (``data:`` URIs included) are skipped. A numeral with d decimals
(``27.4``, ``0.839``, ``5,876``, ``1e-05``) is found when some number of the record, or 100 times it
(a percentage), formats to it with d decimals, or when the record's own strings contain it.
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

NUMERAL = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_SKIP = {"style", "script", "svg"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.depth += tag in _SKIP

    def handle_endtag(self, tag):
        self.depth -= tag in _SKIP

    def handle_data(self, data):
        if not self.depth:
            self.chunks.append(data)


def visible_text(html: str) -> str:
    """The page's text outside ``<style>``, ``<script>`` and ``<svg>`` (attributes are not text)."""
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.chunks)


def page_numerals(html: str) -> list[str]:
    """Every numeral of the visible text, as written."""
    return NUMERAL.findall(visible_text(html))


def _walk(x, numbers: list[float], strings: list[str]) -> None:
    if isinstance(x, bool) or x is None:
        return
    if isinstance(x, (int, float)):
        numbers.append(abs(float(x)))
    elif isinstance(x, str):
        strings.append(x)
    elif isinstance(x, dict):
        for k, v in x.items():
            strings.append(str(k))
            _walk(v, numbers, strings)
    elif isinstance(x, list):
        for v in x:
            _walk(v, numbers, strings)


class RecordNumbers:
    """The numbers of a results file (or of several: a defence sweep's settings), formatted the ways a
    page may round them."""

    def __init__(self, path: Path | list[Path]) -> None:
        numbers, strings = [], []
        for one in path if isinstance(path, list) else [path]:
            _walk(json.loads(Path(one).read_text()), numbers, strings)
        finite = {v for v in numbers if math.isfinite(v)}
        self.exact = finite | {float(t.replace(",", "")) for s in strings for t in NUMERAL.findall(s)}
        self.formatted = {d: {f"{s * v:.{d}f}" for v in finite for s in (1, 100)} for d in range(6)}

    def holds(self, numeral: str) -> bool:
        """Whether ``numeral`` (as on the page) is a number of the record after the page's rounding."""
        plain = numeral.replace(",", "")
        if float(plain) in self.exact or float(plain) / 100 in self.exact:
            return True
        if "e" in plain:
            return False
        digits = len(plain.split(".")[1]) if "." in plain else 0
        return digits < 6 and plain in self.formatted[digits]


def numerals_not_in_record(html: str, record_path: Path | list[Path]) -> list[str]:
    """The page's numerals that the record at ``record_path`` (or the records of a list of paths) does
    not hold (empty when all are found)."""
    numbers = RecordNumbers(record_path)
    return [n for n in page_numerals(html) if not numbers.holds(n)]
