import json

import pytest

from faceleaks.config import SplitConfig
from faceleaks.data.splits import MembershipSplit, make_split, n_train_photos
from faceleaks.errors import ConfigError, DataError

CFG = SplitConfig(n_members=5, n_nonmembers=5, n_reference=6, n_student_identities=4,
                  n_shadow_student_identities=4, n_utkface_train=10, n_utkface_test=5, n_reference_pool=0)


def _people():
    big = {f"big{i}": [f"big{i}_{j:04d}" for j in range(10 + i)] for i in range(20)}
    small = {f"small{i}": [f"small{i}_{j:04d}" for j in range(5 + i % 4)] for i in range(10)}
    tiny = {f"tiny{i}": [f"tiny{i}_0001"] for i in range(5)}
    return {**big, **small, **tiny}, [f"utk{i}" for i in range(40)]


def _split(seed=0):
    people, utk = _people()
    return make_split(people, utk, CFG, max_images_per_identity=12, seed=seed)


def test_roles_are_disjoint_and_sized():
    s = _split()
    sets = {r: set(ids) for r, ids in s.roles.items()}
    for a in sets:
        for b in sets:
            assert a == b or not sets[a] & sets[b]
    assert [len(s.roles[r]) for r in ("member", "nonmember", "reference", "student", "shadow_student")] == [5, 5, 6, 4, 4]
    assert all(i.startswith("big") for r in ("member", "nonmember", "reference") for i in s.roles[r])
    assert all(i.startswith("small") for r in ("student", "shadow_student") for i in s.roles[r])
    for m in s.roles["member"]:
        train, held = set(s.member_train[m]), set(s.member_heldout(m))
        assert train and held and not train & held and len(s.photos[m]) <= 12
    utk = [set(v) for v in s.utk.values()]
    assert not (utk[0] & utk[1] or utk[0] & utk[2] or utk[1] & utk[2])


def test_split_is_seeded():
    assert _split(3) == _split(3)
    assert _split(3).roles != _split(4).roles


def test_manifest_round_trip_and_overlap_detected_at_load(tmp_path):
    s = _split()
    path = tmp_path / "split.json"
    s.to_json(path)
    assert MembershipSplit.from_json(path) == s
    raw = json.loads(path.read_text())
    raw["roles"]["nonmember"].append(raw["roles"]["member"][0])
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="both member and nonmember"):
        MembershipSplit.from_json(path)


def test_photo_listed_twice_is_detected(tmp_path):
    s = _split()
    m, n = s.roles["member"][0], s.roles["nonmember"][0]
    s.photos[n].append(s.photos[m][0])
    with pytest.raises(DataError, match="is listed for"):
        s.validate()


def test_too_few_identities_is_a_clear_error():
    people, utk = _people()
    with pytest.raises(DataError, match="need 50 identities for members but only 20"):
        make_split(people, utk, SplitConfig(n_members=50, n_reference_pool=0), max_images_per_identity=10, seed=0)


def test_control_members_are_extra_people_and_change_no_other_role(tmp_path):
    people, utk = _people()
    plain = make_split(people, utk, CFG, max_images_per_identity=12, seed=3)
    with_control = make_split(people, utk, CFG, max_images_per_identity=12, seed=3, n_control_members=2)
    control = with_control.identities("control_member")
    assert len(control) == 2 and all(c.startswith("small") for c in control)
    used = {i for r, ids in plain.roles.items() for i in ids}
    assert not set(control) & used
    for field in ("member_train", "student_test", "utk"):
        assert getattr(plain, field) == getattr(with_control, field)
    assert {r: v for r, v in with_control.roles.items() if r != "control_member"} == plain.roles
    assert all(with_control.photos[p] == plain.photos[p] for p in plain.photos)
    assert set(with_control.photos[control[0]]) == set(people[control[0]])
    with_control.to_json(tmp_path / "split.json")
    assert MembershipSplit.from_json(tmp_path / "split.json").identities("control_member") == control
    with pytest.raises(DataError, match="control teacher"):
        make_split(people, utk, CFG, max_images_per_identity=12, seed=3, n_control_members=5)


@pytest.mark.parametrize("n, fraction, expected", [
    (10, 0.5, 5), (5, 0.5, 2), (7, 0.5, 4), (3, 0.5, 2), (2, 0.5, 1), (2, 0.01, 1), (2, 0.99, 1),
    (1, 0.5, 0), (20, 0.05, 1), (20, 0.0, 1), (20, 1.0, 19), (9, 0.3, 3), (11, 0.7, 8),
])
def test_n_train_photos_by_hand(n, fraction, expected):
    assert n_train_photos(n, fraction) == expected


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.62, 0.9])
def test_n_train_photos_is_the_nearest_count_keeping_both_halves(fraction):
    for n in range(2, 60):
        k = n_train_photos(n, fraction)
        assert 1 <= k <= n - 1  # something to train on and something held out
        assert all(abs(k - fraction * n) <= abs(j - fraction * n) for j in range(1, n))  # nearest allowed count


def test_n_train_photos_is_what_make_split_trains_members_on():
    s = _split(5)
    for m in s.roles["member"]:
        assert len(s.member_train[m]) == n_train_photos(len(s.photos[m]), CFG.member_train_fraction)
        assert s.member_train[m] == s.photos[m][: len(s.member_train[m])]


@pytest.mark.parametrize("n, fraction, error", [(0, 0.5, DataError), (-3, 0.5, DataError),
                                                (5, 1.5, ConfigError), (5, -0.1, ConfigError),
                                                (5, float("nan"), ConfigError)])
def test_n_train_photos_rejects_impossible_inputs(n, fraction, error):
    with pytest.raises(error, match=repr(n) if error is DataError else "fraction"):
        n_train_photos(n, fraction)


def _broken(edit):
    s = _split()
    edit(s)
    return s


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.utk["shadow"].append(s.utk["train"][0]), "is in both train and shadow"),
    (lambda s: s.utk["test"].append(s.utk["test"][0]), "is in both test and test"),
    (lambda s: s.roles.__setitem__("spy", ["big19"]), "unknown role 'spy'"),
    (lambda s: s.photos.__setitem__("stranger", ["x_0001"]), "'stranger', which has no role"),
    (lambda s: s.member_train[s.roles["member"][0]].append("elsewhere_0001"), "not a subset"),
])
def test_validate_names_what_overlaps(edit, message):
    s = _broken(edit)
    with pytest.raises(DataError, match=message):
        s.validate()


def test_reference_pool_spreads_over_people_with_no_role_and_changes_no_role():
    from faceleaks.config import SplitConfig
    from faceleaks.data.splits import make_split, photo_identity

    by_identity = {f"big{i:03d}": [f"big{i:03d}_{j:04d}" for j in range(12)] for i in range(160)}
    by_identity.update({f"mid{i:03d}": [f"mid{i:03d}_{j:04d}" for j in range(6)] for i in range(90)})
    by_identity.update({f"few{i:03d}": [f"few{i:03d}_{j:04d}" for j in range(1 + i % 3)] for i in range(600)})
    utk = [f"u{i}" for i in range(5000)]
    base = dict(n_utkface_train=100, n_utkface_test=50)
    without = make_split(by_identity, utk, SplitConfig(**base, n_reference_pool=0), max_images_per_identity=40, seed=3)
    split = make_split(by_identity, utk, SplitConfig(**base, n_reference_pool=500, pool_photos_per_person=2),
                       max_images_per_identity=40, seed=3)
    assert split.roles == without.roles and split.photos == without.photos and without.reference_pool == []
    people = [photo_identity(i) for i in split.reference_pool]
    assert len(split.reference_pool) == len(set(split.reference_pool)) == 500
    assert all(p.startswith("few") for p in people) and max(people.count(p) for p in set(people)) <= 2
    assert len(set(people)) >= 250
    with pytest.raises(DataError, match="n_reference_pool"):
        make_split(by_identity, utk, SplitConfig(**base, n_reference_pool=5000), max_images_per_identity=40, seed=3)
