"""Instance normalisation (Ulyanov et al. 2016), the normalisation of CycleGAN's networks.

Each (sample, channel) plane of an (N, C, H, W) input is normalised by its own mean and
biased variance over H x W:

    mu = mean_hw x,   var = mean_hw (x - mu)^2,   s = 1 / sqrt(var + eps)
    x_hat = (x - mu) s,          y = gamma x_hat + beta   (gamma, beta per channel; optional)

Backward (derivation in docs/derivations/image2image.md). With ``g = dy * gamma`` (or dy)
and ``M = H W``, per plane:

    dx = s (g - mean_hw g - x_hat mean_hw(g x_hat))
    dgamma = sum_{n,h,w} dy x_hat,     dbeta = sum_{n,h,w} dy

It is the batch-norm formula with the batch axis replaced by the plane, so it needs no
running statistics: training and evaluation compute the same function (PyTorch's
``InstanceNorm2d(track_running_stats=False)``, CycleGAN's setting).
"""
from __future__ import annotations

import numpy as np

from ..backend import DEFAULT_DTYPE
from ..ops.instancenorm import instancenorm_backward, instancenorm_forward
from ..validate import check_array, check_positive_int
from .module import Module, Parameter

__all__ = ["InstanceNorm2d"]


class InstanceNorm2d(Module):
    """Per-sample, per-channel normalisation over H x W; ``affine=True`` adds a per-channel
    scale ``weight`` (ones) and shift ``bias`` (zeros). No running statistics: the same
    function in ``train()`` and ``eval()``.

    Gradient:
        per (sample, channel) plane of M = H W values, with
        ``x_hat = (x - mu) s``, ``s = 1 / sqrt(var + eps)`` and ``g = gamma dy``
        (``dy`` without affine): ``dx = s (g - mean_hw g - x_hat mean_hw(g x_hat))``;
        ``dgamma = sum_{n,h,w} dy x_hat``, ``dbeta = sum_{n,h,w} dy``.
    """

    def __init__(self, num_features, eps=1e-5, affine=False):
        super().__init__()
        name = f"InstanceNorm2d({num_features!r})"
        check_positive_int(name, "num_features", num_features)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        self.num_features, self.eps, self.affine = int(num_features), float(eps), bool(affine)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=DEFAULT_DTYPE))
            self.bias = Parameter(np.zeros(self.num_features, dtype=DEFAULT_DTYPE))
        else:
            self.weight = None
            self.bias = None

    def _label(self):
        return f"InstanceNorm2d({self.num_features})"

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"

    def forward(self, x):
        name = self._label()
        kw = {}
        if self.affine:
            kw = {"dtype": self.weight.dtype, "device": self.device}
        check_array(name, x, ndim=4, what=f"input (N, {self.num_features}, H, W)", **kw)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} channels (dimension 1), got "
                             f"input shape {tuple(x.shape)}")
        if x.shape[2] * x.shape[3] < 2:
            raise ValueError(f"{name}: expected more than one spatial element per channel, got "
                             f"input shape {tuple(x.shape)}; the variance of one value is "
                             "undefined (drop the normalisation at 1x1 resolution)")
        y, cache = instancenorm_forward(x, None if not self.affine else self.weight.data,
                                        None if not self.affine else self.bias.data, self.eps)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        if tuple(dy.shape) != tuple(cache[0].shape):
            raise ValueError(f"{self._label()}: backward expected dy of shape "
                             f"{tuple(cache[0].shape)}, got {tuple(dy.shape)}")
        dx, dg, db = instancenorm_backward(dy, cache, param_grad=not self._frozen)
        if dg is not None:
            self.weight.grad += dg
            self.bias.grad += db
        return dx
