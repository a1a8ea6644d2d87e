"""The page of a defence sweep (``faceleaks defend``): ``DefenceRecord``s of ``OUT/defend/<setting>/``.

``load_sweep`` reads every setting's ``results.json`` (and, for ``defend --seeds``, every
``OUT/seed-<s>/defend/``); the sections are registered for kind ``defences``. The table is
``report.defend.defence_rows`` (the same rows as ``summary.md``, so columns added there appear here),
except that its ``queries`` cell, a sum, is written as the per-student counts the record holds (every
number on the page is in a ``results.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceleaks.config.defence import DEFAULT_DEFENCE_GRID
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.defend_results import DefenceRecord, read_defence
from faceleaks.evaluation.results import MembershipReport
from faceleaks.report.defend import defence_rows, privacy_utility_figure
from faceleaks.report.embed import figure_block
from faceleaks.report.format import fmt
from faceleaks.report.sections import Section, Table, register_section

__all__ = ["DefenceSweep", "load_sweep", "is_sweep_folder", "sweep_verdict_section", "sweep_threat_section",
           "sweep_table_section", "sweep_seeds_section", "sweep_provenance_section"]


@dataclass(frozen=True)
class DefenceSweep:
    """A defence sweep's records: ``records`` of the folder's seed (grid order), ``sources`` their files,
    ``by_seed`` seed -> records for a ``--seeds`` sweep (empty otherwise)."""

    records: tuple[DefenceRecord, ...]
    sources: tuple[Path, ...]
    by_seed: dict[int, tuple[DefenceRecord, ...]] = field(default_factory=dict)


def is_sweep_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a defence sweep's settings (``<setting>/results.json``) or ``seeds.md``."""
    folder = Path(folder)
    return folder.is_dir() and (any(folder.glob("*/results.json")) or (folder / "seeds.md").is_file())


def _read_folder(folder: Path) -> tuple[list[DefenceRecord], list[Path]]:
    """The folder's records in the default grid's order, settings outside it after, by time written."""
    order = {s.name: i for i, s in enumerate(DEFAULT_DEFENCE_GRID)}
    files = sorted(Path(folder).glob("*/results.json"),
                   key=lambda p: (order.get(p.parent.name, len(order)), p.stat().st_mtime, p.parent.name))
    return [read_defence(p) for p in files], files


def load_sweep(folder: Path) -> DefenceSweep:
    """Read the sweep in ``folder`` (``OUT/defend``); with ``seeds.md`` also ``OUT/seed-<s>/defend``.

    Raises
    ------
    ArtifactError
        No setting finished, or a setting's file is unreadable or of another schema version.
    """
    folder = Path(folder)
    records, files = _read_folder(folder)
    by_seed: dict[int, tuple[DefenceRecord, ...]] = {}
    if (folder / "seeds.md").is_file():
        for sub in sorted(folder.parent.glob("seed-*/defend")):
            rs, fs = _read_folder(sub)
            if rs:
                by_seed[rs[0].seed] = tuple(rs)
                records, files = (records or rs), (files or fs)
    if not records:
        raise ArtifactError(f"{folder} holds no finished defence setting (<setting>/results.json); run faceleaks "
                            f"defend --out {folder.parent} (finished settings are kept, a rerun resumes)")
    return DefenceSweep(tuple(records), tuple(files), by_seed)


def _undefended(records: tuple[DefenceRecord, ...]) -> DefenceRecord:
    plain = [r for r in records if r.output_defence == "none" and not r.teacher_overrides]
    return plain[0] if plain else records[0]


def _auc(m: MembershipReport | None) -> str:
    return "n/a" if m is None else f"AUC {fmt(m.auc)} [{fmt(m.auc_ci[0], 2)}, {fmt(m.auc_ci[1], 2)}]"


#: How much utility (member identification, the student's accuracy through the API; fractions) a setting
#: may lose against the undefended one and still count as keeping the owner's utility.
UTILITY_SLACK = 0.02


def _keeps_utility(r: DefenceRecord, base: DefenceRecord) -> bool:
    api, base_api = (x.defended_student_accuracy.get(x.student, float("nan")) for x in (r, base))
    # NaN (no head, no held-out photos) is unknown, not a loss: only a measured drop excludes a setting
    return (not r.identification_accuracy < base.identification_accuracy - UTILITY_SLACK
            and not api < base_api - UTILITY_SLACK)


def _strongest(records: tuple[DefenceRecord, ...], base: DefenceRecord | None = None) -> DefenceRecord | None:
    """The setting whose best adaptive attack has the lowest AUC (ties: higher member identification
    accuracy); with ``base``, only among settings that keep its utility within ``UTILITY_SLACK``."""
    rated = [r for r in records if r.best_adaptive is not None and (base is None or _keeps_utility(r, base))]
    return min(rated, key=lambda r: (r.best_adaptive.auc, -r.identification_accuracy)) if rated else None


def _utility(r: DefenceRecord) -> str:
    api = r.defended_student_accuracy.get(r.student)
    return (f"member identification accuracy {fmt(r.identification_accuracy)}, {r.student} accuracy through the "
            f"API {fmt(api)}")


def _caveats(records: tuple[DefenceRecord, ...], base: DefenceRecord, best: DefenceRecord) -> str:
    """How far the recommendation can be trusted: which settings' intervals overlap the chosen one's, and
    what it does to gender inference through the API."""
    lo, hi = best.best_adaptive.auc_ci
    overlap = [r.setting for r in records if r is not best and r.best_adaptive is not None
               and r.best_adaptive.auc_ci[0] <= hi and r.best_adaptive.auc_ci[1] >= lo]
    text = (f"Its interval overlaps those of {len(overlap)} of the other {len(records) - 1} settings"
            + (f" ({', '.join(overlap)})" if len(overlap) <= 4 else "") +
            ": one split of people cannot rank these (repeat with --seeds)." if overlap else
            "Its interval overlaps no other setting's.")
    g_base, g_best = base.gender, best.gender
    if g_base is not None and g_best is not None:
        text += (f" Gender inference through the API (balanced accuracy): {fmt(g_best.balanced_accuracy)} behind "
                 f"{best.setting}, {fmt(g_base.balanced_accuracy)} undefended.")
    return text


def sweep_verdict_section(s: DefenceSweep) -> Section:
    """Section 1: what the undefended API leaks, which setting leaks least against an adaptive attacker, at what cost."""
    base = _undefended(s.records)
    best, lowest = _strongest(s.records, base), _strongest(s.records)
    head = base.best_adaptive
    claim = (f"Undefended ({base.setting}), the strongest attack that knows the defence reaches {_auc(head)} with "
             f"{base.k} photos of a person.")
    if best is None or best is base:
        fix = "No setting of this sweep lowers the adaptive attack below the undefended API's."
    else:
        fix = (f"Least leakage at the owner's utility (within {UTILITY_SLACK} of undefended): {best.setting} "
               f"({best.output_defence}, teacher {best.teacher_overrides or best.recipe}): the best adaptive attack, "
               f"{best.best_adaptive.attack}, reaches {_auc(best.best_adaptive)}, at {_utility(best)} (undefended: "
               f"{_utility(base)}).")
        if lowest is not None and lowest is not best:
            fix += (f" Lower still, at a cost: {lowest.setting}, {_auc(lowest.best_adaptive)}, at "
                    f"{_utility(lowest)}.")
        fix += " " + _caveats(s.records, base, best)
    note = ("AUCs are identity level on the teacher's training photos, with bootstrap intervals over people; the "
            "best adaptive attack is the maximum over several attacks on the same people, which overstates it "
            "slightly. The table below has every setting.")
    return Section("verdict", "Verdict", lead=True, paragraphs=(claim, fix, note))


def sweep_threat_section(s: DefenceSweep) -> Section:
    """Section 2: the adaptive attacker and what each API returns."""
    r0 = s.records[0]
    kinds = ", ".join(sorted({r.output_kind for r in s.records}))
    text = (f"Each setting puts a defence in place (an output defence on the API, a teacher recipe, or both) and reruns "
            f"the attacks on the {r0.student} student with {r0.k} photos per person. The attacker knows the defence "
            "and adapts: it averages repeated queries against noise, falls back to label-only attacks when the API "
            f"returns labels, and reports its best attack. The APIs return: {kinds}. Utility is as the teacher's owner "
            "sees it: the teacher's member identification and LFW verification, and each student's accuracy through "
            "the defended API.")
    return Section("threat", "Threat model and setting", paragraphs=(text,))


def _tables(records: tuple[DefenceRecord, ...]) -> tuple[Table, Table]:
    """``defence_rows`` as two tables, utility (columns before the first AUC) and privacy (from it on),
    each starting with the setting, so neither needs scrolling sideways."""
    header, rows = defence_rows(list(records))
    header = [h.replace("[95 % CI]", "[CI]") for h in header]  # the level is not in the records (numeral test)
    q = header.index("queries") if "queries" in header else None
    body = []
    for r, row in zip(records, rows):
        if q is not None:
            row = [*row[:q], ", ".join(f"{box} {n}" for box, n in r.queries.items()), *row[q + 1:]]
        body.append(row)
    cut = next((i for i, h in enumerate(header) if "AUC" in h), len(header))
    utility = Table("Utility as the owner sees it, per setting", tuple(header[:cut]), tuple(tuple(b[:cut]) for b in body))
    privacy = Table("Privacy: what the attacker finds per setting (CI: bootstrap interval over people; TPR is n/a where "
                    "too few non-members resolve that FPR)", (header[0], *header[cut:]),
                    tuple((b[0], *b[cut:]) for b in body))
    return utility, privacy


def sweep_table_section(s: DefenceSweep) -> Section:
    """Section 6: the privacy–utility plot and the tables of every setting."""
    fig = figure_block(privacy_utility_figure(list(s.records)), "privacy against utility per defence setting",
                       "Filled: best adaptive attack with its interval (blue: output defence, orange: teacher "
                       "recipe, red: DP-SGD with its ε); hollow grey: the headline attack.", dpi=90)
    return Section("defences", "Defences: privacy and utility", figures=(fig,), tables=_tables(s.records))


def sweep_seeds_section(s: DefenceSweep) -> Section:
    """Over seeds (``defend --seeds``): the best adaptive attack's AUC of each setting per seed."""
    if not s.by_seed:
        return Section("seeds", "Over seeds", missing="one seed only (faceleaks defend --seeds repeats the grid over several)")
    seeds = sorted(s.by_seed)
    names = [r.setting for r in s.by_seed[seeds[0]]]
    rows = []
    for name in names:
        cells = []
        for seed in seeds:
            r = next((x for x in s.by_seed[seed] if x.setting == name), None)
            best = None if r is None else r.best_adaptive
            cells.append("n/a" if best is None else f"{fmt(best.auc)} ({best.attack})")
        rows.append((name, *cells))
    return Section("seeds", "Over seeds", tables=(Table("Best adaptive attack's AUC per seed (seeds.md has mean ± sd)",
                                                        ("setting", *(f"seed {x}" for x in seeds)), tuple(rows)),))


def sweep_provenance_section(s: DefenceSweep) -> Section:
    """Section 7: seed, k, base model's identification accuracy, time, notes, files."""
    r0 = s.records[0]
    rows = [("seed", str(r0.seed)), ("photos per person k", str(r0.k)), ("attacked student", r0.student),
            ("unmodified dlib (no head), member enrolment accuracy (nearest centroid)",
             f"{fmt(r0.base_enrolment_accuracy)} on {r0.n_identification_photos} held-out member photos"),
            ("results schema", str(r0.schema_version))]
    rows += [(f"{r.setting}: time", f"{r.seconds:.1f} s") for r in s.records]
    notes: dict[str, list[str]] = {}
    for r in s.records:
        for n in r.notes:
            notes.setdefault(n, []).append(r.setting)
    rows += [("note" + (f" ({', '.join(who)})" if len(who) < len(s.records) else " (every setting)"), n)
             for n, who in notes.items()]
    rows += [(f"{r.setting}: file", f"{p.parent.name}/{p.name}") for r, p in zip(s.records, s.sources)]
    return Section("provenance", "Provenance", tables=(Table("Where every number on this page comes from",
                                                             ("item", "value"), tuple(rows)),))


for _builder in (sweep_verdict_section, sweep_threat_section, sweep_table_section, sweep_seeds_section,
                 sweep_provenance_section):
    register_section("defences", _builder)
