"""GPU convolution kernels against float64 NumPy references (needs CuPy and a GPU).

Every check draws fresh random inputs (the seed is printed on failure), poisons
the output with NaN before the launch, and compares ||out - ref|| / ||ref||
with the float64 CPU path of scratchgan.ops.conv: <= 1e-5 for the FP32 kernels,
<= 5e-3 for TF32, <= 1e-12 for float64. Whole layers are gradient-checked on
the GPU in float64.
"""

import numpy as np
import pytest

try:
    import cupy as cp
except Exception:  # pragma: no cover - depends on the machine
    cp = None

from scratchgan.backend import set_conv_algorithm, set_conv_precision
from scratchgan.ops import conv as cpu_conv

pytestmark = pytest.mark.gpu

TOL = {"fp32": 1e-5, "tf32": 5e-3}


@pytest.fixture(autouse=True)
def _restore_settings():
    yield
    set_conv_precision("fp32")
    set_conv_algorithm("implicit_gemm")


def fresh_rng():
    seed = int(np.random.SeedSequence().entropy % (2 ** 32))
    return np.random.default_rng(seed), seed


def rel_err(out, ref):
    out = cp.asnumpy(out).astype(np.float64)
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-300))


def out_len(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def run_three(case, precision, dtype=np.float32, algorithm="implicit_gemm"):
    """Check forward, backward-data and backward-filter for one geometry."""
    from scratchgan.cuda import conv as gconv
    N, C, H, W, K, R, S, stride, pad, dil = case
    P, Q = out_len(H, R, stride[0], pad[0], dil[0]), out_len(W, S, stride[1], pad[1], dil[1])
    if P < 1 or Q < 1:
        pytest.skip("empty output")
    rng, seed = fresh_rng()
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, R, S))
    dy = rng.standard_normal((N, K, P, Q))
    set_conv_precision(precision)
    set_conv_algorithm(algorithm)
    tol = 1e-12 if dtype == np.float64 else TOL[precision]
    xd, wd, dyd = (cp.asarray(a.astype(dtype)) for a in (x, w, dy))
    refs = {
        "forward": cpu_conv.conv2d_core_forward(x, w, stride, pad, dil),
        "backward_data": cpu_conv.conv2d_core_backward_data(dy, w, x.shape, stride, pad, dil),
        "backward_filter": cpu_conv.conv2d_core_backward_filter(x, dy, w.shape, stride, pad, dil),
    }
    outs = {k: cp.full(v.shape, np.nan, dtype=dtype) for k, v in refs.items()}
    gconv.conv2d_forward(xd, wd, stride, pad, dil, out=outs["forward"])
    gconv.conv2d_backward_data(dyd, wd, x.shape, stride, pad, dil, out=outs["backward_data"])
    gconv.conv2d_backward_filter(xd, dyd, w.shape, stride, pad, dil, out=outs["backward_filter"])
    cp.cuda.Device().synchronize()
    for k, ref in refs.items():
        o = outs[k]
        assert not bool(cp.isnan(o).any()), f"{k}: unwritten (NaN) outputs, case {case}, seed {seed}"
        e = rel_err(o, ref)
        assert e <= tol, f"{k} {precision} {np.dtype(dtype)}: rel err {e:.3e} > {tol}, case {case}, seed {seed}"


SMALL = [(1, 3, 11, 9, 5, 3, 3), (2, 17, 8, 13, 70, 4, 2)]
GRID = [shape + ((s, s), (p, p), (d, d))
        for shape in SMALL for s in (1, 2, 3) for p in (0, 1, 2) for d in (1, 2)]
MIXED = [  # asymmetric hyper-parameters, big channel counts (128x128 tiles, split-K)
    (1, 5, 10, 7, 3, 3, 2, (2, 3), (2, 0), (1, 2)),
    (2, 64, 16, 16, 130, 4, 4, (2, 2), (1, 1), (1, 1)),
    (4, 100, 1, 1, 129, 4, 4, (1, 1), (0, 0), (1, 1)),   # 1x1 input, no padding (G's first layer shape)
    (8, 3, 32, 32, 64, 4, 4, (2, 2), (1, 1), (1, 1)),    # D's first layer shape, batch 8
    (16, 33, 9, 9, 1, 4, 4, (1, 1), (0, 0), (1, 1)),     # one output channel (D's last layer shape)
    (2, 7, 6, 6, 9, 1, 1, (3, 3), (0, 0), (1, 1)),       # stride > kernel: phases without taps
    # dense windows (R = H, S = W, no padding: one dense GEMM over C*R*S, run as 1x1)
    (16, 128, 7, 7, 1, 7, 7, (1, 1), (0, 0), (1, 1)),    # D's last layer at 28x28
    (8, 256, 7, 7, 100, 7, 7, (1, 1), (0, 0), (1, 1)),   # G's first layer at 28x28, as conv
    (3, 5, 4, 3, 6, 4, 3, (2, 2), (0, 0), (1, 1)),       # non-square, stride irrelevant
    (3, 5, 4, 4, 6, 4, 4, (1, 1), (1, 1), (1, 1)),       # near miss: padded, general path
    (3, 5, 7, 7, 6, 4, 4, (1, 1), (0, 0), (2, 2)),       # near miss: dilated, general path
    # one output channel of one-pixel images (kernels/gemv.cu): a dense layer's logit
    (5, 1000, 1, 1, 1, 1, 1, (1, 1), (0, 0), (1, 1)),
    (130, 7, 1, 1, 1, 1, 1, (2, 2), (0, 0), (1, 1)),
    (3, 5, 1, 1, 2, 1, 1, (1, 1), (0, 0), (1, 1)),       # near miss: two outputs, general path
]


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
@pytest.mark.parametrize("case", GRID + MIXED, ids=str)
def test_conv_kernels_fp32_tf32(case, precision):
    run_three(case, precision)


# backward-data's stride-2 4x4 narrow kernel (C <= 4, H = 2P, W = 2Q): odd P, Q, batch 1,
# K not a multiple of its 64-wide weight chunk, P = Q = 1; plus near misses that must take
# the general path (odd H, C = 5)
S2K4 = [(n, c, h, w, k, 4, 4, (2, 2), (1, 1), (1, 1)) for n, c, h, w, k in [
    (1, 1, 10, 14, 70), (3, 2, 6, 22, 64), (2, 3, 64, 64, 64), (1, 4, 2, 2, 130), (5, 3, 18, 6, 1)]]
S2K4_GENERAL = [(2, 3, 11, 10, 9, 4, 4, (2, 2), (1, 1), (1, 1)),
                (2, 5, 10, 10, 9, 4, 4, (2, 2), (1, 1), (1, 1))]


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
@pytest.mark.parametrize("case", S2K4 + S2K4_GENERAL, ids=str)
def test_backward_data_s2k4_narrow(case, precision):
    from scratchgan.cuda import conv as gconv
    N, C, H, W, K = case[:5]
    P, Q = out_len(H, 4, 2, 1, 1), out_len(W, 4, 2, 1, 1)
    dx = cp.empty((N, C, H, W), dtype=np.float32)
    assert gconv.s2k4_narrow_applies(dx, K, 4, 4, P, Q, (2, 2), (1, 1), (1, 1)) == (case in S2K4)
    run_three(case, precision)
    if case in S2K4:   # FP32 FMAs in both modes: the fp32 tolerance holds in tf32 mode too
        rng, seed = fresh_rng()
        w, dy = rng.standard_normal((K, C, 4, 4)), rng.standard_normal((N, K, P, Q))
        ref = cpu_conv.conv2d_core_backward_data(dy, w, (N, C, H, W), (2, 2), (1, 1), (1, 1))
        set_conv_precision(precision)
        out = cp.full((N, C, H, W), np.nan, dtype=np.float32)
        gconv.conv2d_backward_data(cp.asarray(dy, np.float32), cp.asarray(w, np.float32),
                                   (N, C, H, W), 2, 1, 1, out=out)
        e = rel_err(out, ref)
        assert e <= TOL["fp32"], f"s2k4 {precision}: rel err {e:.3e}, case {case}, seed {seed}"


@pytest.mark.parametrize("case", GRID[::3] + MIXED[:2] + MIXED[6:9] + MIXED[11:13], ids=str)
def test_conv_kernels_float64(case):
    run_three(case, "fp32", dtype=np.float64)


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
@pytest.mark.parametrize("case", GRID[::5] + MIXED[:3], ids=str)
def test_im2col_cublas_path(case, precision):
    run_three(case, precision, algorithm="im2col_cublas")


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
@pytest.mark.parametrize("stride,padding,output_padding,dilation", [
    ((2, 2), (1, 1), (1, 1), (1, 1)), ((3, 2), (0, 2), (2, 1), (1, 1)),
    ((2, 2), (1, 0), (0, 1), (2, 1)), ((1, 1), (0, 0), (0, 0), (1, 1)),
    ((2, 3), (2, 1), (3, 1), (2, 2)),   # output_padding >= stride (< dilation)
])
def test_conv_transpose_forward(stride, padding, output_padding, dilation, precision):
    R, S = 4, 3
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        pytest.skip("invalid output_padding")
    rng, seed = fresh_rng()
    x = rng.standard_normal((2, 6, 5, 7))
    w = rng.standard_normal((6, 19, R, S))
    ref = cpu_conv.conv_transpose2d_forward_naive(x, w, None, stride, padding, output_padding, dilation)
    set_conv_precision(precision)
    y, _ = cpu_conv.conv_transpose2d_forward(cp.asarray(x, dtype=np.float32),
                                             cp.asarray(w, dtype=np.float32), None, stride,
                                             padding, output_padding, dilation)
    assert tuple(y.shape) == ref.shape
    e = rel_err(y, ref)
    assert e <= TOL[precision], f"rel err {e:.3e}, seed {seed}"


def test_kernel_rejects_bad_out():
    from scratchgan.cuda import conv as gconv
    x = cp.ones((1, 2, 5, 5), dtype=np.float32)
    w = cp.ones((3, 2, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError):
        gconv.conv2d_forward(x, w, (1, 1), (0, 0), (1, 1), out=cp.empty((1, 3, 4, 4), np.float32))


def test_conv2d_layer_gradcheck_gpu_float64():
    from scratchgan.gradcheck import gradcheck_module
    from scratchgan.nn.conv import Conv2d
    rng, _ = fresh_rng()
    layer = Conv2d(3, 4, 3, stride=2, padding=1, dilation=1, rng=rng).astype(np.float64).to("cuda")
    x = cp.asarray(rng.standard_normal((2, 3, 7, 6)))
    gradcheck_module(layer, x)
    layer = Conv2d(2, 3, (3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1),
                   rng=rng).astype(np.float64).to("cuda")
    gradcheck_module(layer, cp.asarray(rng.standard_normal((1, 2, 8, 7))))


def test_conv_transpose2d_layer_gradcheck_gpu_float64():
    from scratchgan.gradcheck import gradcheck_module
    from scratchgan.nn.conv import ConvTranspose2d
    rng, _ = fresh_rng()
    layer = ConvTranspose2d(3, 2, 4, stride=2, padding=1, output_padding=1,
                            rng=rng).astype(np.float64).to("cuda")
    x = cp.asarray(rng.standard_normal((2, 3, 4, 3)))
    gradcheck_module(layer, x)


def test_cached_launch_plans_follow_settings_and_arguments():
    """Repeated calls reuse a launch plan (and skip the argument checks) only when shapes,
    dtypes, geometry and settings all repeat: switching precision switches kernels, list
    arguments take the checked path, and a wrong shape still raises."""
    from scratchgan.cuda import conv as gconv
    rng, seed = fresh_rng()
    x = cp.asarray(rng.standard_normal((3, 8, 9, 9)), dtype=cp.float32)
    w = cp.asarray(rng.standard_normal((16, 8, 4, 4)), dtype=cp.float32)
    ref = cpu_conv.conv2d_core_forward(cp.asnumpy(x).astype(np.float64),
                                       cp.asnumpy(w).astype(np.float64), (2, 2), (1, 1), (1, 1))
    set_conv_precision("fp32")
    a = gconv.conv2d_forward(x, w, 2, 1, 1)
    b = gconv.conv2d_forward(x, w, 2, 1, 1)              # the cached path
    set_conv_precision("tf32")
    t = gconv.conv2d_forward(x, w, 2, 1, 1)
    set_conv_precision("fp32")
    c = gconv.conv2d_forward(x, w, [2, 2], [1, 1], [1, 1])   # lists: the checked path
    assert bool((a == b).all()) and bool((a == c).all()), f"seed {seed}"
    assert rel_err(a, ref) <= TOL["fp32"] and TOL["fp32"] < rel_err(t, ref) <= TOL["tf32"], \
        f"fp32 {rel_err(a, ref):.2e}, tf32 {rel_err(t, ref):.2e}, seed {seed}"
    with pytest.raises(ValueError):
        gconv.conv2d_forward(x[:, :4], w, 2, 1, 1)       # C mismatch: never a cache hit
    dy = cp.asarray(rng.standard_normal(a.shape), dtype=cp.float32)
    for _ in range(2):
        dx = gconv.conv2d_backward_data(dy, w, x.shape, 2, 1, 1)
        dw = gconv.conv2d_backward_filter(x, dy, w.shape, 2, 1, 1)
        assert rel_err(dx, cpu_conv.conv2d_core_backward_data(
            cp.asnumpy(dy).astype(np.float64), cp.asnumpy(w).astype(np.float64), x.shape,
            (2, 2), (1, 1), (1, 1))) <= TOL["fp32"]
        assert rel_err(dw, cpu_conv.conv2d_core_backward_filter(
            cp.asnumpy(x).astype(np.float64), cp.asnumpy(dy).astype(np.float64), w.shape,
            (2, 2), (1, 1), (1, 1))) <= TOL["fp32"]
