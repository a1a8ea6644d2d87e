"""The victims of the random-inclusion run: fine-tuned on the executor, measured once, saved per victim.

Each victim teacher is fine-tuned with the run's recipe on its members' training photos
(``finetune_dlib_teachers``: local processes or Ray, each checkpoint cached as it arrives); its
students are built as the owner builds them (``owner.build_students``), and the identity
statistic of every audited pool person is computed once through each attacked student's sealed
box (``IdentityStatistics``, the object ``IdentityLiRAAttack`` scores with). Those values serve the
victim's own attack and, as a shadow, every other victim's. Each victim's values are saved
atomically under ``OUT/inclusion-victims/`` with a key of everything they depend on, so a killed
run resumes where it stopped. [reconstructed]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from faceleaks.attacks.base import PublicBase, ReferenceSet
from faceleaks.attacks.membership.consistency import GAP_ALPHAS
from faceleaks.attacks.membership.identity_stats import POOL_STATISTICS, IdentityStatistics
from faceleaks.attacks.membership.lira import DEFAULT_POOL_SIZE
from faceleaks.config import ExperimentConfig
from faceleaks.errors import ArtifactError, ConfigError
from faceleaks.evaluation.ceiling import CEILING_STUDENT, ceiling_map, ceiling_statistics
from faceleaks.evaluation.inclusion_pool import InclusionPool, QuerySet
from faceleaks.evaluation.inclusion_results import VictimRecord, VictimStatistics
from faceleaks.evaluation.jsonio import read_json, write_json
from faceleaks.memo import image_keys
from faceleaks.evaluation.owner import build_students
from faceleaks.models.dlib_parallel import FinetuneJob, finetune_dlib_teachers
from faceleaks.models.dlib_teacher import dlib_base_teacher, dlib_teacher_path, finetune_dlib_teacher
from faceleaks.seeding import derive_seed
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.sealed import seal
from faceleaks.serving.wrappers import CachingBlackBox, CountingBlackBox

__all__ = ["victim_name", "victim_jobs", "train_victims", "MemoPublicBase", "StatisticResources", "box_statistics",
           "victim_statistics", "control_statistics"]

log = logging.getLogger(__name__)


def victim_name(v: int) -> str:
    """Cache name of victim ``v``'s teacher (``inclusion-victim-007``)."""
    return f"inclusion-victim-{v:03d}"


def victim_jobs(pool: InclusionPool, is_member: np.ndarray, cfg: ExperimentConfig, *,
                start: int = 0) -> list[FinetuneJob]:
    """One fine-tuning job per row of ``is_member`` (victims ``start``, ``start + 1``, ...): its
    members' training photos, seed ``derive_seed(cfg.seed, name)``."""
    jobs = []
    for v, row in enumerate(is_member, start=start):
        ids = [i for p, keep in zip(pool.people, row) if keep for i in pool.train_ids([p])[p]]
        faces = pool.faces.subset(ids)
        name = victim_name(v)
        jobs.append(FinetuneJob(faces.images, faces.identities, faces.image_ids, derive_seed(cfg.seed, name), name))
    return jobs


def train_victims(pool: InclusionPool, is_member: np.ndarray, cfg: ExperimentConfig, *, cache_dir: Path,
                  chunk: int = 8) -> tuple[int, set[int]]:
    """Fine-tune every victim not yet cached, ``chunk`` at a time on ``cfg.runtime.executor``.

    Chunks bound the memory the jobs' chips take; each finished teacher is checkpointed as it
    arrives, so an interrupted run keeps them. Returns (teachers trained now, indices that were cached).
    """
    rt, trained, cached = cfg.runtime, 0, set()
    for start in range(0, len(is_member), chunk):
        jobs = victim_jobs(pool, is_member[start:start + chunk], cfg, start=start)
        for i, j in enumerate(jobs):
            if dlib_teacher_path(cfg.teacher, j.image_ids, j.seed, j.name, cache_dir).exists():
                cached.add(start + i)
        trained += finetune_dlib_teachers(jobs, cfg.teacher, cache_dir=cache_dir, backend=rt.executor,
                                          workers=rt.workers, ray_address=rt.ray_address)
    return trained, cached


def _box(student, cfg: ExperimentConfig) -> tuple[object, CountingBlackBox]:
    """The sealed box an attack sees (the student's API, cached), and the counter of images that reached it."""
    counting = CountingBlackBox(reveal(LocalBlackBox(student), cfg.attack.output, top_k=cfg.attack.top_k))
    return seal(CachingBlackBox(counting)), counting


class MemoPublicBase(PublicBase):
    """A public base that embeds each batch of images once (the same pool photos reach every box)."""

    def __init__(self, base: PublicBase) -> None:
        self._base, self._memo = base, {}

    def embed(self, images: np.ndarray) -> np.ndarray:
        key = b"".join(image_keys(images))
        if key not in self._memo:
            self._memo[key] = np.asarray(self._base.embed(images), dtype=np.float64)
        return self._memo[key]


@dataclass(frozen=True)
class StatisticResources:
    """What statistics beyond the naive ones need (``POOL_STATISTICS``: the consistency gap).

    Attributes
    ----------
    public_base : PublicBase, the attacker's copy of the public model
    pool_images : ndarray (n_pool, S, S, 3) uint8, the attacker's reference pool (people of no role)
    pool_ids : ndarray (n_pool,) str, the person in each pool photo
    pool_size : int or None, pool photos each box's surrogate is fitted on (seeded subsample)
    seed : int, seed of that subsample
    """

    public_base: PublicBase
    pool_images: np.ndarray
    pool_ids: np.ndarray
    pool_size: int | None = DEFAULT_POOL_SIZE
    seed: int = 0

    def for_box(self, box) -> dict:
        """``IdentityStatistics`` keyword arguments, the pool queried on ``box`` (its own surrogate)."""
        pool = ReferenceSet(box, self.pool_images, self.pool_ids, np.zeros(len(self.pool_ids), dtype=bool))
        return {"public_base": self.public_base, "pool": pool, "pool_size": self.pool_size, "seed": self.seed}


def box_statistics(box, queries: QuerySet, statistics: tuple[str, ...],
                   resources: StatisticResources | None = None) -> dict[int, dict[str, tuple[float, ...]]]:
    """k -> statistic -> its value for each person audited at k (``queries.groups[k][0]`` order).

    Computed by ``IdentityStatistics`` (the object ``IdentityLiRAAttack`` scores with) through
    ``box.query`` only. Statistics in ``POOL_STATISTICS`` need ``resources``; each box then gets its
    own surrogate, fitted on the pool photos queried on that box (none of them is a pool person).

    Raises
    ------
    ConfigError
        A pool statistic without ``resources``.
    """
    if set(statistics) & set(POOL_STATISTICS) and resources is None:
        raise ConfigError(f"statistics {sorted(set(statistics) & set(POOL_STATISTICS))} need the public base and the "
                          "reference pool (split.n_reference_pool > 0)")
    kwargs = resources.for_box(box) if set(statistics) & set(POOL_STATISTICS) else {}
    out = {}
    for k in sorted(queries.groups, reverse=True):  # largest k first: the smaller ones hit the box's cache
        _, groups = queries.groups[k]
        stats = IdentityStatistics(tuple(statistics), k, **kwargs)(box, queries.images, groups)
        out[k] = {name: tuple(float(x) for x in stats[:, j]) for j, name in enumerate(statistics)}
    return dict(sorted(out.items()))


def _key(cfg: ExperimentConfig, members: np.ndarray, queries: QuerySet, statistics: tuple[str, ...],
         students: tuple[str, ...], resources: StatisticResources | None) -> str:
    """Hash of everything a victim's statistics depend on (a saved file with another key is recomputed):
    settings, members, query photos, statistics and, for pool statistics, the pool photos, its
    subsample and the surrogate's alpha grid."""
    pool = None if resources is None else [hashlib.sha256(b"".join(image_keys(resources.pool_images))).hexdigest(),
                                           resources.pool_size, resources.seed, list(GAP_ALPHAS)]
    what = {"pool": pool, "teacher": asdict(cfg.teacher), "student": asdict(cfg.student), "split": asdict(cfg.split),
            "output": cfg.attack.output,
            "top_k": cfg.attack.top_k, "seed": cfg.seed, "members": np.flatnonzero(members).tolist(),
            "queries": queries.image_ids.tolist(), "ks": sorted(queries.groups), "statistics": list(statistics),
            "students": list(students), "ceiling": resources is not None}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _load(path: Path, key: str) -> VictimStatistics | None:
    """The saved statistics at ``path`` if they were computed for ``key``; None otherwise."""
    if not path.exists():
        return None
    try:
        saved = read_json(VictimStatistics, path)
    except ArtifactError as err:
        log.warning("recomputing %s: %s", path, err)
        return None
    return saved if saved.key == key else None


def _save(stats: VictimStatistics, path: Path) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    write_json(stats, tmp)
    os.replace(tmp, path)


def _measure(teacher, data, cfg: ExperimentConfig, queries: QuerySet, statistics, students, prefix: str,
             resources: StatisticResources | None) -> tuple[dict, dict[str, float], int]:
    """Students on ``teacher``, then the statistics through each attacked student's sealed box."""
    built = build_students(teacher, data, cfg, shadow=False, prefix=prefix, names=tuple(students))
    values, n_queries = {}, 0
    for name in students:
        box, counting = _box(built[name][0], cfg)
        values[name] = box_statistics(box, queries, statistics, resources)
        n_queries += counting.n_queries
    if resources is not None:  # the white-box reference line, on the owner's side (no queries)
        values[CEILING_STUDENT] = _ceiling(teacher, queries, statistics, resources)
    return values, {n: float(acc) for n, (_, acc) in built.items()}, n_queries


def _ceiling(teacher, queries: QuerySet, statistics: tuple[str, ...],
             resources: StatisticResources) -> dict[int, dict[str, tuple[float, ...]]]:
    """``evaluation.ceiling``'s white-box statistics of ``teacher`` for the audited groups (map fitted on
    the whole reference pool, as in a single run), restricted to ``statistics``."""
    mapping = ceiling_map(teacher.embed, resources.public_base.embed, resources.pool_images)
    found = ceiling_statistics(teacher.embed, resources.public_base.embed, mapping, queries.images,
                               {k: groups for k, (_, groups) in queries.groups.items()})
    return {k: {s: v[s] for s in statistics} for k, v in found.items()}


def victim_statistics(v: int, job: FinetuneJob, data, cfg: ExperimentConfig, queries: QuerySet, members: np.ndarray,
                      *, statistics: tuple[str, ...], students: tuple[str, ...], cache_dir: Path, out_dir: Path,
                      was_cached: bool, resources: StatisticResources | None = None) -> VictimStatistics:
    """Victim ``v``'s statistics: read back from ``out_dir`` if saved for the same settings, else computed.

    The teacher comes from the cache (``train_victims`` fine-tuned it); its students are built and
    queried; the result is saved atomically to ``out_dir/inclusion-victims/<name>.json``.
    """
    path = Path(out_dir) / "inclusion-victims" / f"{job.name}.json"
    key = _key(cfg, members, queries, statistics, students, resources)
    saved = _load(path, key)
    if saved is not None:
        return VictimStatistics(saved.key, VictimRecord(**{**asdict(saved.record), "resumed": True, "seconds": 0.0}),
                                saved.values)
    t0 = time.perf_counter()
    teacher = finetune_dlib_teacher(job.chips, job.identities, job.image_ids, cfg.teacher, seed=job.seed,
                                    cache_dir=cache_dir, name=job.name)
    values, accuracy, n_queries = _measure(teacher, data, cfg, queries, statistics, students, job.name, resources)
    record = VictimRecord(index=v, name=job.name, n_members=int(members.sum()), n_train_photos=len(job.image_ids),
                          train_seconds=teacher.info.get("train_seconds"), cached=was_cached,
                          student_accuracy=accuracy, n_queries=n_queries, seconds=round(time.perf_counter() - t0, 2))
    stats = VictimStatistics(key, record, values)
    _save(stats, path)
    return stats


def control_statistics(data, cfg: ExperimentConfig, queries: QuerySet, *, statistics: tuple[str, ...],
                       students: tuple[str, ...], cache_dir: Path,
                       resources: StatisticResources | None = None) -> tuple[dict, dict[str, float], int]:
    """The negative control: dlib's unmodified model with students, queried like every victim."""
    base = dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name="inclusion-control")
    return _measure(base, data, cfg, queries, statistics, students, "inclusion-control", resources)
