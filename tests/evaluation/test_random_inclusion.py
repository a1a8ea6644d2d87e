"""Random inclusion (N victims, leave-one-out LiRA): membership draws, N choice, LOO LiRA equal to
IdentityLiRAAttack, a control at chance, typed record round trip, report, resume; one small real run."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from faceleaks.attacks.base import PublicBase, ShadowModel
from faceleaks.attacks.membership.lira import IdentityLiRAAttack
from faceleaks.config import config_from_dict
from faceleaks.errors import ConfigError, DataError
from faceleaks.evaluation.inclusion_pool import QuerySet
from faceleaks.evaluation.inclusion_results import (InclusionCost, InclusionRecord, PoolSummary, VictimRecord,
                                                    VictimStatistics, read_inclusion)
from faceleaks.evaluation.inclusion_scoring import (assign_members, choose_n_victims, loo_lira_scores,
                                                    nonmember_decisions, pool_decisions, summarise_decisions)
from faceleaks.evaluation.inclusion_victims import MemoPublicBase, StatisticResources, _load, _save, box_statistics
from faceleaks.evaluation.random_inclusion import _rows
from faceleaks.report.inclusion import inclusion_markdown, write_inclusion_report
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.sealed import seal

N_CLASSES, SIZE = 8, 4


def _images(n_people: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_people * k, 4, 4, 3) uint8 images whose first pixel encodes (person, photo); identity ids."""
    imgs = np.zeros((n_people * k, SIZE, SIZE, 3), np.uint8)
    for p in range(n_people):
        for j in range(k):
            imgs[p * k + j, 0, 0] = (p, j, 0)
    return imgs, np.repeat([f"p{p:03d}" for p in range(n_people)], k)


def _victim_box(members: np.ndarray, seed: int, gap: float):
    """Posteriors: a per-person centre (shared by every box) plus per-photo noise, shrunk for members."""
    def fn(images):
        out = np.zeros((len(images), N_CLASSES))
        for i, im in enumerate(images):
            p, j = int(im[0, 0, 0]), int(im[0, 0, 1])
            centre = np.random.default_rng([p]).normal(0, 1, N_CLASSES)
            noise = np.random.default_rng([seed, p, j]).normal(0, 1, N_CLASSES)
            z = centre + (1.0 - gap * (p < len(members) and members[p])) * noise
            out[i] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        return out

    return seal(FunctionBlackBox(fn, input_size=SIZE))


def _world(n_victims=6, n_people=40, k=3, gap=0.6, seed=0):
    is_member = assign_members(n_people, n_victims, seed=seed)
    boxes = [_victim_box(is_member[v], seed=v + 1, gap=gap) for v in range(n_victims)]
    images, idents = _images(n_people, k)
    groups = [np.arange(p * k, (p + 1) * k) for p in range(n_people)]
    queries = QuerySet(images, idents, idents, {k: (np.arange(n_people), groups)})
    return is_member, boxes, queries


def test_assign_members_halves_seeded_and_prefix_stable():
    m = assign_members(101, 30, seed=3)
    assert m.shape == (30, 101) and set(m.sum(axis=1).tolist()) == {50}
    assert np.array_equal(assign_members(101, 12, seed=3), m[:12])  # more victims never change earlier ones
    assert not np.array_equal(assign_members(101, 12, seed=4), m[:12])
    share = m.mean(axis=0)  # each person a member of about half the victims, by independent draws
    assert 0.1 < share.min() and share.max() < 0.9
    assert 0.06 < share.std() < 0.12  # binomial spread: sqrt(0.25 / 30) = 0.091
    with pytest.raises(ConfigError, match="fraction"):
        assign_members(10, 2, seed=0, fraction=1.0)


def test_choose_n_victims_is_the_fewest_reaching_the_target():
    eligible = np.arange(200) % 3 == 0  # 67 eligible people
    n = choose_n_victims(eligible, seed=1, target=1000)
    assert nonmember_decisions(assign_members(200, n, seed=1), eligible) >= 1000
    assert nonmember_decisions(assign_members(200, n - 1, seed=1), eligible) < 1000
    with pytest.raises(ConfigError, match="no pool person"):
        choose_n_victims(np.zeros(10, bool), seed=0)


class _FakeBase(PublicBase):
    """The public base: each photo's person centre (as the boxes use it) plus photo noise, 16-D."""

    def embed(self, images):
        rows = []
        for im in images:
            p, j = int(im[0, 0, 0]), int(im[0, 0, 1])
            centre = np.random.default_rng([p]).normal(0, 1, N_CLASSES)
            rows.append(np.concatenate([centre, np.random.default_rng([p, j, 5]).normal(0, 0.3, 8)]))
        return np.array(rows)


@pytest.mark.parametrize("statistic", ["compactness", "consistency_gap"])
def test_loo_lira_equals_identity_lira_attack_with_the_other_victims_as_shadows(statistic):
    is_member, boxes, queries = _world()
    people = [f"p{p:03d}" for p in range(is_member.shape[1])]
    pool_images, pool_ids = _images(30, 2)
    pool_images[:, 0, 0, 0] += 100  # people 100..129: members of no victim
    pool_ids = np.array([f"q{i}" for i in pool_ids])
    resources = StatisticResources(MemoPublicBase(_FakeBase()), pool_images, pool_ids, pool_size=40, seed=3)
    stats = np.array([box_statistics(b, queries, (statistic,), resources)[3][statistic] for b in boxes])
    assert np.all(np.isfinite(stats))
    for online in (True, False):
        ours = loo_lira_scores(stats, is_member, online=online)
        for v in (0, 3):
            shadows = [ShadowModel(boxes[u], frozenset(np.array(people)[is_member[u]].tolist()))
                       for u in range(len(boxes)) if u != v]
            attack = IdentityLiRAAttack(statistic=statistic, k=3, online=online, pool_size=40, seed=3)
            attack.fit(shadows=shadows, public_base=_FakeBase(), pool=resources.for_box(boxes[v])["pool"])
            scores = attack.score(boxes[v], queries.images, identity_ids=queries.identity_ids)
            assert scores.ids.tolist() == people
            np.testing.assert_allclose(ours[v], scores.scores, rtol=1e-10, atol=1e-12)


def test_victims_separate_and_the_control_sits_at_chance():
    is_member, boxes, queries = _world(n_victims=8, n_people=60, gap=0.6)
    victims = [{"s": box_statistics(b, queries, ("compactness",))} for b in boxes]
    control_box = _victim_box(np.zeros(60), seed=99, gap=0.0)  # nobody is a member
    control = {"s": box_statistics(control_box, queries, ("compactness",))}
    cfg = config_from_dict({"attack": {"n_bootstrap": 200, "fprs": [0.1, 0.01]}})
    rows = {(r.teacher, r.attack): r for r in _rows(victims, control, is_member, queries, cfg, ("compactness",))}
    assert len(rows) == 6
    for attack in ("lira-online-compactness@k=3", "lira-offline-compactness@k=3", "compactness@k=3"):
        victim, ctrl = rows["victim", attack], rows["control", attack]
        assert victim.auc > 0.8, attack
        assert ctrl.auc_ci[0] <= 0.5 <= ctrl.auc_ci[1], (attack, ctrl.auc, ctrl.auc_ci)
        assert victim.n_member_decisions + victim.n_nonmember_decisions == 8 * 60
    assert rows["victim", "lira-online-compactness@k=3"].n_shadow_models == 7
    assert rows["victim", "compactness@k=3"].n_shadow_models == 0
    assert rows["victim", "compactness@k=3"].recipe == "regularised" and rows["control", "compactness@k=3"].recipe == "base"


def test_pool_statistic_without_pool_is_refused():
    _, boxes, queries = _world(n_victims=4)
    with pytest.raises(ConfigError, match="reference pool"):
        box_statistics(boxes[0], queries, ("consistency_gap",))


def test_loo_lira_refuses_too_few_victims():
    with pytest.raises(DataError, match=">= 3 victims"):
        loo_lira_scores(np.zeros((2, 5)), np.zeros((2, 5), bool))


def _row(seed=0, n_victims=10, n_people=300, shift=1.0):
    rng = np.random.default_rng(seed)
    member = assign_members(n_people, n_victims, seed=seed)
    scores = rng.normal(0, 1, member.shape) + shift * member
    d = pool_decisions(scores, member, np.arange(n_people) + 5)
    return summarise_decisions(d, attack="a@k=5", teacher="victim", student="s", k=5, n_victims=n_victims,
                               n_shadow_models=n_victims - 1, fprs=(0.1, 0.01, 0.001), n_bootstrap=200, seed=seed)


def test_summary_intervals_resolution_and_epsilon():
    row = _row()
    assert row.n_nonmember_decisions == 1500 and row.n_people == 300
    assert row.auc_ci[0] < row.auc < row.auc_ci[1] and 0.7 < row.auc < 0.82  # AUC of a unit shift: 0.76
    assert row.tpr_ci[0.01][0] <= row.tpr_at_fpr[0.01] <= row.tpr_ci[0.01][1]
    assert row.tpr_ci[0.001][0] <= row.tpr_at_fpr[0.001] <= row.tpr_ci[0.001][1]  # 1,500 non-member decisions
    small = _row(n_people=150)  # 750 non-member decisions cannot resolve 0.1 % FPR
    assert math.isnan(small.tpr_at_fpr[0.001]) and math.isnan(small.tpr_ci[0.001][0])
    eps = row.epsilon
    assert eps.fit_victims == tuple(range(5)) and eps.eval_victims == tuple(range(5, 10))
    assert eps.tp + eps.fn + eps.fp + eps.tn == 1500  # counted on the second half only
    assert 0.0 < eps.epsilon < 2.0
    null = _row(shift=0.0)
    assert null.epsilon.epsilon < 0.5 and null.auc_ci[0] < 0.5 < null.auc_ci[1]
    assert row.roc.fpr[0] == pytest.approx(1 / 1500, rel=1e-3) and row.roc.tpr[-1] == 1.0


def _record(rows) -> InclusionRecord:
    victim = VictimRecord(index=0, name="inclusion-victim-000", n_members=150, n_train_photos=900, train_seconds=1.5,
                          cached=False, student_accuracy={"lfw-identity": 0.98}, n_queries=1000, seconds=2.0)
    return InclusionRecord(
        seed=0, config={"seed": 0}, recipe="regularised", n_victims=10, target_nonmember_decisions=3000, member_fraction=0.5,
        statistics=("compactness",),
        pool=PoolSummary(people=tuple(f"p{i}" for i in range(305)), n_photos=(5,) * 305, n_train_photos=(2,) * 305,
                         eligible={5: 300}, excluded_roles=("student",), min_photos=5),
        victims=(victim,), rows=tuple(rows),
        cost=InclusionCost(seconds=10.0, train_seconds=None, n_trained_this_run=1, seconds_per_victim=1.0,
                           seconds_per_audited_identity=0.003, victim_queries_per_audited_identity=5.0,
                           executor="process", workers=2),
        timings_s={"data": 1.0})


def test_record_round_trip_and_report(tmp_path):
    record = _record([_row(), replace(_row(seed=1, shift=0.0), teacher="control"), _row(n_people=150)])
    paths = write_inclusion_report(record, tmp_path)
    back = read_inclusion(paths["results"])
    assert back.rows[0].decisions == record.rows[0].decisions and back.rows[0].auc == record.rows[0].auc
    assert back.rows[0].tpr_ci == record.rows[0].tpr_ci and back.pool.eligible == {5: 300}
    text = inclusion_markdown(back)
    assert "a@k=5" in text and "independent Bernoulli" in text and paths["roc"].stat().st_size > 1000
    assert text.count("| s | 5 |") == 2  # one line per victim row, the control beside it
    assert math.isnan(back.rows[2].tpr_ci[0.001][0]) and "n/a" in text


def test_victim_statistics_saved_atomically_and_reused_only_for_the_same_key(tmp_path):
    record = VictimRecord(index=2, name="inclusion-victim-002", n_members=3, n_train_photos=9, train_seconds=None,
                          cached=True, student_accuracy={}, n_queries=12, seconds=1.0)
    stats = VictimStatistics("abc", record, {"lfw-identity": {5: {"compactness": (0.25, float("nan"))}}})
    path = tmp_path / "inclusion-victims" / "v.json"
    _save(stats, path)
    assert [p.name for p in path.parent.iterdir()] == ["v.json"]  # no temporary file left
    back = _load(path, "abc")
    assert back.values["lfw-identity"][5]["compactness"][0] == 0.25 and back.record == record
    assert _load(path, "other") is None and _load(tmp_path / "missing.json", "abc") is None
    path.write_text("{not json")
    assert _load(path, "abc") is None  # a torn file is recomputed, not trusted


@pytest.mark.usefixtures("real_lfw")
def test_small_real_run_end_to_end(tmp_path, session_cache):
    """Four tiny victims on real LFW (few photos per person, short training): runs, resumes, reads back."""
    from faceleaks.evaluation.random_inclusion import run_random_inclusion

    cfg = config_from_dict({
        "data": {"max_images_per_identity": 6, "download": False},
        "split": {"n_utkface_train": 60, "n_utkface_test": 20, "n_reference_pool": 0, "n_student_identities": 10,
                  "n_shadow_student_identities": 10},
        "teacher": {"finetune_epochs": 2}, "student": {"epochs": 20},
        "attack": {"ks": [2], "n_bootstrap": 50}, "runtime": {"progress": False, "executor": "serial"}})
    with pytest.warns(UserWarning, match="non-member decisions"):
        record = run_random_inclusion(cfg, out_dir=tmp_path, cache_dir=session_cache, n_victims=4, max_pool_people=40)
    assert record.n_victims == 4 and len(record.victims) == 4 and record.pool.eligible[2] == 40
    assert not set(record.pool.people) & set(json.loads((tmp_path / "split.json").read_text())["roles"]["student"])
    assert {r.attack for r in record.rows} == {"lira-online-compactness@k=2", "lira-offline-compactness@k=2",
                                               "compactness@k=2"}
    assert all(0.0 <= r.auc <= 1.0 for r in record.rows)
    again = run_random_inclusion(cfg, out_dir=tmp_path, cache_dir=session_cache, n_victims=4, max_pool_people=40)
    assert all(v.resumed for v in again.victims) and again.cost.n_trained_this_run == 0
    assert [r.auc for r in again.rows] == [r.auc for r in record.rows]


def test_settings_the_protocol_cannot_run_are_refused_before_any_work():
    from faceleaks.cli.main import _parse_victims
    from faceleaks.evaluation.random_inclusion import _check

    with pytest.raises(ConfigError, match="dlib"):
        _check(config_from_dict({"teacher": {"kind": "scratch"}}), 8, ("compactness",))
    with pytest.raises(ConfigError, match=">= 4"):
        _check(config_from_dict({}), 3, ("compactness",))
    with pytest.raises(ConfigError, match="k >= 2"):
        _check(config_from_dict({"attack": {"ks": [1]}}), None, ("compactness",))
    assert _check(config_from_dict({}), None, ("compactness",)) == (2, 5, 10)
    assert _parse_victims("auto") is None and _parse_victims("16") == 16
    with pytest.raises(ConfigError, match="--victims"):
        _parse_victims("many")
