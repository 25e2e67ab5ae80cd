"""The first experiments of WGAN-GP (Gulrajani et al. 2017), scaled down to a 2-core CPU.

Every run trains the library's real models through ``model.train_step`` (one generator
iteration of the paper's algorithm: n_critic critic updates, then one generator update) on
fresh minibatches of the embedded toy sets (``scratchgan.data.toy``; infinite data, as the
official ``gan_toy.py`` draws a new batch every iteration). Three subcommands:

``capacity``  Figure 1 of the paper, scaled down: the same deep ReLU critic MLP trained with
              weight clipping (``wgan``, arch mlp, RMSProp, c in ``--clips``) and with the
              gradient penalty (``wgan-gp``, arch mlp, Adam); histograms of the critic's
              weights at the end, ‖∂D/∂h_l‖ (the critic's output differentiated with respect
              to the input of each Linear layer, l = 0 is the data x) through the depth, the
              per-layer norm of the critic loss's weight gradient, and ‖∇ₓD‖ along training.
``toy``       samples over data and critic (discriminator logit) contours for GAN, WGAN and
              WGAN-GP on 8 Gaussians (ring8), 25 Gaussians (grid25) and the Swiss roll: a 3×3
              grid of panels.
``modes``     ALI's mode count on 25 Gaussians: R seeds per model, 10,000 samples each, each
              sample assigned to its most responsible component (with equal weights and equal
              isotropic covariances that is the nearest mean, whatever the std), a mode dropped
              when nothing is assigned to it; mean ± std over runs beside ALI's published
              GAN 10.4 ± 9.2 and ALI 13.4 ± 5.8 (10 runs). The library's stricter coverage
              (``scratchgan.metrics.toy.mode_statistics``: ≥ N/(10K) samples within 3σ) is
              reported beside it.
``mnist``     WGAN with weight clipping (DCGAN nets, RMSprop, warmup off) against WGAN-GP (the
              official MNIST nets, Adam, λ 10) on MNIST for the same generator iterations and
              batch 64: LeNet Inception Score and Fréchet distance every ``--eval-every``
              iterations and the critic's negative loss along training (a short budget against
              the paper's 200k iterations); ``--device cuda`` runs the steps as CUDA graphs
              (StepRunner), ``--time-limit`` stops training early so the outputs are written.

Outputs (JSON + PNG) go to ``--out-dir`` (default benchmarks/results/wgan-gp). ``--quick``
makes every subcommand tiny (a few steps, a few hundred samples) for the tests.

    OMP_NUM_THREADS=1 python benchmarks/wgan_gp_experiments.py capacity
    OMP_NUM_THREADS=1 python benchmarks/wgan_gp_experiments.py toy
    OMP_NUM_THREADS=1 python benchmarks/wgan_gp_experiments.py modes --runs 4 --iterations 2000
    python benchmarks/wgan_gp_experiments.py mnist --device cuda --data-dir DATA
"""
from __future__ import annotations

import argparse
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from scratchgan import nn  # noqa: E402
from scratchgan.backend import to_numpy  # noqa: E402
from scratchgan.data.toy import sample_toy, toy_modes, toy_std  # noqa: E402
from scratchgan.metrics.toy import mode_statistics  # noqa: E402
from scratchgan.models import get_model  # noqa: E402
from scratchgan.nn.second_order import input_gradient  # noqa: E402
from scratchgan.runtime import StepRunner  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "wgan-gp"
MODELS = ("gan", "wgan", "wgan-gp")
TOY_SETS = ("ring8", "grid25", "swissroll")
TOY_TITLES = {"ring8": "8 Gaussians", "grid25": "25 Gaussians", "swissroll": "Swiss roll"}
TOY_LIM = {"ring8": 3.0, "grid25": 5.5, "swissroll": 3.8}
PAPER = {"toy_width": 512, "toy_layers": 3, "toy_batch": 256, "toy_iterations": 100000,
         "modes_runs": 10, "modes_samples": 10000}
ALI_PUBLISHED = {"GAN": {"mean": 10.4, "std": 9.2, "range": [1, 22], "runs": 10},
                 "ALI": {"mean": 13.4, "std": 5.8, "range": [8, 25], "runs": 10}}


# --------------------------------------------------------------------------- models, training
from bench_common import device_name as _device_name  # noqa: E402
from bench_common import write_json  # noqa: E402


def _write_json(path, obj):
    write_json(path, obj, allow_nan=False)
    return path

def build_model(name, width, layers=3, seed=0, clip=None, device="cpu"):
    """The library model ``name`` for 2-D data with hidden width ``width``.

    gan: the GAN's named toy variant (ReLU G with 2 hidden layers, maxout + dropout D, Adam
    1e-3, β1 0.5, z 16-d uniform) at width ``width``; wgan: arch mlp (``layers`` ReLU layers in
    G and critic, RMSProp 5e-5, clipping c = ``clip`` or 0.01, n_critic 5), z 2-d N(0, I) as in
    gan_toy.py; wgan-gp: arch mlp (same shapes, Adam 1e-4, β (0, 0.9) of the paper's
    Algorithm 1, λ = 0.1 of gan_toy.py on toy data, n_critic 5), z 2-d.
    """
    if name == "gan":
        return get_model("gan")((2,), rng=seed, device=device, toy_hidden=width,
                                toy_units=width)
    if name == "wgan":
        kw = {} if clip is None else {"clip": float(clip)}
        return get_model("wgan")((2,), rng=seed, device=device, arch="mlp", mlp_hidden=width,
                                 mlp_layers=layers, z_dim=2, **kw)
    if name == "wgan-gp":
        return get_model("wgan-gp")((2,), rng=seed, device=device, arch="mlp",
                                    mlp_hidden=width, mlp_layers=layers)
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def train(model, dataset, iterations, batch, rng, every=None, callback=None, runner=None):
    """``iterations`` generator iterations of ``model.train_step`` on fresh toy batches
    (``batch`` rows per real minibatch, ``batches_per_step()`` minibatches per iteration);
    ``runner``: a ``scratchgan.runtime.StepRunner`` that replays the step as a CUDA graph."""
    step = runner if runner is not None else model.train_step
    for it in range(1, iterations + 1):
        k = model.batches_per_step()
        step(sample_toy(dataset, batch * k, rng))
        if callback is not None and every and (it % every == 0 or it == iterations):
            callback(it)


def generate(model, n, seed=12345):
    g = model.generate(model.sample_noise(n, rng=np.random.default_rng(seed)))
    return np.asarray(to_numpy(g), dtype=np.float64)


def critic_values(model, points, chunk=2048):
    """D's output (the GAN's logit, the critics' score) at ``points`` (eval mode, no cache),
    ``chunk`` points at a time: a contour grid through a 512-wide maxout layer would otherwise
    exceed the 32-bit indexing of the GPU kernels."""
    pts = np.asarray(points, dtype=np.float64)
    out = [np.asarray(to_numpy(model._eval_forward(model.D, model.to_model(pts[i:i + chunk]))),
                      dtype=np.float64).reshape(-1) for i in range(0, len(pts), chunk)]
    return np.concatenate(out)


def linear_layers(net):
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


# --------------------------------------------------------------------------- mode assignment
def assign_modes(samples, centres):
    """Index of the most responsible component of each sample. With equal mixing weights and
    equal isotropic covariances the responsibility is largest for the nearest mean, so this is
    the nearest centre (independent of the components' std)."""
    x = np.asarray(samples, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


def modes_covered(samples, centres):
    """ALI's count: (number of components with at least one sample assigned, counts per mode)."""
    counts = np.bincount(assign_modes(samples, centres), minlength=len(centres))
    return int((counts > 0).sum()), counts


# --------------------------------------------------------------------------- capacity
def critic_gradients(model, x_real, x_fake, rng):
    """Diagnostics of the critic at one point of training.

    ``signal_norms[l]``: mean over the eval points (real, fake and interpolates x̂) of
    ‖∂D/∂h_l‖ with h_l the input of the l-th Linear layer (l = 0: the data, so entry 0 is
    ‖∇ₓD‖). ``weight_grad_norms[l]``: Frobenius norm of the critic loss's gradient with
    respect to the l-th Linear weight (the penalty included for WGAN-GP), on that batch.
    """
    n = len(x_real)
    eps = rng.uniform(0.0, 1.0, size=(n, 1))
    x_hat = eps * x_real + (1 - eps) * x_fake
    pts = model.to_model(np.concatenate([x_real, x_fake, x_hat]))
    g, tape = input_gradient(model.D, pts)
    norms = []
    for i, r in enumerate(tape.rules):
        if isinstance(r.layer, nn.Linear):
            s = tape.g if i == 0 else tape.signals[i - 1]
            s = np.asarray(s, dtype=np.float64).reshape(len(pts), -1)
            norms.append(float(np.sqrt((s * s).sum(axis=1)).mean()))
    gnorm = np.sqrt((np.asarray(g, dtype=np.float64) ** 2).sum(axis=1))
    # the critic loss's weight gradients on this batch (host noise and ε: the model's own
    # device stream, which drives training, is not touched)
    noise = model.sample_noise(n, rng=rng)
    model.opt_D.zero_grad()
    xr = model.to_model(x_real)
    if model.name == "wgan-gp":
        model.discriminator_grads(xr, noise, eps=model.to_model(eps))
    else:
        model.discriminator_grads(xr, noise)
    wg = [float(np.sqrt((np.asarray(m.weight.grad, dtype=np.float64) ** 2).sum()))
          for m in linear_layers(model.D)]
    model.opt_D.zero_grad()
    return {"signal_norms": norms, "weight_grad_norms": wg,
            "input_grad_norm_mean": float(gnorm.mean()),
            "input_grad_norm_real": float(gnorm[:n].mean()),
            "input_grad_norm_fake": float(gnorm[n:2 * n].mean()),
            "input_grad_norm_interp": float(gnorm[2 * n:].mean())}


def cmd_capacity(args):
    q = args.quick
    iters = 4 if q else args.iterations
    every = 2 if q else args.record_every
    width, depth, batch = (8, 3, 32) if q else (args.width, args.depth, args.batch)
    clips = [0.01] if q else [float(c) for c in args.clips.split(",")]
    configs = [(f"wgan clip c={c:g}", "wgan", c) for c in clips] + [("wgan-gp", "wgan-gp", None)]
    runs = {}
    t0 = time.time()
    for label, name, clip in configs:
        model = build_model(name, width, depth, seed=args.seed, clip=clip)
        data_rng = np.random.default_rng([args.seed, 7])
        eval_rng = np.random.default_rng([args.seed, 8])
        x_eval = sample_toy(args.dataset, 64 if q else 256, np.random.default_rng([args.seed, 9])
                            ).astype(np.float64)
        hist = []

        def record(it, model=model, hist=hist, x_eval=x_eval, eval_rng=eval_rng):
            x_fake = generate(model, len(x_eval), seed=it)
            d = critic_gradients(model, x_eval, x_fake, eval_rng)
            d["iteration"] = it
            hist.append(d)

        t = time.time()
        record(0)
        train(model, args.dataset, iters, batch, data_rng, every, record)
        w = np.concatenate([np.asarray(m.weight.data, dtype=np.float64).ravel()
                            for m in linear_layers(model.D)])
        entry = {"model": name, "clip": clip, "hyper": _jsonable(model.hp),
                 "seconds": round(time.time() - t, 1), "history": hist,
                 "weights": w.tolist() if q else None,
                 "weight_stats": {"n": int(w.size), "abs_max": float(np.abs(w).max()),
                                  "std": float(w.std())}}
        if clip is not None:
            entry["weight_stats"]["fraction_at_clip"] = float(
                np.mean(np.abs(w) >= clip * (1 - 1e-3)))
        entry["_w"] = w
        runs[label] = entry
        print(f"capacity {label}: {iters} iterations in {entry['seconds']} s; final ‖∇ₓD‖ "
              f"{hist[-1]['input_grad_norm_mean']:.3g}", flush=True)
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scale = (f"scaled down: {iters} generator iterations, critic {depth}×{width} ReLU MLP, batch "
             f"{batch}, {args.dataset}; the paper's Figure 1(b) uses a 12-layer critic trained on "
             f"the Swiss roll and c in {{0.1, 0.01, 0.001}}")
    png = plot_capacity(runs, out / "capacity.png", scale)
    result = {"experiment": "capacity", "paper": "Gulrajani et al. 2017, Figure 1",
              "dataset": args.dataset, "iterations": iters, "record_every": every,
              "width": width, "depth": depth, "batch": batch, "seed": args.seed,
              "quick": bool(q), "scaled_down": scale,
              "optimizers": {"wgan": "RMSProp lr 5e-5, clip after every critic step, n_critic 5",
                             "wgan-gp": "Adam lr 1e-4, betas (0, 0.9), lambda 0.1 (gan_toy.py), "
                                        "n_critic 5"},
              "signal_norms_definition": "mean over real, generated and interpolated points of "
                                         "||dD/dh_l||, h_l the input of the l-th Linear layer "
                                         "(l = 0: the data x, i.e. ||grad_x D||)",
              "runs": {k: {kk: vv for kk, vv in v.items() if kk != "_w"} for k, v in runs.items()},
              "figure": png.name, "seconds": round(time.time() - t0, 1), "host": _host()}
    _write_json(out / "capacity.json", result)
    return result


def plot_capacity(runs, path, scale):
    from scratchgan.viz import _figure
    fig = _figure((15, 8.5))
    labels = list(runs)
    n = len(labels)
    colors = {lab: f"C{i}" for i, lab in enumerate(labels)}
    # (a) weight histograms, one panel per run
    gs = fig.add_gridspec(2, 3 * n)
    for i, lab in enumerate(labels):
        ax = fig.add_subplot(gs[0, 3 * i:3 * i + 3])
        w = runs[lab]["_w"]
        ax.hist(w, bins=60, color=colors[lab])
        ax.set_yscale("log")
        ax.set_title(f"(a) critic weights: {lab}", fontsize=9)
        ax.set_xlabel("weight value", fontsize=8)
        if runs[lab]["clip"] is not None:
            c = runs[lab]["clip"]
            frac = runs[lab]["weight_stats"]["fraction_at_clip"]
            ax.axvline(c, color="k", ls=":", lw=0.8)
            ax.axvline(-c, color="k", ls=":", lw=0.8)
            ax.text(0.02, 0.95, f"{100 * frac:.0f}% at ±c", transform=ax.transAxes,
                    fontsize=8, va="top")
        ax.tick_params(labelsize=7)
    ax = fig.add_subplot(gs[1, 0:n])
    for lab in labels:
        h = runs[lab]["history"][-1]
        ax.semilogy(range(len(h["signal_norms"])), h["signal_norms"], "o-", color=colors[lab],
                    label=lab)
    ax.set_xlabel("depth l (0 = data x; l = input of the l-th Linear)", fontsize=8)
    ax.set_ylabel("mean |dD/dh_l|", fontsize=8)
    ax.set_title("(b) critic gradient through depth, end of training", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(gs[1, n:2 * n])
    for lab in labels:
        h = runs[lab]["history"][-1]
        ax.semilogy(range(len(h["weight_grad_norms"])), h["weight_grad_norms"], "o-",
                    color=colors[lab], label=lab)
    ax.set_xlabel("critic layer (Linear weights)", fontsize=8)
    ax.set_ylabel("|dL_D/dW_l| (Frobenius)", fontsize=8)
    ax.set_title("(b') critic-loss weight gradient per layer, end\n(a missing point: exactly 0)", fontsize=9)
    ax = fig.add_subplot(gs[1, 2 * n:3 * n])
    for lab in labels:
        hs = runs[lab]["history"]
        ax.semilogy([h["iteration"] for h in hs], [h["input_grad_norm_mean"] for h in hs],
                    color=colors[lab], label=lab)
    ax.axhline(1.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("generator iteration", fontsize=8)
    ax.set_ylabel("mean |grad_x D| (real, fake, interpolates)", fontsize=8)
    ax.set_title("(c) |grad_x D| at the input along training", fontsize=9)
    for a in fig.axes:
        a.tick_params(labelsize=7)
    fig.suptitle("WGAN-GP Figure 1, weight clipping vs gradient penalty, same critic MLP\n"
                 + scale, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _save_png(fig, path, dpi=70)


# --------------------------------------------------------------------------- toy
def cmd_toy(args):
    q = args.quick
    iters = 3 if q else args.iterations
    width, batch, n_samples = (8, 32, 200) if q else (args.width, args.batch, args.samples)
    grid_n = 20 if q else 120
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    panels, t0 = {}, time.time()
    for ds in TOY_SETS:
        for name in MODELS:
            t = time.time()
            model = build_model(name, width, 3, seed=args.seed, device=args.device)
            runner = StepRunner(model)
            train(model, ds, iters, batch, np.random.default_rng([args.seed, 3]), runner=runner)
            g = generate(model, n_samples)
            lim = TOY_LIM[ds]
            v = np.linspace(-lim, lim, grid_n)
            gx, gy = np.meshgrid(v, v)
            values = critic_values(model, np.stack([gx.ravel(), gy.ravel()], 1)).reshape(gx.shape)
            p = {"model": name, "dataset": ds, "seconds": round(time.time() - t, 1),
                 "step_mode": runner.mode_used, "graph_fallback_reason": runner.reason,
                 "hyper": _jsonable(model.hp), "sample_mean": g.mean(0).tolist(),
                 "sample_std": g.std(0).tolist(), "_g": g, "_v": values, "_grid": v}
            if ds != "swissroll":
                c = toy_modes(ds)
                p["modes_ali"] = modes_covered(g, c)[0]
                st = mode_statistics(g, c, toy_std(ds))
                p["modes_3sigma"] = st["modes_covered"]
                p["high_quality_fraction"] = st["high_quality_fraction"]
            panels[(ds, name)] = p
            print(f"toy {ds} {name}: {p['seconds']} s "
                  + (f"modes (ALI) {p.get('modes_ali')} / 3σ {p.get('modes_3sigma')}"
                     if ds != "swissroll" else ""), flush=True)
    scale = (f"scaled down: {iters} iterations, width {width} (3 ReLU layers; GAN: its toy "
             f"maxout D), batch {batch}, against the paper's {PAPER['toy_iterations'] // 1000}k "
             f"and {PAPER['toy_width']}")
    png = plot_toy(panels, out / "toy.png", scale)
    result = {"experiment": "toy", "paper": "Gulrajani et al. 2017, gan_toy.py / Figure 2 setting",
              "iterations": iters, "width": width, "batch": batch, "samples": n_samples,
              "seed": args.seed, "quick": bool(q), "scaled_down": scale,
              "paper_settings": {k: PAPER[k] for k in ("toy_width", "toy_layers", "toy_batch",
                                                       "toy_iterations")},
              "panels": {f"{ds}/{name}": {k: v for k, v in p.items() if not k.startswith("_")}
                         for (ds, name), p in panels.items()},
              "figure": png.name, "seconds": round(time.time() - t0, 1), "host": _host(),
              "device": args.device, "device_name": _device_name(args.device)}
    _write_json(out / "toy.json", result)
    return result


def plot_toy(panels, path, scale):
    from scratchgan.viz import _figure
    fig = _figure((12, 12))
    titles = {"gan": "GAN (logit of D)", "wgan": "WGAN, clipping (critic)",
              "wgan-gp": "WGAN-GP (critic)"}
    for r, ds in enumerate(TOY_SETS):
        data = sample_toy(ds, 1000, np.random.default_rng(0))
        for c, name in enumerate(MODELS):
            p = panels[(ds, name)]
            ax = fig.add_subplot(3, 3, 3 * r + c + 1)
            v = p["_grid"]
            ax.contourf(v, v, p["_v"], levels=20, cmap="viridis", alpha=0.85)
            ax.contour(v, v, p["_v"], levels=10, colors="k", linewidths=0.3, alpha=0.5)
            ax.scatter(data[:, 0], data[:, 1], s=2, c="white", alpha=0.6, lw=0)
            g = p["_g"][:1000]
            ax.scatter(g[:, 0], g[:, 1], s=2, c="orangered", alpha=0.7, lw=0)
            lim = TOY_LIM[ds]
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            extra = ""
            if "modes_ali" in p:
                extra = f"\nmodes: {p['modes_ali']} nearest-mean, {p['modes_3sigma']} within 3σ"
            ax.set_title(f"{TOY_TITLES[ds]}: {titles[name]}{extra}", fontsize=9)
            ax.tick_params(labelsize=7)
    fig.suptitle("GAN / WGAN / WGAN-GP on toy sets: samples (red) over data (white), "
                 "D/critic value contours\n" + scale, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save_png(fig, path, dpi=70)


# --------------------------------------------------------------------------- modes
def cmd_modes(args):
    q = args.quick
    runs = 2 if q else args.runs
    iters = 3 if q else args.iterations
    n_samples = 300 if q else args.samples
    width, batch = (8, 32) if q else (args.width, args.batch)
    models = MODELS if not args.models else tuple(args.models.split(","))
    centres = toy_modes("grid25")
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res, t0 = {}, time.time()
    for name in models:
        per = []
        for r in range(runs):
            seed = args.seed + r
            t = time.time()
            model = build_model(name, width, 3, seed=seed, device=args.device)
            runner = StepRunner(model)
            train(model, "grid25", iters, batch, np.random.default_rng([seed, 5]), runner=runner)
            g = generate(model, n_samples, seed=10_000 + seed)
            k, counts = modes_covered(g, centres)
            st = mode_statistics(g, centres, toy_std("grid25"))
            per.append({"seed": seed, "modes_covered": k, "counts": counts.tolist(),
                        "modes_3sigma": st["modes_covered"],
                        "high_quality_fraction": st["high_quality_fraction"],
                        "seconds": round(time.time() - t, 1), "step_mode": runner.mode_used,
                        "graph_fallback_reason": runner.reason})
            print(f"modes {name} seed {seed}: {k} modes (ALI count), {st['modes_covered']} "
                  f"within 3σ, hq {st['high_quality_fraction']:.3f}, {per[-1]['seconds']} s",
                  flush=True)
        ks = np.array([p["modes_covered"] for p in per], dtype=float)
        hs = np.array([p["modes_3sigma"] for p in per], dtype=float)
        res[name] = {"runs": per, "mean": float(ks.mean()), "std": float(ks.std(ddof=1))
                     if len(ks) > 1 else 0.0, "min": int(ks.min()), "max": int(ks.max()),
                     "mean_3sigma": float(hs.mean()),
                     "std_3sigma": float(hs.std(ddof=1)) if len(hs) > 1 else 0.0}
    reduced = runs < PAPER["modes_runs"] or n_samples < PAPER["modes_samples"]
    protocol = ("ALI mode count on grid25 (5x5 means {-4,-2,0,2,4}^2, std 0.05): "
                f"{runs} runs per model (seeds {args.seed}..{args.seed + runs - 1}), {n_samples} "
                "samples each, nearest-mean assignment, a mode dropped when no sample is "
                "assigned" + (f"; REDUCED protocol (ALI: {PAPER['modes_runs']} runs, "
                              f"{PAPER['modes_samples']} samples, random hyperparameters per run)"
                              if reduced else "; ALI's 10 runs use random lr, beta1, init "
                              "scale per run, these use fixed hyperparameters and new seeds"))
    scale = (f"{iters} generator iterations, width {width}, batch {batch} (the toy reduction: "
             f"paper's toy script {PAPER['toy_iterations'] // 1000}k iterations, width "
             f"{PAPER['toy_width']})")
    table = modes_table(res, runs, protocol)
    png = plot_modes(res, out / "modes.png", protocol, scale)
    result = {"experiment": "modes", "protocol": protocol, "reduced_protocol": bool(reduced),
              "runs_per_model": runs, "samples": n_samples, "iterations": iters, "width": width,
              "batch": batch, "quick": bool(q), "scaled_down": scale,
              "std_definition": "sample std over runs (ddof=1)",
              "results": res, "published": ALI_PUBLISHED, "table_markdown": table,
              "figure": png.name, "seconds": round(time.time() - t0, 1), "host": _host(),
              "device": args.device, "device_name": _device_name(args.device)}
    _write_json(out / "modes.json", result)
    print(table)
    return result


def modes_table(res, runs, protocol):
    lines = ["| model | modes covered (nearest mean), mean ± std | min-max | runs | "
             "modes within 3σ, mean ± std |", "|---|---|---|---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} (this work, reduced) | {r['mean']:.1f} ± {r['std']:.1f} | "
                     f"{r['min']}-{r['max']} | {runs} | {r['mean_3sigma']:.1f} ± "
                     f"{r['std_3sigma']:.1f} |")
    for name, r in ALI_PUBLISHED.items():
        lines.append(f"| {name} (ALI paper, published) | {r['mean']} ± {r['std']} | "
                     f"{r['range'][0]}-{r['range'][1]} | {r['runs']} | n/a |")
    return "\n".join(lines) + f"\n\nProtocol: {protocol}."


def plot_modes(res, path, protocol, scale):
    from scratchgan.viz import _figure
    fig = _figure((8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    names = list(res) + [f"{k} (ALI paper)" for k in ALI_PUBLISHED]
    means = [res[k]["mean"] for k in res] + [v["mean"] for v in ALI_PUBLISHED.values()]
    stds = [res[k]["std"] for k in res] + [v["std"] for v in ALI_PUBLISHED.values()]
    colors = [f"C{i}" for i in range(len(res))] + ["0.6"] * len(ALI_PUBLISHED)
    ax.bar(range(len(names)), means, yerr=stds, color=colors, capsize=4)
    for i, k in enumerate(res):
        ks = [p["modes_covered"] for p in res[k]["runs"]]
        ax.scatter(np.full(len(ks), i) + np.linspace(-0.15, 0.15, len(ks)), ks, c="k", s=10,
                   zorder=3)
    ax.axhline(25, color="k", ls=":", lw=0.8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel("modes covered of 25 (nearest-mean assignment)", fontsize=8)
    ax.set_ylim(0, 32)
    ax.set_title("25 Gaussians, ALI mode count, " + scale + "\n" + _wrap(protocol, 110),
                 fontsize=7)
    fig.tight_layout()
    return _save_png(fig, path, dpi=80)


# --------------------------------------------------------------------------- mnist
MNIST_MODELS = ("wgan", "wgan-gp")
MNIST_LABELS = {"wgan": "WGAN (weight clipping)", "wgan-gp": "WGAN-GP"}
PAPER_MNIST_ITERATIONS = 200_000


def build_mnist_model(name, device, seed):
    """wgan: its default DCGAN nets at 28×28 (BatchNorm in G and critic, unbounded score),
    RMSprop 5e-5, c 0.01, n_critic 5, warmup off; wgan-gp: the official MNIST nets (DIM 64,
    z 128), Adam 1e-4 β (0, 0.9), λ 10, n_critic 5 (the paper's Algorithm 1)."""
    if name == "wgan":
        return get_model("wgan")((1, 28, 28), device=device, rng=seed, arch="dcgan",
                                 warmup=False)
    if name == "wgan-gp":
        return get_model("wgan-gp")((1, 28, 28), device=device, rng=seed, arch="mnist")
    raise ValueError(f"unknown model {name!r}; expected one of {MNIST_MODELS}")


class _DeviceBatches:
    """Real minibatches gathered on the device: the images live there once (in the model's
    data_range); a numpy permutation per epoch picks the rows of each step."""

    def __init__(self, images_u8, model, batch, seed):
        from scratchgan.data import scale_images
        x = scale_images(images_u8, model.data_range)[:, None, :, :]
        self.x = model.to_model(np.ascontiguousarray(x))
        self.n, self.batch = len(images_u8), int(batch)
        self.rng = np.random.default_rng([seed, 11])
        self.perm, self.pos, self.epochs = self.rng.permutation(self.n), 0, 0
        self.model = model

    def next(self, k):
        need = k * self.batch
        if need > self.n:
            raise ValueError(f"{need} rows per step but only {self.n} images")
        if self.pos + need > self.n:                   # new epoch: drop the remainder
            self.perm, self.pos = self.rng.permutation(self.n), 0
            self.epochs += 1
        idx = self.perm[self.pos:self.pos + need]
        self.pos += need
        rows = self.x[self.model.to_model(idx, dtype=False)]
        return [rows[i * self.batch:(i + 1) * self.batch] for i in range(k)]


class _MnistScorer:
    """LeNet IS and FD of generated samples, exactly as ``mnist_inception_score`` and
    ``mnist_frechet_distance`` compute them (features_and_log_probs, then
    inception_score_from_log_probs / frechet_distance_from_features), with the test set's
    features computed once."""

    def __init__(self, test_u8, device, splits=10):
        from scratchgan.metrics.classifier import load_classifier
        self.clf = load_classifier(device=device)
        self.splits = splits
        self.test_feats, lp = self.clf.features_and_log_probs(test_u8)
        from scratchgan.metrics import inception_score_from_log_probs
        self.is_real_test = inception_score_from_log_probs(lp, min(splits, len(lp)))

    def fd_of_u8(self, images_u8):
        from scratchgan.metrics import frechet_distance_from_features
        f, _ = self.clf.features_and_log_probs(images_u8)
        return frechet_distance_from_features(f, self.test_feats)

    def score(self, model, n, seed=12345, batch=500):
        from scratchgan.metrics import (frechet_distance_from_features,
                                        inception_score_from_log_probs)
        rng = np.random.default_rng(seed)              # the same noise at every eval
        feats, logps = [], []
        for i in range(0, n, batch):
            m = min(batch, n - i)
            x = model.generate(model.sample_noise(m, rng=rng))
            f, lp = self.clf.features_and_log_probs(x, data_range=model.data_range)
            feats.append(f)
            logps.append(lp)
        f, lp = np.concatenate(feats), np.concatenate(logps)
        is_m, is_s = inception_score_from_log_probs(lp, min(self.splits, n))
        return {"is": is_m, "is_std": is_s, "fd": frechet_distance_from_features(f, self.test_feats)}


def train_mnist_model(name, args, x_train_u8, scorer, settings, deadline, log=print):
    """Train one model for ``settings['iterations']`` generator iterations or until
    ``deadline`` (time.time()); evaluate every ``eval_every`` iterations (and at 0)."""
    from scratchgan.runtime import StepRunner
    model = build_mnist_model(name, args.device, args.seed)
    runner = StepRunner(model)
    data = _DeviceBatches(x_train_u8, model, settings["batch"], args.seed)
    iters, every, log_every = settings["iterations"], settings["eval_every"], settings["log_every"]
    from scratchgan.backend import get_array_module
    xp = get_array_module(data.x)
    acc_loss, acc_em = xp.zeros((), np.float64), xp.zeros((), np.float64)
    n_acc = 0
    win_loss, win_em, win_n = 0.0, 0.0, 0            # since the last eval point
    curve = {"iteration": [], "neg_loss_d": [], "em_estimate": []}     # every log_every its
    evals = []
    t_train = 0.0                                     # training time, evals excluded
    t0 = time.time()

    def flush(it):
        nonlocal acc_loss, acc_em, n_acc, win_loss, win_em, win_n
        if n_acc == 0:
            return
        s_loss, s_em = float(acc_loss), float(acc_em)   # the only host reads of the losses
        curve["iteration"].append(it)
        curve["neg_loss_d"].append(-s_loss / n_acc)
        curve["em_estimate"].append(s_em / n_acc)
        win_loss, win_em, win_n = win_loss + s_loss, win_em + s_em, win_n + n_acc
        acc_loss, acc_em = xp.zeros((), np.float64), xp.zeros((), np.float64)
        n_acc = 0

    def evaluate(it):
        nonlocal win_loss, win_em, win_n
        flush(it)
        te = time.time()
        try:
            s = scorer.score(model, settings["eval_samples"])
        except Exception as e:  # noqa: BLE001 - a failed eval is recorded, the run goes on
            s = {"is": float("nan"), "is_std": float("nan"), "fd": float("nan"),
                 "error": f"{type(e).__name__}: {e}"}
        s.update({"iteration": it, "wall_s": round(time.time() - t0, 2),
                  "train_s": round(t_train, 2), "eval_s": round(time.time() - te, 2),
                  "mean_loss_d": (win_loss / win_n) if win_n else None,
                  "mean_em_estimate": (win_em / win_n) if win_n else None,
                  "loss_window_iterations": win_n})
        win_loss, win_em, win_n = 0.0, 0.0, 0
        evals.append(s)
        em = "n/a" if s["mean_em_estimate"] is None else f"{s['mean_em_estimate']:.4g}"
        log(f"mnist {name} it {it}: IS {s['is']:.3f} FD {s['fd']:.2f} mean EM estimate {em} "
            f"(wall {s['wall_s']} s, train {s['train_s']} s)", flush=True)

    evaluate(0)
    it, stopped_early, error = 0, False, None
    try:
        while it < iters:
            if time.time() > deadline:
                stopped_early = True
                break
            ts = time.time()
            xs = data.next(model.batches_per_step())
            logs = runner(xs)
            acc_loss += logs["loss_d"]
            acc_em += logs["em_estimate"]
            n_acc += 1
            it += 1
            if it % log_every == 0 or it == iters:
                flush(it)                               # a host read: syncs the device
            t_train += time.time() - ts
            if it % every == 0 or it == iters:
                evaluate(it)
    except Exception as e:  # noqa: BLE001 - record it and still write the outputs
        import traceback
        error = f"{type(e).__name__}: {e}"
        log(f"mnist {name}: training failed at generator iteration {it}: {error}\n"
            + traceback.format_exc(), flush=True)
        stopped_early = True
        acc_loss, acc_em, n_acc = 0.0, 0.0, 0
    if stopped_early:
        flush(it)
        if not evals or evals[-1]["iteration"] != it:
            evaluate(it)
        log(f"mnist {name}: time limit reached, stopped at generator iteration {it} of {iters}",
            flush=True)
    curve_ok = all(np.isfinite(v) for v in curve["neg_loss_d"])
    return {"model": name, "label": MNIST_LABELS[name], "hyper": _jsonable(model.hp),
            "arch": model.arch, "data_range": list(model.data_range),
            "parameters": model.num_parameters(), "iterations_done": it,
            "stopped_early": stopped_early, "stopped_at": it if stopped_early else None,
            "epochs_of_data": round(it * model.hp["n_critic"] * settings["batch"]
                                    / data.n, 3),
            "train_seconds": round(t_train, 1), "wall_seconds": round(time.time() - t0, 1),
            "step_mode": runner.mode_used, "graph_captures": runner.captures,
            "graph_fallback_reason": runner.reason,
            "evals": evals, "loss_curve": curve, "loss_curve_finite": bool(curve_ok),
            "error": error}


def cmd_mnist(args):
    from scratchgan.data import load_mnist
    q = args.quick
    t_start = time.time()
    settings = {"iterations": 4 if q else args.iterations,
                "eval_every": 2 if q else args.eval_every,
                "eval_samples": 200 if q else args.eval_samples,
                "batch": 16 if q else args.batch, "log_every": 2 if q else args.log_every,
                "time_limit_s": args.time_limit, "seed": args.seed, "device": args.device}
    data_dir = args.data_dir
    x_train, _ = load_mnist("train", "mnist", data_dir=data_dir, download=False)
    x_test, _ = load_mnist("test", "mnist", data_dir=data_dir, download=False)
    if q:
        x_train, x_test = x_train[:1024], x_test[:500]
    scorer = _MnistScorer(x_test, args.device)
    sub = x_train[np.random.default_rng(args.seed).choice(len(x_train),
                                                          min(settings["eval_samples"],
                                                              len(x_train)), replace=False)]
    reference = {"is_real_test": list(scorer.is_real_test),
                 "fd_train_subset_vs_test": scorer.fd_of_u8(sub),
                 "train_subset_size": int(len(sub)), "test_size": int(len(x_test))}
    print(f"mnist reference: IS of the real test set {scorer.is_real_test[0]:.3f}, FD of "
          f"{len(sub)} train images vs test {reference['fd_train_subset_vs_test']:.3f}",
          flush=True)
    reserve = min(15.0, 0.1 * args.time_limit)        # for the last evals, JSON and PNG
    runs = {}
    for i, name in enumerate(MNIST_MODELS):
        # each model may use its share of the time left; time the first leaves passes on
        deadline = t_start + (args.time_limit - reserve) * (i + 1) / len(MNIST_MODELS)
        runs[name] = train_mnist_model(name, args, x_train, scorer, settings, deadline)
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    budget = (f"short budget: {settings['iterations']} generator iterations per model (batch "
              f"{settings['batch']}, n_critic 5) against the WGAN-GP paper's "
              f"{PAPER_MNIST_ITERATIONS // 1000}k generator iterations; these curves show the "
              "start of training only")
    argv = getattr(args, "_argv", None)
    command = " ".join(["python", "benchmarks/wgan_gp_experiments.py"]
                       + [str(a) for a in (argv if argv is not None else sys.argv[1:])])
    png = plot_mnist(runs, out / "mnist.png", budget, settings["batch"])
    table = mnist_table(runs, reference)
    result = {"experiment": "mnist", "paper": "Gulrajani et al. 2017, MNIST (gan_mnist.py) / "
              "Figure 3-4 style curves: sample quality and critic loss against iterations",
              "quick": bool(q), "settings": settings, "short_budget": budget,
              "paper_generator_iterations": PAPER_MNIST_ITERATIONS,
              "models": {"wgan": "WGAN with weight clipping: default DCGAN nets at 28x28, "
                                 "RMSprop lr 5e-5, clip c 0.01, n_critic 5, warmup off "
                                 "(warmup=False: n_critic 5 throughout, no 100-critic-iteration "
                                 "phases), data in [-1, 1]",
                         "wgan-gp": "WGAN-GP: official MNIST nets (DIM 64, z 128), Adam lr 1e-4 "
                                    "betas (0, 0.9), lambda 10, n_critic 5 (paper's Algorithm "
                                    "1), data in [0, 1]"},
              "same_budget": "both models get the same generator iterations and batch size "
                             "(64, the WGAN-GP paper's) and n_critic 5 throughout",
              "metrics": "LeNet (scratchgan/metrics/weights/lenet_mnist.npz) Inception Score "
                         "(10 splits) and Frechet distance of its 128-d features against the "
                         "MNIST test set, as mnist_inception_score / mnist_frechet_distance "
                         "compute them, on --eval-samples samples from fixed noise",
              "loss_definition": "neg_loss_d = -loss_d, the negative critic loss as the model "
                                 "logs it (WGAN: mean f(real) - mean f(fake), the EM estimate; "
                                 "WGAN-GP: it includes -lambda*penalty); em_estimate = mean "
                                 "D(real) - mean D(fake). loss_curve points are means over "
                                 "log_every iterations, eval mean_* over the iterations since "
                                 "the previous eval",
              "reference": reference, "runs": runs, "table_markdown": table,
              "figure": png.name, "command": command, "device_name": _device_name(args.device),
              "seconds": round(time.time() - t_start, 1), "host": _host()}
    _write_json(out / "mnist.json", _finite_or_none(result))
    print(table, flush=True)
    return result


def _finite_or_none(o):
    """The result with every NaN/inf float as None (JSON null), for allow_nan=False."""
    if isinstance(o, dict):
        return {k: _finite_or_none(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite_or_none(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    return o


def mnist_table(runs, reference):
    lines = ["| model | iterations | stopped early | IS start → end | FD start → end | "
             "mean EM estimate (last window) | train s |", "|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        e0, e1 = r["evals"][0], r["evals"][-1]
        em = e1["mean_em_estimate"]
        lines.append(f"| {r['label']} | {r['iterations_done']} | "
                     f"{'yes' if r['stopped_early'] else 'no'} | {e0['is']:.2f} → {e1['is']:.2f} "
                     f"| {e0['fd']:.1f} → {e1['fd']:.1f} | "
                     f"{'n/a' if em is None else f'{em:.4g}'} | {r['train_seconds']} |")
    lines.append(f"| real MNIST test (reference) | - | - | {reference['is_real_test'][0]:.2f} | "
                 f"{reference['fd_train_subset_vs_test']:.2f} (train subset) | - | - |")
    return "\n".join(lines)


def plot_mnist(runs, path, budget, batch):
    from scratchgan.viz import _figure
    fig = _figure((15, 4.6))
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    loss_right = axes[2].twinx()
    for i, (name, r) in enumerate(runs.items()):
        c = f"C{i}"
        its = [e["iteration"] for e in r["evals"]]
        axes[0].plot(its, [e["is"] for e in r["evals"]], "o-", color=c, label=r["label"])
        axes[1].plot(its, [e["fd"] for e in r["evals"]], "o-", color=c, label=r["label"])
        cv = r["loss_curve"]
        # WGAN's clipped critic gives values ~100x smaller: its own (right) axis
        ax = axes[2] if name == "wgan-gp" else loss_right
        ax.plot(cv["iteration"], cv["neg_loss_d"], "-", color=c,
                label=f"{r['label']}: -loss_d" + (" (right axis)" if name == "wgan" else ""))
        if name == "wgan-gp":
            ax.plot(cv["iteration"], cv["em_estimate"], ":", color=c,
                    label=f"{r['label']}: E D(x) - E D(G(z)) (no penalty)")
        if r["stopped_early"]:
            for a in axes:
                a.axvline(r["iterations_done"], color=c, ls="--", lw=0.8)
    axes[0].set_ylabel("LeNet Inception Score (higher is better)", fontsize=8)
    axes[0].set_title("(a) Inception Score", fontsize=9)
    axes[1].set_ylabel("LeNet Fréchet distance to test (lower is better)", fontsize=8)
    axes[1].set_yscale("log")
    axes[1].set_title("(b) Fréchet distance", fontsize=9)
    axes[2].set_ylabel("critic's EM estimate, -loss_d (mean over log window)", fontsize=8)
    axes[2].set_title("(c) negative critic loss: does it track sample quality?", fontsize=9)
    loss_right.set_ylabel("WGAN (clipping): -loss_d", fontsize=8)
    loss_right.tick_params(labelsize=7)
    for a in axes:
        a.set_xlabel("generator iterations", fontsize=8)
        a.tick_params(labelsize=7)
        a.legend(fontsize=7, loc="upper left")
    loss_right.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"WGAN (clipping) vs WGAN-GP on MNIST, batch {batch}, n_critic 5\n" + budget,
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return _save_png(fig, path, dpi=70)


# --------------------------------------------------------------------------- helpers
MAX_PNG_BYTES = 280_000


def _save_png(fig, path, dpi):
    """Save ``fig``; a PNG over MAX_PNG_BYTES is re-written with a 256-colour palette (the
    results folder keeps every picture under 300 KB)."""
    from scratchgan.viz import _save
    path = _save(fig, path, dpi=dpi)
    shrink_png(path)
    return path


def shrink_png(path, limit=MAX_PNG_BYTES):
    path = pathlib.Path(path)
    if path.stat().st_size <= limit:
        return path
    from PIL import Image
    with Image.open(path) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    q.save(path, optimize=True)
    return path


def _wrap(s, n):
    import textwrap
    return "\n".join(textwrap.wrap(s, n))


def _jsonable(d):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _host():
    import os
    return {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(s, iterations, width, batch):
        s.add_argument("--out-dir", default=str(DEFAULT_OUT))
        s.add_argument("--quick", action="store_true", help="tiny run for tests")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--iterations", type=int, default=iterations,
                       help="generator iterations per run")
        s.add_argument("--width", type=int, default=width)
        s.add_argument("--batch", type=int, default=batch)

    s = sub.add_parser("capacity", help="Figure 1: weight clipping vs gradient penalty")
    common(s, 1000, 64, 256)
    s.add_argument("--depth", type=int, default=8, help="ReLU layers in the critic (and G)")
    s.add_argument("--dataset", default="swissroll", choices=("ring8", "swissroll", "grid25"))
    s.add_argument("--clips", default="0.1,0.01,0.001", help="clipping values c for WGAN")
    s.add_argument("--record-every", type=int, default=50)
    s.set_defaults(func=cmd_capacity)
    s = sub.add_parser("toy", help="3x3 samples + critic contours")
    common(s, 2000, 128, 256)
    s.add_argument("--samples", type=int, default=2000)
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: each step replayed from a CUDA graph (StepRunner)")
    s.set_defaults(func=cmd_toy)
    s = sub.add_parser("modes", help="ALI mode count on 25 Gaussians")
    common(s, 2000, 128, 256)
    s.add_argument("--runs", type=int, default=10)
    s.add_argument("--samples", type=int, default=10000)
    s.add_argument("--models", default="", help="comma list (default gan,wgan,wgan-gp)")
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: each step replayed from a CUDA graph (StepRunner)")
    s.set_defaults(func=cmd_modes)
    s = sub.add_parser("mnist", help="WGAN (clipping) vs WGAN-GP on MNIST: IS, FD, critic loss")
    s.add_argument("--out-dir", default=str(DEFAULT_OUT))
    s.add_argument("--quick", action="store_true", help="tiny run for tests")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--iterations", type=int, default=3000, help="generator iterations per model")
    s.add_argument("--batch", type=int, default=64, help="minibatch size (the WGAN-GP paper's 64)")
    s.add_argument("--eval-every", type=int, default=500)
    s.add_argument("--eval-samples", type=int, default=2000)
    s.add_argument("--log-every", type=int, default=50,
                   help="read the summed critic losses to the host every N iterations")
    s.add_argument("--time-limit", type=float, default=200.0,
                   help="wall seconds for the whole run; training stops early (recorded) to "
                        "leave time for the outputs")
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    s.add_argument("--data-dir", default=None,
                   help="folder holding mnist/ (default $SCRATCHGAN_DATA, then the cache)")
    s.set_defaults(func=cmd_mnist)
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    args._argv = list(argv) if argv is not None else sys.argv[1:]
    return args.func(args)


if __name__ == "__main__":
    main()
