"""Every result and cache file goes through ``faceleaks.atomic``: figures, checkpoints, weights, shards.

Kinds: a figure write on a full disk (real 64 kB tmpfs), a figure write failing mid-way, a
checkpoint's weights write failing (simulated ENOSPC at fsync), a saved student's weights write
failing mid-way (simulated ENOSPC from inside ``torch.save``), and a source scan that no module writes a file
another way (``write_text``, ``savefig`` to a path, ``torch.save`` / ``np.save`` to a path).
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import faceleaks  # noqa: E402
from faceleaks import atomic  # noqa: E402
from faceleaks.atomic import atomic_save_figure  # noqa: E402
from faceleaks.errors import ArtifactError  # noqa: E402
from faceleaks.models import checkpoint  # noqa: E402
from faceleaks.models.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights  # noqa: E402


def _figure(side: int):
    """A figure whose PNG does not compress: ``side`` x ``side`` random pixels."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(np.random.default_rng(0).random((side, side, 3)))
    return fig


def test_figure_on_a_full_disk_keeps_the_previous_png(small_fs):
    path = small_fs / "roc.png"
    fig = _figure(3)
    atomic_save_figure(path, fig, dpi=20)
    plt.close(fig)
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")
    big = _figure(400)
    with pytest.raises(ArtifactError, match="roc.png: the disk is full") as info:
        atomic_save_figure(path, big, dpi=200)
    plt.close(big)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before and [p.name for p in small_fs.iterdir()] == ["roc.png"]


def test_figure_failing_mid_write_leaves_no_torn_png(tmp_path, monkeypatch):
    path = tmp_path / "auc_vs_k.png"
    fig = _figure(10)

    def torn(fh, **kwargs):
        fh.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fig, "savefig", torn)
    with pytest.raises(ArtifactError, match="disk is full"):
        atomic_save_figure(path, fig)
    plt.close(fig)
    assert list(tmp_path.iterdir()) == []


def _torn_torch_save(monkeypatch):
    """``torch.save`` into a file fails half-way with ENOSPC (simulated)."""
    real = torch.save

    def torn(obj, fh, *args, **kwargs):
        real(obj, fh, *args, **kwargs)
        fh.truncate(fh.tell() // 2)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint.torch, "save", torn)


def _full_at_fsync(monkeypatch):
    """Every atomic write fails at fsync with ENOSPC (simulated: the disk fills as data is flushed)."""
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", full)


def test_checkpoint_write_failing_keeps_the_cached_one(tmp_path, monkeypatch):
    path = tmp_path / "teacher-abc.pt"
    save_checkpoint(path, {"w": torch.ones(3)}, {"name": "old"})
    _full_at_fsync(monkeypatch)
    with pytest.raises(ArtifactError, match="teacher-abc.pt: the disk is full"):
        save_checkpoint(path, {"w": torch.zeros(300)}, {"name": "new"})
    state, meta = load_checkpoint(path)
    assert meta["name"] == "old" and torch.equal(state["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher-abc.json", "teacher-abc.pt"]


def test_saved_weights_failing_keep_the_earlier_artifact(tmp_path, monkeypatch):
    path = tmp_path / "student.pt"
    save_weights(path, {"w": torch.ones(2, 2)}, {"name": "old"})
    _torn_torch_save(monkeypatch)
    with pytest.raises(ArtifactError, match="student.pt: the disk is full"):
        save_weights(path, {"w": torch.zeros(50, 50)}, {"name": "new"})
    state, meta = load_weights(path)  # the sidecar's digest still matches the old weights
    assert meta["name"] == "old" and torch.equal(state["w"], torch.ones(2, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.json", "student.pt"]


# A write to a path that bypasses faceleaks.atomic. Writing into an in-memory buffer (``buf``) or
# the file handle faceleaks.atomic passes (``fh``) is fine.
_BYPASS = re.compile(r"\.write_text\(|\.write_bytes\(|\bopen\([^)]*[\"'][wax]b?\+?[\"']"
                     r"|(savefig|np\.savez?(_compressed)?)\((?!\s*(fh|buf)\b)|torch\.save\([^,]*,(?!\s*(fh|buf)\b)")
# the one exception: the executor's shared array lives in a TemporaryDirectory read only by its own workers
_ALLOWED = {("executor.py", "np.save(path, np.ascontiguousarray(shared))")}


def test_no_module_writes_a_file_outside_faceleaks_atomic():
    root = Path(faceleaks.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "atomic.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if _BYPASS.search(code) and (path.name, code.strip()) not in _ALLOWED:
                found.append(f"{path.relative_to(root)}:{n}: {code.strip()}")
    assert found == []
