"""β-VAE against the VAE on the dSprites-like set: the β-VAE disentanglement metric.

Subcommand ``metric``: for each model (``betavae``: β = 4; ``vae``: the same networks and
optimizer with β = 1, i.e. the plain ELBO; ``capacity``: Burgess et al.'s objective, γ 1000
and C rising to 25 nats over ``--capacity-steps``) and each seed, train ``scratchgan``'s ``betavae``
model on the dSprites-like training split (``scratchgan.data.dsprites``) for ``--steps``
updates (batch 32, Adagrad 1e-2 unless ``--optimizer``/``--lr`` say otherwise), then score
it with ``scratchgan.metrics.disentanglement.beta_vae_metric`` (L = 64 pairs, 10,000
training and 5,000 evaluation points, a linear softmax classifier over the 5 factors; metric
seed = training seed). Reports mean ± std over seeds beside the paper's numbers, the
per-latent KL (how many latents are in use), and saves latent traversals (one row per
latent, from an image's posterior mean, ±2.5) for every run.

On ``--device cuda`` the whole training split (727,280 images) is rendered on the GPU once
(uint8, 3 GB of device memory) and minibatches are gathered there; each step is replayed
from a CUDA graph (``scratchgan.runtime.StepRunner``). On the CPU images are rendered per
batch. Runs checkpoint every ``--checkpoint-every`` steps under ``OUT/runs/`` and
``--resume`` continues each run exactly (model, optimizer, Philox stream and the batch
order); a finished run's result is reused.

    python benchmarks/betavae_experiments.py metric --device cuda          # full (GPU)
    python benchmarks/betavae_experiments.py metric --quick                # CPU smoke run

Outputs: ``OUT/metric.json`` (or ``metric-quick.json``), ``OUT/traverse-<model>-s<seed>.png``,
``OUT/metric.md``. OUT defaults to benchmarks/results/betavae.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench_common import write_json  # noqa: E402

from scratchgan.backend import to_device, to_numpy  # noqa: E402
from scratchgan.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from scratchgan.data import dsprites as D  # noqa: E402
from scratchgan.metrics.disentanglement import beta_vae_metric  # noqa: E402
from scratchgan.models import get_model  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "betavae"
MODELS = {"betavae": 4.0, "vae": 1.0, "capacity": None}
# Higgins et al. 2017, Table/Sec. 4 (disentanglement metric score on 2-D shapes)
PAPER = {"betavae": "99.23 ± 0.1 %", "vae": "61.58 ± 0.5 %", "infogan": "73.5 ± 0.9 %"}


def log(*a):
    print(*a, flush=True)


class Data:
    """The training split, rendered on the device (cuda) or per batch (cpu); a seeded
    permutation per epoch, its position resumable."""

    def __init__(self, device, seed, limit=None):
        self.device = device
        self.idx = D.split_indices("train")
        if limit is not None:
            self.idx = self.idx[:limit]
        self.n = len(self.idx)
        self.rng = np.random.default_rng([seed, 7])
        self.epoch, self.pos, self.perm = 0, 0, None
        self.images = None
        if device == "cuda":
            import cupy as cp
            t = time.time()
            self.images = cp.empty((self.n, D.IMAGE_SIZE * D.IMAGE_SIZE), cp.uint8)
            for lo in range(0, self.n, 32768):
                sl = self.idx[lo:lo + 32768]
                self.images[lo:lo + len(sl)] = D.render(sl, xp=cp).reshape(len(sl), -1)
            cp.cuda.Device().synchronize()
            log(f"rendered {self.n} dSprites-like images on the GPU in {time.time() - t:.1f}s")
        self._new_epoch()

    def _new_epoch(self):
        self.rng_state = self.rng.bit_generator.state
        perm = self.rng.permutation(self.n)
        self.perm = perm
        self.perm_dev = to_device(perm, self.device) if self.device == "cuda" else None

    def next(self, b):
        if self.pos + b > self.n:
            self.epoch += 1
            self.pos = 0
            self._new_epoch()
        lo, self.pos = self.pos, self.pos + b
        if self.images is not None:
            rows = self.images[self.perm_dev[lo:lo + b]]
            return rows.astype(np.float32).reshape(b, 1, D.IMAGE_SIZE, D.IMAGE_SIZE)
        return D.render(self.idx[self.perm[lo:lo + b]]).astype(np.float32)[:, None]

    def state(self):
        return {"epoch": self.epoch, "pos": self.pos, "rng_state": self.rng_state}

    def load(self, st):
        self.rng.bit_generator.state = st["rng_state"]
        self.epoch, self.pos = int(st["epoch"]), int(st["pos"])
        self._new_epoch()


def make_model(name, args, seed):
    hyper = {"optimizer": args.optimizer, "lr": args.lr}
    if args.adagrad_initial:
        hyper["adagrad_initial"] = args.adagrad_initial
    if name == "capacity":      # Burgess et al.'s objective (C: 0 -> 25 nats, gamma 1000)
        hyper.update(objective="capacity", capacity_steps=args.capacity_steps)
    else:
        hyper["beta"] = MODELS[name]
        if name == "betavae" and args.beta is not None:   # a variant: the paper's β is 4
            hyper["beta"] = float(args.beta)
    if args.quick:
        hyper.update(enc_hidden=64, dec_hidden=64)
    return get_model("betavae")((1, 64, 64), rng=seed, device=args.device, **hyper)


def images_of_classes(device):
    def images(classes):
        xp = np
        if device == "cuda":
            import cupy as xp  # noqa: F811
        return D.render_classes(classes, xp=xp).astype(np.float32)[:, None]
    return images


def per_latent_kl(model, x):
    mu, log_std = (to_numpy(a).astype(np.float64) for a in model.posterior(x))
    return (0.5 * (np.exp(2 * log_std) + mu ** 2 - 1 - 2 * log_std)).mean(axis=0)


def train_run(name, seed, args, out, metric=None):
    from scratchgan.runtime import StepRunner
    tag = f"{name}-s{seed}"
    ckpt = pathlib.Path(args.ckpt_dir) / (f"{tag}-quick" if args.quick else tag) / "last.ckpt.npz"
    model = make_model(name, args, seed)
    data = Data(args.device, seed, limit=args.limit)
    if args.resume and ckpt.exists():
        st = load_checkpoint(ckpt)
        if st.get("hyper") != dict(model.hp):
            raise SystemExit(f"{ckpt} was written with other settings ({st.get('hyper')}); "
                             f"remove it or drop --resume")
        model.load_state_dict(st["model"])
        data.load(st["data"])
        log(f"{tag}: resumed at step {model.step} from {ckpt}")
    runner = StepRunner(model, mode="auto")
    t0, curve, scores = time.time(), [], []
    last = {}
    while model.step < args.steps:
        logs = runner(data.next(args.batch))
        s = model.step
        if s % args.log_every == 0 or s == args.steps:
            last = {k: float(v) for k, v in logs.items()}
            curve.append({"step": s, **last})
            if not all(math.isfinite(v) for v in last.values()):
                raise SystemExit(f"{tag}: non-finite loss at step {s}: {last}")
        if s % args.print_every == 0 or s == args.steps:
            rate = s / max(time.time() - t0, 1e-9)
            log(f"{tag}: step {s}/{args.steps} " +
                " ".join(f"{k}={v:.4g}" for k, v in last.items()) + f" ({rate:.0f} steps/s)")
        if metric is not None and args.eval_every and s % args.eval_every == 0 and s < args.steps:
            r = metric(model)
            scores.append({"step": s, "score": r["eval_accuracy"]})
            log(f"{tag}: step {s}: metric {r['eval_accuracy']:.4f}")
        if s % args.checkpoint_every == 0 or s == args.steps:
            save_checkpoint(ckpt, {"model": model.state_dict(), "data": data.state(),
                                   "hyper": dict(model.hp)})
    return model, data, curve, time.time() - t0, runner.mode_used, scores


def cmd_metric(args):
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.device = "cpu"
        args.steps = args.steps or 30
        args.limit = 2000
        args.log_every, args.print_every, args.checkpoint_every = 5, 10, 15
        L, n_train, n_eval = 8, 200, 100
    else:
        args.steps = args.steps or 60_000
        args.limit = None
        L, n_train, n_eval = 64, 10_000, 5_000
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [m for m in args.models.split(",")]
    bad = [m for m in names if m not in MODELS]
    if bad:
        raise SystemExit(f"unknown model(s) {bad}; choose from {sorted(MODELS)}")
    res_path = out / ("metric-quick.json" if args.quick else "metric.json")
    results = json.loads(res_path.read_text()) if (args.resume and res_path.exists()) else {}
    runs = results.setdefault("runs", {})
    for name in names:
        for seed in seeds:
            tag = f"{name}-s{seed}"
            if args.resume and runs.get(tag, {}).get("steps") == args.steps:
                log(f"{tag}: done already ({runs[tag]['score']:.4f})")
                continue
            def metric(model, seed=seed):
                return beta_vae_metric(model.encode, images_of_classes(args.device),
                                       D.FACTOR_SIZES, seed=seed, L=L, n_train=n_train,
                                       n_eval=n_eval)
            model, data, curve, secs, mode, scores = train_run(name, seed, args, out, metric)
            t = time.time()
            score = metric(model)
            scores.append({"step": model.step, "score": score["eval_accuracy"]})
            probe = data.next(512) if args.device == "cpu" else data.next(1024)
            kl = per_latent_kl(model, probe)
            # traversals from the posterior mean of one image (a heart at mid scale)
            x0 = D.render_classes(np.array([[2, 3, 0, 16, 16]])).astype(np.float32)[:, None]
            rows = model.traverse_rows(z0=to_numpy(model.encode(x0))[0],
                                       values=np.linspace(-2.5, 2.5, 10))
            order = np.argsort(-kl)          # most informative latent first
            from scratchgan import viz
            pic = out / (f"traverse-{tag}" + ("-quick" if args.quick else "") + ".png")
            viz.save_rows([rows[j] for j in order], pic)
            runs[tag] = {"model": name, "beta": model.hp.get("beta"), "hyper": dict(model.hp), "seed": seed, "steps": model.step,
                         "score": score["eval_accuracy"], "train_accuracy": score["train_accuracy"],
                         "metric_seconds": time.time() - t, "train_seconds": secs,
                         "step_mode": mode, "final": curve[-1] if curve else {},
                         "kl_per_latent": [float(v) for v in kl],
                         "active_latents": int((kl > 0.1).sum()),
                         "score_curve": scores,
                         "traversal": str(pic.relative_to(ROOT)) if pic.is_relative_to(ROOT) else
                         str(pic), "curve": curve}
            log(f"{tag}: score {score['eval_accuracy']:.4f} (train {score['train_accuracy']:.4f}), "
                f"active latents {runs[tag]['active_latents']}, KL/latent "
                + " ".join(f"{v:.2f}" for v in kl[order]))
            summarize(results, names, seeds, args, L, n_train, n_eval)
            write_json(res_path, results)
    summarize(results, names, seeds, args, L, n_train, n_eval)
    write_json(res_path, results)
    table = markdown(results)
    (out / ("metric-quick.md" if args.quick else "metric.md")).write_text(table)
    log(table)


def summarize(results, names, seeds, args, L, n_train, n_eval):
    summary = {}
    for name in names:
        sc = [results["runs"][f"{name}-s{s}"]["score"] for s in seeds
              if f"{name}-s{s}" in results["runs"]]
        if sc:
            summary[name] = {"mean": float(np.mean(sc)), "std": float(np.std(sc, ddof=1))
                             if len(sc) > 1 else 0.0, "n": len(sc), "scores": sc}
    results["summary"] = summary
    results["settings"] = {"steps": args.steps, "batch": args.batch, "optimizer": args.optimizer,
                           "lr": args.lr, "adagrad_initial": args.adagrad_initial,
                           "beta": args.beta, "device": args.device, "quick": bool(args.quick),
                           "L": L, "n_train": n_train, "n_eval": n_eval, "seeds": seeds,
                           "data": "dSprites-like (scratchgan.data.dsprites), train split"}
    results["paper"] = PAPER


def markdown(results):
    lines = ["| model | β | disentanglement metric (ours, mean ± std) | seeds | paper |",
             "|---|---|---|---|---|"]
    for name, s in results.get("summary", {}).items():
        b = results.get("settings", {}).get("beta") if name == "betavae" else None
        b = MODELS[name] if b is None else b
        beta = "γ 1000, C→25" if b is None else f"{b:g}"
        lines.append(f"| {name} | {beta} | {100 * s['mean']:.2f} ± {100 * s['std']:.2f} % "
                     f"| {s['n']} | {PAPER.get(name, '–')} |")
    lines.append(f"| InfoGAN | – | not run | – | {PAPER['infogan']} |")
    st = results.get("settings", {})
    lines.append("")
    lines.append(f"Settings: {json.dumps(st)}")
    return "\n".join(lines) + "\n"


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("metric", help="train β-VAE and VAE, score the disentanglement metric")
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    s.add_argument("--quick", action="store_true", help="tiny CPU smoke run")
    s.add_argument("--steps", type=int, default=None, help="updates per run (full: 60000)")
    s.add_argument("--seeds", default="0,1,2")
    s.add_argument("--models", default="betavae,vae")
    s.add_argument("--batch", type=int, default=32)
    s.add_argument("--optimizer", default="adagrad", choices=("adagrad", "adam"))
    s.add_argument("--lr", type=float, default=1e-2)
    s.add_argument("--adagrad-initial", type=float, default=0.0,
                   help="Adagrad's initial sum of squares (0.1: the named variant that keeps "
                        "float32 from overflowing in the first steps; see betavae.py)")
    s.add_argument("--beta", type=float, default=None,
                   help="β of the 'betavae' runs (default the paper's 4; another value is a "
                        "variant, recorded in the JSON)")
    s.add_argument("--log-every", type=int, default=500)
    s.add_argument("--print-every", type=int, default=10_000)
    s.add_argument("--checkpoint-every", type=int, default=20_000)
    s.add_argument("--capacity-steps", type=int, default=100_000,
                   help="steps over which C rises to 25 nats (model 'capacity')")
    s.add_argument("--eval-every", type=int, default=0,
                   help="also score the metric every N steps (0: only at the end)")
    s.add_argument("--resume", action="store_true")
    s.add_argument("--out-dir", default=str(DEFAULT_OUT))
    s.add_argument("--ckpt-dir", default=str(ROOT / "runs" / "betavae-experiments"),
                   help="checkpoints (about 120 MB a full run; runs/ is not committed)")
    s.set_defaults(func=cmd_metric, limit=None)
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
