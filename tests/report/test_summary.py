"""summary.md and the output folder from typed records (no dict parsing in the report layer)."""

import dataclasses
import json

from tests.evaluation.test_results import COST, TEACHER, _record

from faceleaks.evaluation.results import ControlRecord, VerificationRecord, read_results
from faceleaks.report.render import write_report
from faceleaks.report.tables import cost_text, summary_markdown


def test_summary_reads_the_typed_teacher_students_control_and_attributes():
    text = summary_markdown(_record())
    assert "teacher `dlib` trained on 50 member identities (600 photos); API output: `posterior`" in text
    assert "0.950 ± 0.010 (3000 pairs" in text
    assert "students on dlib's model unmodified" in text and "verification 0.970" in text
    assert "| lfw-identity | victim | 40 | 0.800 |" in text
    assert "## Sensitive-attribute inference through the students" in text and "- w" in text


def test_summary_without_control_cost_or_attributes():
    record = _record(teacher=dataclasses.replace(TEACHER, control=ControlRecord(note="the victim is the control"),
                                                 verification=VerificationRecord(float("nan"), note="no pairs")),
                     attributes=None, cost=None)
    text = summary_markdown(record)
    assert "**Negative control**: the victim is the control." in text and "n/a ± n/a (0 pairs" in text
    assert "Sensitive-attribute" not in text and "No shadow teachers in this run." in text


def test_cost_uses_this_runs_seconds_when_training_time_was_not_recorded():
    record = _record(cost=dataclasses.replace(COST, shadow_train_seconds=None, shadow_train_seconds_per_audited=None))
    text = cost_text(record)
    assert "this run spent 40 s on them" in text and "| lfw-identity | compactness@k=5 | 5.0 | 8 | 0.218 |" in text


def test_write_report_writes_a_readable_results_json(tmp_path):
    record = _record()
    paths = write_report(record, tmp_path)
    assert set(paths) == {"results", "summary", "roc", "auc_vs_k", "attributes"}
    assert read_results(paths["results"]) == record
    assert json.loads(paths["results"].read_text())["schema_version"] == 2
    assert paths["summary"].read_text() == summary_markdown(record)
    assert all(paths[k].stat().st_size > 1000 for k in ("roc", "auc_vs_k", "attributes"))


def test_a_run_without_membership_results_still_writes_its_report(tmp_path):
    paths = write_report(_record(membership=()), tmp_path)
    assert "roc" not in paths and not (tmp_path / "roc.png").exists()
    assert read_results(paths["results"]).membership == ()
    assert paths["summary"].read_text().strip()


def test_summary_names_the_victim_recipe_and_each_rows_recipe():
    from faceleaks.config import TeacherConfig

    teacher = TeacherConfig(recipe="light", finetune_epochs=4).to_dict()
    text = summary_markdown(_record(config={**_record().config, "teacher": teacher}))
    assert ("**Victim recipe** `light`: Adam, constant learning rate from 0.0001, 4 epochs, weight decay 0, "
            "on all of each member's photos") in text
    assert "| victim (light) | lfw-identity | training-photos |" in text
    assert "Victim recipe" not in summary_markdown(_record())  # a config written before recipes
