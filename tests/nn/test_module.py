"""Module API exercised with real layers: registration, modes, state dicts, dtype, the cache rule."""
import numpy as np
import pytest

from scratchgan.gradcheck import assert_close, gradcheck_module
from scratchgan.nn import (BatchNorm1d, BatchNorm2d, CacheError, Dropout, Flatten, LeakyReLU,
                           Linear, Module, ReLU, Sequential, Tanh, no_grad)


def mlp(seed=0):
    g = np.random.default_rng(seed)
    return Sequential(Linear(3, 4, rng=g), BatchNorm1d(4), ReLU(), Linear(4, 2, rng=g))


def test_parameter_order_and_names():
    net = mlp()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    params = net.parameters()
    assert [p.shape for p in params] == [(4, 3), (4,), (4,), (4,), (2, 4), (2,)]
    assert params[0] is net[0].weight and params[-1] is net[3].bias
    assert [n for n, _ in net.named_buffers()] == ["1.running_mean", "1.running_var"]


def test_zero_grad(rng):
    net = mlp()
    net(rng.standard_normal((5, 3)).astype(np.float32))
    net.backward(np.ones((5, 2), np.float32))
    assert any(np.any(p.grad != 0) for p in net.parameters())
    net.zero_grad()
    assert all(np.all(p.grad == 0) for p in net.parameters())


def test_train_eval_propagate():
    net = Sequential(mlp(), Dropout(0.5))
    assert all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    assert not net[0][1].training
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip_with_bn_buffers(rng):
    a, b = mlp(seed=1), mlp(seed=2)
    x = rng.standard_normal((6, 3)).astype(np.float32)
    a(x)
    a.clear_cache()  # moves BN running stats away from their initial values
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias",
                        "1.running_mean", "1.running_var"]
    assert np.any(sd["1.running_mean"] != 0)
    b.load_state_dict(sd)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k], err_msg=k)
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x), b(x))
    # the state dict holds copies, not views of the live arrays
    a[0].weight.data += 1
    assert not np.array_equal(sd["0.weight"], a[0].weight.data)
    np.testing.assert_array_equal(b[0].weight.data, sd["0.weight"])


def test_load_state_dict_errors():
    net = mlp()
    sd = net.state_dict()
    bad = dict(sd, **{"0.weight": np.zeros((5, 3), np.float32)})
    with pytest.raises(ValueError, match=r"0.weight has shape \(5, 3\), expected \(4, 3\)"):
        net.load_state_dict(bad)
    bad = dict(sd, **{"1.running_var": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match=r"1.running_var has shape \(3,\), expected \(4,\)"):
        net.load_state_dict(bad)
    missing = {k: v for k, v in sd.items() if k != "1.running_mean"}
    with pytest.raises(KeyError, match=r"missing keys \['1.running_mean'\]"):
        net.load_state_dict(missing)


def test_astype_casts_parameters_grads_and_buffers(rng):
    net = mlp().astype(np.float64)
    for p in net.parameters():
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64
    assert net[1].running_mean.dtype == np.float64 and net[1].running_var.dtype == np.float64
    y = net(rng.standard_normal((4, 3)))
    assert y.dtype == np.float64
    net.clear_cache()
    with pytest.raises(TypeError, match=r"Linear\(3, 4\).*float32 does not match.*float64"):
        net(rng.standard_normal((4, 3)).astype(np.float32))


def test_backward_before_forward_raises():
    layer = Linear(3, 2)
    with pytest.raises(CacheError, match=r"Linear\(3, 2\): backward called without a matching forward"):
        layer.backward(np.ones((1, 2), np.float32))
    with pytest.raises(CacheError, match=r"BatchNorm2d\(3\): backward called without"):
        BatchNorm2d(3).backward(np.ones((2, 3, 1, 1), np.float32))


def test_double_backward_raises(rng):
    for layer, x in [(Linear(3, 2), rng.standard_normal((2, 3))), (Tanh(), rng.standard_normal((2, 3))),
                     (BatchNorm1d(3), rng.standard_normal((2, 3))), (Flatten(), rng.standard_normal((2, 3, 1)))]:
        x = x.astype(np.float32)
        y = layer(x)
        layer.backward(np.ones_like(y))
        with pytest.raises(CacheError, match="backward called without a matching forward"):
            layer.backward(np.ones_like(y))


def test_forward_over_pending_cache_raises(rng):
    net = mlp()
    x = rng.standard_normal((4, 3)).astype(np.float32)
    net(x)
    with pytest.raises(CacheError, match=r"Linear\(3, 4\): forward called again while the "
                                         r"previous forward's cache is still pending"):
        net(x)
    net.clear_cache()
    net(x)  # fine after clearing
    net.backward(np.ones((4, 2), np.float32))
    net(x)  # fine after the backward


def test_no_grad_stores_nothing(rng):
    net = mlp()
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with no_grad():
        net(x)
        net(x)  # a second gradient-free forward is allowed
    assert all(m._cache is None for m in net.modules())
    with pytest.raises(CacheError):
        net.backward(np.ones((4, 2), np.float32))


class Recorder(Module):
    """Identity layer that appends to a shared log on forward and backward."""

    def __init__(self, tag, log):
        super().__init__()
        self.tag, self.log = tag, log

    def forward(self, x):
        self.log.append(("f", self.tag))
        self._save_cache(True)
        return x + 1

    def backward(self, dy):
        self._take_cache()
        self.log.append(("b", self.tag))
        return dy * 2


def test_sequential_order():
    log = []
    seq = Sequential(*(Recorder(t, log) for t in "abc"))
    y = seq(np.zeros(2))
    np.testing.assert_array_equal(y, [3, 3])
    dx = seq.backward(np.ones(2))
    np.testing.assert_array_equal(dx, [8, 8])
    assert log == [("f", "a"), ("f", "b"), ("f", "c"), ("b", "c"), ("b", "b"), ("b", "a")]
    with pytest.raises(TypeError, match=r"Sequential: item 1 is a int, expected a Module"):
        Sequential(ReLU(), 3)


def test_grads_accumulate_across_backwards(rng):
    net = mlp().astype(np.float64)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    net(x)
    net.backward(dy)
    once = [p.grad.copy() for p in net.parameters()]
    net(x)
    net.backward(dy)
    for g1, p in zip(once, net.parameters()):
        assert_close(p.grad, 2 * g1)


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_small_network(training, rng):
    g = np.random.default_rng(3)
    net = Sequential(Linear(5, 6, rng=g), BatchNorm1d(6), LeakyReLU(0.2), Linear(6, 3, rng=g),
                     Tanh()).astype(np.float64).train(training)
    net[1].running_var[...] = g.uniform(0.5, 2, 6)
    gradcheck_module(net, rng.standard_normal((4, 5)))


def test_to_cpu_keeps_arrays():
    net = mlp().to("cpu")
    assert net.device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


def test_reassigning_a_buffer_keeps_it_in_the_state_dict():
    from scratchgan.nn.module import Module as _M

    class Stats(_M):
        def __init__(self):
            super().__init__()
            self.register_buffer("running", np.zeros(3))

    m = Stats()
    m.running = np.ones(3)
    assert "running" in m.state_dict()
    np.testing.assert_array_equal(m.state_dict()["running"], np.ones(3))
