"""Students: the frozen teacher's embedding plus a new softmax head for another task.

The head is trained on embeddings computed once (the teacher is frozen), which is the standard
"feature extraction" transfer-learning recipe the FaceLeaks paper attacks [paper, abstract].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from faceleaks.config import StudentConfig
from faceleaks.errors import DataError
from faceleaks.models.teacher import Teacher
from faceleaks.models.training import DEFAULT_HOOKS, TrainingHooks, fit_classifier

__all__ = ["Student", "train_student"]


@dataclass
class Student:
    """A deployed student model (the owner's side of the black box).

    ``predict_proba`` maps uint8 (n, S, S, 3) crops to float32 (n, n_classes) posteriors
    (rows sum to 1); ``classes`` names the outputs.
    """

    name: str
    teacher: Teacher
    head: nn.Linear
    classes: list[str]
    info: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return self.teacher.input_size

    @torch.no_grad()
    def logits(self, images: np.ndarray) -> np.ndarray:
        """(n, n_classes) float32 logits."""
        emb = torch.from_numpy(self.teacher.embed(images))
        return self.head(emb).numpy().astype(np.float32)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(n, n_classes) float32 posteriors; rows sum to 1."""
        z = torch.from_numpy(self.logits(images))
        return torch.softmax(z.double(), dim=1).float().numpy()

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Top-1 accuracy (fraction) on integer labels (n,)."""
        return float((self.predict_proba(images).argmax(1) == np.asarray(labels)).mean())


def train_student(
    name: str, teacher: Teacher, images: np.ndarray, labels: np.ndarray, classes: list[str],
    cfg: StudentConfig, *, seed: int, hooks: TrainingHooks = DEFAULT_HOOKS,
) -> Student:
    """Fit a linear softmax head on the frozen teacher's embeddings.

    Parameters
    ----------
    images : ndarray (n, S, S, 3) uint8
    labels : ndarray (n,) int64 in [0, len(classes))
    hooks : training recipe hooks for the head (``fit_classifier``; default: Adam, cosine)

    Raises ``DataError`` if there are fewer than 2 classes present.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise DataError(f"student {name!r} needs photos of at least 2 classes")
    emb = torch.from_numpy(teacher.embed(images))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        head = nn.Linear(emb.shape[1], len(classes))
    gen = torch.Generator().manual_seed(seed)
    fit_classifier(head, emb, labels, epochs=cfg.epochs, batch_size=256, learning_rate=cfg.learning_rate,
                   weight_decay=cfg.weight_decay, generator=gen, description=f"training student {name}",
                   hooks=hooks)
    head.eval()
    student = Student(name, teacher, head, list(classes))
    student.info = {"n_train": int(len(labels)), "n_classes": len(classes),
                    "train_accuracy": student.accuracy(images, labels)}
    return student
