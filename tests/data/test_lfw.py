import numpy as np
import pytest
from PIL import Image

from faceleaks.data import folders
from faceleaks.data.faces import CenterCrop, load_faces
from faceleaks.data.lfw import find_lfw_root, index_lfw
from faceleaks.errors import DataError


def _fake_lfw(root, people=3, per=2):
    folder = root / "lfw-deepfunneled"
    for p in range(people):
        d = folder / f"Person_{p}"
        d.mkdir(parents=True)
        for j in range(1, per + 1):
            arr = np.full((250, 250, 3), 40 * p + j, np.uint8)
            Image.fromarray(arr).save(d / f"Person_{p}_{j:04d}.jpg")
    return folder


def test_explicit_folder_is_found_and_indexed(tmp_path):
    folder = _fake_lfw(tmp_path)
    assert find_lfw_root(tmp_path, download=False) == folder
    recs = index_lfw(folder)
    assert [r.image_id for r in recs][:2] == ["Person_0_0001", "Person_0_0002"]
    assert {r.identity for r in recs} == {"Person_0", "Person_1", "Person_2"}


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("FACELEAKS_LFW_DIR", raising=False)
    monkeypatch.delenv("FACELEAKS_DATA_DIR", raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "skl"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(folders, "REPO_ROOT", tmp_path / "repo")
    with pytest.raises(DataError) as err:
        find_lfw_root(None, download=False)
    msg = str(err.value)
    assert "skl" in msg and "FACELEAKS_LFW_DIR" in msg and "FACELEAKS_DATA_DIR" in msg and "downloading is off" in msg
    assert len(msg.split("\n")) == len(set(msg.split("\n")))  # no folder listed twice


def test_named_but_missing_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELEAKS_LFW_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="FACELEAKS_LFW_DIR.*nowhere"):
        find_lfw_root(None, download=False)


def test_empty_explicit_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no LFW photos"):
        find_lfw_root(tmp_path / "empty", download=False)


def test_unreadable_image_is_skipped_counted_and_cached(tmp_path):
    folder = _fake_lfw(tmp_path)
    bad = folder / "Person_1" / "Person_1_0002.jpg"
    bad.write_bytes(b"not a jpeg at all")
    recs = index_lfw(folder)
    args = ([r.path for r in recs], [r.image_id for r in recs], [r.identity for r in recs], CenterCrop(0.5, 16))
    faces = load_faces(*args, cache_dir=tmp_path / "cache")
    assert len(faces) == 5 and "Person_1_0002" not in faces.image_ids
    assert len(faces.unreadable) == 1 and faces.unreadable[0][0].endswith("Person_1_0002.jpg")
    assert faces.images.shape == (5, 16, 16, 3) and faces.images.dtype == np.uint8
    again = load_faces(*args, cache_dir=tmp_path / "cache")  # from cache: same content, same report
    np.testing.assert_array_equal(again.images, faces.images)
    assert again.unreadable == faces.unreadable


def test_all_unreadable_is_an_error(tmp_path):
    p = tmp_path / "x.jpg"
    p.write_bytes(b"garbage")
    with pytest.raises(DataError, match="none of the 1 photos"):
        load_faces([p], ["x"], ["X"], CenterCrop(0.5, 16))


def test_overlapping_photo_sets_share_one_chip_per_photo(tmp_path):
    folder = _fake_lfw(tmp_path)
    recs = index_lfw(folder)
    chipper = CenterCrop(0.5, 16)

    def load(rs):
        return load_faces([r.path for r in rs], [r.image_id for r in rs], [r.identity for r in rs], chipper,
                          cache_dir=tmp_path / "cache")

    first, second = load(recs[:4]), load(recs[2:])
    chips = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(chips) == len(recs)  # the two overlapping sets stored each photo once
    fresh = load_faces([r.path for r in recs], [r.image_id for r in recs], [r.identity for r in recs], chipper)
    both = {**dict(zip(first.image_ids, first.images)), **dict(zip(second.image_ids, second.images))}
    for iid, img in zip(fresh.image_ids, fresh.images):
        np.testing.assert_array_equal(both[iid], img)
    chips[0].write_bytes(b"torn write")  # a damaged cache file is chipped again, not trusted
    again = load(recs)
    np.testing.assert_array_equal(again.images, fresh.images)
    assert np.load(chips[0]).shape == (16, 16, 3)
