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

Layout: this module holds the public primitives, their argument checks and the dense-window
and one-output-channel (GEMV) special cases; the rest lives in rooms of its own:

* :mod:`scratchgan.cuda.conv_tiles`: tile configurations, shared-memory sizes, the narrow /
  gather / wgrad / stride-2 4x4 pickers, the split-K heuristic, and ``switches``, the A/B
  switches of ``benchmarks/bench_kernels.py`` (``switches.vector_b``, ``switches.s2k4``;
  re-exported here as ``switches``, the same object, read at every call);
* :mod:`scratchgan.cuda.conv_tables`: the gather kernels' index tables (host builders
  ``forward_tables_np`` / ``backward_data_tables_np``, re-exported here) and their
  device-side cache;
* :mod:`scratchgan.cuda.conv_plans`: launch plans, the kernel-function cache, the plan cache
  and the fast path of repeated calls;
* :mod:`scratchgan.cuda.conv_im2col`: the im2col + cuBLAS comparison path.
"""
from __future__ import annotations

import math
import sys
import types

import numpy as np

from ..backend import cupy, get_conv_algorithm, get_conv_precision
from .conv_im2col import _im2col_backward_data, _im2col_backward_filter, _im2col_forward
from .conv_plans import _function, _gather_plan, _params, _Plan, _fast_key, _fast_run, _run_planned
from .conv_tables import (_backward_data_tables, _forward_tables, backward_data_tables_np,
                          forward_tables_np)
from .conv_tiles import (_WGRAD_CFG, _pick_s2k4, _pick_wgrad, _smem_bytes, _splits,
                         s2k4_narrow_applies, switches)
from .loader import check_out, contiguous, sm_count

__all__ = ["conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter",
           "s2k4_narrow_applies", "forward_tables_np", "backward_data_tables_np", "switches"]


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


def _check_int32(*sizes):
    for s in sizes:
        if s >= 2 ** 31:
            raise ValueError(f"scratchgan.cuda.conv: tensor of {s} elements is too large for the "
                             "32-bit indexing of the kernels")


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
    key = ("fwd", x.shape, w.shape, kind, stride, padding, dilation, switches.vector_b, aligned,
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
    s2k4 = _pick_s2k4(dx, K, R, S, P, Q, stride, padding, dilation)
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


# ------------------------------------------------------------------ moved switches
# The A/B switches were module-level names here (_VECTOR_B, _S2K4) until they moved to
# conv_tiles.switches; setting or reading the old names raises instead of silently making a
# name that the dispatch never reads.
_MOVED_SWITCHES = {"_VECTOR_B": "vector_b", "_S2K4": "s2k4"}


class _ConvModule(types.ModuleType):
    def __getattr__(self, name):
        if name in _MOVED_SWITCHES:
            raise AttributeError(f"scratchgan.cuda.conv.{name} moved: use "
                                 f"scratchgan.cuda.conv.switches.{_MOVED_SWITCHES[name]}")
        raise AttributeError(f"module 'scratchgan.cuda.conv' has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in _MOVED_SWITCHES:
            raise AttributeError(f"scratchgan.cuda.conv.{name} moved: set "
                                 f"scratchgan.cuda.conv.switches.{_MOVED_SWITCHES[name]} = "
                                 f"{value!r} instead")
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _ConvModule
