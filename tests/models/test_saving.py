"""Saved students load back bitwise, without unpickling objects; edited or corrupt files are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceleaks.config import StudentConfig, TeacherConfig
from faceleaks.errors import ArtifactError
from faceleaks.models.checkpoint import load_weights, save_weights
from faceleaks.models.dlib_teacher import dlib_base_teacher, finetune_dlib_teacher
from faceleaks.models.saving import STUDENT_FILE, TEACHER_FILE, load_student, save_student
from faceleaks.models.student import train_student
from faceleaks.models.teacher import Teacher, train_scratch_teacher

RNG = np.random.default_rng(0)
FACES = RNG.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
CHIPS = RNG.integers(0, 256, (16, 150, 150, 3), dtype=np.uint8)
STUDENT_CFG = StudentConfig(epochs=5)


def _people(n, k):
    return np.array([f"person{i % k}" for i in range(n)]), np.array([f"img{i}" for i in range(n)])


@pytest.fixture(scope="module")
def scratch_student():
    identities, ids = _people(len(FACES), 3)
    teacher = train_scratch_teacher(FACES, identities, ids, TeacherConfig(kind="scratch", image_size=32, epochs=2,
                                                                           batch_size=8), seed=1, cache_dir=None)
    return train_student("gender", teacher, FACES, np.arange(len(FACES)) % 2, ["f", "m"], STUDENT_CFG, seed=2)


def _dlib_student(kind):
    cfg = TeacherConfig(kind="dlib", finetune_epochs=2, batch_size=8)
    if kind == "dlib-base":
        teacher = dlib_base_teacher(cfg, cache_dir=None)
    else:
        identities, ids = _people(len(CHIPS), 4)
        teacher = finetune_dlib_teacher(CHIPS, identities, ids, cfg, seed=3, cache_dir=None)
    return train_student("age", teacher, CHIPS, np.arange(len(CHIPS)) % 3, ["young", "mid", "old"], STUDENT_CFG, seed=4)


def _assert_same(saved, loaded, *batches):
    """Same answers batch by batch (a CPU kernel's last bits can depend on the batch's make-up, so
    each batch is one the saved student also embedded whole: at training time or just now)."""
    assert (loaded.name, loaded.classes, loaded.info, loaded.input_size) == \
        (saved.name, saved.classes, saved.info, saved.input_size)
    assert loaded.teacher.arch == saved.teacher.arch and loaded.teacher.info == saved.teacher.info
    for images in batches:
        np.testing.assert_array_equal(loaded.predict_proba(images), saved.predict_proba(images))


def test_scratch_student_round_trips_bitwise(scratch_student, tmp_path):
    save_student(scratch_student, tmp_path / "s")
    before = torch.get_rng_state()
    loaded = load_student(tmp_path / "s")
    assert torch.equal(torch.get_rng_state(), before)  # loading draws nothing from the global stream
    fresh = RNG.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    _assert_same(scratch_student, loaded, fresh, FACES, FACES[::-1])
    assert not loaded.teacher.network.training and not loaded.head.training


@pytest.mark.parametrize("kind", ["dlib", "dlib-base"])
def test_dlib_students_round_trip_bitwise(kind, tmp_path):
    student = _dlib_student(kind)
    save_student(student, tmp_path / kind)
    assert (tmp_path / kind / TEACHER_FILE).exists() == (kind == "dlib")  # dlib-base: the sidecar is the marker
    _assert_same(student, load_student(tmp_path / kind, cache_dir=tmp_path / "cache"), CHIPS)


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_json(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _resave_consistently(path, **changes):
    """An edit that keeps every checksum valid: only the consistency checks can catch it."""
    state, meta = load_weights(path)
    meta = {k: v for k, v in meta.items() if k not in ("version", "weights_sha256", "sidecar_sha256")}
    save_weights(path, state, {**meta, **changes})


CORRUPTIONS = {
    "flipped weight byte": lambda d: _flip_byte(d / STUDENT_FILE),
    "truncated teacher": lambda d: (d / TEACHER_FILE).write_bytes((d / TEACHER_FILE).read_bytes()[:100]),
    "deleted teacher weights": lambda d: (d / TEACHER_FILE).unlink(),
    "edited classes": lambda d: _edit_json(d / "student.json", classes=["a", "b", "c"]),
    "junk sidecar": lambda d: (d / "teacher.json").write_text("{not json"),
    "other version": lambda d: _edit_json(d / "student.json", version=99),
    "consistent but wrong classes": lambda d: _resave_consistently(d / STUDENT_FILE, classes=["a", "b", "c"]),
    "consistent but wrong arch": lambda d: _resave_consistently(
        d / TEACHER_FILE, arch={"kind": "scratch", "input_size": 32, "embedding_dim": 64, "unfreeze_last_n": 0}),
    "unknown kind": lambda d: _resave_consistently(
        d / TEACHER_FILE, arch={"kind": "vit", "input_size": 32, "embedding_dim": 128, "unfreeze_last_n": 0}),
    "student where a teacher should be": lambda d: (d / "teacher.json").write_text((d / "student.json").read_text()),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_edited_or_corrupt_files_raise_one_line_artifact_error(scratch_student, tmp_path, corruption):
    folder = save_student(scratch_student, tmp_path / "s")
    CORRUPTIONS[corruption](folder)
    with pytest.raises(ArtifactError) as info:
        load_student(folder)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)


def test_missing_folder_and_bare_teacher_raise_artifact_error(scratch_student, tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        load_student(tmp_path / "nowhere")
    bare = Teacher("bare", lambda x: np.ones((len(x), 4), np.float32), 32)
    with pytest.raises(ArtifactError, match="bare"):
        save_student(type(scratch_student)("s", bare, scratch_student.head, ["f", "m"]), tmp_path / "b")
