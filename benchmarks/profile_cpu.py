"""Where a CPU training step's milliseconds go: per-op timers and cProfile.

Builds one model like ``bench_step.py`` does (same cases, same random data), runs
``--warmup`` steps, then ``--steps`` steps with a timer around every public function
of ``scratchgan.ops`` (conv, norm, activation, linear, loss ...; every module that
imported one by name is patched too) and reports, per op, the calls and the
milliseconds per step (inclusive; an op called inside another op is counted only in
the outermost one, so the column adds up to the time spent in ops). The rest of the
step (optimizer, module bookkeeping, RNG ...) is the difference to the step time.
Then ``--cprofile-steps`` steps under cProfile, the top functions by internal time.

    python benchmarks/profile_cpu.py --model wgan --steps 3
    python benchmarks/profile_cpu.py --model dcgan64 --steps 2 --out benchmarks/results/x.txt

``--threads`` (default 2) sets the BLAS/OpenMP pools before NumPy loads.
"""
from __future__ import annotations

import argparse
import cProfile
import collections
import functools
import io
import os
import pathlib
import pstats
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="wgan")
    ap.add_argument("--batch", type=int, default=None, help="default: bench_step's issue policy")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--cprofile-steps", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the report to this file")
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = str(ARGS.threads)
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import scratchgan  # noqa: E402
from scratchgan.models import get_model  # noqa: E402

CASES = {  # as benchmarks/bench_step.py: (registry name, data shape, hyperparameters, batch)
    "gan": ("gan", (1, 28, 28), {"arch": "paper"}, 100),
    "dcgan28": ("dcgan", (1, 28, 28), {}, 128),
    "dcgan64": ("dcgan", (3, 64, 64), {"arch": "64"}, 128),
    "cgan": ("cgan", (1, 28, 28), {}, 128),
    "infogan": ("infogan", (1, 28, 28), {}, 128),
    "wgan": ("wgan", (1, 28, 28), {}, 128),
    "vae": ("vae", (1, 28, 28), {}, 128),
    "aae": ("aae", (1, 28, 28), {}, 128),
}


class OpTimer:
    """Wraps the public functions of scratchgan.ops.* wherever they are bound."""

    def __init__(self):
        self.ms = collections.Counter()
        self.calls = collections.Counter()
        self.depth = 0
        self.active = False

    def wrap(self, name, f):
        @functools.wraps(f)
        def timed(*a, **k):
            if not self.active or self.depth:
                self.depth += 1
                try:
                    return f(*a, **k)
                finally:
                    self.depth -= 1
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                self.ms[name] += (time.perf_counter() - t0) * 1e3
                self.calls[name] += 1
                self.depth -= 1
        return timed

    def install(self):
        import scratchgan.ops as ops_pkg
        originals = {}
        for modname, mod in list(sys.modules.items()):
            if modname.startswith("scratchgan.ops.") and mod is not None:
                short = modname.rsplit(".", 1)[1]
                for attr in getattr(mod, "__all__", None) or [a for a in vars(mod)
                                                               if not a.startswith("_")]:
                    f = getattr(mod, attr, None)
                    if callable(f) and getattr(f, "__module__", "") == modname:
                        originals[id(f)] = (f, self.wrap(f"{short}.{attr}", f))
        del ops_pkg
        for modname, mod in list(sys.modules.items()):
            if not modname.startswith("scratchgan") or mod is None:
                continue
            for attr, val in list(vars(mod).items()):
                hit = originals.get(id(val))
                if hit is not None and hit[0] is val:
                    setattr(mod, attr, hit[1])


def build(case, seed, batch):
    name, shape, hyper, b = CASES[case]
    scratchgan.manual_seed(seed)
    model = get_model(name)(shape, num_classes=10, device="cpu", dtype=np.float32, rng=seed,
                            **hyper)
    b = batch or b
    rng = np.random.default_rng(seed)
    k = int(model.batches_per_step())
    lo, hi = getattr(model, "data_range", None) or (0.0, 1.0)
    labels = bool(getattr(model, "conditional", False) or getattr(model, "uses_labels", False))
    data = []
    for _ in range(3):
        xs = [rng.uniform(lo, hi, size=(b, *model.data_shape)).astype(np.float32)
              for _ in range(k)]
        ys = [rng.integers(0, model.num_classes, size=b).astype(np.int64) for _ in range(k)]
        x = xs[0] if k == 1 else xs
        y = (ys[0] if k == 1 else ys) if labels else None
        data.append((x, y))
    return model, data, b


def main(args):
    timer = OpTimer()
    model, data, batch = build(args.model, args.seed, args.batch)
    timer.install()
    out = io.StringIO()

    def say(s=""):
        print(s)
        out.write(s + "\n")

    for i in range(args.warmup):
        model.train_step(*data[i % len(data)])
    step_ms = []
    timer.active = True
    for i in range(args.steps):
        t0 = time.perf_counter()
        model.train_step(*data[i % len(data)])
        step_ms.append((time.perf_counter() - t0) * 1e3)
    timer.active = False
    n = args.steps
    total = float(np.median(step_ms))
    say(f"# CPU profile: {args.model}, batch {batch}, {args.threads} threads, numpy "
        f"{np.__version__}, {n} steps (median step {total:.1f} ms; load "
        f"{os.getloadavg()[0]:.1f})")
    say("")
    say(f"{'op':45s} {'calls/step':>10s} {'ms/step':>9s} {'share':>6s}")
    in_ops = 0.0
    for name, ms in timer.ms.most_common():
        in_ops += ms / n
        say(f"{name:45s} {timer.calls[name] / n:10.1f} {ms / n:9.2f} "
            f"{ms / n / (sum(step_ms) / n):6.1%}")
    mean = sum(step_ms) / n
    say(f"{'(outside ops: optimizer, modules, rng ...)':45s} {'':10s} {mean - in_ops:9.2f} "
        f"{(mean - in_ops) / mean:6.1%}")
    say(f"{'step (mean)':45s} {'':10s} {mean:9.2f}")
    if args.cprofile_steps:
        pr = cProfile.Profile()
        pr.enable()
        for i in range(args.cprofile_steps):
            model.train_step(*data[i % len(data)])
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(args.top)
        say("")
        say(f"## cProfile, {args.cprofile_steps} step(s), by internal time")
        for line in s.getvalue().splitlines():
            if line.strip() and not line.startswith(("   Ordered", "Ordered")):
                say(line.replace(str(REPO) + "/", ""))
    if args.out:
        pathlib.Path(args.out).write_text(out.getvalue())


if __name__ == "__main__":
    main(ARGS)
