"""What a critic has learned, for Figure 1 of WGAN-GP (Gulrajani et al. 2017): weight
clipping against the gradient penalty on the same critic MLP.

At one point of training, on real points, generated points and interpolates x̂ between them:

* ``signal_norms[l]``: the mean of ‖∂D/∂h_l‖ with h_l the input of the l-th Linear layer
  (l = 0 is the data, so entry 0 is ‖∇ₓD‖): how the critic's gradient fares through depth;
* ``weight_grad_norms[l]``: the Frobenius norm of the critic loss's gradient with respect to
  the l-th Linear weight on that batch (the penalty included for WGAN-GP);
* ``input_grad_norm_*``: mean ‖∇ₓD‖ over all points and over each kind;
* the critic's weights: their largest magnitude, std and, for a clipped critic, the fraction
  sitting at ±c.

Evaluated every ``eval_every`` updates these give the paper's curves along training.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..backend import to_numpy
from ..nn.second_order import input_gradient
from .evaluators import EvalContext, evaluator
from .sampling import generate_samples

__all__ = ["linear_layers", "critic_gradients", "critic_weight_stats",
           "evaluate_critic_gradients"]


def linear_layers(net):
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def critic_gradients(model, x_real, x_fake, rng):
    """The diagnostics above for ``model``'s critic ``model.D`` on host arrays ``x_real`` and
    ``x_fake`` (N, d); the interpolation weights and the loss's noise come from ``rng`` (the
    model's own random stream is not touched) and the critic's gradient buffers are zeroed
    after."""
    x_real = np.asarray(x_real, dtype=np.float64)
    x_fake = np.asarray(x_fake, dtype=np.float64)
    if x_real.shape != x_fake.shape or x_real.ndim != 2:
        raise ValueError(f"critic_gradients: expected two (N, d) sets of one shape, got "
                         f"{x_real.shape} and {x_fake.shape}")
    n = len(x_real)
    eps = rng.uniform(0.0, 1.0, size=(n, 1))
    x_hat = eps * x_real + (1 - eps) * x_fake
    pts = model.to_model(np.concatenate([x_real, x_fake, x_hat]))
    g, tape = input_gradient(model.D, pts)
    norms = []
    for i, r in enumerate(tape.rules):
        if isinstance(r.layer, nn.Linear):
            s = tape.g if i == 0 else tape.signals[i - 1]
            s = np.asarray(to_numpy(s), dtype=np.float64).reshape(len(pts), -1)
            norms.append(float(np.sqrt((s * s).sum(axis=1)).mean()))
    gnorm = np.sqrt((np.asarray(to_numpy(g), dtype=np.float64) ** 2).sum(axis=1))
    noise = model.sample_noise(n, rng=rng)
    model.opt_D.zero_grad()
    xr = model.to_model(x_real)
    if getattr(model, "name", "") == "wgan-gp":
        model.discriminator_grads(xr, noise, eps=model.to_model(eps))
    else:
        model.discriminator_grads(xr, noise)
    wg = [float(np.sqrt((np.asarray(to_numpy(m.weight.grad), dtype=np.float64) ** 2).sum()))
          for m in linear_layers(model.D)]
    model.opt_D.zero_grad()
    return {"signal_norms": norms, "weight_grad_norms": wg,
            "input_grad_norm_mean": float(gnorm.mean()),
            "input_grad_norm_real": float(gnorm[:n].mean()),
            "input_grad_norm_fake": float(gnorm[n:2 * n].mean()),
            "input_grad_norm_interp": float(gnorm[2 * n:].mean())}


def critic_weight_stats(net, clip=None):
    """Largest magnitude and std of the Linear weights of ``net``; with ``clip`` also the
    fraction of them at ±clip (within 0.1%)."""
    w = np.concatenate([np.asarray(to_numpy(m.weight.data), dtype=np.float64).ravel()
                        for m in linear_layers(net)])
    out = {"weight_abs_max": float(np.abs(w).max()), "weight_std": float(w.std())}
    if clip is not None:
        out["fraction_at_clip"] = float(np.mean(np.abs(w) >= clip * (1 - 1e-3)))
    return out


@evaluator("critic-gradients")
def evaluate_critic_gradients(ctx: EvalContext, n_points=256):
    """:func:`critic_gradients` on ``n_points`` training points (a random draw) and as many
    samples, and :func:`critic_weight_stats` (``fraction_at_clip`` for a clipped critic)."""
    model = ctx.model
    if not hasattr(model, "D") or not hasattr(model, "discriminator_grads"):
        raise ValueError(f"critic-gradients: {type(model).__name__} has no critic")
    x = ctx.data.get("x_train")
    if x is None:
        raise ValueError("critic-gradients: the study's data has no x_train")
    x = np.asarray(to_numpy(x))
    n = int(n_points)
    if n < 1 or n > len(x):
        raise ValueError(f"critic-gradients: n_points must lie in [1, {len(x)}], got {n_points}")
    if x.ndim != 2:
        raise ValueError(f"critic-gradients: expects flat data (N, d), got {x.shape}")
    rng = ctx.rng(81)
    real = x[rng.choice(len(x), n, replace=False)]
    fake = generate_samples(model, n, rng).reshape(n, -1)
    out = critic_gradients(model, real, fake, rng)
    clip = model.hp.get("clip") if getattr(model, "name", "") == "wgan" else None
    out.update(critic_weight_stats(model.D, clip))
    return out
