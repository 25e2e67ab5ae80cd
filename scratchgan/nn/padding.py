"""Reflection padding (CycleGAN's generators pad before every 7x7 and 3x3 convolution) and
its adjoint-style companion, a centre crop (the U-Net of pix2pix runs on 28 px images
reflected out to 32 px and cropped back).

ReflectionPad2d(p): ``y[..., i, j] = x[..., r(i - p_t), r(j - p_l)]`` with the reflection
``r(k) = -k`` for ``k < 0``, ``2(H-1) - k`` for ``k > H-1``, ``k`` otherwise (the edge row
is not repeated; PyTorch's ``ReflectionPad2d``). Each output copies one input element, so
the backward is a scatter-add: ``dx[a] = sum_{i : r(i) = a} dy[i]`` (derivation in
docs/derivations/image2image.md). It is done axis by axis with slices: the centre block,
plus each padded row/column added onto the row/column it mirrors.

Crop2d(c): ``y = x[..., c_t:H-c_b, c_l:W-c_r]``; backward writes dy into zeros.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..ops.padding import reflection_pad_backward, reflection_pad_forward
from ..validate import check_array
from .module import Module

__all__ = ["ReflectionPad2d", "Crop2d"]


def _four(name, p):
    """An int, a pair (vertical, horizontal) or (top, bottom, left, right) -> 4 ints >= 0."""
    if isinstance(p, bool):
        raise ValueError(f"{name}: padding must be an int or a tuple of ints, got {p!r}")
    if isinstance(p, int):
        p = (p,) * 4
    elif isinstance(p, (tuple, list)) and len(p) == 2:
        p = (p[0], p[0], p[1], p[1])
    if (not isinstance(p, (tuple, list)) or len(p) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in p)):
        raise ValueError(f"{name}: padding must be an int >= 0, a pair or (top, bottom, left, "
                         f"right) of ints >= 0, got {p!r}")
    return tuple(int(v) for v in p)


class ReflectionPad2d(Module):
    """Pad (N, C, H, W) maps by reflection; ``padding`` an int, (vertical, horizontal) or
    (top, bottom, left, right). Each pad must be smaller than the size of its axis.

    Gradient:
        the adjoint of the reflection: each element of ``dy`` is added to the
        input element it was copied from (a scatter-add; the interior receives its
        own element plus every reflected copy).
    """

    def __init__(self, padding):
        super().__init__()
        self.padding = _four("ReflectionPad2d", padding)

    def _label(self):
        return f"ReflectionPad2d({self.padding})"

    def extra_repr(self):
        return f"{self.padding}"

    def forward(self, x):
        check_array(self._label(), x, ndim=4, what="input (N, C, H, W)")
        t, b, l, r = self.padding
        H, W = x.shape[2:]
        if max(t, b) >= H or max(l, r) >= W:
            raise ValueError(f"{self._label()}: each pad must be smaller than its axis (reflection "
                             f"does not repeat the edge); got input shape {tuple(x.shape)}")
        y, cache = reflection_pad_forward(x, self.padding)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        (t, b, l, r), (H, W) = cache
        want = (H + t + b, W + l + r)
        if dy.ndim != 4 or tuple(dy.shape[2:]) != want:
            raise ValueError(f"{self._label()}: backward expected dy of spatial size {want}, got "
                             f"shape {tuple(dy.shape)}")
        return reflection_pad_backward(dy, cache)


class Crop2d(Module):
    """Remove ``crop`` pixels (an int, a pair or (top, bottom, left, right)) from the borders
    of (N, C, H, W) maps; backward places dy back inside zeros.

    Gradient:
        ``dx`` is zero on the cropped borders and ``dy`` inside them.
    """

    def __init__(self, crop):
        super().__init__()
        self.crop = _four("Crop2d", crop)

    def _label(self):
        return f"Crop2d({self.crop})"

    def extra_repr(self):
        return f"{self.crop}"

    def forward(self, x):
        check_array(self._label(), x, ndim=4, what="input (N, C, H, W)")
        t, b, l, r = self.crop
        H, W = x.shape[2:]
        if t + b >= H or l + r >= W:
            raise ValueError(f"{self._label()}: the crop removes the whole input of shape "
                             f"{tuple(x.shape)}")
        self._save_cache(tuple(x.shape))
        return get_array_module(x).ascontiguousarray(x[:, :, t:H - b, l:W - r])

    def backward(self, dy):
        shape = self._take_cache()
        t, b, l, r = self.crop
        H, W = shape[2:]
        if tuple(dy.shape) != (shape[0], shape[1], H - t - b, W - l - r):
            raise ValueError(f"{self._label()}: backward expected dy of shape "
                             f"{(shape[0], shape[1], H - t - b, W - l - r)}, got {tuple(dy.shape)}")
        dx = get_array_module(dy).zeros(shape, dtype=dy.dtype)
        dx[:, :, t:H - b, l:W - r] = dy
        return dx
