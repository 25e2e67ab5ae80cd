"""Layer normalization (Ba, Kiros & Hinton 2016): per-sample statistics over the last
``ndim`` axes, first- and second-order derivatives.

Notation (``docs/derivations/second_order.md``): for one sample, the normalized block has
``D`` values ``x_i``; ``mean`` is over those D values::

    mu = mean(x),  xc = x - mu,  sigma = sqrt(mean(xc^2) + eps),  rstd = 1 / sigma
    xhat = xc * rstd,   y = gamma * xhat + beta          (gamma, beta of the block's shape)

Every sample is normalized on its own, so unlike BatchNorm the layer is per-sample
(its input gradient for sample n depends on sample n only) and belongs in a WGAN-GP critic.

The Jacobian of ``x -> xhat`` is symmetric::

    d xhat_i / d x_j = rstd (delta_ij - 1/D - xhat_i xhat_j / D)             (1)

(from ``d mu/dx_j = 1/D`` and ``d sigma/dx_j = xc_j / (D sigma) = xhat_j / D``), so one
function, ``N(t) = rstd (t - mean(t) - xhat mean(t xhat))``, is both its product with a
tangent (forward mode) and its transpose applied to a gradient (backward). All arrays are
NumPy or CuPy (element-wise work and reductions only: no kernel of its own).
"""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["layernorm_forward", "layernorm_backward", "layernorm_jvp", "layernorm_backward_jvp"]


def _axes(x, ndim):
    return tuple(range(x.ndim - ndim, x.ndim))


def _batch_axes(x, ndim):
    return tuple(range(x.ndim - ndim))


def _mean(t, axes):
    return t.mean(axis=axes, keepdims=True)


def _normalize_jac(t, xhat, rstd, axes):
    """``N(t) = rstd (t - mean(t) - xhat mean(t xhat))``: equation (1) applied to ``t``."""
    return rstd * (t - _mean(t, axes) - xhat * _mean(t * xhat, axes))


def layernorm_forward(x, gamma, beta, ndim, eps=1e-5):
    """``y = gamma * (x - mu) / sqrt(var + eps) + beta`` with per-sample ``mu`` and biased
    ``var`` over the last ``ndim`` axes of ``x``; ``gamma``/``beta`` (the shape of those
    axes) may be None (no affine transform). Returns ``(y, cache)``."""
    axes = _axes(x, ndim)
    mu = _mean(x, axes)
    xc = x - mu
    var = _mean(xc * xc, axes)
    xp = get_array_module(x)
    rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat = xc * rstd
    y = xhat if gamma is None else xhat * gamma
    if beta is not None:
        y = y + beta
    return y, (xhat, rstd, gamma, beta is not None, ndim)


def layernorm_backward(dy, cache, input_grad=True, param_grad=True):
    """Gradients given ``dy = dL/dy``; returns ``(dx, dgamma, dbeta)``.

    * ``dx = N(gamma dy) = rstd (a - mean(a) - xhat mean(a xhat))`` with ``a = gamma dy``
      (equation (1) is symmetric, so its transpose is itself; means per sample);
    * ``dgamma = sum_n dy xhat``, ``dbeta = sum_n dy`` (sums over the batch axes).

    ``dx`` is None with ``input_grad=False``; ``dgamma``/``dbeta`` are None with
    ``param_grad=False`` or without the affine parameters.
    """
    xhat, rstd, gamma, has_beta, ndim = cache
    axes, baxes = _axes(dy, ndim), _batch_axes(dy, ndim)
    dx = None
    if input_grad:
        a = dy if gamma is None else dy * gamma
        dx = _normalize_jac(a, xhat, rstd, axes)
    if not param_grad:
        return dx, None, None
    dgamma = (dy * xhat).sum(axis=baxes) if gamma is not None else None
    dbeta = dy.sum(axis=baxes) if has_beta else None
    return dx, dgamma, dbeta


def layernorm_jvp(u, cache):
    """Forward-mode tangent: ``dy = gamma N(u)`` for an input tangent ``u`` (no beta:
    the bias does not depend on x)."""
    xhat, rstd, gamma, _, ndim = cache
    t = _normalize_jac(u, xhat, rstd, _axes(u, ndim))
    return t if gamma is None else t * gamma


def layernorm_backward_jvp(s, ds, u, cache, input_grad=True, param_grad=True):
    """Directional derivative, along the input tangent ``u``, of :func:`layernorm_backward`.

    ``s`` is the backward signal at the output (dy of the first-order pass), ``ds`` its own
    tangent (None: zero). With ``a = gamma s``, ``da = gamma ds``,
    ``dxhat = N(u)`` (the tangent of xhat) and ``dsigma / sigma = rstd mean(xhat u)``::

        s_in  = rstd P(a),        P(a) = a - mean(a) - xhat mean(a xhat)
        ds_in = -(dsigma/sigma) s_in
                + rstd [da - mean(da) - dxhat mean(a xhat) - xhat (mean(da xhat) + mean(a dxhat))]
        dgamma = sum_n (ds xhat + s dxhat),     dbeta = sum_n ds

    (``d rstd = -rstd dsigma/sigma``; ``d sigma = mean(xhat u)`` since
    ``d sigma^2 = 2 mean(xc u)``.) Returns ``(ds_in, dgamma, dbeta)``, None where not
    asked for, where the layer has no such parameter, or (dbeta) where ``ds`` is zero.
    """
    xhat, rstd, gamma, has_beta, ndim = cache
    axes, baxes = _axes(s, ndim), _batch_axes(s, ndim)
    dxhat = _normalize_jac(u, xhat, rstd, axes)
    ds_in = None
    if input_grad:
        a = s if gamma is None else s * gamma
        s_in = _normalize_jac(a, xhat, rstd, axes)
        rel = rstd * _mean(xhat * u, axes)                      # dsigma / sigma
        inner = -dxhat * _mean(a * xhat, axes) - xhat * _mean(a * dxhat, axes)
        if ds is not None:
            da = ds if gamma is None else ds * gamma
            inner = inner + da - _mean(da, axes) - xhat * _mean(da * xhat, axes)
        ds_in = rstd * inner - rel * s_in
    if not param_grad:
        return ds_in, None, None
    dgamma = dbeta = None
    if gamma is not None:
        t = s * dxhat if ds is None else ds * xhat + s * dxhat
        dgamma = t.sum(axis=baxes)
    if has_beta and ds is not None:
        dbeta = ds.sum(axis=baxes)
    return ds_in, dgamma, dbeta
