"""The im2col + cuBLAS comparison path of the GPU convolution (:mod:`scratchgan.cuda.conv`,
``scratchgan.backend.set_conv_algorithm("im2col_cublas")``): im2col/col2im with CuPy array
ops and one cuBLAS matrix product per pass. No CuPy at import time.
"""
from __future__ import annotations

import numpy as np

from ..backend import cupy, get_conv_precision

__all__ = []  # used by scratchgan.cuda.conv only

# ------------------------------------------------------------------ im2col + cuBLAS comparison path
class _cublas_precision:
    """Run CuPy's matmul with TF32 tensor cores when the conv precision is 'tf32'."""

    def __init__(self, dtype):
        self.on = np.dtype(dtype) == np.float32 and get_conv_precision() == "tf32"
        self.prev = None

    def __enter__(self):
        if self.on:
            try:
                from cupy._core import _routines_linalg as rl
                self.prev = rl.get_compute_type(np.float32)
                rl.set_compute_type(np.float32, rl.COMPUTE_TYPE_TF32)
            except Exception:
                self.on = False
        return self

    def __exit__(self, *exc):
        if self.on and self.prev is not None:
            from cupy._core import _routines_linalg as rl
            rl.set_compute_type(np.float32, self.prev)
        return False


def _im2col(x, R, S, stride, padding, dilation, P, Q):
    """(C*R*S, N*P*Q) column matrix (a real buffer: this is the comparison path)."""
    cp = cupy()
    N, C, H, W = x.shape
    xp_ = cp.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    sn, sc, sh_, sw_ = xp_.strides
    view = cp.lib.stride_tricks.as_strided(
        xp_, shape=(C, R, S, N, P, Q),
        strides=(sc, sh_ * dilation[0], sw_ * dilation[1], sn, sh_ * stride[0], sw_ * stride[1]))
    return view.reshape(C * R * S, N * P * Q)


def _im2col_forward(x, w, stride, padding, dilation, P, Q):
    N = x.shape[0]
    K, C, R, S = w.shape
    cols = _im2col(x, R, S, stride, padding, dilation, P, Q)
    with _cublas_precision(x.dtype):
        y = w.reshape(K, C * R * S) @ cols
    return y.reshape(K, N, P, Q).transpose(1, 0, 2, 3)


def _im2col_backward_data(dy, w, x_shape, stride, padding, dilation):
    cp = cupy()
    N, C, H, W = x_shape
    K, _, R, S = w.shape
    P, Q = dy.shape[2:]
    dy2 = dy.transpose(1, 0, 2, 3).reshape(K, N * P * Q)
    with _cublas_precision(dy.dtype):
        dcols = (w.reshape(K, C * R * S).T @ dy2).reshape(C, R, S, N, P, Q)
    ph, pw = padding
    dxp = cp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    for r in range(R):
        h0 = r * dilation[0]
        for s in range(S):
            w0 = s * dilation[1]
            dxp[:, :, h0:h0 + stride[0] * (P - 1) + 1:stride[0],
                w0:w0 + stride[1] * (Q - 1) + 1:stride[1]] += dcols[:, r, s].transpose(1, 0, 2, 3)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def _im2col_backward_filter(x, dy, w_shape, stride, padding, dilation):
    K, C, R, S = w_shape
    N = x.shape[0]
    P, Q = dy.shape[2:]
    cols = _im2col(x, R, S, stride, padding, dilation, P, Q)
    dy2 = dy.transpose(1, 0, 2, 3).reshape(K, N * P * Q)
    with _cublas_precision(x.dtype):
        dw = dy2 @ cols.T
    return dw.reshape(w_shape)
