"""BiGAN: bidirectional GAN (Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning").

A generator G: z -> x, a deterministic encoder E: x -> z and a joint discriminator D(x, z)
that tells data pairs (x, E(x)) from generated pairs (G(z), z). The value function

    min_{G,E} max_D V(D, E, G) = E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))]

is optimised with the labels swapped for G and E (the "inverse", non-saturating form of
Goodfellow et al.; the authors' code, jeffdonahue/bigan ``train_gan.py``, trains E and G on
the discriminator's ``opp_loss``), each objective the mean of its two terms as in that code:

    L_D  = 1/2 [ bce(D(x, E(x)), 1) + bce(D(G(z), z), 0) ]          (D descends)
    L_GE = 1/2 [ bce(D(x, E(x)), 0) + bce(D(G(z), z), 1) ]          (G and E descend)

with D = sigmoid(logit) and bce computed from logits. At the start D's last layer is zero, so
every loss reads ln 2 = 0.6931 (the authors' log starts "JD: 0.6932 E: 0.6932 G: 0.6932").

One step (``train_step``), one D update per G/E update:

* ``updates="simultaneous"`` (default; the authors' code, ``update_both``): draw x ~ data and
  z ~ p(z); compute E(x) and G(z) once; D's gradient of L_D and G's and E's gradients of L_GE
  are taken at the same parameters from the same pairs; then all three Adam steps.
* ``updates="alternating"`` (named variant; Goodfellow et al.'s Algorithm 1 with k = 1): a D
  step on (x, z), then a G/E step on fresh z (the same real minibatch x).

Gradients (derivation in docs/derivations/encoders.md): with l = D's logit and s = sigmoid(l),
∂bce(l, t)/∂l = (s − t)/m per example, so for L_GE the data pair sends s/(2m) and the generated
pair (s − 1)/(2m) down D (held fixed). D's backward returns both input gradients (∂l/∂x,
∂l/∂z): the encoder is reached through the z input of the data pair, the generator through
the x input of the generated pair (its z input is the prior sample: a constant).

Networks, ``arch="mnist_mlp"`` (the permutation-invariant MNIST run, ``train_mnist.sh``:
``--encode_net mnist_mlp --discrim_net mnist_mlp --gen_net deconvnet_mnist_mlp --nobias
--nogain``; widths ``hidden`` = 1024 = 16 × the code's default size 64; LeakyReLU 0.2; every
weight N(0, 0.02²) (the code's ``weight_init``), no biases, BatchNorm without scale or shift):

  E: x 784 -> Linear 1024 -> LReLU -> Linear 1024 -> BN -> LReLU -> Linear 50 -> 2 sigmoid(·) - 1
     (the 50-d uniform "u-50" latent: E's linear output a is squashed into [-1, 1] as the code's
     ``logits_to_sample``; ``features(x)`` gives the 1024-d penultimate layer and a)
  G: z 50 -> Linear 1024 -> BN -> ReLU -> [Linear 1024 (h) + Linear 1024 (z)] -> BN -> ReLU ->
     Linear 784 -> sigmoid       (the code feeds z again into the second layer, ``apply_cond``)
  D: [x 784 -> Linear 1024 -> LReLU -> Linear 1024] + [z 50 -> Linear 1024] -> BN -> LReLU ->
     Linear 1, this last layer initialised to 0 (the code's ``BinaryClassifier``, stddev 0)

Optimiser (the code's defaults): Adam lr 2e-4, β1 0.5 (``--momentum``), β2 0.999, L2 weight
decay 2.5e-5 added to every gradient (``Regularizer(l2=...)``), batch 128; ``epochs`` 200 at the
full rate, then ``decay_epochs`` 200 of decay: the code's default decay is **exponential**, per
epoch, to ``final_lr_mult`` = 0.01 × lr (``set_lr``; ``train_mnist.sh`` does not pass
``--linear_decay``), ``lr_decay="linear"`` (to 0) is the named alternative. The schedule is a
function of ``self.step`` through ``steps_per_epoch`` (468 = 60000 // 128).
Named variant ``arch="toy"`` (the default for data of at most 16 values, e.g. grid25): the
same three networks as small MLPs (``toy_hidden`` units, z 2-d uniform, no BatchNorm, library
default init), Adam 1e-3, no decay.
"""
from __future__ import annotations

import math

from .. import nn
from ..init import weights_normal_biases_zero_, zeros_
from ..nn.module import Module, frozen, no_grad
from ..ops import loss as L
from ..ops.activation import sigmoid
from ..optim import Adam
from .base import GenerativeModel, mean_sigmoid
from .nets import JointNet

__all__ = ["SymmetricSigmoid", "SameInput", "BiGAN"]


class SymmetricSigmoid(Module):
    """``y = 2 sigmoid(a) - 1`` (= tanh(a/2)), into (-1, 1); backward ``da = dy (1 - y²)/2``
    (d/da 2σ(a) = 2σ(a)(1 − σ(a)) and (1 − y²)/2 = (1 − (2σ − 1)²)/2 = 2σ(1 − σ))."""

    def forward(self, a):
        y = 2.0 * sigmoid(a) - 1.0
        self._save_cache(y)
        return y

    def backward(self, dy):
        y = self._take_cache()
        return dy * (0.5 * (1.0 - y * y))


class SameInput(Module):
    """``net(z, z)`` for a :class:`JointNet` whose two inputs are the same array (BiGAN's
    generator sees z at its first and second layers); backward sums the two input gradients."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z):
        return self.net(z, z)

    def backward(self, dy, input_grad=True):
        dz1, dz2 = self.net.backward(dy, input_grad=input_grad)
        return None if not input_grad else dz1 + dz2


class BiGAN(GenerativeModel):
    name = "bigan"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    #: the weight of each of the two pair terms in both objectives (authors' code: their mean)
    pair_weight = 0.5
    defaults = {
        "batch_size": 128, "epochs": 400, "dataset": "mnist",
        "arch": "auto",                 # "mnist_mlp" | "toy" | "auto" (toy for <= 16 values)
        "z_dim": None,                  # None: 50 (mnist_mlp) or 2 (toy)
        "hidden": 1024, "toy_hidden": 128, "leak": 0.2,
        "init_std": 0.02,               # N(0, 0.02^2) weights (mnist_mlp)
        "lr": None,                     # None: 2e-4 (mnist_mlp) or 1e-3 (toy)
        "betas": (0.5, 0.999),
        "weight_decay": None,           # None: 2.5e-5 (mnist_mlp) or 0 (toy)
        "updates": "simultaneous",      # authors' code | "alternating"
        "lr_decay": None,               # None: "exponential" (mnist_mlp) or "none" (toy) | "linear"
        "constant_epochs": 200, "decay_epochs": 200, "final_lr_mult": None,
        "steps_per_epoch": 468,         # 60000 // 128: the schedule's epoch length in steps
    }
    hyper_types = {"final_lr_mult": float, "lr_decay": str, "weight_decay": float}

    # -- construction ------------------------------------------------------------------
    def resolve_arch(self):
        arch = self.hp["arch"]
        if arch == "auto":
            arch = "toy" if math.prod(self.data_shape) <= 16 else "mnist_mlp"
        if arch not in ("mnist_mlp", "toy"):
            raise ValueError(f"{type(self).__name__}: arch must be 'mnist_mlp', 'toy' or 'auto', "
                             f"got {self.hp['arch']!r}")
        return arch

    def resolve_common(self):
        hp = self.hp
        self.arch = self.resolve_arch()
        toy = self.arch == "toy"
        if hp["updates"] not in ("simultaneous", "alternating"):
            raise ValueError(f"{type(self).__name__}: updates must be 'simultaneous' (authors' "
                             f"code) or 'alternating', got {hp['updates']!r}")
        if hp["lr"] is None:
            hp["lr"] = 1e-3 if toy else 2e-4
        if hp["weight_decay"] is None:
            hp["weight_decay"] = 0.0 if toy else 2.5e-5
        if hp["lr_decay"] is None:
            hp["lr_decay"] = "none" if toy else "exponential"
        if hp["lr_decay"] not in ("exponential", "linear", "none"):
            raise ValueError(f"{type(self).__name__}: lr_decay must be 'exponential' (authors' "
                             f"code), 'linear' or 'none', got {hp['lr_decay']!r}")
        if hp["final_lr_mult"] is None:
            hp["final_lr_mult"] = 0.0 if hp["lr_decay"] == "linear" else 0.01
        for k in ("steps_per_epoch", "constant_epochs", "decay_epochs"):
            if not isinstance(hp[k], int) or hp[k] < (1 if k == "steps_per_epoch" else 0):
                raise ValueError(f"{type(self).__name__}: {k} must be a non-negative int "
                                 f"(steps_per_epoch >= 1), got {hp[k]!r}")
        if toy:
            self.data_range = None          # toy data are not rescaled; G's output is linear
        return toy

    def build(self):
        hp, r = self.hp, self.rng
        toy = self.resolve_common()
        if hp["z_dim"] is None:
            hp["z_dim"] = 2 if toy else 50
        d, k = math.prod(self.data_shape), hp["z_dim"]
        if toy:
            self.E, self.G, self.D = self.toy_networks(d, k, hp["toy_hidden"], r)
        else:
            self.E, self.G, self.D = self.mnist_mlp_networks(d, k, hp["hidden"], hp["leak"], r)
            for net in (self.E, self.G, self.D):
                weights_normal_biases_zero_(net, hp["init_std"], r)
            zeros_(self.D.trunk[-1].weight)   # the code's BinaryClassifier starts at 0
        # the encoder layer whose output is the penultimate feature (before the last Linear)
        self.feature_layer = len(self.E) - 3

    def mnist_mlp_networks(self, d, k, h, leak, r):
        """(E, G, D) of the authors' permutation-invariant MNIST run (module docstring)."""
        E = nn.Sequential(nn.Flatten(), nn.Linear(d, h, bias=False, rng=r), nn.LeakyReLU(leak),
                          nn.Linear(h, h, bias=False, rng=r), nn.BatchNorm1d(h, affine=False),
                          nn.LeakyReLU(leak), nn.Linear(h, k, bias=False, rng=r),
                          SymmetricSigmoid())
        G = SameInput(JointNet(
            nn.Sequential(nn.Linear(k, h, bias=False, rng=r), nn.BatchNorm1d(h, affine=False),
                          nn.ReLU(), nn.Linear(h, h, bias=False, rng=r)),
            nn.Sequential(nn.Linear(k, h, bias=False, rng=r)),
            nn.Sequential(nn.BatchNorm1d(h, affine=False), nn.ReLU(),
                          nn.Linear(h, d, bias=False, rng=r), nn.Sigmoid(),
                          nn.Reshape(*self.data_shape)),
            join="sum"))
        D = JointNet(
            nn.Sequential(nn.Flatten(), nn.Linear(d, h, bias=False, rng=r), nn.LeakyReLU(leak),
                          nn.Linear(h, h, bias=False, rng=r)),
            nn.Sequential(nn.Linear(k, h, bias=False, rng=r)),
            nn.Sequential(nn.BatchNorm1d(h, affine=False), nn.LeakyReLU(leak),
                          nn.Linear(h, 1, bias=False, rng=r)),
            join="sum")
        return E, G, D

    def toy_networks(self, d, k, h, r):
        """(E, G, D) as small MLPs for 2-D data: ReLU E (squashed to [-1, 1]) and G (linear
        output), D = LReLU(W x + V z) -> LReLU -> logit."""
        E = nn.Sequential(nn.Flatten(), nn.Linear(d, h, rng=r), nn.ReLU(), nn.Linear(h, h, rng=r),
                          nn.ReLU(), nn.Linear(h, k, rng=r), SymmetricSigmoid())
        G = nn.Sequential(nn.Linear(k, h, rng=r), nn.ReLU(), nn.Linear(h, h, rng=r), nn.ReLU(),
                          nn.Linear(h, d, rng=r), nn.Reshape(*self.data_shape))
        D = JointNet(nn.Sequential(nn.Flatten(), nn.Linear(d, h, rng=r)),
                     nn.Sequential(nn.Linear(k, h, bias=False, rng=r)),
                     nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(h, h, rng=r), nn.LeakyReLU(0.2),
                                   nn.Linear(h, 1, rng=r)),
                     join="sum")
        return E, G, D

    def build_optimizers(self):
        hp = self.hp

        def adam(net):
            return Adam(net.parameters(), lr=hp["lr"], betas=tuple(hp["betas"]),
                        weight_decay=hp["weight_decay"])
        self.opt_D, self.opt_G, self.opt_E = adam(self.D), adam(self.G), adam(self.E)

    def networks(self):
        return {"E": self.E, "G": self.G, "D": self.D}

    def optimizers(self):
        return {"D": self.opt_D, "G": self.opt_G, "E": self.opt_E}

    def ge_optimizers(self):
        """The optimizers of the networks that descend L_GE."""
        return [self.opt_G, self.opt_E]

    # -- schedule (the authors' set_lr, per epoch) --------------------------------------
    def schedule(self, step=None):
        """The learning rate of the update numbered ``step``: lr for ``constant_epochs``, then
        ``decay_epochs`` of exponential (log-linear to final_lr_mult × lr, the code's default)
        or linear decay (to final_lr_mult × lr); epoch = step // steps_per_epoch."""
        hp = self.hp
        t = self.step if step is None else step
        epoch = t // hp["steps_per_epoch"]
        lr, n0, n1 = hp["lr"], hp["constant_epochs"], hp["decay_epochs"]
        if hp["lr_decay"] == "none" or epoch < n0 or n1 == 0:
            return lr
        final = hp["final_lr_mult"] * lr
        if hp["lr_decay"] == "linear":
            frac = min(1.0, (epoch - n0) / n1)
            return lr + frac * (final - lr)
        frac = min(1.0, (epoch - n0 + 1) / n1)
        return math.exp(math.log(lr) + frac * (math.log(final) - math.log(lr)))

    def apply_schedule(self):
        lr = self.schedule()
        for opt in self.optimizers().values():
            opt.lr = lr

    def host_logs(self):
        return {"lr": self.opt_D.lr} if self.hp["lr_decay"] != "none" else {}

    # -- prior, generation, encoding --------------------------------------------------------
    def sample_noise(self, n, rng=None, labels=None):
        """z ~ U[-1, 1]^z_dim (the code's "u-50"): the device stream, or ``rng`` on the host."""
        return {"z": self.draw_uniform((int(n), self.hp["z_dim"]), -1.0, 1.0, rng)}

    def generate(self, noise):
        """G(z) in the data range, shape (n, *data_shape); eval mode, no cache."""
        return self._eval_forward(self.G, self.to_model(noise["z"]))

    def encode(self, x):
        """E(x) (eval mode, no cache): a code of the prior's form, ``generate({"z": E(x)})``."""
        return self._eval_forward(self.E, self.to_model(x))

    def reconstruct(self, x):
        """G(E(x))."""
        return self.generate({"z": self.encode(x)})

    def features(self, x):
        """``{"penultimate": h, "output": a}`` (eval, no cache): the encoder's last hidden layer
        (after its activation) and its linear output before the squashing (the authors'
        ``NNC_e-`` and ``NNC_e`` features)."""
        was = self.E.training
        self.E.eval()
        h = self.to_model(x)
        out = {}
        try:
            with no_grad():
                for i, layer in enumerate(self.E):
                    if isinstance(layer, (SymmetricSigmoid,)):
                        break
                    h = layer(h)
                    if i == self.feature_layer:
                        out["penultimate"] = h
        finally:
            self.E.train(was)
        out["output"] = h
        return out

    # -- the encoder's sample and its backward (ALI overrides these) ----------------------
    def encoder_forward(self, x, eps=None):
        """ẑ = E(x), with the forward cache kept for :meth:`encoder_backward`."""
        return self.E(x)

    def encoder_backward(self, dz):
        self.E.backward(dz, input_grad=False)

    def draw_encoder_noise(self, m):
        """The noise E's sample needs (none: E is deterministic)."""
        return None

    # -- the two objectives' gradients (no optimizer step) ---------------------------------
    def _pair_terms(self, lq, lp, targets):
        """bce of the data-pair logits ``lq`` and generated-pair logits ``lp`` against
        ``targets`` = (t_q, t_p): the value and the two upstream gradients dl."""
        w = self.pair_weight
        a, ca = L.bce_with_logits_forward(lq, targets[0])
        dq = L.bce_with_logits_backward(w, ca)
        b, cb = L.bce_with_logits_forward(lp, targets[1])
        dp = L.bce_with_logits_backward(w, cb)
        return w * (a + b), dq, dp

    def d_forward(self, x, z):
        """D's logit of the pair (x, z)."""
        return self.D(x, z)

    def d_backward(self, dl, input_grad=True):
        """Back through D: (d/dx, d/dz) (None, None with ``input_grad=False``)."""
        return self.D.backward(dl, input_grad=input_grad)

    def _d_pass(self, x, zq, xg, z):
        """Fill D's .grad with ∇ L_D at the pairs (x, ẑ) and (x̃, z) (inputs are constants)."""
        w = self.pair_weight
        lq = self.d_forward(x, zq)                                   # ρ_q = D(x, ẑ)
        a, c = L.bce_with_logits_forward(lq, 1.0)
        self.d_backward(L.bce_with_logits_backward(w, c), input_grad=False)
        lp = self.d_forward(xg, z)                                   # ρ_p = D(x̃, z)
        b, c = L.bce_with_logits_forward(lp, 0.0)
        self.d_backward(L.bce_with_logits_backward(w, c), input_grad=False)
        return {"loss_d": w * (a + b), "d_data": mean_sigmoid(lq), "d_gen": mean_sigmoid(lp)}

    def _ge_pass(self, x, zq, xg, z):
        """L_GE through D held fixed (labels swapped): returns (logs, dL/dẑ, dL/dx̃)."""
        w = self.pair_weight
        total, dzq = 0.0, None
        with frozen(self.D):
            if zq is not None:                                       # the data pair (x, ẑ)
                lq = self.d_forward(x, zq)
                a, c = L.bce_with_logits_forward(lq, 0.0)
                _, dzq = self.d_backward(L.bce_with_logits_backward(w, c))
                total = a
            lp = self.d_forward(xg, z)                               # the generated pair
            b, c = L.bce_with_logits_forward(lp, 1.0)
            dxg, _ = self.d_backward(L.bce_with_logits_backward(w, c))
        return {"loss_ge": w * (total + b)}, dzq, dxg

    def discriminator_grads(self, x, noise, eps=None):
        """Fill D's .grad with ∇_D L_D; E(x) and G(z) are computed without gradients."""
        x = self.to_model(x)
        with no_grad():
            zq = self.encoder_forward(x, eps)
            xg = self.G(noise["z"])
        return self._d_pass(x, zq, xg, noise["z"])

    def generator_encoder_grads(self, x, noise, eps=None):
        """Fill G's and E's .grad with ∇ L_GE (non-saturating, labels swapped), D held fixed."""
        x = self.to_model(x)
        zq = self.encoder_forward(x, eps)
        xg = self.G(noise["z"])
        logs, dzq, dxg = self._ge_pass(x, zq, xg, noise["z"])
        self.G.backward(dxg, input_grad=False)
        if dzq is not None:
            self.encoder_backward(dzq)
        return logs

    def joint_grads(self, x, noise, eps=None):
        """Both objectives at the same parameters and the same pairs (one forward of E and G):
        D's .grad gets ∇ L_D, G's and E's .grad get ∇ L_GE."""
        x = self.to_model(x)
        zq = self.encoder_forward(x, eps)                     # ẑ = E(x)   (cache kept)
        xg = self.G(noise["z"])                               # x̃ = G(z)   (cache kept)
        logs = self._d_pass(x, zq, xg, noise["z"])            # ∇_D L_D, pairs held fixed
        more, dzq, dxg = self._ge_pass(x, zq, xg, noise["z"])  # L_GE through D held fixed
        self.G.backward(dxg, input_grad=False)
        if dzq is not None:
            self.encoder_backward(dzq)
        logs.update(more)
        return logs

    # -- one step -------------------------------------------------------------------------------
    def train_step(self, x, y=None):
        """One update of D and one of G and E (module docstring)."""
        self.apply_schedule()
        x = self._check_x(x)                                  # x ~ p_data (a minibatch)
        m = x.shape[0]
        noise = self.sample_noise(m)                          # z ~ p(z)
        eps = self.draw_encoder_noise(m)                      # the encoder's noise (ALI)
        if self.hp["updates"] == "simultaneous":
            self.opt_D.zero_grad()
            for opt in self.ge_optimizers():
                opt.zero_grad()
            logs = self.joint_grads(x, noise, eps)
            self.opt_D.step()                                 # θ_D ← Adam(∇ L_D)
            for opt in self.ge_optimizers():                  # θ_G, θ_E ← Adam(∇ L_GE)
                opt.step()
        else:
            self.opt_D.zero_grad()
            logs = self.discriminator_grads(x, noise, eps)
            self.opt_D.step()
            noise = self.sample_noise(m)                      # fresh z for the G/E step
            eps = self.draw_encoder_noise(m)
            for opt in self.ge_optimizers():
                opt.zero_grad()
            logs.update(self.generator_encoder_grads(x, noise, eps))
            for opt in self.ge_optimizers():
                opt.step()
        self.step += 1
        return logs
