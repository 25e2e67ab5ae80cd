"""Image-to-image translation tasks made in code from MNIST and Fashion-MNIST (pix2pix and
CycleGAN; the papers' own data sets are not available offline). Every set is deterministic.

How a Trainer sees them
-----------------------
The Trainer feeds one array per step, so each example is the two domains **stacked along
the channels**: ``x = concat(A, B)`` with A's channels first, and the model splits it
(``pix2pix``: ``A = x[:, :a]``, ``B = x[:, a:]``, ``a = C // 2`` unless set; ``cyclegan``:
``a = 3``). ``y`` holds the class label of the example's A image (of B's for paired sets,
where they are the same image).

Paired sets (one source image gives both A and B):

* ``edges2fashion``: A = Sobel edge magnitude of a Fashion-MNIST image, B = the image.
  ``edges(img) = clip(|(Sx * img, Sy * img)| / 2, 0, 1)`` with the 3x3 Sobel kernels and
  zero padding (:func:`sobel_edges`, NumPy); (2, 28, 28).
* ``quadrants-paired1`` / ``2`` / ``3``: the quadrant completion task of Sohn et al. (2015)
  with 1, 2 or 3 quadrants shown, the paired view of the CVAE's ``mnist-quadrants``: A is
  that set's input x (:func:`scratchgan.data.quadrants.quadrant_task`, the same fixed
  reveal order and the same test images), hidden pixels at its ``MASK_VALUE`` -1 on the
  [0, 1] scale, i.e. ``lo - (hi - lo)`` in ``data_range`` (a value no pixel takes);
  B = the whole image; (2, 28, 28).

Unpaired set:

* ``mnist2restyled``: domain A = MNIST digits as grey RGB (3 channels); domain B = restyled
  MNIST digits (:func:`restyle`: strokes dilated by a 3x3 maximum, inverted to dark ink on
  a light background, coloured: ink (0.10, 0.15, 0.45), paper (0.95, 0.85, 0.55)).
  A comes from the **first half** of the split's images and B from the **second half**,
  so no digit is ever seen in both domains; row i stacks A_i and B_i, two unrelated
  digits (the losses never couple them); (6, 28, 28). ``load_domains`` returns the two
  domains with both label arrays (evaluation in both directions).

Train sets come from the training files, test sets from the test files. Without the IDX
files and with ``download=False`` (``scratchgan train --dry-run``), the stand-in images
of :mod:`scratchgan.data.standin` are used instead, with a warning.
"""
from __future__ import annotations

import warnings

import numpy as np

from .idx import DataNotFoundError

__all__ = ["SOBEL_X", "INK", "PAPER", "sobel_edges", "quadrant_input", "dilate", "restyle",
           "grey_rgb", "source_images", "PairedTask", "UnpairedTask", "EDGES2FASHION",
           "QUADRANTS_PAIRED1", "QUADRANTS_PAIRED2", "QUADRANTS_PAIRED3", "MNIST2RESTYLED",
           "save_task_pictures"]

SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
INK = np.array([0.10, 0.15, 0.45])
PAPER = np.array([0.95, 0.85, 0.55])


def _filter3(img, k):
    """``sum_{u,v} k[u, v] img[i+u-1, j+v-1]`` (cross-correlation, zero padding) of (N, H, W)."""
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    H, W = img.shape[1:]
    out = np.zeros_like(img, dtype=np.float64)
    for u in range(3):
        for v in range(3):
            if k[u, v]:
                out += k[u, v] * p[:, u:u + H, v:v + W]
    return out


def sobel_edges(images):
    """Sobel gradient magnitude of (N, H, W) or (N, 1, H, W) images in [0, 1], halved and clipped
    to [0, 1] (a step from 0 to 1 gives magnitude 4: the edge saturates at half contrast)."""
    a = np.asarray(images, dtype=np.float64)
    squeeze = a.ndim == 4
    if squeeze:
        a = a[:, 0]
    gx, gy = _filter3(a, SOBEL_X), _filter3(a, SOBEL_X.T)
    e = np.clip(np.sqrt(gx * gx + gy * gy) / 2.0, 0.0, 1.0)
    return e[:, None] if squeeze else e


def quadrant_input(images, shown, data_range=(0.0, 1.0)):
    """The CVAE task's input (``scratchgan.data.quadrants.quadrant_task``'s x) for (N, 1, H, W)
    images in [0, 1], scaled to ``data_range``: the hidden pixels' -1 becomes ``lo - (hi - lo)``."""
    from .quadrants import quadrant_task
    x, _, _ = quadrant_task(np.asarray(images, dtype=np.float32), shown)
    return _scale(x, data_range)


def dilate(images):
    """3x3 grey-level dilation (maximum over the 8-neighbourhood and the pixel) of (N, H, W)."""
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    H, W = images.shape[1:]
    return np.max([p[:, u:u + H, v:v + W] for u in range(3) for v in range(3)], axis=0)


def restyle(images):
    """MNIST (N, 1, H, W) in [0, 1] -> the restyled domain (N, 3, H, W) in [0, 1]: thicker
    strokes (3x3 dilation), inverted, coloured: ``paper (1 - s) + ink s``."""
    s = dilate(np.asarray(images, dtype=np.float64)[:, 0])[:, None]
    return PAPER[None, :, None, None] * (1.0 - s) + INK[None, :, None, None] * s


def grey_rgb(images):
    """(N, 1, H, W) -> (N, 3, H, W) by repeating the channel."""
    return np.repeat(np.asarray(images, dtype=np.float64), 3, axis=1)


def _scale(a, data_range):
    lo, hi = (float(v) for v in data_range)
    return (lo + (hi - lo) * a).astype(np.float32)


def source_images(name, split, data_dir=None, download=True):
    """``(images (N, 1, 28, 28) float32 in [0, 1], labels)`` of an IDX set, or the stand-in
    images when the files are missing and ``download`` is False."""
    from .datasets import load_dataset
    try:
        return load_dataset(name, (0.0, 1.0), data_dir=data_dir, split=split, download=download)
    except DataNotFoundError:
        if download:
            raise
        from .standin import standin_images
        x, y, info = standin_images(name, 512, split=split)
        warnings.warn(f"{name} files not found (no download): the image-to-image set is built "
                      f"from {info['note']}", stacklevel=3)
        return x, y


class PairedTask:
    """A paired set: ``make_a(images in [0, 1], data_range)`` gives A from B = the image."""

    def __init__(self, source, kind, shown=None):
        self.source, self.kind, self.shown = source, kind, shown

    def info(self):
        return {"shape": (2, 28, 28), "num_classes": 10, "kind": "image-pair",
                "a_channels": 1, "paired": True}

    def make_pairs(self, images, data_range):
        b = _scale(images, data_range)
        if self.kind == "edges":
            a = _scale(sobel_edges(images), data_range)
        else:
            a = quadrant_input(images, self.shown, data_range)
        return np.concatenate([a, b], axis=1)

    def load(self, split="train", data_range=(0.0, 1.0), data_dir=None, limit=None, seed=None,
             download=True):
        images, labels = source_images(self.source, split, data_dir, download)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return self.make_pairs(images, data_range), labels.astype(np.int64)


class UnpairedTask:
    """MNIST (grey RGB) <-> restyled MNIST, the domains from disjoint halves of each split."""

    def info(self):
        return {"shape": (6, 28, 28), "num_classes": 10, "kind": "image-unpaired",
                "a_channels": 3, "paired": False}

    def load_domains(self, split="train", data_range=(0.0, 1.0), data_dir=None, download=True):
        """``(xa, ya, xb, yb)``: A from the first half of the split, B from the second half."""
        images, labels = source_images("mnist", split, data_dir, download)
        h = len(images) // 2
        xa = _scale(grey_rgb(images[:h]), data_range)
        xb = _scale(restyle(images[h:2 * h]), data_range)
        return xa, labels[:h].astype(np.int64), xb, labels[h:2 * h].astype(np.int64)

    def load(self, split="train", data_range=(0.0, 1.0), data_dir=None, limit=None, seed=None,
             download=True):
        xa, ya, xb, _ = self.load_domains(split, data_range, data_dir, download)
        x = np.concatenate([xa, xb], axis=1)
        if limit is not None:
            x, ya = x[:limit], ya[:limit]
        return x, ya


EDGES2FASHION = PairedTask("fashion-mnist", "edges")
QUADRANTS_PAIRED1 = PairedTask("mnist", "quadrants", shown=1)
QUADRANTS_PAIRED2 = PairedTask("mnist", "quadrants", shown=2)
QUADRANTS_PAIRED3 = PairedTask("mnist", "quadrants", shown=3)
MNIST2RESTYLED = UnpairedTask()


def save_task_pictures(out_dir="docs/images", data_dir=None, n=10):
    """One picture per task: rows A, B of the first ``n`` training examples."""
    import pathlib
    from ..viz import save_grid
    out = pathlib.Path(out_dir)
    paths = []
    rows = []
    for task in (EDGES2FASHION, QUADRANTS_PAIRED1, QUADRANTS_PAIRED2, QUADRANTS_PAIRED3):
        x, _ = task.load("train", (0.0, 1.0), data_dir, limit=n)
        rows += [x[:, :1], x[:, 1:]]
    paths.append(save_grid(np.concatenate(rows), out / "task_image2image_paired.png", nrow=n,
                           data_range=(0.0, 1.0)))
    xa, _, xb, _ = MNIST2RESTYLED.load_domains("train", (0.0, 1.0), data_dir)
    paths.append(save_grid(np.concatenate([xa[:n], xb[:n]]), out / "task_mnist2restyled.png",
                           nrow=n, data_range=(0.0, 1.0)))
    return paths
