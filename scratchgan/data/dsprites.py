"""A dSprites-like data set, rendered in code by our own rasteriser (not DeepMind's dSprites).

It follows the published factor specification of dSprites (Matthey et al. 2017) but the
pictures are drawn here, so everything in scratchgan calls it **dSprites-like**:

=============  =====  ====================================================
factor         sizes  values
=============  =====  ====================================================
shape          3      0 square, 1 ellipse, 2 heart
scale          6      linspace(0.5, 1, 6)
orientation    40     2 pi k / 40, k = 0..39 (in [0, 2 pi), counter-clockwise as displayed)
pos_x          32     linspace(0, 1, 32) (left to right)
pos_y          32     linspace(0, 1, 32) (top to bottom)
=============  =====  ====================================================

3 * 6 * 40 * 32 * 32 = 737,280 binary 64 x 64 images. Image ``i`` has the factor indices of
``i`` written in mixed radix (shape slowest, pos_y fastest): :func:`factor_classes` and
:func:`index_of` convert, :func:`factor_values` gives the values.

Rasteriser
----------
Pixel ``(row r, column c)`` has its centre at canvas coordinates ``u = (c + 1/2)/64``,
``v = (r + 1/2)/64``; it is 1 when its centre lies inside the shape, else 0 (no
anti-aliasing: binary like dSprites). The shape's centre is at
``(0.2 + 0.6 pos_x, 0.2 + 0.6 pos_y)``, so one position step moves it 0.6 * 64 / 31 = 1.24
pixels. A canvas point is taken to the shape's own frame by
``(s_x, s_y) = R(-theta) (u - c_x, -(v - c_y)) / (scale * RADIUS)`` (y pointing up, so
``theta`` turns the shape counter-clockwise on screen), where the shape lives inside the
unit disc (``RADIUS = 0.17`` canvas units at scale 1):

* square: ``max(|s_x|, |s_y|) <= 0.75`` (corners at radius 1.06, 16.3 pixels a side at
  scale 1);
* ellipse: ``s_x^2 + (s_y / 0.6)^2 <= 1`` (21.8 x 13.1 pixels at scale 1);
* heart: ``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0`` (lobes up, tip at (0, -1)) with
  ``x = k s_x``, ``y = k s_y + y_c``: ``y_c = HEART_YC`` is the height of that region's
  area centroid, so the centroid sits at the shape's centre, and ``k = 1 + y_c`` puts the
  farthest point, the tip, on the unit circle (about 21 pixels across at scale 1).

Every shape's area centroid is its centre, so an image's pixel centroid tracks
``(pos_x, pos_y)`` and its pixel count ``scale^2`` (tests/data/test_dsprites.py checks both). The
largest extent (the square's corner, 1.06 * 0.17 = 0.18) stays inside the canvas from
every centre, so no sprite is clipped. The cosines and sines come from a float64 table on
the host: rendering is pure multiply-add, deterministic, and the same code runs on CuPy
arrays (``xp=cupy``).

Memory
------
Nothing is stored up front. :func:`render` draws any set of indices, vectorised over the
batch: at most about ``n * 4096 * 25`` bytes of float64 temporaries at a time (3.2 MB peak,
measured with tracemalloc, for a batch of 32), returning ``n * 4096`` bytes of uint8. A
:class:`DSpritesLike` with ``cache=True`` keeps every image it rendered bit-packed: 512
bytes an image, at most 377 MB (360 MiB) for all 737,280, plus a 737 kB flag array;
``fill_cache()`` renders everything (about 3 minutes on one CPU core; ``render(...,
xp=cupy)`` draws the whole training split on an H200 in 0.2 s, 3 GB as uint8). As float32
the whole set would be 12.1 GB (11.25 GiB), which is why ``load`` returns a lazy
:class:`DSpritesImages` view instead of an array.

Splits (``scratchgan.data.load_dataset("dsprites", split=...)``)
-----------------------------------------------------------------
dSprites has no test split and the β-VAE papers train on every image (their metric samples
fresh images from the factors). Here a fixed permutation of the 737,280 indices
(``numpy.random.default_rng(seed)``, seed 0 unless ``seed`` is given) is cut in two:
``test`` = its first 10,000 indices, ``train`` = the other 727,280, disjoint. Rows come in
permutation order, so ``limit=n`` keeps a uniform random subset of n images (a dry run's 256
images cover every factor). Labels ``y`` are the shape indices (3 classes); the factor
classes of the rows are ``x.classes``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "SHAPES", "IMAGE_SIZE", "N_IMAGES", "SCALES",
           "ORIENTATIONS", "POSITIONS", "FACTOR_VALUES", "RADIUS", "MARGIN", "SPAN",
           "SQUARE_HALF", "ELLIPSE_MINOR", "HEART_YC", "HEART_K", "TEST_SIZE", "PACKED_BYTES",
           "factor_classes", "index_of", "factor_values", "sample_classes", "render_classes",
           "render", "DSpritesLike", "split_indices", "DSpritesImages", "SPEC", "radius_extent"]

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
IMAGE_SIZE = 64
N_IMAGES = int(np.prod(FACTOR_SIZES))          # 737,280
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = 2.0 * np.pi * np.arange(40) / 40.0
POSITIONS = np.linspace(0.0, 1.0, 32)
FACTOR_VALUES = (np.arange(3, dtype=np.float64), SCALES, ORIENTATIONS, POSITIONS, POSITIONS)

RADIUS = 0.17            # the unit disc of a shape's frame, in canvas units at scale 1
MARGIN, SPAN = 0.2, 0.6  # centre = MARGIN + SPAN * pos
SQUARE_HALF = 0.75
ELLIPSE_MINOR = 0.6
HEART_YC = 0.293478      # centroid height of {(x^2 + y^2 - 1)^3 <= x^2 y^3}
HEART_K = 1.0 + HEART_YC
TEST_SIZE = 10_000
PACKED_BYTES = IMAGE_SIZE * IMAGE_SIZE // 8    # 512 bytes an image in the cache

_RADIX = np.array([int(np.prod(FACTOR_SIZES[i + 1:])) for i in range(5)], np.int64)
_COS, _SIN = np.cos(ORIENTATIONS), np.sin(ORIENTATIONS)
_GRID = (np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5) / IMAGE_SIZE


def _check_indices(indices, what="indices"):
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"dsprites: {what} must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= N_IMAGES):
        raise IndexError(f"dsprites: {what} must lie in [0, {N_IMAGES}), got range "
                         f"[{idx.min()}, {idx.max()}]")
    return idx


def factor_classes(indices) -> np.ndarray:
    """Image indices ``(n,)`` -> factor indices ``(n, 5)`` (shape, scale, orientation,
    pos_x, pos_y)."""
    idx = _check_indices(indices).reshape(-1)
    return (idx[:, None] // _RADIX[None, :]) % np.array(FACTOR_SIZES, np.int64)[None, :]


def index_of(classes) -> np.ndarray:
    """Factor indices ``(n, 5)`` -> image indices ``(n,)`` (inverse of :func:`factor_classes`)."""
    c = np.asarray(classes)
    if c.ndim != 2 or c.shape[1] != 5 or c.dtype.kind not in "iu":
        raise ValueError(f"dsprites.index_of: expected integer factor indices of shape (n, 5), "
                         f"got shape {c.shape} dtype {c.dtype}")
    sizes = np.array(FACTOR_SIZES)
    if c.size and ((c < 0).any() or (c >= sizes[None, :]).any()):
        raise IndexError(f"dsprites.index_of: factor k must lie in [0, {FACTOR_SIZES}[k])")
    return (c.astype(np.int64) * _RADIX[None, :]).sum(axis=1)


def factor_values(indices) -> np.ndarray:
    """Image indices ``(n,)`` -> factor values ``(n, 5)`` float64 (shape as 0, 1, 2)."""
    c = factor_classes(indices)
    return np.stack([FACTOR_VALUES[k][c[:, k]] for k in range(5)], axis=1)


def sample_classes(n, rng) -> np.ndarray:
    """``n`` factor-index rows drawn uniformly (each factor independently) from ``rng``."""
    return np.stack([rng.integers(0, s, size=int(n)) for s in FACTOR_SIZES], axis=1)


def render_classes(classes, xp=np) -> "np.ndarray":
    """Factor indices ``(n, 5)`` -> uint8 images ``(n, 64, 64)`` of 0/1 (on ``xp``'s device)."""
    c = np.asarray(classes, dtype=np.int64).reshape(-1, 5)
    n = len(c)
    out = xp.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    if n == 0:
        return out
    inv_r = 1.0 / (SCALES[c[:, 1]] * RADIUS)
    cos, sin = _COS[c[:, 2]] * inv_r, _SIN[c[:, 2]] * inv_r
    cx, cy = MARGIN + SPAN * POSITIONS[c[:, 3]], MARGIN + SPAN * POSITIONS[c[:, 4]]
    g = xp.asarray(_GRID)
    for k in range(3):
        sel = np.nonzero(c[:, 0] == k)[0]
        if not len(sel):
            continue
        col = lambda a: xp.asarray(a[sel])[:, None, None]  # noqa: E731
        dx = g[None, None, :] - col(cx)                    # (m, 1, 64): u - c_x
        dy = col(cy) - g[None, :, None]                    # (m, 64, 1): -(v - c_y), y up
        cs, sn = col(cos), col(sin)
        sx = cs * dx + sn * dy                             # R(-theta) (dx, dy) / (scale R)
        sy = cs * dy - sn * dx
        if k == 0:
            inside = xp.maximum(xp.abs(sx), xp.abs(sy)) <= SQUARE_HALF
        elif k == 1:
            q = sy * (1.0 / ELLIPSE_MINOR)
            inside = sx * sx + q * q <= 1.0
        else:
            x = HEART_K * sx
            y = HEART_K * sy + HEART_YC
            x2 = x * x
            w = x2 + y * y - 1.0
            inside = w * w * w - x2 * y * y * y <= 0.0
        out[xp.asarray(sel)] = inside.astype(np.uint8)
    return out


def render(indices, xp=np):
    """Image indices ``(n,)`` -> uint8 images ``(n, 64, 64)`` of 0/1."""
    return render_classes(factor_classes(indices), xp=xp)


class DSpritesLike:
    """The whole set as a renderer, with an optional bit-packed cache.

    ``images(indices)`` -> uint8 0/1 ``(n, 64, 64)``. With ``cache=True`` every image
    rendered once is kept packed (512 bytes each; the buffer's pages are committed as they
    are written, at most 377 MB) and read back from there afterwards.
    """

    def __init__(self, cache=False):
        self.cache = bool(cache)
        self._packed = None
        self._have = None

    def _ensure(self):
        if self._packed is None:
            self._packed = np.zeros((N_IMAGES, PACKED_BYTES), np.uint8)
            self._have = np.zeros(N_IMAGES, bool)

    def images(self, indices):
        idx = _check_indices(indices).reshape(-1)
        if not self.cache:
            return render(idx)
        self._ensure()
        missing = np.unique(idx[~self._have[idx]])
        if len(missing):
            self._packed[missing] = np.packbits(render(missing).reshape(len(missing), -1),
                                                axis=1)
            self._have[missing] = True
        return np.unpackbits(self._packed[idx], axis=1).reshape(len(idx), IMAGE_SIZE, IMAGE_SIZE)

    def fill_cache(self, chunk=16384, progress=None):
        """Render every image not cached yet (``cache=True`` only; about 3 minutes on one CPU core)."""
        if not self.cache:
            raise ValueError("DSpritesLike.fill_cache: built with cache=False")
        self._ensure()
        for lo in range(0, N_IMAGES, chunk):
            idx = np.arange(lo, min(lo + chunk, N_IMAGES))
            self.images(idx)
            if progress is not None:
                progress(min(lo + chunk, N_IMAGES), N_IMAGES)

    @property
    def cached(self) -> int:
        return 0 if self._have is None else int(self._have.sum())


_SHARED = DSpritesLike(cache=False)


def split_indices(split="train", seed=None) -> np.ndarray:
    """The image indices of ``split`` in row order (see the module docstring)."""
    if split not in ("train", "test"):
        raise ValueError(f"dsprites: unknown split {split!r}; valid choices are 'train', 'test'")
    perm = np.random.default_rng(0 if seed is None else int(seed)).permutation(N_IMAGES)
    return perm[:TEST_SIZE] if split == "test" else perm[TEST_SIZE:]


class DSpritesImages:
    """A lazy float32 array of dSprites-like images ``(n, 1, 64, 64)``: rows are rendered
    when indexed, nothing else is stored but the ``indices`` (8 bytes a row).

    Supports ``len``, ``shape``, ``ndim``, ``dtype``, ``nbytes`` (of the materialised array),
    indexing by an int, a slice or an integer array (-> a NumPy array), ``np.asarray`` and
    ``astype`` (materialise everything: mind ``nbytes``; the GPU trainer does this for sets
    under 2 GiB, e.g. a dry run's 256 images), and ``classes``/``values`` (the rows'
    factor indices and values). Pixel values are ``data_range``'s ends (0/1 or -1/1).
    """

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, indices, data_range=(0.0, 1.0), source=None):
        self.indices = _check_indices(indices).reshape(-1)
        lo, hi = (float(v) for v in data_range)
        if (lo, hi) not in ((0.0, 1.0), (-1.0, 1.0)):
            raise ValueError(f"dsprites: data_range must be (0, 1) or (-1, 1), got {data_range!r}")
        self.data_range = (lo, hi)
        self.source = source if source is not None else _SHARED

    @property
    def shape(self):
        return (len(self.indices), 1, IMAGE_SIZE, IMAGE_SIZE)

    @property
    def nbytes(self):
        return int(np.prod(self.shape)) * 4

    def __len__(self):
        return len(self.indices)

    def _scale(self, img):
        lo, hi = self.data_range
        x = img.astype(np.float32)[:, None]
        return x if (lo, hi) == (0.0, 1.0) else x * np.float32(hi - lo) + np.float32(lo)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._scale(self.source.images(self.indices[[key]]))[0]
        if isinstance(key, tuple):
            raise TypeError("DSpritesImages: index rows only (an int, a slice or an int array)")
        return self._scale(self.source.images(self.indices[key]))

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a if dtype is None else a.astype(dtype)

    def astype(self, dtype, copy=True):
        """Materialise every row as a NumPy array of ``dtype`` (mind ``nbytes``)."""
        return self[:].astype(dtype, copy=False)

    @property
    def classes(self):
        return factor_classes(self.indices)

    @property
    def values(self):
        return factor_values(self.indices)

    def __repr__(self):
        return f"DSpritesImages({len(self)} dSprites-like images, data_range={self.data_range})"


class _Spec:
    """The generated-set interface of ``scratchgan.data.datasets.GENERATED``."""

    def info(self):
        return {"shape": (1, IMAGE_SIZE, IMAGE_SIZE), "num_classes": 3, "kind": "image",
                "factors": dict(zip(FACTOR_NAMES, FACTOR_SIZES)),
                "note": "dSprites-like: rendered by scratchgan.data.dsprites, not DeepMind's "
                        "dSprites"}

    def load(self, split="train", data_range=(0.0, 1.0), data_dir=None, limit=None, seed=None,
             download=True):
        """``(x, y)``: x a lazy :class:`DSpritesImages` (float32 ``(n, 1, 64, 64)``), y int64
        shape indices. ``limit`` keeps the first rows (a uniform random subset); ``seed``
        picks another permutation; ``data_dir`` and ``download`` do not apply."""
        idx = split_indices(split, seed)
        if limit is not None:
            idx = idx[:int(limit)]
        x = DSpritesImages(idx, data_range=data_range)
        return x, x.classes[:, 0].astype(np.int64)


SPEC = _Spec()


def radius_extent():
    """Largest distance of a shape point from its centre, in canvas units at scale 1."""
    return RADIUS * max(SQUARE_HALF * math.sqrt(2.0), 1.0)
