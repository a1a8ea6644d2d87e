"""``faceleaks`` command line: parse, load the config once, call the library, print a summary.

Exit codes: 0 success, 2 bad setting (``ConfigError``), 1 any other ``FaceLeaksError``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from faceleaks.atomic import os_error_line
from faceleaks.cli.report import html_after_run, register as _register_report
from faceleaks.config import ExperimentConfig, config_from_dict, load_config, quick_config
from faceleaks.errors import ConfigError, FaceLeaksError
from faceleaks.evaluation.outdir import claim_output, finish_run, marked_run, run_settings

app = typer.Typer(add_completion=False, help="Measure what black-box student models leak about their teacher.")
# Wide enough for the summary table when the output goes to a file or a CI log.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@app.callback()
def _main() -> None:
    """faceleaks: membership and attribute inference through transfer-learning students."""


def default_cache_dir() -> Path:
    """``$FACELEAKS_CACHE_DIR`` or ``~/.cache/faceleaks``."""
    return Path(os.environ.get("FACELEAKS_CACHE_DIR", "~/.cache/faceleaks")).expanduser()


def _parse_ints(text: str, option: str, example: str = "1,2,5,10") -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as err:
        raise ConfigError(f"{option} must be comma-separated integers like {example}, got {text!r}") from err


def build_config(*, quick: bool, config: Optional[Path], overrides: dict) -> ExperimentConfig:
    """Defaults → ``--quick`` preset → TOML file → command-line overrides; validated once."""
    cfg = quick_config() if quick else ExperimentConfig()
    if config is not None:
        cfg = load_config(config, cfg)
    return config_from_dict(overrides, cfg)


def _overrides(*, seed, out, teacher, output, cache_dir, threads, lfw_dir=None, utkface_dir=None) -> dict:
    """Command-line options as a nested settings dict (only those given)."""
    overrides: dict = {}
    for section, key, value in (("", "seed", seed), ("", "output_dir", str(out) if out else None),
                                ("teacher", "kind", teacher), ("attack", "output", output),
                                ("data", "lfw_dir", str(lfw_dir) if lfw_dir else None),
                                ("data", "utkface_dir", str(utkface_dir) if utkface_dir else None),
                                ("runtime", "threads", threads),
                                ("runtime", "cache_dir", str(cache_dir) if cache_dir else None)):
        if value is not None:
            (overrides.setdefault(section, {}) if section else overrides)[key] = value
    return overrides


def _run_guarded(fn) -> None:
    """Call ``fn``; map faceleaks errors to exit codes (2 for settings, 1 otherwise).

    Warnings raised meanwhile are printed as one line each (category: message), not with the
    Python source line that the default warning display adds.
    """
    def show(message, category, filename, lineno, file=None, line=None):
        err_console.print(f"[yellow]{category.__name__}:[/] {escape(str(message))}", soft_wrap=True)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            fn()
    except ConfigError as err:
        _fail("ConfigError", str(err), 2, err)
    except FaceLeaksError as err:
        _fail(type(err).__name__, str(err), 1, err)
    except OSError as err:  # e.g. a folder that is a file, read-only or full, met outside faceleaks' own writers
        _fail("OSError", os_error_line(err, err.filename or "a file"), 1, err)
    except KeyboardInterrupt as err:
        _fail("Interrupted", "stopped by the user; what finished is cached: rerun the same command to resume", 130, err)
    except Exception as err:  # a bug: one line here, the traceback with -v
        _fail("InternalError", f"{type(err).__name__}: {err} (a faceleaks bug; rerun with -v for the traceback)", 1, err)


def _fail(kind: str, message: str, code: int, err: BaseException) -> None:
    """Print one line (``kind: message``; newlines folded), the traceback only at ``-v``; exit ``code``."""
    if logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("faceleaks").error("traceback of the failure below", exc_info=err)
    console.print(f"[red]{kind}:[/] {escape(' '.join(message.split()))}", soft_wrap=True)
    raise typer.Exit(code) from err


def _print_summary(record, paths) -> None:
    from faceleaks.report.tables import auc_pivot

    v = record.teacher.verification
    console.print(f"[bold]Teacher[/] {record.teacher.kind}: verification accuracy on held-out identity pairs "
                  f"{v.accuracy if v is not None else float('nan'):.3f}")
    header, rows = auc_pivot(record)
    table = Table(title="Membership inference on the teacher: AUC by photos per identity, victim (negative control) (full table: summary.md)")
    for col in header:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for name, path in paths.items():
        console.print(f"{name}: {path}")


@app.command()
def run(
    quick: bool = typer.Option(False, "--quick", help="Small preset that finishes in about a minute."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings (see README)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random choice (default 0)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default ./faceleaks-out)."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher kind: dlib (default), scratch, dlib-base (negative control)."),
    control: Optional[str] = typer.Option(None, "--control", help="Negative-control teacher of a dlib run: base (unmodified dlib, default) or finetuned (dlib fine-tuned on other LFW people)."),
    output: Optional[str] = typer.Option(None, "--output", help="What the student API returns: posterior, topk, label."),
    k: Optional[str] = typer.Option(None, "--k", help="Photos per identity, e.g. 1,2,5,10."),
    lfw_dir: Optional[Path] = typer.Option(None, "--lfw-dir", help="LFW folder (else $FACELEAKS_LFW_DIR, $FACELEAKS_DATA_DIR/lfw, ../shared/data/lfw, scikit-learn's data home, then download)."),
    utkface_dir: Optional[Path] = typer.Option(None, "--utkface-dir", help="UTKFace folder (else $FACELEAKS_UTKFACE_DIR, $FACELEAKS_DATA_DIR/utkface, ../shared/data/utkface)."),
    no_download: bool = typer.Option(False, "--no-download", help="Never download LFW."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache folder (else $FACELEAKS_CACHE_DIR or ~/.cache/faceleaks)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default 2)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Repeat over these seeds, e.g. 0,1,2 (one sub-folder each, plus sweep.md)."),
    http: bool = typer.Option(False, "--http", help="Serve each student over real HTTP (uvicorn) and attack through it."),
    shadows: Optional[int] = typer.Option(None, "--shadows", help="Shadow teachers per setting for LiRA and the shadow combination (default 8; 0: off)."),
    executor: Optional[str] = typer.Option(None, "--executor", help="Where shadow teachers train: process (default), serial, ray."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel shadow-teacher tasks (default 2)."),
    victims: Optional[str] = typer.Option(None, "--victims", help="Low-FPR evaluation by random inclusion instead: N victim teachers (or 'auto' for >= 3,000 non-member decisions at k = 5), each attacked with the others as shadows; writes inclusion.json/.md/_roc.png."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    force: bool = typer.Option(False, "--force", help="Replace the outputs of a run with other settings in --out."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what is cached, loaded and trained."),
) -> None:
    """Train the teacher and students, attack them through the black box, write the report."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = _overrides(seed=seed, out=out, teacher=teacher, output=output, cache_dir=cache_dir, threads=threads,
                           lfw_dir=lfw_dir, utkface_dir=utkface_dir)
    if no_download:
        overrides.setdefault("data", {})["download"] = False
    if http:
        overrides.setdefault("attack", {})["transport"] = "http"
    for section, key, value in (("attack", "n_shadow_teachers", shadows), ("runtime", "executor", executor),
                                ("teacher", "control", control),
                                ("runtime", "workers", workers)):
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    if no_progress:
        overrides.setdefault("runtime", {})["progress"] = False

    def go() -> None:
        if k is not None:  # typed here, once: the config only ever sees integers
            overrides.setdefault("attack", {})["ks"] = _parse_ints(k, "--k")
        if victims is not None:
            cfg = build_config(quick=quick, config=config, overrides=overrides)
            claim_output(cfg.output_dir, run_settings(cfg.to_dict(), victims=victims), command="run", force=force)
            _run_inclusion(cfg, _parse_victims(victims))
            return
        _run(quick, config, overrides, _parse_ints(seeds, "--seeds", "0,1,2") if seeds else None, force)

    _run_guarded(go)


def _run(quick: bool, config: Optional[Path], overrides: dict, seeds: tuple[int, ...] | None, force: bool) -> None:
    cfg = build_config(quick=quick, config=config, overrides=overrides)
    from faceleaks.cli.stages import report_stage, stage_log
    from faceleaks.evaluation.experiment import failed_stages, run_experiment
    from faceleaks.progress import set_enabled
    from faceleaks.report.render import write_report

    set_enabled(cfg.runtime.progress)
    out_dir = Path(cfg.output_dir)
    claim_output(out_dir, run_settings(cfg.to_dict(), seeds=list(seeds) if seeds else None), command="run", force=force)
    cache = Path(cfg.runtime.cache_dir).expanduser() if cfg.runtime.cache_dir else default_cache_dir()
    with marked_run(out_dir):
        if seeds:
            _sweep(cfg, seeds, out_dir, cache)
            return
        record = run_experiment(cfg, out_dir=out_dir, cache_dir=cache, stages=stage_log(out_dir, cache))
        finish_run(out_dir, report_stage(record, out_dir, failed_stages(record), lambda rec, out: (
            _print_summary(rec, write_report(rec, out)), html_after_run(out, console))))


def _parse_victims(text: str) -> int | None:
    """``--victims``: an integer N >= 4, or ``auto`` (None: N chosen for 3,000 non-member decisions at k = 5)."""
    if text.strip().lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError as err:
        raise ConfigError(f"--victims must be an integer N >= 4 or 'auto', got {text!r}") from err


def _run_inclusion(cfg: ExperimentConfig, n_victims: int | None) -> None:
    """The random-inclusion (N-victim) evaluation: run it, write its report, print the headline lines."""
    from faceleaks.evaluation.random_inclusion import run_random_inclusion
    from faceleaks.progress import set_enabled
    from faceleaks.report.inclusion import write_inclusion_report

    set_enabled(cfg.runtime.progress)
    out_dir = Path(cfg.output_dir)
    cache = Path(cfg.runtime.cache_dir).expanduser() if cfg.runtime.cache_dir else default_cache_dir()
    record = run_random_inclusion(cfg, out_dir=out_dir, cache_dir=cache, n_victims=n_victims)
    paths = write_inclusion_report(record, out_dir)
    table = Table(title=f"Random inclusion: {record.n_victims} victims, pooled decisions (full table: inclusion.md)")
    for col in ("student", "k", "attack", "teacher", "AUC", "TPR@1%", "TPR@0.1%", "eps lower bound"):
        table.add_column(col)
    for r in record.rows:
        eps = f"{r.epsilon.epsilon:.2f}" if r.epsilon is not None else "n/a"
        table.add_row(r.student, str(r.k), r.attack, r.teacher, f"{r.auc:.3f}", f"{r.tpr_at_fpr.get(0.01, float('nan')):.3f}",
                      f"{r.tpr_at_fpr.get(0.001, float('nan')):.3f}", eps)
    console.print(table)
    for name, path in paths.items():
        console.print(f"{name}: {path}")
    html_after_run(out_dir, console)


def _sweep(cfg: ExperimentConfig, seeds: tuple[int, ...], out_dir: Path, cache: Path) -> None:
    from faceleaks.evaluation.experiment import failed_stages, run_experiment
    from faceleaks.evaluation.sweeps import run_seeds, summarise_seeds
    from faceleaks.report.render import write_report, write_sweep
    records = run_seeds(cfg, list(seeds), out_dir=out_dir, cache_dir=cache, run=run_experiment,
                        on_record=lambda rec, sub: write_report(rec, sub))
    path = write_sweep(summarise_seeds(records), out_dir)
    console.print(f"sweep over seeds {list(seeds)}: {path}")
    finish_run(out_dir, [f"seed {r.seed}: {f}" for r in records for f in failed_stages(r)])


@app.command()
def attributes(
    quick: bool = typer.Option(False, "--quick", help="Small preset."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings (see README)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random choice (default 0)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default ./faceleaks-out)."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher kind: dlib (default), scratch, dlib-base."),
    output: Optional[str] = typer.Option(None, "--output", help="What the student API returns: posterior, topk, label."),
    lfw_dir: Optional[Path] = typer.Option(None, "--lfw-dir", help="LFW folder (else $FACELEAKS_LFW_DIR, $FACELEAKS_DATA_DIR/lfw, ../shared/data/lfw, scikit-learn's data home, then download)."),
    utkface_dir: Optional[Path] = typer.Option(None, "--utkface-dir", help="UTKFace folder (else $FACELEAKS_UTKFACE_DIR, $FACELEAKS_DATA_DIR/utkface, ../shared/data/utkface)."),
    no_download: bool = typer.Option(False, "--no-download", help="Never download LFW."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache folder."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default 2)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    force: bool = typer.Option(False, "--force", help="Replace the outputs of a run with other settings in --out."),
) -> None:
    """Sensitive-attribute inference (gender, race, age group) through the students, alone."""
    overrides = _overrides(seed=seed, out=out, teacher=teacher, output=output, cache_dir=cache_dir, threads=threads,
                           lfw_dir=lfw_dir, utkface_dir=utkface_dir)
    if no_download:
        overrides.setdefault("data", {})["download"] = False
    if no_progress:
        overrides.setdefault("runtime", {})["progress"] = False

    def go() -> None:
        cfg = build_config(quick=quick, config=config, overrides=overrides)
        from faceleaks.evaluation.attributes import run_attribute_experiment
        from faceleaks.progress import set_enabled
        from faceleaks.report.render import write_attribute_report

        set_enabled(cfg.runtime.progress)
        out_dir = Path(cfg.output_dir)
        claim_output(out_dir, run_settings(cfg.to_dict()), command="attributes", force=force)
        cache = Path(cfg.runtime.cache_dir).expanduser() if cfg.runtime.cache_dir else default_cache_dir()
        with marked_run(out_dir):
            record = run_attribute_experiment(cfg, out_dir=out_dir, cache_dir=cache)
            for name, path in write_attribute_report(record, out_dir).items():
                console.print(f"{name}: {path}")
            html_after_run(out_dir, console)

    _run_guarded(go)


from faceleaks.cli.audit import audit_app  # noqa: E402  (issue 15: serve, keys, audit)
from faceleaks.cli.defend import register as _register_defend  # noqa: E402
from faceleaks.cli.serve import keys_app, serve  # noqa: E402

app.command()(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
_register_report(app, run_guarded=_run_guarded)
_register_defend(app, build_config=build_config, run_guarded=_run_guarded, console=console,
                 default_cache_dir=default_cache_dir, overrides=_overrides, parse_ints=_parse_ints)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
