"""BiGAN's step on two devices in lockstep: where do a CPU run and a GPU run part?

Two models with the same seed (the same initial weights and the same Philox stream of z) take
the same minibatches; after each step every parameter of every network is compared,
``max |a - b| / max |a|`` per network, and the two logged losses are printed side by side. In
float32 the first steps should differ at rounding level (about 1e-6) and the gap grow slowly;
a gap of order 1 in the first steps means one path computes something else. ``--b-mode``
picks eager steps or CUDA-graph replays for the second model.

    python benchmarks/bigan_lockstep.py --a cpu --b cuda --b-mode graph --steps 200 --data-dir DATA
    python benchmarks/bigan_lockstep.py --a cpu --b cpu --steps 5 --quick     # self-check: 0

Prints one line per reported step and writes ``--out`` (JSON) when given.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import write_json  # noqa: E402
from scratchgan.backend import to_numpy  # noqa: E402
from scratchgan.models import get_model  # noqa: E402
from scratchgan.runtime import StepRunner  # noqa: E402


def params(model):
    return {name: [to_numpy(p.data).astype(np.float64) for p in net.parameters()]
            for name, net in model.networks().items()}


def gaps(pa, pb):
    out = {}
    for name in pa:
        num = max(float(np.abs(a - b).max()) for a, b in zip(pa[name], pb[name]))
        den = max(float(np.abs(a).max()) for a in pa[name]) or 1.0
        out[name] = num / den
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", default="cpu", help="device of the first model")
    p.add_argument("--b", default="cuda", help="device of the second model")
    p.add_argument("--b-mode", default="auto", choices=("auto", "eager", "graph"))
    p.add_argument("--updates", default="simultaneous", choices=("simultaneous", "alternating"))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--quick", action="store_true", help="stand-in digits and small nets")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        from scratchgan.data.standin import load_or_standin
        x, _, _ = load_or_standin("mnist", data_dir=args.data_dir, split="train", limit=512,
                                  download=False, standin=True)
        hyper = dict(hidden=32, updates=args.updates)
    else:
        from scratchgan.data import load_dataset
        x, _ = load_dataset("mnist", (0.0, 1.0), data_dir=args.data_dir, split="train")
        hyper = dict(updates=args.updates)
    a = get_model("bigan")((1, 28, 28), device=args.a, rng=args.seed, **hyper)
    b = get_model("bigan")((1, 28, 28), device=args.b, rng=args.seed, **hyper)
    start = gaps(params(a), params(b))
    if max(start.values()) != 0.0:
        raise SystemExit(f"bigan_lockstep: the {args.a} and {args.b} models of seed {args.seed} "
                         f"start from different weights (relative gap per network {start}); "
                         f"expected identical initial weights from one seed")
    ra, rb = StepRunner(a, mode="eager"), StepRunner(b, mode=args.b_mode)
    order = np.random.default_rng([args.seed, 17])
    k = a.batches_per_step()
    report = sorted({1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, args.steps})
    rows = []
    for step in range(1, args.steps + 1):
        xs = [x[order.choice(len(x), args.batch, replace=False)] for _ in range(k)]
        la = ra(xs if k > 1 else xs[0])
        lb = rb(xs if k > 1 else xs[0])
        if step in report:
            g = gaps(params(a), params(b))
            row = {"step": step, "gap": g,
                   "a": {n: float(to_numpy(v)) for n, v in la.items()},
                   "b": {n: float(to_numpy(v)) for n, v in lb.items()}}
            rows.append(row)
            print(f"step {step}: " + " ".join(f"{n} {v:.1e}" for n, v in g.items())
                  + f" | loss_d {row['a']['loss_d']:.4f} / {row['b']['loss_d']:.4f}"
                  + f" | loss_ge {row['a']['loss_ge']:.4f} / {row['b']['loss_ge']:.4f}"
                  + f" ({rb.mode_used})", flush=True)
    if args.out:
        write_json(args.out, {"a": args.a, "b": args.b, "b_mode": args.b_mode,
                              "b_mode_used": rb.mode_used, "updates": args.updates,
                              "batch": args.batch, "seed": args.seed, "quick": args.quick,
                              "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
