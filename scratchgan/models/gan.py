"""GAN (Goodfellow et al. 2014): Algorithm 1 with the paper's MNIST networks.

Value function (eq. 1):
    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

D outputs a logit l, D(x) = sigmoid(l); every loss is computed from logits
(``scratchgan.ops.loss``). D ascends V, i.e. descends
``bce(D(x), 1) + bce(D(G(z)), 0)``; G descends one of
``minimax``       mean log(1 - D(G(z)))            (eq. 1 itself)
``nonsaturating`` mean -log D(G(z))                (paper, Sec. 3: used in practice; default)
``logratio``      mean -log(D / (1 - D)) = -mean l (named variant)

Networks (paper's MNIST setup, goodfeli/adversarial mnist.yaml), ``arch="paper"``:
  G: z 100-d ~ U[-sqrt3, sqrt3] -> ReLU 1200 -> ReLU 1200 -> sigmoid 784, weights U(+-0.05)
  D: dropout(keep .8) -> maxout 240x5 -> dropout(.5) -> maxout 240x5 -> dropout(.5) -> sigmoid,
     weights U(+-0.005)
Named variant ``arch="toy"`` (the default for 2-D data such as ring8): the paper's networks
scaled down: G z 16-d ~ U[-sqrt3, sqrt3] -> ReLU 64 -> ReLU 64 -> linear d; D maxout 64x5 ->
dropout(.5) -> maxout 64x5 -> dropout(.5) -> logit (no input dropout: dropping one of two
coordinates destroys the point); PyTorch-style init; trained with Adam
(``optimizer="adam"``, lr 1e-3, beta1 0.5), which reaches the ring's modes in a few thousand
steps where SGD needs far more. ``arch="auto"`` picks toy when the data has at most 16
values per example.

Noise (``noise``): ``"uniform"`` U[-sqrt3, sqrt3] (unit variance, the default) or
``"gaussian"`` N(0, 1) (named variant). The authors' code (goodfeli/adversarial) draws
N(0, 1) when a configuration names no noise, but its MNIST configuration names 'uniform':
in the first commit (600ee5c, 2014-06-09, "Copy the code and hyperparameters from
galatea", the code behind the paper) and at the last (f77a509, 2014-06-18, "uniform noise
turned out to be ok"); only the commit between them (068bb03) left it out. The
reproduction runs measure both.

Optimizer (``optimizer="sgd"``, paper): SGD with momentum; lr 0.1 decayed per update by
1/1.000004 down to 1e-6; momentum 0.5 rising linearly to 0.7 by step 125000
(= 250 epochs of 500 updates). Both schedules are functions of ``self.step``.

Two update rules (``variant``):

``"algorithm1"`` (default): the paper's Algorithm 1 as its text describes it: k D updates
    on ``bce(D(x),1) + bce(D(G(z)),0)``, then one G update on fresh noise.
``"official"``: what goodfeli/adversarial (AdversaryCost2, mnist.yaml) ran for Table 1:
    * one shared forward: the same samples S = G(z) and the same dropout masks on the fake
      pass feed both objectives;
    * d_obj = 0.5 (bce(D(x),1) + bce(D(S),0)), g_obj = bce(D(S),1) (non-saturating);
    * both gradients are taken at the same parameters and applied in one simultaneous SGD
      update (no alternation);
    * G's output (sigmoid) bias starts at the logit of each pixel's training mean
      (``init_from_data``, called by the trainer before the first step);
    * momentum changes once per epoch (pylearn2's MomentumAdjustor counts monitor calls:
      one before training, one after each epoch): during epoch e = 1, 2, ... it is
      0.5 + 0.2 min(1, max(0, (e - start) / (saturate - start))) with start 1 and saturate
      250, epochs of ``steps_per_epoch`` (500) updates; the lr decays per update as above;
    * pylearn2's momentum keeps the step in its velocity (v <- mu v - lr g, theta += v) where
      ours keeps the gradient (b <- mu b + g, theta -= lr b): the same updates at a fixed lr;
      with the lr decaying by 4e-6 per update they differ by less than 1e-5 relatively;
    * training set train[0:50000] (``scratchgan train gan --set variant=official --limit
      50000``; the gan-official and gan-alternating studies train on train[0:50000], since
      the Parzen width is chosen on train[50000:51000]).
    A layer keeps one cache per forward, so the fake pass runs through D twice with the
    device random stream rewound in between (``Philox.mark``/``rewind``): the same masks, the
    same logits, so the same values as one shared forward; it costs one extra D forward.
"""
from __future__ import annotations

import math

from .. import nn
from ..nn import Maxout
from ..init import init_uniform_
from ..nn.module import frozen, no_grad
from ..ops import loss as L
from ..optim import SGD, Adam
from .base import GenerativeModel, mean_sigmoid

__all__ = ["GAN"]


class GAN(GenerativeModel):
    name = "gan"
    data_range = (0.0, 1.0)
    default_dataset = "ring8"
    conditional = False
    defaults = {
        "batch_size": 100, "epochs": 100, "dataset": "ring8",
        "arch": "auto",                 # "paper" (maxout MLP) | "toy" (small ReLU MLP) | "auto"
        "k": 1,                         # Algorithm 1: discriminator steps per generator step
        "generator_loss": "nonsaturating",
        "z_dim": None,                  # None: 100 (paper) or 16 (toy)
        "g_hidden": 1200, "d_units": 240, "d_pieces": 5,
        "toy_hidden": 64, "toy_units": 64,
        "dropout_input": 0.2, "dropout_hidden": 0.5,   # drop probabilities (keep .8 / .5)
        "g_irange": 0.05, "d_irange": 0.005,
        "optimizer": None,              # None: "sgd" (paper) or "adam" (toy)
        "lr": None,                     # None: 0.1 (sgd) or 1e-3 (adam)
        "lr_decay": 1.000004, "min_lr": 1e-6,
        "momentum": 0.5, "final_momentum": 0.7, "momentum_saturate_step": 125000,
        "betas": (0.5, 0.999),
        "noise": "uniform",             # "uniform" U[-sqrt3, sqrt3] (mnist.yaml) | "gaussian" N(0, 1)
        "variant": "algorithm1",        # "algorithm1" (paper text) | "official" (Table 1's code)
        "momentum_start": 1, "momentum_saturate": 250, "steps_per_epoch": 500,  # official only
        "marginal_eps": 1e-7,           # official: clip of the pixel means before the logit
    }

    # -- construction ------------------------------------------------------------
    def resolve_arch(self):
        arch = self.hp["arch"]
        if arch == "auto":
            arch = "toy" if math.prod(self.data_shape) <= 16 else "paper"
        if arch not in ("paper", "toy"):
            raise ValueError(f"{type(self).__name__}: arch must be 'paper', 'toy' or 'auto', got "
                             f"{self.hp['arch']!r}")
        return arch

    def build(self):
        hp = self.hp
        L.get_generator_loss(hp["generator_loss"])  # validates the name
        if not isinstance(hp["k"], int) or hp["k"] < 1:
            raise ValueError(f"GAN: k (discriminator steps per generator step) must be an int >= 1, "
                             f"got {hp['k']!r}")
        if hp["noise"] not in ("gaussian", "uniform"):
            raise ValueError(f"GAN: noise must be 'uniform' (U[-sqrt3, sqrt3], mnist.yaml) or "
                             f"'gaussian' (N(0, 1)), got {hp['noise']!r}")
        if hp["variant"] not in ("algorithm1", "official"):
            raise ValueError(f"GAN: variant must be 'algorithm1' (the paper's Algorithm 1) or "
                             f"'official' (the code behind Table 1), got {hp['variant']!r}")
        if hp["variant"] == "official" and (hp["k"] != 1 or
                                            hp["generator_loss"] != "nonsaturating"):
            raise ValueError("GAN: variant='official' takes one shared forward per update (k=1) "
                             "and the non-saturating generator loss; got "
                             f"k={hp['k']!r}, generator_loss={hp['generator_loss']!r}")
        if hp["variant"] == "official" and not (
                isinstance(hp["steps_per_epoch"], int) and hp["steps_per_epoch"] > 0
                and 0 <= hp["momentum_start"] < hp["momentum_saturate"]):
            raise ValueError("GAN: variant='official' needs steps_per_epoch > 0 and "
                             "0 <= momentum_start < momentum_saturate (epochs), got "
                             f"{hp['steps_per_epoch']!r}, {hp['momentum_start']!r}, "
                             f"{hp['momentum_saturate']!r}")
        self.arch = self.resolve_arch()
        toy = self.arch == "toy"
        if hp["z_dim"] is None:
            hp["z_dim"] = 16 if toy else 100
        if hp["optimizer"] is None:
            hp["optimizer"] = "adam" if toy else "sgd"
        if hp["optimizer"] not in ("sgd", "adam"):
            raise ValueError(f"GAN: optimizer must be 'sgd' (paper) or 'adam', got {hp['optimizer']!r}")
        if hp["lr"] is None:
            hp["lr"] = 1e-3 if hp["optimizer"] == "adam" else 0.1
        if toy:
            self.data_range = None  # toy data is not rescaled; G's output is linear
        d, r, z = math.prod(self.data_shape), self.rng, hp["z_dim"]
        rd = self.random             # dropout masks are drawn on the device
        if toy:
            h, u, p = hp["toy_hidden"], hp["toy_units"], hp["d_pieces"]
            self.G = nn.Sequential(nn.Linear(z, h, rng=r), nn.ReLU(), nn.Linear(h, h, rng=r),
                                   nn.ReLU(), nn.Linear(h, d, rng=r), nn.Reshape(*self.data_shape))
            self.D = nn.Sequential(nn.Flatten(), Maxout(d, u, p, rng=r),
                                   nn.Dropout(hp["dropout_hidden"], rng=rd), Maxout(u, u, p, rng=r),
                                   nn.Dropout(hp["dropout_hidden"], rng=rd), nn.Linear(u, 1, rng=r))
        else:
            gh, u, p = hp["g_hidden"], hp["d_units"], hp["d_pieces"]
            self.G = nn.Sequential(nn.Linear(z, gh, rng=r), nn.ReLU(), nn.Linear(gh, gh, rng=r),
                                   nn.ReLU(), nn.Linear(gh, d, rng=r), nn.Sigmoid(),
                                   nn.Reshape(*self.data_shape))
            self.D = nn.Sequential(nn.Flatten(), nn.Dropout(hp["dropout_input"], rng=rd),
                                   Maxout(d, u, p, rng=r), nn.Dropout(hp["dropout_hidden"], rng=rd),
                                   Maxout(u, u, p, rng=r), nn.Dropout(hp["dropout_hidden"], rng=rd),
                                   nn.Linear(u, 1, rng=r))
            init_uniform_(self.G, hp["g_irange"], r)
            init_uniform_(self.D, hp["d_irange"], r)

    def build_optimizers(self):
        self.opt_G, self.opt_D = self._make_opt(self.G), self._make_opt(self.D)

    def _make_opt(self, net):
        hp = self.hp
        if hp["optimizer"] == "adam":
            return Adam(net.parameters(), lr=hp["lr"], betas=tuple(hp["betas"]))
        return SGD(net.parameters(), lr=hp["lr"], momentum=hp["momentum"])

    def networks(self):
        return {"G": self.G, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def batches_per_step(self):
        return self.hp["k"]

    # -- schedules (pylearn2 ExponentialDecay and MomentumAdjustor, per update) ---
    def schedule(self, step=None):
        """(lr, momentum) for the update numbered ``step`` (SGD only)."""
        hp = self.hp
        t = self.step if step is None else step
        lr = max(hp["lr"] * math.exp(-t * math.log(hp["lr_decay"])), hp["min_lr"])
        if hp.get("variant") == "official":
            # per epoch e = 1, 2, ...: 0.5 up to epoch `start`, linear to 0.7 at `saturate`
            epoch = t // hp["steps_per_epoch"] + 1
            a, b = hp["momentum_start"], hp["momentum_saturate"]
            frac = min(1.0, max(0.0, (epoch - a) / (b - a)))
        else:
            frac = (min(1.0, t / hp["momentum_saturate_step"])
                    if hp["momentum_saturate_step"] > 0 else 1.0)
        mom = hp["momentum"] + (hp["final_momentum"] - hp["momentum"]) * frac
        return lr, mom

    def apply_schedule(self):
        if self.hp.get("optimizer") != "sgd":
            return
        lr, mom = self.schedule()
        for opt in self.optimizers().values():
            opt.lr, opt.momentum = lr, mom

    # -- noise -----------------------------------------------------------------------
    def sample_noise(self, n, rng=None, labels=None):
        """z ~ U[-sqrt3, sqrt3]^z_dim (``noise="uniform"``, unit variance) or N(0, 1)^z_dim
        (``"gaussian"``): from the model's device stream, or drawn on the host from
        ``rng`` when one is given (fixed-noise grids)."""
        shape = (int(n), self.hp["z_dim"])
        if self.hp["noise"] == "gaussian":
            return {"z": self.draw_normal(shape, 1.0, rng)}
        s = math.sqrt(3.0)
        return {"z": self.draw_uniform(shape, -s, s, rng)}

    def init_from_data(self, x):
        """Official variant: G's output bias = logit of each pixel's training mean, clipped to
        [eps, 1 - eps] (``marginal_eps``), as the code behind Table 1 initialises its sigmoid
        output layer. ``x``: the training images in [0, 1]. No-op for the other variants."""
        if self.hp.get("variant") != "official" or self.arch != "paper":
            return
        import numpy as np
        from ..backend import to_numpy
        m = np.asarray(to_numpy(x), dtype=np.float64).reshape(len(x), -1).mean(0)
        if m.min() < 0 or m.max() > 1:
            raise ValueError("GAN.init_from_data: expected training images in [0, 1], got "
                             f"pixel means in [{m.min():.3g}, {m.max():.3g}]")
        eps = float(self.hp["marginal_eps"])
        m = np.clip(m, eps, 1.0 - eps)
        out = [l for l in self.G if isinstance(l, nn.Linear)][-1]
        out.bias.data[...] = self.to_model(np.log(m / (1.0 - m)))

    # -- the networks as the algorithm sees them (CGAN overrides these) ----------------
    def g_forward(self, noise):
        return self.G(noise["z"])

    def g_backward(self, dx):
        """Back through G; nobody uses d/dz, so its first layer skips it where it can."""
        if isinstance(self.G, nn.Sequential):
            self.G.backward(dx, input_grad=False)
        else:
            self.G.backward(dx)

    def d_forward(self, x, y1h=None):
        return self.D(x)

    def d_backward(self, dlogits, input_grad=True):
        """Back through D; ``input_grad=False`` (D's own update) skips d/dx of its first layer."""
        if not input_grad and isinstance(self.D, nn.Sequential):
            return self.D.backward(dlogits, input_grad=False)
        dx = self.D.backward(dlogits)
        return dx[0] if isinstance(dx, tuple) else dx

    def generate(self, noise):
        """Samples in the data range, shape (n, *data_shape); eval mode, no cache."""
        was = self.G.training
        self.G.eval()
        try:
            with no_grad():
                return self.g_forward(noise)
        finally:
            self.G.train(was)

    # -- gradients of the two objectives (no optimizer step; used by train_step and tests) --
    def discriminator_grads(self, x_real, noise, y1h_real=None):
        """Fill D's .grad with d/dtheta_d of ``bce(D(x),1) + bce(D(G(z)),0)`` (= -V, eq. 1).

        Real and fake batches go through D separately (each forward followed by its
        backward; BatchNorm statistics of the two batches stay apart). Returns logs.
        """
        with no_grad():
            x_fake = self.g_forward(noise)              # G(z^(i)); no gradient into G here
        real_logits = self.d_forward(x_real, y1h_real)  # l = logit D(x^(i))
        l_real, c = L.bce_with_logits_forward(real_logits, 1.0)
        self.d_backward(L.bce_with_logits_backward(1.0, c), input_grad=False)  # d/dtheta_d [-log D(x^(i))]
        fake_logits = self.d_forward(x_fake, noise.get("y1h"))
        l_fake, c = L.bce_with_logits_forward(fake_logits, 0.0)
        self.d_backward(L.bce_with_logits_backward(1.0, c), input_grad=False)  # d/dtheta_d [-log(1 - D(G(z^(i))))]
        return {"loss_d": l_real + l_fake, "d_real": mean_sigmoid(real_logits),
                "d_fake": mean_sigmoid(fake_logits)}

    def generator_grads(self, noise):
        """Fill G's .grad with d/dtheta_g of the chosen generator loss. D is held fixed: its
        backward passes the gradient through to G(z) and leaves D's .grad alone. Returns logs."""
        fwd, bwd = L.get_generator_loss(self.hp["generator_loss"])
        x_fake = self.g_forward(noise)
        logits = self.d_forward(x_fake, noise.get("y1h"))
        loss, c = fwd(logits)
        with frozen(self.D):
            dx = self.d_backward(bwd(1.0, c))            # d loss / d G(z) through D
        self.g_backward(dx)
        return {"loss_g": loss}

    def official_grads(self, x_real, noise):
        """Official variant: fill D's .grad with d/dtheta_d of d_obj = 0.5 (bce(D(x),1) +
        bce(D(S),0)) and G's .grad with d/dtheta_g of g_obj = bce(D(S),1), both from one
        shared forward S = G(z) (same samples, same dropout masks on the fake pass) at the
        current parameters. Returns logs."""
        x_fake = self.g_forward(noise)                      # S = G(z), cached for G's backward
        real_logits = self.d_forward(x_real)
        l_real, c = L.bce_with_logits_forward(real_logits, 1.0)
        self.d_backward(L.bce_with_logits_backward(0.5, c), input_grad=False)  # 0.5 d/dθd bce(D(x),1)
        mark = self.random.mark()                           # the fake pass's dropout masks ...
        fake_logits = self.d_forward(x_fake)
        l_fake, c = L.bce_with_logits_forward(fake_logits, 0.0)
        self.d_backward(L.bce_with_logits_backward(0.5, c), input_grad=False)  # 0.5 d/dθd bce(D(S),0)
        self.random.rewind(mark)                            # ... drawn again: the same forward
        fake_logits = self.d_forward(x_fake)
        loss_g, c = L.bce_with_logits_forward(fake_logits, 1.0)
        with frozen(self.D):
            dx = self.d_backward(L.bce_with_logits_backward(1.0, c))  # d g_obj / dS through D
        self.g_backward(dx)                                 # d g_obj / dθg
        return {"loss_d": 0.5 * (l_real + l_fake), "loss_g": loss_g,
                "d_real": mean_sigmoid(real_logits), "d_fake": mean_sigmoid(fake_logits)}

    def train_step_official(self, x):
        """The update of the code behind Table 1: both objectives from one shared forward,
        one simultaneous SGD update of D and G."""
        x = self._check_x(self.split_batches(x, None)[0][0])   # a minibatch of m examples
        noise = self.sample_noise(x.shape[0])               # z^(1..m)
        self.opt_D.zero_grad()
        self.opt_G.zero_grad()
        logs = self.official_grads(x, noise)                # both gradients at (θd, θg)
        self.opt_D.step()                                   # simultaneous update
        self.opt_G.step()
        self.step += 1
        return logs

    # -- Algorithm 1 -----------------------------------------------------------------------
    def train_step(self, x, y=None):
        """One iteration of Algorithm 1 (k D updates, then one G update).

        ``x``: k real minibatches (a list, or one array of k*m rows; see base.py);
        ``y``: their labels (conditional models only).
        ``variant="official"``: :meth:`train_step_official` instead.
        """
        self.apply_schedule()
        if self.hp.get("variant") == "official":
            return self.train_step_official(x)
        xs, ys = self.split_batches(x, y)
        logs = {}
        for x_i, y_i in zip(xs, ys):                     # "for k steps do"
            x_i = self._check_x(x_i)                     # "sample minibatch {x^(1..m)} from p_data"
            y1h = self.one_hot(self._check_labels(y_i, x_i.shape[0])) if self.conditional else None
            noise = self.sample_noise(x_i.shape[0])      # "sample minibatch {z^(1..m)} from p_g(z)"
            self.opt_D.zero_grad()
            logs = self.discriminator_grads(x_i, noise, y1h)  # grad_theta_d (1/m) sum [log D + log(1-D(G))]
            self.opt_D.step()                            # "update D by ascending its gradient"
        noise = self.sample_noise(xs[-1].shape[0])       # "sample minibatch {z^(1..m)} from p_g(z)"
        self.opt_G.zero_grad()
        logs.update(self.generator_grads(noise))         # grad_theta_g (1/m) sum log(1 - D(G(z)))
        self.opt_G.step()                                # "update G by descending its gradient"
        self.step += 1
        return logs

    def host_logs(self):
        """Values the trainer logs beside the step's device losses: the SGD schedule."""
        if self.hp.get("optimizer") != "sgd":
            return {}
        return {"lr": self.opt_G.lr, "momentum": self.opt_G.momentum}
