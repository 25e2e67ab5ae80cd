"""Index tables of the GPU convolution's gather kernels (:mod:`scratchgan.cuda.conv`): the
host builders (``forward_tables_np``, ``backward_data_tables_np``), their sentinels and
padding, and the device copies cached per shape. No CuPy at import time.
"""
from __future__ import annotations

import numpy as np

from ..backend import cupy

__all__ = ["forward_tables_np", "backward_data_tables_np"]

_TABLES: dict = {}


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

