"""Synchronised BatchNorm: batch statistics over the examples of every rank.

Data-parallel training normalises each rank's batch with its own statistics by default
(as ChainerMN and PyTorch's DDP do): a W-rank step with per-rank batch B then differs from
the 1-process step with batch W·B wherever BatchNorm sits. :func:`convert_sync_batchnorm`
(the named option ``sync_bn``) makes every BatchNorm layer of a network use the statistics
of all W·B examples, so that the two steps agree.

Forward (training mode), per channel, with M = Σ_r M_r values over the ranks:

    S1 = allreduce(Σ_local x),  S2 = allreduce(Σ_local x²),  M = allreduce(M_r)
    μ = S1 / M,  σ² = S2 / M − μ²  (biased),  s = 1 / sqrt(σ² + eps)
    x̂ = (x − μ) s,  y = γ x̂ + β

and the running statistics take μ and the unbiased σ² M / (M − 1), as in BatchNorm.
(The two sums are taken in float64, so σ² = S2/M − μ² loses nothing that matters here.)

Backward. Rank r holds g = ∂ℓ_r/∂y for its own loss ℓ_r, a mean over its B examples; the
full-batch loss is L = (1/W) Σ_r ℓ_r, so ∂L/∂y = g / W on every rank. BatchNorm's backward for
L over all M values (docs/derivations/batchnorm.md) is

    ∂L/∂x = (γ s / M) (M ∂L/∂y − Σ_all ∂L/∂y − x̂ Σ_all (∂L/∂y) x̂).

With the two global sums D1 = allreduce(Σ_local g) and D2 = allreduce(Σ_local g x̂), this
layer returns

    dx = (γ s / M) (M g − D1 − x̂ D2)  = W ∂L/∂x,

and accumulates its local dβ = Σ_local g, dγ = Σ_local g x̂. The data-parallel wrapper then
averages every parameter gradient over the ranks: the local parameter gradients upstream of
this layer carry the factor W of dx, and the mean over ranks divides it out, giving ∂L/∂θ;
for γ and β the mean of the local sums is Σ_all g / W = Σ_all ∂L/∂y. So every parameter gets
exactly the gradient of the full-batch loss (docs/derivations/sync_batchnorm.md).

Eval mode uses the running statistics, with no communication.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..nn.norm import _BatchNorm

__all__ = ["SyncBatchNormMixin", "convert_sync_batchnorm"]


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _pc(v, nd):
    return v.reshape((1, -1) + (1,) * (nd - 2))


class SyncBatchNormMixin:
    """The forward/backward above; mixed into a BatchNorm layer by
    :func:`convert_sync_batchnorm` (the layer keeps its parameters, buffers and flat views)."""

    _fuses_activation = False       # the GPU fusion with the next activation is per rank
    comm = None

    def forward(self, x, act=None):
        if not self.training or self.comm is None:
            return super().forward(x, act)
        self._check_input(x)
        xp = get_array_module(x)
        axes = _axes(x)
        c = x.shape[1]
        x64 = x.astype(np.float64)
        stats = xp.concatenate([x64.sum(axis=axes), (x64 * x64).sum(axis=axes),
                                xp.full(1, x.size // c, dtype=np.float64)])
        self.comm.all_reduce_sum(stats)
        m = stats[2 * c]
        mean = stats[:c] / m
        var = xp.maximum(stats[c:2 * c] / m - mean * mean, 0.0)
        rm, rv = self.running_mean, self.running_var
        rm[...] = ((1 - self.momentum) * rm + self.momentum * mean).astype(rm.dtype)
        rv[...] = ((1 - self.momentum) * rv + self.momentum * var * (m / (m - 1))).astype(rv.dtype)
        inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype)
        xhat = (x - _pc(mean.astype(x.dtype), x.ndim)) * _pc(inv_std, x.ndim)
        y = xhat
        if self.affine:
            y = xhat * _pc(self.weight.data, x.ndim) + _pc(self.bias.data, x.ndim)
        self._save_cache(("sync", xhat, inv_std, m))
        return y

    def backward(self, dy):
        cache = self._cache
        if not (isinstance(cache, tuple) and cache and isinstance(cache[0], str)
                and cache[0] == "sync"):
            return super().backward(dy)
        _, xhat, inv_std, m = self._take_cache()
        xp = get_array_module(dy)
        axes = _axes(dy)
        c = dy.shape[1]
        local = xp.concatenate([dy.astype(np.float64).sum(axis=axes),
                                (dy.astype(np.float64) * xhat).sum(axis=axes)])
        dbeta, dgamma = local[:c].astype(dy.dtype), local[c:].astype(dy.dtype)
        self.comm.all_reduce_sum(local)                     # D1, D2 over every rank
        d1, d2 = local[:c].astype(dy.dtype), local[c:].astype(dy.dtype)
        gamma = self.weight.data if self.affine else xp.ones(c, dtype=dy.dtype)
        mc = m.astype(dy.dtype)      # the global count, kept on the device (no host sync)
        scale = _pc(gamma * inv_std / mc, dy.ndim)
        dx = scale * (mc * dy - _pc(d1, dy.ndim) - xhat * _pc(d2, dy.ndim))
        if self.affine and not self._frozen:
            self.weight.grad += dgamma
            self.bias.grad += dbeta
        return dx


_CLASSES = {}


def _sync_class(cls):
    if cls not in _CLASSES:
        _CLASSES[cls] = type("Sync" + cls.__name__, (SyncBatchNormMixin, cls), {})
    return _CLASSES[cls]


def convert_sync_batchnorm(module, comm):
    """Turn every BatchNorm layer inside ``module`` into its synchronised form over ``comm``
    (in place: the same objects, parameters, buffers and flat views). Returns the number of
    layers converted."""
    n = 0
    for m in module.modules():
        if isinstance(m, _BatchNorm) and not isinstance(m, SyncBatchNormMixin):
            object.__setattr__(m, "__class__", _sync_class(type(m)))
            n += 1
        if isinstance(m, SyncBatchNormMixin):
            object.__setattr__(m, "comm", comm)
    return n
