"""Mode coverage on toy 2-D mixtures (ring of 8, grid of 25, ...).

Each sample is assigned to its nearest mode centre. It is *high quality* when
it lies within ``threshold`` standard deviations of that centre (3 sigma by
default; with a per-axis std the distance is the axis-scaled one,
sqrt(sum_k ((x_k - c_k) / s_k)^2)). A mode is *covered* when it receives at
least ``min_count`` high-quality samples; the default is a tenth of a uniform
share, ceil(0.1 * N / K), so a generator that sprays a few stray points near
every mode does not get credit for covering them.

Centres and std are arguments (``scratchgan.data.toy.toy_modes(name)`` and
``toy_std(name)`` provide them for the built-in datasets).

ALI's count (Dumoulin et al. 2017) is the looser one: each sample goes to its most responsible
component (equal weights and equal isotropic covariances make that the nearest mean, whatever
the std) and a mode is dropped only when no sample is assigned to it (:func:`modes_covered`).
The ``toy-modes`` evaluator (:mod:`scratchgan.metrics.modes`) reports both.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy

__all__ = ["mode_statistics", "assign_modes", "modes_covered"]

__all__ = ["mode_statistics"]


def mode_statistics(samples, centres, std, threshold=3.0, min_count=None):
    """Coverage statistics of ``samples`` (N, d) around ``centres`` (K, d).

    Returns a dict: ``modes_covered`` (int), ``num_modes``, ``high_quality_fraction``,
    ``counts`` (high-quality samples per mode), ``min_count``, and
    ``kl_to_uniform`` (KL of the high-quality mode histogram to the uniform one,
    0 for perfectly balanced modes; inf when no sample is high quality).
    """
    x = to_numpy(samples).astype(np.float64)
    c = np.asarray(to_numpy(centres), dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"mode_statistics: expected samples (N, d) and centres (K, d), "
                         f"got {x.shape} and {c.shape}")
    s = np.broadcast_to(np.asarray(std, dtype=np.float64), (c.shape[1],))
    if np.any(s <= 0):
        raise ValueError(f"mode_statistics: std must be positive, got {std}")
    n, k = x.shape[0], c.shape[0]
    dist = np.sqrt((((x[:, None, :] - c[None, :, :]) / s) ** 2).sum(axis=2))   # (N, K) in std units
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(n), nearest] <= threshold
    counts = np.bincount(nearest[good], minlength=k)
    if min_count is None:
        min_count = max(1, math.ceil(0.1 * n / k))
    hq = int(good.sum())
    if hq:
        p = counts / hq
        nz = p > 0
        kl = float(np.sum(p[nz] * np.log(p[nz] * k)))
    else:
        kl = float("inf")
    return {"modes_covered": int((counts >= min_count).sum()), "num_modes": k,
            "high_quality_fraction": hq / n, "counts": counts.tolist(),
            "min_count": int(min_count), "kl_to_uniform": kl}


def assign_modes(samples, centres):
    """Index of the nearest centre of each sample (the most responsible component of a mixture
    with equal weights and equal isotropic covariances)."""
    x = np.asarray(to_numpy(samples), dtype=np.float64)
    c = np.asarray(to_numpy(centres), dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"assign_modes: expected samples (N, d) and centres (K, d), got "
                         f"{x.shape} and {c.shape}")
    d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


def modes_covered(samples, centres):
    """ALI's count: (components with at least one sample assigned, counts per component)."""
    counts = np.bincount(assign_modes(samples, centres), minlength=len(centres))
    return int((counts > 0).sum()), counts
