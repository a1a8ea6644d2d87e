"""The white-box ceiling's statistics (``evaluation.ceiling``), as the random-inclusion run uses them."""

from __future__ import annotations

import numpy as np

from faceleaks.attacks.features import mean_pairwise_cosine
from faceleaks.evaluation.ceiling import ceiling_map, ceiling_statistics


def _embedders(d: int = 8, seed: int = 0):
    """A 'base' embedding read off the image pixels and a 'teacher' = a fixed linear map of it, except that
    images whose first pixel is 255 (the 'member') are pulled towards one direction."""
    rng = np.random.default_rng(seed)
    proj, lin = rng.normal(size=(12, d)), rng.normal(size=(d, d))
    pull = rng.normal(size=d)

    def base(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1)[:, :12].astype(np.float64) @ proj

    def teacher(images: np.ndarray) -> np.ndarray:
        out = base(images) @ lin
        member = images.reshape(len(images), -1)[:, 0] == 255
        out[member] = 0.2 * out[member] + 10.0 * np.linalg.norm(out[member], axis=1, keepdims=True) * pull / np.linalg.norm(pull)
        return out
    return base, teacher


def _images(n: int, seed: int, member: bool = False) -> np.ndarray:
    x = np.random.default_rng(seed).integers(0, 255, size=(n, 2, 2, 3), dtype=np.uint8)
    x[:, 0, 0, 0] = 255 if member else 0
    return x


def test_ceiling_statistics_separate_a_pulled_person_and_match_their_definition():
    base, teacher = _embedders()
    mapping = ceiling_map(teacher, base, _images(400, 1))
    images = np.concatenate([_images(5, 2), _images(5, 3, member=True)])
    groups = {2: [np.arange(2), np.arange(5, 7)], 5: [np.arange(5), np.arange(5, 10)]}
    stats = ceiling_statistics(teacher, base, mapping, images, groups)
    assert sorted(stats) == [2, 5]
    for k in (2, 5):
        gap_out, gap_in = stats[k]["consistency_gap"]
        assert gap_in > 0.15 > 0.05 > abs(gap_out)  # the map predicts a non-member; a pulled member beats it
    rows = groups[5][1]
    t = teacher(images[rows])
    assert np.isclose(stats[5]["compactness"][1], mean_pairwise_cosine(t))
    predicted = mapping.predict(base(images[rows]) / np.linalg.norm(base(images[rows]), axis=1, keepdims=True))
    assert np.isclose(stats[5]["consistency_gap"][1], mean_pairwise_cosine(t) - mean_pairwise_cosine(predicted))


def test_ceiling_of_an_unchanged_teacher_is_near_zero_for_everyone():
    base, _ = _embedders()
    mapping = ceiling_map(base, base, _images(400, 4))
    images = _images(20, 5)
    stats = ceiling_statistics(base, base, mapping, images, {4: [np.arange(i, i + 4) for i in range(0, 20, 4)]})
    assert np.max(np.abs(stats[4]["consistency_gap"])) < 0.05
