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

Outputs (JSON + PNG) go to ``--out-dir`` (default benchmarks/results/wgan-gp). ``--quick``
makes every subcommand tiny (a few steps, a few hundred samples) for the tests.

    OMP_NUM_THREADS=1 python benchmarks/wgan_gp_experiments.py capacity
    OMP_NUM_THREADS=1 python benchmarks/wgan_gp_experiments.py toy
    OMP_NUM_THREADS=1 python benchmarks/wgan_gp_experiments.py modes --runs 4 --iterations 2000
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scratchgan import nn  # noqa: E402
from scratchgan.data.toy import sample_toy, toy_modes, toy_std  # noqa: E402
from scratchgan.metrics.toy import mode_statistics  # noqa: E402
from scratchgan.models import get_model  # noqa: E402
from scratchgan.nn.double import input_gradient  # noqa: E402

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
def build_model(name, width, layers=3, seed=0, clip=None):
    """The library model ``name`` for 2-D data with hidden width ``width``.

    gan: the GAN's named toy variant (ReLU G with 2 hidden layers, maxout + dropout D, Adam
    1e-3, β1 0.5, z 16-d uniform) at width ``width``; wgan: arch mlp (``layers`` ReLU layers in
    G and critic, RMSProp 5e-5, clipping c = ``clip`` or 0.01, n_critic 5), z 2-d N(0, I) as in
    gan_toy.py; wgan-gp: arch mlp (same shapes, Adam 1e-4, β (0, 0.9) of the paper's
    Algorithm 1, λ = 0.1 of gan_toy.py on toy data, n_critic 5), z 2-d.
    """
    if name == "gan":
        return get_model("gan")((2,), rng=seed, toy_hidden=width, toy_units=width)
    if name == "wgan":
        kw = {} if clip is None else {"clip": float(clip)}
        return get_model("wgan")((2,), rng=seed, arch="mlp", mlp_hidden=width,
                                 mlp_layers=layers, z_dim=2, **kw)
    if name == "wgan-gp":
        return get_model("wgan-gp")((2,), rng=seed, arch="mlp", mlp_hidden=width,
                                    mlp_layers=layers)
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def train(model, dataset, iterations, batch, rng, every=None, callback=None):
    """``iterations`` generator iterations of ``model.train_step`` on fresh toy batches
    (``batch`` rows per real minibatch, ``batches_per_step()`` minibatches per iteration)."""
    for it in range(1, iterations + 1):
        k = model.batches_per_step()
        model.train_step(sample_toy(dataset, batch * k, rng))
        if callback is not None and every and (it % every == 0 or it == iterations):
            callback(it)


def generate(model, n, seed=12345):
    return np.asarray(model.generate(model.sample_noise(n, rng=np.random.default_rng(seed))),
                      dtype=np.float64)


def critic_values(model, points):
    """D's output (the GAN's logit, the critics' score) at ``points`` (eval mode, no cache)."""
    x = model.to_model(np.asarray(points, dtype=np.float64))
    return np.asarray(model._eval_forward(model.D, x), dtype=np.float64).reshape(-1)


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
            model = build_model(name, width, 3, seed=args.seed)
            train(model, ds, iters, batch, np.random.default_rng([args.seed, 3]))
            g = generate(model, n_samples)
            lim = TOY_LIM[ds]
            v = np.linspace(-lim, lim, grid_n)
            gx, gy = np.meshgrid(v, v)
            values = critic_values(model, np.stack([gx.ravel(), gy.ravel()], 1)).reshape(gx.shape)
            p = {"model": name, "dataset": ds, "seconds": round(time.time() - t, 1),
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
              "figure": png.name, "seconds": round(time.time() - t0, 1), "host": _host()}
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
            model = build_model(name, width, 3, seed=seed)
            train(model, "grid25", iters, batch, np.random.default_rng([seed, 5]))
            g = generate(model, n_samples, seed=10_000 + seed)
            k, counts = modes_covered(g, centres)
            st = mode_statistics(g, centres, toy_std("grid25"))
            per.append({"seed": seed, "modes_covered": k, "counts": counts.tolist(),
                        "modes_3sigma": st["modes_covered"],
                        "high_quality_fraction": st["high_quality_fraction"],
                        "seconds": round(time.time() - t, 1)})
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
              "figure": png.name, "seconds": round(time.time() - t0, 1), "host": _host()}
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


def _write_json(path, obj):
    def default(o):
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(type(o).__name__)
    path.write_text(json.dumps(obj, indent=1, default=default, allow_nan=False) + "\n")
    return path


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
    s.set_defaults(func=cmd_toy)
    s = sub.add_parser("modes", help="ALI mode count on 25 Gaussians")
    common(s, 2000, 128, 256)
    s.add_argument("--runs", type=int, default=10)
    s.add_argument("--samples", type=int, default=10000)
    s.add_argument("--models", default="", help="comma list (default gan,wgan,wgan-gp)")
    s.set_defaults(func=cmd_modes)
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    main()
