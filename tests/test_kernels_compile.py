"""CUDA kernel sources: they compile with nvcc, and their host-side index maps are right.

Not GPU-marked. The compile tests need nvcc on PATH (skipped otherwise). The
emulation tests replay, in NumPy, exactly what the gather kernels compute from
the index tables of scratchgan.cuda.conv (one GEMM per stride phase, zero
outside the source image) and compare with the naive float64 references of
scratchgan.ops.conv, so the table logic is checked on every machine.
"""
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from scratchgan.cuda import conv as gconv
from scratchgan.ops.conv import conv2d_backward_naive, conv2d_forward_naive

KERNELS = pathlib.Path(__file__).resolve().parents[1] / "kernels"
CU_FILES = sorted(KERNELS.glob("*.cu"))


def test_kernel_files_present():
    names = {p.name for p in CU_FILES}
    for n in ("conv2d_fwd.cu", "conv2d_bwd_data.cu", "conv2d_bwd_filter.cu", "batchnorm.cu",
              "bias_act.cu"):
        assert n in names


@pytest.mark.parametrize("path", CU_FILES, ids=[p.name for p in CU_FILES])
def test_kernel_compiles(path, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not on PATH: kernel compilation not checked on this machine")
    out = tmp_path / (path.stem + ".cubin")
    res = subprocess.run([nvcc, "-arch=sm_90", "-std=c++17", "-cubin", "-o", str(out), str(path)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0


def _emulate_gather(src, wgt, dst_shape, tabs, ncols, src_geom, dst_geom, ldb):
    """NumPy replay of gather_gemm (kernels/igemm.cuh) for every phase."""
    tab_a, tab_b, phases = tabs
    src_nstride, Hs, Ws, ms_h, ms_w, off_h, off_w = src_geom
    dst_nstride, dst_cstride, Wd, os_h, os_w = dst_geom
    dst = np.full(int(np.prod(dst_shape)), np.nan)
    sflat, wflat = src.ravel(), wgt.ravel()
    for h_first, w_first, Hp, Wp, toff, gk, mp, _ in phases:
        m = np.arange(mp)
        n, ij = m // (Hp * Wp), m % (Hp * Wp)
        i, j = ij // Wp, ij % Wp
        hs, ws = i * ms_h + off_h, j * ms_w + off_w
        base = n * src_nstride + hs * Ws + ws
        ta, tb = tab_a[toff:toff + gk], tab_b[toff:toff + gk]
        hh, ww = hs[:, None] + ta[None, :, 1], ws[:, None] + ta[None, :, 2]
        ok = (hh >= 0) & (hh < Hs) & (ww >= 0) & (ww < Ws)
        A = np.where(ok, sflat[np.where(ok, base[:, None] + ta[None, :, 0], 0)], 0.0)
        B = wflat[tb[:, None] + np.arange(ncols)[None, :] * ldb]
        C = A @ B
        row = n * dst_nstride + (h_first + i * os_h) * Wd + (w_first + j * os_w)
        dst[row[:, None] + np.arange(ncols)[None, :] * dst_cstride] = C
    return dst.reshape(dst_shape)


GRID = [  # (N, C, H, W, K, R, S, stride, padding, dilation)
    (1, 3, 7, 6, 5, 3, 3, (1, 1), (1, 1), (1, 1)),
    (2, 2, 9, 8, 3, 4, 4, (2, 2), (1, 1), (1, 1)),
    (1, 4, 8, 11, 2, 3, 2, (3, 2), (2, 0), (2, 1)),
    (2, 3, 5, 5, 4, 1, 1, (3, 3), (0, 0), (1, 1)),    # stride > kernel: empty phases
    (1, 2, 10, 9, 3, 3, 3, (2, 3), (2, 1), (2, 2)),
    (2, 1, 6, 7, 2, 2, 3, (1, 2), (0, 2), (1, 2)),
]


@pytest.mark.parametrize("case", GRID)
def test_gather_tables_match_naive(case):
    N, C, H, W, K, R, S, stride, padding, dil = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, R, S))
    P = (H + 2 * padding[0] - dil[0] * (R - 1) - 1) // stride[0] + 1
    Q = (W + 2 * padding[1] - dil[1] * (S - 1) - 1) // stride[1] + 1
    y_ref = conv2d_forward_naive(x, w, None, stride, padding, dil)
    tabs = gconv.forward_tables_np(N, C, H, W, R, S, P, Q, dil)
    y = _emulate_gather(x, w, (N, K, P, Q), tabs, K,
                        (C * H * W, H, W, stride[0], stride[1], -padding[0], -padding[1]),
                        (K * P * Q, P * Q, Q, 1, 1), C * R * S)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)

    dy = rng.standard_normal((N, K, P, Q))
    dx_ref, _, _ = conv2d_backward_naive(dy, x, w, stride, padding, dil)
    tabs = gconv.backward_data_tables_np(N, C, H, W, K, R, S, P, Q, stride, padding, dil)
    dx = _emulate_gather(dy, w, (N, C, H, W), tabs, C, (K * P * Q, P, Q, 1, 1, 0, 0),
                         (C * H * W, H * W, W, stride[0], stride[1]), R * S)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    # every output pixel belongs to exactly one phase, and no tap is wasted
    phases = tabs[2]
    assert phases[:, 6].sum() == N * H * W
    assert phases[:, 5].sum() <= K * R * S * max(1, len(phases))
