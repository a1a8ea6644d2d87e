"""Figures made for ``report.html`` (no file I/O): the headline attack's log-log ROC beside its control."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.config.report import HeadlineSpec  # noqa: E402
from faceleaks.evaluation.results import MembershipReport  # noqa: E402

__all__ = ["headline_roc_figure", "headline_k_figure"]

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
    fig, axes = plt.subplots(1, len(settings), figsize=(6.4 * len(settings), 5.0), squeeze=False)
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
        ax.legend(fontsize=8, loc="lower right", title="AUC in brackets", title_fontsize=8)
    fig.tight_layout()
    return fig


def headline_k_figure(membership: tuple[MembershipReport, ...], spec: HeadlineSpec) -> Figure:
    """AUC against k for the headline attack family through the headline student, one panel per setting:
    victim (red) and control (grey) with their intervals; the per-photo attacks on the victim as dashed
    horizontal lines (per photo beside per person)."""
    family = spec.attack
    mine = [m for m in membership if m.student == spec.student]
    settings = sorted({m.setting for m in mine}, key=lambda s: s != spec.setting) or [spec.setting]
    fig, axes = plt.subplots(1, len(settings), figsize=(6.4 * len(settings), 4.8), squeeze=False, sharey=True)
    for ax, setting in zip(axes[0], settings):
        for teacher, colour in (("victim", "C3"), ("control", "0.5")):
            pts = sorted((m.k, m.auc, m.auc_ci) for m in mine if m.setting == setting and m.teacher == teacher
                         and m.level == "identity" and m.attack.split("@")[0] == family)
            if pts:
                err = [[p[1] - p[2][0] for p in pts], [p[2][1] - p[1] for p in pts]]
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=err, marker="o", capsize=3,
                            color=colour, label=f"{family}, {teacher}")
        for i, m in enumerate(m for m in mine if m.setting == setting and m.teacher == "victim" and m.level == "instance"):
            ax.axhline(m.auc, ls="--", lw=0.9, color=f"C{i}", label=f"per photo: {m.attack}")
        ax.axhline(0.5, ls=":", color="k", lw=0.8)
        ks = sorted({m.k for m in mine if m.level == "identity"})
        ax.set(xscale="log", xlabel="k photos per person", ylabel="AUC", title=f"{spec.student}, {setting}")
        ax.set_xticks(ks or [1], [str(k) for k in ks] or ["1"])
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig
