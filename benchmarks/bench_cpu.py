"""Time one full GAN training step on the CPU: scratchgan (NumPy) vs PyTorch.

A step is the usual alternating update on a batch of 64:

1. D update: ``fake = G(z)``; ``D(x_real)`` with loss bce(l, 1), backward; ``D(fake)``
   with loss bce(l, 0), backward; ``Adam.step()`` on D. (The two terms sum to
   ``ops.loss.discriminator_loss``; they are taken one forward at a time because a
   layer holds one pending cache, which also keeps BatchNorm's real and fake batch
   statistics apart as DCGAN practice does.)
2. G update: ``D(fake)`` with ``generator_nonsaturating_loss``, backward through D
   into G, ``Adam.step()`` on G.

Models:

* ``mlp_gan``: G 100-1200-1200-784 (ReLU, ReLU, Sigmoid); D 784-240-240-1 with
  LeakyReLU(0.2) hidden units -- a variant: the GAN paper's MNIST D used maxout.
* ``infogan_dcgan``: InfoGAN's MNIST networks (without the Q head), z of 74 dims:
  G FC1024-BN-ReLU, FC 7*7*128-BN-ReLU, convT 4x4 s2 p1 64-BN-ReLU, convT 4x4 s2 p1 1
  (sigmoid); D conv 4x4 s2 p1 64-lReLU(0.1), conv 4x4 s2 p1 128-BN-lReLU(0.1),
  FC1024-BN-lReLU(0.1), FC1.

When torch imports, the same networks (weights copied from ours) are timed in
PyTorch on the CPU with ``torch.set_num_threads`` equal to our BLAS thread count,
and the ratio ours / torch is reported. Each model: warm-up steps, then
``--repeats`` timed steps, ours and torch interleaved step by step; medians are reported. Results go to
``benchmarks/results/cpu-<date>.json``.

Usage::

    python benchmarks/bench_cpu.py [--repeats 30] [--warmup 3] [--threads N] [--out PATH]
                                   [--models mlp_gan,infogan_dcgan] [--no-torch]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
MODELS = ("mlp_gan", "infogan_dcgan")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed steps per model (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="BLAS threads for NumPy and torch.set_num_threads (default: all cores)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/cpu-<date>.json)")
    args = ap.parse_args(argv)
    for m in args.models.split(","):
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; valid choices are {', '.join(MODELS)}")
    if args.repeats < 1 or args.threads < 1 or args.warmup < 0:
        ap.error("--repeats and --threads must be >= 1, --warmup >= 0")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # The BLAS thread pool is sized when NumPy loads: set it before the import.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import scratchgan.nn as nn  # noqa: E402
from scratchgan.ops import loss as L  # noqa: E402
from scratchgan.optim import Adam  # noqa: E402

Z_MLP, Z_INFOGAN = 100, 74
LR, BETAS = 2e-4, (0.5, 0.999)


# ----------------------------------------------------------------------------- our networks
def build_ours(model, rng):
    if model == "mlp_gan":
        G = nn.Sequential(nn.Linear(Z_MLP, 1200, rng=rng), nn.ReLU(),
                          nn.Linear(1200, 1200, rng=rng), nn.ReLU(),
                          nn.Linear(1200, 784, rng=rng), nn.Sigmoid())
        D = nn.Sequential(nn.Linear(784, 240, rng=rng), nn.LeakyReLU(0.2),
                          nn.Linear(240, 240, rng=rng), nn.LeakyReLU(0.2),
                          nn.Linear(240, 1, rng=rng))
        return G, D, (Z_MLP,), (784,)
    G = nn.Sequential(nn.Linear(Z_INFOGAN, 1024, rng=rng), nn.BatchNorm1d(1024), nn.ReLU(),
                      nn.Linear(1024, 7 * 7 * 128, rng=rng), nn.BatchNorm1d(7 * 7 * 128), nn.ReLU(),
                      nn.Reshape(128, 7, 7),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1, rng=rng), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1, rng=rng), nn.Sigmoid())
    D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1, rng=rng), nn.LeakyReLU(0.1),
                      nn.Conv2d(64, 128, 4, 2, 1, rng=rng), nn.BatchNorm2d(128), nn.LeakyReLU(0.1),
                      nn.Flatten(), nn.Linear(7 * 7 * 128, 1024, rng=rng), nn.BatchNorm1d(1024),
                      nn.LeakyReLU(0.1), nn.Linear(1024, 1, rng=rng))
    return G, D, (Z_INFOGAN,), (1, 28, 28)


def step_ours(G, D, opt_g, opt_d, x_real, z):
    # D update
    opt_d.zero_grad()
    fake = G(z)
    l_real = D(x_real)
    loss_r, c = L.bce_with_logits_forward(l_real, 1.0)
    D.backward(L.bce_with_logits_backward(1.0, c))
    l_fake = D(fake)
    loss_f, c = L.bce_with_logits_forward(l_fake, 0.0)
    D.backward(L.bce_with_logits_backward(1.0, c))
    opt_d.step()
    # G update through the updated D
    opt_g.zero_grad()
    l_fake = D(fake)
    loss_g, c = L.generator_nonsaturating_loss_forward(l_fake)
    G.backward(D.backward(L.generator_nonsaturating_loss_backward(1.0, c)))
    opt_g.step()
    return float(loss_r + loss_f), float(loss_g)


# ----------------------------------------------------------------------------- torch networks
def build_torch(model, torch):
    tnn = torch.nn
    if model == "mlp_gan":
        G = tnn.Sequential(tnn.Linear(Z_MLP, 1200), tnn.ReLU(), tnn.Linear(1200, 1200), tnn.ReLU(),
                           tnn.Linear(1200, 784), tnn.Sigmoid())
        D = tnn.Sequential(tnn.Linear(784, 240), tnn.LeakyReLU(0.2), tnn.Linear(240, 240),
                           tnn.LeakyReLU(0.2), tnn.Linear(240, 1))
        return G, D
    G = tnn.Sequential(tnn.Linear(Z_INFOGAN, 1024), tnn.BatchNorm1d(1024), tnn.ReLU(),
                       tnn.Linear(1024, 7 * 7 * 128), tnn.BatchNorm1d(7 * 7 * 128), tnn.ReLU(),
                       tnn.Unflatten(1, (128, 7, 7)),
                       tnn.ConvTranspose2d(128, 64, 4, 2, 1), tnn.BatchNorm2d(64), tnn.ReLU(),
                       tnn.ConvTranspose2d(64, 1, 4, 2, 1), tnn.Sigmoid())
    D = tnn.Sequential(tnn.Conv2d(1, 64, 4, 2, 1), tnn.LeakyReLU(0.1),
                       tnn.Conv2d(64, 128, 4, 2, 1), tnn.BatchNorm2d(128), tnn.LeakyReLU(0.1),
                       tnn.Flatten(), tnn.Linear(7 * 7 * 128, 1024), tnn.BatchNorm1d(1024),
                       tnn.LeakyReLU(0.1), tnn.Linear(1024, 1))
    return G, D


def copy_weights(ours, theirs, torch):
    """Give the torch network our initial parameters (same order, same layouts)."""
    mine = [p for _, p in ours.named_parameters()]
    tp = list(theirs.parameters())
    if len(mine) != len(tp):
        raise RuntimeError(f"parameter count differs: ours {len(mine)}, torch {len(tp)}")
    with torch.no_grad():
        for p, q in zip(mine, tp):
            if tuple(p.data.shape) != tuple(q.shape):
                raise RuntimeError(f"shape mismatch {p.data.shape} vs {tuple(q.shape)}")
            q.copy_(torch.from_numpy(np.ascontiguousarray(p.data)))


def make_torch_step(torch, G, D):
    F = torch.nn.functional
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)

    def step(x_real, z):
        opt_d.zero_grad(set_to_none=False)
        fake = G(z)
        l_real = D(x_real)
        loss_r = F.binary_cross_entropy_with_logits(l_real, torch.ones_like(l_real))
        loss_r.backward()
        l_fake = D(fake.detach())
        loss_f = F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
        loss_f.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=False)
        loss_g = F.softplus(-D(fake)).mean()
        loss_g.backward()
        opt_g.step()
        return (loss_r + loss_f).item(), loss_g.item()

    return step


# ----------------------------------------------------------------------------- timing
def _summary(times):
    t = np.array(times)
    return {"median_s": float(np.median(t)), "min_s": float(t.min()), "mean_s": float(t.mean()),
            "p90_s": float(np.percentile(t, 90)), "repeats": int(t.size)}


def time_steps(steps, warmup, repeats):
    """Time several step functions, interleaved step by step.

    Interleaving means a burst of load from other processes hits every contender
    alike, so the ratio of medians stays meaningful on a shared machine.
    """
    for step in steps:
        for _ in range(warmup):
            step()
    times = [[] for _ in steps]
    for _ in range(repeats):
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            step()
            times[i].append(time.perf_counter() - t0)
    return [_summary(t) for t in times]


def machine_info(torch):
    info = {"platform": platform.platform(), "processor": platform.processor(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "numpy": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")
        info["numpy_blas"] = cfg.get("Build Dependencies", {}).get("blas")
        info["numpy_simd"] = cfg.get("SIMD Extensions")
    except Exception as e:  # numpy < 1.25
        info["numpy_blas"] = f"unavailable: {e}"
    try:
        with open("/proc/cpuinfo") as f:
            models = {ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")}
        info["cpu_model"] = sorted(models)
    except OSError:
        pass
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
        info["torch_threads"] = torch.get_num_threads()
    return info


def main(args):
    try:
        import torch  # optional reference
    except Exception:
        torch = None
    if args.no_torch:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
    models = args.models.split(",")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = {}
    for model in models:
        rng = np.random.default_rng(args.seed)
        G, D, zshape, xshape = build_ours(model, rng)
        opt_g = Adam(G.parameters(), lr=LR, betas=BETAS)
        opt_d = Adam(D.parameters(), lr=LR, betas=BETAS)
        x_real = rng.uniform(0, 1, size=(args.batch, *xshape)).astype(np.float32)
        z = rng.standard_normal((args.batch, *zshape)).astype(np.float32)
        steps = [lambda: step_ours(G, D, opt_g, opt_d, x_real, z)]
        if torch is not None:
            tG, tD = build_torch(model, torch)
            copy_weights(G, tG, torch)
            copy_weights(D, tD, torch)
            tstep = make_torch_step(torch, tG, tD)
            tx, tz = torch.from_numpy(x_real), torch.from_numpy(z)
            steps.append(lambda: tstep(tx, tz))
        timed = time_steps(steps, args.warmup, args.repeats)
        res = {"ours": timed[0]}
        if torch is not None:
            res["torch"] = timed[1]
            res["ratio_ours_over_torch"] = res["ours"]["median_s"] / res["torch"]["median_s"]
        if model == "mlp_gan":
            res["note"] = ("variant of the GAN paper's MNIST MLP: D uses LeakyReLU(0.2) hidden "
                           "units instead of maxout")
        else:
            res["note"] = "InfoGAN MNIST G and D (no Q head), z of 74 dims"
        results[model] = res
        line = f"{model:14s} ours {res['ours']['median_s'] * 1e3:8.2f} ms"
        if "torch" in res:
            line += (f" | torch {res['torch']['median_s'] * 1e3:8.2f} ms | ours/torch "
                     f"{res['ratio_ours_over_torch']:.3f}")
        print(line, flush=True)

    today = datetime.date.today().isoformat()
    out = pathlib.Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"cpu-{today}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"date": today, "batch_size": args.batch, "threads": args.threads, "dtype": "float32",
           "warmup": args.warmup, "step": "D update (real, fake) then G update (non-saturating), Adam",
           "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
           "targets": {"infogan_dcgan": 1.5, "mlp_gan": 1.2},
           "machine": machine_info(torch),
           "loadavg_1_5_15min": {"before": load_before,
                                 "after": os.getloadavg() if hasattr(os, "getloadavg") else None},
           "results": results}
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main(ARGS)
