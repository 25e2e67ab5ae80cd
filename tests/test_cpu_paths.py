"""CPU fast paths against the naive references in float64, at odd shapes: the weight
gradient's two GEMM orientations, the conv scratch buffers (reused across calls, never
aliasing a returned or cached array), the one-pass BatchNorm(+activation) and the
LeakyReLU forward."""
import numpy as np
import pytest

from scratchgan.gradcheck import assert_close
from scratchgan.ops import activation as A
from scratchgan.ops import conv as C
from scratchgan.ops import norm as B

TIGHT = dict(rtol=1e-10, atol=1e-11)

# (N, Cin, Cout, H, W, kernel, stride, padding): batch 1, 1 and 3 channels, stride 1/2,
# the models' 4/2/1, 3/2/1 and 7/1/0 convolutions, non-square maps; Cout above and below
# R*S*Cin so that both orientations of the weight-gradient GEMM run.
CONV = [
    (1, 1, 3, 9, 7, 4, 2, 1),
    (3, 3, 1, 8, 11, 4, 2, 1),
    (2, 3, 40, 7, 5, 3, 2, 1),
    (1, 3, 5, 7, 7, 7, 1, 0),
    (2, 1, 20, 6, 9, (3, 2), 1, (1, 0)),
]
# (N, Cin, Cout, H, W, kernel, stride, padding, output_padding)
CONVT = [
    (1, 3, 1, 5, 4, 4, 2, 1, 0),
    (3, 1, 3, 4, 6, 4, 2, 1, 0),
    (2, 3, 2, 1, 1, 7, 1, 0, 0),
    (1, 40, 3, 3, 5, 3, 2, 1, 1),
    (2, 1, 30, 4, 3, 4, 2, 1, 1),
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("case", CONV)
def test_conv2d_weight_grad_both_orientations_match_naive(case, rng):
    N, Ci, Co, H, W, k, s, p = case
    kh, kw = _pair(k)
    x = rng.standard_normal((N, Ci, H, W))
    w = rng.standard_normal((Co, Ci, kh, kw))
    s, p, d = _pair(s), _pair(p), (1, 1)
    y, cache = C.conv2d_forward(x, w, None, s, p, d)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = C.conv2d_backward(dy, cache)
    rdx, rdw, _ = C.conv2d_backward_naive(dy, x, w, s, p, d)
    assert_close(y, C.conv2d_forward_naive(x, w, None, s, p, d), **TIGHT)
    assert_close(dx, rdx, **TIGHT)
    assert_close(dw, rdw, **TIGHT)
    assert_close(C.conv2d_core_backward_filter(x, dy, w.shape, s, p, d), rdw, **TIGHT)
    assert dw.flags.c_contiguous and dw.shape == w.shape


def _convt_ref_grads(x, w, dy, s, p, op):
    """dx, dw of the transposed convolution from the naive conv references: it is the
    adjoint of the convolution with weight w read as (K=Cin, C=Cout, R, S)."""
    H, W = x.shape[2:]
    Pp, Qp = C.conv2d_output_size(dy.shape[2:], w.shape[2:], s, p, (1, 1))
    dxe = C.conv2d_forward_naive(dy, w, None, s, p, (1, 1))
    xe = np.zeros(x.shape[:2] + (Pp, Qp))
    xe[:, :, :H, :W] = x
    _, dw, _ = C.conv2d_backward_naive(xe, dy, w, s, p, (1, 1))
    return dxe[:, :, :H, :W], dw


@pytest.mark.parametrize("case", CONVT)
def test_conv_transpose2d_fast_matches_naive(case, rng):
    N, Ci, Co, H, W, k, s, p, op = case
    kh, kw = _pair(k)
    x = rng.standard_normal((N, Ci, H, W))
    w = rng.standard_normal((Ci, Co, kh, kw))
    b = rng.standard_normal(Co)
    s, p, op = _pair(s), _pair(p), _pair(op)
    y, cache = C.conv_transpose2d_forward(x, w, b, s, p, op, (1, 1))
    assert_close(y, C.conv_transpose2d_forward_naive(x, w, b, s, p, op, (1, 1)), **TIGHT)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = C.conv_transpose2d_backward(dy, cache)
    rdx, rdw = _convt_ref_grads(x, w, dy, s, p, op)
    assert_close(dx, rdx, **TIGHT)
    assert_close(dw, rdw, **TIGHT)
    assert_close(db, dy.sum(axis=(0, 2, 3)), **TIGHT)


def test_scratch_buffers_never_alias_results(rng):
    """Two layers of the same shapes, forward twice before either backward (as D runs
    the real and the fake batch): every returned array keeps its value, and a second
    backward on one cache (the gradient-penalty pass does that) gives the same result."""
    s, p, d = (2, 2), (1, 1), (1, 1)
    w = rng.standard_normal((4, 3, 4, 4))
    xa, xb = rng.standard_normal((2, 3, 8, 6)), rng.standard_normal((2, 3, 8, 6))
    ya, ca = C.conv2d_forward(xa, w, None, s, p, d)
    ya0 = ya.copy()
    yb, cb = C.conv2d_forward(xb, w, None, s, p, d)
    assert_close(ya, ya0, rtol=0, atol=0)
    dy = rng.standard_normal(ya.shape)
    dxa, dwa, _ = C.conv2d_backward(dy, ca)
    dxa0, dwa0 = dxa.copy(), dwa.copy()
    dxb, dwb, _ = C.conv2d_backward(dy, cb)
    dxa2, dwa2, _ = C.conv2d_backward(dy, ca)
    assert_close(dxa, dxa0, rtol=0, atol=0)
    assert_close(dwa, dwa0, rtol=0, atol=0)
    assert_close(dxa2, dxa0, rtol=0, atol=0)
    assert_close(dwa2, dwa0, rtol=0, atol=0)
    rdx, rdw, _ = C.conv2d_backward_naive(dy, xb, w, s, p, d)
    assert_close(dxb, rdx, **TIGHT)
    assert_close(dwb, rdw, **TIGHT)
    assert not np.shares_memory(dxa, dxb) and not np.shares_memory(ya, yb)
    C.clear_scratch()
    assert_close(C.conv2d_core_forward(xa, w, s, p, d), ya0, **TIGHT)


def _bn_reference(x, gamma, beta, eps, act, slope, dy, rm=None, rv=None):
    """Float64 BatchNorm by the textbook formulas (training mode, or eval with rm/rv)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shp = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    mu = x.mean(axis=axes) if rm is None else rm
    var = ((x - mu.reshape(shp)) ** 2).mean(axis=axes) if rv is None else rv
    xhat = (x - mu.reshape(shp)) / np.sqrt(var.reshape(shp) + eps)
    g = np.ones(x.shape[1]) if gamma is None else gamma
    h = xhat * g.reshape(shp) + (0 if beta is None else beta.reshape(shp))
    if act is None:
        y, dh = h, dy
    else:
        sl = 0.0 if act == "relu" else slope
        y = np.where(h > 0, h, sl * h)
        dh = np.where(h > 0, dy, sl * dy)
    dbeta = dh.sum(axis=axes)
    dgamma = (dh * xhat).sum(axis=axes)
    dxhat = dh * g.reshape(shp)
    if rm is None:
        dx = (dxhat - dxhat.mean(axis=axes).reshape(shp)
              - xhat * (dxhat * xhat).mean(axis=axes).reshape(shp)) / np.sqrt(
                  var.reshape(shp) + eps)
    else:
        dx = dxhat / np.sqrt(var.reshape(shp) + eps)
    del m
    return y, dx, dgamma, dbeta


@pytest.mark.parametrize("shape", [(3, 1, 5, 4), (2, 3, 1, 7), (5, 3), (4, 2, 3)])
@pytest.mark.parametrize("act,slope", [(None, 0.0), ("relu", 0.0), ("leaky_relu", 0.2),
                                       ("leaky_relu", 1.5)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_cpu_path_matches_reference(shape, act, slope, affine, training, rng):
    x = rng.standard_normal(shape) * 2 + 0.5
    dy = rng.standard_normal(shape)
    C_ = shape[1]
    gamma = rng.uniform(0.5, 1.5, C_) if affine else None
    beta = rng.uniform(-0.5, 0.5, C_) if affine else None
    rm, rv = rng.standard_normal(C_) * 0.1, rng.uniform(0.5, 2.0, C_)
    run_m, run_v = rm.copy(), rv.copy()
    y, cache = B.batchnorm_forward(x, gamma, beta, run_m, run_v, 0.1, 1e-5, training, act,
                                   slope)
    dx, dg, db = B.batchnorm_backward(dy, cache)
    ry, rdx, rdg, rdb = _bn_reference(x, gamma, beta, 1e-5, act, slope, dy,
                                      None if training else rm, None if training else rv)
    assert y.shape == x.shape and dx.shape == x.shape
    assert_close(y, ry, **TIGHT)
    assert_close(dx, rdx, rtol=1e-9, atol=1e-10)
    if affine:
        assert_close(dg, rdg, **TIGHT)
        assert_close(db, rdb, **TIGHT)
    else:
        assert dg is None and db is None
    if training:
        axes = (0,) + tuple(range(2, x.ndim))
        m = x.size // C_
        assert_close(run_m, 0.9 * rm + 0.1 * x.mean(axis=axes), **TIGHT)
        assert_close(run_v, 0.9 * rv + 0.1 * x.var(axis=axes) * m / (m - 1), **TIGHT)
    else:
        assert_close(run_m, rm, rtol=0, atol=0)


def test_batchnorm_cpu_path_leaves_inputs_alone(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    x0, dy0 = x.copy(), dy.copy()
    y, cache = B.batchnorm_forward(x, None, None, None, None, training=True)
    B.batchnorm_backward(dy, cache)
    assert np.array_equal(x, x0) and np.array_equal(dy, dy0)
    assert y.dtype == np.float32 and not np.shares_memory(y, x)


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0, 1.5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_leaky_relu_forward_cpu(slope, dtype, rng):
    x = rng.standard_normal((3, 1, 5, 2)).astype(dtype)
    y, cache = A.leaky_relu_forward(x, slope)
    assert y.dtype == dtype
    assert_close(y, np.where(x > 0, x, slope * x).astype(dtype), rtol=1e-6, atol=0)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_close(A.leaky_relu_backward(dy, cache), np.where(x > 0, dy, slope * dy),
                 rtol=1e-6, atol=0)


def _channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("dy_layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("act,slope", [(None, 0.0), ("relu", 0.0), ("leaky_relu", 0.2)])
def test_batchnorm_channels_last_input(dy_layout, act, slope, rng):
    """The CPU convolutions return channels-last views; BatchNorm reads them as they are
    and returns the same layout, with the values of the NCHW computation."""
    x = rng.standard_normal((3, 2, 5, 4)) * 2 + 0.5
    dy = rng.standard_normal(x.shape)
    gamma, beta = rng.uniform(0.5, 1.5, 2), rng.uniform(-0.5, 0.5, 2)
    xc = _channels_last(x)
    assert not xc.flags.c_contiguous
    y, cache = B.batchnorm_forward(xc, gamma, beta, None, None, 0.1, 1e-5, True, act, slope)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous
    dx, dg, db = B.batchnorm_backward(dy if dy_layout == "nchw" else _channels_last(dy), cache)
    ry, rdx, rdg, rdb = _bn_reference(x, gamma, beta, 1e-5, act, slope, dy)
    assert_close(y, ry, **TIGHT)
    assert_close(dx, rdx, rtol=1e-9, atol=1e-10)
    assert_close(dg, rdg, **TIGHT)
    assert_close(db, rdb, **TIGHT)


def test_conv_outputs_are_channels_last_views(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    y, cache = C.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1))
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous
    # a channels-last input gives the same result as its NCHW copy
    y2, _ = C.conv2d_forward(_channels_last(x), w, None, (1, 1), (1, 1), (1, 1))
    assert_close(y2, y, **TIGHT)
    dx, dw, _ = C.conv2d_backward(_channels_last(np.ones(y.shape)), cache)
    rdx, rdw, _ = C.conv2d_backward_naive(np.ones(y.shape), x, w, (1, 1), (1, 1), (1, 1))
    assert_close(dx, rdx, **TIGHT)
    assert_close(dw, rdw, **TIGHT)
