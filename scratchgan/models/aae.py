"""Adversarial auto-encoder (Makhzani et al. 2015).

An auto-encoder whose aggregated posterior q(z) = int q(z|x) p_d(x) dx is matched to a
prior p(z) by a GAN on the codes: the encoder q(z|x) is the GAN's generator, and a
discriminator D(z) tells prior samples (positive) from codes of data (negative).
Training alternates, on every minibatch (Sec. 2):
  (1) reconstruction phase: update encoder and decoder to minimize the reconstruction
      error  (1/m) sum_i ||x_i - dec(enc(x_i))||^2  (Euclidean cost, Appendix);
  (2) regularization phase: first update D on bce(D(z'), 1) + bce(D(enc(x)), 0) with
      z' ~ p(z); then update the encoder (generator) to fool D: -mean log D(enc(x)).
Networks (MNIST, Appendix): encoder and decoder 2x1000 ReLU, linear code of size 8 (2 for
the visual 2-D priors), decoder output sigmoid (``output="linear"`` for real-valued data
such as toy sets), D 2x1000 ReLU; weights N(0, 0.01^2); batch 100.
Optimizer: the paper's step sizes are not in this project's reference notes, so the default
is a documented, measured choice: Adam (beta1 0.5) with lr_recon = lr_reg = 2e-4. Measured
over the full 100 epochs on MNIST (H100, 2026-11-22, benchmarks/results/reproduction.md):
  * lr_recon 2e-4: D(codes) stays near 0.5 and the codes' std near the prior's 1 for the whole
    run; Parzen 309.8 +- 1.7;
  * lr_recon 1e-3 (the earlier default; also with betas (0.9, 0.999)): fine for ~10 epochs
    (Parzen 215.8 after 10 epochs,
    benchmarks/results/reproduction-run2.json), then the reconstruction phase spreads the codes faster than the
    regularization phase pulls them back; D separates codes from prior perfectly (D(codes)
    ~ 1e-18), its saturated logits stop steering the encoder, the codes' std grows to 50-100
    and every prior sample decodes to the same stroke (Parzen -258, Inception Score 1.01).
  The generator step's ``code_std`` log is the early warning (docs/images/aae-code-spread.png).
``optimizer="sgd"`` (momentum 0.9) is available; with lr_recon 0.01 and lr_reg 0.1 it diverged
(NaN reconstruction loss at step 59 on MNIST, H100, 2026-11-22).

Priors: "gaussian" N(0, prior_std^2 I) (any code size), "mixture10" (10 2-D Gaussians),
"swissroll" (2-D) -- the last two from ``scratchgan.data.toy``.
Named variant ``label_prior=True`` (Sec. 2.3): the mixture component (or swiss-roll segment)
of each prior sample is the example's label, and D also gets the one-hot label; the model
is then conditional (train_step needs labels, sample_noise takes labels).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..nn.module import frozen, no_grad
from ..ops import loss as L
from ..optim import SGD, Adam
from .base import GenerativeModel, mean_sigmoid
from ..init import mlp_init_normal_
from ..nn import TwoInputNet

__all__ = ["PRIORS", "AAE"]

PRIORS = ("gaussian", "mixture10", "swissroll")


class AAE(GenerativeModel):
    name = "aae"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 100, "epochs": 100, "dataset": "mnist",
        "hidden": 1000, "d_hidden": 1000, "code_dim": 8,
        "prior": "gaussian", "prior_std": 1.0, "label_prior": False,
        "output": "sigmoid",            # "sigmoid" (MNIST) | "linear"
        "init_std": 0.01,
        "optimizer": "adam", "lr_recon": 2e-4, "lr_reg": 2e-4, "momentum": 0.9,
        "betas": (0.5, 0.999),
    }

    def build(self):
        hp, r = self.hp, self.rng
        if hp["prior"] not in PRIORS:
            raise ValueError(f"AAE: prior must be one of {PRIORS}, got {hp['prior']!r}")
        if hp["prior"] != "gaussian" and hp["code_dim"] != 2:
            raise ValueError(f"AAE: prior {hp['prior']!r} is 2-D; set code_dim=2 (got "
                             f"{hp['code_dim']})")
        if hp["label_prior"] and hp["prior"] == "gaussian":
            raise ValueError("AAE: label_prior needs a prior with components ('mixture10' or "
                             "'swissroll'), not 'gaussian'")
        if hp["output"] not in ("sigmoid", "linear"):
            raise ValueError(f"AAE: output must be 'sigmoid' or 'linear', got {hp['output']!r}")
        if hp["optimizer"] not in ("sgd", "adam"):
            raise ValueError(f"AAE: optimizer must be 'sgd' or 'adam', got {hp['optimizer']!r}")
        self.conditional = bool(hp["label_prior"])
        if hp["output"] == "linear":
            self.data_range = None
        d, h, k, dh = math.prod(self.data_shape), hp["hidden"], hp["code_dim"], hp["d_hidden"]
        self.encoder = nn.Sequential(nn.Flatten(), *nn.mlp([d, h, h, k], r))
        out = [nn.Sigmoid()] if hp["output"] == "sigmoid" else []
        self.decoder = nn.Sequential(*nn.mlp([k, h, h, d], r), *out, nn.Reshape(*self.data_shape))
        if self.conditional:
            self.D = TwoInputNet(nn.Sequential(), nn.Sequential(),
                                 nn.mlp([k + self.num_classes, dh, dh, 1], r))
        else:
            self.D = nn.mlp([k, dh, dh, 1], r)
        for net in (self.encoder, self.decoder, self.D):
            mlp_init_normal_(net, hp["init_std"], r)

    def build_optimizers(self):
        hp = self.hp

        def make(params, lr):
            if hp["optimizer"] == "adam":
                return Adam(params, lr=lr, betas=tuple(hp["betas"]))
            return SGD(params, lr=lr, momentum=hp["momentum"])
        self.opt_ae = make(self.encoder.parameters() + self.decoder.parameters(), hp["lr_recon"])
        self.opt_D = make(self.D.parameters(), hp["lr_reg"])
        self.opt_G = make(self.encoder.parameters(), hp["lr_reg"])

    def networks(self):
        return {"encoder": self.encoder, "decoder": self.decoder, "D": self.D}

    def optimizers(self):
        return {"ae": self.opt_ae, "D": self.opt_D, "G": self.opt_G}

    # -- prior and generation -------------------------------------------------------
    def sample_prior(self, n, rng=None, labels=None):
        """Samples (n, code_dim) of p(z) (or p(z|y) for the label prior) on the model's device.

        The Gaussian prior draws from the device stream (or ``rng``); the toy-shaped priors
        (mixture10, swissroll) are sampled on the host from ``rng`` or ``self.rng`` and
        moved, so a step that uses them cannot be captured in a CUDA graph (the step
        runner then trains it eagerly and says why)."""
        hp = self.hp
        if hp["prior"] == "gaussian":
            return self.draw_normal((int(n), hp["code_dim"]), hp["prior_std"], rng)
        from ..data.toy import sample_toy
        from ..backend import to_numpy
        if labels is not None:
            labels = to_numpy(self._check_labels(labels, int(n)))
        return self.to_model(sample_toy(hp["prior"], int(n), self._rng(rng), labels=labels,
                                        dtype=np.float64))

    def sample_noise(self, n, rng=None, labels=None):
        """Codes from the prior (per label for ``label_prior``); ``generate`` decodes them."""
        if self.conditional and labels is None:
            g = self._rng(rng)
            labels = g.integers(0, self.num_classes, size=int(n))
        z = self.sample_prior(n, rng, labels if self.conditional else None)
        out = {"z": z}
        if self.conditional:
            out["labels"] = np.asarray(labels).astype(np.int64)
        return out

    def generate(self, noise):
        return self._eval_forward(self.decoder, noise["z"])

    def encode(self, x):
        return self._eval_forward(self.encoder, self.to_model(x))

    def reconstruct(self, x):
        return self._eval_forward(self.decoder, self.encode(x))

    # -- the phases --------------------------------------------------------------------
    def _d(self, z, y1h):
        return self.D(z, y1h) if self.conditional else self.D(z)

    def _d_backward(self, dlogits, input_grad=True):
        if self.conditional or input_grad:
            return self.D.backward(dlogits)
        return self.D.backward(dlogits, input_grad=False)

    def reconstruction_grads(self, x):
        """Fill encoder/decoder .grad with grad of (1/m) sum_i ||x_i - dec(enc(x_i))||^2."""
        xhat = self.decoder(self.encoder(x))
        mse, c = L.mse_forward(xhat, x)
        scale = float(math.prod(self.data_shape))           # mean over elements -> sum over dims
        self.encoder.backward(self.decoder.backward(L.mse_backward(scale, c)), input_grad=False)
        return {"loss_recon": scale * mse}

    def discriminator_grads(self, x, z_prior, y1h=None):
        """Fill D's .grad with grad of bce(D(z'), 1) + bce(D(enc(x)), 0)."""
        with no_grad():
            z_fake = self.encoder(x)
        lp = self._d(z_prior, y1h)
        a, c = L.bce_with_logits_forward(lp, 1.0)
        self._d_backward(L.bce_with_logits_backward(1.0, c), input_grad=False)
        lf = self._d(z_fake, y1h)
        b, c = L.bce_with_logits_forward(lf, 0.0)
        self._d_backward(L.bce_with_logits_backward(1.0, c), input_grad=False)
        return {"loss_d": a + b, "d_prior": mean_sigmoid(lp),
                "d_codes": mean_sigmoid(lf)}

    def generator_grads(self, x, y1h=None):
        """Fill the encoder's .grad with grad of -mean log D(enc(x)) (non-saturating)."""
        z = self.encoder(x)
        logits = self._d(z, y1h)
        loss, c = L.generator_nonsaturating_loss_forward(logits)
        with frozen(self.D):                                  # D held fixed
            dz = self.D.backward(L.generator_nonsaturating_loss_backward(1.0, c))
        self.encoder.backward(dz, input_grad=False)
        # code_std: spread of the codes against prior_std, the first sign of a lost D
        return {"loss_g": loss, "code_std": z.std()}

    def train_step(self, x, y=None):
        x = self._check_x(x)
        m = x.shape[0]
        labels = self._check_labels(y, m) if self.conditional else None
        y1h = self.one_hot(labels) if self.conditional else None
        # (1) reconstruction phase: encoder + decoder
        self.opt_ae.zero_grad()
        logs = self.reconstruction_grads(x)
        self.opt_ae.step()
        # (2a) regularization phase, discriminator: prior samples positive, codes negative
        z_prior = self.sample_prior(m, labels=labels)
        self.opt_D.zero_grad()
        logs.update(self.discriminator_grads(x, z_prior, y1h))
        self.opt_D.step()
        # (2b) regularization phase, generator (the encoder) fools D
        self.opt_G.zero_grad()
        logs.update(self.generator_grads(x, y1h))
        self.opt_G.step()
        self.step += 1
        return logs
