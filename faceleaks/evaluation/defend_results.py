"""Typed results of ``faceleaks defend``: one ``DefenceRecord`` per setting (``OUT/defend/<setting>/results.json``).

Torch-free (the report layer reads it). Written and read by ``evaluation.jsonio`` (schema-versioned,
NaN as ``null``). Utility is as the teacher's owner sees it; privacy is the attacker's best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceleaks.evaluation.attribute_results import AttributeScore
from faceleaks.evaluation.jsonio import SCHEMA_VERSION, read_json, write_json
from faceleaks.evaluation.results import MembershipReport, VerificationRecord

__all__ = ["HEADLINE_PREFIX", "ADAPTIVE_PREFIXES", "DefenceRecord", "read_defence", "write_defence"]

_NAN = float("nan")
HEADLINE_PREFIX = "base-diff-fisher_gap"
"""The headline identity-level attack: base-model diffing's Fisher gap (no shadow models; issue 13)."""
ADAPTIVE_PREFIXES = ("label-only-", "averaging-", "base-diff-", "compactness", "label_agreement", "lira-")
"""Identity-level attacks the best adaptive attack is chosen from (the attacker who knows the defence
runs each and reports its best; choosing the maximum on the audited people is optimistic)."""


@dataclass(frozen=True)
class DefenceRecord:
    """What one defence setting buys and costs.

    Attributes
    ----------
    setting : the setting's name; ``key``: hash of it and the run's settings (resume skips equal keys)
    output_defence : the output defence (``OutputDefenceSpec.label``); ``teacher_overrides``: the
        teacher recipe overrides, ``k=v`` joined (empty: the run's teacher); ``recipe``: the recipe used
    output_kind : what the defended API returns; ``row_sum_tolerance``: its declared |row sum - 1| bound
        (0 for labels, which have no rows; 1e-6 for the undefended float32 posteriors)
    identification_accuracy : fraction of the member identities' held-out photos the teacher's own
        closed-set head identifies (``defend_utility.identification_accuracy``; NaN without a head or
        held-out photos); ``n_identification_photos`` of them
    enrolment_accuracy / base_enrolment_accuracy : the same photos put with the nearest member centroid
        of the teacher's / unmodified dlib's embeddings (what the embedding keeps; not a utility
        under DP, whose guarantee does not cover centroids of member photos)
    privacy : the teacher's training defence (``none``, else ``PrivacyConfig.tag``, e.g. ``dp-photo-eps8.0``);
        ``dp_epsilon`` / ``dp_delta``: the accountant's (epsilon, delta), NaN without DP
    verification : the teacher on LFW pairs of people it did not train on
    student_accuracy / defended_student_accuracy : test accuracy (fraction) per student, of the
        student itself and through the defended API (top-1 of what the API returns)
    membership : every attack's report (victim students, the evaluated photo settings)
    k : photos per identity of the headline and best adaptive attacks
    queries : images each defended student answered (calibration, pool, audited people, repeats)
    attributes : gender inference through the attacked student behind the defence
        (``evaluation.attributes``, one small budget; instance and identity level) and its prior-only
        baseline
    seconds : wall-clock time of the setting (training reused from cache included)
    """

    setting: str
    key: str
    output_defence: str
    teacher_overrides: str
    recipe: str
    output_kind: str
    row_sum_tolerance: float
    identification_accuracy: float
    n_identification_photos: int
    enrolment_accuracy: float
    base_enrolment_accuracy: float
    privacy: str
    dp_epsilon: float
    dp_delta: float
    verification: VerificationRecord
    student_accuracy: dict[str, float]
    defended_student_accuracy: dict[str, float]
    membership: tuple[MembershipReport, ...]
    k: int
    queries: dict[str, int]
    seconds: float
    seed: int
    attributes: tuple[AttributeScore, ...] = ()
    notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION
    student: str = field(default="lfw-identity")

    def identity_reports(self) -> list[MembershipReport]:
        """The identity-level reports at ``k`` on the attacked student and the training photos."""
        return [m for m in self.membership if m.level == "identity" and m.k == self.k
                and m.student == self.student and m.setting == "training-photos"]

    @property
    def headline(self) -> MembershipReport | None:
        """The headline attack (``HEADLINE_PREFIX`` at k, training photos), None where the output
        cannot feed it (labels, top-k)."""
        rows = [m for m in self.identity_reports() if m.attack.startswith(HEADLINE_PREFIX)]
        return rows[0] if rows else None

    @property
    def best_adaptive(self) -> MembershipReport | None:
        """The identity-level attack with the highest AUC at k among ``ADAPTIVE_PREFIXES``."""
        rows = [m for m in self.identity_reports() if m.attack.startswith(ADAPTIVE_PREFIXES) and m.auc == m.auc]
        return max(rows, key=lambda m: m.auc) if rows else None

    @property
    def gender(self) -> AttributeScore | None:
        """Gender inference at instance level (cross-dataset) through the attacked student: the attack
        of highest balanced accuracy, None when not run."""
        rows = [a for a in self.attributes if a.role == "attack" and a.attribute == "gender" and a.level == "instance"
                and a.student == self.student and a.variant == "cross-dataset"]
        return max(rows, key=lambda a: a.balanced_accuracy) if rows else None

    @property
    def best_per_photo(self) -> MembershipReport | None:
        """The per-photo (instance-level) attack with the highest AUC, None on label outputs."""
        rows = [m for m in self.membership if m.level == "instance" and m.student == self.student and m.auc == m.auc]
        return max(rows, key=lambda m: m.auc) if rows else None


def write_defence(record: DefenceRecord, path: Path) -> None:
    """Write ``record`` to ``path`` (JSON, schema-versioned), atomically (``jsonio.write_json``: a killed run
    leaves no half file)."""
    write_json(record, Path(path))


def read_defence(path: Path) -> DefenceRecord:
    """Read a ``DefenceRecord``; ``ArtifactError`` for an unreadable or older file."""
    return read_json(DefenceRecord, path)
