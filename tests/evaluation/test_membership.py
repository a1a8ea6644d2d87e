"""The attacker's evaluation: query order, the k-photo eligibility rule per setting, and the recipe's photos."""

from types import SimpleNamespace

import numpy as np
import pytest

from faceleaks.config import SplitConfig, config_from_dict
from faceleaks.data.splits import make_split, n_train_photos
from faceleaks.evaluation import membership
from faceleaks.evaluation.audited import query_order as _query_order
from faceleaks.evaluation.membership import eligible_first_k, evaluation_lists, held_photos, setting_photos


def _stacked(n_people: int, photos: int) -> np.ndarray:
    # members first, then non-members, as the evaluation stacks them
    return np.repeat([f"p{i:02d}" for i in range(n_people)], photos)


def test_query_order_is_a_permutation_that_keeps_each_persons_photo_order():
    idents = _stacked(20, 3)
    order = _query_order(idents, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(len(idents)))
    for person in np.unique(idents):
        rows = [r for r in order if idents[r] == person]
        assert rows == sorted(rows), person


def test_query_order_does_not_put_the_first_group_first():
    idents = _stacked(20, 3)
    is_member = np.array([int(p[1:]) < 10 for p in idents])  # the first half of the stack
    for seed in range(5):
        shuffled = is_member[_query_order(idents, np.random.default_rng(seed))]
        first_half = shuffled[: len(shuffled) // 2]
        assert 0 < first_half.sum() < len(first_half), seed


def test_query_order_depends_on_the_seed_only():
    idents = _stacked(10, 2)
    a = _query_order(idents, np.random.default_rng(3))
    assert np.array_equal(a, _query_order(idents, np.random.default_rng(3)))
    assert not np.array_equal(a, _query_order(idents, np.random.default_rng(4)))


def test_eligible_first_k_applies_one_photo_count_rule_to_both_groups():
    lists = {"a": list("abcdefghij"), "b": list("abcd"), "c": list("abc")}
    totals = {"a": 10, "b": 4, "c": 20}
    got = eligible_first_k(lists, 2, totals, 0.5, setting="training-photos")
    assert got == {"a": ["a", "b"], "b": ["a", "b"], "c": ["a", "b"]}
    got = eligible_first_k(lists, 3, totals, 0.5, setting="unseen-photos")
    # "b" has 4 photos in all: 2 train + 2 held out, so k = 3 is not possible for it
    assert set(got) == {"a", "c"} and n_train_photos(4, 0.5) == 2
    assert eligible_first_k(lists, 4, totals, 0.5, setting="training-photos") == {"a": list("abcd")}


def test_training_photos_need_training_photos_only():
    # 7 photos: 4 train and 3 held out. Before, k = 4 needed 4 of each; now each setting asks for its own
    lists = {"p": list("abcdefg")}
    assert eligible_first_k(lists, 4, {"p": 7}, 0.5, setting="training-photos") == {"p": list("abcd")}
    assert eligible_first_k(lists, 4, {"p": 7}, 0.5, setting="unseen-photos") == {}
    assert eligible_first_k(lists, 7, {"p": 7}, 0.5, setting="training-photos", photos="all") == {"p": lists["p"]}
    assert eligible_first_k(lists, 1, {"p": 7}, 0.5, setting="unseen-photos", photos="all") == {}


@pytest.mark.parametrize("photos, smallest", [("half", 19), ("all", 10)])
def test_k10_includes_every_person_with_10_training_photos(photos, smallest):
    totals = {f"p{n}": n for n in range(5, 41)}
    lists = {p: [f"{p}_{i}" for i in range(n)] for p, n in totals.items()}
    got = eligible_first_k(lists, 10, totals, 0.5, setting="training-photos", photos=photos)
    want = {p for p, n in totals.items() if setting_photos(n, "training-photos", 0.5, photos) >= 10}
    assert set(got) == want == {f"p{n}" for n in range(smallest, 41)}
    assert all(len(ids) == 10 for ids in got.values())


@pytest.mark.parametrize("setting", ["training-photos", "unseen-photos"])
@pytest.mark.parametrize("photos", ["half", "all"])
def test_members_and_nonmembers_are_chosen_by_one_rule(setting, photos):
    rng = np.random.default_rng(1)
    totals = {f"x{i}": int(n) for i, n in enumerate(rng.integers(5, 41, 60))}
    # a member's list holds its photos in the setting; a non-member's all its photos
    members = {p: ["m"] * setting_photos(n, setting, 0.5, photos) for p, n in totals.items()}
    nonmembers = {p: ["n"] * n for p, n in totals.items()}
    for k in (1, 2, 5, 10):
        m = eligible_first_k(members, k, totals, 0.5, setting=setting, photos=photos)
        n = eligible_first_k(nonmembers, k, totals, 0.5, setting=setting, photos=photos)
        assert set(m) == set(n), k  # the same photo counts are eligible in either group


CFG = SplitConfig(n_members=8, n_nonmembers=8, n_reference=8, n_student_identities=4,
                  n_shadow_student_identities=4, n_utkface_train=10, n_utkface_test=5, n_reference_pool=0)


def _data():
    people = {f"big{i}": [f"big{i}_{j:04d}" for j in range(10 + i % 11)] for i in range(30)}
    people.update({f"small{i}": [f"small{i}_{j:04d}" for j in range(6)] for i in range(10)})
    split = make_split(people, [f"utk{i}" for i in range(40)], CFG, max_images_per_identity=20, seed=0)
    unreadable = {split.photos[p][0] for p in split.identities("member")[:2] + split.identities("nonmember")[:2]}
    have = np.array([i for ids in split.photos.values() for i in ids if i not in unreadable])
    return SimpleNamespace(split=split, faces=SimpleNamespace(image_ids=have)), set(have.tolist())


def _cfg(recipe):
    return config_from_dict({"teacher": {"recipe": recipe}, "attack": {"ks": [1, 2, 5]}})


def test_all_photos_lists_and_held_photos_mirror_what_the_teacher_trained_on():
    data, have = _data()
    split = data.split
    members, nonmembers = evaluation_lists(data, "training-photos", 0, photos="all")
    for m, ids in members.items():
        assert sorted(ids) == sorted(i for i in split.photos[m] if i in have)
        assert len(ids) > len(split.member_train[m]) - 1
    unseen, _ = evaluation_lists(data, "unseen-photos", 0, photos="all")
    assert all(ids == [] for ids in unseen.values())
    held = held_photos(data, "training-photos", _cfg("light"))
    assert held == {**members, **nonmembers}  # the IN shadows train on every photo, as the victim did
    assert held_photos(data, "unseen-photos", _cfg("light")) == {}
    # the regularised recipe keeps today's lists: the member's training half
    half, _ = evaluation_lists(data, "training-photos", 0)
    assert all(set(ids) <= set(split.member_train[m]) for m, ids in half.items())
    assert half == evaluation_lists(data, "training-photos", 0, photos="half")[0]


class _Plan(SimpleNamespace):
    def warn(self, msg):
        self.caught.append(msg)


@pytest.mark.parametrize("recipe", ["regularised", "light"])
def test_attack_student_names_the_recipe_and_skips_unseen_photos_when_all_photos_train(recipe, monkeypatch):
    data, _ = _data()
    audits = []
    monkeypatch.setattr(membership, "_references", lambda *a: [])
    monkeypatch.setattr(membership, "_run_audit", lambda audit, *a: audits.append(audit) or [])
    plan = _Plan(data=data, cfg=_cfg(recipe), lira_shadows={}, caught=[], attacker=SimpleNamespace(pool=()))
    for role in ("victim", "control"):
        membership.attack_student(None, None, plan, {"teacher": role, "student": "lfw-identity"})
    settings = {a.context["setting"] for a in audits}
    skipped = [w for w in plan.caught if w.startswith("unseen-photos skipped")]
    assert settings == ({"training-photos"} if recipe == "light" else {"training-photos", "unseen-photos"})
    assert len(skipped) == (2 if recipe == "light" else 0) and len(set(skipped)) <= 1  # one line, deduplicated
    assert {(a.context["teacher"], a.context["recipe"]) for a in audits} == {("victim", recipe), ("control", "base")}
    k5 = [a for a in audits if a.k == 5 and a.context["setting"] == "training-photos"]
    assert k5 and all(len(ids) == 5 for a in k5 for ids in {**a.members, **a.nonmembers}.values())


@pytest.mark.parametrize("recipe", ["regularised", "light"])
def test_the_owner_trains_members_on_the_photos_the_evaluation_queries_as_training_photos(recipe, monkeypatch):
    from faceleaks.evaluation import owner

    data, have = _data()
    trained = {}

    def fake_train(images, identities, image_ids, cfg, **kw):
        trained.update({p: sorted(image_ids[identities == p].tolist()) for p in set(identities.tolist())})

    def photos(ids):
        ids = np.array([i for i in ids if i in have])
        return SimpleNamespace(images=None, identities=np.array([i.rsplit("_", 1)[0] for i in ids]), image_ids=ids)

    monkeypatch.setattr(owner, "finetune_dlib_teacher", fake_train)
    data.photos = photos
    cfg = _cfg(recipe)
    owner.build_teacher(data, cfg, data.split.member_train, name="teacher", cache_dir=None)
    members, _ = evaluation_lists(data, "training-photos", 0, photos=cfg.teacher.resolved_recipe.photos)
    assert trained == {m: sorted(ids) for m, ids in members.items()}
    # other identities (e.g. the attacker's shadow identities) train on the photos given
    refs = {r: data.split.photos[r][:3] for r in data.split.identities("reference")}
    trained.clear()
    owner.build_teacher(data, cfg, refs, name="shadow", cache_dir=None)
    assert trained == {r: sorted(ids) for r, ids in refs.items()}
