"""DCGAN (Radford, Metz & Chintala 2015): Algorithm 1 of the GAN paper with the
paper's architecture guidelines:

* D: strided convolutions (no pooling), LeakyReLU(0.2), BatchNorm on every layer but the
  input layer; G: fractional-strided (transposed) convolutions, BatchNorm + ReLU on every
  layer but the output, tanh output;
* no fully connected hidden layers: G's first layer is a transposed convolution of the
  (z_dim, 1, 1) noise (a projection), D's last is a convolution down to one logit;
* weights N(0, 0.02) (``scratchgan.init.dcgan_init_``), Adam lr 2e-4, beta1 0.5,
  z 100-d uniform U(-1, 1), images in [-1, 1], batch 128.

Two variants, chosen by the image size (``arch="auto"``):
``"28"`` (MNIST)   G: z -> convT 7x7 (4ngf, 7x7) -> convT 4/2 (2ngf, 14x14) -> convT 4/2 (C, 28x28)
                   D: conv 4/2 (ndf, 14x14) -> conv 4/2 (2ndf, 7x7) BN -> conv 7x7 (1)
``"64"`` (64x64, the paper's LSUN net)  G: z -> convT 4 (8ngf, 4) -> 4ngf 8 -> 2ngf 16 -> ngf 32
                   -> C 64;  D mirrors it: ndf 32 -> 2ndf 16 -> 4ndf 8 -> 8ndf 4 -> conv 4 (1)
D runs the real and the fake batch separately (see GAN.discriminator_grads), so BatchNorm
sees pure batches, as in the paper's reference code.
"""
from __future__ import annotations

from ..init import dcgan_init_
from ..optim import Adam
from .gan import GAN
from .nets import dcgan_discriminator, dcgan_generator, image_size

__all__ = ["DCGAN"]


class DCGAN(GAN):
    name = "dcgan"
    data_range = (-1.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 128, "epochs": 25, "dataset": "mnist",
        "arch": "auto",          # "28" | "64" | "auto" (from the image size)
        "k": 1, "generator_loss": "nonsaturating",
        "z_dim": 100, "ngf": 64, "ndf": 64,
        "depth": "auto",         # stride-2 stages: 3 at 28x28, 2 at 64x64; 2 at 28x28 is the
                                 # named shallow variant (nets.resolve_depth)
        "lr": 2e-4, "betas": (0.5, 0.999),
    }

    def build(self):
        hp = self.hp
        from ..ops.loss import get_generator_loss
        get_generator_loss(hp["generator_loss"])
        self.arch = str(image_size(self, str(hp["arch"])))
        c, size = self.data_shape[0], self.data_shape[1]
        self.G = dcgan_generator(hp["z_dim"], c, hp["ngf"], size, self.rng, depth=hp["depth"])
        self.D = dcgan_discriminator(c, hp["ndf"], size, self.rng, depth=hp["depth"])
        dcgan_init_(self.G, rng=self.rng)   # N(0, 0.02) weights, BN gamma N(1, 0.02)
        dcgan_init_(self.D, rng=self.rng)

    def build_optimizers(self):
        b = tuple(self.hp["betas"])
        self.opt_G = Adam(self.G.parameters(), lr=self.hp["lr"], betas=b)
        self.opt_D = Adam(self.D.parameters(), lr=self.hp["lr"], betas=b)

    def apply_schedule(self):
        pass

    def sample_noise(self, n, rng=None, labels=None):
        """z ~ U(-1, 1)^100 (the paper's uniform noise): the device stream, or ``rng``."""
        return {"z": self.draw_uniform((int(n), self.hp["z_dim"]), -1.0, 1.0, rng)}
