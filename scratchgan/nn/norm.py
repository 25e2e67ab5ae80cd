"""Batch normalization layers."""
from __future__ import annotations

import numpy as np

from ..backend import DEFAULT_DTYPE, device_of
from ..ops.norm import batchnorm_backward, batchnorm_forward
from ..validate import check_array, check_positive_int
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Per-channel normalization over every axis except axis 1.

    * ``train()``: normalize with the batch mean and biased batch variance,
      then update ``running_mean``/``running_var`` (unbiased variance) with
      ``new = (1 - momentum) * old + momentum * batch``; backward is the full
      gradient through the batch statistics.
    * ``eval()``: normalize with the running statistics; backward is the
      affine-only gradient ``gamma * dy / sqrt(running_var + eps)``.

    Running statistics are updated by every training-mode forward, also under
    ``no_grad()`` (as in PyTorch): call ``eval()`` before sampling or evaluation
    if they must not move.

    Parameters ``weight`` (gamma, ones) and ``bias`` (beta, zeros) exist only
    when ``affine=True``. Buffers ``running_mean`` (zeros) and ``running_var``
    (ones) are saved in the state dict.
    """

    _ranks = ()
    _layout = ""
    _fuses_activation = True   # Sequential may pass the following ReLU/LeakyReLU (GPU)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        name = f"{type(self).__name__}({num_features!r})"
        check_positive_int(name, "num_features", num_features)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        if (isinstance(momentum, bool) or not isinstance(momentum, (int, float))
                or not 0 <= momentum <= 1):
            raise ValueError(f"{name}: momentum must be a number in [0, 1], got {momentum!r}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=DEFAULT_DTYPE))
            self.bias = Parameter(np.zeros(self.num_features, dtype=DEFAULT_DTYPE))
        else:
            self.weight = None
            self.bias = None
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype=DEFAULT_DTYPE))
        self.register_buffer("running_var", np.ones(self.num_features, dtype=DEFAULT_DTYPE))

    def _label(self):
        return f"{type(self).__name__}({self.num_features})"

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")

    def _check_input(self, x):
        name = self._label()
        check_array(name, x, ndim=self._ranks, dtype=self.running_mean.dtype,
                    device=device_of(self.running_mean), what=f"input {self._layout}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} channels (dimension 1) in an "
                             f"input {self._layout}, got shape {tuple(x.shape)} "
                             f"({x.shape[1]} channels)")
        if self.training and x.size // max(x.shape[1], 1) < 2:
            raise ValueError(f"{name}: expected more than 1 value per channel in training mode, "
                             f"got input shape {tuple(x.shape)}; the batch variance of a single "
                             "value is undefined. Use a batch of 2 or more, or call .eval()")

    def forward(self, x, act=None):
        """Normalise ``x``; ``act`` (a ReLU or LeakyReLU module) is applied in the same pass."""
        self._check_input(x)
        name, slope = act.fused_args() if act is not None else (None, 0.0)
        y, cache = batchnorm_forward(
            x,
            None if self.weight is None else self.weight.data,
            None if self.bias is None else self.bias.data,
            self.running_mean, self.running_var, self.momentum, self.eps, self.training,
            name, slope)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        dx, dgamma, dbeta = batchnorm_backward(dy, cache)
        if self.affine and not self._frozen:
            self.weight.grad += dgamma
            self.bias.grad += dbeta
        return dx


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) features (also (N, C, L)); statistics over N (and L).

    Gradient:
        per channel over its M values (N, or N L), training mode:
        ``dx = (gamma s / M) (M dy - sum(dy) - x_hat sum(dy x_hat))`` with
        ``s = 1 / sqrt(var + eps)``; eval mode: ``dx = gamma s dy`` with the running
        variance; ``dgamma = sum(dy x_hat)``, ``dbeta = sum(dy)``
        (docs/derivations/batchnorm.md).
    """
    _ranks = (2, 3)
    _layout = "(N, C)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) maps; statistics over N, H and W.

    Gradient:
        per channel over its M = N H W values, training mode:
        ``dx = (gamma s / M) (M dy - sum(dy) - x_hat sum(dy x_hat))`` with
        ``s = 1 / sqrt(var + eps)``; eval mode: ``dx = gamma s dy`` with the running
        variance; ``dgamma = sum(dy x_hat)``, ``dbeta = sum(dy)``
        (docs/derivations/batchnorm.md).
    """
    _ranks = (4,)
    _layout = "(N, C, H, W)"
