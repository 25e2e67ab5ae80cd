"""WGAN (Arjovsky, Chintala & Bottou 2017), Algorithm 1.

The critic f_w has no sigmoid; it estimates the Earth-Mover distance
    W(P_r, P_g) ~ max_{w in W} E_x[f_w(x)] - E_z[f_w(g(z))]        (eq. 3)
with the Lipschitz constraint enforced by clipping every critic weight to [-c, c].

Algorithm 1 (alpha = 5e-5, c = 0.01, m = 64, n_critic = 5), RMSProp:
  1 while theta has not converged do
  2   for t = 0, ..., n_critic do
  3     sample {x^(i)} ~ P_r, a batch of m real data
  4     sample {z^(i)} ~ p(z), a batch of m priors
  5     g_w <- grad_w [1/m sum f_w(x^(i)) - 1/m sum f_w(g_theta(z^(i)))]
  6     w <- w + alpha RMSProp(w, g_w)
  7     w <- clip(w, -c, c)
  8   sample {z^(i)} ~ p(z)
  9   g_theta <- -grad_theta 1/m sum f_w(g_theta(z^(i)))
 10   theta <- theta - alpha RMSProp(theta, g_theta)
(The loop in line 2 runs n_critic times, as in the authors' code.)

Networks: ``arch="dcgan"`` (images 28x28 or 64x64; DCGAN's G and D with the last layer
giving an unbounded score, as in the paper's experiments) or ``arch="mlp"`` (the paper's
MLP: 4 ReLU layers of 512 units for G and critic; the default for flat data such as toy
2-D sets, where ``mlp_hidden`` can be made small). z ~ N(0, I) 100-d.

Named variant ``warmup=True`` ("wgan_warmup", authors' code, not in the paper): 100 critic
iterations for the first 25 generator iterations and at every 500th. Off by default.
Logged: ``loss_d`` = mean f(fake) - mean f(real) and ``em_estimate`` = -loss_d.
"""
from __future__ import annotations

from .. import nn
from ..init import dcgan_init_
from ..nn.module import frozen, no_grad
from ..ops import loss as L
from ..optim import RMSprop, clip_weights
from .nets import dcgan_discriminator, dcgan_generator, image_size, relu_mlp_pair
from .gan import GAN

__all__ = ["WGAN"]


class WGAN(GAN):
    name = "wgan"
    data_range = (-1.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 64, "epochs": 25, "dataset": "mnist",
        "arch": "auto",          # "dcgan" | "mlp" | "auto" (dcgan for images, mlp for flat data)
        "z_dim": 100, "ngf": 64, "ndf": 64, "mlp_hidden": 512, "mlp_layers": 4,
        "depth": "auto",         # DCGAN nets: 3 stride-2 stages at 28x28, 2 at 64x64; 2 at 28x28
                                 # is the named shallow variant (nets.resolve_depth)
        "n_critic": 5, "clip": 0.01, "lr": 5e-5,
        "warmup": False,         # named variant "wgan_warmup"
        "warmup_iters": 100, "warmup_g_iters": 25, "warmup_every": 500,
    }

    def build(self):
        hp, r = self.hp, self.rng
        arch = hp["arch"]
        if arch == "auto":
            arch = "dcgan" if len(self.data_shape) == 3 else "mlp"
        if arch not in ("dcgan", "mlp"):
            raise ValueError(f"WGAN: arch must be 'dcgan', 'mlp' or 'auto', got {hp['arch']!r}")
        self.arch = arch
        if arch == "dcgan":
            size = image_size(self, "auto")
            c = self.data_shape[0]
            self.G = dcgan_generator(hp["z_dim"], c, hp["ngf"], size, r, depth=hp["depth"])
            self.D = dcgan_discriminator(c, hp["ndf"], size, r, depth=hp["depth"])
            dcgan_init_(self.G, rng=r)
            dcgan_init_(self.D, rng=r)
        else:
            flat = len(self.data_shape) == 1
            if flat:
                self.data_range = None          # toy data: linear output, not rescaled
            self.G, self.D = relu_mlp_pair(hp["z_dim"], self.data_shape, hp["mlp_hidden"],
                                           hp["mlp_layers"], r, None if flat else nn.Tanh())

    def build_optimizers(self):
        self.opt_G = RMSprop(self.G.parameters(), lr=self.hp["lr"])
        self.opt_D = RMSprop(self.D.parameters(), lr=self.hp["lr"])

    def apply_schedule(self):
        pass

    def batches_per_step(self):
        """n_critic, or (variant wgan_warmup) 100 for the first 25 G iterations and every 500th."""
        hp = self.hp
        if hp["warmup"] and (self.step < hp["warmup_g_iters"] or self.step % hp["warmup_every"] == 0):
            return hp["warmup_iters"]
        return hp["n_critic"]

    def sample_noise(self, n, rng=None, labels=None):
        """z ~ N(0, I)^z_dim: the device stream, or ``rng``."""
        return {"z": self.draw_normal((int(n), self.hp["z_dim"]), 1.0, rng)}

    def discriminator_grads(self, x_real, noise, y1h_real=None):
        """Fill the critic's .grad with grad_w [mean f(fake) - mean f(real)] (= -g_w of line 5)."""
        with no_grad():
            x_fake = self.g_forward(noise)
        real = self.D(x_real)
        l_real, c = L.wasserstein_generator_loss_forward(real)      # -mean f_w(x)
        self.D.backward(L.wasserstein_generator_loss_backward(1.0, c), input_grad=False)
        fake = self.D(x_fake)
        l_fake, c = L.wasserstein_generator_loss_forward(fake)      # -mean f_w(g(z)); enters with sign -1
        self.D.backward(L.wasserstein_generator_loss_backward(-1.0, c), input_grad=False)
        loss_d = l_real - l_fake                                     # mean f(fake) - mean f(real)
        return {"loss_d": loss_d, "em_estimate": -loss_d}

    def generator_grads(self, noise):
        """Fill G's .grad with g_theta = -grad_theta mean f_w(g_theta(z)) (line 9)."""
        x_fake = self.G(noise["z"])
        scores = self.D(x_fake)
        loss, c = L.wasserstein_generator_loss_forward(scores)
        with frozen(self.D):                                # w held fixed in line 9
            dx = self.D.backward(L.wasserstein_generator_loss_backward(1.0, c))
        self.G.backward(dx, input_grad=False)
        return {"loss_g": loss}

    def train_step(self, x, y=None):
        """One generator iteration of Algorithm 1 with ``batches_per_step()`` critic iterations.

        ``x``: that many real minibatches (a list, or one array of n*m rows).
        """
        xs, _ = self.split_batches(x)
        logs = {}
        for x_i in xs:                                    # line 2: for t = 0..n_critic
            x_i = self._check_x(x_i)                      # line 3: real batch
            noise = self.sample_noise(x_i.shape[0])       # line 4: z ~ p(z)
            self.opt_D.zero_grad()
            logs = self.discriminator_grads(x_i, noise)   # line 5: g_w (as a loss to descend)
            self.opt_D.step()                             # line 6: RMSProp step
            clip_weights(self.D, self.hp["clip"])        # line 7: clip(w, -c, c)
        noise = self.sample_noise(xs[-1].shape[0])        # line 8
        self.opt_G.zero_grad()
        logs.update(self.generator_grads(noise))          # line 9: g_theta
        self.opt_G.step()                                 # line 10
        self.step += 1
        logs["critic_iters"] = len(xs)
        return logs
