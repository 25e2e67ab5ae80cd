"""GPU convolution primitives for CuPy arrays (NCHW data, (K, C, R, S) weights).

Three bias-free primitives, dispatched to by :mod:`scratchgan.ops.conv`:

* ``conv2d_forward(x, w, stride, padding, dilation) -> y``
* ``conv2d_backward_data(dy, w, x_shape, stride, padding, dilation) -> dx``
* ``conv2d_backward_filter(x, dy, w_shape, stride, padding, dilation) -> dw``

Algorithm (``scratchgan.backend.get_conv_algorithm()``):

* ``'implicit_gemm'`` (default): the hand-written kernels of ``kernels/conv2d_*.cu``.
  The im2col matrix is never built: the kernels gather its tiles from ``x`` (or
  ``dy``) through small index tables built here on the host and cached per shape.
  Backward-data is split into stride phases so that no zero tap is multiplied.
* ``'im2col_cublas'``: a comparison path: im2col/col2im with CuPy array ops
  and one cuBLAS matrix product.

Precision (``scratchgan.backend.get_conv_precision()``), float32 inputs:
``'fp32'`` runs the FP32 FMA kernels, ``'tf32'`` the tensor-core kernels (inputs
truncated to tf32 by the tensor cores, fp32 accumulation; relative error ~1e-4..1e-3;
outputs with <= 8 columns, e.g. 3-channel images, use the narrow FP32 FMA kernels
in both modes; backward-data into <= 4 channels with the DCGAN geometry (4x4, stride 2,
padding 1) has its own narrow kernel that computes all four stride phases per thread). float64 inputs
always run double instantiations of the FMA kernels (``..._f64_...``) whatever
the precision setting, so gradient checks run on the GPU in float64.

Launch plans: what a call derives from shapes alone (kernel, grid, shared memory, split-K
factor, index tables, the int32 parameter array the kernels read their geometry from) is
built once per shape and setting and cached, and a repeated ``out=None`` call with the
same arguments skips the checks its first call passed; the host's work per call is
then 28 us on the H100's host (``benchmarks/host_profile.py``,
``benchmarks/results/host-profile-v15-2026-11-22.txt``).

Every function takes an optional ``out=`` array (C-contiguous, exact shape and
dtype) and writes every element of it, so tests can poison ``out`` with NaN.
Large GEMM_K with few output tiles is split over blocks (split-K): partial tiles
go into a workspace and a reduction kernel writes ``out``.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..backend import cupy, get_conv_algorithm, get_conv_precision
from .loader import check_out, contiguous, get_function, sm_count

_TABLES: dict = {}
_MAX_WORKSPACE_BYTES = 512 << 20


def _hw(v, name):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    h, w = v
    return (int(h), int(w))


def _out_len(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _check(x, name, ndim=4):
    cp = cupy()
    if not isinstance(x, cp.ndarray):
        raise TypeError(f"scratchgan.cuda.conv: {name} must be a cupy array, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"scratchgan.cuda.conv: {name} must be {ndim}-D, got shape {tuple(x.shape)}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"scratchgan.cuda.conv: {name} must be float32 or float64, got {x.dtype}")


def _kind(dtype):
    """Kernel family for the dtype and the precision setting: 'f32', 'tf32' or 'f64'."""
    if np.dtype(dtype) == np.float64:
        return "f64"
    return "tf32" if get_conv_precision() == "tf32" else "f32"


# ------------------------------------------------------------------ tile configurations
# name suffix -> (BM, BN, BK, threads, stages); must match the entries in kernels/*.cu.
_GATHER_CFG = {
    "f32": {"128x128": (128, 128, 16, 256, 3), "128x64": (128, 64, 16, 256, 3)},
    "tf32": {"128x128": (128, 128, 16, 256, 4), "128x64": (128, 64, 32, 256, 3)},
    "f64": {"64x64": (64, 64, 8, 256, 3)},
}
_WGRAD_CFG = {
    "f32": {"128x128": (128, 128, 16, 256, 3), "64x64": (64, 64, 16, 256, 3)},
    "tf32": {"128x128": (128, 128, 16, 256, 4), "64x64": (64, 64, 16, 128, 4)},
    "f64": {"64x64": (64, 64, 16, 256, 2)},
}
# narrow gather kernels (ncols <= NC): kind -> [(NC, MT)], smallest NC first; 256 threads, KC = 64
_NARROW = {
    "f32": [(1, 1), (2, 4), (3, 4), (4, 4), (8, 2)],
    "f64": [(1, 1), (4, 2), (8, 1)],
}
_NARROW_NT, _NARROW_KC = 256, 64
_SMEM_LIMIT_SET: set = set()
# tf32 forward kernels with 16-byte weight copies (..._vb) when C*R*S % 4 == 0; a switch for
# the benchmark's A/B comparison (benchmarks/bench_kernels.py --ab-vector-b)
_VECTOR_B = True
# backward-data's stride-2 4x4 narrow kernel; a switch for the benchmark's --ab-s2k4
_S2K4 = True


def _smem_bytes(kind, BM, BN, BK, ST, gather=False):
    """Dynamic shared memory of a tiled kernel (mirrors SMEM_A / SMEM_B in kernels/igemm.cuh):
    ST stages of A (BK x (BM + pad)) and B (BK x (BN + pad)), pad 4 words for the FMA cores
    and 8 for the tf32 core; the tf32 gather core uses A pitch BM + 4 and an n-major
    B (BN x (BK + 8))."""
    item = 8 if kind == "f64" else 4
    if kind == "tf32" and gather:
        return ST * (BK * (BM + 4) + BN * (BK + 8)) * item
    pad = 8 if kind == "tf32" else 4
    return ST * BK * ((BM + pad) + (BN + pad)) * item


def _pick_narrow(kind, ncols):
    """(NC, MT) of the narrow gather kernel for ``ncols`` output columns, or None."""
    for nc, mt in _NARROW["f64" if kind == "f64" else "f32"]:
        if ncols <= nc:
            return nc, mt
    return None


def _pick_gather(kind, ncols):
    if kind == "f64":
        return "64x64"
    if ncols <= 64:
        return "128x64"
    return "128x128"


def _pick_wgrad(kind, K, CRS):
    if kind == "f64" or K <= 64 or CRS <= 64:
        return "64x64"
    return "128x128"


def _splits(blocks, gk_max, bk, out_size, itemsize):
    """How many GEMM_K ranges (split-K) to give each output tile; see _split_count."""
    return _split_count(int(blocks), int(gk_max), int(bk), int(out_size) * int(itemsize),
                        sm_count())


@functools.lru_cache(maxsize=4096)
def _split_count(blocks, gk_max, bk, out_bytes, sms, per_sm=2):
    """Split-K factor s for the wave-quantised time t(s) = ceil(blocks*s / slots) / s, with
    slots = per_sm * sms resident blocks (the tiled kernels run 2 per SM): the smallest s
    whose t is within 10% of the best t, since every extra split writes and re-reads
    another output-sized workspace slice. Each split keeps >= 8 BK-slices and the
    workspace stays under _MAX_WORKSPACE_BYTES."""
    if gk_max <= 0 or blocks <= 0:
        return 1
    slots = per_sm * sms
    s_max = max(1, gk_max // (8 * bk))
    s_max = min(s_max, max(1, _MAX_WORKSPACE_BYTES // max(1, out_bytes)))
    t = [math.ceil(blocks * s / slots) / s for s in range(1, s_max + 1)]
    t_min = min(t)
    return next(s for s, ts in enumerate(t, 1) if ts <= 1.1 * t_min)


# ------------------------------------------------------------------ index tables
# Every phase's segment of tabA / tabB is followed by _TAB_PAD sentinel entries (tabA .y =
# -2^30: out of bounds; tabB = -1): the tiled kernels read whole BK-wide slices (BK <= 32)
# past the end of a phase's GEMM_K without a k < GEMM_K test.
_TAB_PAD = 64
_SENTINEL_A = (0, -(1 << 30), 0, 0)


def forward_tables_np(N, C, H, W, R, S, P, Q, dil):
    """Host tables of the forward gather: (tabA (CRS + pad, 4), tabB (CRS + pad,), phases (1, 8))."""
    dh, dw = dil
    c, r, s = np.meshgrid(np.arange(C), np.arange(R), np.arange(S), indexing="ij")
    c, r, s = c.ravel(), r.ravel(), s.ravel()
    tab_a = np.stack([c * H * W + r * dh * W + s * dw, r * dh, s * dw, np.zeros_like(c)], 1)
    tab_a = np.concatenate([tab_a, np.tile(_SENTINEL_A, (_TAB_PAD, 1))])
    tab_b = np.concatenate([np.arange(C * R * S), np.full(_TAB_PAD, -1)])
    phases = np.array([[0, 0, P, Q, 0, C * R * S, N * P * Q, 0]])
    return tab_a.astype(np.int32), tab_b.astype(np.int32), phases.astype(np.int32)


def _device_tables(key, build):
    t = _TABLES.get(key)
    if t is None:
        cp = cupy()
        tab_a, tab_b, phases = build()
        t = (cp.asarray(tab_a), cp.asarray(tab_b), cp.asarray(phases),
             [int(v) for v in phases[:, 5]], [int(v) for v in phases[:, 6]])
        _TABLES[key] = t
    return t


def _forward_tables(N, C, H, W, R, S, P, Q, dil):
    return _device_tables(("fwd", N, C, H, W, R, S, P, Q, dil),
                          lambda: forward_tables_np(N, C, H, W, R, S, P, Q, dil))


def _phase_taps(first, pad, n_taps, dil, stride):
    """Valid taps r of a phase (output rows first + i*stride) and their offsets dr."""
    taps, offs = [], []
    for r in range(n_taps):
        num = first + pad - r * dil
        if num % stride == 0:
            taps.append(r)
            offs.append(num // stride)
    return taps, offs


def backward_data_tables_np(N, C, H, W, K, R, S, P, Q, stride, padding, dil):
    """Host tables of the phase-split backward-data gather (see kernels/conv2d_bwd_data.cu)."""
    sh, sw = stride
    ph, pw = padding
    dh, dw = dil
    rows_a, rows_b, phases = [], [], []
    off = 0
    for a_h in range(sh):
        h0 = (a_h - ph) % sh
        if h0 >= H:
            continue
        Hp = (H - h0 + sh - 1) // sh
        rt, rd = _phase_taps(h0, ph, R, dh, sh)
        for a_w in range(sw):
            w0 = (a_w - pw) % sw
            if w0 >= W:
                continue
            Wp = (W - w0 + sw - 1) // sw
            st, sd = _phase_taps(w0, pw, S, dw, sw)
            gk = K * len(rt) * len(st)
            for k in range(K):
                for r, dr in zip(rt, rd):
                    for s, ds in zip(st, sd):
                        rows_a.append((k * P * Q + dr * Q + ds, dr, ds, 0))
                        rows_b.append(k * C * R * S + r * S + s)
            phases.append((h0, w0, Hp, Wp, off, gk, N * Hp * Wp, 0))
            rows_a.extend([_SENTINEL_A] * _TAB_PAD)
            rows_b.extend([-1] * _TAB_PAD)
            off += gk + _TAB_PAD
    if not rows_a:   # no phase at all: keep the pointers valid
        rows_a.append(_SENTINEL_A)
        rows_b.append(-1)
    return (np.array(rows_a, dtype=np.int32), np.array(rows_b, dtype=np.int32),
            np.array(phases, dtype=np.int32).reshape(-1, 8))


def _backward_data_tables(N, C, H, W, K, R, S, P, Q, stride, padding, dil):
    return _device_tables(("bwd_data", N, C, H, W, K, R, S, P, Q, stride, padding, dil),
                          lambda: backward_data_tables_np(N, C, H, W, K, R, S, P, Q, stride,
                                                          padding, dil))


# ------------------------------------------------------------------ launch plans
# A plan holds everything a call computes from shapes alone (kernel function, grid, shared
# memory, split-K factor, the int32 parameter array, the index tables), cached per
# (pass, shapes, dtype, geometry, precision, device, alignment), so that a repeated call
# does only the launch: the host's per-call work is what the benchmark's eager timing
# adds to the kernels' own time (benchmarks/KERNEL_NOTES.md, v15).
_PLANS: dict = {}
_FUNCS: dict = {}


class _Plan:
    """One kernel launch (plus the split-K reduction when splits > 1)."""
    __slots__ = ("fn", "grid", "block", "smem", "pre", "ints", "splits", "rfn", "rgrid", "rints",
                 "zero")

    def __init__(self, fn=None, grid=None, block=None, smem=0, pre=(), ints=(), splits=1,
                 reduce=None, zero=False):
        self.fn, self.grid, self.block, self.smem = fn, grid, block, smem
        self.pre, self.ints, self.splits, self.zero = tuple(pre), tuple(ints), int(splits), zero
        self.rfn = self.rgrid = self.rints = None
        if reduce is not None:               # (module, output size, dtype suffix)
            module, n, suffix = reduce
            self.rfn = _function(module, f"{module}_reduce_{suffix}")
            self.rgrid = (min(math.ceil(n / 256), 8 * sm_count()),)
            self.rints = (np.int32(n), np.int32(splits))

    def run(self, a, b, dst):
        """Launch with operands a, b into dst (C-contiguous, the planned shape and dtype)."""
        if self.zero:
            dst[...] = 0
            return dst
        out = dst if self.splits == 1 else \
            cupy().empty((self.splits,) + dst.shape, dtype=dst.dtype)
        self.fn(self.grid, self.block, (a, b, out) + self.pre + self.ints, shared_mem=self.smem)
        if self.splits > 1:
            self.rfn(self.rgrid, (256,), (out, dst) + self.rints)
        return dst


def _function(module, name, smem=0):
    """The kernel function (looked up once), its dynamic shared-memory limit raised to smem
    when that is over the default 48 KB."""
    key = (cupy().cuda.runtime.getDevice(), module, name)
    fn = _FUNCS.get(key)
    if fn is None:
        fn = _FUNCS[key] = get_function(module, name)
    if smem > 48 * 1024 and key not in _SMEM_LIMIT_SET:
        fn.max_dynamic_shared_size_bytes = smem
        _SMEM_LIMIT_SET.add(key)
    return fn


def _gather_plan(module, kind, wgt_aligned16, tables, ncols, src_geom, dst_geom, ldb, dst_size,
                 itemsize):
    """Plan of the gather kernel of ``module`` ('conv2d_fwd' or 'conv2d_bwd_data')."""
    tab_a, tab_b, phases, gks, mps = tables
    nphase = len(mps)
    if nphase == 0 or dst_size == 0:
        return _Plan(zero=True)
    narrow = _pick_narrow(kind, ncols)
    if narrow is not None:
        nc, mt = narrow
        BM, BN, BK, NT, smem = _NARROW_NT * mt, nc, _NARROW_KC // 4, _NARROW_NT, 0
        name = f"{module}_{'f64' if kind == 'f64' else 'f32'}_nc{nc}_mt{mt}"
    else:
        cfg = _pick_gather(kind, ncols)
        BM, BN, BK, NT, ST = _GATHER_CFG[kind][cfg]
        smem = _smem_bytes(kind, BM, BN, BK, ST, gather=True)
        name = f"{module}_{kind}_{cfg}"
        if (kind == "tf32" and module == "conv2d_fwd" and _VECTOR_B and ldb % 4 == 0
                and wgt_aligned16):
            name += "_vb"   # B = w[k*CRS + kk] is k-contiguous: 16-byte weight copies
    n_tiles = math.ceil(ncols / BN)
    blocks = n_tiles * sum(math.ceil(m / BM) for m in mps)
    splits = _splits(blocks, max(gks), BK, dst_size, itemsize)
    grid = (math.ceil(max(mps) / BM), n_tiles, nphase * splits)
    prm = _params(tuple(src_geom) + (ldb, ncols) + tuple(dst_geom) + (splits, dst_size))
    suffix = "f64" if kind == "f64" else "f32"
    return _Plan(_function(module, name, smem), grid, (NT,), smem, (tab_a, tab_b, phases, prm),
                 (), splits, reduce=(module, dst_size, suffix) if splits > 1 else None)


def _params(values):
    """The kernel's geometry integers as one int32 device array (prm in kernels/igemm.cuh)."""
    return cupy().asarray(np.array(values, dtype=np.int32))


# Repeated calls with out=None skip the argument checks (done on the first call of the key,
# whose shapes, dtypes and geometry a hit repeats): (pass, raw arguments, settings) ->
# (plan, output shape).
_FAST: dict = {}


def _fast_key(op, a, b, extra, stride, padding, dilation, out):
    """The _FAST key of a call, or None where the call must take the checked path (an out=
    array, non-CuPy or non-contiguous operands, unhashable arguments)."""
    cp = cupy()
    if out is not None or type(a) is not cp.ndarray or type(b) is not cp.ndarray or not a.flags.c_contiguous \
            or not b.flags.c_contiguous:
        return None
    key = (op, a.shape, b.shape, a.dtype, b.dtype, extra, stride, padding, dilation,
           get_conv_algorithm(), get_conv_precision(), _VECTOR_B, _S2K4, b.data.ptr % 16 == 0,
           cp.cuda.runtime.getDevice())
    try:
        hash(key)
    except TypeError:          # list arguments: the full path normalises them
        return None
    return key


def _fast_run(key, a, b):
    hit = _FAST.get(key) if key is not None else None
    if hit is None:
        return None
    plan, shape = hit
    return plan.run(a, b, cupy().empty(shape, dtype=a.dtype))


def _run_planned(key, build, fast, a, b, dst):
    """Run the plan of ``key`` (built on first use) into dst, and remember it under the
    call's fast key. dst is fresh from cp.empty whenever fast is set, so the alignment a
    plan was chosen for (16-byte weights, 8-byte s2k4 outputs) holds on every fast hit."""
    plan = _cached_plan(key, build)
    if fast is not None:
        _FAST[fast] = (plan, dst.shape)
    return plan.run(a, b, dst)


def _cached_plan(key, build):
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = build()
    return plan


def _check_int32(*sizes):
    for s in sizes:
        if s >= 2 ** 31:
            raise ValueError(f"scratchgan.cuda.conv: tensor of {s} elements is too large for the "
                             "32-bit indexing of the kernels")


def s2k4_narrow_applies(dx, K, R, S, P, Q, stride, padding, dilation):
    """Whether backward-data runs ``conv2d_bwd_data_s2k4_f32_c<C>`` (kernels/conv2d_bwd_data.cu):
    float32 (fp32 or tf32 mode), C <= 4 channels, 4x4 taps, stride 2, padding 1, dilation 1 and
    H = 2P, W = 2Q (the image-side layers of the DCGAN), dx 8-byte aligned (float2 stores)."""
    N, C, H, W = dx.shape
    return (dx.dtype == np.float32 and 1 <= C <= 4 and (R, S) == (4, 4) and stride == (2, 2)
            and padding == (1, 1) and dilation == (1, 1) and (H, W) == (2 * P, 2 * Q)
            and N * P * Q > 0 and K > 0 and dx.data.ptr % 8 == 0)


# ------------------------------------------------------------------ dense windows
def _dense_window(H, W, R, S, P, Q, padding, dilation):
    """True when the window covers the whole unpadded input once (one output position,
    R = H, S = W, no padding, no dilation): DCGAN's 7x7 / 4x4 projections from and to a
    1x1 map. Then every tap is used exactly once and the convolution is one dense GEMM
    over C*R*S, which the primitives below run as a 1x1 convolution of one-pixel images
    ``(N, C*R*S, 1, 1)`` instead of gathering R*S taps of which most fall outside."""
    return (P == 1 and Q == 1 and R == H and S == W and R * S > 1
            and _hw(padding, "padding") == (0, 0) and _hw(dilation, "dilation") == (1, 1))


def _flat_out(out, shape):
    return None if out is None else out.reshape(shape)


# ------------------------------------------------------------------ one output channel
def _single_output(H, W, R, S, K, padding):
    """A 1x1 convolution of one-pixel images with one output channel (a dense layer's
    last unit, e.g. D's logit): its GEMMs are a matrix-vector product, a column sum and
    an outer product, run by ``kernels/gemv.cu`` (unless the im2col + cuBLAS comparison
    path is selected)."""
    return (H == W == R == S == 1 and K == 1 and _hw(padding, "padding") == (0, 0)
            and get_conv_algorithm() == "implicit_gemm")


def _gemv(name, grid, args, dtype):
    _function("gemv", f"{name}_{'f64' if np.dtype(dtype) == np.float64 else 'f32'}")(
        grid, (256,), args)


# ------------------------------------------------------------------ public primitives
def conv2d_forward(x, w, stride, padding, dilation, out=None):
    """``y[n,k,p,q] = sum_{c,r,s} w[k,c,r,s] x[n,c,p*sh-ph+r*dh,q*sw-pw+s*dw]`` (zero padding)."""
    if x.ndim == 4 and w.ndim == 4 and x.shape[2:] == w.shape[2:] and _dense_window(
            x.shape[2], x.shape[3], w.shape[2], w.shape[3], 1, 1, padding, dilation):
        N, K = x.shape[0], w.shape[0]
        crs = int(np.prod(w.shape[1:]))
        return conv2d_forward(contiguous(x).reshape(N, crs, 1, 1),
                              contiguous(w).reshape(K, crs, 1, 1), 1, 0, 1, out=out)
    if x.ndim == 4 and w.ndim == 4 and _single_output(x.shape[2], x.shape[3], w.shape[2],
                                                      w.shape[3], w.shape[0], padding):
        _check(x, "x")
        _check(w, "w")
        N, C = x.shape[:2]
        if w.shape[1] != C or x.dtype != w.dtype:
            raise ValueError(f"scratchgan.cuda.conv: x {tuple(x.shape)} {x.dtype} and w "
                             f"{tuple(w.shape)} {w.dtype} do not match")
        _check_int32(x.size)
        y = check_out(out, (N, 1, 1, 1), x.dtype, "conv2d_forward")
        _gemv("gemv_rows", (N,), (contiguous(x), contiguous(w), y, np.int32(C)), x.dtype)
        return y
    fast = _fast_key("fwd", x, w, None, stride, padding, dilation, out)
    y = _fast_run(fast, x, w)
    if y is not None:
        return y
    _check(x, "x")
    _check(w, "w")
    stride, padding, dilation = _hw(stride, "stride"), _hw(padding, "padding"), _hw(dilation, "dilation")
    N, C, H, W = x.shape
    K, Cw, R, S = w.shape
    if Cw != C or x.dtype != w.dtype:
        raise ValueError(f"scratchgan.cuda.conv: x {tuple(x.shape)} {x.dtype} and w "
                         f"{tuple(w.shape)} {w.dtype} do not match")
    P = _out_len(H, R, stride[0], padding[0], dilation[0])
    Q = _out_len(W, S, stride[1], padding[1], dilation[1])
    if P < 1 or Q < 1:
        raise ValueError(f"scratchgan.cuda.conv: output size {(P, Q)} for input {(H, W)}")
    y = check_out(out, (N, K, P, Q), x.dtype, "conv2d_forward")
    if get_conv_algorithm() == "im2col_cublas":
        y[...] = _im2col_forward(x, w, stride, padding, dilation, P, Q)
        return y
    x, w = contiguous(x), contiguous(w)
    kind, aligned = _kind(x.dtype), w.data.ptr % 16 == 0
    key = ("fwd", x.shape, w.shape, kind, stride, padding, dilation, _VECTOR_B, aligned,
           cupy().cuda.runtime.getDevice())

    def build():
        _check_int32(x.size, y.size * 64)
        tables = _forward_tables(N, C, H, W, R, S, P, Q, dilation)
        src_geom = (C * H * W, H, W, stride[0], stride[1], -padding[0], -padding[1])
        dst_geom = (K * P * Q, P * Q, Q, 1, 1)
        return _gather_plan("conv2d_fwd", kind, aligned, tables, K, src_geom, dst_geom,
                            C * R * S, y.size, y.itemsize)
    return _run_planned(key, build, fast, x, w, y)


def conv2d_backward_data(dy, w, x_shape, stride, padding, dilation, out=None):
    """``dx[n,c,h,v] = sum w[k,c,r,s] dy[n,k,p,q]`` over h = p*sh-ph+r*dh, v = q*sw-pw+s*dw."""
    if dy.ndim == 4 and w.ndim == 4 and len(x_shape) == 4 and _dense_window(
            int(x_shape[2]), int(x_shape[3]), w.shape[2], w.shape[3], dy.shape[2], dy.shape[3],
            padding, dilation) and tuple(x_shape[2:]) == tuple(w.shape[2:]):
        N, K = dy.shape[0], w.shape[0]
        crs = int(np.prod(w.shape[1:]))
        dx = conv2d_backward_data(contiguous(dy), contiguous(w).reshape(K, crs, 1, 1),
                                  (N, crs, 1, 1), 1, 0, 1, out=_flat_out(out, (N, crs, 1, 1)))
        return dx.reshape(tuple(int(v) for v in x_shape))
    if dy.ndim == 4 and w.ndim == 4 and len(x_shape) == 4 and _single_output(
            int(x_shape[2]), int(x_shape[3]), w.shape[2], w.shape[3], w.shape[0], padding):
        _check(dy, "dy")
        _check(w, "w")
        N, C = int(x_shape[0]), int(x_shape[1])
        if w.shape[1] != C or tuple(dy.shape) != (N, 1, 1, 1) or dy.dtype != w.dtype:
            raise ValueError(f"scratchgan.cuda.conv: dy {tuple(dy.shape)}, w {tuple(w.shape)} "
                             f"and x_shape {tuple(x_shape)} do not match")
        _check_int32(N * C)
        dx = check_out(out, (N, C, 1, 1), dy.dtype, "conv2d_backward_data")
        _gemv("gemv_outer", (max(1, min(math.ceil(N * C / 256), 16 * sm_count())),),
              (contiguous(dy), contiguous(w), dx, np.int32(N), np.int32(C)), dy.dtype)
        return dx
    fast = _fast_key("bwd_data", dy, w, tuple(x_shape), stride, padding, dilation, out)
    dx = _fast_run(fast, dy, w)
    if dx is not None:
        return dx
    _check(dy, "dy")
    _check(w, "w")
    stride, padding, dilation = _hw(stride, "stride"), _hw(padding, "padding"), _hw(dilation, "dilation")
    N, C, H, W = (int(v) for v in x_shape)
    K, Cw, R, S = w.shape
    P, Q = dy.shape[2:]
    if Cw != C or dy.shape[:2] != (N, K) or dy.dtype != w.dtype:
        raise ValueError(f"scratchgan.cuda.conv: dy {tuple(dy.shape)}, w {tuple(w.shape)} and "
                         f"x_shape {tuple(x_shape)} do not match")
    dx = check_out(out, (N, C, H, W), dy.dtype, "conv2d_backward_data")
    if get_conv_algorithm() == "im2col_cublas":
        dx[...] = _im2col_backward_data(dy, w, (N, C, H, W), stride, padding, dilation)
        return dx
    dy, w = contiguous(dy), contiguous(w)
    kind = _kind(dy.dtype)
    s2k4 = _S2K4 and s2k4_narrow_applies(dx, K, R, S, P, Q, stride, padding, dilation)
    key = ("bwd_data", dy.shape, w.shape, (H, W), kind, stride, padding, dilation, s2k4,
           cupy().cuda.runtime.getDevice())

    def build():
        _check_int32(dy.size, dx.size * 64)
        if s2k4:
            i32 = np.int32
            return _Plan(_function("conv2d_bwd_data", f"conv2d_bwd_data_s2k4_f32_c{C}"),
                         (math.ceil(N * P * Q / 256),), (256,), 0, (),
                         (i32(N), i32(K), i32(P), i32(Q)))
        tables = _backward_data_tables(N, C, H, W, K, R, S, P, Q, stride, padding, dilation)
        src_geom = (K * P * Q, P, Q, 1, 1, 0, 0)
        dst_geom = (C * H * W, H * W, W, stride[0], stride[1])
        return _gather_plan("conv2d_bwd_data", kind, False, tables, C, src_geom, dst_geom,
                            R * S, dx.size, dx.itemsize)
    return _run_planned(key, build, fast, dy, w, dx)


def conv2d_backward_filter(x, dy, w_shape, stride, padding, dilation, out=None):
    """``dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] x[n,c,p*sh-ph+r*dh,q*sw-pw+s*dw]``."""
    if x.ndim == 4 and dy.ndim == 4 and len(w_shape) == 4 and _dense_window(
            x.shape[2], x.shape[3], int(w_shape[2]), int(w_shape[3]), dy.shape[2], dy.shape[3],
            padding, dilation) and tuple(x.shape[2:]) == tuple(int(v) for v in w_shape[2:]):
        N, K = x.shape[0], int(w_shape[0])
        crs = int(np.prod([int(v) for v in w_shape[1:]]))
        dw = conv2d_backward_filter(contiguous(x).reshape(N, crs, 1, 1), contiguous(dy),
                                    (K, crs, 1, 1), 1, 0, 1, out=_flat_out(out, (K, crs, 1, 1)))
        return dw.reshape(tuple(int(v) for v in w_shape))
    if x.ndim == 4 and dy.ndim == 4 and len(w_shape) == 4 and _single_output(
            x.shape[2], x.shape[3], int(w_shape[2]), int(w_shape[3]), int(w_shape[0]), padding):
        _check(x, "x")
        _check(dy, "dy")
        N, C = x.shape[:2]
        if int(w_shape[1]) != C or tuple(dy.shape) != (N, 1, 1, 1) or dy.dtype != x.dtype:
            raise ValueError(f"scratchgan.cuda.conv: x {tuple(x.shape)}, dy {tuple(dy.shape)} "
                             f"and w_shape {tuple(w_shape)} do not match")
        _check_int32(x.size)
        dw = check_out(out, (1, C, 1, 1), x.dtype, "conv2d_backward_filter")
        _gemv("gemv_cols", (math.ceil(C / 256),),
              (contiguous(x), contiguous(dy), dw, np.int32(N), np.int32(C)), x.dtype)
        return dw
    fast = _fast_key("bwd_filter", x, dy, tuple(w_shape), stride, padding, dilation, out)
    dw = _fast_run(fast, x, dy)
    if dw is not None:
        return dw
    _check(x, "x")
    _check(dy, "dy")
    stride, padding, dilation = _hw(stride, "stride"), _hw(padding, "padding"), _hw(dilation, "dilation")
    N, C, H, W = x.shape
    K, Cw, R, S = (int(v) for v in w_shape)
    P, Q = dy.shape[2:]
    if Cw != C or dy.shape[:2] != (N, K) or dy.dtype != x.dtype:
        raise ValueError(f"scratchgan.cuda.conv: x {tuple(x.shape)}, dy {tuple(dy.shape)} and "
                         f"w_shape {tuple(w_shape)} do not match")
    dw = check_out(out, (K, C, R, S), x.dtype, "conv2d_backward_filter")
    if get_conv_algorithm() == "im2col_cublas":
        dw[...] = _im2col_backward_filter(x, dy, (K, C, R, S), stride, padding, dilation)
        return dw
    x, dy = contiguous(x), contiguous(dy)
    kind = _kind(x.dtype)
    key = ("bwd_filter", x.shape, dy.shape, (K, R, S), kind, stride, padding, dilation,
           cupy().cuda.runtime.getDevice())

    def build():
        _check_int32(x.size, dy.size)
        cfg = _pick_wgrad(kind, K, C * R * S)
        BM, BN, BK, NT, ST = _WGRAD_CFG[kind][cfg]
        tiles = (math.ceil(C * R * S / BN), math.ceil(K / BM))
        splits = _splits(tiles[0] * tiles[1], N * P * Q, BK, dw.size, dw.itemsize)
        smem = _smem_bytes(kind, BM, BN, BK, ST)
        prm = _params((N, C, H, W, K, R, S, P, Q, stride[0], stride[1], padding[0], padding[1],
                       dilation[0], dilation[1], splits))
        return _Plan(_function("conv2d_bwd_filter", f"conv2d_bwd_filter_{kind}_{cfg}", smem),
                     tiles + (splits,), (NT,), smem, (prm,), (), splits,
                     reduce=("conv2d_bwd_filter", dw.size, "f64" if kind == "f64" else "f32")
                     if splits > 1 else None)
    return _run_planned(key, build, fast, x, dy, dw)


# ------------------------------------------------------------------ im2col + cuBLAS comparison path
class _cublas_precision:
    """Run CuPy's matmul with TF32 tensor cores when the conv precision is 'tf32'."""

    def __init__(self, dtype):
        self.on = np.dtype(dtype) == np.float32 and get_conv_precision() == "tf32"
        self.prev = None

    def __enter__(self):
        if self.on:
            try:
                from cupy._core import _routines_linalg as rl
                self.prev = rl.get_compute_type(np.float32)
                rl.set_compute_type(np.float32, rl.COMPUTE_TYPE_TF32)
            except Exception:
                self.on = False
        return self

    def __exit__(self, *exc):
        if self.on and self.prev is not None:
            from cupy._core import _routines_linalg as rl
            rl.set_compute_type(np.float32, self.prev)
        return False


def _im2col(x, R, S, stride, padding, dilation, P, Q):
    """(C*R*S, N*P*Q) column matrix (a real buffer: this is the comparison path)."""
    cp = cupy()
    N, C, H, W = x.shape
    xp_ = cp.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    sn, sc, sh_, sw_ = xp_.strides
    view = cp.lib.stride_tricks.as_strided(
        xp_, shape=(C, R, S, N, P, Q),
        strides=(sc, sh_ * dilation[0], sw_ * dilation[1], sn, sh_ * stride[0], sw_ * stride[1]))
    return view.reshape(C * R * S, N * P * Q)


def _im2col_forward(x, w, stride, padding, dilation, P, Q):
    N = x.shape[0]
    K, C, R, S = w.shape
    cols = _im2col(x, R, S, stride, padding, dilation, P, Q)
    with _cublas_precision(x.dtype):
        y = w.reshape(K, C * R * S) @ cols
    return y.reshape(K, N, P, Q).transpose(1, 0, 2, 3)


def _im2col_backward_data(dy, w, x_shape, stride, padding, dilation):
    cp = cupy()
    N, C, H, W = x_shape
    K, _, R, S = w.shape
    P, Q = dy.shape[2:]
    dy2 = dy.transpose(1, 0, 2, 3).reshape(K, N * P * Q)
    with _cublas_precision(dy.dtype):
        dcols = (w.reshape(K, C * R * S).T @ dy2).reshape(C, R, S, N, P, Q)
    ph, pw = padding
    dxp = cp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    for r in range(R):
        h0 = r * dilation[0]
        for s in range(S):
            w0 = s * dilation[1]
            dxp[:, :, h0:h0 + stride[0] * (P - 1) + 1:stride[0],
                w0:w0 + stride[1] * (Q - 1) + 1:stride[1]] += dcols[:, r, s].transpose(1, 0, 2, 3)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def _im2col_backward_filter(x, dy, w_shape, stride, padding, dilation):
    K, C, R, S = w_shape
    N = x.shape[0]
    P, Q = dy.shape[2:]
    cols = _im2col(x, R, S, stride, padding, dilation, P, Q)
    dy2 = dy.transpose(1, 0, 2, 3).reshape(K, N * P * Q)
    with _cublas_precision(x.dtype):
        dw = dy2 @ cols.T
    return dw.reshape(w_shape)
