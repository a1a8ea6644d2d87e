"""Atomic file writes: a temporary file in the same folder, flushed and fsynced, then ``os.replace``.

A reader (or a later run) sees either the old file or the whole new one, never a torn one: a full
disk, a crash or ``kill -9`` mid-write leaves at most a ``.<name>.<pid>.tmp`` file beside the
target, which the next write of that target does not read (and ``clean_temporaries`` removes).
Failures of the folder itself (a file where a folder should be, read-only, full) become one-line
``ArtifactError`` messages naming the path and the fix.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faceleaks.errors import ArtifactError

__all__ = ["pid_alive", "atomic_write_bytes", "atomic_write_text", "atomic_save_npy", "atomic_save_figure",
           "atomic_write_with", "clean_temporaries", "os_error_line", "ensure_dir"]

_HINTS = {
    errno.ENOSPC: "the disk is full: free space or choose another folder",
    errno.EDQUOT: "the disk quota is exceeded: free space or choose another folder",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.EACCES: "permission denied: choose a folder you can write to",
    errno.EPERM: "permission denied: choose a folder you can write to",
    errno.ENOTDIR: "a file is in the way where a folder is needed: move it or choose another folder",
    errno.EEXIST: "a file is in the way where a folder is needed: move it or choose another folder",
    errno.EISDIR: "a folder is in the way where a file is needed: move it or choose another path",
}


def os_error_line(err: OSError, path: str | os.PathLike) -> str:
    """One line for an ``OSError`` met writing ``path``: what failed and how to fix it."""
    hint = _HINTS.get(err.errno, err.strerror or type(err).__name__)
    return f"cannot write {os.fsdecode(path)}: {hint} ({err.strerror or err})"


def ensure_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and parents) if missing; ``ArtifactError`` if it cannot be a writable folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArtifactError(os_error_line(err, folder)) from err
    if not folder.is_dir():
        raise ArtifactError(os_error_line(OSError(errno.ENOTDIR, "Not a directory"), folder))
    return folder


def _atomic(path: str | os.PathLike, write: Callable[[io.BufferedWriter], Any]) -> None:
    path = Path(path)
    ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        _discard(tmp)
        raise ArtifactError(os_error_line(err, path)) from err
    except BaseException:
        _discard(tmp)
        raise
    try:  # make the rename itself durable (best effort: not every file system allows it)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:  # e.g. a read-only file system, where the temporary was never made
        pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring); ``ArtifactError`` on failure."""
    _atomic(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; ``ArtifactError`` on failure."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` ``array`` (no pickles) to ``path`` atomically; ``ArtifactError`` on failure."""
    _atomic(path, lambda fh: np.save(fh, np.asarray(array), allow_pickle=False))


def atomic_save_figure(path: str | os.PathLike, fig: Any, **savefig_kwargs: Any) -> None:
    """Save a matplotlib ``fig`` to ``path`` atomically (format from the suffix); ``ArtifactError`` on failure.

    ``savefig_kwargs`` go to ``Figure.savefig`` (``dpi``...). The figure is left open: the caller
    closes it (this module does not import matplotlib).
    """
    fmt = Path(path).suffix.lstrip(".") or "png"
    _atomic(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_kwargs))


def atomic_write_with(path: str | os.PathLike, write: Callable[[io.BufferedWriter], Any]) -> None:
    """Write ``path`` atomically with a library's own writer ``write(binary_file)`` (e.g. ``torch.save``).

    For formats that only a library can write (a ``state_dict``, an ``.npz``); ``ArtifactError`` on failure.
    """
    _atomic(path, write)


def clean_temporaries(folder: str | os.PathLike) -> int:
    """Remove temporaries (``.*.tmp``) left under ``folder`` by writes that died; returns how many.

    Only files whose writer process is gone are removed (the pid is part of the name).
    """
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and pid_alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
