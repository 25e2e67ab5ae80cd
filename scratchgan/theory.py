"""Numerical checks of the GAN theory, each returning numbers (and optionally a plot).

Run ``python -m scratchgan.theory {dstar,jsd,emd,gradients,all} --out DIR``.
``tests/test_theory.py`` asserts the numbers.

1. ``optimal_discriminator``: for fixed p_data and p_g the discriminator that
   maximizes V(D, G) = E_data log D + E_g log(1 - D) is, pointwise,
   D*(x) = p_data(x) / (p_data(x) + p_g(x)) (maximize a log y + b log(1 - y)
   over y: y = a / (a + b)). A small MLP discriminator trained with our layers,
   losses and Adam on fresh samples of two 1-D Gaussians should approach it.
2. ``value_at_optimum``: substituting D* gives
   V(D*, G) = KL(p_data || m) + KL(p_g || m) - log 4 = 2 JSD(p_data || p_g) - log 4,
   m = (p_data + p_g) / 2; checked by integrating both sides with scipy.integrate.quad.
3. ``jsd_vs_emd``: p = U[0, 1], q_t = U[t, t + 1]. JSD = min(t, 1) log 2 saturates
   once the supports are disjoint (t >= 1): its gradient in t is then 0, while the
   Earth-Mover distance W1 = t keeps growing linearly.
4. ``generator_gradients``: with D(G(z)) = sigmoid(l), the minimax G loss
   log(1 - D) has d/dl = -D -> 0 as D -> 0 (G learns nothing when D rejects its
   samples confidently), while the non-saturating loss -log D has d/dl = -(1 - D) -> -1.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np
from scipy import integrate, stats

__all__ = ["LOG2", "LOG4", "DATA_GAUSSIAN", "GEN_GAUSSIAN", "analytic_dstar",
           "optimal_discriminator", "value_at_optimum", "value_identity", "jsd_vs_emd",
           "generator_gradients", "CHECKS", "main"]

LOG2, LOG4 = math.log(2.0), math.log(4.0)


def _savefig(fig, out, name):
    if out is None:
        return None
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return str(path)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# -- 1. optimal discriminator -------------------------------------------------------
DATA_GAUSSIAN = (0.0, 1.0)     # p_data = N(0, 1)
GEN_GAUSSIAN = (2.0, 0.5)      # p_g = N(2, 0.5^2): unequal widths make logit D* quadratic in x


def analytic_dstar(x, data=DATA_GAUSSIAN, gen=GEN_GAUSSIAN):
    """D*(x) = p_data / (p_data + p_g), computed from log-densities (stable in the tails)."""
    lp = stats.norm.logpdf(x, *data)
    lq = stats.norm.logpdf(x, *gen)
    return np.exp(lp - np.logaddexp(lp, lq))


def optimal_discriminator(steps=1000, batch_size=256, hidden=32, lr=1e-2, seed=0, density_floor=0.05,
                          out=None):
    """Train a 1-32-32-1 tanh MLP D on fresh samples, compare with D* on a grid.

    Returns ``max_error`` and ``mean_error`` of |D - D*| over the high-density
    region {x : (p_data + p_g)/2 >= density_floor}, the region's ends, and
    ``value_trained`` (V(D, G) by quadrature) vs ``value_optimal`` = 2 JSD - log 4.
    """
    from .nn import Linear, Sequential, Tanh, no_grad
    from .ops.loss import discriminator_loss_backward, discriminator_loss_forward
    from .optim import Adam

    rng = np.random.default_rng(seed)
    D = Sequential(Linear(1, hidden, rng=rng), Tanh(), Linear(hidden, hidden, rng=rng), Tanh(),
                   Linear(hidden, 1, rng=rng)).astype(np.float64)
    opt = Adam(D.parameters(), lr=lr)
    for step in range(steps):
        opt.lr = lr * (0.1 ** (step / steps))                # decay x10 over the run: less SGD noise at the end
        xr = rng.normal(*DATA_GAUSSIAN, size=(batch_size, 1))
        xf = rng.normal(*GEN_GAUSSIAN, size=(batch_size, 1))
        D.zero_grad()
        # one forward over [real; fake] (D has no BatchNorm, so this equals two separate passes)
        logits = D(np.concatenate([xr, xf]))
        _, cache = discriminator_loss_forward(logits[:batch_size], logits[batch_size:])
        dreal, dfake = discriminator_loss_backward(1.0, cache)
        D.backward(np.concatenate([dreal, dfake]))
        opt.step()

    grid = np.linspace(-4.0, 4.0, 1601)
    with no_grad():
        logits = D(grid[:, None])[:, 0]
    d_net = 1.0 / (1.0 + np.exp(-logits))
    d_star = analytic_dstar(grid)
    mix = 0.5 * (stats.norm.pdf(grid, *DATA_GAUSSIAN) + stats.norm.pdf(grid, *GEN_GAUSSIAN))
    region = mix >= density_floor
    err = np.abs(d_net - d_star)

    # V(D, G) of the trained D by the trapezoid rule on a fine grid (the integrand is smooth and
    # negligible beyond |x| = 10): log D = -softplus(-l), log(1 - D) = -softplus(l)
    xs = np.linspace(-10.0, 10.0, 20001)
    with no_grad():
        lx = D(xs[:, None])[:, 0]
    v_trained = np.trapezoid(-(stats.norm.pdf(xs, *DATA_GAUSSIAN) * np.logaddexp(0, -lx)
                               + stats.norm.pdf(xs, *GEN_GAUSSIAN) * np.logaddexp(0, lx)), xs)
    v_opt = value_at_optimum(DATA_GAUSSIAN, GEN_GAUSSIAN)["value"]
    res = {"max_error": float(err[region].max()), "mean_error": float(err[region].mean()),
           "region": [float(grid[region].min()), float(grid[region].max())],
           "value_trained": float(v_trained), "value_optimal": float(v_opt), "steps": steps}
    if out is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(grid, stats.norm.pdf(grid, *DATA_GAUSSIAN), "k:", label="p_data = N(0,1)")
        ax.plot(grid, stats.norm.pdf(grid, *GEN_GAUSSIAN), "g:", label="p_g = N(2,0.5²)")
        ax.plot(grid, d_star, "b-", lw=2, label="D* = p_data/(p_data+p_g)")
        ax.plot(grid, d_net, "r--", lw=1.5, label="trained D")
        ax.axvspan(*res["region"], color="0.9", zorder=0, label="high-density region")
        ax.set_xlabel("x")
        ax.set_title(f"optimal discriminator: max |D-D*| = {res['max_error']:.3f}")
        ax.legend(fontsize=7)
        res["plot"] = _savefig(fig, out, "dstar.png")
    return res


# -- 2. V(D*, G) = 2 JSD - log 4 ------------------------------------------------------
def value_at_optimum(data=DATA_GAUSSIAN, gen=GEN_GAUSSIAN, lim=30.0):
    """V(D*, G) and JSD(p_data || p_g) by separate quadratures for two Gaussians."""
    def logs(x):
        lp, lq = stats.norm.logpdf(x, *data), stats.norm.logpdf(x, *gen)
        return lp, lq, np.logaddexp(lp, lq)

    def v_integrand(x):            # p log D* + q log(1 - D*)
        lp, lq, ls = logs(x)
        return math.exp(lp) * (lp - ls) + math.exp(lq) * (lq - ls)

    def jsd_integrand(x):          # 0.5 p log(p/m) + 0.5 q log(q/m), m = (p + q)/2
        lp, lq, ls = logs(x)
        lm = ls - LOG2
        return 0.5 * (math.exp(lp) * (lp - lm) + math.exp(lq) * (lq - lm))

    pts = sorted({data[0], gen[0]})
    kw = dict(limit=400, epsabs=1e-13, epsrel=1e-12, points=pts)
    v = integrate.quad(v_integrand, -lim, lim, **kw)[0]
    jsd = integrate.quad(jsd_integrand, -lim, lim, **kw)[0]
    return {"value": v, "jsd": jsd, "two_jsd_minus_log4": 2 * jsd - LOG4,
            "abs_diff": abs(v - (2 * jsd - LOG4))}


def value_identity(out=None):
    """value_at_optimum for a family of Gaussian pairs (means apart 0..6, widths 0.5..2)."""
    pairs = [((0.0, 1.0), (0.0, 1.0)), ((0.0, 1.0), (0.5, 1.0)), ((0.0, 1.0), (2.0, 0.5)),
             ((0.0, 1.0), (1.0, 2.0)), ((-1.0, 0.7), (3.0, 1.3)), ((0.0, 1.0), (6.0, 1.0))]
    rows = [dict(data=list(a), gen=list(b), **value_at_optimum(a, b)) for a, b in pairs]
    res = {"rows": rows, "max_abs_diff": max(r["abs_diff"] for r in rows)}
    if out is not None:
        plt = _plt()
        shifts = np.linspace(0, 8, 17)
        vals = [value_at_optimum((0.0, 1.0), (s, 1.0)) for s in shifts]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(shifts, [v["value"] for v in vals], "b-", lw=2, label="V(D*, G) (quadrature)")
        ax.plot(shifts, [v["two_jsd_minus_log4"] for v in vals], "r--", label="2 JSD - log 4 (quadrature)")
        ax.axhline(-LOG4, color="k", ls=":", label="-log 4 (p_g = p_data)")
        ax.axhline(0, color="0.5", ls=":", label="0 (disjoint)")
        ax.set_xlabel("mean of p_g = N(shift, 1); p_data = N(0, 1)")
        ax.legend(fontsize=7)
        ax.set_title(f"V(D*,G) = 2 JSD - log 4: max |diff| = {res['max_abs_diff']:.1e}")
        res["plot"] = _savefig(fig, out, "value_jsd.png")
    return res


# -- 3. JSD vs Earth-Mover ----------------------------------------------------------------
def jsd_vs_emd(shifts=None, grid_step=1e-3, n_quantiles=10000, out=None):
    """JSD and W1 between U[0,1] and U[t, t+1] as t grows.

    JSD is integrated on a grid of step ``grid_step`` whose nodes include the
    support ends (t a multiple of the step), so the piecewise-constant integrand
    is integrated exactly. W1 comes from ``scipy.stats.wasserstein_distance`` on
    the quantile points u_i = (i + 1/2)/n of both distributions, which is exact.
    """
    shifts = np.round(np.linspace(0.0, 3.0, 31), 10) if shifts is None else np.asarray(shifts, float)
    jsd, emd = [], []
    u = (np.arange(n_quantiles) + 0.5) / n_quantiles
    for t in shifts:
        lo, hi = min(0.0, t), max(1.0, t + 1.0)
        n = int(round((hi - lo) / grid_step))
        mid = lo + (np.arange(n) + 0.5) * (hi - lo) / n            # cell midpoints
        p = ((mid >= 0) & (mid <= 1)).astype(float)
        q = ((mid >= t) & (mid <= t + 1)).astype(float)
        m = 0.5 * (p + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            kp = np.where(p > 0, p * np.log(p / m), 0.0)
            kq = np.where(q > 0, q * np.log(q / m), 0.0)
        jsd.append(0.5 * (kp.sum() + kq.sum()) * (hi - lo) / n)
        emd.append(stats.wasserstein_distance(u, u + t))
    jsd, emd = np.asarray(jsd), np.asarray(emd)
    analytic = np.minimum(shifts, 1.0) * LOG2
    res = {"shifts": shifts.tolist(), "jsd": jsd.tolist(), "emd": emd.tolist(),
           "max_jsd_error": float(np.abs(jsd - analytic).max()),
           "max_emd_error": float(np.abs(emd - shifts).max())}
    if out is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(shifts, jsd, "b-o", ms=3, label="JSD(p || q_t)")
        ax.plot(shifts, emd, "r-s", ms=3, label="Earth-Mover W1(p, q_t)")
        ax.axhline(LOG2, color="b", ls=":", label="log 2")
        ax.axvline(1.0, color="k", ls=":", lw=0.8)
        ax.set_xlabel("shift t: p = U[0,1], q_t = U[t, t+1]")
        ax.set_title("JSD saturates once supports are disjoint; W1 grows linearly")
        ax.legend(fontsize=7)
        res["plot"] = _savefig(fig, out, "jsd_vs_emd.png")
    return res


# -- 4. generator gradient saturation ------------------------------------------------------
def generator_gradients(logits=None, out=None):
    """d loss / d logit of the minimax and non-saturating G losses, as D(G(z)) -> 0.

    Uses ``scratchgan.ops.loss`` backwards on a batch of N logits; the per-sample
    gradient is N times the batch-mean gradient.
    """
    from .ops.activation import sigmoid
    from .ops.loss import (generator_minimax_loss_backward, generator_minimax_loss_forward,
                           generator_nonsaturating_loss_backward, generator_nonsaturating_loss_forward)
    l = np.linspace(-20.0, 5.0, 251) if logits is None else np.asarray(logits, dtype=np.float64)
    n = l.size
    _, c = generator_minimax_loss_forward(l)
    g_mm = generator_minimax_loss_backward(1.0, c) * n
    _, c = generator_nonsaturating_loss_forward(l)
    g_ns = generator_nonsaturating_loss_backward(1.0, c) * n
    d = sigmoid(l)
    res = {"logits": l.tolist(), "d": d.tolist(), "grad_minimax": g_mm.tolist(),
           "grad_nonsaturating": g_ns.tolist(),
           "max_err_minimax": float(np.abs(g_mm + d).max()),               # expected -D
           "max_err_nonsaturating": float(np.abs(g_ns + (1.0 - d)).max())}  # expected -(1 - D)
    if out is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.loglog(d, np.abs(g_mm), "r-", label="minimax  log(1 - D): |dL/dl| = D")
        ax.loglog(d, np.abs(g_ns), "b-", label="non-saturating  -log D: |dL/dl| = 1 - D")
        ax.set_xlabel("D(G(z))")
        ax.set_ylabel("|gradient w.r.t. the logit|")
        ax.set_title("the minimax generator gradient vanishes as D(G(z)) -> 0")
        ax.legend(fontsize=7)
        res["plot"] = _savefig(fig, out, "generator_gradients.png")
    return res


CHECKS = {"dstar": optimal_discriminator, "jsd": value_identity, "emd": jsd_vs_emd,
          "gradients": generator_gradients}


def _summary(name, res):
    drop = {"shifts", "jsd", "emd", "logits", "d", "grad_minimax", "grad_nonsaturating"}
    return {k: v for k, v in res.items() if k not in drop}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m scratchgan.theory", description=__doc__.split("\n")[0])
    p.add_argument("check", choices=sorted(CHECKS) + ["all"])
    p.add_argument("--out", default="theory_plots", help="folder for the plots and summary JSON")
    args = p.parse_args(argv)
    names = sorted(CHECKS) if args.check == "all" else [args.check]
    summary = {}
    for name in names:
        summary[name] = _summary(name, CHECKS[name](out=args.out))
        print(f"{name}: " + json.dumps(summary[name], default=float))
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(args.out) / "theory.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
