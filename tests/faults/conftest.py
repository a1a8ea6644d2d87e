"""Fixtures of the fault corpus: a real, tiny file system (full disk, read-only) where the test may mount one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): "
                    "the simulated ENOSPC tests cover this case instead")


@pytest.fixture()
def small_fs(tmp_path):
    """A real 64 kB tmpfs (so writes hit ENOSPC); unmounted afterwards. Skipped if mount is not permitted."""
    target = tmp_path / "small"
    _mount(target, "size=64k")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture()
def read_only_fs(tmp_path):
    """A real tmpfs remounted read-only (EROFS even for root); yields (folder, remount) to put files first."""
    target = tmp_path / "ro"
    _mount(target, "size=256k")

    def freeze() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    yield target, freeze
    subprocess.run(["umount", "-l", str(target)], check=False)
