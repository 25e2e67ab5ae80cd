"""Gaussian Parzen-window log-likelihood, the GAN paper's MNIST protocol.

A model's samples ``mu_1..mu_M`` (M = 10,000) define the kernel density

    p(x) = (1/M) sum_j N(x; mu_j, sigma^2 I)
    log p(x) = logmeanexp_j( -||x - mu_j||^2 / (2 sigma^2) ) - d log(sigma sqrt(2 pi))

with d = 784 pixels in [0, 1]. The bandwidth sigma is picked from
``logspace(-1, 0, 10)`` by the mean log-likelihood of a validation set (the
first 1,000 images of train[50000:60000]); the score is the mean over the
10,000 test images with its standard error std/sqrt(N).

Numerics
--------
* Squared distances use ||x||^2 + ||mu||^2 - 2 x.mu, one matrix product per
  batch, in float64: in float32 the cancellation between terms of size ~100
  would leave errors of ~1e-5 * 100 that, divided by 2 sigma^2 = 0.02, reach
  0.1 nats per pair. Tiny negative values from rounding are clipped to 0.
* log-mean-exp subtracts the row maximum before exponentiating, so nothing
  underflows even when every exponent is around -10^4 (where the naive form
  gives log(0) = -inf).
* Memory is bounded: test points are processed ``batch_size`` at a time, and
  the sample set is split into chunks whose partial log-sum-exps are merged
  (the same max-shift trick), so the largest temporary is batch x chunk.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, to_numpy

__all__ = ["DEFAULT_SIGMAS", "logsumexp", "logmeanexp", "parzen_log_prob_multi",
           "parzen_log_prob", "parzen_log_likelihood", "parzen_select_sigma", "evaluate_parzen"]

DEFAULT_SIGMAS = tuple(np.logspace(-1, 0, 10).tolist())


def logsumexp(a, axis=-1, xp=None):
    """Stable log(sum(exp(a))) along ``axis`` (-inf rows stay -inf)."""
    xp = xp or get_array_module(a)
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    out = xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m
    return xp.squeeze(out, axis=axis)


def logmeanexp(a, axis=-1, xp=None):
    """Stable log(mean(exp(a))) along ``axis``."""
    xp = xp or get_array_module(a)
    return logsumexp(a, axis=axis, xp=xp) - math.log(a.shape[axis])


def _flatten(name, x):
    if x.ndim < 2:
        raise ValueError(f"parzen: {name} must have shape (N, ...) with N points, got shape {x.shape}")
    return x.reshape(x.shape[0], -1)


def parzen_log_prob_multi(samples, x, sigmas, batch_size=100, chunk_size=2000, dtype=np.float64):
    """log p(x) for several bandwidths at once: host float64 array (len(sigmas), N).

    The squared distances of each (batch, chunk) block are computed once and
    reused for every sigma, so a bandwidth sweep costs one pass over the data.
    """
    sigmas = [float(s) for s in np.atleast_1d(np.asarray(sigmas, dtype=np.float64))]
    if not sigmas or min(sigmas) <= 0:
        raise ValueError(f"parzen: sigmas must be positive (and at least one), got {sigmas}")
    mu = _flatten("samples", samples)
    x = _flatten("x", x)
    if mu.shape[1] != x.shape[1]:
        raise ValueError(f"parzen: samples have {mu.shape[1]} dims per point but x has {x.shape[1]}")
    xp = get_array_module(mu, x)
    mu = mu.astype(dtype, copy=False)
    M, d = mu.shape
    mu_sq = xp.sum(mu * mu, axis=1)
    out = np.empty((len(sigmas), x.shape[0]), dtype=np.float64)
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size].astype(dtype, copy=False)
        xb_sq = xp.sum(xb * xb, axis=1)[:, None]
        run = [None] * len(sigmas)
        for j in range(0, M, chunk_size):
            mc = mu[j:j + chunk_size]
            d2 = xp.maximum(xb_sq + mu_sq[None, j:j + chunk_size] - 2.0 * (xb @ mc.T), 0.0)
            for k, sig in enumerate(sigmas):
                lse = logsumexp(d2 * (-1.0 / (2.0 * sig * sig)), axis=1, xp=xp)
                run[k] = lse if run[k] is None else xp.logaddexp(run[k], lse)
        for k, sig in enumerate(sigmas):
            const = -d * math.log(sig * math.sqrt(2.0 * math.pi)) - math.log(M)
            out[k, i:i + xb.shape[0]] = to_numpy(run[k] + const)
    return out


def parzen_log_prob(samples, x, sigma, batch_size=100, chunk_size=2000, dtype=np.float64):
    """Per-point log p(x) under the Parzen window of ``samples`` (host float64 array, shape (N,)).

    ``samples`` (M, ...) and ``x`` (N, ...) are NumPy or CuPy arrays on the same
    device; both are flattened to vectors of the same length d.
    """
    if not sigma > 0:
        raise ValueError(f"parzen: sigma must be positive, got {sigma}")
    return parzen_log_prob_multi(samples, x, [sigma], batch_size, chunk_size, dtype)[0]


def parzen_log_likelihood(samples, test, sigma, batch_size=100):
    """Mean log-likelihood of ``test`` and its standard error std/sqrt(N) (floats)."""
    lp = parzen_log_prob(samples, test, sigma, batch_size=batch_size)
    return float(lp.mean()), float(lp.std() / math.sqrt(lp.size))


def parzen_select_sigma(samples, valid, sigmas=DEFAULT_SIGMAS, batch_size=100):
    """Pick the bandwidth with the best mean validation log-likelihood.

    Returns ``(best_sigma, {sigma: mean_ll})``.
    """
    if len(sigmas) == 0:
        raise ValueError("parzen_select_sigma: sigmas must not be empty")
    lp = parzen_log_prob_multi(samples, valid, sigmas, batch_size=batch_size)
    scores = {float(s): float(row.mean()) for s, row in zip(sigmas, lp)}
    best = max(scores, key=scores.get)
    return best, scores


def evaluate_parzen(samples, valid, test, sigmas=DEFAULT_SIGMAS, batch_size=100):
    """The full protocol: select sigma on ``valid``, then score ``test``.

    ``valid`` should be the first 1,000 images of train[50000:60000] and
    ``test`` the 10,000 test images, all scaled to [0, 1]; ``samples`` are the
    model's 10,000 samples in [0, 1]. Returns a dict with ``mean``, ``se``,
    ``sigma``, ``valid_scores``, ``n_samples``, ``n_test``.
    """
    sigma, scores = parzen_select_sigma(samples, valid, sigmas, batch_size)
    mean, se = parzen_log_likelihood(samples, test, sigma, batch_size)
    return {"mean": mean, "se": se, "sigma": sigma, "valid_scores": scores,
            "n_samples": int(samples.shape[0]), "n_test": int(test.shape[0])}
