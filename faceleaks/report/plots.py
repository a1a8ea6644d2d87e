"""Figures from a ``RunRecord`` (no file I/O here; ``render`` saves them)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.evaluation.results import MembershipReport, RunRecord  # noqa: E402

__all__ = ["roc_figure", "auc_vs_k_figure"]


def _pick(record: RunRecord, student: str, setting: str, teacher: str = "victim") -> list[MembershipReport]:
    return [m for m in record.membership if m.student == student and m.setting == setting and m.teacher == teacher]


def roc_figure(record: RunRecord, *, log_scale: bool = True) -> Figure:
    """One panel per (student, setting): ROC of the instance attacks and the identity attacks at the largest k."""
    students = sorted({m.student for m in record.membership})
    settings = sorted({m.setting for m in record.membership}, reverse=True)
    fig, axes = plt.subplots(len(students), len(settings), figsize=(5.5 * len(settings), 4.5 * len(students)),
                             squeeze=False)
    for i, student in enumerate(students):
        for j, setting in enumerate(settings):
            ax = axes[i][j]
            reps = _pick(record, student, setting)
            kmax = max((m.k for m in reps if m.level == "identity"), default=1)
            for m in reps:
                if m.level == "instance" or m.k == kmax:
                    style = "--" if m.level == "instance" else "-"
                    ax.plot(m.roc.fpr, m.roc.tpr, style, label=f"{m.attack} ({m.auc:.2f})", lw=1.2)
            lo = 1e-3
            ax.plot([lo, 1], [lo, 1], ":", color="grey", lw=0.8)
            if log_scale:
                ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlim(lo, 1); ax.set_ylim(lo, 1.02)  # noqa: E702
            ax.set_title(f"{student} — {setting}", fontsize=10)
            ax.set_xlabel("false positive rate"); ax.set_ylabel("true positive rate")  # noqa: E702
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Membership of the teacher's identities through black-box students (AUC in legend)")
    fig.tight_layout()
    return fig


def auc_vs_k_figure(record: RunRecord) -> Figure:
    """AUC (with 95 % bootstrap CI) of each identity-level attack against k, per student and setting."""
    keys = sorted({(m.student, m.setting) for m in record.membership if m.level == "identity"})
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4.5 * max(1, len(keys)), 4), squeeze=False)
    for ax, (student, setting) in zip(axes[0], keys):
        for teacher, alpha in (("victim", 1.0), ("control", 0.35)):
            reps = [m for m in _pick(record, student, setting, teacher) if m.level == "identity"]
            for family in sorted({m.attack.split("@")[0] for m in reps}):
                pts = sorted((m.k, m.auc, m.auc_ci) for m in reps if m.attack.split("@")[0] == family)
                ks = [p[0] for p in pts]
                ax.errorbar(ks, [p[1] for p in pts], yerr=[[p[1] - p[2][0] for p in pts], [p[2][1] - p[1] for p in pts]],
                            marker="o", capsize=2, alpha=alpha, label=f"{family}" + (" (control)" if teacher == "control" else ""))
        ax.axhline(0.5, color="grey", ls=":")
        ax.set_xscale("log"); ax.set_xlabel("k photos per identity"); ax.set_ylabel("AUC")  # noqa: E702
        ax.set_title(f"{student} — {setting}", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
