"""Second-order checks (scratchgan.gradcheck.gradgradcheck) of scratchgan.nn.second_order: every
supported layer on its own (with a random output weight ``dout``), whole critics (MLP, the
official WGAN-GP MNIST conv critic scaled down, smooth-activation MLPs, LayerNorm critics),
and the checker's power to reject a wrong second-order term. float64, central differences."""
import numpy as np
import pytest

import scratchgan as sg
from scratchgan import nn
from scratchgan.gradcheck import GradcheckError, gradgradcheck
from scratchgan.nn import second_order as nn_second_order
from scratchgan.ops import second_order

KINKED = (nn.ReLU, nn.LeakyReLU)
MARGIN = 1e-4      # no ReLU/LeakyReLU input closer than this to 0 (see tests/test_stacks.py)


def _layers(m):
    return list(nn_second_order._layers(m))


def min_kink_distance(critic, x):
    """Smallest |input| that any ReLU/LeakyReLU of the critic sees at x."""
    smallest, h = np.inf, x
    with sg.no_grad():
        for _, layer in _layers(critic):
            if isinstance(layer, KINKED):
                smallest = min(smallest, float(np.abs(h).min()))
            h = layer(h)
    return smallest


def away_from_kink(shape, seed):
    """sign * (0.1 + |N(0,1)|): never closer than 0.1 to an activation's kink."""
    r = np.random.default_rng(seed)
    return np.sign(r.standard_normal(shape)) * (0.1 + np.abs(r.standard_normal(shape)))


def check(critic, x, **kw):
    if any(isinstance(m, KINKED) for _, m in _layers(critic)):
        assert min_kink_distance(critic, x) > MARGIN, "an activation input sits at a kink"
    res = gradgradcheck(critic, x, **kw)
    assert all(r.passed for r in res)
    return res


def f64(*layers):
    return nn.Sequential(*layers).astype(np.float64)


# ----------------------------------------------------------------------------- one op at a time
@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid, nn.Softplus,
                                 lambda: nn.LeakyReLU(0.2), nn.ReLU])
def test_activation_alone(act):
    """Φ = Σ v a'(x) dout, so ∂Φ/∂x = v a''(x) dout: the a''-term on its own."""
    x = away_from_kink((3, 5), 0)
    dout = np.random.default_rng(1).standard_normal((3, 5))
    check(f64(act()), x, dout=dout)


def test_linear_alone():
    """g = dout W does not depend on x: ∂Φ/∂W = doutᵀ v, ∂Φ/∂b = 0, ∂Φ/∂x = 0."""
    sg.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    check(f64(nn.Linear(3, 5)), x, dout=np.random.default_rng(1).standard_normal((4, 5)))


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 2, 1), (1, 1, 2)])
def test_conv2d_alone(stride, padding, dilation):
    sg.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=stride, padding=padding, dilation=dilation)
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 7))
    P, Q = conv.output_size((7, 7))
    check(f64(conv), x, dout=np.random.default_rng(1).standard_normal((2, 3, P, Q)))


@pytest.mark.parametrize("shape,norm", [((4, 6), 6), ((3, 2, 4, 4), (2, 4, 4)), ((3, 2, 4, 5), 5)])
def test_layernorm_alone(shape, norm):
    """LayerNorm's own second derivative (its Jacobian depends on x), with random affine."""
    ln = nn.LayerNorm(norm).astype(np.float64)
    r = np.random.default_rng(2)
    ln.weight.data[...] = 1 + 0.5 * r.standard_normal(ln.weight.shape)
    ln.bias.data[...] = 0.5 * r.standard_normal(ln.bias.shape)
    x = r.standard_normal(shape)
    check(nn.Sequential(ln), x, dout=r.standard_normal(shape))


def test_layernorm_without_affine():
    x = np.random.default_rng(3).standard_normal((3, 7))
    check(nn.Sequential(nn.LayerNorm(7, affine=False)), x,
          dout=np.random.default_rng(4).standard_normal((3, 7)))


def test_flatten_and_reshape_alone():
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 3))
    sg.manual_seed(0)
    check(f64(nn.Flatten(), nn.Tanh(), nn.Reshape(2, 9), nn.Softplus()), x,
          dout=np.random.default_rng(1).standard_normal((2, 2, 9)))


# ----------------------------------------------------------------------------- whole critics
def test_mlp_critic_leaky_relu():
    sg.manual_seed(1)
    C = f64(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    check(C, np.random.default_rng(0).standard_normal((6, 2)))


def wgan_gp_mnist_critic(d=2):
    """The official MNIST critic (conv 5x5 s2 64, LReLU 0.2, 128, 256, Linear -> 1), width d/64."""
    return f64(nn.Conv2d(1, d, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
               nn.Conv2d(d, 2 * d, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
               nn.Conv2d(2 * d, 4 * d, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
               nn.Flatten(), nn.Linear(4 * d * 4 * 4, 1))


def test_conv_critic_like_official_mnist():
    sg.manual_seed(0)
    C = wgan_gp_mnist_critic()
    x = np.random.default_rng(0).uniform(0, 1, size=(2, 1, 28, 28))
    check(C, x, n_projections=4)


@pytest.mark.parametrize("acts", [(nn.Tanh, nn.Softplus), (nn.Softplus, nn.Sigmoid),
                                  (nn.Sigmoid, nn.Tanh)])
def test_smooth_mlp_critic(acts):
    sg.manual_seed(2)
    a, b = acts
    C = f64(nn.Linear(3, 8), a(), nn.Linear(8, 6), b(), nn.Linear(6, 1))
    check(C, np.random.default_rng(0).standard_normal((5, 3)))


def test_layernorm_mlp_critic():
    sg.manual_seed(3)
    C = f64(nn.Linear(3, 8), nn.LayerNorm(8), nn.LeakyReLU(0.2), nn.Linear(8, 6), nn.LayerNorm(6),
            nn.Tanh(), nn.Linear(6, 1))
    r = np.random.default_rng(5)
    for m in C:
        if isinstance(m, nn.LayerNorm):
            m.weight.data[...] = 1 + 0.3 * r.standard_normal(m.weight.shape)
            m.bias.data[...] = 0.3 * r.standard_normal(m.bias.shape)
    check(C, np.random.default_rng(0).standard_normal((4, 3)))


def test_layernorm_conv_critic():
    """WGAN-GP's CIFAR critic replaces BatchNorm by layer normalization over (C, H, W)."""
    sg.manual_seed(4)
    C = f64(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.LayerNorm((3, 2, 2)), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(12, 1))
    check(C, np.random.default_rng(1).uniform(-1, 1, size=(3, 1, 6, 6)), n_projections=6)


def test_critic_ending_in_a_smooth_activation():
    """The second-order term of a layer above the last parameter layer reaches it."""
    sg.manual_seed(5)
    C = f64(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1), nn.Tanh())
    check(C, np.random.default_rng(2).standard_normal((5, 3)))


def test_output_shape_n_and_n1():
    sg.manual_seed(6)
    C = f64(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0))
    x = np.random.default_rng(2).standard_normal((5, 3))
    with sg.no_grad():
        assert C(x).shape == (5,)
    check(C, x)


# ----------------------------------------------------------------------- it rejects wrong terms
def test_rejects_a_dropped_tanh_second_derivative(monkeypatch):
    sg.manual_seed(2)
    C = f64(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    x = np.random.default_rng(0).standard_normal((5, 3))
    check(C, x)
    monkeypatch.setitem(second_order.ACTIVATION_DERIVATIVES, "tanh",
                        lambda z, y, slope: (1 - y * y, None))      # a'' dropped
    with pytest.raises(GradcheckError, match="worst at index"):
        gradgradcheck(C, x)


def test_rejects_a_penalty_that_never_reaches_the_weights(monkeypatch):
    """The classic bug (mlpack #2891): the penalty is computed but its gradient is lost."""
    sg.manual_seed(1)
    C = f64(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    x = np.random.default_rng(0).standard_normal((4, 2))
    monkeypatch.setattr(nn_second_order, "penalty_backward", lambda tape, v, input_grad=False:
                        (np.zeros_like(v) if input_grad else None))
    with pytest.raises(GradcheckError, match="parameter 0.weight"):
        gradgradcheck(C, x, check_input=False)


def test_rejects_a_wrong_layernorm_second_order_term(monkeypatch):
    from scratchgan.ops import layernorm as LN
    sg.manual_seed(3)
    C = f64(nn.Linear(3, 6), nn.LayerNorm(6), nn.Linear(6, 1))
    x = np.random.default_rng(0).standard_normal((4, 3))
    check(C, x)
    orig = LN.layernorm_backward_jvp

    def first_order_only(s, ds, u, cache, input_grad=True, param_grad=True):
        return orig(s, ds, 0 * u, cache, input_grad, param_grad)   # drops every u-term

    monkeypatch.setattr(nn_second_order, "layernorm_backward_jvp", first_order_only)
    with pytest.raises(GradcheckError):
        gradgradcheck(C, x)
