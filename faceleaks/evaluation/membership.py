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
from faceleaks.data.splits import n_train_photos
from faceleaks.errors import DataError
from faceleaks.evaluation.attacker import SETTINGS, AttackerData, PhotoSource
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

    def warn(self, msg: str) -> None:
        """Warn and keep the text for ``results.json``."""
        warnings.warn(msg, stacklevel=3)
        self.caught.append(msg)


def evaluation_lists(data: Dataset, setting: str, seed: int, *,
                     photos: str = "half") -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Members' photos for ``setting`` and non-members' photos, each person's list shuffled (seeded).

    ``photos``: which of a member's photos its teacher trained on (``TeacherRecipe.photos``).
    Returns (members, nonmembers): identity -> readable photo ids. ``training-photos``: the
    member's training photos (the split's ``member_train`` under "half", all under "all");
    ``unseen-photos``: the rest (empty under "all"). Non-members: all their photos.
    """
    rng = make_rng(derive_seed(seed, "eval-order", setting))
    split = data.split
    have = set(data.faces.image_ids.tolist())

    def shuffled(ids: list[str]) -> list[str]:
        ids = [i for i in ids if i in have]
        return [ids[i] for i in rng.permutation(len(ids))]

    def member_photos(m: str) -> list[str]:
        if photos == "all":
            return split.photos[m] if setting == "training-photos" else []
        return split.member_train[m] if setting == "training-photos" else split.member_heldout(m)

    members = {m: shuffled(member_photos(m)) for m in sorted(split.identities("member"))}
    nonmembers = {n: shuffled(split.photos[n]) for n in sorted(split.identities("nonmember"))}
    return members, nonmembers


def setting_photos(n_photos: int, setting: str, train_fraction: float, photos: str = "half") -> int:
    """How many photos a member with ``n_photos`` photos has in ``setting`` under the recipe's ``photos``:
    ``training-photos`` its training photos (``n_train_photos`` under "half", all under "all"), else the rest.

    Examples
    --------
    >>> [setting_photos(21, s, 0.5, p) for p in ("half", "all") for s in ("training-photos", "unseen-photos")]
    [10, 11, 21, 0]
    """
    n_train = n_photos if photos == "all" else n_train_photos(n_photos, train_fraction)
    return n_train if setting == "training-photos" else n_photos - n_train


def held_photos(data: Dataset, setting: str, cfg: ExperimentConfig) -> dict[str, list[str]]:
    """The photos of each audited person that the attacker's IN shadow teachers train on.

    ``training-photos``: the photos the attacker queries come from this set (LiRA's classic IN):
    a member's training photos (half, or all under the recipe's ``photos = "all"``), and as many
    of a non-member. ``unseen-photos``: the query photos stay unseen by the IN shadows too, so they
    get every photo except the first ``min(max k, n - n_train)`` of the query list; nothing under
    "all" (no unseen photos). Members and non-members with the same photo count get the same number
    of photos, or LiRA would rank that difference, not membership.
    """
    photos = cfg.teacher.resolved_recipe.photos
    if setting == "unseen-photos" and photos == "all":
        return {}
    members, nonmembers = evaluation_lists(data, setting, cfg.seed, photos=photos)
    have = set(data.faces.image_ids.tolist())
    kmax = max(cfg.attack.ks)
    out = {}
    for p, ids in {**members, **nonmembers}.items():
        n = len(data.split.photos[p])
        n_train = setting_photos(n, "training-photos", cfg.split.member_train_fraction, photos)
        if setting == "training-photos":
            out[p] = ids[:n_train]
        else:
            queried = set(ids[: n - n_train][:kmax])
            out[p] = [i for i in data.split.photos[p] if i in have and i not in queried]
    return out


def eligible_first_k(lists: dict[str, list[str]], k: int, totals: dict[str, int], train_fraction: float, *,
                     setting: str, photos: str = "half") -> dict[str, list[str]]:
    """First k photos (of ``lists``: identity -> photo ids) of each identity eligible at k in ``setting``.

    Eligible: a member with the identity's photo count (``totals``) would have at least k photos in
    ``setting`` (``setting_photos``: k training photos for ``training-photos``, whether or not any
    are held out; k held-out ones for ``unseen-photos``). One rule for members and non-members keeps
    the groups alike in photo counts (famous people have more photos, which would otherwise leak).
    """
    return {p: ids[:k] for p, ids in lists.items()
            if len(ids) >= k and setting_photos(totals[p], setting, train_fraction, photos) >= k}


def _sample_photos(lists: dict[str, list[str]], n_max: int, rng: np.random.Generator,
                   per_identity: int) -> dict[str, list[str]]:
    """At most ``per_identity`` photos of each identity (equal weight per person), ``n_max`` in all."""
    flat = [(p, i) for p, ids in lists.items() for i in ids[:per_identity]]
    keep = sorted(rng.permutation(len(flat))[:n_max])
    out: dict[str, list[str]] = {}
    for j in keep:
        out.setdefault(flat[j][0], []).append(flat[j][1])
    return out


def _query_order(identity_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A seeded permutation of the rows that keeps each identity's photos in their given order.

    Members and non-members are stacked group by group; without this the order in which photos
    reach the victim would carry the label. Identity-level attacks take each person's first k
    photos, so the order within a person is kept.
    """
    perm = rng.permutation(len(identity_ids))
    order = np.empty(len(identity_ids), dtype=np.int64)
    for person in np.unique(identity_ids):
        rows = np.flatnonzero(identity_ids == person)
        slots = np.flatnonzero(np.isin(perm, rows))  # ascending positions
        order[slots] = rows
    return order


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
               shadows: Sequence[ShadowModel]) -> list[MembershipReport]:
    """Fit and score every planned attack for one audit; metrics per attack."""
    cfg = plan.cfg
    src = PhotoSource(plan.data.photos)
    images, idents, image_ids = src.stack({**audit.members, **audit.nonmembers})
    order = _query_order(idents, make_rng(derive_seed(cfg.seed, "query-order", *audit.context.values(),
                                                      audit.level.value, str(audit.k))))
    images, idents, image_ids = images[order], idents[order], image_ids[order]
    truth = audit.truth(image_ids)
    groups = dict(zip(image_ids.tolist(), idents.tolist())) if audit.level is Level.INSTANCE else None
    attacks = plan_attacks(cfg.attack.membership, level=audit.level, k=audit.k, output_kind=box.output_kind,
                           has_public_base=plan.public_base is not None, has_shadows=bool(shadows), seed=cfg.seed)
    reports = []
    for attack in attacks:
        t0 = time.perf_counter()
        try:
            attack.fit(refs, public_base=plan.public_base, shadows=shadows)
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
    pick = (lambda lists: lists) if sample is None else (lambda lists: _sample_photos(lists, sample[1], sample[0],
                                                                                     sample[2]))
    # the draws happen in this order: victim references, shadow members, shadow non-members
    victim_refs = pick(attacker.photos)
    return [src.reference_set(box, {}, victim_refs), src.reference_set(shadow_box, pick(shadow_in), pick(shadow_out))]


def attack_student(box: BlackBox, shadow_box: BlackBox, plan: AttackPlan, context: dict[str, str]) -> list[MembershipReport]:
    """Every attack, setting and k against one victim box, calibrated with the attacker's shadow box.

    ``context``: {"teacher": role, "student": name}, copied into every report.
    """
    cfg, split = plan.cfg, plan.data.split
    rng = make_rng(derive_seed(cfg.seed, "instance-sample", *context.values()))
    n_max, per = cfg.attack.n_instance_max, cfg.attack.instance_photos_per_identity
    reports: list[MembershipReport] = []
    recipe = cfg.teacher.resolved_recipe
    for setting in SETTINGS:
        if setting == "unseen-photos" and not recipe.has_unseen_photos:
            plan.warn(f"unseen-photos skipped: the {recipe.name!r} recipe trains on all of each member's photos "
                      f"(teacher.train_photos = 'all'), so no member has held-out photos")
            continue
        members, nonmembers = evaluation_lists(plan.data, setting, cfg.seed, photos=recipe.photos)
        here = {**context, "setting": setting, "recipe": cfg.teacher.recipe_name(context["teacher"])}
        refs = _references(plan, box, shadow_box, setting, (rng, n_max, per))
        audit = _Audit(Level.INSTANCE, 1, _sample_photos(members, n_max, rng, per),
                       _sample_photos(nonmembers, n_max, rng, per), here)
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
            reports += _run_audit(_Audit(Level.IDENTITY, k, mk, nk, here), refs, box, plan, shadows)
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
