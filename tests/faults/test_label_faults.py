"""UTKFace labels out of range are excluded at load time and counted per reason.

Kinds: age 999, age -3, age not an integer, a file name with no fields, gender 7, race 9,
a labels.csv that is not UTF-8, a labels.csv without the age column, no usable row at all;
and an old results.json without ``excluded_labels`` still reads.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceleaks.data.utkface import index_utkface, scan_utkface
from faceleaks.errors import DataError


def _photo(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / name)


def test_out_of_range_labels_in_file_names_are_excluded_and_counted(tmp_path):
    names = ["25_0_1_2017.jpg.chip.jpg", "999_0_1_2017.jpg.chip.jpg", "-3_1_0_2017.jpg.chip.jpg",
             "abc_1_0_2017.jpg.chip.jpg", "photo.jpg", "30_7_1_2017.jpg.chip.jpg", "40_1_9_2017.jpg.chip.jpg",
             "39_1_20170116174525125.jpg.chip.jpg", "116_1_4_2017.jpg.chip.jpg"]
    for n in names:
        _photo(tmp_path / "crop_part1", n)
    index = scan_utkface(tmp_path)
    assert sorted(r.age for r in index.records) == [25, 39, 116]
    assert {r.age: r.race for r in index.records}[39] == -1  # a missing race is unknown, kept
    assert index.excluded == {"age outside 0..116": 2, "age not an integer (malformed name or row)": 2,
                              "gender not 0 or 1": 1, "race not 0..4": 1}
    assert {p.rsplit("/", 1)[1] for p, _ in index.examples} == set(names) - {r.path.name for r in index.records}
    assert [r.age for r in index_utkface(tmp_path)] == [r.age for r in index.records]


def test_labels_csv_rows_out_of_range(tmp_path):
    (tmp_path / "labels.csv").write_text("path,age,gender,race\na.jpg,20,0,1\nb.jpg,999,0,1\nc.jpg,,1,1\n"
                                         "d.jpg,30,2,1\n")
    index = scan_utkface(tmp_path)
    assert [r.image_id for r in index.records] == ["a"]
    assert sum(index.excluded.values()) == 3


@pytest.mark.parametrize("content, message", [
    ("path,age,gender,race\nb\xe9.jpg,20,0,1\n".encode("latin-1"), "UnicodeDecodeError"),
    (b"path,gender,race\na.jpg,0,1\n", "KeyError"),
    (b"path,age,gender,race\na.jpg,999,0,1\n", "no usable labelled UTKFace photos"),
])
def test_unusable_labels_csv_is_one_line_data_error(tmp_path, content, message):
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        scan_utkface(tmp_path)
    assert "\n" not in str(info.value)


def test_results_without_excluded_labels_still_read(tmp_path):
    import json

    from faceleaks.evaluation.results import read_results, write_results
    from tests.evaluation.test_results import _record
    record = _record()
    path = tmp_path / "results.json"
    write_results(record, path)
    raw = json.loads(path.read_text())
    assert raw["data"]["excluded_labels"] == {}
    del raw["data"]["excluded_labels"]  # as written before the field existed
    path.write_text(json.dumps(raw))
    assert read_results(path) == record


def test_skipped_photos_and_excluded_labels_reach_the_results_record(tmp_path):
    from types import SimpleNamespace

    from faceleaks.data.faces import FaceSet
    from faceleaks.evaluation.experiment import _data_summary
    from faceleaks.evaluation.results import DataSummary
    faces = FaceSet(np.zeros((1, 4, 4, 3), np.uint8), np.array(["a_0001"]), np.array(["a"]),
                    [("/lfw/b/b_\\xff.jpg", "name not valid UTF-8: rename the file or folder"),
                     ("/lfw/c/c_0001.jpg", "degenerate size: 1x1 pixels (each side needs >= 16)")])
    utk = FaceSet(np.zeros((0, 4, 4, 3), np.uint8), np.array([], str), np.array([], str), [])
    split = SimpleNamespace(identities=lambda role: [], member_train={})
    data = SimpleNamespace(split=split, faces=faces, utk_faces=utk, lfw_root="/lfw", utk_root="/utk",
                           chipper=SimpleNamespace(spec="center"), utk_excluded={"age outside 0..116": 2})
    summary = _data_summary(data)
    assert isinstance(summary, DataSummary) and summary.n_unreadable == 2
    assert summary.unreadable[1] == ("/lfw/c/c_0001.jpg", "degenerate size: 1x1 pixels (each side needs >= 16)")
    assert summary.excluded_labels == {"age outside 0..116": 2}
