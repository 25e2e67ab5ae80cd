"""The pure pieces of the second-order backward (:mod:`scratchgan.nn.second_order`): each
activation's first and second derivative, and WGAN-GP's gradient penalty
``P = λ mean_n (‖g_n‖ − 1)²`` on the input gradients g with its gradient ``v = ∂P/∂g``
(docs/derivations/second_order.md)."""
from __future__ import annotations

from ..backend import get_array_module
from . import activation as A

__all__ = ["ACTIVATION_DERIVATIVES", "gradient_penalty_forward", "gradient_penalty_backward"]


# ---------------------------------------------------------------- activation derivatives
def _relu_d(z, y, slope):
    return (z > 0).astype(z.dtype), None


def _leaky_relu_d(z, y, slope):
    return (z > 0).astype(z.dtype) * (1.0 - slope) + slope, None


def _tanh_d(z, y, slope):
    d1 = 1 - y * y
    return d1, -2 * y * d1


def _sigmoid_d(z, y, slope):
    d1 = y * (1 - y)
    return d1, d1 * (1 - 2 * y)


def _softplus_d(z, y, slope):
    s = A.sigmoid(z)
    return s, s * (1 - s)


#: ``name -> f(z, y, slope) -> (a'(z), a''(z) or None)`` for each activation op; None means
#: a'' = 0 (piecewise linear: exact away from the kink, where central differences agree).
#:   tanh:     a' = 1 − y²,         a'' = −2y (1 − y²)
#:   sigmoid:  a' = y (1 − y),      a'' = y (1 − y)(1 − 2y)
#:   softplus: a' = σ(z),           a'' = σ(z)(1 − σ(z))
#:   relu:     a' = 1[z > 0];       leaky_relu: a' = 1 or slope;   a'' = 0
ACTIVATION_DERIVATIVES = {
    "relu": _relu_d, "leaky_relu": _leaky_relu_d, "tanh": _tanh_d, "sigmoid": _sigmoid_d,
    "softplus": _softplus_d,
}


# ----------------------------------------------------------------------------- the penalty
def gradient_penalty_forward(g, lam, target=1.0):
    """``P = λ mean_n (‖g_n‖₂ − target)²`` with the norm over all non-batch axes of a sample.

    Returns ``(P, cache)``; ``P`` is a 0-d array on g's device (no host read).
    """
    xp = get_array_module(g)
    axes = tuple(range(1, g.ndim))
    norm = xp.sqrt((g * g).sum(axis=axes))
    dev = norm - target
    return lam * (dev * dev).mean(), (g, norm, lam, target)


def gradient_penalty_backward(cache, scale=1.0):
    """``v = ∂(scale P)/∂g = scale (2λ/B)(‖g_n‖ − target) g_n / ‖g_n‖`` per sample.

    ``‖g_n‖`` is floored at 1e-12 in the division only (at g_n = 0 the norm has no gradient;
    the floor returns 0 there instead of NaN).
    """
    g, norm, lam, target = cache
    xp = get_array_module(g)
    B = g.shape[0]
    coef = scale * (2.0 * lam / B) * (norm - target) / xp.maximum(norm, 1e-12)
    return g * coef.reshape((B,) + (1,) * (g.ndim - 1)).astype(g.dtype, copy=False)
