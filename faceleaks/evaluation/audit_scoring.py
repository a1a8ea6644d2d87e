"""Identity-level membership scores of probe people, calibrated on reference people: the Fisher gap.

The statistic is the project's strongest no-shadow one, the Fisher gap (``attacks.membership.consistency``,
the score of ``base-diff-fisher_gap``, issue 13): for a person's first k photos, the mean over photo
pairs of arctanh of the cosine of the box's centred log-posteriors minus arctanh of that of a
surrogate's predictions (the consistency gap on the Fisher scale), the surrogate a ridge
map (alpha by leave-one-out CV) from the public base's L2-normalised embeddings to the box's
centred log-posteriors. [reconstructed] In an audit the reference people (known non-members) are
both the surrogate's fit pool and the null: they are split into 5 folds (seeded), each fold's
people scored by a surrogate fitted on every photo of the other reference people, so no null
score comes from a surrogate that saw that person; the probe people are scored by the surrogate
fitted on every reference photo. A probe person's p-value is
``(1 + #{reference scores >= score}) / (1 + n_reference)`` (a conformal p-value: valid at any
level when the probe person is exchangeable with the references, i.e. not a member).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceleaks.attacks.base import PublicBase, first_k_groups, stack_groups
from faceleaks.attacks.membership.consistency import (box_log_posteriors, consistency_gaps, fit_surrogate,
                                                      normalise_rows)
from faceleaks.errors import DataError
from faceleaks.seeding import make_rng
from faceleaks.serving.protocol import BlackBox

__all__ = ["AuditScores", "audit_scores", "p_values", "N_FOLDS", "MIN_REFERENCE_PEOPLE"]

N_FOLDS = 5
MIN_REFERENCE_PEOPLE = 5


@dataclass(frozen=True)
class AuditScores:
    """Scores of one audit; **higher = more likely member** of the teacher's training set.

    Attributes
    ----------
    people : list of str, probe people scored (sorted; those with >= k photos)
    scores : ndarray (n_people,) float64, consistency gaps (unitless, in [-2, 2])
    p_values : ndarray (n_people,) float64 in (0, 1], against ``null``
    reference_people : list of str, reference people with >= k photos (sorted)
    null : ndarray (n_reference,) float64, their cross-fitted consistency gaps
    too_few_photos : dict person -> photos, probe people left out for having fewer than k
    n_queries_probe : int, probe photos sent to the box (k per person scored)
    n_queries_reference : int, reference photos sent to the box (all of them)
    """

    people: list[str]
    scores: np.ndarray
    p_values: np.ndarray
    reference_people: list[str]
    null: np.ndarray
    too_few_photos: dict[str, int]
    n_queries_probe: int
    n_queries_reference: int


def p_values(scores: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(1 + #{null >= s}) / (1 + len(null))`` for each score ``s``; (n,) float64.

    Examples
    --------
    >>> p_values(np.array([0.5, 2.0]), np.array([0.0, 1.0, 3.0])).tolist()
    [0.75, 0.5]
    """
    null = np.asarray(null, np.float64)
    return (1.0 + (null[None, :] >= np.asarray(scores, np.float64)[:, None]).sum(1)) / (1.0 + len(null))


def _null_gaps(z: np.ndarray, e: np.ndarray, ids: np.ndarray, names: list[str], groups: list[np.ndarray],
               seed: int) -> np.ndarray:
    """(n_reference,) cross-fitted gaps: fold f's people scored by a surrogate fitted without them."""
    fold_of = np.empty(len(names), np.int64)
    fold_of[make_rng(seed).permutation(len(names))] = np.arange(len(names)) % N_FOLDS
    person_fold = dict(zip(names, fold_of.tolist()))
    photo_fold = np.array([person_fold.get(str(i), -1) for i in ids])  # -1: fewer than k photos, always fitted on
    null = np.zeros(len(names))
    for f in range(N_FOLDS):
        held = np.flatnonzero(fold_of == f)
        surrogate = fit_surrogate(e[photo_fold != f], z[photo_fold != f])
        null[held] = consistency_gaps(z, surrogate.predict(e), [groups[i] for i in held], fisher=True)
    return null


def audit_scores(box: BlackBox, base: PublicBase, probe_images: np.ndarray, probe_ids: np.ndarray,
                 reference_images: np.ndarray, reference_ids: np.ndarray, *, k: int = 5, seed: int = 0) -> AuditScores:
    """Consistency-gap scores and p-values of the probe people, calibrated on the reference people.

    Parameters
    ----------
    box : the student API (posterior outputs); queried once with every reference photo, then once
        with the first ``k`` photos of each probe person
    base : the public base model (dlib's), the attacker's own
    probe_images, reference_images : ndarray (n, S, S, 3) uint8 chips
    probe_ids, reference_ids : ndarray (n,) str, the person in each chip
    k : int >= 2, photos per person
    seed : seed of the reference people's fold assignment

    Raises
    ------
    DataError
        Fewer than ``MIN_REFERENCE_PEOPLE`` reference people or no probe person with ``k`` photos.
    UnsupportedOutputError
        The box does not return posteriors.
    """
    if k < 2:
        raise DataError(f"an audit needs k >= 2 photos per person, got k={k}")
    ref_names, ref_groups = first_k_groups(reference_ids, k)
    if len(ref_names) < MIN_REFERENCE_PEOPLE:
        raise DataError(f"{len(ref_names)} reference people have {k} photos with a face; an audit needs >= "
                        f"{MIN_REFERENCE_PEOPLE} (and >= 1/FPR for a verdict): add reference people or lower --k")
    names, groups = first_k_groups(probe_ids, k)
    counts = dict(zip(*np.unique(np.asarray(probe_ids).astype(str), return_counts=True)))
    short = {str(p): int(n) for p, n in counts.items() if n < k}
    if not names:
        raise DataError(f"no probe person has {k} photos with a face; add photos or lower --k")
    z_ref = box_log_posteriors(box, reference_images)
    e_ref = normalise_rows(base.embed(reference_images))
    null = _null_gaps(z_ref, e_ref, np.asarray(reference_ids).astype(str), ref_names, ref_groups, seed)
    idx, local = stack_groups(groups)
    z = box_log_posteriors(box, probe_images[idx])
    surrogate = fit_surrogate(e_ref, z_ref)
    scores = consistency_gaps(z, surrogate.predict(normalise_rows(base.embed(probe_images[idx]))), local,
                             fisher=True)
    return AuditScores(names, scores, p_values(scores, null), ref_names, null, short, len(idx), len(reference_images))
