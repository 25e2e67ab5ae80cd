"""WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017), Algorithm 1.

WGAN's critic with the weight clipping replaced by a gradient penalty:

    L = E[D(x̃)] − E[D(x)] + λ E[(‖∇_x̂ D(x̂)‖₂ − 1)²],     x̂ = εx + (1 − ε)x̃,  ε ~ U[0, 1]

Algorithm 1 (λ = 10, n_critic = 5, α = 1e-4, β1 = 0, β2 = 0.9), Adam:
  1 while θ has not converged do
  2   for t = 1, ..., n_critic do
  3     for i = 1, ..., m do
  4       sample real x ~ P_r, latent z ~ p(z), a random number ε ~ U[0, 1]
  5       x̃ <- G_θ(z)
  6       x̂ <- εx + (1 − ε)x̃
  7       L^(i) <- D_w(x̃) − D_w(x) + λ (‖∇_x̂ D_w(x̂)‖₂ − 1)²
  8     w <- Adam(∇_w 1/m Σ L^(i), w, α, β1, β2)
  9   sample a batch of latent variables {z^(i)} ~ p(z)
 10   θ <- Adam(∇_θ 1/m Σ −D_w(G_θ(z)), θ, α, β1, β2)

The penalty's gradient with respect to the critic's weights is a second-order derivative; it
is computed by :mod:`scratchgan.nn.second_order` (a data-only backward at x̂ keeping the backward
signals, the tangent v = ∂P/∂g pushed up the critic, and the existing weight-gradient ops; see
docs/derivations/second_order.md). The critic therefore has no BatchNorm (the paper forbids
it; :mod:`scratchgan.nn.second_order` refuses it). ε is drawn per sample from the model's device
Philox stream, so a whole step is device work: no host reads and no host-to-device copies
(capturable in a CUDA graph); losses are returned as 0-d device arrays.

Networks:

* ``arch="mnist"`` (28×28 images; the official ``gan_mnist.py``, DIM = ``dim`` = 64, z 128-d
  N(0, I)): G = Linear(128, 4·4·4DIM), ReLU, reshape, deconv 5×5 → 2DIM cropped to 7×7, ReLU,
  deconv 5×5 → DIM (14×14), ReLU, deconv 5×5 → C (28×28), sigmoid; critic = conv 5×5 stride 2
  → DIM, LeakyReLU 0.2, conv 5×5 s2 → 2DIM, LeakyReLU, conv 5×5 s2 → 4DIM, LeakyReLU,
  Linear(4·4·4DIM, 1), no normalisation. A deconvolution is ``ConvTranspose2d(k=5, stride=2,
  padding=2, output_padding=1)``, which doubles the size like TensorFlow's "SAME" transposed
  convolution (TF puts the odd padding at the bottom/right, so its taps sit one pixel
  over: the same function class). The crop of the first deconvolution's 8×8 output to its first
  7×7 is the same layer with ``output_padding=0`` (output_padding only appends the last
  row/column), which is what is used.
* ``arch="mlp"`` (any data; the official ``gan_toy.py`` for 2-D toy sets): G and critic are
  three ReLU layers of ``mlp_hidden`` = 512 units; G's output is linear, z is 2-d for 2-D data.
  On flat (toy) data λ defaults to 0.1 as in that script, which uses batch 256
  (``--batch-size 256``).

``arch="auto"`` picks "mnist" for 28×28 images and "mlp" otherwise. Initialisation is the
library's default (PyTorch's), not tflib's. Named variant ``official_betas=True``: Adam
β = (0.5, 0.9) as in the official scripts (the paper's Algorithm 1 says β1 = 0).
Logged: ``loss_d`` (the critic loss L), ``gp`` (its penalty term), ``em_estimate``
(mean D(x) − mean D(x̃)), ``grad_norm`` (mean ‖∇D(x̂)‖), ``loss_g``.
"""
from __future__ import annotations

from .. import nn
from ..nn.module import no_grad
from ..nn.second_order import input_gradient, penalty_backward
from ..ops import loss as L
from ..ops.second_order import gradient_penalty_backward, gradient_penalty_forward
from ..optim import Adam
from .nets import relu_mlp_pair
from .wgan import WGAN

__all__ = ["mnist_generator", "mnist_critic", "WGANGP"]


def mnist_generator(z_dim, channels, dim, rng):
    """The official MNIST generator (see the module docstring)."""
    return nn.Sequential(
        nn.Linear(z_dim, 4 * 4 * 4 * dim, rng=rng), nn.ReLU(), nn.Reshape(4 * dim, 4, 4),
        nn.ConvTranspose2d(4 * dim, 2 * dim, 5, stride=2, padding=2, output_padding=0, rng=rng),
        nn.ReLU(),                                                              # 7x7 (the crop)
        nn.ConvTranspose2d(2 * dim, dim, 5, stride=2, padding=2, output_padding=1, rng=rng),
        nn.ReLU(),                                                              # 14x14
        nn.ConvTranspose2d(dim, channels, 5, stride=2, padding=2, output_padding=1, rng=rng),
        nn.Sigmoid())                                                           # 28x28


def mnist_critic(channels, dim, rng):
    """The official MNIST critic: three 5×5 stride-2 convolutions (28 → 14 → 7 → 4)."""
    return nn.Sequential(
        nn.Conv2d(channels, dim, 5, stride=2, padding=2, rng=rng), nn.LeakyReLU(0.2),
        nn.Conv2d(dim, 2 * dim, 5, stride=2, padding=2, rng=rng), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * dim, 4 * dim, 5, stride=2, padding=2, rng=rng), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(4 * 4 * 4 * dim, 1, rng=rng))


class WGANGP(WGAN):
    name = "wgan-gp"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 64, "epochs": 100, "dataset": "mnist",
        "arch": "auto",            # "mnist" | "mlp" | "auto" (mnist for 28x28 images)
        "z_dim": None,             # None: 128 (mnist), 2 (mlp on 2-D data), else 128
        "dim": 64,                 # DIM of the official MNIST networks
        "mlp_hidden": 512, "mlp_layers": 3,
        "n_critic": 5,
        "lambda_gp": None,         # None: 10 (paper), 0.1 on flat toy data (gan_toy.py)
        "lr": 1e-4,
        "betas": (0.0, 0.9),       # paper's Algorithm 1
        "official_betas": False,   # named variant: the official scripts' (0.5, 0.9)
    }

    def build(self):
        hp, r = self.hp, self.rng
        arch = hp["arch"]
        if arch == "auto":
            arch = "mnist" if tuple(self.data_shape[1:]) == (28, 28) else "mlp"
        if arch not in ("mnist", "mlp"):
            raise ValueError(f"WGANGP: arch must be 'mnist', 'mlp' or 'auto', got {hp['arch']!r}")
        if arch == "mnist" and (len(self.data_shape) != 3 or self.data_shape[1:] != (28, 28)):
            raise ValueError(f"WGANGP: arch 'mnist' needs (C, 28, 28) images, got data shape "
                             f"{self.data_shape}; use arch='mlp'")
        if not isinstance(hp["n_critic"], int) or hp["n_critic"] < 1:
            raise ValueError(f"WGANGP: n_critic must be an int >= 1, got {hp['n_critic']!r}")
        self.arch = arch
        flat = len(self.data_shape) == 1
        if hp["z_dim"] is None:
            hp["z_dim"] = 2 if (arch == "mlp" and self.data_shape == (2,)) else 128
        if hp["lambda_gp"] is None:
            hp["lambda_gp"] = 0.1 if flat else 10.0
        if arch == "mnist":
            c = self.data_shape[0]
            self.G = mnist_generator(hp["z_dim"], c, hp["dim"], r)
            self.D = mnist_critic(c, hp["dim"], r)
            return
        if flat:
            self.data_range = None            # toy data: linear output, not rescaled
        self.G, self.D = relu_mlp_pair(hp["z_dim"], self.data_shape, hp["mlp_hidden"],
                                       hp["mlp_layers"], r, None if flat else nn.Sigmoid())

    def adam_betas(self):
        return (0.5, 0.9) if self.hp["official_betas"] else tuple(self.hp["betas"])

    def build_optimizers(self):
        b = self.adam_betas()
        self.opt_G = Adam(self.G.parameters(), lr=self.hp["lr"], betas=b)
        self.opt_D = Adam(self.D.parameters(), lr=self.hp["lr"], betas=b)

    def batches_per_step(self):
        """n_critic real minibatches per generator iteration (line 2)."""
        return self.hp["n_critic"]

    def draw_epsilon(self, n):
        """ε ~ U[0, 1] per sample, shaped (n, 1, ...) to broadcast over a sample (device stream)."""
        return self.draw_uniform((int(n),) + (1,) * len(self.data_shape), 0.0, 1.0)

    def discriminator_grads(self, x_real, noise, y1h_real=None, eps=None):
        """Fill the critic's .grad with ∇_w of L = mean D(x̃) − mean D(x) + λ mean (‖∇D(x̂)‖ − 1)²
        (lines 4-8); ``eps`` (n, 1, ...) defaults to a draw from the device stream."""
        with no_grad():
            x_fake = self.g_forward(noise)                           # line 5
        real = self.D(x_real)
        l_real, c = L.wasserstein_generator_loss_forward(real)       # −mean D(x)
        self.D.backward(L.wasserstein_generator_loss_backward(1.0, c), input_grad=False)
        fake = self.D(x_fake)
        l_fake, c = L.wasserstein_generator_loss_forward(fake)       # −mean D(x̃), sign −1
        self.D.backward(L.wasserstein_generator_loss_backward(-1.0, c), input_grad=False)
        if eps is None:
            eps = self.draw_epsilon(x_real.shape[0])                 # line 4
        x_hat = eps * x_real + (1 - eps) * x_fake                    # line 6
        g, tape = input_gradient(self.D, x_hat)                      # ∇_x̂ D(x̂), per sample
        gp, c = gradient_penalty_forward(g, self.hp["lambda_gp"])    # λ mean (‖g‖ − 1)²
        penalty_backward(tape, gradient_penalty_backward(c))         # ∂gp/∂w into .grad
        wd = l_real - l_fake                                         # mean D(x̃) − mean D(x)
        return {"loss_d": wd + gp, "gp": gp, "em_estimate": -wd, "grad_norm": c[1].mean()}

    def train_step(self, x, y=None):
        """One generator iteration of Algorithm 1 after ``n_critic`` critic iterations.

        ``x``: n_critic real minibatches (a list, or one array of n_critic·m rows).
        """
        xs, _ = self.split_batches(x)
        logs = {}
        for x_i in xs:                                    # line 2
            x_i = self._check_x(x_i)                      # line 4: real batch
            noise = self.sample_noise(x_i.shape[0])       # line 4: z ~ p(z)
            self.opt_D.zero_grad()
            logs = self.discriminator_grads(x_i, noise)   # lines 5-7
            self.opt_D.step()                             # line 8
        noise = self.sample_noise(xs[-1].shape[0])        # line 9
        self.opt_G.zero_grad()
        logs.update(self.generator_grads(noise))          # line 10: ∇_θ −mean D(G(z))
        self.opt_G.step()
        self.step += 1
        return logs
