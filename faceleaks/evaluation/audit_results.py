"""Typed results of ``faceleaks audit``: an ``AuditRecord`` in ``OUT/results.json`` (torch-free).

Written and read by ``evaluation.jsonio`` like a run's ``RunRecord`` (schema-versioned, NaN as
``null``); ``record_type == "audit"`` tells it apart from a run's ``results.json`` in the same
file name. Every count the report prints is a field here (``counts``), so the page's numbers all
come from the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from faceleaks.errors import ArtifactError
from faceleaks.evaluation.jsonio import SCHEMA_VERSION, read_json, write_json

__all__ = ["VERDICTS", "PersonVerdict", "AuditSession", "AuditRecord", "verdict_counts", "write_audit_record",
           "read_audit", "is_audit_file", "OLD_AUDIT_FORMAT"]

VERDICTS = ("member", "not flagged", "insufficient evidence")
"""The verdict of a probe person: flagged at the FPR, not flagged, or too few reference people to tell."""
OLD_AUDIT_FORMAT = "faceleaks-audit/1"
"""The untyped ``results.json`` of audits before ``AuditRecord`` (``format`` field, no schema_version)."""


@dataclass(frozen=True)
class PersonVerdict:
    """One probe person: ``score`` (Fisher gap, higher = more likely member), ``p_value`` (against
    the reference people's scores, in (0, 1]), ``verdict`` (one of ``VERDICTS``), ``n_queries`` (their
    photos sent to the API) and ``is_member`` from the labels file (None without one)."""

    person: str
    score: float
    p_value: float
    verdict: str
    n_queries: int
    is_member: bool | None = None


@dataclass(frozen=True)
class AuditSession:
    """This invocation's traffic: photos ``sent`` to the API, HTTP ``requests`` answered, photos
    answered ``from_ledger`` (a resumed audit), the key's ``budget_remaining`` (None if the API does
    not say), wall-clock ``seconds``, the ledger's path and ``retries`` (requests sent again after a
    5xx, a timeout or a dropped connection)."""

    sent: int
    requests: int
    from_ledger: int
    budget_remaining: int | None
    seconds: float
    ledger: str
    retries: int = 0


@dataclass(frozen=True)
class AuditRecord:
    """What an audit's ``results.json`` holds; every count is of photos unless named otherwise.

    Attributes
    ----------
    endpoint, output_kind : the API audited and what it returns (``posterior``, ``topk``, ``label``)
    k, fpr, seed, attack : photos per person, the false-positive rate of a ``member`` verdict
        (fraction), the seed of the reference folds and the attack's name
    n_reference : reference people (known non-members) scored; ``reference_scores`` their scores
    people : the probe people's verdicts
    counts : ``probe people``, one entry per verdict, ``not scored`` (too few photos), ``photos
        skipped``, ``reference people needed`` (ceil(1 / fpr)) and ``reference people not scored``:
        the numbers the report quotes
    too_few_photos : person -> usable photos, for people with fewer than k
    skipped_photos : (photo, reason) pairs, no face or unreadable
    n_queries_probe, n_queries_reference : photos the scoring sent for each group
    auc : over the probe people of a labels file with both classes, else None
    redacted : names replaced by pseudonyms; ``session``: see ``AuditSession``
    photo_hashes : folder -> SHA-256 of its photo list (``evaluation.provenance``)
    environment : Python and library versions
    """

    endpoint: str
    output_kind: str
    k: int
    fpr: float
    seed: int
    attack: str
    n_reference: int
    people: tuple[PersonVerdict, ...]
    reference_scores: tuple[float, ...]
    counts: dict[str, int]
    too_few_photos: dict[str, int]
    skipped_photos: tuple[tuple[str, str], ...]
    n_queries_probe: int
    n_queries_reference: int
    auc: float | None = None
    redacted: bool = False
    reference_too_few_photos: dict[str, int] = field(default_factory=dict)
    session: AuditSession | None = None
    photo_hashes: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    record_type: str = "audit"
    schema_version: int = SCHEMA_VERSION

    @property
    def flagged(self) -> list[str]:
        """Probe people with the verdict ``member``."""
        return [p.person for p in self.people if p.verdict == "member"]

    @property
    def insufficient(self) -> bool:
        """Whether too few reference people resolve ``fpr`` (every verdict is then insufficient evidence)."""
        return self.n_reference * self.fpr < 1.0 - 1e-9

    def ranked(self) -> list[PersonVerdict]:
        """Probe people, most exposed first (lowest p-value, then highest score, then name)."""
        return sorted(self.people, key=lambda p: (p.p_value, -p.score, p.person))


def verdict_counts(people: tuple[PersonVerdict, ...], *, fpr: float, not_scored: int, skipped: int,
                   reference_not_scored: int = 0) -> dict[str, int]:
    """``AuditRecord.counts`` for ``people``; the other counts as described there."""
    counts = {"probe people": len(people)}
    counts.update({v: sum(p.verdict == v for p in people) for v in VERDICTS})
    counts.update({"not scored": not_scored, "photos skipped": skipped, "reference people needed": math.ceil(1 / fpr - 1e-9),
                   "reference people not scored": reference_not_scored})
    return counts


def write_audit_record(record: AuditRecord, path: Path) -> None:
    """Write ``record`` to ``path`` (``results.json``), atomically, schema-versioned (``jsonio.write_json``)."""
    write_json(record, Path(path))


def is_audit_file(path: Path) -> bool:
    """Whether the JSON at ``path`` is an audit's (typed or the older untyped format); False if unreadable."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and (raw.get("record_type") == "audit" or raw.get("format") == OLD_AUDIT_FORMAT)


def read_audit(path: Path) -> AuditRecord:
    """Read an audit's ``results.json`` written by :func:`write_audit_record`.

    Raises
    ------
    ArtifactError
        The file is unreadable, of another schema version, or an audit of the older untyped format
        (one line naming the file and the fix: rerun the audit; its ledger answers the queries again).
    """
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot read {path} ({err}); rerun faceleaks audit to regenerate it") from err
    if isinstance(raw, dict) and raw.get("format") == OLD_AUDIT_FORMAT:
        raise ArtifactError(f"{path} is an audit of the older format {OLD_AUDIT_FORMAT} (no schema_version); rerun "
                            "faceleaks audit with the same --out: its ledger answers every query without re-sending")
    return read_json(AuditRecord, path)
