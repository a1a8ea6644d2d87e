"""Attributes, defences and provenance sections (kinds ``run``, ``attributes``; provenance also
for ``inclusion`` records in ``sections_inclusion``)."""

from __future__ import annotations

from faceleaks.evaluation.attribute_results import AttributeRecord, AttributeScore
from faceleaks.evaluation.results import RunRecord
from faceleaks.report.attribute_report import budget_figure, budget_order
from faceleaks.report.embed import figure_block
from faceleaks.report.format import fmt
from faceleaks.report.sections import Section, Table, register_section

__all__ = ["attribute_section", "defence_section", "provenance_section", "RECONSTRUCTED", "timing_rows"]

RECONSTRUCTED = ("Reconstructed (our design; only the FaceLeaks paper's abstract is public): the teacher's fine-tuning "
                 "recipe, the attacker's reference pool and calibration of thresholds on known non-members, the "
                 "identity-level statistics (consistency gap, compactness, label agreement) and the attribute attacks' "
                 "auxiliary budgets. The docstrings mark each such choice.")


def _cell(r: AttributeScore | None) -> str:
    if r is None:
        return ""
    lo, hi = r.balanced_accuracy_ci
    return f"{fmt(r.balanced_accuracy)} [{fmt(lo, 2)}, {fmt(hi, 2)}]"


def _attribute_table(record: AttributeRecord, output: str | None) -> Table:
    budgets = budget_order({r.budget for r in record.scores + record.baselines})
    keys: dict[tuple, dict[str, AttributeScore]] = {}
    for r in record.scores + record.baselines:
        if r.role == "attack" and r.output != output:
            continue
        name = r.attack if r.role == "attack" else f"{r.role} ({r.attack})"
        keys.setdefault((r.attribute, r.variant, r.student, name), {})[r.budget] = r
    body = tuple((a, v, st, name, *(_cell(by.get(b)) for b in budgets)) for (a, v, st, name), by in keys.items())
    return Table(f"Balanced accuracy [CI] against labelled auxiliary faces per class n (API output {output})",
                 ("attribute", "variant", "student", "attack", *(f"n = {b}" for b in budgets)), body)


def attribute_section(record: AttributeRecord | None) -> Section:
    """Section 5: balanced accuracy against the auxiliary budget, with prior-only and white-box lines."""
    if record is None:
        return Section("attributes", "Attributes",
                       missing="no attribute study in this result (enable [attributes] or run faceleaks attributes)")
    output = next((r.output for r in record.scores), None)
    text = ("How well an attacker infers gender, race and age group of a person from the student's answers, given n "
            "labelled auxiliary faces per class. Prior-only guesses the majority class without querying (chance for "
            "balanced accuracy); white-box runs the same attack on the teacher's own embeddings (an upper reference).")
    fig = figure_block(budget_figure(record, output=output), "attribute inference against budget",
                       "Balanced accuracy against n; grey dotted: prior-only; dotted in an attack's colour: white-box.")
    return Section("attributes", "Attributes", paragraphs=(text,), figures=(fig,),
                   tables=(_attribute_table(record, output),))


def defence_section(record: object) -> Section:
    """Section 6: defences; a run or an N-victim evaluation has none (a defence sweep adds its own builder)."""
    return Section("defences", "Defences", missing="no defence was run for this result: the students answered "
                   "undefended. A defence sweep writes its own report with the privacy-utility plot and table")


def timing_rows(timings: dict[str, float]) -> tuple[tuple[str, str], ...]:
    """``(stage, seconds)`` rows, seconds with one decimal as recorded."""
    return tuple((stage, f"{s:.1f} s") for stage, s in timings.items())


def _hashes(hashes: dict[str, str]) -> str:
    if not hashes:
        return "not recorded (results.json written before data hashes); split.json beside it lists every person by role"
    return "; ".join(f"{name} {h}" for name, h in hashes.items()) + (
        " (SHA-256 of the sorted list of photo files' relative path and size in the folder above; split.json lists "
        "every person by role)")


def provenance_section(record: RunRecord) -> Section:
    """Section 7: seed, versions, data, split sizes, queries, timings, what is reconstructed, warnings."""
    d, cfg = record.data, record.config
    versions = ", ".join(f"{k} {v}" for k, v in record.environment.items()) or \
        f"faceleaks {record.faceleaks_version} (library versions not recorded by this older run)"
    rows = [("seed", str(record.seed)), ("versions", versions), ("results schema", str(record.schema_version)),
            ("LFW folder", d.lfw_root), ("UTKFace folder", d.utkface_root), ("face chips", d.chip),
            ("photos read", f"LFW {d.n_lfw_photos}, UTKFace {d.n_utkface_photos}, unreadable {d.n_unreadable}"),
            ("data set hashes", _hashes(d.hashes)),
            ("split (identities)", ", ".join(f"{k} {v}" for k, v in d.n_identities.items())),
            ("member photos the teacher trained on", str(d.n_member_train_photos)),
            ("teacher recipe", str(cfg.get("teacher", {}).get("recipe", "not recorded")))]
    rows += [(f"queries {box}", str(n)) for box, n in record.queries.items()]
    rows += [(f"time {stage}", s) for stage, s in timing_rows(record.timings_s)]
    paragraphs = (RECONSTRUCTED, *(f"Warning: {w}" for w in record.warnings))
    return Section("provenance", "Provenance", paragraphs=paragraphs,
                   tables=(Table("Where every number on this page comes from: results.json", ("item", "value"),
                                 tuple(rows)),))


def run_attribute_section(record: RunRecord) -> Section:
    """Section 5 of a run's page: the attribute study the run carried (``RunRecord.attributes``)."""
    return attribute_section(record.attributes)


register_section("run", run_attribute_section)
register_section("run", defence_section)
register_section("run", provenance_section)
