"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016): a VAE whose decoder is a GAN's
generator, reconstructing in the discriminator's feature space.

Networks: encoder Enc(x) -> (mu, log sigma^2) of q(z|x); decoder (= generator) Dec(z) -> x;
discriminator Dis(x) -> logit, and Dis_l(x) its hidden representation at layer l.

Losses, for a minibatch of m examples (each a batch mean; D(.) = sigmoid(Dis(.)) ):

    z = mu + sigma * eps,  eps ~ N(0, I)          x~ = Dec(z)          (reparameterisation)
    z_p ~ N(0, I)                                 x_p = Dec(z_p)       (prior samples)
    L_prior  = KL(q(z|x) || N(0, I)) = 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2)
    L_llike  = -log N(Dis_l(x); Dis_l(x~), I) = 1/2 ||Dis_l(x~) - Dis_l(x)||^2 + const
               (the Gaussian likelihood of the discriminator's features, sigma 1; the
               constant (K/2) log 2 pi is not logged)
    C_D      = -[log D(x) + log(1 - D(x~)) + log(1 - D(x_p))]        (D's cross-entropy)

The paper writes L_GAN = log D(x) + log(1 - D(x~)) + log(1 - D(x_p)) and Algorithm 1 updates
    theta_Enc <- -grad(L_prior + L_llike),  theta_Dec <- -grad(gamma L_llike - L_GAN),
    theta_Dis <- -grad(L_GAN).
Taken literally ("descend") that would make D *minimise* log D(x) and the decoder *maximise*
log(1 - D(x~)): the known sign trap. The consistent reading (and the authors' code, which
computes D's cross-entropy and hands the decoder its negative gradient) is L_GAN = C_D, the
cost D descends. So here:

    encoder   descends  L_enc = kl_weight * L_prior + L_llike
    decoder   descends  L_dec = gamma * L_llike - C_D
                              = gamma * L_llike + mean log(1 - D(x~)) + mean log(1 - D(x_p))
                                (the real term of C_D does not depend on the decoder)
    D         descends  L_D   = C_D = bce(Dis(x), 1) + 2 * bce(Dis([x~; x_p]), 0)

(``generator_loss="nonsaturating"``, a named variant, replaces the decoder's GAN term by
-mean log D(x~) - mean log D(x_p).) D learns only from C_D: L_llike moves Enc and Dec, never
D. And **no GAN gradient reaches the encoder**: the GAN pass decodes z again with the
gradient into z cut (the decoder's backward in that pass computes no input gradient), so
the encoder's gradient is that of L_enc alone (``tests/test_vaegan.py`` checks it).

All gradients of one step are taken at the same parameters, then all three networks are
updated (Algorithm 1 computes every loss before "update parameters according to gradients").

Backward chain (derivations in docs/derivations/vaegan.md):
* reconstruction in feature space: f = Dis_l(x~), t = Dis_l(x) (data; no gradient),
  dL_llike/df = (f - t)/m; Dis_l's backward with D frozen gives dL/dx~; the sigmoid output
  x~ = s(a) gives dL/da = dL/dx~ * x~ (1 - x~); the decoder's backward gives dL/dz and
  grad_Dec L_llike (then multiplied by gamma: the decoder's gradient buffers are scaled in
  place, which is exact since they held nothing else yet);
* reparameterisation: dz/dmu = 1, dz/dlog sigma^2 = eps sigma / 2; plus the KL's
  d/dmu = mu, d/dlog sigma^2 = (sigma^2 - 1)/2 (times kl_weight, over m);
* pixel reconstruction (``recon="pixel"``, the conditional MNIST script): the Bernoulli
  negative log-likelihood on the decoder's logits a, d/da = s(a) - x (over m);
* GAN pass: dC_D/dl = s(l) - t over the batch (t = 1 real, 0 fakes, times 2 for the fakes'
  mean over 2m rows); Dis's backward gives D's parameter gradient and dC_D/dx_f for the
  fakes x_f = [x~; x_p]; the decoder's GAN term is -C_D, so its gradient is -dC_D/dx_f,
  one backward serving both (the authors' "negative gradient" trick); the decoder backward
  of this pass has input_grad=False, so nothing flows to z.

Equilibrium rule (authors' code, a named option ``equilibrium=True``; not in Algorithm 1):
with real_cost = mean -log D(x) and fake_cost = mean over the 2m fakes of -log(1 - D), skip
D's update when either cost is below equilibrium_value - margin (D is winning), skip the
decoder's when either is above equilibrium_value + margin (D is losing), and when both would
be skipped do both. The encoder always updates. The rule is evaluated **on the device**: the
two flags are 0-d boolean arrays, and a skipped update is undone exactly by restoring the
network's parameters and the optimizer's state saved before the step with
``copyto(..., where=skip)`` (so RMSProp's running mean square does not decay on a skipped
step, as in the authors' code, and nothing is read back to the host).

Variants (``variant``):
* ``"mnist-mlp"`` (default): our MNIST setup (the paper has no MNIST VAE-GAN figures); the
  networks of the authors' conditional MNIST script without the label inputs. Encoder
  784 -> 1024 BN ReLU -> dropout 0.5 -> 1024 BN ReLU -> (mu, log sigma^2) 32; decoder
  32 -> 2048 BN ReLU -> 2048 BN ReLU -> 784 sigmoid; D 784 -> 2048 ReLU -> dropout 0.25
  -> 2048 BN ReLU -> dropout 0.25 -> 1. Dis_l = D's first hidden layer (``dis_layer=1``:
  ReLU output, before dropout; ``dis_layer=2`` takes the second, which passes through D's
  first dropout and its BatchNorm: the target batch Dis_l(x) and Dis_l(x~) are then
  normalised with their own batch statistics and see different dropout masks); gamma
  0.025; L_prior weight 1; equilibrium off (Algorithm 1), on with ``equilibrium=True``
  (margin 0.35 around 0.68, the authors' later code).
* ``"cond-mnist"``: the authors' ``cond_vaegan_mnist.py``. The one-hot label is
  concatenated to the input of every layer of all three networks (not to the encoder's
  (mu, log sigma^2) head); the reconstruction term of that script is the **pixel** Bernoulli
  likelihood (``recon="pixel"``), KL weight 0.5, gamma 0.025 (its ``vae_grad_scale``); its
  prior samples are the same eps used for the reparameterisation (``prior_from_eps``), with
  the real labels; the equilibrium rule is on (margin 0.25 around 0.68314718). ``recon=
  "dis_l"`` gives the conditional model with the paper's feature-space likelihood.

Both: batch 128; RMSProp (decay 0.9, eps 1e-8) with the script's learning rates 0.075 per
example (its losses are sums over the batch and its rates divided by the batch size: here
the losses are batch means, lr 0.075/128 for Enc and Dec and 0.075/256 for D) and its schedule
(``lr_schedule="official"``: x1 for 75 "epochs" of 250 minibatches, x2/3 for 25, x2/15 for
5, x1/15 for 5: steps 18750, 25000, 26250), 27,500 updates in all (``epochs`` 59 of 468
minibatches; ``schedule_length`` scales the boundaries for a shorter run); weights
U(+-1/sqrt(3 fan_in)) (deeppy's AutoFiller, gain 1), biases 0, the (mu, log sigma^2) biases
N(0, 0.001^2). The script's "epoch" of 250 minibatches is our reading of its
``epoch_size=250``. The script's clip of D(.) to [1e-4, 1 - 1e-4] is not
used (the costs are computed from logits).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..nn.module import frozen, no_grad
from ..ops import loss as L
from ..ops.activation import sigmoid, sigmoid_backward, sigmoid_forward
from ..optim import RMSprop
from .base import GenerativeModel, mean_sigmoid

__all__ = ["VARIANTS", "VARIANT_DEFAULTS", "OFFICIAL_SCHEDULE", "OFFICIAL_LENGTH", "LabelledMLP",
           "VAEGAN"]

VARIANTS = ("mnist-mlp", "cond-mnist")
#: the settings that differ between the variants (a None hyperparameter takes its variant's)
VARIANT_DEFAULTS = {
    "mnist-mlp": dict(recon="dis_l", kl_weight=1.0, equilibrium=False, margin=0.35,
                      equilibrium_value=0.68, prior_from_eps=False),
    "cond-mnist": dict(recon="pixel", kl_weight=0.5, equilibrium=True, margin=0.25,
                       equilibrium_value=0.68314718, prior_from_eps=True),
}
#: lr_schedule "official": (first step, factor) of cond_vaegan_mnist.py's RMSProp runs
OFFICIAL_SCHEDULE = ((0, 1.0), (18750, 2.0 / 3.0), (25000, 2.0 / 15.0), (26250, 1.0 / 15.0))
OFFICIAL_LENGTH = 27500


class LabelledMLP(nn.Module):
    """A chain of blocks (each a Sequential); where ``cond[i]`` is set, the one-hot label is
    concatenated to block i's input (the authors' ConditionalSequential). Inputs of any shape
    are flattened to (N, D) first.

    ``forward(x, y1h=None, upto=None)`` runs blocks[:upto] (all by default) and keeps one
    pending cache like every layer; ``backward(dy, input_grad=True)`` runs the same blocks
    backwards; the label's slice of each concatenation's gradient is dropped (labels are
    data); d/dx comes back in x's shape (None with ``input_grad=False``)."""

    def __init__(self, blocks, cond):
        super().__init__()
        if len(blocks) != len(cond):
            raise ValueError(f"LabelledMLP: {len(blocks)} blocks but {len(cond)} cond flags")
        self.blocks = nn.Sequential(*blocks)
        self.cond = tuple(bool(c) for c in cond)

    def _label(self):
        return "LabelledMLP"

    def forward(self, x, y1h=None, upto=None):
        n = len(self.cond) if upto is None else int(upto)
        if not 1 <= n <= len(self.cond):
            raise ValueError(f"LabelledMLP: upto must be in [1, {len(self.cond)}], got {upto}")
        if any(self.cond[:n]) and y1h is None:
            raise ValueError("LabelledMLP: this network is conditional; pass one-hot labels y1h")
        from ..backend import get_array_module
        xp = get_array_module(x)
        shape = tuple(x.shape)
        h = x.reshape(shape[0], -1)
        k = 0 if y1h is None else int(y1h.shape[1])
        for i in range(n):
            if self.cond[i]:
                h = xp.concatenate([h, y1h.astype(h.dtype, copy=False)], axis=1)
            h = self.blocks[i](h)
        self._save_cache((n, shape, k))
        return h

    def backward(self, dy, input_grad=True):
        n, shape, k = self._take_cache()
        from ..backend import get_array_module
        xp = get_array_module(dy)
        for i in range(n - 1, -1, -1):
            block = self.blocks[i]
            if i == 0 and not input_grad:
                block.backward(dy, input_grad=False)
                return None
            dy = block.backward(dy)
            if self.cond[i]:
                dy = xp.ascontiguousarray(dy[:, :dy.shape[1] - k])
        return dy.reshape(shape)


def _autofill_(net, rng):
    """deeppy's AutoFiller (gain 1): W ~ U(+-1/sqrt(3 fan_in)); biases 0."""
    for m in net.modules():
        if isinstance(m, nn.Linear):
            a = 1.0 / math.sqrt(3.0 * m.weight.data.shape[1])
            m.weight.data[...] = rng.uniform(-a, a, size=m.weight.data.shape)
            if m.bias is not None:
                m.bias.data[...] = 0


class VAEGAN(GenerativeModel):
    name = "vaegan"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 128, "epochs": 59, "dataset": "mnist",
        "variant": "mnist-mlp",
        "latent_dim": 32, "enc_hidden": 1024, "dec_hidden": 2048, "d_hidden": 2048,
        "enc_dropout": 0.5, "d_dropout": 0.25,
        "recon": None,                 # "dis_l" | "pixel" (None: the variant's)
        "dis_layer": 1,                # Dis_l: which hidden layer of D (1 or 2)
        "gamma": 0.025,
        "kl_weight": None,
        "generator_loss": "minimax",   # Algorithm 1 / authors' code; or "nonsaturating"
        "equilibrium": None, "margin": None, "equilibrium_value": None,
        "prior_from_eps": None,
        "lr": 0.075 / 128, "lr_d": 0.075 / 256, "rmsprop_alpha": 0.9, "rmsprop_eps": 1e-8,
        "lr_schedule": "official",     # "official" | "constant"
        "schedule_length": 27500,      # the official schedule's length in steps (scaled runs)
    }
    hyper_types = {"recon": str, "kl_weight": float, "equilibrium": bool, "margin": float,
                   "equilibrium_value": float, "prior_from_eps": bool}

    # -- construction ----------------------------------------------------------------------
    def build(self):
        hp, r = self.hp, self.rng
        if hp["variant"] not in VARIANTS:
            raise ValueError(f"VAEGAN: variant must be one of {VARIANTS}, got {hp['variant']!r}")
        for key, val in VARIANT_DEFAULTS[hp["variant"]].items():
            if hp[key] is None:
                hp[key] = val
        if hp["recon"] not in ("dis_l", "pixel"):
            raise ValueError(f"VAEGAN: recon must be 'dis_l' (the paper's Dis_l likelihood) or "
                             f"'pixel' (Bernoulli, the conditional MNIST script), got "
                             f"{hp['recon']!r}")
        if hp["dis_layer"] not in (1, 2):
            raise ValueError(f"VAEGAN: dis_layer must be 1 or 2 (D's hidden layers), got "
                             f"{hp['dis_layer']!r}")
        if hp["generator_loss"] not in ("minimax", "nonsaturating"):
            raise ValueError(f"VAEGAN: generator_loss must be 'minimax' (Algorithm 1) or "
                             f"'nonsaturating', got {hp['generator_loss']!r}")
        if hp["lr_schedule"] not in ("official", "constant"):
            raise ValueError(f"VAEGAN: lr_schedule must be 'official' or 'constant', got "
                             f"{hp['lr_schedule']!r}")
        if hp["gamma"] < 0 or hp["kl_weight"] < 0 or hp["margin"] < 0:
            raise ValueError(f"VAEGAN: gamma, kl_weight and margin must be >= 0, got "
                             f"{hp['gamma']}, {hp['kl_weight']}, {hp['margin']}")
        self.conditional = hp["variant"] == "cond-mnist"
        c = self.num_classes if self.conditional else 0
        d, k = math.prod(self.data_shape), int(hp["latent_dim"])
        he, hg, hd = int(hp["enc_hidden"]), int(hp["dec_hidden"]), int(hp["d_hidden"])
        cond = self.conditional
        R = self.random          # dropout masks from the model's device stream
        self.encoder = LabelledMLP(
            [nn.Sequential(nn.Linear(d + c, he, rng=r), nn.BatchNorm1d(he), nn.ReLU()),
             nn.Sequential(nn.Dropout(hp["enc_dropout"], rng=R)),
             nn.Sequential(nn.Linear(he + c, he, rng=r), nn.BatchNorm1d(he), nn.ReLU()),
             nn.Sequential(nn.Linear(he, 2 * k, rng=r))],
            [cond, False, cond, False])
        self.decoder = LabelledMLP(     # Bernoulli logits; the model applies the sigmoid
            [nn.Sequential(nn.Linear(k + c, hg, rng=r), nn.BatchNorm1d(hg), nn.ReLU()),
             nn.Sequential(nn.Linear(hg + c, hg, rng=r), nn.BatchNorm1d(hg), nn.ReLU()),
             nn.Sequential(nn.Linear(hg + c, d, rng=r))],
            [cond, cond, cond])
        self.D = LabelledMLP(
            [nn.Sequential(nn.Linear(d + c, hd, rng=r), nn.ReLU()),
             nn.Sequential(nn.Dropout(hp["d_dropout"], rng=R)),
             nn.Sequential(nn.Linear(hd + c, hd, rng=r), nn.BatchNorm1d(hd), nn.ReLU()),
             nn.Sequential(nn.Dropout(hp["d_dropout"], rng=R)),
             nn.Sequential(nn.Linear(hd + c, 1, rng=r))],
            [cond, False, cond, False, cond])
        self.dis_upto = {1: 1, 2: 3}[hp["dis_layer"]]   # blocks of D that make Dis_l
        for net in (self.encoder, self.decoder, self.D):
            _autofill_(net, r)
        head = self.encoder.blocks[3][0]
        head.bias.data[...] = r.normal(0.0, 0.001, size=head.bias.data.shape)

    def build_optimizers(self):
        hp = self.hp

        def make(net, lr):
            return RMSprop(net.parameters(), lr=lr, alpha=hp["rmsprop_alpha"],
                           eps=hp["rmsprop_eps"])
        self.opt_enc = make(self.encoder, hp["lr"])
        self.opt_dec = make(self.decoder, hp["lr"])
        self.opt_D = make(self.D, hp["lr_d"])

    def networks(self):
        return {"encoder": self.encoder, "decoder": self.decoder, "D": self.D}

    def optimizers(self):
        return {"enc": self.opt_enc, "dec": self.opt_dec, "D": self.opt_D}

    # -- schedule ------------------------------------------------------------------------------
    def lr_factor(self, step=None):
        t = self.step if step is None else int(step)
        if self.hp["lr_schedule"] == "constant":
            return 1.0
        scale = self.hp["schedule_length"] / OFFICIAL_LENGTH
        f = 1.0
        for start, factor in OFFICIAL_SCHEDULE:
            if t >= start * scale:
                f = factor
        return f

    def apply_schedule(self):
        f = self.lr_factor()
        self.opt_enc.lr = self.hp["lr"] * f
        self.opt_dec.lr = self.hp["lr"] * f
        self.opt_D.lr = self.hp["lr_d"] * f

    def host_logs(self):
        return {"lr": self.opt_enc.lr} if self.hp["lr_schedule"] != "constant" else {}

    # -- sampling, encoding --------------------------------------------------------------
    def _y1h(self, labels, n):
        if not self.conditional:
            return None
        if labels is None:
            raise ValueError("VAEGAN (variant 'cond-mnist') is conditional: pass labels")
        return self.one_hot(self._check_labels(labels, int(n)))

    def _eval(self, net, x, y1h=None, upto=None):
        was = net.training
        net.eval()
        try:
            with no_grad():
                return net(x, y1h, upto)
        finally:
            net.train(was)

    def sample_noise(self, n, rng=None, labels=None):
        """z ~ N(0, I) (the device stream, or ``rng``); the conditional variant adds labels
        (given, or uniform draws from ``rng`` / the model's generator)."""
        out = {"z": self.draw_normal((int(n), self.hp["latent_dim"]), 1.0, rng)}
        if self.conditional:
            if labels is None:
                labels = self._rng(rng).integers(0, self.num_classes, size=int(n))
            out["labels"] = labels if hasattr(labels, "__cuda_array_interface__") \
                else np.asarray(labels).astype(np.int64)
        return out

    def generate(self, noise):
        """Bernoulli means sigmoid(Dec(z[, y])) in [0, 1], shape (n, *data_shape)."""
        z = self.to_model(noise["z"])
        y1h = self._y1h(noise.get("labels"), z.shape[0])
        return sigmoid(self._eval(self.decoder, z, y1h)).reshape((-1,) + self.data_shape)

    def posterior(self, x, labels=None):
        """(mu, log sigma^2) of q(z|x[, y]) (eval mode, no cache)."""
        x = self.to_model(x)
        h = self._eval(self.encoder, x, self._y1h(labels, x.shape[0]))
        k = self.hp["latent_dim"]
        return h[:, :k], h[:, k:]

    def encode(self, x, labels=None):
        """Posterior means mu(x) (eval, no cache), as ``VAE.encode``; the conditional
        variant needs the labels too."""
        return self.posterior(x, labels)[0]

    def reconstruct(self, x, labels=None):
        """Dec(mu(x)) in [0, 1], x's shape."""
        noise = {"z": self.encode(x, labels)}
        if self.conditional:
            noise["labels"] = labels
        return self.generate(noise)

    def features(self, x, labels=None):
        """Dis_l(x), the features the reconstruction is measured in (eval, no cache)."""
        x = self.to_model(x)
        return self._eval(self.D, x, self._y1h(labels, x.shape[0]), self.dis_upto)

    # -- one step's gradients ------------------------------------------------------------------
    def step_grads(self, x, eps, z_p, y1h=None):
        """Fill every network's .grad (zeroed first) with the gradients of one step of
        Algorithm 1 at the current parameters, and return the losses:
        ``loss_enc`` (= kl_weight L_prior + L_llike, the encoder's), ``loss_dec`` (= gamma
        L_llike + the decoder's GAN term), ``loss_d`` (= C_D), and their parts."""
        hp, xp = self.hp, self.xp
        m, k = x.shape[0], hp["latent_dim"]
        gamma = float(hp["gamma"])
        self.zero_grad()
        xf = x.reshape(m, -1)
        # Enc: q(z|x) and the reparameterised sample
        h = self.encoder(x, y1h)
        mu, logvar = xp.ascontiguousarray(h[:, :k]), xp.ascontiguousarray(h[:, k:])
        std = xp.exp(0.5 * logvar)
        z = mu + std * eps
        # Dec: x~ = Dec(z), the reconstruction term and its gradient w.r.t. the logits
        a = self.decoder(z, y1h)
        if hp["recon"] == "pixel":
            rec, c_rec = L.bernoulli_nll_forward(a, xf)
            da = L.bernoulli_nll_backward(1.0, c_rec)
        else:
            xt, c_sig = sigmoid_forward(a)
            with no_grad():
                f_real = self.D(xf, y1h, self.dis_upto)        # Dis_l(x): the target (data)
            f_fake = self.D(xt, y1h, self.dis_upto)
            diff = f_fake - f_real
            rec = 0.5 * xp.sum(diff * diff) / m                # -log N(Dis_l(x); Dis_l(x~), I)
            with frozen(self.D):                               # D does not learn from L_llike
                dxt = self.D.backward(diff * (1.0 / m))
            da = sigmoid_backward(dxt, c_sig)
        dz = self.decoder.backward(da)
        for p in self.decoder.parameters():                    # gamma * grad_Dec L_llike
            p.grad *= gamma
        # L_prior and the encoder's backward (reparameterisation)
        kl, c_kl = L.gaussian_kl_forward(mu, logvar)
        dmu_kl, dlogvar_kl = L.gaussian_kl_backward(float(hp["kl_weight"]), c_kl)
        dmu = dz + dmu_kl                                      # dz/dmu = 1
        dlogvar = dz * eps * std * 0.5 + dlogvar_kl            # dz/dlog sigma^2 = eps sigma / 2
        self.encoder.backward(xp.concatenate([dmu, dlogvar], axis=1), input_grad=False)
        # GAN pass: fakes [x~; x_p] decoded again, no gradient into z (the encoder)
        zg = xp.concatenate([z, z_p], axis=0)
        yg = None if y1h is None else xp.concatenate([y1h, y1h], axis=0)
        a2 = self.decoder(zg, yg)
        xg, c_sig2 = sigmoid_forward(a2)
        l_real = self.D(x, y1h)
        real_cost, c_r = L.bce_with_logits_forward(l_real, 1.0)      # mean -log D(x)
        self.D.backward(L.bce_with_logits_backward(1.0, c_r), input_grad=False)
        l_fake = self.D(xg, yg)
        fake_cost, c_f = L.bce_with_logits_forward(l_fake, 0.0)      # mean -log(1 - D(x_f))
        if hp["generator_loss"] == "minimax":
            # D descends 2 fake_cost; the decoder descends -2 fake_cost: one backward for both
            dxg = self.D.backward(L.bce_with_logits_backward(2.0, c_f))
            gan_dec = -2.0 * fake_cost
            dxg = -dxg
        else:
            self.D.backward(L.bce_with_logits_backward(2.0, c_f), input_grad=False)
            l_fake2 = self.D(xg, yg)                                  # D held fixed
            gan_dec, c_g = L.generator_nonsaturating_loss_forward(l_fake2)
            with frozen(self.D):
                dxg = self.D.backward(L.generator_nonsaturating_loss_backward(2.0, c_g))
            gan_dec = 2.0 * gan_dec
        self.decoder.backward(sigmoid_backward(dxg, c_sig2), input_grad=False)
        kw = float(hp["kl_weight"])
        return {"loss_enc": kw * kl + rec, "loss_dec": gamma * rec + gan_dec,
                "loss_d": real_cost + 2.0 * fake_cost, "kl": kl, "recon": rec,
                "gan_dec": gan_dec, "real_cost": real_cost, "fake_cost": fake_cost,
                "d_real": mean_sigmoid(l_real), "d_fake": mean_sigmoid(l_fake)}

    def equilibrium_flags(self, real_cost, fake_cost):
        """(update_D, update_Dec) as 0-d boolean device arrays (the authors' rule)."""
        lo = self.hp["equilibrium_value"] - self.hp["margin"]
        hi = self.hp["equilibrium_value"] + self.hp["margin"]
        upd_d = ~((real_cost < lo) | (fake_cost < lo))
        upd_g = ~((real_cost > hi) | (fake_cost > hi))
        neither = ~(upd_d | upd_g)
        return upd_d | neither, upd_g | neither

    def _gated_step(self, opt, flag):
        """``opt.step()``, undone exactly where the device flag is False: parameters and
        optimizer state are saved before and restored with copyto(where=~flag)."""
        if flag is None:
            opt.step()
            return
        xp = self.xp
        saved = [(p.data, p.data.copy()) for p in opt.params]
        fresh = []
        for st in opt.state:
            for key in opt._slots:
                a = st.get(key)
                if a is not None:
                    saved.append((a, a.copy()))
                else:
                    fresh.append((st, key))
        opt.step()
        skip = ~flag
        for dst, old in saved:
            xp.copyto(dst, old, where=skip)
        for st, key in fresh:                     # a slot the step created: zero it back
            a = st.get(key)
            if a is not None:
                xp.copyto(a, xp.zeros_like(a), where=skip)

    def train_step(self, x, y=None):
        """Algorithm 1: X <- minibatch; Z <- Enc(X) (with eps); L_prior; X~ <- Dec(Z);
        L_llike^Dis_l; Z_p <- N(0, I); X_p <- Dec(Z_p); the GAN cost; then Enc, Dec and Dis
        updated from the gradients (Dec's and Dis's skipped by the equilibrium rule when on)."""
        self.apply_schedule()
        x = self._check_x(x)                                          # X <- mini-batch
        m, k = x.shape[0], self.hp["latent_dim"]
        y1h = None
        if self.conditional:
            y1h = self.one_hot(self._check_labels(y, m))
        eps = self.draw_normal((m, k))                                # Z = mu + sigma eps
        z_p = eps if self.hp["prior_from_eps"] else self.draw_normal((m, k))   # Z_p ~ N(0, I)
        logs = self.step_grads(x, eps, z_p, y1h)                      # every loss and gradient
        upd_d = upd_g = None
        if self.hp["equilibrium"]:
            upd_d, upd_g = self.equilibrium_flags(logs["real_cost"], logs["fake_cost"])
            logs["update_d"] = upd_d.astype(self.dtype)
            logs["update_dec"] = upd_g.astype(self.dtype)
        self.opt_enc.step()                                           # theta_Enc
        self._gated_step(self.opt_dec, upd_g)                         # theta_Dec
        self._gated_step(self.opt_D, upd_d)                           # theta_Dis
        self.step += 1
        return logs
