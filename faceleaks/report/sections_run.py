"""Verdict and threat-model sections of a run's page (``RunRecord``), registered for kind ``run``."""

from __future__ import annotations

import math

from faceleaks.evaluation.results import MembershipReport, RunRecord
from faceleaks.report.format import fmt
from faceleaks.report.headline import at_chance, chance_words, headline_note, headline_rows, headline_spec
from faceleaks.report.sections import Section, fpr_label, pct, register_section

__all__ = ["verdict_section", "threat_section", "utility_text"]

_OUTPUTS = {"posterior": "the student's full posterior (a probability for each of its classes)",
            "topk": "the student's top posteriors only", "label": "only the predicted label, no probabilities",
            "logits": "the student's logits"}


def _ci(pair: tuple[float, float]) -> str:
    return f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def _tpr_sentence(m: MembershipReport) -> str:
    """What the attacker finds at 1 % false positives or, when the run cannot resolve that, at the
    lowest false-positive rate it resolves, with a sentence saying why."""
    tpr = m.tpr_at_fpr.get(0.01, float("nan"))
    if not math.isnan(tpr):
        return f"finds {pct(tpr)} of the teacher's training-set members at 1 % false positives"
    resolved = sorted((f, t) for f, t in m.tpr_at_fpr.items() if not math.isnan(t))
    n_neg = m.n_nonmember_photos if m.level == "instance" else m.n_nonmembers
    why = (f"This run cannot measure 1 % false positives: with {n_neg} non-members no false-positive rate below one "
           f"in {n_neg} is resolved (faceleaks run --victims auto measures it)")
    if not resolved:
        return f"cannot be measured at any false-positive rate the run records. {why}"
    f, t = resolved[0]
    return f"finds {pct(t)} of the teacher's training-set members at {fpr_label(f)} false positives. {why}"


def _claim(m: MembershipReport, c: MembershipReport | None) -> tuple[str, str]:
    """The verdict's one-line claim and, when the evidence is not clear, the reason (else "")."""
    if c is None:
        return ("No negative control for the headline attack.",
                "There is no control row for it, so the run cannot separate leakage from chance. ")
    if at_chance(c.auc_ci) and not math.isnan(m.auc_ci[0]) and m.auc_ci[0] > c.auc_ci[1]:
        return f"The teacher's members can be told apart from non-members through the {m.student} student.", ""
    why = ("The control is not at chance. " if not at_chance(c.auc_ci) else
           f"The victim's AUC interval overlaps the control's, with {m.n_members} members and {m.n_nonmembers} "
           "non-members; more people (or faceleaks run --victims auto) narrow it. ")
    return f"No clear evidence in this run that the teacher's members can be told apart through {m.student}.", why


def verdict_section(record: RunRecord) -> Section:
    """Section 1: the verdict in plain words, the headline numbers and the models' utility."""
    spec, recorded = headline_spec(record.config)
    m, c = headline_rows(record.membership, spec)
    if m is None:
        return Section("verdict", "Verdict", lead=True, paragraphs=(headline_note(spec, recorded), utility_text(record)),
                       missing=f"this run has no {spec.row_name} row for {spec.student} ({spec.setting}); set "
                               "report.headline to an attack the run measured, or rerun with it")
    photos = f"With {spec.k} photos of a person" if spec.level == "identity" else "With one photo of a person"
    claim, why = _claim(m, c)
    body = (f"{photos} ({m.n_queries} queries to the {m.student} API for {m.n_members} members and "
            f"{m.n_nonmembers} non-members), an attacker {_tpr_sentence(m)}. Over all thresholds: AUC "
            f"{fmt(m.auc)}, interval {_ci(m.auc_ci)}.")
    if c is not None:
        body += (f" The negative control (the same attack on students of a teacher that saw none of these people) "
                 f"{chance_words(c.auc_ci)}: AUC {fmt(c.auc)} {_ci(c.auc_ci)}.")
    body += f" {why.strip()}" if why else ""  # the numbers first, then why they are not conclusive
    return Section("verdict", "Verdict", lead=True,
                   paragraphs=(claim, body, utility_text(record), headline_note(spec, recorded)))


def utility_text(record: RunRecord) -> str:
    """The teacher's verification accuracy and each student's test accuracy, victim beside control."""
    t = record.teacher
    text = f"Utility: the teacher verifies held-out LFW pairs at {pct(t.verification.accuracy)} accuracy"
    cv = t.control.verification
    text += f" (control teacher {pct(cv.accuracy)})" if cv is not None else ""
    parts = []
    for s in (s for s in record.students if s.teacher == "victim"):
        ctrl = next((x for x in record.students if x.teacher == "control" and x.name == s.name), None)
        parts.append(f"{s.name} {pct(s.test_accuracy)}" + (f" (on the control {pct(ctrl.test_accuracy)})" if ctrl else ""))
    return text + ("; students' test accuracy: " + ", ".join(parts) if parts else "") + "."


def threat_section(record: RunRecord) -> Section:
    """Section 2: what the attacker holds and what the API returns, in two paragraphs."""
    spec, _ = headline_spec(record.config)
    attack = record.config.get("attack", {})
    n_ref = record.data.n_identities.get("reference")
    photos = ("the very photos the teacher trained on" if spec.setting == "training-photos"
              else "other photos of them, not the ones the teacher trained on")
    holds = (f"The attacker audits people of whom it holds a few photos ({photos}). It also knows "
             f"{n_ref} reference people who are not members, holds dlib's public base model and, for the shadow "
             f"attacks, trains {attack.get('n_shadow_teachers', 'no')} shadow teachers per setting on its own "
             "references. It never sees the teacher, its weights or its training list: only the student API.")
    out = attack.get("output", "posterior")
    t = record.teacher
    students = ", ".join(f"{s.name} ({s.n_classes} classes)" for s in record.students if s.teacher == "victim")
    api = (f"Each query sends one face photo and returns {_OUTPUTS.get(out, out)}. Behind the API: students "
           f"{students}, built by transfer learning on a {t.kind} teacher fine-tuned on {t.n_train_photos} photos "
           f"of {t.n_member_identities} member identities (the people whose membership is at stake).")
    return Section("threat", "Threat model and setting", paragraphs=(holds, api))


register_section("run", verdict_section)
register_section("run", threat_section)
