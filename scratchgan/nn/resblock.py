"""Residual connections: ``Residual(body)`` computes ``y = x + body(x)``, and
``ResnetBlock`` is CycleGAN's block (He et al. 2016, as in Johnson et al. 2016's transfer
networks):

    x -> ReflectionPad(1) -> Conv 3x3 -> Norm -> ReLU -> ReflectionPad(1) -> Conv 3x3 -> Norm -> (+ x)

Backward: ``dy/dx = I + J_body`` so ``dx = dy + body.backward(dy)``; the body's parameters
get their gradients from ``body.backward(dy)`` (derivation in docs/derivations/image2image.md).
"""
from __future__ import annotations

import numpy as np

from ..rng import get_rng
from .activation import ReLU
from .conv import Conv2d
from .dropout import Dropout
from .instancenorm import InstanceNorm2d
from .module import Module, Sequential
from .norm import BatchNorm2d
from .padding import ReflectionPad2d

__all__ = ["Residual", "make_norm", "ResnetBlock"]


def _generator(rng):
    """A NumPy generator from a generator, an int seed or None (the global one)."""
    return np.random.default_rng(rng) if isinstance(rng, (int, np.integer)) else get_rng(rng)


class Residual(Module):
    """``y = x + body(x)``; the body must keep the input's shape.

    Gradient:
        ``dx = dy + body.backward(dy)``.
    """

    def __init__(self, body):
        super().__init__()
        if not isinstance(body, Module):
            raise TypeError(f"Residual: body must be a Module, got {type(body).__name__}")
        self.body = body

    def _label(self):
        return "Residual"

    def forward(self, x):
        h = self.body(x)
        if tuple(h.shape) != tuple(x.shape):
            self.body.clear_cache()
            raise ValueError(f"Residual: the body maps shape {tuple(x.shape)} to {tuple(h.shape)}; "
                             "a residual connection needs the same shape in and out")
        self._save_cache(True)
        return x + h

    def backward(self, dy):
        self._take_cache()
        return dy + self.body.backward(dy)


def make_norm(kind, channels):
    """``"instance"`` (no affine, CycleGAN), ``"instance-affine"``, ``"batch"`` or ``"none"``."""
    if kind == "instance":
        return InstanceNorm2d(channels, affine=False)
    if kind == "instance-affine":
        return InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return BatchNorm2d(channels)
    if kind == "none":
        return None
    raise ValueError(f"norm must be 'instance', 'instance-affine', 'batch' or 'none', got {kind!r}")


class ResnetBlock(Residual):
    """CycleGAN's residual block on ``channels`` maps (reflection padding, two 3x3 convolutions,
    normalisation ``norm``, ReLU between; optional dropout after the ReLU, off by default as
    in CycleGAN). Convolutions carry a bias unless the normalisation is BatchNorm (whose shift
    makes it redundant), as in the authors' code.

    Gradient:
        ``dx = dy + body.backward(dy)`` (a :class:`Residual`), through the
        body's layers in reverse order.
    """

    def __init__(self, channels, norm="instance", dropout=0.0, rng=None, dropout_rng=None):
        rng = _generator(rng)
        bias = norm != "batch"
        layers = [ReflectionPad2d(1), Conv2d(channels, channels, 3, bias=bias, rng=rng)]
        n = make_norm(norm, channels)
        layers += ([n] if n is not None else []) + [ReLU()]
        if dropout:
            layers.append(Dropout(dropout, rng=dropout_rng))
        layers += [ReflectionPad2d(1), Conv2d(channels, channels, 3, bias=bias, rng=rng)]
        n = make_norm(norm, channels)
        layers += [n] if n is not None else []
        super().__init__(Sequential(*layers))
        self.channels = int(channels)

    def _label(self):
        return f"ResnetBlock({self.channels})"
