"""The attribute experiment end to end on a small real subset of LFW and UTKFace.

A spy replaces every attack to check what it is given: auxiliary faces and their labels only,
never a target's label or a target photo with a label.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from faceleaks.attacks.attribute import classifier as C
from faceleaks.config import config_from_dict
from faceleaks.data.utkface import find_utkface_root
from faceleaks.errors import DataError
from faceleaks.evaluation import attributes as A
from faceleaks.evaluation.attribute_results import AttributeConfig
from faceleaks.evaluation.dataset import prepare_data
from faceleaks.evaluation.owner import build_teacher
from faceleaks.progress import set_enabled
from faceleaks.serving.protocol import QueryResult

TINY = {
    "split": {"n_members": 6, "n_nonmembers": 6, "n_reference": 6, "n_student_identities": 6,
              "n_shadow_student_identities": 6, "n_utkface_train": 120, "n_utkface_test": 60},
    "data": {"max_images_per_identity": 12, "download": False},
    "teacher": {"epochs": 2, "image_size": 32},
    "student": {"epochs": 30},
    "runtime": {"threads": 1, "progress": False},
    "attack": {"ks": (1, 2, 5)},
}
SETTINGS = AttributeConfig(budgets=(1, 5, "all"), ks=(1, 2, 5), n_bootstrap=50, n_lfw_targets=150,
                           max_lfw_photos_per_person=2, n_utk_aux=120, n_utk_targets=100)
CALLS: list[tuple] = []


def _hashes(images) -> list[bytes]:
    return [hashlib.sha1(np.ascontiguousarray(im).tobytes()).digest() for im in images]


class _Spy:
    """Records what an attack receives; behaves exactly like the attack it extends."""

    def fit(self, reference, *, unlabelled=None):
        assert unlabelled is None or isinstance(unlabelled, QueryResult)  # outputs only: no labels can ride along
        CALLS.append(("fit", _hashes(reference.images), np.asarray(reference.labels).copy()))
        self._in_fit = True
        try:
            return super().fit(reference, unlabelled=unlabelled)
        finally:
            self._in_fit = False

    def fit_features(self, features, labels, *, n_classes, unlabelled=None):
        if not getattr(self, "_in_fit", False):  # white-box reference: fitted on features directly
            CALLS.append(("fit_features", None, np.asarray(labels).copy()))
        return super().fit_features(features, labels, n_classes=n_classes, unlabelled=unlabelled)

    def infer_outputs(self, result, *, ids):
        CALLS.append(("infer", list(np.asarray(ids).astype(str)), None))
        return super().infer_outputs(result, ids=ids)

    def infer(self, box, images, *, ids):
        CALLS.append(("infer", list(np.asarray(ids).astype(str)), None))
        return super().infer(box, images, ids=ids)


class SpyLogistic(_Spy, C.LogisticAttributeAttack):
    pass


class SpyKnn(_Spy, C.KnnAttributeAttack):
    pass


class SpyCluster(_Spy, C.ClusterAttributeAttack):
    pass


class SpyPrior(_Spy, C.PriorOnlyAttributeAttack):
    pass


@pytest.fixture(scope="module")
def real_data(real_lfw):
    try:
        find_utkface_root(None)
    except DataError as err:
        pytest.skip(f"real UTKFace not found (set FACELEAKS_UTKFACE_DIR or put it in ../shared/data/utkface): {err}")


@pytest.fixture(scope="module")
def run(real_data, session_cache, tmp_path_factory):
    set_enabled(False)
    mp = pytest.MonkeyPatch()
    for name, cls in (("logreg", SpyLogistic), ("knn", SpyKnn), ("cluster", SpyCluster), ("prior-only", SpyPrior)):
        mp.setitem(C.ATTRIBUTE_ATTACKS, name, cls)
    captured = {}
    original = A.gather_attribute_sets

    def gather(*args, **kwargs):
        captured["sets"] = original(*args, **kwargs)
        captured["data"] = args[0]
        return captured["sets"]

    mp.setattr(A, "gather_attribute_sets", gather)
    CALLS.clear()
    cfg = config_from_dict(TINY)
    try:
        record = A.run_attribute_experiment(cfg, out_dir=tmp_path_factory.mktemp("attr"), cache_dir=session_cache,
                                            settings=SETTINGS)
    finally:
        mp.undo()
    return record, captured["sets"], captured["data"], list(CALLS), cfg


def test_record_has_every_attribute_student_budget_and_baseline(run):
    record, sets, _, _, _ = run
    assert not record.warnings, record.warnings
    keys = {(r.attribute, r.variant, r.student, r.attack, r.budget) for r in record.scores}
    assert len(keys) == len(record.scores) == 2 * 3 * 3 * 5  # students x budgets x attacks x (attribute, variant)
    assert {r.role for r in record.baselines} == {"prior-only", "white-box"}
    assert {r.k for r in record.identity} == {1, 2, 5} and {r.level for r in record.identity} == {"identity"}
    for r in record.rows():
        assert 0.0 <= r.balanced_accuracy <= 1.0 and 0.0 <= r.macro_f1 <= 1.0
        assert r.balanced_accuracy_ci[0] - 1e-9 <= r.balanced_accuracy <= r.balanced_accuracy_ci[1] + 1e-9
        if r.level == "instance":  # (the tiny identity set may hold one gender only: AUC undefined there)
            assert (r.attribute == "gender") != np.isnan(r.auc)
    for r in record.baselines:
        if r.role == "prior-only":  # a constant guess: recall 1 on one class, 0 on the others present
            n = {"gender": 2, "race": 5, "age-group": 4}[r.attribute]
            assert any(r.balanced_accuracy == pytest.approx(v) for v in [0.0, *(1 / m for m in range(1, n + 1))])
            assert r.n_queries == 0
    assert set(record.queries) == {"lfw-identity/posterior", "utk-age/posterior"}
    counts = {(s.attribute, s.dataset): s for s in record.labels}
    assert sum(counts[("gender", "lfw-targets")].counts) + sum(counts[("gender", "lfw-targets")].excluded.values()) == 150
    assert set(counts[("race", "lfw-targets")].excluded) <= {"unknown", "multi-valued", "not-in-csv"}
    json.dumps(record.to_dict(), allow_nan=False)
    assert {"attribute-data", "attribute-attacks", "attribute-baselines", "teacher"} <= set(record.timings_s)


def test_pools_are_disjoint_and_outside_the_students_photos(run):
    _, sets, data, _, _ = run
    aux = set(sets.aux.faces.image_ids.tolist())
    utk_targets = set(sets.targets["same-distribution"].faces.image_ids.tolist())
    used = {i for ids in data.split.utk.values() for i in ids}
    assert not aux & utk_targets and not (aux | utk_targets) & used
    lfw_people = set(sets.targets["cross-dataset"].faces.identities.tolist())
    assert not lfw_people & {p for ids in data.split.roles.values() for p in ids}


def test_attacks_only_ever_get_auxiliary_labels(run):
    _, sets, _, calls, _ = run
    aux_hash = {h: i for i, h in enumerate(_hashes(sets.aux.faces.images))}
    target_hash = {h for g in [*sets.targets.values(), sets.identities] for h in _hashes(g.faces.images)}
    target_ids = {i for g in [*sets.targets.values(), sets.identities] for i in g.faces.image_ids.tolist()}
    aux_labels = {a: col.labels for a, col in sets.aux.labels.items()}
    fits = [c for c in calls if c[0] == "fit"]
    assert fits and any(c[0] == "fit_features" for c in calls) and any(c[0] == "infer" for c in calls)
    for _, hashes, labels in fits:
        assert not set(hashes) & target_hash
        rows = [aux_hash[h] for h in hashes]  # KeyError: a fit image that is not an auxiliary face
        assert any(np.array_equal(labels, aux_labels[a][rows]) for a in aux_labels)
    for kind, _, labels in (c for c in calls if c[0] == "fit_features"):
        assert any(np.array_equal(np.bincount(labels), np.bincount(col[col >= 0])) for col in aux_labels.values())
    for _, ids, _ in (c for c in calls if c[0] == "infer"):
        assert set(ids) <= target_ids


def test_a_budget_larger_than_the_pool_raises(run, session_cache, tmp_path):
    _, _, _, _, cfg = run
    data = prepare_data(cfg, out_dir=tmp_path, cache_dir=session_cache)
    teacher = build_teacher(data, cfg, data.split.member_train, name="teacher", cache_dir=session_cache)
    too_many = AttributeConfig(budgets=(5000,), identity_budget=5000, n_bootstrap=10, n_lfw_targets=20,
                               n_utk_aux=50, n_utk_targets=20)
    with pytest.raises(DataError, match="budget n=5000"):
        A.run_attribute_attacks(data, {}, teacher, cfg, cache_dir=session_cache, seed=0, settings=too_many)
