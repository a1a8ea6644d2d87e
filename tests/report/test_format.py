"""Shared number and table formatting of the report layer."""

import math

from faceleaks.report.format import fmt, markdown_table


def test_fmt_rounds_and_marks_missing_values():
    assert fmt(0.12345) == "0.123" and fmt(0.5, 1) == "0.5" and fmt(2, 2) == "2.00"
    assert fmt(float("nan")) == "n/a" and fmt(None) == "n/a" and fmt(math.inf) == "inf"


def test_markdown_table_has_a_header_rule_and_one_line_per_row():
    text = markdown_table(["a", "b"], [["1", "2"], ["3", "4"]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]
    assert markdown_table(["x"], []) == "| x |\n|---|"
