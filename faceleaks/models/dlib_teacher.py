"""Teachers built on dlib's public face-recognition ResNet: the unmodified base, and the base
with its last stage(s) fine-tuned on the member identities (the owner's private data).

dlib's model was trained on ~3 M photos of 7,485 people with no LFW identity [paper: dlib's
model card], so after fine-tuning on LFW members, membership is exact: the only LFW identities
the teacher has seen are ours. The frozen first stages' activations are computed once per
image and cached on disk (``ActivationStore``); every teacher (victim, shadow, base) reuses them.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceleaks.config import TeacherConfig
from faceleaks.errors import DataError
from faceleaks.models.activations import ActivationStore, activation_store
from faceleaks.models.activations import dlib_base_network as _base
from faceleaks.models.checkpoint import chips_digest, config_key, is_stale, load_checkpoint, save_checkpoint
from faceleaks.models.dlib_resnet import CHIP_SIZE, DlibResNet
from faceleaks.models.heads import CosineHead
from faceleaks.models.teacher import Teacher, TeacherArch
from faceleaks.models.training import (DEFAULT_HOOKS, TrainingHooks, fit_classifier, predict_batches,
                                       with_schedule)

__all__ = ["ActivationStore", "activation_store", "dlib_base_teacher", "finetune_dlib_teacher", "dlib_teacher_path",
           "dlib_teacher", "CosineHead", "fit_tail", "train_tail", "Tail", "HEAD_KEY"]

log = logging.getLogger(__name__)

#: Key of the closed-set head's weight (n_classes, 128) in a cached teacher's state (beside the tail's).
HEAD_KEY = "head.weight"


def dlib_teacher(name: str, arch: TeacherArch, state: dict[str, torch.Tensor] | None, *,
                 cache_dir: Path | None, info: dict) -> Teacher:
    """A dlib teacher rebuilt from its tail's ``state_dict`` (None: dlib's own weights, ``dlib-base``).

    Parameters
    ----------
    arch : ``TeacherArch`` of kind "dlib" or "dlib-base"; ``arch.unfreeze_last_n`` last stages form the tail
    state : the tail's tensors as ``Tail.state_dict()`` gives them, or None
    cache_dir : where the frozen stages' activations are cached (None: memory only)

    Raises
    ------
    RuntimeError
        ``state`` does not fit the tail (missing, unexpected or mis-shaped tensors).
    """
    start = _base().n_stages - arch.unfreeze_last_n
    tail = Tail(_base(), start)
    if state is not None:
        tail.load_state_dict(state)
    return _make_teacher(name, tail, activation_store(start, cache_dir), info, arch)


def _make_teacher(name: str, tail: nn.Module, store: ActivationStore, info: dict, arch: TeacherArch,
                  head: torch.Tensor | None = None) -> Teacher:
    tail.eval()
    rows = None if head is None else nn.functional.normalize(head.detach().float(), dim=1).numpy()

    def embed(chips: np.ndarray) -> np.ndarray:
        h = torch.from_numpy(store.get(chips))
        return predict_batches(tail, h, batch_size=256).numpy().astype(np.float32)

    return Teacher(name, embed, CHIP_SIZE, info, arch=arch, network=tail, head=rows)


def _arch(kind: str, cfg: TeacherConfig) -> TeacherArch:
    return TeacherArch(kind, CHIP_SIZE, 128, cfg.unfreeze_last_n)


class Tail(nn.Module):
    """stages[start:] of a DlibResNet, as one module (input: activations entering ``start``)."""

    def __init__(self, net: DlibResNet, start: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(copy.deepcopy(list(net.stages[start:])))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            h = stage(h)
        return h


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
    return _make_teacher(name, Tail(_base(), start), store,
                         {"kind": "dlib-base", "n_classes": 0, "n_train_photos": 0, "embedding_dim": 128},
                         _arch("dlib-base", cfg))


def finetune_dlib_teacher(
    chips: np.ndarray, identities: np.ndarray, image_ids: np.ndarray, cfg: TeacherConfig, *,
    seed: int, cache_dir: Path | None, name: str = "teacher", hooks: TrainingHooks = DEFAULT_HOOKS,
    need_head: bool = False,
) -> Teacher:
    """Fine-tune dlib's last ``cfg.unfreeze_last_n`` stages plus a new softmax head over the members.

    Parameters
    ----------
    chips : ndarray (n, 150, 150, 3) uint8, dlib-aligned chips of the members' training photos
    identities : ndarray (n,) str, the member each photo shows
    image_ids : ndarray (n,) str, part of the cache key (with cfg and seed)
    hooks : training hooks (``fit_classifier``); the recipe's schedule is applied to them
        (``with_schedule``); a custom optimiser or privatize hook adds its tag to the cache key
    need_head : a cached teacher saved without its closed-set head (before heads were kept) is
        trained again, so that ``Teacher.head`` is set (the owner's identification utility)

    Raises
    ------
    DataError
        Fewer than 2 member identities.
    ConfigError
        ``hooks`` ask for a schedule other than the recipe's.

    Notes
    -----
    A cosine-softmax head imprinted with the members' mean base descriptors, then cross-entropy
    through the 128-D descriptor with Adam under ``cfg.resolved_recipe`` (learning rate, schedule,
    epochs, weight decay; ``regularised``: 3e-4 cosine, 20 epochs, 5e-4); no augmentation (the
    frozen activations are cached per chip) [reconstructed: the paper's fine-tuning recipe is not
    public]. Which photos train (the recipe's ``photos``) is the caller's choice of ``chips``.
    """
    classes = sorted(set(identities.tolist()))
    if len(classes) < 2:
        raise DataError(f"the teacher needs at least 2 member identities, got {len(classes)}")
    start = _base().n_stages - cfg.unfreeze_last_n
    store = activation_store(start, cache_dir)
    tail = Tail(_base(), start)
    path = dlib_teacher_path(cfg, image_ids, seed, name, cache_dir, hooks=hooks)
    cached, digest = (load_checkpoint(path) if path else None), chips_digest(chips, image_ids)
    if cached is not None and (HEAD_KEY in cached[0] or not need_head) and not is_stale(cached[1], digest, path):
        head = cached[0].pop(HEAD_KEY, None)
        tail.load_state_dict(cached[0])
        log.info("reusing cached %s from %s", name, path)
        return _make_teacher(name, tail, store, {**cached[1], "cached": True}, _arch("dlib", cfg), head)
    h = torch.from_numpy(store.get(chips))
    state, meta = train_tail(tail, h, np.searchsorted(classes, identities), len(classes), cfg, seed, name, hooks)
    meta["chips_sha256"] = digest
    if path:
        save_checkpoint(path, state, meta)
    return _make_teacher(name, tail, store, {**meta, "cached": False}, _arch("dlib", cfg), state[HEAD_KEY])


def dlib_teacher_path(cfg: TeacherConfig, image_ids: np.ndarray, seed: int, name: str,
                      cache_dir: Path | None, *, hooks: TrainingHooks = DEFAULT_HOOKS) -> Path | None:
    """Cache file of a fine-tuned teacher: a hash of its configuration and recipe, training photos, seed,
    custom hooks and the version of the activations it trained on (``stop14-batch32``: teachers trained
    on activations of the older, batch-dependent store are not reused).

    Every value of ``cfg.resolved_recipe`` is in the key, whether it was set by the recipe's name or
    by an explicit override (the same values give the same file); the ``regularised`` recipe's key
    is byte for byte the one of teachers cached before recipes existed.
    """
    key = config_key("dlib", _recipe_key(cfg), sorted(np.asarray(image_ids).astype(str).tolist()), seed,
                     f"activations-batch{ActivationStore.BATCH}", *_extra_key(cfg, hooks))
    return Path(cache_dir) / "teachers" / f"{name}-dlib-{key}.pt" if cache_dir else None


#: ``TeacherConfig`` fields hashed into a dlib teacher's key (those of the config before recipes).
_KEY_FIELDS = ("kind", "image_size", "epochs", "learning_rate", "batch_size", "embedding_dim", "unfreeze_last_n")


def _recipe_key(cfg: TeacherConfig) -> dict:
    """The configuration part of the key: the pre-recipe field names, with the recipe's values."""
    r = cfg.resolved_recipe
    fields = {k: v for k, v in asdict(cfg).items() if k in _KEY_FIELDS}  # which control is built is not the recipe
    return {**fields, "weight_decay": r.weight_decay, "finetune_epochs": r.epochs,
            "finetune_learning_rate": r.learning_rate}


def _extra_key(cfg: TeacherConfig, hooks: TrainingHooks) -> list[str]:
    """Key parts for recipe values the pre-recipe key did not have (only when not today's) and custom hooks."""
    r = cfg.resolved_recipe
    parts = [f"{what}:{value}" for what, value, today in (("schedule", r.schedule, "cosine"), ("photos", r.photos, "half"))
             if value != today]
    custom = hooks.make_optimizer is not None or hooks.privatize is not None
    return parts + ([f"hooks:{hooks.tag}"] if custom else []) + cfg.privacy.key_parts()


def train_tail(tail: nn.Module, h: torch.Tensor, labels: np.ndarray, n_classes: int, cfg: TeacherConfig,
                seed: int, name: str, hooks: TrainingHooks = DEFAULT_HOOKS) -> tuple[dict[str, torch.Tensor], dict]:
    """Fine-tune ``tail`` (``fit_tail``); returns the checkpoint's state (the tail's tensors and the head's
    weight under ``HEAD_KEY``, (n_classes, 128) float32 over the sorted classes) and its metadata."""
    model, meta = fit_tail(tail, h, labels, n_classes, cfg, seed, name, hooks)
    head = model[1].weight.detach().clone()
    return {**tail.state_dict(), HEAD_KEY: head}, meta


def fit_tail(tail: nn.Module, h: torch.Tensor, labels: np.ndarray, n_classes: int, cfg: TeacherConfig,
             seed: int, name: str, hooks: TrainingHooks = DEFAULT_HOOKS) -> tuple[nn.Module, dict]:
    """Fine-tune ``tail`` plus a head with ``cfg.resolved_recipe`` and the training defences ``cfg.privacy``
    (``faceleaks.models.privacy.defended_setup``; default: an imprinted head, no defence).

    Returns ``(model, meta)``: ``nn.Sequential(tail, head)`` (inputs: activations ``h`` (n, ...) float32
    entering the tail; outputs (n, n_classes) float32 logits over the classes of ``labels``) and the
    checkpoint metadata (with ``label_smoothing`` and the ``dp_*`` record of ``PrivacyRun`` when set).
    """
    t0, recipe, run, extra = time.perf_counter(), cfg.resolved_recipe, None, {}
    if cfg.privacy.is_default:
        head = _imprinted_head(tail, h, labels, n_classes)
    else:  # imported only here: Opacus takes seconds to import
        from faceleaks.models.privacy import defended_setup
        head, hooks, run = defended_setup(cfg.privacy, tail, h, labels, n_classes, batch_size=cfg.batch_size,
                                          epochs=recipe.epochs, seed=seed, hooks=hooks, imprint=_imprinted_head)
        extra = {"label_smoothing": cfg.privacy.label_smoothing}
    model = nn.Sequential(tail, head)
    losses = fit_classifier(model, h, labels, epochs=recipe.epochs, batch_size=cfg.batch_size,
                            learning_rate=recipe.learning_rate, weight_decay=recipe.weight_decay,
                            generator=torch.Generator().manual_seed(seed), description=f"fine-tuning {name} (dlib)",
                            hooks=with_schedule(hooks, recipe.schedule))
    if run is not None:
        run.close()
        extra.update(run.record())
    train_acc = float((predict_batches(model, h).argmax(1).numpy() == labels).mean())
    return model, {**extra, "kind": "dlib", "n_classes": n_classes, "n_train_photos": int(len(h)),
                   "final_loss": losses[-1], "train_accuracy": train_acc, "embedding_dim": 128,
                   "unfreeze_last_n": cfg.unfreeze_last_n, "train_seconds": round(time.perf_counter() - t0, 2),
                   "train_threads": torch.get_num_threads()}
