"""The end-to-end FaceLeaks experiment: teacher, students, black-box attacks, metrics.

Flow [paper, abstract; details reconstructed]: the owner trains a teacher on member identities
and students on it; the attacker, holding only black-box access to each student plus reference
identities it knows are non-members, runs per-photo (instance) and per-person (identity, k
photos) membership attacks. A negative control repeats every attack against students built on
a teacher that saw none of the evaluated identities (the attacker's shadow teacher).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceleaks.attacks.base import Level, PublicBase
from faceleaks.attacks.registry import create_attack
from faceleaks.config import ExperimentConfig
from faceleaks.evaluation.attacker import SETTINGS, AttackerData, PhotoSource, TeacherPublicBase, make_attacker_data
from faceleaks.evaluation.pipeline import Dataset, build_control_teacher, build_students, build_teacher, prepare_data
from faceleaks.evaluation.results import MembershipReport, RunRecord
from faceleaks.evaluation.scoring import evaluate_scores
from faceleaks.errors import DataError, UndefinedMetricWarning
from faceleaks.evaluation.verification import read_pairs, verification_accuracy
from faceleaks.models.dlib_teacher import dlib_base_teacher
from faceleaks.models.training import configure_torch
from faceleaks.progress import track
from faceleaks.seeding import derive_seed, make_rng
from faceleaks.serving.local import LocalBlackBox
from faceleaks.serving.perturb import reveal
from faceleaks.serving.protocol import BlackBox, OutputKind
from faceleaks.serving.wrappers import CachingBlackBox, CountingBlackBox

__all__ = ["run_experiment", "attack_specs"]

log = logging.getLogger(__name__)


def attack_specs(level: Level, k: int, output: OutputKind, *, public_base: bool = False,
                 lira: bool = False) -> list[tuple[str, dict]]:
    """The attacks run at one level and k, given what the API reveals (registry name, params).

    ``public_base``: the attacker holds the public model the teacher was fine-tuned from.
    """
    if level is Level.INSTANCE:
        if output is OutputKind.LABEL:
            return []
        return [("threshold", {"feature": f, "level": "instance"})
                for f in ("max_posterior", "neg_entropy", "neg_modified_entropy")] + [
            ("shadow", {"features": ("max_posterior", "top2_posterior", "top3_posterior", "neg_entropy"),
                        "level": "instance"})]
    if output is OutputKind.LABEL:
        feats = ("label_agreement",) if k >= 2 else ()
    else:
        feats = ("mean_max_posterior", "mean_neg_entropy") + (("compactness", "label_agreement") if k >= 2 else ())
    specs = [("threshold", {"feature": f, "level": "identity", "k": k}) for f in feats if f != "mean_neg_entropy"]
    if feats:
        specs.append(("shadow", {"features": feats, "level": "identity", "k": k}))
    if public_base and k >= 2 and output is OutputKind.POSTERIOR:
        specs.append(("base-diff", {"statistic": "combined", "k": k}))
    if lira and k >= 2:
        stat = "compactness" if output is not OutputKind.LABEL else "label_agreement"
        specs += [("lira", {"statistic": stat, "k": k, "online": True}),
                  ("lira", {"statistic": stat, "k": k, "online": False})]
        if public_base and output is OutputKind.POSTERIOR:
            specs += [("lira", {"statistic": s, "k": k, "online": True})
                      for s in ("residual_norm", "residual_coherence")]
        if output is OutputKind.POSTERIOR:
            specs.append(("shadow-combination", {"k": k}))
    return specs


class _Timer:
    """Wall-clock seconds per stage: ``with timer("teacher"): ...``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(time.perf_counter() - t0, 2)


def _eval_lists(data: Dataset, setting: str, seed: int) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Members' photos for the setting and non-members' photos, each list shuffled (seeded)."""
    rng = make_rng(derive_seed(seed, "eval-order", setting))
    split = data.split
    have = set(data.faces.image_ids.tolist())

    def shuffled(ids: list[str]) -> list[str]:
        ids = [i for i in ids if i in have]
        return [ids[i] for i in rng.permutation(len(ids))]

    members = {m: shuffled(split.member_train[m] if setting == "training-photos" else split.member_heldout(m))
               for m in sorted(split.identities("member"))}
    nonmembers = {n: shuffled(split.photos[n]) for n in sorted(split.identities("nonmember"))}
    return members, nonmembers


def _held_photos(data: Dataset, setting: str, cfg: ExperimentConfig) -> dict[str, list[str]]:
    """The photos of each audited person that the attacker's IN shadow teachers train on.

    ``training-photos``: the photos the attacker queries come from this set (LiRA's classic IN:
    the model saw these very photos): a member's training half, and as many photos of a
    non-member. ``unseen-photos``: the query photos must stay unseen by the IN shadows too, as
    they are by the victim, so the shadows get every photo of the person except the first
    ``min(max k, n - n_train)`` of the query list (from which the attack takes its first k).
    Either way members and non-members with the same photo count get the same number of photos:
    a shadow trained on more photos of one group would make "IN" look different for the two,
    and LiRA would rank that, not membership.
    """
    members, nonmembers = _eval_lists(data, setting, cfg.seed)
    have = set(data.faces.image_ids.tolist())
    kmax = max(cfg.attack.ks)
    out = {}
    for p, ids in {**members, **nonmembers}.items():
        n = len(data.split.photos[p])
        n_train = min(n - 1, max(1, round(cfg.split.member_train_fraction * n)))
        if setting == "training-photos":
            out[p] = ids[:n_train]
        else:
            queried = set(ids[: n - n_train][:kmax])
            out[p] = [i for i in data.split.photos[p] if i in have and i not in queried]
    return out


def _first(lists: dict[str, list[str]], k: int, totals: dict[str, int], train_fraction: float) -> dict[str, list[str]]:
    """First k photos of each identity that is eligible at k.

    Eligible: the identity's total photo count would give a member k photos in *both* the
    training and the held-out half. The same rule for members and non-members keeps the two
    groups alike in how many photos they have (famous people have more photos, and a count
    difference would otherwise leak into the comparison).
    """
    def eligible(n: int) -> bool:
        n_train = min(n - 1, max(1, round(train_fraction * n)))
        return n_train >= k and n - n_train >= k

    return {p: ids[:k] for p, ids in lists.items() if len(ids) >= k and eligible(totals[p])}


def _sample_photos(lists: dict[str, list[str]], n_max: int, rng: np.random.Generator,
                   per_identity: int) -> dict[str, list[str]]:
    """At most ``per_identity`` photos of each identity (equal weight per person), ``n_max`` in all."""
    flat = [(p, i) for p, ids in lists.items() for i in ids[:per_identity]]
    keep = sorted(rng.permutation(len(flat))[:n_max])
    out: dict[str, list[str]] = {}
    for j in keep:
        out.setdefault(flat[j][0], []).append(flat[j][1])
    return out


def _evaluate(level: Level, k: int, members: dict[str, list[str]], nonmembers: dict[str, list[str]], refs,
              box: BlackBox, src: PhotoSource, cfg: ExperimentConfig, ctx: dict, caught: list[str],
              public_base: PublicBase | None = None, lira_shadows: list | None = None) -> list[MembershipReport]:
    images, idents, image_ids = src.stack({**members, **nonmembers})
    groups = None
    if level is Level.INSTANCE:
        truth = dict.fromkeys(image_ids.tolist(), False)
        truth.update(dict.fromkeys([i for ids in members.values() for i in ids], True))
        groups = dict(zip(image_ids.tolist(), idents.tolist()))
    else:
        truth = {**dict.fromkeys(nonmembers, False), **dict.fromkeys(members, True)}
    n_photos = {"member": sum(map(len, members.values())), "nonmember": sum(map(len, nonmembers.values()))}
    reports = []
    for name, params in attack_specs(level, k, box.output_kind, public_base=public_base is not None,
                                     lira=bool(lira_shadows)):
        extra = {"seed": derive_seed(cfg.seed, "attack", name)} if name == "shadow" else {}
        attack = create_attack(name, **params, **extra)
        t0 = time.perf_counter()
        n_shadow_models = 0
        try:
            if name == "base-diff":
                attack.fit(refs, public_base=public_base)
            elif name in ("lira", "shadow-combination"):
                attack.fit(refs, shadows=lira_shadows, public_base=public_base)
                n_shadow_models = len(lira_shadows)
            else:
                attack.fit(refs)
                n_shadow_models = int(name == "shadow")
            scores = attack.score(box, images, identity_ids=idents, image_ids=image_ids)
        except DataError as err:
            if name not in ("lira", "shadow-combination"):
                raise
            msg = f"{attack.name} / {ctx['student']} / {ctx['setting']}: skipped ({err})"
            warnings.warn(msg, stacklevel=2)
            caught.append(msg)
            continue
        seconds = time.perf_counter() - t0
        reports.append(evaluate_scores(
            scores, truth, k=k, n_photos=n_photos, n_queries=scores.n_queries, fprs=cfg.attack.fprs,
            n_bootstrap=cfg.attack.n_bootstrap, seed=derive_seed(cfg.seed, "bootstrap", scores.attack), caught=caught,
            groups=groups, seconds=seconds, n_shadow_models=n_shadow_models, **ctx))
    return reports


def _attack_student(box: BlackBox, shadow_box: BlackBox, data: Dataset, attacker: AttackerData,
                    cfg: ExperimentConfig, ctx: dict, caught: list[str],
                    public_base: PublicBase | None = None, lira: dict | None = None) -> list[MembershipReport]:
    """Every attack, setting and k against one victim box, calibrated with its shadow box."""
    src = PhotoSource(data.photos)
    rng = make_rng(derive_seed(cfg.seed, "instance-sample", *ctx.values()))
    n_max = cfg.attack.n_instance_max
    reports: list[MembershipReport] = []
    for setting in SETTINGS:
        members, nonmembers = _eval_lists(data, setting, cfg.seed)
        shadow_in = {r: attacker.shadow_train[r] if setting == "training-photos" else attacker.shadow_heldout(r)
                     for r in attacker.shadow_in}
        shadow_out = {r: attacker.photos[r] for r in attacker.shadow_out()}
        here = {**ctx, "setting": setting}
        per = cfg.attack.instance_photos_per_identity
        refs = [src.reference_set(box, {}, _sample_photos(attacker.photos, n_max, rng, per)),
                src.reference_set(shadow_box, _sample_photos(shadow_in, n_max, rng, per),
                                  _sample_photos(shadow_out, n_max, rng, per))]
        reports += _evaluate(Level.INSTANCE, 1, _sample_photos(members, n_max, rng, per),
                             _sample_photos(nonmembers, n_max, rng, per), refs, box, src, cfg, here, caught)
        refs = [src.reference_set(box, {}, attacker.photos), src.reference_set(shadow_box, shadow_in, shadow_out)]
        for k in cfg.attack.ks:
            totals = {p: len(data.split.photos[p]) for p in {**members, **nonmembers}}
            frac = cfg.split.member_train_fraction
            mk, nk = _first(members, k, totals, frac), _first(nonmembers, k, totals, frac)
            if len(mk) < 2 or len(nk) < 2:
                msg = f"{ctx['student']} / {setting}: k={k} skipped, only {len(mk)} members and {len(nk)} non-members have {k} photos"
                warnings.warn(msg, stacklevel=2)
                caught.append(msg)
                continue
            reports += _evaluate(Level.IDENTITY, k, mk, nk, refs, box, src, cfg, here, caught, public_base,
                                 (lira or {}).get((setting, ctx["student"])))
    return reports


@contextmanager
def _victim_endpoint(api: BlackBox, transport: str, name: str) -> Iterator[BlackBox]:
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


def _verify(teacher, data: Dataset, cache_dir: Path, n_folds: int, exclude: list[str] | None = None) -> dict:
    """LFW pairs accuracy of ``teacher`` on pairs of people it did not train on (``exclude``, default the members)."""
    from faceleaks.data.faces import load_faces

    pairs_path = data.lfw_root.parent / "pairs.txt"
    if not pairs_path.exists():
        msg = f"no pairs.txt beside {data.lfw_root}: teacher verification accuracy not measured"
        warnings.warn(msg, stacklevel=2)
        return {"accuracy": float("nan"), "note": msg}

    def embed(ids: list[str]) -> dict[str, np.ndarray]:
        paths = [data.lfw_root / i.rsplit("_", 1)[0] / f"{i}.jpg" for i in ids]
        faces = load_faces(paths, ids, [i.rsplit("_", 1)[0] for i in ids], data.chipper, cache_dir=cache_dir,
                           description="reading LFW pairs")
        return dict(zip(faces.image_ids.tolist(), teacher.embed(faces.images)))

    return verification_accuracy(read_pairs(pairs_path), embed, exclude_identities=set(data.split.identities("member") if exclude is None else exclude),
                                 n_folds=n_folds)


def _attack_students(jobs, shadows, data: Dataset, attacker: AttackerData, cfg: ExperimentConfig,
                     caught: list[str], public_base: PublicBase | None,
                     lira: dict | None = None) -> tuple[list[MembershipReport], dict[str, int]]:
    """Attack each (role, name, student) through its API; returns the reports and images sent to each."""
    reports, queries = [], {}
    for role, name, student in track(jobs, "attacking students"):
        api = reveal(LocalBlackBox(student), cfg.attack.output, top_k=cfg.attack.top_k)
        shadow_box = CachingBlackBox(reveal(LocalBlackBox(shadows[name][0]), cfg.attack.output, top_k=cfg.attack.top_k))
        with _victim_endpoint(api, cfg.attack.transport, f"{role}/{name}") as victim:
            counting = CountingBlackBox(victim)
            reports += _attack_student(CachingBlackBox(counting), shadow_box, data, attacker, cfg,
                                       {"teacher": role, "student": name}, caught, public_base, lira)
        queries[f"{role}/{name}"] = counting.n_queries
    return reports, queries


def run_experiment(cfg: ExperimentConfig, *, out_dir: Path, cache_dir: Path) -> RunRecord:
    """Run the whole experiment; writes ``split.json`` into ``out_dir`` and returns the record.

    Raises ``DataError`` / ``ConfigError`` with a clear message on bad data or settings.
    """
    configure_torch(cfg.runtime.threads)
    timer, caught = _Timer(), []
    with timer("data"):
        data = prepare_data(cfg, out_dir=out_dir, cache_dir=cache_dir)
    with timer("teacher"):
        teacher = build_teacher(data, cfg, data.split.member_train, name="teacher", cache_dir=cache_dir)
    with timer("verification"):
        verification = _verify(teacher, data, cache_dir, cfg.data.verification_folds)
    with timer("students"):
        students = build_students(teacher, data, cfg, shadow=False, prefix="victim")
    attributes: dict = {}
    if cfg.attributes.enabled:
        from faceleaks.evaluation.attributes import run_attribute_attacks

        with timer("attributes"):
            record = run_attribute_attacks(data, students, teacher, cfg, cache_dir=cache_dir, seed=cfg.seed)
        attributes = record.to_dict()
        timer.timings.update(attributes.pop("timings_s", {}))
    attacker = make_attacker_data(data.split, train_fraction=cfg.split.member_train_fraction, seed=cfg.seed)
    # The attacker assumes a fine-tuned public model; with the unmodified base as victim
    # ("dlib-base"), the victim is itself the negative control and no second control is built.
    is_control_run = cfg.teacher.kind == "dlib-base"
    shadow_cfg = replace(cfg, teacher=replace(cfg.teacher, kind="dlib")) if is_control_run else cfg
    with timer("shadow"):
        shadow_teacher = build_teacher(data, shadow_cfg, attacker.shadow_train, name="shadow-teacher", cache_dir=cache_dir)
        shadows = build_students(shadow_teacher, data, shadow_cfg, shadow=True, prefix="shadow")
    control, control_info = {}, {"note": "the victim teacher is itself the negative control"}
    if not is_control_run:
        with timer("control"):
            control_teacher = build_control_teacher(data, cfg, shadow_teacher=shadow_teacher, cache_dir=cache_dir)
            control = build_students(control_teacher, data, cfg, shadow=False, prefix="control")
            control_info = {"name": control_teacher.name, "kind": control_teacher.info.get("kind"),
                            "n_member_identities": len(data.split.identities("control_member")),
                            "verification": _verify(control_teacher, data, cache_dir, cfg.data.verification_folds,
                                                    exclude=data.split.identities("member")
                                                    + data.split.identities("control_member"))}
    public_base = TeacherPublicBase(dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name="attacker-dlib-base")) \
        if cfg.teacher.kind != "scratch" else None
    victim_role = "control" if is_control_run else "victim"
    jobs = [(victim_role, n, s) for n, (s, _) in students.items()] + [("control", n, s) for n, (s, _) in control.items()]
    lira, cost = None, {}
    if cfg.attack.n_shadow_teachers and cfg.teacher.kind != "scratch":
        from faceleaks.evaluation.lira_shadows import build_lira_shadows

        with timer("lira-shadows"):
            targets = {s: _held_photos(data, s, cfg) for s in SETTINGS}
            built = build_lira_shadows(data, shadow_cfg, attacker, targets, cache_dir=cache_dir)
        n_targets = max(sum(len(t) for t in targets.values()), 1)
        train = built.train_seconds
        cost = {"n_shadow_teachers_per_setting": cfg.attack.n_shadow_teachers,
                "n_audited_per_setting": {s: len(t) for s, t in targets.items()},
                "shadow_train_seconds": train, "shadow_train_threads": built.train_threads,
                "shadow_train_seconds_per_audited": None if train is None else round(train / n_targets, 3),
                "n_shadow_teachers_trained_this_run": built.n_trained,
                "shadow_seconds": timer.timings["lira-shadows"],
                "shadow_seconds_per_audited": round(timer.timings["lira-shadows"] / n_targets, 3),
                "executor": cfg.runtime.executor, "workers": cfg.runtime.workers}
        lira = built.models
    with timer("attacks"):
        reports, queries = _attack_students(jobs, shadows, data, attacker, cfg, caught, public_base, lira)
    return RunRecord(
        seed=cfg.seed, config=cfg.to_dict(), data=_data_summary(data), membership=reports, queries=queries,
        teacher={"kind": cfg.teacher.kind, "verification": verification, **_public(teacher.info),
                 "n_member_identities": 0 if is_control_run else len(data.split.member_train), "control": control_info},
        students=[{"name": n, "teacher": role, "test_accuracy": acc, **s.info}
                  for role, group in ((victim_role, students), ("control", control)) for n, (s, acc) in group.items()],
        timings_s=timer.timings, warnings=_warning_summary(caught), attributes=attributes, cost=cost,
    )


def _warning_summary(caught: list[str]) -> list[str]:
    """Distinct warnings; the many "TPR at FPR needs more non-members" ones folded into one line each FPR."""
    out, undefined = [], {}
    for w in sorted(set(caught)):
        if "needs >=" in w and "non-members" in w:
            fpr = w.split("TPR at FPR=")[1].split(" ")[0]
            undefined[fpr] = undefined.get(fpr, 0) + 1
        else:
            out.append(w)
    for fpr, n in sorted(undefined.items()):
        out.append(f"TPR at FPR={fpr} is null in {n} results: too few non-members to resolve that FPR")
    if undefined:
        warnings.warn("; ".join(out[-len(undefined):]), UndefinedMetricWarning, stacklevel=3)
    return out


def _public(info: dict) -> dict:
    """Teacher metadata for results.json; cache hits are logged, not recorded (reruns must match)."""
    return {k: v for k, v in info.items() if k not in ("version", "cached")}


def _data_summary(data: Dataset) -> dict:
    split = data.split
    unreadable = data.faces.unreadable + data.utk_faces.unreadable
    return {
        "lfw_root": str(data.lfw_root),
        "utkface_root": str(data.utk_root),
        "n_identities": {r: len(split.identities(r)) for r in ("member", "nonmember", "reference", "student", "shadow_student")},
        "n_member_train_photos": sum(map(len, split.member_train.values())),
        "n_lfw_photos": int(len(data.faces)),
        "n_utkface_photos": int(len(data.utk_faces)),
        "n_unreadable": len(unreadable),
        "unreadable": [list(u) for u in unreadable],
        "chip": data.chipper.spec,
    }
