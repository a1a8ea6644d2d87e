"""sweep.md, sweep_roc.png and the sweep folder from typed ``SweepRow`` records."""

import matplotlib.pyplot as plt

from faceleaks.evaluation.results import RocCurve
from faceleaks.evaluation.sweep_results import SweepRow, read_sweep_json
from faceleaks.report.plots import sweep_roc_figure
from faceleaks.report.render import write_sweep
from faceleaks.report.tables import sweep_markdown


def _row(teacher, attack, level="identity", pooled=True, auc=0.8):
    extra = dict(pooled_auc=auc, pooled_auc_ci=(auc - 0.1, auc + 0.05),
                 pooled_roc=RocCurve([0.0, 0.01, 0.5, 1.0], [0.0, 0.2, 0.9, 1.0]),
                 pooled_tpr_at_fpr={0.1: 0.5, 0.001: float("nan")}, pooled_n_members=120,
                 pooled_n_nonmembers=150) if pooled else {}
    return SweepRow(teacher, "lfw-identity", "training-photos", level, attack, 0.7, 0.02, (3, 4), (0.68, 0.72),
                    **extra)


ROWS = [_row("control", "lira@k=5", auc=0.51), _row("victim", "lira@k=10", auc=0.9),
        _row("victim", "lira@k=5"), _row("victim", "threshold-max", level="instance", pooled=False)]


def test_sweep_markdown_orders_rows_and_shows_pooled_cells():
    lines = sweep_markdown(ROWS).splitlines()
    assert lines[0] == "# FaceLeaks sweep over seeds 3, 4"
    assert "TPR at FPR 10.0% / 0.1% (n/a:" in lines[2]
    table = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert table == [
        "| victim | lfw-identity | training-photos | instance | threshold-max | 0.700 ± 0.020 | 0.68 0.72 |  |  |  |",
        "| victim | lfw-identity | training-photos | identity | lira@k=5 | 0.700 ± 0.020 | 0.68 0.72 "
        "| 0.800 [0.700, 0.850] | 0.500 / n/a | 120+150 |",
        "| victim | lfw-identity | training-photos | identity | lira@k=10 | 0.700 ± 0.020 | 0.68 0.72 "
        "| 0.900 [0.800, 0.950] | 0.500 / n/a | 120+150 |",
        "| control | lfw-identity | training-photos | identity | lira@k=5 | 0.700 ± 0.020 | 0.68 0.72 "
        "| 0.510 [0.410, 0.560] | 0.500 / n/a | 120+150 |"]


def test_sweep_roc_figure_draws_pooled_rows_at_k():
    fig = sweep_roc_figure(ROWS, k=5)
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.lines]
    assert "lira (0.80)" in labels and not any("0.90" in label for label in labels)  # k=10 is not drawn
    victim = next(line for line in ax.lines if line.get_label() == "lira (0.80)")
    assert list(victim.get_xdata()) == [0.01, 0.5, 1.0]  # from 1/150 non-members on
    assert "seeds 3, 4 pooled" in fig._suptitle.get_text()
    plt.close(fig)


def test_write_sweep_writes_readable_json_markdown_and_plot(tmp_path):
    path = write_sweep(ROWS, tmp_path)
    assert path == tmp_path / "sweep.md" and path.read_text() == sweep_markdown(ROWS)
    assert [r.to_dict() for r in read_sweep_json(tmp_path / "sweep.json")] == [r.to_dict() for r in ROWS]
    assert (tmp_path / "sweep_roc.png").stat().st_size > 1000
    unpooled = tmp_path / "unpooled"
    unpooled.mkdir()
    write_sweep(ROWS[-1:], unpooled)
    assert not (unpooled / "sweep_roc.png").exists() and (unpooled / "sweep.md").exists()
