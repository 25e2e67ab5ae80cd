"""Pixelwise feature normalisation (Progressive GAN's generator): ``y = x / sqrt(mean_c x² + ε)``
over the channel axis (docs/derivations/progressive.md)."""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["pixelnorm_forward", "pixelnorm_backward"]


def pixelnorm_forward(x, eps=1e-8):
    """``y = x r``, ``r = (mean_c x² + ε)^(-1/2)`` over axis 1 (per sample and pixel)."""
    r = 1.0 / get_array_module(x).sqrt((x * x).mean(axis=1, keepdims=True) + eps)
    y = x * r
    return y, (y, r)


def pixelnorm_backward(dy, cache):
    """``dx = r (dy − y mean_c(y ⊙ dy))``: from ``∂y_i/∂x_j = r δ_ij − r³ x_i x_j / C``."""
    y, r = cache
    return r * (dy - y * (y * dy).mean(axis=1, keepdims=True))
