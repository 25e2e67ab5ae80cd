"""Flat parameter buffers (scratchgan.nn.flat): layout, aliasing, zero padding, state-dict
names, one-fill zero_grad, intactness, re-flattening and clip_weights over the buffer."""
import numpy as np
import pytest

from scratchgan.nn import BatchNorm1d, Linear, Module, Parameter, ReLU, Sequential
from scratchgan.nn import module as module_mod
from scratchgan.nn.flat import ALIGN, FlatParameters, flat_group_of, flatten_parameters
from scratchgan.optim import clip_weights


def mlp(seed=0, dtype=np.float32):
    g = np.random.default_rng(seed)
    net = Sequential(Linear(3, 5, rng=g), BatchNorm1d(5), ReLU(), Linear(5, 70, rng=g),
                     ReLU(), Linear(70, 2, rng=g))
    return net.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flatten_keeps_values_and_layout(dtype):
    net = mlp(dtype=dtype)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in net.parameters()]
    for p, g in zip(net.parameters(), grads):
        p.grad[...] = g
    fl = flatten_parameters(net)
    assert isinstance(fl, FlatParameters) and net._flat is fl
    assert fl.data.ndim == 1 and fl.grad.ndim == 1 and fl.data.dtype == dtype
    assert fl.grad.dtype == dtype and fl.size == fl.data.size == fl.grad.size
    assert fl.size % ALIGN == 0
    assert fl.params == net.parameters()
    # offsets: multiples of 64, in order, no overlap
    assert all(o % ALIGN == 0 for o in fl.offsets)
    ends = [o + n for o, n in zip(fl.offsets, fl.numels)]
    assert all(e <= o for e, o in zip(ends[:-1], fl.offsets[1:])) and ends[-1] <= fl.size
    # values and gradients unchanged through the parameters
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    for p, g in zip(net.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)
    # padding is zero in both buffers
    used = np.zeros(fl.size, bool)
    for o, n in zip(fl.offsets, fl.numels):
        used[o:o + n] = True
    assert not used.all()  # this net does have padding
    assert np.all(fl.data[~used] == 0) and np.all(fl.grad[~used] == 0)


def test_views_alias_the_buffers():
    net = mlp()
    fl = flatten_parameters(net)
    for j, p in enumerate(net.parameters()):
        for a, buf in ((p.data, fl.data), (p.grad, fl.grad)):
            assert a.base is buf or a.base.base is buf or np.shares_memory(a, buf)
            assert a.flags.c_contiguous
            # 256-byte alignment of every view (the base is 64-byte aligned at least by NumPy;
            # the element offset is what flatten controls)
            assert fl.offsets[j] * a.itemsize % 256 == 0
        o, n = fl.offsets[j], fl.numels[j]
        p.data[...] = j + 1.0                   # in-place writes land in the buffer
        assert np.all(fl.data[o:o + n] == j + 1.0)
        p.grad += 2.0
        assert np.all(fl.grad[o:o + n] == 2.0)
    fl.data[fl.offsets[0]] = -7.0               # and the other way round
    assert net.parameters()[0].data.flat[0] == -7.0


def test_state_dict_names_unchanged_and_load_keeps_views():
    net, ref = mlp(), mlp()
    names = list(ref.state_dict())
    fl = flatten_parameters(net)
    assert list(net.state_dict()) == names
    assert "_flat" not in net._parameters and "_flat" not in net._buffers
    assert "_flat" not in net._modules
    other = mlp(seed=5)
    net.load_state_dict(other.state_dict())    # in-place copies into the views
    assert fl.is_intact()
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, other.state_dict()[k], err_msg=k)


def test_backward_accumulates_into_the_grad_buffer():
    net, ref = mlp(), mlp()
    fl = flatten_parameters(net)
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    for m in (net, ref):
        m(x)
        m.backward(np.ones((4, 2), np.float32))
    assert fl.is_intact()
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
        np.testing.assert_array_equal(p.data, q.data)
    assert np.abs(fl.grad).sum() > 0


def test_zero_grad_is_one_fill(monkeypatch):
    net = mlp()
    fl = flatten_parameters(net)
    fl.grad[...] = 3.0     # padding too: one fill clears everything
    calls = {"param": 0, "flat": 0}
    orig_p, orig_f = module_mod.Parameter.zero_grad, FlatParameters.zero_grad

    def count_p(self):
        calls["param"] += 1
        orig_p(self)

    def count_f(self):
        calls["flat"] += 1
        orig_f(self)

    monkeypatch.setattr(module_mod.Parameter, "zero_grad", count_p)
    monkeypatch.setattr(FlatParameters, "zero_grad", count_f)
    net.zero_grad()
    assert calls == {"param": 0, "flat": 1}
    assert not fl.grad.any()
    # a broken view: back to one zeroing per parameter
    net.astype(np.float64)
    assert not fl.is_intact()
    for p in net.parameters():
        p.grad[...] = 1.0
    net.zero_grad()
    assert calls == {"param": len(net.parameters()), "flat": 1}
    assert all(not p.grad.any() for p in net.parameters())


def test_parameter_added_after_flattening_is_still_zeroed():
    net = mlp()
    fl = flatten_parameters(net)
    net.extra = Parameter(np.ones(3, np.float32))
    net.extra.grad[...] = 5.0
    fl.grad[...] = 1.0
    net.zero_grad()
    assert not net.extra.grad.any() and not fl.grad.any()
    assert not fl.owns(net.extra) and fl.is_intact()


def test_is_intact_and_moving_breaks_it():
    net = mlp()
    fl = flatten_parameters(net)
    assert fl.is_intact()
    p0 = net.parameters()[0]
    p0.data[...] = 0.5           # in place: still intact
    p0.grad += 1.0
    assert fl.is_intact()
    net.astype(np.float64)       # _map_arrays replaces the arrays
    assert not fl.is_intact()
    assert net.parameters()[0].data.dtype == np.float64
    fl2 = flatten_parameters(net)   # flatten after moving: intact again, float64
    assert fl2.is_intact() and fl2.dtype == np.float64 and net._flat is fl2
    assert np.all(net.parameters()[0].data == 0.5)


def test_rebinding_one_parameter_breaks_intactness():
    net = mlp()
    fl = flatten_parameters(net)
    p = net.parameters()[1]
    p.grad = p.grad.copy()
    assert not fl.is_intact()


def test_reflatten_is_safe():
    net = mlp()
    fl1 = flatten_parameters(net)
    for j, p in enumerate(net.parameters()):
        p.data[...] = j
        p.grad[...] = -j
    fl2 = flatten_parameters(net)
    assert fl2 is not fl1 and net._flat is fl2
    assert fl2.is_intact() and not fl1.is_intact()
    assert not np.shares_memory(fl1.data, fl2.data)
    for j, p in enumerate(net.parameters()):
        assert np.all(p.data == j) and np.all(p.grad == -j)
        assert flat_group_of(p) is fl2
    fl1.data[...] = 99.0   # the old buffer no longer feeds the parameters
    assert all(np.all(p.data != 99.0) for p in net.parameters())


def test_shared_parameter_gets_one_slot():
    class Tied(Module):
        def __init__(self):
            super().__init__()
            self.a = Linear(2, 2)
            self.b = Linear(2, 2)
            self.b.weight = self.a.weight

    m = Tied()
    fl = flatten_parameters(m)
    assert len(fl.params) == 3 and fl.is_intact()
    assert m.a.weight is m.b.weight and fl.owns(m.a.weight)


def test_registry_and_index():
    a, b = mlp(), mlp(seed=1)
    fa = flatten_parameters(a)
    for j, p in enumerate(a.parameters()):
        assert flat_group_of(p) is fa and fa.index(p) == j
    assert all(flat_group_of(p) is None for p in b.parameters())
    assert fa.index(b.parameters()[0]) is None
    assert fa.module is a


def test_flatten_errors():
    class Mixed(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(np.zeros(3, np.float32))
            self.v = Parameter(np.zeros(3, np.float64))

    with pytest.raises(ValueError, match=r"parameter 'v' .data is float64 .* but 'w' is float32"):
        flatten_parameters(Mixed())
    with pytest.raises(ValueError, match="has no parameters"):
        flatten_parameters(Sequential(ReLU()))
    with pytest.raises(TypeError, match="expected a Module, got list"):
        flatten_parameters([Parameter(np.zeros(2))])


def test_empty_and_scalar_shaped_parameters():
    class Odd(Module):
        def __init__(self):
            super().__init__()
            self.s = Parameter(np.array(2.0))
            self.e = Parameter(np.zeros((0, 3)))
            self.w = Parameter(np.arange(5.0))

    m = Odd()
    fl = flatten_parameters(m)
    assert fl.is_intact() and m.s.data.shape == () and float(m.s.data) == 2.0
    assert m.e.data.shape == (0, 3) and np.array_equal(m.w.data, np.arange(5.0))
    assert fl.offsets == [0, 64, 64]


def test_clip_weights_over_the_flat_buffer():
    net, ref = mlp(), mlp()
    fl = flatten_parameters(net)
    for p in net.parameters() + ref.parameters():
        p.data *= 10
    clip_weights(net, 0.05)                       # one clip over the buffer
    clip_weights(ref.parameters(), 0.05)
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    used = np.zeros(fl.size, bool)
    for o, n in zip(fl.offsets, fl.numels):
        used[o:o + n] = True
    assert np.all(fl.data[~used] == 0)
    fl.data[fl.offsets[0]] = 3.0
    clip_weights(fl, 0.01)                         # a FlatParameters too
    assert fl.data[fl.offsets[0]] == np.float32(0.01) and fl.data.max() <= np.float32(0.01)
    # a module whose views are gone: per parameter
    net.astype(np.float64)
    net.parameters()[0].data[...] = 5.0
    clip_weights(net, 0.02)
    assert net.parameters()[0].data.max() == 0.02 and fl.data[fl.offsets[0]] == np.float32(0.01)
    # a module never flattened
    plain = mlp()
    plain.parameters()[0].data[...] = -4.0
    clip_weights(plain, 0.5)
    assert plain.parameters()[0].data.min() == -0.5


@pytest.mark.gpu
def test_gpu_flatten_views_and_zero_grad():
    import cupy as cp
    net = mlp().to("cuda")
    ref = {k: v.copy() for k, v in net.state_dict().items()}
    fl = flatten_parameters(net)
    assert isinstance(fl.data, cp.ndarray) and fl.device == "cuda"
    assert fl.data.data.ptr % 256 == 0 and fl.grad.data.ptr % 256 == 0
    for j, p in enumerate(net.parameters()):
        assert p.data.flags.c_contiguous and p.data.data.ptr % 256 == 0
        assert p.data.data.ptr == fl.data.data.ptr + fl.offsets[j] * p.data.itemsize
        assert p.grad.data.ptr == fl.grad.data.ptr + fl.offsets[j] * p.grad.itemsize
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, ref[k], err_msg=k)
    for p in net.parameters():
        p.grad += 1.0
    net.zero_grad()
    assert not bool(fl.grad.any())
    net.parameters()[0].data[...] = 9.0
    clip_weights(net, 0.1)
    assert float(fl.data.max()) <= np.float32(0.1)
