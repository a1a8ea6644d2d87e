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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceleaks.config import TeacherConfig
from faceleaks.errors import DataError
from faceleaks.executor import run_tasks
from faceleaks.models.activations import ActivationStore, activation_store
from faceleaks.models.activations import dlib_base_network as _base
from faceleaks.models.checkpoint import config_key, load_checkpoint, save_checkpoint
from faceleaks.models.dlib_resnet import CHIP_SIZE, DlibResNet
from faceleaks.models.heads import CosineHead
from faceleaks.models.teacher import Teacher, TeacherArch
from faceleaks.models.training import (DEFAULT_HOOKS, TrainingHooks, configure_torch, fit_classifier, predict_batches,
                                       with_schedule)
from faceleaks.progress import set_enabled as set_progress

__all__ = ["ActivationStore", "activation_store", "dlib_base_teacher", "finetune_dlib_teacher", "finetune_dlib_teachers",
           "FinetuneJob", "dlib_teacher_path", "dlib_teacher", "CosineHead", "fit_tail"]

log = logging.getLogger(__name__)


def dlib_teacher(name: str, arch: TeacherArch, state: dict[str, torch.Tensor] | None, *,
                 cache_dir: Path | None, info: dict) -> Teacher:
    """A dlib teacher rebuilt from its tail's ``state_dict`` (None: dlib's own weights, ``dlib-base``).

    Parameters
    ----------
    arch : ``TeacherArch`` of kind "dlib" or "dlib-base"; ``arch.unfreeze_last_n`` last stages form the tail
    state : the tail's tensors as ``_Tail.state_dict()`` gives them, or None
    cache_dir : where the frozen stages' activations are cached (None: memory only)

    Raises
    ------
    RuntimeError
        ``state`` does not fit the tail (missing, unexpected or mis-shaped tensors).
    """
    start = _base().n_stages - arch.unfreeze_last_n
    tail = _Tail(_base(), start)
    if state is not None:
        tail.load_state_dict(state)
    return _make_teacher(name, tail, activation_store(start, cache_dir), info, arch)


def _make_teacher(name: str, tail: nn.Module, store: ActivationStore, info: dict, arch: TeacherArch) -> Teacher:
    tail.eval()

    def embed(chips: np.ndarray) -> np.ndarray:
        h = torch.from_numpy(store.get(chips))
        return predict_batches(tail, h, batch_size=256).numpy().astype(np.float32)

    return Teacher(name, embed, CHIP_SIZE, info, arch=arch, network=tail)


def _arch(kind: str, cfg: TeacherConfig) -> TeacherArch:
    return TeacherArch(kind, CHIP_SIZE, 128, cfg.unfreeze_last_n)


class _Tail(nn.Module):
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
    return _make_teacher(name, _Tail(_base(), start), store,
                         {"kind": "dlib-base", "n_classes": 0, "n_train_photos": 0, "embedding_dim": 128},
                         _arch("dlib-base", cfg))


def finetune_dlib_teacher(
    chips: np.ndarray, identities: np.ndarray, image_ids: np.ndarray, cfg: TeacherConfig, *,
    seed: int, cache_dir: Path | None, name: str = "teacher", hooks: TrainingHooks = DEFAULT_HOOKS,
) -> Teacher:
    """Fine-tune dlib's last ``cfg.unfreeze_last_n`` stages plus a new softmax head over the members.

    Parameters
    ----------
    chips : ndarray (n, 150, 150, 3) uint8, dlib-aligned chips of the members' training photos
    identities : ndarray (n,) str, the member each photo shows
    image_ids : ndarray (n,) str, part of the cache key (with cfg and seed)
    hooks : training hooks (``fit_classifier``); the recipe's schedule is applied to them
        (``with_schedule``); a custom optimiser or privatize hook adds its tag to the cache key

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
    tail = _Tail(_base(), start)
    path = dlib_teacher_path(cfg, image_ids, seed, name, cache_dir, hooks=hooks)
    cached = load_checkpoint(path) if path else None
    if cached is not None:
        tail.load_state_dict(cached[0])
        log.info("reusing cached %s from %s", name, path)
        return _make_teacher(name, tail, store, {**cached[1], "cached": True}, _arch("dlib", cfg))
    h = torch.from_numpy(store.get(chips))
    meta = _train_tail(tail, h, np.searchsorted(classes, identities), len(classes), cfg, seed, name, hooks)
    if path:
        save_checkpoint(path, tail.state_dict(), meta)
    return _make_teacher(name, tail, store, {**meta, "cached": False}, _arch("dlib", cfg))


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


def _train_tail(tail: nn.Module, h: torch.Tensor, labels: np.ndarray, n_classes: int, cfg: TeacherConfig,
                seed: int, name: str, hooks: TrainingHooks = DEFAULT_HOOKS) -> dict:
    """Fine-tune ``tail`` (``fit_tail``); returns the checkpoint metadata."""
    return fit_tail(tail, h, labels, n_classes, cfg, seed, name, hooks)[1]


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


@dataclass(frozen=True)
class FinetuneJob:
    """One teacher to fine-tune: its training chips (n, 150, 150, 3) uint8, identities and image ids
    (n,) str, seed and name, as ``finetune_dlib_teacher`` takes them."""

    chips: np.ndarray
    identities: np.ndarray
    image_ids: np.ndarray
    seed: int
    name: str


def finetune_dlib_teachers(jobs: Sequence[FinetuneJob], cfg: TeacherConfig, *, cache_dir: Path,
                           backend: str = "process", workers: int = 2, ray_address: str | None = None) -> int:
    """Fine-tune, in parallel, every job whose checkpoint is not yet in ``cache_dir``; returns how many ran.

    Afterwards ``finetune_dlib_teacher`` with the same arguments loads each from the cache, so this
    is purely a speed-up (the same recipe and seed as one by one; floating-point sums may differ in
    the last bits because workers use one thread each). ``cfg`` (picklable) goes to every worker, so
    the recipe's schedule, learning rate, epochs and weight decay apply there too. The frozen
    activations of all jobs' photos are computed here once and shared with the workers; each
    worker trains with one torch thread and sends its weights back; this process saves each
    checkpoint as it arrives. ``backend`` / ``workers`` / ``ray_address``: see
    ``faceleaks.executor.run_tasks`` (raises its ``TaskError`` if a job fails; finished jobs stay cached).
    """
    todo = []
    for job in jobs:
        path = dlib_teacher_path(cfg, job.image_ids, job.seed, job.name, cache_dir)
        if load_checkpoint(path) is None:
            todo.append((job, path))
    if not todo:
        return 0
    first: dict[str, int] = {}
    rows = []
    for job, _ in todo:
        for i, image_id in enumerate(job.image_ids.tolist()):
            if image_id not in first:
                first[image_id] = len(rows)
                rows.append(job.chips[i])
    start = _base().n_stages - cfg.unfreeze_last_n
    shared = activation_store(start, cache_dir).get(np.stack(rows))
    del rows
    tasks = []
    for job, path in todo:
        classes = sorted(set(job.identities.tolist()))
        if len(classes) < 2:
            raise DataError(f"teacher {job.name} needs at least 2 member identities, got {len(classes)}")
        tasks.append({"name": job.name, "rows": np.array([first[i] for i in job.image_ids.tolist()]),
                      "labels": np.searchsorted(classes, job.identities), "n_classes": len(classes),
                      "cfg": cfg, "seed": job.seed, "start": start})

    def save(i: int, result: tuple[dict, dict]) -> None:  # on this machine, as each task finishes
        state, meta = result
        save_checkpoint(todo[i][1], {k: torch.tensor(v) for k, v in state.items()}, meta)

    run_tasks(_finetune_task, tasks, backend=backend, workers=workers, shared=shared, setup=_one_thread,
              description=f"fine-tuning {len(tasks)} teachers ({backend})", ray_address=ray_address, on_result=save)
    return len(tasks)


def _one_thread() -> None:
    configure_torch(1)
    set_progress(False)  # one bar for the whole pool, none from each worker


def _finetune_task(task: dict, shared: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """Executor task: fine-tune one tail on rows of the shared activations; returns (state as numpy, meta)."""
    tail = _Tail(_base(), task["start"])
    h = torch.from_numpy(np.array(shared[task["rows"]], dtype=np.float32))
    meta = _train_tail(tail, h, task["labels"], task["n_classes"], task["cfg"], task["seed"], task["name"])
    return {k: v.detach().numpy().copy() for k, v in tail.state_dict().items()}, meta
