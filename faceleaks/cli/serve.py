"""``faceleaks serve`` (a saved student behind the HTTP API) and ``faceleaks keys`` (its API keys).

Exit codes as ``faceleaks run``: 0 success, 2 bad setting (``ConfigError``), 1 any other
``FaceLeaksError``; every failure is one line, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from faceleaks.errors import ConfigError, FaceLeaksError

__all__ = ["serve", "keys_app", "guarded", "DEFAULT_KEYS"]

console = Console(width=None if sys.stdout.isatty() else 160)
keys_app = typer.Typer(add_completion=False, help="Create, list and revoke the API keys of `faceleaks serve`.")
DEFAULT_KEYS = Path("faceleaks-keys.sqlite")
ROLES = ("victim", "control")


def guarded(fn, *args, **kwargs):
    """Call ``fn``; a ``ConfigError`` exits 2 and any other ``FaceLeaksError`` 1, each as one line."""
    try:
        return fn(*args, **kwargs)
    except ConfigError as err:
        console.print(f"[red]ConfigError:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from err
    except FaceLeaksError as err:
        console.print(f"[red]{type(err).__name__}:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from err


def student_folder(run_dir: Path, role: str, name: str) -> Path:
    """``run_dir/students/<role>/<name>``; ``ConfigError`` naming the saved students if it is not there."""
    if role not in ROLES:
        raise ConfigError(f"--role {role!r} is not one of {', '.join(ROLES)}")
    folder = Path(run_dir) / "students" / role / name
    if not (folder / "student.json").exists():
        saved = sorted(p.name for p in (Path(run_dir) / "students" / role).glob("*") if p.is_dir())
        raise ConfigError(f"no {role} student {name!r} saved in {run_dir} (saved: {', '.join(saved) or 'none'}); "
                          "point RUN_DIR at the --out folder of a `faceleaks run`")
    return folder


def _serve(run_dir, student, role, output, top_k, host, port, keys, limits, faults) -> None:
    import uvicorn

    from faceleaks.progress import set_enabled
    from faceleaks.serving.keys import KeyStore
    from faceleaks.serving.server import create_app, load_api

    set_enabled(False)
    store = KeyStore(keys)
    box = load_api(student_folder(run_dir, role, student), output=output, top_k=top_k)
    if not any(not k.revoked for k in store.list()):
        console.print(f"[yellow]no live key in {keys}:[/] create one with `faceleaks keys create --keys {keys}`")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print("[yellow]serving plain HTTP beyond this machine:[/] put it behind a TLS proxy")
    app = create_app(box, name=f"{role}/{student}", keys=store, limits=limits, faults=faults)
    console.print(f"serving {role}/{student} ({box.output_kind.value}) on http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def serve(
    run_dir: Path = typer.Argument(..., help="The --out folder of a `faceleaks run` (holds students/)."),
    student: str = typer.Option(..., "--student", help="Student name, e.g. utk-age."),
    role: str = typer.Option("victim", "--role", help="victim (built on the teacher) or control."),
    output: str = typer.Option("posterior", "--output", help="What the API reveals: posterior, topk, label."),
    top_k: int = typer.Option(3, "--top-k", help="k of --output topk."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help="API key database (SQLite; see `faceleaks keys`)."),
    max_batch: int = typer.Option(256, "--max-batch", help="Images per request at most (413 above)."),
    max_body_mb: float = typer.Option(32.0, "--max-body-mb", help="Request body at most, MB (413 above)."),
    rate: float = typer.Option(200.0, "--rate", help="Requests per second per key (429 above; 0: no limit)."),
    fault_rate: float = typer.Option(0.0, "--test-fault-rate", hidden=True, help="Test only: fraction of queries failed."),
    fault_delay: float = typer.Option(0.0, "--test-fault-delay", hidden=True, help="Test only: delay of slow faults, s."),
) -> None:
    """Serve a student saved by a run over HTTP, with API keys, budgets and input checks."""
    from faceleaks.serving.server import Faults
    from faceleaks.serving.wire import Limits

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    limits = Limits(max_body=int(max_body_mb * 1024 * 1024), max_batch=max_batch, rate=rate)
    faults = Faults(fault_rate, fault_delay) if fault_rate > 0 else None
    guarded(_serve, run_dir, student, role, output, top_k, host, port, keys, limits, faults)


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="Who the key is for."),
    budget: int = typer.Option(10_000, "--budget", help="Images the key may send in total."),
    keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help="API key database (created if needed)."),
) -> None:
    """Create a key; its secret is printed once (only its hash is stored)."""
    from faceleaks.serving.keys import KeyStore

    key_id, secret = guarded(lambda: KeyStore(keys).create(name, budget))
    console.print(f"key {key_id} for {escape(name)}, budget {budget} images; secret (shown once):")
    print(secret)


@keys_app.command("list")
def keys_list(keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help="API key database.")) -> None:
    """List keys with their budgets and use."""
    from faceleaks.serving.keys import KeyStore

    table = Table(title=f"API keys in {keys}")
    for col in ("id", "name", "budget", "used", "remaining", "revoked", "created"):
        table.add_column(col)
    for r in guarded(lambda: KeyStore(keys).list()):
        table.add_row(r.key_id, escape(r.name), str(r.budget), str(r.used), str(r.remaining), "yes" if r.revoked else "",
                      datetime.fromtimestamp(r.created).isoformat(timespec="seconds"))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (see `faceleaks keys list`)."),
                keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help="API key database.")) -> None:
    """Revoke a key: the server refuses it (403) from its next request on."""
    from faceleaks.serving.keys import KeyStore

    guarded(lambda: KeyStore(keys).revoke(key_id))
    console.print(f"revoked {key_id}")
