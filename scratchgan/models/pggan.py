"""Progressive GAN (Karras, Aila, Laine & Lehtinen 2018): growing G and D, WGAN-GP loss.

Loss (the authors' ``loss.py``, WGAN-GP with the drift term), per critic iteration:

    L_D = E[D(x̃)] − E[D(x)] + λ E[(‖∇_x̂ D(x̂)‖₂ − 1)²] + ε_drift E[D(x)²],   x̂ = εx + (1 − ε)x̃
    L_G = −E[D(G(z))]

λ = 10, ε_drift = 0.001, ε ~ U[0, 1] per sample. Adam lr 1e-3, β1 = 0, β2 = 0.99 for both
networks. G's weights are averaged (EMA 0.999, ``G_ema``), and ``generate`` (sampling and
evaluation) uses the average.

Growth. Training starts at 4×4. Each later resolution r ∈ {8, 16, …, R} is first faded in
for ``fade_images`` real images (α rising linearly from 0 to 1), then trained stably for
``stable_images``; 4×4 has only a stable phase. "Images shown" counts the real images the
critic sees: ``n_critic × m`` per step (m, the minibatch, is fixed at the first step), so the
phase is a function of ``self.step`` and a checkpoint resumes it exactly. During a fade-in

* G's output is ``(1 − α) up(toRGB_{r/2}(h)) + α toRGB_r(block_r(h))``;
* D's input path is ``(1 − α) fromRGB_{r/2}(pool(x)) + α block_r(fromRGB_r(x))``;
* real images are shown at the same blend: ``(1 − α) up(pool(x_r)) + α x_r``, x_r being the
  data average-pooled to r×r.

α lives in one-element device arrays (one per network), written by :meth:`apply_schedule` before a
step and never inside a CUDA-graph capture; :meth:`graph_key` is ``(n_critic, r, fading)``,
so each phase is its own captured graph and a replay reads the current α.

The penalty's gradient reaches D's weights through :mod:`scratchgan.nn.second_order`; D's layers
(equalised conv/linear, LeakyReLU, average pooling, minibatch stddev, the fade-in blend,
fromRGB) all carry second-order passes (:mod:`scratchgan.nn.progressive`). With the minibatch
stddev layer, ∇ₓ Σ_n D(x̂_n) couples the samples of a group, as in the authors' code.

Networks (``variant``):

* ``"paper"`` (default): the paper's Table 2 structure at small width (feature maps
  ``min(fmap_base / r, fmap_max)`` per resolution r, i.e. 128, 128, 128, 64 for 4..32):
  G = normalised z → EqLinear → 4×4, LReLU 0.2, PixelNorm, conv 3×3, LReLU, PixelNorm; per
  resolution: nearest ×2, two conv 3×3 + LReLU + PixelNorm; toRGB 1×1 (linear, gain 1).
  D mirrors it: fromRGB 1×1 + LReLU; per resolution two conv 3×3 + LReLU and 2×2 average
  pooling; at 4×4 minibatch stddev (groups of 4), conv 3×3, conv 4×4, EqLinear → 1.
* ``"mnist1k"``: the official MNIST-1K "mode recovery" networks (appendix on the discrete
  mode test with a crippled discriminator): G = normalised 64-d z → 4×4×64, then per
  resolution one conv 3×3 (32, 16, 8 maps), LReLU 0.3, each followed by the normaliser;
  toRGB conv 3×3; tanh on the output. D (``k_crippled`` = K = 4: maps 2, 4, 8) = per
  resolution one conv 3×3 + LReLU 0.2 and pooling, fromRGB 1×1 only below full resolution,
  minibatch stddev over the whole batch, flatten, EqLinear → 1. n_critic 5, batch 64, and
  ε_drift = 0 as in that configuration. **Departure:** the official baseline puts BatchNorm in
  this D; BatchNorm makes the penalty ill-defined and :mod:`scratchgan.nn.second_order` refuses it,
  so our baseline D has no normaliser (the baseline G keeps BatchNorm).

Ablation switches (the appendix rows): ``equalized`` (equalised learning rate in both
networks and PixelNorm in G; off: He-normal weights and, in ``mnist1k``, BatchNorm in G),
``mbstd`` (the minibatch stddev layer), ``progressive`` (off: train at full resolution from
the start, no fades). The official schedule is 500k images stable and 2000k fading per
resolution (``stable_images``, ``fade_images``).

Logged: ``loss_d``, ``gp``, ``drift``, ``em_estimate`` (mean D(x) − mean D(x̃)),
``grad_norm``, ``loss_g``; host logs ``resolution``, ``alpha``, ``images_shown``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..nn.module import Module, Sequential, frozen, no_grad
from ..nn.progressive import (AvgPool2d, EqualizedConv2d, EqualizedLinear, FadeIn, MinibatchStdDev,
                              PixelNorm, Upsample2d)
from ..nn.second_order import ChainRule, input_gradient, penalty_backward, rules_of
from ..ops.resample import avgpool_forward, upsample2x_forward
from ..ops.second_order import gradient_penalty_backward, gradient_penalty_forward
from ..backend import DEFAULT_DTYPE
from ..optim import Adam, capturing
from .base import GenerativeModel

__all__ = ["VARIANTS", "ProgressiveGenerator", "ProgressiveCritic", "PGGAN"]

VARIANTS = ("paper", "mnist1k")


def _resolutions(final):
    out, r = [], 4
    while r <= final:
        out.append(r)
        r *= 2
    return out


class _Growing(Module):
    """A network whose active layers depend on (resolution, fading): ``path()`` assembles them
    (a Sequential, with a :class:`FadeIn` first or last while fading) from registered layers;
    ``alpha`` is a one-element buffer shared with that FadeIn."""

    def __init__(self, resolutions):
        super().__init__()
        object.__setattr__(self, "resolutions", list(resolutions))
        object.__setattr__(self, "resolution", self.resolutions[0])
        object.__setattr__(self, "fading", False)
        object.__setattr__(self, "_paths", {})
        self.register_buffer("alpha", np.zeros((1,), dtype=DEFAULT_DTYPE))

    def set_phase(self, resolution, fading):
        if resolution not in self.resolutions:
            raise ValueError(f"{type(self).__name__}: resolution {resolution} is not one of "
                             f"{self.resolutions}")
        if fading and resolution == self.resolutions[0]:
            raise ValueError(f"{type(self).__name__}: the first resolution has no fade-in")
        object.__setattr__(self, "resolution", int(resolution))
        object.__setattr__(self, "fading", bool(fading))

    def set_alpha(self, value):
        self.alpha[...] = value

    def path(self):
        key = (self.resolution, self.fading, id(self.alpha))
        p = self._paths.get(key)
        if p is None:
            p = self._build_path(self.resolution, self.fading)
            if len(self._paths) > 16:
                self._paths.clear()
            self._paths[key] = p
        return p

    def _fade(self, old, new):
        f = FadeIn(old, new)
        object.__setattr__(f, "alpha", self.alpha)       # the network's buffer, shared
        return f

    def forward(self, x):
        p = self.path()
        y = p(x)
        self._save_cache(p)
        return y

    def backward(self, dy, input_grad=True):
        return self._take_cache().backward(dy, input_grad=input_grad)


class ProgressiveGenerator(_Growing):
    def __init__(self, z_dim, channels, resolutions, nf, variant, equalized, normalize_latents,
                 rng):
        super().__init__(resolutions)
        eq = dict(equalized=equalized, rng=rng)
        mnist = variant == "mnist1k"
        slope = 0.3 if mnist else 0.2
        norm = (lambda c: PixelNorm()) if equalized else \
            ((lambda c: nn.BatchNorm2d(c)) if mnist else (lambda c: None))

        def act_norm(c):
            layers = [nn.LeakyReLU(slope)]
            n = norm(c)
            return layers + ([n] if n is not None else [])

        c4 = nf[4]
        trunk = ([PixelNorm()] if normalize_latents else []) + [
            EqualizedLinear(z_dim, c4 * 16, gain=math.sqrt(2.0) / 4, **eq), nn.Reshape(c4, 4, 4)]
        trunk += act_norm(c4)
        if not mnist:
            trunk += [EqualizedConv2d(c4, c4, 3, padding=1, **eq)] + act_norm(c4)
        self.trunk = Sequential(*trunk)
        k_rgb = 3 if mnist else 1
        self.torgb4 = EqualizedConv2d(c4, channels, k_rgb, padding=k_rgb // 2, gain=1.0, **eq)
        for lo, r in zip(resolutions, resolutions[1:]):
            layers = [Upsample2d(), EqualizedConv2d(nf[lo], nf[r], 3, padding=1, **eq)]
            layers += act_norm(nf[r])
            if not mnist:
                layers += [EqualizedConv2d(nf[r], nf[r], 3, padding=1, **eq)] + act_norm(nf[r])
            setattr(self, f"block{r}", Sequential(*layers))
            setattr(self, f"torgb{r}", EqualizedConv2d(nf[r], channels, k_rgb, padding=k_rgb // 2,
                                                       gain=1.0, **eq))
        object.__setattr__(self, "out_tanh", mnist)

    def _build_path(self, res, fading):
        rs = [r for r in self.resolutions[1:] if r <= res]
        layers = [self.trunk] + [getattr(self, f"block{r}") for r in (rs[:-1] if fading else rs)]
        if fading:
            lo = res // 2
            layers.append(self._fade(Sequential(getattr(self, f"torgb{lo}"), Upsample2d()),
                                     Sequential(getattr(self, f"block{res}"),
                                                getattr(self, f"torgb{res}"))))
        else:
            layers.append(getattr(self, f"torgb{res}"))
        if self.out_tanh:
            layers.append(nn.Tanh())
        return Sequential(*layers)


class ProgressiveCritic(_Growing):
    def __init__(self, channels, resolutions, nf, variant, equalized, mbstd, mbstd_group, rng):
        super().__init__(resolutions)
        eq = dict(equalized=equalized, rng=rng)
        mnist = variant == "mnist1k"
        lrelu = lambda: nn.LeakyReLU(0.2)
        final = resolutions[-1]
        # the channels entering the layers of resolution r (what fromRGB_r makes)
        for r in resolutions:
            if mnist and r == final:
                continue                                   # full resolution: RGB goes in directly
            setattr(self, f"fromrgb{r}", Sequential(EqualizedConv2d(channels, nf[r], 1, **eq),
                                                    lrelu()))
        for r in resolutions[1:]:
            c_in = channels if (mnist and r == final) else nf[r]
            if mnist:
                layers = [EqualizedConv2d(c_in, nf[r // 2], 3, padding=1, **eq), lrelu()]
            else:
                layers = [EqualizedConv2d(c_in, nf[r], 3, padding=1, **eq), lrelu(),
                          EqualizedConv2d(nf[r], nf[r // 2], 3, padding=1, **eq), lrelu()]
            setattr(self, f"block{r}", Sequential(*(layers + [AvgPool2d(2)])))
        c4 = nf[4]
        head = [MinibatchStdDev(mbstd_group)] if mbstd else []
        cm = c4 + (1 if mbstd else 0)
        if mnist:
            head += [nn.Flatten(), EqualizedLinear(cm * 16, 1, gain=1.0, **eq)]
        else:
            head += [EqualizedConv2d(cm, c4, 3, padding=1, **eq), lrelu(),
                     EqualizedConv2d(c4, c4, 4, **eq), lrelu(), nn.Flatten(),
                     EqualizedLinear(c4, 1, gain=1.0, **eq)]
        self.head = Sequential(*head)

    def _from(self, r):
        return getattr(self, f"fromrgb{r}", None)

    def _build_path(self, res, fading):
        below = [getattr(self, f"block{r}") for r in reversed(self.resolutions[1:]) if r < res]
        if fading:
            old = [AvgPool2d(2)] + [m for m in (self._from(res // 2),) if m is not None]
            new = [m for m in (self._from(res),) if m is not None] + [getattr(self, f"block{res}")]
            first = [self._fade(Sequential(*old), Sequential(*new))]
        else:
            first = [m for m in (self._from(res),) if m is not None]
            if res > 4:
                first.append(getattr(self, f"block{res}"))
        return Sequential(*(first + below + [self.head]))

    def second_order_rule(self):
        """The active path's rules as one chain (:class:`scratchgan.nn.second_order.ChainRule`)."""
        return ChainRule(rules_of(self.path(), f"ProgressiveCritic at {self.resolution}x"
                                                f"{self.resolution}"))


class PGGAN(GenerativeModel):
    name = "pggan"
    data_range = (-1.0, 1.0)
    default_dataset = "mnist32"
    conditional = False
    hyper_types = {"drift": float, "n_critic": int, "z_dim": int}
    defaults = {
        "batch_size": 64, "epochs": 20, "dataset": "mnist32",
        "variant": "paper",        # "paper" | "mnist1k" (the official MNIST-1K networks)
        "z_dim": None,             # None: 128 (paper), 64 (mnist1k)
        "fmap_base": 2048, "fmap_max": 128,   # paper variant: min(fmap_base / r, fmap_max) maps
        "k_crippled": 4,           # mnist1k: D's maps divided by K (K/4 in the appendix: 4)
        "equalized": True,         # ablation: equalised lr (both nets) + pixel norm (G)
        "mbstd": True,             # ablation: minibatch stddev layer in D
        "mbstd_group": "auto",     # "auto": 4 (paper), whole batch (mnist1k); None: whole batch
        "progressive": True,       # ablation: grow from 4x4 (off: full resolution throughout)
        "normalize_latents": True,
        "stable_images": 500_000, "fade_images": 2_000_000,
        "lambda_gp": 10.0,
        "drift": None,             # None: 0.001 (paper), 0.0 (mnist1k, its configuration)
        "n_critic": None,          # None: 1 (paper), 5 (mnist1k)
        "lr": 1e-3, "betas": (0.0, 0.99), "ema": 0.999,
    }

    # -- construction ------------------------------------------------------------
    def build(self):
        hp, r = self.hp, self.rng
        if hp["variant"] not in VARIANTS:
            raise ValueError(f"PGGAN: variant must be one of {VARIANTS}, got {hp['variant']!r}")
        mnist = hp["variant"] == "mnist1k"
        if len(self.data_shape) != 3 or self.data_shape[1] != self.data_shape[2]:
            raise ValueError(f"PGGAN: needs square images (C, R, R), got data shape {self.data_shape}")
        R = self.data_shape[1]
        if R < 8 or R & (R - 1):
            raise ValueError(f"PGGAN: the image size must be a power of two >= 8 (e.g. 32: pad "
                             f"MNIST with the mnist32 data set), got {R}")
        for k in ("stable_images", "fade_images"):
            if not isinstance(hp[k], int) or hp[k] < 0:
                raise ValueError(f"PGGAN: {k} must be an int >= 0, got {hp[k]!r}")
        if hp["z_dim"] is None:
            hp["z_dim"] = 64 if mnist else 128
        if hp["drift"] is None:
            hp["drift"] = 0.0 if mnist else 0.001
        if hp["n_critic"] is None:
            hp["n_critic"] = 5 if mnist else 1
        if not isinstance(hp["n_critic"], int) or hp["n_critic"] < 1:
            raise ValueError(f"PGGAN: n_critic must be an int >= 1, got {hp['n_critic']!r}")
        group = hp["mbstd_group"]
        if group == "auto":
            group = None if mnist else 4
        elif isinstance(group, str):
            if group.lower() in ("none", "batch"):
                group = None
            elif group.isdigit():
                group = int(group)
            else:
                raise ValueError(f"PGGAN: mbstd_group must be 'auto', None or an int, got {group!r}")
        self.resolutions = _resolutions(R) if hp["progressive"] else [R]
        res_all = _resolutions(R)
        C = self.data_shape[0]
        if mnist:
            K = int(hp["k_crippled"])
            gnf = {4: 64, **{rr: max(64 // (rr // 4), 1) for rr in res_all[1:]}}
            # maps entering resolution rr: 4R/rr / K (R = 32, K = 4: 2 at 16, 4 at 8, 8 at 4)
            dnf = {rr: max(((4 * R) // rr) // K, 1) for rr in res_all}
        else:
            gnf = dnf = {rr: int(min(hp["fmap_base"] // rr, hp["fmap_max"])) for rr in res_all}
        self.G = ProgressiveGenerator(hp["z_dim"], C, res_all, gnf, hp["variant"],
                                      hp["equalized"], hp["normalize_latents"], r)
        self.D = ProgressiveCritic(C, res_all, dnf, hp["variant"], hp["equalized"], hp["mbstd"],
                                   group, r)
        import copy
        self.G_ema = copy.deepcopy(self.G)
        self._m = None
        self._set_phase(*self.phase(0)[:2])

    def build_optimizers(self):
        b = tuple(self.hp["betas"])
        self.opt_G = Adam(self.G.parameters(), lr=self.hp["lr"], betas=b)
        self.opt_D = Adam(self.D.parameters(), lr=self.hp["lr"], betas=b)
        self.apply_schedule()

    def networks(self):
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def batches_per_step(self):
        return self.hp["n_critic"]

    # -- the growth schedule -----------------------------------------------------
    def images_shown(self, step=None):
        """Real images the critic has seen after ``step`` steps (n_critic · m each)."""
        t = self.step if step is None else step
        return 0 if self._m is None else int(t) * self.hp["n_critic"] * self._m

    def phase(self, images):
        """``(resolution, fading, α)`` after ``images`` real images: 4×4 stable, then per
        resolution a fade-in of ``fade_images`` (α = progress in [0, 1)) and a stable phase of
        ``stable_images``; the last resolution stays stable."""
        rs = self.resolutions
        if len(rs) == 1:
            return rs[0], False, 1.0
        S, F = self.hp["stable_images"], self.hp["fade_images"]
        t = int(images) - S
        if t < 0:
            return rs[0], False, 1.0
        for r in rs[1:]:
            if t < F:
                return r, True, t / F
            t -= F
            if t < S or r == rs[-1]:
                return r, False, 1.0
            t -= S
        return rs[-1], False, 1.0

    def _set_phase(self, res, fading):
        for net in (self.G, self.G_ema, self.D):
            net.set_phase(res, fading)

    def apply_schedule(self):
        """Set the networks' phase for the step numbered ``self.step``, and write α into the
        networks' device buffers (skipped inside a CUDA-graph capture: the captured step
        reads the buffers, which this call refreshes before every launch)."""
        res, fading, alpha = self.phase(self.images_shown())
        self._set_phase(res, fading)
        if not capturing():
            for net in (self.G, self.G_ema, self.D):
                net.set_alpha(alpha)

    def graph_key(self):
        res, fading, _ = self.phase(self.images_shown())
        return (self.hp["n_critic"], res, fading)

    def host_logs(self):
        res, fading, alpha = self.phase(self.images_shown())
        return {"resolution": res, "alpha": alpha if fading else 1.0,
                "images_shown": self.images_shown()}

    # -- data ----------------------------------------------------------------------
    def sample_noise(self, n, rng=None, labels=None):
        """z ~ N(0, I) of ``z_dim`` (normalised inside G when ``normalize_latents``)."""
        return {"z": self.draw_normal((int(n), self.hp["z_dim"]), 1.0, rng)}

    def process_reals(self, x):
        """Real images at the current resolution: average-pooled to r×r and, during a fade-in,
        blended ``(1 − α) up(pool(x_r)) + α x_r`` like G's output."""
        R, res = self.data_shape[1], self.D.resolution
        if res < R:
            x = avgpool_forward(x, R // res)
        if self.D.fading:
            a = self.D.alpha
            x = a * x + (1 - a) * upsample2x_forward(avgpool_forward(x, 2))
        return x

    def _upscale_to_data(self, y):
        while y.shape[-1] < self.data_shape[1]:
            y = upsample2x_forward(y)
        return y

    def generate(self, noise):
        """Samples from the EMA generator at the current resolution, enlarged (nearest) to the
        data size; eval mode, no cache."""
        return self._upscale_to_data(self._eval_forward(self.G_ema, noise["z"]))

    def generate_raw(self, noise):
        """The training generator's samples (not the average), at the data size."""
        return self._upscale_to_data(self._eval_forward(self.G, noise["z"]))

    # -- gradients ------------------------------------------------------------------
    def discriminator_grads(self, x_real, noise, eps=None):
        """Fill D's .grad with ∇ of L_D (``x_real`` already at the current resolution)."""
        hp = self.hp
        with no_grad():
            x_fake = self.G(noise["z"])                               # x̃ = G(z)
        B = x_real.shape[0]
        real = self.D(x_real)                                         # D(x)
        self.D.backward((2.0 * hp["drift"] * real - 1.0) / B, input_grad=False)
        fake = self.D(x_fake)                                         # D(x̃)
        xp = self.xp
        self.D.backward(xp.full(fake.shape, 1.0 / B, dtype=fake.dtype), input_grad=False)
        if eps is None:
            eps = self.draw_uniform((B, 1, 1, 1), 0.0, 1.0)          # ε ~ U[0, 1] per sample
        x_hat = eps * x_real + (1 - eps) * x_fake                     # x̂
        g, tape = input_gradient(self.D, x_hat)                       # ∇_x̂ Σ D(x̂)
        gp, c = gradient_penalty_forward(g, hp["lambda_gp"])          # λ mean (‖g‖ − 1)²
        penalty_backward(tape, gradient_penalty_backward(c))          # its ∂/∂w into .grad
        drift = hp["drift"] * (real * real).mean()
        em = real.mean() - fake.mean()
        return {"loss_d": -em + gp + drift, "gp": gp, "drift": drift, "em_estimate": em,
                "grad_norm": c[1].mean()}

    def generator_grads(self, noise):
        """Fill G's .grad with ∇ of L_G = −mean D(G(z)) (D held fixed)."""
        x_fake = self.G(noise["z"])
        scores = self.D(x_fake)
        B = scores.shape[0]
        with frozen(self.D):
            dx = self.D.backward(self.xp.full(scores.shape, -1.0 / B, dtype=scores.dtype))
        self.G.backward(dx, input_grad=False)
        return {"loss_g": -scores.mean()}

    def update_ema(self):
        """G_ema ← β G_ema + (1 − β) G on every parameter; buffers (BatchNorm statistics,
        the α buffer) are copied."""
        beta = self.hp["ema"]
        fe, fg = self.G_ema.__dict__.get("_flat"), self.G.__dict__.get("_flat")
        if fe is not None and fg is not None and fe.is_intact() and fg.is_intact():
            fe.data *= beta
            fe.data += (1.0 - beta) * fg.data
        else:
            for pe, pg in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.data *= beta
                pe.data += (1.0 - beta) * pg.data
        for (_, be), (_, bg) in zip(self.G_ema.named_buffers(), self.G.named_buffers()):
            be[...] = bg

    # -- the algorithm ----------------------------------------------------------------
    def _record_batch(self, m):
        if self._m is None:
            self._m = int(m)
            self.apply_schedule()
        elif int(m) != self._m:
            raise ValueError(f"PGGAN: the growth schedule counts images with a fixed minibatch; "
                             f"the first step used {self._m} images per critic iteration, this "
                             f"one {int(m)} (use a data iterator that drops the last batch)")

    def train_step(self, x, y=None):
        """One generator iteration after ``n_critic`` critic iterations (WGAN-GP's loop with
        the drift term), at the phase of the images shown so far; then the EMA update."""
        xs, _ = self.split_batches(x)
        self._record_batch(xs[0].shape[0])
        self.apply_schedule()                                # resolution, fading, α
        logs = {}
        for x_i in xs:
            x_i = self.process_reals(self._check_x(x_i))      # real batch at resolution r
            noise = self.sample_noise(x_i.shape[0])          # z ~ N(0, I)
            self.opt_D.zero_grad()
            logs = self.discriminator_grads(x_i, noise)      # ∇_w L_D
            self.opt_D.step()                                # Adam(1e-3, 0, 0.99)
        noise = self.sample_noise(xs[-1].shape[0])
        self.opt_G.zero_grad()
        logs.update(self.generator_grads(noise))             # ∇_θ −mean D(G(z))
        self.opt_G.step()
        self.update_ema()                                    # G_ema ← 0.999 G_ema + 0.001 G
        self.step += 1
        return logs

    # -- state --------------------------------------------------------------------------
    def extra_state(self):
        res, fading, alpha = self.phase(self.images_shown())
        return {"images_per_iteration": self._m, "images_shown": self.images_shown(),
                "resolution": res, "fading": fading, "alpha": alpha}

    def load_extra_state(self, state):
        self._m = state.get("images_per_iteration")
        res, fading, alpha = self.phase(self.images_shown())
        want = (state.get("resolution", res), state.get("fading", fading),
                state.get("images_shown", self.images_shown()))
        if want != (res, fading, self.images_shown()):
            raise ValueError(f"PGGAN.load_state_dict: the checkpoint says resolution/fading/"
                             f"images shown {want}, but its step and schedule give "
                             f"{(res, fading, self.images_shown())}; were the schedule's "
                             f"hyperparameters changed?")
        self.apply_schedule()
