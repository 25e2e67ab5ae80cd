"""Progressive GAN (Karras et al. 2018) experiments: the MNIST-1K ablation, SWD/FD on
MNIST and Fashion-MNIST at 32×32 against DCGAN, and the growth picture.

Every run trains the library's ``pggan`` model through ``model.train_step`` (run as CUDA
graphs by ``scratchgan.runtime.StepRunner`` on the GPU), saves a checkpoint every
``--checkpoint-every`` steps (``--resume`` continues a run exactly where its checkpoint
left it; a finished run's JSON is reused), and writes JSON + PNG under ``--out-dir``
(default benchmarks/results/pggan).

``ablation``  the appendix's MNIST-1K discrete mode test on ``stacked-mnist`` with the
              official MNIST configuration's crippled discriminator (variant ``mnist1k``,
              K = 4): rows ``baseline`` (no equalised lr / pixel norm: BatchNorm in G, no
              normaliser in D), ``ournorm`` (+ equalised lr and pixel norm), ``mbstd``
              (+ minibatch stddev), ``progression`` (+ progressive growing). Each row and seed
              trains for ``--images`` real images (the official 15,000k for progressive rows
              and 10,000k for the others are scaled by the same factor; the progressive
              schedule's 500k stable / 2000k fade per resolution too), then counts modes
              covered (of 1000) and KL to uniform over ``--eval-samples`` samples of the
              EMA generator, classifying each channel with our LeNet.
``mnist``     ``pggan`` (paper variant) and ``dcgan`` (28×28, padded to 32 for SWD) on
              ``mnist32`` or ``fashion-mnist32`` for the same number of images shown: SWD
              (×10³, per pyramid level 32 and 16 and their mean; ``--swd-images`` samples
              against as many training images, a random subset, as the authors compare with
              the training set; the "real" row is a second, disjoint training subset) and the
              LeNet FD (central 28×28 against the 10,000 test images). The pggan run saves
              fixed-noise samples at the end of every phase: the growth picture (samples at
              each resolution in a row).
``table``     collects every JSON into ``summary.json`` and ``summary.md``.

``--quick`` makes everything tiny (CPU, seconds) for a smoke test. Examples:

    python benchmarks/pggan_experiments.py ablation --quick
    python benchmarks/pggan_experiments.py ablation --device cuda --rows baseline --seeds 0
    python benchmarks/pggan_experiments.py mnist --device cuda --dataset mnist32
    python benchmarks/pggan_experiments.py table
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

from scratchgan.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from scratchgan.data.datasets import load_dataset  # noqa: E402
from scratchgan.models import get_model  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "pggan"
ROWS = {   # the appendix's rows: (equalized, mbstd, progressive)
    "baseline": (False, False, False),
    "ournorm": (True, False, False),
    "mbstd": (True, True, False),
    "progression": (True, True, True),
}
OFFICIAL_TOTAL = {True: 15_000_000, False: 10_000_000}    # images: progressive / not
OFFICIAL_STABLE, OFFICIAL_FADE = 500_000, 2_000_000


from bench_common import device_name as _device_name  # noqa: E402
from bench_common import write_json as _write_json  # noqa: E402

def log(*a):
    print(*a, flush=True)


def _data_dir(args):
    return args.data_dir or os.environ.get("SCRATCHGAN_DATA") or str(ROOT.parent / "shared" / "data")


def _to_device(x, device):
    if device == "cuda":
        import cupy as cp
        return cp.asarray(x)
    return x


def _host(a):
    from scratchgan.backend import to_numpy
    return to_numpy(a)


# ----------------------------------------------------------------------------- training
def train(model, x, images, batch, ckpt, args, on_phase=None, tag=""):
    """Train ``model`` on host array ``x`` until ``images`` real images have been shown
    (``n_critic · batch`` per step), minibatches drawn with replacement from a seeded NumPy
    stream; checkpoint every ``args.checkpoint_every`` steps and at the end; resume from
    ``ckpt`` with ``args.resume`` (checkpoints are kept under runs/pggan-experiments/).
    ``on_phase(model, key)`` runs whenever the phase changes (key: the phase just ended);
    ``args.time_limit`` stops early (checkpoint saved) and returns None."""
    from scratchgan.runtime import StepRunner
    k = int(model.batches_per_step())
    steps = int(math.ceil(images / (k * batch)))
    rng = np.random.default_rng([args.seed, 7])
    if args.resume and ckpt.exists():
        st = load_checkpoint(ckpt)
        model.load_state_dict(st["model"])
        rng.bit_generator.state = st["data_rng"]
        log(f"{tag}: resumed at step {model.step}")
    xd = _to_device(x, model.device)
    runner = StepRunner(model, mode="eager" if args.eager else "auto")
    key = model.graph_key() if hasattr(model, "graph_key") else None
    t0, s0 = time.time(), model.step
    while model.step < steps:
        if args.time_limit and time.time() - t0 > args.time_limit:
            save_checkpoint(ckpt, {"model": model.state_dict(), "data_rng": rng.bit_generator.state})
            log(f"{tag}: time limit reached at step {model.step}/{steps}; checkpoint {ckpt}; "
                f"run the same command with --resume to continue")
            return None
        idx = rng.integers(0, x.shape[0], size=k * batch)
        logs = runner(xd[_to_device(idx, model.device)])
        if model.step % args.log_every == 0 or model.step == steps:
            rate = (model.step - s0) * k * batch / max(time.time() - t0, 1e-9)
            vals = " ".join(f"{n}={float(v):.4g}" for n, v in logs.items()
                            if np.ndim(v) == 0 and not isinstance(v, int))
            extra = getattr(model, "host_logs", dict)()
            log(f"{tag} step {model.step}/{steps} {vals} {extra} {rate:.0f} img/s "
                f"({runner.mode_used})")
        nk = model.graph_key() if hasattr(model, "graph_key") else None
        if on_phase is not None and nk != key:
            on_phase(model, key)
        key = nk
        if model.step % args.checkpoint_every == 0 or model.step == steps:
            save_checkpoint(ckpt, {"model": model.state_dict(), "data_rng": rng.bit_generator.state})
    if on_phase is not None:
        on_phase(model, key)
    return {"steps": steps, "images": steps * k * batch,
            "train_seconds_this_invocation": time.time() - t0,
            "graph_reason": runner.reason}


def generate(model, n, seed=12345, chunk=500):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(0, n, chunk):
        out.append(_host(model.generate(model.sample_noise(min(chunk, n - i), rng=rng))))
    return np.concatenate(out)


# ----------------------------------------------------------------------------- ablation
def cmd_ablation(args):
    from scratchgan.metrics.classifier import load_classifier
    from scratchgan.metrics.modes import stacked_mnist_modes
    out = pathlib.Path(args.out_dir)
    limit = 2000 if args.quick else None
    x, _ = load_dataset("stacked-mnist", (-1.0, 1.0), data_dir=_data_dir(args), limit=limit)
    clf = load_classifier(device=args.device)
    for row in args.rows:
        eq, mb, prog = ROWS[row]
        for seed in args.seeds:
            res_path = out / f"ablation-{row}-seed{seed}.json"
            if res_path.exists() and not args.overwrite:
                log(f"{res_path.name} exists: skipped")
                continue
            scale = args.images / OFFICIAL_TOTAL[True]
            images = int(OFFICIAL_TOTAL[prog] * scale)
            hp = dict(variant="mnist1k", equalized=eq, mbstd=mb, progressive=prog,
                      stable_images=max(1, int(OFFICIAL_STABLE * scale)),
                      fade_images=max(1, int(OFFICIAL_FADE * scale)))
            model = get_model("pggan")((3, 32, 32), rng=seed, device=args.device, **hp)
            args.seed = seed
            info = train(model, x, images, args.batch, _ckpt_dir(args) / f"ablation-{row}-seed{seed}.npz",
                         args, tag=f"{row}/seed{seed}")
            if info is None:
                return
            samples = generate(model, args.eval_samples)
            stats = stacked_mnist_modes(samples, clf, data_range=(-1.0, 1.0))
            res = {"row": row, "seed": seed, "hyper": hp, "batch": args.batch,
                   "schedule_scale": scale, **info, **stats, "eval_samples": args.eval_samples,
                   "device": _device_name(args.device)}
            _write_json(res_path, res)
            _save_grid(samples[:64], out / f"ablation-{row}-seed{seed}.png")
            log(f"{row} seed {seed}: modes {stats['modes']} KL {stats['kl']:.3f} confident "
                f"fraction {stats['confident_fraction']:.3f}")


# ----------------------------------------------------------------------------- mnist
def cmd_mnist(args):
    from scratchgan.metrics.classifier import load_classifier, mnist_frechet_distance
    from scratchgan.metrics.swd import sliced_wasserstein_distance
    out = pathlib.Path(args.out_dir)
    dd = _data_dir(args)
    limit = 2000 if args.quick else None
    src = "mnist" if args.dataset == "mnist32" else "fashion-mnist"
    clf = load_classifier(device=args.device)
    test32, _ = load_dataset(args.dataset, (-1.0, 1.0), data_dir=dd, split="test")
    test28 = test32[:, :, 2:30, 2:30]
    n = args.eval_samples
    # SWD against training images, as the authors' protocol: two disjoint random subsets, one
    # the reference of every model, the other the "real" row (the sampling floor). The test
    # set is not used for SWD: MNIST's first and second test halves are themselves ~22 apart
    # (benchmarks/results/pggan/swd-reference-check.json), far above two training subsets.
    train32, _ = load_dataset(args.dataset, (-1.0, 1.0), data_dir=dd, limit=limit)
    ns = min(n, args.swd_images, len(train32) // 2)
    perm = np.random.default_rng(7).permutation(len(train32))
    swd_ref, swd_real = train32[perm[:ns]], train32[perm[ns:2 * ns]]
    for name in args.models:
        res_path = out / f"{args.dataset}-{name}.json"
        if res_path.exists() and not args.overwrite:
            log(f"{res_path.name} exists: skipped")
            continue
        growth = []
        if name == "pggan":
            x, _ = load_dataset(args.dataset, (-1.0, 1.0), data_dir=dd, limit=limit)
            hp = dict(stable_images=args.stable_images, fade_images=args.fade_images)
            if args.quick:
                hp.update(fmap_base=64, fmap_max=16)
            model = get_model("pggan")((1, 32, 32), rng=args.seed, device=args.device, **hp)
            fixed = model.sample_noise(8, rng=np.random.default_rng(99))
            gpath = _ckpt_dir(args) / f"{args.dataset}-growth.npz"
            if args.resume and gpath.exists():
                growth.extend(_load_growth(gpath))

            def snap(m, key):
                if growth and growth[-1]["key"] == str(key):
                    return
                growth.append({"resolution": m.G.resolution, "fading": m.G.fading,
                               "images": m.images_shown(), "key": str(key),
                               "samples": _host(m._eval_forward(m.G_ema, fixed["z"]))})
                _save_growth(gpath, growth)
        else:
            x, _ = load_dataset(src, (-1.0, 1.0), data_dir=dd, limit=limit)
            hp = dict(ngf=16, ndf=16) if args.quick else {}
            model = get_model("dcgan")((1, 28, 28), rng=args.seed, device=args.device, **hp)
            snap = None
        info = train(model, x, args.images, args.batch, _ckpt_dir(args) / f"{args.dataset}-{name}.npz",
                     args, on_phase=snap, tag=f"{args.dataset}/{name}")
        if info is None:
            return
        samples = generate(model, n)
        if samples.shape[-1] == 28:
            s32 = np.full(samples.shape[:2] + (32, 32), -1.0, samples.dtype)
            s32[:, :, 2:30, 2:30] = samples
            s28 = samples
        else:
            s32, s28 = samples, samples[:, :, 2:30, 2:30]
        swd = sliced_wasserstein_distance(swd_ref, s32[:ns], data_range=(-1.0, 1.0), seed=0)
        fd = mnist_frechet_distance(s28, test28, clf, data_range=(-1.0, 1.0),
                                    reference_range=(-1.0, 1.0))
        res = {"dataset": args.dataset, "model": name, **info, "batch": args.batch,
               "swd_x1e3": {str(k): v for k, v in swd["levels"].items()}, "swd_mean": swd["mean"],
               "fd_lenet": float(fd), "eval_samples": n, "swd_images": ns,
               "swd_reference": "random training subset (seed 7)",
               "device": _device_name(args.device)}
        if name == "pggan":
            res["schedule"] = {"stable_images": args.stable_images, "fade_images": args.fade_images}
            res["growth"] = [{k: v for k, v in g.items() if k != "samples"} for g in growth]
            _plot_growth(growth, out / f"{args.dataset}-growth.png")
        _write_json(res_path, res)
        _save_grid(s32[:64], out / f"{args.dataset}-{name}.png")
        log(f"{args.dataset} {name}: SWD {swd['mean']:.2f} (x1e3) FD {fd:.3f}")
    # reference: a second training subset scored like a model (SWD against the same training
    # subset, FD of n training images against the test set)
    ref_path = out / f"{args.dataset}-real.json"
    if not ref_path.exists() or args.overwrite:
        xr = train32[perm[ns:ns + n]]
        swd = sliced_wasserstein_distance(swd_ref, swd_real, data_range=(-1.0, 1.0), seed=0)
        fd = mnist_frechet_distance(xr[:, :, 2:30, 2:30], test28, clf, data_range=(-1.0, 1.0),
                                    reference_range=(-1.0, 1.0))
        _write_json(ref_path, {"dataset": args.dataset,
                               "model": "real (training subsets; FD against the test set)",
                               "swd_x1e3": {str(k): v for k, v in swd["levels"].items()},
                               "swd_mean": swd["mean"], "fd_lenet": float(fd), "eval_samples": n,
                               "swd_images": ns})


# ----------------------------------------------------------------------------- speed
def cmd_speed(args):
    """Images shown per second of each configuration (random data; the step runner as in
    training), to size runs: warm-up steps, then ``--seconds`` of timed steps per case."""
    from scratchgan.runtime import StepRunner
    F = 10**8          # long fades: the timed steps stay in one phase
    cases = [("mnist1k progression @32 stable", "pggan", (3, 32, 32),
              dict(variant="mnist1k", stable_images=10, fade_images=F), 3 * (10 + F) + 10),
             ("mnist1k progression @8 fading", "pggan", (3, 32, 32),
              dict(variant="mnist1k", stable_images=10, fade_images=F), 10 + F // 2),
             ("mnist1k baseline (no growth)", "pggan", (3, 32, 32),
              dict(variant="mnist1k", equalized=False, mbstd=False, progressive=False), 0),
             ("paper @32 stable", "pggan", (1, 32, 32), dict(progressive=False), 0),
             ("paper @16 fading", "pggan", (1, 32, 32),
              dict(stable_images=10, fade_images=F), 20 + F + F // 2),
             ("dcgan 28", "dcgan", (1, 28, 28), {}, 0)]
    out = {}
    for label, name, shape, hp, at_images in cases:
        model = get_model(name)(shape, rng=0, device=args.device, **hp)
        if name == "pggan":                  # jump the schedule to the phase being timed
            model._m = args.batch
            model.step = int(math.ceil(at_images / (model.hp["n_critic"] * args.batch)))
            model.apply_schedule()
        k = int(model.batches_per_step())
        x = _to_device(np.random.default_rng(0).uniform(-1, 1, (k * args.batch,) + shape)
                       .astype(np.float32), args.device)
        runner = StepRunner(model, mode="eager" if args.eager else "auto")
        for _ in range(args.warmup):
            runner(x)
        _sync(args.device)
        t0, n = time.time(), 0
        while time.time() - t0 < args.seconds:
            runner(x)
            n += 1
        _sync(args.device)
        dt = time.time() - t0
        phase = model.graph_key() if name == "pggan" else None
        out[label] = {"images_per_s": n * k * args.batch / dt, "steps_per_s": n / dt,
                      "mode": runner.mode_used, "graph_reason": runner.reason,
                      "phase_key": str(phase), "batch": args.batch, "n_critic": k}
        log(f"{label}: {out[label]['images_per_s']:.0f} img/s ({n / dt:.1f} steps/s, "
            f"{runner.mode_used}{', ' + runner.reason if runner.reason else ''}) {phase}")
    _write_json(pathlib.Path(args.out_dir) / f"speed-{args.device}.json",
                {"device": _device_name(args.device), "cases": out})


def _sync(device):
    if device == "cuda":
        import cupy as cp
        cp.cuda.Device().synchronize()


# ----------------------------------------------------------------------------- table
PAPER_NOTE = ("Karras et al. (2018), appendix table of the MNIST-1K test (K/4 discriminator, "
              "8 seeds): read the numbers there; they are not reproduced in this file")


def cmd_table(args):
    out = pathlib.Path(args.out_dir)
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name != "summary.json"]
    abl = [r for r in runs if "row" in r]
    lines = ["# Progressive GAN results", "", "## MNIST-1K ablation (stacked MNIST, K = 4)", "",
             "| row | seeds | modes (of 1000) | KL to uniform | confident fraction | images shown |",
             "|---|---|---|---|---|---|"]
    summary = {"ablation": {}, "mnist": []}
    for row in ROWS:
        rs = [r for r in abl if r["row"] == row]
        if not rs:
            continue
        m = np.array([r["modes"] for r in rs], float)
        k = np.array([r["kl"] for r in rs], float)
        cf = np.array([r.get("confident_fraction", np.nan) for r in rs], float)
        summary["ablation"][row] = {"seeds": [r["seed"] for r in rs], "modes_mean": m.mean(),
                                    "modes_std": m.std(), "kl_mean": k.mean(), "kl_std": k.std(),
                                    "confident_fraction_mean": cf.mean(),
                                    "images": rs[0]["images"]}
        lines.append(f"| {row} | {len(rs)} | {m.mean():.1f} ± {m.std():.1f} | "
                     f"{k.mean():.2f} ± {k.std():.2f} | {cf.mean():.3f} | {rs[0]['images']:,} |")
    lines += ["", "Confident fraction: samples whose three channels LeNet classifies with p >= 0.9 "
              "(noise also covers many modes; this says whether the samples are digits).",
              "", PAPER_NOTE, "", "## MNIST / Fashion-MNIST at 32×32", "",
              "| data | model | images shown | SWD ×10³ (32, 16, mean) | LeNet FD |",
              "|---|---|---|---|---|"]
    for r in runs:
        if "swd_mean" in r:
            s = r["swd_x1e3"]
            summary["mnist"].append({k: r.get(k) for k in ("dataset", "model", "images",
                                                             "swd_mean", "fd_lenet")})
            lines.append(f"| {r['dataset']} | {r['model']} | {r.get('images', '—')} | "
                         f"{s.get('32', float('nan')):.1f}, {s.get('16', float('nan')):.1f}, "
                         f"{r['swd_mean']:.1f} | {r['fd_lenet']:.3f} |")
    _write_json(out / "summary.json", summary)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    log("\n".join(lines))


# ----------------------------------------------------------------------------- helpers
def _ckpt_dir(args):
    """Checkpoints live under runs/ (git-ignored), not beside the committed results."""
    return ROOT / "runs" / "pggan-experiments" / ("quick" if args.quick else "full")


def _to_rgb01(images):
    x = (np.clip(np.asarray(images, np.float64), -1, 1) + 1) / 2
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    return x.transpose(0, 2, 3, 1)


def _save_grid(images, path, ncol=8):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = _to_rgb01(images)
    n = x.shape[0]
    nrow = int(math.ceil(n / ncol))
    H, W = x.shape[1:3]
    grid = np.ones((nrow * (H + 2), ncol * (W + 2), 3))
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[r * (H + 2):r * (H + 2) + H, c * (W + 2):c * (W + 2) + W] = x[i]
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, grid)


def _save_growth(path, growth):
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = [{k: v for k, v in g.items() if k != "samples"} for g in growth]
    np.savez(path, meta=json.dumps(meta), **{f"s{i}": g["samples"] for i, g in enumerate(growth)})


def _load_growth(path):
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return [{**m, "samples": z[f"s{i}"]} for i, m in enumerate(meta)]


def _plot_growth(growth, path):
    """One row per phase end: the 8 fixed-noise samples at that phase's resolution."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not growth:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(growth), 8, figsize=(8 * 0.9, len(growth) * 1.0),
                             squeeze=False)
    for i, g in enumerate(growth):
        x = _to_rgb01(g["samples"])
        for j in range(8):
            ax = axes[i, j]
            ax.imshow(x[j], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        res = g["resolution"]
        axes[i, 0].set_ylabel(f"{res}×{res}{' fade' if g['fading'] else ''}\n{g['images'] // 1000}k",
                              fontsize=7)
    fig.suptitle("Progressive GAN growth: fixed noise through the phases (EMA generator)",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(s):
        s.add_argument("--device", default="cpu")
        s.add_argument("--data-dir", default=None)
        s.add_argument("--out-dir", default=str(DEFAULT_OUT))
        s.add_argument("--quick", action="store_true", help="tiny CPU smoke run")
        s.add_argument("--resume", action="store_true", help="continue from checkpoints")
        s.add_argument("--overwrite", action="store_true", help="redo finished runs")
        s.add_argument("--eager", action="store_true", help="no CUDA graphs")
        s.add_argument("--batch", type=int, default=64)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--checkpoint-every", type=int, default=500)
        s.add_argument("--log-every", type=int, default=200)
        s.add_argument("--eval-samples", type=int, default=10000)
        s.add_argument("--time-limit", type=float, default=None,
                       help="seconds of training per command; then checkpoint and stop "
                            "(continue with --resume)")

    s = sub.add_parser("ablation", help="MNIST-1K ablation rows: modes and KL")
    common(s)
    s.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    s.add_argument("--seeds", nargs="+", type=int, default=[0])
    s.add_argument("--images", type=int, default=1_500_000,
                   help="images for progressive rows (the official 15,000k scaled; the other "
                        "rows get 2/3 of it, as 10,000k/15,000k)")
    s = sub.add_parser("mnist", help="pggan vs dcgan on mnist32/fashion-mnist32: SWD, FD, growth")
    common(s)
    s.add_argument("--dataset", default="mnist32", choices=["mnist32", "fashion-mnist32"])
    s.add_argument("--models", nargs="+", default=["pggan", "dcgan"], choices=["pggan", "dcgan"])
    s.add_argument("--images", type=int, default=1_200_000)
    s.add_argument("--stable-images", type=int, default=100_000)
    s.add_argument("--fade-images", type=int, default=200_000)
    s.add_argument("--swd-images", type=int, default=4096,
                   help="images per set for SWD (128 patches each; the authors use 16384)")
    s = sub.add_parser("speed", help="images/s of each configuration (to size runs)")
    common(s)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--warmup", type=int, default=3)
    s = sub.add_parser("table", help="summary.json / summary.md from the results")
    s.add_argument("--out-dir", default=str(DEFAULT_OUT))
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.cmd != "table" and args.quick:
        args.out_dir = str(pathlib.Path(args.out_dir) / "quick")
        args.eval_samples = min(args.eval_samples, 256)
        args.batch = min(args.batch, 16)
        args.log_every = min(args.log_every, 5)
        args.checkpoint_every = min(args.checkpoint_every, 10)
        if args.cmd == "ablation":
            args.images = min(args.images, 3000)
        else:
            args.images, args.stable_images, args.fade_images = 1600, 200, 400
    if args.cmd == "speed" and args.quick:
        args.seconds, args.warmup = min(args.seconds, 1.0), 1
    {"ablation": cmd_ablation, "mnist": cmd_mnist, "speed": cmd_speed,
     "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
