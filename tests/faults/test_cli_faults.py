"""CLI failures: one line, a non-zero exit code, no traceback; finished stages kept; folders not mixed.

Kinds (the experiment replaced by a fake, so no model is trained): a late stage failing (run
incomplete, membership results written), a DataError mid-run, a full disk met deep inside
(OSError), Ctrl-C, an unexpected bug, a second run with other settings into the same folder
(refused; then --force), --out that is a file, the attributes command into another run's folder.
"""

from __future__ import annotations

import errno
import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.errors import DataError
from faceleaks.evaluation import experiment
from faceleaks.evaluation.experiment import STAGE_FAILED
from tests.evaluation.test_results import _record


def _invoke(tmp_path, *extra, out=None):
    out = out or tmp_path / "out"
    return CliRunner().invoke(app, ["run", "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                                    "--no-progress", *extra])


def _one_line(result, code):
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return lines[-1]


def _fake(monkeypatch, behaviour):
    def run_experiment(cfg, *, out_dir, cache_dir, stages=None):
        (out_dir / "split.json").write_text("{}")
        return behaviour(cfg)
    monkeypatch.setattr(experiment, "run_experiment", run_experiment)


def test_late_stage_failure_keeps_membership_results(tmp_path, monkeypatch):
    record = replace(_record(), warnings=(f"{STAGE_FAILED}attributes: DataError: only 3 UTKFace photos",))
    _fake(monkeypatch, lambda cfg: record)
    line = _one_line(_invoke(tmp_path), 1)
    assert line.startswith("FaceLeaksError: run incomplete: attributes: DataError: only 3 UTKFace photos")
    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text())["membership"]  # the finished stage was written
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "incomplete" and run["failed_stages"] == ["attributes: DataError: only 3 UTKFace photos"]


def _raise(exc):
    def go(cfg):
        raise exc
    return go


@pytest.mark.parametrize("exc, code, start", [
    (DataError("too few LFW identities: 10, need 48"), 1, "DataError: too few LFW identities"),
    (OSError(errno.ENOSPC, "No space left on device", "/x/cache/teacher.pt"), 1,
     "OSError: cannot write /x/cache/teacher.pt: the disk is full"),
    (KeyboardInterrupt(), 130, "Interrupted: stopped by the user"),
    (RuntimeError("shape mismatch\nin layer 3"), 1, "InternalError: RuntimeError: shape mismatch in layer 3"),
])
def test_failures_are_one_line_and_mark_the_run_failed(tmp_path, monkeypatch, exc, code, start):
    _fake(monkeypatch, _raise(exc))
    line = _one_line(_invoke(tmp_path), code)
    assert line.startswith(start), line
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "failed"


def test_second_run_with_other_settings_is_refused_then_forced(tmp_path, monkeypatch):
    _fake(monkeypatch, lambda cfg: replace(_record(), seed=cfg.seed))
    assert _invoke(tmp_path, "--seed", "0").exit_code == 0
    first = (tmp_path / "out" / "results.json").read_bytes()
    line = _one_line(_invoke(tmp_path, "--seed", "1"), 1)
    assert "holds a run with other settings (seed: 0 there, 1 here); rerun with --force" in line
    assert (tmp_path / "out" / "results.json").read_bytes() == first  # nothing of the first run lost
    assert _invoke(tmp_path, "--seed", "0").exit_code == 0  # same settings: a resume
    assert _invoke(tmp_path, "--seed", "1", "--force").exit_code == 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["seed"] == 1
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "complete"


def test_out_that_is_a_file(tmp_path, monkeypatch):
    _fake(monkeypatch, lambda cfg: _record())
    blocker = tmp_path / "out"
    blocker.write_text("x")
    line = _one_line(_invoke(tmp_path, out=blocker), 1)
    assert line.startswith("ArtifactError: cannot write") and "a file is in the way" in line


def test_attributes_command_refuses_another_runs_folder(tmp_path, monkeypatch):
    _fake(monkeypatch, lambda cfg: _record())
    assert _invoke(tmp_path, "--seed", "0").exit_code == 0
    result = CliRunner().invoke(app, ["attributes", "--quick", "--seed", "4", "--out", str(tmp_path / "out"),
                                      "--no-progress"])
    assert "rerun with --force" in _one_line(result, 1)


def test_attribute_study_failure_does_not_end_the_run(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from faceleaks.config import ExperimentConfig
    from faceleaks.evaluation import attributes as attribute_study
    from faceleaks.evaluation.owner import Timer

    def too_few(*args, **kwargs):
        raise DataError("only 3 UTKFace photos for the attribute study, need 100")
    monkeypatch.setattr(attribute_study, "run_attribute_attacks", too_few)
    failed: list[str] = []
    owner = SimpleNamespace(data=None, students={}, teacher=None)
    assert experiment._attributes(owner, ExperimentConfig(), tmp_path, Timer(), failed) is None
    assert failed == [f"{STAGE_FAILED}attributes: DataError: only 3 UTKFace photos for the attribute study, need 100"]
    record = replace(_record(), warnings=tuple(experiment._warning_summary(failed)))
    assert experiment.failed_stages(record) == [failed[0][len(STAGE_FAILED):]]
