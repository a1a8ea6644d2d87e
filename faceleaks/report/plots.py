"""Figures from a ``RunRecord`` (no file I/O here; ``render`` saves them)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.evaluation.results import MembershipReport, RunRecord  # noqa: E402
from faceleaks.evaluation.sweep_results import SweepRow  # noqa: E402

__all__ = ["roc_figure", "auc_vs_k_figure", "sweep_roc_figure"]


def _pick(record: RunRecord, student: str, setting: str, teacher: str = "victim") -> list[MembershipReport]:
    return [m for m in record.membership if m.student == student and m.setting == setting and m.teacher == teacher]


_SETTING_ORDER = {"training-photos": 0, "unseen-photos": 1}


def _roc_k(reps: list[MembershipReport], prefer: int = 5, min_nonmembers: int = 30) -> int:
    """``prefer`` if the identity attacks have it, else the largest k with at least ``min_nonmembers``
    non-member identities (else the largest k)."""
    ks = sorted({m.k for m in reps if m.level == "identity"})
    if prefer in ks:
        return prefer
    good = [k for k in ks if all(m.n_nonmembers >= min_nonmembers for m in reps if m.level == "identity" and m.k == k)]
    return (good or ks or [1])[-1]


def _resolved(m: MembershipReport, floor: float = 0.0) -> tuple[list[float], list[float]]:
    """ROC points from one false positive on (below it the curve is not resolved); TPR at least
    ``floor`` (a log axis cannot show 0)."""
    n_neg = m.n_nonmember_photos if m.level == "instance" else m.n_nonmembers
    pts = [(f, t) for f, t in zip(m.roc.fpr, m.roc.tpr) if f >= 1.0 / max(n_neg, 1) - 1e-12]
    return [p[0] for p in pts], [max(p[1], floor) for p in pts]


def roc_figure(record: RunRecord, *, log_scale: bool = True, k: int = 5) -> Figure:
    """One panel per (student, setting): ROC of the per-photo attacks (dashed), of the identity
    attacks at ``k`` photos per person (solid; the largest k with >= 30 non-member identities if
    there is no ``k``) and, thin grey, the same identity attacks on the negative-control teacher."""
    students = sorted({m.student for m in record.membership})
    settings = sorted({m.setting for m in record.membership}, key=lambda x: _SETTING_ORDER.get(x, 9))
    fig, axes = plt.subplots(len(students), len(settings), figsize=(8.0 * len(settings), 4.5 * len(students)),
                             squeeze=False)
    for i, student in enumerate(students):
        for j, setting in enumerate(settings):
            ax = axes[i][j]
            reps = _pick(record, student, setting)
            kk = _roc_k(reps, prefer=k)
            shown = [m for m in reps if m.level == "instance" or m.k == kk]
            control = [m for m in _pick(record, student, setting, "control") if m.level == "identity" and m.k == kk]
            lo = 1e-3
            floor = lo if log_scale else 0.0
            for n, m in enumerate(control):
                ax.plot(*_resolved(m, floor), "-", color="0.65", lw=0.7, label="control teacher" if n == 0 else None)
            ax.set_prop_cycle(color=[plt.get_cmap("tab20")(c % 20) for c in range(len(shown))])
            for m in shown:
                style = "--" if m.level == "instance" else "-"
                ax.plot(*_resolved(m, floor), style, label=f"{m.attack} ({m.auc:.2f})", lw=1.2)
            ax.plot([lo, 1], [lo, 1], ":", color="grey", lw=0.8)
            if log_scale:
                ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlim(lo, 1); ax.set_ylim(lo, 1.02)  # noqa: E702
            ax.set_title(f"{student} — {setting} (identity attacks at k = {kk})", fontsize=10)
            ax.set_xlabel("false positive rate"); ax.set_ylabel("true positive rate")  # noqa: E702
            # beside the panel, not over the curves (the low-FPR corner is what matters)
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), title="AUC", title_fontsize=7)
    fig.suptitle("Membership of the teacher's identities through black-box students (AUC in legend)")
    fig.tight_layout()
    return fig


def auc_vs_k_figure(record: RunRecord) -> Figure:
    """AUC against k per identity attack (victim: solid, with 95 % CI; control: dashed), per student and setting."""
    keys = sorted({(m.student, m.setting) for m in record.membership if m.level == "identity"},
                  key=lambda x: (x[0], _SETTING_ORDER.get(x[1], 9)))
    families = sorted({m.attack.split("@")[0] for m in record.membership if m.level == "identity"})
    colours = {f: plt.get_cmap("tab10")(i % 10) for i, f in enumerate(families)}
    ncols = 2
    nrows = max(1, (len(keys) + 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 4.2 * nrows), squeeze=False, sharey=True)
    for ax, (student, setting) in zip(axes.ravel(), keys):
        for teacher in ("victim", "control"):
            reps = [m for m in _pick(record, student, setting, teacher) if m.level == "identity"]
            for family in families:
                pts = sorted((m.k, m.auc, m.auc_ci) for m in reps if m.attack.split("@")[0] == family)
                if not pts:
                    continue
                ks, aucs = [p[0] for p in pts], [p[1] for p in pts]
                if teacher == "victim":
                    err = [[p[1] - p[2][0] for p in pts], [p[2][1] - p[1] for p in pts]]
                    ax.errorbar(ks, aucs, yerr=err, marker="o", capsize=2, color=colours[family], label=family)
                else:
                    ax.plot(ks, aucs, ls="--", lw=1, alpha=0.6, color=colours[family])
        ax.axhline(0.5, color="grey", ls=":")
        ax.set_xscale("log")
        ax.set_xticks(sorted({m.k for m in record.membership if m.level == "identity"}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("k photos per identity"); ax.set_ylabel("AUC")  # noqa: E702
        ax.set_title(f"{student} — {setting}", fontsize=10)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(matplotlib.lines.Line2D([], [], ls="--", color="grey"))
    labels.append("control teacher (saw no evaluated identity)")
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.suptitle("Identity-level membership AUC against photos per identity (bars: 95 % bootstrap CI)")
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    return fig


def sweep_roc_figure(rows: list[SweepRow], *, student: str = "lfw-identity", k: int = 5) -> Figure:
    """Log-scale ROC of every identity attack at ``k`` through ``student``, people of all seeds pooled
    (rows from ``summarise_seeds``): victim solid, negative control dashed grey; one panel per setting.
    Each curve starts at the smallest FPR its pooled non-members resolve."""
    mine = [r for r in rows if r.pooled_roc and r.student == student and r.attack.endswith(f"@k={k}")]
    settings = sorted({r.setting for r in mine}, key=lambda x: _SETTING_ORDER.get(x, 9)) or ["(none)"]
    fig, axes = plt.subplots(1, len(settings), figsize=(6.5 * len(settings), 5.2), squeeze=False)
    families = sorted({r.attack.split("@")[0] for r in mine})
    colours = {f: plt.get_cmap("tab10" if len(families) <= 10 else "tab20")(i % 20) for i, f in enumerate(families)}
    lo = 1e-3
    for ax, setting in zip(axes[0], settings):
        for r in sorted((r for r in mine if r.setting == setting), key=lambda r: (r.teacher != "victim", r.attack)):
            n_neg = max(r.pooled_n_nonmembers, 1)
            pts = [(f, t) for f, t in zip(r.pooled_roc.fpr, r.pooled_roc.tpr) if f >= 1.0 / n_neg - 1e-12]
            fam = r.attack.split("@")[0]
            victim = r.teacher == "victim"
            ax.plot([p[0] for p in pts], [max(p[1], lo) for p in pts], "-" if victim else "--",
                    color=colours[fam] if victim else "0.6", lw=1.4 if victim else 0.8,
                    label=f"{fam} ({r.pooled_auc:.2f})" if victim else None)
        ax.plot([lo, 1], [lo, 1], ":", color="grey", lw=0.8)
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlim(lo, 1); ax.set_ylim(lo, 1.02)  # noqa: E702
        ax.set_title(f"{student}, {setting}, k = {k} (grey dashed: control)", fontsize=10)
        ax.set_xlabel("false positive rate"); ax.set_ylabel("true positive rate")  # noqa: E702
        ax.legend(fontsize=7, loc="lower right", title="victim (pooled AUC)", title_fontsize=7)
    seeds = mine[0].seeds if mine else []
    fig.suptitle(f"Identity-level membership, people of seeds {', '.join(map(str, seeds))} pooled")
    fig.tight_layout()
    return fig
