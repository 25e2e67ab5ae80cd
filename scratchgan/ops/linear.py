"""Affine map ``y = x W^T + b`` (PyTorch layout: ``W`` is (out, in))."""
from __future__ import annotations


def linear_forward(x, w, b=None):
    """``y[n, o] = sum_i x[n, i] w[o, i] + b[o]`` for ``x`` (N, in), ``w`` (out, in), ``b`` (out,)."""
    y = x @ w.T
    if b is not None:
        y = y + b
    return y, (x, w, b is not None)


def linear_backward(dy, cache, input_grad=True, param_grad=True):
    """Gradients of ``L`` given ``dy = dL/dy`` of shape (N, out).

    From ``y[n, o] = sum_i x[n, i] w[o, i] + b[o]``:

    * ``dL/dx[n, i] = sum_o dy[n, o] w[o, i]``   ->  ``dx = dy @ W``      (N, in)
    * ``dL/dw[o, i] = sum_n dy[n, o] x[n, i]``   ->  ``dW = dy^T @ x``    (out, in)
    * ``dL/db[o]    = sum_n dy[n, o]``           ->  ``db = dy.sum(0)``   (out,)

    Returns ``(dx, dw, db)``; ``db`` is None when the forward had no bias, ``dx`` is None
    with ``input_grad=False`` (a first layer: nobody uses d/dx, so its GEMM is skipped),
    ``dw`` and ``db`` are None with ``param_grad=False`` (a frozen layer).
    See docs/derivations/linear.md.
    """
    x, w, has_bias = cache
    dx = dy @ w if input_grad else None
    if not param_grad:
        return dx, None, None
    dw = dy.T @ x
    db = dy.sum(axis=0) if has_bias else None
    return dx, dw, db
