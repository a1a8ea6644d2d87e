"""A run's stages are written as they finish; a later stage's failure keeps them; a rerun resumes.

Kinds: the membership stage failing (injected), the report stage failing (simulated ENOSPC while
the plots are written), a run killed after its first stages (``run.json`` left ``running``), a
torn ``results.json`` of an earlier unfinished run, a seed of a sweep failing, and ``--out`` on a
real full file system (a 64 kB tmpfs: the plots do not fit; the rerun is refused while it is full
and resumes once it is remounted larger), and each stage in turn failing with a bug (not a
``FaceLeaksError``): exactly the other stages are kept and the rerun runs only what is missing. The real ``run_experiment``, CLI, ``run.json``
and ``results.json`` handling run; only the model-building stages are replaced by fakes, so no
model is trained.
"""

from __future__ import annotations

import errno
import json
import subprocess
from dataclasses import replace
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.errors import DataError
from faceleaks.evaluation import experiment
from faceleaks.evaluation.results import read_results
from faceleaks.report import render
from tests.evaluation.test_results import _record

SAMPLE = _record(warnings=())


def _invoke(tmp_path):
    return CliRunner().invoke(app, ["run", "--quick", "--out", str(tmp_path / "out"), "--cache-dir",
                                    str(tmp_path / "cache"), "--no-progress"])


def _one_line(result, code):
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return lines[-1]


def _stages(monkeypatch, membership):
    """Fake owner, attribute and membership stages; returns the calls made to each."""
    calls = {"owner": 0, "attributes": 0, "membership": 0}

    def build_owner(cfg, *, out_dir, cache_dir, timer):
        calls["owner"] += 1
        (out_dir / "split.json").write_text("{}")
        return SimpleNamespace(data=None, students={}, teacher=None)

    def attributes(owner, cfg, cache_dir, timer, failed):
        calls["attributes"] += 1
        return SAMPLE.attributes

    def run_membership(owner, cfg, cache_dir, out_dir, timer):
        calls["membership"] += 1
        return membership()

    def record(cfg, owner, reports, queries, attributes, cost, timer, caught):
        return replace(SAMPLE, seed=cfg.seed, membership=tuple(reports), queries=queries, attributes=attributes, cost=cost,
                       warnings=tuple(caught))
    monkeypatch.setattr(experiment, "build_owner", build_owner)
    monkeypatch.setattr(experiment, "_attributes", attributes)
    monkeypatch.setattr(experiment, "_membership", run_membership)
    monkeypatch.setattr(experiment, "_record", record)
    monkeypatch.setattr(experiment, "_check_attacks", lambda cfg: None)
    return calls


def _fails():
    raise DataError("too few reference identities for the shadow students: 3, need 8")


def _works():
    return list(SAMPLE.membership), dict(SAMPLE.queries), SAMPLE.cost, []


def _run_json(tmp_path):
    return json.loads((tmp_path / "out" / "run.json").read_text())


def test_membership_failure_keeps_finished_stages_and_a_rerun_resumes(tmp_path, monkeypatch):
    calls = _stages(monkeypatch, _fails)
    line = _one_line(_invoke(tmp_path), 1)
    reason = "membership: DataError: too few reference identities for the shadow students: 3, need 8"
    assert line == f"FaceLeaksError: run incomplete: {reason}; the finished stages were written to {tmp_path / 'out'}"
    run = _run_json(tmp_path)
    assert run["status"] == "incomplete" and run["failed_stages"] == [reason]
    assert run["finished_stages"] == ["owner", "attributes", "report"]
    kept = read_results(tmp_path / "out" / "results.json")
    assert kept.attributes == SAMPLE.attributes and kept.membership == ()  # what finished, and no more
    assert kept.teacher == SAMPLE.teacher and any(reason in w for w in kept.warnings)
    assert (tmp_path / "out" / "summary.md").exists() and not (tmp_path / "out" / "roc.png").exists()

    monkeypatch.setattr(experiment, "_membership", lambda *a: (calls.__setitem__("membership", 9), _works())[1])
    assert _invoke(tmp_path).exit_code == 0
    assert calls["attributes"] == 1 and calls["membership"] == 9  # attributes reused, membership ran
    assert _run_json(tmp_path)["status"] == "complete" and _run_json(tmp_path)["failed_stages"] == []
    done = read_results(tmp_path / "out" / "results.json")
    assert done.membership == SAMPLE.membership and done.attributes == SAMPLE.attributes and done.warnings == ()
    assert (tmp_path / "out" / "roc.png").stat().st_size > 1000


def test_report_failure_keeps_results_and_the_rerun_only_writes_the_report(tmp_path, monkeypatch):
    calls = _stages(monkeypatch, _works)

    def full(fig, path, dpi):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(render, "_save", full)
    line = _one_line(_invoke(tmp_path), 1)
    assert line.startswith("FaceLeaksError: run incomplete: report: OSError: [Errno 28] No space left on device")
    assert _run_json(tmp_path)["finished_stages"] == ["owner", "attributes", "membership"]
    assert read_results(tmp_path / "out" / "results.json").membership == SAMPLE.membership
    monkeypatch.undo()
    calls = _stages(monkeypatch, _fails)  # would fail if membership ran again
    assert _invoke(tmp_path).exit_code == 0
    assert calls == {"owner": 0, "attributes": 0, "membership": 0}
    assert (tmp_path / "out" / "roc.png").exists() and _run_json(tmp_path)["status"] == "complete"


def test_killed_run_resumes_from_its_finished_stages(tmp_path, monkeypatch):
    calls = _stages(monkeypatch, _works)
    assert _invoke(tmp_path).exit_code == 0
    run = _run_json(tmp_path)  # as if killed after the attribute stage: still "running"
    (tmp_path / "out" / "run.json").write_text(json.dumps({**run, "status": "running",
                                                           "finished_stages": ["owner", "attributes"]}))
    assert _invoke(tmp_path).exit_code == 0
    assert calls == {"owner": 2, "attributes": 1, "membership": 2}
    assert _invoke(tmp_path).exit_code == 0  # a complete run's rerun runs every stage again
    assert calls == {"owner": 3, "attributes": 2, "membership": 3}


def test_torn_results_of_an_unfinished_run_are_rebuilt(tmp_path, monkeypatch, caplog):
    calls = _stages(monkeypatch, _fails)
    _invoke(tmp_path)
    (tmp_path / "out" / "results.json").write_text('{"schema_version": 2, "se')
    monkeypatch.setattr(experiment, "_membership", lambda *a: _works())
    assert _invoke(tmp_path).exit_code == 0
    assert calls["attributes"] == 2 and "running every stage again" in caplog.text
    assert read_results(tmp_path / "out" / "results.json").membership == SAMPLE.membership


def test_sweep_with_a_failed_seed_is_incomplete_and_the_rerun_redoes_only_that_seed(tmp_path, monkeypatch):
    calls = _stages(monkeypatch, _works)
    failing = {"seed": 1}

    def membership(owner, cfg, cache_dir, out_dir, timer):
        calls["membership"] += 1
        return _fails() if cfg.seed == failing["seed"] else _works()
    monkeypatch.setattr(experiment, "_membership", membership)
    args = ["run", "--quick", "--seeds", "0,1", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"),
            "--no-progress"]
    line = _one_line(CliRunner().invoke(app, args), 1)
    assert line.startswith("FaceLeaksError: run incomplete: seed 1: membership: DataError: too few reference")
    assert _run_json(tmp_path)["status"] == "incomplete" and (tmp_path / "out" / "sweep.md").exists()
    failing["seed"] = None
    assert CliRunner().invoke(app, args).exit_code == 0
    assert calls["membership"] == 3  # seed 0 loaded from its results.json, seed 1 run again
    assert _run_json(tmp_path)["status"] == "complete"


def test_full_disk_through_a_real_small_file_system(small_fs, monkeypatch):
    """A real 64 kB tmpfs as --out: the results fit, the plots do not; one line, nothing torn; a rerun on
    the full disk is refused in one line; after space is freed (remounted larger) it resumes."""
    calls = _stages(monkeypatch, _works)
    out = small_fs / "out"
    args = ["run", "--quick", "--out", str(out), "--cache-dir", str(small_fs.parent / "cache"), "--no-progress"]
    line = _one_line(CliRunner().invoke(app, args), 1)
    assert line.startswith("FaceLeaksError: run incomplete: report: ArtifactError: cannot write") and \
        "the disk is full: free space or choose another folder" in line, line
    assert read_results(out / "results.json").membership == SAMPLE.membership  # whole, not torn
    run = json.loads((out / "run.json").read_text())  # "running" if even run.json no longer fits
    assert run["status"] in ("incomplete", "running")
    assert run["finished_stages"] == ["owner", "attributes", "membership"]
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    calls = _stages(monkeypatch, _fails)
    line = _one_line(CliRunner().invoke(app, args), 1)  # still full: refused before any stage runs
    assert line.startswith(f"ArtifactError: cannot write {out / 'run.json'}: the disk is full")
    assert calls == {"owner": 0, "attributes": 0, "membership": 0}
    assert read_results(out / "results.json").membership == SAMPLE.membership
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_fs)], check=True)  # the user frees space
    assert CliRunner().invoke(app, args).exit_code == 0
    assert calls == {"owner": 0, "attributes": 0, "membership": 0}  # resumed: only the report was written
    assert json.loads((out / "run.json").read_text())["status"] == "complete" and (out / "auc_vs_k.png").exists()


# stage that fails -> (exit code, status, finished stages, calls the rerun makes to each stage)
_EXPECTED = {
    "owner": (1, "failed", [], {"owner": 1, "attributes": 1, "membership": 1}),
    "attributes": (1, "incomplete", ["owner", "membership", "report"], {"owner": 1, "attributes": 1, "membership": 0}),
    "membership": (1, "incomplete", ["owner", "attributes", "report"], {"owner": 1, "attributes": 0, "membership": 1}),
    "report": (1, "incomplete", ["owner", "attributes", "membership"], {"owner": 0, "attributes": 0, "membership": 0}),
}


@pytest.mark.parametrize("stage", sorted(_EXPECTED))
def test_each_stage_failing_keeps_exactly_the_others_and_the_rerun_runs_only_what_is_missing(tmp_path, monkeypatch,
                                                                                             stage):
    code, status, finished, rerun_calls = _EXPECTED[stage]
    bug = RuntimeError(f"a bug in the {stage} stage")  # not a FaceLeaksError: caught all the same

    def fail(*args, **kwargs):
        raise bug
    calls = _stages(monkeypatch, _works)
    target = {"owner": (experiment, "build_owner"), "attributes": (experiment, "_attributes"),
              "membership": (experiment, "_membership"), "report": (render, "write_report")}[stage]
    if stage == "attributes":  # the real stage wrapper catches the study's failure
        from faceleaks.evaluation import attributes as study
        monkeypatch.setattr(experiment, "_attributes", _real_attributes)
        monkeypatch.setattr(study, "run_attribute_attacks", fail)
    else:
        monkeypatch.setattr(*target, fail)
    line = _one_line(_invoke(tmp_path), code)
    assert f"a bug in the {stage} stage" in line
    run = _run_json(tmp_path)
    assert run["status"] == status and run["finished_stages"] == finished
    if finished:
        assert read_results(tmp_path / "out" / "results.json").teacher == SAMPLE.teacher
    monkeypatch.undo()
    calls = _stages(monkeypatch, _works)
    assert _invoke(tmp_path).exit_code == 0 and calls == rerun_calls
    assert _run_json(tmp_path)["status"] == "complete"
    done = read_results(tmp_path / "out" / "results.json")
    assert done.membership == SAMPLE.membership and done.attributes == SAMPLE.attributes and done.warnings == ()


_real_attributes = experiment._attributes


def test_cache_dir_that_is_a_file_is_one_line_before_any_stage(tmp_path, monkeypatch):
    calls = _stages(monkeypatch, _works)
    (tmp_path / "cache").write_text("not a folder")
    line = _one_line(_invoke(tmp_path), 1)
    assert line.startswith(f"ArtifactError: cannot write {tmp_path / 'cache'}: a file is in the way")
    assert calls == {"owner": 0, "attributes": 0, "membership": 0} and _run_json(tmp_path)["status"] == "failed"
