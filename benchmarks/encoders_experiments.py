"""The encoder GANs against their papers: ALI's mode count on 25 Gaussians, BiGAN's MNIST features.

Every run trains the library's models through ``model.train_step`` (on the GPU through
``scratchgan.runtime.StepRunner``: each step replayed from a captured CUDA graph).

``modes``        ALI (Dumoulin et al. 2017), the 25-Gaussian protocol (its mixture figure):
                 100,000 training points of the 5×5 grid mixture (``scratchgan.data.toy``
                 grid25: means {-4, -2, 0, 2, 4}², isotropic std 0.05 — the same centroids
                 and covariance as the official ``experiments/ali_mixture.py``); ``--runs`` 10
                 runs per model, each with a random Adam learning rate, β1 and init scale
                 (see RANGES); 10,000 samples each, assigned to the component of largest
                 responsibility (equal weights and equal isotropic covariances: the nearest
                 mean); a mode is dropped when no sample is assigned to it. Models:
                   ali      ALI, the paper's mixture networks (``arch="mixture"``), batch 100
                   gan      the paper's GAN baseline: the same decoder and discriminator, D on x
                            only (``ali`` with ``joint=False``), batch 100
                   wgan-gp  the library's WGAN-GP, toy MLP variant (3 × 512 ReLU, λ 0.1,
                            n_critic 5, z 2-d), batch 100 (each generator iteration reads 5
                            minibatches; epochs count passes over the 100,000 points)
                   wgan     the library's WGAN with weight clipping, the same 3 × 512 ReLU MLPs
                            (c 0.01, n_critic 5, RMSprop at the run's lr; β1 unused), batch 100
                 (``--models`` also takes ``gan-library``: the library's own ``gan`` toy variant.)
                 Published (10 runs each): ALI 13.4 ± 5.8 (8–25), GAN 10.4 ± 9.2 (1–22).
``bigan-mnist``  BiGAN (Donahue et al. 2017), the authors' permutation-invariant MNIST run
                 (``arch="mnist_mlp"``, 400 epochs = 200 + 200 of decay by default, ``--epochs``
                 shortens it, the decay keeping its half of the run); checkpointed every
                 ``--checkpoint-every`` epochs, ``--resume`` continues exactly (the model's
                 state, the data order's generator, the epoch). Evaluation: 1-nearest-neighbour
                 accuracy on the 10,000 MNIST test images with the 60,000 training images as
                 neighbours (Euclidean) on the encoder's penultimate layer (1024-d) and on its
                 output (the linear 50-d output before the squashing, the authors' ``NNC_e``);
                 logistic regression on the penultimate features; reconstruction error
                 ||x − G(E(x))|| against a shuffled baseline (the authors' EGr / EGr_b); a
                 picture of test images above their reconstructions. The authors' log at epoch
                 400: NNC_e- 97.35 %, NNC_e 92.10 %, CLS_e- 79.48 % (their neighbours: 50,000
                 training images; their evaluation set: 10,000 held-out training images).

``--quick`` makes both tiny (a few steps, a few hundred points) for a CPU smoke test.
Outputs (JSON + PNG) go to ``--out-dir`` (default benchmarks/results/encoders).

    python benchmarks/encoders_experiments.py modes --device cuda
    python benchmarks/encoders_experiments.py bigan-mnist --device cuda --data-dir DATA
    python benchmarks/encoders_experiments.py bigan-mnist --device cuda --resume --epochs 400
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from scratchgan.backend import to_numpy  # noqa: E402
from scratchgan.data.toy import sample_toy, toy_modes, toy_std  # noqa: E402
from scratchgan.metrics.toy import mode_statistics  # noqa: E402
from scratchgan.models import get_model  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "encoders"
PAPER = {"ali": (13.4, 5.8, 8, 25), "gan": (10.4, 9.2, 1, 22), "runs": 10, "points": 100_000,
         "samples": 10_000, "epochs": 200,
         "bigan": {"nn_penultimate": 97.35, "nn_output": 92.10, "logistic": 79.48, "epochs": 400}}
#: the random search of the modes protocol (the paper: "random learning rate and β1 values",
#: weights "from a gaussian distribution with a random standard deviation", no ranges given).
#: Ours are centred on the official mixture script's values (lr 1e-4, β1 0.8, N(0, 0.02²)):
#: lr log-uniform over a decade and a half around it, β1 uniform between the common 0.5 and
#: 0.9, the init std log-uniform over a factor 10 around 0.02.
RANGES = {"lr": (3e-5, 1e-3), "beta1": (0.5, 0.9), "init_std": (0.006, 0.06)}
MODE_MODELS = ("ali", "gan", "wgan-gp", "wgan")


from bench_common import device_name as _device_name  # noqa: E402
from bench_common import write_json as _write_json  # noqa: E402

def draw_hyper(seed, run):
    g = np.random.default_rng([seed, run, 2017])
    lo, hi = RANGES["lr"]
    lr = float(math.exp(g.uniform(math.log(lo), math.log(hi))))
    beta1 = float(g.uniform(*RANGES["beta1"]))
    lo, hi = RANGES["init_std"]
    std = float(math.exp(g.uniform(math.log(lo), math.log(hi))))
    return {"lr": lr, "beta1": beta1, "init_std": std}


def redraw_weights(model, std, seed):
    """Every Linear/Maxout weight of every network ~ N(0, std²), biases 0 (in place: the
    parameters stay views of their flat buffers)."""
    from scratchgan import nn
    g = np.random.default_rng([seed, 31])
    for net in model.networks().values():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Maxout)):
                m.weight.data[...] = model.to_model(g.normal(0.0, std, m.weight.shape))
                if m.bias is not None:
                    m.bias.data[...] = 0


def build_mode_model(name, hyper, device, seed, quick):
    """One model of the modes protocol with the run's random lr, β1 and init scale."""
    small = dict(gen_hidden=16, disc_hidden=8) if quick else {}
    if name in ("ali", "gan"):
        return get_model("ali")((2,), device=device, rng=seed, lr=hyper["lr"],
                                beta1=hyper["beta1"], init_std=hyper["init_std"],
                                joint=(name == "ali"), **small)
    if name == "wgan-gp":
        m = get_model("wgan-gp")((2,), device=device, rng=seed, arch="mlp", lr=hyper["lr"],
                                 betas=(hyper["beta1"], 0.9), mlp_hidden=16 if quick else 512)
        redraw_weights(m, hyper["init_std"], seed)
        return m
    if name == "wgan":
        m = get_model("wgan")((2,), device=device, rng=seed, arch="mlp", lr=hyper["lr"],
                              mlp_hidden=16 if quick else 512, mlp_layers=3)
        redraw_weights(m, hyper["init_std"], seed)
        return m
    if name == "gan-library":
        m = get_model("gan")((2,), device=device, rng=seed, arch="toy", lr=hyper["lr"],
                             betas=(hyper["beta1"], 0.999))
        redraw_weights(m, hyper["init_std"], seed)
        return m
    raise ValueError(f"unknown model {name!r}; expected one of {MODE_MODELS + ('gan-library',)}")


class DeviceData:
    """A fixed training set on the model's device; a host permutation per epoch picks the rows
    of each step (the last incomplete minibatch of an epoch is dropped)."""

    def __init__(self, x, model, batch, seed):
        self.x = model.to_model(np.ascontiguousarray(x))
        self.n, self.batch, self.model = len(x), int(batch), model
        self.rng = np.random.default_rng([seed, 11])
        self.perm, self.pos, self.epoch = self.rng.permutation(self.n), 0, 0

    def next(self, k=1):
        need = k * self.batch
        if self.pos + need > self.n:
            self.perm, self.pos = self.rng.permutation(self.n), 0
            self.epoch += 1
        idx = self.perm[self.pos:self.pos + need]
        self.pos += need
        rows = self.x[self.model.to_model(idx, dtype=False)]
        return rows if k == 1 else [rows[i * self.batch:(i + 1) * self.batch] for i in range(k)]

    def state(self):
        return {"rng": self.rng.bit_generator.state, "perm": self.perm, "pos": self.pos,
                "epoch": self.epoch}

    def load(self, st):
        self.rng.bit_generator.state = st["rng"]
        self.perm, self.pos, self.epoch = np.asarray(st["perm"]), int(st["pos"]), int(st["epoch"])


def count_modes(samples, centres):
    """ALI's count: each sample to its nearest centre (the most responsible component of an
    equal-weight, equal-isotropic-covariance mixture); (modes with >= 1 sample, counts)."""
    x = np.asarray(samples, dtype=np.float64)
    d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    counts = np.bincount(d.argmin(1), minlength=len(centres))
    return int((counts > 0).sum()), counts


# ------------------------------------------------------------------------------- modes
def train_mode_run(name, run, args, quick, log):
    from scratchgan.runtime import StepRunner
    seed = args.seed + run
    hyper = draw_hyper(args.seed, run)
    points = 400 if quick else args.points
    x_train = sample_toy("grid25", points, np.random.default_rng([seed, 5]))
    model = build_mode_model(name, hyper, args.device, seed, quick)
    runner = StepRunner(model, mode=args.step_mode)
    batch = 20 if quick else args.batch
    data = DeviceData(x_train, model, batch, seed)
    k = model.batches_per_step()
    steps_per_epoch = (points // batch) // k
    steps = 3 if quick else int(round(args.epochs * steps_per_epoch))
    t0 = time.time()
    logs = None
    for _ in range(steps):
        xs = data.next(k)
        logs = runner(xs)
    last = {kk: float(v) for kk, v in (logs or {}).items()}
    train_s = time.time() - t0
    n = 300 if quick else args.samples
    g = to_numpy(model.generate(model.sample_noise(n, rng=np.random.default_rng([seed, 99]))))
    g = g.astype(np.float64)
    centres = toy_modes("grid25")
    covered, counts = count_modes(g, centres) if np.all(np.isfinite(g)) else (0, np.zeros(25))
    strict = mode_statistics(g, centres, toy_std("grid25")) if np.all(np.isfinite(g)) else None
    res = {"model": name, "run": run, "seed": seed, "hyper": hyper, "steps": steps,
           "epochs": round(steps * k * batch / points, 3), "batch": batch,
           "modes_covered": covered, "counts": counts.tolist(),
           "modes_3sigma": None if strict is None else strict["modes_covered"],
           "high_quality_fraction": None if strict is None else strict["high_quality_fraction"],
           "finite": bool(np.all(np.isfinite(g))), "last_logs": last,
           "train_seconds": round(train_s, 1), "step_mode": runner.mode_used,
           "graph_fallback_reason": runner.reason,
           "samples_preview": g[:1000].round(4).tolist()}
    log(f"modes {name} run {run}: {covered} modes (3σ/strict: {res['modes_3sigma']}), lr "
        f"{hyper['lr']:.2e} β1 {hyper['beta1']:.2f} init {hyper['init_std']:.3f}, {steps} steps "
        f"in {train_s:.1f} s ({runner.mode_used})", flush=True)
    return res


def _read_runs(paths):
    done = {}
    for path in paths:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    done[(r["model"], r["run"])] = r
    return done


def cmd_modes(args):
    if args.worker_devices and not all(d.strip().isdigit() for d in args.worker_devices.split(",")):
        raise SystemExit(f"--worker-devices: expected comma-separated CUDA device ids such as "
                         f"0,1, got {args.worker_devices!r}")   # before any file is touched
    q = args.quick
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = "-quick" if q else ""
    runs_path = out / f"modes-runs{tag}.jsonl"
    models = tuple(args.models.split(",")) if args.models else MODE_MODELS
    runs = 2 if q else args.runs
    todo = [(name, run) for name in models for run in range(runs)]
    if args.worker is not None:                      # one of --jobs processes: its share only
        i, n = (int(v) for v in args.worker.split("/"))
        path = out / f"modes-runs{tag}.w{i}.jsonl"
        # every finished run counts, whichever worker (or earlier --jobs value) wrote it
        done = _read_runs([runs_path] + sorted(out.glob(f"modes-runs{tag}.w*.jsonl")))
        for name, run in todo[i::n]:
            if (name, run) not in done:
                r = train_mode_run(name, run, args, q, print)
                with open(path, "a") as f:
                    f.write(json.dumps(r) + "\n")
        return 0
    parts = sorted(out.glob(f"modes-runs{tag}.w*.jsonl"))
    if not args.resume:
        for path in [runs_path] + parts:
            if path.exists():
                path.unlink()
        parts = []
    done = _read_runs([runs_path] + parts)
    if done:
        print(f"modes: resuming, {len(done)} runs already in {out}", flush=True)
    t0 = time.time()
    left = [t for t in todo if t not in done]
    if args.jobs > 1 and left:
        import subprocess
        argv = [sys.executable, str(pathlib.Path(__file__).resolve())] + [
            a for a in args.argv if a not in ("--resume",)] + ["--resume"]
        # the workers share the GPU; each trains its share of the runs one after another
        devices = args.worker_devices.split(",") if args.worker_devices else None
        procs = []
        for i in range(args.jobs):
            env = dict(os.environ)
            if devices:                                 # workers dealt round-robin to GPUs
                env["CUDA_VISIBLE_DEVICES"] = devices[i % len(devices)]
            procs.append(subprocess.Popen(argv + ["--worker", f"{i}/{args.jobs}"], env=env))
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"modes: a worker failed (exit codes {codes})")
        done = _read_runs([runs_path] + sorted(out.glob(f"modes-runs{tag}.w*.jsonl")))
    else:
        for name, run in left:
            r = train_mode_run(name, run, args, q, print)
            done[(name, run)] = r
            with open(runs_path, "a") as f:
                f.write(json.dumps(r) + "\n")
    with open(runs_path, "w") as f:                   # one file, in order; workers' parts go
        for t in todo:
            f.write(json.dumps(done[t]) + "\n")
    for path in out.glob(f"modes-runs{tag}.w*.jsonl"):
        path.unlink()
    summary = {}
    for name in models:
        rs = [done[(name, i)] for i in range(runs)]
        ks = np.array([r["modes_covered"] for r in rs], float)
        hs = np.array([r["modes_3sigma"] or 0 for r in rs], float)
        summary[name] = {"mean": float(ks.mean()),
                         "std": float(ks.std(ddof=1)) if runs > 1 else 0.0,
                         "min": int(ks.min()), "max": int(ks.max()),
                         "mean_3sigma": float(hs.mean()),
                         "std_3sigma": float(hs.std(ddof=1)) if runs > 1 else 0.0,
                         "per_run": ks.astype(int).tolist(),
                         "train_seconds": [r["train_seconds"] for r in rs]}
    protocol = {"data": "grid25: means {-4,-2,0,2,4}^2, isotropic std 0.05 (as ali_mixture.py)",
                "points": 400 if q else args.points, "runs": runs,
                "epochs": None if q else args.epochs, "paper_epochs": PAPER["epochs"],
                "batch": 20 if q else args.batch, "samples": 300 if q else args.samples,
                "ranges": RANGES, "assignment": "nearest mean (max responsibility)",
                "dropped": "no sample assigned", "seed": args.seed, "jobs": args.jobs,
                "reduced": bool(q or args.epochs < PAPER["epochs"] or runs < PAPER["runs"])}
    res = {"experiment": "ALI 25-Gaussian mode count", "device": _device_name(args.device),
           "protocol": protocol, "summary": summary,
           "paper": {"ali": PAPER["ali"], "gan": PAPER["gan"]},
           "wall_seconds_this_call": round(time.time() - t0, 1), "quick": q}
    _write_json(out / f"modes{tag}.json", res)
    plot_modes(done, models, runs, summary, out / f"modes{tag}.png")
    for name, s in summary.items():
        ref = PAPER.get(name)
        ref_s = f" (paper {ref[0]} ± {ref[1]})" if ref else ""
        print(f"modes {name}: {s['mean']:.1f} ± {s['std']:.1f} modes covered, min {s['min']} "
              f"max {s['max']}{ref_s}; within 3σ (≥ N/250 each): {s['mean_3sigma']:.1f}")
    print(f"wrote {out / f'modes{tag}.json'} and {out / f'modes{tag}.png'}")
    return 0


def plot_modes(done, models, runs, summary, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    centres = toy_modes("grid25")
    fig = Figure(figsize=(max(1.6 * runs, 6.0), 1.7 * len(models) + 0.6))
    FigureCanvasAgg(fig)
    for i, name in enumerate(models):
        for j in range(runs):
            ax = fig.add_subplot(len(models), runs, i * runs + j + 1)
            r = done[(name, j)]
            s = np.asarray(r["samples_preview"], float).reshape(-1, 2)
            ax.scatter(centres[:, 0], centres[:, 1], s=4, c="0.6", marker="x")
            if len(s):
                ax.scatter(s[:, 0], s[:, 1], s=1, c="tab:red", alpha=0.5)
            ax.set_xlim(-6, 6)
            ax.set_ylim(-6, 6)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{r['modes_covered']} modes", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{name}\n{summary[name]['mean']:.1f}±{summary[name]['std']:.1f}",
                              fontsize=8)
    fig.suptitle("25 Gaussians: 1,000 of each run's samples (red) over the means (grey)\n"
                 "panel title: modes covered by all of the run's samples", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=70)


# ------------------------------------------------------------------------- bigan-mnist
def nearest_neighbour_accuracy(train_f, train_y, test_f, test_y, xp, chunk=1000):
    """1-NN (Euclidean) accuracy in %, on the device of ``xp``."""
    a = xp.asarray(train_f, dtype=xp.float32)
    a2 = (a * a).sum(1)
    ty = xp.asarray(train_y)
    correct = 0
    for i in range(0, len(test_f), chunk):
        b = xp.asarray(test_f[i:i + chunk], dtype=xp.float32)
        d = a2[None, :] - 2.0 * (b @ a.T)            # ||b||² is constant per row
        pred = ty[d.argmin(1)]
        correct += int((pred == xp.asarray(test_y[i:i + chunk])).sum())
    return 100.0 * correct / len(test_f)


def logistic_regression_accuracy(train_f, train_y, test_f, test_y, xp, epochs=30, lr=1e-3,
                                 batch=128, seed=0):
    """A softmax classifier on fixed features (Adam, cross-entropy, hand-written gradient
    dW = Xᵀ(P − Y)/n), its test accuracy in %; features standardised by the training set's
    mean and std."""
    x = xp.asarray(train_f, dtype=xp.float32)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = (x - mu) / sd
    xt = (xp.asarray(test_f, dtype=xp.float32) - mu) / sd
    y = xp.asarray(train_y).astype(np.int64)
    k = 10
    w = xp.zeros((x.shape[1], k), xp.float32)
    b = xp.zeros((k,), xp.float32)
    mw, vw, mb, vb = (xp.zeros_like(w), xp.zeros_like(w), xp.zeros_like(b), xp.zeros_like(b))
    g = np.random.default_rng(seed)
    t = 0
    eye = xp.eye(k, dtype=xp.float32)
    for _ in range(epochs):
        perm = g.permutation(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            idx = xp.asarray(perm[i:i + batch])
            xb, yb = x[idx], y[idx]
            s = xb @ w + b
            s = s - s.max(1, keepdims=True)
            p = xp.exp(s)
            p /= p.sum(1, keepdims=True)
            d = (p - eye[yb]) / batch
            gw, gb = xb.T @ d, d.sum(0)
            t += 1
            for prm, grd, m_, v_ in ((w, gw, mw, vw), (b, gb, mb, vb)):
                m_ *= 0.9
                m_ += 0.1 * grd
                v_ *= 0.999
                v_ += 0.001 * grd * grd
                prm -= lr * (m_ / (1 - 0.9 ** t)) / (xp.sqrt(v_ / (1 - 0.999 ** t)) + 1e-8)
    pred = (xt @ w + b).argmax(1)
    return 100.0 * float((pred == xp.asarray(test_y)).mean())


def encoder_features(model, x, batch=1000):
    pen, out = [], []
    for i in range(0, len(x), batch):
        f = model.features(x[i:i + batch])
        pen.append(to_numpy(f["penultimate"]))
        out.append(to_numpy(f["output"]))
    return np.concatenate(pen), np.concatenate(out)


def evaluate_bigan(model, xtr, ytr, xte, yte, xp, quick):
    t = time.time()
    ftr_p, ftr_o = encoder_features(model, xtr)
    fte_p, fte_o = encoder_features(model, xte)
    res = {"nn_penultimate": nearest_neighbour_accuracy(ftr_p, ytr, fte_p, yte, xp),
           "nn_output": nearest_neighbour_accuracy(ftr_o, ytr, fte_o, yte, xp),
           "logistic_penultimate": logistic_regression_accuracy(
               ftr_p, ytr, fte_p, yte, xp, epochs=2 if quick else 30)}
    xr = np.concatenate([to_numpy(model.reconstruct(xte[i:i + 1000]))
                         for i in range(0, len(xte), 1000)])
    a, r = xte.reshape(len(xte), -1), xr.reshape(len(xr), -1)
    res["recon_l2"] = float(np.sqrt(((a - r) ** 2).sum(1)).mean())
    res["recon_l2_baseline"] = float(np.sqrt(((np.roll(a, 1, 0) - r) ** 2).sum(1)).mean())
    res["eval_seconds"] = round(time.time() - t, 1)
    return res


def cmd_bigan_mnist(args):
    from scratchgan.checkpoint import load_checkpoint, save_checkpoint
    from scratchgan.data import load_dataset
    from scratchgan.runtime import StepRunner
    from scratchgan import viz
    q = args.quick
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = "-quick" if q else ""
    ckpt_path = pathlib.Path(out if q else args.ckpt_dir) / f"bigan-mnist{tag}.ckpt.npz"
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    if q:
        from scratchgan.data.standin import load_or_standin
        xtr, ytr, _ = load_or_standin("mnist", data_dir=args.data_dir, split="train", limit=512,
                                      download=False, standin=True)
        xte, yte, _ = load_or_standin("mnist", data_dir=args.data_dir, split="test", limit=128,
                                      download=False, standin=True)
    else:
        xtr, ytr = load_dataset("mnist", (0.0, 1.0), data_dir=args.data_dir, split="train")
        xte, yte = load_dataset("mnist", (0.0, 1.0), data_dir=args.data_dir, split="test")
    batch = 32 if q else args.batch
    spe = len(xtr) // batch
    epochs = min(2, args.epochs) if q else args.epochs
    hyper = dict(steps_per_epoch=spe, constant_epochs=epochs - epochs // 2,
                 decay_epochs=epochs // 2, updates=args.updates)
    if q:
        hyper.update(hidden=32)
    model = get_model("bigan")((1, 28, 28), device=args.device, rng=args.seed, **hyper)
    data = DeviceData(xtr, model, batch, args.seed)
    history, start_epoch, train_s = [], 0, 0.0
    if args.resume and ckpt_path.exists():
        st = load_checkpoint(ckpt_path)
        if st["hyper"] != json.loads(json.dumps(hyper)):
            raise SystemExit(f"--resume: {ckpt_path} was trained with {st['hyper']}, now "
                             f"{hyper}; give the same --epochs/--batch/--updates")
        model.load_state_dict(st["model"])
        data.load(st["data"])
        history, start_epoch, train_s = list(st["history"]), int(st["epoch"]), float(st["train_s"])
        print(f"bigan-mnist: resumed at epoch {start_epoch} from {ckpt_path}", flush=True)
    runner = StepRunner(model, mode=args.step_mode)
    xp = model.xp
    deadline = time.time() + args.time_limit if args.time_limit else None
    t0 = time.time()
    epoch, stopped = start_epoch, False
    stop_at = epochs if not args.epochs_this_call else min(epochs, epoch + args.epochs_this_call)
    while epoch < epochs:
        if (deadline and time.time() > deadline) or epoch >= stop_at:
            stopped = True
            break
        ts = time.time()
        acc = {k: xp.zeros((), np.float64) for k in ("loss_d", "loss_ge")}
        for _ in range(spe):
            logs = runner(data.next())
            for k in acc:
                acc[k] += logs[k]
        row = {"epoch": epoch + 1, "lr": model.opt_D.lr}
        row.update({k: float(v) / spe for k, v in acc.items()})        # one read per epoch
        train_s += time.time() - ts
        epoch += 1
        if epoch % args.eval_every == 0 or epoch == epochs:
            row.update(evaluate_bigan(model, xtr, ytr, xte, yte, xp, q))
        history.append(row)
        print(f"bigan-mnist epoch {epoch}/{epochs}: " + " ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
            if k != "epoch"), flush=True)
        if epoch % args.checkpoint_every == 0 or epoch == epochs:
            save_checkpoint(ckpt_path, {"model": model.state_dict(), "data": data.state(),
                                        "history": history, "epoch": epoch, "train_s": train_s,
                                        "hyper": hyper})
    if stopped:
        save_checkpoint(ckpt_path, {"model": model.state_dict(), "data": data.state(),
                                    "history": history, "epoch": epoch, "train_s": train_s,
                                    "hyper": hyper})
        print(f"bigan-mnist: stopped after epoch {epoch} of {epochs} (time limit or "
              f"--epochs-this-call); continue with --resume", flush=True)
    final = history[-1] if history and "nn_penultimate" in history[-1] else \
        evaluate_bigan(model, xtr, ytr, xte, yte, xp, q)
    # pictures: 10 test images of each class above their reconstructions; samples
    rows = []
    for c in range(10):
        idx = np.flatnonzero(yte == c)[:10]
        if len(idx) == 10:
            rows += [xte[idx], to_numpy(model.reconstruct(xte[idx]))]
    if rows:
        viz.save_rows(rows, out / f"bigan-mnist-reconstructions{tag}.png")
    viz.save_grid(to_numpy(model.generate(model.sample_noise(100, rng=np.random.default_rng(0)))),
                  out / f"bigan-mnist-samples{tag}.png", nrow=10)
    res = {"experiment": "BiGAN permutation-invariant MNIST features",
           "device": _device_name(args.device), "epochs_done": epoch, "epochs_planned": epochs,
           "paper_epochs": PAPER["bigan"]["epochs"], "stopped_early": stopped,
           "hyper": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.hp.items()},
           "neighbours": f"{len(xtr)} training images", "evaluated_on": f"{len(xte)} test images",
           "final": final, "paper": PAPER["bigan"], "train_seconds": round(train_s, 1),
           "wall_seconds_this_call": round(time.time() - t0, 1),
           "step_mode": runner.mode_used, "graph_fallback_reason": runner.reason,
           "history": history, "quick": q}
    _write_json(out / f"bigan-mnist{tag}.json", res)
    if q and not stopped and ckpt_path.exists():
        ckpt_path.unlink()                    # a finished smoke run keeps no checkpoint
    print(f"bigan-mnist after {epoch} epochs: 1-NN penultimate {final['nn_penultimate']:.2f} % "
          f"(authors 97.35), output {final['nn_output']:.2f} % (92.10), logistic "
          f"{final['logistic_penultimate']:.2f} % (79.48); ||x - G(E(x))|| "
          f"{final['recon_l2']:.3f} vs shuffled {final['recon_l2_baseline']:.3f}")
    print(f"wrote {out / f'bigan-mnist{tag}.json'}")
    return 0


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def common(s):
        s.add_argument("--device", default="cpu", help="cpu or cuda")
        s.add_argument("--quick", action="store_true", help="tiny CPU smoke run")
        s.add_argument("--out-dir", default=str(DEFAULT_OUT))
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--resume", action="store_true",
                       help="continue from what is already written in --out-dir")
        s.add_argument("--step-mode", default="auto", choices=("auto", "eager", "graph"),
                       help="GPU steps from CUDA graphs (auto, graph) or run eagerly (eager); "
                            "the CPU always runs eagerly")

    s = sub.add_parser("modes", help="ALI's 25-Gaussian mode count (ALI, GAN, WGAN-GP)")
    common(s)
    s.add_argument("--runs", type=int, default=PAPER["runs"])
    s.add_argument("--epochs", type=float, default=10.0,
                   help="passes over the training points (the official script: 200)")
    s.add_argument("--points", type=int, default=PAPER["points"])
    s.add_argument("--samples", type=int, default=PAPER["samples"])
    s.add_argument("--batch", type=int, default=100)
    s.add_argument("--models", help=f"comma-separated, default {','.join(MODE_MODELS)} "
                                    "(also gan-library)")
    s.add_argument("--jobs", type=int, default=1,
                   help="processes sharing the device, each training its share of the runs")
    s.add_argument("--worker-devices", metavar="IDS",
                   help="comma-separated CUDA device ids the --jobs workers are dealt to "
                        "round-robin (default: all share the visible device)")
    s.add_argument("--worker", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_modes)

    s = sub.add_parser("bigan-mnist", help="BiGAN on MNIST: 1-NN / logistic accuracy of E")
    common(s)
    s.add_argument("--data-dir", help="folder holding mnist/")
    s.add_argument("--epochs", type=int, default=PAPER["bigan"]["epochs"],
                   help="total epochs; the second half decays the learning rate (400)")
    s.add_argument("--batch", type=int, default=128)
    s.add_argument("--updates", default="simultaneous", choices=("simultaneous", "alternating"))
    s.add_argument("--eval-every", type=int, default=50, help="epochs between evaluations")
    s.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints")
    s.add_argument("--time-limit", type=float, help="seconds; stop (and checkpoint) after it")
    s.add_argument("--ckpt-dir", default=str(ROOT / "runs" / "encoders"),
                   help="where the resumable checkpoint lives (default runs/encoders, ignored "
                        "by git; --quick: the --out-dir)")
    s.add_argument("--epochs-this-call", type=int,
                   help="train at most this many epochs now, checkpoint, and stop (--resume "
                        "continues): a long run in chunks")
    s.set_defaults(func=cmd_bigan_mnist)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = make_parser().parse_args(argv)
    args.argv = argv
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
