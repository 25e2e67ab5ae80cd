"""VAE test ELBO and importance-weighted log-likelihood, on plain callables.

Nothing here knows a model's internals. The caller passes

* ``encode(x) -> (mu, logvar)``: the Gaussian posterior q(z|x) = N(mu, diag(exp(logvar)));
* ``decode(z) -> logits`` for a Bernoulli decoder (``likelihood="bernoulli"``),
  or ``decode(z) -> (mean, logvar)`` for a Gaussian one (``likelihood="gaussian"``),

both working on arrays of one device (NumPy or CuPy), run under ``no_grad`` by
the caller (or by :func:`evaluate_vae`). The prior is p(z) = N(0, I).

Per example (summed over pixels and latent dims, in nats):

    ELBO(x) = E_{q(z|x)} log p(x|z) - KL(q(z|x) || p(z))
            ~ (1/L) sum_l log p(x|z_l) - KL,  z_l = mu + exp(logvar/2) eps_l   (KL analytic)

    log p(x) >= L_k(x) = log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x),  z_j ~ q(z|x)

L_1 = the (Monte-Carlo) ELBO with a sampled KL, and L_k increases towards
log p(x) as k grows (Burda et al.'s importance-weighted bound); the average is a
log-mean-exp of k log-weights, computed with the max-shift trick.
Bernoulli log p(x|z) = sum_d [x_d l_d - softplus(l_d)] is evaluated from
logits, so saturated decoder outputs give finite values.

The ``cvae-ncll`` evaluator scores a conditional model on the study's test images: the
negative conditional log-likelihood -log p(y|x) per image by importance sampling with
q(z|x, y) as the proposal (Sohn et al. 2015, Sec. 4.1; :meth:`scratchgan.models.cvae.CVAE.
conditional_nll`), the negative ELBO, and the baseline network's masked cross-entropy.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, to_device, device_of, to_numpy
from .evaluators import EvalContext, evaluator
from .parzen import logmeanexp

__all__ = ["LOG_2PI", "bernoulli_log_prob", "gaussian_log_prob", "standard_normal_log_prob",
           "gaussian_kl_standard", "elbo_per_example", "iw_log_likelihood_per_example",
           "evaluate_vae", "cvae_ncll_evaluator"]

LOG_2PI = math.log(2.0 * math.pi)


def _softplus(xp, a):
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


def bernoulli_log_prob(logits, x):
    """sum_d log Bern(x_d; sigmoid(l_d)) per row; x may be real-valued in [0, 1]."""
    xp = get_array_module(logits, x)
    n = logits.shape[0]
    x = x.reshape(logits.shape)              # e.g. images (N,1,28,28) against flat logits (N,784)
    lp = x * logits - _softplus(xp, logits)
    return lp.reshape(n, -1).sum(axis=1)


def gaussian_log_prob(x, mean, logvar):
    """sum_d log N(x_d; mean_d, exp(logvar_d)) per row."""
    xp = get_array_module(x, mean, logvar)
    n = x.shape[0]
    x = x.reshape(mean.shape)
    lp = -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * xp.exp(-logvar))
    return lp.reshape(n, -1).sum(axis=1)


def standard_normal_log_prob(z):
    n = z.shape[0]
    return (-0.5 * (LOG_2PI + z * z)).reshape(n, -1).sum(axis=1)


def gaussian_kl_standard(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per row = 0.5 sum (mu^2 + e^logvar - 1 - logvar)."""
    xp = get_array_module(mu, logvar)
    n = mu.shape[0]
    return (0.5 * (mu * mu + xp.exp(logvar) - 1.0 - logvar)).reshape(n, -1).sum(axis=1)


def _log_px_given_z(decode, z, x, likelihood):
    out = decode(z)
    if likelihood == "bernoulli":
        return bernoulli_log_prob(out, x)
    if likelihood == "gaussian":
        mean, logvar = out
        return gaussian_log_prob(x, mean, logvar)
    raise ValueError(f"unknown likelihood {likelihood!r}; valid choices are 'bernoulli' and 'gaussian'")


def _normal(xp, rng, shape, dtype, like):
    eps = rng.standard_normal(shape).astype(dtype)
    return eps if xp is np else to_device(eps, device_of(like))


def elbo_per_example(x, encode, decode, rng, n_samples=1, likelihood="bernoulli"):
    """ELBO(x) per row (host float64 array), KL analytic, reconstruction averaged over ``n_samples``."""
    xp = get_array_module(x)
    mu, logvar = encode(x)
    rec = 0.0
    for _ in range(n_samples):
        z = mu + xp.exp(0.5 * logvar) * _normal(xp, rng, mu.shape, mu.dtype, mu)
        rec = rec + _log_px_given_z(decode, z, x, likelihood)
    elbo = rec / n_samples - gaussian_kl_standard(mu, logvar)
    return to_numpy(elbo).astype(np.float64)


def iw_log_likelihood_per_example(x, encode, decode, rng, k=50, likelihood="bernoulli"):
    """Importance-weighted bound L_k(x) per row (host float64 array)."""
    if k < 1:
        raise ValueError(f"iw_log_likelihood: k must be >= 1, got {k}")
    xp = get_array_module(x)
    mu, logvar = encode(x)
    std = xp.exp(0.5 * logvar)
    logw = []
    for _ in range(k):
        eps = _normal(xp, rng, mu.shape, mu.dtype, mu)
        z = mu + std * eps
        log_q = gaussian_log_prob(z, mu, logvar)
        log_pz = standard_normal_log_prob(z)
        logw.append(to_numpy(_log_px_given_z(decode, z, x, likelihood) + log_pz - log_q).astype(np.float64))
    return logmeanexp(np.stack(logw, axis=1), axis=1)


def evaluate_vae(x, encode, decode, k=50, batch_size=500, rng=None, likelihood="bernoulli"):
    """Mean test ELBO and importance-weighted LL (each with its standard error) over ``x``.

    ``x`` is (N, ...) data already in the model's input format. Batches of
    ``batch_size`` rows keep memory bounded. Returns a dict with ``elbo``,
    ``elbo_se``, ``iw_ll``, ``iw_ll_se``, ``k``, ``n``.
    """
    from ..nn.module import no_grad
    rng = rng if rng is not None else np.random.default_rng(0)
    elbos, iws = [], []
    with no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            elbos.append(elbo_per_example(xb, encode, decode, rng, 1, likelihood))
            iws.append(iw_log_likelihood_per_example(xb, encode, decode, rng, k, likelihood))
    e, w = np.concatenate(elbos), np.concatenate(iws)
    se = lambda a: float(a.std() / math.sqrt(a.size))
    return {"elbo": float(e.mean()), "elbo_se": se(e), "iw_ll": float(w.mean()), "iw_ll_se": se(w),
            "k": int(k), "n": int(e.size)}


@evaluator("cvae-ncll")
def cvae_ncll_evaluator(ctx: EvalContext, n_samples=100, elbo_draws=10, n_test=None,
                        batch_size=500):
    """Per-image means over the test images (nats): ``baseline_ncll`` (the baseline network's
    masked cross-entropy), and for a model with a CVAE (``mode="cvae"``) ``cvae_ncll_is`` (the
    importance-sampled -log p(y|x), S = ``n_samples``) and ``cvae_neg_elbo`` (the mean of
    ``elbo_draws`` one-sample negative ELBOs, what the public reproduction reports); each with
    its standard error (``_sem``). Draws from ``ctx.rng(13)``."""
    m = ctx.model
    for name in ("baseline_nll", "conditional_nll", "negative_elbo"):
        if not hasattr(m, name):
            raise ValueError(f"cvae-ncll: {type(m).__name__} has no {name}; the evaluator scores "
                             f"the cvae model")
    if int(n_samples) < 1 or int(elbo_draws) < 1:
        raise ValueError(f"cvae-ncll: n_samples and elbo_draws must be >= 1, got {n_samples} "
                         f"and {elbo_draws}")
    x = ctx.data["x_test"]
    if n_test is not None:
        x = x[:int(n_test)]
    g = ctx.rng(13)
    with_cvae = m.hp.get("mode", "cvae") == "cvae"
    base, isll, nelbo = [], [], []
    for i in range(0, len(x), int(batch_size)):
        b = x[i:i + int(batch_size)]
        base.append(to_numpy(m.baseline_nll(b)).astype(np.float64))
        if with_cvae:
            isll.append(to_numpy(m.conditional_nll(b, int(n_samples), rng=g)).astype(np.float64))
            nelbo.append(np.mean([to_numpy(m.negative_elbo(b, rng=g)).astype(np.float64)
                                  for _ in range(int(elbo_draws))], 0))
    out = {}
    for key, parts in (("baseline_ncll", base), ("cvae_ncll_is", isll),
                       ("cvae_neg_elbo", nelbo)):
        if parts:
            a = np.concatenate(parts)
            out[key] = float(a.mean())
            out[key + "_sem"] = float(a.std() / math.sqrt(a.size))
    out["n_test"] = int(len(x))
    return out
