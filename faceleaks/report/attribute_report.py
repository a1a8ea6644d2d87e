"""Tables and figures of an ``AttributeRecord`` (no file I/O, no torch).

``attribute_markdown`` gives the summary section; ``budget_figure`` plots a metric against the
attacker's labelled budget, one panel per (attribute, variant), with the prior-only and the
white-box baselines as horizontal lines; ``first_winning_budget`` answers "how few labels does
the attacker need to beat a prior-only guess?" (non-overlapping 95 % CIs).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.evaluation.attribute_results import AttributeRecord, AttributeScore  # noqa: E402
from faceleaks.report.format import fmt, markdown_table  # noqa: E402

__all__ = ["attribute_markdown", "budget_figure", "first_winning_budget", "budget_order"]

_METRICS = {"balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1", "auc": "ROC AUC"}


def budget_order(budgets) -> list[str]:
    """Budgets as strings, numeric ascending, ``all`` last."""
    nums = sorted({int(b) for b in budgets if str(b) != "all"})
    return [str(b) for b in nums] + (["all"] if any(str(b) == "all" for b in budgets) else [])


def _prior(record: AttributeRecord, r: AttributeScore) -> AttributeScore | None:
    for b in record.baselines if r.level == "instance" else record.identity:
        if (b.role == "prior-only" and b.attribute == r.attribute and b.variant == r.variant and b.k == r.k
                and b.budget == r.budget):
            return b
    return None


def first_winning_budget(record: AttributeRecord, *, attribute: str, variant: str, student: str, attack: str,
                         output: str | None = None, metric: str = "balanced_accuracy") -> str | None:
    """Smallest budget at which the attack's 95 % CI lies wholly above the prior-only baseline's CI.

    Compares with the prior-only baseline fitted on the same auxiliary labels (same budget).
    Returns the budget as a string (``"5"``, ``"all"``) or None if no budget wins.
    """
    rows = {r.budget: r for r in record.scores if r.attribute == attribute and r.variant == variant
            and r.student == student and r.attack == attack and (output is None or r.output == output)}
    for budget in budget_order(rows):
        r, p = rows[budget], _prior(record, rows[budget])
        low = getattr(r, f"{metric}_ci")[0]
        if p is not None and not math.isnan(low) and low > getattr(p, f"{metric}_ci")[1]:
            return budget
    return None


def _cell(r: AttributeScore | None, metric: str) -> str:
    if r is None:
        return ""
    lo, hi = getattr(r, f"{metric}_ci")
    return f"{fmt(getattr(r, metric))} [{fmt(lo, 2)}, {fmt(hi, 2)}]"


def _budget_rows(record: AttributeRecord, budgets: list[str], metric: str) -> list[list[str]]:
    keys: dict[tuple, dict[str, AttributeScore]] = {}
    for r in record.scores + record.baselines:
        keys.setdefault((r.attribute, r.variant, r.role, r.student, r.output, r.attack), {})[r.budget] = r
    rows = []
    for (attribute, variant, role, student, output, attack), by_budget in keys.items():
        win = ""
        if role == "attack":
            win = first_winning_budget(record, attribute=attribute, variant=variant, student=student, attack=attack,
                                       output=output, metric=metric) or "never"
        rows.append([attribute, variant, student, output, attack if role == "attack" or attack == role else f"{attack} ({role})",
                     *[_cell(by_budget.get(b), metric) for b in budgets], win])
    return rows


def attribute_markdown(record: AttributeRecord, *, metric: str = "balanced_accuracy") -> str:
    """The attribute-inference section of ``summary.md``: budget table, identity table, label counts."""
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    budgets = budget_order({r.budget for r in record.scores + record.baselines})
    parts = ["## Sensitive-attribute inference through the students", "",
             f"{_METRICS[metric]} [95 % bootstrap CI] against n labelled auxiliary UTKFace faces per attribute value. "
             "`prior-only`: majority auxiliary class, no model access (chance for balanced accuracy); "
             "`white-box`: the same attack on the teacher's own embeddings with all labels (evaluation only). "
             "Last column: smallest n whose CI lies above prior-only's.", "",
             markdown_table(["attribute", "variant", "student", "output", "attack", *[f"n={b}" for b in budgets],
                     "beats prior from"], _budget_rows(record, budgets, metric))]
    if record.identity:
        ks = sorted({r.k for r in record.identity})
        keys: dict[tuple, dict[int, AttributeScore]] = {}
        for r in record.identity:
            keys.setdefault((r.attribute, r.student, r.output, r.attack, r.role, r.budget), {})[r.k] = r
        rows = [[a, st, out, at if role in ("attack", at) else f"{at} ({role})", b,
                 *[_cell(by_k.get(k), metric) for k in ks], str(max(x.n_targets for x in by_k.values()))]
                for (a, st, out, at, role, b), by_k in keys.items()]
        parts += ["", f"Identity level (LFW people, mean probabilities over k photos): {_METRICS[metric]}.", "",
                  markdown_table(["attribute", "student", "output", "attack", "n", *[f"k={k}" for k in ks], "people"], rows)]
    parts += ["", "Labels (class counts; excluded items by reason):", "",
              markdown_table(["attribute", "set", "counts", "excluded"],
                     [[s.attribute, s.dataset, ", ".join(f"{c} {n}" for c, n in zip(s.classes, s.counts)),
                       ", ".join(f"{k} {v}" for k, v in s.excluded.items()) or "-"] for s in record.labels])]
    if record.warnings:
        parts += ["", *[f"- {w}" for w in record.warnings]]
    return "\n".join(parts) + "\n"


def _errorbar(ax, rows: list[AttributeScore], xs: dict[str, int], metric: str, **style) -> None:
    rows = sorted(rows, key=lambda r: xs[r.budget])
    y = [getattr(r, metric) for r in rows]
    ci = [getattr(r, f"{metric}_ci") for r in rows]
    err = [[v - c[0] for v, c in zip(y, ci)], [c[1] - v for v, c in zip(y, ci)]]
    ax.errorbar([xs[r.budget] for r in rows], y, yerr=err, capsize=2, ms=3, lw=1.1, **{"marker": "o", **style})


def _baseline_lines(ax, record: AttributeRecord, attribute: str, variant: str, metric: str, colours: dict,
                    last_budget: str) -> None:
    for b in record.baselines:
        if (b.attribute, b.variant) != (attribute, variant) or math.isnan(getattr(b, metric)):
            continue
        if b.role == "white-box" and b.attack in colours:
            ax.axhline(getattr(b, metric), color=colours[b.attack], ls=(0, (1, 3)), lw=1.2, alpha=0.8,
                       label=f"white-box {b.attack}")
        elif b.role == "prior-only" and b.budget == last_budget:
            ax.axhline(getattr(b, metric), color="grey", ls=":", lw=1.2, label="prior-only")


def budget_figure(record: AttributeRecord, *, metric: str = "balanced_accuracy", output: str | None = None) -> Figure:
    """A grid of panels, attributes by variants: ``metric`` (with 95 % CI bars) against the budget n.

    Colours are attacks, line styles students; dashed horizontal lines in an attack's colour are
    its white-box reference, the grey dotted line the prior-only baseline (at budget ``all``).
    ``output`` picks one API output (default: the first in the record).
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    output = output or next((r.output for r in record.scores), None)
    rows_all = record.scores + record.baselines
    attributes = list(dict.fromkeys(r.attribute for r in rows_all))
    variants = list(dict.fromkeys(r.variant for r in rows_all))
    budgets = budget_order({r.budget for r in rows_all})
    xs = {b: i for i, b in enumerate(budgets)}
    attacks = sorted({r.attack for r in record.scores})
    students = sorted({r.student for r in record.scores})
    colours = {a: f"C{i}" for i, a in enumerate(attacks)}
    styles = dict(zip(students, ["-", "--", ":", "-."] * 3))
    fig, axes = plt.subplots(max(1, len(attributes)), max(1, len(variants)), squeeze=False,
                             figsize=(4.8 * max(1, len(variants)), 3.4 * max(1, len(attributes))))
    for (i, attribute), (j, variant) in ((a, v) for a in enumerate(attributes) for v in enumerate(variants)):
        ax = axes[i][j]
        mine = [r for r in record.scores if (r.attribute, r.variant, r.output) == (attribute, variant, output)]
        if not any(r.attribute == attribute and r.variant == variant for r in rows_all):
            ax.set_axis_off()
            continue
        for a in attacks:
            for st in students:
                rows = [r for r in mine if r.attack == a and r.student == st]
                if rows:
                    _errorbar(ax, rows, xs, metric, color=colours[a], ls=styles[st], label=f"{a} / {st}",
                              marker="os^v"[students.index(st) % 4])
        _baseline_lines(ax, record, attribute, variant, metric, colours, budgets[-1])
        ax.set_xticks(range(len(budgets)), budgets)
        ax.set_xlabel("labelled auxiliary faces per class (n)")
        ax.set_ylabel(_METRICS[metric])
        ax.set_title(f"{attribute} — {variant}", fontsize=9)
    _shared_legend(fig, axes.ravel())
    fig.suptitle(f"Attribute inference from black-box student outputs ({output})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.8, 0.97))
    return fig


def _shared_legend(fig: Figure, axes) -> None:
    """One legend for every panel, right of them (a legend per panel covered its own curves)."""
    handles: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(0.8, 0.5), fontsize=8,
                   handlelength=3.5, frameon=False)
