"""Time the shadow-teacher stage of LiRA on each executor backend (default split, one setting).

    python benchmarks/bench_shadows.py [--shadows 8] [--backends serial,process,ray]

Data, face chips and dlib activations come from the usual cache (``$FACELEAKS_CACHE_DIR`` or
``~/.cache/faceleaks``); the shadow teachers are fine-tuned from scratch into a temporary folder for
every backend, so each backend does the same work. Prints seconds for the fine-tuning (through the
executor) and for the shadow students built on them (in this process). Run on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from faceleaks.config import ExperimentConfig
from faceleaks.evaluation.attacker import make_attacker_data
from faceleaks.evaluation.membership import held_photos as _held_photos
from faceleaks.evaluation.lira_shadows import plan_lira_shadows
from faceleaks.evaluation.dataset import prepare_data
from faceleaks.evaluation.owner import build_students, build_teacher
from faceleaks.models.dlib_parallel import FinetuneJob, finetune_dlib_teachers
from faceleaks.models.dlib_teacher import dlib_base_teacher
from faceleaks.models.training import configure_torch
from faceleaks.progress import set_enabled
from faceleaks.seeding import derive_seed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shadows", type=int, default=8)
    parser.add_argument("--backends", default="serial,process,ray")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    set_enabled(False)
    configure_torch(2)
    cache = Path(os.environ.get("FACELEAKS_CACHE_DIR", Path.home() / ".cache" / "faceleaks"))
    cfg = ExperimentConfig()
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(cfg, out_dir=Path(tmp), cache_dir=cache)
        dlib_base_teacher(cfg.teacher, cache_dir=cache).embed(data.faces.images[:1])
        attacker = make_attacker_data(data.split, train_fraction=cfg.split.member_train_fraction, seed=cfg.seed)
        targets = {"training-photos": _held_photos(data, "training-photos", cfg)}
        plans = plan_lira_shadows(attacker, targets, n_shadows=args.shadows, seed=cfg.seed)
        jobs = []
        for plan in plans:
            faces = data.photos([i for ids in plan.train.values() for i in ids])
            jobs.append(FinetuneJob(faces.images, faces.identities, faces.image_ids, derive_seed(cfg.seed, plan.name),
                                    plan.name))
        n_photos = sum(len(j.image_ids) for j in jobs) / len(jobs)
        print(f"{len(jobs)} shadow teachers, {n_photos:.0f} training photos each, {cfg.teacher.resolved_recipe.epochs} epochs")
        for backend in args.backends.split(","):
            folder = Path(tmp) / backend
            folder.mkdir()
            (folder / "dlib-activations").symlink_to(cache / "dlib-activations")
            t0 = time.perf_counter()
            finetune_dlib_teachers(jobs, cfg.teacher, cache_dir=folder, backend=backend, workers=args.workers)
            t_train = time.perf_counter() - t0
            t0 = time.perf_counter()
            for plan in plans:
                teacher = build_teacher(data, cfg, plan.train, name=plan.name, cache_dir=folder)
                build_students(teacher, data, cfg, shadow=True, prefix=f"lira-{plan.index}")
            t_students = time.perf_counter() - t0
            print(f"{backend:8s} workers={args.workers}: fine-tuning {t_train:6.1f} s "
                  f"({t_train / len(jobs):.1f} s per teacher), shadow students {t_students:6.1f} s")


if __name__ == "__main__":
    main()
