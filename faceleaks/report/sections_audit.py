"""The sections of an audit's page (``AuditRecord``), registered for kind ``audit``.

Verdict (how exposed the probe people are, what would fix it), setting, the probe people ranked
with the reference scores' figure, what was left out, and provenance. A run's membership, attribute
and defence sections do not apply to an audit, which measures its probe people only.
"""

from __future__ import annotations

from faceleaks.evaluation.audit_results import AuditRecord
from faceleaks.report.audit_report import (fix_sentence, method_sentence, people_header, people_rows, score_figure,
                                           verdict_sentences)
from faceleaks.report.embed import figure_block
from faceleaks.report.sections import Section, Table, fpr_label, register_section

__all__ = ["audit_verdict_section", "audit_threat_section", "audit_people_section", "audit_missing_section",
           "audit_provenance_section", "AUDIT_RECONSTRUCTED"]

AUDIT_RECONSTRUCTED = ("Reconstructed (our design; only the FaceLeaks paper's abstract is public): the consistency-gap "
                       "score, its calibration against reference people and dlib's public base model, and the p-value "
                       "as the rank among the reference people's scores.")


def audit_verdict_section(r: AuditRecord) -> Section:
    """Section 1: how exposed the probe people are, the numbers behind it, and what would fix it."""
    claim, body = verdict_sentences(r)
    return Section("verdict", "Verdict", lead=True, paragraphs=(claim, body, fix_sentence(r)))


def audit_threat_section(r: AuditRecord) -> Section:
    """Section 2: what the auditor (the attacker) holds and what the API returns."""
    holds = (f"The auditor holds photos of the probe people (is each in the teacher's training set?) and of "
             f"{r.n_reference} reference people known not to be, dlib's public base model and an API key; never the "
             "teacher, its weights or its training list.")
    return Section("threat", "Threat model and setting", paragraphs=(holds, method_sentence(r)))


def audit_people_section(r: AuditRecord) -> Section:
    """Section 4: the probe people ranked, most exposed first, with the evidence (photos sent)."""
    if not r.people:
        return Section("exposed", "Probe people", missing="no probe person had enough photos with a face to be scored")
    fig = figure_block(score_figure(r), "probe people's scores on the reference people's scores",
                       "Grey: the reference people's scores (the p-values rank against them); lines: probe people, "
                       "coloured by verdict.")
    caption = (f"Probe people, most exposed first (p-value against {r.n_reference} reference people; "
               f"flagged when at most {fpr_label(r.fpr)})")
    return Section("exposed", "Probe people", figures=(fig,),
                   tables=(Table(caption, people_header(r), tuple(people_rows(r))),))


def audit_missing_section(r: AuditRecord) -> Section:
    """Section 5: people not scored and photos skipped (the auditor's photos, not the API's fault)."""
    if not r.too_few_photos and not r.skipped_photos and not r.reference_too_few_photos:
        return Section("left-out", "Left out", paragraphs=("Every probe and reference photo was used.",))
    tables = []
    for what, short in (("probe", r.too_few_photos), ("reference", r.reference_too_few_photos)):
        if short:
            tables.append(Table(f"Not scored: {what} people with fewer than {r.k} photos with a face",
                                ("person", "usable photos"), tuple((p, str(n)) for p, n in sorted(short.items()))))
    if r.skipped_photos:
        tables.append(Table("Photos skipped (no face found, or unreadable)", ("photo", "reason"),
                            tuple(tuple(x) for x in r.skipped_photos)))
    return Section("left-out", "Left out", tables=tuple(tables))


def audit_provenance_section(r: AuditRecord) -> Section:
    """Section 7: settings, traffic of this invocation, data hashes, versions, what is reconstructed."""
    rows = [("endpoint", r.endpoint or "not recorded"), ("API returns", r.output_kind), ("attack", r.attack),
            ("photos per person k", str(r.k)), ("false-positive rate of a verdict", fpr_label(r.fpr)),
            ("seed", str(r.seed)), ("reference people", str(r.n_reference)),
            ("photos sent for scoring", f"probe {r.n_queries_probe}, reference {r.n_queries_reference}"),
            ("names redacted", "yes" if r.redacted else "no")]
    s = r.session
    if s is not None:
        rows += [("photos sent in this session", str(s.sent)), ("answered from the ledger", str(s.from_ledger)),
                 ("HTTP requests", f"{s.requests} answered, {s.retries} retried"), ("key's budget left", "not reported" if s.budget_remaining
                                                      is None else str(s.budget_remaining)),
                 ("wall-clock time", f"{s.seconds:.1f} s"), ("ledger", s.ledger)]
    rows += [(f"photo list hash: {k}", v) for k, v in r.photo_hashes.items()]
    rows.append(("versions", ", ".join(f"{k} {v}" for k, v in r.environment.items()) or "not recorded"))
    rows.append(("results schema", str(r.schema_version)))
    return Section("provenance", "Provenance", paragraphs=(AUDIT_RECONSTRUCTED,),
                   tables=(Table("Where every number on this page comes from: results.json", ("item", "value"),
                                 tuple(rows)),))


for _builder in (audit_verdict_section, audit_threat_section, audit_people_section, audit_missing_section,
                 audit_provenance_section):
    register_section("audit", _builder)
