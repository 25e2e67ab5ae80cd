"""Where a GPU training step's device time goes: per-kernel totals of replayed steps.

Runs ``--steps`` steps of a model through :class:`scratchgan.runtime.StepRunner`
(graph replay where the model allows it) under PyTorch's profiler, whose CUPTI
tracing records every kernel the process launches, CuPy's included. Prints the
kernels by total device time per step, the kernel count per step, and the sum of
kernel time against the step's wall time between CUDA events (the difference is
launch gaps and host time).

    python benchmarks/profile_step.py --models dcgan28,gan --steps 50 --out-dir DIR

Needs a GPU, CuPy and PyTorch (for the profiler only; nothing is computed with it).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

CASES = {
    "gan": ("gan", (1, 28, 28), 100, {"arch": "paper"}),
    "dcgan28": ("dcgan", (1, 28, 28), 128, {}),
    "dcgan64": ("dcgan", (3, 64, 64), 128, {"arch": "64"}),
    "cgan": ("cgan", (1, 28, 28), 128, {}),
    "infogan": ("infogan", (1, 28, 28), 128, {}),
    "wgan": ("wgan", (1, 28, 28), 128, {}),
    "vae": ("vae", (1, 28, 28), 128, {}),
    "aae": ("aae", (1, 28, 28), 128, {}),
}


def profile_case(case, steps, precision, mode):
    import cupy as cp
    import torch
    from torch.profiler import ProfilerActivity, profile

    import scratchgan as sg
    from scratchgan.models import get_model
    from scratchgan.runtime import StepRunner

    name, shape, batch, hp = CASES[case]
    sg.set_conv_precision(precision)
    sg.manual_seed(0)
    model = get_model(name)(shape, device="cuda", **hp)
    g = np.random.default_rng(0)
    lo, hi = model.data_range if model.data_range else (0.0, 1.0)

    def batch_data():
        k = model.batches_per_step()
        xs = [cp.asarray(g.uniform(lo, hi, (batch,) + shape).astype(np.float32)) for _ in range(k)]
        ys = [cp.asarray(g.integers(0, model.num_classes, batch)) for _ in range(k)]
        return (xs[0] if k == 1 else xs), ((ys[0] if k == 1 else ys) if model.conditional else None)

    data = [batch_data() for _ in range(4)]
    runner = StepRunner(model, mode=mode)
    for i in range(10):
        runner(*data[i % 4])
    cp.cuda.Device().synchronize()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start.record(runner._get_stream() if runner.uses_graphs else None)
        for i in range(steps):
            runner(*data[i % 4])
        end.record(runner._get_stream() if runner.uses_graphs else None)
        end.synchronize()
    wall_ms = cp.cuda.get_elapsed_time(start, end) / steps
    rows = []
    total_us, count = 0.0, 0
    for evt in prof.key_averages():
        dev_us = getattr(evt, "device_time_total", None)
        if dev_us is None:
            dev_us = getattr(evt, "cuda_time_total", 0.0)
        if not dev_us or evt.count == 0:
            continue
        rows.append({"kernel": evt.key[:90], "calls_per_step": evt.count / steps,
                     "us_per_step": dev_us / steps})
        total_us += dev_us
        count += evt.count
    rows.sort(key=lambda r: -r["us_per_step"])
    return {"case": case, "precision": precision, "mode_used": runner.mode_used,
            "reason": runner.reason, "steps": steps, "wall_ms_per_step": wall_ms,
            "kernel_ms_per_step": total_us / 1000 / steps, "kernels_per_step": count / steps,
            "top": rows[:40]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dcgan28,gan")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "tf32"))
    ap.add_argument("--mode", default="auto", choices=("auto", "eager", "graph"))
    ap.add_argument("--out-dir", default="benchmarks/results")
    args = ap.parse_args(argv)
    out = []
    for case in args.models.split(","):
        t0 = time.time()
        r = profile_case(case, args.steps, args.precision, args.mode)
        out.append(r)
        print(f"\n== {case} {args.precision} ({r['mode_used']}{', ' + r['reason'] if r['reason'] else ''}): "
              f"{r['wall_ms_per_step']:.3f} ms/step wall, {r['kernel_ms_per_step']:.3f} ms of kernels, "
              f"{r['kernels_per_step']:.0f} kernels/step  [{time.time() - t0:.1f} s]")
        for row in r["top"][:25]:
            print(f"  {row['us_per_step']:9.1f} us  {row['calls_per_step']:6.1f}x  {row['kernel']}")
    d = pathlib.Path(args.out_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"profile-step-{args.precision}.json"
    path.write_text(json.dumps({"command": " ".join(sys.argv), "cases": out}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
