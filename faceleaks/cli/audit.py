"""``faceleaks audit``: membership verdicts for probe people through a student API; ``audit purge``.

Exit codes: 0 done, 3 with ``--fail-above`` when any probe person is flagged, 2 bad setting,
1 any other ``FaceLeaksError`` (one line each, never a traceback).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from faceleaks.cli.serve import console, guarded
from faceleaks.errors import ConfigError

__all__ = ["audit_app", "EXIT_FLAGGED"]

EXIT_FLAGGED = 3
audit_app = typer.Typer(add_completion=False, invoke_without_command=True,
                        help="Audit a student API: is each probe person a member of the teacher's training set?")


def _key(path: Optional[Path]) -> Optional[str]:
    if path is None:
        return None
    try:
        key = Path(path).read_text().strip()
    except OSError as err:
        raise ConfigError(f"--key-file {path} cannot be read ({err.strerror}); put the API key in that file") from err
    if not key:
        raise ConfigError(f"--key-file {path} is empty; put the API key in that file")
    return key


def _client(url: str, key: Optional[str], ledger: Path, json_api: Optional[Path], opts: dict):
    from faceleaks.serving.client import HttpBlackBox
    from faceleaks.serving.json_api import JsonApiAdapter
    from faceleaks.serving.ledger import Ledger

    adapter = JsonApiAdapter.from_file(json_api) if json_api else None
    box = HttpBlackBox(url, key=key, adapter=adapter, **opts)
    box.ledger = Ledger(ledger, f"{url.rstrip('/')} {box.output_kind.value}")
    return box


def _audit(url, key_file, probe, reference, out, *, k, fpr, seed, labels, redact, ledger, json_api, opts):
    from faceleaks.cli.report import html_after_run
    from faceleaks.config import TeacherConfig
    from faceleaks.evaluation.attacker import TeacherPublicBase
    from faceleaks.evaluation.audit import CACHE_DIR, LEDGER_FILE, Redactor, read_labels, run_audit
    from faceleaks.evaluation.audit_results import AuditSession
    from faceleaks.evaluation.provenance import folder_digest
    from faceleaks.evaluation.results import environment_versions
    from faceleaks.evaluation.audit_data import read_people
    from faceleaks.models.dlib_teacher import dlib_base_teacher

    missing = [n for n, v in (("--url", url), ("--probe", probe), ("--reference", reference)) if v is None]
    if missing:
        raise ConfigError(f"faceleaks audit needs {', '.join(missing)}; see faceleaks audit --help")
    start, out = time.monotonic(), Path(out)
    truth = read_labels(labels) if labels else None
    box = _client(url, _key(key_file), ledger or out / LEDGER_FILE, json_api, opts)
    cache = out / CACHE_DIR
    probe_photos = read_people(probe, cache_dir=cache, what="probe photos")
    ref_photos = read_people(reference, cache_dir=cache, what="reference photos")
    base = TeacherPublicBase(dlib_base_teacher(TeacherConfig(), cache_dir=cache))
    record = run_audit(box, base, probe_photos, ref_photos, k=k, fpr=fpr, seed=seed, labels=truth,
                       endpoint=url, redactor=Redactor(out) if redact else None)
    session = AuditSession(box.n_sent, box.n_requests, box.n_from_ledger, box.remaining,
                           round(time.monotonic() - start, 2), str(box.ledger.path), box.n_retries)
    hashes = {"probe": folder_digest(probe), "reference": folder_digest(reference)}
    record = dataclasses.replace(record, session=session, photo_hashes=hashes, environment=environment_versions())
    _print(record, _write(record, out))
    html_after_run(out, console)  # report.html last: a failure there is one warning line, the results are saved
    return record


def _write(record, out: Path) -> dict[str, Path]:
    """results.json (the typed record), then summary.md from it (report layer)."""
    from faceleaks.atomic import atomic_write_text
    from faceleaks.evaluation.audit import write_audit
    from faceleaks.report.audit_report import audit_markdown

    paths = {"results": write_audit(record, out), "summary": out / "summary.md"}
    atomic_write_text(paths["summary"], audit_markdown(record))
    return paths


def _print(record, paths) -> None:
    table = Table(title=f"Audit of {record.endpoint}: k = {record.k}, FPR {record.fpr:g}, "
                        f"{record.n_reference} reference people")
    for col in ("person", "score", "p-value", "verdict", "queries"):
        table.add_column(col)
    for p in record.ranked():
        table.add_row(escape(p.person), f"{p.score:.4f}", f"{p.p_value:.4f}", p.verdict, str(p.n_queries))
    console.print(table)
    s = record.session
    console.print(f"flagged {len(record.flagged)} of {len(record.people)}; photos sent now {s.sent}, "
                  f"answered from the ledger {s.from_ledger}; budget left {s.budget_remaining}")
    if record.auc is not None:
        console.print(f"AUC over labelled probe people: {record.auc:.3f}")
    for name, path in paths.items():
        console.print(f"{name}: {path}")


@audit_app.callback()
def audit(
    ctx: typer.Context,
    url: Optional[str] = typer.Option(None, "--url", help="Base URL of the student API."),
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="File holding the API key."),
    probe: Optional[Path] = typer.Option(None, "--probe", help="Folder: one sub-folder of photos per probe person."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Folder: one sub-folder per known non-member."),
    k: int = typer.Option(5, "--k", help="Photos per person."),
    fpr: float = typer.Option(0.01, "--fpr", help="False-positive rate of a 'member' verdict (fraction)."),
    fail_above: bool = typer.Option(False, "--fail-above", help=f"Exit {EXIT_FLAGGED} if any probe person is flagged."),
    redact: bool = typer.Option(False, "--redact", help="Stable pseudonyms instead of probe names in every output."),
    out: Path = typer.Option(Path("faceleaks-audit"), "--out", help="Output folder (results, ledger, caches)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV person,member (1/0): adds the AUC."),
    seed: int = typer.Option(0, "--seed", help="Seed of the reference folds."),
    ledger: Optional[Path] = typer.Option(None, "--ledger", help="Query ledger (default OUT/ledger.sqlite)."),
    json_api: Optional[Path] = typer.Option(None, "--json-api", help="TOML/JSON field names of a JSON API."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per request."),
    retries: int = typer.Option(5, "--retries", help="Attempts per request on 5xx, timeouts, connection errors."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per request."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
) -> None:
    """Audit a student API with folders of photos (`faceleaks audit purge --out DIR` deletes its ledger and caches)."""
    if ctx.invoked_subcommand is not None:
        return
    from faceleaks.progress import set_enabled

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    set_enabled(not no_progress)
    opts = {"batch_size": batch_size, "retries": retries, "timeout": timeout}
    record = guarded(_audit, url, key_file, probe, reference, out, k=k, fpr=fpr, seed=seed, labels=labels,
                     redact=redact, ledger=ledger, json_api=json_api, opts=opts)
    if fail_above and record.flagged:
        console.print(f"[red]{len(record.flagged)} probe people flagged as members[/] (--fail-above)")
        raise typer.Exit(EXIT_FLAGGED)


@audit_app.command("purge")
def purge(out: Path = typer.Option(..., "--out", help="The audit's output folder.")) -> None:
    """Delete an audit's query ledger and caches (results.json and summary.md stay)."""
    from faceleaks.evaluation.audit import purge_audit

    gone = purge_audit(out)
    console.print(f"deleted {len(gone)} item(s): " + (", ".join(str(p) for p in gone) or "nothing to delete"))
