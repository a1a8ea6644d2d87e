"""Photos that cannot be used are skipped, counted and listed with path and reason; the rest load.

Kinds: a 1x1 JPEG, a 3x200 sliver, a PNG whose header claims 100,000 x 100,000 pixels
(decompression bomb), one over our own pixel limit, a text file named .jpg, an empty file, a
truncated JPEG, a folder named .jpg, a file name and a folder name that are not valid UTF-8, a
chipper that finds no face, every photo unusable, a stale chip (photo changed in place, same size,
the chip newer than it), copies of one photo (one chip; a hit reads each photo once and stats none),
a torn cached chip, a chip of the wrong shape, a cache path that is a file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceleaks.data.faces import CenterCrop, load_faces
from faceleaks.data.lfw import index_lfw
from faceleaks.errors import DataError

CHIP = CenterCrop(0.5, 16)


def _jpeg(path, value=100, size=(64, 64)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path, quality=95)
    return path


def _png_header(path, w, h):
    """A PNG whose header claims w x h pixels (a few dozen bytes on disk)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b""))
    return path


def _load(paths, **kw):
    ids = [f"p{i}" for i in range(len(paths))]
    return load_faces(paths, ids, ["x"] * len(paths), CHIP, **kw), ids


def _bad_photo(kind, tmp_path):
    p = tmp_path / f"{kind}.jpg"
    if kind == "1x1":
        return _jpeg(p, size=(1, 1)), "degenerate size: 1x1"
    if kind == "sliver":
        return _jpeg(p, size=(3, 200)), "degenerate size: 3x200"
    if kind == "bomb":
        return _png_header(p, 100_000, 100_000), "over the pixel limit"
    if kind == "over-limit":
        return _png_header(p, 7000, 7000), "over the pixel limit: 7000x7000"
    if kind == "text":
        p.write_text("not a photo")
        return p, "undecodable: UnidentifiedImageError"
    if kind == "empty":
        p.write_bytes(b"")
        return p, "undecodable"
    if kind == "truncated":
        data = _jpeg(tmp_path / "whole.jpg", size=(200, 200)).read_bytes()
        p.write_bytes(data[: len(data) // 3])
        return p, "undecodable: OSError"
    if kind == "folder":
        p.mkdir()
        return p, "undecodable"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["1x1", "sliver", "bomb", "over-limit", "text", "empty", "truncated", "folder"])
def test_unusable_photo_is_skipped_and_listed(tmp_path, kind):
    good = [_jpeg(tmp_path / "good" / f"g{i}.jpg", value=30 * i + 10) for i in range(2)]
    bad, reason = _bad_photo(kind, tmp_path)
    fs, ids = _load([good[0], bad, good[1]], cache_dir=tmp_path / "cache")
    assert fs.image_ids.tolist() == [ids[0], ids[2]]  # the good photos survive, in order
    assert len(fs.unreadable) == 1
    path, why = fs.unreadable[0]
    assert path == str(bad) and why.startswith(reason.split(":")[0]) and reason in why
    assert "\n" not in why


def test_names_not_valid_utf8_are_skipped_when_indexing_and_loading(tmp_path):
    root = tmp_path / "lfw"
    _jpeg(root / "Good_Person" / "Good_Person_0001.jpg")
    raw = os.fsencode(root)
    bad_file = os.fsdecode(raw + b"/Good_Person/Good_Person_\xff.jpg")
    bad_dir = os.fsdecode(raw + b"/Caf\xe9_X/Caf\xe9_X_0001.jpg")
    for p in (bad_file, bad_dir):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(p, format="JPEG")
    skipped = []
    records = index_lfw(root, skipped=skipped)
    assert [r.image_id for r in records] == ["Good_Person_0001"]
    assert sorted(p for p, _ in skipped) == sorted([str(root) + "/Caf\\xe9_X/Caf\\xe9_X_0001.jpg",
                                                    str(root) + "/Good_Person/Good_Person_\\xff.jpg"])
    assert all("not valid UTF-8" in r for _, r in skipped)
    fs, _ = _load([records[0].path, bad_file])  # given directly to load_faces: skipped too
    assert len(fs) == 1 and fs.unreadable[0][0].endswith("Good_Person_\\xff.jpg")
    fs, _ = _load([records[0].path], skipped=skipped)
    assert len(fs.unreadable) == 2  # what indexing skipped heads the list


def test_no_face_found_and_nothing_usable(tmp_path):
    class NoFace:
        size, spec = 16, "noface"

        def __call__(self, photo):
            raise DataError("no face in the photo")
    p = _jpeg(tmp_path / "a.jpg")
    with pytest.raises(DataError, match="none of the 2 photos could be used .*no face found"):
        load_faces([p, tmp_path / "missing.jpg"], ["a", "b"], ["x", "y"], NoFace())


def _cached_files(cache):
    return sorted((cache / "chips").rglob("*.npy"))


def test_stale_chip_of_a_changed_photo_is_remade(tmp_path):
    p = _jpeg(tmp_path / "a.jpg", value=40)
    cache = tmp_path / "cache"
    first = _load([p], cache_dir=cache)[0].images[0]
    size = p.stat().st_size
    _jpeg(p, value=200)  # same size on disk (a flat JPEG), new content
    assert p.stat().st_size == size
    (chip,) = _cached_files(cache)
    os.utime(chip, ns=(p.stat().st_mtime_ns + 10**9,) * 2)  # the old chip even looks newer than the photo
    second = _load([p], cache_dir=cache)[0].images[0]
    assert abs(int(second.mean()) - int(first.mean())) > 100
    assert len(_cached_files(cache)) == 2  # keyed by content: the new bytes have their own chip


@pytest.mark.parametrize("damage", ["torn", "wrong-shape", "not-npy"])
def test_damaged_cached_chip_is_rebuilt_not_fatal(tmp_path, damage, caplog):
    p = _jpeg(tmp_path / "a.jpg", value=90)
    cache = tmp_path / "cache"
    want = _load([p], cache_dir=cache)[0].images
    (chip,) = _cached_files(cache)
    if damage == "torn":
        chip.write_bytes(chip.read_bytes()[:60])
    elif damage == "wrong-shape":
        np.save(chip, np.zeros((3, 3, 3), np.uint8))
    else:
        chip.write_bytes(b"garbage")
    os.utime(chip, ns=(p.stat().st_mtime_ns + 10**9,) * 2)
    np.testing.assert_array_equal(_load([p], cache_dir=cache)[0].images, want)
    np.testing.assert_array_equal(np.load(chip), want[0])  # rewritten whole
    assert f"rebuilding {'unreadable ' if damage != 'wrong-shape' else ''}cached chip {chip}" in caplog.text


def test_copies_of_a_photo_share_one_chip_and_a_hit_reads_each_photo_once(tmp_path, monkeypatch):
    a = _jpeg(tmp_path / "A" / "A_0001.jpg", value=70)
    b = tmp_path / "B" / "B_0001.jpg"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    c = _jpeg(tmp_path / "C" / "C_0001.jpg", value=150)
    cache = tmp_path / "cache"
    first = load_faces([a, b, c], ["a", "b", "c"], ["A", "B", "C"], CHIP, cache_dir=cache).images
    assert len(_cached_files(cache)) == 2
    calls = []
    real_read, real_stat = Path.read_bytes, Path.stat
    monkeypatch.setattr(Path, "read_bytes", lambda self: calls.append(("read", self.name)) or real_read(self))
    monkeypatch.setattr(Path, "stat", lambda self, **kw: calls.append(("stat", self.name)) or real_stat(self, **kw))
    monkeypatch.setattr("faceleaks.data.faces._chip", lambda *a: pytest.fail("a cache hit chipped a photo"))
    again = load_faces([a, b, c], ["a", "b", "c"], ["A", "B", "C"], CHIP, cache_dir=cache).images
    np.testing.assert_array_equal(again, first)
    photo_calls = [x for x in calls if x[1].endswith(".jpg")]
    assert sorted(photo_calls) == [("read", "A_0001.jpg"), ("read", "B_0001.jpg"), ("read", "C_0001.jpg")]


def test_cache_path_that_is_a_file_only_skips_caching(tmp_path, caplog):
    photos = [_jpeg(tmp_path / f"{n}.jpg", value=20 * n) for n in range(1, 5)]
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    fs = load_faces(photos, [p.stem for p in photos], ["x"] * 4, CHIP, cache_dir=blocker)
    assert len(fs) == 4 and not fs.unreadable
    assert "face chip not cached" in caplog.text and "a file is in the way" in caplog.text
    lines = [r.getMessage() for r in caplog.records if "not cached" in r.getMessage()]
    assert len(lines) == 2 and lines[1].startswith("4 face chips were not cached (first: cannot write")


def test_interrupted_chip_write_leaves_no_chip(tmp_path, monkeypatch):
    p = _jpeg(tmp_path / "a.jpg")
    cache = tmp_path / "cache"

    def boom(fh, arr, allow_pickle=False):
        fh.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("faceleaks.atomic.np.save", boom)
    fs, _ = _load([p], cache_dir=cache)
    assert len(fs) == 1
    assert not [f for f in (cache / "chips").rglob("*") if f.is_file()]  # no torn chip, no temporary


def test_chip_cache_on_a_real_full_disk_caches_what_fits_and_loads_everything(small_fs, tmp_path, caplog):
    """A real 64 kB tmpfs as the cache: some chips fit, the rest are logged once; no torn chip is left."""
    photos = [_jpeg(tmp_path / "photos" / f"p{n}.jpg", value=3 * n, size=(48 + n, 64)) for n in range(40)]
    args = (photos, [p.stem for p in photos], ["x"] * 40, CHIP)
    fs = load_faces(*args, cache_dir=small_fs)
    assert len(fs) == 40 and not fs.unreadable
    cached = _cached_files(small_fs)
    assert 0 < len(cached) < 40 and "the disk is full" in caplog.text
    assert not [p for p in small_fs.rglob("*") if p.name.endswith(".tmp")]
    assert all(np.load(c).shape == (16, 16, 3) for c in cached)  # whole chips only
    np.testing.assert_array_equal(load_faces(*args, cache_dir=small_fs).images, fs.images)
