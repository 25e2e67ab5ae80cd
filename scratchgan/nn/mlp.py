"""``mlp(sizes, rng)``: the fully connected stack several models build (AAE, CVAE, M2)."""
from __future__ import annotations

from .activation import ReLU
from .linear import Linear
from .module import Sequential

__all__ = ["mlp"]


def mlp(sizes, rng=None, activation=ReLU, final=None):
    """``Linear(sizes[0], sizes[1]) -> activation() -> ... -> Linear(sizes[-2], sizes[-1])``,
    then ``final`` (a Module) if given. No activation follows the last Linear. The Linears
    draw their initial weights from ``rng`` in order, first layer first.

    ``mlp([784, 500, 10], rng)`` is Linear(784, 500), ReLU, Linear(500, 10)."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp: sizes must list at least 2 positive widths (input, ..., output), "
                         f"got {sizes}")
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(Linear(sizes[i], sizes[i + 1], rng=rng))
        if i < len(sizes) - 2:
            layers.append(activation())
    if final is not None:
        layers.append(final)
    return Sequential(*layers)
