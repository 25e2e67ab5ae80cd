"""Conv2d / ConvTranspose2d: fast path vs naive references, gradient checks, PyTorch
agreement (when torch is installed), GPU dispatch of the primitives, and bad inputs."""
import sys
import types

import numpy as np
import pytest

from scratchgan.gradcheck import assert_close, gradcheck, gradcheck_module
from scratchgan.nn import CacheError, Conv2d, ConvTranspose2d, no_grad
from scratchgan.ops import conv as C

TIGHT = dict(rtol=1e-10, atol=1e-11)

# (N, C, K, H, W, kernel, stride, padding, dilation)
CONV_CASES = [
    (1, 1, 1, 5, 5, 3, 1, 0, 1),
    (2, 3, 4, 7, 6, (3, 2), (2, 1), (1, 2), (1, 2)),
    (1, 2, 3, 6, 9, (2, 3), 3, 2, 2),
    (2, 2, 2, 5, 7, 1, 2, 0, 1),
    (1, 3, 2, 8, 5, 4, 2, 1, 1),
    (1, 2, 2, 4, 4, 4, 1, 2, 2),
]
# (N, Cin, Cout, H, W, kernel, stride, padding, output_padding, dilation)
CONVT_CASES = [
    (1, 1, 1, 3, 3, 3, 1, 0, 0, 1),
    (2, 3, 2, 4, 3, 4, 2, 1, 1, 1),
    (1, 2, 3, 3, 5, (3, 2), (3, 1), (2, 0), (2, 0), (1, 2)),
    (1, 2, 2, 3, 4, 3, 1, 1, 1, 2),          # output_padding >= stride, allowed by dilation
    (2, 2, 3, 4, 4, (2, 3), (2, 3), (0, 1), (1, 2), 1),
]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_inputs(case, rng, dtype=np.float64):
    N, Ci, K, H, W, k, s, p, d = case
    kh, kw = pair(k)
    x = rng.standard_normal((N, Ci, H, W)).astype(dtype)
    w = rng.standard_normal((K, Ci, kh, kw)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    return x, w, b, pair(s), pair(p), pair(d)


def convt_inputs(case, rng, dtype=np.float64):
    N, Ci, Co, H, W, k, s, p, op, d = case
    kh, kw = pair(k)
    x = rng.standard_normal((N, Ci, H, W)).astype(dtype)
    w = rng.standard_normal((Ci, Co, kh, kw)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype)
    return x, w, b, pair(s), pair(p), pair(op), pair(d)


# ----------------------------------------------------------------------------- sizes
def test_output_size_helpers():
    assert C.conv2d_output_size((28, 28), 4, 2, 1, 1) == (14, 14)
    assert C.conv2d_output_size((7, 9), (3, 2), (2, 1), (1, 0), (2, 1)) == (3, 8)
    assert C.conv_transpose2d_output_size((7, 7), 4, 2, 1, 0, 1) == (14, 14)
    assert C.conv_transpose2d_output_size((3, 4), 3, 1, 1, 1, 2) == (6, 7)


# ----------------------------------------------------------------------------- fast == naive
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_fast_matches_naive_float64(case, rng):
    x, w, b, s, p, d = conv_inputs(case, rng)
    y, cache = C.conv2d_forward(x, w, b, s, p, d)
    assert_close(y, C.conv2d_forward_naive(x, w, b, s, p, d), name="y", **TIGHT)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = C.conv2d_backward(dy, cache)
    ndx, ndw, ndb = C.conv2d_backward_naive(dy, x, w, s, p, d)
    assert_close(dx, ndx, name="dx", **TIGHT)
    assert_close(dw, ndw, name="dw", **TIGHT)
    assert_close(db, ndb, name="db", **TIGHT)
    # the bias-free primitives give the same three results
    assert_close(C.conv2d_core_forward(x, w, s, p, d), y - b.reshape(1, -1, 1, 1), name="core y", **TIGHT)
    assert_close(C.conv2d_core_backward_data(dy, w, x.shape, s, p, d), ndx, name="core dx", **TIGHT)
    assert_close(C.conv2d_core_backward_filter(x, dy, w.shape, s, p, d), ndw, name="core dw", **TIGHT)


@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose2d_fast_matches_naive_float64(case, rng):
    x, w, b, s, p, op, d = convt_inputs(case, rng)
    y, cache = C.conv_transpose2d_forward(x, w, b, s, p, op, d)
    assert y.shape[2:] == C.conv_transpose2d_output_size(x.shape[2:], w.shape[2:], s, p, op, d)
    assert_close(y, C.conv_transpose2d_forward_naive(x, w, b, s, p, op, d), name="y", **TIGHT)
    # backward vs the naive references: dx = conv(dy, w) cropped, dw = conv's filter
    # gradient with x := dy and dy := x (zero-extended to the adjoint conv's size)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = C.conv_transpose2d_backward(dy, cache)
    full = C.conv2d_forward_naive(dy, w, None, s, p, d)
    assert_close(dx, full[:, :, :x.shape[2], :x.shape[3]], name="dx", **TIGHT)
    xe = np.zeros(full.shape)
    xe[:, :, :x.shape[2], :x.shape[3]] = x
    assert_close(dw, C.conv2d_backward_naive(xe, dy, w, s, p, d)[1], name="dw", **TIGHT)
    assert_close(db, dy.sum(axis=(0, 2, 3)), name="db", **TIGHT)


@pytest.mark.parametrize("case", CONV_CASES[1:3])
def test_conv2d_float32_close_to_float64(case, rng):
    x, w, b, s, p, d = conv_inputs(case, rng)
    y32, cache = C.conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), s, p, d)
    assert y32.dtype == np.float32
    assert_close(y32, C.conv2d_forward_naive(x, w, b, s, p, d), name="y float32")
    dy = rng.standard_normal(y32.shape)
    grads32 = C.conv2d_backward(dy.astype(np.float32), cache)
    assert all(g.dtype == np.float32 for g in grads32)
    for g32, g64, n in zip(grads32, C.conv2d_backward_naive(dy, x, w, s, p, d), "dx dw db".split()):
        assert_close(g32, g64, name=n)


@pytest.mark.parametrize("case", CONVT_CASES[1:3])
def test_conv_transpose2d_float32_close_to_float64(case, rng):
    x, w, b, s, p, op, d = convt_inputs(case, rng)
    f32 = [a.astype(np.float32) for a in (x, w, b)]
    y32, cache = C.conv_transpose2d_forward(*f32, s, p, op, d)
    assert y32.dtype == np.float32
    y64, cache64 = C.conv_transpose2d_forward(x, w, b, s, p, op, d)
    assert_close(y32, y64, name="y float32")
    dy = rng.standard_normal(y32.shape)
    for g32, g64, n in zip(C.conv_transpose2d_backward(dy.astype(np.float32), cache),
                           C.conv_transpose2d_backward(dy, cache64), "dx dw db".split()):
        assert g32.dtype == np.float32
        assert_close(g32, g64, name=n)


def test_primitives_are_adjoint(rng):
    """<conv(x, w), dy> = <x, backward_data(dy)> = <w, backward_filter(x, dy)>."""
    x, w, _, s, p, d = conv_inputs(CONV_CASES[1], rng)
    y = C.conv2d_core_forward(x, w, s, p, d)
    dy = rng.standard_normal(y.shape)
    lhs = np.sum(y * dy)
    assert np.isclose(lhs, np.sum(x * C.conv2d_core_backward_data(dy, w, x.shape, s, p, d)), rtol=1e-12)
    assert np.isclose(lhs, np.sum(w * C.conv2d_core_backward_filter(x, dy, w.shape, s, p, d)), rtol=1e-12)


# ----------------------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_op_gradcheck(case, rng):
    x, w, b, s, p, d = conv_inputs(case, rng)
    gradcheck(lambda x_, w_, b_: C.conv2d_forward(x_, w_, b_, s, p, d), C.conv2d_backward,
              [x, w, b], names=["x", "w", "b"])


@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose2d_op_gradcheck(case, rng):
    x, w, b, s, p, op, d = convt_inputs(case, rng)
    gradcheck(lambda x_, w_, b_: C.conv_transpose2d_forward(x_, w_, b_, s, p, op, d),
              C.conv_transpose2d_backward, [x, w, b], names=["x", "w", "b"])


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_module_gradcheck(case, rng):
    N, Ci, K, H, W, k, s, p, d = case
    layer = Conv2d(Ci, K, k, s, p, d, rng=rng).astype(np.float64)
    x = rng.standard_normal((N, Ci, H, W))
    gradcheck_module(layer, x)


@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose2d_module_gradcheck(case, rng):
    N, Ci, Co, H, W, k, s, p, op, d = case
    layer = ConvTranspose2d(Ci, Co, k, s, p, op, d, rng=rng).astype(np.float64)
    x = rng.standard_normal((N, Ci, H, W))
    gradcheck_module(layer, x)


def test_larger_layers_gradcheck_by_projections(rng):
    conv = Conv2d(6, 5, 4, stride=2, padding=1, rng=rng).astype(np.float64)
    gradcheck_module(conv, rng.standard_normal((3, 6, 12, 10)), n_projections=6)
    convt = ConvTranspose2d(6, 4, 4, stride=2, padding=1, output_padding=1, rng=rng).astype(np.float64)
    gradcheck_module(convt, rng.standard_normal((3, 6, 5, 7)), n_projections=6)


def test_no_bias_layers(rng):
    conv = Conv2d(2, 3, 3, padding=1, bias=False, rng=rng).astype(np.float64)
    assert conv.bias is None and len(conv.parameters()) == 1
    gradcheck_module(conv, rng.standard_normal((1, 2, 4, 5)))
    convt = ConvTranspose2d(2, 3, 3, stride=2, bias=False, rng=rng).astype(np.float64)
    gradcheck_module(convt, rng.standard_normal((1, 2, 3, 3)))


def test_gradient_accumulates_and_wrong_gradient_is_caught(rng):
    layer = Conv2d(2, 2, 3, rng=rng).astype(np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    dy = rng.standard_normal((2, 2, 3, 3))
    layer(x)
    layer.backward(dy)
    g1 = layer.weight.grad.copy()
    layer(x)
    layer.backward(dy)
    assert_close(layer.weight.grad, 2 * g1, name="accumulated dw", **TIGHT)
    # the checker can fail: a backward with a flipped kernel gradient is rejected
    def bad_backward(dy_, cache):
        dx, dw, db = C.conv2d_backward(dy_, cache)
        return dx, dw[:, :, ::-1, ::-1].copy(), db
    w = rng.standard_normal((2, 2, 3, 3))
    with pytest.raises(AssertionError, match="gradient check failed"):
        gradcheck(lambda x_, w_: C.conv2d_forward(x_, w_, None, (1, 1), (0, 0), (1, 1)),
                  bad_backward, [x, w], wrt=[1])


def test_init_bounds_and_dtype(rng):
    conv = Conv2d(3, 8, (3, 2), rng=rng)
    assert conv.weight.data.shape == (8, 3, 3, 2) and conv.weight.data.dtype == np.float32
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(3 * 6)
    convt = ConvTranspose2d(3, 8, 4, rng=rng)
    assert convt.weight.data.shape == (3, 8, 4, 4) and convt.bias.data.shape == (8,)
    assert np.abs(convt.weight.data).max() <= 1 / np.sqrt(8 * 16)
    y = convt(np.zeros((2, 3, 5, 5), np.float32))
    assert y.dtype == np.float32 and y.shape == (2, 8, 8, 8)


# ----------------------------------------------------------------------------- PyTorch reference
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(case, rng):
    from conftest import require_torch
    torch = require_torch()
    F = torch.nn.functional
    x, w, b, s, p, d = conv_inputs(case, rng)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, s, p, d)
    y, cache = C.conv2d_forward(x, w, b, s, p, d)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty.detach().numpy(), name="y", **TIGHT)
    for ours, t, n in zip(C.conv2d_backward(dy, cache), (tx, tw, tb), "dx dw db".split()):
        assert_close(ours, t.grad.numpy(), name=n, **TIGHT)


@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose2d_matches_torch(case, rng):
    from conftest import require_torch
    torch = require_torch()
    F = torch.nn.functional
    x, w, b, s, p, op, d = convt_inputs(case, rng)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = F.conv_transpose2d(tx, tw, tb, s, p, op, 1, d)
    y, cache = C.conv_transpose2d_forward(x, w, b, s, p, op, d)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty.detach().numpy(), name="y", **TIGHT)
    for ours, t, n in zip(C.conv_transpose2d_backward(dy, cache), (tx, tw, tb), "dx dw db".split()):
        assert_close(ours, t.grad.numpy(), name=n, **TIGHT)


def test_layers_match_torch_modules(rng):
    from conftest import require_torch
    torch = require_torch()
    for ours, theirs, shape in [
            (Conv2d(3, 4, 3, 2, 1, rng=rng), torch.nn.Conv2d(3, 4, 3, 2, 1), (2, 3, 7, 6)),
            (ConvTranspose2d(3, 4, 4, 2, 1, 1, rng=rng), torch.nn.ConvTranspose2d(3, 4, 4, 2, 1, 1),
             (2, 3, 5, 4))]:
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(ours.weight.data))
            theirs.bias.copy_(torch.from_numpy(ours.bias.data))
        x = rng.standard_normal(shape).astype(np.float32)
        with no_grad():
            y = ours(x)
        assert_close(y, theirs(torch.from_numpy(x)).detach().numpy(), name=type(ours).__name__)


# ----------------------------------------------------------------------------- GPU dispatch
def test_primitives_dispatch_to_cuda_module(monkeypatch, rng):
    """CuPy arrays go to scratchgan.cuda.conv with (h, w) tuples and int shapes."""
    calls = []
    fake = types.ModuleType("scratchgan.cuda.conv")
    fake.conv2d_forward = lambda *a: calls.append(("fwd", a)) or "y"
    fake.conv2d_backward_data = lambda *a: calls.append(("bwd_data", a)) or "dx"
    fake.conv2d_backward_filter = lambda *a: calls.append(("bwd_filter", a)) or "dw"
    import scratchgan.cuda as cuda_pkg
    monkeypatch.setitem(sys.modules, "scratchgan.cuda.conv", fake)
    monkeypatch.setattr(cuda_pkg, "conv", fake, raising=False)
    monkeypatch.setattr(C, "is_gpu_array", lambda a: True)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    hyper = ((1, 1), (0, 0), (1, 1))
    assert C.conv2d_core_forward(x, w, *hyper) == "y"
    assert C.conv2d_core_backward_data(x, w, (1, 2, np.int64(7), 7), *hyper) == "dx"
    assert C.conv2d_core_backward_filter(x, x, np.array([3, 2, 3, 3]), *hyper) == "dw"
    assert [c[0] for c in calls] == ["fwd", "bwd_data", "bwd_filter"]
    assert calls[1][1][2] == (1, 2, 7, 7) and all(type(v) is int for v in calls[1][1][2])
    assert calls[2][1][2] == (3, 2, 3, 3) and all(type(v) is int for v in calls[2][1][2])


@pytest.mark.parametrize("transposed", [False, True])
def test_gpu_branch_of_ops_uses_only_primitives(monkeypatch, rng, transposed):
    """The ops' GPU branch (here fed by naive stand-ins for scratchgan.cuda.conv) gives
    the CPU results, output_padding >= stride included."""
    fake = types.ModuleType("scratchgan.cuda.conv")
    fake.conv2d_forward = lambda x, w, s, p, d: C.conv2d_forward_naive(x, w, None, s, p, d)
    fake.conv2d_backward_data = lambda dy, w, xs, s, p, d: C.conv2d_backward_naive(
        dy, np.zeros(xs), w, s, p, d)[0]
    fake.conv2d_backward_filter = lambda x, dy, ws, s, p, d: C.conv2d_backward_naive(
        dy, x, np.zeros(ws), s, p, d)[1]
    import scratchgan.cuda as cuda_pkg
    if transposed:
        x, w, b, s, p, op, d = convt_inputs(CONVT_CASES[3], rng)
        fwd = lambda: C.conv_transpose2d_forward(x, w, b, s, p, op, d)
        bwd = C.conv_transpose2d_backward
    else:
        x, w, b, s, p, d = conv_inputs(CONV_CASES[1], rng)
        fwd = lambda: C.conv2d_forward(x, w, b, s, p, d)
        bwd = C.conv2d_backward
    y_cpu, cache = fwd()
    dy = rng.standard_normal(y_cpu.shape)
    grads_cpu = bwd(dy, cache)
    monkeypatch.setitem(sys.modules, "scratchgan.cuda.conv", fake)
    monkeypatch.setattr(cuda_pkg, "conv", fake, raising=False)
    monkeypatch.setattr(C, "is_gpu_array", lambda a: True)
    y_gpu, cache = fwd()
    assert_close(y_gpu, y_cpu, name="y", **TIGHT)
    for g, c, n in zip(bwd(dy, cache), grads_cpu, "dx dw db".split()):
        assert_close(g, c, name=n, **TIGHT)


@pytest.mark.gpu
def test_layers_on_gpu_match_cpu(rng):
    from scratchgan.backend import to_device, to_numpy
    for layer, shape in [(Conv2d(3, 4, 4, 2, 1, rng=rng), (2, 3, 9, 8)),
                         (ConvTranspose2d(3, 4, 4, 2, 1, rng=rng), (2, 3, 5, 4))]:
        x = rng.standard_normal(shape).astype(np.float32)
        y = layer(x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dy)
        dw = layer.weight.grad.copy()
        layer.zero_grad()
        layer.to("cuda")
        yg = layer(to_device(x, "cuda"))
        dxg = layer.backward(to_device(dy, "cuda"))
        assert_close(to_numpy(yg), y, name="y")
        assert_close(to_numpy(dxg), dx, name="dx")
        assert_close(to_numpy(layer.weight.grad), dw, name="dw")


# ----------------------------------------------------------------------------- bad input
def test_backward_before_forward_raises():
    for layer in (Conv2d(1, 1, 3), ConvTranspose2d(1, 1, 3)):
        with pytest.raises(CacheError, match="backward called without a matching forward"):
            layer.backward(np.zeros((1, 1, 3, 3), np.float32))


def test_second_forward_with_pending_cache_raises():
    layer = Conv2d(1, 1, 3)
    x = np.zeros((1, 1, 5, 5), np.float32)
    layer(x)
    with pytest.raises(CacheError, match="forward called again"):
        layer(x)
    layer.backward(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(CacheError):
        layer.backward(np.zeros((1, 1, 3, 3), np.float32))
    with no_grad():
        layer(x)
        layer(x)  # no cache kept


@pytest.mark.parametrize("cls", [Conv2d, ConvTranspose2d])
def test_bad_input_arrays(cls):
    layer = cls(3, 4, 3)
    with pytest.raises(ValueError, match=r"expected a 4-D input.*got shape \(3, 5, 5\) \(3-D\)"):
        layer(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected 3 input channels.*got shape \(1, 2, 5, 5\)"):
        layer(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(TypeError, match=r"dtype float64 does not match the layer's parameters \(float32\)"):
        layer(np.zeros((1, 3, 5, 5), np.float64))
    with pytest.raises(TypeError, match="expected a float32 or float64 input.*int64"):
        layer(np.zeros((1, 3, 5, 5), np.int64))
    with pytest.raises(TypeError, match="numpy or cupy array, got list"):
        layer([[[[0.0]]]])


def test_device_mismatch_message():
    class OnCuda(Conv2d):
        device = property(lambda self: "cuda")
    with pytest.raises(ValueError, match="is on 'cpu' but the layer's parameters are on 'cuda'"):
        OnCuda(1, 1, 3)(np.zeros((1, 1, 5, 5), np.float32))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"Conv2d\(1, 1, kernel_size=\(5, 5\).*\(5, 5\) is larger than "
                                         r"the padded input \(3, 3\)"):
        Conv2d(1, 1, 5)(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"dilated\) kernel \(7, 7\) is larger than the padded input \(6, 6\)"):
        Conv2d(1, 1, 3, padding=1, dilation=3)(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"ConvTranspose2d.*output size of \(-3, -3\)"):
        ConvTranspose2d(1, 1, 3, padding=3)(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        C.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)), None, (1, 1), (0, 0), (1, 1))


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(stride=0), ValueError, r"Conv2d\(2, 3\): stride must be >= 1, got 0$"),
    (dict(stride=(1, -2)), ValueError, r"stride must be >= 1, got \(1, -2\)"),
    (dict(dilation=0), ValueError, r"dilation must be >= 1, got 0$"),
    (dict(padding=-1), ValueError, r"padding must be >= 0, got -1$"),
    (dict(stride=1.5), TypeError, r"stride must be an int or a pair of ints, got 1.5$"),
    (dict(padding=(1, 2, 3)), ValueError, r"padding must be an int or a pair"),
])
def test_bad_hyperparameters(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Conv2d(2, 3, 3, **kwargs)


def test_bad_sizes():
    with pytest.raises(TypeError, match=r"kernel_size must be an int or a pair of ints, got 2.5$"):
        Conv2d(2, 3, 2.5)
    with pytest.raises(TypeError, match=r"in_channels must be an int.*got '3'"):
        Conv2d("3", 3, 3)
    with pytest.raises(ValueError, match=r"out_channels must be >= 1, got 0"):
        ConvTranspose2d(3, 0, 3)
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1, got \(0, 3\)"):
        ConvTranspose2d(3, 3, (0, 3))


@pytest.mark.parametrize("kwargs", [dict(stride=2, output_padding=2), dict(stride=1, output_padding=1),
                                    dict(stride=2, dilation=3, output_padding=3),
                                    dict(stride=(2, 1), output_padding=(1, 1))])
def test_invalid_output_padding(kwargs):
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2, 3\): output_padding must be smaller than "
                                         r"stride or dilation"):
        ConvTranspose2d(2, 3, 3, **kwargs)


def test_output_padding_allowed_by_dilation():
    layer = ConvTranspose2d(1, 1, 3, stride=1, dilation=2, output_padding=1)
    assert layer(np.zeros((1, 1, 3, 3), np.float32)).shape == (1, 1, 8, 8)


@pytest.mark.parametrize("cls", [Conv2d, ConvTranspose2d])
def test_backward_checks_dy_shape(cls):
    layer = cls(1, 2, 3)
    y = layer(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"backward expected dy of shape " + str(tuple(y.shape)).replace("(", r"\(").replace(")", r"\)")):
        layer.backward(np.zeros((1, 2, 1, 1), np.float32))


def test_s2k4_tap_table_matches_backward_data():
    """The index map of kernels/conv2d_bwd_data.cu's stride-2 4x4 narrow kernel, replayed in
    NumPy: output (2i + a, 2j + b) takes taps r = 1, 3 (dy rows i, i - 1) for a = 0 and
    r = 0, 2 (rows i + 1, i) for a = 1 (the same for columns), from the zero-padded 3x3
    neighbourhood of dy around (i, j). It must equal backward-data with padding 1."""
    rng = np.random.default_rng(7)
    N, K, Ch, P, Q = 2, 5, 3, 4, 6
    w = rng.standard_normal((K, Ch, 4, 4))
    dy = rng.standard_normal((N, K, P, Q))
    taps = {0: ((1, 1), (3, 0)), 1: ((0, 2), (2, 1))}   # a -> ((r, row of the 3x3), ...)
    pad = np.pad(dy, ((0, 0), (0, 0), (1, 1), (1, 1)))  # 3x3 neighbourhood of (i, j): pad[i:i+3, j:j+3]
    dx = np.zeros((N, Ch, 2 * P, 2 * Q))
    for i in range(P):
        for j in range(Q):
            nb = pad[:, :, i:i + 3, j:j + 3]                 # (N, K, 3, 3)
            for a in (0, 1):
                for b in (0, 1):
                    for r, u in taps[a]:
                        for s, v in taps[b]:
                            dx[:, :, 2 * i + a, 2 * j + b] += nb[:, :, u, v] @ w[:, :, r, s]
    ref = C.conv2d_core_backward_data(dy, w, (N, Ch, 2 * P, 2 * Q), (2, 2), (1, 1), (1, 1))
    np.testing.assert_allclose(dx, ref, rtol=1e-12, atol=1e-12)
