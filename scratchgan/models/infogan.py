"""InfoGAN (Chen et al. 2016).

G gets noise z and a latent code c; an auxiliary network Q(c|x) that shares D's trunk
predicts c from G(z, c). The objective (eq. 6):
    min_{G,Q} max_D  V_I(D, G, Q) = V(D, G) - lambda L_I(G, Q)
    L_I(G, Q) = E_{c~P(c), x~G(z,c)}[log Q(c|x)] + H(c)  <=  I(c; G(z, c))      (eq. 5)

Codes (MNIST): z 62-d ~ U(-1, 1); c1 ~ Cat(10) (one-hot); c2, c3 ~ U(-1, 1); input 74-d.
Q outputs 10 logits for c1 and the means of two Gaussians with std fixed to 1 for c2, c3,
so  -log Q(c|x) = CE(logits, c1) + lambda_cont/lambda * NLL_N(mean, 1)(c2, c3).
The categorical part of L_I is logged as ``L_I = H(c1) - CE = ln 10 - CE`` (its ceiling is
ln 10 ~ 2.303; the paper reports it reaches it quickly).

Networks (authors' code):
  D/Q trunk: conv 4x4 64 s2 lReLU(0.1) -> conv 4x4 128 s2 BN lReLU -> FC 1024 BN lReLU
  D head: FC 1 (logit);  Q head: FC 128 BN lReLU -> FC (10 logits + 2 means)
  G: FC 1024 BN ReLU -> FC 7*7*128 BN ReLU -> convT 4x4 64 s2 BN ReLU -> convT 4x4 1 s2 sigmoid
Adam: D (trunk, D head and Q head) lr 2e-4, G lr 1e-3, beta1 0.5; batch 128; lambda 1.
Layers use the library's default initialization (the paper does not state one).

The trunk serves two heads: in one pass, the heads' upstream gradients are summed
(dh = dh_D + dh_Q) before a single trunk backward, which the one-pending-cache rule requires.
Real and fake batches go through D separately (BatchNorm statistics kept apart).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..nn.module import frozen, no_grad
from ..ops import loss as L
from ..optim import Adam
from .base import GenerativeModel, mean_sigmoid

__all__ = ["InfoGAN"]


class InfoGAN(GenerativeModel):
    name = "infogan"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 128, "epochs": 50, "dataset": "mnist",
        "noise_dim": 62, "cat_dim": 10, "cont_dim": 2,
        "lambda_cat": 1.0, "lambda_cont": 1.0,
        "generator_loss": "nonsaturating",
        "g_fc": 1024, "g_channels": 128, "g_conv": 64,
        "d_conv1": 64, "d_conv2": 128, "d_fc": 1024, "q_fc": 128,
        "slope": 0.1,
        "lr_d": 2e-4, "lr_g": 1e-3, "betas": (0.5, 0.999),
    }

    @property
    def code_dim(self):
        return self.hp["noise_dim"] + self.hp["cat_dim"] + self.hp["cont_dim"]

    def build(self):
        hp, r = self.hp, self.rng
        L.get_generator_loss(hp["generator_loss"])
        if len(self.data_shape) != 3 or self.data_shape[1] % 4 or self.data_shape[2] % 4:
            raise ValueError(f"InfoGAN: expects images (C, H, W) with H and W multiples of 4, got "
                             f"data_shape {self.data_shape}")
        c, H, W = self.data_shape
        h4, w4 = H // 4, W // 4
        s, gc, gk = hp["slope"], hp["g_channels"], hp["g_conv"]
        self.G = nn.Sequential(
            nn.Linear(self.code_dim, hp["g_fc"], rng=r), nn.BatchNorm1d(hp["g_fc"]), nn.ReLU(),
            nn.Linear(hp["g_fc"], gc * h4 * w4, rng=r), nn.BatchNorm1d(gc * h4 * w4), nn.ReLU(),
            nn.Reshape(gc, h4, w4),
            nn.ConvTranspose2d(gc, gk, 4, 2, 1, rng=r), nn.BatchNorm2d(gk), nn.ReLU(),
            nn.ConvTranspose2d(gk, c, 4, 2, 1, rng=r), nn.Sigmoid())
        c1, c2, fc = hp["d_conv1"], hp["d_conv2"], hp["d_fc"]
        self.trunk = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1, rng=r), nn.LeakyReLU(s),
            nn.Conv2d(c1, c2, 4, 2, 1, rng=r), nn.BatchNorm2d(c2), nn.LeakyReLU(s),
            nn.Flatten(), nn.Linear(c2 * h4 * w4, fc, rng=r), nn.BatchNorm1d(fc), nn.LeakyReLU(s))
        self.d_head = nn.Linear(fc, 1, rng=r)
        self.q_head = nn.Sequential(
            nn.Linear(fc, hp["q_fc"], rng=r), nn.BatchNorm1d(hp["q_fc"]), nn.LeakyReLU(s),
            nn.Linear(hp["q_fc"], hp["cat_dim"] + hp["cont_dim"], rng=r))

    def build_optimizers(self):
        b = tuple(self.hp["betas"])
        self.opt_G = Adam(self.G.parameters(), lr=self.hp["lr_g"], betas=b)
        d_params = self.trunk.parameters() + self.d_head.parameters() + self.q_head.parameters()
        self.opt_D = Adam(d_params, lr=self.hp["lr_d"], betas=b)

    def networks(self):
        return {"G": self.G, "trunk": self.trunk, "d_head": self.d_head, "q_head": self.q_head}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    # -- noise and codes -------------------------------------------------------------
    def make_noise(self, z, cat, cont):
        """A noise dict from host or device arrays: z (n, 62), cat int (n,), cont (n, 2).

        G's input is concat(z, one_hot(cat), cont), built on the model's device.
        ``cat_device`` is the category as int64 on the device (the Q loss's labels)."""
        xp = self.xp
        z, cont = self.to_model(z), self.to_model(cont)
        cat_device = self.to_model(cat, dtype=False).astype(np.int64, copy=False)
        onehot = xp.eye(self.hp["cat_dim"], dtype=self.dtype)[cat_device]
        inp = xp.concatenate([z, onehot, cont], axis=1)
        return {"z": z, "cat": cat_device, "cat_device": cat_device, "cont": cont, "input": inp}

    def sample_noise(self, n, rng=None, labels=None):
        """z ~ U(-1,1)^62, c1 ~ Cat(10) (or the given ``labels``), c2, c3 ~ U(-1,1): drawn from
        the device stream, or from ``rng`` on the host."""
        n = int(n)
        z = self.draw_uniform((n, self.hp["noise_dim"]), -1.0, 1.0, rng)
        cat = self.draw_integers(self.hp["cat_dim"], n, rng) if labels is None else labels
        cont = self.draw_uniform((n, self.hp["cont_dim"]), -1.0, 1.0, rng)
        return self.make_noise(z, cat, cont)

    def traversal_noise(self, cont_index=0, values=None, n_rows=None, rng=None):
        """Grid noise for a code traversal: row r has its own z and category r % 10, column j
        sets continuous code ``cont_index`` to ``values[j]`` (others 0). With
        ``cont_index=None`` the columns instead run over the categories (z fixed per row)."""
        g = self._rng(rng)
        K, nc = self.hp["cat_dim"], self.hp["cont_dim"]
        n_rows = K if n_rows is None else int(n_rows)
        if cont_index is None:
            values = np.arange(K)
        elif values is None:
            values = np.linspace(-2.0, 2.0, 10)
        values = np.asarray(values)
        zs = g.uniform(-1.0, 1.0, size=(n_rows, self.hp["noise_dim"]))
        z = np.repeat(zs, len(values), axis=0)
        cont = np.zeros((n_rows * len(values), nc))
        if cont_index is None:
            cat = np.tile(values, n_rows)
        else:
            if not 0 <= cont_index < nc:
                raise ValueError(f"InfoGAN.traversal_noise: cont_index must be in [0, {nc}), got "
                                 f"{cont_index}")
            cat = np.repeat(np.arange(n_rows) % K, len(values))
            cont[:, cont_index] = np.tile(values, n_rows)
        return self.make_noise(z, cat, cont)

    def generate(self, noise):
        return self._eval_forward(self.G, noise["input"])

    def predict_codes(self, x):
        """Q's categorical logits and continuous means for images x (eval mode, no cache)."""
        x = self.to_model(x)
        h = self._eval_forward(self.trunk, x)
        q = self._eval_forward(self.q_head, h)
        K = self.hp["cat_dim"]
        return q[:, :K], q[:, K:]

    # -- the losses ------------------------------------------------------------------------
    def info_loss(self, q, noise):
        """lambda_cat CE(logits, c1) + lambda_cont NLL(c_cont; mean, 1) and its gradient dq.

        Returns (loss, dq, logs). ``-L_I`` up to the constant H(c) (eq. 5).
        """
        K = self.hp["cat_dim"]
        xp = self.xp
        logits, means = q[:, :K], q[:, K:]
        ce, c1 = L.softmax_cross_entropy_forward(xp.ascontiguousarray(logits), noise["cat_device"])
        dlogits = L.softmax_cross_entropy_backward(self.hp["lambda_cat"], c1)
        logs = {"L_I": math.log(K) - ce, "info_ce": ce}
        loss = self.hp["lambda_cat"] * ce
        if self.hp["cont_dim"]:
            nll, c2 = L.gaussian_nll_fixed_std_forward(xp.ascontiguousarray(means), noise["cont"], 1.0)
            dmeans = L.gaussian_nll_fixed_std_backward(self.hp["lambda_cont"], c2)
            logs["info_cont_nll"] = nll
            loss = loss + self.hp["lambda_cont"] * nll
            dq = xp.concatenate([dlogits, dmeans], axis=1)
        else:
            dq = dlogits
        return loss, dq, logs

    def discriminator_grads(self, x_real, noise):
        """Fill trunk, D head and Q head .grad with d/d(w) of
        bce(D(x),1) + bce(D(G(z,c)),0) + lambda (-log Q(c|G(z,c))) (D ascends V_I, Q ascends L_I)."""
        with no_grad():
            x_fake = self.G(noise["input"])
        l_real = self.d_head(self.trunk(x_real))
        lr_, c = L.bce_with_logits_forward(l_real, 1.0)
        self.trunk.backward(self.d_head.backward(L.bce_with_logits_backward(1.0, c)),
                            input_grad=False)
        h = self.trunk(x_fake)
        l_fake = self.d_head(h)
        q = self.q_head(h)
        lf_, c = L.bce_with_logits_forward(l_fake, 0.0)
        info, dq, logs = self.info_loss(q, noise)
        dh = self.d_head.backward(L.bce_with_logits_backward(1.0, c)) + self.q_head.backward(dq)
        self.trunk.backward(dh, input_grad=False)     # one trunk backward for both heads
        logs.update({"loss_d": lr_ + lf_, "loss_q": info,
                     "d_real": mean_sigmoid(l_real), "d_fake": mean_sigmoid(l_fake)})
        return logs

    def generator_grads(self, noise):
        """Fill G's .grad with d/dtheta_g of the generator loss + lambda (-log Q(c|G(z,c)))."""
        fwd, bwd = L.get_generator_loss(self.hp["generator_loss"])
        x_fake = self.G(noise["input"])
        h = self.trunk(x_fake)
        logits = self.d_head(h)
        q = self.q_head(h)
        lg, c = fwd(logits)
        info, dq, logs = self.info_loss(q, noise)
        with frozen(self.trunk, self.d_head, self.q_head):   # D and Q held fixed
            dh = self.d_head.backward(bwd(1.0, c)) + self.q_head.backward(dq)
            dx = self.trunk.backward(dh)
        self.G.backward(dx, input_grad=False)
        return {"loss_g": lg, "loss_info_g": info, "L_I_g": logs["L_I"]}

    def train_step(self, x, y=None):
        """GAN Algorithm 1 (k = 1) on V_I: a D/Q update then a G update, fresh noise for each."""
        x = self._check_x(x)
        m = x.shape[0]
        noise = self.sample_noise(m)                  # z ~ U(-1,1), c ~ P(c)
        self.opt_D.zero_grad()
        logs = self.discriminator_grads(x, noise)     # max_D V_I; min_Q -lambda L_I
        self.opt_D.step()
        noise = self.sample_noise(m)
        self.opt_G.zero_grad()
        logs.update(self.generator_grads(noise))      # min_G V_I - lambda L_I
        self.opt_G.step()
        self.step += 1
        return logs
