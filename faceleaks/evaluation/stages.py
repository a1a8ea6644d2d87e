"""The stages of a run, each written as it finishes, so a later stage's failure keeps the earlier ones.

A run's stages, in order: ``owner`` (data, teacher, verification, students), ``attributes`` (the
attribute study), ``membership`` (shadows, control, attacks, white-box ceiling) and ``report``
(summary, plots, report.html). After each one the run calls ``StageLog.finish(stage, record)``
with the record of everything finished so far (the CLI writes ``results.json`` and adds the stage to
``run.json``'s ``finished_stages``). A failed stage is one ``STAGE_FAILED`` warning in the record
(``stage failed: <stage>: <error type>: <message>``, one line) and the run goes on without it.

A rerun with the same settings of a run that did not complete (``incomplete``, ``failed``, or
killed while ``running``) passes the earlier record and its finished stages as ``previous`` /
``finished``: the attribute and membership stages are then taken from it instead of being run
again (their models are in the cache either way). [reconstructed]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from faceleaks.evaluation.results import RunRecord

__all__ = ["STAGES", "STAGE_FAILED", "StageLog", "stage_failure"]

log = logging.getLogger(__name__)

#: The stages of ``faceleaks run``, in the order they run.
STAGES = ("owner", "attributes", "membership", "report")
#: Prefix of a record warning that names a stage that failed (the run is then incomplete).
STAGE_FAILED = "stage failed: "


@dataclass(frozen=True)
class StageLog:
    """Where a run reports its finished stages, and what an earlier run of the same settings finished.

    Parameters
    ----------
    on_finish : called as ``on_finish(stage, record)`` after each stage that finished, with the
        ``RunRecord`` of every stage finished so far (None: nothing is called)
    previous : the record (``results.json``) of an earlier, unfinished run of the same settings
    finished : the stages of ``previous`` that finished (``run.json``'s ``finished_stages``)
    """

    on_finish: Callable[[str, RunRecord], None] | None = None
    previous: RunRecord | None = None
    finished: frozenset[str] = frozenset()

    def reuse(self, stage: str) -> RunRecord | None:
        """The earlier record if ``stage`` finished in it, else None (the stage runs)."""
        if self.previous is not None and stage in self.finished:
            log.info("stage %s finished in the earlier run: reused", stage)
            return self.previous
        return None

    def finish(self, stage: str, record: RunRecord) -> None:
        """Report that ``stage`` finished; ``record`` holds every stage finished so far."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
        if self.on_finish is not None:
            self.on_finish(stage, record)


def stage_failure(stage: str, err: BaseException) -> str:
    """The record warning of ``stage`` failing with ``err``: one line, ``STAGE_FAILED`` first."""
    text = " ".join(str(err).split())
    log.warning("stage %s failed, the run goes on without it: %s: %s", stage, type(err).__name__, text)
    log.info("traceback of the failed stage %s", stage, exc_info=err)
    return f"{STAGE_FAILED}{stage}: {type(err).__name__}: {text}"
