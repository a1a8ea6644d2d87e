"""Teachers built on dlib's public face-recognition ResNet: the unmodified base, and the base
with its last stage(s) fine-tuned on the member identities (the owner's private data).

dlib's model was trained on ~3 M photos of 7,485 people with no LFW identity [paper: dlib's
model card], so after fine-tuning on LFW members, membership is exact: the only LFW identities
the teacher has seen are ours. The frozen first stages' activations are computed once per
image and cached on disk (``ActivationStore``); every teacher (victim, shadow, base) reuses them.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceleaks.config import TeacherConfig
from faceleaks.errors import DataError
from faceleaks.models.checkpoint import config_key, load_checkpoint, save_checkpoint
from faceleaks.models.dlib_resnet import CHIP_SIZE, DlibResNet, load_dlib_resnet, preprocess_dlib
from faceleaks.models.teacher import Teacher
from faceleaks.models.training import fit_classifier, predict_batches
from faceleaks.progress import track

__all__ = ["ActivationStore", "activation_store", "dlib_base_teacher", "finetune_dlib_teacher"]

log = logging.getLogger(__name__)
_BASE: list[DlibResNet] = []


def _base() -> DlibResNet:
    if not _BASE:
        _BASE.append(load_dlib_resnet())
    return _BASE[0]


class ActivationStore:
    """Activations entering stage ``stop`` of dlib's base network, per chip, memoised by content.

    ``get(chips)`` returns float32 (n, C, h, w); new ones are computed in batches of 32 and
    appended to ``<cache_dir>/dlib-activations/stop<stop>/`` as one ``.npz`` shard per call.
    """

    def __init__(self, stop: int, cache_dir: Path | None) -> None:
        self.stop = stop
        self.folder = Path(cache_dir) / "dlib-activations" / f"stop{stop}" if cache_dir else None
        self._memo: dict[bytes, np.ndarray] = {}
        if self.folder and self.folder.exists():
            for shard in sorted(self.folder.glob("*.npz")):
                with np.load(shard) as z:
                    self._memo.update(zip([bytes(k) for k in z["keys"]], z["acts"]))

    def get(self, chips: np.ndarray) -> np.ndarray:
        keys = [hashlib.sha1(c.tobytes()).digest() for c in chips]
        todo = list(dict.fromkeys(k for k in keys if k not in self._memo))
        if todo:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            idx = [first[k] for k in todo]
            net = _base()
            acts = []
            for s in track(range(0, len(idx), 32), f"dlib ResNet on {len(idx)} new chip{'s' if len(idx) != 1 else ''}"):
                x = preprocess_dlib(chips[idx[s : s + 32]])
                with torch.no_grad():
                    acts.append(net.forward_to(x, self.stop).numpy())
            acts = np.concatenate(acts).astype(np.float32)
            self._memo.update(zip(todo, acts))
            self._save(todo, acts)
        return np.stack([self._memo[k] for k in keys])

    def _save(self, keys: list[bytes], acts: np.ndarray) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(b"".join(keys)).hexdigest()[:16]
        tmp = self.folder / f"{name}.tmp.npz"
        np.savez(tmp, keys=np.array([np.frombuffer(k, np.uint8) for k in keys]), acts=acts)
        tmp.replace(self.folder / f"{name}.npz")


_STORES: dict[tuple[int, str], ActivationStore] = {}


def activation_store(stop: int, cache_dir: Path | None) -> ActivationStore:
    """The process-wide store for (stop, cache folder): its shards are read from disk once."""
    key = (stop, str(Path(cache_dir).resolve()) if cache_dir else "")
    if key not in _STORES:
        _STORES[key] = ActivationStore(stop, cache_dir)
    return _STORES[key]


def _make_teacher(name: str, tail: nn.Module, store: ActivationStore, info: dict) -> Teacher:
    tail.eval()

    def embed(chips: np.ndarray) -> np.ndarray:
        h = torch.from_numpy(store.get(chips))
        return predict_batches(tail, h, batch_size=256).numpy().astype(np.float32)

    return Teacher(name, embed, CHIP_SIZE, info)


class _Tail(nn.Module):
    """stages[start:] of a DlibResNet, as one module (input: activations entering ``start``)."""

    def __init__(self, net: DlibResNet, start: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(copy.deepcopy(list(net.stages[start:])))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            h = stage(h)
        return h


class CosineHead(nn.Module):
    """Logits = ``scale`` x cosine(descriptor, class weight); weights imprinted from class means.

    Imprinting (Qi et al. 2018, arXiv 1712.07136 [paper]) starts fine-tuning from a classifier
    that already works on the strong base features, so gradients stay small and the teacher
    keeps its general face-verification quality [reconstructed choice].
    """

    def __init__(self, class_means: torch.Tensor, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.functional.normalize(class_means, dim=1).clone())
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * nn.functional.normalize(x, dim=1) @ nn.functional.normalize(self.weight, dim=1).T


def _imprinted_head(tail: nn.Module, h: torch.Tensor, labels: np.ndarray, n_classes: int) -> CosineHead:
    with torch.no_grad():
        emb = nn.functional.normalize(predict_batches(tail.eval(), h), dim=1)
    y = torch.as_tensor(labels)
    means = torch.stack([emb[y == c].mean(0) for c in range(n_classes)])
    return CosineHead(means)


def dlib_base_teacher(cfg: TeacherConfig, *, cache_dir: Path | None, name: str = "dlib-base") -> Teacher:
    """dlib's model unmodified (the negative control: no LFW identity is a member)."""
    start = _base().n_stages - cfg.unfreeze_last_n
    store = activation_store(start, cache_dir)
    return _make_teacher(name, _Tail(_base(), start), store,
                         {"kind": "dlib-base", "n_classes": 0, "n_train_photos": 0, "embedding_dim": 128})


def finetune_dlib_teacher(
    chips: np.ndarray, identities: np.ndarray, image_ids: np.ndarray, cfg: TeacherConfig, *,
    seed: int, cache_dir: Path | None, name: str = "teacher",
) -> Teacher:
    """Fine-tune dlib's last ``cfg.unfreeze_last_n`` stages plus a new softmax head over the members.

    Parameters
    ----------
    chips : ndarray (n, 150, 150, 3) uint8, dlib-aligned chips of the members' training photos
    identities : ndarray (n,) str, the member each photo shows
    image_ids : ndarray (n,) str, part of the cache key (with cfg and seed)

    Notes
    -----
    A cosine-softmax head imprinted with the members' mean base descriptors, then cross-entropy
    through the 128-D descriptor with Adam at ``cfg.finetune_learning_rate`` for
    ``cfg.finetune_epochs`` epochs; no augmentation (the frozen activations are cached per chip)
    [reconstructed: the paper's fine-tuning recipe is not public].
    """
    classes = sorted(set(identities.tolist()))
    if len(classes) < 2:
        raise DataError(f"the teacher needs at least 2 member identities, got {len(classes)}")
    start = _base().n_stages - cfg.unfreeze_last_n
    store = activation_store(start, cache_dir)
    tail = _Tail(_base(), start)
    key = config_key("dlib", asdict(cfg), sorted(image_ids.tolist()), seed)
    path = Path(cache_dir) / "teachers" / f"{name}-dlib-{key}.pt" if cache_dir else None
    cached = load_checkpoint(path) if path else None
    if cached is not None:
        tail.load_state_dict(cached[0])
        log.info("reusing cached %s from %s", name, path)
        return _make_teacher(name, tail, store, {**cached[1], "cached": True})
    h = torch.from_numpy(store.get(chips))
    labels = np.searchsorted(classes, identities)
    model = nn.Sequential(tail, _imprinted_head(tail, h, labels, len(classes)))
    losses = fit_classifier(model, h, labels, epochs=cfg.finetune_epochs, batch_size=cfg.batch_size,
                            learning_rate=cfg.finetune_learning_rate, weight_decay=cfg.weight_decay,
                            generator=torch.Generator().manual_seed(seed), description=f"fine-tuning {name} (dlib)")
    train_acc = float((predict_batches(model, h).argmax(1).numpy() == labels).mean())
    meta = {"kind": "dlib", "n_classes": len(classes), "n_train_photos": int(len(chips)), "final_loss": losses[-1],
            "train_accuracy": train_acc, "embedding_dim": 128, "unfreeze_last_n": cfg.unfreeze_last_n}
    if path:
        save_checkpoint(path, tail.state_dict(), meta)
    return _make_teacher(name, tail, store, {**meta, "cached": False})
