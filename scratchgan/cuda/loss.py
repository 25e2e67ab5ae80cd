"""Losses on logits in one launch (``kernels/loss.cu``).

``logit_bce(logits, t, sign)`` returns the loss (0-d), its gradient with respect
to the logits (for an upstream gradient of 1) and the mean of sigmoid(logits),
all from one pass: the binary cross-entropy on logits with a scalar target, the
non-saturating (t = 1) and the minimax (t = 0, sign = -1) generator losses.
The formulas are those of :mod:`scratchgan.ops.loss`; the kernel accumulates
its sums in double.
"""
from __future__ import annotations

import numpy as np

from ..backend import cupy
from .loader import contiguous, dtype_suffix, get_function, scalar

__all__ = ["logit_bce", "sigmoid_mean"]

_NT = 256


def _check_n(n):
    if n >= 2**31:
        raise ValueError(f"scratchgan.cuda.loss: {n} logits exceed the kernel's 32-bit count")


def logit_bce(logits, t, sign=1.0):
    """``(loss, grad, mean_sigmoid)`` of ``sign * mean(softplus(l) - t l)``."""
    cp = cupy()
    x = contiguous(logits)
    _check_n(x.size)
    dt = x.dtype
    loss = cp.empty((), dtype=dt)
    msig = cp.empty((), dtype=dt)
    grad = cp.empty_like(x)
    get_function("loss", f"logit_bce_{dtype_suffix(dt)}")(
        (1,), (_NT,), (x, np.int32(x.size), scalar(dt, t), scalar(dt, sign), loss, grad, msig))
    return loss, grad, msig


def sigmoid_mean(logits):
    """``mean(sigmoid(l))`` as a 0-d array, in one launch."""
    cp = cupy()
    x = contiguous(logits)
    _check_n(x.size)
    out = cp.empty((), dtype=x.dtype)
    get_function("loss", f"sigmoid_mean_{dtype_suffix(x.dtype)}")(
        (1,), (_NT,), (x, np.int32(x.size), out))
    return out
