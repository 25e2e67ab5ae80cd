"""ALI: adversarially learned inference (Dumoulin, Belghazi, Poole, Mastropietro, Lamb,
Arjovsky & Courville 2017).

BiGAN's game (D(x, z) tells encoder pairs (x, ẑ) from decoder pairs (x̃, z)) with a
*stochastic* encoder q(z|x) = N(μ(x), σ(x)² I), sampled by the reparametrisation (Sec. 2)

    ẑ = μ(x) + σ(x) ⊙ ε,   ε ~ N(0, I),   σ = exp(log σ)     (the encoder outputs [μ, log σ])

and the prior p(z) = N(0, I). Algorithm 1 of the paper, one ``train_step``:

    x^(1..M) ~ q(x);  z^(1..M) ~ p(z)                       minibatch and prior samples
    ẑ^(i) ~ q(z | x^(i));  x̃^(j) ~ p(x | z^(j))             ε drawn here; x̃ = G(z)
    ρ_q = D(x, ẑ);  ρ_p = D(x̃, z)
    L_d = −mean log ρ_q − mean log(1 − ρ_p)                   = bce(ρ_q, 1) + bce(ρ_p, 0)
    L_g = −mean log(1 − ρ_q) − mean log ρ_p                   = bce(ρ_q, 0) + bce(ρ_p, 1)
    θ_d ← θ_d − ∇L_d;  θ_g ← θ_g − ∇L_g                      both gradients at the same point

L_g is the paper's non-saturating generator value (the labels swapped). Both updates are
taken from the same predictions (``updates="simultaneous"``: the official ``ali_algorithm``
differentiates both losses of one graph); ``updates="alternating"`` is a named variant.

Gradient through the sample (derivation in docs/derivations/encoders.md): ẑ_j = μ_j + e^{s_j} ε_j
with s = log σ, so ∂ẑ_j/∂μ_j = 1 and ∂ẑ_j/∂s_j = e^{s_j} ε_j = σ_j ε_j; given g = ∂L_g/∂ẑ
(D's backward into its z input, D held fixed) the encoder's output receives
dμ = g and d log σ = g ⊙ σ ⊙ ε, concatenated in the encoder's output order.

Networks:

* ``arch="mixture"`` (named variant; the default for data of at most 16 values, i.e. the
  25-Gaussian experiment, official ``experiments/ali_mixture.py``): z 2-d;
  encoder x 2 -> [Linear 400 (no bias) -> BN -> ReLU] × 2 -> Linear 2·2 (μ, log σ);
  decoder z -> [Linear 400 (no bias) -> BN -> ReLU] × 4 -> Linear 2; D concat(x, z) 4 ->
  [maxout 200 × 5 pieces] × 3 -> Linear 1; every weight N(0, 0.02²) (``init_std``), biases 0;
  Adam lr 1e-4, β1 0.8; batch 100; 200 epochs of the 100,000 points; BatchNorm running
  averages with momentum 0.05. The official script's encoder takes noise as an extra input
  (x and ε concatenated); here it is the paper's Gaussian q(z|x) above.
* ``arch="mlp"`` (images): BiGAN's permutation-invariant MNIST networks (bigan.py) with a
  Gaussian encoder head (Linear 1024 -> 2·z_dim) and z 50-d N(0, I); Adam 2e-4, β1 0.5. The
  paper's image networks are convolutional nets for SVHN/CIFAR-10/CelebA (not available
  offline): this is our choice, named so.

Named variant ``joint=False``: the paper's GAN baseline of the same experiment ("decoder and
discriminator architectures identical between ALI and GAN, except for the input of the
discriminator"): D sees x only (maxout on 2 inputs), no encoder; the same Algorithm 1 steps
with the data term bce(D(x), 1) in L_d and L_g = bce(D(x̃), 1).

``encode(x)`` returns the posterior mean μ(x) (``encode_sample`` draws ẑ); ``generate`` maps
prior samples through the decoder G.
"""
from __future__ import annotations

import math

from .. import nn
from ..nn import Maxout
from ..nn.module import no_grad
from ..init import weights_normal_biases_zero_
from .bigan import BiGAN
from .nets import JointNet

__all__ = ["ALI"]


class ALI(BiGAN):
    name = "ali"
    data_range = (0.0, 1.0)
    default_dataset = "grid25"
    conditional = False
    pair_weight = 1.0              # Algorithm 1: the sum of the two means
    defaults = {
        "batch_size": 100, "epochs": 200, "dataset": "grid25",
        "arch": "auto",            # "mixture" (<= 16 values) | "mlp" (images) | "auto"
        "z_dim": None,             # None: 2 (mixture) or 50 (mlp)
        "gen_hidden": 400, "disc_hidden": 200, "maxout_pieces": 5,
        "hidden": 1024, "leak": 0.2,
        "init_std": 0.02,
        "lr": None,                # None: 1e-4 (mixture) or 2e-4 (mlp)
        "beta1": None,             # None: 0.8 (mixture) or 0.5 (mlp); Adam's beta2 is 0.999
        "weight_decay": 0.0,
        "bn_momentum": 0.05,
        "updates": "simultaneous",
        "joint": True,             # False: the paper's GAN baseline (D(x), no encoder)
    }
    hyper_types = {"beta1": float, "lr": float, "z_dim": int}

    def resolve_arch(self):
        arch = self.hp["arch"]
        if arch == "auto":
            arch = "mixture" if math.prod(self.data_shape) <= 16 else "mlp"
        if arch not in ("mixture", "mlp"):
            raise ValueError(f"ALI: arch must be 'mixture', 'mlp' or 'auto', got "
                             f"{self.hp['arch']!r}")
        return arch

    def build(self):
        hp, r = self.hp, self.rng
        self.arch = self.resolve_arch()
        mix = self.arch == "mixture"
        if hp["updates"] not in ("simultaneous", "alternating"):
            raise ValueError(f"ALI: updates must be 'simultaneous' (Algorithm 1) or "
                             f"'alternating', got {hp['updates']!r}")
        if hp["z_dim"] is None:
            hp["z_dim"] = 2 if mix else 50
        if hp["lr"] is None:
            hp["lr"] = 1e-4 if mix else 2e-4
        if hp["beta1"] is None:
            hp["beta1"] = 0.8 if mix else 0.5
        if len(self.data_shape) == 1:
            self.data_range = None               # flat toy data: linear decoder output
        self.joint = bool(hp["joint"])
        self.has_encoder = self.joint              # the GAN baseline has none (the CLI asks)
        d, k = math.prod(self.data_shape), hp["z_dim"]
        if mix:
            self.E, self.G, self.D = self.mixture_networks(d, k, r)
        else:
            E, self.G, self.D = self.mnist_mlp_networks(d, k, hp["hidden"], hp["leak"], r)
            # BiGAN's encoder with a Gaussian head: ... -> Linear 2k ([μ, log σ]), no squashing
            self.E = nn.Sequential(*list(E)[:-2], nn.Linear(hp["hidden"], 2 * k, rng=r))
            if not self.joint:
                self.D = nn.Sequential(*list(self.D.x_branch), *list(self.D.trunk))
        for net in (self.E, self.G, self.D):
            weights_normal_biases_zero_(net, hp["init_std"], r)
        for m in list(self.E.modules()) + list(self.G.modules()):
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = float(hp["bn_momentum"])
        self.feature_layer = len(self.E) - 2
        if not self.joint:
            self.E = None

    def mixture_networks(self, d, k, r):
        """(E, G, D) of the official 25-Gaussian script (module docstring)."""
        h, u, p = self.hp["gen_hidden"], self.hp["disc_hidden"], self.hp["maxout_pieces"]

        def bn_relu_stack(n_in, n_layers):
            layers, width = [], n_in
            for _ in range(n_layers):
                layers += [nn.Linear(width, h, bias=False, rng=r), nn.BatchNorm1d(h), nn.ReLU()]
                width = h
            return layers

        E = nn.Sequential(nn.Flatten(), *bn_relu_stack(d, 2), nn.Linear(h, 2 * k, rng=r))
        G = nn.Sequential(*bn_relu_stack(k, 4), nn.Linear(h, d, rng=r),
                          nn.Reshape(*self.data_shape))
        trunk_in = d + k if self.joint else d
        trunk = nn.Sequential(Maxout(trunk_in, u, p, rng=r), Maxout(u, u, p, rng=r),
                              Maxout(u, u, p, rng=r), nn.Linear(u, 1, rng=r))
        if self.joint:
            D = JointNet(nn.Sequential(nn.Flatten()), nn.Sequential(), trunk, join="concat")
        else:
            D = nn.Sequential(nn.Flatten(), *trunk)
        return E, G, D

    def build_optimizers(self):
        hp = self.hp
        from ..optim import Adam

        def adam(net):
            return Adam(net.parameters(), lr=hp["lr"], betas=(hp["beta1"], 0.999),
                        weight_decay=hp["weight_decay"])
        self.opt_D, self.opt_G = adam(self.D), adam(self.G)
        self.opt_E = adam(self.E) if self.joint else None

    def networks(self):
        nets = {"E": self.E, "G": self.G, "D": self.D}
        return {k: v for k, v in nets.items() if v is not None}

    def optimizers(self):
        opts = {"D": self.opt_D, "G": self.opt_G, "E": self.opt_E}
        return {k: v for k, v in opts.items() if v is not None}

    def ge_optimizers(self):
        return [self.opt_G, self.opt_E] if self.joint else [self.opt_G]

    # -- no schedule: Adam at a constant rate ----------------------------------------------
    def schedule(self, step=None):
        return self.hp["lr"]

    def host_logs(self):
        return {}

    # -- prior, generation, encoding ------------------------------------------------------------
    def sample_noise(self, n, rng=None, labels=None):
        """z ~ N(0, I): the device stream, or ``rng`` on the host."""
        return {"z": self.draw_normal((int(n), self.hp["z_dim"]), 1.0, rng)}

    def _need_encoder(self, what):
        if not self.joint:
            raise ValueError(f"ALI: {what} needs the encoder; this model is the GAN baseline "
                             f"(joint=False) and has none")

    def posterior(self, x):
        """(μ, log σ) of q(z|x) (eval mode, no cache)."""
        self._need_encoder("posterior")
        h = self._eval_forward(self.E, self.to_model(x))
        k = self.hp["z_dim"]
        return h[:, :k], h[:, k:]

    def encode(self, x):
        """The posterior mean μ(x): a code of the prior's form (``generate({"z": ...})``)."""
        return self.posterior(x)[0]

    def encode_sample(self, x, rng=None):
        """ẑ = μ(x) + σ(x) ε, ε from ``rng`` (host) or the device stream."""
        mu, logsig = self.posterior(x)
        eps = self.draw_normal(tuple(mu.shape), 1.0, rng)
        return mu + self.xp.exp(logsig) * eps

    def features(self, x):
        self._need_encoder("features")
        was = self.E.training
        self.E.eval()
        h, out = self.to_model(x), {}
        try:
            with no_grad():
                for i, layer in enumerate(self.E):
                    h = layer(h)
                    if i == self.feature_layer:
                        out["penultimate"] = h
        finally:
            self.E.train(was)
        out["output"] = h[:, :self.hp["z_dim"]]
        return out

    # -- the stochastic encoder ----------------------------------------------------------------
    def draw_encoder_noise(self, m):
        """ε ~ N(0, I) of the reparametrised sample (device stream)."""
        return self.draw_normal((int(m), self.hp["z_dim"])) if self.joint else None

    def encoder_forward(self, x, eps=None):
        """ẑ = μ(x) + exp(log σ(x)) ⊙ ε (the encoder's cache kept for the backward)."""
        if not self.joint:
            return None
        if eps is None:
            raise ValueError("ALI: the encoder's sample needs its noise eps (m, z_dim)")
        xp, k = self.xp, self.hp["z_dim"]
        h = self.E(x)
        mu, logsig = xp.ascontiguousarray(h[:, :k]), xp.ascontiguousarray(h[:, k:])
        sigma = xp.exp(logsig)
        eps = self.to_model(eps)
        self._sample_cache = (eps, sigma)
        return mu + sigma * eps

    def encoder_backward(self, dz):
        """dμ = dẑ, d log σ = dẑ ⊙ σ ⊙ ε, back through the encoder."""
        eps, sigma = self._sample_cache
        self._sample_cache = None
        self.E.backward(self.xp.concatenate([dz, dz * sigma * eps], axis=1), input_grad=False)

    # -- D of the GAN baseline sees x only ------------------------------------------------------
    def d_forward(self, x, z):
        return self.D(x, z) if self.joint else self.D(x)

    def d_backward(self, dl, input_grad=True):
        if self.joint:
            return self.D.backward(dl, input_grad=input_grad)
        return self.D.backward(dl, input_grad=input_grad), None
