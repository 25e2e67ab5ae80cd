"""Low-dimensional toy distributions: no files, no download.

=============  ====  ==========================================================================
name           dim   distribution
=============  ====  ==========================================================================
gaussian1d     1     N(4, 0.5^2): the 1-D setting of the GAN paper's Figure 1 (a single
                     Gaussian p_data that G learns to match; mean 4, std 0.5 is the common
                     re-implementation choice). Labels are all 0.
ring8          2     8 Gaussians with centres on a circle of radius 2 (angles 2*pi*k/8),
                     isotropic std 0.02 (the setting of Unrolled GAN / VEEGAN mode-collapse
                     experiments). Label k = component.
grid25         2     25 Gaussians on the 5x5 grid {-4,-2,0,2,4}^2, isotropic std 0.05
                     (VEEGAN / PacGAN setting). Label = 5*row + column.
mixture10      2     AAE prior: x ~ N(0, 0.5^2), y ~ N(0, 0.05^2), rotated by 2*pi*k/10 and
                     shifted by 1.4 along that direction. Label k = component.
swissroll      2     AAE prior: k ~ U{0..9}, u = (U(0,1) + k)/10, r = 3*sqrt(u),
                     angle = 4*pi*sqrt(u), point = r*(cos, sin). Label k = segment.
=============  ====  ==========================================================================

``sample_toy(name, n, rng, labels=None, return_labels=False)``: with ``labels``
given, each sample is drawn from that component (the AAE's label-conditioned
prior); otherwise components are drawn uniformly.
"""
from __future__ import annotations

import numpy as np

from ..rng import get_rng

__all__ = ["TOY_DATASETS", "GAUSSIAN1D_MEAN", "GAUSSIAN1D_STD", "RING8_RADIUS", "RING8_STD",
           "GRID25_SPACING", "GRID25_STD", "MIXTURE10_SHIFT", "MIXTURE10_STD_X",
           "MIXTURE10_STD_Y", "SWISSROLL_RADIUS", "SWISSROLL_TURNS", "toy_dim", "toy_num_classes",
           "toy_modes", "toy_std", "sample_toy"]

TOY_DATASETS = ("gaussian1d", "ring8", "grid25", "mixture10", "swissroll")
_NUM_COMPONENTS = {"gaussian1d": 1, "ring8": 8, "grid25": 25, "mixture10": 10, "swissroll": 10}
_DIM = {"gaussian1d": 1, "ring8": 2, "grid25": 2, "mixture10": 2, "swissroll": 2}

GAUSSIAN1D_MEAN, GAUSSIAN1D_STD = 4.0, 0.5
RING8_RADIUS, RING8_STD = 2.0, 0.02
GRID25_SPACING, GRID25_STD = 2.0, 0.05
MIXTURE10_SHIFT, MIXTURE10_STD_X, MIXTURE10_STD_Y = 1.4, 0.5, 0.05
SWISSROLL_RADIUS, SWISSROLL_TURNS = 3.0, 4.0 * np.pi


def _check_name(name):
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy data set {name!r}; valid choices are {TOY_DATASETS}")


def toy_dim(name) -> int:
    _check_name(name)
    return _DIM[name]


def toy_num_classes(name) -> int:
    """Number of components (labels) of a toy distribution."""
    _check_name(name)
    return _NUM_COMPONENTS[name]


def toy_modes(name) -> np.ndarray:
    """Mode centres, shape (K, d). The swiss roll has no modes: ValueError."""
    _check_name(name)
    if name == "gaussian1d":
        return np.array([[GAUSSIAN1D_MEAN]])
    if name == "ring8":
        a = 2 * np.pi * np.arange(8) / 8
        return RING8_RADIUS * np.stack([np.cos(a), np.sin(a)], axis=1)
    if name == "grid25":
        v = GRID25_SPACING * (np.arange(5) - 2)
        gy, gx = np.meshgrid(v, v, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1)
    if name == "mixture10":
        a = 2 * np.pi * np.arange(10) / 10
        return MIXTURE10_SHIFT * np.stack([np.cos(a), np.sin(a)], axis=1)
    raise ValueError("toy data set 'swissroll' is a continuous curve with no Gaussian modes; "
                     "toy_modes/toy_std apply to gaussian1d, ring8, grid25, mixture10")


def toy_std(name) -> float:
    """Per-component standard deviation (mixture10: the larger, radial one, 0.5)."""
    _check_name(name)
    if name == "swissroll":
        toy_modes(name)  # raises: no modes
    return {"gaussian1d": GAUSSIAN1D_STD, "ring8": RING8_STD, "grid25": GRID25_STD,
            "mixture10": MIXTURE10_STD_X}[name]


def sample_toy(name, n, rng=None, labels=None, return_labels=False, dtype=np.float32):
    """``n`` samples (n, d) of a toy distribution; with ``return_labels`` also the components."""
    _check_name(name)
    rng = get_rng(rng)
    K = _NUM_COMPONENTS[name]
    if labels is None:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"sample_toy: n must be a non-negative int, got {n!r}")
        labels = rng.integers(0, K, size=int(n))
    else:
        labels = np.asarray(labels).astype(np.int64).ravel()
        if n is not None and len(labels) != n:
            raise ValueError(f"sample_toy: got {len(labels)} labels for n={n}")
        if labels.size and (labels.min() < 0 or labels.max() >= K):
            raise ValueError(f"sample_toy({name!r}): labels must lie in [0, {K}), got "
                             f"range [{labels.min()}, {labels.max()}]")
        n = len(labels)
    if name == "gaussian1d":
        x = GAUSSIAN1D_MEAN + GAUSSIAN1D_STD * rng.standard_normal((n, 1))
    elif name in ("ring8", "grid25"):
        std = RING8_STD if name == "ring8" else GRID25_STD
        x = toy_modes(name)[labels] + std * rng.standard_normal((n, 2))
    elif name == "mixture10":
        u = MIXTURE10_STD_X * rng.standard_normal(n)
        v = MIXTURE10_STD_Y * rng.standard_normal(n)
        a = 2 * np.pi * labels / K
        c, s = np.cos(a), np.sin(a)
        u = u + MIXTURE10_SHIFT  # shift along the rotated x-axis
        x = np.stack([u * c - v * s, u * s + v * c], axis=1)
    else:  # swissroll
        u = (rng.random(n) + labels) / K
        r = SWISSROLL_RADIUS * np.sqrt(u)
        a = SWISSROLL_TURNS * np.sqrt(u)
        x = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    x = x.astype(dtype)
    return (x, labels) if return_labels else x
