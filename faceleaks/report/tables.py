"""Markdown tables and the human-readable summary of a ``RunRecord``."""

from __future__ import annotations

from faceleaks.evaluation.results import ControlRecord, CostRecord, MembershipReport, RunRecord
from faceleaks.evaluation.sweep_results import SweepRow
from faceleaks.report.attribute_report import attribute_markdown
from faceleaks.report.format import fmt, markdown_table

__all__ = ["membership_rows", "auc_pivot", "summary_markdown", "recipe_text", "sweep_markdown", "cost_text", "fmt"]


def membership_rows(reports: list[MembershipReport]) -> list[list[str]]:
    """One row per report: teacher (with its recipe), student, setting, level, attack, AUC [CI], TPR@FPRs,
    bal. acc, n."""
    rows = []
    for m in reports:
        tprs = " / ".join(fmt(v) for v in m.tpr_at_fpr.values())
        rows.append([f"{m.teacher} ({m.recipe})" if m.recipe else m.teacher, m.student, m.setting, m.level, m.attack,
                     f"{fmt(m.auc)} [{fmt(m.auc_ci[0])}, {fmt(m.auc_ci[1])}]", tprs, fmt(m.balanced_accuracy),
                     f"{m.n_members}/{m.n_nonmembers}"])
    return rows


def auc_pivot(record: RunRecord) -> tuple[list[str], list[list[str]]]:
    """Compact view: one row per (student, setting, attack family); each cell is the victim's AUC with
    the negative control's in parentheses, per photo and per k (the gap is what membership explains)."""
    ks = sorted({m.k for m in record.membership if m.level == "identity"})
    auc: dict[tuple, dict[str, dict[str, float]]] = {}
    for m in record.membership:
        col = "per photo" if m.level == "instance" else f"k={m.k}"
        auc.setdefault((m.student, m.setting, m.level, m.attack.split("@")[0]), {}).setdefault(col, {})[m.teacher] = m.auc
    header = ["student", "setting", "attack", "per photo"] + [f"k={k}" for k in ks]

    def cell(vals: dict[str, float]) -> str:
        if "victim" in vals:
            return fmt(vals["victim"], 2) + (f" ({fmt(vals['control'], 2)})" if "control" in vals else "")
        return f"({fmt(vals['control'], 2)})" if "control" in vals else ""

    rows = [[st, se, fam] + [cell(c.get(h, {})) for h in header[3:]] for (st, se, _, fam), c in auc.items()]
    return header, rows


def recipe_text(teacher: dict) -> str:
    """One sentence on the victim's fine-tuning recipe, from the ``teacher`` section of a run's config.

    ``teacher`` is ``RunRecord.config["teacher"]`` (``TeacherConfig.to_dict``: overrides resolved);
    a config written before recipes (no ``recipe`` key) gives "".
    """
    if "recipe" not in teacher or teacher.get("kind") != "dlib":
        return ""
    photos = {"all": "all of each member's photos", "half": "each member's training half"}.get(
        teacher["train_photos"], teacher["train_photos"])
    return (f"**Victim recipe** `{teacher['recipe']}`: Adam, {teacher['finetune_schedule']} learning rate from "
            f"{teacher['finetune_learning_rate']:g}, {teacher['finetune_epochs']} epochs, weight decay "
            f"{teacher['finetune_weight_decay']:g}, on {photos} (every row's `recipe`: `base` = dlib unmodified).")


def _control_text(control: ControlRecord) -> str:
    """One sentence on the negative-control teacher (``RunRecord.teacher.control``)."""
    if control.name is None:
        return f"**Negative control**: {control.note or 'none'}."
    kind = control.kind
    what = {"dlib-base": "dlib's model unmodified",
            "dlib": f"dlib fine-tuned with the victim's recipe on {control.n_member_identities} other LFW people",
            "scratch": "the attacker's shadow teacher (reference identities only)"}.get(kind, kind)
    acc = control.verification.accuracy if control.verification is not None else None
    return (f"**Negative control** (`control` rows): students on {what}, a teacher that saw no evaluated "
            f"identity; verification {fmt(acc)}.")


def summary_markdown(record: RunRecord) -> str:
    """The summary written as ``summary.md``."""
    t = record.teacher
    v = t.verification
    fprs = " / ".join(f"{float(f):.1%}" for f in record.config["attack"]["fprs"])
    parts = [
        "# FaceLeaks run summary", "",
        f"seed {record.seed}; teacher `{t.kind}` trained on {t.n_member_identities} member identities "
        f"({t.n_train_photos} photos); API output: `{record.config['attack']['output']}`.", "",
        recipe_text(record.config.get("teacher", {})), "",
        f"**Teacher verification** on LFW pairs of held-out identities: {fmt(v.accuracy)} "
        f"± {fmt(v.std)} ({v.n_pairs} pairs; the paper's teacher: 0.964).", "",
        _control_text(t.control), "",
        markdown_table(["student", "teacher", "classes", "test accuracy"],
                       [[s.name, s.teacher, str(s.n_classes), fmt(s.test_accuracy)] for s in record.students]),
        "", "## Membership inference on the teacher", "",
        "AUC at a glance: victim (negative control in parentheses), per-photo attacks, then identity-level "
        "attacks by photos per identity k. Only the gap to the control is evidence of membership.", "",
        markdown_table(*auc_pivot(record)), "",
        "Full table:", "",
        "AUC with 95 % bootstrap CI; TPR at FPR " + fprs + " (n/a: too few non-members to resolve); "
        "balanced accuracy at the attacker's calibrated threshold; members/non-members evaluated. "
        "`control` = students on a teacher that saw no evaluated identity (must be ≈ 0.5).", "",
        markdown_table(["teacher", "student", "setting", "level", "attack", "AUC [95% CI]", f"TPR@{fprs}",
                        "bal. acc", "n"], membership_rows(record.membership)),
        "", "## Cost per audited person", "",
        cost_text(record), "",
        "## Queries and time", "",
        ", ".join(f"{k}: {v} images" for k, v in record.queries.items()), "",
        ", ".join(f"{k} {v:.1f} s" for k, v in record.timings_s.items()),
    ]
    if record.attributes is not None:
        parts += ["", attribute_markdown(record.attributes)]
    if record.warnings:
        parts += ["", "## Warnings", ""] + [f"- {w}" for w in record.warnings]
    return "\n".join(parts) + "\n"


def cost_text(record: RunRecord) -> str:
    """Per identity-level attack (victim, training photos, one k per student): victim queries, shadow
    models and seconds per audited person; seconds include the shadow training shared by all people
    (as recorded when each shadow teacher was trained, so a run that reuses cached shadows still
    reports what they cost)."""
    cost = record.cost
    per_shadow = 0.0 if cost is None else cost.shadow_train_seconds_per_audited
    if per_shadow is None:  # a cached shadow predates the training-time record: this run's wall clock
        per_shadow = cost.shadow_seconds_per_audited
    rows = []
    reps = [m for m in record.membership if m.level == "identity" and m.teacher != "control"
            and m.setting == "training-photos"]
    for student in sorted({m.student for m in reps}):
        mine = [m for m in reps if m.student == student]
        ks = sorted({m.k for m in mine})
        k = 5 if 5 in ks else ks[-1]
        for m in (m for m in mine if m.k == k):
            n = max(m.n_members + m.n_nonmembers, 1)
            shadow_s = per_shadow if m.n_shadow_models > 1 else 0.0
            rows.append([student, m.attack, fmt(m.n_queries / n, 1), str(m.n_shadow_models),
                         fmt(m.seconds / n + shadow_s, 3)])
    return _cost_note(cost) + "\n\n" + markdown_table(
        ["student", "attack", "victim queries / person", "shadow models", "seconds / person"], rows)


def _cost_note(cost: CostRecord | None) -> str:
    if cost is None:
        return "No shadow teachers in this run."
    train = cost.shadow_train_seconds
    trained = (f"fine-tuning them took {train:.0f} s with {cost.shadow_train_threads} torch thread(s) "
               "each, as recorded when each was trained" if train is not None else
               f"this run spent {cost.shadow_seconds:.0f} s on them")
    return (f"Shadow-teacher attacks share {cost.n_shadow_teachers_per_setting} shadow teachers per "
            f"setting ({cost.n_shadow_teachers_trained_this_run} fine-tuned in this run on executor "
            f"`{cost.executor}`, the rest from the cache); {trained}. That training is spread over "
            "the audited people in the last column. Victim queries / person counts the person's own photos; "
            "the attacker's calibration queries (photos of people it knows are not members, shared by all "
            "audited people) are in the per-student totals under *Queries and time*.")


def sweep_markdown(rows: list[SweepRow]) -> str:
    """AUC mean ± standard deviation over seeds, one row per (teacher, student, setting, attack);
    identity-level rows add the AUC [95 % CI] and TPR at each FPR of all seeds' people pooled
    (``summarise_seeds`` rows; the FPR columns are those of the first pooled row)."""
    def order(r: SweepRow) -> tuple:
        k = int(r.attack.split("@k=")[1]) if "@k=" in r.attack else 0
        return (r.teacher != "victim", r.student, r.setting, r.level != "instance", r.attack.split("@")[0], k)

    fprs = next((list(r.pooled_tpr_at_fpr) for r in rows if r.pooled_tpr_at_fpr), [])
    head = " / ".join(f"{float(f):.1%}" for f in fprs)

    def pooled(r: SweepRow) -> list[str]:
        if not r.is_pooled:
            return ["", "", ""]
        lo, hi = r.pooled_auc_ci
        tprs = " / ".join("n/a" if v is None or v != v else fmt(v) for v in r.pooled_tpr_at_fpr.values())
        return [f"{fmt(r.pooled_auc)} [{fmt(lo)}, {fmt(hi)}]", tprs, f"{r.pooled_n_members}+{r.pooled_n_nonmembers}"]

    body = [[r.teacher, r.student, r.setting, r.level, r.attack, f"{fmt(r.auc_mean)} ± {fmt(r.auc_std)}",
             " ".join(fmt(a, 2) for a in r.aucs), *pooled(r)] for r in sorted(rows, key=order)]
    seeds = rows[0].seeds if rows else []
    return ("# FaceLeaks sweep over seeds " + ", ".join(map(str, seeds)) + "\n\n"
            + "Pooled: the people of all seeds together (identity level); AUC with 95 % bootstrap CI; "
            + "TPR at FPR " + head + " (n/a: fewer than 1/FPR non-members even pooled). The CI resamples "
            + "people (one person recurs over seeds). Pooling puts scores of different victims on one axis: "
            + "sound for likelihood ratios and standardised scores, looser for raw statistics.\n\n"
            + markdown_table(["teacher", "student", "setting", "level", "attack", "AUC mean ± sd", "per seed",
                      "pooled AUC [95% CI]", f"pooled TPR@{head}", "pooled n (mem+non)"], body) + "\n")
