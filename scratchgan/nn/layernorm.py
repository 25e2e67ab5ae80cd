"""Layer normalization: per-sample statistics, so it may sit in a WGAN-GP critic."""
from __future__ import annotations

import numpy as np

from ..backend import DEFAULT_DTYPE
from ..ops.layernorm import layernorm_backward, layernorm_forward
from ..validate import check_array
from .module import Module, Parameter

__all__ = ["LayerNorm"]


class LayerNorm(Module):
    """``y = gamma * (x - mu) / sqrt(var + eps) + beta`` over the last axes of each sample.

    ``normalized_shape`` (an int or a tuple) is the shape of those trailing axes: pass
    ``x.shape[1:]`` (e.g. ``(C, H, W)``) to normalize over all non-batch dimensions, or
    ``C`` for the features of an (N, C) input. ``mu`` and the biased ``var`` are taken
    per sample over those axes, in training and evaluation alike (no running statistics).
    With ``affine=True`` (default) ``weight`` (gamma, ones) and ``bias`` (beta, zeros) have
    shape ``normalized_shape``. Gradients: :mod:`scratchgan.ops.layernorm`; its second
    derivative (for the gradient penalty) is in :mod:`scratchgan.nn.second_order`.

    Gradient:
        per sample, with means over the normalized axes, ``a = gamma dy`` and
        ``rstd = 1 / sqrt(var + eps)``: ``dx = rstd (a - mean(a) - x_hat mean(a x_hat))``;
        ``dgamma = sum_n dy x_hat``, ``dbeta = sum_n dy``.
    """

    def __init__(self, normalized_shape, eps=1e-5, affine=True):
        super().__init__()
        if (isinstance(normalized_shape, (int, np.integer))
                and not isinstance(normalized_shape, bool)):
            normalized_shape = (int(normalized_shape),)
        try:
            shape = tuple(int(s) for s in normalized_shape)
        except TypeError:
            raise TypeError(f"LayerNorm: normalized_shape must be an int or a tuple of ints, got "
                            f"{normalized_shape!r}") from None
        if not shape or any(s <= 0 for s in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive sizes, got {shape}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"LayerNorm{shape}: eps must be a positive number, got {eps!r}")
        self.normalized_shape = shape
        self.eps = float(eps)
        self.affine = bool(affine)
        if self.affine:
            self.weight = Parameter(np.ones(shape, dtype=DEFAULT_DTYPE))
            self.bias = Parameter(np.zeros(shape, dtype=DEFAULT_DTYPE))
        else:
            self.weight = self.bias = None

    def _label(self):
        return f"LayerNorm({self.normalized_shape})"

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, affine={self.affine}"

    def _check_input(self, x):
        name = self._label()
        k = len(self.normalized_shape)
        check_array(name, x, dtype=self.weight.dtype if self.affine else None,
                    device=self.device if self.affine else None)
        if x.ndim < k + 1 or tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"{name}: expected an input of shape (N, ..., "
                             f"{', '.join(map(str, self.normalized_shape))}), got "
                             f"{tuple(x.shape)}")

    def op_args(self):
        """``(gamma, beta, ndim, eps)`` for :func:`scratchgan.ops.layernorm.layernorm_forward`."""
        return (self.weight.data if self.affine else None, self.bias.data if self.affine else None,
                len(self.normalized_shape), self.eps)

    def forward(self, x):
        self._check_input(x)
        y, cache = layernorm_forward(x, *self.op_args())
        self._save_cache(cache)
        return y

    def backward(self, dy, input_grad=True):
        """Accumulate dgamma, dbeta; return dx (None with ``input_grad=False``)."""
        cache = self._take_cache()
        dx, dg, db = layernorm_backward(dy, cache, input_grad, self.affine and not self._frozen)
        if dg is not None:
            self.weight.grad += dg
        if db is not None:
            self.bias.grad += db
        return dx
