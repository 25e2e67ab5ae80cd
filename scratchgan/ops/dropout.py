"""Inverted dropout: keep each unit with probability 1 - p and scale it by 1 / (1 - p)."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..rng import get_rng

__all__ = ["dropout_mask", "dropout_forward", "dropout_backward"]


def dropout_mask(shape, p, rng=None, xp=np):
    """A boolean keep-mask (True = keep, probability 1 - p).

    ``rng`` a :class:`scratchgan.philox.Philox` stream: ``u ~ U[0, 1)`` drawn on the
    stream's device (no host copy; the same numbers on CPU and GPU), keep where
    ``u >= p``. Otherwise drawn on the host from the NumPy generator ``get_rng(rng)``
    and placed on ``xp``'s device.
    """
    from ..philox import Philox
    if isinstance(rng, Philox):
        return rng.random(shape, dtype=np.float32) >= np.float32(p)
    keep = get_rng(rng).random(shape) >= p
    return keep if xp is np else xp.asarray(keep)


def dropout_forward(x, p, mask):
    """``y = x * mask / (1 - p)``.

    ``mask`` is a keep-mask of x's shape (boolean, or 0/1 values). The
    ``1 / (1 - p)`` scale keeps ``E[y] = x``, so the layer is the identity at
    evaluation time with no rescaling.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p!r}")
    get_array_module(x, mask)   # x and mask on one device (raises otherwise)
    if tuple(mask.shape) != tuple(x.shape):
        raise ValueError(f"dropout_forward: mask shape {tuple(mask.shape)} differs from input "
                         f"shape {tuple(x.shape)}")
    # the scale as a NumPy scalar of x's dtype: a kernel argument, no host-to-device copy
    scaled = mask.astype(x.dtype) * np.dtype(x.dtype).type(1.0 / (1.0 - p))
    return x * scaled, scaled


def dropout_backward(dy, cache):
    """``y = x * mask / (1 - p)`` is linear in x, so ``dx = dy * mask / (1 - p)``."""
    scaled = cache
    return dy * scaled
