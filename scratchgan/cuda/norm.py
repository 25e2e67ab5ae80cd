"""Batch normalization on the GPU with the kernels of ``kernels/batchnorm.cu``.

Same contract and cache layout as :mod:`scratchgan.ops.norm` (``cache = (xhat,
gamma, inv_std, training, has_beta)``), so either backward can consume either
forward's cache. Per-channel reductions (mean, centred variance; dbeta, dgamma)
are one block per channel; normalisation and dx are element-wise kernels.
The running statistics are updated in place in training mode (unbiased
variance), as on the CPU.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import cupy
from .loader import contiguous, dtype_suffix, get_function, scalar, sm_count

_NT = 256


def _geom(x):
    N, C = x.shape[0], x.shape[1]
    HW = int(np.prod(x.shape[2:])) if x.ndim > 2 else 1
    return N, C, HW


def _ew_grid(total):
    return (max(1, min(math.ceil(total / _NT), 16 * sm_count())),)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5,
                      training=True):
    """GPU ``y = gamma * (x - mu) / sqrt(var + eps) + beta``; returns ``(y, cache)``."""
    cp = cupy()
    x = contiguous(x)
    suf = dtype_suffix(x.dtype)
    N, C, HW = _geom(x)
    m = N * HW
    dt = x.dtype
    if training:
        if m < 2:
            raise ValueError(f"batchnorm_forward: expected more than 1 value per channel in "
                             f"training mode, got input shape {tuple(x.shape)}")
        mean = cp.empty(C, dtype=dt)
        var = cp.empty(C, dtype=dt)
        inv_std = cp.empty(C, dtype=dt)
        get_function("batchnorm", f"bn_stats_{suf}")(
            (C,), (_NT,), (x, np.int32(N), np.int32(C), np.int32(HW), scalar(dt, eps), mean, var,
                           inv_std))
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1 - momentum) * running_var + momentum * var * (m / (m - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batchnorm_forward: eval mode needs running_mean and running_var")
        mean = cp.ascontiguousarray(running_mean, dtype=dt)
        inv_std = (1.0 / cp.sqrt(running_var.astype(dt) + eps)).astype(dt)
    g = cp.ones(C, dtype=dt) if gamma is None else contiguous(gamma.astype(dt, copy=False))
    b = cp.zeros(C, dtype=dt) if beta is None else contiguous(beta.astype(dt, copy=False))
    xhat = cp.empty_like(x)
    y = cp.empty_like(x)
    total = x.size
    get_function("batchnorm", f"bn_apply_{suf}")(
        _ew_grid(total), (_NT,), (x, mean, inv_std, g, b, xhat, y, np.int64(total), np.int32(C),
                                  np.int32(HW)))
    return y, (xhat, gamma, inv_std, bool(training), beta is not None)


def batchnorm_backward(dy, cache):
    """GPU gradients ``(dx, dgamma, dbeta)``; same formulas as scratchgan.ops.norm."""
    cp = cupy()
    xhat, gamma, inv_std, training, has_beta = cache
    dy = contiguous(dy)
    xhat = contiguous(xhat)
    suf = dtype_suffix(dy.dtype)
    dt = dy.dtype
    N, C, HW = _geom(dy)
    dbeta = cp.empty(C, dtype=dt)
    dgamma = cp.empty(C, dtype=dt)
    get_function("batchnorm", f"bn_bwd_reduce_{suf}")(
        (C,), (_NT,), (dy, xhat, np.int32(N), np.int32(C), np.int32(HW), dbeta, dgamma))
    g = cp.ones(C, dtype=dt) if gamma is None else contiguous(gamma.astype(dt, copy=False))
    dx = cp.empty_like(dy)
    total = dy.size
    get_function("batchnorm", f"bn_bwd_dx_{suf}")(
        _ew_grid(total), (_NT,), (dy, xhat, g, contiguous(inv_std.astype(dt, copy=False)), dbeta,
                                  dgamma, dx, np.int64(total), np.int32(C), np.int32(HW),
                                  scalar(dt, N * HW), np.int32(1 if training else 0)))
    return dx, (dgamma if gamma is not None else None), (dbeta if has_beta else None)
