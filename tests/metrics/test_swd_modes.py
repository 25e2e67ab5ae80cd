"""Sliced Wasserstein distance (scratchgan.metrics.swd) and stacked-MNIST mode statistics
(scratchgan.metrics.modes) on cases whose answer is known in closed form."""
import math

import numpy as np
import pytest

from scratchgan.metrics import modes as M
from scratchgan.metrics import swd as S


# ----------------------------------------------------------------------------- SWD pieces
def test_pyramid_reconstructs_exactly_and_keeps_constants():
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 32))
    pyr = S.laplacian_pyramid(x, 2)
    assert [p.shape[-1] for p in pyr] == [32, 16]
    np.testing.assert_allclose(S.reconstruct(pyr), x, rtol=0, atol=1e-9)
    c = np.full((1, 3, 32, 32), 7.0)
    np.testing.assert_allclose(S.pyr_down(c), np.full((1, 3, 16, 16), 7.0))
    np.testing.assert_allclose(S.pyr_up(S.pyr_down(c)), c)      # a constant has no band-pass
    assert S.pyramid_resolutions(32) == [32, 16] and S.pyramid_resolutions(64) == [64, 32, 16]


def test_patch_descriptors_cut_the_right_pixels():
    level = np.arange(2 * 3 * 10 * 10, dtype=np.float64).reshape(2, 3, 10, 10)
    rng = np.random.default_rng(1)
    d = S.patch_descriptors(level, rng, nhood=3, per_image=5)
    assert d.shape == (10, 3, 3, 3)
    rng = np.random.default_rng(1)
    img = np.repeat(np.arange(2), 5)
    cy, cx = rng.integers(1, 9, size=10), rng.integers(1, 9, size=10)
    for p in range(10):
        np.testing.assert_array_equal(d[p], level[img[p], :, cy[p] - 1:cy[p] + 2, cx[p] - 1:cx[p] + 2])


def test_sliced_wasserstein_known_cases():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 5))
    assert S.sliced_wasserstein(a, a, np.random.default_rng(0)) == 0.0
    assert S.sliced_wasserstein(a, a[::-1].copy(), np.random.default_rng(0)) == pytest.approx(0, abs=1e-12)
    # a shift s moves every projection by <s, d>: the sorted difference is |<s, d>| exactly
    s = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    got = S.sliced_wasserstein(a, a + s, np.random.default_rng(3), repeats=2, dirs=16)
    r = np.random.default_rng(3)
    want = []
    for _ in range(2):
        d = r.standard_normal((5, 16))
        d /= np.linalg.norm(d, axis=0, keepdims=True)
        want.append(np.abs(s @ d).mean())
    assert got == pytest.approx(np.mean(want), rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        S.sliced_wasserstein(a, a[:10], rng)


def test_swd_same_set_is_small_and_different_sets_are_far():
    r = np.random.default_rng(4)
    blobs = np.zeros((64, 1, 32, 32))
    yy, xx = np.mgrid[:32, :32]
    for i in range(64):
        cy, cx = r.integers(8, 24, 2)
        blobs[i, 0] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
    noise = r.uniform(0, 1, (64, 1, 32, 32))
    same = S.sliced_wasserstein_distance(blobs, blobs, seed=0)
    other = S.sliced_wasserstein_distance(blobs, noise, seed=0)
    assert set(same["levels"]) == {32, 16}
    assert other["mean"] > 5 * same["mean"]
    for lev in (32, 16):
        assert other["levels"][lev] > 5 * same["levels"][lev]
    with pytest.raises(ValueError, match="equal size"):
        S.sliced_wasserstein_distance(blobs, noise[:10])


# ----------------------------------------------------------------------------- modes
def test_mode_statistics_known_cases():
    uniform = np.arange(1000).repeat(3)
    st = M.mode_statistics_from_modes(uniform)
    assert st["modes"] == 1000 and st["kl"] == pytest.approx(0.0, abs=1e-12) and st["n"] == 3000
    one = M.mode_statistics_from_modes(np.full(50, 123))
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000))
    half = M.mode_statistics_from_modes(np.arange(500))       # 500 modes, each 1/500
    assert half["modes"] == 500 and half["kl"] == pytest.approx(math.log(2))
    two = M.mode_statistics_from_modes(np.array([0, 0, 0, 1]))
    q = np.array([0.75, 0.25])
    assert two["kl"] == pytest.approx(float(np.sum(q * np.log(1000 * q))))
    with pytest.raises(ValueError, match="1000"):
        M.mode_statistics_from_modes(np.array([1000]))
    assert list(M.modes_of_digits(np.array([[1, 2, 3], [9, 0, 7]]))) == [123, 907]


def test_classify_channels_recovers_stacked_labels(data_dir):
    from scratchgan.data.datasets import load_dataset
    from scratchgan.metrics.classifier import weights_available
    assert weights_available(), "the LeNet weights ship with the package"
    x, y = load_dataset("stacked-mnist", (-1.0, 1.0), data_dir=data_dir, split="test", limit=300)
    digits = M.classify_channels(x, data_range=(-1.0, 1.0))
    acc = (M.modes_of_digits(digits) == y).mean()
    assert acc > 0.9                     # three digits right at ~98-99% each
    st = M.stacked_mnist_modes(x, data_range=(-1.0, 1.0))
    assert st["n"] == 300 and 200 < st["modes"] <= 300
    assert st["confidence"] > 0.9 and st["confident_fraction"] > 0.8
    noise = np.random.default_rng(0).uniform(-1, 1, x.shape).astype(np.float32)
    sn = M.stacked_mnist_modes(noise, data_range=(-1.0, 1.0))
    assert sn["confident_fraction"] < st["confident_fraction"] / 2
