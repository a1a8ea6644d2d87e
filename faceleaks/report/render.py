"""Write output folders: a run's (results.json, summary.md, roc.png, auc_vs_k.png, attributes.png),
a sweep's (sweep.json, sweep.md, sweep_roc.png) and the attribute study's (attributes.*)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from faceleaks.atomic import atomic_save_figure, atomic_write_text
from faceleaks.evaluation.attribute_results import AttributeRecord
from faceleaks.evaluation.results import RunRecord, write_results
from faceleaks.evaluation.sweep_results import SweepRow, write_sweep_json
from faceleaks.report.attribute_report import attribute_markdown, budget_figure
from faceleaks.report.plots import auc_vs_k_figure, roc_figure, sweep_roc_figure
from faceleaks.report.tables import summary_markdown, sweep_markdown

__all__ = ["write_report", "write_sweep", "write_attribute_report"]


def _save(fig: Figure, path: Path, dpi: int) -> None:
    try:
        atomic_save_figure(path, fig, dpi=dpi)
    finally:
        plt.close(fig)


def write_report(record: RunRecord, out_dir: Path) -> dict[str, Path]:
    """Write every file of a run's report into ``out_dir`` (created if missing).

    Returns
    -------
    paths : dict of str to Path
        ``results``, ``summary``, ``roc`` and ``auc_vs_k`` (when there is a membership result) and,
        with an attribute record, ``attributes``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "summary": out / "summary.md", "roc": out / "roc.png",
             "auc_vs_k": out / "auc_vs_k.png"}
    write_results(record, paths["results"])
    atomic_write_text(paths["summary"], summary_markdown(record))
    figures = []
    if record.membership:  # no membership result (e.g. every k skipped): no membership plots
        figures = [("roc", roc_figure(record)), ("auc_vs_k", auc_vs_k_figure(record))]
    else:
        del paths["roc"], paths["auc_vs_k"]
    if record.attributes is not None:
        paths["attributes"] = out / "attributes.png"
        figures.append(("attributes", budget_figure(record.attributes)))
    for key, fig in figures:
        _save(fig, paths[key], dpi=110)
    return paths


def write_sweep(rows: list[SweepRow], out_dir: Path) -> Path:
    """Write a sweep's files into ``out_dir`` (which must exist) for ``summarise_seeds`` rows.

    ``sweep.json`` (``write_sweep_json``: NaN as null), ``sweep.md`` (AUC mean ± sd over seeds,
    pooled AUC and TPR) and, when a row is pooled, ``sweep_roc.png`` (pooled log-scale ROC curves).

    Returns
    -------
    path : Path
        The markdown file, ``out_dir / "sweep.md"``.
    """
    out = Path(out_dir)
    write_sweep_json(rows, out / "sweep.json")
    atomic_write_text(out / "sweep.md", sweep_markdown(rows))
    if any(r.is_pooled for r in rows):
        _save(sweep_roc_figure(rows), out / "sweep_roc.png", dpi=120)
    return out / "sweep.md"


def write_attribute_report(record: AttributeRecord, out_dir: Path) -> dict[str, Path]:
    """Write ``attributes.json``, ``attributes.md`` and ``attributes.png`` for an ``AttributeRecord``.

    Returns
    -------
    paths : dict of str to Path
        ``results``, ``summary`` and ``plot``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "attributes.json", "summary": out / "attributes.md", "plot": out / "attributes.png"}
    record.to_json(paths["results"])
    atomic_write_text(paths["summary"], "# FaceLeaks attribute inference\n\n" + attribute_markdown(record))
    _save(budget_figure(record), paths["plot"], dpi=110)
    return paths
