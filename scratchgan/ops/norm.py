"""Batch normalization over every axis except the channel axis 1.

``x`` is (N, C) or (N, C, H, W) (any rank >= 2 works); statistics are taken
per channel over the M = N * H * W values of that channel.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, is_gpu_array

__all__ = ["batchnorm_forward", "batchnorm_backward"]


def _reduce_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, ndim):
    """Reshape a (C,) vector so that it broadcasts against an (N, C, ...) array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


_ACTS = (None, "identity", "relu", "leaky_relu")


def _act_grad(h, act, slope):
    """``act'(h)`` of the fused activation (1 for h > 0; 0 or ``slope`` otherwise)."""
    xp = get_array_module(h)
    return xp.where(h > 0, 1.0, 0.0 if act == "relu" else slope).astype(h.dtype, copy=False)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5,
                      training=True, act=None, slope=0.0):
    """``y = gamma * (x - mu) / sqrt(var + eps) + beta`` per channel, then ``act``.

    ``act``: None, ``"relu"`` or ``"leaky_relu"`` (with ``slope``): the activation that
    follows the normalisation, fused into it (one pass on the GPU; the backward applies
    ``act'(h)`` to ``dy`` before the normalisation's own backward, with ``h`` recomputed
    from ``xhat`` as ``gamma xhat + beta``).

    Training mode: ``mu`` and ``var`` are the batch mean and the *biased*
    batch variance (divide by M). The running statistics are then **updated in
    place** (PyTorch convention): ``running_mean <- (1 - momentum) running_mean
    + momentum mu`` and ``running_var <- (1 - momentum) running_var + momentum
    var * M / (M - 1)`` (the *unbiased* variance). Pass ``running_mean=None``
    and ``running_var=None`` to skip the update.

    Eval mode: ``mu = running_mean`` and ``var = running_var``; nothing changes.

    ``gamma``/``beta`` may be None (no affine transform).
    Returns ``(y, cache)``.
    """
    if act not in _ACTS:
        raise ValueError(f"batchnorm_forward: act must be None, 'relu' or 'leaky_relu', got "
                         f"{act!r}")
    if is_gpu_array(x):  # CUDA kernels (kernels/batchnorm.cu); same cache layout
        from ..cuda import norm as _gpu_norm
        return _gpu_norm.batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps,
                                           training, act, slope)
    if type(x) is np.ndarray and x.dtype.kind == "f":
        return _cpu_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training,
                            act, slope)
    xp = get_array_module(x, gamma, beta, running_mean, running_var)
    axes = _reduce_axes(x)
    m = x.size // x.shape[1]
    if training:
        if m < 2:
            raise ValueError(f"batchnorm_forward: expected more than 1 value per channel in "
                             f"training mode, got input shape {tuple(x.shape)}")
        mean = x.mean(axis=axes)
        xc = x - _per_channel(mean, x.ndim)
        var = (xc * xc).mean(axis=axes)
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1 - momentum) * running_var + momentum * var * (m / (m - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batchnorm_forward: eval mode needs running_mean and running_var")
        mean = running_mean.astype(x.dtype, copy=False)
        var = running_var.astype(x.dtype, copy=False)
        xc = x - _per_channel(mean, x.ndim)
    inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat = xc * _per_channel(inv_std, x.ndim)
    y = xhat if gamma is None else xhat * _per_channel(gamma, x.ndim)
    if beta is not None:
        y = y + _per_channel(beta, x.ndim)
    if act in ("relu", "leaky_relu"):
        y = y * _act_grad(y, act, slope)      # act(h) = h * act'(h) for these two
    cache = (xhat, gamma, inv_std, bool(training), beta is not None, beta, act, float(slope))
    return y, cache


def batchnorm_backward(dy, cache):
    """Gradients ``(dx, dgamma, dbeta)`` of batch normalization.

    With ``xhat = (x - mu) * s``, ``s = 1 / sqrt(var + eps)`` and sums over the
    M values of a channel:

    * ``dbeta  = sum(dy)``
    * ``dgamma = sum(dy * xhat)``
    * ``dxhat  = gamma * dy``

    Training mode (``mu`` and ``var`` depend on x): pushing ``dxhat`` back
    through ``xhat`` and through ``mu`` and ``var`` gives

        dx = (s / M) * (M dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
           = (gamma s / M) * (M dy - dbeta - xhat * dgamma).

    Eval mode (``mu``, ``var`` are constants): ``dx = gamma * s * dy``.

    With a fused activation, ``dy`` is first multiplied by ``act'(h)``,
    ``h = gamma xhat + beta`` (the pre-activation, recomputed).

    ``dgamma`` and ``dbeta`` are None without an affine transform.
    The full derivation is in docs/derivations/batchnorm.md.
    """
    if is_gpu_array(dy):  # CUDA kernels (kernels/batchnorm.cu)
        from ..cuda import norm as _gpu_norm
        return _gpu_norm.batchnorm_backward(dy, cache)
    if len(cache) == 10:
        return _cpu_backward(dy, cache)
    xhat, gamma, inv_std, training, has_beta, beta, act, slope = cache
    axes = _reduce_axes(dy)
    nd = dy.ndim
    if act in ("relu", "leaky_relu"):
        h = xhat if gamma is None else xhat * _per_channel(gamma, nd)
        if beta is not None:
            h = h + _per_channel(beta, nd)
        dy = dy * _act_grad(h, act, slope)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    scale = inv_std if gamma is None else gamma * inv_std
    if training:
        m = dy.size // dy.shape[1]
        dx = (_per_channel(scale / m, nd)
              * (m * dy - _per_channel(dbeta, nd) - xhat * _per_channel(dgamma, nd)))
    else:
        dx = dy * _per_channel(scale, nd)
    return dx, (dgamma if gamma is not None else None), (dbeta if has_beta else None)


# ----------------------------------------------------------------------------- CPU fast path
# NumPy arrays take this path: the same formulas in fewer passes over an (N, C, M) view
# (or (N, M, C) for a channels-last map, as the CPU convolutions return: no transposing
# copy), each pass writing into a buffer it owns (``out=``), the per-channel sums of
# products as einsum contractions (no product temporaries), and the activation's mask
# kept from the forward (a byte per value) instead of recomputing ``h`` in the backward.
def _channel_view(t, channels_last):
    """``t`` as (N, M, C) (channels_last) or (N, C, M): a view where the layout allows."""
    N, C = t.shape[:2]
    if channels_last:
        return np.ascontiguousarray(t.transpose(0, 2, 3, 1)).reshape(N, -1, C)
    return t.reshape(N, C, -1)


def _is_channels_last(x):
    return (x.ndim == 4 and not x.flags.c_contiguous
            and x.transpose(0, 2, 3, 1).flags.c_contiguous)


def _from_view(t3, shape, channels_last):
    if channels_last:
        N, C, H, W = shape
        return t3.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return t3.reshape(shape)


def _channel_dot(a, b, channels_last):
    """``sum_{n,m} a b`` per channel: one einsum pass to (N, C) partial sums (runs of M
    values), added over the batch in float64."""
    spec = "nmc,nmc->nc" if channels_last else "ncm,ncm->nc"
    return np.einsum(spec, a, b).sum(axis=0, dtype=np.float64)


def _cpu_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training, act,
                 slope):
    N, C = x.shape[:2]
    cl = _is_channels_last(x)
    x3 = _channel_view(x, cl)
    axes, m_axis = ((0, 1), 1) if cl else ((0, 2), 2)
    m = x3.shape[0] * x3.shape[m_axis]
    dt = x.dtype

    def pc(v):                           # a (C,) vector against the (N, ., .) view
        return v if cl else v[:, None]
    if training:
        if m < 2:
            raise ValueError(f"batchnorm_forward: expected more than 1 value per channel in "
                             f"training mode, got input shape {tuple(x.shape)}")
        if dt.itemsize >= 8:
            # float64 (gradient checks, reference runs): NumPy's own reductions, so that
            # the statistics round exactly as the array-module path's
            mean = x3.mean(axis=axes)
            xhat = np.subtract(x3, pc(mean))
            var = (xhat * xhat).mean(axis=axes)
        else:
            mean = (x3.sum(axis=m_axis).sum(axis=0, dtype=np.float64) / m).astype(dt)
            xhat = np.subtract(x3, pc(mean))                      # x - mu, then scaled in place
            var = (_channel_dot(xhat, xhat, cl) / m).astype(dt)
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1 - momentum) * running_var + momentum * var * (m / (m - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batchnorm_forward: eval mode needs running_mean and running_var")
        mean = running_mean.astype(dt, copy=False)
        var = running_var.astype(dt, copy=False)
        xhat = np.subtract(x3, pc(mean))
    inv_std = (1.0 / np.sqrt(var + eps)).astype(dt, copy=False)
    xhat *= pc(inv_std)
    y = xhat.copy() if gamma is None else np.multiply(xhat, pc(gamma))
    if beta is not None:
        y += pc(beta)
    mask = None
    if act in ("relu", "leaky_relu"):
        mask = y > 0
        if act == "relu":
            np.maximum(y, dt.type(0), out=y)
        elif 0.0 <= slope <= 1.0:
            np.maximum(y, y * dt.type(slope), out=y)
        else:
            np.copyto(y, y * dt.type(slope), where=~mask)
    cache = (xhat, gamma, inv_std, bool(training), beta is not None, beta, act, float(slope),
             mask, cl)
    return _from_view(y, x.shape, cl), cache


def _cpu_backward(dy, cache):
    xhat, gamma, inv_std, training, has_beta, beta, act, slope, mask, cl = cache
    dy3 = _channel_view(dy, cl)
    axes = (0, 1) if cl else (0, 2)
    dt = xhat.dtype

    def pc(v):
        return v if cl else v[:, None]
    if act in ("relu", "leaky_relu"):
        if act == "relu":
            g = np.multiply(dy3, mask)
        else:
            # dy (1 where h > 0, else slope): the factor from the mask in two fast passes
            # (a masked copyto is 4x slower)
            g = np.multiply(mask, dt.type(1.0 - slope), dtype=dt)
            g += dt.type(slope)
            g *= dy3
        owned = True
    else:
        g, owned = dy3, False
    dbeta = g.sum(axis=axes[1]).sum(axis=0, dtype=np.float64).astype(dt)
    dgamma = _channel_dot(g, xhat, cl).astype(dt)
    scale = inv_std if gamma is None else gamma * inv_std
    if training:
        m = g.shape[0] * g.shape[axes[1]]
        # dx = (scale / M) (M g - dbeta - xhat dgamma) = a g - b xhat - c per channel
        b = scale * dgamma / dt.type(m)
        c = scale * dbeta / dt.type(m)
        dx = np.multiply(xhat, pc(-b))
        dx -= pc(c)
        if owned:
            g *= pc(scale)
            dx += g
        else:
            dx += g * pc(scale)
    else:
        dx = g * pc(scale) if not owned else np.multiply(g, pc(scale), out=g)
    return (_from_view(dx, dy.shape, cl), (dgamma if gamma is not None else None),
            (dbeta if has_beta else None))
