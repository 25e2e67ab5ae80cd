"""2x2-style max pooling (non-overlapping windows), used only by the metrics classifier.

The generative models need no pooling (DCGAN replaces it with strided
convolutions), so this op lives beside the LeNet that uses it rather than in
``scratchgan.ops``.

Forward: for x (N, C, H, W) with H, W divisible by k,

    y[n, c, i, j] = max_{a, b < k} x[n, c, k i + a, k j + b].

Backward: max is piecewise linear, so dy[n, c, i, j] flows to the single input
that attained the maximum and every other input gets 0. Ties are broken
towards the first position in row-major window order, so exactly one input per
window receives the gradient (the sum of dx over a window equals dy there).
Verified by ``tests/test_metrics.py::test_maxpool_gradcheck`` with inputs whose
window entries are well separated (no ties, no kinks).
"""
from __future__ import annotations

from ..backend import get_array_module
from ..nn.module import Module

__all__ = ["maxpool_forward", "maxpool_backward", "MaxPool2d"]


def maxpool_forward(x, k=2):
    """Non-overlapping k x k max pooling. Returns (y, cache)."""
    if x.ndim != 4:
        raise ValueError(f"MaxPool2d: expected input of shape (N, C, H, W), got shape {x.shape}")
    N, C, H, W = x.shape
    if H % k or W % k:
        raise ValueError(f"MaxPool2d(kernel_size={k}): expected H and W divisible by {k}, "
                         f"got H={H}, W={W}")
    xp = get_array_module(x)
    win = x.reshape(N, C, H // k, k, W // k, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H // k, W // k, k * k)
    idx = xp.argmax(win, axis=-1)                       # first maximum on ties
    y = xp.take_along_axis(win, idx[..., None], axis=-1)[..., 0]
    return y, (idx, x.shape, k)


def maxpool_backward(dy, cache):
    """dx: dy routed to each window's (first) argmax, zeros elsewhere."""
    idx, x_shape, k = cache
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    hit = idx[..., None] == xp.arange(k * k)          # one True per window
    dwin = xp.where(hit, dy[..., None], 0).astype(dy.dtype, copy=False)
    return dwin.reshape(N, C, H // k, W // k, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(x_shape)


class MaxPool2d(Module):
    """Module wrapper of :func:`maxpool_forward` (kernel = stride = k)."""

    def __init__(self, kernel_size=2):
        super().__init__()
        self.kernel_size = int(kernel_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}"

    def forward(self, x):
        y, cache = maxpool_forward(x, self.kernel_size)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        return maxpool_backward(dy, self._take_cache())
