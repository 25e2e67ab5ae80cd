"""Conditioning layers: Concat, OneHotMap and the ``one_hot`` helper."""
from __future__ import annotations

import numpy as np

from ..backend import device_of, get_array_module
from ..ops.conditioning import (concat_backward, concat_forward, onehot_map_backward,
                                onehot_map_forward)
from ..validate import check_array, check_positive_int
from .module import Module

__all__ = ["one_hot", "Concat", "OneHotMap", "TwoInputNet"]


def one_hot(labels, num_classes, dtype=np.float32, xp=None):
    """(N,) integer labels -> (N, num_classes) one-hot rows of ``dtype``.

    ``xp`` picks the array library of the result (default: that of ``labels``;
    NumPy for lists). Labels outside ``[0, num_classes)`` raise ValueError.
    """
    check_positive_int("one_hot", "num_classes", num_classes)
    if xp is None:
        xp = get_array_module(labels) if not isinstance(labels, (list, tuple)) else np
    lab = xp.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"one_hot: expected a 1-D array of labels (N,), got shape {tuple(lab.shape)}")
    if lab.dtype.kind not in "iu":
        if lab.size:
            raise TypeError(f"one_hot: expected integer labels, got dtype {lab.dtype}")
        lab = lab.astype(np.int64)
    out = xp.zeros((lab.shape[0], int(num_classes)), dtype=dtype)
    if lab.size:
        lo, hi = int(lab.min()), int(lab.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"one_hot: labels must be in [0, {num_classes}), got values from "
                             f"{lo} to {hi}")
        out[xp.arange(lab.shape[0]), lab] = 1
    return out


class Concat(Module):
    """Concatenate several inputs along ``dim`` (default 1: features or channels).

    ``forward(*xs)`` works for (N, F) vectors and (N, C, H, W) maps alike; all
    inputs must share rank, dtype, device and every size except ``dim``.
    ``backward(dy)`` returns a tuple of gradients, one per input.

    Gradient:
        a split: each output element is a copy of one input element, so input k
        receives the slice of ``dy`` along ``dim`` that it filled.
    """

    def __init__(self, dim=1):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(f"Concat: dim must be an int, got {dim!r}")
        self.dim = dim

    def _label(self):
        return f"Concat(dim={self.dim})"

    def extra_repr(self):
        return f"dim={self.dim}"

    def forward(self, *xs):
        name = self._label()
        if not xs:
            raise ValueError(f"{name}: expected at least one input, got none")
        check_array(name, xs[0], what="input 0")
        first = xs[0]
        nd = first.ndim
        if not -nd <= self.dim < nd:
            raise ValueError(f"{name}: dim {self.dim} is out of range for {nd}-D inputs "
                             f"(input 0 has shape {tuple(first.shape)})")
        axis = self.dim % nd
        for i, x in enumerate(xs[1:], start=1):
            check_array(name, x, ndim=nd, what=f"input {i}")
            if device_of(x) != device_of(first):
                raise ValueError(f"{name}: input {i} is on {device_of(x)!r} but input 0 is on "
                                 f"{device_of(first)!r}; move one with scratchgan.backend.to_device")
            if x.dtype != first.dtype:
                raise TypeError(f"{name}: input {i} has dtype {x.dtype} but input 0 has dtype "
                                f"{first.dtype}; all inputs must share one dtype")
            other = [s for a, s in enumerate(x.shape) if a != axis]
            ref = [s for a, s in enumerate(first.shape) if a != axis]
            if other != ref:
                raise ValueError(f"{name}: all inputs must match except in dimension {axis}; "
                                 f"input 0 has shape {tuple(first.shape)}, input {i} has shape "
                                 f"{tuple(x.shape)}")
        y, cache = concat_forward(xs, axis)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        return concat_backward(dy, self._take_cache())


class OneHotMap(Module):
    """Broadcast (N, K) one-hot labels to (N, K, H, W) constant feature maps
    (CGAN/InfoGAN conditioning of convolutional layers); backward sums over H, W.

    Gradient:
        ``dy1h[n, k] = sum_{i,j} dy[n, k, i, j]`` (the adjoint of broadcasting is a sum).
    """

    def __init__(self, height, width):
        super().__init__()
        check_positive_int("OneHotMap", "height", height)
        check_positive_int("OneHotMap", "width", width)
        self.height = int(height)
        self.width = int(width)

    def _label(self):
        return f"OneHotMap({self.height}, {self.width})"

    def extra_repr(self):
        return f"{self.height}, {self.width}"

    def forward(self, y1h):
        check_array(self._label(), y1h, ndim=2, what="one-hot input (N, K)")
        y, cache = onehot_map_forward(y1h, self.height, self.width)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        h, w = cache
        if dy.ndim != 4 or tuple(dy.shape[2:]) != (h, w):
            raise ValueError(f"{self._label()}: expected a gradient of shape (N, K, {h}, {w}), "
                             f"got shape {tuple(dy.shape)}")
        return onehot_map_backward(dy, cache)


class TwoInputNet(Module):
    """``trunk(concat(x_branch(x), y_branch(y)))``; backward returns d/dx only, but also
    back-propagates into the y branch (its parameters get their gradients).

    Gradient:
        ``(dh_x, dh_y)`` = the trunk's input gradient split at the concatenation;
        ``y_branch.backward(dh_y)`` accumulates its parameters' gradients and
        ``dx = x_branch.backward(dh_x)`` is returned.
    """

    def __init__(self, x_branch, y_branch, trunk):
        super().__init__()
        self.x_branch, self.y_branch, self.trunk = x_branch, y_branch, trunk
        self.join = Concat(dim=1)

    def forward(self, x, y1h):
        return self.trunk(self.join(self.x_branch(x), self.y_branch(y1h)))

    def backward(self, dy):
        dhx, dhy = self.join.backward(self.trunk.backward(dy))
        self.y_branch.backward(dhy)
        return self.x_branch.backward(dhx)
