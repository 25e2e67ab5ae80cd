"""Conditional GAN (Mirza & Osindero 2014).

The value function is the GAN's with both players conditioned on y (eq. 2):
    min_G max_D E_x[log D(x|y)] + E_z[log(1 - D(G(z|y)|y))]
y is a one-hot class label that joins the inputs of both networks:

  G: z (100, U[-sqrt3, sqrt3]) -> ReLU 200;  y -> ReLU 1000;  joined (1200) -> ReLU 1200
     -> sigmoid 784
  D: x -> maxout 240x5;  y -> maxout 50x5;  joined (290) -> maxout 240x4 -> sigmoid
  dropout p=0.5 "applied to both the generator and discriminator": here on the input of
  every layer after the two input branches (the joined vector and the last hidden layer)
  of both networks.
  SGD with momentum, batch 100, lr 0.1 decayed per update by 1/1.00004 down to 1e-6,
  momentum 0.5 rising to 0.7 (saturation step not given: 125000, as in the GAN).
Initialization is not given in the paper: G U(+-0.05), D U(+-0.005), as the GAN's code.

Fake batches use labels drawn uniformly from the model's device stream; train_step's Algorithm 1
is GAN.train_step with D(x|y) for real data and D(G(z|y')|y') for fakes.
"""
from __future__ import annotations

import math

from .. import nn
from ..init import init_uniform_
from ..nn import Maxout, TwoInputNet
from .gan import GAN

__all__ = ["CGAN"]


class CGAN(GAN):
    name = "cgan"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = True
    defaults = {
        "batch_size": 100, "epochs": 100, "dataset": "mnist",
        "k": 1, "generator_loss": "nonsaturating",
        "z_dim": 100, "g_hidden_z": 200, "g_hidden_y": 1000, "g_hidden": 1200,
        "d_units_x": 240, "d_pieces_x": 5, "d_units_y": 50, "d_pieces_y": 5,
        "d_units": 240, "d_pieces": 4,
        "dropout": 0.5,
        "g_irange": 0.05, "d_irange": 0.005,
        "optimizer": "sgd", "lr": 0.1, "lr_decay": 1.00004, "min_lr": 1e-6,
        "momentum": 0.5, "final_momentum": 0.7, "momentum_saturate_step": 125000,
        "betas": (0.5, 0.999),
    }

    def build(self):
        hp, r, rd = self.hp, self.rng, self.random   # rd: dropout masks on the device
        from ..ops.loss import get_generator_loss
        get_generator_loss(hp["generator_loss"])
        if hp["optimizer"] not in ("sgd", "adam"):
            raise ValueError(f"CGAN: optimizer must be 'sgd' (paper) or 'adam', got {hp['optimizer']!r}")
        self.arch = "paper"
        d, K, p = math.prod(self.data_shape), self.num_classes, hp["dropout"]
        hz, hy, h = hp["g_hidden_z"], hp["g_hidden_y"], hp["g_hidden"]
        self.G = TwoInputNet(
            nn.Sequential(nn.Linear(hp["z_dim"], hz, rng=r), nn.ReLU()),
            nn.Sequential(nn.Linear(K, hy, rng=r), nn.ReLU()),
            nn.Sequential(nn.Dropout(p, rng=rd), nn.Linear(hz + hy, h, rng=r), nn.ReLU(),
                          nn.Dropout(p, rng=rd), nn.Linear(h, d, rng=r), nn.Sigmoid(),
                          nn.Reshape(*self.data_shape)))
        ux, uy, u = hp["d_units_x"], hp["d_units_y"], hp["d_units"]
        self.D = TwoInputNet(
            nn.Sequential(nn.Flatten(), Maxout(d, ux, hp["d_pieces_x"], rng=r)),
            Maxout(K, uy, hp["d_pieces_y"], rng=r),
            nn.Sequential(nn.Dropout(p, rng=rd), Maxout(ux + uy, u, hp["d_pieces"], rng=r),
                          nn.Dropout(p, rng=rd), nn.Linear(u, 1, rng=r)))
        init_uniform_(self.G, hp["g_irange"], r)
        init_uniform_(self.D, hp["d_irange"], r)

    def sample_noise(self, n, rng=None, labels=None):
        """z ~ U[-sqrt3, sqrt3]^100 and labels (given, or uniform over the classes): the
        device stream, or ``rng``. ``labels`` are int64 on the model's device."""
        s = math.sqrt(3.0)
        z = self.draw_uniform((int(n), self.hp["z_dim"]), -s, s, rng)
        if labels is None:
            labels = self.draw_integers(self.num_classes, n, rng)
        labels = self._check_labels(labels, int(n))
        return {"z": z, "labels": labels, "y1h": self.one_hot(labels)}

    def g_forward(self, noise):
        return self.G(noise["z"], noise["y1h"])

    def d_forward(self, x, y1h=None):
        return self.D(x, y1h)
