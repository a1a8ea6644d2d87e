"""Label mapping, exclusion counts, budget sampling and target/auxiliary pools (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from faceleaks.data import attributes, budgets, labels
from faceleaks.data.budgets import choose_lfw_targets, sample_budget, top_up, utk_pools
from faceleaks.data.labels import (GENDERS, RACES, LfwAttributes, class_counts, find_lfw_attributes, label_column,
                                   load_lfw_attributes, map_lfw_gender, map_lfw_race)
from faceleaks.errors import ConfigError, DataError

CSV = """path,person,image_num,n_images_person,gender_afifi,race_uscsail,gender_person_majority
lfw-deepfunneled/A_A/A_A_0001.jpg,A_A,1,2,M,caucasian,M
lfw-deepfunneled/A_A/A_A_0002.jpg,A_A,2,2,ambiguous,caucasian,M
lfw-deepfunneled/B_B/B_B_0001.jpg,B_B,1,1,F,"african,caucasian",F
lfw-deepfunneled/C_C/C_C_0001.jpg,C_C,1,1,,"latino,other",
lfw-deepfunneled/D_D/D_D_0001.jpg,D_D,1,3,F,eastasian,F
lfw-deepfunneled/D_D/D_D_0002.jpg,D_D,2,3,F,eastasian,F
lfw-deepfunneled/D_D/D_D_0003.jpg,D_D,3,3,F,eastasian,F
"""


@pytest.mark.parametrize("value, expected", [
    ("M", (0, "ok")), ("F", (1, "ok")), ("ambiguous", (-1, "ambiguous")), ("", (-1, "unknown")),
    (None, (-1, "unknown")), ("X", (-1, "unrecognised:X")),
])
def test_gender_mapping(value, expected):
    assert map_lfw_gender(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("caucasian", (0, "ok")), ("african", (1, "ok")), ("eastasian", (2, "ok")), ("asianindian", (3, "ok")),
    ("latino", (4, "ok")), ("nativeamerican", (4, "ok")), ("pacificislander", (4, "ok")), ("other", (4, "ok")),
    ("latino,other", (4, "ok")),                 # all parts map to Others: kept
    ("african,caucasian", (-1, "multi-valued")),  # a mix of classes: excluded
    ("other,african,caucasian", (-1, "multi-valued")),
    ("", (-1, "unknown")), ("martian", (-1, "unrecognised:martian")),
])
def test_race_mapping_and_multi_valued_rule(value, expected):
    assert map_lfw_race(value) == expected


def test_label_column_counts_exclusions():
    col = label_column(["a", "b", "c", "d"], [map_lfw_gender(v) for v in ("M", "", "ambiguous", "F")], GENDERS)
    assert col.labels.tolist() == [0, -1, -1, 1]
    assert col.excluded == {"ambiguous": 1, "unknown": 1}
    kept = col.keep_known()
    assert kept.ids.tolist() == ["a", "d"] and kept.excluded == col.excluded
    assert class_counts(col.labels, 2) == [1, 1]
    with pytest.raises(DataError):
        label_column(["a"], [(7, "ok")], GENDERS)


@pytest.fixture
def lfw_csv(tmp_path):
    path = tmp_path / "attributes" / "lfw_labels.csv"
    path.parent.mkdir()
    path.write_text(CSV)
    return path


def test_load_lfw_attributes(lfw_csv, tmp_path, monkeypatch):
    monkeypatch.delenv("FACELEAKS_LFW_ATTRIBUTES", raising=False)
    assert find_lfw_attributes(tmp_path / "lfw-deepfunneled") == lfw_csv
    lfw = load_lfw_attributes(lfw_csv)
    g = lfw.gender(["A_A_0001", "A_A_0002", "C_C_0001", "nobody_0001"])
    assert g.labels.tolist() == [0, -1, -1, -1]
    assert g.excluded == {"ambiguous": 1, "unknown": 1, "not-in-csv": 1}
    r = lfw.race(["A_A_0002", "B_B_0001", "C_C_0001", "D_D_0001"])
    assert r.labels.tolist() == [0, -1, 4, 2] and r.excluded == {"multi-valued": 1}
    assert r.classes == RACES
    ident = lfw.identity_gender(["A_A", "C_C", "D_D"])
    assert ident.labels.tolist() == [0, -1, 1]


def test_missing_csv_and_columns(tmp_path, monkeypatch):
    monkeypatch.delenv("FACELEAKS_LFW_ATTRIBUTES", raising=False)
    with pytest.raises(DataError, match="lfw_labels.csv"):
        find_lfw_attributes(tmp_path / "lfw-deepfunneled")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,person\nx,y\n")
    with pytest.raises(DataError, match="lacks column"):
        load_lfw_attributes(bad)


def test_budget_is_per_class_seeded_and_nested():
    labels = np.array([0] * 30 + [1] * 12 + [2] * 7 + [-1] * 9)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    idx5 = sample_budget(labels, 5, 3, seed=1)
    assert np.bincount(labels[idx5], minlength=3).tolist() == [5, 5, 5]
    assert (labels[idx5] >= 0).all() and len(set(idx5.tolist())) == 15
    assert np.array_equal(idx5, sample_budget(labels, 5, 3, seed=1))
    assert not np.array_equal(idx5, sample_budget(labels, 5, 3, seed=2))
    assert set(sample_budget(labels, 2, 3, seed=1)) <= set(idx5)  # nested budgets
    everything = sample_budget(labels, "all", 3, seed=1)
    assert sorted(everything.tolist()) == np.flatnonzero(labels >= 0).tolist()


def test_budget_larger_than_a_class_raises():
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(DataError, match="only 3 exist"):
        sample_budget(labels, 5, 2, seed=0, names=("male", "female"))
    with pytest.raises(DataError, match="'c2'"):
        sample_budget(labels, "all", 3, seed=0, names=("c0", "c1", "c2"))  # a class with no example at all
    for bad in (0, -1, "most", 2.5):
        with pytest.raises(ConfigError):
            sample_budget(labels, bad, 2, seed=0)


def test_utk_pools_are_disjoint_from_each_other_and_the_split():
    ids = [f"u{i:03d}" for i in range(100)]
    used = ids[:40]
    aux, targets, rest = utk_pools(ids, used, n_aux=25, n_targets=20, seed=3)
    assert len(aux) == 25 and len(targets) == 20 and len(rest) == 15
    assert not (set(aux) & set(targets)) and not (set(aux + targets + rest) & set(used))
    assert utk_pools(ids, used, n_aux=25, n_targets=20, seed=3)[0] == aux
    with pytest.raises(DataError, match="only 60 UTKFace photos"):
        utk_pools(ids, used, n_aux=50, n_targets=20, seed=3)


def test_top_up_adds_rare_classes_only_from_rest():
    label = {f"p{i}": 0 for i in range(10)} | {f"r{i}": i % 2 for i in range(10)}
    pool, rest = top_up([f"p{i}" for i in range(10)], [f"r{i}" for i in range(10)], label.get, 2, 3)
    assert pool[:10] == [f"p{i}" for i in range(10)] and [label[i] for i in pool[10:]] == [1, 1, 1]
    assert not set(pool) & set(rest) and len(pool) + len(rest) == 20
    with pytest.raises(DataError, match="class 'female'"):
        top_up([f"p{i}" for i in range(10)], [f"r{i}" for i in range(10)], label.get, 2, 6, names=("male", "female"))


def test_lfw_targets_exclude_split_people_cap_photos_and_take_rare_races_first():
    person_of = {f"{p}_{j:04d}": p for p, n in (("W1", 5), ("W2", 5), ("B1", 4), ("U1", 6), ("S1", 9)) for j in range(n)}
    race = {"W1": (0, "ok"), "W2": (0, "ok"), "B1": (1, "ok"), "U1": (-1, "unknown"), "S1": (1, "ok")}
    lfw = LfwAttributes({}, race, {}, person_of, {})
    ids = choose_lfw_targets(lfw, exclude={"S1"}, n=5, max_per_person=2, seed=0)
    people = [person_of[i] for i in ids]
    assert "S1" not in people and max(people.count(p) for p in set(people)) <= 2
    assert people[:2] == ["B1", "B1"] and len(ids) == 5 and "U1" not in people
    assert set(people) == {"B1", "W1", "W2"}  # round-robin: the rare group first, then the next group
    assert ids == choose_lfw_targets(lfw, exclude={"S1"}, n=5, max_per_person=2, seed=0)


def test_attributes_module_re_exports_labels_and_budgets():
    assert sorted(attributes.__all__) == sorted(labels.__all__ + budgets.__all__)
    for name in attributes.__all__:
        source = labels if name in labels.__all__ else budgets
        assert getattr(attributes, name) is getattr(source, name), name
