"""Affine map ``y = x W^T + b`` (PyTorch layout: ``W`` is (out, in)).

On the GPU the three GEMMs run through the project's implicit-GEMM convolution
kernels, as a 1x1 convolution of N one-pixel images with ``in`` channels
(``scratchgan.cuda.conv``; FP32, TF32 under ``set_conv_precision("tf32")``, or
FP64). Besides being our own kernels, this keeps a Linear layer inside a
captured CUDA graph: CuPy refuses cuBLAS calls during stream capture.
"""
from __future__ import annotations

from ..backend import is_gpu_array

__all__ = ["linear_forward", "linear_backward"]

_ONE = ((1, 1), (0, 0), (1, 1))      # stride, padding, dilation of the 1x1 convolution


def _as_conv(x, w):
    from ..cuda.loader import contiguous
    n, i = x.shape
    o = w.shape[0]
    return contiguous(x).reshape(n, i, 1, 1), contiguous(w).reshape(o, i, 1, 1)


def linear_forward(x, w, b=None):
    """``y[n, o] = sum_i x[n, i] w[o, i] + b[o]`` for ``x`` (N, in), ``w`` (out, in), ``b`` (out,)."""
    if is_gpu_array(x) and x.ndim == 2:
        from ..cuda import conv as cc
        x4, w4 = _as_conv(x, w)
        y = cc.conv2d_forward(x4, w4, *_ONE).reshape(x.shape[0], w.shape[0])
    else:
        y = x @ w.T
    if b is not None:
        y = y + b
    return y, (x, w, b is not None)


def linear_backward(dy, cache, input_grad=True, param_grad=True):
    """Gradients of ``L`` given ``dy = dL/dy`` of shape (N, out).

    From ``y[n, o] = sum_i x[n, i] w[o, i] + b[o]``:

    * ``dL/dx[n, i] = sum_o dy[n, o] w[o, i]``   ->  ``dx = dy @ W``      (N, in)
    * ``dL/dw[o, i] = sum_n dy[n, o] x[n, i]``   ->  ``dW = dy^T @ x``    (out, in)
    * ``dL/db[o]    = sum_n dy[n, o]``           ->  ``db = dy.sum(0)``   (out,)

    Returns ``(dx, dw, db)``; ``db`` is None when the forward had no bias, ``dx`` is None
    with ``input_grad=False`` (a first layer: nobody uses d/dx, so its GEMM is skipped),
    ``dw`` and ``db`` are None with ``param_grad=False`` (a frozen layer).
    See docs/derivations/linear.md.
    """
    x, w, has_bias = cache
    gpu = is_gpu_array(dy) and dy.ndim == 2
    if gpu:
        from ..cuda import conv as cc
        from ..cuda.loader import contiguous
        x4, w4 = _as_conv(x, w)
        dy4 = contiguous(dy).reshape(dy.shape[0], dy.shape[1], 1, 1)
    if not input_grad:
        dx = None
    elif gpu:
        dx = cc.conv2d_backward_data(dy4, w4, x4.shape, *_ONE).reshape(x.shape)
    else:
        dx = dy @ w
    if not param_grad:
        return dx, None, None
    dw = cc.conv2d_backward_filter(x4, dy4, w4.shape, *_ONE).reshape(w.shape) if gpu else dy.T @ x
    db = dy.sum(axis=0) if has_bias else None
    return dx, dw, db
