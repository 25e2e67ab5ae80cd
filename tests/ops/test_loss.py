"""Losses: gradient checks, values against direct formulas, stability, and the
relationships between the GAN objectives."""
import math
import warnings

import numpy as np
import pytest

from scratchgan.gradcheck import gradcheck, assert_close
from scratchgan.ops import loss as L

SHAPES = [(1,), (1, 1), (5, 1), (4, 3), (2, 3, 2, 2)]


def _naive_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logits(rng, shape, scale=3.0):
    return scale * rng.standard_normal(shape)


def _probs(rng, shape):
    return rng.uniform(0.0, 1.0, size=shape)


# Each case: name -> (make(rng, shape) -> (forward over the differentiable inputs,
#                                            backward, list of differentiable inputs))
def _case(name, rng, shape):
    if name == "bce_with_logits":
        t = _probs(rng, shape)
        return (lambda l: L.bce_with_logits_forward(l, t)), L.bce_with_logits_backward, \
            [_logits(rng, shape)]
    if name == "bce_with_logits_scalar_target":
        return (lambda l: L.bce_with_logits_forward(l, 0.9)), L.bce_with_logits_backward, \
            [_logits(rng, shape)]
    if name == "discriminator_loss":
        other = (shape[0] + 2,) + shape[1:]   # real and fake batches may differ in size
        return L.discriminator_loss_forward, L.discriminator_loss_backward, \
            [_logits(rng, shape), _logits(rng, other)]
    if name in ("generator_minimax_loss", "generator_nonsaturating_loss", "generator_logratio_loss",
                "wasserstein_generator_loss"):
        return getattr(L, name + "_forward"), getattr(L, name + "_backward"), [_logits(rng, shape)]
    if name == "wasserstein_critic_loss":
        return L.wasserstein_critic_loss_forward, L.wasserstein_critic_loss_backward, \
            [_logits(rng, shape), _logits(rng, shape)]
    if name == "mse":
        t = rng.standard_normal(shape)
        return (lambda p: L.mse_forward(p, t)), L.mse_backward, [rng.standard_normal(shape)]
    if name == "gaussian_kl":
        return L.gaussian_kl_forward, L.gaussian_kl_backward, \
            [rng.standard_normal(shape), rng.standard_normal(shape)]
    if name == "bernoulli_nll":
        x = _probs(rng, shape)
        return (lambda l: L.bernoulli_nll_forward(l, x)), L.bernoulli_nll_backward, \
            [_logits(rng, shape)]
    if name == "gaussian_nll":
        x = rng.standard_normal(shape)
        return (lambda m, lv: L.gaussian_nll_forward(m, lv, x)), L.gaussian_nll_backward, \
            [rng.standard_normal(shape), rng.standard_normal(shape)]
    if name == "gaussian_nll_fixed_std":
        x = rng.standard_normal(shape)
        return (lambda m: L.gaussian_nll_fixed_std_forward(m, x, std=0.7)), \
            L.gaussian_nll_fixed_std_backward, [rng.standard_normal(shape)]
    raise KeyError(name)


CASES = ["bce_with_logits", "bce_with_logits_scalar_target", "discriminator_loss",
         "generator_minimax_loss", "generator_nonsaturating_loss", "generator_logratio_loss",
         "wasserstein_critic_loss", "wasserstein_generator_loss", "mse", "gaussian_kl",
         "bernoulli_nll", "gaussian_nll", "gaussian_nll_fixed_std"]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", CASES)
def test_gradcheck(name, shape, rng):
    fwd, bwd, inputs = _case(name, rng, shape)
    results = gradcheck(fwd, bwd, inputs)
    assert len(results) == len(inputs)


@pytest.mark.parametrize("shape", [(1, 2), (1, 1), (4, 5), (7, 3)], ids=str)
def test_gradcheck_softmax_cross_entropy(shape, rng):
    labels = rng.integers(0, shape[1], size=shape[0])
    gradcheck(lambda l: L.softmax_cross_entropy_forward(l, labels),
              L.softmax_cross_entropy_backward, [_logits(rng, shape)])


def test_loss_is_0d_in_input_dtype_and_grads_keep_dtype(rng):
    for dt in (np.float32, np.float64):
        l = _logits(rng, (6, 1)).astype(dt)
        y, cache = L.discriminator_loss_forward(l, l.copy())
        assert y.shape == () and y.dtype == dt
        dr, df = L.discriminator_loss_backward(1.0, cache)
        assert dr.dtype == dt and df.dtype == dt
        mu = rng.standard_normal((3, 4)).astype(dt)
        y, cache = L.gaussian_kl_forward(mu, mu.copy())
        assert y.shape == () and y.dtype == dt
        assert all(g.dtype == dt for g in L.gaussian_kl_backward(np.float32(1), cache))


def test_upstream_gradient_scales_linearly(rng):
    l = _logits(rng, (5, 1))
    _, c = L.generator_nonsaturating_loss_forward(l)
    g1 = L.generator_nonsaturating_loss_backward(1.0, c)
    g3 = L.generator_nonsaturating_loss_backward(np.array(-3.0), c)
    assert_close(g3, -3.0 * g1)
    with pytest.raises(ValueError, match="scalar"):
        L.generator_nonsaturating_loss_backward(np.ones(5), c)


# -- values against direct formulas (moderate inputs, where the naive forms are accurate)
def test_values_against_naive_formulas(rng):
    shape = (8, 1)
    l, r, f = (_logits(rng, shape, 2.0) for _ in range(3))
    t = _probs(rng, shape)
    D = _naive_sigmoid
    assert_close(L.bce_with_logits_forward(l, t)[0],
                 -np.mean(t * np.log(D(l)) + (1 - t) * np.log(1 - D(l))), name="bce")
    V = np.mean(np.log(D(r))) + np.mean(np.log(1 - D(f)))
    assert_close(L.discriminator_loss_forward(r, f)[0], -V, name="discriminator = -V")
    assert_close(L.generator_minimax_loss_forward(f)[0], np.mean(np.log(1 - D(f))), name="minimax")
    assert_close(L.generator_nonsaturating_loss_forward(f)[0], -np.mean(np.log(D(f))),
                 name="nonsaturating")
    assert_close(L.generator_logratio_loss_forward(f)[0], -np.mean(np.log(D(f) / (1 - D(f)))),
                 name="logratio")
    assert_close(L.wasserstein_critic_loss_forward(r, f)[0], f.mean() - r.mean(), name="critic")
    assert_close(L.wasserstein_generator_loss_forward(f)[0], -f.mean(), name="wgan G")
    p, q = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    assert_close(L.mse_forward(p, q)[0], np.mean((p - q) ** 2), name="mse")


def test_softmax_cross_entropy_value(rng):
    l = _logits(rng, (6, 4), 2.0)
    y = rng.integers(0, 4, size=6)
    p = np.exp(l) / np.exp(l).sum(axis=1, keepdims=True)
    assert_close(L.softmax_cross_entropy_forward(l, y)[0], -np.mean(np.log(p[np.arange(6), y])))
    # gradient rows sum to zero (softmax minus a one-hot)
    _, c = L.softmax_cross_entropy_forward(l, y)
    assert_close(L.softmax_cross_entropy_backward(1.0, c).sum(axis=1), np.zeros(6))


def test_bernoulli_nll_value(rng):
    l = _logits(rng, (5, 7), 2.0)
    x = _probs(rng, (5, 7))
    D = _naive_sigmoid(l)
    want = -np.sum(x * np.log(D) + (1 - x) * np.log(1 - D)) / 5
    assert_close(L.bernoulli_nll_forward(l, x)[0], want)


def test_gaussian_nll_values_against_scipy(rng):
    stats = pytest.importorskip("scipy.stats")
    m, lv, x = (rng.standard_normal((4, 3)) for _ in range(3))
    want = -stats.norm.logpdf(x, loc=m, scale=np.exp(0.5 * lv)).sum() / 4
    assert_close(L.gaussian_nll_forward(m, lv, x)[0], want)
    want = -stats.norm.logpdf(x, loc=m, scale=0.7).sum() / 4
    assert_close(L.gaussian_nll_fixed_std_forward(m, x, std=0.7)[0], want)
    want = -stats.norm.logpdf(x, loc=m, scale=1.0).sum() / 4
    assert_close(L.gaussian_nll_fixed_std_forward(m, x)[0], want)


def test_gaussian_kl_against_numerical_integration():
    integrate = pytest.importorskip("scipy.integrate")
    for mu, logvar in [(0.7, -0.4), (-1.5, 0.8), (0.0, 0.0)]:
        s = math.exp(0.5 * logvar)

        def integrand(z):
            log_q = -0.5 * ((z - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
            log_p = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
            return math.exp(log_q) * (log_q - log_p)

        want, _ = integrate.quad(integrand, mu - 30 * s, mu + 30 * s)
        got = L.gaussian_kl_forward(np.array([[mu]]), np.array([[logvar]]))[0]
        assert abs(float(got) - want) < 1e-8


def test_gaussian_kl_zero_at_prior_and_positive_elsewhere(rng):
    mu, lv = np.zeros((3, 5)), np.zeros((3, 5))
    y, c = L.gaussian_kl_forward(mu, lv)
    assert float(y) == 0.0
    dmu, dlv = L.gaussian_kl_backward(1.0, c)
    assert not dmu.any() and not dlv.any()
    mu, lv = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    assert float(L.gaussian_kl_forward(mu, lv)[0]) > 0
    # summed over dims, mean over batch: duplicating the batch leaves it unchanged
    a = float(L.gaussian_kl_forward(mu, lv)[0])
    b = float(L.gaussian_kl_forward(np.concatenate([mu, mu]), np.concatenate([lv, lv]))[0])
    assert math.isclose(a, b, rel_tol=1e-12)


# -- stability -----------------------------------------------------------------------
LOGIT_LOSSES = [
    ("bce1", lambda l: L.bce_with_logits_forward(l, 1.0), L.bce_with_logits_backward),
    ("bce0", lambda l: L.bce_with_logits_forward(l, 0.0), L.bce_with_logits_backward),
    ("bce_arr", lambda l: L.bce_with_logits_forward(l, (l < 0).astype(l.dtype)),
     L.bce_with_logits_backward),
    ("disc", lambda l: L.discriminator_loss_forward(l, -l), L.discriminator_loss_backward),
    ("minimax", L.generator_minimax_loss_forward, L.generator_minimax_loss_backward),
    ("nonsat", L.generator_nonsaturating_loss_forward, L.generator_nonsaturating_loss_backward),
    ("logratio", L.generator_logratio_loss_forward, L.generator_logratio_loss_backward),
    ("bern", lambda l: L.bernoulli_nll_forward(l, (l > 0).astype(l.dtype)), L.bernoulli_nll_backward),
    ("softmax", lambda l: L.softmax_cross_entropy_forward(l.reshape(2, 2), np.array([0, 1])),
     L.softmax_cross_entropy_backward),
]


def _run_all(l):
    out = []
    for name, fwd, bwd in LOGIT_LOSSES:
        y, c = fwd(l)
        g = bwd(1.0, c)
        gs = g if isinstance(g, tuple) else (g,)
        assert np.isfinite(y), name
        assert all(np.all(np.isfinite(gi)) for gi in gs), name
        out.append((name, float(y), gs))
    return out


@pytest.mark.parametrize("big", [200.0, 1e4])
def test_extreme_logits_float64_no_floating_point_events(big):
    l = np.array([big, -big, big, -big])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # e^-200 is a normal float64; e^-1e4 underflows to 0, which is the right value
        with np.errstate(all="raise", under="raise" if big <= 200 else "ignore"):
            res = dict((n, (y, g)) for n, y, g in _run_all(l))
    # exact asymptotics: softplus(big) = big, softplus(-big) ~ 0
    assert math.isclose(res["bce1"][0], big / 2, rel_tol=1e-12)   # two -big terms cost big each
    assert math.isclose(res["nonsat"][0], big / 2, rel_tol=1e-12)
    assert math.isclose(res["minimax"][0], -big / 2, rel_tol=1e-12)
    assert_close(res["nonsat"][1][0], np.array([0, -1, 0, -1]) / 4.0, atol=1e-15)
    assert_close(res["minimax"][1][0], np.array([-1, 0, -1, 0]) / 4.0, atol=1e-15)


def test_extreme_logits_float32():
    """float32: e^-200 underflows to 0 (exactly right at this precision); nothing else may fire."""
    l = np.array([200.0, -200.0, 200.0, -200.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under="ignore"):
            res = _run_all(l)
    for name, y, gs in res:
        assert all(g.dtype == np.float32 for g in gs), name


# -- relationships between the GAN objectives ---------------------------------------------
def test_minimax_saturates_while_nonsaturating_does_not():
    n = 1
    prev = None
    for l0 in [-2.0, -5.0, -10.0, -20.0, -40.0]:
        l = np.array([l0])
        _, c = L.generator_minimax_loss_forward(l)
        g_mm = float(L.generator_minimax_loss_backward(1.0, c)[0])
        _, c = L.generator_nonsaturating_loss_forward(l)
        g_ns = float(L.generator_nonsaturating_loss_backward(1.0, c)[0])
        # both push the logit up (negative gradient, descent raises D(G(z)))
        assert g_mm < 0 and g_ns < 0
        # minimax: -sigma(l) ~ -e^l -> 0 ; non-saturating: sigma(l) - 1 -> -1
        assert math.isclose(g_mm, -math.exp(l0) / (1 + math.exp(l0)), rel_tol=1e-12)
        assert abs(g_ns + 1.0 / n) < 0.12
        if prev is not None:
            assert abs(g_mm) < abs(prev) / 10
        prev = g_mm
    assert abs(prev) < 1e-17  # at D(G(z)) = sigma(-40) ~ 4e-18
    assert abs(g_ns + 1.0) < 1e-15


def test_logratio_is_minimax_plus_nonsaturating(rng):
    l = _logits(rng, (6, 1))
    vals, grads = {}, {}
    for k, (f, b) in L.GENERATOR_LOSSES.items():
        y, c = f(l)
        vals[k], grads[k] = float(y), b(1.0, c)
    assert math.isclose(vals["logratio"], vals["minimax"] + vals["nonsaturating"], rel_tol=1e-12,
                        abs_tol=1e-12)
    assert_close(grads["logratio"], grads["minimax"] + grads["nonsaturating"])


def test_discriminator_loss_is_sum_of_bces_and_log4_at_equilibrium(rng):
    r, f = _logits(rng, (5, 1)), _logits(rng, (3, 1))
    y, c = L.discriminator_loss_forward(r, f)
    dr, df = L.discriminator_loss_backward(1.0, c)
    y1, c1 = L.bce_with_logits_forward(r, 1.0)
    y0, c0 = L.bce_with_logits_forward(f, 0.0)
    assert_close(y, y1 + y0)
    assert_close(dr, L.bce_with_logits_backward(1.0, c1))
    assert_close(df, L.bce_with_logits_backward(1.0, c0))
    # D = 1/2 everywhere (p_g = p_data): V = 2 log(1/2), so the loss -V = log 4
    y, _ = L.discriminator_loss_forward(np.zeros((4, 1)), np.zeros((7, 1)))
    assert math.isclose(float(y), math.log(4.0), rel_tol=1e-15)
    assert math.isclose(float(y), -2 * math.log(0.5), rel_tol=1e-15)


def test_nonsaturating_equals_bce_with_target_one(rng):
    l = _logits(rng, (4, 2))
    y, c = L.generator_nonsaturating_loss_forward(l)
    y1, c1 = L.bce_with_logits_forward(l, np.ones_like(l))
    assert_close(y, y1)
    assert_close(L.generator_nonsaturating_loss_backward(1.0, c), L.bce_with_logits_backward(1.0, c1))


def test_bernoulli_nll_minimum_is_entropy(rng):
    x = rng.uniform(0.05, 0.95, size=(3, 4))
    l = np.log(x / (1 - x))                       # sigma(l) = x: the minimizer
    y, c = L.bernoulli_nll_forward(l, x)
    H = -np.sum(x * np.log(x) + (1 - x) * np.log(1 - x)) / 3
    assert_close(y, H)
    assert_close(L.bernoulli_nll_backward(1.0, c), np.zeros_like(x), atol=1e-15)


def test_generator_registry():
    assert set(L.GENERATOR_LOSSES) == {"minimax", "nonsaturating", "logratio"}
    assert L.get_generator_loss("minimax") == (L.generator_minimax_loss_forward,
                                                L.generator_minimax_loss_backward)
    with pytest.raises(ValueError, match="nonsaturating"):
        L.get_generator_loss("hinge")


# -- input validation -----------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(rng):
    l = rng.standard_normal((4, 1))
    with pytest.raises(ValueError, match="bce_with_logits.*shape"):
        L.bce_with_logits_forward(l, np.ones((4,)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.bce_with_logits_forward(l, 1.5)
    with pytest.raises(TypeError, match="softmax_cross_entropy.*integer"):
        L.softmax_cross_entropy_forward(rng.standard_normal((3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        L.softmax_cross_entropy_forward(rng.standard_normal((3, 4)), np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        L.softmax_cross_entropy_forward(rng.standard_normal((3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="gaussian_kl.*logvar"):
        L.gaussian_kl_forward(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="discriminator_loss.*dtype"):
        L.discriminator_loss_forward(l, l.astype(np.float32))
    with pytest.raises(ValueError, match="std"):
        L.gaussian_nll_fixed_std_forward(l, l, std=0.0)
    with pytest.raises(TypeError, match="mse"):
        L.mse_forward([1.0, 2.0], np.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        L.generator_minimax_loss_forward(np.zeros((0, 1)))


def test_against_torch(rng):
    from conftest import require_torch
    torch = require_torch()
    F = torch.nn.functional
    l = _logits(rng, (6, 1))
    t = _probs(rng, (6, 1))
    lt = torch.tensor(l, requires_grad=True)
    F.binary_cross_entropy_with_logits(lt, torch.tensor(t)).backward()
    y, c = L.bce_with_logits_forward(l, t)
    assert_close(y, np.array(F.binary_cross_entropy_with_logits(lt, torch.tensor(t)).item()))
    assert_close(L.bce_with_logits_backward(1.0, c), lt.grad.numpy())
    z = _logits(rng, (5, 4))
    yl = rng.integers(0, 4, size=5)
    zt = torch.tensor(z, requires_grad=True)
    F.cross_entropy(zt, torch.tensor(yl)).backward()
    y, c = L.softmax_cross_entropy_forward(z, yl)
    assert_close(y, np.array(F.cross_entropy(torch.tensor(z), torch.tensor(yl)).item()))
    assert_close(L.softmax_cross_entropy_backward(1.0, c), zt.grad.numpy())


@pytest.mark.gpu
def test_gpu_matches_cpu(rng):
    import cupy as cp
    l = _logits(rng, (8, 1)).astype(np.float32)
    for fwd, bwd in L.GENERATOR_LOSSES.values():
        y, c = fwd(l)
        yg, cg = fwd(cp.asarray(l))
        assert isinstance(yg, cp.ndarray)
        assert_close(cp.asnumpy(yg), y)
        assert_close(cp.asnumpy(bwd(1.0, cg)), bwd(1.0, c))
    mu = rng.standard_normal((4, 3)).astype(np.float32)
    y, c = L.gaussian_kl_forward(mu, mu)
    yg, cg = L.gaussian_kl_forward(cp.asarray(mu), cp.asarray(mu))
    assert_close(cp.asnumpy(yg), y)
    labels = rng.integers(0, 3, size=4)
    y, c = L.softmax_cross_entropy_forward(mu, labels)
    yg, cg = L.softmax_cross_entropy_forward(cp.asarray(mu), cp.asarray(labels))
    assert_close(cp.asnumpy(yg), y)
    assert_close(cp.asnumpy(L.softmax_cross_entropy_backward(1.0, cg)),
                 L.softmax_cross_entropy_backward(1.0, c))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 257, 3000])
def test_gpu_fused_logit_losses_match_float64(dtype, n):
    """The one-launch GPU path (kernels/loss.cu) of BCE with a scalar target and the three
    logit-based generator losses, against the NumPy formulas in float64, extreme logits
    included; the upstream gradient scales the cached gradient; mean D(x) for logging."""
    import cupy as cp
    from scratchgan.models.base import mean_sigmoid
    seed = int(np.random.SeedSequence().entropy % 2**32)
    g = np.random.default_rng(seed)
    l = (3 * g.standard_normal((n, 1))).astype(dtype)
    l[: min(n, 4), 0] = [1e4, -1e4, 200.0, -200.0][: min(n, 4)]
    l64 = l.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    cases = [(lambda x: L.bce_with_logits_forward(x, 1.0), L.bce_with_logits_backward),
             (lambda x: L.bce_with_logits_forward(x, 0.0), L.bce_with_logits_backward),
             (lambda x: L.bce_with_logits_forward(x, 0.9), L.bce_with_logits_backward),
             (L.generator_nonsaturating_loss_forward, L.generator_nonsaturating_loss_backward),
             (L.generator_minimax_loss_forward, L.generator_minimax_loss_backward)]
    for fwd, bwd in cases:
        y, c = fwd(l64)
        yg, cg = fwd(cp.asarray(l))
        assert yg.shape == () and yg.dtype == dtype
        assert_close(cp.asnumpy(yg).astype(np.float64), y, rtol=tol, atol=tol)
        for up in (1.0, 0.37):
            dg = cp.asnumpy(bwd(up, cg)).astype(np.float64)
            assert np.isfinite(dg).all(), f"seed {seed}"
            assert_close(dg, bwd(up, c), rtol=tol, atol=tol * 1e-2 / n)
    ms = cp.asnumpy(mean_sigmoid(cp.asarray(l)))
    assert_close(ms.astype(np.float64), np.asarray(mean_sigmoid(l64)), rtol=tol, atol=tol)
