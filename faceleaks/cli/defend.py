"""``faceleaks defend``: the privacy–utility sweep over defence settings (issue 14).

Registered on the main app by ``register(app, ...)`` (``cli/main.py`` passes its shared helpers:
config building, the error guard, the console), so this module never imports ``cli.main``.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from faceleaks.atomic import atomic_write_text
from faceleaks.config.defence import DEFAULT_DEFENCE_GRID

__all__ = ["register", "defend"]

_CLI: dict = {}


def register(app: typer.Typer, **helpers) -> None:
    """Add the ``defend`` command to ``app``; ``helpers``: build_config, run_guarded, console,
    default_cache_dir, overrides, parse_ints (see ``cli.main``)."""
    _CLI.update(helpers)
    app.command("defend")(defend)


def _grid(quick: bool, grid: Optional[Path], only: Optional[str]):
    from faceleaks.config.defence import DEFAULT_DEFENCE_GRID, QUICK_DEFENCE_GRID, load_grid
    from faceleaks.errors import ConfigError

    settings = load_grid(grid) if grid is not None else (QUICK_DEFENCE_GRID if quick else DEFAULT_DEFENCE_GRID)
    if only:
        wanted = [s.strip() for s in only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {s.name for s in settings})
        if unknown:
            raise ConfigError(f"--only names unknown setting(s) {unknown}; the grid has {[s.name for s in settings]}")
        settings = tuple(s for s in settings if s.name in wanted)
    return settings


def _print(records, paths) -> None:
    from faceleaks.report.format import fmt

    table = Table(title="Defences: utility (owner) and privacy (best adaptive attack) per setting (full: summary.md)")
    for col in ("setting", "member id. acc. (head)", "ε", "lfw-identity acc. (API)", "headline AUC", "best adaptive",
                "AUC", "queries"):
        table.add_column(col)
    for r in records:
        best, head = r.best_adaptive, r.headline
        eps = "∞" if r.dp_epsilon != r.dp_epsilon else f"{r.dp_epsilon:.1f}"
        table.add_row(r.setting, fmt(r.identification_accuracy), eps, fmt(r.defended_student_accuracy.get("lfw-identity")),
                      fmt(None if head is None else head.auc), "n/a" if best is None else best.attack,
                      fmt(None if best is None else best.auc), str(sum(r.queries.values())))
    _CLI["console"].print(table)
    for name, path in paths.items():
        _CLI["console"].print(f"{name}: {path}")


def _run_seeds(cfg, seeds: tuple[int, ...], out_dir: Path, run) -> None:
    """The grid once per seed (``OUT/seed-<s>/defend/``), then ``OUT/defend/seeds.md`` over seeds."""
    from dataclasses import replace

    from faceleaks.cli.report import html_after_run

    from faceleaks.report.defend import seeds_table, write_defend_report

    by_seed = {}
    for s in seeds:
        sub = out_dir / f"seed-{s}"
        by_seed[s] = run(replace(cfg, seed=s, output_dir=str(sub)), out_dir=sub)
        write_defend_report(by_seed[s], sub)
    path = out_dir / "defend" / "seeds.md"
    atomic_write_text(path, seeds_table(by_seed))
    _CLI["console"].print(seeds_table(by_seed))
    _CLI["console"].print(f"over seeds: {path}")
    html_after_run(out_dir / "defend", _CLI["console"])  # OUT/defend/report.html, with the per-seed table


_DEFAULT_NAMES = [s.name for s in DEFAULT_DEFENCE_GRID]


def defend(
    quick: bool = typer.Option(False, "--quick", help="Quick preset and a 3-setting grid (none, rounding d=1, Gaussian 0.05)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file of run settings (see README)."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="TOML file of \\[\\[setting]] tables (name, output = {name, params}, teacher = {...})."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these settings of the grid, comma-separated (default grid: " + ", ".join(_DEFAULT_NAMES) + ")."),
    k: int = typer.Option(5, "--k", help="Photos per identity of the identity-level attacks."),
    shadows: int = typer.Option(0, "--shadows", help="Shadow teachers per victim recipe for LiRA, their students behind the same defence (0: no LiRA)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random choice (default 0)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Repeat the grid over these seeds, e.g. 0,1,2 (OUT/seed-<s>/defend/, plus OUT/defend/seeds.md)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default ./faceleaks-out); results in OUT/defend/."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache folder."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default 2)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what is cached, loaded and trained."),
) -> None:
    """Put each defence of a grid in place, rerun the attacks (adaptive ones included), report privacy and utility.

    Finished settings (same settings, same key) are read back from OUT/defend/<setting>/results.json.
    The owner's secret for per-image noise is $FACELEAKS_DEFENCE_SECRET, else one derived from the seed.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = _CLI["overrides"](seed=seed, out=out, teacher=None, output=None, cache_dir=cache_dir, threads=threads)
    if no_progress:
        overrides.setdefault("runtime", {})["progress"] = False

    def go() -> None:
        from faceleaks.cli.report import html_after_run
        from faceleaks.config.defence import DefendConfig
        from faceleaks.evaluation.defend import run_defend
        from faceleaks.progress import set_enabled
        from faceleaks.report.defend import write_defend_report

        cfg = _CLI["build_config"](quick=quick, config=config, overrides=overrides)
        dcfg = DefendConfig(grid=_grid(quick, grid, only), k=k, n_shadow_teachers=shadows)
        set_enabled(cfg.runtime.progress)
        out_dir = Path(cfg.output_dir)
        cache = Path(cfg.runtime.cache_dir).expanduser() if cfg.runtime.cache_dir else _CLI["default_cache_dir"]()
        secret = os.environ.get("FACELEAKS_DEFENCE_SECRET")
        run = partial(run_defend, dcfg=dcfg, cache_dir=cache, secret=secret.encode() if secret else None)
        if seeds:
            _run_seeds(cfg, _CLI["parse_ints"](seeds, "--seeds", "0,1,2"), out_dir, run)
            return
        records = run(cfg, out_dir=out_dir)
        _print(records, write_defend_report(records, out_dir))
        html_after_run(out_dir / "defend", _CLI["console"])

    _CLI["run_guarded"](go)
