import numpy as np

from faceleaks.memo import ImageMemo, image_keys


def test_each_distinct_image_is_computed_once_in_first_seen_order():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (6, 4, 4, 3), dtype=np.uint8)
    batch = imgs[[2, 0, 2, 5, 0]]
    seen = []

    def compute(x):
        seen.append([image_keys(x[i : i + 1])[0] for i in range(len(x))])
        return x.reshape(len(x), -1).astype(float).sum(1)

    memo = ImageMemo()
    out = memo.get(batch, compute)
    np.testing.assert_array_equal(out, batch.reshape(5, -1).astype(float).sum(1))
    assert seen == [image_keys(imgs[[2, 0, 5]])]
    memo.get(imgs[[5, 1]], compute)
    assert seen[-1] == image_keys(imgs[[1]])
    assert len(memo) == 4


def test_empty_batch_and_update():
    memo = ImageMemo()
    assert memo.get(np.zeros((0, 2, 2, 3), np.uint8), lambda x: x, empty_shape=(0, 7)).shape == (0, 7)
    img = np.ones((1, 2, 2, 3), np.uint8)
    memo.update(image_keys(img), [np.array([9.0])])
    assert memo.get(img, lambda x: 1 / 0).tolist() == [[9.0]]
