"""Maxout units (Goodfellow et al. 2013), used by the GAN and CGAN discriminators.

A maxout layer with ``units`` outputs and ``pieces`` linear pieces per output:

    z = x W^T + b                     W: (units * pieces, in), b: (units * pieces,)
    h_u = max_{j < pieces} z[u * pieces + j]

Row ``u * pieces + j`` of W is piece j of unit u. The derivative of a max is
the indicator of the winning piece (ties have measure zero for continuous
inputs), so the backward routes ``dh_u`` to the arg-max piece and then through
the linear map: ``dz = onehot(argmax) * dh``, ``dx = dz W``, ``dW = dz^T x``,
``db = sum_n dz``. Checked by ``tests/test_models.py::test_maxout_gradcheck``.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import DEFAULT_DTYPE
from ..ops.maxout import maxout_backward, maxout_forward
from ..rng import get_rng
from ..validate import check_features
from .module import Module, Parameter

__all__ = ["Maxout"]


class Maxout(Module):
    """``Maxout(in_features, units, pieces)``: weight (units*pieces, in), bias (units*pieces,).

    Initialized U(-irange, irange) (the GAN paper's D used irange 0.005);
    ``irange=None`` gives U(-1/sqrt(in), 1/sqrt(in)).

    Gradient:
        ``dh`` is routed to the winning piece (the argmax of each unit's pieces):
        ``dz[n, u * pieces + j] = dh[n, u]`` if j won, else 0; then through the linear map:
        ``dx = dz W``, ``dW += dz^T x``, ``db += sum_n dz``.
    """

    def __init__(self, in_features, units, pieces, irange=None, rng=None):
        super().__init__()
        for label, v in (("in_features", in_features), ("units", units), ("pieces", pieces)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Maxout: {label} must be a positive int, got {v!r}")
        self.in_features, self.units, self.pieces = int(in_features), int(units), int(pieces)
        gen = get_rng(rng)
        bound = 1.0 / math.sqrt(self.in_features) if irange is None else float(irange)
        out = self.units * self.pieces
        self.weight = Parameter(gen.uniform(-bound, bound, (out, self.in_features)).astype(DEFAULT_DTYPE))
        self.bias = Parameter(gen.uniform(-bound, bound, (out,)).astype(DEFAULT_DTYPE))

    def _label(self):
        return f"Maxout({self.in_features}, {self.units}x{self.pieces})"

    def extra_repr(self):
        return f"in_features={self.in_features}, units={self.units}, pieces={self.pieces}"

    def forward(self, x):
        name = self._label()
        check_features(name, x, self.in_features, dtype=self.weight.dtype, device=self.device)
        h, cache = maxout_forward(x, self.weight.data, self.bias.data, self.pieces)
        self._save_cache(cache)
        return h

    def backward(self, dh, input_grad=True):
        dx, dw, db = maxout_backward(dh, self._take_cache(), input_grad, not self._frozen)
        if dw is not None:
            self.weight.grad += dw
            self.bias.grad += db
        return dx
