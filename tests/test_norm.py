"""BatchNorm1d/2d: train- and eval-mode gradients, running statistics, validation, torch reference."""
import numpy as np
import pytest

from scratchgan.gradcheck import assert_close, gradcheck, gradcheck_module
from scratchgan.nn import BatchNorm1d, BatchNorm2d
from scratchgan.ops.norm import batchnorm_backward, batchnorm_forward


def make(cls, c, affine=True, seed=0, training=True):
    """A float64 layer with non-trivial gamma, beta and running statistics."""
    g = np.random.default_rng(seed)
    bn = cls(c, affine=affine).astype(np.float64)
    if affine:
        bn.weight.data[...] = g.uniform(0.5, 2.0, c) * np.sign(g.standard_normal(c))
        bn.bias.data[...] = g.standard_normal(c)
    bn.running_mean[...] = g.standard_normal(c)
    bn.running_var[...] = g.uniform(0.5, 2.0, c)
    return bn.train(training)


def direct_bn(x, gamma, beta, mean, var, eps):
    """Loop-per-channel reference: y = gamma (x - mean) / sqrt(var + eps) + beta."""
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        g = 1.0 if gamma is None else gamma[c]
        b = 0.0 if beta is None else beta[c]
        y[:, c] = g * (x[:, c] - mean[c]) / np.sqrt(var[c] + eps) + b
    return y


CASES_1D = [(2, 1), (2, 3), (5, 4), (7, 1)]
CASES_2D = [(1, 1, 2, 3), (2, 3, 3, 5), (3, 2, 1, 1), (1, 4, 3, 3)]


@pytest.mark.parametrize("shape", CASES_1D)
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_1d_train(shape, affine, rng):
    gradcheck_module(make(BatchNorm1d, shape[1], affine), rng.standard_normal(shape) * 2 + 1)


@pytest.mark.parametrize("shape", [(1, 1), (1, 3)] + CASES_1D)
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_1d_eval(shape, affine, rng):
    gradcheck_module(make(BatchNorm1d, shape[1], affine, training=False), rng.standard_normal(shape))


@pytest.mark.parametrize("shape", CASES_2D)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_2d(shape, affine, training, rng):
    bn = make(BatchNorm2d, shape[1], affine, training=training)
    gradcheck_module(bn, rng.standard_normal(shape) * 1.5 - 0.5)


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_ops(training, rng):
    x = rng.standard_normal((3, 2, 2, 3))
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    rm, rv = rng.standard_normal(2), rng.uniform(0.5, 1.5, 2)

    def fwd(x, gamma, beta):
        return batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), 0.1, 1e-5, training)

    gradcheck(fwd, batchnorm_backward, [x, gamma, beta], names=["x", "gamma", "beta"])


def test_train_forward_uses_batch_statistics(rng):
    bn = make(BatchNorm2d, 3)
    x = rng.standard_normal((4, 3, 2, 5)) * 3 + 2
    mean = x.mean(axis=(0, 2, 3))
    var_biased = ((x - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3))
    y = bn(x)
    assert_close(y, direct_bn(x, bn.weight.data, bn.bias.data, mean, var_biased, 1e-5))
    # with gamma = 1, beta = 0 the output has per-channel mean 0 and biased variance ~1
    plain = BatchNorm2d(3, affine=False).astype(np.float64)
    z = plain(x)
    assert_close(z.mean(axis=(0, 2, 3)), np.zeros(3), atol=1e-12)
    assert_close(z.var(axis=(0, 2, 3)), var_biased / (var_biased + 1e-5))


def test_running_stats_update_pytorch_convention(rng):
    bn = BatchNorm1d(3, momentum=0.25).astype(np.float64)
    x1, x2 = rng.standard_normal((6, 3)) + 1, rng.standard_normal((6, 3)) * 2
    bn(x1)
    bn.clear_cache()
    rm = 0.75 * np.zeros(3) + 0.25 * x1.mean(0)
    rv = 0.75 * np.ones(3) + 0.25 * x1.var(0, ddof=1)  # unbiased variance
    assert_close(bn.running_mean, rm, name="running_mean")
    assert_close(bn.running_var, rv, name="running_var")
    bn(x2)
    bn.clear_cache()
    assert_close(bn.running_mean, 0.75 * rm + 0.25 * x2.mean(0), name="running_mean (2 steps)")
    assert_close(bn.running_var, 0.75 * rv + 0.25 * x2.var(0, ddof=1), name="running_var (2 steps)")


def test_eval_uses_running_stats_and_leaves_them_alone(rng):
    bn = make(BatchNorm2d, 2, training=False)
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    x = rng.standard_normal((3, 2, 4, 4))
    y = bn(x)
    assert_close(y, direct_bn(x, bn.weight.data, bn.bias.data, rm, rv, 1e-5))
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    dy = rng.standard_normal(y.shape)
    dx = bn.backward(dy)
    assert_close(dx, dy * (bn.weight.data / np.sqrt(rv + 1e-5))[None, :, None, None], name="dx")


def test_train_backward_formula_and_invariants(rng):
    bn = make(BatchNorm1d, 4)
    x, dy = rng.standard_normal((8, 4)), rng.standard_normal((8, 4))
    bn(x)
    dx = bn.backward(dy)
    m = x.shape[0]
    xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    gamma = bn.weight.data
    dxhat = dy * gamma
    want = (m * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0)) / (m * np.sqrt(x.var(0) + 1e-5))
    assert_close(dx, want)
    # shifting x by a per-channel constant does not change y, so dx sums to 0 per channel;
    # scaling x would not change y either if eps were 0, so sum(dx * xhat) is only of order eps:
    # sum(dx * xhat) = s * eps / (var + eps) * sum(dxhat * xhat)
    assert_close(dx.sum(0), np.zeros(4), atol=1e-12, name="sum dx")
    var = x.var(0)
    assert_close((dx * xhat).sum(0), (dxhat * xhat).sum(0) * 1e-5 / (var + 1e-5) / np.sqrt(var + 1e-5),
                 atol=1e-15, name="sum dx * xhat")
    assert_close(bn.weight.grad, (dy * xhat).sum(0), name="dgamma")
    assert_close(bn.bias.grad, dy.sum(0), name="dbeta")


def test_float32_default_and_buffers():
    bn = BatchNorm2d(5)
    assert bn.weight.data.dtype == np.float32 and bn.running_var.dtype == np.float32
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    y = bn(np.random.default_rng(0).standard_normal((2, 5, 3, 3)).astype(np.float32))
    assert y.dtype == np.float32 and bn.running_mean.dtype == np.float32


def test_affine_false_has_no_parameters():
    bn = BatchNorm1d(3, affine=False)
    assert bn.parameters() == []
    assert set(bn.state_dict()) == {"running_mean", "running_var"}


def test_bad_inputs():
    bn1, bn2 = BatchNorm1d(3), BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected 3 channels \(dimension 1\).*"
                                         r"got shape \(4, 5\)"):
        bn1(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected 3 channels.*got shape \(2, 4, 3, 3\)"):
        bn2(np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected a 4-D input \(N, C, H, W\), "
                                         r"got shape \(4, 3\)"):
        bn2(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected a 2 or 3-D input \(N, C\), "
                                         r"got shape \(2, 3, 4, 4\)"):
        bn1(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match=r"BatchNorm1d\(3\).*float64 does not match.*float32"):
        bn1(np.zeros((4, 3), np.float64))
    with pytest.raises(TypeError, match=r"BatchNorm2d\(3\): expected the input \(N, C, H, W\) to be a numpy or cupy array, got list"):
        bn2([[1.0]])
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected more than 1 value per channel "
                                         r"in training mode, got input shape \(1, 3\)"):
        bn1(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected more than 1 value per channel"):
        bn2(np.zeros((1, 3, 1, 1), np.float32))
    # one sample is fine in eval mode, and in 2-D when H * W > 1
    assert bn1.eval()(np.ones((1, 3), np.float32)).shape == (1, 3)
    assert BatchNorm2d(3)(np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)).shape == (1, 3, 2, 2)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): momentum must be a number in \[0, 1\]"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): eps must be a positive number"):
        BatchNorm1d(3, eps=0)
    with pytest.raises(ValueError, match=r"num_features must be >= 1"):
        BatchNorm2d(0)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (5, 3)), ("BatchNorm2d", (3, 2, 4, 5))])
def test_matches_torch(cls, shape, rng):
    from conftest import require_torch
    torch = require_torch()
    ours = make(BatchNorm1d if cls == "BatchNorm1d" else BatchNorm2d, shape[1])
    ref = getattr(torch.nn, cls)(shape[1]).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.weight.data))
        ref.bias.copy_(torch.from_numpy(ours.bias.data))
        ref.running_mean.copy_(torch.from_numpy(ours.running_mean))
        ref.running_var.copy_(torch.from_numpy(ours.running_var))
    for training in (True, False):
        ours.train(training)
        ref.train(training)
        ours.zero_grad()
        ref.zero_grad()
        x = rng.standard_normal(shape) * 2 + 0.5
        dy = rng.standard_normal(shape)
        xt = torch.from_numpy(x).requires_grad_()
        yt = ref(xt)
        yt.backward(torch.from_numpy(dy))
        mode = "train" if training else "eval"
        assert_close(ours(x), yt.detach().numpy(), name=f"{mode} y")
        assert_close(ours.backward(dy), xt.grad.numpy(), name=f"{mode} dx")
        assert_close(ours.weight.grad, ref.weight.grad.numpy(), name=f"{mode} dgamma")
        assert_close(ours.bias.grad, ref.bias.grad.numpy(), name=f"{mode} dbeta")
        assert_close(ours.running_mean, ref.running_mean.numpy(), name=f"{mode} running_mean")
        assert_close(ours.running_var, ref.running_var.numpy(), name=f"{mode} running_var")


@pytest.mark.gpu
@pytest.mark.parametrize("cls,shape", [(BatchNorm1d, (6, 3)), (BatchNorm2d, (4, 3, 5, 2))])
@pytest.mark.parametrize("training", [True, False])
def test_cupy_matches_numpy(cls, shape, training, rng):
    from scratchgan.backend import to_device, to_numpy
    cpu = make(cls, shape[1], training=training)
    gpu = make(cls, shape[1], training=training).to("cuda")
    x, dy = rng.standard_normal(shape) + 0.5, rng.standard_normal(shape)
    assert_close(to_numpy(gpu(to_device(x, "cuda"))), cpu(x))
    assert_close(to_numpy(gpu.backward(to_device(dy, "cuda"))), cpu.backward(dy), name="dx")
    assert_close(to_numpy(gpu.weight.grad), cpu.weight.grad, name="dgamma")
    assert_close(to_numpy(gpu.bias.grad), cpu.bias.grad, name="dbeta")
    assert_close(to_numpy(gpu.running_var), cpu.running_var, name="running_var")
    f32 = cls(shape[1]).to("cuda").train(training)
    assert f32(to_device(x.astype(np.float32), "cuda")).dtype == np.float32


@pytest.mark.parametrize("act,slope", [("relu", 0.0), ("leaky_relu", 0.2), ("leaky_relu", -0.5)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_fused_activation_equals_two_layers_and_gradchecks(act, slope, training):
    """``batchnorm_forward(..., act)`` is BN followed by the activation, value and gradient;
    the gradient is also checked against central differences (float64, no input within
    1e-3 of the kink)."""
    from scratchgan.gradcheck import gradcheck
    from scratchgan.ops import activation as A
    from scratchgan.ops import norm as N
    g = np.random.default_rng(7)
    x = g.standard_normal((6, 3, 2, 2))
    gamma, beta = 1 + 0.3 * g.standard_normal(3), 0.3 * g.standard_normal(3)
    rm, rv = g.standard_normal(3), 0.5 + g.random(3)
    y, cache = N.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), 0.1, 1e-5, training,
                                   act, slope)
    h, c1 = N.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), 0.1, 1e-5, training)
    assert np.abs(h).min() > 1e-3, "test input sits at the activation's kink"
    if act == "relu":
        ref, c2 = A.relu_forward(h)
        bwd = A.relu_backward
    else:
        ref, c2 = A.leaky_relu_forward(h, slope)
        bwd = A.leaky_relu_backward
    np.testing.assert_array_equal(y, ref)
    dy = g.standard_normal(x.shape)
    got = N.batchnorm_backward(dy, cache)
    want = N.batchnorm_backward(bwd(dy, c2), c1)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)

    def fwd(x_, gamma_, beta_):
        return N.batchnorm_forward(x_, gamma_, beta_, rm.copy(), rv.copy(), 0.1, 1e-5, training,
                                   act, slope)

    gradcheck(fwd, N.batchnorm_backward, [x.copy(), gamma.copy(), beta.copy()])
