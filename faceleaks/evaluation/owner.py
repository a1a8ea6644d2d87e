"""The model owner's side: teacher, students, negative control and their verification.

One pipeline for every command (``run``, ``attributes``, later ``serve`` and ``defend``): data
(``evaluation.dataset``) -> teacher fine-tuned on the members -> students on it -> a control
teacher that saw none of the evaluated people -> verification accuracy on LFW pairs. The same
recipes build the attacker's shadow models. Everything here is ground truth or owner-only;
attacks never import it: the evaluation hands them only black boxes and attacker resources.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceleaks.config import ExperimentConfig
from faceleaks.data.faces import load_faces
from faceleaks.errors import ConfigError
from faceleaks.evaluation.dataset import Dataset, prepare_data
from faceleaks.evaluation.results import VerificationRecord
from faceleaks.evaluation.verification import read_pairs, verification_accuracy
from faceleaks.models.dlib_teacher import dlib_base_teacher, finetune_dlib_teacher
from faceleaks.models.saving import save_student
from faceleaks.models.student import Student, train_student
from faceleaks.models.teacher import Teacher, train_scratch_teacher
from faceleaks.models.training import configure_torch
from faceleaks.seeding import derive_seed

__all__ = ["Timer", "OwnerModels", "build_owner", "build_teacher", "build_control_teacher", "build_students",
           "verify_teacher", "add_control", "save_students", "age_group", "age_group_names"]

log = logging.getLogger(__name__)


class Timer:
    """Wall-clock seconds per stage: ``with timer("teacher"): ...``; read ``timer.timings``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(time.perf_counter() - t0, 2)


def build_teacher(data: Dataset, cfg: ExperimentConfig, train_ids: dict[str, list[str]], *, name: str,
                  cache_dir: Path, need_head: bool = False) -> Teacher:
    """Train (or load from cache) a teacher of ``cfg.teacher.kind`` on ``train_ids`` (identity -> photo ids).

    ``dlib-base`` ignores ``train_ids``: it is dlib's model unmodified. Under a recipe that trains
    on all photos (``cfg.teacher.resolved_recipe.photos == "all"``, e.g. ``light``), every member
    of the split in ``train_ids`` trains on all its photos, whatever list is given (the owner passes
    ``split.member_train``, the training half); other identities train on the photos given. The
    attacker's shadows hold every photo of the people they audit under that recipe
    (``membership.held_photos``), so for them this changes nothing. ``need_head``: a dlib teacher
    cached without its closed-set head is trained again (``finetune_dlib_teacher``).
    """
    kind = cfg.teacher.kind
    if kind == "dlib-base":
        return dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name=name)
    if cfg.teacher.resolved_recipe.photos == "all":
        members = set(data.split.identities("member"))
        train_ids = {p: data.split.photos[p] if p in members else ids for p, ids in train_ids.items()}
    faces = data.photos([i for ids in train_ids.values() for i in ids])
    if kind == "scratch":
        return train_scratch_teacher(faces.images, faces.identities, faces.image_ids, cfg.teacher,
                                     seed=derive_seed(cfg.seed, name), cache_dir=cache_dir, name=name)
    return finetune_dlib_teacher(faces.images, faces.identities, faces.image_ids, cfg.teacher,
                                 seed=derive_seed(cfg.seed, name), cache_dir=cache_dir, name=name, need_head=need_head)


def build_control_teacher(data: Dataset, cfg: ExperimentConfig, *, shadow_teacher: Teacher | None,
                          cache_dir: Path) -> Teacher:
    """A teacher of the same kind that saw none of the evaluated (member or non-member) identities.

    ``dlib``: dlib's unmodified model (``cfg.teacher.control == "base"``) or dlib fine-tuned with the
    victim's recipe on all photos of the split's ``control_member`` identities (``"finetuned"``).
    ``scratch``: the attacker's shadow teacher, trained only on reference identities with the same
    recipe (reused to save training time); ``ConfigError`` if it is not given.
    """
    if cfg.teacher.kind == "scratch":
        if shadow_teacher is None:
            raise ConfigError("the control of a scratch teacher is the attacker's shadow teacher: pass shadow_teacher")
        return shadow_teacher
    if cfg.teacher.control == "finetuned":
        people = data.split.identities("control_member")
        return build_teacher(data, cfg, {p: data.split.photos[p] for p in people}, name="control-teacher",
                             cache_dir=cache_dir)
    return dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name="control-dlib-base")


def age_group(age: int, bins: tuple[int, ...]) -> int:
    """Index of the age group: ages below bins[0] -> 0, ..., at or above bins[-1] -> len(bins)."""
    return int(np.searchsorted(np.asarray(bins), age, side="right"))


def age_group_names(bins: tuple[int, ...]) -> list[str]:
    """Names of the age groups cut at ``bins``, e.g. (20, 40, 60) -> 0-19, 20-39, 40-59, 60+."""
    edges = [0, *bins]
    return [f"{a}-{b - 1}" for a, b in zip(edges, edges[1:])] + [f"{bins[-1]}+"]


STUDENTS = ("lfw-identity", "utk-age")


def build_students(teacher: Teacher, data: Dataset, cfg: ExperimentConfig, *, shadow: bool,
                   prefix: str, names: tuple[str, ...] = STUDENTS) -> dict[str, tuple[Student, float]]:
    """The students on ``teacher``: ``lfw-identity`` and ``utk-age`` (or those in ``names``), with
    their test accuracy.

    ``shadow=True`` builds the attacker's copies on its own data (shadow-student identities and
    the UTKFace shadow part, 25 % of it held out for testing). Each student's seed depends on its
    name only, so leaving one out changes nothing in the other. ``ConfigError`` for an unknown name.
    """
    unknown = sorted(set(names) - set(STUDENTS))
    if unknown:
        raise ConfigError(f"unknown student(s) {unknown}; the owner builds {list(STUDENTS)}")
    out: dict[str, tuple[Student, float]] = {}
    if "lfw-identity" in names:
        out["lfw-identity"] = _identity_student(teacher, data, cfg, shadow=shadow, prefix=prefix)
    if "utk-age" in names:
        out["utk-age"] = _age_student(teacher, data, cfg, shadow=shadow, prefix=prefix)
    return out


def _identity_student(teacher: Teacher, data: Dataset, cfg: ExperimentConfig, *, shadow: bool,
                      prefix: str) -> tuple[Student, float]:
    """The 40-class LFW identification student (student or shadow-student identities) and its accuracy."""
    split = data.split
    role = "shadow_student" if shadow else "student"
    people = split.identities(role)
    test_ids = set(split.student_test)
    photos = data.photos([i for p in people for i in split.photos[p]])
    is_test = np.isin(photos.image_ids, list(test_ids))
    labels = np.searchsorted(people_sorted := sorted(people), photos.identities)
    seed = derive_seed(cfg.seed, prefix, "lfw-identity")
    lfw = train_student("lfw-identity", teacher, photos.images[~is_test], labels[~is_test], people_sorted,
                        cfg.student, seed=seed)
    return lfw, lfw.accuracy(photos.images[is_test], labels[is_test])


def _age_student(teacher: Teacher, data: Dataset, cfg: ExperimentConfig, *, shadow: bool,
                 prefix: str) -> tuple[Student, float]:
    """The UTKFace age-group student (train/test, or the attacker's shadow part) and its accuracy."""
    split = data.split
    if shadow:
        ids = split.utk["shadow"]
        cut = int(0.75 * len(ids))
        train, test = ids[:cut], ids[cut:]
    else:
        train, test = split.utk["train"], split.utk["test"]
    tr, te = data.utk_photos(train), data.utk_photos(test)
    bins = cfg.student.age_bins
    y_tr, y_te = ([age_group(data.utk[i].age, bins) for i in fs.image_ids] for fs in (tr, te))
    age = train_student("utk-age", teacher, tr.images, np.array(y_tr), age_group_names(bins), cfg.student,
                        seed=derive_seed(cfg.seed, prefix, "utk-age"))
    return age, age.accuracy(te.images, np.array(y_te))


def verify_teacher(teacher: Teacher, data: Dataset, cache_dir: Path, n_folds: int,
                   exclude: list[str] | None = None) -> VerificationRecord:
    """LFW ``pairs.txt`` accuracy of ``teacher`` on pairs of people it did not train on.

    Parameters
    ----------
    exclude : identities whose pairs are dropped (default: the split's members)
    n_folds : folds of ``pairs.txt`` used (2..10)

    Returns
    -------
    VerificationRecord: ``accuracy`` as a fraction; NaN plus a warning and a ``note`` when there
    is no ``pairs.txt`` beside the LFW photos.
    """
    pairs_path = data.lfw_root.parent / "pairs.txt"
    if not pairs_path.exists():
        msg = f"no pairs.txt beside {data.lfw_root}: teacher verification accuracy not measured"
        warnings.warn(msg, stacklevel=2)
        return VerificationRecord(float("nan"), note=msg)

    def embed(ids: list[str]) -> dict[str, np.ndarray]:
        paths = [data.lfw_root / i.rsplit("_", 1)[0] / f"{i}.jpg" for i in ids]
        faces = load_faces(paths, ids, [i.rsplit("_", 1)[0] for i in ids], data.chipper, cache_dir=cache_dir,
                           description="reading LFW pairs")
        return dict(zip(faces.image_ids.tolist(), teacher.embed(faces.images)))

    excluded = set(data.split.identities("member") if exclude is None else exclude)
    return verification_accuracy(read_pairs(pairs_path), embed, exclude_identities=excluded, n_folds=n_folds)


@dataclass
class OwnerModels:
    """What the owner built for one run.

    Attributes
    ----------
    data : Dataset (split, faces)
    teacher : the teacher whose members are audited (``dlib-base``: nobody is a member)
    role : "victim", or "control" when the teacher itself is the negative control (``dlib-base``)
    students : student name -> (Student, test accuracy as a fraction)
    verification : LFW pairs accuracy of the teacher (None when not measured)
    control_teacher, control_students, control_verification : the negative control (None / empty
        until ``add_control``, and for a ``dlib-base`` run, whose teacher is the control)
    """

    data: Dataset
    teacher: Teacher
    role: str
    students: dict[str, tuple[Student, float]]
    verification: VerificationRecord | None = None
    control_teacher: Teacher | None = None
    control_students: dict[str, tuple[Student, float]] = field(default_factory=dict)
    control_verification: VerificationRecord | None = None

    @property
    def is_control_run(self) -> bool:
        """True when the teacher is dlib's unmodified model: the victim is the control."""
        return self.role == "control"

    def deployed(self) -> list[tuple[str, str, Student]]:
        """(teacher role, student name, student) of every student the owner serves, victim first."""
        return [(self.role, n, s) for n, (s, _) in self.students.items()] + [
            ("control", n, s) for n, (s, _) in self.control_students.items()]


def build_owner(cfg: ExperimentConfig, *, out_dir: Path, cache_dir: Path, timer: Timer | None = None,
                verify: bool = True, need_head: bool = False) -> OwnerModels:
    """Data, teacher (on the members' training photos), verification and students.

    Writes ``split.json`` into ``out_dir``. Stage seconds go to ``timer`` (data, teacher,
    verification, students); ``need_head``: the teacher must come with its closed-set head
    (``build_teacher``; ``faceleaks defend`` measures utility with it). Raises ``DataError`` /
    ``ConfigError`` on bad data or settings.
    """
    configure_torch(cfg.runtime.threads)
    timer = timer or Timer()
    with timer("data"):
        data = prepare_data(cfg, out_dir=Path(out_dir), cache_dir=Path(cache_dir))
    with timer("teacher"):
        teacher = build_teacher(data, cfg, data.split.member_train, name="teacher", cache_dir=Path(cache_dir),
                                need_head=need_head)
    verification = None
    if verify:
        with timer("verification"):
            verification = verify_teacher(teacher, data, Path(cache_dir), cfg.data.verification_folds)
    with timer("students"):
        students = build_students(teacher, data, cfg, shadow=False, prefix="victim")
    role = "control" if cfg.teacher.kind == "dlib-base" else "victim"
    save_students(students, Path(out_dir), role)
    return OwnerModels(data, teacher, role, students, verification)


def save_students(students: dict[str, tuple[Student, float]], out_dir: Path, role: str) -> None:
    """Save each student (with its teacher) to ``out_dir/students/<role>/<name>/`` for serving.

    Written with ``faceleaks.models.saving.save_student`` (state_dicts and JSON sidecars, read
    back with ``load_student`` without unpickling).
    """
    for name, (student, _) in students.items():
        save_student(student, Path(out_dir) / "students" / role / name)


def add_control(owner: OwnerModels, cfg: ExperimentConfig, *, out_dir: Path, cache_dir: Path,
                shadow_teacher: Teacher | None = None) -> None:
    """Build the negative control's teacher, students and verification into ``owner``.

    Nothing for a ``dlib-base`` run (its teacher is the control). ``shadow_teacher`` is the
    control of a ``scratch`` run (see ``build_control_teacher``).
    """
    if owner.is_control_run:
        return
    data = owner.data
    control = build_control_teacher(data, cfg, shadow_teacher=shadow_teacher, cache_dir=Path(cache_dir))
    owner.control_teacher = control
    owner.control_students = build_students(control, data, cfg, shadow=False, prefix="control")
    save_students(owner.control_students, Path(out_dir), "control")
    excluded = data.split.identities("member") + data.split.identities("control_member")
    owner.control_verification = verify_teacher(control, data, Path(cache_dir), cfg.data.verification_folds,
                                                exclude=excluded)
