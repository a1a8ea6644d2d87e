"""Shadow teachers for LiRA: the attacker's plan uses no victim label, no shadow trains on a victim
identity other than a coin-flipped target, and the real pipeline runs on local processes and on Ray."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from faceleaks.config import SplitConfig, config_from_dict, quick_config
from faceleaks.data.splits import make_split
from faceleaks.errors import DataError
from faceleaks.evaluation.attacker import SETTINGS, make_attacker_data
from faceleaks.evaluation.membership import held_photos as _held_photos
from faceleaks.evaluation.lira_shadows import ShadowPlan, check_shadow_plans, plan_lira_shadows

CFG = SplitConfig(n_members=8, n_nonmembers=8, n_reference=8, n_student_identities=4,
                  n_shadow_student_identities=4, n_utkface_train=10, n_utkface_test=5, n_reference_pool=0)


def _split(seed=0):
    people = {f"big{i}": [f"big{i}_{j:04d}" for j in range(10 + i % 7)] for i in range(30)}
    people.update({f"small{i}": [f"small{i}_{j:04d}" for j in range(6)] for i in range(10)})
    return make_split(people, [f"utk{i}" for i in range(40)], CFG, max_images_per_identity=14, seed=seed)


class LabelBlindSplit:
    """A split whose member / non-member lists cannot be read: the attacker must not need them."""

    def __init__(self, split):
        self._split = split
        self.photos = split.photos
        self.reference_pool = split.reference_pool  # the attacker's own known non-members

    def identities(self, role):
        if role in ("member", "nonmember"):
            raise AssertionError(f"the attacker read the victim's {role} list")
        return self._split.identities(role)

    @property
    def member_train(self):
        raise AssertionError("the attacker read the victim's member training photos")


def _targets(split, setting):
    """What the attacker audits: the candidates with the photos it holds, labels dropped."""
    data = SimpleNamespace(split=split, faces=SimpleNamespace(image_ids=np.array(
        [i for ids in split.photos.values() for i in ids])))
    cfg = config_from_dict({"split": {"member_train_fraction": 0.5}, "attack": {"ks": [1, 2, 5]}})
    return _held_photos(data, setting, cfg)


def test_attacker_data_and_plans_never_read_victim_labels():
    split = _split()
    attacker = make_attacker_data(LabelBlindSplit(split), train_fraction=0.5, seed=0)
    assert set(attacker.photos) == set(split.identities("reference"))
    targets = {s: _targets(split, s) for s in SETTINGS}
    plans = plan_lira_shadows(attacker, targets, n_shadows=4, seed=0)
    assert len(plans) == 8
    check_shadow_plans(plans, split)
    for p in plans:
        own = set(p.train) - p.targets_in
        assert own == set(attacker.shadow_in) <= set(split.identities("reference"))
        assert p.targets_in <= set(targets[p.setting])


def test_unseen_photo_queries_are_never_in_the_shadows():
    from faceleaks.evaluation.membership import eligible_first_k as _first, evaluation_lists as _eval_lists

    split = _split()
    data = SimpleNamespace(split=split, faces=SimpleNamespace(image_ids=np.array(
        [i for ids in split.photos.values() for i in ids])))
    held = _targets(split, "unseen-photos")
    members, nonmembers = _eval_lists(data, "unseen-photos", 0)
    totals = {p: len(split.photos[p]) for p in held}
    for k in (1, 2, 5):
        for group in (members, nonmembers):
            for person, query in _first(group, k, totals, 0.5, setting="unseen-photos").items():
                assert not set(query) & set(held[person])


def test_held_photo_counts_do_not_depend_on_membership():
    split = _split()
    for setting in SETTINGS:
        held = _targets(split, setting)
        assert set(held) == set(split.identities("member")) | set(split.identities("nonmember"))
        by_total = {}
        for person, ids in held.items():
            by_total.setdefault(len(split.photos[person]), set()).add(len(ids))
        assert all(len(v) == 1 for v in by_total.values()), by_total
        for m in split.identities("member"):
            if setting == "training-photos":  # exactly what the victim trained on
                assert set(held[m]) == set(split.member_train[m])
            else:  # everything but the photos the attack may query (unseen by the victim)
                assert set(split.member_train[m]) <= set(held[m])
                assert len(held[m]) == len(split.photos[m]) - min(5, len(split.member_heldout(m)))


def test_coin_flips_are_seeded_prefix_stable_and_balanced():
    split = _split()
    attacker = make_attacker_data(split, train_fraction=0.5, seed=0)
    targets = {s: _targets(split, s) for s in SETTINGS}
    small = plan_lira_shadows(attacker, targets, n_shadows=3, seed=0)
    big = plan_lira_shadows(attacker, targets, n_shadows=40, seed=0)
    assert [p.targets_in for p in small] == [p.targets_in for p in big if p.index < 3]
    assert [p.targets_in for p in small] != [p.targets_in for p in plan_lira_shadows(attacker, targets, n_shadows=3, seed=1)]
    for setting in SETTINGS:  # balanced: shadows 2i and 2i+1 split the targets into halves
        mine = [p for p in big if p.setting == setting]
        for person in targets[setting]:
            assert sum(person in p.targets_in for p in mine) == 20
        for a, b in zip(mine[::2], mine[1::2]):
            assert not a.targets_in & b.targets_in and a.targets_in | b.targets_in == set(targets[setting])
    share = np.mean([len(p.targets_in) / len(targets[p.setting]) for p in big if p.index % 2 == 0])
    assert 0.35 < share < 0.65


@pytest.mark.parametrize("role", ["member", "nonmember", "student"])
def test_guard_rejects_a_shadow_trained_on_a_victim_identity(role):
    split = _split()
    attacker = make_attacker_data(split, train_fraction=0.5, seed=0)
    plan = plan_lira_shadows(attacker, {"training-photos": _targets(split, "training-photos")}, n_shadows=1, seed=0)[0]
    intruder = split.identities(role)[0]
    if intruder in plan.targets_in:  # a coin-flipped target is allowed; pretend it was not flipped in
        plan = replace(plan, targets_in=plan.targets_in - {intruder})
    bad = ShadowPlan(plan.setting, plan.index, plan.name, plan.targets_in,
                     {**plan.train, intruder: split.photos[intruder][:3]})
    with pytest.raises(DataError, match=role):
        check_shadow_plans([bad], split)


# ---- the real pipeline on a tiny setting: local processes and Ray ---------------------------------

@pytest.fixture(scope="module")
def tiny(real_lfw, session_cache, tmp_path_factory):
    from faceleaks.evaluation.dataset import prepare_data

    cfg = config_from_dict({"attack": {"n_shadow_teachers": 3}, "teacher": {"finetune_epochs": 3}}, quick_config())
    data = prepare_data(cfg, out_dir=tmp_path_factory.mktemp("tiny"), cache_dir=session_cache)
    attacker = make_attacker_data(data.split, train_fraction=cfg.split.member_train_fraction, seed=cfg.seed)
    targets = {s: _held_photos(data, s, cfg) for s in SETTINGS}
    return cfg, data, attacker, targets


def _build(tiny, backend, session_cache, folder):
    from faceleaks.evaluation.lira_shadows import build_lira_shadows
    from faceleaks.models.dlib_teacher import dlib_base_teacher

    cfg, data, attacker, targets = tiny
    cfg = replace(cfg, runtime=replace(cfg.runtime, executor=backend, workers=2))
    dlib_base_teacher(cfg.teacher, cache_dir=session_cache).embed(data.faces.images[:1])  # activations folder exists
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "dlib-activations"
    if not link.exists():
        link.symlink_to(session_cache / "dlib-activations")  # share the frozen activations, not the teachers
    return build_lira_shadows(data, cfg, attacker, targets, cache_dir=folder)


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_shadow_pipeline_runs_on_backend(tiny, backend, session_cache, tmp_path_factory):
    if backend == "ray":
        pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'faceleaks[ray]'")
    cfg, data, attacker, targets = tiny
    folder = tmp_path_factory.mktemp(f"shadows-{backend}")
    built = _build(tiny, backend, session_cache, folder)
    shadows = built.models
    assert built.n_trained == 3 * len(SETTINGS) and built.train_seconds > 0 and built.train_threads == 1
    assert set(shadows) == {(s, n) for s in SETTINGS for n in ("lfw-identity", "utk-age")}
    victims = set(data.split.identities("member")) | set(data.split.identities("nonmember"))
    for (setting, _), models in shadows.items():
        assert len(models) == 3
        for m in models:
            assert m.members - victims <= set(attacker.shadow_in)
            assert m.members & victims <= set(targets[setting])
    checkpoints = sorted((folder / "teachers").glob("lira-*.pt"))
    assert len(checkpoints) == 3 * len(SETTINGS)
    # a rerun reuses every cached shadow teacher (nothing is fine-tuned again)
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    rebuilt = _build(tiny, backend, session_cache, folder)
    again = rebuilt.models
    assert [p.stat().st_mtime_ns for p in checkpoints] == stamps
    assert rebuilt.n_trained == 0 and rebuilt.train_seconds == built.train_seconds  # cost survives the cache
    images = data.faces.images[:8]
    for a, b in zip(shadows[("training-photos", "lfw-identity")], again[("training-photos", "lfw-identity")]):
        np.testing.assert_allclose(a.box.query(images).values, b.box.query(images).values, atol=1e-6)
    _OUTPUTS[backend] = [m.box.query(images).values for m in shadows[("training-photos", "lfw-identity")]]
    if len(_OUTPUTS) == 2:  # both backends trained the same shadows from scratch: same models
        for a, b in zip(*_OUTPUTS.values()):
            np.testing.assert_allclose(a, b, atol=1e-4)


_OUTPUTS: dict[str, list] = {}
