"""Stand-in image data: deterministic, generated in code, **not** MNIST or Fashion-MNIST.

For dry runs and tests on a machine without the real files (like pytorch/examples'
``--dataset fake`` or torchvision's ``FakeData``): same shapes, dtype, value range
and label set as the real loader, but made-up pictures.

* ``mnist``: seven-segment digits, one class per digit 0..9, each drawn with its own
  slant, shift, scale, stroke width and wobbly segment ends, then blurred;
* ``fashion-mnist``: filled silhouettes of the ten Fashion-MNIST classes (top,
  trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot) built from
  boxes, with the same kind of jitter and a soft texture.

Pixels are quantised to uint8 like the originals, so
:func:`standin_mnist` mirrors :func:`scratchgan.data.idx.load_mnist`
(``uint8 (N, 28, 28)``, ``uint8 (N,)``) and :func:`standin_images` mirrors
:func:`scratchgan.data.datasets.load_dataset` (float32 ``(N, 1, 28, 28)`` in
``data_range``, int64 labels) plus an ``info`` dict (``dataset_info`` keys and
``standin: True``). Labels are balanced: every block of ten rows holds each class
once. Every per-example quantity comes from its own seeded stream, so the first
``n`` stand-in examples are the same whatever the total asked for (like ``limit``).
"""
from __future__ import annotations

import numpy as np

from .batches import scale_images
from .datasets import dataset_info
from .idx import DATASET_NAMES, DataNotFoundError, search_dirs

STANDIN_DATASETS = DATASET_NAMES
#: generated sets that are a stand-in set padded to 32x32 (scratchgan.data.stacked_mnist)
PADDED_STANDINS = {"mnist32": "mnist", "fashion-mnist32": "fashion-mnist"}
_SPLIT_IDS = {"train": 0, "test": 1}
_SIZE = 28

# seven segments in glyph coordinates (x right, y down, both in [-1, 1]):
# a top, b upper right, c lower right, d bottom, e lower left, f upper left, g middle
_W, _H = 0.45, 0.75
_SEGMENTS = np.array([
    [-_W, -_H, _W, -_H], [_W, -_H, _W, 0.0], [_W, 0.0, _W, _H], [-_W, _H, _W, _H],
    [-_W, 0.0, -_W, _H], [-_W, -_H, -_W, 0.0], [-_W, 0.0, _W, 0.0]], np.float32)
_DIGITS = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg",
           "abcdfg"]
_DIGIT_MASK = np.array([[c in _DIGITS[k] for c in "abcdefg"] for k in range(10)])

# Fashion-MNIST classes as unions of boxes (x0, y0, x1, y1) in glyph coordinates
_CLOTHES = [
    [(-0.45, -0.6, 0.45, 0.8), (-0.8, -0.6, -0.45, -0.15), (0.45, -0.6, 0.8, -0.15)],  # top
    [(-0.4, -0.85, 0.4, -0.5), (-0.4, -0.5, -0.06, 0.9), (0.06, -0.5, 0.4, 0.9)],  # trouser
    [(-0.45, -0.7, 0.45, 0.75), (-0.85, -0.65, -0.5, 0.75), (0.5, -0.65, 0.85, 0.75)],  # pullover
    [(-0.2, -0.85, 0.2, -0.25), (-0.32, -0.25, 0.32, 0.3), (-0.5, 0.3, 0.5, 0.88)],  # dress
    [(-0.5, -0.85, -0.04, 0.9), (0.04, -0.85, 0.5, 0.9), (-0.88, -0.8, -0.55, 0.65),
     (0.55, -0.8, 0.88, 0.65)],  # coat (open front)
    [(-0.88, 0.3, 0.88, 0.45), (-0.62, -0.05, -0.45, 0.3), (-0.05, -0.15, 0.12, 0.3),
     (0.45, 0.0, 0.62, 0.3)],  # sandal
    [(-0.45, -0.7, 0.45, 0.85), (-0.8, -0.65, -0.5, 0.4), (0.5, -0.65, 0.8, 0.4),
     (-0.18, -0.85, 0.18, -0.7)],  # shirt (collar)
    [(-0.88, 0.05, 0.88, 0.45), (-0.15, -0.3, 0.88, 0.05)],  # sneaker
    [(-0.72, -0.2, 0.72, 0.8), (-0.4, -0.7, -0.25, -0.2), (0.25, -0.7, 0.4, -0.2),
     (-0.4, -0.7, 0.4, -0.55)],  # bag
    [(-0.88, 0.2, 0.88, 0.62), (0.05, -0.85, 0.75, 0.2)],  # ankle boot
]
_NBOX = max(len(c) for c in _CLOTHES)
_BOXES = np.zeros((10, _NBOX, 4), np.float32)
_BOX_MASK = np.zeros((10, _NBOX), bool)
for _k, _c in enumerate(_CLOTHES):
    _BOXES[_k, :len(_c)] = _c
    _BOX_MASK[_k, :len(_c)] = True

_GRID = ((np.arange(_SIZE, dtype=np.float32) + 0.5) / _SIZE * 2.0 - 1.0)


def _check(name, n, split):
    if name not in STANDIN_DATASETS:
        raise ValueError(f"no stand-in for data set {name!r}; stand-ins exist for "
                         f"{', '.join(STANDIN_DATASETS)}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"stand-in: n must be a positive int, got {n!r}")
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; valid choices are 'train', 'test'")


def _stream(seed, name, split, k):
    """One seeded generator per quantity, so the first n values never depend on the total."""
    return np.random.default_rng([int(seed), STANDIN_DATASETS.index(name), _SPLIT_IDS[split], k])


def _labels(n, seed, name, split):
    blocks = -(-n // 10)
    return np.argsort(_stream(seed, name, split, 0).random((blocks, 10)), axis=1).ravel()[:n]


def _glyph_coords(n, seed, name, split):
    """Per-example pixel coordinates in glyph space: ``(gx, gy)`` each ``(n, 28, 28)``."""
    r = _stream(seed, name, split, 1).uniform(-1.0, 1.0, size=(n, 5)).astype(np.float32)
    shift = 0.12 * r[:, :2]
    scale = 1.0 + 0.1 * r[:, 2]
    angle = 0.12 * r[:, 3]
    shear = (0.25 if name == "mnist" else 0.05) * r[:, 4]  # mnist: handwriting slant
    X = _GRID[None, None, :] - shift[:, 0, None, None]
    Y = _GRID[None, :, None] - shift[:, 1, None, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    gx = (c * X + s * Y) / scale[:, None, None]
    gy = (-s * X + c * Y) / scale[:, None, None]
    gx = gx + shear[:, None, None] * gy
    return gx.astype(np.float32), gy.astype(np.float32)


def _blur(img):
    """Separable [1, 2, 1] / 4 blur over the last two axes (edges repeated)."""
    p = np.pad(img, [(0, 0), (1, 1), (1, 1)], mode="edge")
    p = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) * 0.25
    return (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) * 0.25


def _digits(y, seed, split):
    n = len(y)
    gx, gy = _glyph_coords(n, seed, "mnist", split)
    seg = _SEGMENTS[None] + 0.07 * _stream(seed, "mnist", split, 2).standard_normal(
        (n, 7, 4)).astype(np.float32)
    width = 0.09 + 0.07 * _stream(seed, "mnist", split, 3).random(n).astype(np.float32)
    px, py = gx[:, None], gy[:, None]                                   # (n, 1, 28, 28)
    x0, y0, x1, y1 = (seg[:, :, i, None, None] for i in range(4))       # (n, 7, 1, 1)
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy + 1e-6), 0.0, 1.0)
    d2 = (px - x0 - t * dx) ** 2 + (py - y0 - t * dy) ** 2               # (n, 7, 28, 28)
    d2 = np.where(_DIGIT_MASK[y][:, :, None, None], d2, np.float32(np.inf))
    d = np.sqrt(d2.min(axis=1))
    img = np.clip((width[:, None, None] + 0.07 - d) / 0.1, 0.0, 1.0)
    return _blur(img)


def _clothes(y, seed, split):
    n = len(y)
    gx, gy = _glyph_coords(n, seed, "fashion-mnist", split)
    boxes = _BOXES[y] + 0.05 * _stream(seed, "fashion-mnist", split, 2).standard_normal(
        (n, _NBOX, 4)).astype(np.float32)
    px, py = gx[:, None], gy[:, None]
    x0, y0, x1, y1 = (boxes[:, :, i, None, None] for i in range(4))
    inside = np.minimum(np.minimum(px - x0, x1 - px), np.minimum(py - y0, y1 - py))
    inside = np.where(_BOX_MASK[y][:, :, None, None], inside, np.float32(-np.inf))
    shape = np.clip(inside.max(axis=1) / 0.08 + 0.5, 0.0, 1.0)       # soft-edged union
    r = _stream(seed, "fashion-mnist", split, 3).random((n, 3)).astype(np.float32)
    tone, freq, phase = 0.45 + 0.5 * r[:, 0], 2.0 + 4.0 * r[:, 1], 6.3 * r[:, 2]
    texture = 0.8 + 0.2 * np.sin(freq[:, None, None] * gy + phase[:, None, None])
    img = shape * texture * tone[:, None, None]
    img = img / np.maximum(img.max(axis=(1, 2), keepdims=True), 1e-6)  # brightest pixel 255
    return _blur(img)


def standin_mnist(split="train", dataset="mnist", n=256, seed=0):
    """Stand-in for :func:`~scratchgan.data.idx.load_mnist`: ``(uint8 (n, 28, 28), uint8 (n,))``.

    Deterministic in ``(dataset, split, seed)``; not the real data (see the module doc).
    """
    _check(dataset, n, split)
    y = _labels(int(n), seed, dataset, split)
    img = _digits(y, seed, split) if dataset == "mnist" else _clothes(y, seed, split)
    images = np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    return images, y.astype(np.uint8)


def standin_images(name, n=256, seed=0, data_range=(0.0, 1.0), split="train", flat=False):
    """Stand-in for :func:`~scratchgan.data.datasets.load_dataset` on an image data set.

    Returns ``(x, y, info)``: x float32 ``(n, 1, 28, 28)`` (``(n, 784)`` with
    ``flat=True``; ``(n, 1, 32, 32)`` for the padded sets ``mnist32`` and
    ``fashion-mnist32``) scaled to ``data_range`` exactly as the real loader scales uint8
    pixels, y int64 labels 0..9 (balanced), and ``info`` = ``dataset_info(name)``
    plus ``standin=True`` and a ``note`` saying what the data is.
    """
    base = PADDED_STANDINS.get(name, name)
    images, labels = standin_mnist(split, base, n, seed)
    if base != name:
        from .stacked_mnist import pad32
        images = pad32(images)
    x = scale_images(images, data_range)
    x = x.reshape(len(x), -1) if flat else x[:, None, :, :]
    info = dict(dataset_info(name))
    kind = "seven-segment digits" if base == "mnist" else "clothing silhouettes"
    info.update(standin=True, seed=int(seed),
                note=f"{len(x)} stand-in {name} images ({kind} generated by "
                     f"scratchgan.data.standin, seed {seed}; not the real {name})")
    return np.ascontiguousarray(x), labels.astype(np.int64), info


def load_or_standin(name, data_range=(0.0, 1.0), data_dir=None, split="train", limit=None,
                    flat=False, download=True, standin=False, seed=0):
    """``load_dataset`` that may fall back to stand-in data: ``(x, y, notice)``.

    ``notice`` is None when the real data was loaded. With ``standin=True`` (dry
    runs), an image data set whose files are missing is replaced by
    :func:`standin_images` (``limit`` examples, 256 when None) and ``notice`` is
    the line to print about it (which folders were searched, what the stand-in is).
    Corrupted files (``IDXError``) and, without ``standin``, missing files still raise.
    """
    from .datasets import load_dataset
    try:
        x, y = load_dataset(name, data_range, data_dir=data_dir, split=split, limit=limit,
                            flat=flat, download=download)
        return x, y, None
    except DataNotFoundError as e:
        if not standin or (name not in STANDIN_DATASETS and name not in PADDED_STANDINS):
            raise
        x, y, info = standin_images(name, int(limit or 256), seed=seed, data_range=data_range,
                                    split=split, flat=flat)
        files = PADDED_STANDINS.get(name, name)        # the IDX set a padded set is made of
        where = ", ".join(str(d / files) for _, d in search_dirs(data_dir))
        return x, y, (f"{files} files not found in {where}{'' if download else ' (no download)'}; "
                      f"using {info['note']}. For the real data pass --data-dir DIR (holding "
                      f"{files}/) or run without --dry-run to download it.")
