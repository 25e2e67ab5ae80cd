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


# ----------------------------------------------------------------------------- evaluators
class PoolModel:
    """A stand-in generator: its samples are the rows of ``pool``, in order (cycling)."""

    def __init__(self, pool, data_range=(-1.0, 1.0)):
        self.pool, self.data_range, self.next = np.asarray(pool), data_range, 0

    def sample_noise(self, n, rng=None, labels=None):
        i = (self.next + np.arange(n)) % len(self.pool)
        self.next += n
        return {"i": i}

    def generate(self, noise):
        return self.pool[noise["i"]]


def _ctx(model, **data):
    from scratchgan.metrics.evaluators import EvalContext
    return EvalContext(model=model, data=data, seed=0)


def test_generate_samples_chunks_and_checks():
    from scratchgan.metrics.sampling import generate_samples, pad_to
    pool = np.arange(7 * 2, dtype=np.float32).reshape(7, 1, 1, 2)
    a = generate_samples(PoolModel(pool), 10, np.random.default_rng(0), chunk=3)
    b = generate_samples(PoolModel(pool), 10, np.random.default_rng(0), chunk=100)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:7], pool)
    with pytest.raises(ValueError, match="n must be"):
        generate_samples(PoolModel(pool), 0, None)
    with pytest.raises(ValueError, match="3 labels for 4"):
        generate_samples(PoolModel(pool), 4, None, labels=[0, 1, 2])
    x = np.ones((2, 1, 28, 28))
    p = pad_to(x, 32, -1.0)
    assert p.shape == (2, 1, 32, 32) and p[:, :, 2:30, 2:30].min() == 1 and p.sum() == \
        2 * (28 * 28 - (32 * 32 - 28 * 28))
    assert pad_to(p, 32, 0.0) is p
    with pytest.raises(ValueError, match="cannot centre"):
        pad_to(np.ones((1, 1, 27, 27)), 32, 0.0)


def test_swd_evaluator_of_real_images_equals_the_real_floor():
    """A model whose samples are the second training subset scores exactly the real floor;
    noise scores far above it."""
    from scratchgan.metrics.evaluators import get_evaluator
    r = np.random.default_rng(5)
    yy, xx = np.mgrid[:28, :28]
    x = np.empty((96, 1, 28, 28), np.float32)
    for i in range(len(x)):
        cy, cx = r.integers(6, 22, 2)
        x[i, 0] = 2 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 12.0) - 1
    swd = get_evaluator("swd")
    ref, second = S.disjoint_subsets(x, 32, 7)
    real = swd(_ctx(PoolModel(second), x_train=x), n_images=32, real_floor=True)
    assert set(real) == {"swd_mean", "swd_32", "swd_16", "swd_real_mean", "swd_real_32",
                         "swd_real_16"}
    assert real["swd_mean"] == real["swd_real_mean"] > 0
    noise = swd(_ctx(PoolModel(r.uniform(-1, 1, (32, 1, 28, 28))), x_train=x), n_images=32)
    assert noise["swd_mean"] > 5 * real["swd_real_mean"]
    with pytest.raises(ValueError, match="need at least 194"):
        swd(_ctx(PoolModel(second), x_train=x), n_images=97)
    with pytest.raises(ValueError, match="no x_train"):
        swd(_ctx(PoolModel(second)), n_images=8)


def test_reference_pairs_are_the_four_named_sets():
    tr = np.arange(20)[:, None, None, None] * np.ones((1, 1, 2, 2))
    te = 100 + np.arange(8)[:, None, None, None] * np.ones((1, 1, 2, 2))
    pairs = S.reference_pairs(tr, te, 4, seed=0)
    assert [p[0] for p in pairs][2] == "two disjoint random train subsets"
    a, b = pairs[2][1], pairs[2][2]
    assert not set(a[:, 0, 0, 0]) & set(b[:, 0, 0, 0])
    np.testing.assert_array_equal(pairs[3][1], te[:4])
    np.testing.assert_array_equal(pairs[3][2], te[4:])
    with pytest.raises(ValueError, match="fewer than"):
        S.reference_pairs(tr, te, 5)


def _lenet_or_skip():
    from scratchgan.metrics.classifier import weights_available
    if not weights_available():
        pytest.skip("LeNet weights not shipped")


def test_stacked_mnist_modes_evaluator_known_cases(data_dir):
    """One repeated image covers one mode with KL log 1000 exactly; the real test images score
    as the function on them does."""
    _lenet_or_skip()
    from scratchgan.data.datasets import load_dataset
    from scratchgan.metrics.evaluators import get_evaluator
    x, _ = load_dataset("stacked-mnist", (-1.0, 1.0), data_dir=data_dir, split="test", limit=200)
    ev = get_evaluator("stacked-mnist-modes")
    one = ev(_ctx(PoolModel(x[:1])), n_samples=50)
    assert one["modes"] == 1 and one["kl"] == pytest.approx(M.KL_ONE_MODE) and one["n"] == 50
    real = ev(_ctx(PoolModel(x)), n_samples=200)
    assert real == M.stacked_mnist_modes(x, data_range=(-1.0, 1.0))
    assert real["modes"] > 150
    with pytest.raises(ValueError, match="n_samples"):
        ev(_ctx(PoolModel(x)), n_samples=0)


def test_lenet_fd_and_is_evaluators_known_cases(data_dir):
    _lenet_or_skip()
    from scratchgan.data.datasets import load_dataset
    from scratchgan.metrics.evaluators import get_evaluator
    test, _ = load_dataset("mnist32", (-1.0, 1.0), data_dir=data_dir, split="test", limit=500)
    fd, is_ = get_evaluator("lenet-fd"), get_evaluator("lenet-is")
    same = fd(_ctx(PoolModel(test), x_test=test), n_samples=500)["fd_lenet"]
    assert abs(same) < 1e-3                      # the reference itself: distance 0
    noise = PoolModel(np.random.default_rng(0).uniform(-1, 1, (500, 1, 32, 32)))
    assert fd(_ctx(noise, x_test=test), n_samples=500)["fd_lenet"] > 10
    one = is_(_ctx(PoolModel(test[:1])), n_samples=100, splits=2)
    assert one["is_lenet"] == pytest.approx(1.0, abs=1e-9) and one["is_lenet_std"] < 1e-9
    assert is_(_ctx(PoolModel(test)), n_samples=500, splits=2)["is_lenet"] > 5
    with pytest.raises(ValueError, match="expected"):
        fd(_ctx(PoolModel(np.zeros((4, 3, 32, 32))), x_test=test), n_samples=4)
