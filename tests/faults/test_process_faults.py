"""Process faults: ``kill -9`` of a run leaves no worker process and no shared temporary folder.

Kinds: the parent killed while process-pool workers run tasks; a shared folder left by a dead run;
``faceleaks run`` killed in its membership stage (workers gone within seconds, no shared folder,
the finished stages on disk) and the rerun resuming from them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from faceleaks.executor import clean_stale_shared

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait(cond, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_kill_9_leaves_no_worker_and_no_shared_folder(tmp_path):
    marks, tmp = tmp_path / "marks", tmp_path / "tmp"
    marks.mkdir()
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "faults" / "kill_target.py"), str(marks)], env=env)
    try:
        assert _wait(lambda: len(list(marks.iterdir())) == 2, 120), "the workers never started their tasks"
        workers = [int(p.name.split("-")[1]) for p in marks.iterdir()]
        assert all(_alive(w) for w in workers)
        assert [p.name.split("-")[2] for p in tmp.iterdir()] == [str(proc.pid)]  # the shared folder, named by pid
        assert all(p.read_text() == "16.0" for p in marks.iterdir())  # the shared array reached each task
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the workers' tasks sleep 120 s: only the parent watch can end them this soon
    assert _wait(lambda: not any(_alive(w) for w in workers), 10), "workers outlived their killed parent"
    assert _wait(lambda: not list(tmp.iterdir()), 5), f"left behind: {list(tmp.iterdir())}"


def test_stale_shared_folder_of_a_dead_run_is_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"faceleaks-shared-{dead.stdout.strip()}-abc"
    live = tmp_path / f"faceleaks-shared-{os.getpid()}-def"
    other = tmp_path / "someone-elses"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "shared.npy").write_bytes(b"x")
    assert clean_stale_shared(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()


def test_kill_9_of_a_run_leaves_its_finished_stages_and_a_rerun_resumes(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from faceleaks.cli.main import app
    from faceleaks.evaluation.results import read_results
    from tests.faults.test_stage_faults import SAMPLE, _stages, _works

    marks, tmp, out = tmp_path / "marks", tmp_path / "tmp", tmp_path / "out"
    marks.mkdir()
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    target = ROOT / "tests" / "faults" / "kill_run_target.py"
    proc = subprocess.Popen([sys.executable, str(target), str(marks), str(out), str(tmp_path / "cache")], env=env)
    try:
        assert _wait(lambda: len(list(marks.iterdir())) == 2, 180), "the membership stage never started its workers"
        workers = [int(p.name.split("-")[1]) for p in marks.iterdir()]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _wait(lambda: not any(_alive(w) for w in workers), 10), "workers outlived the killed run"
    assert _wait(lambda: not list(tmp.iterdir()), 5), f"left behind: {list(tmp.iterdir())}"
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "running" and run["finished_stages"] == ["owner", "attributes"]
    assert read_results(out / "results.json").attributes == SAMPLE.attributes  # what finished is on disk

    torn = tmp_path / "cache" / "chips" / "ab" / ".abcd.npy.999999999.tmp"  # a killed writer's (no such pid)
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"\x93NUMPY half")
    calls = _stages(monkeypatch, _works)
    result = CliRunner().invoke(app, ["run", "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert calls == {"owner": 1, "attributes": 0, "membership": 1}  # resumed: the attribute stage reused
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert read_results(out / "results.json").membership == SAMPLE.membership
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")] and not torn.exists()
