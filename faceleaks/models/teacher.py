"""The teacher: a face-recognition network trained on member identities, used as a frozen embedder.

A ``Teacher`` maps face crops to L2-normalised embeddings; students are built on it. Training
is cached by a hash of (settings, training photo ids, seed), so a rerun reuses the teacher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceleaks.config import TeacherConfig
from faceleaks.errors import DataError
from faceleaks.memo import ImageMemo, image_keys
from faceleaks.models.backbones import ScratchCNN, to_tensor
from faceleaks.models.checkpoint import chips_digest, config_key, is_stale, load_checkpoint, save_checkpoint
from faceleaks.models.training import DEFAULT_HOOKS, TrainingHooks, fit_classifier, hflip, predict_batches

__all__ = ["Teacher", "TeacherArch", "scratch_teacher", "train_scratch_teacher", "TEACHER_ARCH_KINDS"]

log = logging.getLogger(__name__)

#: Teacher kinds a ``TeacherArch`` can rebuild (those of ``TeacherConfig.kind``).
TEACHER_ARCH_KINDS = ("scratch", "dlib", "dlib-base")


@dataclass(frozen=True)
class TeacherArch:
    """What rebuilds a teacher's network from its saved ``state_dict`` (no pickled objects).

    Parameters
    ----------
    kind : "scratch" (``ScratchCNN``), "dlib" (dlib's last stages fine-tuned) or "dlib-base"
        (dlib's model unmodified: nothing to save)
    input_size : side of the crops the teacher takes, pixels (150 for dlib chips)
    embedding_dim : d, the embedding length
    unfreeze_last_n : dlib kinds: how many of dlib's last stages the teacher's own network holds
    """

    kind: str
    input_size: int
    embedding_dim: int
    unfreeze_last_n: int = 0


@dataclass
class Teacher:
    """A frozen embedder. ``embed`` takes uint8 (n, S, S, 3) crops and returns float32 (n, d), unit norm.

    ``raw_embed`` maps crops to unnormalised (n, d) float32 embeddings. Embeddings are memoised
    by image content (``faceleaks.memo.ImageMemo``), so each image is embedded once per run however
    many students see it. ``arch`` and ``network`` (the trained part: the scratch backbone or
    dlib's tail stages) are what ``faceleaks.models.saving`` stores; they are None for teachers
    built from a bare function. ``head``: the closed-set classifier the owner trained with the
    teacher, (n_classes, d) float32 unit rows over the sorted member identities (a cosine head:
    the class of a photo is the row of largest cosine with its embedding), or None (``dlib-base``,
    scratch teachers, teachers cached before heads were kept).
    """

    name: str
    raw_embed: Callable[[np.ndarray], np.ndarray]
    input_size: int
    info: dict = field(default_factory=dict)
    arch: TeacherArch | None = None
    network: nn.Module | None = field(default=None, repr=False)
    head: np.ndarray | None = field(default=None, repr=False)
    _memo: ImageMemo = field(default_factory=ImageMemo, repr=False)

    def _raw_embed(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.raw_embed(images), dtype=np.float32)

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Embeddings (n, d) float32 with unit L2 norm; ``DataError`` on a wrong image shape."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (self.input_size, self.input_size, 3) or images.dtype != np.uint8:
            raise DataError(f"teacher {self.name!r} expects uint8 (n, {self.input_size}, {self.input_size}, 3) "
                            f"crops, got {images.dtype} {images.shape}")
        keys = image_keys(images)
        if not keys:
            return np.zeros((0, self.info.get("embedding_dim", 0)), np.float32)
        # every unseen row, duplicates included, is embedded in one call as before the shared memo
        # (the batch's make-up can change a CPU kernel's last bits)
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo:
            emb = self._raw_embed(images[todo])
            emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            self._memo.update([keys[i] for i in todo], emb)
        return self._memo.get(images, self._raw_embed, keys=keys)

    def identify(self, images: np.ndarray) -> np.ndarray:
        """Closed-set identification by the teacher's own head: (n,) int64 class indices into the
        sorted member identities it was trained on. ``DataError`` if the teacher has no head."""
        if self.head is None:
            raise DataError(f"teacher {self.name!r} has no closed-set head (dlib-base, scratch, or cached "
                            "before heads were kept): it cannot identify members")
        return (self.embed(images) @ self.head.T).argmax(axis=1).astype(np.int64)


class _Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.embedding_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def scratch_teacher(name: str, backbone: ScratchCNN, input_size: int, info: dict) -> Teacher:
    """A ``Teacher`` embedding ``input_size`` crops with a trained ``backbone`` (put in eval mode)."""
    backbone.eval()
    embed = lambda images: predict_batches(backbone, to_tensor(images), batch_size=256).numpy()  # noqa: E731
    arch = TeacherArch("scratch", int(input_size), int(backbone.embedding_dim))
    return Teacher(name, embed, int(input_size), info, arch=arch, network=backbone)


def train_scratch_teacher(
    images: np.ndarray, identities: np.ndarray, image_ids: np.ndarray, cfg: TeacherConfig, *,
    seed: int, cache_dir: Path | None, name: str = "teacher", hooks: TrainingHooks = DEFAULT_HOOKS,
) -> Teacher:
    """Train ``ScratchCNN`` to classify ``identities`` (the members) from their photos, or load it.

    Parameters
    ----------
    images : ndarray (n, S, S, 3) uint8, S = cfg.image_size
    identities : ndarray (n,) str, the member each photo shows
    image_ids : ndarray (n,) str, used with cfg and seed as the cache key
    hooks : training recipe hooks (``fit_classifier``); a non-default one adds its tag to the cache key

    Raises ``DataError`` if fewer than 2 identities or any identity has no photo.
    """
    classes = sorted(set(identities.tolist()))
    if len(classes) < 2:
        raise DataError(f"the teacher needs at least 2 member identities, got {len(classes)}")
    key = config_key("scratch", [cfg.image_size, cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.weight_decay,
                                 cfg.embedding_dim], sorted(image_ids.tolist()), seed,
                     *([] if hooks.is_default else [f"hooks:{hooks.tag}"]))
    path = Path(cache_dir) / "teachers" / f"{name}-scratch-{key}.pt" if cache_dir else None
    cached, digest = (load_checkpoint(path) if path else None), chips_digest(images, image_ids)
    if cached is not None and not is_stale(cached[1], digest, path):
        backbone = ScratchCNN(cfg.embedding_dim)
        backbone.load_state_dict(cached[0])
        log.info("reusing cached %s from %s", name, path)
        return scratch_teacher(name, backbone, cfg.image_size, {**cached[1], "cached": True})
    with torch.random.fork_rng():  # seeded initial weights without touching global state
        torch.manual_seed(seed)
        backbone = ScratchCNN(cfg.embedding_dim)
        model = _Classifier(backbone, len(classes))
    labels = np.searchsorted(classes, identities)
    gen = torch.Generator().manual_seed(seed)
    losses = fit_classifier(model, to_tensor(images), labels, epochs=cfg.epochs, batch_size=cfg.batch_size,
                            learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
                            generator=gen, augment=hflip, description=f"training {name} (scratch CNN)", hooks=hooks)
    train_acc = float((predict_batches(model, to_tensor(images)).argmax(1).numpy() == labels).mean())
    meta = {"kind": "scratch", "n_classes": len(classes), "n_train_photos": int(len(images)),
            "final_loss": losses[-1], "train_accuracy": train_acc, "embedding_dim": cfg.embedding_dim,
            "chips_sha256": digest}
    if path:
        save_checkpoint(path, backbone.state_dict(), meta)
    return scratch_teacher(name, backbone, cfg.image_size, {**meta, "cached": False})
