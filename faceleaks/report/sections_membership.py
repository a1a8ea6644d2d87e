"""Membership and most-exposed-people sections of a run's page (``RunRecord``), kind ``run``."""

from __future__ import annotations

from faceleaks.config.report import HeadlineSpec
from faceleaks.evaluation.results import MembershipReport, RunRecord
from faceleaks.report.embed import figure_block
from faceleaks.report.format import fmt
from faceleaks.report.headline import headline_rows, headline_spec
from faceleaks.report.page_plots import headline_k_figure, headline_roc_figure
from faceleaks.report.plots import auc_vs_k_figure
from faceleaks.report.sections import Section, Table, fpr_label, pct, register_section

__all__ = ["membership_section", "exposed_section", "side_by_side_table", "k_table"]

_N_EXPOSED = 10


def _auc(m: MembershipReport | None) -> str:
    return "–" if m is None else f"{fmt(m.auc)} [{fmt(m.auc_ci[0])}, {fmt(m.auc_ci[1])}]"


def _fprs(record: RunRecord) -> list[float]:
    return sorted({f for m in record.membership for f in m.tpr_at_fpr}, reverse=True)


def _control_of(record: RunRecord, m: MembershipReport) -> MembershipReport | None:
    return next((c for c in record.membership if c.teacher == "control" and c.attack == m.attack
                 and c.student == m.student and c.setting == m.setting and c.level == m.level), None)


def side_by_side_table(record: RunRecord, spec: HeadlineSpec) -> Table:
    """Per-photo attacks beside identity attacks at the headline k (headline student and setting)."""
    fprs = _fprs(record)
    rows = [m for m in record.membership if m.teacher == "victim" and m.student == spec.student
            and m.setting == spec.setting and (m.level == "instance" or m.k == spec.k)]
    rows.sort(key=lambda m: (m.level != "instance", m.attack))
    body = tuple((m.level, m.attack, _auc(m), _auc(_control_of(record, m)),
                  *(pct(m.tpr_at_fpr.get(f)) for f in fprs)) for m in rows)
    header = ("level", "attack", "victim AUC [CI]", "control AUC [CI]", *(f"TPR at {fpr_label(f)} FPR" for f in fprs))
    return Table(f"Per photo and per person side by side: {spec.student}, {spec.setting}, identity attacks at "
                 f"k = {spec.k} (n/a: too few non-members to resolve that FPR)", header, body)


def k_table(record: RunRecord, spec: HeadlineSpec) -> Table:
    """The headline attack against k: victim and control AUC with intervals, people evaluated."""
    family = spec.attack
    rows = sorted((m for m in record.membership if m.teacher == "victim" and m.student == spec.student
                   and m.setting == spec.setting and m.level == "identity" and m.attack.split("@")[0] == family),
                  key=lambda m: m.k)
    body = tuple((str(m.k), _auc(m), _auc(_control_of(record, m)), f"{m.n_members} / {m.n_nonmembers}")
                 for m in rows)
    return Table(f"{family} against photos per person k ({spec.student}, {spec.setting})",
                 ("k", "victim AUC [CI]", "control AUC [CI]", "members / non-members"), body)


def _full_table(record: RunRecord) -> Table:
    fprs = _fprs(record)
    body = tuple((m.teacher, m.student, m.setting, m.level, m.attack, _auc(m), *(pct(m.tpr_at_fpr.get(f)) for f in fprs),
                  f"{m.n_members} / {m.n_nonmembers}") for m in record.membership)
    return Table("Every membership result of the run", ("teacher", "student", "setting", "level", "attack",
                 "AUC [CI]", *(f"TPR at {fpr_label(f)} FPR" for f in fprs), "members / non-members"), body)


def membership_section(record: RunRecord) -> Section:
    """Section 3: per photo vs per person, AUC against k, log-log ROC with the control."""
    if not record.membership:
        return Section("membership", "Membership", missing="this run has no membership result (every k skipped?)")
    spec, _ = headline_spec(record.config)
    text = ("AUC intervals are bootstrap confidence intervals over people. Only the gap to the control teacher, "
            "which saw none of the evaluated people, is evidence of membership. An empirical epsilon bound is not "
            "measured by a single run: it needs many victim teachers (faceleaks run --victims auto).")
    figures = (figure_block(headline_k_figure(record.membership, spec), "headline AUC against k",
                            "The headline attack's AUC against photos per person k, victim beside control (bars: "
                            "intervals); dashed: per-photo attacks on the victim."),
               figure_block(headline_roc_figure(record.membership, spec), "log-log ROC of the headline attack",
                            "Log-log ROC: the headline attack on the victim and on the control, per-photo attacks dashed."),
               figure_block(auc_vs_k_figure(record), "identity-level AUC against k", collapsed=True,
                            caption="Identity-level AUC against k for every attack family and student (control dashed)"))
    tables = (side_by_side_table(record, spec), k_table(record, spec), _full_table(record))
    return Section("membership", "Membership", paragraphs=(text,), figures=figures, tables=tables)


def exposed_section(record: RunRecord) -> Section:
    """Section 4: the people the headline attack scores highest, with score, truth and evidence."""
    spec, _ = headline_spec(record.config)
    m, _ = headline_rows(record.membership, spec)
    if m is None or not (m.member_scores or m.nonmember_scores):
        return Section("exposed", "Most exposed people",
                       missing="the headline row carries no per-person scores (instance level, or not run)")
    people = [(s, p, "member") for p, s in m.member_scores.items()] + \
             [(s, p, "non-member") for p, s in m.nonmember_scores.items()]
    people.sort(key=lambda x: -x[0])
    body = tuple((p, fmt(s), truth, "yes" if s >= m.threshold else "no") for s, p, truth in people[:_N_EXPOSED])
    text = (f"The people the headline attack ({m.attack}, {m.student}, {m.setting}) scores highest. Evidence per "
            f"person: {spec.k} photos, each sent once to the API; the attacker flags a person when the score reaches "
            f"its calibrated threshold {fmt(m.threshold)}. The truth column is the owner's split, unknown to the attacker.")
    return Section("exposed", "Most exposed people", paragraphs=(text,),
                   tables=(Table("Highest headline scores", ("person", "score", "truth", "flagged"), body),))


register_section("run", membership_section)
register_section("run", exposed_section)
