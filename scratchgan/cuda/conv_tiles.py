"""Tile configurations, kernel pickers, the split-K heuristic and the A/B switches of the
GPU convolution (:mod:`scratchgan.cuda.conv`): everything that chooses which kernel runs and
how it is tiled, from shapes alone. No CuPy at import time.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .loader import sm_count

__all__ = ["s2k4_narrow_applies", "switches"]

_MAX_WORKSPACE_BYTES = 512 << 20


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


# ------------------------------------------------------------------ A/B switches
class _Switches:
    """The convolution's kernel switches for the benchmark's A/B comparisons
    (benchmarks/bench_kernels.py), one object: ``switches`` here, the same object as
    ``scratchgan.cuda.conv.switches``. The dispatch reads its attributes at every call
    (the launch plans' and fast path's keys include them), so setting one takes effect on
    the next call; an unknown name raises (``__slots__``)."""
    __slots__ = ("vector_b", "s2k4")

    def __init__(self):
        # tf32 forward kernels with 16-byte weight copies (..._vb) when C*R*S % 4 == 0; a switch
        # for the benchmark's A/B comparison (benchmarks/bench_kernels.py --ab-vector-b)
        self.vector_b = True
        # backward-data's stride-2 4x4 narrow kernel; a switch for the benchmark's --ab-s2k4
        self.s2k4 = True

    def __repr__(self):
        return f"switches(vector_b={self.vector_b}, s2k4={self.s2k4})"


switches = _Switches()


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



def _pick_gather_kernel(module, kind, ncols, ldb, wgt_aligned16):
    """Kernel name and tiling of the gather kernel of ``module`` ('conv2d_fwd' or
    'conv2d_bwd_data') for ``ncols`` output columns: (name, BM, BN, BK, threads, smem).
    Reads ``switches.vector_b`` at each call."""
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
        if (kind == "tf32" and module == "conv2d_fwd" and switches.vector_b and ldb % 4 == 0
                and wgt_aligned16):
            name += "_vb"   # B = w[k*CRS + kk] is k-contiguous: 16-byte weight copies
    return name, BM, BN, BK, NT, smem


def s2k4_narrow_applies(dx, K, R, S, P, Q, stride, padding, dilation):
    """Whether backward-data runs ``conv2d_bwd_data_s2k4_f32_c<C>`` (kernels/conv2d_bwd_data.cu):
    float32 (fp32 or tf32 mode), C <= 4 channels, 4x4 taps, stride 2, padding 1, dilation 1 and
    H = 2P, W = 2Q (the image-side layers of the DCGAN), dx 8-byte aligned (float2 stores)."""
    N, C, H, W = dx.shape
    return (dx.dtype == np.float32 and 1 <= C <= 4 and (R, S) == (4, 4) and stride == (2, 2)
            and padding == (1, 1) and dilation == (1, 1) and (H, W) == (2 * P, 2 * Q)
            and N * P * Q > 0 and K > 0 and dx.data.ptr % 8 == 0)



def _pick_s2k4(dx, K, R, S, P, Q, stride, padding, dilation):
    """Whether backward-data runs the stride-2 4x4 narrow kernel: ``switches.s2k4`` (read at
    each call) and :func:`s2k4_narrow_applies`."""
    return switches.s2k4 and s2k4_narrow_applies(dx, K, R, S, P, Q, stride, padding, dilation)


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

