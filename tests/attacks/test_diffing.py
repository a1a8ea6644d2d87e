import numpy as np
import pytest

from faceleaks.attacks.base import PublicBase, ReferenceSet
from faceleaks.attacks.registry import create_attack
from faceleaks.errors import ConfigError, DataError, NotFittedError
from faceleaks.metrics import auc_score
from faceleaks.serving.function import FunctionBlackBox
from tests.fakes import SIZE, make_images

D, C = 8, 12


def _decode(images):
    return [(int(im[0, 0, 0]), int(im[0, 0, 1]), int(im[0, 0, 2]), int(im[0, 1, 0])) for im in images]


class FakeBase(PublicBase):
    """Public base embedding: a per-person centre plus per-photo noise."""

    def embed(self, images):
        out = []
        for ident, _, j, off in _decode(images):
            c = np.random.default_rng([off, ident]).normal(0, 1, D)
            out.append(c + 0.3 * np.random.default_rng([off, ident, j]).normal(0, 1, D))
        return np.array(out)


def victim_box(gap):
    """Student logits = W @ base embedding, plus (for members) a per-person shift from fine-tuning."""
    w = np.random.default_rng(99).normal(0, 1, (C, D))
    base = FakeBase()

    def fn(images):
        e = base.embed(images)
        z = e @ w.T
        for n, (ident, mem, _, off) in enumerate(_decode(images)):
            z[n] += gap * mem * np.random.default_rng([off, ident, 5]).normal(0, 1, C)
        p = np.exp(z - z.max(1, keepdims=True))
        return (p / p.sum(1, keepdims=True)).astype(np.float32)

    return FunctionBlackBox(fn, input_size=SIZE)


def _run(gap, offset=3, statistic="combined"):
    box = victim_box(gap)
    ri, rid, _, _ = make_images(list(range(40)), [False] * 40, 5, offset=1)
    attack = create_attack("base-diff", statistic=statistic, k=5)
    attack.fit([ReferenceSet(box, ri, rid, np.zeros(len(ri), bool))], public_base=FakeBase())
    ids = list(range(60))
    images, idents, iids, _ = make_images(ids, [i < 30 for i in ids], 5, offset=offset)
    s = attack.score(box, images, identity_ids=idents, image_ids=iids)
    y = np.array([int(i.split("_")[1]) < 30 for i in s.ids])
    return auc_score(y, s.scores), s


@pytest.mark.parametrize("statistic", ["residual_norm", "residual_coherence", "combined"])
def test_diffing_finds_the_members_that_fine_tuning_moved(statistic):
    auc, s = _run(gap=1.0, statistic=statistic)
    assert auc > 0.8
    assert np.all(np.isfinite(s.scores)) and s.n_queries == 300


def test_diffing_without_fine_tuning_is_at_chance():
    aucs = [_run(gap=0.0, offset=o)[0] for o in range(3, 9)]
    assert abs(np.mean(aucs) - 0.5) < 0.08


def test_diffing_errors():
    with pytest.raises(ConfigError):
        create_attack("base-diff", k=1)
    attack = create_attack("base-diff", k=5)
    with pytest.raises(NotFittedError):
        attack.score(victim_box(1.0), np.zeros((5, SIZE, SIZE, 3), np.uint8), identity_ids=np.array(["a"] * 5))
    box = victim_box(1.0)
    ri, rid, _, _ = make_images(list(range(40)), [False] * 40, 5, offset=1)
    with pytest.raises(DataError, match="public base"):
        attack.fit([ReferenceSet(box, ri, rid, np.zeros(len(ri), bool))])
