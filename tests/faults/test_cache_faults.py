"""Torn cache entries left by a killed run are skipped and rebuilt, never fatal.

Kinds: a torn cached checkpoint, a torn checkpoint sidecar, a torn temporary activation shard,
a torn activation shard (next to a good one, which is still used).
"""

from __future__ import annotations

import numpy as np
import torch

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
