"""Time the convolution kernels on the ten conv layers of the 64x64 DCGAN (batch 128).

For each layer and pass (forward, backward-data, backward-filter, in the layer's
own terms: a ConvTranspose2d's forward is a convolution's backward-data) this
times, with CUDA events after warm-up, rotating among several input sets, the
median of:
  ours-fp32, ours-tf32       the implicit-GEMM kernels of kernels/conv2d_*.cu
  im2col-fp32, im2col-tf32   im2col + cuBLAS through CuPy (comparison algorithm)
  cudnn-fp32, cudnn-tf32     PyTorch / cuDNN (allow_tf32 off / on), when torch imports, with
                             torch.backends.cudnn.benchmark = True as PyTorch users run it
                             (cuDNN times its algorithms on the first call of each shape and
                             keeps the fastest); --no-cudnn-benchmark: cuDNN's heuristic pick
It also measures the FP32 and TF32 matrix-product ceilings in the same run, checks
ours-fp32 and ours-tf32 against cuDNN-fp32 (relative error), prints a table and writes
<out>/kernels-<gpu>-<date>.json.

    PYTHONPATH=. python benchmarks/bench_kernels.py [--out benchmarks/results] [--reps 25]
        [--no-cudnn-benchmark]   cuDNN baseline without torch.backends.cudnn.benchmark
                                 (the earlier default)
        [--overhead]      also: each pass replayed from a CUDA graph (the kernels' own time)
                          and the host's microseconds per call, ours and cuDNN
        [--ab-s2k4]       A/B of the stride-2 narrow backward-data kernel, same run
        [--ab-vector-b]   A/B of the 16-byte weight copies of the tf32 forward kernel
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys

import numpy as np
import cupy as cp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from scratchgan.backend import set_conv_algorithm, set_conv_precision  # noqa: E402
from scratchgan.cuda import conv as gconv  # noqa: E402
from scratchgan.cuda.conv_im2col import _cublas_precision  # noqa: E402

try:
    import torch
    HAVE_TORCH = torch.cuda.is_available()
except Exception:  # pragma: no cover
    torch, HAVE_TORCH = None, False

N = 128
# name, transposed, Cin, Cout, input H (=W), stride, padding
LAYERS = [
    ("D1", False, 3, 64, 64, 2, 1), ("D2", False, 64, 128, 32, 2, 1),
    ("D3", False, 128, 256, 16, 2, 1), ("D4", False, 256, 512, 8, 2, 1),
    ("D5", False, 512, 1, 4, 1, 0),
    ("G1", True, 100, 512, 1, 1, 0), ("G2", True, 512, 256, 4, 2, 1),
    ("G3", True, 256, 128, 8, 2, 1), ("G4", True, 128, 64, 16, 2, 1),
    ("G5", True, 64, 3, 32, 2, 1),
]
PASSES = ("fwd", "bwd_data", "bwd_filter")
KS = 4
ROT = 3


def geometry(layer):
    name, tr, ci, co, h, s, p = layer
    if tr:
        ho = (h - 1) * s - 2 * p + KS
        return dict(x=(N, ci, h, h), y=(N, co, ho, ho), w=(ci, co, KS, KS), s=s, p=p, tr=True)
    ho = (h + 2 * p - KS) // s + 1
    return dict(x=(N, ci, h, h), y=(N, co, ho, ho), w=(co, ci, KS, KS), s=s, p=p, tr=False)


def flops(g):
    """2 * MACs of the layer (same for all three passes)."""
    if g["tr"]:
        n, ci, h, w = g["x"]
        return 2 * n * h * w * ci * g["w"][1] * KS * KS
    n, co, ho, wo = g["y"]
    return 2 * n * ho * wo * co * g["x"][1] * KS * KS


def ours(g, pss):
    s, p, d = (g["s"],) * 2, (g["p"],) * 2, (1, 1)
    if not g["tr"]:
        if pss == "fwd":
            return lambda x, w, dy: gconv.conv2d_forward(x, w, s, p, d)
        if pss == "bwd_data":
            return lambda x, w, dy: gconv.conv2d_backward_data(dy, w, x.shape, s, p, d)
        return lambda x, w, dy: gconv.conv2d_backward_filter(x, dy, w.shape, s, p, d)
    if pss == "fwd":   # convT forward = conv backward-data with the layer's output as "x"
        return lambda x, w, dy: gconv.conv2d_backward_data(x, w, dy.shape, s, p, d)
    if pss == "bwd_data":
        return lambda x, w, dy: gconv.conv2d_forward(dy, w, s, p, d)
    return lambda x, w, dy: gconv.conv2d_backward_filter(dy, x, w.shape, s, p, d)


def cudnn(g, pss):
    s, p = [g["s"]] * 2, [g["p"]] * 2
    tr = g["tr"]
    conv = torch.nn.functional.conv_transpose2d if tr else torch.nn.functional.conv2d
    if pss == "fwd":
        return lambda x, w, dy: conv(x, w, None, s, p)
    mask = [True, False, False] if pss == "bwd_data" else [False, True, False]
    idx = 0 if pss == "bwd_data" else 1
    return lambda x, w, dy: torch.ops.aten.convolution_backward(
        dy, x, w, None, s, p, [1, 1], tr, [0, 0], 1, mask)[idx]


def time_cupy(fn, sets, reps):
    for i in range(3):
        fn(*sets[i % len(sets)])
    cp.cuda.Device().synchronize()
    ts = []
    for i in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        args = sets[i % len(sets)]
        a.record()
        fn(*args)
        b.record()
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b))
    return statistics.median(ts)


def time_torch(fn, sets, reps):
    for i in range(3):
        fn(*sets[i % len(sets)])
    torch.cuda.synchronize()
    ts = []
    for i in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        args = sets[i % len(sets)]
        a.record()
        fn(*args)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


REPLAYS = 10   # graph replays per timing sample


def time_graph_cupy(fn, sets, reps):
    """Median ms per call with each input set's call captured once in a CUDA graph and
    replayed REPLAYS times between two events: the kernels' own time, without the host's
    per-call work (argument checks, launch) that the eager timing includes."""
    stream = cp.cuda.Stream(non_blocking=True)
    keep, graphs = [], []
    with stream:
        for args in sets:
            keep.append(fn(*args))      # warm-up: the memory pool holds the blocks to reuse
        stream.synchronize()
        for args in sets:
            stream.begin_capture()
            keep.append(fn(*args))      # outputs stay referenced while the graphs live
            graphs.append(stream.end_capture())
    for g in graphs:
        g.launch(stream)
    stream.synchronize()
    ts = []
    for i in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record(stream)
        for j in range(REPLAYS):
            graphs[(i * REPLAYS + j) % len(graphs)].launch(stream)
        b.record(stream)
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b) / REPLAYS)
    return statistics.median(ts)


def time_graph_torch(fn, sets, reps):
    """As time_graph_cupy, for PyTorch (torch.cuda.CUDAGraph)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for args in sets:
            fn(*args)
    torch.cuda.current_stream().wait_stream(side)
    keep, graphs = [], []
    for args in sets:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            keep.append(fn(*args))
        graphs.append(g)
    torch.cuda.synchronize()
    ts = []
    for i in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for j in range(REPLAYS):
            graphs[(i * REPLAYS + j) % len(graphs)].replay()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / REPLAYS)
    return statistics.median(ts)


def host_us(fn, sets, calls=200, sync=None):
    """Host microseconds per call, issuing `calls` calls without waiting (the GPU queue
    absorbs them, so this is the host's own per-call work)."""
    import time
    sync = sync or cp.cuda.Device().synchronize
    for i in range(3):
        fn(*sets[i % len(sets)])
    sync()
    t0 = time.perf_counter()
    for i in range(calls):
        fn(*sets[i % len(sets)])
    t1 = time.perf_counter()
    sync()
    return (t1 - t0) / calls * 1e6


def _or_nan(timer, *a):
    try:
        return timer(*a)
    except Exception as e:   # a capture that fails is reported, not fatal
        print(f"  ({timer.__name__} failed: {type(e).__name__}: {e})", flush=True)
        return float("nan")


def overhead_table(layers, rng, reps):
    """Eager vs graph-replayed time and host us per call, ours and cuDNN, fp32 and tf32."""
    print("\nlaunch overhead: eager ms | graph-replay ms | host us per call", flush=True)
    rows = []
    for layer in layers:
        g = geometry(layer)
        sets = [tuple(cp.asarray(rng.standard_normal(g[k]).astype(np.float32)) for k in ("x", "w", "y"))
                for _ in range(ROT)]
        tsets = [tuple(torch.as_tensor(a, device="cuda") for a in s) for s in sets] if HAVE_TORCH else None
        for pss in PASSES:
            r = {"layer": layer[0], "pass": pss}
            f = ours(g, pss)
            for prec in ("fp32", "tf32"):
                set_conv_precision(prec)
                r[f"ours-{prec}"] = time_cupy(f, sets, reps)
                r[f"ours-{prec}-graph"] = _or_nan(time_graph_cupy, f, sets, reps)
                r[f"ours-{prec}-host_us"] = host_us(f, sets)
            set_conv_precision("fp32")
            if HAVE_TORCH:
                c = cudnn(g, pss)
                for prec in ("fp32", "tf32"):
                    set_torch_tf32(prec == "tf32")
                    r[f"cudnn-{prec}"] = time_torch(c, tsets, reps)
                    r[f"cudnn-{prec}-graph"] = _or_nan(time_graph_torch, c, tsets, reps)
                    r[f"cudnn-{prec}-host_us"] = host_us(c, tsets, sync=torch.cuda.synchronize)
                set_torch_tf32(False)
            rows.append(r)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r.items()), flush=True)
    keys = [k for k in rows[0] if k not in ("layer", "pass")]
    totals = {k: sum(r[k] for r in rows) for k in keys}
    print("totals: " + ", ".join(f"{k} {v:.3f}" for k, v in totals.items()))
    for prec in ("fp32", "tf32"):
        if HAVE_TORCH:
            print(f"{prec}: eager ours/cudnn {totals[f'ours-{prec}'] / totals[f'cudnn-{prec}']:.3f}, "
                  f"graph-replay ours/cudnn "
                  f"{totals[f'ours-{prec}-graph'] / totals[f'cudnn-{prec}-graph']:.3f}")
    return {"rows": rows, "totals": totals, "replays_per_sample": REPLAYS}


def set_torch_tf32(on):
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def matmul_ceilings(n=8192):
    out = {}
    a = cp.random.standard_normal((n, n), dtype=cp.float32)
    b = cp.random.standard_normal((n, n), dtype=cp.float32)
    fl = 2 * n ** 3
    for prec in ("fp32", "tf32"):
        set_conv_precision(prec)
        with _cublas_precision(np.float32):
            t = time_cupy(lambda x, y: x @ y, [(a, b)], 5)
        out[f"cupy_{prec}"] = fl / t / 1e9
    set_conv_precision("fp32")
    if HAVE_TORCH:
        ta = torch.randn(n, n, device="cuda")
        tb = torch.randn(n, n, device="cuda")
        for prec in ("fp32", "tf32"):
            set_torch_tf32(prec == "tf32")
            out[f"torch_{prec}"] = fl / time_torch(lambda x, y: x @ y, [(ta, tb)], 5) / 1e9
        set_torch_tf32(False)
    return out


def ab_vector_b(layers, rng, reps, rounds=3):
    """Median ms of the tf32 passes that run the forward kernel (conv fwd, convT bwd-data)
    with the 16-byte weight copies (vb) and without (sb), alternating in rounds."""
    set_conv_precision("tf32")
    print("\nA/B tf32 forward-kernel passes, ms (vb = 16-byte B copies, sb = scalar B):")
    tot = {True: 0.0, False: 0.0}
    for layer in layers:
        g = geometry(layer)
        pss = "bwd_data" if g["tr"] else "fwd"
        sets = [tuple(cp.asarray(rng.standard_normal(g[k]).astype(np.float32)) for k in ("x", "w", "y"))
                for _ in range(ROT)]
        f = ours(g, pss)
        t = {True: [], False: []}
        for _ in range(rounds):
            for vb in (True, False):
                gconv.switches.vector_b = vb
                t[vb].append(time_cupy(f, sets, reps))
        gconv.switches.vector_b = True
        m = {vb: statistics.median(v) for vb, v in t.items()}
        for vb in m:
            tot[vb] += m[vb]
        print(f"{layer[0]:4}{pss:10} vb {m[True]:.4f}  sb {m[False]:.4f}  vb/sb {m[True] / m[False]:.3f}")
    print(f"sum       vb {tot[True]:.4f}  sb {tot[False]:.4f}  vb/sb {tot[True] / tot[False]:.3f}")
    set_conv_precision("fp32")


def ab_s2k4(layers, rng, reps, rounds=3):
    """Median ms (fp32 mode) of the backward-data passes into <= 4 channels with the
    stride-2 4x4 narrow kernel (s2k4) and with the phase-split narrow kernel (phases),
    alternating in rounds."""
    print("\nA/B backward-data into <= 4 channels, ms (s2k4 kernel vs phase-split narrow):")
    for layer in layers:
        g = geometry(layer)
        pss = "fwd" if g["tr"] else "bwd_data"
        if (g["y"][1] if g["tr"] else g["x"][1]) > 4:
            continue
        sets = [tuple(cp.asarray(rng.standard_normal(g[k]).astype(np.float32)) for k in ("x", "w", "y"))
                for _ in range(ROT)]
        f = ours(g, pss)
        t = {True: [], False: []}
        for _ in range(rounds):
            for on in (True, False):
                gconv.switches.s2k4 = on
                t[on].append(time_cupy(f, sets, reps))
        gconv.switches.s2k4 = True
        m = {on: statistics.median(v) for on, v in t.items()}
        print(f"{layer[0]:4}{pss:10} s2k4 {m[True]:.4f}  phases {m[False]:.4f}  ratio {m[True] / m[False]:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--layers", default="")
    ap.add_argument("--ab-vector-b", action="store_true",
                    help="also time the tf32 forward-kernel passes with and without 16-byte "
                         "weight copies, interleaved (A/B in one run)")
    ap.add_argument("--ab-s2k4", action="store_true",
                    help="also time backward-data into <= 4 channels with and without the "
                         "stride-2 4x4 narrow kernel, interleaved")
    ap.add_argument("--overhead", action="store_true",
                    help="also time ours and cuDNN with each call replayed from a CUDA graph, "
                         "and the host's microseconds per call (launch-overhead split)")
    ap.add_argument("--no-cudnn-benchmark", action="store_true",
                    help="leave torch.backends.cudnn.benchmark off for the cuDNN baseline "
                         "(default: on, as PyTorch users run it)")
    args = ap.parse_args()
    cudnn_benchmark = not args.no_cudnn_benchmark
    if HAVE_TORCH:
        torch.backends.cudnn.benchmark = cudnn_benchmark
        print(f"cuDNN baseline: torch.backends.cudnn.benchmark = {cudnn_benchmark}", flush=True)
    gpu = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    ceil = matmul_ceilings()
    fp32_ceiling = max(v for k, v in ceil.items() if k.endswith("fp32"))
    tf32_ceiling = max(v for k, v in ceil.items() if k.endswith("tf32"))
    print(f"GPU {gpu}; matmul ceilings (TFLOP/s): " +
          ", ".join(f"{k} {v:.1f}" for k, v in ceil.items()), flush=True)
    rng = np.random.default_rng(0)
    rows = []
    layers = [l for l in LAYERS if not args.layers or l[0] in args.layers.split(",")]
    for layer in layers:
        g = geometry(layer)
        sets = [tuple(cp.asarray(rng.standard_normal(g[k]).astype(np.float32)) for k in ("x", "w", "y"))
                for _ in range(ROT)]
        tsets = [tuple(torch.as_tensor(a, device="cuda") for a in s) for s in sets] if HAVE_TORCH else None
        fl = flops(g)
        for pss in PASSES:
            r = {"layer": layer[0], "pass": pss, "gflop": fl / 1e9}
            f = ours(g, pss)
            for algo, key in (("implicit_gemm", "ours"), ("im2col_cublas", "im2col")):
                set_conv_algorithm(algo)
                for prec in ("fp32", "tf32"):
                    set_conv_precision(prec)
                    r[f"{key}-{prec}"] = time_cupy(f, sets, args.reps)
            set_conv_algorithm("implicit_gemm")
            if HAVE_TORCH:
                c = cudnn(g, pss)
                for prec in ("fp32", "tf32"):
                    set_torch_tf32(prec == "tf32")
                    r[f"cudnn-{prec}"] = time_torch(c, tsets, args.reps)
                set_torch_tf32(False)
                # correctness: ours-fp32 against cuDNN fp32 on the same inputs
                set_conv_precision("fp32")
                mine = cp.asnumpy(f(*sets[0])).astype(np.float64)
                ref = c(*tsets[0]).double().cpu().numpy()
                r["relerr_vs_cudnn"] = float(np.linalg.norm(mine - ref) / np.linalg.norm(ref))
                set_conv_precision("tf32")
                mine = cp.asnumpy(f(*sets[0])).astype(np.float64)
                r["relerr_tf32_vs_cudnn_fp32"] = float(np.linalg.norm(mine - ref) / np.linalg.norm(ref))
            set_conv_precision("fp32")
            rows.append(r)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r.items()), flush=True)
    if args.ab_vector_b:
        ab_vector_b(layers, rng, args.reps)
    if args.ab_s2k4:
        ab_s2k4(layers, rng, args.reps)
    overhead = overhead_table(layers, rng, args.reps) if args.overhead else None
    variants = [k for k in rows[0] if re.match(r"(ours|im2col|cudnn)-", k)]
    total_fl = sum(r["gflop"] for r in rows) * 1e9
    totals = {v: sum(r[v] for r in rows) for v in variants}
    print("\nper layer and pass, ms (TFLOP/s of ours-fp32 / ours-tf32):")
    print(f"{'layer':6}{'pass':11}" + "".join(f"{v:>12}" for v in variants))
    for r in rows:
        print(f"{r['layer']:6}{r['pass']:11}" + "".join(f"{r[v]:12.4f}" for v in variants))
    print(f"{'TOTAL':17}" + "".join(f"{totals[v]:12.3f}" for v in variants))
    summary = {}
    for v in variants:
        tf = total_fl / (totals[v] * 1e-3) / 1e12
        cl = tf32_ceiling if v.endswith("tf32") else fp32_ceiling
        summary[v] = {"total_ms": totals[v], "tflops": tf, "pct_of_ceiling": 100 * tf / cl}
        print(f"{v:12} total {totals[v]:8.3f} ms  {tf:7.2f} TFLOP/s  {100 * tf / cl:5.1f}% of "
              f"{'TF32' if v.endswith('tf32') else 'FP32'} matmul ceiling")
    if HAVE_TORCH:
        for prec in ("fp32", "tf32"):
            ratio = totals[f"ours-{prec}"] / totals[f"cudnn-{prec}"]
            summary[f"ours/cudnn-{prec}"] = ratio
            print(f"ours-{prec} / cudnn-{prec} = {ratio:.3f} (target <= 1.0)")
    date = datetime.date.today().isoformat()
    os.makedirs(args.out, exist_ok=True)
    tag = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-")
    path = os.path.join(args.out, f"kernels-{tag}-{date}.json")
    with open(path, "w") as fh:
        json.dump({"gpu": gpu, "date": date, "batch": N, "matmul_ceilings_tflops": ceil,
                   "rows": rows, "totals_ms": totals, "summary": summary,
                   **({"overhead": overhead} if overhead else {}),
                   "cudnn_benchmark": cudnn_benchmark if HAVE_TORCH else None,
                   "command": "python " + " ".join(sys.argv),
                   "torch": torch.__version__ if torch else None, "cupy": cp.__version__}, fh, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
