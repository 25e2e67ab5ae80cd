"""Instance normalisation (Ulyanov et al. 2016): each (sample, channel) plane normalised by its own
mean and biased variance, with optional per-channel gamma and beta. The formulas and the
backward are in :mod:`scratchgan.nn.instancenorm` and docs/derivations/image2image.md."""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["instancenorm_forward", "instancenorm_backward"]


def instancenorm_forward(x, gamma, beta, eps):
    """``(y, cache)``; ``gamma``/``beta`` (C,) or None."""
    xp = get_array_module(x)
    mu = x.mean(axis=(2, 3), keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=(2, 3), keepdims=True)
    s = 1.0 / xp.sqrt(var + x.dtype.type(eps))
    xhat = xc * s
    y = xhat
    if gamma is not None:
        y = xhat * gamma[None, :, None, None] + beta[None, :, None, None]
    return y, (xhat, s, gamma)


def instancenorm_backward(dy, cache, param_grad=True):
    """``(dx, dgamma, dbeta)`` (the last two None without affine parameters or when
    ``param_grad`` is False)."""
    xhat, s, gamma = cache
    g = dy if gamma is None else dy * gamma[None, :, None, None]
    dx = s * (g - g.mean(axis=(2, 3), keepdims=True)
              - xhat * (g * xhat).mean(axis=(2, 3), keepdims=True))
    if gamma is None or not param_grad:
        return dx, None, None
    return dx, (dy * xhat).sum(axis=(0, 2, 3)), dy.sum(axis=(0, 2, 3))
