"""The attacker's membership evaluation: whom to audit, with which photos, and the attack loop.

For each student the attacker can query, each setting (``training-photos``: the photos the
teacher trained on; ``unseen-photos``: other photos of the members) and each k, the evaluation
draws the audited people's photos from the split (ground truth stays here: attacks get photos,
identity ids and black boxes, never the member list), builds the attacker's references, runs
every planned attack through the same ``fit``/``score`` contract and joins the scores with the
truth by id [paper, abstract; protocol reconstructed].
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from faceleaks.attacks.base import Level, PublicBase, ReferenceSet, ShadowModel
from faceleaks.attacks.registry import plan_attacks
from faceleaks.config import ExperimentConfig
from faceleaks.data.splits import photo_identity
from faceleaks.errors import DataError
from faceleaks.evaluation.attacker import AttackerData, PhotoSource
from faceleaks.evaluation.audited import (SETTINGS, eligible_first_k, evaluation_lists, held_photos,
                                          query_order, sample_photos, setting_photos)
from faceleaks.evaluation.dataset import Dataset
from faceleaks.evaluation.results import MembershipReport
from faceleaks.evaluation.scoring import evaluate_scores
from faceleaks.seeding import derive_seed, make_rng
from faceleaks.serving.protocol import BlackBox

__all__ = ["AttackPlan", "evaluation_lists", "setting_photos", "eligible_first_k", "held_photos", "attack_student"]


@dataclass
class AttackPlan:
    """What the attacker brings to every student of one run.

    Attributes
    ----------
    data : the owner's data; only photo lookups and the split's truth for scoring are used here
    attacker : the attacker's reference identities and shadow split
    public_base : the public model the teacher was fine-tuned from (None for ``scratch``)
    lira_shadows : (setting, student) -> shadow students of the shadow teachers, or empty
    caught : receives the text of every warning raised while attacking
    """

    data: Dataset
    attacker: AttackerData
    cfg: ExperimentConfig
    public_base: PublicBase | None = None
    lira_shadows: dict[tuple[str, str], list[ShadowModel]] = field(default_factory=dict)
    caught: list[str] = field(default_factory=list)
    _pool: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def pool_faces(self) -> tuple[np.ndarray, np.ndarray]:
        """The reference pool's chips (n, S, S, 3) uint8 and identities (n,), stacked once per run
        (grouped by person) and shared by every box's ``ReferenceSet``."""
        if self._pool is None:
            by_person: dict[str, list[str]] = {}
            for image_id in self.attacker.pool:
                by_person.setdefault(photo_identity(image_id), []).append(image_id)
            images, identities, _ = PhotoSource(self.data.photos).stack(by_person)
            self._pool = (images, identities)
        return self._pool

    def warn(self, msg: str) -> None:
        """Warn and keep the text for ``results.json``."""
        warnings.warn(msg, stacklevel=3)
        self.caught.append(msg)


@dataclass(frozen=True)
class _Audit:
    """One evaluation: level, k, the audited people's photos and the truth joined later by id."""

    level: Level
    k: int
    members: dict[str, list[str]]
    nonmembers: dict[str, list[str]]
    context: dict[str, str]

    def truth(self, image_ids: np.ndarray) -> dict[str, bool]:
        """id -> is member: photo ids at INSTANCE level, identity ids at IDENTITY level."""
        if self.level is Level.INSTANCE:
            truth = dict.fromkeys(image_ids.tolist(), False)
            truth.update(dict.fromkeys([i for ids in self.members.values() for i in ids], True))
            return truth
        return {**dict.fromkeys(self.nonmembers, False), **dict.fromkeys(self.members, True)}

    def n_photos(self) -> dict[str, int]:
        return {"member": sum(map(len, self.members.values())),
                "nonmember": sum(map(len, self.nonmembers.values()))}


def _run_audit(audit: _Audit, refs: Sequence[ReferenceSet], box: BlackBox, plan: AttackPlan,
               shadows: Sequence[ShadowModel], pool: ReferenceSet | None = None) -> list[MembershipReport]:
    """Fit and score every planned attack for one audit; metrics per attack.

    ``pool``: the attacker's reference pool queried on ``box`` (identity level), for the attacks
    that need it (base-model surrogates); None leaves those attacks out.
    """
    cfg = plan.cfg
    src = PhotoSource(plan.data.photos)
    images, idents, image_ids = src.stack({**audit.members, **audit.nonmembers})
    order = query_order(idents, make_rng(derive_seed(cfg.seed, "query-order", *audit.context.values(),
                                                      audit.level.value, str(audit.k))))
    images, idents, image_ids = images[order], idents[order], image_ids[order]
    truth = audit.truth(image_ids)
    groups = dict(zip(image_ids.tolist(), idents.tolist())) if audit.level is Level.INSTANCE else None
    attacks = plan_attacks(cfg.attack.membership, level=audit.level, k=audit.k, output_kind=box.output_kind,
                           has_public_base=plan.public_base is not None, has_shadows=bool(shadows),
                           has_pool=pool is not None, seed=cfg.seed)
    reports = []
    for attack in attacks:
        t0 = time.perf_counter()
        try:
            attack.fit(refs, public_base=plan.public_base, shadows=shadows, pool=pool)
            scores = attack.score(box, images, identity_ids=idents, image_ids=image_ids)
        except DataError as err:
            if "shadows" not in attack.needs:
                raise
            plan.warn(f"{attack.name} / {audit.context['student']} / {audit.context['setting']}: skipped ({err})")
            continue
        # shadow models behind the scores: the shadow teachers, or the one shadow student a classifier learns on
        n_shadow_models = len(shadows) if "shadows" in attack.needs else int(attack.name.startswith("shadow"))
        reports.append(evaluate_scores(
            scores, truth, k=audit.k, n_photos=audit.n_photos(), n_queries=scores.n_queries,
            fprs=cfg.attack.fprs, n_bootstrap=cfg.attack.n_bootstrap,
            seed=derive_seed(cfg.seed, "bootstrap", scores.attack), caught=plan.caught, groups=groups,
            seconds=time.perf_counter() - t0, n_shadow_models=n_shadow_models, **audit.context))
    return reports


def _references(plan: AttackPlan, box: BlackBox, shadow_box: BlackBox, setting: str,
                sample: tuple[np.random.Generator, int, int] | None) -> list[ReferenceSet]:
    """Known non-members on the victim box, and the shadow student's members and non-members.

    ``sample``: (generator, n_max, photos per identity) to subsample photos for per-photo attacks.
    """
    attacker, src = plan.attacker, PhotoSource(plan.data.photos)
    shadow_in = {r: attacker.shadow_train[r] if setting == "training-photos" else attacker.shadow_heldout(r)
                 for r in attacker.shadow_in}
    shadow_out = {r: attacker.photos[r] for r in attacker.shadow_out()}
    pick = (lambda lists: lists) if sample is None else (lambda lists: sample_photos(lists, sample[1], sample[0],
                                                                                     sample[2]))
    # the draws happen in this order: victim references, shadow members, shadow non-members
    victim_refs = pick(attacker.photos)
    return [src.reference_set(box, {}, victim_refs), src.reference_set(shadow_box, pick(shadow_in), pick(shadow_out))]


def _pool_reference(plan: AttackPlan, box: BlackBox) -> ReferenceSet | None:
    """The attacker's reference pool (known non-members, 1-2 photos each) to be queried on ``box``."""
    if not plan.attacker.pool:
        return None
    images, identities = plan.pool_faces()
    return ReferenceSet(box, images, identities, np.zeros(len(images), bool))


def attack_student(box: BlackBox, shadow_box: BlackBox, plan: AttackPlan, context: dict[str, str],
                   settings: Sequence[str] = SETTINGS) -> list[MembershipReport]:
    """Every attack, setting and k against one victim box, calibrated with the attacker's shadow box.

    ``context``: {"teacher": role, "student": name}, copied into every report. ``settings``: the
    photo settings to evaluate, a subset of ``SETTINGS`` (all by default).
    """
    cfg, split = plan.cfg, plan.data.split
    rng = make_rng(derive_seed(cfg.seed, "instance-sample", *context.values()))
    n_max, per = cfg.attack.n_instance_max, cfg.attack.instance_photos_per_identity
    reports: list[MembershipReport] = []
    recipe = cfg.teacher.resolved_recipe
    pool = _pool_reference(plan, box)
    for setting in [s for s in SETTINGS if s in settings]:
        if setting == "unseen-photos" and not recipe.has_unseen_photos:
            plan.warn(f"unseen-photos skipped: the {recipe.name!r} recipe trains on all of each member's photos "
                      f"(teacher.train_photos = 'all'), so no member has held-out photos")
            continue
        members, nonmembers = evaluation_lists(plan.data, setting, cfg.seed, photos=recipe.photos)
        here = {**context, "setting": setting, "recipe": cfg.teacher.recipe_name(context["teacher"])}
        refs = _references(plan, box, shadow_box, setting, (rng, n_max, per))
        audit = _Audit(Level.INSTANCE, 1, sample_photos(members, n_max, rng, per),
                       sample_photos(nonmembers, n_max, rng, per), here)
        reports += _run_audit(audit, refs, box, plan, ())
        refs = _references(plan, box, shadow_box, setting, None)
        totals = {p: len(split.photos[p]) for p in {**members, **nonmembers}}
        shadows = plan.lira_shadows.get((setting, context["student"]), [])
        for k in cfg.attack.ks:
            mk, nk = (eligible_first_k(lists, k, totals, cfg.split.member_train_fraction, setting=setting,
                                       photos=recipe.photos) for lists in (members, nonmembers))
            if len(mk) < 2 or len(nk) < 2:
                plan.warn(f"{context['student']} / {setting}: k={k} skipped, only {len(mk)} members and "
                          f"{len(nk)} non-members have {k} photos")
                continue
            reports += _run_audit(_Audit(Level.IDENTITY, k, mk, nk, here), refs, box, plan, shadows, pool)
    return reports


@contextmanager
def victim_endpoint(api: BlackBox, transport: str, name: str) -> Iterator[BlackBox]:
    """The victim as the attacker reaches it: in-process, or over real HTTP on 127.0.0.1."""
    if transport == "local":
        yield api
        return
    from faceleaks.serving.http import HttpBlackBox, serve_in_thread

    with serve_in_thread(api, name=name) as url:
        client = HttpBlackBox(url)
        try:
            yield client
        finally:
            client.close()
