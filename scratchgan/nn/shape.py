"""Shape layers: Flatten, Unflatten, Reshape. Backward reshapes dy back."""
from __future__ import annotations

import math

from ..backend import device_of
from .module import Module

__all__ = ["Flatten", "Unflatten", "Reshape"]


def _check_is_array(name, x):
    try:
        device_of(x)
    except TypeError:
        raise TypeError(f"{name}: expected the input to be a numpy or cupy array, "
                        f"got {type(x).__name__}") from None


def _int_tuple(name, label, values, allow_minus_one=False):
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not (v >= 1 or (allow_minus_one and v == -1)):
            raise ValueError(f"{name}: {label} must be positive ints"
                             f"{' (one may be -1)' if allow_minus_one else ''}, got {tuple(values)!r}")
        out.append(int(v))
    if allow_minus_one and out.count(-1) > 1:
        raise ValueError(f"{name}: at most one of {label} may be -1, got {tuple(values)!r}")
    return tuple(out)


class _Reshaping(Module):
    def forward(self, x):
        _check_is_array(self._label(), x)
        y = x.reshape(self._out_shape(x))
        self._save_cache(tuple(x.shape))
        return y

    def backward(self, dy):
        shape = self._take_cache()
        return dy.reshape(shape)


class Flatten(_Reshaping):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...) for ``start_dim=1``: dims from
    ``start_dim`` on are merged into one.

    Gradient:
        ``dx = dy.reshape(x.shape)``.
    """

    def __init__(self, start_dim=1):
        super().__init__()
        if isinstance(start_dim, bool) or not isinstance(start_dim, int) or start_dim < 0:
            raise ValueError(f"Flatten: start_dim must be a non-negative int, got {start_dim!r}")
        self.start_dim = start_dim

    def _label(self):
        return f"Flatten(start_dim={self.start_dim})"

    def extra_repr(self):
        return f"start_dim={self.start_dim}"

    def _out_shape(self, x):
        if x.ndim <= self.start_dim:
            raise ValueError(f"{self._label()}: expected an input with more than {self.start_dim} "
                             f"dimensions, got shape {tuple(x.shape)} ({x.ndim}-D)")
        return tuple(x.shape[:self.start_dim]) + (math.prod(x.shape[self.start_dim:]),)


class Unflatten(_Reshaping):
    """Split dimension ``dim`` into ``sizes``: Unflatten(1, (128, 7, 7)) maps
    (N, 6272) to (N, 128, 7, 7).

    Gradient:
        ``dx = dy.reshape(x.shape)``.
    """

    def __init__(self, dim, sizes):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(f"Unflatten: dim must be an int, got {dim!r}")
        if isinstance(sizes, int):
            sizes = (sizes,)
        self.dim = dim
        self.sizes = _int_tuple("Unflatten", "sizes", tuple(sizes))

    def _label(self):
        return f"Unflatten({self.dim}, {self.sizes})"

    def extra_repr(self):
        return f"{self.dim}, {self.sizes}"

    def _out_shape(self, x):
        dim = self.dim + x.ndim if self.dim < 0 else self.dim
        if not 0 <= dim < x.ndim:
            raise ValueError(f"{self._label()}: dim {self.dim} is out of range for an input of "
                             f"shape {tuple(x.shape)} ({x.ndim}-D)")
        if x.shape[dim] != math.prod(self.sizes):
            raise ValueError(f"{self._label()}: dimension {dim} must have {math.prod(self.sizes)} "
                             f"elements to unflatten into {self.sizes}, got shape {tuple(x.shape)}")
        return tuple(x.shape[:dim]) + self.sizes + tuple(x.shape[dim + 1:])


class Reshape(_Reshaping):
    """Reshape each sample, keeping the batch dimension: Reshape(128, 7, 7)
    maps (N, 6272) to (N, 128, 7, 7). One size may be -1.

    Gradient:
        ``dx = dy.reshape(x.shape)``.
    """

    def __init__(self, *shape):
        super().__init__()
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if not shape:
            raise ValueError("Reshape: give the per-sample shape, e.g. Reshape(128, 7, 7)")
        self.shape = _int_tuple("Reshape", "sizes", shape, allow_minus_one=True)

    def _label(self):
        return f"Reshape{self.shape}" if len(self.shape) > 1 else f"Reshape({self.shape[0]})"

    def extra_repr(self):
        return ", ".join(str(s) for s in self.shape)

    def _out_shape(self, x):
        if x.ndim < 1:
            raise ValueError(f"{self._label()}: expected an input with a batch dimension, got a "
                             "0-D array")
        per_sample = math.prod(x.shape[1:])
        known = math.prod(s for s in self.shape if s != -1)
        if -1 in self.shape:
            ok = known > 0 and per_sample % known == 0
            target = tuple(per_sample // known if s == -1 else s for s in self.shape) if ok else None
        else:
            ok = per_sample == known
            target = self.shape
        if not ok:
            raise ValueError(f"{self._label()}: cannot reshape an input of shape "
                             f"{tuple(x.shape)} ({per_sample} elements per sample) to "
                             f"(N, {', '.join(str(s) for s in self.shape)}) "
                             f"({known} elements per sample)")
        return (x.shape[0],) + target
