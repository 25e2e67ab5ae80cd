"""Conditional variational auto-encoder (Sohn, Lee & Yan 2015) on MNIST quadrant completion.

Task (``scratchgan.data.quadrants``): x is the revealed part of a digit (1, 2 or 3 quadrants,
hidden pixels = -1), y the rest; only the hidden pixels (mask m = 1) are predicted. Pixels are
grey levels in [0, 1] scored with the Bernoulli cross-entropy, as in the public reproduction.

Networks (the reproduction's MNIST sizes: ReLU MLPs 784 -> 500 -> 500, z of 200 dimensions,
Adam 1e-3, batch 128; weights U(+-1/sqrt(fan_in)), the library's Linear default and PyTorch's):

* baseline B: x -> logits of y; y_hat = sigmoid(B(x)), the deterministic prediction. Trained
  alone (``mode="baseline"``) on the masked cross-entropy sum_m [softplus(l) - y l];
* prior network p(z|x) = N(mu_p, diag e^{lv_p}) of c = x completed with y_hat (hidden pixels
  replaced by the baseline's guess): the CVAE builds on the baseline's prediction;
* recognition network q(z|x, y) = N(mu_q, diag e^{lv_q}) of the full image (x completed with y);
* generation network p(y|x, z) = Bernoulli(sigmoid(G([c, z]))) on the hidden pixels: it sees
  z and x completed with y_hat (``gen_input="z"``: z only, the public reproduction's variant).

Objective per example (eq. 4 of the paper, one sample, the reparameterisation
z = mu_q + sigma_q * eps):  L = -KL(q(z|x,y) || p(z|x)) + log p(y|x, z). ``train_step``
descends the batch mean of -L = ``recon_nll + kl``. With ``train_baseline=True`` (default) the
same step first takes an Adam step of the baseline on its own loss; y_hat enters the CVAE as an
input (no CVAE gradient reaches the baseline), so a pre-trained baseline can be loaded and
frozen instead (``train_baseline=False``, the reproduction's two-stage protocol).

Gradients (derivations in docs/derivations/cvae_m2.md):

* masked Bernoulli NLL  sum_d m_d [softplus(l_d) - y_d l_d]  ->  d/dl = m (sigmoid(l) - y);
* KL between two diagonal Gaussians, per dimension with v = e^{lv}, r = mu_q - mu_p:
  KL = 1/2 [lv_p - lv_q + (v_q + r^2) / v_p - 1];
  dKL/dmu_q = r / v_p,  dKL/dmu_p = -r / v_p,
  dKL/dlv_q = 1/2 (v_q / v_p - 1),  dKL/dlv_p = 1/2 (1 - (v_q + r^2) / v_p);
* reparameterisation: dz/dmu_q = 1, dz/dlv_q = eps sigma_q / 2.

Negative conditional log-likelihood (Sec. 4.1, importance sampling with q as the proposal):
    -log p(y|x) ~= -log (1/S) sum_s p(y|x, z_s) p(z_s|x) / q(z_s|x, y),   z_s ~ q(z|x, y)
(:meth:`CVAE.conditional_nll`, :func:`importance_log_likelihood`). The baseline's is its masked
cross-entropy (:meth:`CVAE.baseline_nll`).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..backend import get_array_module
from ..data.quadrants import MASK_VALUE, n_revealed_of, quadrant_task, revealed_mask
from ..nn.module import no_grad
from ..ops.activation import sigmoid, softplus
from ..optim import Adam
from .base import GenerativeModel

__all__ = ["masked_bernoulli_nll_forward", "masked_bernoulli_nll_backward",
           "gaussian_kl2_forward", "gaussian_kl2_backward", "gaussian_log_density",
           "log_mean_exp", "importance_log_likelihood", "CVAE"]

_LOG_2PI = math.log(2.0 * math.pi)


# -- losses with hand-written gradients ----------------------------------------------------
def masked_bernoulli_nll_forward(logits, y, m):
    """``(1/N) sum_{n,d} m [softplus(l) - y l]``: the Bernoulli cross-entropy of the pixels with
    m = 1 (y may hold anything, -1 say, where m = 0). Returns ``(loss, cache)``."""
    if logits.shape != y.shape:
        raise ValueError(f"masked_bernoulli_nll: logits {tuple(logits.shape)} and targets "
                         f"{tuple(y.shape)} must have one shape")
    n = logits.shape[0]
    yt = y * m                                          # finite targets where m = 0
    per = (m * (softplus(logits) - yt * logits)).reshape(n, -1).sum(axis=1)
    xp = get_array_module(logits)
    return xp.asarray(per.sum() / n).reshape(()), (logits, yt, m, n)


def masked_bernoulli_nll_backward(dloss, cache):
    """``d/dl m [softplus(l) - y l] = m (sigmoid(l) - y)``, times ``dloss / N``."""
    logits, yt, m, n = cache
    return (m * (sigmoid(logits) - yt)) * (dloss / n)


def gaussian_kl2_forward(mu_q, lv_q, mu_p, lv_p):
    """``(1/N) sum KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p))`` over diagonal Gaussians (N, k):
    per dimension ``1/2 [lv_p - lv_q + (e^lv_q + (mu_q - mu_p)^2) e^-lv_p - 1]``."""
    for a, w in ((lv_q, "lv_q"), (mu_p, "mu_p"), (lv_p, "lv_p")):
        if a.shape != mu_q.shape:
            raise ValueError(f"gaussian_kl2: {w} has shape {tuple(a.shape)}, expected mu_q's "
                             f"{tuple(mu_q.shape)}")
    n = mu_q.shape[0]
    xp = get_array_module(mu_q)
    vq, inv_vp = xp.exp(lv_q), xp.exp(-lv_p)
    r = mu_q - mu_p
    a = (vq + r * r) * inv_vp
    kl = 0.5 * (lv_p - lv_q + a - 1.0)
    return xp.asarray(kl.sum() / n).reshape(()), (vq, inv_vp, r, a, n)


def gaussian_kl2_backward(dloss, cache):
    """``(dmu_q, dlv_q, dmu_p, dlv_p)``: r / v_p, (v_q / v_p - 1)/2, -r / v_p,
    (1 - (v_q + r^2)/v_p)/2, each times ``dloss / N``."""
    vq, inv_vp, r, a, n = cache
    s = dloss / n
    dmu_q = (r * inv_vp) * s
    return dmu_q, (0.5 * (vq * inv_vp - 1.0)) * s, -dmu_q, (0.5 * (1.0 - a)) * s


def gaussian_log_density(z, mu, lv):
    """``sum_k log N(z_k; mu_k, e^lv_k)`` per row."""
    xp = get_array_module(z)
    return -0.5 * (_LOG_2PI + lv + (z - mu) ** 2 * xp.exp(-lv)).sum(axis=-1)


def log_mean_exp(a, axis=0):
    """``log mean exp(a)`` along ``axis``, shifted by the max (no overflow)."""
    xp = get_array_module(a)
    m = a.max(axis=axis, keepdims=True)
    return (m + xp.log(xp.exp(a - m).mean(axis=axis, keepdims=True))).squeeze(axis)


def importance_log_likelihood(log_joint, q_mu, q_logvar, n_samples, draw_normal):
    """Importance-sampled ``log p(y) = log E_q[p(y, z) / q(z)]`` per row, with q the diagonal
    Gaussian N(q_mu, e^q_logvar) (rows, k) as the proposal:

        log (1/S) sum_s exp[ log_joint(z_s) - log q(z_s) ],   z_s = q_mu + e^{q_logvar/2} eps_s.

    ``log_joint(z) -> (rows,)`` gives log p(y, z) (for the CVAE, log p(y|x,z) + log p(z|x));
    ``draw_normal(shape)`` gives standard normals. Unbiased for p(y) and consistent for
    log p(y) as S grows; exact for any S when q is the exact posterior."""
    if int(n_samples) < 1:
        raise ValueError(f"importance_log_likelihood: n_samples must be >= 1, got {n_samples}")
    xp = get_array_module(q_mu)
    std = xp.exp(0.5 * q_logvar)
    logw = []
    for _ in range(int(n_samples)):
        z = q_mu + std * draw_normal(q_mu.shape)
        logw.append(log_joint(z) - gaussian_log_density(z, q_mu, q_logvar))
    return log_mean_exp(xp.stack(logw), axis=0)


class CVAE(GenerativeModel):
    name = "cvae"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    data_kinds = ("image", "image-pair", "translation-paired")
    defaults = {
        "batch_size": 128, "epochs": 20, "dataset": "mnist",
        "mode": "cvae",               # "cvae" | "baseline" (the baseline network alone)
        "n_revealed": 1,              # quadrants revealed, for (1, H, W) image data
        "hidden": 500, "latent_dim": 200, "lr": 1e-3,
        "train_baseline": True,       # the baseline takes its own Adam step in each CVAE step
        "gen_input": "x_yhat_z",      # generation network input: "x_yhat_z" | "z"
    }

    def build(self):
        hp, r = self.hp, self.rng
        if hp["mode"] not in ("cvae", "baseline"):
            raise ValueError(f"CVAE: mode must be 'cvae' or 'baseline', got {hp['mode']!r}")
        if hp["gen_input"] not in ("x_yhat_z", "z"):
            raise ValueError(f"CVAE: gen_input must be 'x_yhat_z' (x completed with the "
                             f"baseline's guess, and z) or 'z', got {hp['gen_input']!r}")
        shape = self.data_shape
        if len(shape) != 3 or shape[0] not in (1, 2) or shape[1] != shape[2] or shape[1] % 2:
            raise ValueError(f"CVAE: data must be square images with an even side, (1, H, W) "
                             f"(whole images, cut by n_revealed) or (2, H, W) (pairs [x, y] "
                             f"from mnist-quadrants), got data_shape {shape}")
        self.pairs = shape[0] == 2
        if not self.pairs and hp["n_revealed"] not in (1, 2, 3):
            raise ValueError(f"CVAE: n_revealed must be 1, 2 or 3, got {hp['n_revealed']!r}")
        self.side = shape[1]
        d, h, k = self.side * self.side, hp["hidden"], hp["latent_dim"]
        self.dim = d
        self.baseline = nn.mlp([d, h, h, d], r)
        self.recognition = nn.mlp([d, h, h, 2 * k], r)
        self.prior = nn.mlp([d, h, h, 2 * k], r)
        gin = d + k if hp["gen_input"] == "x_yhat_z" else k
        self.generation = nn.mlp([gin, h, h, d], r)
        self._hidden_mask = None

    def build_optimizers(self):
        lr = self.hp["lr"]
        self.opt_baseline = Adam(self.baseline.parameters(), lr=lr)
        self.opt_cvae = Adam(self.recognition.parameters() + self.prior.parameters() +
                             self.generation.parameters(), lr=lr)

    def networks(self):
        return {"baseline": self.baseline, "recognition": self.recognition, "prior": self.prior,
                "generation": self.generation}

    def optimizers(self):
        return {"baseline": self.opt_baseline, "cvae": self.opt_cvae}

    # -- the task ---------------------------------------------------------------------
    def hidden_mask(self):
        """(1, H*W) float mask of the pixels to predict, for whole-image data (on the device)."""
        if self._hidden_mask is None:
            m = (~revealed_mask(self.hp["n_revealed"], self.side)).reshape(1, -1)
            self._hidden_mask = self.to_model(m.astype(np.float64))
        return self._hidden_mask

    def split(self, batch):
        """A data batch -> ``(x, full, y, m)``, flat (N, H*W) on the device: x the revealed part
        (-1 on hidden pixels), full the image (x completed with y: the recognition input), y
        the targets (0 on revealed pixels) and m the hidden-pixel mask."""
        n = batch.shape[0]
        if self.pairs:
            x = batch[:, 0].reshape(n, -1)
            y = batch[:, 1].reshape(n, -1)
            m = (x == MASK_VALUE).astype(self.dtype)
            yt = y * m
            full = x * (1 - m) + yt
            return x, full, yt, m
        img = batch.reshape(n, -1)
        m = self.hidden_mask()
        x = img * (1 - m) + MASK_VALUE * m
        return x, img, img * m, m

    # -- objectives ---------------------------------------------------------------------
    def baseline_grads(self, x, y, m):
        """Fill the baseline's .grad with the gradient of its masked cross-entropy."""
        logits = self.baseline(x)
        loss, c = masked_bernoulli_nll_forward(logits, y, m)
        self.baseline.backward(masked_bernoulli_nll_backward(1.0, c), input_grad=False)
        return {"loss_baseline": loss}

    def guess(self, x, m):
        """c = x completed with the baseline's prediction y_hat = sigmoid(B(x)) (no cache)."""
        yhat = sigmoid(self._eval_forward(self.baseline, x))
        return x * (1 - m) + yhat * m

    def _gen_input(self, c, z):
        if self.hp["gen_input"] == "z":
            return z
        return self.xp.concatenate([c, z], axis=1)

    def cvae_grads(self, x, full, y, m, eps):
        """Fill recognition/prior/generation .grad with the gradient of the batch mean of -L."""
        xp, k = self.xp, self.hp["latent_dim"]
        c = self.guess(x, m)                                  # builds on the baseline's guess
        hq = self.recognition(full)                           # q(z|x, y)
        mu_q, lv_q = xp.ascontiguousarray(hq[:, :k]), xp.ascontiguousarray(hq[:, k:])
        hp_ = self.prior(c)                                   # p(z|x)
        mu_p, lv_p = xp.ascontiguousarray(hp_[:, :k]), xp.ascontiguousarray(hp_[:, k:])
        std_q = xp.exp(0.5 * lv_q)
        z = mu_q + std_q * eps                                # reparameterisation
        logits = self.generation(self._gen_input(c, z))       # p(y|x, z)
        rec, c_rec = masked_bernoulli_nll_forward(logits, y, m)
        kl, c_kl = gaussian_kl2_forward(mu_q, lv_q, mu_p, lv_p)
        dgin = self.generation.backward(masked_bernoulli_nll_backward(1.0, c_rec))
        dz = dgin[:, -k:]
        dmu_q, dlv_q, dmu_p, dlv_p = gaussian_kl2_backward(1.0, c_kl)
        self.recognition.backward(xp.concatenate([dz + dmu_q, dz * eps * std_q * 0.5 + dlv_q],
                                                 axis=1), input_grad=False)
        self.prior.backward(xp.concatenate([dmu_p, dlv_p], axis=1), input_grad=False)
        return {"loss": rec + kl, "recon_nll": rec, "kl": kl}

    def train_step(self, x, y=None):
        """One Adam step: the baseline alone (mode "baseline"); else the baseline's step (when
        trained) and then the CVAE's: eps ~ N(0, I), gradient of -L, Adam."""
        batch = self._check_x(x)
        xin, full, yt, m = self.split(batch)
        logs = {}
        if self.hp["mode"] == "baseline" or self.hp["train_baseline"]:
            self.opt_baseline.zero_grad()
            logs.update(self.baseline_grads(xin, yt, m))
            self.opt_baseline.step()
        if self.hp["mode"] == "cvae":
            eps = self.draw_normal((batch.shape[0], self.hp["latent_dim"]))
            self.opt_cvae.zero_grad()
            logs.update(self.cvae_grads(xin, full, yt, m, eps))
            self.opt_cvae.step()
        self.step += 1
        return logs

    # -- evaluation ------------------------------------------------------------------------
    def _posteriors(self, batch):
        k = self.hp["latent_dim"]
        x, full, y, m = self.split(self.to_model(batch))
        c = self.guess(x, m)
        hq = self._eval_forward(self.recognition, full)
        hp_ = self._eval_forward(self.prior, c)
        return x, y, m, c, (hq[:, :k], hq[:, k:]), (hp_[:, :k], hp_[:, k:])

    def baseline_nll(self, batch):
        """Per-example masked cross-entropy of the baseline's prediction, (N,) (nats)."""
        x, _, y, m = self.split(self.to_model(batch))
        logits = self._eval_forward(self.baseline, x)
        return (m * (softplus(logits) - y * logits)).sum(axis=1)

    def conditional_nll(self, batch, n_samples=100, rng=None):
        """Importance-sampled -log p(y|x) per example (N,), S = ``n_samples`` draws from
        q(z|x, y) (``rng``: a NumPy Generator for host draws; default the device stream)."""
        if self.hp["mode"] != "cvae":
            raise ValueError("CVAE.conditional_nll: this model was built with mode='baseline'; "
                             "use baseline_nll")
        x, y, m, c, (mu_q, lv_q), (mu_p, lv_p) = self._posteriors(batch)

        def log_joint(z):
            logits = self._eval_forward(self.generation, self._gen_input(c, z))
            return -(m * (softplus(logits) - y * logits)).sum(axis=1) + \
                gaussian_log_density(z, mu_p, lv_p)

        draw = (lambda shape: self.draw_normal(shape, 1.0, rng))
        return -importance_log_likelihood(log_joint, mu_q, lv_q, n_samples, draw)

    def negative_elbo(self, batch, rng=None):
        """Per-example -L (one z ~ q): the bound the public reproduction reports."""
        x, y, m, c, (mu_q, lv_q), (mu_p, lv_p) = self._posteriors(batch)
        z = mu_q + self.xp.exp(0.5 * lv_q) * self.draw_normal(mu_q.shape, 1.0, rng)
        logits = self._eval_forward(self.generation, self._gen_input(c, z))
        rec = (m * (softplus(logits) - y * logits)).sum(axis=1)
        vq, inv_vp = self.xp.exp(lv_q), self.xp.exp(-lv_p)
        kl = 0.5 * (lv_p - lv_q + (vq + (mu_q - mu_p) ** 2) * inv_vp - 1.0).sum(axis=1)
        return rec + kl

    def complete(self, batch, n=1, rng=None, use_prior=True):
        """Completed images (n, N, 1, H, W): revealed pixels kept, hidden ones the Bernoulli
        means of p(y|x, z) for n draws z ~ p(z|x) (the baseline's y_hat in mode "baseline")."""
        with no_grad():
            x, y, m, c, _, (mu_p, lv_p) = self._posteriors(batch)
            outs = []
            for _ in range(int(n)):
                if self.hp["mode"] == "baseline":
                    pred = c
                else:
                    z = mu_p + self.xp.exp(0.5 * lv_p) * self.draw_normal(mu_p.shape, 1.0, rng)
                    p = sigmoid(self._eval_forward(self.generation, self._gen_input(c, z)))
                    pred = x * (1 - m) + p * m
                outs.append(pred.reshape(-1, 1, self.side, self.side))
            return self.xp.stack(outs)

    # -- the trainer's fixed pictures --------------------------------------------------------
    def sample_noise(self, n, rng=None, labels=None):
        """``{"eps": N(0, I) (n, latent_dim), "batch": conditioning inputs}``. The revealed
        parts come from the seven-segment stand-in digits (``scratchgan.data.standin``, no data
        files needed) cut like the training data, so the trainer's grids are comparable."""
        n = int(n)
        if self.side == 28:
            from ..data.standin import standin_images
            img = standin_images("mnist", n, seed=5, split="test")[0]
        else:
            img = np.random.default_rng(5).uniform(0, 1, (n, 1, self.side, self.side))
        if self.pairs:
            batch = np.empty((n, 2, self.side, self.side), np.float32)
            nof = n_revealed_of(np.arange(n))
            for q in (1, 2, 3):
                xq, yq, _ = quadrant_task(img[nof == q, 0], q)
                batch[nof == q, 0], batch[nof == q, 1] = xq, yq
        else:
            batch = img
        return {"eps": self.draw_normal((n, self.hp["latent_dim"]), 1.0, rng),
                "batch": self.to_model(batch)}

    def generate(self, noise):
        """Completed images (n, 1, H, W) in [0, 1] for the inputs in ``noise["batch"]``, with
        z = mu_p + sigma_p eps from the prior network (the baseline's guess in mode baseline)."""
        with no_grad():
            x, _, m, c, _, (mu_p, lv_p) = self._posteriors(noise["batch"])
            if self.hp["mode"] == "baseline":
                pred = c
            else:
                z = mu_p + self.xp.exp(0.5 * lv_p) * noise["eps"]
                p = sigmoid(self._eval_forward(self.generation, self._gen_input(c, z)))
                pred = x * (1 - m) + p * m
        return pred.reshape(-1, 1, self.side, self.side)
