"""``faceleaks report DIR``, and the HTML report written at the end of ``run``, ``run --victims`` and
``attributes`` (a failure there is one warning line: the run's results are already on disk)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from faceleaks.errors import FaceLeaksError

__all__ = ["report_command", "html_after_run"]


def report_command(
    folder: Path = typer.Argument(..., help="Output folder of faceleaks run, run --victims or attributes."),
) -> None:
    """Write FOLDER/report.html: one self-contained page (verdict first) from the folder's results."""
    from faceleaks.report.html import write_html_report

    console = Console(soft_wrap=True)
    try:
        path = write_html_report(folder)
    except FaceLeaksError as err:
        console.print(f"[red]{type(err).__name__}:[/] {escape(str(err))}")
        raise typer.Exit(1) from err
    console.print(f"report: {path}")


def html_after_run(folder: Path, console: Console) -> Path | None:
    """Write ``folder/report.html`` after a run; on any failure print one warning line and return None.

    Every failure is caught on purpose: the run's results are written before this is called, and a
    report that cannot be drawn must not turn a finished run into a failed one (rerun
    ``faceleaks report FOLDER`` after fixing the cause).
    """
    try:
        from faceleaks.report.html import write_html_report

        path = write_html_report(folder)
    except Exception as err:  # noqa: BLE001  (see the docstring)
        console.print(f"[yellow]warning:[/] report.html not written ({escape(type(err).__name__)}: "
                      f"{escape(str(err))}); the results are saved, retry with: faceleaks report {escape(str(folder))}",
                      soft_wrap=True)
        return None
    console.print(f"report: {path}")
    return path
