"""MNIST quadrant completion (Sohn et al. 2015, Sec. 5.1): see part of a digit, predict the rest.

Each 28x28 image is cut into four 14x14 quadrants. ``n_revealed`` of them (1, 2 or 3) are the
input x, the others are the output y. The quadrants are revealed in a fixed order, as in the
public reproduction whose numbers we compare with:

* 1 quadrant: bottom-left;
* 2 quadrants: the left half (top-left and bottom-left);
* 3 quadrants: all but the bottom-right.

Masked pixels carry the value ``MASK_VALUE = -1``, which no image pixel (in [0, 1]) takes: in x
the hidden pixels are -1, in y the revealed ones are -1. A model therefore knows from x alone
which pixels it must predict (``x == -1``), and a loss on y counts only the pixels where
``y != -1``.

``quadrant_task(images, n_revealed, rng=None) -> (x, y, mask)`` does the cut;
``QUADRANTS`` is the generated set ``mnist-quadrants`` (``scratchgan.data.datasets.GENERATED``):
every MNIST image as a two-channel example ``[x, y]`` of shape (2, 28, 28), the number of
revealed quadrants cycling 1, 2, 3 with the example's index (``n_revealed_of(i)``), labels the
digit classes. Memory: 2 x 4 bytes x 784 per example, 376 MB for the 60,000 training images
(float32), built on demand from the IDX files and not cached.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MASK_VALUE", "REVEAL_ORDER", "SIZE", "revealed_mask", "quadrant_task",
           "n_revealed_of", "QuadrantSpec", "QUADRANTS"]

MASK_VALUE = -1.0
#: the quadrants revealed for n = 1, 2, 3: (row half, column half), 0 = top/left, 1 = bottom/right
REVEAL_ORDER = ((1, 0), (0, 0), (0, 1))
SIZE = 28


def revealed_mask(n_revealed, size=SIZE, quadrants=None):
    """Boolean (size, size) array, True on the pixels of the revealed quadrants.

    ``quadrants``: an explicit sequence of (row half, column half) pairs instead of the first
    ``n_revealed`` of ``REVEAL_ORDER``."""
    if size % 2:
        raise ValueError(f"revealed_mask: the image side must be even to cut it into quadrants, "
                         f"got {size}")
    if quadrants is None:
        if n_revealed not in (1, 2, 3) or isinstance(n_revealed, bool):
            raise ValueError(f"quadrant task: n_revealed must be 1, 2 or 3, got {n_revealed!r}")
        quadrants = REVEAL_ORDER[:n_revealed]
    h = size // 2
    m = np.zeros((size, size), bool)
    for r, c in quadrants:
        m[r * h:(r + 1) * h, c * h:(c + 1) * h] = True
    return m


def quadrant_task(images, n_revealed, rng=None):
    """Split images into the revealed part x and the part to predict y.

    ``images``: (N, 28, 28) or (N, 1, 28, 28) values in [0, 1] (any even square side works).
    ``n_revealed``: 1, 2 or 3 quadrants revealed.
    ``rng``: None for the fixed order above (the public reproduction's protocol); a NumPy
    Generator draws, per image, which ``n_revealed`` of the four quadrants are revealed (a
    variant for data augmentation, not used in the measurements).

    Returns ``(x, y, mask)``, each of the input's shape: ``x`` the image on revealed pixels and
    -1 elsewhere, ``y`` the image on hidden pixels and -1 on revealed ones, and ``mask`` a
    float array, 1 on the hidden pixels (those y holds, those to predict) and 0 elsewhere.
    ``x`` and ``y`` are float32 unless the images are float64."""
    a = np.asarray(images)
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[1] != 1) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"quadrant_task: images must be (N, H, W) or (N, 1, H, W) with H == W, got "
                         f"shape {a.shape}")
    if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1):
        raise ValueError(f"quadrant_task: pixel values must lie in [0, 1] (-1 marks masked "
                         f"pixels), got range [{a.min()}, {a.max()}]")
    dtype = np.float64 if a.dtype == np.float64 else np.float32
    a = a.astype(dtype, copy=False)
    size = a.shape[-1]
    if rng is None:
        rev = np.broadcast_to(revealed_mask(n_revealed, size), a.shape)
    else:
        if n_revealed not in (1, 2, 3):
            raise ValueError(f"quadrant task: n_revealed must be 1, 2 or 3, got {n_revealed!r}")
        all_q = [(r, c) for r in (0, 1) for c in (0, 1)]
        rev = np.empty(a.shape, bool)
        for i in range(a.shape[0]):
            pick = rng.choice(4, size=n_revealed, replace=False)
            rev[i] = revealed_mask(None, size, [all_q[j] for j in pick])
    x = np.where(rev, a, dtype(MASK_VALUE)).astype(dtype)
    y = np.where(rev, dtype(MASK_VALUE), a).astype(dtype)
    mask = (~rev).astype(dtype)
    return x, y, mask


def n_revealed_of(index):
    """Revealed quadrants of example ``index`` of the generated set: 1, 2, 3, 1, 2, 3, ..."""
    return np.asarray(index) % 3 + 1


class QuadrantSpec:
    """The generated set ``mnist-quadrants``: ``(x, y)`` with x float32 (N, 2, 28, 28), channel 0
    the revealed part and channel 1 the part to predict (-1 on masked pixels), and y the
    digit labels; example i reveals ``n_revealed_of(i)`` quadrants. ``build`` makes it from
    given source digits (the stand-ins of a dry run without the files)."""

    standin_source = "mnist"

    def info(self):
        return {"shape": (2, SIZE, SIZE), "num_classes": 10, "kind": "image-pair"}

    def load(self, split="train", data_range=(0.0, 1.0), data_dir=None, limit=None, seed=None,
             download=True):
        if tuple(float(v) for v in data_range) != (0.0, 1.0):
            raise ValueError(f"mnist-quadrants: pixels are in [0, 1] with -1 marking masked "
                             f"pixels; data_range must be (0, 1), got {tuple(data_range)}")
        from .batches import scale_images
        from .idx import load_mnist
        images, labels = load_mnist(split, dataset="mnist", data_dir=data_dir, download=download)
        return self.build(images, labels, split, data_range, limit, seed)

    def build(self, images, labels, split="train", data_range=(0.0, 1.0), limit=None, seed=None):
        """The set from uint8 (N, 28, 28) source digits and their labels."""
        from .batches import scale_images
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        img = scale_images(images, (0.0, 1.0))
        out = np.empty((len(img), 2, SIZE, SIZE), np.float32)
        n_of = n_revealed_of(np.arange(len(img)))
        for n in (1, 2, 3):
            sel = n_of == n
            x, y, _ = quadrant_task(img[sel], n)
            out[sel, 0], out[sel, 1] = x, y
        return out, labels.astype(np.int64)


QUADRANTS = QuadrantSpec()
