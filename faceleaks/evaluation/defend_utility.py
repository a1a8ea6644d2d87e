"""Utility as the teacher's owner sees it: member identification, and students through the defended API.

The owner fine-tuned the teacher to recognise its members; verification on LFW pairs of other
people (``owner.verify_teacher``) would make every defence look free, so the first measure is
identification of the members on photos the teacher did not train on, by the closed-set head the
owner trained with the teacher (``Teacher.identify``) [reconstructed]. The unmodified base has no
such head. A second measure, *enrolment*, puts each held-out photo with the member whose
centroid (mean unit embedding of its training photos) is nearest in cosine: the base does this
too (0.996 here), so it shows what the embedding keeps, not what the owner's classifier does, and
under DP it is no utility the owner may claim (the centroids are computed from member photos
outside the guarantee).
"""

from __future__ import annotations

import numpy as np

from faceleaks.config import ExperimentConfig
from faceleaks.data.splits import photo_identity
from faceleaks.errors import DataError
from faceleaks.evaluation.dataset import Dataset
from faceleaks.evaluation.owner import age_group
from faceleaks.models.teacher import Teacher
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["identification_accuracy", "enrolment_accuracy", "student_test_set", "api_accuracy"]


def _member_photos(data: Dataset) -> tuple[list[str], object, object]:
    """(sorted members, their training photos, their held-out photos) as ``Dataset.photos`` gives them."""
    split = data.split
    members = sorted(split.identities("member"))
    train = data.photos([i for m in members for i in split.member_train[m]])
    held = data.photos([i for m in members for i in split.member_heldout(m)])
    return members, train, held


def identification_accuracy(teacher: Teacher, data: Dataset) -> tuple[float, int]:
    """Closed-set identification of the members' held-out photos by ``teacher``'s own head.

    Returns
    -------
    accuracy : float, fraction in [0, 1] (chance: 1 / members); NaN when no member has a held-out
        photo (a recipe that trains on all photos) or the teacher has no head (``dlib-base``, scratch)
    n_photos : int, held-out photos identified

    Raises
    ------
    DataError
        The head's classes are not the split's members (a teacher of another split).
    """
    members, _, held = _member_photos(data)
    if len(held) == 0 or teacher.head is None:
        return float("nan"), int(len(held))
    if teacher.head.shape[0] != len(members):
        raise DataError(f"teacher {teacher.name!r} has a head over {teacher.head.shape[0]} classes, but the split "
                        f"has {len(members)} members: it was trained for another split")
    guess = np.asarray(members)[teacher.identify(held.images)]
    return float((guess == held.identities).mean()), int(len(held))


def enrolment_accuracy(teacher: Teacher, data: Dataset) -> float:
    """Nearest-centroid identification of the members' held-out photos in ``teacher``'s embedding
    (centroids: mean unit embedding of each member's training photos); NaN without held-out photos."""
    members, train, held = _member_photos(data)
    if len(held) == 0:
        return float("nan")
    e = teacher.embed(train.images)
    centroids = np.stack([e[train.identities == m].mean(axis=0) for m in members])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    guess = np.asarray(members)[(teacher.embed(held.images) @ centroids.T).argmax(axis=1)]
    return float((guess == held.identities).mean())


def student_test_set(data: Dataset, cfg: ExperimentConfig, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The owner's test photos (n, S, S, 3) uint8 and labels (n,) int64 of student ``name``, labelled
    as ``owner.build_students`` labels them (``lfw-identity``: sorted student identities;
    ``utk-age``: age groups cut at ``cfg.student.age_bins``)."""
    split = data.split
    if name == "lfw-identity":
        people = sorted(split.identities("student"))
        wanted = set(people)
        photos = data.photos([i for i in split.student_test if photo_identity(i) in wanted])
        return photos.images, np.searchsorted(people, photos.identities).astype(np.int64)
    te = data.utk_photos(split.utk["test"])
    labels = [age_group(data.utk[i].age, cfg.student.age_bins) for i in te.image_ids]
    return te.images, np.asarray(labels, dtype=np.int64)


def api_accuracy(box: BlackBox, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (fraction) of what ``box`` returns: its labels, or the arg-max of its rows."""
    if len(images) == 0:
        return float("nan")
    result = box.query(images)
    guess = result.values if result.kind is OutputKind.LABEL else np.asarray(result.values).argmax(axis=1)
    return float((guess == labels).mean())
