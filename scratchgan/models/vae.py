"""Variational auto-encoder (Kingma & Welling 2014): AEVB with the SGVB estimator.

Lower bound per datapoint (eq. 10, Gaussian prior and posterior, L = 1 sample):
    L(theta, phi; x) = -KL(q_phi(z|x) || p(z)) + log p_theta(x|z),    z = mu + sigma * eps,
    -KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)              (Appendix B)
Encoder q_phi(z|x) (Appendix C.2): h = tanh(W3 x + b3); mu = W4 h + b4; log sigma^2 = W5 h + b5
Decoder p_theta(x|z) Bernoulli (Appendix C.1): y = sigmoid(W2 tanh(W1 z + b1) + b2)
MNIST: 500 hidden units, latent 20 (Fig. 2 uses 3..200), minibatch M = 100, weights
N(0, 0.01^2), Adagrad (step size from {0.01, 0.02, 0.1}; 0.02 here).

Algorithm 1 (per step): draw a minibatch X^M and noise eps ~ p(eps); g = grad_{theta,phi}
L^M(theta, phi; X^M, eps); update with Adagrad. The loss descended here is the batch mean
of -L: ``bernoulli_nll + gaussian_kl`` (the paper's N/M scaling of the sum is a constant
factor that Adagrad's normalisation absorbs up to its eps). The paper's weight-decay
prior on the parameters is not used. ``activation="relu"`` is a named variant (paper: tanh).
"""
from __future__ import annotations

import math

from .. import nn
from ..init import mlp_init_normal_
from ..nn.module import no_grad
from ..ops import loss as L
from ..ops.activation import sigmoid
from ..optim import Adagrad, Adam
from .base import GenerativeModel

__all__ = ["VAE"]


class VAE(GenerativeModel):
    name = "vae"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 100, "epochs": 100, "dataset": "mnist",
        "hidden": 500, "latent_dim": 20, "activation": "tanh",
        "init_std": 0.01, "optimizer": "adagrad", "lr": 0.02,
    }

    def build(self):
        hp, r = self.hp, self.rng
        act = {"tanh": nn.Tanh, "relu": nn.ReLU}.get(hp["activation"])
        if act is None:
            raise ValueError(f"VAE: activation must be 'tanh' (paper) or 'relu', got {hp['activation']!r}")
        d, h, k = math.prod(self.data_shape), hp["hidden"], hp["latent_dim"]
        # encoder outputs [mu, log sigma^2] side by side: (N, 2k)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, h, rng=r), act(),
                                     nn.Linear(h, 2 * k, rng=r))
        self.decoder = nn.Sequential(nn.Linear(k, h, rng=r), act(), nn.Linear(h, d, rng=r))
        mlp_init_normal_(self.encoder, hp["init_std"], r)
        mlp_init_normal_(self.decoder, hp["init_std"], r)

    def build_optimizers(self):
        params = self.encoder.parameters() + self.decoder.parameters()
        if self.hp["optimizer"] == "adagrad":
            self.opt = Adagrad(params, lr=self.hp["lr"])
        elif self.hp["optimizer"] == "adam":
            self.opt = Adam(params, lr=self.hp["lr"])
        else:
            raise ValueError(f"VAE: optimizer must be 'adagrad' (paper) or 'adam', got "
                             f"{self.hp['optimizer']!r}")

    def networks(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self):
        return {"opt": self.opt}

    def sample_noise(self, n, rng=None, labels=None):
        """z ~ p(z) = N(0, I): samples from the prior for ``generate`` (the device stream,
        or ``rng``)."""
        return {"z": self.draw_normal((int(n), self.hp["latent_dim"]), 1.0, rng)}

    def generate(self, noise):
        """Bernoulli means sigmoid(decoder(z)) in [0, 1], shape (n, *data_shape)."""
        with no_grad():
            logits = self.decoder(noise["z"])
        return sigmoid(logits).reshape((-1,) + self.data_shape)

    def encode(self, x):
        """Posterior means mu(x) (eval, no cache)."""
        h = self._eval_forward(self.encoder, self.to_model(x))
        return h[:, :self.hp["latent_dim"]]

    def posterior(self, x):
        """(mu, log sigma^2) of q(z|x) (eval, no cache): the ``encode`` callable of
        ``scratchgan.metrics.likelihood``."""
        h = self._eval_forward(self.encoder, self.to_model(x))
        k = self.hp["latent_dim"]
        return h[:, :k], h[:, k:]

    def decode_logits(self, z):
        """Bernoulli logits of p(x|z), flat (N, D) (eval, no cache)."""
        return self._eval_forward(self.decoder, z)

    def reconstruct(self, x):
        with no_grad():
            return self.generate({"z": self.encode(x)})

    def loss_grads(self, x, eps):
        """Fill encoder/decoder .grad with grad of -L^M (batch mean); returns logs."""
        k = self.hp["latent_dim"]
        xp = self.xp
        h = self.encoder(x)
        mu, logvar = xp.ascontiguousarray(h[:, :k]), xp.ascontiguousarray(h[:, k:])
        std = xp.exp(0.5 * logvar)
        z = mu + std * eps                                   # reparameterization, eq. (10)
        logits = self.decoder(z)
        xf = x.reshape(x.shape[0], -1)
        rec, c_rec = L.bernoulli_nll_forward(logits, xf)     # -log p_theta(x|z)
        kl, c_kl = L.gaussian_kl_forward(mu, logvar)         # KL(q_phi(z|x) || N(0, I))
        dz = self.decoder.backward(L.bernoulli_nll_backward(1.0, c_rec))
        dmu_kl, dlogvar_kl = L.gaussian_kl_backward(1.0, c_kl)
        dmu = dz + dmu_kl                                    # dz/dmu = 1
        dlogvar = dz * eps * std * 0.5 + dlogvar_kl          # dz/dlogvar = eps * sigma / 2
        self.encoder.backward(xp.concatenate([dmu, dlogvar], axis=1), input_grad=False)
        return {"loss": rec + kl, "elbo": -(rec + kl), "recon_nll": rec, "kl": kl}

    def train_step(self, x, y=None):
        """Algorithm 1: minibatch X^M, eps ~ N(0, I), g = grad L^M, Adagrad update."""
        x = self._check_x(x)
        eps = self.draw_normal((x.shape[0], self.hp["latent_dim"]))   # on the device stream
        self.opt.zero_grad()
        logs = self.loss_grads(x, eps)
        self.opt.step()
        self.step += 1
        return logs
