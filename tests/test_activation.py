"""Activations: gradients, formulas, overflow-free sigmoid family, validation."""
import math
import warnings

import numpy as np
import pytest

from scratchgan.gradcheck import assert_close, gradcheck, gradcheck_module
from scratchgan.nn import LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from scratchgan.ops import activation as A

SHAPES = [(1, 1), (1, 5), (3, 7), (2, 3, 4, 5), (1, 1, 3, 2)]


def away_from_zero(rng, shape):
    """Inputs bounded away from the kink at 0: sign * (0.1 + |N|)."""
    return np.sign(rng.standard_normal(shape)) * (0.1 + np.abs(rng.standard_normal(shape)))


def reference(name, x):
    if name == "ReLU":
        return np.maximum(x, 0)
    if name == "LeakyReLU":
        return np.where(x > 0, x, 0.2 * x)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "Softplus":
        return np.log(1 + np.exp(x))
    raise KeyError(name)


LAYERS = {"ReLU": ReLU, "LeakyReLU": lambda: LeakyReLU(0.2), "Tanh": Tanh, "Sigmoid": Sigmoid,
          "Softplus": Softplus}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_module(name, shape, rng):
    x = away_from_zero(rng, shape) * 2
    gradcheck_module(LAYERS[name](), x)


@pytest.mark.parametrize("op,args", [("relu", ()), ("leaky_relu", (0.3,)), ("tanh", ()),
                                     ("sigmoid", ()), ("softplus", ())])
def test_gradcheck_ops(op, args, rng):
    x = away_from_zero(rng, (4, 6))
    fwd, bwd = getattr(A, f"{op}_forward"), getattr(A, f"{op}_backward")
    gradcheck(lambda x: fwd(x, *args), bwd, [x])


@pytest.mark.parametrize("name", list(LAYERS))
def test_forward_matches_formula_and_keeps_dtype(name, rng):
    x = rng.standard_normal((4, 5)) * 3
    assert_close(LAYERS[name]()(x), reference(name, x))
    y32 = LAYERS[name]()(x.astype(np.float32))
    assert y32.dtype == np.float32
    assert_close(y32, reference(name, x).astype(np.float32))


def test_tanh_and_sigmoid_cache_their_output(rng):
    x = rng.standard_normal((3, 3))
    for op in ("tanh", "sigmoid"):
        y, cache = getattr(A, f"{op}_forward")(x)
        assert cache is y
        # the backward is a function of y alone: d tanh = 1 - y^2, d sigma = y (1 - y)
        dy = rng.standard_normal(x.shape)
        want = dy * (1 - y ** 2) if op == "tanh" else dy * y * (1 - y)
        assert_close(getattr(A, f"{op}_backward")(dy, y), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_family_is_overflow_free(dtype):
    x = np.array([-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            s, sp, ls = A.sigmoid(x), A.softplus(x), A.log_sigmoid(x)
            layer_s, layer_sp = Sigmoid(), Softplus()
            layer_s.backward(np.ones_like(layer_s(x)))
            layer_sp.backward(np.ones_like(layer_sp(x)))
    for arr in (s, sp, ls):
        assert arr.dtype == dtype and np.all(np.isfinite(arr))
    assert s[0] == 0 and s[-1] == 1 and s[3] == 0.5
    assert sp[-1] == 1000 and sp[0] == 0
    assert ls[0] == -1000 and ls[-1] == 0
    # against exact values computed with Python's math in double precision
    for i, v in enumerate(x.astype(np.float64)):
        sig = 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))
        spl = max(v, 0) + math.log1p(math.exp(-abs(v)))
        tol = 1e-6 if dtype == np.float32 else 1e-14
        assert abs(s[i] - sig) <= tol
        assert abs(sp[i] - spl) <= tol * max(1, abs(spl))
        assert abs(ls[i] + max(-v, 0) + math.log1p(math.exp(-abs(v)))) <= tol * max(1, abs(spl))


def test_log_sigmoid_is_log_of_sigmoid(rng):
    x = rng.standard_normal(50) * 5
    assert_close(A.log_sigmoid(x), np.log(A.sigmoid(x)))
    assert_close(A.softplus(x) - A.softplus(-x), x, name="softplus(x) - softplus(-x) = x")


def test_relu_gradient_is_zero_for_negative_inputs():
    layer = ReLU()
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    layer(x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[0, 0, 1, 1]])


def test_leaky_relu_slope_and_validation():
    layer = LeakyReLU(0.2)
    x = np.array([[-2.0, 1.0]])
    np.testing.assert_allclose(layer(x), [[-0.4, 1.0]])
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), [[0.2, 1.0]])
    assert LeakyReLU().negative_slope == 0.01
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope must be a number"):
        LeakyReLU("0.2")


@pytest.mark.parametrize("name", list(LAYERS))
def test_bad_inputs(name):
    with pytest.raises(TypeError, match=rf"{name}\(.*\): expected the input to be a numpy or cupy array"):
        LAYERS[name]()([1.0, 2.0])
    with pytest.raises(TypeError, match=rf"{name}\(.*\): expected a float32 or float64 input, got dtype int64"):
        LAYERS[name]()(np.arange(3))


def test_matches_torch(rng):
    from conftest import require_torch
    torch = require_torch()
    refs = {"ReLU": torch.nn.ReLU(), "LeakyReLU": torch.nn.LeakyReLU(0.2), "Tanh": torch.nn.Tanh(),
            "Sigmoid": torch.nn.Sigmoid(), "Softplus": torch.nn.Softplus()}
    x = away_from_zero(rng, (3, 4, 2)) * 3
    dy = rng.standard_normal(x.shape)
    for name, ref in refs.items():
        layer = LAYERS[name]()
        xt = torch.from_numpy(x).requires_grad_()
        yt = ref(xt)
        yt.backward(torch.from_numpy(dy))
        assert_close(layer(x), yt.detach().numpy(), name=f"{name} y")
        assert_close(layer.backward(dy), xt.grad.numpy(), name=f"{name} dx")


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(LAYERS))
def test_cupy_matches_numpy(name, rng):
    from scratchgan.backend import to_device, to_numpy
    x = away_from_zero(rng, (3, 4, 5)) * 3
    x[0, 0, :2] = [-1000.0, 1000.0]
    dy = rng.standard_normal(x.shape)
    cpu, gpu = LAYERS[name](), LAYERS[name]()
    assert_close(to_numpy(gpu(to_device(x, "cuda"))), cpu(x))
    assert_close(to_numpy(gpu.backward(to_device(dy, "cuda"))), cpu.backward(dy), name="dx")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, -0.3, 1.5])
def test_cpu_fast_paths_equal_the_select_definitions(dtype, slope):
    """The CPU ReLU/LeakyReLU use max() and a mask factor instead of np.where (several times
    faster); they must give exactly the select's values (a zero's sign aside)."""
    from scratchgan.ops import activation as A
    g = np.random.default_rng(5)
    x = g.standard_normal((64, 33)).astype(dtype)
    x[0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    dy = g.standard_normal(x.shape).astype(dtype)
    m = x > 0
    y, c = A.relu_forward(x)
    np.testing.assert_array_equal(y, np.where(m, x, 0).astype(dtype))
    np.testing.assert_array_equal(A.relu_backward(dy, c), np.where(m, dy, 0).astype(dtype))
    y, c = A.leaky_relu_forward(x, slope)
    np.testing.assert_array_equal(y, np.where(m, x, slope * x).astype(dtype))
    np.testing.assert_array_equal(A.leaky_relu_backward(dy, c),
                                  np.where(m, dy, slope * dy).astype(dtype))
    assert y.dtype == dtype
