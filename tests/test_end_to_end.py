"""The quick setting end to end on real LFW/UTKFace, through the CLI, twice with the same seed."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.config import quick_config
from faceleaks.evaluation.results import RunRecord, TeacherRecord, read_results
from faceleaks.models.saving import load_student


CLI_OUTPUT: dict = {}


@pytest.fixture(scope="module")
def quick_runs(real_lfw, session_cache, tmp_path_factory):
    outs = []
    for _ in range(2):
        out = tmp_path_factory.mktemp("run")
        result = CliRunner().invoke(app, ["run", "--quick", "--out", str(out), "--cache-dir", str(session_cache),
                                          "--no-progress", "--seed", "0"])
        assert result.exit_code == 0, result.output
        CLI_OUTPUT[out] = result.output
        outs.append(out)
    return outs


def _load(out):
    return json.loads((out / "results.json").read_text())


def test_output_folder_has_report_files(quick_runs):
    out = quick_runs[0]
    for name in ("results.json", "summary.md", "roc.png", "auc_vs_k.png", "split.json"):
        assert (out / name).stat().st_size > 100, name
    assert "Membership inference on the teacher" in (out / "summary.md").read_text()
    said = CLI_OUTPUT[out]  # warnings print as one line each, without Python's source-line echo
    assert "UndefinedMetricWarning: TPR at FPR=0.001 is null" in said and "run_experiment(" not in said


def test_the_run_ends_with_report_html_whose_numerals_are_all_in_results_json(quick_runs):
    from tests.report.numerals import numerals_not_in_record, page_numerals

    out = quick_runs[0]
    html = (out / "report.html").read_text()
    assert len(page_numerals(html)) > 500 and numerals_not_in_record(html, out / "results.json") == []
    assert f"report: {out / 'report.html'}" in CLI_OUTPUT[out].replace("\n", "")


def test_results_structure_and_sanity(quick_runs):
    r = _load(quick_runs[0])
    cfg = quick_config()
    assert r["schema_version"] == 2 and r["seed"] == 0
    assert r["data"]["n_identities"]["member"] == cfg.split.n_members
    assert 0.55 < r["teacher"]["verification"]["accuracy"] <= 1.0
    assert r["teacher"]["verification"]["n_pairs"] > 1000
    students = {(s["teacher"], s["name"]): s for s in r["students"]}
    assert students[("victim", "lfw-identity")]["test_accuracy"] > 2 / cfg.split.n_student_identities
    assert students[("victim", "utk-age")]["test_accuracy"] > 0.3
    reports = r["membership"]
    levels = {(m["level"], m["setting"], m["teacher"], m["student"]) for m in reports}
    # 2 levels x 2 settings x 2 teachers x 2 students, plus the white-box ceiling (identity level)
    assert len(levels) == 2 * 2 * 2 * 2 + 2 * 2
    ks = {m["k"] for m in reports if m["level"] == "identity"}
    assert ks == set(cfg.attack.ks)
    for m in reports:
        assert 0.0 <= m["auc"] <= 1.0
        assert m["auc_ci"][0] <= m["auc"] <= m["auc_ci"][1]
        assert m["n_members"] >= 2 and m["n_nonmembers"] >= 2
        assert m["n_queries"] > 0 or m["student"] == "teacher-embedding"  # the white-box ceiling sends none
        assert set(m["tpr_at_fpr"]) == {"0.1", "0.01", "0.001"}
        negatives = m["n_nonmember_photos"] if m["level"] == "instance" else m["n_nonmembers"]
        assert (m["tpr_at_fpr"]["0.001"] is None) == (negatives < 1000)
        assert m["n_members"] <= cfg.split.n_members and m["n_nonmembers"] <= cfg.split.n_nonmembers
        assert m["balanced_accuracy"] is None or 0.0 <= m["balanced_accuracy"] <= 1.0
    null = [w for w in r["warnings"] if "TPR at FPR=0.001 is null" in w]
    assert len(null) == 1
    assert f"null in {sum(m['tpr_at_fpr']['0.001'] is None for m in reports)} results" in null[0]
    assert all(v > 0 for v in r["queries"].values())
    assert {"data", "teacher", "students", "attacks"} <= set(r["timings_s"])


def test_results_read_back_typed_and_students_are_saved(quick_runs):
    out = quick_runs[0]
    record = read_results(out / "results.json")
    assert isinstance(record, RunRecord) and isinstance(record.teacher, TeacherRecord)
    assert all(isinstance(f, float) for m in record.membership for f in m.tpr_at_fpr)
    chips = np.zeros((2, 150, 150, 3), np.uint8)
    for s in record.students:
        student = load_student(out / "students" / s.teacher / s.name)
        assert len(student.classes) == s.n_classes
        p = student.predict_proba(chips)
        assert p.shape == (2, s.n_classes) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_negative_control_is_near_chance(quick_runs):
    r = _load(quick_runs[0])
    control = [m["auc"] for m in r["membership"] if m["teacher"] == "control" and m["level"] == "identity"]
    mean = sum(control) / len(control)
    assert abs(mean - 0.5) < 0.08, mean
    covered = sum(m["auc_ci"][0] <= 0.5 <= m["auc_ci"][1] for m in r["membership"] if m["teacher"] == "control")
    assert covered >= 0.8 * sum(m["teacher"] == "control" for m in r["membership"])


def test_same_seed_same_results_apart_from_timings(quick_runs):
    a, b = _load(quick_runs[0]), _load(quick_runs[1])
    for r in (a, b):
        r.pop("timings_s")
        for key in ("shadow_seconds", "shadow_seconds_per_audited", "n_shadow_teachers_trained_this_run"):
            r["cost"].pop(key)
        for m in r["membership"]:
            m.pop("seconds")
    a["config"].pop("output_dir"), b["config"].pop("output_dir")
    assert a == b


def test_nan_is_written_as_json_null(quick_runs):
    text = (quick_runs[0] / "results.json").read_text()

    def reject(constant):
        raise AssertionError(f"results.json holds the non-standard JSON constant {constant}")

    r = json.loads(text, parse_constant=reject)
    unresolved = [m for m in r["membership"] if m["n_nonmember_photos"] < 1000]
    assert unresolved and all(m["tpr_at_fpr"]["0.001"] is None for m in unresolved)


def test_shadow_teacher_attacks_and_their_cost(quick_runs):
    r = _load(quick_runs[0])
    cfg = quick_config()
    s = cfg.attack.n_shadow_teachers
    assert r["cost"]["n_shadow_teachers_per_setting"] == s and r["cost"]["shadow_seconds"] > 0
    assert r["cost"]["shadow_train_seconds"] > 0 and r["cost"]["shadow_train_threads"] == 1
    assert r["cost"]["n_audited_per_setting"] == {"training-photos": 48, "unseen-photos": 48}
    ident = [m for m in r["membership"] if m["level"] == "identity"]
    names = {m["attack"].split("@")[0] for m in ident if m["student"] == "lfw-identity" and m["k"] == 5}
    assert {"lira-online-compactness", "lira-offline-compactness", "lira-online-consistency_gap",
            "lira-offline-consistency_gap", "shadow-combination", "base-diff-consistency_gap", "compactness"} <= names
    ceiling = [m for m in r["membership"] if m["student"] == "teacher-embedding"]
    assert {m["teacher"] for m in ceiling} == {"victim", "control"} and all(m["n_queries"] == 0 for m in ceiling)
    assert all(m["recipe"] == ("base" if m["teacher"] == "control" else "regularised") for m in r["membership"])
    for m in ident:
        assert len(m["member_scores"]) == m["n_members"] and len(m["nonmember_scores"]) == m["n_nonmembers"]
        assert not set(m["member_scores"]) & set(m["nonmember_scores"])
        assert m["seconds"] >= 0
        if m["attack"].startswith(("lira", "shadow-combination")):
            assert m["n_shadow_models"] == s and m["n_queries"] == m["k"] * (m["n_members"] + m["n_nonmembers"])
    summary = (quick_runs[0] / "summary.md").read_text()
    assert "Cost per audited person" in summary


def test_finetuned_control_trains_on_people_nobody_evaluates(real_lfw, session_cache, tmp_path):
    result = CliRunner().invoke(app, ["run", "--quick", "--control", "finetuned", "--shadows", "0", "--k", "5",
                                      "--out", str(tmp_path), "--cache-dir", str(session_cache), "--no-progress"])
    assert result.exit_code == 0, result.output
    r = _load(tmp_path)
    split = json.loads((tmp_path / "split.json").read_text())
    control_people = split["roles"]["control_member"]
    evaluated = set(split["roles"]["member"]) | set(split["roles"]["nonmember"]) | set(split["roles"]["reference"])
    assert len(control_people) == quick_config().split.n_members and not set(control_people) & evaluated
    control = r["teacher"]["control"]
    assert control["kind"] == "dlib" and control["n_member_identities"] == len(control_people)
    assert control["verification"]["accuracy"] > 0.9
    reports = [m for m in r["membership"] if m["teacher"] == "control" and m["level"] == "identity"]
    assert reports and abs(sum(m["auc"] for m in reports) / len(reports) - 0.5) < 0.1
    assert (tmp_path / "summary.md").read_text().count("control") > 0
