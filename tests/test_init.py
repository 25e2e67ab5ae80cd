"""Initializers: fans, sample statistics within sampling error, determinism, dcgan_init_."""
import math

import numpy as np
import pytest

from scratchgan import init
from scratchgan.nn.module import Module, Parameter, Sequential
from scratchgan.rng import manual_seed

Z = 5.0  # standard errors allowed: a false failure has probability ~1e-6 per check


def _check_moments(a, mean, var, kind):
    """Sample mean and variance within Z standard errors computed from n.

    se(mean) = sigma / sqrt(n); se(var) = sqrt((mu4 - sigma^4) / n) with
    mu4 = 3 sigma^4 (normal) or 9/5 sigma^4 (uniform).
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    n = x.size
    sd = math.sqrt(var)
    assert abs(x.mean() - mean) < Z * sd / math.sqrt(n), (x.mean(), mean)
    kurt = 3.0 if kind == "normal" else 9.0 / 5.0
    se_var = var * math.sqrt((kurt - 1.0) / n)
    assert abs(x.var() - var) < Z * se_var, (x.var(), var)


# -- fans and gains ------------------------------------------------------------------
def test_fans_pytorch_convention():
    assert init.calculate_fans((20, 10)) == (10, 20)                   # Linear (out, in)
    assert init.calculate_fans((8, 3, 5, 5)) == (75, 200)              # Conv2d (out, in, kh, kw)
    assert init.calculate_fans((8, 3, 4, 2)) == (3 * 8, 8 * 8)         # ConvTranspose2d (in, out, kh, kw)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fans((5,))


def test_fans_match_torch():
    from conftest import require_torch
    torch = require_torch()
    fan = getattr(torch.nn.init, "_calculate_fan_in_and_fan_out", None)
    if fan is None:
        pytest.skip("this torch has no _calculate_fan_in_and_fan_out")
    for shape in [(20, 10), (8, 3, 5, 5), (8, 3, 4, 2), (7, 2, 3)]:
        assert init.calculate_fans(shape) == fan(torch.empty(shape))
    for nl, a in [("relu", 0.0), ("tanh", 0.0), ("leaky_relu", 0.2), ("sigmoid", 0.0),
                  ("linear", 0.0)]:
        assert math.isclose(init.calculate_gain(nl, a), torch.nn.init.calculate_gain(nl, a))


def test_gain_values():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swish")


# -- statistics ---------------------------------------------------------------------------
def test_normal_and_uniform_statistics(rng):
    a = np.empty((500, 800))
    init.normal_(a, mean=0.3, std=0.02, rng=rng)
    _check_moments(a, 0.3, 0.02 ** 2, "normal")
    init.uniform_(a, -0.05, 0.15, rng=rng)
    assert a.min() >= -0.05 and a.max() < 0.15
    _check_moments(a, 0.05, 0.2 ** 2 / 12, "uniform")


@pytest.mark.parametrize("shape", [(300, 700), (64, 32, 5, 5), (32, 64, 4, 4)], ids=str)
def test_xavier_and_he_statistics(shape, rng):
    fan_in, fan_out = init.calculate_fans(shape)
    a = np.empty(shape)
    init.xavier_uniform_(a, gain=2.0, rng=rng)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(a).max() <= bound
    _check_moments(a, 0.0, 4.0 * 2 / (fan_in + fan_out), "uniform")
    init.xavier_normal_(a, rng=rng)
    _check_moments(a, 0.0, 2 / (fan_in + fan_out), "normal")
    init.he_normal_(a, rng=rng)
    _check_moments(a, 0.0, 2 / fan_in, "normal")
    init.he_normal_(a, "leaky_relu", 0.2, rng=rng, mode="fan_out")
    _check_moments(a, 0.0, 2 / (1.04 * fan_out), "normal")
    init.he_uniform_(a, rng=rng)
    assert np.abs(a).max() <= math.sqrt(6 / fan_in)
    _check_moments(a, 0.0, 2 / fan_in, "uniform")
    init.he_uniform_(a, "tanh", rng=rng)
    _check_moments(a, 0.0, (25 / 9) / fan_in, "uniform")


def test_statistics_check_can_fail(rng):
    """The moment check is sharp enough to reject a 5% error in the std."""
    a = np.empty((500, 800))
    init.normal_(a, std=1.05, rng=rng)
    with pytest.raises(AssertionError):
        _check_moments(a, 0.0, 1.0, "normal")


# -- in place, dtype, determinism ---------------------------------------------------------
def test_parameter_or_array_in_place_and_dtype():
    p = Parameter(np.zeros((4, 3), dtype=np.float32))
    data = p.data
    assert init.normal_(p, rng=np.random.default_rng(0)) is p
    assert p.data is data and p.data.dtype == np.float32 and p.data.any()
    a = np.zeros((4, 3), dtype=np.float32)
    assert init.xavier_uniform_(a, rng=np.random.default_rng(0)) is a and a.any()
    init.constant_(p, 0.25)
    assert np.all(p.data == 0.25)
    init.ones_(a)
    assert np.all(a == 1)
    init.zeros_(a)
    assert not a.any()
    with pytest.raises(TypeError, match="floating-point"):
        init.normal_(np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="Parameter or a numpy/cupy array"):
        init.zeros_([0.0, 1.0])
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal_(a, std=-1.0)
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(a, 1.0, 0.0)
    with pytest.raises(ValueError, match="mode"):
        init.he_normal_(a, mode="fan_avg")


def test_float32_values_are_the_float64_draw_rounded():
    a32, a64 = np.empty((5, 6), np.float32), np.empty((5, 6), np.float64)
    init.he_normal_(a32, rng=np.random.default_rng(11))
    init.he_normal_(a64, rng=np.random.default_rng(11))
    assert np.array_equal(a32, a64.astype(np.float32))


@pytest.mark.parametrize("fn", ["normal_", "uniform_", "xavier_uniform_", "xavier_normal_",
                                "he_normal_", "he_uniform_"])
def test_determinism(fn):
    f = getattr(init, fn)
    a, b, c = (np.empty((6, 5)) for _ in range(3))
    f(a, rng=np.random.default_rng(5))
    f(b, rng=np.random.default_rng(5))
    f(c, rng=np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    manual_seed(123)           # the global generator is used when rng is None
    f(a)
    manual_seed(123)
    f(b)
    assert np.array_equal(a, b)


# -- dcgan_init_ ---------------------------------------------------------------------------
class _Weighted(Module):
    def __init__(self, shape, bias=True):
        super().__init__()
        self.weight = Parameter(np.full(shape, 7.0))
        self.bias = Parameter(np.full(shape[0] if type(self).__name__ != "ConvTranspose2d"
                                      else shape[1], 7.0)) if bias else None


class Conv2d(_Weighted):
    pass


class ConvTranspose2d(_Weighted):
    pass


class Linear(_Weighted):
    pass


class SpectralLinear(Linear):   # a subclass is still a Linear
    pass


class BatchNorm2d(Module):
    def __init__(self, c, affine=True):
        super().__init__()
        self.weight = Parameter(np.full(c, 7.0)) if affine else None
        self.bias = Parameter(np.full(c, 7.0)) if affine else None
        self.register_buffer("running_mean", np.full(c, 7.0))


class BatchNorm1d(BatchNorm2d):
    pass


class Embedding(Module):  # not a DCGAN layer: left alone
    def __init__(self):
        super().__init__()
        self.weight = Parameter(np.full((10, 4), 7.0))


class ReLU(Module):
    pass


def _net():
    return Sequential(
        Linear((300, 100)), BatchNorm1d(300), ReLU(),
        Sequential(ConvTranspose2d((64, 32, 4, 4)), BatchNorm2d(32), ReLU()),
        Conv2d((128, 32, 4, 4), bias=False), BatchNorm2d(128, affine=False),
        SpectralLinear((50, 20)), Embedding())


def test_dcgan_init_on_stand_in_layers():
    net = _net()
    assert init.dcgan_init_(net, rng=np.random.default_rng(0)) is net
    lin, bn1, _, inner, conv, bn_noaffine, slin, emb = list(net)
    convt, bn2, _ = list(inner)
    for m in (lin, convt, conv):
        _check_moments(m.weight.data, 0.0, 0.02 ** 2, "normal")
    assert np.all(np.abs(slin.weight.data) < 0.2) and not slin.bias.data.any()
    for m in (lin, convt):
        assert not m.bias.data.any()
    assert conv.bias is None
    big_bn = BatchNorm2d(20000)
    init.dcgan_init_(big_bn, rng=np.random.default_rng(1))
    _check_moments(big_bn.weight.data, 1.0, 0.02 ** 2, "normal")
    for m in (bn1, bn2, big_bn):
        assert not m.bias.data.any()
        assert np.all(np.abs(m.weight.data - 1.0) < 0.2)
        assert np.all(m.running_mean == 7.0)       # buffers are not parameters: untouched
    assert bn_noaffine.weight is None
    assert np.all(emb.weight.data == 7.0)


def test_dcgan_init_is_deterministic():
    a, b, c = _net(), _net(), _net()
    init.dcgan_init_(a, rng=np.random.default_rng(3))
    init.dcgan_init_(b, rng=np.random.default_rng(3))
    init.dcgan_init_(c, rng=np.random.default_rng(4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["0.weight"], sc["0.weight"])
    with pytest.raises(TypeError, match="expected a Module"):
        init.dcgan_init_(np.zeros(3))


def test_dcgan_init_on_real_layers():
    from scratchgan import nn
    net = nn.Sequential(nn.Linear(400, 300), nn.BatchNorm1d(300), nn.ReLU())
    init.dcgan_init_(net, rng=np.random.default_rng(0))
    _check_moments(net[0].weight.data, 0.0, 0.02 ** 2, "normal")
    assert not net[0].bias.data.any() and not net[1].bias.data.any()
    assert np.all(np.abs(net[1].weight.data - 1) < 0.2)


@pytest.mark.gpu
def test_gpu_arrays_get_the_host_draw():
    import cupy as cp
    g = cp.empty((30, 20), dtype=cp.float32)
    h = np.empty((30, 20), dtype=np.float32)
    init.he_uniform_(g, rng=np.random.default_rng(9))
    init.he_uniform_(h, rng=np.random.default_rng(9))
    assert isinstance(g, cp.ndarray) and np.array_equal(cp.asnumpy(g), h)
    p = Parameter(cp.zeros((5, 4), dtype=cp.float32))
    init.normal_(p, rng=np.random.default_rng(1))
    assert isinstance(p.data, cp.ndarray) and float(cp.abs(p.data).sum()) > 0
