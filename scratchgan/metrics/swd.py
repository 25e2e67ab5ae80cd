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
from .evaluators import EvalContext, evaluator
from .sampling import generate_samples, pad_to

__all__ = ["KERNEL", "pyr_down", "pyr_up", "laplacian_pyramid", "reconstruct",
           "pyramid_resolutions", "patch_descriptors", "normalize_descriptors",
           "sliced_wasserstein", "to_pixels", "descriptors", "sliced_wasserstein_distance",
           "disjoint_subsets", "reference_pairs", "evaluate_swd"]

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


def disjoint_subsets(x, n, seed):
    """Two disjoint random subsets of ``n`` images of ``x`` (one permutation from ``seed``):
    the reference an SWD is taken against, and a second real set that scores the sampling
    floor."""
    n = int(n)
    if n < 1 or 2 * n > len(x):
        raise ValueError(f"disjoint_subsets: two disjoint sets of {n} need at least {2 * n} "
                         f"images, got {len(x)}")
    perm = np.random.default_rng(seed).permutation(len(x))
    return x[perm[:n]], x[perm[n:2 * n]]


def reference_pairs(train, test, n, seed=0):
    """Pairs of real image sets whose SWD tells what a score should be read against:
    ``(name, a, b)`` for the first ``n`` training against the first ``n`` test images, a
    random training subset against the first ``n`` test images, two disjoint random training
    subsets (what sampling alone costs), and the first ``n`` test images against the next
    ``n``."""
    if 2 * n > len(test):
        raise ValueError(f"reference_pairs: the test set has {len(test)} images, fewer than "
                         f"the {2 * n} the last pair needs")
    a, b = disjoint_subsets(train, n, seed)
    return [("train[:n] vs test[:n]", train[:n], test[:n]),
            ("random train subset vs test[:n]", a, test[:n]),
            ("two disjoint random train subsets", a, b),
            ("test[:n] vs test[n:2n]", test[:n], test[n:2 * n])]


@evaluator("swd")
def evaluate_swd(ctx: EvalContext, n_images=4096, reference_seed=7, swd_seed=0,
                 real_floor=False, size=32):
    """SWD ×10³ of ``n_images`` samples against as many training images (a random subset
    drawn with ``reference_seed``, the same for every model of a study), the authors'
    protocol of comparing with the training set. Images smaller than ``size`` (MNIST's 28×28)
    are centred in a ``size``×``size`` frame of the data's lowest value, samples and reference
    alike. Returns ``swd_mean`` and ``swd_R`` per pyramid level R; with ``real_floor`` also
    ``swd_real_mean`` (and ``swd_real_R``): a second, disjoint training subset scored the same
    way, the value two real sets reach."""
    x = ctx.data.get("x_train")
    if x is None:
        raise ValueError("swd: the study's data has no x_train to compare with")
    data_range = tuple(getattr(ctx.model, "data_range", None) or (0.0, 1.0))
    n = int(n_images)
    if ctx.standin:                 # a dry run's few stand-in images: as many as two sets allow
        n = max(1, min(n, len(x) // 2))
    ref, real = disjoint_subsets(np.asarray(to_numpy(x)), n, reference_seed)
    ref, real = pad_to(ref, size, data_range[0]), pad_to(real, size, data_range[0])
    fake = pad_to(generate_samples(ctx.model, n, ctx.rng(37)), size, data_range[0])
    out = {}
    res = sliced_wasserstein_distance(ref, fake, data_range=data_range, seed=swd_seed)
    out["swd_mean"] = res["mean"]
    out.update({f"swd_{r}": v for r, v in res["levels"].items()})
    if real_floor:
        res = sliced_wasserstein_distance(ref, real, data_range=data_range, seed=swd_seed)
        out["swd_real_mean"] = res["mean"]
        out.update({f"swd_real_{r}": v for r, v in res["levels"].items()})
    return out
