"""Report of the random-inclusion (N-victim) run: ``inclusion.json``, ``inclusion.md``, ``inclusion_roc.png``.

Reads the typed ``InclusionRecord`` only (no torch): a markdown table (victim beside control, with
intervals from a bootstrap over people and the empirical epsilon lower bound), the cost, and a
log-log ROC per k (the LiRA paper's figure), each curve starting at one false positive.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.atomic import atomic_save_figure, atomic_write_text  # noqa: E402
from faceleaks.evaluation.inclusion_results import InclusionRecord, InclusionRow, write_inclusion  # noqa: E402
from faceleaks.report.format import fmt, markdown_table  # noqa: E402

__all__ = ["inclusion_markdown", "inclusion_roc_figure", "write_inclusion_report"]

_EPSILON_NOTE = (
    "Epsilon lower bound: identity-level (adding or removing one person with all their photos), at "
    "delta = 1e-5 with 95 % confidence; the threshold is chosen on the first half of the victims and the "
    "counts are taken on the others (Clopper-Pearson bounds, `faceleaks.privacy_bounds`). Clopper-Pearson "
    "treats the counted decisions as independent Bernoulli trials; here they share people (a person is "
    "audited by every victim) and victims (a victim audits every person), so the effective number of trials "
    "is smaller than the count and the bound is optimistic to that extent.")


def _ci(pair: tuple[float, float]) -> str:
    return f"[{fmt(pair[0], 2)}, {fmt(pair[1], 2)}]"


def _find(record: InclusionRecord, row: InclusionRow, teacher: str) -> InclusionRow | None:
    return next((r for r in record.rows if r.teacher == teacher and r.attack == row.attack
                 and r.student == row.student and r.k == row.k), None)


def _cells(row: InclusionRow | None, fprs: list[float]) -> list[str]:
    if row is None:
        return ["–"] * (1 + len(fprs))
    out = [f"{fmt(row.auc)} {_ci(row.auc_ci)}"]
    out += [f"{fmt(row.tpr_at_fpr.get(f), 3)} {_ci(row.tpr_ci.get(f, (float('nan'),) * 2))}" for f in fprs]
    return out


def inclusion_markdown(record: InclusionRecord) -> str:
    """``inclusion.md``: setup, one line per (student, k, attack) with victim and control, cost, notes."""
    fprs = sorted({f for r in record.rows for f in r.tpr_at_fpr if f <= 0.01}, reverse=True)
    header = ["student", "k", "attack", "decisions (member / non-member)", "victim AUC [95 % CI]",
              *[f"victim TPR at {f:g} FPR [CI]" for f in fprs], "epsilon lower bound",
              "control AUC [CI]", *[f"control TPR at {f:g} FPR" for f in fprs]]
    lines = []
    for row in sorted((r for r in record.rows if r.teacher == "victim"), key=lambda r: (r.student, r.k, r.attack)):
        control = _find(record, row, "control")
        eps = fmt(row.epsilon.epsilon, 2) if row.epsilon is not None else "n/a"
        lines.append([row.student, str(row.k), row.attack, f"{row.n_member_decisions} / {row.n_nonmember_decisions}",
                      *_cells(row, fprs), eps, *_cells(control, fprs)[:1],
                      *(fmt(control.tpr_at_fpr.get(f), 3) if control else "–" for f in fprs)])
    pool, cost = record.pool, record.cost
    parts = [
        "# FaceLeaks: membership by random inclusion (N victims)\n",
        f"{record.n_victims} victim teachers (recipe `{record.recipe}`), each fine-tuned on a seeded random {record.member_fraction:.0%} of a "
        f"pool of {len(pool.people)} LFW people (>= {pool.min_photos} photos; roles left out: "
        f"{', '.join(pool.excluded_roles)}); each attacked with the other {record.n_victims - 1} as shadows "
        "(leave-one-out). Training-photos setting. People audited per k: "
        + ", ".join(f"k = {k}: {n}" for k, n in sorted(pool.eligible.items())) + ". Intervals: 95 % bootstrap "
        "over people (all of a person's decisions resampled together; victims not resampled). Control: "
        "dlib's unmodified model with students, scored with the same shadows and labels (nobody is a member).\n",
        markdown_table(header, lines), "", _EPSILON_NOTE, "",
        "## Cost\n",
        f"Whole run {fmt(cost.seconds, 1)} s ({fmt(cost.seconds_per_victim, 1)} s per victim; "
        f"{fmt(cost.seconds_per_audited_identity, 4)} s and {fmt(cost.victim_queries_per_audited_identity, 1)} "
        f"victim queries per audited (victim, person) pair); victims fine-tuned this run: "
        f"{cost.n_trained_this_run} of {record.n_victims} (fine-tuning time recorded: "
        f"{fmt(cost.train_seconds, 1)} s; executor {cost.executor}, {cost.workers} workers). Stages: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in record.timings_s.items()) + ".",
    ]
    if record.warnings:
        parts += ["", "## Warnings\n", *(f"- {w}" for w in record.warnings)]
    return "\n".join(parts) + "\n"


def inclusion_roc_figure(record: InclusionRecord, *, student: str = "lfw-identity") -> Figure:
    """Log-log ROC, one panel per k: every attack on the victims (solid) and on the control (thin grey)."""
    ks = sorted({r.k for r in record.rows if r.student == student})
    fig, axes = plt.subplots(1, max(len(ks), 1), figsize=(5.2 * max(len(ks), 1), 4.8), squeeze=False)
    for ax, k in zip(axes[0], ks):
        rows = [r for r in record.rows if r.student == student and r.k == k]
        lo = min((r.roc.fpr[0] for r in rows if r.roc.fpr), default=1e-3)
        for r in rows:
            tpr = [max(t, lo) for t in r.roc.tpr]
            if r.teacher == "victim":
                ax.plot(r.roc.fpr, tpr, lw=1.6, label=f"{r.attack.split('@')[0]} (AUC {r.auc:.3f})")
            else:
                ax.plot(r.roc.fpr, tpr, lw=0.7, color="0.6")
        ax.plot([lo, 1], [lo, 1], ls=":", color="k", lw=0.8)
        ax.set(xscale="log", yscale="log", xlim=(lo, 1), ylim=(lo, 1.02), xlabel="FPR", ylabel="TPR",
               title=f"{student}, k = {k} ({rows[0].n_nonmember_decisions} non-member decisions)" if rows else "")
        ax.legend(fontsize=7, loc="lower right", title="grey: control", title_fontsize=7)
    fig.suptitle(f"Random inclusion, {record.n_victims} victims (leave-one-out shadows)")
    fig.tight_layout()
    return fig


def write_inclusion_report(record: InclusionRecord, out_dir: Path) -> dict[str, Path]:
    """Write ``inclusion.json``, ``inclusion.md`` and ``inclusion_roc.png`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "inclusion.json", "summary": out / "inclusion.md", "roc": out / "inclusion_roc.png"}
    write_inclusion(record, paths["results"])
    atomic_write_text(paths["summary"], inclusion_markdown(record))
    students = sorted({r.student for r in record.rows})
    fig = inclusion_roc_figure(record, student="lfw-identity" if "lfw-identity" in students else students[0]) \
        if students else plt.figure()
    try:
        atomic_save_figure(paths["roc"], fig, dpi=110)
    finally:
        plt.close(fig)
    return paths
