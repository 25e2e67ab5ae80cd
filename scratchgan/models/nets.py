"""Networks shared by several models (not models themselves): the DCGAN generator and
discriminator (DCGAN, and WGAN's image architecture), the ReLU MLP pair of the
Wasserstein models' toy architecture (WGAN, WGAN-GP), the joint discriminator of BiGAN and
ALI (``JointNet``) and the n-layer PatchGAN of pix2pix and CycleGAN (``PatchDiscriminator``).

``"28"`` (MNIST), ``depth=2`` (named variant "shallow-28", the default until 2026-11-30):
                   G: z -> convT 7x7 (4ngf, 7x7) -> convT 4/2 (2ngf, 14x14) -> convT 4/2 (C, 28x28)
                   D: conv 4/2 (ndf, 14x14) -> conv 4/2 (2ndf, 7x7) BN -> conv 7x7 (1)
``"28"`` with ``depth=3`` (the default at 28x28, ``depth="auto"``): one stride-2 stage more
                   on each side, the paper's pattern (every stage halves or doubles the size, channels double towards D's
                   logit) scaled to 28x28:
                   G: z -> convT 4 (4ngf, 4x4) -> convT 3/2 (2ngf, 7x7) -> convT 4/2 (ngf, 14x14)
                      -> convT 4/2 (C, 28x28)
                   D: conv 4/2 (ndf, 14) -> conv 4/2 (2ndf, 7) BN -> conv 3/2 (4ndf, 4) BN ->
                      conv 4 (1)
``"64"`` (64x64, the DCGAN paper's LSUN net)  G: z -> convT 4 (8ngf, 4) -> 4ngf 8 -> 2ngf 16 ->
                   ngf 32 -> C 64;  D mirrors it: ndf 32 -> 2ndf 16 -> 4ndf 8 -> 8ndf 4 -> conv 4 (1)
"""
from __future__ import annotations

import math

from .. import nn

__all__ = ["resolve_depth", "dcgan_generator", "dcgan_discriminator", "image_size",
           "relu_mlp_pair", "JointNet", "patchgan_layers", "patchgan_receptive_field",
           "PatchDiscriminator"]


def resolve_depth(depth, size):
    """The number of stride-2 stages: ``"auto"`` is 3 at 28x28 (the DCGAN paper's pattern of
    halving stages; at 50 epochs on MNIST it scores LeNet IS 8.61, FD 9.1 against IS 7.87,
    FD 38.7 for depth 2, benchmarks/results/paper_gaps) and 2 otherwise; 2 at 28x28 is the
    named shallow variant (a 7x7 transposed convolution from 1x1)."""
    if depth == "auto":
        return 3 if size == 28 else 2
    try:
        d = int(depth)
    except (TypeError, ValueError):
        d = None
    if d not in (2, 3) or (d == 3 and size != 28):
        raise ValueError(f"DCGAN networks: depth must be 'auto', 2 or 3 (3 at 28x28 only), got "
                         f"depth={depth!r} for {size}x{size} images")
    return d


def dcgan_generator(z_dim, channels, ngf, size, rng, depth="auto"):
    depth = resolve_depth(depth, size)
    if size == 28 and depth == 3:
        layers = [nn.Reshape(z_dim, 1, 1),
                  nn.ConvTranspose2d(z_dim, 4 * ngf, 4, 1, 0, bias=False, rng=rng),
                  nn.BatchNorm2d(4 * ngf), nn.ReLU(),
                  nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, bias=False, rng=rng),
                  nn.BatchNorm2d(2 * ngf), nn.ReLU(),
                  nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1, bias=False, rng=rng),
                  nn.BatchNorm2d(ngf), nn.ReLU(),
                  nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False, rng=rng), nn.Tanh()]
    elif size == 28:
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


def dcgan_discriminator(channels, ndf, size, rng, depth="auto"):
    depth = resolve_depth(depth, size)
    if size == 28 and depth == 3:
        layers = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False, rng=rng), nn.LeakyReLU(0.2),
                  nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False, rng=rng), nn.BatchNorm2d(2 * ndf),
                  nn.LeakyReLU(0.2),
                  nn.Conv2d(2 * ndf, 4 * ndf, 3, 2, 1, bias=False, rng=rng),
                  nn.BatchNorm2d(4 * ndf), nn.LeakyReLU(0.2),
                  nn.Conv2d(4 * ndf, 1, 4, 1, 0, bias=False, rng=rng), nn.Flatten()]
    elif size == 28:
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


class JointNet(nn.Module):
    """A network of two inputs: ``trunk(join(x_branch(x), z_branch(z)))`` (BiGAN's and ALI's
    joint discriminator D(x, z); BiGAN's generator, whose second layer sees z again).

    ``join="concat"``: h = [a, b] along the features; ``join="sum"``: h = a + b (the two
    branches end in layers of one width: a bias computed from z added to the x features).
    ``backward(dy, input_grad=True)`` returns ``(dx, dz)``: ∂h/∂a and ∂h/∂b are the identity
    (sum) or the two slices of dh (concat), then each branch back-propagates its part; with
    ``input_grad=False`` the branches' first layers with parameters skip d/dinput (what they
    return then is not a gradient and is meant to be ignored). Empty ``nn.Sequential()``
    branches pass an input through unchanged."""

    def __init__(self, x_branch, z_branch, trunk, join="concat"):
        super().__init__()
        if join not in ("concat", "sum"):
            raise ValueError(f"JointNet: join must be 'concat' or 'sum', got {join!r}")
        self.x_branch, self.z_branch, self.trunk = x_branch, z_branch, trunk
        self.join = join
        if join == "concat":
            self.cat = nn.Concat(dim=1)

    def forward(self, x, z):
        a, b = self.x_branch(x), self.z_branch(z)
        return self.trunk(self.cat(a, b) if self.join == "concat" else a + b)

    @staticmethod
    def _branch_backward(branch, d, input_grad):
        if input_grad or not isinstance(branch, nn.Sequential):
            return branch.backward(d)
        return branch.backward(d, input_grad=False)

    def backward(self, dy, input_grad=True):
        dh = self.trunk.backward(dy)
        da, db = self.cat.backward(dh) if self.join == "concat" else (dh, dh)
        dz = self._branch_backward(self.z_branch, db, input_grad)
        dx = self._branch_backward(self.x_branch, da, input_grad)
        return dx, dz


def patchgan_layers(d_layers):
    """(kernel, stride) of each convolution of the n-layer PatchGAN."""
    return [(4, 2)] * d_layers + [(4, 1), (4, 1)]


def patchgan_receptive_field(d_layers):
    """Receptive field (px) of one output logit: ``r = 1 + sum_l (k_l - 1) prod_{m<l} s_m``."""
    r, jump = 1, 1
    for k, s in patchgan_layers(d_layers):
        r += (k - 1) * jump
        jump *= s
    return r


class PatchDiscriminator(nn.Module):
    """The n-layer PatchGAN; ``forward(a, b=None)`` judges ``concat(a, b)`` (conditional) or
    ``a``; output (N, 1, P, P) logits, one per patch. ``backward(dy, input_grad=True)``
    returns ``(da, db)`` (or ``da``) -- None with ``input_grad=False``."""

    def __init__(self, in_channels, ndf=64, d_layers=3, norm="batch", rng=None):
        super().__init__()
        bias = norm != "batch"
        layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1, rng=rng), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, d_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < d_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias, rng=rng)]
            layers += [nn.resblock.make_norm(norm, ndf * mult)] if norm != "none" else []
            layers += [nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1, rng=rng)]
        self.body = nn.Sequential(*layers)
        self.join = nn.Concat(dim=1)
        self.d_layers = int(d_layers)

    def _label(self):
        return f"PatchDiscriminator(d_layers={self.d_layers})"

    @property
    def receptive_field(self):
        return patchgan_receptive_field(self.d_layers)

    def forward(self, a, b=None):
        self._save_cache(b is not None)
        return self.body(self.join(a, b) if b is not None else a)

    def backward(self, dy, input_grad=True):
        paired = self._take_cache()
        dx = self.body.backward(dy, input_grad=input_grad)
        if not paired:
            return dx
        if not input_grad:
            self.join._take_cache()
            return None
        return self.join.backward(dx)
