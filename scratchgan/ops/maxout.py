"""Maxout (Goodfellow et al. 2013): ``h_u = max_j (x Wᵀ + b)[u * pieces + j]``; the backward routes
each ``dh_u`` to the arg-max piece, then through the linear map (see :mod:`scratchgan.nn.maxout`)."""
from __future__ import annotations

from ..backend import get_array_module
from .linear import linear_backward, linear_forward

__all__ = ["maxout_forward", "maxout_backward"]


def maxout_forward(x, w, b, pieces):
    """``h[n, u] = max_j (x W^T + b)[n, u * pieces + j]``; returns ``(h, cache)``."""
    z, lin_cache = linear_forward(x, w, b)
    n = z.shape[0]
    z3 = z.reshape(n, -1, pieces)
    xp = get_array_module(z)
    idx = xp.argmax(z3, axis=2)
    h = xp.take_along_axis(z3, idx[:, :, None], axis=2)[:, :, 0]
    return h, (lin_cache, idx, z3.shape)


def maxout_backward(dh, cache, input_grad=True, param_grad=True):
    """Route ``dh`` to the winning piece, then back through the linear map: ``(dx, dw, db)``."""
    lin_cache, idx, shape3 = cache
    xp = get_array_module(dh)
    winner = idx[:, :, None] == xp.arange(shape3[2])[None, None, :]
    dz3 = winner.astype(dh.dtype) * dh[:, :, None]
    return linear_backward(dz3.reshape(shape3[0], -1), lin_cache, input_grad, param_grad)
