import numpy as np
import pytest

from faceleaks.attacks.base import ShadowModel
from faceleaks.attacks.registry import create_attack
from faceleaks.errors import ConfigError, DataError, NotFittedError
from faceleaks.metrics import auc_score
from faceleaks.serving.function import FunctionBlackBox
from tests.fakes import SIZE, fake_posteriors, make_images


def box_with_members(members: set[str], seed: int):
    """A fake student whose teacher trained on ``members``: their photos come out tighter."""

    def fn(images):
        flipped = images.copy()
        for n, im in enumerate(images):
            flipped[n, 0, 0, 1] = int(f"p{int(im[0, 1, 0])}_{int(im[0, 0, 0])}" in members)
        return fake_posteriors(flipped, seed=0)

    return FunctionBlackBox(fn, input_size=SIZE)


def _setup(gap_members, n_shadows=8):
    ids = list(range(40))
    images, idents, iids, _ = make_images(ids, [False] * 40, 5, offset=3)
    names = sorted(set(idents.tolist()))
    rng = np.random.default_rng(0)
    shadows = []
    for j in range(n_shadows):
        members = frozenset(n for n in names if rng.random() < 0.5)
        shadows.append(ShadowModel(box_with_members(set(members), j), members))
    victim_members = set(names[:20]) if gap_members else set()
    return box_with_members(victim_members, 99), shadows, images, idents, iids, victim_members


@pytest.mark.parametrize("online", [True, False])
def test_lira_separates_members(online):
    victim, shadows, images, idents, iids, members = _setup(True)
    attack = create_attack("lira", statistic="compactness", k=5, online=online).fit(shadows=shadows)
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    y = np.array([n in members for n in s.ids])
    assert auc_score(y, s.scores) > 0.8 and np.all(np.isfinite(s.scores))


def test_lira_without_members_is_at_chance():
    victim, shadows, images, idents, iids, _ = _setup(False)
    attack = create_attack("lira", statistic="compactness", k=5).fit(shadows=shadows)
    s = attack.score(victim, images, identity_ids=idents, image_ids=iids)
    y = np.array([int(n.split("_")[1]) < 20 for n in s.ids])  # an arbitrary split: nobody is a member
    assert 0.25 < auc_score(y, s.scores) < 0.75


def test_lira_errors():
    with pytest.raises(ConfigError):
        create_attack("lira", statistic="compactness", k=1)
    attack = create_attack("lira", k=5)
    with pytest.raises(NotFittedError):
        attack.score(box_with_members(set(), 0), np.zeros((5, SIZE, SIZE, 3), np.uint8), identity_ids=np.array(["a"] * 5))
    with pytest.raises(DataError, match="at least 2 shadow"):
        attack.fit(shadows=[])
