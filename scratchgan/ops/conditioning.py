"""Conditioning plumbing: concatenation and broadcasting one-hot labels to feature maps."""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["concat_forward", "concat_backward", "onehot_map_forward", "onehot_map_backward"]


def concat_forward(xs, axis=1):
    """``y = [x_1, x_2, ...]`` joined along ``axis``; the cache keeps the split points."""
    xs = list(xs)
    xp = get_array_module(*xs)
    axis = axis % xs[0].ndim
    sizes = [int(x.shape[axis]) for x in xs]
    return xp.concatenate(xs, axis=axis), (axis, sizes)


def concat_backward(dy, cache):
    """Each output element is a copy of exactly one input element, so the
    gradient of input k is the slice of ``dy`` that came from it: concat's
    backward is a split. Returns a tuple, one contiguous array per input."""
    axis, sizes = cache
    xp = get_array_module(dy)
    out, start = [], 0
    for s in sizes:
        index = [slice(None)] * dy.ndim
        index[axis] = slice(start, start + s)
        out.append(xp.ascontiguousarray(dy[tuple(index)]))
        start += s
    return tuple(out)


def onehot_map_forward(y1h, height, width):
    """Broadcast (N, K) label vectors to (N, K, H, W) constant feature maps:
    ``y[n, k, i, j] = y1h[n, k]``."""
    xp = get_array_module(y1h)
    n, k = y1h.shape
    y = xp.ascontiguousarray(xp.broadcast_to(y1h[:, :, None, None], (n, k, height, width)))
    return y, (height, width)


def onehot_map_backward(dy, cache):
    """``y1h[n, k]`` feeds every ``y[n, k, i, j]``, so its gradient is
    ``sum_{i,j} dy[n, k, i, j]``: broadcasting's backward is a sum."""
    return dy.sum(axis=(2, 3))
