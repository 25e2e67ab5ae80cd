"""Reflection padding of (N, C, H, W) arrays (PyTorch's ``ReflectionPad2d``): each output copies
one input element, so the backward is a scatter-add, done axis by axis with slices (see
:mod:`scratchgan.nn.padding` and docs/derivations/image2image.md)."""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["reflection_pad_forward", "reflection_pad_backward"]


def reflection_pad_forward(x, pad):
    """``(y, cache)``: ``x`` (N, C, H, W) reflected by ``pad`` = (top, bottom, left, right)."""
    t, b, l, r = pad
    H, W = x.shape[2:]
    xp = get_array_module(x)
    def stop(k):                   # a reversed slice ending just past index 0 needs None
        return k if k >= 0 else None
    rows = xp.concatenate([x[:, :, t:0:-1], x, x[:, :, H - 2:stop(H - 2 - b):-1]], axis=2) \
        if (t or b) else x
    y = xp.concatenate([rows[:, :, :, l:0:-1], rows, rows[:, :, :, W - 2:stop(W - 2 - r):-1]],
                       axis=3) if (l or r) else rows
    return xp.ascontiguousarray(y), (pad, (H, W))


def _fold(g, axis, lo, hi, n):
    """Adjoint of reflecting ``n`` entries by (lo, hi) along ``axis`` (2 or 3)."""
    def sl(a, b_, step=None):
        idx = [slice(None)] * 4
        idx[axis] = slice(a, b_, step)
        return tuple(idx)
    out = g[sl(lo, lo + n)].copy()
    if lo:
        # padded position i < lo holds x[lo - i]: rows 1..lo of x, in reverse order
        out[sl(1, lo + 1)] += g[sl(lo - 1, None, -1)]
    if hi:
        # padded position lo + n - 1 + k holds x[n - 1 - k], k = 1..hi
        out[sl(n - 1 - hi, n - 1)] += g[sl(lo + n + hi - 1, lo + n - 1, -1)]
    return out


def reflection_pad_backward(dy, cache):
    """Scatter-add of the padded gradient onto the elements it was copied from."""
    (t, b, l, r), (H, W) = cache
    g = _fold(dy, 2, t, b, H)
    return _fold(g, 3, l, r, W)
