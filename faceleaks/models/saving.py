"""Saved students and teachers: ``state_dict`` files plus JSON sidecars, loaded without unpickling objects.

A folder written by :func:`save_student` holds::

    teacher.pt / teacher.json   the teacher's own network (scratch backbone or dlib's fine-tuned tail)
                                and what rebuilds it (``TeacherArch``); ``dlib-base`` has no .pt, only
                                the sidecar (dlib's weights come from the installed package)
    student.pt / student.json   the linear head, the class names, the input size and ``Student.info``

Each sidecar records the SHA-256 of its weights and of itself, so an edited or truncated file is
refused with an ``ArtifactError``; weights are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from faceleaks.errors import ArtifactError
from faceleaks.models.backbones import ScratchCNN
from faceleaks.models.checkpoint import error_line, load_weights, save_weights
from faceleaks.models.dlib_teacher import dlib_teacher
from faceleaks.models.student import Student
from faceleaks.models.teacher import TEACHER_ARCH_KINDS, Teacher, TeacherArch, scratch_teacher

__all__ = ["save_teacher", "load_teacher", "save_student", "load_student", "TEACHER_FILE", "STUDENT_FILE"]

TEACHER_FILE = "teacher.pt"
STUDENT_FILE = "student.pt"
_TEACHER_FORMAT = "faceleaks-teacher"
_STUDENT_FORMAT = "faceleaks-student"
_BAD = (KeyError, TypeError, ValueError, RuntimeError, AttributeError)


def save_teacher(teacher: Teacher, folder: Path) -> Path:
    """Write ``folder/teacher.pt`` (its network's ``state_dict``; none for ``dlib-base``) and ``teacher.json``.

    Returns
    -------
    Path of ``teacher.json``.

    Raises
    ------
    ArtifactError
        The teacher has no ``arch`` / ``network`` (built from a bare function): nothing rebuilds it.
    """
    arch = teacher.arch
    if arch is None or (arch.kind != "dlib-base" and teacher.network is None):
        raise ArtifactError(f"teacher {teacher.name!r} was built from a bare embedding function and cannot be "
                            "saved; build it with train_scratch_teacher, finetune_dlib_teacher or dlib_base_teacher")
    state = None if arch.kind == "dlib-base" else teacher.network.state_dict()
    path = Path(folder) / TEACHER_FILE
    save_weights(path, state, {"format": _TEACHER_FORMAT, "name": teacher.name, "arch": asdict(arch),
                               "info": teacher.info})
    return path.with_suffix(".json")


def _check_format(meta: dict[str, Any], expected: str, path: Path) -> None:
    if meta.get("format") != expected:
        raise ArtifactError(f"{path.with_suffix('.json')} holds {meta.get('format')!r}, not a {expected}; "
                            "point to a folder written by save_student")


def _rebuild_teacher(meta: dict[str, Any], state: dict[str, torch.Tensor] | None,
                     cache_dir: Path | None) -> Teacher:
    arch = TeacherArch(**meta["arch"])
    name, info = str(meta["name"]), dict(meta["info"])
    if arch.kind not in TEACHER_ARCH_KINDS:
        raise ValueError(f"unknown teacher kind {arch.kind!r}")
    if (state is None) != (arch.kind == "dlib-base"):
        raise ValueError(f"a {arch.kind} teacher {'needs' if state is None else 'has no'} weights")
    if arch.kind == "scratch":
        with torch.random.fork_rng():  # construction draws initial weights; leave the global stream alone
            backbone = ScratchCNN(arch.embedding_dim)
        backbone.load_state_dict(state)
        return scratch_teacher(name, backbone, arch.input_size, info)
    return dlib_teacher(name, arch, state, cache_dir=cache_dir, info=info)


def load_teacher(folder: Path, *, cache_dir: Path | None = None) -> Teacher:
    """The teacher saved in ``folder`` by :func:`save_teacher`.

    Parameters
    ----------
    folder : the folder holding ``teacher.json`` (and ``teacher.pt`` unless ``dlib-base``)
    cache_dir : dlib teachers: where the frozen stages' activations are cached (None: memory only);
        results are bitwise the same either way

    Raises
    ------
    ArtifactError
        Missing, edited, truncated or inconsistent files (one-line message).
    """
    path = Path(folder) / TEACHER_FILE
    state, meta = load_weights(path)
    _check_format(meta, _TEACHER_FORMAT, path)
    try:
        return _rebuild_teacher(meta, state, cache_dir)
    except _BAD as err:
        raise ArtifactError(f"{path} does not rebuild a teacher ({error_line(err)}); save the model again") from err


def save_student(student: Student, folder: Path) -> Path:
    """Write ``student`` (its teacher and head) to ``folder`` (created if needed); returns ``folder``.

    Raises
    ------
    ArtifactError
        The student's teacher cannot be saved (see :func:`save_teacher`).
    """
    folder = Path(folder)
    save_teacher(student.teacher, folder)
    head = student.head
    save_weights(folder / STUDENT_FILE, head.state_dict(),
                 {"format": _STUDENT_FORMAT, "name": student.name, "classes": [str(c) for c in student.classes],
                  "input_size": int(student.input_size),
                  "head": {"in_features": int(head.in_features), "out_features": int(head.out_features)},
                  "info": student.info})
    return folder


def _rebuild_head(meta: dict[str, Any], state: dict[str, torch.Tensor] | None, teacher: Teacher) -> nn.Linear:
    shape, classes = meta["head"], meta["classes"]
    if int(shape["out_features"]) != len(classes) or int(meta["input_size"]) != teacher.input_size:
        raise ValueError(f"{len(classes)} classes for {shape['out_features']} outputs, input size "
                         f"{meta['input_size']} for a {teacher.input_size}-pixel teacher")
    head = nn.utils.skip_init(nn.Linear, int(shape["in_features"]), int(shape["out_features"]))  # no RNG draw
    head.load_state_dict(state)
    return head.eval()


def load_student(folder: Path, *, cache_dir: Path | None = None) -> Student:
    """The student saved in ``folder`` by :func:`save_student`; ``predict_proba`` is bitwise the saved one's.

    Bitwise for the same batches: as in the saved student, each call embeds its unseen images in
    one batch, and a CPU kernel's last bits can depend on a batch's make-up (~1e-7).

    Parameters
    ----------
    folder : a folder written by :func:`save_student`
    cache_dir : dlib teachers: activation cache folder (see :func:`load_teacher`)

    Raises
    ------
    ArtifactError
        Missing, edited, truncated or inconsistent files (one-line message).
    """
    folder = Path(folder)
    teacher = load_teacher(folder, cache_dir=cache_dir)
    path = folder / STUDENT_FILE
    state, meta = load_weights(path)
    _check_format(meta, _STUDENT_FORMAT, path)
    try:
        head = _rebuild_head(meta, state, teacher)
        return Student(str(meta["name"]), teacher, head, [str(c) for c in meta["classes"]], dict(meta["info"]))
    except _BAD as err:
        raise ArtifactError(f"{path} does not rebuild a student ({error_line(err)}); save the model again") from err
