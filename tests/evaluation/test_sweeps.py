"""Sweeps pool the people of several seeds: AUC with a CI that resamples people, TPR at FPR resolved
only where the pool has enough non-members, typed rows, and the written files (``sweep.json``
keeps its schema-1 layout byte for byte)."""

import dataclasses
import json
import math

import numpy as np
import pytest

from faceleaks.evaluation.results import (ControlRecord, DataSummary, MembershipReport, RocCurve, RunRecord,
                                         TeacherRecord, VerificationRecord)
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.sweep_results import SweepRow, read_sweep_json, write_sweep_json
from faceleaks.evaluation.sweeps import summarise_seeds
from faceleaks.metrics import auc_score
from faceleaks.report.render import write_sweep


def _record(seed, n_per_group, shift):
    rng = np.random.default_rng(seed)
    mem = {f"m{seed}_{i}": float(v) for i, v in enumerate(rng.normal(shift, 1, n_per_group))}
    non = {f"n{i}": float(v) for i, v in enumerate(rng.normal(0, 1, n_per_group))}  # people recur over seeds
    report = MembershipReport(
        attack="lira-online-compactness@k=5", level="identity", teacher="victim", student="lfw-identity",
        setting="training-photos", k=5, auc=0.7, auc_ci=(0.6, 0.8), tpr_at_fpr={0.1: 0.3}, advantage=0.3,
        balanced_accuracy=0.6, threshold=0.0, n_members=n_per_group, n_nonmembers=n_per_group,
        n_member_photos=5 * n_per_group, n_nonmember_photos=5 * n_per_group, n_queries=10 * n_per_group,
        roc=RocCurve([0.0, 1.0], [0.0, 1.0]), member_scores=mem, nonmember_scores=non)
    return RunRecord(seed=seed, config={"attack": {"fprs": [0.1, 0.01, 0.001]}}, data=DATA, teacher=TEACHER,
                     students=(), membership=(report,), queries={}, timings_s={})


DATA = DataSummary("lfw", "utk", {}, 0, 0, 0, 0, (), "chip")
TEACHER = TeacherRecord("dlib", VerificationRecord(0.9), ControlRecord(note="none"), 50, 50, 500, 128)


def test_pooled_metrics_over_seeds(tmp_path):
    records = [_record(s, 50, 1.0) for s in range(3)]
    (row,) = summarise_seeds(records, n_bootstrap=200)
    pos = [v for r in records for v in r.membership[0].member_scores.values()]
    neg = [v for r in records for v in r.membership[0].nonmember_scores.values()]
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    assert row.pooled_n_members == 150 and row.pooled_n_nonmembers == 150
    assert math.isclose(row.pooled_auc, auc_score(y, np.r_[pos, neg]))
    lo, hi = row.pooled_auc_ci
    assert lo < row.pooled_auc < hi
    tprs = row.pooled_tpr_at_fpr
    assert not math.isnan(tprs[0.1]) and not math.isnan(tprs[0.01])  # 150 non-members resolve 1 %
    assert math.isnan(tprs[0.001])                                     # but not 0.1 %
    path = write_sweep([row], tmp_path)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["rows"][0]["pooled_tpr_at_fpr"]["0.001"] is None
    assert "pooled AUC" in path.read_text() and (tmp_path / "sweep_roc.png").stat().st_size > 1000


def test_pooled_ci_resamples_people_who_recur():
    # the same 50 non-members, with the same scores, in every seed (a person effect): the CI must
    # not shrink as if they were 150 independent people; renaming them per seed must narrow it
    records = [_record(s, 50, 0.5) for s in range(3)]
    same = dict(records[0].membership[0].nonmember_scores)
    for r in records:
        object.__setattr__(r.membership[0], "nonmember_scores", same)
    recurring = summarise_seeds(records, n_bootstrap=400)[0]
    for s, r in enumerate(records):
        object.__setattr__(r.membership[0], "nonmember_scores", {f"{k}_{s}": v for k, v in same.items()})
    independent = summarise_seeds(records, n_bootstrap=400)[0]
    assert math.isclose(recurring.pooled_auc, independent.pooled_auc)
    width = lambda row: row.pooled_auc_ci[1] - row.pooled_auc_ci[0]  # noqa: E731
    assert width(recurring) > 1.2 * width(independent)


def _instance_report(seed):
    return MembershipReport(
        attack="threshold-max", level="instance", teacher="victim", student="lfw-identity",
        setting="training-photos", k=1, auc=0.55 + 0.1 * seed, auc_ci=(0.5, 0.7), tpr_at_fpr={0.1: 0.2},
        advantage=0.1, balanced_accuracy=0.55, threshold=0.0, n_members=10, n_nonmembers=10,
        n_member_photos=50, n_nonmember_photos=50, n_queries=100, roc=RocCurve([0.0, 1.0], [0.0, 1.0]))


def test_rows_are_typed_and_only_identity_rows_are_pooled():
    records = [_record(s, 20, 1.0) for s in range(2)]
    records = [dataclasses.replace(r, membership=r.membership + (_instance_report(r.seed),)) for r in records]
    identity, instance = summarise_seeds(records, n_bootstrap=50)
    assert isinstance(identity, SweepRow) and identity.is_pooled and identity.level == "identity"
    assert isinstance(instance, SweepRow) and not instance.is_pooled and instance.pooled_roc is None
    assert instance.seeds == (0, 1) and instance.aucs == pytest.approx((0.55, 0.65))
    assert instance.auc_mean == pytest.approx(0.6) and instance.auc_std == pytest.approx(np.std([0.55, 0.65], ddof=1))
    assert all(isinstance(f, float) for f in identity.pooled_tpr_at_fpr)
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.auc_mean = 0.0  # type: ignore[misc]


def _hand_rows():
    pooled = SweepRow("victim", "s", "training-photos", "identity", "a@k=5", 0.75, 0.05, (0, 1), (0.7, 0.8),
                      pooled_auc=0.72, pooled_auc_ci=(0.6, 0.8), pooled_roc=RocCurve([0.0, 1.0], [0.5, 1.0]),
                      pooled_tpr_at_fpr={0.1: 0.4, 0.001: float("nan")}, pooled_n_members=3,
                      pooled_n_nonmembers=4)
    plain = SweepRow("victim", "s", "training-photos", "instance", "t", 0.5, 0.0, (0,), (float("nan"),))
    return [pooled, plain]


def test_sweep_json_layout_is_the_schema_1_layout(tmp_path):
    # the exact bytes of sweep.json before typed rows: key order, no pooled_* keys on a plain row,
    # NaN as null, FPR keys as "0.1", schema_version 1, indent 1, trailing newline
    write_sweep_json(_hand_rows(), tmp_path / "sweep.json")
    expected = {"schema_version": 1, "rows": [
        {"teacher": "victim", "student": "s", "setting": "training-photos", "level": "identity", "attack": "a@k=5",
         "auc_mean": 0.75, "auc_std": 0.05, "seeds": [0, 1], "aucs": [0.7, 0.8], "pooled_auc": 0.72,
         "pooled_auc_ci": [0.6, 0.8], "pooled_roc": {"fpr": [0.0, 1.0], "tpr": [0.5, 1.0]},
         "pooled_tpr_at_fpr": {"0.1": 0.4, "0.001": None}, "pooled_n_members": 3, "pooled_n_nonmembers": 4},
        {"teacher": "victim", "student": "s", "setting": "training-photos", "level": "instance", "attack": "t",
         "auc_mean": 0.5, "auc_std": 0.0, "seeds": [0], "aucs": [None]}]}
    assert (tmp_path / "sweep.json").read_text() == json.dumps(expected, indent=1) + "\n"


def test_sweep_json_round_trips(tmp_path):
    records = [_record(s, 20, 1.0) for s in range(2)]
    rows = summarise_seeds(records, n_bootstrap=50) + _hand_rows()
    write_sweep_json(rows, tmp_path / "sweep.json")
    back = read_sweep_json(tmp_path / "sweep.json")
    assert [r.to_dict() for r in back] == [r.to_dict() for r in rows]
    assert back[0].pooled_tpr_at_fpr.keys() == rows[0].pooled_tpr_at_fpr.keys()
    assert math.isnan(back[-1].aucs[0]) and math.isnan(back[1].pooled_tpr_at_fpr[0.001])


def test_reading_another_sweep_schema_or_a_partial_row_fails(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({"schema_version": 2, "rows": []}))
    with pytest.raises(ArtifactError, match="schema_version 2"):
        read_sweep_json(path)
    raw = _hand_rows()[0].to_dict()
    del raw["pooled_roc"]
    path.write_text(json.dumps({"schema_version": 1, "rows": [raw]}))
    with pytest.raises(ArtifactError, match="pooled_roc"):
        read_sweep_json(path)
