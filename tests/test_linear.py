"""Linear layer: gradients, forward formula, init, validation, optional torch reference."""
import numpy as np
import pytest

from scratchgan.gradcheck import assert_close, gradcheck, gradcheck_module
from scratchgan.nn import Linear
from scratchgan.ops.linear import linear_backward, linear_forward
from scratchgan.rng import manual_seed


def make(in_f, out_f, bias=True, seed=0):
    return Linear(in_f, out_f, bias=bias, rng=np.random.default_rng(seed)).astype(np.float64)


@pytest.mark.parametrize("n,in_f,out_f", [(1, 1, 1), (1, 5, 3), (6, 7, 4), (2, 3, 11), (5, 1, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_module(n, in_f, out_f, bias, rng):
    layer = make(in_f, out_f, bias)
    x = rng.standard_normal((n, in_f))
    results = gradcheck_module(layer, x)
    assert len(results) == (3 if bias else 2)


def test_gradcheck_ops(rng):
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    gradcheck(linear_forward, linear_backward, [x, w, b], names=["x", "w", "b"])
    _, cache = linear_forward(x, w, None)
    assert linear_backward(np.ones((4, 5)), cache)[2] is None


def test_forward_matches_direct_sum(rng):
    layer = make(4, 3)
    x = rng.standard_normal((5, 4))
    w, b = layer.weight.data, layer.bias.data
    direct = np.array([[sum(x[n, i] * w[o, i] for i in range(4)) + b[o] for o in range(3)]
                       for n in range(5)])
    assert_close(layer(x), direct)


def test_backward_shapes_and_formula(rng):
    layer = make(4, 3)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    layer(x)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    assert_close(layer.weight.grad, dy.T @ x, name="dW")
    assert_close(layer.bias.grad, dy.sum(0), name="db")
    assert_close(dx, dy @ layer.weight.data, name="dx")


def test_init_uniform_bound_and_reproducible():
    layer = Linear(400, 300, rng=np.random.default_rng(1))
    bound = 1 / np.sqrt(400)
    w = layer.weight.data
    assert w.shape == (300, 400) and layer.bias.data.shape == (300,)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(layer.bias.data).max() <= bound
    # U(-a, a) has standard deviation a / sqrt(3)
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    again = Linear(400, 300, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(w, again.weight.data)
    manual_seed(5)
    a = Linear(3, 2).weight.data.copy()
    manual_seed(5)
    np.testing.assert_array_equal(a, Linear(3, 2).weight.data)


def test_no_bias_has_one_parameter():
    layer = Linear(3, 2, bias=False)
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


def test_bad_inputs():
    layer = Linear(784, 240)
    with pytest.raises(ValueError, match=r"Linear\(784, 240\): expected a 2-D input \(N, 784\), "
                                         r"got shape \(3, 4, 5\)"):
        layer(np.zeros((3, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"Linear\(784, 240\): expected an input of shape "
                                         r"\(N, 784\), got shape \(3, 5\)"):
        layer(np.zeros((3, 5), np.float32))
    with pytest.raises(TypeError, match=r"Linear\(784, 240\).*float64.*float32"):
        layer(np.zeros((3, 784), np.float64))
    with pytest.raises(TypeError, match=r"Linear\(784, 240\).*int64"):
        layer(np.zeros((3, 784), np.int64))
    with pytest.raises(TypeError, match=r"Linear\(784, 240\).*numpy or cupy array, got list"):
        layer([[0.0] * 784])
    with pytest.raises(ValueError, match=r"in_features must be >= 1"):
        Linear(0, 3)
    with pytest.raises(TypeError, match=r"out_features must be an int"):
        Linear(3, 2.5)


def test_matches_torch(rng):
    from conftest import require_torch
    torch = require_torch()
    layer = make(6, 4)
    ref = torch.nn.Linear(6, 4).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.weight.data))
        ref.bias.copy_(torch.from_numpy(layer.bias.data))
    x, dy = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))
    xt = torch.from_numpy(x).requires_grad_()
    yt = ref(xt)
    yt.backward(torch.from_numpy(dy))
    assert_close(layer(x), yt.detach().numpy())
    assert_close(layer.backward(dy), xt.grad.numpy(), name="dx")
    assert_close(layer.weight.grad, ref.weight.grad.numpy(), name="dW")
    assert_close(layer.bias.grad, ref.bias.grad.numpy(), name="db")


@pytest.mark.gpu
def test_cupy_matches_numpy(rng):
    from scratchgan.backend import to_device, to_numpy
    cpu = make(7, 5)
    gpu = make(7, 5).to("cuda")
    x, dy = rng.standard_normal((3, 7)), rng.standard_normal((3, 5))
    assert_close(to_numpy(gpu(to_device(x, "cuda"))), cpu(x))
    assert_close(to_numpy(gpu.backward(to_device(dy, "cuda"))), cpu.backward(dy), name="dx")
    assert_close(to_numpy(gpu.weight.grad), cpu.weight.grad, name="dW")
    with pytest.raises(ValueError, match=r"Linear\(7, 5\): input \(N, 7\) is on 'cpu'.*'cuda'"):
        gpu.clear_cache()
        gpu(x)
