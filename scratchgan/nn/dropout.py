"""Inverted dropout layer."""
from __future__ import annotations

from ..backend import get_array_module
from ..ops.dropout import dropout_backward, dropout_forward, dropout_mask
from ..validate import check_array
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zero each element with probability ``p`` and scale survivors by ``1 / (1 - p)``
    in ``train()`` mode; the identity in ``eval()`` mode.

    ``rng``: a :class:`scratchgan.philox.Philox` stream (the models pass theirs:
    masks drawn on the device, the same on CPU and GPU), or a NumPy generator /
    None (masks drawn on the host from ``get_rng(rng)``, so ``manual_seed``
    reproduces them).

    ``active_in_eval=True`` keeps the masks in ``eval()`` mode too (pix2pix's generator
    noise: dropout at training and test time).

    Gradient:
        ``dx = dy * mask / (1 - p)`` with the forward's mask (train mode, or
        ``active_in_eval``); ``dx = dy`` where the layer is the identity.
    """

    def __init__(self, p=0.5, rng=None, active_in_eval=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"Dropout: p must be a number in [0, 1), got {p!r}")
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng
        self.active_in_eval = bool(active_in_eval)

    def _label(self):
        return f"Dropout(p={self.p})"

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        check_array(self._label(), x)
        if (not self.training and not self.active_in_eval) or self.p == 0:
            self._save_cache(("identity",))
            return x
        mask = dropout_mask(x.shape, self.p, self.rng, get_array_module(x))
        y, cache = dropout_forward(x, self.p, mask)
        self._save_cache(("mask", cache))
        return y

    def backward(self, dy):
        kind, *rest = self._take_cache()
        if kind == "identity":
            return dy
        return dropout_backward(dy, rest[0])
