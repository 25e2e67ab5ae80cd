"""Progressive GAN layers (scratchgan.nn.progressive) and their ops (scratchgan.ops.resample,
pixelnorm, minibatch_stddev, fade_in): first-order gradchecks, second-order
gradgradchecks (float64, central differences), a PyTorch double-backward twin of a small
progressive critic, and CuPy-against-NumPy checks (gpu marker)."""
import math

import numpy as np
import pytest

import scratchgan as sg
from scratchgan import nn
from scratchgan.gradcheck import GradcheckError, assert_close, gradcheck, gradcheck_module, gradgradcheck
from scratchgan.nn import progressive as P
from scratchgan.ops import fade_in, minibatch_stddev, pixelnorm, resample
from scratchgan.nn.second_order import SecondOrderError, input_gradient, penalty_backward

from conftest import require_torch


def rnd(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def away(shape, seed=0):
    r = np.random.default_rng(seed)
    return np.sign(r.standard_normal(shape)) * (0.1 + np.abs(r.standard_normal(shape)))


def f64(*layers):
    return nn.Sequential(*layers).astype(np.float64)


# ----------------------------------------------------------------------------- forward values
def test_upsample_and_pool_values():
    x = np.arange(2 * 1 * 2 * 2, dtype=np.float64).reshape(2, 1, 2, 2)
    up = resample.upsample2x_forward(x)
    assert up.shape == (2, 1, 4, 4)
    assert np.array_equal(up[0, 0], np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))
    assert np.array_equal(resample.avgpool_forward(up), x)          # pooling undoes the copy
    assert resample.avgpool_forward(np.ones((1, 2, 8, 8)), 4).shape == (1, 2, 2, 2)
    with pytest.raises(ValueError, match="not divisible"):
        resample.avgpool_forward(np.ones((1, 1, 5, 4)))


def test_pixelnorm_gives_unit_mean_square():
    y, _ = pixelnorm.pixelnorm_forward(rnd((3, 7, 2, 2)), eps=0.0)
    assert_close((y * y).mean(axis=1), np.ones((3, 2, 2)))


def test_mbstd_forward_matches_formula():
    x = rnd((8, 3, 2, 2), 1)
    y, _ = minibatch_stddev.mbstd_forward(x, group_size=4, eps=1e-8)
    assert y.shape == (8, 4, 2, 2)
    assert np.array_equal(y[:, :3], x)
    for m in range(2):                                       # groups are samples m, m+2, m+4, m+6
        members = x[m::2]
        want = np.sqrt(members.var(axis=0) + 1e-8).mean()
        assert_close(y[m::2, 3], np.full((4, 2, 2), want))
    whole, _ = minibatch_stddev.mbstd_forward(x, group_size=None)
    assert_close(whole[0, 3, 0, 0], np.sqrt(x.var(axis=0) + 1e-8).mean())
    with pytest.raises(ValueError, match="not divisible"):
        minibatch_stddev.mbstd_forward(rnd((6, 1, 2, 2)), group_size=4)


def test_equalized_scale_applied_at_every_forward():
    """Changing the stored weight changes the output by the He constant times the change (the
    scale is not folded into the weights once at initialisation)."""
    conv = nn.EqualizedConv2d(3, 2, 3, padding=1, rng=0).astype(np.float64)
    c = math.sqrt(2.0) / math.sqrt(27)
    assert conv.scale == pytest.approx(c)
    assert abs(conv.weight.data.std() - 1.0) < 0.3           # N(0, 1) storage
    x = rnd((1, 3, 4, 4))
    with sg.no_grad():
        y0 = conv(x)
        conv.weight.data[0, 0, 1, 1] += 1.0
        y1 = conv(x)
    assert_close(y1[0, 0] - y0[0, 0], c * x[0, 0])
    lin = nn.EqualizedLinear(5, 3, gain=1.0, rng=0).astype(np.float64)
    assert lin.scale == pytest.approx(1 / math.sqrt(5))
    plain = nn.EqualizedConv2d(3, 2, 3, equalized=False, rng=0)
    assert plain.scale == 1.0 and abs(plain.weight.data.std() - c) < 0.3 * c


def test_fade_in_blend_and_alpha_is_written_in_place():
    fade = nn.FadeIn(nn.Sequential(nn.AvgPool2d()), nn.Sequential(nn.AvgPool2d(), nn.Tanh()),
                     alpha=0.25).astype(np.float64)
    buf = fade.alpha
    x = rnd((2, 1, 4, 4))
    with sg.no_grad():
        y = fade(x)
    p = resample.avgpool_forward(x)
    assert_close(y, 0.75 * p + 0.25 * np.tanh(p))
    fade.set_alpha(0.5)
    assert fade.alpha is buf and buf.item() == 0.5


# ----------------------------------------------------------------------------- first order
def test_op_gradchecks():
    gradcheck(lambda x: (resample.upsample2x_forward(x), None), lambda dy, c: resample.upsample2x_backward(dy),
              [rnd((2, 3, 3, 2))])
    for k in (2, 4):
        gradcheck(lambda x: (resample.avgpool_forward(x, k), None),
                  lambda dy, c: resample.avgpool_backward(dy, k), [rnd((2, 2, 8, 4))])
    gradcheck(lambda x: pixelnorm.pixelnorm_forward(x), pixelnorm.pixelnorm_backward, [rnd((3, 5, 2, 2))])
    gradcheck(lambda x: pixelnorm.pixelnorm_forward(x), pixelnorm.pixelnorm_backward, [rnd((4, 6))])
    for g in (2, 4, None):
        gradcheck(lambda x: minibatch_stddev.mbstd_forward(x, g), minibatch_stddev.mbstd_backward, [rnd((4, 3, 2, 2), 3)])
    a = np.asarray(0.3)
    gradcheck(lambda u, v: fade_in.fade_in_forward(u, v, a), lambda dy, c: fade_in.fade_in_backward(dy, c),
              [rnd((2, 3)), rnd((2, 3), 1)])


@pytest.mark.parametrize("make", [
    lambda: nn.EqualizedConv2d(3, 4, 3, padding=1, rng=1),
    lambda: nn.EqualizedConv2d(3, 4, 3, padding=1, equalized=False, rng=1),
    lambda: nn.EqualizedLinear(6, 3, gain=1.0, rng=1),
    lambda: nn.to_rgb(4, 3, rng=1),
    lambda: nn.from_rgb(3, 4, rng=1),
    lambda: nn.PixelNorm(),
    lambda: nn.MinibatchStdDev(2),
    lambda: nn.Upsample2d(),
    lambda: nn.AvgPool2d(),
])
def test_module_gradchecks(make):
    m = make().astype(np.float64)
    shape = (4, 6) if isinstance(m, nn.EqualizedLinear) else \
        (4, 4 if isinstance(m, P.EqualizedConv2d) and m.in_channels == 4 else 3, 4, 4)
    if isinstance(m, nn.Sequential) or isinstance(m, P.EqualizedConv2d):
        x = away(shape)
    else:
        x = rnd(shape)
    if isinstance(m, nn.Sequential):
        m[0].bias.data[...] = 0.05
    gradcheck_module(m, x)


def test_fade_in_module_gradcheck():
    sg.manual_seed(0)
    fade = nn.FadeIn(nn.Sequential(nn.AvgPool2d(), nn.EqualizedConv2d(2, 3, 1, rng=2), nn.Tanh()),
                     nn.Sequential(nn.EqualizedConv2d(2, 3, 3, padding=1, rng=3), nn.Softplus(),
                                   nn.AvgPool2d()), alpha=0.3).astype(np.float64)
    gradcheck_module(fade, rnd((2, 2, 4, 4)))


# ----------------------------------------------------------------------------- second order
def check2(critic, x, **kw):
    res = gradgradcheck(critic, x, **kw)
    assert all(r.passed for r in res)


def test_mbstd_second_order_alone():
    """Φ = Σ v ⊙ (J(x)ᵀ dout): ∂Φ/∂x is the layer's own second-order term."""
    for g in (2, 4, None):
        x = rnd((4, 3, 2, 2), 5)
        check2(f64(nn.MinibatchStdDev(g)), x, dout=rnd((4, 4, 2, 2), 6))


def test_mbstd_second_order_term_is_needed():
    """Dropping the layer's second-order term (ṡ_in = Jᵀ ṡ only) is caught."""
    orig = P.mbstd_backward_jvp
    try:
        def wrong(s, ds, u, cache):
            return P.mbstd_backward(ds, cache) if ds is not None else 0 * u
        P.mbstd_backward_jvp = wrong
        with pytest.raises(GradcheckError):
            gradgradcheck(f64(nn.MinibatchStdDev(4)), rnd((4, 3, 2, 2), 5),
                          dout=rnd((4, 4, 2, 2), 6))
    finally:
        P.mbstd_backward_jvp = orig


@pytest.mark.parametrize("make,shape", [
    (lambda: [nn.EqualizedConv2d(2, 3, 3, padding=1, rng=1), nn.Tanh()], (2, 2, 4, 4)),
    (lambda: [nn.EqualizedLinear(5, 3, rng=1), nn.Softplus()], (3, 5)),
    (lambda: [nn.EqualizedConv2d(2, 3, 3, padding=1, equalized=False, rng=1), nn.Sigmoid()],
     (2, 2, 4, 4)),
    (lambda: [nn.AvgPool2d(), nn.Tanh(), nn.AvgPool2d(2)], (2, 2, 8, 8)),
    (lambda: [nn.Upsample2d(), nn.Tanh()], (2, 2, 2, 2)),
    (lambda: [nn.EqualizedConv2d(3, 4, 1, rng=1), nn.Tanh(), nn.MinibatchStdDev(2),
              nn.EqualizedConv2d(5, 2, 3, padding=1, rng=2), nn.Softplus()], (4, 3, 4, 4)),
])
def test_layer_second_order(make, shape):
    critic = f64(*make())
    x = rnd(shape, 7)
    with sg.no_grad():
        out_shape = critic(x).shape
    check2(critic, x, dout=rnd(out_shape, 8))


def test_fade_in_second_order():
    fade = nn.FadeIn(nn.Sequential(nn.AvgPool2d(), nn.EqualizedConv2d(2, 3, 1, rng=2), nn.Tanh()),
                     nn.Sequential(nn.EqualizedConv2d(2, 3, 3, padding=1, rng=3), nn.Softplus(),
                                   nn.AvgPool2d()), alpha=0.3)
    critic = f64(fade, nn.Flatten(), nn.EqualizedLinear(12, 1, gain=1.0, rng=4))
    check2(critic, rnd((2, 2, 4, 4), 9))


def small_critic(alpha=0.4, act=lambda: nn.LeakyReLU(0.2)):
    """A two-resolution progressive critic in fade-in: fromRGB at 8 and 4, mbstd, 4×4 head."""
    old = nn.Sequential(nn.AvgPool2d(), nn.EqualizedConv2d(3, 4, 1, rng=1), act())
    new = nn.Sequential(nn.EqualizedConv2d(3, 4, 1, rng=2), act(),
                        nn.EqualizedConv2d(4, 4, 3, padding=1, rng=3), act(), nn.AvgPool2d())
    return f64(nn.FadeIn(old, new, alpha), nn.MinibatchStdDev(2),
               nn.EqualizedConv2d(5, 4, 3, padding=1, rng=4), act(), nn.Flatten(),
               nn.EqualizedLinear(64, 1, gain=1.0, rng=5))


def test_small_progressive_critic_second_order_smooth():
    """Smooth activations: every second-order term (mbstd and a'') is exercised."""
    check2(small_critic(act=nn.Softplus), rnd((4, 3, 8, 8), 10))


def test_small_progressive_critic_second_order_leaky():
    critic = small_critic()
    for m in critic.modules():               # biases away from zero keep activations off the kink
        if isinstance(m, (nn.EqualizedConv2d, nn.EqualizedLinear)) and m.bias is not None:
            m.bias.data[...] = 0.3
    check2(critic, rnd((4, 3, 8, 8), 11), n_projections=6)


def test_pixelnorm_in_a_critic_is_refused():
    with pytest.raises(SecondOrderError, match="PixelNorm"):
        input_gradient(f64(nn.EqualizedConv2d(2, 2, 1, rng=0), nn.PixelNorm(), nn.Flatten(),
                           nn.EqualizedLinear(8, 1, rng=0)), rnd((2, 2, 2, 2)))


# ----------------------------------------------------------------------------- PyTorch twin
def test_torch_twin_double_backward():
    torch = require_torch()
    F = torch.nn.functional
    critic = small_critic(alpha=0.35)
    for m in critic.modules():               # biases away from zero keep activations off the kink
        if isinstance(m, (nn.EqualizedConv2d, nn.EqualizedLinear)) and m.bias is not None:
            m.bias.data[...] = 0.3
    a = critic[0].alpha.item()               # the buffer's value (stored in float32, then cast)
    x = rnd((4, 3, 8, 8), 12)
    critic.zero_grad()
    g, tape = input_gradient(critic, x)
    v = rnd(g.shape, 13)
    dx = penalty_backward(tape, v, input_grad=True)
    mods = [m for m in critic.modules() if isinstance(m, nn.EqualizedConv2d)]
    lin = critic[5]
    T = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)
    ws = [T(m.weight.data) for m in mods] + [T(lin.weight.data)]
    bs = [T(m.bias.data) for m in mods] + [T(lin.bias.data)]
    sc = [m.scale for m in mods] + [lin.scale]
    pad = [0, 0, 1, 1]
    xt = T(x)

    def conv(h, i):
        return F.conv2d(h, ws[i] * sc[i], bs[i], padding=pad[i])

    def D(h):
        lr = lambda t: F.leaky_relu(t, 0.2)
        old = lr(conv(F.avg_pool2d(h, 2), 0))
        new = F.avg_pool2d(lr(conv(lr(conv(h, 1)), 2)), 2)
        y = (1 - a) * old + a * new
        G, M = 2, 2
        yg = y.reshape(G, M, *y.shape[1:])
        sig = torch.sqrt(((yg - yg.mean(0)) ** 2).mean(0) + 1e-8).mean(dim=(1, 2, 3))
        stat = sig.reshape(1, M, 1, 1, 1).expand(G, M, 1, 4, 4).reshape(4, 1, 4, 4)
        y = lr(conv(torch.cat([y, stat], 1), 3))
        return F.linear(y.reshape(4, -1), ws[4] * sc[4], bs[4])

    gt, = torch.autograd.grad(D(xt).sum(), xt, create_graph=True)
    assert_close(g, gt.detach().numpy(), name="input gradient")
    phi = (gt * torch.tensor(v)).sum()
    grads = torch.autograd.grad(phi, ws + bs + [xt], allow_unused=True)
    grads = [torch.zeros_like(t) if gr is None else gr for t, gr in zip(ws + bs + [xt], grads)]
    for m, gw in zip(mods + [lin], grads[:5]):
        assert_close(m.weight.grad, gw.numpy(), name="weight")
    for m, gb in zip(mods + [lin], grads[5:10]):
        assert_close(m.bias.grad, gb.numpy(), name="bias")
    assert_close(dx, grads[10].numpy(), name="d phi / d x")


# ----------------------------------------------------------------------------- CuPy
@pytest.mark.gpu
def test_gpu_matches_numpy_second_order():
    import cupy as cp
    for act in (nn.Softplus, lambda: nn.LeakyReLU(0.2)):
        cpu = small_critic(act=act)
        gpu = small_critic(act=act).to("cuda")
        x = rnd((4, 3, 8, 8), 14)
        g, tape = input_gradient(cpu, x)
        v = rnd(g.shape, 15)
        cpu.zero_grad()
        dx = penalty_backward(tape, v, input_grad=True)
        gg, tg = input_gradient(gpu, cp.asarray(x))
        gpu.zero_grad()
        dxg = penalty_backward(tg, cp.asarray(v), input_grad=True)
        assert_close(cp.asnumpy(gg), g, rtol=1e-10, atol=1e-12)
        assert_close(cp.asnumpy(dxg), dx, rtol=1e-10, atol=1e-12)
        for (n, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
            assert_close(cp.asnumpy(q.grad), p.grad, rtol=1e-10, atol=1e-12, name=n)


@pytest.mark.gpu
def test_gpu_first_order_layers_match_numpy():
    import cupy as cp
    x = rnd((4, 3, 4, 4), 16)
    for make in (nn.PixelNorm, lambda: nn.MinibatchStdDev(2), nn.Upsample2d, nn.AvgPool2d,
                 lambda: nn.EqualizedConv2d(3, 2, 3, padding=1, rng=0)):
        a, b = make().astype(np.float64), make().astype(np.float64).to("cuda")
        ya, yb = a(x), b(cp.asarray(x))
        dy = rnd(ya.shape, 17)
        assert_close(cp.asnumpy(yb), ya, rtol=1e-10, atol=1e-12)
        assert_close(cp.asnumpy(b.backward(cp.asarray(dy))), a.backward(dy), rtol=1e-10, atol=1e-12)
