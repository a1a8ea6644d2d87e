"""The defence sweep's report: a markdown table and a privacy–utility figure from ``DefenceRecord``s.

``defence_table`` and ``privacy_utility_figure`` compute (no file I/O); ``write_defend_report``
writes ``OUT/defend/summary.md`` and ``OUT/defend/privacy_utility.png``. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.atomic import atomic_save_figure, atomic_write_text  # noqa: E402
from faceleaks.evaluation.defend_results import DefenceRecord  # noqa: E402
from faceleaks.evaluation.results import MembershipReport  # noqa: E402
from faceleaks.report.format import fmt, markdown_table  # noqa: E402

__all__ = ["defence_table", "defence_rows", "privacy_utility_figure", "write_defend_report", "seeds_table"]

HEADER = ["setting", "output defence", "teacher", "API returns", "member id. acc. (head)", "enrolment acc.", "ε",
          "verification", "lfw-identity acc. (API)", "utk-age acc. (API)", "headline AUC [95 % CI]", "TPR@1%",
          "best adaptive attack", "its AUC [95 % CI]", "TPR@1%", "gender bal. acc. (API)", "best per-photo AUC",
          "queries"]


def _auc(m: MembershipReport | None) -> str:
    return "n/a" if m is None else f"{fmt(m.auc)} [{fmt(m.auc_ci[0], 2)}, {fmt(m.auc_ci[1], 2)}]"


def _tpr(m: MembershipReport | None) -> str:
    return "n/a" if m is None else fmt(m.tpr_at_fpr.get(0.01), 2)


def _epsilon(r: DefenceRecord) -> str:
    """The DP teacher's epsilon (at its delta), "∞" without DP."""
    return "∞" if r.dp_epsilon != r.dp_epsilon else f"{r.dp_epsilon:.1f}"


def _row(r: DefenceRecord) -> list[str]:
    best, head, photo, gender = r.best_adaptive, r.headline, r.best_per_photo, r.gender
    api = r.defended_student_accuracy
    return [r.setting, r.output_defence, r.teacher_overrides or r.recipe, r.output_kind,
            fmt(r.identification_accuracy), fmt(r.enrolment_accuracy), _epsilon(r), fmt(r.verification.accuracy),
            fmt(api.get("lfw-identity")), fmt(api.get("utk-age")), _auc(head), _tpr(head),
            "n/a" if best is None else best.attack, _auc(best), _tpr(best),
            "n/a" if gender is None else fmt(gender.balanced_accuracy),
            "n/a" if photo is None else f"{fmt(photo.auc)} ({photo.attack})", str(sum(r.queries.values()))]


def defence_rows(records: list[DefenceRecord]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of :func:`defence_table`'s table, for other pages (``report.html``)."""
    return list(HEADER), [_row(r) for r in records]


def defence_table(records: list[DefenceRecord]) -> str:
    """Markdown: one row per setting (utility as the owner sees it, then privacy), and notes.

    AUCs are identity-level at the records' k on training photos of the attacked student, with 95 %
    bootstrap CIs over people; TPR at 1 % FPR is n/a where too few non-members resolve it.
    """
    if not records:
        return "No defence settings.\n"
    r0 = records[0]
    lines = [f"# Defences: privacy–utility sweep (seed {r0.seed}, k = {r0.k}, student {r0.student})", "",
             markdown_table(HEADER, [_row(r) for r in records]), "",
             f"Member identification: the teacher's own closed-set head on {r0.n_identification_photos} held-out "
             f"member photos (unmodified dlib has no head; by nearest centroid of the members' training photos, "
             f"'enrolment', it reaches {fmt(r0.base_enrolment_accuracy)}). ε: the DP teacher's, at its δ "
             "(∞: no DP).",
             "Headline: `base-diff-fisher_gap` (no shadow models; posterior outputs only). Best adaptive: the "
             "highest AUC among label-only, averaging, base-diff, LiRA, compactness and label-agreement attacks on "
             "the same people (the maximum of several attacks is optimistic). Gender: balanced accuracy of "
             "logistic regression on 50 labelled UTKFace faces per value, LFW targets, through the defended API.",
             ""]
    return "\n".join(lines) + "\n"


def privacy_utility_figure(records: list[DefenceRecord]) -> Figure:
    """Best adaptive attack AUC (filled) and headline AUC (hollow) vs utility, one point per setting.

    Left: member identification accuracy of the teacher; right: lfw-identity accuracy through the
    defended API (output defences move only this one).
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    panels = ((axes[0], lambda r: r.identification_accuracy, "member identification accuracy (teacher's head)"),
              (axes[1], lambda r: r.defended_student_accuracy.get("lfw-identity", float("nan")),
               "lfw-identity test accuracy through the defended API"))
    for ax, x_of, label in panels:
        for r in records:
            x, best, head = x_of(r), r.best_adaptive, r.headline
            if best is not None:
                err = [[max(best.auc - best.auc_ci[0], 0)], [max(best.auc_ci[1] - best.auc, 0)]]
                dp = r.dp_epsilon == r.dp_epsilon
                ax.errorbar(x, best.auc, yerr=err, fmt="o", capsize=2, lw=0.8,
                            color="C3" if dp else "C1" if r.teacher_overrides else "C0")
                name = f"{r.setting} (ε={r.dp_epsilon:.1f})" if dp else r.setting
                ax.annotate(name, (x, best.auc), fontsize=7, xytext=(3, 3), textcoords="offset points")
            if head is not None:
                ax.plot(x, head.auc, "o", mfc="none", color="grey")
        ax.axhline(0.5, color="black", lw=0.6, ls=":")
        xs = [x_of(r) for r in records if x_of(r) == x_of(r)]
        if xs:  # accuracies: never past 1
            ax.set_xlim(min(xs) - 0.02 * max(1.0 - min(xs), 0.05), 1.0 + 0.01 * max(1.0 - min(xs), 0.05))
        ax.set_xlabel(label)
    axes[0].set_ylabel("identity-level AUC (k photos, training photos)")
    fig.suptitle("Best adaptive attack with 95 % CI (filled: blue output defence, orange recipe, red DP-SGD "
                 "with its ε) and headline base-diff Fisher gap (hollow) per setting", fontsize=9)
    fig.tight_layout()
    return fig


def write_defend_report(records: list[DefenceRecord], out_dir: Path) -> dict[str, Path]:
    """Write ``out_dir/defend/summary.md`` and ``privacy_utility.png``; returns their paths by name."""
    root = Path(out_dir) / "defend"
    root.mkdir(parents=True, exist_ok=True)
    summary, plot = root / "summary.md", root / "privacy_utility.png"
    atomic_write_text(summary, defence_table(records))
    fig = privacy_utility_figure(records)
    try:
        atomic_save_figure(plot, fig, dpi=120)
    finally:
        plt.close(fig)
    return {"summary": summary, "plot": plot}


def _mean_sd(values: list[float]) -> str:
    v = np.asarray([x for x in values if x == x], dtype=float)
    return "n/a" if len(v) == 0 else f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def _attack_aucs(runs: list[DefenceRecord], prefixes: tuple[str, ...]) -> dict[str, list[float]]:
    """attack -> its AUC in each run (identity level, the records' k, training photos, attacked student)."""
    out: dict[str, list[float]] = {}
    for r in runs:
        for m in r.identity_reports():
            if m.attack.startswith(prefixes):
                out.setdefault(m.attack, []).append(m.auc)
    return out


def seeds_table(by_seed: dict[int, list[DefenceRecord]]) -> str:
    """Markdown over seeds: per setting, mean ± sd (over seeds) of utility and of the headline AUC, and the
    adaptive attack with the highest *mean* AUC (chosen once over seeds, less optimistic than per seed)."""
    from faceleaks.evaluation.defend_results import ADAPTIVE_PREFIXES, HEADLINE_PREFIX

    seeds = sorted(by_seed)
    names = [r.setting for r in by_seed[seeds[0]]]
    header = ["setting", "member id. acc. (head)", "ε", "lfw-identity acc. (API)", "headline AUC",
              "best adaptive (mean)", "its AUC", "gender bal. acc. (API)", "queries (mean)"]
    rows = []
    for name in names:
        runs = [r for s in seeds for r in by_seed[s] if r.setting == name]
        head = _attack_aucs(runs, (HEADLINE_PREFIX,))
        adaptive = _attack_aucs(runs, ADAPTIVE_PREFIXES)
        best = max(adaptive, key=lambda a: sum(adaptive[a]) / len(adaptive[a]), default=None)
        rows.append([name, _mean_sd([r.identification_accuracy for r in runs]), _epsilon(runs[0]),
                     _mean_sd([r.defended_student_accuracy.get("lfw-identity", float("nan")) for r in runs]),
                     _mean_sd(next(iter(head.values()), [])), best or "n/a",
                     _mean_sd(adaptive.get(best, [])) if best else "n/a",
                     _mean_sd([r.gender.balanced_accuracy if r.gender else float("nan") for r in runs]),
                     f"{sum(sum(r.queries.values()) for r in runs) / len(runs):.0f}"])
    title = f"# Defences over seeds {seeds} (mean ± sd over seeds; identity level, k = {by_seed[seeds[0]][0].k})"
    return "\n".join([title, "", markdown_table(header, rows), ""]) + "\n"
