"""Fine-tuning many dlib teachers in parallel (shadow teachers, N victims) on the executor.

``finetune_dlib_teachers`` trains, in worker processes or on Ray, every ``FinetuneJob`` whose
checkpoint is not yet cached, with the recipe of ``faceleaks.models.dlib_teacher.fit_tail``;
``finetune_dlib_teacher`` then loads each from the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faceleaks.errors import DataError
from faceleaks.executor import run_tasks
from faceleaks.config import TeacherConfig
from faceleaks.models.activations import activation_store
from faceleaks.models.activations import dlib_base_network as _base
from faceleaks.models.checkpoint import chips_digest, is_stale, load_checkpoint, save_checkpoint
from faceleaks.models.dlib_teacher import Tail, train_tail, dlib_teacher_path
from faceleaks.models.training import configure_torch
from faceleaks.progress import set_enabled as set_progress

__all__ = ["FinetuneJob", "finetune_dlib_teachers"]


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
        cached = load_checkpoint(path)
        if cached is None or is_stale(cached[1], chips_digest(job.chips, job.image_ids), path):
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
        job = todo[i][0]
        meta = {**meta, "chips_sha256": chips_digest(job.chips, job.image_ids)}
        save_checkpoint(todo[i][1], {k: torch.tensor(v) for k, v in state.items()}, meta)

    run_tasks(_finetune_task, tasks, backend=backend, workers=workers, shared=shared, setup=_one_thread,
              description=f"fine-tuning {len(tasks)} teachers ({backend})", ray_address=ray_address, on_result=save)
    return len(tasks)


def _one_thread() -> None:
    configure_torch(1)
    set_progress(False)  # one bar for the whole pool, none from each worker


def _finetune_task(task: dict, shared: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """Executor task: fine-tune one tail on rows of the shared activations; returns (state as numpy, meta)."""
    tail = Tail(_base(), task["start"])
    h = torch.from_numpy(np.array(shared[task["rows"]], dtype=np.float32))
    state, meta = train_tail(tail, h, task["labels"], task["n_classes"], task["cfg"], task["seed"], task["name"])
    return {k: v.detach().numpy().copy() for k, v in state.items()}, meta
