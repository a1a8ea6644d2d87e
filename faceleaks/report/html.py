"""``report.html``: one self-contained page per result folder (Jinja2 templates, embedded PNG plots).

``load_result`` reads the folder's record (``results.json`` of a run or an audit, ``inclusion.json`` of an
N-victim run, ``attributes.json`` of the attribute study, in that order) through the typed readers;
``render_html`` builds the registered sections of that kind (``sections.SECTION_BUILDERS``) and fills
``templates/report.html.j2``; ``write_html_report`` writes ``DIR/report.html``. The page needs no
network and no JavaScript: plots are ``data:`` URIs, styles are inline.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

import faceleaks.report.sections_attr  # noqa: F401  (registers the attribute-study page)
import faceleaks.report.sections_audit  # noqa: F401  (registers the audit page)
import faceleaks.report.sections_defend  # noqa: F401  (registers the defence-sweep page)
import faceleaks.report.sections_extra  # noqa: F401  (registers attributes, defences, provenance)
import faceleaks.report.sections_inclusion  # noqa: F401  (registers the N-victim page)
import faceleaks.report.sections_membership  # noqa: F401  (registers membership, exposed people)
import faceleaks.report.sections_run  # noqa: F401  (registers verdict, threat model)
from faceleaks.atomic import atomic_write_text
from faceleaks.errors import ArtifactError
from faceleaks.evaluation.attribute_results import AttributeRecord
from faceleaks.evaluation.audit_results import is_audit_file, read_audit
from faceleaks.evaluation.inclusion_results import read_inclusion
from faceleaks.evaluation.results import read_results
from faceleaks.report.sections import SECTION_BUILDERS, Section
from faceleaks.report.sections_defend import is_sweep_folder, load_sweep

__all__ = ["LoadedResult", "load_result", "build_sections", "render_html", "write_html_report"]

log = logging.getLogger(__name__)

_READERS = (("results.json", "audit", read_audit), ("results.json", "run", read_results),
            ("inclusion.json", "inclusion", read_inclusion),
            ("attributes.json", "attributes", AttributeRecord.from_json))
_TITLES = {"run": "membership and attribute inference run", "inclusion": "random-inclusion evaluation (N victims)",
           "attributes": "attribute inference study", "audit": "audit of a student API",
           "defences": "defence sweep (privacy and utility)"}
_ORDER = {"verdict": 0, "threat": 1, "membership": 2, "exposed": 3, "attributes": 4, "defences": 5, "left-out": 6, "seeds": 6, "provenance": 7}


@dataclass(frozen=True)
class LoadedResult:
    """A folder's record: ``kind`` (``run``, ``audit``, ``inclusion``, ``attributes``, ``defences``), the
    typed ``record``, its ``source`` file (a defence sweep: its first setting's) and the ``folder`` the
    page goes to."""

    kind: str
    record: Any
    source: Path
    folder: Path

    @property
    def source_text(self) -> str:
        """Where the page's numbers come from, as the page says it."""
        if self.kind == "defences":
            return "each setting's results.json (<setting>/results.json below the page's folder)"
        return f"{self.source.name} in the same folder"


def load_result(folder: Path) -> LoadedResult:
    """Read the record of an output folder (see the module docstring for the order).

    Raises
    ------
    ArtifactError
        If ``folder`` is not a folder, holds no finished result (a half-finished run says so), or
        its file is unreadable or of another schema version (one line naming the file and the fix).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder} is not a folder; give the --out folder of faceleaks run (it holds results.json)")
    for name, kind, reader in _READERS:
        path = folder / name
        if path.is_file() and (kind == "audit") == (name == "results.json" and is_audit_file(path)):
            return LoadedResult(kind, reader(path), path, folder)
    for sweep in (folder, folder / "defend"):
        if is_sweep_folder(sweep):
            record = load_sweep(sweep)
            return LoadedResult("defences", record, record.sources[0], sweep)
    _refuse_unfinished(folder)
    started = [n for n in ("split.json", "students", "inclusion-victims") if (folder / n).exists()]
    if started:
        raise ArtifactError(f"{folder} holds {', '.join(started)} but no results.json: the run did not finish; rerun "
                            f"faceleaks run --out {folder} (cached models make the rerun quick)")
    raise ArtifactError(f"{folder} holds no results.json, inclusion.json, attributes.json or defend/ settings; give "
                        "the --out folder of faceleaks run, audit, attributes or defend")


def _refuse_unfinished(folder: Path) -> None:
    """``ArtifactError`` naming ``run.json``'s status when a run without results is running, failed or stopped."""
    try:
        status = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return
    state = status.get("status") if isinstance(status, dict) else None
    if state in (None, "complete"):
        return
    stages = ", ".join(status.get("failed_stages") or []) or "none recorded"
    raise ArtifactError(f"{folder}/run.json says the run is {state} (failed stages: {stages}) and no results.json was "
                        f"written; {'wait for it to finish' if state == 'running' else 'rerun the same command'} "
                        f"(finished stages are cached), then faceleaks report {folder}")


def build_sections(loaded: LoadedResult) -> list[Section]:
    """Every registered section of ``loaded.kind``, in page order; a builder that fails on this record
    gives a section that says so (logged) instead of losing the page."""
    out = []
    for builder in SECTION_BUILDERS.get(loaded.kind, []):
        try:
            out.append(builder(loaded.record))
        except Exception as err:  # a record the builder cannot read must not lose the rest of the page
            log.warning("report section %s failed: %s", getattr(builder, "__name__", builder), err)
            key = getattr(builder, "__name__", "section").removesuffix("_section").split("_")[-1]
            out.append(Section(key, key.capitalize(), missing=f"could not be built from {loaded.source.name} "
                                                               f"({type(err).__name__}: {err})"))
    return sorted(out, key=lambda s: _ORDER.get(s.key, len(_ORDER)))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("faceleaks.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(loaded: LoadedResult) -> str:
    """The page of ``loaded`` as one HTML string."""
    template = _environment().get_template("report.html.j2")
    return template.render(title=f"FaceLeaks report: {_TITLES.get(loaded.kind, loaded.kind)}",
                           source=loaded.source_text, sections=build_sections(loaded))


def write_html_report(folder: Path) -> Path:
    """Write ``folder/report.html`` from the record in ``folder``; returns its path.

    Raises
    ------
    ArtifactError
        As :func:`load_result`, or if the page cannot be written.
    """
    loaded = load_result(folder)
    path = loaded.folder / "report.html"
    atomic_write_text(path, render_html(loaded))
    return path
