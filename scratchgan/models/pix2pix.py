"""pix2pix (Isola et al. 2017): image-to-image translation with a conditional GAN.

Objective (eq. 4 of the paper):
    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G),     lambda = 100
    L_cGAN = E_{x,y}[log D(x, y)] + E_{x,z}[log(1 - D(x, G(x, z)))]
    L_L1   = E_{x,y,z} |y - G(x, z)|_1           (mean over pixels, as the authors' code)
x = A (the input image), y = B (the target); z is not an input: it is the dropout of G's
decoder, kept on at test time ("we apply dropout at test time").

Networks (28 or 32 px versions of the paper's; the authors' code is
junyanz/pytorch-CycleGAN-and-pix2pix, whose settings these follow):

* G: the U-Net of :func:`scratchgan.nn.unet_generator` with ``levels = log2(S)`` for
  S = 32 (a 28 px image is reflection-padded by 2 to 32 and cropped back); channels
  ngf, 2ngf, 4ngf, 8ngf, 8ngf down to 1x1; BatchNorm; dropout 0.5 in the first 3 decoder
  layers; tanh output.
* D: a conditional PatchGAN on ``concat(A, B)`` (the authors' NLayerDiscriminator with
  ``d_layers`` stride-2 layers): C64(s2, no norm) - [C128(s2)...] - C(8ndf max)(s1) -
  conv(s1) to one logit per patch; 4x4 kernels, LeakyReLU 0.2, BatchNorm. Receptive field
  (:func:`patchgan_receptive_field`): ``d_layers=1`` (default here) 16x16 px (the paper's
  "16x16 PatchGAN", a 12x12 grid of logits on 28 px images); ``d_layers=2`` 34x34 (all of
  a 28 px image); ``d_layers=3`` 70x70 (the paper's default for 256 px).
* Weights N(0, 0.02), BatchNorm scales N(1, 0.02) (the code's ``init_type="normal"``).

Training (the authors' ``optimize_parameters``): one G forward ``fake_B = G(A)``; then one
D update on ``0.5 [bce(D(A, B), 1) + bce(D(A, fake_B), 0)]`` ("we divide the objective by
2 while optimizing D"); then one G update on ``bce(D(A, fake_B), 1) + lambda |fake_B - B|``
(the non-saturating form of log(1 - D)), D held fixed. Adam lr 2e-4, betas (0.5, 0.999).

Variants (``objective``), the paper's ablation (Table 1): ``"l1+cgan"`` (default),
``"l1"`` (no GAN: D is not used or trained), ``"cgan"`` (no L1 term).

Test-time normalisation (``test_norm``): ``"batch"`` (default, the paper: "batch
normalization using the statistics of the test batch" rather than running averages; the
running buffers are restored afterwards) or ``"running"`` (eval mode). Dropout is on in both.

Data: one array per step, ``x = concat(A, B)`` along channels (scratchgan.data.image2image);
A has ``a_channels`` channels (default C // 2).

Departures: images 28 px (pad to 32 in G), batch 64 by default instead of the paper's
1-10 (our sets have 60,000 images); no learning-rate decay (the authors' code decays
linearly after 100 epochs; set ``decay_steps`` to decay over the second half of a run).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..init import dcgan_init_
from ..nn.module import frozen, no_grad
from ..ops import loss as L
from ..optim import Adam
from ..viz import interleave_rows
from .base import GenerativeModel, SecondHalfLinearDecay, mean_sigmoid
from .nets import PatchDiscriminator

__all__ = ["OBJECTIVES", "Pix2Pix"]

OBJECTIVES = ("l1+cgan", "l1", "cgan")


class Pix2Pix(SecondHalfLinearDecay, GenerativeModel):
    name = "pix2pix"
    data_range = (-1.0, 1.0)
    data_kinds = ("translation-paired",)
    default_dataset = "edges2fashion"
    conditional = False
    defaults = {
        "batch_size": 64, "epochs": 10, "dataset": "edges2fashion",
        "objective": "l1+cgan",      # "l1+cgan" | "l1" | "cgan" (the paper's ablation)
        "lambda_l1": 100.0,
        "a_channels": None,          # channels of A in x = concat(A, B); None: C // 2
        "ngf": 64, "ndf": 64, "norm": "batch", "d_layers": 1,
        "dropout": 0.5, "n_dropout": 3,
        "test_norm": "batch",        # "batch" (test-batch statistics, paper) | "running"
        "lr": 2e-4, "betas": (0.5, 0.999),
        "decay_steps": None,         # None: constant lr; N: linear decay to 0 over steps N/2..N
    }

    # -- construction ---------------------------------------------------------------
    def build(self):
        hp = self.hp
        if hp["objective"] not in OBJECTIVES:
            raise ValueError(f"Pix2Pix: objective must be one of {OBJECTIVES}, got {hp['objective']!r}")
        if hp["test_norm"] not in ("batch", "running"):
            raise ValueError(f"Pix2Pix: test_norm must be 'batch' or 'running', got {hp['test_norm']!r}")
        shape = self.data_shape
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 4:
            raise ValueError(f"Pix2Pix: expects square image pairs (C, H, W) with H == W >= 4 "
                             f"(x = concat(A, B) along channels), got data_shape {shape}")
        c = shape[0]
        a = c // 2 if hp["a_channels"] is None else int(hp["a_channels"])
        if not 1 <= a < c:
            raise ValueError(f"Pix2Pix: a_channels must lie in [1, {c - 1}] for {c}-channel "
                             f"pairs, got {hp['a_channels']!r}")
        self.a_channels, self.b_channels = a, c - a
        size = shape[1]
        self.levels = max(2, math.ceil(math.log2(size)))
        pad = 2 ** self.levels - size
        r = self.rng
        unet = nn.unet_generator(a, c - a, self.levels, ngf=hp["ngf"], norm=hp["norm"],
                                 dropout=hp["dropout"], n_dropout=hp["n_dropout"], rng=r,
                                 dropout_rng=self.random, dropout_in_eval=True)
        lo, hi = pad // 2, pad - pad // 2
        self.G = nn.Sequential(nn.ReflectionPad2d((lo, hi, lo, hi)), unet, nn.Crop2d((lo, hi, lo, hi))) \
            if pad else nn.Sequential(unet)
        self.D = PatchDiscriminator(c, hp["ndf"], hp["d_layers"], hp["norm"], rng=r)
        dcgan_init_(self.G, rng=r)
        dcgan_init_(self.D, rng=r)
        self.receptive_field = self.D.receptive_field
        self._preview = None

    def build_optimizers(self):
        b = tuple(self.hp["betas"])
        self.opt_G = Adam(self.G.parameters(), lr=self.hp["lr"], betas=b)
        self.opt_D = Adam(self.D.parameters(), lr=self.hp["lr"], betas=b)

    def networks(self):
        return {"G": self.G, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def split(self, x):
        """x = concat(A, B) -> (A, B)."""
        return x[:, :self.a_channels], x[:, self.a_channels:]

    # -- the two objectives' gradients (no optimizer step) -------------------------------
    def uses_gan(self):
        return "cgan" in self.hp["objective"]

    def uses_l1(self):
        return "l1" in self.hp["objective"]

    def discriminator_grads(self, real_A, real_B, fake_B):
        """Fill D's .grad with d/dtheta_D of 0.5 [bce(D(A, B), 1) + bce(D(A, G(A)), 0)]."""
        fake_logits = self.D(real_A, fake_B)              # fake_B is held fixed (detached)
        l_fake, c = L.bce_with_logits_forward(fake_logits, 0.0)
        self.D.backward(L.bce_with_logits_backward(0.5, c), input_grad=False)
        real_logits = self.D(real_A, real_B)
        l_real, c = L.bce_with_logits_forward(real_logits, 1.0)
        self.D.backward(L.bce_with_logits_backward(0.5, c), input_grad=False)
        return {"loss_d": 0.5 * (l_real + l_fake), "d_real": mean_sigmoid(real_logits),
                "d_fake": mean_sigmoid(fake_logits)}

    def generator_loss_grad(self, real_A, real_B, fake_B):
        """``(logs, d loss_G / d fake_B)`` for loss_G = bce(D(A, fake_B), 1) + lambda L1; D fixed."""
        xp = self.xp
        logs, d_fake = {}, None
        total = None
        if self.uses_gan():
            logits = self.D(real_A, fake_B)
            l_gan, c = L.bce_with_logits_forward(logits, 1.0)
            with frozen(self.D):
                _, d_fake = self.D.backward(L.bce_with_logits_backward(1.0, c))
            logs["loss_g_gan"] = l_gan
            total = l_gan
        if self.uses_l1():
            lam = float(self.hp["lambda_l1"])
            diff = fake_B - real_B
            l1 = xp.asarray(xp.abs(diff).mean())
            g = xp.sign(diff) * diff.dtype.type(lam / diff.size)   # d(lambda mean|d|)/d fake_B
            d_fake = g if d_fake is None else d_fake + g
            logs["loss_l1"] = l1
            total = lam * l1 if total is None else total + lam * l1
        logs["loss_g"] = total
        return logs, d_fake

    def generator_grads(self, real_A, real_B):
        """Fill G's .grad with d/dtheta_G of loss_G (one forward of G, then back through it)."""
        fake_B = self.G(real_A)
        logs, d_fake = self.generator_loss_grad(real_A, real_B, fake_B)
        self.G.backward(d_fake, input_grad=False)
        return logs

    # -- one iteration of the authors' optimize_parameters ---------------------------------
    def train_step(self, x, y=None):
        self.apply_schedule()
        x = self._check_x(x)
        real_A, real_B = self.split(x)                 # {A, B} pairs from the data
        fake_B = self.G(real_A)                        # G(x, z): z = dropout masks (self.random)
        logs = {}
        if self.uses_gan():                            # (1) D: max log D(A,B) + log(1 - D(A,G(A)))
            self.opt_D.zero_grad()
            logs.update(self.discriminator_grads(real_A, real_B, fake_B))
            self.opt_D.step()
        self.opt_G.zero_grad()                         # (2) G: min GAN + lambda L1, D fixed
        g_logs, d_fake = self.generator_loss_grad(real_A, real_B, fake_B)
        self.G.backward(d_fake, input_grad=False)
        self.opt_G.step()
        logs.update(g_logs)
        self.step += 1
        return logs

    # -- translation, previews ---------------------------------------------------------
    def translate(self, a):
        """G(A) at test time (no cache): dropout on, normalisation per ``test_norm``; the BN
        running buffers and the model's random stream are left as they were."""
        a = self.to_model(a)
        state = self.random.state_dict()
        bufs = [(m, b, getattr(m, b).copy()) for m in self.G.modules() for b in m._buffers]
        was = self.G.training
        self.G.train(self.hp["test_norm"] == "batch")
        try:
            with no_grad():
                return self.G(a)
        finally:
            self.G.train(was)
            for m, b, arr in bufs:
                getattr(m, b)[...] = arr
            self.random.load_state_dict(state)

    def set_preview(self, x):
        """Pairs (N, C, H, W) (host or device, in the data range) whose translations the
        trainer's sample grids show."""
        self._preview = np.asarray(x[:30]) if not hasattr(x, "__cuda_array_interface__") else x[:30]

    def sample_noise(self, n, rng=None, labels=None):
        """The inputs of a preview: the first pairs given to :meth:`set_preview` (up to n // 3;
        A = the darkest value everywhere when none were given). ``rng`` is not used: the
        generator's noise is its dropout."""
        k = max(1, min(int(n) // 3, 30))
        k = k - k % 10 if k >= 10 else k       # whole rows of 10 in the grid
        if self._preview is not None:
            x = self.to_model(self._preview[:k])
        else:
            x = self.xp.full((k,) + self.data_shape, self.data_range[0], dtype=self.dtype)
        return {"x": x}

    def generate(self, noise):
        """A preview grid's images: rows of up to 10 inputs A, their translations G(A) and the
        targets B (grey inputs are shown as 3 channels when B has 3)."""
        a, b = self.split(noise["x"])
        out = self.translate(a)
        return interleave_rows([a, out, b])
