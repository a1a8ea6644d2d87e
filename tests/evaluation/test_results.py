"""Typed run records and their one JSON reader/writer: round trip, NaN as null, float FPR keys,
schema version."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from faceleaks.errors import ArtifactError
from faceleaks.evaluation.attribute_results import AttributeRecord, AttributeScore, LabelSummary
from faceleaks.evaluation.jsonio import SCHEMA_VERSION, from_jsonable, to_jsonable
from faceleaks.evaluation.results import (ControlRecord, CostRecord, DataSummary, MembershipReport, RocCurve,
                                          RunRecord, StudentRecord, TeacherRecord, VerificationRecord, read_results,
                                          write_results)

VERIFICATION = VerificationRecord(0.95, 0.01, 3000, 10, 12, "LFW pairs.txt")
CONTROL = ControlRecord(name="control-teacher", kind="dlib-base", n_member_identities=50,
                        verification=dataclasses.replace(VERIFICATION, accuracy=0.97))
TEACHER = TeacherRecord("dlib", VERIFICATION, CONTROL, n_member_identities=50, n_classes=50, n_train_photos=600,
                        embedding_dim=128, final_loss=0.12, train_accuracy=1.0, unfreeze_last_n=1,
                        train_seconds=12.5, train_threads=2)
STUDENTS = (StudentRecord("lfw-identity", "victim", 0.8, 300, 40, 0.99),
            StudentRecord("utk-age", "control", 0.6, 900, 4, 0.7))
COST = CostRecord(8, {"training-photos": 100, "unseen-photos": 100}, 100.0, 1, 0.5, 3, 40.0, 0.2, "process", 2)
CONFIG = {"attack": {"fprs": [0.1, 0.01], "output": "posterior"}}
DATA = DataSummary("/x/lfw", "/x/utk", {"member": 50, "nonmember": 50}, 600, 5000, 3000, 1,
                   (("/x/a.jpg", "broken"),), "dlib5-fixed-lfw-150-0.250")


def _report(tprs: dict, **changes) -> MembershipReport:
    base = dict(attack="compactness@k=5", level="identity", teacher="victim", student="lfw-identity",
                setting="training-photos", k=5, auc=0.7, auc_ci=(0.6, 0.8), tpr_at_fpr=tprs, advantage=0.3,
                balanced_accuracy=0.6, threshold=0.1, n_members=40, n_nonmembers=45, n_member_photos=200,
                n_nonmember_photos=225, n_queries=425, roc=RocCurve([0.0, 0.5, 1.0], [0.0, 0.7, 1.0]),
                n_shadow_models=8, seconds=1.5, member_scores={"a": 1.0}, nonmember_scores={"b": -1.0},
                recipe="light")
    return MembershipReport(**{**base, **changes})


def _attributes() -> AttributeRecord:
    score = AttributeScore("gender", "cross-dataset", "instance", 1, "lfw-identity", "posterior", "logreg", "attack",
                           "5", 10, 100, 0.7, (0.6, 0.8), 0.69, (0.6, 0.78), 0.75, (0.65, 0.85), 10, 2)
    labels = (LabelSummary("gender", "lfw-targets", ("male", "female"), (70, 30), {"ambiguous": 1}),)
    return AttributeRecord(0, {"budgets": [1, 5, "all"]}, (score,), (), (), labels, {"lfw-identity/posterior": 9}, {})


def _record(**changes) -> RunRecord:
    base = dict(seed=3, config=CONFIG, data=DATA, teacher=TEACHER, students=STUDENTS,
                membership=(_report({0.1: 0.4, 0.01: 0.05}),), queries={"victim/lfw-identity": 1234},
                timings_s={"data": 1.0}, warnings=("w",), attributes=_attributes(), cost=COST)
    return RunRecord(**{**base, **changes})


def test_write_then_read_gives_an_equal_record(tmp_path):
    record = _record()
    write_results(record, tmp_path / "results.json")
    back = read_results(tmp_path / "results.json")
    assert back == record
    assert isinstance(back.teacher.control.verification, VerificationRecord) and back.data.unreadable[0][1] == "broken"
    assert RunRecord.from_json(tmp_path / "results.json") == record


def test_nan_is_written_as_null_and_read_back_as_nan(tmp_path):
    record = _record(membership=(_report({0.1: 0.4, 0.001: float("nan")}, balanced_accuracy=float("nan")),),
                     teacher=dataclasses.replace(TEACHER, verification=VerificationRecord(float("nan"), note="no pairs")),
                     attributes=None, cost=None)
    record.to_json(tmp_path / "results.json")
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION == 2
    m = raw["membership"][0]
    assert m["tpr_at_fpr"] == {"0.1": 0.4, "0.001": None} and m["balanced_accuracy"] is None
    assert raw["teacher"]["verification"]["accuracy"] is None and raw["attributes"] is None and raw["cost"] is None
    back = read_results(tmp_path / "results.json").membership[0]
    assert list(back.tpr_at_fpr) == [0.1, 0.001] and math.isnan(back.tpr_at_fpr[0.001])
    assert math.isnan(back.balanced_accuracy) and back.tpr_at_fpr[0.1] == 0.4


def test_fpr_keys_are_floats_after_a_round_trip(tmp_path):
    write_results(_record(), tmp_path / "results.json")
    back = read_results(tmp_path / "results.json")
    assert all(isinstance(f, float) for r in back.membership for f in r.tpr_at_fpr)
    assert [list(r.tpr_at_fpr) for r in back.membership] == [list(r.tpr_at_fpr) for r in _record().membership]


@pytest.mark.parametrize("version, found", [(1, "schema_version 1"), (None, "no schema_version")])
def test_an_older_file_raises_artifact_error_saying_what_to_do(tmp_path, version, found):
    raw = to_jsonable(_record())
    if version is None:
        del raw["schema_version"]
    else:
        raw["schema_version"] = version
    path = tmp_path / "results.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="rerun") as err:
        read_results(path)
    assert found in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_malformed_file_raises_artifact_error(tmp_path):
    raw = to_jsonable(_record())
    raw["teacher"]["colour"] = "red"
    (tmp_path / "unknown.json").write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="colour"):
        read_results(tmp_path / "unknown.json")
    del raw["teacher"]["colour"], raw["teacher"]["kind"]
    (tmp_path / "missing.json").write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="TeacherRecord"):
        read_results(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ArtifactError, match="broken.json"):
        read_results(tmp_path / "broken.json")


def test_teacher_from_model_info_keeps_only_recorded_fields():
    info = {"kind": "scratch", "n_classes": 50, "n_train_photos": 600, "embedding_dim": 64, "final_loss": 0.3,
            "train_accuracy": 0.9, "version": 3, "cached": True}
    t = TeacherRecord.from_info(info, verification=VERIFICATION, control=ControlRecord(note="n/a"),
                                n_member_identities=50)
    assert t.kind == "scratch" and t.embedding_dim == 64 and t.train_seconds is None
    assert "cached" not in to_jsonable(t) and "version" not in to_jsonable(t)


def test_from_jsonable_checks_types():
    assert from_jsonable(tuple[float, float], [None, 0.5])[1] == 0.5
    assert from_jsonable(dict[str, int] | None, None) is None
    with pytest.raises(ArtifactError, match="expected"):
        from_jsonable(dict[str, int], [1, 2])
    with pytest.raises(ArtifactError, match="float key"):
        from_jsonable(dict[float, float], {"one": 1.0})


def test_every_row_names_its_recipe_and_a_file_without_recipes_reads_as_unnamed(tmp_path):
    import json

    record = _record(membership=(_report({0.1: 0.4}), _report({0.1: 0.1}, teacher="control", recipe="base")))
    write_results(record, tmp_path / "results.json")
    raw = json.loads((tmp_path / "results.json").read_text())
    assert [m["recipe"] for m in raw["membership"]] == ["light", "base"]
    for m in raw["membership"]:
        del m["recipe"]  # written before rows named their recipe
    (tmp_path / "old.json").write_text(json.dumps(raw))
    assert [m.recipe for m in read_results(tmp_path / "old.json").membership] == ["", ""]
