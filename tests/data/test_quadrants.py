"""The quadrant-completion task (scratchgan.data.quadrants) and its generated set."""
import numpy as np
import pytest

from scratchgan.data import dataset_info, load_dataset
from scratchgan.data.quadrants import (MASK_VALUE, n_revealed_of, quadrant_task,
                                       revealed_mask)


def images(n=5, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_split_partitions_the_image(n):
    img = images()
    x, y, mask = quadrant_task(img, n)
    assert x.shape == y.shape == mask.shape == img.shape and x.dtype == np.float32
    hidden = mask.astype(bool)
    # every pixel is in exactly one of x and y; the other holds the marker
    assert np.all((x == MASK_VALUE) == hidden) and np.all((y == MASK_VALUE) == ~hidden)
    assert np.array_equal(np.where(hidden, y, x), img)
    assert hidden[0].sum() == (4 - n) * 14 * 14


def test_fixed_reveal_order():
    """1: bottom-left; 2: the left half; 3: all but bottom-right (the reproduction's protocol)."""
    m1, m2, m3 = (revealed_mask(n) for n in (1, 2, 3))
    assert m1[14:, :14].all() and m1.sum() == 196
    assert m2[:, :14].all() and m2.sum() == 392
    assert not m3[14:, 14:].any() and m3.sum() == 588
    assert (m1 <= m2).all() and (m2 <= m3).all()


def test_random_quadrants_and_errors():
    img = images(20)
    x, y, mask = quadrant_task(img[:, 0], 2, rng=np.random.default_rng(3))
    assert x.shape == (20, 28, 28)
    per = mask.reshape(20, 2, 14, 2, 14).mean(axis=(2, 4))   # per-quadrant hidden fraction
    assert np.all((per == 0) | (per == 1)) and np.all(per.sum(axis=(1, 2)) == 2)
    assert len({per[i].tobytes() for i in range(20)}) > 1       # not all the same choice
    with pytest.raises(ValueError, match="1, 2 or 3"):
        quadrant_task(img, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quadrant_task(img * 2 - 1, 1)
    with pytest.raises(ValueError, match="H == W"):
        quadrant_task(np.zeros((2, 28, 20)), 1)


def test_generated_set_registered(data_dir):
    info = dataset_info("mnist-quadrants")
    assert info["shape"] == (2, 28, 28) and info["num_classes"] == 10
    x, y = load_dataset("mnist-quadrants", data_dir=data_dir, limit=30, split="test")
    ref, lab = load_dataset("mnist", data_dir=data_dir, limit=30, split="test")
    assert x.shape == (30, 2, 28, 28) and np.array_equal(y, lab)
    for i in range(30):
        n = int(n_revealed_of(i))
        xi, yi, _ = quadrant_task(ref[i:i + 1], n)
        assert np.array_equal(x[i, 0], xi[0, 0]) and np.array_equal(x[i, 1], yi[0, 0])
    with pytest.raises(ValueError, match="data_range"):
        load_dataset("mnist-quadrants", data_range=(-1, 1), data_dir=data_dir, limit=3)
