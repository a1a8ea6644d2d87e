"""An audit of a student API: membership verdicts for probe people from folders of their photos.

The auditor holds an endpoint (``serving.client.HttpBlackBox``, or any ``BlackBox``), photos of
**probe** people (is each a member of the teacher's training set?) and of **reference** people it
knows are not members, and dlib's public base model. Scores and p-values come from
``audit_scores`` (the Fisher gap, calibrated on the reference people); each probe person
gets a verdict at the configured FPR [reconstructed]:

- ``member`` (flagged) when p <= FPR;
- ``not flagged`` otherwise;
- ``insufficient evidence`` for everyone when there are fewer than 1/FPR reference people (no
  p-value can then fall to the FPR).

With a labels file (person, member) the AUC over the probe people is reported as well. Names of
probe people can be replaced by stable pseudonyms (HMAC-SHA-256 under a key kept in the output
folder) in every output. Outputs are written atomically (``faceleaks.atomic``).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import secrets
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceleaks.atomic import atomic_write_text
from faceleaks.attacks.base import PublicBase
from faceleaks.errors import ConfigError, DataError
from faceleaks.evaluation.audit_data import PhotoFolder
from faceleaks.evaluation.audit_results import (VERDICTS, AuditRecord, PersonVerdict, verdict_counts,
                                                write_audit_record)
from faceleaks.evaluation.audit_scoring import audit_scores
from faceleaks.metrics import auc_score
from faceleaks.serving.protocol import BlackBox

__all__ = ["PersonVerdict", "AuditRecord", "run_audit", "verdict", "read_labels", "Redactor", "write_audit",
           "purge_audit", "LEDGER_FILE", "CACHE_DIR", "VERDICTS"]

LEDGER_FILE = "ledger.sqlite"
CACHE_DIR = ".audit-cache"
_REDACT_KEY = ".redact-key"


def verdict(p_value: float, n_reference: int, fpr: float) -> str:
    """``member`` if ``p_value <= fpr``, else ``not flagged``; ``insufficient evidence`` if n_reference < 1/fpr."""
    if n_reference * fpr < 1.0 - 1e-9:
        return "insufficient evidence"
    return "member" if p_value <= fpr + 1e-12 else "not flagged"


def read_labels(path: str | Path) -> dict[str, bool]:
    """``person -> is member`` from a CSV with columns ``person,member`` (member: 1/0, true/false, yes/no).

    Raises ``ConfigError`` naming the bad line.
    """
    truth = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    out: dict[str, bool] = {}
    try:
        with open(path, newline="") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if not row or (n == 1 and row[0].strip().lower() == "person"):
                    continue
                if len(row) != 2 or row[1].strip().lower() not in truth:
                    raise ConfigError(f"--labels {path} line {n}: expected 'person,member' with member 1 or 0, got {row}")
                out[row[0].strip()] = truth[row[1].strip().lower()]
    except OSError as err:
        raise ConfigError(f"--labels {path} cannot be read ({err.strerror}); give a CSV person,member") from err
    return out


class Redactor:
    """Stable pseudonyms ``person-<10 hex>``: HMAC-SHA-256 of the name under a key kept in ``out_dir``."""

    def __init__(self, out_dir: Path) -> None:
        path = Path(out_dir) / _REDACT_KEY
        if not path.exists():
            atomic_write_text(path, secrets.token_hex(32))
        self._key = bytes.fromhex(path.read_text().strip())

    def name(self, person: str) -> str:
        """The pseudonym of ``person``."""
        return "person-" + hmac.new(self._key, person.encode(), hashlib.sha256).hexdigest()[:10]

    def photo(self, image_id: str) -> str:
        """``person/file`` → ``<pseudonym>/photo-<8 hex>`` (file names often hold the name too)."""
        person, _, rest = image_id.partition("/")
        return f"{self.name(person)}/photo-{hmac.new(self._key, rest.encode(), hashlib.sha256).hexdigest()[:8]}"


def run_audit(box: BlackBox, base: PublicBase, probe: PhotoFolder, reference: PhotoFolder, *, k: int = 5,
              fpr: float = 0.01, seed: int = 0, labels: dict[str, bool] | None = None, endpoint: str = "",
              redactor: Redactor | None = None) -> AuditRecord:
    """Score every probe person through ``box`` and give the verdicts (see the module docstring).

    Raises
    ------
    ConfigError
        ``fpr`` not in (0, 1).
    DataError
        Too few reference people or probe photos (see ``audit_scores``); a probe person is also a
        reference person.
    """
    if not 0 < fpr < 1:
        raise ConfigError(f"--fpr must be a fraction in (0, 1), e.g. 0.01, got {fpr}")
    both = sorted(set(probe.people) & set(reference.people))
    if both:
        raise DataError(f"{len(both)} people are both probe and reference people (e.g. {both[0]!r}); "
                        "reference people must be known non-members, distinct from the probe people")
    s = audit_scores(box, base, probe.images, probe.identities, reference.images, reference.identities, k=k, seed=seed)
    n_ref = len(s.reference_people)
    labels = labels or {}
    people = [PersonVerdict(p, float(sc), float(pv), verdict(pv, n_ref, fpr), k, labels.get(p))
              for p, sc, pv in zip(s.people, s.scores, s.p_values)]
    auc = None
    known = [p for p in people if p.is_member is not None]
    if len({p.is_member for p in known}) == 2:
        auc = float(auc_score(np.array([p.is_member for p in known]), np.array([p.score for p in known])))
    skipped = tuple((i, r) for i, r in probe.skipped + reference.skipped)
    people = tuple(people)
    ref_short = {p: int(n) for p, n in zip(*np.unique(reference.identities, return_counts=True))
                 if p not in set(s.reference_people)}
    counts = verdict_counts(people, fpr=fpr, not_scored=len(s.too_few_photos), skipped=len(skipped),
                            reference_not_scored=len(ref_short))
    record = AuditRecord(endpoint, box.output_kind.value, k, fpr, seed, f"fisher_gap@k={k}", n_ref, people,
                         tuple(float(v) for v in s.null), counts, s.too_few_photos, skipped, s.n_queries_probe,
                         s.n_queries_reference, auc, reference_too_few_photos=ref_short)
    return _redact(record, redactor) if redactor is not None else record


def _redact(record: AuditRecord, r: Redactor) -> AuditRecord:
    people = tuple(replace(p, person=r.name(p.person)) for p in record.people)
    return replace(record, people=people, too_few_photos={r.name(p): n for p, n in record.too_few_photos.items()},
                   reference_too_few_photos={r.name(p): n for p, n in record.reference_too_few_photos.items()},
                   skipped_photos=tuple((r.photo(i), reason) for i, reason in record.skipped_photos), redacted=True)


def write_audit(record: AuditRecord, out_dir: Path) -> Path:
    """Write ``out_dir/results.json`` (atomically; ``audit_results.write_audit_record``); returns its path.

    ``summary.md`` and ``report.html`` are the report layer's (``report.audit_report``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_audit_record(record, out_dir / "results.json")
    return out_dir / "results.json"


def purge_audit(out_dir: Path) -> list[Path]:
    """Delete an audit's ledger (with its WAL files) and caches in ``out_dir``; returns what was deleted."""
    out_dir = Path(out_dir)
    gone = []
    for name in (LEDGER_FILE, LEDGER_FILE + "-wal", LEDGER_FILE + "-shm", CACHE_DIR):
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        gone.append(path)
    return gone
