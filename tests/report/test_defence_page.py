"""The defence sweep's report.html (issue 16): from DefenceRecords, through report/defend.py's rows."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.results import write_results
from faceleaks.report.defend import defence_rows
from faceleaks.report.html import load_result, write_html_report
from tests.report.defence_records import defence_records, write_sweep
from tests.report.numerals import numerals_not_in_record, page_numerals, visible_text
from tests.report.records import run_record


@pytest.fixture(scope="module")
def sweep_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    paths = write_sweep(out, defence_records())
    return out, paths, write_html_report(out).read_text()


def test_the_page_goes_to_out_defend_and_every_numeral_is_in_a_settings_results_json(sweep_page):
    out, paths, html = sweep_page
    assert (out / "defend" / "report.html").is_file() and not (out / "report.html").exists()
    assert len(page_numerals(html)) > 60
    assert numerals_not_in_record(html, paths) == []
    assert numerals_not_in_record(html, paths[:1]) != []  # the other settings' numbers are on the page too


def test_every_cell_of_the_defend_table_is_on_the_page_but_the_summed_queries(sweep_page):
    _, _, html = sweep_page
    text = visible_text(html)
    header, rows = defence_rows(defence_records())
    for row in rows:
        for h, cell in zip(header, row):
            assert h == "queries" or cell in text, (h, cell)
    assert "victim/lfw-identity" in text


def test_the_verdict_names_the_undefended_leak_and_the_least_leaking_setting(sweep_page):
    records = defence_records()
    text = visible_text(sweep_page[2])
    base = records[0]
    api = lambda r: r.defended_student_accuracy["lfw-identity"]  # noqa: E731
    keep = [r for r in records if r.identification_accuracy >= base.identification_accuracy - 0.02
            and api(r) >= api(base) - 0.02]
    best, lowest = min(keep, key=lambda r: r.best_adaptive.auc), min(records, key=lambda r: r.best_adaptive.auc)
    assert f"Undefended (none), the strongest attack that knows the defence reaches AUC {base.best_adaptive.auc:.3f}" in text
    if best is base:
        assert "No setting of this sweep lowers the adaptive attack" in text
    else:
        assert f"Least leakage at the owner's utility (within 0.02 of undefended): {best.setting}" in text
    if lowest is not best and best is not base:
        assert f"Lower still, at a cost: {lowest.setting}" in text
    assert text.index("Verdict") < text.index("Each setting puts a defence")


def test_the_verdict_weighs_utility(tmp_path):
    """A setting that leaks least only by giving up the owner's utility is not the recommended one."""
    import dataclasses

    from faceleaks.report.sections_defend import DefenceSweep, sweep_verdict_section

    none, rounded, label = defence_records()
    same = dataclasses.replace(rounded, identification_accuracy=none.identification_accuracy,
                               defended_student_accuracy=dict(none.defended_student_accuracy))
    costly = dataclasses.replace(label, identification_accuracy=none.identification_accuracy - 0.5)
    text = " ".join(sweep_verdict_section(DefenceSweep((none, same, costly), ())).paragraphs)
    if same.best_adaptive.auc < none.best_adaptive.auc:
        assert f"owner's utility (within 0.02 of undefended): {same.setting}" in text
    assert f"owner's utility (within 0.02 of undefended): {costly.setting}" not in text


def test_a_new_column_in_report_defend_flows_into_the_page(tmp_path, monkeypatch):
    import faceleaks.report.defend as defend

    monkeypatch.setattr(defend, "HEADER", [*defend.HEADER, "seconds"])
    monkeypatch.setattr(defend, "_row", lambda r, old=defend._row: [*old(r), f"{r.seconds:.1f}"])
    records = defence_records()
    paths = write_sweep(tmp_path, records)
    html = write_html_report(tmp_path / "defend").read_text()
    assert f"{records[1].seconds:.1f}" in visible_text(html)
    assert numerals_not_in_record(html, paths) == []


def test_a_seeds_sweep_gets_a_per_seed_table(tmp_path):
    for seed in (0, 1):
        write_sweep(tmp_path / f"seed-{seed}", defence_records(seed))
    (tmp_path / "defend").mkdir()
    (tmp_path / "defend" / "seeds.md").write_text("# over seeds\n")
    loaded = load_result(tmp_path)
    assert loaded.kind == "defences" and sorted(loaded.record.by_seed) == [0, 1]
    html = write_html_report(tmp_path).read_text()
    text = visible_text(html)
    assert "Best adaptive attack's AUC per seed" in text and "seed 1" in text
    paths = sorted(tmp_path.glob("seed-*/defend/*/results.json"))
    assert numerals_not_in_record(html, paths) == []


def test_a_run_folder_with_a_sweep_gets_both_pages_from_the_report_command(tmp_path):
    write_results(run_record(), tmp_path / "results.json")
    write_sweep(tmp_path, defence_records())
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").is_file() and (tmp_path / "defend" / "report.html").is_file()
    assert load_result(tmp_path).kind == "run"


def test_an_unreadable_setting_is_a_one_line_error(tmp_path):
    paths = write_sweep(tmp_path, defence_records())
    paths[1].write_text('{"schema_version": 1}')
    with pytest.raises(ArtifactError, match="schema_version 1"):
        load_result(tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "defend")])
    assert result.exit_code != 0 and "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_an_empty_defend_folder_says_no_setting_finished(tmp_path):
    (tmp_path / "defend").mkdir()
    (tmp_path / "defend" / "seeds.md").write_text("x")
    with pytest.raises(ArtifactError, match="no finished defence setting"):
        load_result(tmp_path)


def test_records_without_posteriors_still_render(tmp_path):
    records = [dataclasses.replace(r, membership=tuple(m for m in r.membership if m.attack.startswith("label-only")))
               for r in defence_records()]
    paths = write_sweep(tmp_path, records)
    html = write_html_report(tmp_path).read_text()
    assert "could not be built" not in html and numerals_not_in_record(html, paths) == []
