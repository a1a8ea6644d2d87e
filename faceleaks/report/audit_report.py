"""An audit's words, table and figure from its ``AuditRecord`` (no file I/O; torch-free).

``verdict_sentences`` answers "how exposed are my people, and what would fix it" in plain words;
``people_rows`` is the ranked table; ``audit_markdown`` is ``summary.md``; ``score_figure`` places
each probe person's score on the reference people's scores. Numbers are the record's only, formatted
with ``format.fmt`` and ``sections.pct`` (the numeral test of the page repeats that rounding).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.evaluation.audit_results import AuditRecord  # noqa: E402
from faceleaks.report.format import fmt, markdown_table  # noqa: E402
from faceleaks.report.sections import fpr_label  # noqa: E402

__all__ = ["verdict_sentences", "fix_sentence", "method_sentence", "people_header", "people_rows", "audit_markdown",
           "score_figure"]

_COLOURS = {"member": "#b3261e", "not flagged": "#1f6feb", "insufficient evidence": "#8a6d00"}


def verdict_sentences(r: AuditRecord) -> tuple[str, str]:
    """The claim (one line) and the numbers behind it."""
    c, fpr = r.counts, fpr_label(r.fpr)
    traffic = (f"{r.n_queries_probe} probe photos and {r.n_queries_reference} reference photos were sent to the "
               f"{r.output_kind} API (k = {r.k} per person scored).")
    if r.insufficient:
        claim = (f"Insufficient evidence: {r.n_reference} reference people cannot resolve a {fpr} false-positive "
                 f"rate; give photos of at least {c['reference people needed']} known non-members.")
        return claim, f"None of the {c['probe people']} probe people gets a verdict at that rate. " + traffic
    if c["member"]:
        claim = (f"{c['member']} of {c['probe people']} probe people are flagged as members of the teacher's "
                 f"training set at {fpr} false positives.")
    else:
        claim = f"None of the {c['probe people']} probe people is flagged as a member at {fpr} false positives."
    body = (f"A person is flagged when their p-value (the rank of their score among the {r.n_reference} reference "
            f"people's, who are known non-members) is at most {fpr}: a non-member is flagged with at most that "
            "probability. " + traffic)
    if not c["member"] and r.people:
        top = r.ranked()[0]
        body += f" The most exposed probe person, {top.person}, has p = {fmt(top.p_value, 4)}."
    if r.auc is not None:
        body += f" With the labels file, the probe people's AUC is {fmt(r.auc)} (chance is one half)."
    return claim, body


def fix_sentence(r: AuditRecord) -> str:
    """What would fix it (or what the absence of flags does not show)."""
    if r.insufficient:
        return ("What to do: add reference people (photos of people certain not to be in the teacher's training set) "
                "and rerun with the same --out; the ledger answers the queries already sent.")
    if r.counts["member"]:
        if r.output_kind == "label":
            return ("What would fix it: the API already returns labels only, so the leak is in the teacher itself: "
                    "retrain it with DP-SGD at the identity level or stronger regularisation; faceleaks defend measures "
                    "what each costs in utility. Re-audit after the change.")
        return ("What would fix it: return labels only (faceleaks serve --output label) and retrain the teacher with "
                "DP-SGD at the identity level; faceleaks defend measures what each defence costs in utility and what "
                "an attacker who knows it still finds. Re-audit after the change.")
    return ("Nothing flagged is not proof of non-membership: the attack's power grows with photos per person and "
            "reference people; a labels file with people known to be members measures it (AUC).")


def method_sentence(r: AuditRecord) -> str:
    """How the scores were made [reconstructed]."""
    return (f"Attack {r.attack}: each person's photos go to the API; their Fisher gap (how much more the API's "
            f"answers agree across a person's photos than dlib's public base model predicts, on the arctanh scale of "
            f"the pairs' cosines) is the score, higher "
            f"meaning more likely a member. Endpoint {r.endpoint or 'not recorded'}, returning {r.output_kind}. "
            "The attacker holds only photos, the public base model and the API key.")


def people_header(r: AuditRecord) -> tuple[str, ...]:
    """Columns of :func:`people_rows`."""
    return ("person", "score", "p-value", "verdict", "queries") + (("member (labels)",) if r.auc is not None else ())


def people_rows(r: AuditRecord) -> list[tuple[str, ...]]:
    """One row per probe person, most exposed first (``AuditRecord.ranked``)."""
    rows = []
    for p in r.ranked():
        label = () if r.auc is None else ("unknown" if p.is_member is None else ("yes" if p.is_member else "no"),)
        rows.append((p.person, fmt(p.score, 4), fmt(p.p_value, 4), p.verdict, str(p.n_queries), *label))
    return rows


def audit_markdown(r: AuditRecord) -> str:
    """``summary.md`` of an audit: the verdict, what would fix it, the ranked table, what was left out."""
    claim, body = verdict_sentences(r)
    lines = [f"# FaceLeaks audit of {r.endpoint or 'a student API'}", "", f"**{claim}**", "", body, "",
             fix_sentence(r), "", markdown_table(list(people_header(r)), [list(x) for x in people_rows(r)]), ""]
    if r.too_few_photos:
        lines.append(f"Not scored (fewer than {r.k} photos with a face): "
                     + ", ".join(f"{p} ({n})" for p, n in sorted(r.too_few_photos.items())) + ".")
    if r.reference_too_few_photos:
        lines.append(f"Reference people not scored (fewer than {r.k} photos with a face): "
                     f"{r.counts['reference people not scored']}; listed in results.json.")
    if r.skipped_photos:
        lines.append(f"Photos skipped (no face or unreadable): {r.counts['photos skipped']}; listed in results.json.")
    lines.append(method_sentence(r))
    return "\n".join(lines) + "\n"


def score_figure(r: AuditRecord) -> Figure:
    """The reference people's scores (grey histogram: the null the p-values rank against) and each probe
    person's score (a vertical line coloured by verdict)."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    if r.reference_scores:
        ax.hist(r.reference_scores, bins=min(30, max(5, len(r.reference_scores) // 3)), color="#bbbbbb",
                label="reference people (known non-members)")
    seen = set()
    for p in r.people:
        label = None if p.verdict in seen else f"probe person: {p.verdict}"
        seen.add(p.verdict)
        ax.axvline(p.score, color=_COLOURS.get(p.verdict, "black"), lw=1.4, label=label)
    ax.set_xlabel("Fisher gap score (higher = more likely a member)")
    ax.set_ylabel("reference people")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    fig.tight_layout()
    return fig
