"""The image-to-image tasks: Sobel edges, restyling, quadrant inputs, shapes, determinism,
disjoint domains, registration in GENERATED."""
import numpy as np
import pytest

from scratchgan.data import dataset_info, load_dataset
from scratchgan.data import image2image as i2i


def test_sobel_edges_of_a_step_and_a_flat_image():
    img = np.zeros((1, 6, 6))
    img[:, :, 3:] = 1.0
    e = i2i.sobel_edges(img)
    # columns 2 and 3 straddle the step: |gx| = 4 inside (clipped to 1 after halving)
    assert np.allclose(e[0, 1:5, 2:4], 1.0)
    assert np.allclose(e[0, 1:5, 0:2], 0.0)
    assert np.allclose(i2i.sobel_edges(np.full((2, 1, 5, 5), 0.3))[:, :, 1:4, 1:4], 0.0)


def test_restyle_dilates_inverts_and_colours():
    img = np.zeros((1, 1, 5, 5))
    img[0, 0, 2, 2] = 1.0
    r = i2i.restyle(img)
    assert r.shape == (1, 3, 5, 5)
    np.testing.assert_allclose(r[0, :, 1, 1], i2i.INK)        # inside the 3x3 dilation
    np.testing.assert_allclose(r[0, :, 0, 0], i2i.PAPER)      # outside: paper


def test_quadrant_input_reuses_the_cvae_task():
    from scratchgan.data.quadrants import quadrant_task
    img = np.random.default_rng(0).uniform(0, 1, (2, 1, 28, 28)).astype(np.float32)
    for shown in (1, 2, 3):
        x, _, _ = quadrant_task(img, shown)
        a = i2i.quadrant_input(img, shown, (-1.0, 1.0))
        np.testing.assert_allclose(a, -1.0 + 2.0 * x, rtol=1e-6)
        assert (a == -3.0).sum() == 2 * (4 - shown) * 14 * 14


@pytest.mark.parametrize("name,shape", [("edges2fashion", (2, 28, 28)),
                                        ("quadrants-paired2", (2, 28, 28)),
                                        ("mnist2restyled", (6, 28, 28))])
def test_registered_sets_load_deterministically(name, shape, data_dir):
    assert dataset_info(name)["shape"] == shape
    x1, y1 = load_dataset(name, (-1.0, 1.0), data_dir=data_dir, split="test", limit=50)
    x2, y2 = load_dataset(name, (-1.0, 1.0), data_dir=data_dir, split="test", limit=50)
    assert x1.shape == (50,) + shape and x1.dtype == np.float32 and y1.dtype == np.int64
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert x1.max() <= 1.0 and (x1.min() >= -1.0 or name.startswith("quadrants"))


def test_paired_edges_come_from_the_same_image(data_dir):
    x, y = load_dataset("edges2fashion", (0.0, 1.0), data_dir=data_dir, split="test", limit=8)
    f, fy = load_dataset("fashion-mnist", (0.0, 1.0), data_dir=data_dir, split="test", limit=8)
    np.testing.assert_array_equal(x[:, 1:], f)
    np.testing.assert_allclose(x[:, :1], i2i.sobel_edges(f), atol=1e-6)
    assert np.array_equal(y, fy)


def test_unpaired_domains_are_disjoint_halves(data_dir):
    xa, ya, xb, yb = i2i.MNIST2RESTYLED.load_domains("test", (0.0, 1.0), data_dir)
    m, my = load_dataset("mnist", (0.0, 1.0), data_dir=data_dir, split="test")
    h = len(m) // 2
    assert len(xa) == len(xb) == h
    np.testing.assert_allclose(xa[:, :1], m[:h], atol=1e-6)          # A: first half
    np.testing.assert_allclose(xb, i2i.restyle(m[h:]), atol=1e-6)     # B: second half
    assert np.array_equal(ya, my[:h]) and np.array_equal(yb, my[h:])
