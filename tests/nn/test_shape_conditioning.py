"""Flatten/Unflatten/Reshape, Concat, OneHotMap and one_hot."""
import numpy as np
import pytest

from scratchgan.gradcheck import assert_close, gradcheck, gradcheck_module
from scratchgan.nn import Concat, Flatten, OneHotMap, Reshape, Sequential, Unflatten, one_hot
from scratchgan.ops.conditioning import (concat_backward, concat_forward, onehot_map_backward,
                                         onehot_map_forward)


# -- shape layers -------------------------------------------------------------------
@pytest.mark.parametrize("layer,shape,out", [
    (Flatten(), (2, 3, 4, 5), (2, 60)),
    (Flatten(2), (2, 3, 4, 5), (2, 3, 20)),
    (Flatten(), (1, 7), (1, 7)),
    (Unflatten(1, (3, 2, 2)), (4, 12), (4, 3, 2, 2)),
    (Unflatten(-1, (2, 3)), (1, 5, 6), (1, 5, 2, 3)),
    (Reshape(3, 2, 2), (4, 12), (4, 3, 2, 2)),
    (Reshape(-1, 4), (2, 2, 2, 3), (2, 3, 4)),
    (Reshape(6), (3, 1, 2, 3), (3, 6)),
])
def test_shape_layers(layer, shape, out, rng):
    x = rng.standard_normal(shape)
    y = layer(x)
    assert y.shape == out
    np.testing.assert_array_equal(y.ravel(), x.ravel())  # C order is kept
    layer.clear_cache()
    gradcheck_module(layer, x)
    layer(x)
    assert layer.backward(np.ones(out)).shape == shape


def test_shape_layer_errors():
    with pytest.raises(ValueError, match=r"Reshape\(128, 7, 7\): cannot reshape an input of shape "
                                         r"\(2, 6000\) \(6000 elements per sample\) to \(N, 128, 7, 7\)"):
        Reshape(128, 7, 7)(np.zeros((2, 6000)))
    with pytest.raises(ValueError, match=r"Unflatten\(1, \(3, 4\)\): dimension 1 must have 12 elements"):
        Unflatten(1, (3, 4))(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=1\): expected an input with more than 1 "
                                         r"dimensions, got shape \(5,\)"):
        Flatten()(np.zeros(5))
    with pytest.raises(ValueError, match=r"Reshape: at most one of sizes may be -1"):
        Reshape(-1, -1)
    with pytest.raises(ValueError, match=r"Reshape: sizes must be positive ints"):
        Reshape(3, 0)
    with pytest.raises(TypeError, match=r"Flatten\(start_dim=1\): expected the input to be a numpy"):
        Flatten()([[1.0]])


# -- Concat ----------------------------------------------------------------------------
@pytest.mark.parametrize("shapes,dim", [
    ([(4, 3), (4, 5)], 1),
    ([(1, 2)], 1),
    ([(2, 1), (2, 4), (2, 2)], -1),
    ([(2, 1, 3, 3), (2, 3, 3, 3)], 1),
    ([(1, 2, 2, 5), (1, 1, 2, 5), (1, 4, 2, 5)], 1),
    ([(2, 3), (5, 3)], 0),
])
def test_concat(shapes, dim, rng):
    xs = [rng.standard_normal(s) for s in shapes]
    layer = Concat(dim)
    y = layer(*xs)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=dim))
    dy = rng.standard_normal(y.shape)
    dxs = layer.backward(dy)
    assert isinstance(dxs, tuple) and len(dxs) == len(xs)
    np.testing.assert_array_equal(np.concatenate(dxs, axis=dim), dy)
    assert all(d.flags.c_contiguous for d in dxs)
    results = gradcheck_module(layer, *xs)
    assert len(results) == len(xs)


def test_concat_ops_gradcheck(rng):
    a, b = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 1, 2, 2))
    gradcheck(lambda a, b: concat_forward([a, b], 1), concat_backward, [a, b])


def test_concat_errors():
    cat = Concat()
    with pytest.raises(ValueError, match=r"Concat\(dim=1\): all inputs must match except in "
                                         r"dimension 1; input 0 has shape \(4, 3\), input 1 has shape \(5, 2\)"):
        cat(np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(TypeError, match=r"Concat\(dim=1\): input 1 has dtype float32 but input 0 has dtype float64"):
        cat(np.zeros((4, 3)), np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"Concat\(dim=1\): expected a 2-D input 1, got shape \(4, 2, 1\)"):
        cat(np.zeros((4, 3)), np.zeros((4, 2, 1)))
    with pytest.raises(ValueError, match=r"Concat\(dim=1\): expected at least one input"):
        cat()
    with pytest.raises(ValueError, match=r"Concat\(dim=3\): dim 3 is out of range for 2-D inputs"):
        Concat(3)(np.zeros((2, 2)))


# -- OneHotMap and one_hot ------------------------------------------------------------------
@pytest.mark.parametrize("n,k,h,w", [(1, 1, 1, 1), (3, 10, 4, 5), (2, 4, 7, 7)])
def test_onehot_map(n, k, h, w, rng):
    labels = rng.integers(0, k, n)
    y1h = one_hot(labels, k, dtype=np.float64)
    layer = OneHotMap(h, w)
    y = layer(y1h)
    assert y.shape == (n, k, h, w) and y.flags.c_contiguous
    for i in range(n):
        for c in range(k):
            assert np.all(y[i, c] == (1.0 if c == labels[i] else 0.0))
    dy = rng.standard_normal(y.shape)
    assert_close(layer.backward(dy), dy.sum(axis=(2, 3)))
    gradcheck_module(layer, rng.standard_normal((n, k)))
    gradcheck(lambda a: onehot_map_forward(a, h, w), onehot_map_backward, [rng.standard_normal((n, k))])


def test_onehot_map_errors():
    with pytest.raises(ValueError, match=r"OneHotMap\(4, 4\): expected a 2-D one-hot input \(N, K\), "
                                         r"got shape \(2, 3, 1\)"):
        OneHotMap(4, 4)(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match=r"OneHotMap: height must be >= 1"):
        OneHotMap(0, 4)


def test_one_hot():
    out = one_hot(np.array([2, 0, 1, 2]), 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert one_hot([1], 2, dtype=np.float64).dtype == np.float64
    assert one_hot(np.array([3], np.uint8), 10, xp=np)[0, 3] == 1
    assert one_hot(np.zeros(0, np.int64), 4).shape == (0, 4)
    with pytest.raises(ValueError, match=r"one_hot: labels must be in \[0, 10\), got values from 0 to 10"):
        one_hot(np.array([0, 10]), 10)
    with pytest.raises(ValueError, match=r"one_hot: labels must be in \[0, 3\), got values from -1 to 2"):
        one_hot(np.array([-1, 2]), 3)
    with pytest.raises(TypeError, match=r"one_hot: expected integer labels, got dtype float64"):
        one_hot(np.array([0.5]), 3)
    with pytest.raises(ValueError, match=r"one_hot: expected a 1-D array of labels \(N,\), got shape \(2, 1\)"):
        one_hot(np.array([[0], [1]]), 3)


def test_cgan_style_conditioning(rng):
    """x (N,1,4,4) and labels broadcast to (N,K,4,4) concatenated along channels."""
    x = rng.standard_normal((3, 1, 4, 4))
    y1h = one_hot(np.array([0, 2, 1]), 3, dtype=np.float64)
    maps, cat = OneHotMap(4, 4), Concat(1)
    h = cat(x, maps(y1h))
    assert h.shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(h[:, 0:1], x)
    dy = rng.standard_normal(h.shape)
    dx, dmaps = cat.backward(dy)
    dlab = maps.backward(dmaps)
    np.testing.assert_array_equal(dx, dy[:, 0:1])
    assert_close(dlab, dy[:, 1:].sum(axis=(2, 3)))
    # Concat in a Sequential receives a single input
    seq = Sequential(Flatten(), Concat())
    assert seq(x).shape == (3, 16)


@pytest.mark.gpu
def test_cupy_conditioning(rng):
    from scratchgan.backend import cupy, to_device, to_numpy
    cp = cupy()
    labels = cp.asarray([1, 0, 2])
    y1h = one_hot(labels, 3, dtype=np.float64)
    assert isinstance(y1h, cp.ndarray)
    np.testing.assert_array_equal(to_numpy(y1h), one_hot(np.array([1, 0, 2]), 3, dtype=np.float64))
    assert isinstance(one_hot(np.array([1]), 3, xp=cp), cp.ndarray)
    with pytest.raises(ValueError, match=r"one_hot: labels must be in \[0, 3\)"):
        one_hot(cp.asarray([3]), 3)
    x = to_device(rng.standard_normal((3, 2, 4, 4)), "cuda")
    maps, cat, flat = OneHotMap(4, 4), Concat(), Flatten()
    h = flat(cat(x, maps(y1h)))
    assert isinstance(h, cp.ndarray) and h.shape == (3, 80)
    dx, dm = cat.backward(flat.backward(cp.ones_like(h)))
    assert_close(to_numpy(maps.backward(dm)), np.full((3, 3), 16.0))
    with pytest.raises(ValueError, match=r"Concat\(dim=1\): input 1 is on 'cpu' but input 0 is on 'cuda'"):
        cat.clear_cache()
        cat(x, np.zeros((3, 1, 4, 4)))
