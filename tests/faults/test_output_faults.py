"""Output folder and results: atomic writes, reuse only on matching settings, one-line failures.

Kinds: another run's settings in the folder, outputs without run.json, an unreadable run.json,
--force replacing them (user files kept), a resume, the output path a file, its parent a file,
a read-only file system (real tmpfs), a full disk (real tmpfs; and simulated ENOSPC), a crash
mid-write (no torn results.json, no temporary left), a stale temporary of a dead writer.
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from faceleaks import atomic
from faceleaks.atomic import atomic_write_text, clean_temporaries
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.outdir import claim_output, finish_run, mark_run, marked_run, run_settings, run_status

A = run_settings({"seed": 0, "output_dir": "x", "runtime": {"threads": 2}, "attack": {"ks": [1, 2]}})
B = run_settings({"seed": 1, "output_dir": "y", "runtime": {"threads": 1}, "attack": {"ks": [1, 2]}})


def _earlier_run(folder, settings=A):
    claim_output(folder, settings, command="run")
    (folder / "split.json").write_text('{"first": true}')
    (folder / "results.json").write_text('{"first": true}')
    mark_run(folder, "complete")


def test_new_then_resume_with_the_same_settings(tmp_path):
    assert claim_output(tmp_path / "out", A, command="run") == "new"
    assert run_status(tmp_path / "out") == "running"
    assert run_settings({"seed": 0, "output_dir": "elsewhere", "runtime": {"threads": 8},
                         "attack": {"ks": [1, 2]}}) == A  # folder and runtime do not identify a run
    assert claim_output(tmp_path / "out", A, command="attributes") == "resume"
    assert json.loads((tmp_path / "out" / "run.json").read_text())["commands"] == ["attributes", "run"]


def test_other_settings_are_refused_and_nothing_is_touched(tmp_path):
    _earlier_run(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ArtifactError, match=r"other settings \(seed: 0 there, 1 here\); rerun with --force") as info:
        claim_output(tmp_path, B, command="run")
    assert "\n" not in str(info.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_outputs_without_run_json_are_refused(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ArtifactError, match="outputs of an earlier run \\(results.json\\) without run.json"):
        claim_output(tmp_path, A, command="run")


def test_unreadable_run_json_is_refused(tmp_path):
    (tmp_path / "run.json").write_text("{torn")
    with pytest.raises(ArtifactError, match="run.json is unreadable .*--force"):
        claim_output(tmp_path, A, command="run")


def test_force_replaces_outputs_and_keeps_user_files(tmp_path):
    _earlier_run(tmp_path)
    (tmp_path / "students").mkdir()
    (tmp_path / "seed-3").mkdir()
    (tmp_path / "my-notes.txt").write_text("mine")
    assert claim_output(tmp_path, B, command="run", force=True) == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-notes.txt", "run.json"]
    assert json.loads((tmp_path / "run.json").read_text())["settings"] == B


@pytest.mark.parametrize("where", ["is-a-file", "under-a-file"])
def test_output_path_blocked_by_a_file(tmp_path, where):
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    target = blocker if where == "is-a-file" else blocker / "sub"
    with pytest.raises(ArtifactError, match="a file is in the way where a folder is needed") as info:
        claim_output(target, A, command="run")
    assert "\n" not in str(info.value)


def test_read_only_file_system(read_only_fs):
    folder, freeze = read_only_fs
    atomic_write_text(folder / "results.json", '{"kept": 1}')
    freeze()
    with pytest.raises(ArtifactError, match="the file system is read-only"):
        atomic_write_text(folder / "results.json", '{"new": 1}')
    with pytest.raises(ArtifactError, match="read-only"):
        claim_output(folder / "out", A, command="run")
    assert json.loads((folder / "results.json").read_text()) == {"kept": 1}


def test_full_disk_keeps_the_previous_results_whole(small_fs):
    """A real 64 kB tmpfs: the second, larger write fails with ENOSPC; the first file survives intact."""
    path = small_fs / "results.json"
    atomic_write_text(path, json.dumps({"run": 1}))
    with pytest.raises(ArtifactError, match="the disk is full: free space or choose another folder") as info:
        atomic_write_text(path, json.dumps({"run": 2, "pad": "x" * 200_000}))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert json.loads(path.read_text()) == {"run": 1}
    assert sorted(p.name for p in small_fs.iterdir()) == ["results.json"]  # no temporary left


def test_simulated_enospc_at_fsync(tmp_path, monkeypatch):
    """Simulated (monkeypatched fsync): where the disk fills only when data is flushed."""
    path = tmp_path / "split.json"
    atomic_write_text(path, "old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(ArtifactError, match="disk is full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["split.json"]


def test_crash_mid_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_text(path, "old")

    class Crash(BaseException):
        pass

    def write(fh):
        fh.write(b"half")
        raise Crash
    with pytest.raises(Crash):
        atomic._atomic(path, write)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_temporary_of_a_dead_writer_is_cleaned(tmp_path):
    dead = tmp_path / ".results.json.999999999.tmp"  # no such pid
    live = tmp_path / f".split.json.{os.getpid()}.tmp"
    dead.write_text("torn")
    live.write_text("being written")
    assert clean_temporaries(tmp_path) == 1
    assert not dead.exists() and live.exists()
    dead.write_text("torn")
    claim_output(tmp_path, A, command="run")  # a run claiming the folder cleans it too
    assert not dead.exists() and live.exists()


def test_marked_run_failed_complete_and_incomplete(tmp_path):
    for settings, body, status in [(A, lambda: None, "complete"),
                                   (B, lambda: finish_run(tmp_path / "o", ["attributes: DataError: too few"]),
                                    "incomplete")]:
        claim_output(tmp_path / "o", settings, command="run", force=True)
        (tmp_path / "o" / "results.json").write_text("{}")
        try:
            with marked_run(tmp_path / "o"):
                body()
        except Exception as err:
            assert str(err).startswith("run incomplete: attributes: DataError: too few; the finished stages")
        assert run_status(tmp_path / "o") == status and (tmp_path / "o" / "results.json").exists()
    claim_output(tmp_path / "o", A, command="run", force=True)
    with pytest.raises(KeyError):
        with marked_run(tmp_path / "o"):
            raise KeyError("x")
    assert run_status(tmp_path / "o") == "failed"
    assert claim_output(tmp_path / "o", A, command="run") == "resume"  # a failed run resumes
