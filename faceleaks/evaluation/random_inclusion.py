"""Low-FPR membership evaluation by random inclusion: N victim teachers, each attacked with the others.

The LiRA paper's protocol (Carlini et al. 2022, arXiv 2112.03570, Sec. V-A [paper]) at identity
level [reconstructed]:

1. a candidate pool of people no other role uses (``evaluation.inclusion_pool``);
2. N victim teachers, each fine-tuned with the run's recipe (``cfg.teacher``) on a seeded random
   half of the pool (``inclusion_scoring.assign_members``), so each person is a member of about
   half of them, with students built as the owner builds them (``evaluation.inclusion_victims``);
3. each victim attacked through its sealed student box with the other N - 1 victims as its
   shadow models (leave-one-out, online and offline LiRA: no extra training), at each k >= 2 on
   the first k of each person's training photos; beside it the no-shadow naive score (the
   statistic itself);
4. every (victim, person) decision pooled: AUC and TPR at 1 % / 0.1 % FPR with intervals from a
   bootstrap over people, a log-log ROC, and an empirical identity-level epsilon lower bound at
   delta = 1e-5 (threshold chosen on the first half of the victims, counted on the others);
5. the negative control: dlib's unmodified model with students (nobody is a member), scored with
   the same shadows and each victim's labels; its AUC must be 0.5 within its interval.

N is chosen (``n_victims=None``) as the fewest victims giving ``target_nonmember_decisions``
(3,000) non-member decisions at k = 5, so TPR at 0.1 % FPR rests on at least 3 false positives.
A purpose-built path, not N runs: each box's statistics are computed once and reused by every
victim's leave-one-out attack.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceleaks.attacks.membership.identity_stats import POOL_STATISTICS
from faceleaks.config import ExperimentConfig
from faceleaks.errors import ConfigError
from faceleaks.evaluation.attacker import TeacherPublicBase
from faceleaks.evaluation.dataset import prepare_data
from faceleaks.evaluation.inclusion_pool import InclusionPool, candidate_pool, query_set
from faceleaks.evaluation.inclusion_results import InclusionCost, InclusionRecord, InclusionRow, PoolSummary
from faceleaks.evaluation.inclusion_scoring import (assign_members, choose_n_victims, loo_lira_scores,
                                                    nonmember_decisions, pool_decisions, summarise_decisions)
from faceleaks.evaluation.inclusion_victims import (MemoPublicBase, StatisticResources, control_statistics,
                                                    train_victims, victim_jobs, victim_statistics)
from faceleaks.evaluation.owner import Timer
from faceleaks.models.dlib_teacher import dlib_base_teacher
from faceleaks.models.training import configure_torch
from faceleaks.progress import track

__all__ = ["run_random_inclusion", "TARGET_NONMEMBER_DECISIONS"]

TARGET_NONMEMBER_DECISIONS = 3000
"""Non-member decisions at k = 5 the automatic N aims for: 0.1 % FPR then rests on >= 3 false positives."""


def _check(cfg: ExperimentConfig, n_victims: int | None, statistics: tuple[str, ...]) -> tuple[int, ...]:
    """The ks audited (those >= 2); ``ConfigError`` for settings the protocol cannot run."""
    if cfg.teacher.kind != "dlib":
        raise ConfigError(f"random inclusion fine-tunes dlib victims; teacher kind {cfg.teacher.kind!r} is not "
                          "supported: use --teacher dlib")
    if n_victims is not None and n_victims < 4:
        raise ConfigError(f"--victims must be >= 4 (each victim needs >= 3 others as shadows), got {n_victims}")
    ks = tuple(sorted({k for k in cfg.attack.ks if k >= 2}))
    if not ks or not statistics:
        raise ConfigError(f"random inclusion needs a k >= 2 in attack.ks (got {cfg.attack.ks}) and a statistic")
    return ks


def run_random_inclusion(cfg: ExperimentConfig, *, out_dir: Path, cache_dir: Path, n_victims: int | None = None,
                         statistics: tuple[str, ...] | None = None, students: tuple[str, ...] = ("lfw-identity",),
                         target_nonmember_decisions: int = TARGET_NONMEMBER_DECISIONS,
                         member_fraction: float = 0.5, max_pool_people: int | None = None) -> InclusionRecord:
    """Run the N-victim evaluation; per-victim results go to ``out_dir/inclusion-victims/``.

    Parameters
    ----------
    cfg : the run's settings (teacher recipe, students, output kind, ks, FPRs, bootstrap, executor)
    out_dir, cache_dir : output folder (``split.json``, per-victim files) and the model/chip cache
    n_victims : N >= 4, or None to choose it for ``target_nonmember_decisions`` at k = 5
    statistics : identity statistics for LiRA (``IdentityStatistics`` names: ``compactness``, or
        ``consistency_gap`` / ``fisher_gap``, which also need the split's reference pool and the public
        dlib base); None: all three on a posterior API with a reference pool, else ``compactness``
    students : which of the owner's students are attacked (``lfw-identity``, ``utk-age``)
    member_fraction : share of the pool each victim trains on
    max_pool_people : keep a seeded subset of the pool of this many people (None: the whole pool)

    Returns
    -------
    InclusionRecord (write it with ``report.inclusion.write_inclusion_report``)

    Raises
    ------
    ConfigError
        A teacher kind other than ``dlib``, N < 4, no k >= 2, or an unknown student.
    DataError
        Missing data or a pool of fewer than 4 people.
    """
    if statistics is None:
        statistics = ("compactness", "consistency_gap", "fisher_gap") if cfg.attack.output == "posterior" \
            and cfg.split.n_reference_pool else ("compactness",)
    ks = _check(cfg, n_victims, statistics)
    t0, timer, notes = time.perf_counter(), Timer(), []
    configure_torch(cfg.runtime.threads)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with timer("data"):
        data = prepare_data(cfg, out_dir=Path(out_dir), cache_dir=Path(cache_dir))
        pool = candidate_pool(data, cfg, cache_dir=Path(cache_dir), max_people=max_pool_people)
        queries = query_set(pool, ks)
    k_target = 5 if 5 in ks else max(ks)
    if n_victims is None:
        n_victims = choose_n_victims(pool.eligible(k_target), seed=cfg.seed, target=target_nonmember_decisions,
                                     fraction=member_fraction)
    is_member = assign_members(len(pool.people), n_victims, seed=cfg.seed, fraction=member_fraction)
    found = nonmember_decisions(is_member, pool.eligible(k_target))
    if found < target_nonmember_decisions:
        notes.append(f"{n_victims} victims give {found} non-member decisions at k={k_target}, fewer than "
                     f"{target_nonmember_decisions}: TPR at 0.1 % FPR rests on fewer than 3 false positives")
        warnings.warn(notes[-1], stacklevel=2)
    with timer("victims-train"):
        n_trained, cached = train_victims(pool, is_member, cfg, cache_dir=Path(cache_dir))
    kw = {"statistics": tuple(statistics), "students": tuple(students),
          "resources": _resources(data, cfg, tuple(statistics), Path(cache_dir))}
    with timer("victims-measure"):
        victims = [victim_statistics(v, victim_jobs(pool, is_member[v:v + 1], cfg, start=v)[0], data, cfg, queries,
                                     is_member[v], cache_dir=Path(cache_dir), out_dir=Path(out_dir),
                                     was_cached=v in cached, **kw)
                   for v in track(range(n_victims), "victims: students and statistics")]
    with timer("control"):
        control, _, _ = control_statistics(data, cfg, queries, cache_dir=Path(cache_dir), **kw)
    with timer("scoring"):
        rows = _rows([s.values for s in victims], control, is_member, queries, cfg, tuple(statistics))
    seconds = time.perf_counter() - t0
    records = tuple(s.record for s in victims)
    return InclusionRecord(
        seed=cfg.seed, config=cfg.to_dict(), recipe=cfg.teacher.resolved_recipe.name, n_victims=n_victims,
        target_nonmember_decisions=target_nonmember_decisions,
        member_fraction=member_fraction, statistics=tuple(statistics), pool=_pool_summary(pool, ks),
        victims=records, rows=tuple(rows), cost=_cost(records, pool, ks, cfg, seconds, n_trained),
        timings_s=timer.timings, warnings=tuple(notes))


def _resources(data, cfg: ExperimentConfig, statistics: tuple[str, ...], cache_dir: Path) -> StatisticResources | None:
    """The public dlib base and the split's reference pool, when a statistic needs them (else None)."""
    if not set(statistics) & set(POOL_STATISTICS):
        return None
    if not data.split.reference_pool:
        raise ConfigError(f"statistics {statistics} need the attacker's reference pool: set split.n_reference_pool > 0")
    pool = data.photos(data.split.reference_pool)
    base = MemoPublicBase(TeacherPublicBase(dlib_base_teacher(cfg.teacher, cache_dir=cache_dir,
                                                              name="attacker-dlib-base")))
    return StatisticResources(base, pool.images, pool.identities, seed=cfg.seed)


def _rows(victims: list[dict], control: dict, is_member: np.ndarray, queries, cfg: ExperimentConfig,
          statistics: tuple[str, ...]) -> list[InclusionRow]:
    """Leave-one-out LiRA (online, offline) and the naive statistic, victim and control, per student and k."""
    n, recipe = len(victims), cfg.teacher.resolved_recipe.name
    rows = []
    for student in control:
        for k, (people, _) in sorted(queries.groups.items()):
            members = is_member[:, people]
            for stat in statistics:
                stats = np.array([v[student][k][stat] for v in victims], dtype=np.float64)
                ctrl = np.tile(np.array(control[student][k][stat], dtype=np.float64), (n, 1))
                attacks = {f"lira-online-{stat}@k={k}": (True, n - 1), f"lira-offline-{stat}@k={k}": (False, n - 1),
                           f"{stat}@k={k}": (None, 0)}
                for name, (online, n_shadow) in attacks.items():
                    for teacher, values in (("victim", stats), ("control", ctrl)):
                        scores = values if online is None else loo_lira_scores(stats, members, online=online,
                                                                              scored=values)
                        row = summarise_decisions(
                            pool_decisions(scores, members, people), attack=name, teacher=teacher, student=student,
                            k=k, n_victims=n, n_shadow_models=n_shadow, fprs=cfg.attack.fprs,
                            n_bootstrap=cfg.attack.n_bootstrap, seed=cfg.seed)
                        rows.append(replace(row, recipe=recipe if teacher == "victim" else "base"))
    return rows


def _pool_summary(pool: InclusionPool, ks: tuple[int, ...]) -> PoolSummary:
    return PoolSummary(people=pool.people, n_photos=tuple(len(pool.photos[p]) for p in pool.people),
                       n_train_photos=tuple(pool.n_train[p] for p in pool.people),
                       eligible={k: int(pool.eligible(k).sum()) for k in ks}, excluded_roles=pool.excluded_roles,
                       min_photos=min(len(v) for v in pool.photos.values()))


def _cost(records, pool: InclusionPool, ks, cfg: ExperimentConfig, seconds: float, n_trained: int) -> InclusionCost:
    train = [r.train_seconds for r in records]
    audited = int(pool.eligible(min(ks)).sum()) * len(records)  # (victim, person) pairs audited at some k
    return InclusionCost(seconds=round(seconds, 2), train_seconds=None if None in train else round(sum(train), 2),
                         n_trained_this_run=n_trained, seconds_per_victim=round(seconds / len(records), 3),
                         seconds_per_audited_identity=round(seconds / max(audited, 1), 5),
                         victim_queries_per_audited_identity=round(
                             float(np.mean([r.n_queries for r in records])) * len(records) / max(audited, 1), 3),
                         executor=cfg.runtime.executor, workers=cfg.runtime.workers)
