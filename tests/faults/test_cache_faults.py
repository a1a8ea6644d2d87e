"""Torn cache entries left by a killed run are skipped and rebuilt, never fatal.

Kinds: a torn cached checkpoint, a torn checkpoint sidecar, a torn temporary activation shard,
a torn activation shard (next to a good one, which is still used); property-based (Hypothesis): any
truncation, overwrite or replacement of a cached checkpoint or a cached chip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from faceleaks.data.faces import CenterCrop, load_faces
from faceleaks.models.activations import ActivationStore
from faceleaks.models.checkpoint import load_checkpoint, save_checkpoint


def test_torn_checkpoint_or_sidecar_is_treated_as_missing(tmp_path, caplog):
    path = tmp_path / "teacher.pt"
    save_checkpoint(path, {"w": torch.ones(64, 64)}, {"name": "t"})
    state, meta = load_checkpoint(path)
    assert meta["name"] == "t" and torch.equal(state["w"], torch.ones(64, 64))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    assert load_checkpoint(path) is None and "training it again" in caplog.text
    path.write_bytes(whole)
    path.with_suffix(".json").write_text('{"version": ')
    assert load_checkpoint(path) is None
    save_checkpoint(path, {"w": torch.zeros(2)}, {"name": "t2"})  # rebuilt over the torn files
    assert load_checkpoint(path)[1]["name"] == "t2"


def test_torn_activation_shards_are_skipped(tmp_path, caplog):
    folder = tmp_path / "dlib-activations" / f"stop3-batch{ActivationStore.BATCH}"
    folder.mkdir(parents=True)
    key = np.frombuffer(b"k" * 20, np.uint8)
    np.savez(folder / "good.npz", keys=np.array([key]), acts=np.ones((1, 2, 2, 2), np.float32))
    good = (folder / "good.npz").read_bytes()
    (folder / "torn.tmp.npz").write_bytes(good[: len(good) // 2])  # a killed run's temporary
    (folder / "torn.npz").write_bytes(good[: len(good) // 2])
    store = ActivationStore(3, tmp_path)
    assert store._memo.missing([bytes(key)]) == []  # the good shard is used
    assert "skipping unreadable activation shard" in caplog.text and "torn.npz" in caplog.text
    assert "torn.tmp.npz" not in caplog.text  # temporaries are never read


def _damaged(whole: bytes, cut: int, junk: bytes, mode: str) -> bytes:
    if mode == "truncated":
        return whole[:cut]
    if mode == "overwritten":
        return whole[:cut] + junk + whole[cut + len(junk):]
    return junk


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000), junk=st.binary(min_size=1, max_size=64),
       mode=st.sampled_from(["truncated", "overwritten", "replaced"]))
def test_any_damage_to_a_cached_checkpoint_is_never_fatal(tmp_path_factory, cut, junk, mode):
    """Property: whatever the damage to a cached checkpoint, loading it gives the weights or None."""
    path = tmp_path_factory.mktemp("ckpt") / "teacher.pt"
    state = {"w": torch.arange(600, dtype=torch.float32).reshape(20, 30)}
    save_checkpoint(path, state, {"name": "t"})
    whole = path.read_bytes()
    path.write_bytes(_damaged(whole, cut % len(whole), junk, mode))
    loaded = load_checkpoint(path)
    assert loaded is None or torch.equal(loaded[0]["w"], state["w"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 2_000), junk=st.binary(min_size=1, max_size=64),
       mode=st.sampled_from(["truncated", "overwritten", "replaced"]))
def test_any_damage_to_a_cached_chip_is_rebuilt(tmp_path_factory, cut, junk, mode):
    """Property: whatever the damage to a cached chip, the photo loads as it did and the chip is whole again.

    (Damage that keeps a valid uint8 array of the right shape is a different chip: not detectable
    without a checksum, and then the assertion is skipped for that example.)
    """
    root = tmp_path_factory.mktemp("chip")
    photo = root / "a.jpg"
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[:, None, None], (1, 64, 3))).save(photo, quality=95)
    args = ([photo], ["a"], ["p"], CenterCrop(0.5, 16))
    want = load_faces(*args, cache_dir=root / "cache").images
    (chip,) = (root / "cache" / "chips").rglob("*.npy")
    whole = chip.read_bytes()
    chip.write_bytes(_damaged(whole, cut % len(whole), junk, mode))
    try:
        readable = np.load(chip).shape == want.shape[1:]
    except Exception:  # noqa: BLE001  (any unreadable file is what the property is about)
        readable = False
    got = load_faces(*args, cache_dir=root / "cache").images
    if not readable:
        np.testing.assert_array_equal(got, want)
        assert chip.read_bytes() == whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 5_000), junk=st.binary(min_size=1, max_size=64),
       mode=st.sampled_from(["truncated", "overwritten", "replaced"]))
def test_any_damage_to_an_activation_shard_is_never_fatal(tmp_path_factory, cut, junk, mode):
    """Property: a damaged shard is skipped or read whole (the zip's CRC catches altered bytes), never fatal."""
    root = tmp_path_factory.mktemp("acts")
    folder = root / "dlib-activations" / f"stop3-batch{ActivationStore.BATCH}"
    folder.mkdir(parents=True)
    keys = [np.frombuffer(b"a" * 20, np.uint8), np.frombuffer(b"b" * 20, np.uint8)]
    acts = np.arange(2 * 4 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 4)
    np.savez(folder / "shard.npz", keys=np.array(keys), acts=acts)
    whole = (folder / "shard.npz").read_bytes()
    (folder / "shard.npz").write_bytes(_damaged(whole, cut % len(whole), junk, mode))
    store = ActivationStore(3, root)
    if not store._memo.missing([bytes(k) for k in keys]):  # read: then exactly what was written
        dummy = np.zeros((2, 150, 150, 3), np.uint8)
        got = store._memo.get(dummy, lambda x: pytest.fail("recomputed"), keys=[bytes(k) for k in keys])
        np.testing.assert_array_equal(got, acts)
