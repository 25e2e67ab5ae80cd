"""Element-wise activations and numerically stable sigmoid-family helpers.

Each activation is one ``<op>_forward(x, ...) -> (y, cache)`` and one
``<op>_backward(dy, cache) -> dx``. Tanh and Sigmoid keep their *output* in
the cache, since their derivatives are functions of it.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, is_gpu_array

__all__ = ["sigmoid", "softplus", "log_sigmoid", "relu_forward", "relu_backward",
           "leaky_relu_forward", "leaky_relu_backward", "tanh_forward", "tanh_backward",
           "sigmoid_forward", "sigmoid_backward", "softplus_forward", "softplus_backward"]


def _gpu():
    from ..cuda import activation as gpu_activation  # CUDA kernels (kernels/bias_act.cu)
    return gpu_activation


# -- stable helpers -------------------------------------------------------------
def sigmoid(x):
    """``1 / (1 + e^{-x})`` without overflow.

    With ``e = exp(-|x|)`` (always in (0, 1]): ``sigma(x) = 1 / (1 + e)`` for
    x >= 0 and ``e / (1 + e)`` for x < 0. No exponential of a positive number
    is ever taken, so |x| = 1000 gives exactly 1 or ~0 with no warning.
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def softplus(x):
    """``log(1 + e^x) = max(x, 0) + log1p(e^{-|x|})`` without overflow."""
    xp = get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def log_sigmoid(x):
    """``log sigma(x) = -softplus(-x) = min(x, 0) - log1p(e^{-|x|})`` without overflow."""
    xp = get_array_module(x)
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


# -- ReLU -----------------------------------------------------------------------
def relu_forward(x):
    """``y = max(x, 0)``."""
    if is_gpu_array(x):
        return _gpu().relu_forward(x)
    xp = get_array_module(x)
    mask = x > 0
    # max(x, 0) rather than where(mask, x, 0): one pass instead of NumPy's slow three-way
    # select (about 7x faster on a 3M-element map); equal except for the sign of a zero
    return xp.maximum(x, x.dtype.type(0)), mask


def relu_backward(dy, cache):
    """``dx = dy * 1[x > 0]`` (the subgradient 0 is taken at x = 0)."""
    if is_gpu_array(dy):
        return _gpu().relu_backward(dy, cache)
    mask = cache
    return dy * mask            # (a multiply by the boolean mask: the select without np.where)


# -- LeakyReLU ------------------------------------------------------------------
def leaky_relu_forward(x, slope=0.01):
    """``y = x`` for x > 0, ``slope * x`` otherwise."""
    if is_gpu_array(x):
        return _gpu().leaky_relu_forward(x, slope)
    xp = get_array_module(x)
    mask = x > 0
    if 0.0 <= slope <= 1.0:   # then max(x, slope x) is the select, in two fast passes
        if type(x) is np.ndarray:
            y = np.multiply(x, x.dtype.type(slope))      # the second pass writes in place
            return np.maximum(x, y, out=y), (mask, slope)
        return xp.maximum(x, slope * x), (mask, slope)
    return xp.where(mask, x, slope * x).astype(x.dtype, copy=False), (mask, slope)


def leaky_relu_backward(dy, cache):
    """``dx = dy`` where x > 0 and ``slope * dy`` elsewhere."""
    if is_gpu_array(dy):
        return _gpu().leaky_relu_backward(dy, cache)
    mask, slope = cache
    if 0.0 <= slope <= 1.0:
        # dy * (1 where x > 0, else slope), the factor built from the mask as
        # mask (1 - slope) + slope: exactly 1 or slope for 0 <= slope <= 1, in two fast
        # passes instead of NumPy's slow three-way select
        t = dy.dtype.type
        return dy * (mask * t(1.0 - slope) + t(slope))
    xp = get_array_module(dy)
    return xp.where(mask, dy, slope * dy).astype(dy.dtype, copy=False)


# -- Tanh -----------------------------------------------------------------------
def tanh_forward(x):
    """``y = tanh(x)``; the output is cached."""
    if is_gpu_array(x):
        return _gpu().tanh_forward(x)
    xp = get_array_module(x)
    y = xp.tanh(x)
    return y, y


def tanh_backward(dy, cache):
    """``d tanh(x)/dx = 1 - tanh(x)^2 = 1 - y^2``, so ``dx = dy * (1 - y^2)``."""
    if is_gpu_array(dy):
        return _gpu().tanh_backward(dy, cache)
    y = cache
    return dy * (1 - y * y)


# -- Sigmoid --------------------------------------------------------------------
def sigmoid_forward(x):
    """``y = sigma(x)`` (stable form); the output is cached."""
    if is_gpu_array(x):
        return _gpu().sigmoid_forward(x)
    y = sigmoid(x)
    return y, y


def sigmoid_backward(dy, cache):
    """``d sigma(x)/dx = sigma(x) (1 - sigma(x)) = y (1 - y)``, so ``dx = dy * y * (1 - y)``."""
    if is_gpu_array(dy):
        return _gpu().sigmoid_backward(dy, cache)
    y = cache
    return dy * y * (1 - y)


# -- Softplus -------------------------------------------------------------------
def softplus_forward(x):
    """``y = log(1 + e^x)`` (stable form); the input is cached."""
    if is_gpu_array(x):
        return _gpu().softplus_forward(x)
    return softplus(x), x


def softplus_backward(dy, cache):
    """``d softplus(x)/dx = e^x / (1 + e^x) = sigma(x)``, so ``dx = dy * sigma(x)``."""
    if is_gpu_array(dy):
        return _gpu().softplus_backward(dy, cache)
    x = cache
    return dy * sigmoid(x)
