"""Sensitive-attribute inference through black-box students, with little auxiliary data.

Threat model [paper, abstract: attributes "can be inferred ... even in the case where the adversary
has limited auxiliary information"; the protocol below is reconstructed]:

- the victim sends a face to a student built for another task (LFW identification or UTKFace
  age); the attacker observes the output (posterior, top-k or label), holds ``n`` labelled
  UTKFace faces per attribute value (``AttributeConfig.budgets``; ``all`` = the whole auxiliary
  pool) and may query the same student; ``cluster`` also learns from the unlabelled target outputs;
- variants: ``cross-dataset`` (targets: LFW photos of people with no role in the membership
  split) and ``same-distribution`` (targets: other UTKFace photos). UTKFace auxiliary and target
  photos are disjoint, and disjoint from the students' UTKFace photos (``split.utk``);
- identity level: gender of LFW ``nonmember``/``reference`` people from the mean probabilities of
  k of their photos (truth: ``gender_person_majority``).

Baselines: ``prior-only`` (no model access) and ``white-box`` (the same attacks on the teacher's own
embeddings, all auxiliary labels; evaluation only). Target labels reach ``_score`` only, never an attack.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from faceleaks.attacks.attribute.aggregate import aggregate_guesses, first_k
from faceleaks.attacks.attribute.classifier import (AttributeAttack, AttributeGuesses, AttributeReferenceSet,
                                                    create_attribute_attack)
from faceleaks.attacks.attribute.registry import resolve_attribute_attacks
from faceleaks.attacks.base import Level
from faceleaks.config import ExperimentConfig
from faceleaks.data.attributes import LabelColumn, LabelledFaces, sample_budget
from faceleaks.errors import DataError, QueryError
from faceleaks.evaluation.attribute_results import (AttributeConfig, AttributeRecord, AttributeScore,
                                                    classification_metrics)
from faceleaks.evaluation.attribute_sets import AttributeSets, gather_attribute_sets, label_summaries
from faceleaks.evaluation.dataset import Dataset
from faceleaks.evaluation.owner import Timer, build_owner
from faceleaks.progress import track
from faceleaks.seeding import derive_seed
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.protocol import BlackBox, QueryResult
from faceleaks.serving.sealed import seal
from faceleaks.serving.wrappers import CountingBlackBox

__all__ = ["AttributeConfig", "ATTRIBUTES", "VARIANTS", "run_attribute_attacks",
           "run_attribute_experiment"]

log = logging.getLogger(__name__)

ATTRIBUTES = ("gender", "race", "age-group")
#: variant -> attributes scored on its targets (LFW targets for cross-dataset, UTKFace for same-distribution)
VARIANTS = {"cross-dataset": ("gender", "race"), "same-distribution": ("gender", "race", "age-group")}


class _BoxAccess:
    """The attacker's view: it queries its auxiliary faces through the box and observes the
    outputs of the target queries once (kept per target set, as an eavesdropper would)."""

    def __init__(self, box: BlackBox) -> None:
        self.box = box
        self._observed: dict[str, QueryResult] = {}

    def observe(self, group: LabelledFaces) -> QueryResult:
        if group.name not in self._observed:
            self._observed[group.name] = self.box.query(group.faces.images)
        return self._observed[group.name]

    def fit(self, attack: AttributeAttack, images, labels, n_classes: int, unlabelled) -> AttributeAttack:
        extra = None if unlabelled is None else self.observe(unlabelled)
        return attack.fit(AttributeReferenceSet(self.box, images, labels, n_classes), unlabelled=extra)

    def guess(self, attack: AttributeAttack, group: LabelledFaces) -> AttributeGuesses:
        return attack.infer_outputs(self.observe(group), ids=group.faces.image_ids)


class _NoAccess(_BoxAccess):
    """Prior-only baseline: the box refuses every query, so any access would fail loudly."""

    def guess(self, attack: AttributeAttack, group: LabelledFaces) -> AttributeGuesses:
        return attack.infer(self.box, group.faces.images, ids=group.faces.image_ids)


class _EmbeddingAccess:
    """White-box reference (evaluation only): the same attacks on the teacher's own embeddings."""

    def __init__(self, teacher) -> None:
        self.teacher = teacher  # Teacher.embed memoises by image content

    def _embed(self, images: np.ndarray) -> np.ndarray:
        return self.teacher.embed(images).astype(np.float64)

    def fit(self, attack: AttributeAttack, images, labels, n_classes: int, unlabelled) -> AttributeAttack:
        extra = None if unlabelled is None else self._embed(unlabelled.faces.images)
        return attack.fit_features(self._embed(images), labels, n_classes=n_classes, unlabelled=extra)

    def guess(self, attack: AttributeAttack, group: LabelledFaces) -> AttributeGuesses:
        p = attack.predict_proba_features(self._embed(group.faces.images))
        return AttributeGuesses(group.faces.image_ids.astype(str), p, p.argmax(axis=1).astype(np.int64), attack.name,
                                Level.INSTANCE, 0)


def _score(guesses: list[AttributeGuesses], truth: LabelColumn, meta: dict, s: AttributeConfig, seed: int,
           *, require_all: bool = True) -> AttributeScore:
    """Join each draw's guesses with the truth by id (known labels only) and compute the metrics.

    The bootstrap seed depends only on the target set, so all attacks and baselines on one set
    share their resamples (a paired comparison).
    """
    known = truth.keep_known()
    pos = {i: n for n, i in enumerate(guesses[0].ids.tolist())}
    if any(g.ids.tolist() != guesses[0].ids.tolist() for g in guesses):
        raise DataError("the draws' guesses are for different targets")
    missing = [i for i in known.ids.tolist() if i not in pos]
    if missing and require_all:
        raise DataError(f"{len(missing)} labelled targets have no guess (e.g. {missing[0]!r})")
    keep = np.array([i in pos for i in known.ids.tolist()], dtype=bool)
    rows = np.array([pos[i] for i in known.ids[keep].tolist()], dtype=np.int64)
    bseed = derive_seed(seed, "attribute-bootstrap", meta["variant"], meta["attribute"], meta["level"], str(meta["k"]))
    m = classification_metrics(known.labels[keep], np.stack([g.proba[rows] for g in guesses]),
                               np.stack([g.predicted[rows] for g in guesses]), len(truth.classes),
                               n_bootstrap=s.n_bootstrap, seed=bseed)
    return AttributeScore(**meta, n_targets=int(len(rows)), **dataclasses.asdict(m))


def _identity_rows(guesses: list[AttributeGuesses], people: LabelledFaces, meta: dict, s: AttributeConfig, seed: int):
    """Scores of the mean-probability guess per person from k photos, for each k in ``s.ks``."""
    rows = []
    identities = people.faces.identities
    for k in s.ks:
        idx = first_k(identities, k)
        if len(np.unique(identities[idx])) < 2:
            continue
        agg = [aggregate_guesses(AttributeGuesses(g.ids[idx], g.proba[idx], g.predicted[idx], g.attack, g.level,
                                                  g.n_queries), identities[idx]) for g in guesses]
        rows.append(_score(agg, people.labels["gender"], {**meta, "level": "identity", "k": int(k)}, s, seed,
                           require_all=False))
    return rows


def _fit_variants(access, name: str, aux_images, labels, n_classes: int, sets: AttributeSets, variants, seed: int) -> dict:
    """variant -> fitted attack; attacks without unlabelled queries are fitted once and shared."""
    out, shared = {}, None
    for v in variants:
        attack = create_attribute_attack(name, seed=seed)
        if attack.uses_unlabelled:
            out[v] = access.fit(attack, aux_images, labels, n_classes, sets.targets[v])
        else:
            shared = shared or access.fit(attack, aux_images, labels, n_classes, None)
            out[v] = shared
    return out


def _run(access, fixed: dict, attacks, budgets, identity_budget, sets: AttributeSets, s: AttributeConfig, seed: int):
    """(instance scores, identity scores) of ``attacks`` at every budget, attribute and variant.

    Each numeric budget is drawn ``s.n_draws`` times (nested across budgets within a draw); ``all``
    once. Scores pool the draws (``classification_metrics``).
    """
    scores, identity = [], []
    for attr in ATTRIBUTES:
        variants = [v for v in sets.targets if attr in VARIANTS[v]]
        col, n_classes = sets.aux.labels[attr], len(sets.aux.labels[attr].classes)
        for budget in budgets:
            draws = [sample_budget(col.labels, budget, n_classes, names=col.classes,
                                   seed=derive_seed(seed, "attribute-budget", attr, str(d)))
                     for d in range(1 if budget == "all" else s.n_draws)]
            for name in attacks:
                fitted = [_fit_variants(access, name, sets.aux.faces.images[idx], col.labels[idx], n_classes, sets,
                                        variants, derive_seed(seed, "attribute-attack", name, attr, str(budget), str(d)))
                          for d, idx in enumerate(draws)]
                meta = {**fixed, "attribute": attr, "level": "instance", "k": 1, "attack": name, "budget": str(budget),
                        "n_aux": int(len(draws[0])), "n_draws": len(draws),
                        "n_queries": int(len(draws[0])) if fixed["role"] == "attack" else 0}
                for v in variants:
                    tg = sets.targets[v]
                    guesses = [access.guess(f[v], tg) for f in fitted]
                    scores.append(_score(guesses, tg.labels[attr], {**meta, "variant": v}, s, seed))
                if attr == "gender" and budget == identity_budget and sets.identities and "cross-dataset" in variants:
                    guesses = [access.guess(f["cross-dataset"], sets.identities) for f in fitted]
                    identity += _identity_rows(guesses, sets.identities, {**meta, "variant": "cross-dataset"}, s, seed)
    return scores, identity


def _refuse(images: np.ndarray) -> np.ndarray:
    raise QueryError("the prior-only baseline has no model access, yet it queried a box")


def run_attribute_attacks(data: Dataset, students: dict, teacher, cfg: ExperimentConfig, *, cache_dir: Path,
                          seed: int, settings: AttributeConfig | None = None,
                          deploy: Callable[[BlackBox, int], BlackBox] | None = None) -> AttributeRecord:
    """Attribute inference against each victim student, with baselines and the identity level.

    Parameters
    ----------
    data : Dataset from ``pipeline.prepare_data`` (its ``split`` decides which photos are free)
    students : name -> Student or (Student, test accuracy), as ``pipeline.build_students`` returns
    teacher : the students' Teacher; used only for the white-box reference
    cfg : ExperimentConfig (``student.age_bins``, ``attack.output``/``top_k``, ``attributes`` if present)
    cache_dir : Path, where cropped photos are cached
    seed : int, drives every choice (pools, budgets, attacks, bootstrap)
    settings : AttributeConfig, default ``cfg.attributes`` or ``AttributeConfig()``
    deploy : optional ``(student's posterior box, n_classes) -> the API the attacker queries`` (an output
        defence, ``faceleaks defend``); its output kind replaces ``settings.outputs``, and the white-box
        reference, which no API changes, is not recomputed

    Raises
    ------
    DataError
        Too few UTKFace photos, or a budget larger than a class of the auxiliary pool.
    """
    s = settings if settings is not None else getattr(cfg, "attributes", None) or AttributeConfig()
    if not s.enabled:
        return AttributeRecord(seed, dataclasses.asdict(s), (), (), (), (), {}, {}, ("attribute attack disabled",))
    s = dataclasses.replace(s, attacks=resolve_attribute_attacks(s.attacks))  # ConfigError for an unknown name
    t0 = time.perf_counter()
    sets = gather_attribute_sets(data, cfg, s, Path(cache_dir), seed)
    for group in sets.groups():
        teacher.embed(group.faces.images)  # warm the teacher's memo with all threads
    times = {"attribute-data": round(time.perf_counter() - t0, 2)}
    with threadpool_limits(1):  # sklearn on small problems: BLAS/OpenMP threads only contend (10x slower here)
        return _attack_all(sets, students, teacher, cfg, s, seed, times, deploy)


def _api(student, output: str, cfg: ExperimentConfig, deploy) -> BlackBox:
    """The box the attacker queries: the student revealing ``output``, or behind ``deploy``."""
    if deploy is None:
        return reveal(LocalBlackBox(student), output, top_k=cfg.attack.top_k)
    return deploy(LocalBlackBox(student), len(student.classes))


def _attack_all(sets: AttributeSets, students: dict, teacher, cfg: ExperimentConfig, s: AttributeConfig, seed: int,
                times: dict[str, float], deploy=None) -> AttributeRecord:
    outputs = ("defended",) if deploy is not None else s.outputs or (cfg.attack.output,)
    t0 = time.perf_counter()
    scores, identity, queries = [], [], {}
    jobs = [(o, n, st[0] if isinstance(st, tuple) else st) for o in outputs for n, st in students.items()]
    for output, name, student in track(jobs, "attribute attacks"):
        api = _api(student, output, cfg, deploy)
        output = api.output_kind.value
        counting = CountingBlackBox(api)
        a, b = _run(_BoxAccess(seal(counting)), {"student": name, "output": output, "role": "attack"},
                    s.attacks, s.budgets, s.identity_budget, sets, s, seed)
        scores, identity, queries[f"{name}/{output}"] = scores + a, identity + b, counting.n_queries
    times["attribute-attacks"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    no_access = _NoAccess(seal(FunctionBlackBox(_refuse, input_size=teacher.input_size)))
    prior = _run(no_access, {"student": "-", "output": "none", "role": "prior-only"}, ("prior-only",), s.budgets,
                 s.identity_budget, sets, s, seed)
    white = ([], []) if deploy is not None else _run(  # the reference does not depend on the API: once, in run
        _EmbeddingAccess(teacher), {"student": "teacher-embedding", "output": "embedding", "role": "white-box"},
        s.attacks, ("all",), "all", sets, s, seed)
    times["attribute-baselines"] = round(time.perf_counter() - t0, 2)
    return AttributeRecord(seed, {**dataclasses.asdict(s), "outputs": list(outputs)}, tuple(scores),
                           tuple(prior[0] + white[0]), tuple(identity + prior[1] + white[1]), label_summaries(sets),
                           queries, times, tuple(sets.warnings))


def run_attribute_experiment(cfg: ExperimentConfig, *, out_dir: Path, cache_dir: Path,
                             settings: AttributeConfig | None = None) -> AttributeRecord:
    """The owner's pipeline (data, teacher, victim students, as ``run`` builds them), then
    ``run_attribute_attacks``.

    Writes ``split.json`` into ``out_dir``; returns the record with the pipeline's stage timings
    (seconds) added.
    """
    resolve_attribute_attacks((settings or cfg.attributes).attacks)  # fail on a bad name before training
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    timer = Timer()
    owner = build_owner(cfg, out_dir=Path(out_dir), cache_dir=Path(cache_dir), timer=timer, verify=False)
    record = run_attribute_attacks(owner.data, owner.students, owner.teacher, cfg, cache_dir=Path(cache_dir),
                                   seed=cfg.seed, settings=settings)
    return dataclasses.replace(record, timings_s={**timer.timings, **record.timings_s})
