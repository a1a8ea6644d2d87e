"""The dlib activation cache must not make results depend on what an earlier run cached."""

from __future__ import annotations

import numpy as np

from faceleaks.models.dlib_teacher import ActivationStore


def test_activations_do_not_depend_on_batch_mates_or_cache_state(tmp_path):
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (40, 150, 150, 3), dtype=np.uint8)
    warm = ActivationStore(14, tmp_path / "warm")
    alone = warm.get(chips[5:6])  # one chip in a batch of its own, as a small earlier run would
    mixed = warm.get(chips)       # chip 5 now comes from the cache, the rest are computed in batches
    fresh = ActivationStore(14, tmp_path / "cold").get(chips)  # everything computed together
    assert mixed.shape[0] == 40 and mixed.dtype == np.float32
    np.testing.assert_array_equal(alone[0], fresh[5])
    np.testing.assert_array_equal(mixed, fresh)
    reread = ActivationStore(14, tmp_path / "warm").get(chips)  # from the shards on disk
    np.testing.assert_array_equal(reread, fresh)
