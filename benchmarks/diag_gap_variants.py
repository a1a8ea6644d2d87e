"""How close can the black-box consistency gap get to the white-box ceiling? Variants on real victims.

Usage: ``python benchmarks/diag_gap_variants.py [--victims 0 1 2 ...] [--recipe regularised] [--k 5]``

Re-uses the random-inclusion run's victims (seed 0, the cached teachers of ``faceleaks run
--victims auto``; a victim not cached is fine-tuned first), builds each victim's ``lfw-identity``
student as the run does, and computes, per audited pool person, the no-shadow consistency gap
through the student's sealed box in several variants, plus the white-box ceiling (the teacher's own
embeddings). All (victim, person) decisions are pooled and each variant's AUC is printed with
its person-bootstrap 95 % interval. Variants:

- ``pool1000``: the run's statistic (surrogate fitted on 1,000 reference-pool photos);
- ``pool4000``: the surrogate fitted on the whole reference pool;
- ``flip``: every target and pool photo also queried mirrored; the box's centred log-posteriors and
  the base embeddings of a photo and its mirror are averaged before the gap (test-time
  augmentation: twice the queries).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from faceleaks.attacks.membership.consistency import (consistency_gaps, fit_surrogate, normalise_rows,
                                                      precise_centered_log_posterior)
from faceleaks.config import ExperimentConfig, config_from_dict
from faceleaks.evaluation.attacker import TeacherPublicBase
from faceleaks.evaluation.ceiling import ceiling_map, ceiling_statistics
from faceleaks.evaluation.dataset import prepare_data
from faceleaks.evaluation.inclusion_pool import candidate_pool, query_set
from faceleaks.evaluation.inclusion_scoring import assign_members, choose_n_victims
from faceleaks.evaluation.inclusion_victims import MemoPublicBase, _box, victim_jobs
from faceleaks.evaluation.owner import build_students
from faceleaks.metrics import auc_score, bootstrap_people_replicates
from faceleaks.models.dlib_teacher import dlib_base_teacher, finetune_dlib_teacher
from faceleaks.models.training import configure_torch
from faceleaks.progress import set_enabled
from faceleaks.seeding import make_rng


def _flip(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images[:, :, ::-1, :])


def _z(box, images: np.ndarray, flip: bool) -> np.ndarray:
    z = precise_centered_log_posterior(box.query(images).values)
    return (z + precise_centered_log_posterior(box.query(_flip(images)).values)) / 2.0 if flip else z


def _e(base, images: np.ndarray, flip: bool) -> np.ndarray:
    e = normalise_rows(np.asarray(base.embed(images), dtype=np.float64))
    return normalise_rows(e + normalise_rows(np.asarray(base.embed(_flip(images)), dtype=np.float64))) if flip else e


def _gaps(box, base, targets: np.ndarray, groups, pool: np.ndarray, flip: bool) -> np.ndarray:
    surrogate = fit_surrogate(_e(base, pool, flip), _z(box, pool, flip))
    return consistency_gaps(_z(box, targets, flip), surrogate.predict(_e(base, targets, flip)), groups)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--victims", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--recipe", default="regularised")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, default=None,
                    help="write each victim's arrays (box log-posteriors and base embeddings of targets and pool) here "
                         "and skip the variants")
    args = ap.parse_args()
    set_enabled(False)
    cache = Path("~/.cache/faceleaks").expanduser()
    cfg = config_from_dict({"seed": args.seed, "teacher": {"recipe": args.recipe}}, ExperimentConfig())
    configure_torch(cfg.runtime.threads)
    data = prepare_data(cfg, out_dir=Path(tempfile.mkdtemp()), cache_dir=cache)
    pool = candidate_pool(data, cfg, cache_dir=cache)
    queries = query_set(pool, (args.k,))
    n = choose_n_victims(pool.eligible(5), seed=cfg.seed)
    is_member = assign_members(len(pool.people), n, seed=cfg.seed)
    people, groups = queries.groups[args.k]
    ref = data.photos(data.split.reference_pool)
    sub = np.sort(make_rng(cfg.seed).choice(len(ref.images), size=1000, replace=False))
    base = MemoPublicBase(TeacherPublicBase(dlib_base_teacher(cfg.teacher, cache_dir=cache, name="attacker-dlib-base")))
    idx = np.concatenate(groups)
    local = np.split(np.arange(len(idx)), np.cumsum([len(g) for g in groups])[:-1])
    scores: dict[str, list[np.ndarray]] = {"pool1000": [], "pool4000": [], "flip": [], "flip4000": [], "ceiling": []}
    labels, who = [], []
    for v in args.victims:
        job = victim_jobs(pool, is_member[v:v + 1], cfg, start=v)[0]
        teacher = finetune_dlib_teacher(job.chips, job.identities, job.image_ids, cfg.teacher, seed=job.seed,
                                        cache_dir=cache, name=job.name)
        student = build_students(teacher, data, cfg, shadow=False, prefix=job.name, names=("lfw-identity",))
        box, _ = _box(student["lfw-identity"][0], cfg)
        targets = queries.images[idx]
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            np.savez(args.save / f"victim{v:03d}.npz", zt=_z(box, targets, False), et=_e(base, targets, False),
                     zp=_z(box, ref.images, False), ep=_e(base, ref.images, False), pool_ids=ref.identities,
                     sub=sub, people=people, is_member=is_member[v, people], k=args.k)
            print(f"victim {v}: saved", flush=True)
            continue
        scores["pool1000"].append(_gaps(box, base, targets, local, ref.images[sub], False))
        scores["pool4000"].append(_gaps(box, base, targets, local, ref.images, False))
        scores["flip"].append(_gaps(box, base, targets, local, ref.images[sub], True))
        scores["flip4000"].append(_gaps(box, base, targets, local, ref.images, True))
        mapping = ceiling_map(teacher.embed, base.embed, ref.images)
        scores["ceiling"].append(np.array(ceiling_statistics(teacher.embed, base.embed, mapping, queries.images,
                                                             {args.k: groups})[args.k]["consistency_gap"]))
        labels.append(is_member[v, people])
        who.append(people)
        print(f"victim {v}: done", flush=True)
    if args.save is not None:
        return
    y, g = np.concatenate(labels).astype(int), np.concatenate(who)
    for name, s in scores.items():
        s = np.concatenate(s)
        aucs, _ = bootstrap_people_replicates(y, s, groups=g, fprs=(0.01,), n_bootstrap=500, seed=0)
        lo, hi = np.quantile(aucs, [0.025, 0.975])
        print(f"{name:10s} AUC {auc_score(y, s):.3f} [{lo:.3f}, {hi:.3f}]  ({len(y)} decisions, k={args.k})")


if __name__ == "__main__":
    main()
