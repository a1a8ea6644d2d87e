"""report.html: every numeral from the record, sections as their data exists, clear failures (issue 16)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.cli.report import html_after_run
from faceleaks.config.report import HeadlineSpec
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.inclusion_results import write_inclusion
from faceleaks.evaluation.results import write_results
from faceleaks.report.html import load_result, write_html_report
from tests.report.numerals import numerals_not_in_record, page_numerals, visible_text
from tests.report.records import inclusion_record, run_record


def _page(tmp_path, record=None) -> str:
    write_results(record or run_record(), tmp_path / "results.json")
    return write_html_report(tmp_path).read_text()


@pytest.fixture(scope="module")
def run_page(tmp_path_factory):
    """(folder, page text) of the default test record, rendered once for the tests that only read it."""
    folder = tmp_path_factory.mktemp("run-page")
    return folder, _page(folder)


def test_every_numeral_of_a_run_page_is_in_results_json(run_page):
    folder, html = run_page
    assert len(page_numerals(html)) > 200
    assert numerals_not_in_record(html, folder / "results.json") == []


def test_every_numeral_of_an_inclusion_page_is_in_inclusion_json(tmp_path):
    write_inclusion(inclusion_record(), tmp_path / "inclusion.json")
    html = write_html_report(tmp_path).read_text()
    assert "at 1 % false positives (interval" in visible_text(html)
    assert numerals_not_in_record(html, tmp_path / "inclusion.json") == []


def test_the_numeral_check_catches_a_number_the_record_lacks(run_page):
    folder, html = run_page
    html = html.replace("</main>", "<p>derived 987654.321 and 0.12345</p></main>")
    assert numerals_not_in_record(html, folder / "results.json") == ["987654.321", "0.12345"]


def test_the_verdict_quotes_the_configured_headline_and_its_control(run_page):
    record = run_record()
    text = visible_text(run_page[1])
    head = next(m for m in record.membership if m.attack == HeadlineSpec().row_name
                and m.teacher == "victim" and m.setting == "training-photos")
    assert text.index("Verdict") < text.index("Threat model") < text.index("Provenance")
    assert f"With 5 photos of a person ({head.n_queries} queries" in text
    assert f"AUC {head.auc:.3f}" in text and "fixed in the run's config before it ran" in text
    assert "The negative control" in text


def test_a_record_without_a_headline_setting_uses_the_default_and_says_so(tmp_path):
    text = visible_text(_page(tmp_path, run_record(with_headline_config=False)))
    assert "the default (this results.json predates report.headline" in text


def test_a_headline_the_run_did_not_measure_is_reported_missing(tmp_path):
    record = run_record()
    config = {**record.config, "report": {"headline": {**record.config["report"]["headline"], "k": 10}}}
    text = visible_text(_page(tmp_path, dataclasses.replace(record, config=config)))
    assert f"Not available: this run has no {HeadlineSpec().attack}@k=10 row" in text


def test_sections_appear_as_their_data_exists(tmp_path):
    text = visible_text(_page(tmp_path, dataclasses.replace(run_record(), attributes=None)))
    assert "Not available: no attribute study in this result" in text
    assert "Not available: no defence was run for this result" in text
    assert "Most exposed people" in text and "Highest headline scores" in text


def test_most_exposed_people_are_the_highest_headline_scores(run_page):
    record = run_record()
    head = next(m for m in record.membership if m.attack == HeadlineSpec().row_name and m.teacher == "victim"
                and m.setting == "training-photos")
    top = max({**head.member_scores, **head.nonmember_scores}.items(), key=lambda kv: kv[1])
    text = visible_text(run_page[1])
    exposed = text[text.index("Highest headline scores"):]
    assert exposed.split()[7:9] == [top[0], f"{top[1]:.3f}"]


def test_an_older_schema_and_a_half_finished_run_give_one_line_errors(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(ArtifactError, match="schema_version 1"):
        load_result(tmp_path / "old")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "split.json").write_text("{}")
    with pytest.raises(ArtifactError, match="did not finish"):
        load_result(tmp_path / "half")


def test_the_report_command_exits_with_a_message_not_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "ArtifactError" in result.output and "Traceback" not in result.output
    write_results(run_record(), tmp_path / "results.json")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0 and (tmp_path / "report.html").is_file()


def test_a_failing_report_after_a_run_is_one_warning_line(tmp_path):
    from rich.console import Console

    console = Console(record=True, width=400)
    assert html_after_run(tmp_path, console) is None
    lines = console.export_text().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: report.html not written")


def test_an_attribute_study_alone_gets_its_own_verdict_and_every_numeral_is_in_attributes_json(tmp_path):
    run_record().attributes.to_json(tmp_path / "attributes.json")
    html = write_html_report(tmp_path).read_text()
    text = visible_text(html)
    assert "reaches balanced accuracy: gender" in text and "Membership is not measured by this study" in text
    assert numerals_not_in_record(html, tmp_path / "attributes.json") == []


def test_a_section_that_cannot_read_its_record_says_so_and_the_page_survives(tmp_path):
    record = run_record()
    broken = dataclasses.replace(record, config={**record.config, "attack": None})  # a malformed config section
    text = visible_text(_page(tmp_path, broken))
    assert "Not available: could not be built from results.json (AttributeError" in text
    assert "Verdict" in text and "Provenance" in text


@pytest.mark.parametrize("status, words", [("running", "wait for it to finish"), ("failed", "rerun the same command")])
def test_a_run_json_without_results_names_its_status_in_one_line(tmp_path, status, words):
    (tmp_path / "split.json").write_text("{}")
    (tmp_path / "run.json").write_text(json.dumps({"status": status, "failed_stages": ["attacks"]}))
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and f"run is {status}" in result.output
    assert words in " ".join(result.output.split()) and "attacks" in result.output


def test_a_missing_folder_is_one_line_and_exit_1(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("ArtifactError:") and len(result.output.strip().splitlines()) == 1
