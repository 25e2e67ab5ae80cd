"""VAE-GAN (Larsen et al. 2016) on MNIST, measured as issue 13 asks.

Every run trains the library's ``vaegan`` model through ``model.train_step`` (one step of
Algorithm 1) on real MNIST minibatches kept on the device; on the GPU the steps run as CUDA
graphs (``scratchgan.runtime.StepRunner``). Training is checkpointed (model, data order and
loss curve) every ``--checkpoint-every`` steps and when ``--time-limit`` stops it, so
``--resume`` continues a run exactly where it stopped.

``onenn``     the authors' MNIST protocol (``cond_vaegan_mnist.py``): train the conditional
              variant (``variant="cond-mnist"``: label-conditioned MLPs, RMSProp, batch 128,
              the script's 27,500 updates and learning-rate schedule; ``--steps`` shortens
              the run and scales the schedule with it), then generate ``--n-samples``
              labelled samples (default 100,000; the authors used 1,000,000) and fit a
              1-nearest-neighbour classifier (Euclidean, pixels) on them; report its error on
              the 10,000 MNIST test images. As in the script, z is drawn from a Gaussian with
              the mean and covariance of the encoded training set (posterior means) and the
              labels cycle through the training labels; z ~ N(0, I) is reported beside it,
              and so is 1-NN on the real training set (the reference).
``quality``   the unconditional model (``variant="mnist-mlp"``, Dis_l reconstruction; with
              and without the authors' equilibrium rule) and the library's ``vae`` (its paper
              defaults, on the same grey-level [0, 1] images), each trained ``--epochs``
              epochs; LeNet Inception Score and Fréchet distance of 10,000 samples
              (``scratchgan.metrics``), the test-set reconstruction error, DCGAN's figures from
              benchmarks/results/reproduction.md quoted beside them, sample grids, and the
              reconstruction figure (the same test images through VAE and VAE-GAN).
``figure``    redraws the reconstruction figure from ``quality``'s checkpoints.

Outputs: JSON + PNG under ``--out-dir`` (default benchmarks/results/vaegan); checkpoints
under ``--ckpt-dir`` (default runs/vaegan-experiments, git-ignored). ``--quick`` is a CPU
smoke run (small networks, a few steps, few samples).

    python benchmarks/vaegan_experiments.py onenn --device cuda --data-dir DATA
    python benchmarks/vaegan_experiments.py onenn --device cuda --data-dir DATA --resume
    python benchmarks/vaegan_experiments.py quality --device cuda --data-dir DATA --epochs 20
    python benchmarks/vaegan_experiments.py onenn --quick      (and quality --quick)
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import platform
import re
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from scratchgan.backend import get_array_module, to_numpy  # noqa: E402
from scratchgan.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from scratchgan.models import get_model  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "vaegan"
DEFAULT_CKPT = ROOT / "runs" / "vaegan-experiments"      # git-ignored: checkpoints are large
QUICK_NETS = dict(enc_hidden=64, dec_hidden=96, d_hidden=96, latent_dim=8)
AUTHORS_SAMPLES = 1_000_000
SCRIPT_STEPS = 27_500


# --------------------------------------------------------------------------------- data
from bench_common import device_name as _device_name  # noqa: E402
from bench_common import write_json as _write_json  # noqa: E402

def load_split(split, data_dir, limit=None):
    from scratchgan.data.idx import load_mnist
    x, y = load_mnist(split, "mnist", data_dir=data_dir, download=False)
    if limit:
        x, y = x[:limit], y[:limit]
    return np.asarray(x), np.asarray(y).astype(np.int64)


class DeviceBatches:
    """Minibatches gathered on the device from images kept there in [0, 1]; one permutation
    per epoch (the remainder dropped); the order's state is checkpointed."""

    def __init__(self, images_u8, labels, model, batch, seed):
        x = (images_u8.astype(np.float32) / 255.0)[:, None, :, :]
        self.x = model.to_model(np.ascontiguousarray(x))
        self.y = model.to_model(labels, dtype=False)
        self.n, self.batch, self.model = len(images_u8), int(batch), model
        self.rng = np.random.default_rng([seed, 11])
        self.perm, self.pos = self.rng.permutation(self.n), 0

    def next(self):
        if self.pos + self.batch > self.n:
            self.perm, self.pos = self.rng.permutation(self.n), 0
        idx = self.model.to_model(self.perm[self.pos:self.pos + self.batch], dtype=False)
        self.pos += self.batch
        return self.x[idx], self.y[idx]

    def state_dict(self):
        return {"perm": self.perm, "pos": self.pos, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, sd):
        self.perm, self.pos = np.asarray(sd["perm"]), int(sd["pos"])
        self.rng.bit_generator.state = sd["rng"]


# ----------------------------------------------------------------------------- training
def train(model, batches, steps, ckpt, args, log_keys, log=print):
    """Run ``model`` to ``steps`` steps (resuming from ``ckpt`` with ``--resume``); returns
    (curve, finished, train_seconds)."""
    from scratchgan.runtime import StepRunner
    curve = {"step": [], **{k: [] for k in log_keys}}
    if args.resume and ckpt.exists():
        st = load_checkpoint(ckpt)
        model.load_state_dict(st["model"])
        batches.load_state_dict(st["data"])
        curve = st["curve"]
        log(f"resumed {ckpt.name} at step {model.step}", flush=True)
    runner = StepRunner(model)
    xp = get_array_module(batches.x)
    acc = {k: xp.zeros((), np.float64) for k in log_keys}
    n_acc, t_train = 0, 0.0
    deadline = time.time() + args.time_limit if args.time_limit else None
    every = max(1, args.log_every)

    def save():
        save_checkpoint(ckpt, {"model": model.state_dict(), "data": batches.state_dict(),
                               "curve": curve})

    while model.step < steps:
        if deadline is not None and time.time() > deadline:
            if n_acc:                       # the partial window goes into the curve too
                curve["step"].append(int(model.step))
                for k, v in acc.items():
                    curve[k].append(float(v) / n_acc)
            save()
            log(f"time limit: stopped at step {model.step} of {steps}; checkpoint {ckpt} "
                f"(run again with --resume)", flush=True)
            return curve, False, t_train
        t0 = time.time()
        x, y = batches.next()
        logs = runner(x, y if model.conditional else None)
        for k in log_keys:
            acc[k] += logs[k]
        n_acc += 1
        if model.step % every == 0 or model.step == steps:
            vals = {k: float(v) / n_acc for k, v in acc.items()}      # the host read
            if not all(math.isfinite(v) for v in vals.values()):
                save()
                raise FloatingPointError(f"non-finite losses at step {model.step}: {vals}")
            curve["step"].append(int(model.step))
            for k, v in vals.items():
                curve[k].append(v)
            acc = {k: xp.zeros((), np.float64) for k in log_keys}
            n_acc = 0
            if model.step % (every * 10) == 0 or model.step == steps:
                log(f"{model.name} step {model.step}/{steps} " +
                    " ".join(f"{k} {v:.4g}" for k, v in vals.items()), flush=True)
        t_train += time.time() - t0
        if args.checkpoint_every and model.step % args.checkpoint_every == 0:
            save()
    save()
    return curve, True, t_train


def vaegan_hyper(args, **extra):
    hp = dict(QUICK_NETS) if args.quick else {}
    hp.update(extra)
    hp.update(parse_sets(args.set))
    return hp


def parse_sets(items):
    """``--set KEY=VALUE`` overrides of the vaegan hyperparameters (int, float, true/false,
    none or text)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        low = v.strip().lower()
        if low in ("true", "false"):
            out[k] = low == "true"
        elif low == "none":
            out[k] = None
        else:
            for kind in (int, float):
                try:
                    out[k] = kind(v)
                    break
                except ValueError:
                    pass
            else:
                out[k] = v
    return out


def suffix(args):
    return (f"-{args.tag}" if args.tag else "") + ("-quick" if args.quick else "")


# ------------------------------------------------------------------------------- 1-NN
def nn1_error(train_x, train_y, test_x, test_y, chunk=1000):
    """Test error of the 1-nearest-neighbour (Euclidean) classifier on flat arrays of one
    device: argmin_j ||t - x_j||^2 = argmin_j (||x_j||^2 - 2 t.x_j)."""
    xp = get_array_module(train_x)
    sq = (train_x * train_x).sum(axis=1)
    wrong = 0
    for i in range(0, len(test_x), chunk):
        t = test_x[i:i + chunk]
        d = sq[None, :] - 2.0 * (t @ train_x.T)
        pred = train_y[xp.argmin(d, axis=1)]
        wrong += int((pred != test_y[i:i + chunk]).sum())
    return wrong / len(test_x)


def generate_labelled(model, n, labels_cycle, z_sampler, batch=2000):
    xs, ys = [], []
    for i in range(0, n, batch):
        m = min(batch, n - i)
        lab = labels_cycle[np.arange(i, i + m) % len(labels_cycle)]
        z = z_sampler(m)
        x = model.generate({"z": model.to_model(z), "labels": lab})
        xs.append(x.reshape(m, -1).astype(np.float32))
        ys.append(lab)
    xp = get_array_module(xs[0])
    return xp.concatenate(xs), np.concatenate(ys)


def cmd_onenn(args):
    q = args.quick
    out = pathlib.Path(args.out_dir)
    ckdir = pathlib.Path(args.ckpt_dir)
    ckdir.mkdir(parents=True, exist_ok=True)
    steps = 12 if q else (args.steps or SCRIPT_STEPS)
    n_samples = 2000 if q else args.n_samples
    x_tr, y_tr = load_split("train", args.data_dir, 2000 if q else None)
    x_te, y_te = load_split("test", args.data_dir, 500 if q else None)
    model = get_model("vaegan")((1, 28, 28), device=args.device, rng=args.seed,
                                **vaegan_hyper(args, variant="cond-mnist",
                                               schedule_length=steps))
    batches = DeviceBatches(x_tr, y_tr, model, model.defaults["batch_size"], args.seed)
    t0 = time.time()
    curve, finished, t_train = train(
        model, batches, steps, ckdir / f"onenn{suffix(args)}.npz", args,
        ["loss_enc", "recon", "kl", "real_cost", "fake_cost", "update_d", "update_dec"])
    # the authors' sampling: z ~ N(mean, cov) of the encoded training set, labels cycling
    xp = get_array_module(batches.x)
    mus = []
    for i in range(0, len(x_tr), 2000):
        mus.append(to_numpy(model.encode(batches.x[i:i + 2000], y_tr[i:i + 2000])))
    mus = np.concatenate(mus).astype(np.float64)
    z_mean, z_cov = mus.mean(axis=0), np.cov(mus.T)
    g = np.random.default_rng([args.seed, 21])
    test_x = xp.asarray((x_te.reshape(len(x_te), -1) / 255.0).astype(np.float32))
    test_y = xp.asarray(y_te)
    res = {}
    for name, sampler in (
            ("posterior_gaussian", lambda m: g.multivariate_normal(z_mean, z_cov, size=m)),
            ("prior", lambda m: g.standard_normal((m, z_mean.shape[0])))):
        ts = time.time()
        gx, gy = generate_labelled(model, n_samples, y_tr, sampler)
        if name == "posterior_gaussian":
            save_class_grid(to_numpy(gx), gy, out / f"onenn-samples{suffix(args)}.png")
        err = nn1_error(gx, xp.asarray(gy), test_x, test_y)
        res[name] = {"test_error": err, "seconds": round(time.time() - ts, 1)}
        print(f"1-NN on {n_samples} generated samples ({name} z): MNIST test error "
              f"{100 * err:.2f}%", flush=True)
    real_x = xp.asarray((x_tr.reshape(len(x_tr), -1) / 255.0).astype(np.float32))
    ref = nn1_error(real_x, xp.asarray(y_tr), test_x, test_y)
    print(f"1-NN on the {len(x_tr)} real training images: test error {100 * ref:.2f}%",
          flush=True)
    result = {
        "experiment": "VAE-GAN conditional MNIST, 1-NN on generated samples (authors' protocol)",
        "quick": q, "device": _device_name(args.device), "host": _host(),
        "hyper": _jsonable(model.hp), "steps_done": int(model.step), "steps_planned": steps,
        "finished": finished, "script_steps": SCRIPT_STEPS, "train_seconds": round(t_train, 1),
        "wall_seconds": round(time.time() - t0, 1),
        "n_generated": n_samples, "authors_n_generated": AUTHORS_SAMPLES,
        "n_test": len(x_te), "z_sampling": {
            "posterior_gaussian": "N(mean, cov) of the posterior means of the training set "
                                  "(cond_vaegan_mnist.py)",
            "prior": "N(0, I)"},
        "labels": "cycling through the training labels (as the script)",
        "results": res, "real_training_set_1nn_error": ref,
        "published": "none (the script prints its error; no value is published)",
        "loss_curve": curve,
    }
    path = out / f"onenn{suffix(args)}.json"
    _write_json(path, result)
    plot_curve(curve, out / f"onenn-curves{suffix(args)}.png",
               "conditional VAE-GAN (cond-mnist)")
    print(f"wrote {path}", flush=True)


# ---------------------------------------------------------------------------- quality
QUALITY_MODELS = {
    "vaegan": dict(),                         # Algorithm 1 (no equilibrium rule)
    "vaegan-eq": dict(equilibrium=True),      # + the authors' equilibrium rule
}


def dcgan_reference():
    """DCGAN's LeNet IS and FD as benchmarks/results/reproduction.md states them."""
    path = ROOT / "benchmarks" / "results" / "reproduction.md"
    out = {"source": str(path.relative_to(ROOT))}
    try:
        text = path.read_text()
    except OSError as e:
        return {**out, "error": str(e)}
    for key, label in (("is", "LeNet Inception Score"), ("fd", "LeNet Fréchet distance")):
        m = re.search(r"^\| dcgan \| " + re.escape(label) + r" \| ([^|]+)\|[^|]*\| ([^|]+)\|",
                      text, re.M)
        if m:
            out[key] = m.group(1).strip()
            out["epochs"] = m.group(2).strip()
    return out


def build_quality_model(name, args, steps):
    if name == "vae":
        return get_model("vae")((1, 28, 28), device=args.device, rng=args.seed)
    return get_model("vaegan")((1, 28, 28), device=args.device, rng=args.seed,
                               **vaegan_hyper(args, schedule_length=steps,
                                              **QUALITY_MODELS[name]))


def quality_steps(name, args, model, n_train):
    if args.quick:
        return 10
    return args.epochs * (n_train // model.defaults["batch_size"])


def cmd_quality(args):
    from scratchgan.metrics.classifier import (load_classifier, mnist_frechet_distance,
                                               mnist_inception_score)
    q = args.quick
    out = pathlib.Path(args.out_dir)
    ckdir = pathlib.Path(args.ckpt_dir)
    ckdir.mkdir(parents=True, exist_ok=True)
    sfx = suffix(args)
    x_tr, y_tr = load_split("train", args.data_dir, 2000 if q else None)
    x_te, _ = load_split("test", args.data_dir, 1000 if q else None)
    n_eval = 500 if q else args.n_eval
    clf = load_classifier(device=args.device)
    ref = x_te.astype(np.float32)[:, None] / 255.0
    runs, models = {}, {}
    for name in ("vae",) + tuple(QUALITY_MODELS):
        probe = build_quality_model(name, args, 1)
        steps = quality_steps(name, args, probe, len(x_tr))
        model = build_quality_model(name, args, steps)
        batches = DeviceBatches(x_tr, y_tr, model, model.defaults["batch_size"], args.seed)
        keys = ["loss", "recon_nll", "kl"] if name == "vae" else \
            ["loss_enc", "recon", "kl", "gan_dec", "real_cost", "fake_cost"]
        curve, finished, t_train = train(model, batches, steps,
                                         ckdir / f"quality-{name}{sfx}.npz", args, keys)
        rng = np.random.default_rng([args.seed, 31])
        samples = np.concatenate([to_numpy(model.generate(model.sample_noise(
            min(1000, n_eval - i), rng=rng))) for i in range(0, n_eval, 1000)])
        is_m, is_s = mnist_inception_score(samples, classifier=clf)
        fd = mnist_frechet_distance(samples, ref, classifier=clf)
        recon = recon_error(model, ref)
        from scratchgan.viz import save_grid
        save_grid(samples[:100], out / f"quality-samples-{name}{sfx}.png", nrow=10)
        runs[name] = {"hyper": _jsonable(model.hp), "steps": int(model.step),
                      "finished": finished, "epochs": round(model.step * model.defaults[
                          "batch_size"] / len(x_tr), 2), "train_seconds": round(t_train, 1),
                      "inception_score": [is_m, is_s], "frechet_distance": fd,
                      "test_recon_mse_per_pixel": recon, "loss_curve": curve}
        models[name] = model
        print(f"{name}: {model.step} steps, LeNet IS {is_m:.2f} ± {is_s:.2f}, FD {fd:.2f}, "
              f"test reconstruction MSE/pixel {recon:.4f}", flush=True)
    result = {"experiment": "VAE-GAN (unconditional, Dis_l) against VAE: LeNet IS and FD",
              "quick": q, "device": _device_name(args.device), "host": _host(),
              "epochs_requested": None if q else args.epochs, "n_eval": n_eval,
              "reference_real_test": "IS 9.71 ± 0.13, FD(train subset, test) 2.89 "
                                     "(docs/metrics.md)",
              "dcgan_from_reproduction_md": dcgan_reference(), "runs": runs,
              "note": "vae is the library's paper-default VAE (Adagrad 0.02, batch 100, tanh "
                      "500, z 20) on the same grey-level images; the table in "
                      "reproduction.md trained it on binarized MNIST for 100 epochs"}
    path = out / f"quality{sfx}.json"
    _write_json(path, result)
    recon_figure(models, x_te, out / f"reconstructions{sfx}.png")
    print(f"wrote {path}", flush=True)


def recon_error(model, ref, batch=1000):
    err, n = 0.0, 0
    for i in range(0, len(ref), batch):
        x = ref[i:i + batch]
        r = to_numpy(model.reconstruct(x)).reshape(len(x), -1)
        err += float(((r - x.reshape(len(x), -1)) ** 2).sum())
        n += r.size
    return err / n


def recon_figure(models, x_te_u8, path, n=12):
    """Rows: test images, then each model's reconstruction Dec(mu(x)) of the same images."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scratchgan.viz import make_grid
    x = x_te_u8[:n].astype(np.float32)[:, None] / 255.0
    names = {"vae": "VAE", "vaegan": "VAE-GAN", "vaegan-eq": "VAE-GAN\n+ equilibrium"}
    rows = [("test images", x)] + [(names.get(name, name), to_numpy(m.reconstruct(x)))
                                   for name, m in models.items()]
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.6, len(rows) * 0.75))
    for ax, (label, imgs) in zip(axes, rows):
        ax.imshow(make_grid(imgs, nrow=n), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Reconstructions Dec(mu(x)) of the same MNIST test images", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


def cmd_figure(args):
    out = pathlib.Path(args.out_dir)
    sfx = suffix(args)
    x_te, _ = load_split("test", args.data_dir, 100)
    models = {}
    for name in ("vae",) + tuple(QUALITY_MODELS):
        ck = pathlib.Path(args.ckpt_dir) / f"quality-{name}{sfx}.npz"
        if not ck.exists():
            raise SystemExit(f"figure: no checkpoint {ck}; run the quality subcommand first")
        st = load_checkpoint(ck)
        m = get_model(st["model"]["model"])((1, 28, 28), device=args.device, rng=args.seed,
                                            **st["model"]["hyper"])
        m.load_state_dict(st["model"])
        models[name] = m
    recon_figure(models, x_te, out / f"reconstructions{sfx}.png")


# ------------------------------------------------------------------------------ output
def save_class_grid(x, y, path, per_class=10):
    from scratchgan.viz import save_grid
    rows = []
    for c in range(10):
        idx = np.flatnonzero(y == c)[:per_class]
        imgs = x[idx].reshape(-1, 1, 28, 28)
        if len(imgs) < per_class:
            imgs = np.concatenate([imgs, np.ones((per_class - len(imgs), 1, 28, 28), np.float32)])
        rows.append(imgs)
    save_grid(np.concatenate(rows), path, nrow=per_class)


def plot_curve(curve, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [k for k in curve if k != "step"]
    if not curve["step"]:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.4))
    for ax, k in zip(np.atleast_1d(axes), keys):
        ax.plot(curve["step"], curve[k], lw=0.8)
        ax.set_title(k, fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _host():
    return {"python": platform.python_version(), "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(s):
        s.add_argument("--device", default="cpu", help="cpu or cuda")
        s.add_argument("--data-dir", default=None, help="folder holding mnist/ (default "
                       "$SCRATCHGAN_DATA)")
        s.add_argument("--out-dir", default=str(DEFAULT_OUT))
        s.add_argument("--ckpt-dir", default=str(DEFAULT_CKPT))
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--quick", action="store_true", help="CPU smoke run")
        s.add_argument("--resume", action="store_true", help="continue from the checkpoint")
        s.add_argument("--time-limit", type=float, default=None,
                       help="stop training after this many seconds (checkpointed)")
        s.add_argument("--checkpoint-every", type=int, default=2000)
        s.add_argument("--log-every", type=int, default=100)
        s.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a vaegan hyperparameter (repeatable), e.g. gamma=0.1")
        s.add_argument("--tag", default="", help="suffix of the output and checkpoint names")

    s = sub.add_parser("onenn", help="1-NN on generated labelled samples (conditional)")
    common(s)
    s.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default the script's {SCRIPT_STEPS}; the learning-"
                        "rate schedule is scaled to this length)")
    s.add_argument("--n-samples", type=int, default=100_000,
                   help=f"generated samples (the authors used {AUTHORS_SAMPLES:,})")
    s.set_defaults(fn=cmd_onenn)
    s = sub.add_parser("quality", help="LeNet IS/FD of VAE-GAN and VAE; reconstruction figure")
    common(s)
    s.add_argument("--epochs", type=int, default=20)
    s.add_argument("--n-eval", type=int, default=10_000)
    s.set_defaults(fn=cmd_quality)
    s = sub.add_parser("figure", help="redraw the reconstruction figure from checkpoints")
    common(s)
    s.set_defaults(fn=cmd_figure)
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.quick:
        args.log_every = min(args.log_every, 2)
    args.fn(args)


if __name__ == "__main__":
    main()
