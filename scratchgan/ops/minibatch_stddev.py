"""Minibatch standard deviation (Progressive GAN's critic): one feature map appended, holding the
mean over features and pixels of the per-feature standard deviation over a group of samples.
It couples the samples and is nonlinear, so besides its backward it has a tangent
(:func:`mbstd_jvp`) and the tangent of its backward (:func:`mbstd_backward_jvp`) for the
second-order passes of :mod:`scratchgan.nn.second_order` (docs/derivations/progressive.md)."""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["mbstd_forward", "mbstd_backward", "mbstd_jvp", "mbstd_backward_jvp"]


def _groups(N, group_size):
    G = N if group_size is None else min(int(group_size), N)
    if N % G:
        raise ValueError(f"MinibatchStdDev: the batch size {N} is not divisible by the group size "
                         f"{G}; use a batch that is a multiple of it, or group_size=None (the "
                         f"whole batch)")
    return G, N // G


def mbstd_forward(x, group_size=4, eps=1e-8):
    """Minibatch standard deviation.

    Sample ``n = g M + m`` belongs to group ``m`` (G members, M = N / G groups). Per group and
    feature k = (c, h, w): ``μ = mean_g x``, ``d = x − μ``, ``σ = sqrt(mean_g d² + ε)``; the
    statistic ``t_m = mean_k σ_k``; the output is ``[x, t_m broadcast to one H×W map]``
    (N, C + 1, H, W). ``group_size=None`` uses the whole batch as one group.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    G, M = _groups(N, group_size)
    xg = x.reshape(G, M, C, H, W)
    d = xg - xg.mean(axis=0)
    sig = xp.sqrt((d * d).mean(axis=0) + eps)                       # (M, C, H, W)
    t = sig.mean(axis=(1, 2, 3))                                    # (M,)
    stat = xp.broadcast_to(t[None, :, None, None, None], (G, M, 1, H, W)).reshape(N, 1, H, W)
    return xp.concatenate([x, stat.astype(x.dtype, copy=False)], axis=1), (G, M, d, sig)


def _mbstd_split(dy, cache):
    G, M, d, sig = cache
    N, C1, H, W = dy.shape
    C = C1 - 1
    a = dy[:, C].reshape(G, M, H, W).sum(axis=(0, 2, 3))           # Σ of the stat map's signal
    return dy[:, :C], a.reshape(1, M, 1, 1, 1), G, C * H * W


def mbstd_backward(dy, cache):
    """``dx = dy[:, :C] + (a_m / (K G)) d / σ`` with ``a_m`` = the sum of the stat channel's
    signal over the group's members and pixels, K = C H W (``∂σ_k/∂x_gk = d_gk / (G σ_k)``;
    the centring drops out because ``Σ_g d_gk = 0``)."""
    G, M, d, sig = cache
    dx, a, G, K = _mbstd_split(dy, cache)
    return dx + ((a / (K * G)) * d / sig).reshape(dx.shape)


def mbstd_jvp(u, cache):
    """Tangent: ``[u, ṫ_m]`` with ``ṫ_m = (1 / (K G)) Σ_{g,k} d_gk u_gk / σ_k``."""
    xp = get_array_module(u)
    G, M, d, sig = cache
    N, C, H, W = u.shape
    ug = u.reshape(G, M, C, H, W)
    tdot = (d * ug / sig).sum(axis=(0, 2, 3, 4)) / (C * H * W * G)   # (M,)
    stat = xp.broadcast_to(tdot[None, :, None, None, None], (G, M, 1, H, W)).reshape(N, 1, H, W)
    return xp.concatenate([u, stat], axis=1)


def mbstd_backward_jvp(s, ds, u, cache):
    """``ṡ_in = J^T ṡ + (∂(J^T s)/∂x) u`` for the minibatch stddev layer.

    With ``J^T s = s[:, :C] + (a/(KG)) d/σ`` and ``ḋ = u − mean_g u``,
    ``σ̇ = mean_g(d ḋ) / σ``:

        ṡ_in = ṡ[:, :C] + (ȧ/(KG)) d/σ + (a/(KG)) (ḋ/σ − d σ̇ / σ²),

    ``a`` from s and ``ȧ`` from ṡ (zero where ṡ is None). The last term is the layer's
    second-order term: it is non-zero even where ṡ is zero.
    """
    G, M, d, sig = cache
    N, C, H, W = u.shape
    K = C * H * W
    _, a, _, _ = _mbstd_split(s, cache)
    ug = u.reshape(G, M, C, H, W)
    dd = ug - ug.mean(axis=0)
    sdot = (d * dd).mean(axis=0) / sig
    out = (a / (K * G)) * (dd / sig - d * sdot / (sig * sig))
    if ds is not None:
        ds_x, adot, _, _ = _mbstd_split(ds, cache)
        out = out + (adot / (K * G)) * d / sig
        return ds_x + out.reshape(N, C, H, W)
    return out.reshape(N, C, H, W)
