"""Batch normalization on the GPU with the kernels of ``kernels/batchnorm.cu``.

Same contract and cache layout as :mod:`scratchgan.ops.norm` (``cache = (xhat,
gamma, inv_std, training, has_beta, beta, act, slope)``), so either backward can
consume either forward's cache.

A training-mode forward is three launches (per-block partial sums over a grid of
channels x shares, a per-channel finalize that also updates the running
statistics in place, and the element-wise apply), two for (N, C) inputs; the
backward is three (two for (N, C)). ``act`` fuses the ReLU/LeakyReLU that
follows the normalisation into the apply kernel and its derivative into the
backward kernels (``scratchgan.nn.Sequential`` does this on the GPU).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import cupy
from .loader import contiguous, dtype_suffix, get_function, scalar, sm_count

__all__ = ["ACT_CODES", "batchnorm_forward", "batchnorm_backward"]

_NT = 256
_ROWS = (32, 16)      # block shape of the (N, C) kernels: channels x row groups
ACT_CODES = {None: 0, "identity": 0, "relu": 1, "leaky_relu": 2}


def _geom(x):
    N, C = x.shape[0], x.shape[1]
    HW = int(np.prod(x.shape[2:])) if x.ndim > 2 else 1
    return N, C, HW


def _ew_grid(total):
    return (max(1, min(math.ceil(total / _NT), 16 * sm_count())),)


def _shares(C, M):
    """Blocks per channel for the partial sums: about four blocks per SM in all, each
    with at least 1024 values."""
    return max(1, min(math.ceil(4 * sm_count() / C), math.ceil(M / 1024)))


def _check_size(x):
    if x.size >= 2**31:
        raise ValueError(f"batchnorm (GPU): {x.size} elements exceed the kernels' 32-bit "
                         "indexing (2^31); split the batch")


def _act(act):
    if act not in ACT_CODES:
        raise ValueError(f"batchnorm: act must be None, 'relu' or 'leaky_relu', got {act!r}")
    return np.int32(ACT_CODES[act])


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5,
                      training=True, act=None, slope=0.0):
    """GPU ``y = act(gamma * (x - mu) / sqrt(var + eps) + beta)``; returns ``(y, cache)``."""
    cp = cupy()
    x = contiguous(x)
    _check_size(x)
    suf = dtype_suffix(x.dtype)
    N, C, HW = _geom(x)
    m = N * HW
    dt = x.dtype
    code = _act(act)
    if training:
        if m < 2:
            raise ValueError(f"batchnorm_forward: expected more than 1 value per channel in "
                             f"training mode, got input shape {tuple(x.shape)}")
        mean = cp.empty(C, dtype=dt)
        var = cp.empty(C, dtype=dt)
        inv_std = cp.empty(C, dtype=dt)
        update = running_mean is not None and running_var is not None
        if update and (running_mean.dtype != dt or running_var.dtype != dt
                       or not running_mean.flags.c_contiguous
                       or not running_var.flags.c_contiguous):
            raise TypeError("batchnorm_forward (GPU): running statistics must be C-contiguous "
                            f"arrays of the input's dtype {dt}")
        rm = running_mean if update else mean
        rv = running_var if update else var
        tb = (math.ceil(C / _NT),)
        if HW == 1:
            get_function("batchnorm", f"bn_stats_rows_{suf}")(
                (math.ceil(C / _ROWS[0]),), _ROWS, (x, np.int32(N), np.int32(C), scalar(dt, eps), scalar(dt, momentum),
                             np.int32(update), mean, var, inv_std, rm, rv))
        else:
            S = _shares(C, m)
            part = cp.empty(2 * C * S, dtype=cp.float64)
            get_function("batchnorm", f"bn_partial_{suf}")(
                (C, S), (_NT,), (x, np.int32(N), np.int32(C), np.int32(HW), part))
            get_function("batchnorm", f"bn_finalize_{suf}")(
                tb, (_NT,), (x, part, np.int32(N), np.int32(C), np.int32(HW), np.int32(S),
                             scalar(dt, eps), scalar(dt, momentum), np.int32(update), mean, var,
                             inv_std, rm, rv))
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
        _ew_grid(total), (_NT,), (x, mean, inv_std, g, b, xhat, y, np.uint32(total), np.int32(C),
                                  np.int32(HW), code, scalar(dt, slope)))
    return y, (xhat, gamma, inv_std, bool(training), beta is not None, beta, act, float(slope))


def batchnorm_backward(dy, cache):
    """GPU gradients ``(dx, dgamma, dbeta)``; same formulas as scratchgan.ops.norm."""
    cp = cupy()
    xhat, gamma, inv_std, training, has_beta, beta, act, slope = cache
    dy = contiguous(dy)
    xhat = contiguous(xhat)
    _check_size(dy)
    suf = dtype_suffix(dy.dtype)
    dt = dy.dtype
    N, C, HW = _geom(dy)
    code = _act(act)
    g = cp.ones(C, dtype=dt) if gamma is None else contiguous(gamma.astype(dt, copy=False))
    b = cp.zeros(C, dtype=dt) if beta is None else contiguous(beta.astype(dt, copy=False))
    dbeta = cp.empty(C, dtype=dt)
    dgamma = cp.empty(C, dtype=dt)
    tb = (math.ceil(C / _NT),)
    if HW == 1:
        get_function("batchnorm", f"bn_bwd_rows_{suf}")(
            (math.ceil(C / _ROWS[0]),), _ROWS, (dy, xhat, g, b, np.int32(N), np.int32(C), code, scalar(dt, slope),
                         dbeta, dgamma))
    else:
        S = _shares(C, N * HW)
        part = cp.empty(2 * C * S, dtype=cp.float64)
        get_function("batchnorm", f"bn_bwd_partial_{suf}")(
            (C, S), (_NT,), (dy, xhat, g, b, np.int32(N), np.int32(C), np.int32(HW), code,
                             scalar(dt, slope), part))
        get_function("batchnorm", f"bn_bwd_finalize_{suf}")(
            tb, (_NT,), (part, np.int32(C), np.int32(S), dbeta, dgamma))
    dx = cp.empty_like(dy)
    total = dy.size
    get_function("batchnorm", f"bn_bwd_dx_{suf}")(
        _ew_grid(total), (_NT,), (dy, xhat, g, b, contiguous(inv_std.astype(dt, copy=False)),
                                  dbeta, dgamma, dx, np.uint32(total), np.int32(C), np.int32(HW),
                                  scalar(dt, N * HW), np.int32(1 if training else 0), code,
                                  scalar(dt, slope)))
    return dx, (dgamma if gamma is not None else None), (dbeta if has_beta else None)
