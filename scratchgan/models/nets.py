"""Networks shared by several models (not models themselves): the DCGAN generator and
discriminator (DCGAN, and WGAN's image architecture) and the ReLU MLP pair of the
Wasserstein models' toy architecture (WGAN, WGAN-GP).

``"28"`` (MNIST)   G: z -> convT 7x7 (4ngf, 7x7) -> convT 4/2 (2ngf, 14x14) -> convT 4/2 (C, 28x28)
                   D: conv 4/2 (ndf, 14x14) -> conv 4/2 (2ndf, 7x7) BN -> conv 7x7 (1)
``"64"`` (64x64, the DCGAN paper's LSUN net)  G: z -> convT 4 (8ngf, 4) -> 4ngf 8 -> 2ngf 16 ->
                   ngf 32 -> C 64;  D mirrors it: ndf 32 -> 2ndf 16 -> 4ndf 8 -> 8ndf 4 -> conv 4 (1)
"""
from __future__ import annotations

import math

from .. import nn


def dcgan_generator(z_dim, channels, ngf, size, rng):
    if size == 28:
        layers = [nn.Reshape(z_dim, 1, 1),
                  nn.ConvTranspose2d(z_dim, 4 * ngf, 7, 1, 0, bias=False, rng=rng),
                  nn.BatchNorm2d(4 * ngf), nn.ReLU(),
                  nn.ConvTranspose2d(4 * ngf, 2 * ngf, 4, 2, 1, bias=False, rng=rng),
                  nn.BatchNorm2d(2 * ngf), nn.ReLU(),
                  nn.ConvTranspose2d(2 * ngf, channels, 4, 2, 1, bias=False, rng=rng), nn.Tanh()]
    else:
        layers = [nn.Reshape(z_dim, 1, 1),
                  nn.ConvTranspose2d(z_dim, 8 * ngf, 4, 1, 0, bias=False, rng=rng),
                  nn.BatchNorm2d(8 * ngf), nn.ReLU()]
        for cin, cout in ((8, 4), (4, 2), (2, 1)):
            layers += [nn.ConvTranspose2d(cin * ngf, cout * ngf, 4, 2, 1, bias=False, rng=rng),
                       nn.BatchNorm2d(cout * ngf), nn.ReLU()]
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False, rng=rng), nn.Tanh()]
    return nn.Sequential(*layers)


def dcgan_discriminator(channels, ndf, size, rng):
    if size == 28:
        layers = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False, rng=rng), nn.LeakyReLU(0.2),
                  nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False, rng=rng), nn.BatchNorm2d(2 * ndf),
                  nn.LeakyReLU(0.2),
                  nn.Conv2d(2 * ndf, 1, 7, 1, 0, bias=False, rng=rng), nn.Flatten()]
    else:
        layers = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False, rng=rng), nn.LeakyReLU(0.2)]
        for cin, cout in ((1, 2), (2, 4), (4, 8)):
            layers += [nn.Conv2d(cin * ndf, cout * ndf, 4, 2, 1, bias=False, rng=rng),
                       nn.BatchNorm2d(cout * ndf), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(8 * ndf, 1, 4, 1, 0, bias=False, rng=rng), nn.Flatten()]
    return nn.Sequential(*layers)


def image_size(model, arch):
    """Validate (C, H, W) with H == W in {28, 64} (or the requested arch) and return H."""
    shape = model.data_shape
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"{type(model).__name__}: expects square images (C, H, W), got data_shape "
                         f"{shape}")
    size = shape[1] if arch == "auto" else int(arch)
    if size not in (28, 64) or size != shape[1]:
        raise ValueError(f"{type(model).__name__}: arch {arch!r} needs 28x28 or 64x64 images, got "
                         f"data_shape {shape}")
    return size


def relu_mlp_pair(z_dim, data_shape, hidden, layers, rng, out_act=None):
    """``(G, D)``: G z -> ``layers`` x (Linear ``hidden``, ReLU) -> Linear -> ``out_act`` (a
    module, or None for a linear output) -> data_shape; D Flatten -> ``layers`` x (Linear,
    ReLU) -> Linear -> 1 score. Weights are drawn from ``rng`` layer by layer, G's and D's
    interleaved."""
    d = math.prod(data_shape)
    g = [nn.Linear(z_dim, hidden, rng=rng), nn.ReLU()]
    f = [nn.Flatten(), nn.Linear(d, hidden, rng=rng), nn.ReLU()]
    for _ in range(layers - 1):
        g += [nn.Linear(hidden, hidden, rng=rng), nn.ReLU()]
        f += [nn.Linear(hidden, hidden, rng=rng), nn.ReLU()]
    g += [nn.Linear(hidden, d, rng=rng)] + ([out_act] if out_act is not None else [])
    return (nn.Sequential(*g, nn.Reshape(*data_shape)),
            nn.Sequential(*f, nn.Linear(hidden, 1, rng=rng)))
