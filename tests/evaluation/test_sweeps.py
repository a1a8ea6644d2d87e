"""Sweeps pool the people of several seeds: AUC with a CI that resamples people, TPR at FPR resolved
only where the pool has enough non-members, and the written files."""

import json
import math

import numpy as np

from faceleaks.evaluation.results import (ControlRecord, DataSummary, MembershipReport, RocCurve, RunRecord,
                                         TeacherRecord, VerificationRecord)
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
    assert row["pooled_n_members"] == 150 and row["pooled_n_nonmembers"] == 150
    assert math.isclose(row["pooled_auc"], auc_score(y, np.r_[pos, neg]))
    lo, hi = row["pooled_auc_ci"]
    assert lo < row["pooled_auc"] < hi
    tprs = row["pooled_tpr_at_fpr"]
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
    assert math.isclose(recurring["pooled_auc"], independent["pooled_auc"])
    width = lambda row: row["pooled_auc_ci"][1] - row["pooled_auc_ci"][0]  # noqa: E731
    assert width(recurring) > 1.2 * width(independent)
