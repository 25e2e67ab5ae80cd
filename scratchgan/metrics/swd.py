"""Sliced Wasserstein distance between image sets, the protocol of Karras et al. (2018, §5).

1. Each image (N, 3, H, W), pixels 0..255, is decomposed into a **Laplacian pyramid** whose
   levels run from the full resolution down to 16×16: with the 5×5 binomial filter
   ``k = [1 4 6 4 1]ᵀ[1 4 6 4 1] / 256`` and mirror boundaries, ``down(x)`` = filter then keep
   every second row and column, ``up(x)`` = zeros inserted between samples then filter with
   4k; level i is ``G_i − up(G_{i+1})`` and the last level is the low-pass ``G_last``
   (so ``reconstruct(pyramid) = image`` exactly).
2. From every level of every image, **128 random 7×7 neighbourhoods** (all channels: a
   147-d descriptor) are cut at uniformly random centres at least 3 pixels from the border.
3. Per set and level, the descriptors are **normalised per colour channel** (the mean over all
   descriptors and pixels subtracted, divided by the standard deviation).
4. The distance between two equally sized descriptor sets is the **sliced Wasserstein
   distance**: for 4 repeats × 128 random unit directions, both sets are projected, sorted,
   and the mean absolute difference of the sorted projections (the 1-D Wasserstein-1
   distance between equal-size empirical distributions) is averaged over directions and
   repeats.
5. The reported value is ×10³ per level, and their mean.

Single-channel images (MNIST) are replicated to 3 channels; images smaller than 16 pixels have
no level. Floats in ``data_range`` are mapped to 0..255 and rounded to integers as image files
would be. Randomness (patch centres, directions) comes from a NumPy generator (``seed``).
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy

__all__ = ["NHOOD", "NHOODS_PER_IMAGE", "DIR_REPEATS", "DIRS_PER_REPEAT", "KERNEL", "pyr_down",
           "pyr_up", "laplacian_pyramid", "reconstruct", "pyramid_resolutions",
           "patch_descriptors", "normalize_descriptors", "sliced_wasserstein", "to_pixels",
           "descriptors", "sliced_wasserstein_distance"]

NHOOD = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
_K1 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
KERNEL = np.outer(_K1, _K1)          # the 5×5 binomial filter, sums to 1


def _filter(x, kernel):
    from scipy import ndimage
    return ndimage.convolve(x, kernel[None, None], mode="mirror")


def pyr_down(x):
    """Binomial filter (mirror boundary), then every second row and column."""
    return _filter(x, KERNEL)[:, :, ::2, ::2]


def pyr_up(x):
    """Zeros inserted between samples, then the binomial filter ×4."""
    N, C, H, W = x.shape
    up = np.zeros((N, C, 2 * H, 2 * W), dtype=x.dtype)
    up[:, :, ::2, ::2] = x
    return _filter(up, 4.0 * KERNEL)


def laplacian_pyramid(x, levels):
    """``levels`` arrays: band-pass levels from full resolution down, then the low-pass."""
    g = [np.asarray(x, dtype=np.float64)]
    for _ in range(1, levels):
        g.append(pyr_down(g[-1]))
    return [g[i] - pyr_up(g[i + 1]) for i in range(levels - 1)] + [g[-1]]


def reconstruct(pyramid):
    """The inverse of :func:`laplacian_pyramid`."""
    x = pyramid[-1]
    for level in pyramid[-2::-1]:
        x = pyr_up(x) + level
    return x


def pyramid_resolutions(size, smallest=16):
    out, r = [], int(size)
    while r >= smallest:
        out.append(r)
        r //= 2
    return out


def patch_descriptors(level, rng, nhood=NHOOD, per_image=NHOODS_PER_IMAGE):
    """(N·per_image, C, nhood, nhood) patches at uniformly random centres ≥ nhood//2 from the
    border, ``per_image`` from each image."""
    N, C, H, W = level.shape
    h = nhood // 2
    img = np.repeat(np.arange(N), per_image)
    cy = rng.integers(h, H - h, size=img.size)
    cx = rng.integers(h, W - h, size=img.size)
    off = np.arange(-h, h + 1)
    rows = (cy[:, None] + off[None])[:, :, None]                     # (P, n, 1)
    cols = (cx[:, None] + off[None])[:, None, :]                     # (P, 1, n)
    return level[img[:, None, None], :, rows, cols].transpose(0, 3, 1, 2)


def normalize_descriptors(desc):
    """Per channel: subtract the mean and divide by the std over all patches and pixels;
    returns (P, C·n·n)."""
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    desc = desc / desc.std(axis=(0, 2, 3), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a, b, rng, repeats=DIR_REPEATS, dirs=DIRS_PER_REPEAT):
    """Mean over ``repeats × dirs`` random unit directions of the 1-D W1 distance between the
    projections of two equally sized point sets (P, D)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein: expected two (P, D) sets of the same shape, got "
                         f"{a.shape} and {b.shape}")
    out = []
    for _ in range(repeats):
        d = rng.standard_normal((a.shape[1], dirs))
        d /= np.sqrt((d * d).sum(axis=0, keepdims=True))
        pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
        out.append(np.abs(pa - pb).mean())
    return float(np.mean(out))


def to_pixels(images, data_range=(0.0, 1.0)):
    """Images in ``data_range`` (or uint8) -> float64 0..255 integers, 3 channels."""
    x = np.asarray(to_numpy(images))
    if x.ndim != 4:
        raise ValueError(f"swd: expected (N, C, H, W) images, got shape {x.shape}")
    if x.dtype != np.uint8:
        lo, hi = data_range
        x = np.clip(np.rint((x.astype(np.float64) - lo) / (hi - lo) * 255.0), 0, 255)
    x = x.astype(np.float64)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    if x.shape[1] != 3:
        raise ValueError(f"swd: expected 1 or 3 channels, got {x.shape[1]}")
    return x


def descriptors(images, rng, data_range=(0.0, 1.0), batch_size=256):
    """Normalised descriptors per pyramid level (a list, finest first)."""
    x = to_pixels(images, data_range)
    levels = len(pyramid_resolutions(x.shape[-1]))
    if levels == 0:
        raise ValueError(f"swd: images of {x.shape[-1]} pixels have no pyramid level (>= 16)")
    per = [[] for _ in range(levels)]
    for i in range(0, x.shape[0], batch_size):
        for k, lev in enumerate(laplacian_pyramid(x[i:i + batch_size], levels)):
            per[k].append(patch_descriptors(lev, rng))
    return [normalize_descriptors(np.concatenate(p)) for p in per]


def sliced_wasserstein_distance(real, fake, data_range=(0.0, 1.0), fake_range=None, seed=0):
    """SWD ×10³ per pyramid level and their mean: ``{"levels": {res: swd}, "mean": avg}``.

    ``real`` and ``fake`` must hold the same number of images (the authors use 16384 at
    each resolution; fewer give a noisier, larger value).
    """
    real, fake = to_numpy(real), to_numpy(fake)
    if real.shape[0] != fake.shape[0]:
        raise ValueError(f"sliced_wasserstein_distance: the sets must be of equal size, got "
                         f"{real.shape[0]} real and {fake.shape[0]} fake images")
    rng = np.random.default_rng(seed)
    dr = descriptors(real, rng, data_range)
    df = descriptors(fake, rng, data_range if fake_range is None else fake_range)
    res = pyramid_resolutions(to_pixels(real[:1], data_range).shape[-1])
    vals = {r: 1e3 * sliced_wasserstein(a, b, rng) for r, a, b in zip(res, dr, df)}
    return {"levels": vals, "mean": float(np.mean(list(vals.values())))}
