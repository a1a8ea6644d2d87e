"""The output folder: reused only by a run of the same settings (a resume), replaced only with ``--force``.

Each run writes ``run.json`` into its output folder first: the settings that decide the results
(``ExperimentConfig.to_dict()`` without ``output_dir`` and ``runtime``, plus the command's own
choices such as ``--seeds``), the commands run there and a status: ``running`` while it runs,
``complete``, ``incomplete`` (a later stage failed; what finished was written, the failed stages
are listed) or ``failed``, and the stages that finished (``finished_stages``, see
``evaluation.stages``): a rerun of an unfinished run with the same settings reuses them. A folder holding faceleaks outputs of other settings, or outputs
without ``run.json`` (an older faceleaks), is refused with one line naming ``--force``, so one
folder never mixes two runs. [reconstructed] the layout of ``run.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faceleaks.atomic import atomic_write_text, clean_temporaries, ensure_dir
from faceleaks.errors import ArtifactError, FaceLeaksError

log = logging.getLogger(__name__)

__all__ = ["RUN_FILE", "OUTPUT_FILES", "run_settings", "claim_output", "mark_run", "marked_run", "finish_run",
           "run_status", "mark_stage", "finished_stages"]

RUN_FILE = "run.json"
#: Files and folders faceleaks writes into an output folder (removed by ``--force``).
OUTPUT_FILES = ("results.json", "split.json", "summary.md", "roc.png", "auc_vs_k.png", "attributes.png",
                "attributes.json", "attributes.md", "report.html", "sweep.json", "sweep.md", "sweep_roc.png",
                "inclusion.json", "inclusion.md", "inclusion_roc.png", "students", "inclusion-victims")
_STATUSES = ("running", "complete", "incomplete", "failed")


def run_settings(config: dict[str, Any], **choices: Any) -> dict[str, Any]:
    """The settings that identify a run: ``config`` without ``output_dir`` / ``runtime``, plus ``choices``.

    ``choices`` are command options outside the config (``seeds``, ``victims``); None values are dropped.
    Returned as plain JSON values, so a dict read back from ``run.json`` compares equal.
    """
    kept = {k: v for k, v in config.items() if k not in ("output_dir", "runtime")}
    kept.update({k: v for k, v in choices.items() if v is not None})
    return json.loads(json.dumps(kept, default=str))


def _first_difference(old: Any, new: Any, where: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))
    return f"{where or 'settings'}: {json.dumps(old)[:40]} there, {json.dumps(new)[:40]} here"


def _existing_outputs(folder: Path) -> list[str]:
    names = [n for n in OUTPUT_FILES if (folder / n).exists()]
    return names + sorted(p.name for p in folder.glob("seed-*") if p.is_dir())


def _read_run(folder: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{folder / RUN_FILE} is unreadable ({type(err).__name__}); use --force to replace "
                            "the folder's outputs, or choose another --out") from err
    return raw if isinstance(raw, dict) else {}


def _replace(folder: Path) -> None:
    for name in [RUN_FILE, *_existing_outputs(folder)]:
        path = folder / name
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
        except OSError as err:
            raise ArtifactError(f"cannot remove {path} to replace the earlier run ({err.strerror}); "
                                "remove it yourself or choose another --out") from err


def claim_output(out_dir: str | Path, settings: dict[str, Any], *, command: str, force: bool = False) -> str:
    """Make ``out_dir`` this run's folder; returns ``"new"``, ``"resume"`` or ``"replaced"``.

    Parameters
    ----------
    out_dir : the output folder (created if missing)
    settings : ``run_settings(...)`` of this run
    command : the CLI command (``run``, ``attributes``), recorded in ``run.json``
    force : replace the outputs of another run instead of refusing

    Raises
    ------
    ArtifactError
        One line: the folder holds another run's outputs (naming the first differing setting and
        ``--force``), or it cannot be created or written (a file in the way, read-only, full).
    """
    folder = ensure_dir(out_dir)
    previous = _read_run(folder)
    outputs = _existing_outputs(folder)
    state = "new"
    if previous is not None and previous.get("settings") == settings:
        state = "resume"
    elif previous is not None or outputs:
        if not force:
            why = (f"a run with other settings ({_first_difference(previous.get('settings'), settings)})"
                   if previous is not None else f"outputs of an earlier run ({', '.join(outputs[:3])}) without {RUN_FILE}")
            raise ArtifactError(f"output folder {folder} holds {why}; rerun with --force to replace them, "
                                "or choose another --out")
        _replace(folder)
        state = "replaced"
    clean_temporaries(folder)  # left by writes of a run that was killed
    commands = sorted(set((previous or {}).get("commands", []) if state == "resume" else []) | {command})
    # a resume of a run that did not complete keeps its finished stages (reused); a complete one runs again
    kept = list(previous.get("finished_stages", [])) if state == "resume" and previous.get("status") != "complete" else []
    _write(folder, {"settings": settings, "commands": commands, "status": "running", "failed_stages": [],
                    "finished_stages": kept})
    return state


def mark_run(out_dir: str | Path, status: str, *, failed_stages: tuple[str, ...] | list[str] = ()) -> None:
    """Set the status in ``out_dir/run.json`` (``complete``, ``incomplete`` or ``failed``) and its failed stages."""
    if status not in _STATUSES:
        raise ValueError(f"status must be one of {_STATUSES}, got {status!r}")
    folder = Path(out_dir)
    record = _read_run(folder) or {}
    _write(folder, {**record, "status": status, "failed_stages": list(failed_stages)})


def mark_stage(out_dir: str | Path, stage: str) -> None:
    """Add ``stage`` to ``finished_stages`` in ``out_dir/run.json`` (its results are written)."""
    folder = Path(out_dir)
    record = _read_run(folder) or {}
    done = list(record.get("finished_stages", []))
    _write(folder, {**record, "finished_stages": done + ([stage] if stage not in done else [])})


def finished_stages(out_dir: str | Path) -> list[str]:
    """The stages ``out_dir/run.json`` lists as finished (kept from an unfinished earlier run on resume)."""
    record = _read_run(Path(out_dir)) or {}
    stages = record.get("finished_stages", [])
    return [str(s) for s in stages] if isinstance(stages, list) else []


def _write(folder: Path, record: dict[str, Any]) -> None:
    atomic_write_text(folder / RUN_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")


def run_status(out_dir: str | Path) -> str | None:
    """The status in ``out_dir/run.json``, or None without one."""
    record = _read_run(Path(out_dir))
    return None if record is None else record.get("status")


@contextmanager
def marked_run(out_dir: str | Path) -> Iterator[None]:
    """Around a claimed run: ``failed`` if the block raises, else ``complete`` unless it set a status itself."""
    try:
        yield
    except BaseException:
        try:
            if run_status(out_dir) == "running":  # an incomplete run keeps that status
                mark_run(out_dir, "failed")
        except FaceLeaksError as err:  # the folder itself failed: the original error says more
            log.warning("could not mark %s failed: %s", out_dir, err)
        raise
    if run_status(out_dir) == "running":
        mark_run(out_dir, "complete")


def finish_run(out_dir: str | Path, failed: list[str]) -> None:
    """With ``failed`` stages: mark the run ``incomplete`` and raise (one line); its outputs stay written.

    If ``run.json`` cannot be written (a full disk), it keeps ``running`` and its finished stages, so
    a rerun still resumes; the error raised names the failed stage all the same.

    Raises
    ------
    FaceLeaksError
        ``run incomplete: <first failed stage>; the finished stages were written to <out_dir>``.
    """
    if failed:
        try:
            mark_run(out_dir, "incomplete", failed_stages=failed)
        except FaceLeaksError as err:  # e.g. the disk that failed the stage is still full: say what failed first
            log.warning("could not mark %s incomplete: %s", out_dir, err)
        raise FaceLeaksError(f"run incomplete: {failed[0]}; the finished stages were written to {out_dir}")
