"""``faceleaks report DIR``, and the HTML report written at the end of ``run``, ``run --victims``,
``attributes``, ``audit`` and ``defend`` (a failure there is one warning line: the results are already
on disk).

``register(app, run_guarded=...)`` adds the command with the CLI's shared error guard
(``cli.main._run_guarded``: one line, a non-zero exit, no traceback), so this module never imports
``cli.main``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from faceleaks.errors import FaceLeaksError

__all__ = ["register", "report_command", "html_after_run"]

_CLI: dict = {}


def register(app: typer.Typer, **helpers) -> None:
    """Add the ``report`` command to ``app``; ``helpers``: ``run_guarded`` (see ``cli.main``)."""
    _CLI.update(helpers)
    app.command("report")(report_command)


def _write(folder: Path, console: Console) -> None:
    from faceleaks.report.html import load_result, write_html_report
    from faceleaks.report.sections_defend import is_sweep_folder

    console.print(f"report: {write_html_report(folder)}")
    if load_result(folder).kind != "defences" and is_sweep_folder(Path(folder) / "defend"):
        console.print(f"report: {write_html_report(Path(folder) / 'defend')}")


def report_command(
    folder: Path = typer.Argument(..., help="Output folder of faceleaks run, run --victims, attributes, audit or "
                                            "defend (OUT or OUT/defend)."),
) -> None:
    """Write FOLDER/report.html: one self-contained page (verdict first) from the folder's results.

    A run's folder that also holds a defence sweep (OUT/defend) gets OUT/defend/report.html too.
    """
    console = Console(soft_wrap=True)
    _CLI.get("run_guarded", _plain_guard)(lambda: _write(folder, console))


def _plain_guard(fn) -> None:
    """The guard when the command is used without ``register`` (one line and exit 1 on a faceleaks error)."""
    try:
        fn()
    except FaceLeaksError as err:
        Console(soft_wrap=True).print(f"[red]{type(err).__name__}:[/] {escape(str(err))}")
        raise typer.Exit(1) from err


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
