"""Write a run's output folder: results.json, summary.md, roc.png, auc_vs_k.png."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from faceleaks.evaluation.results import RunRecord
from faceleaks.report.plots import auc_vs_k_figure, roc_figure
from faceleaks.report.tables import summary_markdown

__all__ = ["write_report", "write_sweep", "write_attribute_report"]


def write_report(record: RunRecord, out_dir: Path) -> dict[str, Path]:
    """Write every file of the report into ``out_dir``; returns name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "summary": out / "summary.md", "roc": out / "roc.png",
             "auc_vs_k": out / "auc_vs_k.png"}
    record.to_json(paths["results"])
    paths["summary"].write_text(summary_markdown(record))
    figures = [("roc", roc_figure(record)), ("auc_vs_k", auc_vs_k_figure(record))]
    if record.attributes:
        from faceleaks.report.attribute_report import budget_figure

        paths["attributes"] = out / "attributes.png"
        figures.append(("attributes", budget_figure(_attribute_record(record))))
    for key, fig in figures:
        fig.savefig(paths[key], dpi=110)
        plt.close(fig)
    return paths


def _attribute_record(record: RunRecord):
    from faceleaks.evaluation.attribute_results import AttributeRecord

    return AttributeRecord.from_dict({**record.attributes, "timings_s": {}})


def write_sweep(rows: list[dict], out_dir: Path) -> Path:
    """Write ``sweep.json`` (NaN as null), ``sweep.md`` (AUC mean ± sd over seeds, pooled AUC and TPR)
    and ``sweep_roc.png`` (pooled log-scale ROC curves); returns the markdown path."""
    import json

    from faceleaks.evaluation.results import json_safe
    from faceleaks.report.plots import sweep_roc_figure
    from faceleaks.report.tables import sweep_markdown

    out = Path(out_dir)
    (out / "sweep.json").write_text(json.dumps({"schema_version": 1, "rows": json_safe(rows)}, indent=1,
                                               allow_nan=False) + "\n")
    (out / "sweep.md").write_text(sweep_markdown(rows))
    if any("pooled_roc" in r for r in rows):
        fig = sweep_roc_figure(rows)
        fig.savefig(out / "sweep_roc.png", dpi=120)
        plt_close(fig)
    return out / "sweep.md"


def plt_close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def write_attribute_report(record, out_dir: Path) -> dict[str, Path]:
    """Write ``attributes.json``, ``attributes.md`` and ``attributes.png`` for an ``AttributeRecord``."""
    from faceleaks.report.attribute_report import attribute_markdown, budget_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "attributes.json", "summary": out / "attributes.md", "plot": out / "attributes.png"}
    record.to_json(paths["results"])
    paths["summary"].write_text("# FaceLeaks attribute inference\n\n" + attribute_markdown(record))
    fig = budget_figure(record)
    fig.savefig(paths["plot"], dpi=110)
    plt.close(fig)
    return paths
