"""scratchgan.nn.second_order (input gradient and penalty backward) and scratchgan.nn.LayerNorm:
API behaviour, first-order checks, errors. The second-order values are checked in
tests/test_gradgradcheck.py."""
import numpy as np
import pytest

import scratchgan as sg
from scratchgan import nn
from scratchgan.gradcheck import assert_close, gradcheck, gradcheck_module
from scratchgan.nn.second_order import SecondOrderError, input_gradient, penalty_backward
from scratchgan.ops.second_order import gradient_penalty_backward, gradient_penalty_forward
from scratchgan.ops.layernorm import layernorm_backward, layernorm_forward


def mlp(seed=0, act=lambda: nn.LeakyReLU(0.2)):
    sg.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 6), act(), nn.Linear(6, 1)).astype(np.float64)


# ----------------------------------------------------------------------------- LayerNorm
@pytest.mark.parametrize("shape,norm", [((4, 5), 5), ((3, 2, 3, 3), (2, 3, 3)), ((2, 3, 4), 4)])
def test_layernorm_module_gradcheck(shape, norm):
    ln = nn.LayerNorm(norm).astype(np.float64)
    r = np.random.default_rng(0)
    ln.weight.data[...] = 1 + 0.5 * r.standard_normal(ln.weight.shape)
    ln.bias.data[...] = r.standard_normal(ln.bias.shape)
    gradcheck_module(ln, r.standard_normal(shape))


def test_layernorm_op_gradcheck_without_affine():
    x = np.random.default_rng(1).standard_normal((3, 6))
    gradcheck(lambda x: layernorm_forward(x, None, None, 1),
              lambda dy, c: layernorm_backward(dy, c)[:1], [x])


def test_layernorm_forward_matches_formula_and_keeps_dtype():
    x = np.random.default_rng(2).standard_normal((4, 2, 3, 3)).astype(np.float32)
    ln = nn.LayerNorm((2, 3, 3))
    with sg.no_grad():
        y = ln(x)
    assert y.dtype == np.float32
    x64 = x.astype(np.float64).reshape(4, -1)
    ref = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    assert_close(y.reshape(4, -1), ref.astype(np.float32))


def test_layernorm_is_per_sample():
    ln = nn.LayerNorm(5).astype(np.float64)
    x = np.random.default_rng(3).standard_normal((4, 5))
    with sg.no_grad():
        a = ln(x)
        x2 = x.copy()
        x2[1:] *= 7
        b = ln(x2)
    np.testing.assert_allclose(a[0], b[0])


def test_layernorm_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"LayerNorm\(\(5,\)\): expected an input of shape"):
        nn.LayerNorm(5)(np.zeros((2, 4), np.float32))


def test_layernorm_matches_torch(torch_module):
    torch = torch_module
    r = np.random.default_rng(4)
    x = r.standard_normal((3, 2, 4, 4))
    dy = r.standard_normal(x.shape)
    ln = nn.LayerNorm((2, 4, 4)).astype(np.float64)
    ln.weight.data[...] = r.standard_normal(ln.weight.shape)
    ln.bias.data[...] = r.standard_normal(ln.bias.shape)
    t = torch.nn.LayerNorm((2, 4, 4)).double()
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(ln.weight.data))
        t.bias.copy_(torch.from_numpy(ln.bias.data))
    xt = torch.from_numpy(x).requires_grad_()
    yt = t(xt)
    yt.backward(torch.from_numpy(dy))
    y = ln(x)
    dx = ln.backward(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ln.weight.grad, t.weight.grad.numpy(), atol=1e-12)


# ----------------------------------------------------------------------------- the API
def test_input_gradient_is_per_sample_and_matches_module_backward():
    C = mlp()
    x = np.random.default_rng(0).standard_normal((5, 3))
    g, tape = input_gradient(C, x)
    y = C(x)
    np.testing.assert_array_equal(tape.output, y)
    dx = C.backward(np.ones_like(y))
    np.testing.assert_allclose(g, dx, rtol=1e-12)
    x2 = x.copy()
    x2[1:] += 3.0
    g2, _ = input_gradient(C, x2)
    np.testing.assert_array_equal(g[0], g2[0])


def test_input_gradient_touches_no_grad_and_no_cache():
    C = mlp()
    x = np.random.default_rng(0).standard_normal((5, 3))
    input_gradient(C, x)
    assert all(not p.grad.any() for p in C.parameters())
    assert all(m._cache is None for m in C.modules())


def test_penalty_backward_accumulates():
    C = mlp(act=nn.Tanh)
    x = np.random.default_rng(0).standard_normal((5, 3))
    v = np.random.default_rng(1).standard_normal((5, 3))
    g, tape = input_gradient(C, x)
    penalty_backward(tape, v)
    once = [p.grad.copy() for p in C.parameters()]
    penalty_backward(tape, v)
    for p, o in zip(C.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * o, rtol=1e-12)


def test_piecewise_linear_critic_has_zero_penalty_bias_gradient():
    """With ReLU/LeakyReLU only, ṡ ≡ 0: ∂Φ/∂b = 0 exactly, ∂Φ/∂W_l = s_lᵀ u_{l-1}."""
    C = mlp()
    x = np.random.default_rng(0).standard_normal((5, 3))
    v = np.random.default_rng(1).standard_normal((5, 3))
    g, tape = input_gradient(C, x)
    penalty_backward(tape, v)
    assert not C[0].bias.grad.any() and not C[2].bias.grad.any()
    assert C[0].weight.grad.any() and C[2].weight.grad.any()


def test_frozen_critic_gets_no_gradient():
    C = mlp(act=nn.Tanh)
    x = np.random.default_rng(0).standard_normal((5, 3))
    g, tape = input_gradient(C, x)
    with nn.frozen(C):
        assert penalty_backward(tape, np.ones_like(g), input_grad=True).shape == x.shape
    assert all(not p.grad.any() for p in C.parameters())


def test_batchnorm_is_refused_by_name():
    C = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.BatchNorm1d(4), nn.ReLU()), nn.Linear(4, 1))
    with pytest.raises(SecondOrderError, match=r"BatchNorm1d.*position '1\.0'.*LayerNorm"):
        input_gradient(C, np.zeros((2, 3), np.float32))


def test_unsupported_layer_is_refused():
    C = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    with pytest.raises(SecondOrderError, match="Dropout.*no second-order backward"):
        input_gradient(C, np.zeros((2, 3), np.float32))


def test_shape_errors():
    C = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="one score per sample"):
        input_gradient(C, np.zeros((2, 3), np.float32))
    g, tape = input_gradient(mlp().astype(np.float32), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="v has shape"):
        penalty_backward(tape, np.zeros((2, 4), np.float32))


def test_float32_runs_and_matches_float64():
    C = mlp(act=nn.Softplus)
    C32 = mlp(act=nn.Softplus).astype(np.float32)
    x = np.random.default_rng(0).standard_normal((5, 3))
    v = np.random.default_rng(1).standard_normal((5, 3))
    for net, dt in ((C, np.float64), (C32, np.float32)):
        g, tape = input_gradient(net, x.astype(dt))
        penalty_backward(tape, v.astype(dt))
        assert g.dtype == dt and all(p.grad.dtype == dt for p in net.parameters())
    for p, q in zip(C.parameters(), C32.parameters()):
        assert_close(q.grad, p.grad)


# ----------------------------------------------------------------------------- the penalty itself
def test_gradient_penalty_value_and_gradient():
    g = np.random.default_rng(0).standard_normal((4, 1, 3, 3))
    P, cache = gradient_penalty_forward(g, 10.0)
    norms = np.sqrt((g.reshape(4, -1) ** 2).sum(1))
    np.testing.assert_allclose(P, 10.0 * np.mean((norms - 1) ** 2))
    gradcheck(lambda g: gradient_penalty_forward(g, 10.0),
              lambda dy, c: (gradient_penalty_backward(c, scale=float(dy)),), [g])


def test_gradient_penalty_at_zero_gradient_is_finite():
    g = np.zeros((3, 2))
    P, cache = gradient_penalty_forward(g, 10.0)
    assert float(P) == 10.0
    assert np.all(gradient_penalty_backward(cache) == 0)


# ----------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_gpu_matches_cpu_float64():
    """Conv + LayerNorm + LeakyReLU + Tanh critic: g and the penalty gradient on CuPy
    agree with NumPy (float64)."""
    import cupy as cp
    sg.manual_seed(0)
    C = nn.Sequential(nn.Conv2d(1, 4, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
                      nn.Conv2d(4, 8, 5, stride=2, padding=2), nn.LayerNorm((8, 7, 7)), nn.Tanh(),
                      nn.Flatten(), nn.Linear(8 * 7 * 7, 1)).astype(np.float64)
    x = np.random.default_rng(0).uniform(-1, 1, (6, 1, 28, 28))
    v = np.random.default_rng(1).standard_normal(x.shape)
    g, tape = input_gradient(C, x)
    penalty_backward(tape, v)
    cpu = [p.grad.copy() for p in C.parameters()]
    C.zero_grad()
    C.to("cuda")
    gg, tape = input_gradient(C, cp.asarray(x))
    penalty_backward(tape, cp.asarray(v))
    assert_close(cp.asnumpy(gg), g, atol=1e-10, rtol=1e-8)
    for p, ref in zip(C.parameters(), cpu):
        assert_close(cp.asnumpy(p.grad), ref, atol=1e-10, rtol=1e-8)
