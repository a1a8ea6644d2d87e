"""Teachers: the content memo of embeddings, and training hooks reaching teachers and students."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceleaks.config import StudentConfig, TeacherConfig
from faceleaks.errors import DataError
from faceleaks.models.student import train_student
from faceleaks.models.teacher import Teacher, train_scratch_teacher
from faceleaks.models.training import TrainingHooks

RNG = np.random.default_rng(5)
FACES = RNG.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)


def test_embed_memoises_by_content_and_normalises():
    calls = []

    def raw(x):
        calls.append(len(x))
        return x.reshape(len(x), -1)[:, :4].astype(np.float32) + 1.0

    teacher = Teacher("t", raw, 32, {"embedding_dim": 4})
    first = teacher.embed(FACES[:5])
    again = teacher.embed(np.concatenate([FACES[4::-1], FACES[5:7]]))
    assert calls == [5, 2]  # only the two unseen photos are embedded the second time
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(again[:5], first[::-1])
    empty = teacher.embed(FACES[:0])
    assert empty.shape == (0, 4) and empty.dtype == np.float32
    with pytest.raises(DataError, match="uint8"):
        teacher.embed(FACES.astype(np.float32))


def _sgd_factory(made):
    def make(model):
        made.append(torch.optim.SGD(model.parameters(), lr=0.01))
        return made[-1]
    return make


def test_hooks_reach_teacher_training_and_name_the_cache_file(tmp_path):
    identities = np.array([f"p{i % 3}" for i in range(len(FACES))])
    ids = np.array([f"i{i}" for i in range(len(FACES))])
    cfg = TeacherConfig(kind="scratch", image_size=32, epochs=1, batch_size=4)
    train_scratch_teacher(FACES, identities, ids, cfg, seed=0, cache_dir=tmp_path)
    made = []
    hooks = TrainingHooks(make_optimizer=_sgd_factory(made), schedule="constant", tag="sgd")
    teacher = train_scratch_teacher(FACES, identities, ids, cfg, seed=0, cache_dir=tmp_path, hooks=hooks)
    assert len(made) == 1 and teacher.info["cached"] is False  # not confused with the default recipe's file
    assert len(list((tmp_path / "teachers").glob("*.pt"))) == 2
    again = train_scratch_teacher(FACES, identities, ids, cfg, seed=0, cache_dir=tmp_path, hooks=hooks)
    assert again.info["cached"] is True and len(made) == 1


def test_hooks_reach_student_training():
    teacher = Teacher("t", lambda x: x.reshape(len(x), -1)[:, :8].astype(np.float32) + 1.0, 32, {"embedding_dim": 8})
    made = []
    hooks = TrainingHooks(make_optimizer=_sgd_factory(made), tag="sgd")
    student = train_student("s", teacher, FACES, np.arange(len(FACES)) % 2, ["a", "b"], StudentConfig(epochs=2),
                            seed=0, hooks=hooks)
    assert len(made) == 1 and student.predict_proba(FACES).shape == (len(FACES), 2)
