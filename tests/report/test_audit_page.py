"""An audit's typed results.json, summary.md and report.html (issues 15 and 16)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.audit import write_audit
from faceleaks.evaluation.audit_results import read_audit
from faceleaks.report.audit_report import audit_markdown
from faceleaks.report.html import load_result, write_html_report
from tests.report.audit_records import audit_record
from tests.report.numerals import numerals_not_in_record, page_numerals, visible_text


def _page(folder, record) -> str:
    write_audit(record, folder)
    return write_html_report(folder).read_text()


@pytest.fixture(scope="module")
def audit_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit-page")
    record = audit_record()
    return folder, record, _page(folder, record)


def test_the_audit_record_round_trips_through_results_json(audit_page):
    folder, record, _ = audit_page
    assert read_audit(folder / "results.json") == record
    raw = json.loads((folder / "results.json").read_text())
    assert raw["record_type"] == "audit" and raw["schema_version"] == 2
    assert load_result(folder).kind == "audit"


def test_every_numeral_of_an_audit_page_is_in_results_json(audit_page):
    folder, _, html = audit_page
    assert len(page_numerals(html)) > 60
    assert numerals_not_in_record(html, folder / "results.json") == []


def test_the_first_line_says_how_many_probe_people_are_flagged_and_what_would_fix_it(audit_page):
    _, record, html = audit_page
    text = visible_text(html)
    flagged = record.counts["member"]
    assert 0 < flagged < record.counts["probe people"]
    claim = f"{flagged} of {record.counts['probe people']} probe people are flagged"
    assert text.index("Verdict") < text.index(claim) < text.index("What would fix it") < text.index("most exposed first")
    ranked = text[text.index("Probe people, most exposed first"):]
    first = record.ranked()[0]
    assert ranked.split("member (labels)")[1].split()[:4] == [first.person, f"{first.score:.4f}",
                                                             f"{first.p_value:.4f}", "member"]
    assert "Not scored: probe people with fewer than 4 photos" in text and "p2_0/p2_0_0009.jpg" in text
    assert record.reference_too_few_photos == {"p1_40": 3} and record.n_reference == 40
    assert "Not scored: reference people with fewer than 4 photos with a face person usable photos p1_40 3" in " ".join(
        text.split())


def test_too_few_reference_people_is_insufficient_evidence_on_the_page(tmp_path):
    record = audit_record(n_reference=10, fpr=0.05, labels=False)
    assert {p.verdict for p in record.people} == {"insufficient evidence"}
    html = _page(tmp_path, record)
    text = visible_text(html)
    assert "Insufficient evidence: 10 reference people cannot resolve a 5 % false-positive rate" in text
    assert "at least 20 known non-members" in text and "member (labels)" not in text
    assert numerals_not_in_record(html, tmp_path / "results.json") == []


def test_summary_md_has_the_verdict_and_the_ranked_table(audit_page):
    _, record, _ = audit_page
    md = audit_markdown(record)
    assert md.splitlines()[2].startswith(f"**{record.counts['member']} of ") and "| person | score |" in md
    assert md.index(record.ranked()[0].person) < md.index(record.ranked()[-1].person)


def test_an_audit_of_the_older_format_is_a_one_line_error(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"format": "faceleaks-audit/1", "people": []}))
    with pytest.raises(ArtifactError, match="older format faceleaks-audit/1"):
        load_result(tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_report_command_writes_an_audit_page(tmp_path):
    write_audit(audit_record(), tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "audit of a student API" in (tmp_path / "report.html").read_text()


def test_nobody_flagged_names_the_most_exposed_person_and_what_it_does_not_show(tmp_path):
    record = audit_record(gap=0.0, fpr=0.025)
    assert record.counts["member"] == 0 and not record.insufficient
    html = _page(tmp_path, record)
    text = visible_text(html)
    top = record.ranked()[0]
    assert "None of the 10 probe people is flagged" in text
    assert f"The most exposed probe person, {top.person}, has p = {top.p_value:.4f}." in text
    assert "Nothing flagged is not proof of non-membership" in text
    assert numerals_not_in_record(html, tmp_path / "results.json") == []
