"""Audit records for the report tests, made by ``run_audit`` on the fake student (no hand-typed results).

Probe people: 5 members and 5 non-members of the fake teacher (4 photos each) plus one person with
too few photos and one skipped photo; reference people: ``n_reference`` known non-members plus one
with too few photos.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from faceleaks.evaluation.audit import run_audit
from faceleaks.evaluation.audit_data import PhotoFolder
from faceleaks.evaluation.audit_results import AuditSession
from faceleaks.evaluation.results import environment_versions
from tests.fakes import fake_box, make_images

K = 4


class FakeBase:
    """A public base that embeds the fake images' identity code plus seeded noise."""

    def embed(self, images: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(0)
        return np.hstack([images[:, 0, 0].astype(float), rng.normal(0, 1, (len(images), 5))])


def _folder(identities, members, k, offset, *, skipped=()) -> PhotoFolder:
    images, ids, image_ids, _ = make_images(identities, members, k, offset=offset)
    return PhotoFolder(images, ids, image_ids, list(skipped))


def audit_record(*, n_reference: int = 40, fpr: float = 0.05, labels: bool = True, seed: int = 0, gap: float = 1.0):
    """An ``AuditRecord`` of the fake student (``gap``: how much tighter members' posteriors are; 0 = no
    leak), with a session, hashes and versions like the CLI's."""
    probe = _folder(list(range(10)), [i < 5 for i in range(10)], K, 2, skipped=[("p2_0/p2_0_0009.jpg", "no face")])
    few = _folder([10], [True], K - 2, 2)
    probe = PhotoFolder(np.concatenate([probe.images, few.images]), np.concatenate([probe.identities, few.identities]),
                        np.concatenate([probe.image_ids, few.image_ids]), probe.skipped)
    reference = _folder(list(range(n_reference)), [False] * n_reference, K, 1)
    short = _folder([n_reference], [False], K - 1, 1)  # a reference person with too few photos
    reference = PhotoFolder(*(np.concatenate([a, b]) for a, b in zip(
        (reference.images, reference.identities, reference.image_ids), (short.images, short.identities, short.image_ids))), [])
    truth = {f"p2_{i}": i < 5 for i in range(10)} if labels else None
    record = run_audit(fake_box(gap=gap), FakeBase(), probe, reference, k=K, fpr=fpr, seed=seed, labels=truth,
                       endpoint="http://127.0.0.1:8000")
    total = record.n_queries_probe + record.n_queries_reference
    session = AuditSession(total, -(-total // 64), 0, 100_000 - total, 12.34, "faceleaks-audit/ledger.sqlite")
    return dataclasses.replace(record, session=session, environment=environment_versions(),
                               photo_hashes={"probe": "sha256:" + "0a" * 32, "reference": "sha256:" + "1b" * 32})
