"""Fully connected layer."""
from __future__ import annotations

import math

from ..backend import DEFAULT_DTYPE
from ..ops.linear import linear_backward, linear_forward
from ..rng import get_rng
from ..validate import check_features, check_positive_int
from .module import Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """``y = x W^T + b`` with ``weight`` (out, in) and ``bias`` (out,).

    Both are initialized U(-1/sqrt(in), 1/sqrt(in)) from ``get_rng(rng)`` (as
    PyTorch's default), in float32 on the CPU; use ``.astype``/``.to`` to change.

    Gradient:
        ``dx = dy W``, ``dW += dy^T x``, ``db += sum_n dy`` (derivation:
        docs/derivations/linear.md).
    """

    def __init__(self, in_features, out_features, bias=True, rng=None):
        super().__init__()
        name = f"Linear({in_features!r}, {out_features!r})"
        check_positive_int(name, "in_features", in_features)
        check_positive_int(name, "out_features", out_features)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        gen = get_rng(rng)
        bound = 1.0 / math.sqrt(self.in_features)
        w = gen.uniform(-bound, bound, size=(self.out_features, self.in_features))
        self.weight = Parameter(w.astype(DEFAULT_DTYPE))
        if bias:
            b = gen.uniform(-bound, bound, size=(self.out_features,))
            self.bias = Parameter(b.astype(DEFAULT_DTYPE))
        else:
            self.bias = None

    def _label(self):
        return f"Linear({self.in_features}, {self.out_features})"

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

    def forward(self, x):
        name = self._label()
        check_features(name, x, self.in_features, dtype=self.weight.dtype, device=self.device)
        y, cache = linear_forward(x, self.weight.data,
                                  None if self.bias is None else self.bias.data)
        self._save_cache(cache)
        return y

    def backward(self, dy, input_grad=True):
        """Accumulate dW, db; return dx (None with ``input_grad=False``)."""
        cache = self._take_cache()
        dx, dw, db = linear_backward(dy, cache, input_grad, not self._frozen)
        if dw is not None:
            self.weight.grad += dw
        if db is not None:
            self.bias.grad += db
        return dx
