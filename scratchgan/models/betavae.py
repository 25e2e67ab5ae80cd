"""β-VAE (Higgins et al. 2017), with Burgess et al.'s (2018) capacity annealing as a variant.

Objective (Higgins et al., eq. 4), per datapoint, one sample z = mu + sigma * eps:
    F(theta, phi; x) = E_q[log p_theta(x|z)] - beta KL(q_phi(z|x) || N(0, I)),
and the loss descended is its batch mean with the sign flipped:
    loss = NLL + beta * KL,       NLL = sum_d [softplus(l_d) - x_d l_d]  (Bernoulli logits l),
                                  KL  = 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - 2 log sigma_j).
beta = 1 is the VAE; beta = 4 is the paper's dSprites setting.

Named variant ``objective="capacity"`` (Burgess et al. 2018, "Understanding disentangling in
β-VAE"):
    loss = NLL + gamma * |KL - C(t)|,  C(t) = C_max * min(1, t / capacity_steps),
t the number of completed steps (``self.step``). Defaults gamma = 1000, C_max = 25 nats over
100,000 steps (their dSprites setting as our reference notes give it); the networks and
optimizer stay the β-VAE paper's unless set. C(t) is computed on the device from a device
step counter ``self._t`` (advanced inside the step), so a captured CUDA graph replays the
schedule correctly; loading a state sets the counter from ``self.step``.

Networks (Higgins et al., appendix, 2-D shapes): encoder 4096 -> ReLU 1200 -> ReLU 1200 ->
2k = 20 (10 means mu, 10 log-standard-deviations log sigma); decoder 10 -> tanh 1200 -> tanh
1200 -> tanh 1200 -> 4096 Bernoulli logits. Adagrad lr 1e-2, batch 32. The paper gives no
initialisation: PyTorch's default (U(+-1/sqrt(fan_in)), our ``nn.Linear``'s) is used.

Adagrad's first update moves every weight by about lr * sign(g) (its sum of squares starts
at 0, as in Torch and PyTorch). On these wide layers that throws log sigma to 15-50 for a
few steps; in float32, exp(2 log sigma) then overflows, Adagrad's sum of squares becomes
inf for those weights and they never move again (1.6 % and 3.2 % of the weights for seeds 0
and 1 after 15 steps on CPU; none for seed 2). Named variant ``adagrad_initial=0.1``
(TensorFlow's ``initial_accumulator_value``): the sums start at 0.1, so early steps are
lr * g / sqrt(0.1 + g^2) and nothing overflowed for the same seeds. The paper does not
say which it used.

**Default departs from the paper's setting as cited**: ``adagrad_initial`` defaults to 0.1
(the variant above), not 0. With 0 (Torch's and PyTorch's Adagrad), 20 steps diverge with
every seed tried: on MNIST and Fashion-MNIST the loss is non-finite from step 2, and on
dSprites the KL reaches 1e12 to 1e29 before recovering. With 0.1 they stay finite with a KL
in the hundreds (tests/test_edges_betavae.py). Pass ``--set adagrad_initial=0`` for the
zero-initialised accumulator.

Backward (derivation in docs/derivations/betavae.md). With s = log sigma, sigma = e^s:
    dloss/dl        = (sigmoid(l) - x) / N                         (Bernoulli NLL)
    dloss/dz        = decoder.backward(dloss/dl)                   (= g_z)
    dKL/dmu         = mu / N,    dKL/ds = (sigma^2 - 1) / N        (KL as a function of s)
    dloss/dmu       = g_z + w * dKL/dmu
    dloss/ds        = g_z * eps * sigma + w * dKL/ds               (dz/ds = eps * sigma)
with w = beta (β-VAE) or w = gamma * sign(KL - C) (capacity). ``gaussian_kl`` is written in
log sigma^2 = 2 s, so dKL/ds = 2 dKL/d(log sigma^2), which is how the code applies it.
The KL weight w enters only the KL branch: the gradient is exactly
grad NLL + w * grad KL (tests/test_betavae.py checks this for two values of beta).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..nn.module import no_grad
from ..ops import loss as L
from ..ops.activation import sigmoid
from ..optim import Adagrad, Adam
from .base import GenerativeModel

__all__ = ["OBJECTIVES", "BetaVAE"]

OBJECTIVES = ("beta", "capacity")


class BetaVAE(GenerativeModel):
    name = "betavae"
    data_range = (0.0, 1.0)
    default_dataset = "dsprites"
    conditional = False
    defaults = {
        "batch_size": 32, "epochs": 1, "dataset": "dsprites",
        "latent_dim": 10, "enc_hidden": 1200, "dec_hidden": 1200,
        "beta": 4.0, "objective": "beta",
        "gamma": 1000.0, "capacity_max": 25.0, "capacity_steps": 100_000,
        "optimizer": "adagrad", "lr": 1e-2, "adagrad_initial": 0.1,
    }

    def build(self):
        hp, r = self.hp, self.rng
        if hp["objective"] not in OBJECTIVES:
            raise ValueError(f"BetaVAE: objective must be 'beta' (Higgins et al.) or 'capacity' "
                             f"(Burgess et al.), got {hp['objective']!r}")
        for key in ("beta", "gamma", "capacity_max"):
            v = hp[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < 0:
                raise ValueError(f"BetaVAE: {key} must be a finite number >= 0, got {v!r}")
        if isinstance(hp["capacity_steps"], bool) or not isinstance(hp["capacity_steps"], int) \
                or hp["capacity_steps"] <= 0:
            raise ValueError(f"BetaVAE: capacity_steps must be a positive int, got "
                             f"{hp['capacity_steps']!r}")
        d, k = math.prod(self.data_shape), hp["latent_dim"]
        he, hd = hp["enc_hidden"], hp["dec_hidden"]
        # encoder outputs [mu, log sigma] side by side: (N, 2k)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, he, rng=r), nn.ReLU(),
                                     nn.Linear(he, he, rng=r), nn.ReLU(),
                                     nn.Linear(he, 2 * k, rng=r))
        self.decoder = nn.Sequential(nn.Linear(k, hd, rng=r), nn.Tanh(),
                                     nn.Linear(hd, hd, rng=r), nn.Tanh(),
                                     nn.Linear(hd, hd, rng=r), nn.Tanh(),
                                     nn.Linear(hd, d, rng=r))

    def build_optimizers(self):
        params = self.encoder.parameters() + self.decoder.parameters()
        if self.hp["optimizer"] == "adagrad":
            self.opt = Adagrad(params, lr=self.hp["lr"])
            a0 = self.hp["adagrad_initial"]
            if isinstance(a0, bool) or not isinstance(a0, (int, float)) or not a0 >= 0:
                raise ValueError(f"BetaVAE: adagrad_initial must be a number >= 0, got {a0!r}")
            if a0 > 0:    # named variant: Adagrad's sum of squares starts at a0, not 0
                sd = self.opt.state_dict()
                sd["sum"] = [np.full_like(a, a0) for a in sd["sum"]]
                self.opt.load_state_dict(sd)
        elif self.hp["optimizer"] == "adam":
            self.opt = Adam(params, lr=self.hp["lr"])
        else:
            raise ValueError(f"BetaVAE: optimizer must be 'adagrad' (paper) or 'adam', got "
                             f"{self.hp['optimizer']!r}")
        # completed steps as a device scalar: C(t) of the capacity schedule reads it in-graph
        self._t = self.xp.zeros((), dtype=self.dtype)

    def networks(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self):
        return {"opt": self.opt}

    def load_extra_state(self, state):
        self._t.fill(self.step)            # in place: a captured graph keeps this buffer

    # -- the capacity schedule ---------------------------------------------------------
    def capacity(self):
        """C(t) = C_max min(1, t / capacity_steps) as a 0-d device array (t = ``self._t``)."""
        hp = self.hp
        rate = self.dtype.type(hp["capacity_max"] / hp["capacity_steps"])
        return self.xp.minimum(self._t * rate, self.dtype.type(hp["capacity_max"]))

    # -- generation and inference ------------------------------------------------------
    def sample_noise(self, n, rng=None, labels=None):
        """z ~ N(0, I) (the device stream, or ``rng`` on the host)."""
        return {"z": self.draw_normal((int(n), self.hp["latent_dim"]), 1.0, rng)}

    def generate(self, noise):
        """Bernoulli means sigmoid(decoder(z)) in [0, 1], shape (n, *data_shape)."""
        with no_grad():
            logits = self.decoder(noise["z"])
        return sigmoid(logits).reshape((-1,) + self.data_shape)

    def posterior(self, x):
        """(mu, log sigma) of q(z|x) (eval, no cache)."""
        h = self._eval_forward(self.encoder, self.to_model(x))
        k = self.hp["latent_dim"]
        return h[:, :k], h[:, k:]

    def encode(self, x):
        """Posterior means mu(x) (the disentanglement metric's representation)."""
        return self.posterior(x)[0]

    def reconstruct(self, x):
        with no_grad():
            return self.generate({"z": self.encode(x)})

    def traverse_rows(self, z0=None, values=None, n_frames=10, span=3.0):
        """Latent traversals: one row per latent j, in which z = z0 except z_j, which runs
        over ``values`` (default ``linspace(-span, span, n_frames)``). ``z0``: a (k,) base
        code (default 0, the prior mean; pass ``encode(x)[0]`` to start from an image).
        Returns a list of k arrays (T, *data_shape) of Bernoulli means."""
        k = self.hp["latent_dim"]
        vals = np.linspace(-span, span, n_frames) if values is None else np.asarray(values, float)
        base = np.zeros(k) if z0 is None else np.asarray(_host(z0), float).reshape(k)
        rows = []
        for j in range(k):
            z = np.tile(base, (len(vals), 1))
            z[:, j] = vals
            rows.append(self.generate({"z": self.to_model(z)}))
        return rows

    # -- the objective -----------------------------------------------------------------
    def loss_grads(self, x, eps):
        """Fill encoder/decoder .grad with the gradient of the batch-mean loss; returns logs
        (0-d device arrays)."""
        k, hp, xp = self.hp["latent_dim"], self.hp, self.xp
        h = self.encoder(x)
        mu, log_std = xp.ascontiguousarray(h[:, :k]), xp.ascontiguousarray(h[:, k:])
        std = xp.exp(log_std)
        z = mu + std * eps                                    # reparameterisation
        logits = self.decoder(z)
        xf = x.reshape(x.shape[0], -1)
        rec, c_rec = L.bernoulli_nll_forward(logits, xf)      # -log p(x|z)
        kl, c_kl = L.gaussian_kl_forward(mu, 2.0 * log_std)   # KL(q(z|x) || N(0, I))
        if hp["objective"] == "beta":
            w = hp["beta"]                                    # F = recon - beta KL
            loss = rec + self.dtype.type(w) * kl
            logs = {}
        else:
            c = self.capacity()
            gap = kl - c
            w = self.dtype.type(hp["gamma"]) * xp.sign(gap)   # d/dKL of gamma |KL - C|
            loss = rec + self.dtype.type(hp["gamma"]) * xp.abs(gap)
            logs = {"capacity": c}
        dz = self.decoder.backward(L.bernoulli_nll_backward(1.0, c_rec))
        dmu_kl, dlogvar_kl = L.gaussian_kl_backward(w, c_kl)   # w * dKL/dmu, w * dKL/dlog var
        dmu = dz + dmu_kl                                     # dz/dmu = 1
        dlog_std = dz * eps * std + 2.0 * dlogvar_kl          # dz/ds = eps sigma; dlogvar/ds = 2
        self.encoder.backward(xp.concatenate([dmu, dlog_std], axis=1), input_grad=False)
        return {"loss": loss, "recon_nll": rec, "kl": kl, "elbo": -(rec + kl), **logs}

    def train_step(self, x, y=None):
        """One update: minibatch x, eps ~ N(0, I) from the device stream, gradient of the
        β-VAE (or capacity) loss, Adagrad step; then t <- t + 1."""
        x = self._check_x(x)
        eps = self.draw_normal((x.shape[0], self.hp["latent_dim"]))
        self.opt.zero_grad()
        logs = self.loss_grads(x, eps)
        self.opt.step()
        self._t += 1
        self.step += 1
        return logs


def _host(a):
    from ..backend import to_numpy
    return to_numpy(a)
