"""Philox4x32-10: a counter-based random generator giving the same stream on the CPU and GPU.

A counter-based generator has no hidden state to advance: block ``b`` of the stream is a
pure function ``philox4x32_10(counter=b, key=seed)``. That is what lets a model draw noise
and dropout masks *on the device* inside a training step: the only state is one 64-bit
counter, kept in device memory and advanced there by a one-thread kernel, so a draw needs no
host->device copy and no host synchronisation, can be captured into a CUDA graph, and every
replay of the graph draws new numbers. On the CPU the counter is a Python int and the same
NumPy code computes the same blocks, so a CPU run sees the very same numbers.

The derivation page is ``docs/derivations/philox.md``; the kernels are ``kernels/philox.cu``.

Blocks
------
Block ``b`` (an unsigned 64-bit index; arithmetic wraps mod 2**64) is Philox4x32-10 with

    counter = (lo32(b), hi32(b), 0, 0),   key = (lo32(seed), hi32(seed))

and yields four uint32 words ``w0..w3``. The round function, with the standard constants
``M0 = 0xD2511F53, M1 = 0xCD9E8D57`` and key increments ``W0 = 0x9E3779B9, W1 = 0xBB67AE85``
(added to the key between rounds; 10 rounds, 9 bumps), is

    (c0, c1, c2, c3) -> (hi(M1*c2) ^ c1 ^ k0,  lo(M1*c2),  hi(M0*c0) ^ c3 ^ k1,  lo(M0*c0))

where ``hi``/``lo`` are the upper/lower 32 bits of the 64-bit product.

Element -> block mapping
------------------------
A draw of ``n`` elements (the product of ``shape``; elements in C order) starting at counter
``c`` uses blocks ``c .. c + B(n) - 1`` and leaves the counter at ``c + B(n)``:

* ``raw``, float32 ``random``/``uniform``, ``integers``: element i = word ``i % 4`` of block
  ``c + i//4``; B(n) = ceil(n / 4).
* float64 ``random``/``uniform``: element i = words ``2(i%2)``, ``2(i%2)+1`` of block
  ``c + i//2``; B(n) = ceil(n / 2).
* ``normal`` (float32 and float64): element i = words ``0..3`` of block ``c + i``; B(n) = n.

The unused words of a draw's last block are discarded: every draw starts on a fresh block.
Hence "two draws == one draw split" holds exactly when the first draw covers whole blocks:
``n1 % 4 == 0`` (one-word kinds), ``n1 % 2 == 0`` (float64 uniform), always for normals.
The numbers depend on ``n`` and not on ``shape``, and a draw of ``n`` elements is a prefix
of a draw of ``m >= n`` elements of the same kind from the same counter.

Conversions
-----------
* float32 uniform on [0, 1): ``u = (w >> 8) * 2**-24`` (exact, 24 bits).
* float64 uniform on [0, 1): ``u = ((wa >> 5) * 2**26 + (wb >> 6)) * 2**-53`` (exact, 53 bits).
* ``uniform(low, high)``: ``low`` and ``high`` are first rounded to the dtype, ``d = high - low``
  is rounded in the dtype, then ``r = fl(low + fl(d * u))`` (two roundings, no FMA; the GPU
  uses ``__fmul_rn/__fadd_rn`` or ``__dmul_rn/__dadd_rn``). Rounding can give ``r == high``
  (e.g. ``low=1, high=2`` in float32 and ``u = 1 - 2**-24``), so ``r >= high`` is replaced by
  the largest value of the dtype below ``high``: the result is always in ``[low, high)``.
* ``integers(high)``: ``k = (uint64(w) * high) >> 32`` (Lemire's multiply-shift, no
  rejection), ``1 <= high <= 2**31``. Value ``k`` is hit by the words in
  ``[k 2**32 / high, (k+1) 2**32 / high)``, i.e. by ``floor`` or ``ceil(2**32 / high)`` of the
  2**32 words, so ``|P(k) - 1/high| < 2**-32``: a relative bias below ``high / 2**32``, and
  none when ``high`` is a power of two.
* ``normal(mean, std)``: Box-Muller, cos branch, in float64 from the block's two 53-bit
  uniforms ``u1 = U(w0, w1)``, ``u2 = U(w2, w3)``:
  ``z = sqrt(-2 log(1 - u1)) * cos(2 pi u2)``, ``r = mean + std * z`` (float64), cast to the
  dtype (round to nearest). ``1 - u1`` lies in ``(0, 1]``, so the log is never log(0) and
  ``|z| <= sqrt(2 * 53 log 2) ~= 8.57``. CUDA's ``log``/``cos`` differ from the CPU's libm by
  an ulp or two, so GPU normals match the CPU to within a small ulp bound, not bitwise;
  raw words, uniforms and integers match bitwise.

Errors
------
Every bad argument raises ``ValueError`` naming the argument, the value received and what
was expected.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import check_device, cupy

__all__ = ["Philox", "philox4x32_10", "philox_blocks", "words_to_uniform_f32",
           "words_to_uniform_f64", "words_to_integers", "blocks_to_normal", "uniform_from_unit",
           "blocks_needed", "M0", "M1", "W0", "W1"]

M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9
W1 = 0xBB67AE85
ROUNDS = 10
TWO_PI = 2.0 * math.pi          # fl(2 pi) = 2 fl(pi) exactly; the kernel uses the same double
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_U64 = 2 ** 64
MAX_HIGH = 2 ** 31

# Elements per block of each draw kind (see the mapping table above).
_PER_BLOCK = {"raw": 4, "uniform_f32": 4, "integers": 4, "uniform_f64": 2, "normal": 1}


# ----------------------------------------------------------------------------------------------
# The block function and the conversions (NumPy, vectorised; no Python loop over elements)
# ----------------------------------------------------------------------------------------------
def philox4x32_10(counter_words, key) -> np.ndarray:
    """Philox4x32-10 of each row of ``counter_words`` ((n, 4) uint32) under ``key`` ((2,) uint32).

    Returns the (n, 4) uint32 outputs. Ten rounds of
    ``(c0, c1, c2, c3) -> (hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0))``
    with ``(k0, k1) += (W0, W1)`` (mod 2**32) before every round but the first. The 32x32-bit
    products are formed exactly in uint64 (both factors < 2**32, so the product < 2**64).
    """
    ctr = np.asarray(counter_words)
    if ctr.dtype != np.uint32 or ctr.ndim != 2 or ctr.shape[1] != 4:
        raise ValueError(f"philox4x32_10: counter_words must be an (n, 4) uint32 array, got "
                         f"shape {ctr.shape} dtype {ctr.dtype}")
    k = np.asarray(key)
    if k.dtype != np.uint32 or k.shape != (2,):
        raise ValueError(f"philox4x32_10: key must be a (2,) uint32 array, got shape {k.shape} "
                         f"dtype {k.dtype}")
    c0, c1, c2, c3 = (ctr[:, j].astype(np.uint64) for j in range(4))
    k0, k1 = int(k[0]), int(k[1])
    m0, m1 = np.uint64(M0), np.uint64(M1)
    for r in range(ROUNDS):
        if r > 0:
            k0 = (k0 + W0) & 0xFFFFFFFF
            k1 = (k1 + W1) & 0xFFFFFFFF
        p0 = c0 * m0
        p1 = c2 * m1
        c0, c1, c2, c3 = ((p1 >> _SHIFT32) ^ c1 ^ np.uint64(k0), p1 & _MASK32,
                          (p0 >> _SHIFT32) ^ c3 ^ np.uint64(k1), p0 & _MASK32)
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def philox_blocks(seed: int, counter: int, nblocks: int) -> np.ndarray:
    """Blocks ``counter .. counter + nblocks - 1`` (mod 2**64) of the stream keyed by ``seed``.

    Block ``b`` is ``philox4x32_10((lo32(b), hi32(b), 0, 0), (lo32(seed), hi32(seed)))``;
    returns an (nblocks, 4) uint32 array.
    """
    seed = _check_u64("philox_blocks: seed", seed)
    counter = _check_u64("philox_blocks: counter", counter)
    idx = np.arange(nblocks, dtype=np.uint64)
    idx += np.uint64(counter)                      # unsigned array arithmetic wraps mod 2**64
    ctr = np.zeros((nblocks, 4), dtype=np.uint32)
    ctr[:, 0] = idx & _MASK32
    ctr[:, 1] = idx >> _SHIFT32
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32)
    return philox4x32_10(ctr, key)


def words_to_uniform_f32(w) -> np.ndarray:
    """float32 uniforms on [0, 1): ``(w >> 8) * 2**-24`` (exact: a 24-bit integer times 2**-24)."""
    w = np.asarray(w, dtype=np.uint32)
    return (w >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)


def words_to_uniform_f64(wa, wb) -> np.ndarray:
    """float64 uniforms on [0, 1): ``((wa >> 5) * 2**26 + (wb >> 6)) * 2**-53`` (exact)."""
    wa = np.asarray(wa, dtype=np.uint32).astype(np.uint64)
    wb = np.asarray(wb, dtype=np.uint32).astype(np.uint64)
    m = ((wa >> np.uint64(5)) << np.uint64(26)) | (wb >> np.uint64(6))   # < 2**53
    return m.astype(np.float64) * (2.0 ** -53)


def words_to_integers(w, high: int) -> np.ndarray:
    """int64 values in [0, high): ``(uint64(w) * high) >> 32`` (Lemire, no rejection)."""
    w = np.asarray(w, dtype=np.uint32).astype(np.uint64)
    return ((w * np.uint64(high)) >> _SHIFT32).astype(np.int64)


def uniform_from_unit(u, low, d, high, below):
    """``r = fl(low + fl(d * u))`` in the dtype of ``u``; ``r >= high`` becomes ``below``.

    ``low, d, high, below`` are scalars of ``u``'s dtype (see :func:`_uniform_params`): NumPy
    rounds each operation separately (no FMA), as the kernel does with ``__*_rn``.
    """
    r = low + d * u
    return np.where(r < high, r, below)


def blocks_to_normal(blocks, mean: float, std: float, dtype) -> np.ndarray:
    """Box-Muller (cos branch) from (n, 4) uint32 blocks, one normal per block.

    ``u1 = U53(w0, w1)``, ``u2 = U53(w2, w3)``, ``z = sqrt(-2 log(1 - u1)) * cos(2 pi u2)``,
    ``r = mean + std * z`` in float64, then cast to ``dtype`` (round to nearest).
    """
    u1 = words_to_uniform_f64(blocks[:, 0], blocks[:, 1])
    u2 = words_to_uniform_f64(blocks[:, 2], blocks[:, 3])
    rad = np.sqrt(-2.0 * np.log(1.0 - u1))
    z = rad * np.cos(TWO_PI * u2)
    r = np.float64(mean) + np.float64(std) * z
    return r.astype(dtype)


def blocks_needed(kind: str, n: int) -> int:
    """B(n): blocks a draw of ``n`` elements of ``kind`` consumes (ceil(n / per_block))."""
    per = _PER_BLOCK[kind]
    return -(-n // per)


# ----------------------------------------------------------------------------------------------
# Argument checks (each error names the argument, the value and what was expected)
# ----------------------------------------------------------------------------------------------
def _as_int(label, v):
    if isinstance(v, np.ndarray) and v.ndim == 0 and np.issubdtype(v.dtype, np.integer):
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
        raise ValueError(f"{label} must be an integer, got {v!r} ({type(v).__name__})")
    return int(v)


def _check_u64(label, v) -> int:
    v = _as_int(label, v)
    if not 0 <= v < _U64:
        raise ValueError(f"{label} must satisfy 0 <= {label.split(': ')[-1]} < 2**64, got {v}")
    return v


def _check_shape(label, shape):
    """``shape`` as a tuple of non-negative ints, and the element count."""
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise ValueError(f"{label}: shape must be an int or a tuple of ints, got {shape!r}")
    dims = []
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, (numbers.Integral, np.integer)) or s < 0:
            raise ValueError(f"{label}: shape must hold non-negative ints, got {tuple(shape)!r} "
                             f"(bad entry {s!r})")
        dims.append(int(s))
    return tuple(dims), math.prod(dims)


def _check_float_dtype(label, dtype):
    try:   # np.dtype(None) is float64: None is refused rather than read as float64
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise ValueError(f"{label}: dtype must be float32 or float64, got {dtype!r}")
    return dt


def _check_real(label, v):
    if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{label} must be a real number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{label} must be finite, got {v!r}")
    return v


def _uniform_params(low, high, dt):
    """``(low, d, high, below)`` as scalars of ``dt``: the rounded bounds, ``d = fl(high - low)``
    and ``below = nextafter(high, -inf)``; checks ``low < high`` and a finite ``d``."""
    lo_f = _check_real("uniform: low", low)
    hi_f = _check_real("uniform: high", high)
    t = dt.type
    with np.errstate(over="ignore"):
        lo, hi = t(lo_f), t(hi_f)
        d = hi - lo
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"uniform: low={lo_f!r} and high={hi_f!r} must be finite in {dt}")
    if not lo < hi:
        raise ValueError(f"uniform: need low < high after rounding to {dt}, got low={lo_f!r} "
                         f"({lo!r}) and high={hi_f!r} ({hi!r})")
    if not np.isfinite(d):
        raise ValueError(f"uniform: high - low = {hi_f!r} - {lo_f!r} overflows {dt}; use a "
                         f"narrower range or float64")
    below = np.nextafter(hi, t(-np.inf))
    return lo, d, hi, below


def _check_high(high):
    h = _as_int("integers: high", high)
    if not 1 <= h <= MAX_HIGH:
        raise ValueError(f"integers: high must satisfy 1 <= high <= 2**31, got {h}")
    return h


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------
_NT = 256
_KERNELS = ("philox_u32", "philox_uniform_f32", "philox_uniform_f64", "philox_integers",
            "philox_normal_f32", "philox_normal_f64", "philox_advance")


_FUNCS: dict = {}


def _kernel(name):
    """The compiled kernel ``name`` of ``kernels/philox.cu`` (looked up once per process)."""
    f = _FUNCS.get(name)
    if f is None:
        from .cuda.loader import get_function
        f = _FUNCS[name] = get_function("philox", name)
    return f


class Philox:
    """A stream of Philox4x32-10 blocks: key = 64-bit seed, counter = number of 128-bit blocks
    consumed.

    ``Philox(seed, device)`` with ``0 <= seed < 2**64`` starts at counter 0. On ``'cpu'`` the
    counter is a Python int and draws return NumPy arrays; on ``'cuda'`` the counter (and the
    seed) live in a 2-element uint64 device array ``[counter, seed]`` and draws return CuPy
    arrays. A GPU draw launches, on the current stream, (1) the generation kernel, which reads
    the counter and seed from that array, and (2) a one-thread kernel adding ``B(n)`` to the
    counter: no host synchronisation and no host->device copy, so draws can be captured in a
    CUDA graph and each replay continues the stream. All draws of one generator must be
    ordered (one stream, or explicit events). The element -> block mapping and the
    conversions are in the module docstring; CPU and GPU produce the same raw words, uniforms
    and integers bit for bit, and normals to within an ulp or two.

    Every draw takes an optional ``out`` array (of the draw's shape and dtype, C-contiguous,
    on ``self.device``), written in place and returned: a captured graph can then fill
    preallocated buffers.
    """

    def __init__(self, seed: int, device: str = "cpu"):
        self._seed = _check_u64("Philox: seed", seed)
        self._counter = 0          # the CPU counter (authoritative while device == 'cpu')
        self._state = None         # the device [counter, seed] array while device == 'cuda'
        self._device = "cpu"
        self.to(device)

    # -- state ---------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """'cpu' or 'cuda': where the counter lives and where draws return their arrays."""
        return self._device

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def counter(self) -> int:
        """Blocks consumed so far (the next draw starts at this block). GPU: a device read (sync)."""
        if self._device == "cuda":
            return int(self._read_device_state()[0])
        return self._counter

    def _read_device_state(self) -> np.ndarray:
        """The device ``[counter, seed]``, after every stream of the device is done: draws or a
        graph launched on another stream than the current one have advanced it by then."""
        self._state.device.synchronize()
        return self._state.get()

    def _write_device_state(self, counter: int, seed: int) -> None:
        """Overwrite the device ``[counter, seed]`` in place (same buffer: captured graphs see
        it). Waits for pending work first (an advance still queued on another stream would
        land after the write) and after (the copy is complete before any stream reads it)."""
        cp = cupy()
        self._state.device.synchronize()
        self._state.set(np.array([counter, seed], dtype=np.uint64))
        cp.cuda.get_current_stream().synchronize()

    def to(self, device) -> "Philox":
        """Move the counter to ``device`` ('cpu' or 'cuda'), in place; returns self.

        To 'cuda': one host->device copy of ``[counter, seed]`` and the kernels are compiled
        (once per process) so that a later CUDA-graph capture launches only. To 'cpu': one
        device read of the counter (a sync).
        """
        if device not in ("cpu", "cuda"):
            raise ValueError(f"Philox.to: device must be 'cpu' or 'cuda', got {device!r}")
        if device == self._device:
            return self
        check_device(device)
        if device == "cuda":
            cp = cupy()
            self._state = cp.asarray(np.array([self._counter, self._seed], dtype=np.uint64))
            cp.cuda.get_current_stream().synchronize()
            for name in _KERNELS:
                _kernel(name)
        else:
            self._counter = int(self._read_device_state()[0])
            self._state = None
        self._device = device
        return self

    def state_dict(self) -> dict:
        """``{"seed": int, "counter": int}``. GPU: reads the device counter after synchronising
        the device (meant for checkpoints, never inside a captured step)."""
        return {"seed": self._seed, "counter": self.counter}

    def load_state_dict(self, state) -> None:
        """Restore ``{"seed", "counter"}`` (both in [0, 2**64)); the next draw continues the
        saved stream exactly. GPU: one host->device copy into the *same* device array, so CUDA
        graphs captured earlier continue from the loaded state too; it synchronises the device
        (a checkpoint-time call, never inside a captured step)."""
        if not hasattr(state, "keys"):
            raise ValueError(f"Philox.load_state_dict: expected a dict with keys 'seed' and "
                             f"'counter', got {type(state).__name__}")
        keys = set(state.keys())
        if keys != {"seed", "counter"}:
            raise ValueError(f"Philox.load_state_dict: expected keys {{'seed', 'counter'}}, got "
                             f"{sorted(map(str, keys))}")
        seed = _check_u64("Philox.load_state_dict: seed", state["seed"])
        counter = _check_u64("Philox.load_state_dict: counter", state["counter"])
        self._seed = seed
        if self._device == "cuda":
            self._write_device_state(counter, seed)
        else:
            self._counter = counter

    def mark(self):
        """The current position of the stream, for :meth:`rewind`: an int on 'cpu', a device
        copy of ``[counter, seed]`` on 'cuda' (a stream-ordered copy: no host
        synchronisation, so it can be captured in a CUDA graph)."""
        if self._device == "cuda":
            return self._state.copy()
        return self._counter

    def rewind(self, mark) -> None:
        """Go back to a position taken by :meth:`mark` on this generator: the next draws
        repeat the ones made since (the same dropout masks for a second forward pass, say).
        On 'cuda' a stream-ordered device copy into the same state array."""
        if self._device == "cuda":
            if getattr(mark, "shape", None) != (2,) or not hasattr(mark, "__cuda_array_interface__"):
                raise TypeError("Philox.rewind: expected a mark taken by mark() on the GPU "
                                f"(a device array of shape (2,)), got {type(mark).__name__}")
            self._state[...] = mark
        else:
            if not isinstance(mark, (int, np.integer)) or isinstance(mark, bool):
                raise TypeError(f"Philox.rewind: expected a mark taken by mark() on the CPU "
                                f"(an int), got {type(mark).__name__}")
            self._counter = int(mark)

    def __repr__(self):
        return f"Philox(seed={self._seed}, device={self._device!r})"

    # -- draws ---------------------------------------------------------------------------------
    def raw(self, shape, out=None):
        """uint32 words: element i = word ``i % 4`` of block ``c + i//4``; B(n) = ceil(n/4)."""
        shape, n = _check_shape("Philox.raw", shape)
        out = self._out("Philox.raw", out, shape, np.uint32)
        if n == 0:
            return out
        nb = blocks_needed("raw", n)
        if self._device == "cuda":
            return self._launch("philox_u32", out, n, nb)
        out[...] = self._cpu_blocks(nb).reshape(-1)[:n].reshape(shape)
        return out

    def uniform(self, shape, low=0.0, high=1.0, dtype=np.float32, out=None):
        """Uniform on ``[low, high)``: ``r = fl(low + fl(fl(high - low) * u))``, clamped below high.

        float32: ``u = (w >> 8) 2**-24``, element i = word ``i % 4`` of block ``c + i//4``,
        B(n) = ceil(n/4). float64: ``u = ((wa >> 5) 2**26 + (wb >> 6)) 2**-53`` from words
        ``2(i%2), 2(i%2)+1`` of block ``c + i//2``, B(n) = ceil(n/2).
        """
        shape, n = _check_shape("Philox.uniform", shape)
        dt = _check_float_dtype("Philox.uniform", dtype)
        lo, d, hi, below = _uniform_params(low, high, dt)
        out = self._out("Philox.uniform", out, shape, dt)
        if n == 0:
            return out
        if dt == np.float32:
            nb = blocks_needed("uniform_f32", n)
            if self._device == "cuda":
                return self._launch("philox_uniform_f32", out, n, nb, lo, d, hi, below)
            u = words_to_uniform_f32(self._cpu_blocks(nb).reshape(-1)[:n])
        else:
            nb = blocks_needed("uniform_f64", n)
            if self._device == "cuda":
                return self._launch("philox_uniform_f64", out, n, nb, lo, d, hi, below)
            pairs = self._cpu_blocks(nb).reshape(-1, 2)[:n]
            u = words_to_uniform_f64(pairs[:, 0], pairs[:, 1])
        out[...] = uniform_from_unit(u, lo, d, hi, below).reshape(shape)
        return out

    def random(self, shape, dtype=np.float32, out=None):
        """Uniform on [0, 1) (``uniform`` with low=0, high=1: exactly ``u``)."""
        return self.uniform(shape, 0.0, 1.0, dtype=dtype, out=out)

    def normal(self, shape, mean=0.0, std=1.0, dtype=np.float32, out=None):
        """Normal(mean, std**2) by Box-Muller (cos branch) in float64, cast to ``dtype``.

        Element i uses all four words of block ``c + i`` (B(n) = n):
        ``z = sqrt(-2 log(1 - U53(w0, w1))) cos(2 pi U53(w2, w3))``, ``r = mean + std z``.
        """
        shape, n = _check_shape("Philox.normal", shape)
        dt = _check_float_dtype("Philox.normal", dtype)
        mean = _check_real("normal: mean", mean)
        std = _check_real("normal: std", std)
        if std < 0:
            raise ValueError(f"normal: std must be >= 0, got {std!r}")
        out = self._out("Philox.normal", out, shape, dt)
        if n == 0:
            return out
        nb = blocks_needed("normal", n)
        if self._device == "cuda":
            name = "philox_normal_f32" if dt == np.float32 else "philox_normal_f64"
            return self._launch(name, out, n, nb, np.float64(mean), np.float64(std))
        out[...] = blocks_to_normal(self._cpu_blocks(nb), mean, std, dt).reshape(shape)
        return out

    def integers(self, high, shape, out=None):
        """int64 values in ``[0, high)``, ``1 <= high <= 2**31``: ``(uint64(w) * high) >> 32``.

        Lemire's multiply-shift without rejection: value k is hit by ``floor`` or
        ``ceil(2**32 / high)`` of the 2**32 words, so ``|P(k) - 1/high| < 2**-32`` (relative bias
        < ``high / 2**32``; none when high is a power of two). Element i = word ``i % 4`` of block
        ``c + i//4``, B(n) = ceil(n/4).
        """
        high = _check_high(high)
        shape, n = _check_shape("Philox.integers", shape)
        out = self._out("Philox.integers", out, shape, np.int64)
        if n == 0:
            return out
        nb = blocks_needed("integers", n)
        if self._device == "cuda":
            return self._launch("philox_integers", out, n, nb, np.uint32(high))
        out[...] = words_to_integers(self._cpu_blocks(nb).reshape(-1)[:n], high).reshape(shape)
        return out

    # -- internals -----------------------------------------------------------------------------
    def _out(self, label, out, shape, dtype):
        dtype = np.dtype(dtype)
        if self._device == "cuda":
            cp = cupy()
            if out is None:
                return cp.empty(shape, dtype=dtype)
            ok = isinstance(out, cp.ndarray)
        else:
            if out is None:
                return np.empty(shape, dtype=dtype)
            ok = isinstance(out, np.ndarray)
        if not ok or tuple(out.shape) != shape or out.dtype != dtype or not out.flags.c_contiguous:
            kind = "cupy" if self._device == "cuda" else "numpy"
            raise ValueError(f"{label}: out must be a C-contiguous {kind} array of shape {shape} "
                             f"and dtype {dtype}, got {type(out).__name__} "
                             f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', None)}")
        return out

    def _cpu_blocks(self, nb: int) -> np.ndarray:
        """The next ``nb`` blocks on the CPU; advances the counter by ``nb`` (mod 2**64)."""
        blocks = philox_blocks(self._seed, self._counter, nb)
        self._counter = (self._counter + nb) % _U64
        return blocks

    def _launch(self, name, out, n, nb, *params):
        """Generation kernel then the one-thread counter advance, on the current stream."""
        from .cuda.loader import sm_count
        grid = max(1, min(-(-nb // _NT), 16 * sm_count()))
        _kernel(name)((grid,), (_NT,), (self._state, out, np.int64(n)) + tuple(params))
        _kernel("philox_advance")((1,), (1,), (self._state, np.uint64(nb)))
        return out
