"""The page of a random-inclusion (N-victim) evaluation (``InclusionRecord``), kind ``inclusion``.

The headline selector (``config.report.headline``) picks the row; in an N-victim run the no-shadow
score is named by its statistic alone (``consistency_gap@k=5`` for ``base-diff-consistency_gap``),
and only identity-level, training-photos rows exist.
"""

from __future__ import annotations

import math

from faceleaks.config.report import HeadlineSpec
from faceleaks.evaluation.inclusion_results import InclusionRecord, InclusionRow
from faceleaks.report.embed import figure_block
from faceleaks.report.format import fmt
from faceleaks.report.headline import chance_words, headline_note, headline_spec
from faceleaks.report.inclusion import inclusion_roc_figure
from faceleaks.report.sections import Section, Table, fpr_label, pct, register_section
from faceleaks.report.sections_extra import RECONSTRUCTED, defence_section, timing_rows

__all__ = ["inclusion_headline", "inclusion_verdict", "inclusion_threat", "inclusion_membership",
           "inclusion_exposed", "inclusion_provenance"]

_N_EXPOSED = 10


def inclusion_headline(record: InclusionRecord, spec: HeadlineSpec, teacher: str = "victim") -> InclusionRow | None:
    """The row ``spec`` selects (its ``base-diff-`` prefix dropped when the run names the statistic alone)."""
    names = [f"{spec.attack}@k={spec.k}", f"{spec.attack.removeprefix('base-diff-')}@k={spec.k}"]
    return next((r for name in names for r in record.rows
                 if r.attack == name and r.teacher == teacher and r.student == spec.student), None)


def _ci(pair: tuple[float, float], digits: int = 3) -> str:
    return f"[{fmt(pair[0], digits)}, {fmt(pair[1], digits)}]"


def _pct_ci(pair: tuple[float, float]) -> str:
    return f"[{pct(pair[0])}, {pct(pair[1])}]"


def inclusion_verdict(record: InclusionRecord) -> Section:
    """Verdict: the headline row's TPR at 1 % FPR with its interval, the control, the epsilon bound."""
    spec, recorded = headline_spec(record.config)
    m, c = inclusion_headline(record, spec), inclusion_headline(record, spec, "control")
    note = headline_note(spec, recorded, "inclusion.json")
    if m is None:
        return Section("verdict", "Verdict", lead=True, paragraphs=(note,),
                       missing=f"this evaluation has no row for {spec.row_name} on {spec.student}")
    tpr = m.tpr_at_fpr.get(0.01, float("nan"))
    found = (f"finds {pct(tpr)} of the members at 1 % false positives (interval {_pct_ci(m.tpr_ci.get(0.01))})"
             if not math.isnan(tpr) else "cannot be measured at 1 % false positives here")
    body = (f"Over {record.n_victims} victim teachers, each trained on a random {pct(record.member_fraction, 0)} of "
            f"{len(record.pool.people)} "
            f"people: with {m.k} photos of a person (one query each), an attacker using {m.attack} {found}; AUC "
            f"{fmt(m.auc)} {_ci(m.auc_ci)} over {m.n_member_decisions} member and {m.n_nonmember_decisions} "
            "non-member decisions.")
    if c is not None:
        body += f" The negative control (dlib unmodified) {chance_words(c.auc_ci)}: AUC {fmt(c.auc)} {_ci(c.auc_ci)}."
    if m.epsilon is not None:
        body += (f" Empirical identity-level privacy loss: epsilon at least {fmt(m.epsilon.epsilon, 2)} "
                 f"(delta {m.epsilon.delta:g}, {pct(m.epsilon.confidence, 0)} confidence).")
    if m.attack.split("@")[0] != spec.attack:
        note += f" An N-victim run names this no-shadow score by its statistic: {m.attack}."
    claim = (f"The teacher's members can be told apart through the {m.student} student."
             if c is not None and m.auc_ci[0] > c.auc_ci[1] else "No clear evidence of membership leakage here.")
    return Section("verdict", "Verdict", lead=True, paragraphs=(claim, body, note))


def inclusion_threat(record: InclusionRecord) -> Section:
    """Threat model: what the attacker holds (the other victims as shadows) and what the API returns."""
    out = record.config.get("attack", {}).get("output", "posterior")
    holds = (f"Each of the {record.n_victims} victims is attacked with the other victims as shadow teachers "
             "(leave-one-out), so the attacker holds shadows trained on the same pool with known membership, plus "
             "a few photos of each audited person (the photos the victim trained on, when a member).")
    api = (f"Each query sends one face photo to a student of the victim and returns its {out}. Victims share the "
           f"recipe {record.recipe}; the control is dlib's unmodified model with the same students.")
    return Section("threat", "Threat model and setting", paragraphs=(holds, api))


def _row_cells(r: InclusionRow, c: InclusionRow | None, fprs: list[float]) -> tuple[str, ...]:
    eps = fmt(r.epsilon.epsilon, 2) if r.epsilon is not None else "n/a"
    tprs = (f"{pct(r.tpr_at_fpr.get(f))} {_pct_ci(r.tpr_ci.get(f, (math.nan, math.nan)))}" for f in fprs)
    return (str(r.k), r.attack, f"{fmt(r.auc)} {_ci(r.auc_ci)}", *tprs, eps,
            f"{fmt(c.auc)} {_ci(c.auc_ci)}" if c else "–")


def inclusion_membership(record: InclusionRecord) -> Section:
    """Membership: one row per (k, attack) with TPR at 1 % / 0.1 % FPR, epsilon bound, control AUC; the ROC."""
    fprs = sorted({f for r in record.rows for f in r.tpr_at_fpr if f <= 0.01}, reverse=True)
    victims = sorted((r for r in record.rows if r.teacher == "victim"), key=lambda r: (r.student, r.k, r.attack))
    body = tuple(_row_cells(r, next((c for c in record.rows if c.teacher == "control" and c.attack == r.attack
                                     and c.student == r.student), None), fprs) for r in victims)
    header = ("k", "attack", "victim AUC [CI]", *(f"TPR at {fpr_label(f)} FPR [CI]" for f in fprs),
              "epsilon lower bound", "control AUC [CI]")
    text = ("Identity level, training photos: every (victim, person) pair is one decision. Intervals: bootstrap over "
            "people. The epsilon lower bound is Clopper-Pearson on decisions that share people and victims, so it is "
            "optimistic to that extent.")
    students = sorted({r.student for r in record.rows})
    figs = (figure_block(inclusion_roc_figure(record, student=students[0]), "log-log ROC per k",
                         "Log-log ROC per k: victims in colour, the control in grey."),) if students else ()
    return Section("membership", "Membership", paragraphs=(text,), figures=figs,
                   tables=(Table("Every attack, victims pooled", header, body),))


def inclusion_exposed(record: InclusionRecord) -> Section:
    """Most exposed: the (victim, person) decisions the headline attack scores highest."""
    spec, _ = headline_spec(record.config)
    m = inclusion_headline(record, spec)
    if m is None or not len(m.decisions):
        return Section("exposed", "Most exposed people", missing="no per-person decisions for the headline attack")
    d, best = m.decisions, {}
    for i in sorted(range(len(d)), key=lambda i: -d.score[i]):
        best.setdefault(d.person[i], i)  # each person once, at the highest score any victim gave them
        if len(best) == _N_EXPOSED:
            break
    body = tuple((record.pool.people[d.person[i]], fmt(d.score[i]), record.victims[d.victim[i]].name,
                  "member" if d.is_member[i] else "non-member") for i in best.values())
    text = (f"The people with the highest {m.attack} scores, each shown once with the victim that scored them highest; "
            f"evidence per decision: {m.k} photos of the person, each sent once to that victim's student.")
    return Section("exposed", "Most exposed people", paragraphs=(text,),
                   tables=(Table("Highest headline scores", ("person", "highest score", "victim", "truth at that victim"), body),))


def inclusion_provenance(record: InclusionRecord) -> Section:
    """Provenance: seed, pool, victims, cost and timings."""
    cost = record.cost
    rows = [("seed", str(record.seed)), ("versions", "not recorded by an N-victim run"),
            ("results schema", str(record.schema_version)), ("victims", f"{record.n_victims} ({record.recipe})"),
            ("pool people", str(len(record.pool.people))),
            ("people audited per k", ", ".join(f"k = {k}: {n}" for k, n in sorted(record.pool.eligible.items()))),
            ("data set hashes", "not recorded; split.json beside inclusion.json lists the people"),
            ("victim queries per audited pair", fmt(cost.victim_queries_per_audited_identity, 3)),
            ("whole run", f"{fmt(cost.seconds, 2)} s")]
    rows += [(f"time {stage}", s) for stage, s in timing_rows(record.timings_s)]
    return Section("provenance", "Provenance", paragraphs=(RECONSTRUCTED, *(f"Warning: {w}" for w in record.warnings)),
                   tables=(Table("Where every number on this page comes from: inclusion.json", ("item", "value"),
                                 tuple(rows)),))


def inclusion_attributes(record: InclusionRecord) -> Section:
    """Attributes: an N-victim evaluation has none (says so)."""
    return Section("attributes", "Attributes", missing="an N-victim evaluation measures membership only")


for _builder in (inclusion_verdict, inclusion_threat, inclusion_membership, inclusion_exposed, inclusion_attributes,
                 defence_section, inclusion_provenance):
    register_section("inclusion", _builder)
