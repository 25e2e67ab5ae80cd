"""Inception Score and Fréchet distance, written on class probabilities and features.

Both are model-agnostic here: the MNIST versions feed the outputs of the
project's LeNet classifier (:mod:`scratchgan.metrics.classifier`) into them.

Inception Score
---------------
For class posteriors p(y|x) of N samples split into S equal parts,

    IS_s = exp( mean_{x in s} KL( p(y|x) || p_s(y) ) ),   p_s(y) = mean_{x in s} p(y|x)

and the score is mean +- std of IS_s over the splits. It is 1 when every
p(y|x) is the same (e.g. uniform) and equals the number of classes K when the
predictions are confident one-hots spread evenly over the K classes. The KL is
computed from log-probabilities: log p_s(y) is a log-mean-exp of the log
posteriors, and terms with p(y|x) = 0 contribute exactly 0 (0 log 0 = 0).

Fréchet distance
----------------
Between Gaussians fitted to two feature sets,

    FD = ||mu_1 - mu_2||^2 + Tr(C_1 + C_2 - 2 (C_1 C_2)^{1/2}).

``scipy.linalg.sqrtm`` of the (non-symmetric) product C_1 C_2 can pick up a
small imaginary part from rounding; the real part is taken. When the product is
singular (scipy warns that the root may be inaccurate) or the root is not
finite, ``eps * I`` is added to both covariances (eps = 1e-6 by default; the
trace terms then change by O(F eps), negligible next to any real distance) and
the square root is recomputed. The LeNet features are post-ReLU, and some
units are dead on all of MNIST, so this path is the normal one for them.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg

from ..backend import get_array_module, to_numpy
from .parzen import logmeanexp

__all__ = ["inception_score_from_log_probs", "inception_score", "feature_statistics",
           "frechet_distance", "frechet_distance_from_features"]


def inception_score_from_log_probs(log_probs, splits=10):
    """Inception Score (mean, std over ``splits``) from log p(y|x), shape (N, K)."""
    xp = get_array_module(log_probs)
    log_probs = log_probs.astype(xp.float64)
    if log_probs.ndim != 2:
        raise ValueError(f"inception_score: expected log-probabilities of shape (N, K), got {log_probs.shape}")
    n = log_probs.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"inception_score: splits must be in [1, N={n}], got {splits}")
    scores = []
    for part in xp.array_split(log_probs, splits, axis=0):
        log_py = logmeanexp(part, axis=0, xp=xp)                   # log p_s(y)
        p = xp.exp(part)
        diff = xp.where(p > 0, part - log_py[None, :], 0.0)       # 0 log 0 = 0, no inf * 0
        terms = p * diff
        kl = xp.sum(terms, axis=1)
        scores.append(math.exp(float(to_numpy(xp.mean(kl)))))
    scores = np.asarray(scores)
    return float(scores.mean()), float(scores.std())


def inception_score(probs, splits=10):
    """Inception Score from probabilities p(y|x), shape (N, K) (zeros allowed)."""
    xp = get_array_module(probs)
    probs = probs.astype(xp.float64)
    with np.errstate(divide="ignore"):
        log_probs = xp.log(probs)
    return inception_score_from_log_probs(log_probs, splits)


def feature_statistics(features):
    """Mean and (unbiased) covariance of a feature matrix (N, F), on the host in float64."""
    f = to_numpy(features).astype(np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feature_statistics: expected features of shape (N>=2, F), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, cov1, mu2, cov2, eps=1e-6):
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (a float >= 0 up to rounding)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: shapes disagree: mu {mu1.shape}/{mu2.shape}, "
                         f"cov {cov1.shape}/{cov2.shape}")
    diff = mu1 - mu2

    def sqrt_product(a, b):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
            root = scipy.linalg.sqrtm(a @ b)
        singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
        return root, singular

    covmean, singular = sqrt_product(cov1, cov2)
    if singular or not np.all(np.isfinite(covmean)):
        # singular product (e.g. dead ReLU features with zero variance): regularize both
        offset = eps * np.eye(cov1.shape[0])
        cov1, cov2 = cov1 + offset, cov2 + offset
        covmean, _ = sqrt_product(cov1, cov2)
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(features1, features2, eps=1e-6):
    """Fréchet distance between Gaussians fitted to two feature matrices."""
    m1, c1 = feature_statistics(features1)
    m2, c2 = feature_statistics(features2)
    return frechet_distance(m1, c1, m2, c2, eps=eps)
