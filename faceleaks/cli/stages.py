"""``faceleaks run``'s stages on disk: ``results.json`` and ``run.json`` after each, the report last.

Each finished stage rewrites ``results.json`` (atomically) with everything finished so far and
adds itself to ``run.json``'s ``finished_stages``; a rerun of an unfinished run with the same
settings reads them back and does not run them again (``faceleaks.evaluation.stages``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from faceleaks.atomic import clean_temporaries, ensure_dir
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.outdir import finished_stages, mark_stage
from faceleaks.evaluation.results import RunRecord, read_results, write_results
from faceleaks.evaluation.stages import STAGE_FAILED, StageLog, stage_failure

__all__ = ["stage_log", "report_stage"]

log = logging.getLogger(__name__)


def stage_log(out_dir: Path, cache_dir: Path | None = None) -> StageLog:
    """The ``StageLog`` of a run into the claimed folder ``out_dir``: writes each stage, reuses finished ones.

    An earlier ``results.json`` that cannot be read is logged and every stage runs again. Temporary
    files that killed runs left in ``cache_dir`` (never read) are removed, those of live writers kept.

    Raises
    ------
    ArtifactError
        ``cache_dir`` cannot be a folder (a file is in the way, it cannot be created): one line.
    """
    out = Path(out_dir)
    if cache_dir is not None:
        ensure_dir(cache_dir)  # one line now (a file in the way, not creatable), not after the first stage
        removed = clean_temporaries(cache_dir)
        if removed:
            log.info("removed %d temporary file(s) of killed runs from %s", removed, cache_dir)
    finished = frozenset(finished_stages(out))
    previous = None
    if finished:
        try:
            previous = read_results(out / "results.json")
        except (ArtifactError, OSError) as err:
            log.warning("the earlier run's results.json cannot be read (%s): running every stage again", err)

    def on_finish(stage: str, record: RunRecord) -> None:
        write_results(record, out / "results.json")
        mark_stage(out, stage)

    return StageLog(on_finish=on_finish, previous=previous, finished=finished if previous is not None else frozenset())


def report_stage(record: RunRecord, out_dir: Path, failed: list[str],
                 write: Callable[[RunRecord, Path], object]) -> list[str]:
    """Run the report stage (``write(record, out_dir)``); returns ``failed`` plus its failure, if any.

    ``failed`` are the one-line reasons of stages that failed earlier (``failed_stages(record)``).
    """
    try:
        write(record, out_dir)
    except Exception as err:  # the results of the finished stages are written already
        return [*failed, stage_failure("report", err)[len(STAGE_FAILED):]]
    mark_stage(out_dir, "report")
    return failed
