"""One model's training step on two devices in lockstep: where do a CPU run and a GPU run part?

Two models of ``--model`` with the same seed (the same initial weights and the same Philox
stream of noise) take the same minibatches; after each reported step every parameter of
every network is compared, ``max |a - b| / max |a|`` per network, and the logged losses are
printed side by side. In float32 the first steps should differ at rounding level (about 1e-6);
a gap of order 1 in the first steps means one path computes something else. Adam then turns
rounding noise in near-zero gradients into step-sized differences, so later gaps grow however
correct both paths are: read the first steps for correctness and the losses for behaviour.
``--b-mode`` picks eager steps or CUDA-graph replays for the second model.

Models and their data:
  bigan    the authors' MNIST run (batch 128; MNIST from --data-dir, stand-in digits with --quick)
  betavae  the 2-D shapes β-VAE (batch 32; dSprites-like images rendered on the host from a
           seeded draw of the training split)
``--set key=value`` sets a model hyperparameter (numbers are parsed), e.g.
``--set updates=alternating`` (BiGAN) or ``--set objective=capacity optimizer=adam lr=5e-4
capacity_steps=10000`` (β-VAE, Burgess et al.'s variant).

    python benchmarks/lockstep.py --model bigan --a cpu --b cuda --b-mode graph --steps 200 --data-dir DATA
    python benchmarks/lockstep.py --model betavae --set objective=capacity optimizer=adam lr=5e-4 capacity_steps=10000 --a cpu --b cuda --steps 500
    python benchmarks/lockstep.py --model bigan --a cpu --b cpu --steps 5 --quick     # self-check: 0

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

MODELS = {"bigan": {"batch": 128, "shape": (1, 28, 28)},
          "betavae": {"batch": 32, "shape": (1, 64, 64)}}


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


def parse_sets(items):
    """``["k=v", ...]`` -> dict, numbers parsed (``int`` when integral, else ``float``)."""
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"lockstep: --set expects key=value, got {item!r}")
        try:
            num = float(val)
            out[key] = int(num) if num.is_integer() and "." not in val and "e" not in val.lower() \
                else num
        except ValueError:
            out[key] = val
    return out


def batches(model_name, args):
    """A function ``draw(rng, n)`` of host minibatches for the model, and the hyperparameters
    ``--quick`` adds."""
    if model_name == "bigan":
        if args.quick:
            from scratchgan.data.standin import load_or_standin
            x, _, _ = load_or_standin("mnist", data_dir=args.data_dir, split="train", limit=512,
                                      download=False, standin=True)
            quick = dict(hidden=32)
        else:
            from scratchgan.data import load_dataset
            x, _ = load_dataset("mnist", (0.0, 1.0), data_dir=args.data_dir, split="train")
            quick = {}
        return (lambda rng, n: x[rng.choice(len(x), n, replace=False)]), quick
    from scratchgan.data import dsprites as D
    idx = D.split_indices("train")
    draw = (lambda rng, n: D.render(idx[rng.choice(len(idx), n, replace=False)])
            .astype(np.float32)[:, None])
    return draw, (dict(enc_hidden=64, dec_hidden=64) if args.quick else {})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="bigan", choices=sorted(MODELS))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="model hyperparameters")
    p.add_argument("--a", default="cpu", help="device of the first model")
    p.add_argument("--b", default="cuda", help="device of the second model")
    p.add_argument("--b-mode", default="auto", choices=("auto", "eager", "graph"))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=None, help="default: the model's paper batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--quick", action="store_true", help="small nets (and stand-in digits)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be at least 1, got {args.steps}")
    if args.batch is not None and args.batch < 1:
        p.error(f"--batch must be at least 1, got {args.batch}")
    hyper = parse_sets(args.set)
    batch = args.batch or MODELS[args.model]["batch"]
    draw, quick = batches(args.model, args)
    hyper = {**quick, **hyper}
    shape = MODELS[args.model]["shape"]
    a = get_model(args.model)(shape, device=args.a, rng=args.seed, **hyper)
    b = get_model(args.model)(shape, device=args.b, rng=args.seed, **hyper)
    start = gaps(params(a), params(b))
    if max(start.values()) != 0.0:
        raise SystemExit(f"lockstep: the {args.a} and {args.b} {args.model} models of seed "
                         f"{args.seed} start from different weights (relative gap per network "
                         f"{start}); expected identical initial weights from one seed")
    ra, rb = StepRunner(a, mode="eager"), StepRunner(b, mode=args.b_mode)
    order = np.random.default_rng([args.seed, 17])
    k = a.batches_per_step()
    report = sorted({1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, args.steps})
    rows = []
    for step in range(1, args.steps + 1):
        xs = [draw(order, batch) for _ in range(k)]
        la = ra(xs if k > 1 else xs[0])
        lb = rb(xs if k > 1 else xs[0])
        if step in report:
            g = gaps(params(a), params(b))
            row = {"step": step, "gap": g,
                   "a": {n: float(to_numpy(v)) for n, v in la.items()},
                   "b": {n: float(to_numpy(v)) for n, v in lb.items()}}
            rows.append(row)
            shown = list(row["a"])[:3]
            print(f"step {step}: " + " ".join(f"{n} {v:.1e}" for n, v in g.items()) + " | "
                  + " | ".join(f"{n} {row['a'][n]:.4f} / {row['b'][n]:.4f}" for n in shown)
                  + f" ({rb.mode_used})", flush=True)
    if args.out:
        write_json(args.out, {"model": args.model, "hyper": hyper, "a": args.a, "b": args.b,
                              "b_mode": args.b_mode, "b_mode_used": rb.mode_used,
                              "batch": batch, "seed": args.seed, "quick": args.quick,
                              "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
