"""Resampling by powers of two (Progressive GAN): nearest-neighbour ×2 upsampling and k×k average
pooling. Both are linear maps, so each backward is the adjoint map (docs/derivations/progressive.md)
and neither adds a second-order term."""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["upsample2x_forward", "upsample2x_backward", "avgpool_forward", "avgpool_backward"]


# ============================================================================ ops
def upsample2x_forward(x):
    """Nearest-neighbour ×2: ``y[n,c,2i+a,2j+b] = x[n,c,i,j]`` (a, b ∈ {0, 1})."""
    N, C, H, W = x.shape
    xp = get_array_module(x)
    y = xp.broadcast_to(x[:, :, :, None, :, None], (N, C, H, 2, W, 2))
    return y.reshape(N, C, 2 * H, 2 * W)


def upsample2x_backward(dy):
    """The adjoint: each input pixel receives the sum of its 2×2 copies."""
    N, C, H2, W2 = dy.shape
    return dy.reshape(N, C, H2 // 2, 2, W2 // 2, 2).sum(axis=(3, 5))


def avgpool_forward(x, k=2):
    """``y[n,c,i,j] = (1/k²) Σ_{a,b<k} x[n,c,ki+a,kj+b]`` (H, W divisible by k)."""
    N, C, H, W = x.shape
    if H % k or W % k:
        raise ValueError(f"avgpool: input of shape {tuple(x.shape)} is not divisible by the "
                         f"pooling factor {k}")
    return x.reshape(N, C, H // k, k, W // k, k).mean(axis=(3, 5))


def avgpool_backward(dy, k=2):
    """The adjoint: every pixel of a k×k block receives ``dy / k²``."""
    N, C, H, W = dy.shape
    xp = get_array_module(dy)
    d = xp.broadcast_to((dy * (1.0 / (k * k)))[:, :, :, None, :, None], (N, C, H, k, W, k))
    return d.reshape(N, C, H * k, W * k)
