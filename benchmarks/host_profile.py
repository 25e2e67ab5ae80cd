"""Host microseconds per call of one GPU convolution call and of its pieces (GPU).

The eager timings of bench_kernels.py start with an idle GPU, so each includes the host's
work before the launch. This measures that work alone, on shapes so small that the GPU is
never the bottleneck (3,000 calls issued without waiting), next to PyTorch's conv2d, then
prints a cProfile of 2,000 calls.

    PYTHONPATH=. python benchmarks/host_profile.py
"""
import cProfile
import io
import os
import pstats
import sys
import time

import cupy as cp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from scratchgan.backend import set_conv_precision  # noqa: E402
from scratchgan.cuda import conv as gconv  # noqa: E402
from scratchgan.cuda import conv_plans  # noqa: E402

try:
    import torch
    HAVE_TORCH = torch.cuda.is_available()
except Exception:  # pragma: no cover
    torch, HAVE_TORCH = None, False


def sync():
    cp.cuda.Device().synchronize()
    if HAVE_TORCH:
        torch.cuda.synchronize()


def per_call_us(f, n=3000):
    for _ in range(50):
        f()
    sync()
    t = time.perf_counter()
    for _ in range(n):
        f()
    dt = (time.perf_counter() - t) / n * 1e6
    sync()
    return dt


def main():
    set_conv_precision("tf32")
    x = cp.random.standard_normal((2, 64, 8, 8), dtype=cp.float32)
    w = cp.random.standard_normal((64, 64, 4, 4), dtype=cp.float32)
    y = gconv.conv2d_forward(x, w, 2, 1, 1)
    plan = next(p for k, p in conv_plans._PLANS.items() if k[0] == "fwd" and k[1] == x.shape)
    res = {
        "conv2d_forward (whole call)": per_call_us(lambda: gconv.conv2d_forward(x, w, 2, 1, 1)),
        "conv2d_forward out=y": per_call_us(lambda: gconv.conv2d_forward(x, w, 2, 1, 1, out=y)),
        f"plan.run (launch only, split-K {plan.splits})": per_call_us(lambda: plan.run(x, w, y)),
        "cp.empty(y.shape)": per_call_us(lambda: cp.empty(y.shape, dtype=y.dtype)),
    }
    if HAVE_TORCH:
        tx, tw = torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda")
        torch.backends.cudnn.allow_tf32 = True
        res["torch conv2d (tf32)"] = per_call_us(
            lambda: torch.nn.functional.conv2d(tx, tw, None, 2, 1))
    for k, v in res.items():
        print(f"{k:44s} {v:7.2f} us")
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(2000):
        gconv.conv2d_forward(x, w, 2, 1, 1)
    pr.disable()
    sync()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(14)
    print(s.getvalue())


if __name__ == "__main__":
    main()
