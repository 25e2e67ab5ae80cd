"""Bias + activation on the GPU with the kernels of ``kernels/bias_act.cu``.

The per-activation functions have the contract and cache layout of
:mod:`scratchgan.ops.activation` (ReLU: bool mask; LeakyReLU: (mask, slope);
tanh and sigmoid: the output; softplus: the input), so the CPU and GPU
backwards accept each other's caches. ``bias_act_forward`` fuses a per-channel
bias (axis 1) with any of them.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import cupy
from .loader import contiguous, dtype_suffix, get_function, scalar, sm_count

__all__ = ["ACT_CODES", "relu_forward", "relu_backward", "leaky_relu_forward",
           "leaky_relu_backward", "tanh_forward", "tanh_backward", "sigmoid_forward",
           "sigmoid_backward", "softplus_forward", "softplus_backward", "channel_sum",
           "bias_act_forward", "bias_act_backward"]

ACT_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4, "softplus": 5}
_NT = 256


def _grid(total):
    return (max(1, min(math.ceil(total / _NT), 16 * sm_count())),)


def _geom(x):
    C = x.shape[1] if x.ndim >= 2 else 1
    HW = int(np.prod(x.shape[2:])) if x.ndim > 2 else 1
    return C, HW


def _fwd(x, bias, act, slope, want_mask):
    cp = cupy()
    x = contiguous(x)
    dt = x.dtype
    suf = dtype_suffix(dt)
    C, HW = _geom(x)
    y = cp.empty_like(x)
    mask = cp.empty(x.shape, dtype=cp.bool_) if want_mask else cp.empty(1, dtype=cp.bool_)
    b = contiguous(bias.astype(dt, copy=False)) if bias is not None else cp.zeros(1, dtype=dt)
    get_function("bias_act", f"bias_act_fwd_{suf}")(
        _grid(x.size), (_NT,), (x, b, y, mask, np.int64(x.size), np.int32(C), np.int32(HW),
                                np.int32(ACT_CODES[act]), scalar(dt, slope),
                                np.int32(bias is not None), np.int32(want_mask)))
    return y, (mask if want_mask else None)


def _bwd_mask(dy, mask, slope):
    cp = cupy()
    dy = contiguous(dy)
    dx = cp.empty_like(dy)
    get_function("bias_act", f"act_bwd_mask_{dtype_suffix(dy.dtype)}")(
        _grid(dy.size), (_NT,), (dy, contiguous(mask), dx, np.int64(dy.size),
                                 scalar(dy.dtype, slope)))
    return dx


def _bwd_out(dy, y, act):
    cp = cupy()
    dy = contiguous(dy)
    dx = cp.empty_like(dy)
    get_function("bias_act", f"act_bwd_out_{dtype_suffix(dy.dtype)}")(
        _grid(dy.size), (_NT,), (dy, contiguous(y), dx, np.int64(dy.size),
                                 np.int32(ACT_CODES[act])))
    return dx


def _bwd_in(dy, x):
    cp = cupy()
    dy = contiguous(dy)
    dx = cp.empty_like(dy)
    get_function("bias_act", f"act_bwd_in_{dtype_suffix(dy.dtype)}")(
        _grid(dy.size), (_NT,), (dy, contiguous(x), dx, np.int64(dy.size)))
    return dx


def relu_forward(x):
    return _fwd(x, None, "relu", 0.0, True)


def relu_backward(dy, cache):
    return _bwd_mask(dy, cache, 0.0)


def leaky_relu_forward(x, slope=0.01):
    y, mask = _fwd(x, None, "leaky_relu", slope, True)
    return y, (mask, slope)


def leaky_relu_backward(dy, cache):
    mask, slope = cache
    return _bwd_mask(dy, mask, slope)


def tanh_forward(x):
    y, _ = _fwd(x, None, "tanh", 0.0, False)
    return y, y


def tanh_backward(dy, cache):
    return _bwd_out(dy, cache, "tanh")


def sigmoid_forward(x):
    y, _ = _fwd(x, None, "sigmoid", 0.0, False)
    return y, y


def sigmoid_backward(dy, cache):
    return _bwd_out(dy, cache, "sigmoid")


def softplus_forward(x):
    y, _ = _fwd(x, None, "softplus", 0.0, False)
    return y, x


def softplus_backward(dy, cache):
    return _bwd_in(dy, cache)


def channel_sum(dy):
    """``db[c] = sum over every axis but 1 of dy`` (bias gradient)."""
    cp = cupy()
    dy = contiguous(dy)
    C, HW = _geom(dy)
    out = cp.empty(C, dtype=dy.dtype)
    get_function("bias_act", f"channel_sum_{dtype_suffix(dy.dtype)}")(
        (C,), (256,), (dy, out, np.int32(dy.shape[0]), np.int32(C), np.int32(HW)))
    return out


def bias_act_forward(x, bias, act="identity", slope=0.01):
    """``y = act(x + bias[c])`` (bias over axis 1, may be None); returns ``(y, cache)``."""
    if act not in ACT_CODES:
        raise ValueError(f"bias_act_forward: unknown activation {act!r}; valid: {sorted(ACT_CODES)}")
    want_mask = act in ("relu", "leaky_relu")
    y, mask = _fwd(x, bias, act, slope, want_mask)
    if want_mask:
        saved = mask
    elif act in ("tanh", "sigmoid"):
        saved = y
    elif act == "softplus":
        saved = x if bias is None else x + bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    else:
        saved = None
    return y, (act, slope, saved, bias is not None)


def bias_act_backward(dy, cache):
    """``(dx, dbias)``: dx = dy * act'(x + b), dbias[c] = sum of dx over all axes but 1."""
    act, slope, saved, has_bias = cache
    if act in ("relu", "leaky_relu"):
        dx = _bwd_mask(dy, saved, 0.0 if act == "relu" else slope)
    elif act in ("tanh", "sigmoid"):
        dx = _bwd_out(dy, saved, act)
    elif act == "softplus":
        dx = _bwd_in(dy, saved)
    else:
        dx = contiguous(dy).copy()
    return dx, (channel_sum(dx) if has_bias else None)
