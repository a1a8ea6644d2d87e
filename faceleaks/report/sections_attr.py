"""The page of an attribute study alone (``faceleaks attributes``: ``AttributeRecord``), kind ``attributes``.

Its verdict quotes, per attribute, the study's first attack, variant and student (their order in the
record is the config's, fixed before the run) at the largest auxiliary budget, beside the prior-only
and white-box baselines of the same budget; the full table and plot are in the attributes section.
"""

from __future__ import annotations

from faceleaks.evaluation.attribute_results import AttributeRecord, AttributeScore
from faceleaks.report.attribute_report import budget_order
from faceleaks.report.format import fmt
from faceleaks.report.sections import Section, Table, register_section
from faceleaks.report.sections_extra import RECONSTRUCTED, attribute_section, defence_section, timing_rows

__all__ = ["attribute_verdict", "attribute_provenance"]


def _pick(rows: tuple[AttributeScore, ...], **match) -> AttributeScore | None:
    return next((r for r in rows if all(getattr(r, k) == v for k, v in match.items())), None)


def _line(record: AttributeRecord, first: AttributeScore, budget: str) -> str:
    r = _pick(record.scores, attribute=first.attribute, variant=first.variant, student=first.student,
              attack=first.attack, output=first.output, budget=budget)
    if r is None:
        return f"{first.attribute}: not measured at n = {budget}"
    prior = _pick(record.baselines, attribute=r.attribute, variant=r.variant, role="prior-only", budget=budget)
    white = _pick(record.baselines, attribute=r.attribute, variant=r.variant, role="white-box", attack=r.attack)
    text = f"{r.attribute} {fmt(r.balanced_accuracy)} [{fmt(r.balanced_accuracy_ci[0], 2)}, {fmt(r.balanced_accuracy_ci[1], 2)}]"
    text += f" (prior-only {fmt(prior.balanced_accuracy)}" if prior else " (prior-only not measured"
    return text + (f", white-box {fmt(white.balanced_accuracy)})" if white else ")")


def attribute_verdict(record: AttributeRecord) -> Section:
    """Verdict of an attribute study: balanced accuracy per attribute against its baselines."""
    if not record.scores:
        return Section("verdict", "Verdict", lead=True, missing="the attribute study recorded no attack score")
    first = record.scores[0]
    budget = budget_order({r.budget for r in record.scores})[-1]
    lines = [_line(record, next(r for r in record.scores if r.attribute == a), budget)
             for a in dict.fromkeys(r.attribute for r in record.scores)]
    body = (f"From the {first.student} student's {first.output} answers, with n = {budget} labelled auxiliary faces "
            f"per class, the {first.attack} attack ({first.variant}) reaches balanced accuracy: " + "; ".join(lines) + ".")
    note = ("Quoted: the study's first attack, variant and student in the configured order, at the largest budget; "
            "every other combination is in the attributes section. Membership is not measured by this study "
            "(faceleaks run measures both).")
    return Section("verdict", "Verdict", lead=True, paragraphs=(body, note))


def attribute_provenance(record: AttributeRecord) -> Section:
    """Seed, labelled sets, queries and timings of the attribute study."""
    rows = [("seed", str(record.seed)), ("results schema", str(record.schema_version)),
            ("versions", "not recorded by the attribute study")]
    rows += [(f"labels {s.attribute} ({s.dataset})", ", ".join(f"{c} {n}" for c, n in zip(s.classes, s.counts)))
             for s in record.labels]
    rows += [(f"queries {box}", str(n)) for box, n in record.queries.items()]
    rows += [(f"time {stage}", s) for stage, s in timing_rows(record.timings_s)]
    return Section("provenance", "Provenance", paragraphs=(RECONSTRUCTED, *(f"Warning: {w}" for w in record.warnings)),
                   tables=(Table("Where every number on this page comes from: attributes.json", ("item", "value"),
                                 tuple(rows)),))


for _builder in (attribute_verdict, attribute_section, defence_section, attribute_provenance):
    register_section("attributes", _builder)
