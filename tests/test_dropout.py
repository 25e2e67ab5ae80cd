"""Inverted dropout: ops gradcheck with a fixed mask, train/eval behaviour, rng, validation."""
import numpy as np
import pytest

from scratchgan.gradcheck import assert_close, gradcheck
from scratchgan.nn import Dropout
from scratchgan.ops.dropout import dropout_backward, dropout_forward, dropout_mask
from scratchgan.rng import manual_seed


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 3, 4, 5)])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_gradcheck_ops_fixed_mask(shape, p, rng):
    mask = rng.random(shape) >= p
    x = rng.standard_normal(shape)
    gradcheck(lambda x: dropout_forward(x, p, mask), dropout_backward, [x])


def test_forward_formula(rng):
    x = rng.standard_normal((4, 6))
    mask = rng.random(x.shape) >= 0.3
    y, _ = dropout_forward(x, 0.3, mask)
    assert_close(y, np.where(mask, x / 0.7, 0.0))


def test_train_mode_drops_and_rescales(rng):
    layer = Dropout(0.3, rng=np.random.default_rng(0))
    x = rng.uniform(1.0, 2.0, (200, 500))
    y = layer(x)
    kept = y != 0
    frac_dropped = 1 - kept.mean()
    # 100000 Bernoulli draws: standard error of the fraction is about 0.0015
    assert abs(frac_dropped - 0.3) < 0.01
    assert_close(y[kept], x[kept] / 0.7)
    assert abs(y.mean() / x.mean() - 1) < 0.01  # inverted dropout keeps the expectation
    dy = rng.standard_normal(x.shape)
    assert_close(layer.backward(dy), np.where(kept, dy / 0.7, 0.0), name="dx")


def test_eval_mode_is_identity(rng):
    layer = Dropout(0.5).eval()
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(layer(x), x)
    dy = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(layer.backward(dy), dy)
    zero = Dropout(0.0)
    np.testing.assert_array_equal(zero(x), x)
    np.testing.assert_array_equal(zero.backward(dy), dy)


def test_masks_come_from_the_project_rng(rng):
    x = np.ones((5, 8))
    manual_seed(11)
    a = Dropout(0.5)(x)
    manual_seed(11)
    b = Dropout(0.5)(x)
    np.testing.assert_array_equal(a, b)
    c = Dropout(0.5, rng=np.random.default_rng(3))(x)
    d = Dropout(0.5, rng=np.random.default_rng(3))(x)
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(a, Dropout(0.5)(x))  # the stream moves on
    keep = dropout_mask((5, 8), 0.5, np.random.default_rng(3))
    np.testing.assert_array_equal(c, np.where(keep, 2.0, 0.0))


def test_keeps_dtype(rng):
    x = rng.standard_normal((4, 4)).astype(np.float32)
    y = Dropout(0.5)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[y != 0], 2 * x[y != 0])


def test_bad_arguments():
    for p in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\)"):
            Dropout(p)
    for p in ("0.5", True, None):
        with pytest.raises(TypeError, match=r"Dropout: p must be a number"):
            Dropout(p)
    with pytest.raises(TypeError, match=r"Dropout\(p=0.5\): expected a float32 or float64 input"):
        Dropout(0.5)(np.arange(4))
    with pytest.raises(ValueError, match=r"dropout_forward: mask shape \(2, 2\) differs"):
        dropout_forward(np.ones((2, 3)), 0.5, np.ones((2, 2), bool))


@pytest.mark.gpu
def test_cupy_same_mask_as_cpu(rng):
    from scratchgan.backend import to_device, to_numpy
    x = rng.standard_normal((6, 9))
    a = Dropout(0.4, rng=np.random.default_rng(5))(x)
    b = Dropout(0.4, rng=np.random.default_rng(5))(to_device(x, "cuda"))
    assert_close(to_numpy(b), a)
