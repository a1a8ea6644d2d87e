"""Figures made for ``report.html`` (no file I/O): the headline attack's log-log ROC beside its control."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.config.report import HeadlineSpec  # noqa: E402
from faceleaks.evaluation.results import MembershipReport  # noqa: E402

__all__ = ["headline_roc_figure"]

_LO = 1e-3


def _resolved(m: MembershipReport) -> tuple[list[float], list[float]]:
    """ROC points from one false positive on (below it the curve is not resolved); TPR floored for the log axis."""
    n_neg = m.n_nonmember_photos if m.level == "instance" else m.n_nonmembers
    pts = [(f, t) for f, t in zip(m.roc.fpr, m.roc.tpr) if f >= 1.0 / max(n_neg, 1) - 1e-12]
    return [p[0] for p in pts], [max(p[1], _LO) for p in pts]


def headline_roc_figure(membership: tuple[MembershipReport, ...], spec: HeadlineSpec) -> Figure:
    """Log-log ROC through the headline student, one panel per setting: the headline attack on the
    victim (thick) and on the control teacher (grey), and the per-photo attacks (dashed, victim).

    Each curve starts at one false positive (its smallest resolved FPR); the dotted diagonal is chance.
    """
    mine = [m for m in membership if m.student == spec.student]
    settings = sorted({m.setting for m in mine}, key=lambda s: s != spec.setting) or [spec.setting]
    fig, axes = plt.subplots(1, len(settings), figsize=(5.6 * len(settings), 4.4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = [m for m in mine if m.setting == setting]
        for m in (m for m in rows if m.level == "instance" and m.teacher == "victim"):
            ax.plot(*_resolved(m), "--", lw=1.0, label=f"per photo: {m.attack} ({m.auc:.2f})")
        for m in (m for m in rows if m.attack == spec.row_name and m.level == spec.level):
            victim = m.teacher == "victim"
            ax.plot(*_resolved(m), "-", lw=2.2 if victim else 1.2, color="C3" if victim else "0.55",
                    label=f"{'headline' if victim else 'control'}: {m.attack} ({m.auc:.2f})")
        ax.plot([_LO, 1], [_LO, 1], ":", color="k", lw=0.8)
        ax.set(xscale="log", yscale="log", xlim=(_LO, 1), ylim=(_LO, 1.02), xlabel="false positive rate",
               ylabel="true positive rate (members found)", title=f"{spec.student}, {setting}")
        ax.legend(fontsize=7, loc="lower right", title="AUC in brackets", title_fontsize=7)
    fig.tight_layout()
    return fig
