"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with cycle consistency.

Two generators G: A -> B (``G_AB``) and F: B -> A (``G_BA``), two discriminators ``D_B``
(B images: real or G(a)) and ``D_A``. Full objective (eq. 3), with the least-squares GAN
loss the paper uses in practice (Sec. 4, after Mao et al.):

    G, F:  E_a[(D_B(G(a)) - 1)^2] + E_b[(D_A(F(b)) - 1)^2]
           + lambda (E_a|F(G(a)) - a|_1 + E_b|G(F(b)) - b|_1)                 (cycle, lambda = 10)
           + lambda_idt lambda (E_b|G(b) - b|_1 + E_a|F(a) - a|_1)            (identity, 0.5)
    D_B:   0.5 (E_b[(D_B(b) - 1)^2] + E[(D_B(pool_B(G(a))))^2])       and D_A likewise,
means over pixels / patches as in the authors' code (junyanz/pytorch-CycleGAN-and-pix2pix,
``cycle_gan_model.py``), whose order each step follows: one forward of both generators,
the generators' update with both discriminators fixed, then the discriminators' update on
fakes drawn from a **pool of the 50 last fakes** (Shrivastava et al.).

The pool (:class:`ImagePool`), on the device, without host reads: while it fills, fakes
are stored and returned as they are (the fill count is a host integer: it depends only
on batch sizes). When full, each of the m new fakes is, with probability 1/2 (u > 0.5,
``u`` from ``self.random``), swapped for a stored one, which it replaces in the pool.
While a pool fills, each step has its own CUDA-graph key (it runs eagerly); once full, a
step is captured and replayed (``graph_key``). Departure: the stored slots are a uniformly
random subset of distinct slots (the m smallest of ``self.random`` keys, ranked without a
sort: :func:`smallest_indices`) instead of independent draws, so two fakes of one batch
never hit one slot; with the paper's batch of 1 the two are the same.

Networks, for 28 px images (the paper's 128 px nets with the same layers):
* G (Johnson et al.'s ResNet): c7s1-ngf (reflection pad 3, conv 7x7), d2ngf, d4ngf
  (conv 3x3 stride 2: 28 -> 14 -> 7), ``n_blocks`` residual blocks (6, the paper's 128 px
  setting), u2ngf, ungf (transposed conv 3x3 stride 2), c7s1-C tanh; instance norm
  without affine parameters and ReLU after every conv but the last; biases on.
* D: the PatchGAN of :mod:`scratchgan.models.pix2pix` with instance norm and
  ``d_layers`` (1: 16x16 px patches, a 12x12 grid of scores on 28 px; 3 = the paper's
  70x70), unconditional.
* Weights N(0, 0.02). Adam lr 2e-4, betas (0.5, 0.999); the paper keeps lr for 100 epochs
  and decays it linearly to 0 over the next 100: ``decay_steps=N`` holds it for N/2
  steps and decays it to 0 at step N (the model does not know a run's length, so it is
  off (constant lr) unless set; the ``cyclegan-*`` studies set it to their schedule).

Data: x = concat(A, B) along channels (``a_channels`` = 3: MNIST as grey RGB, then the
restyled digit; scratchgan.data.image2image). Ablations (``ablation``): ``"none"``,
``"no-cycle"`` (lambda = 0), ``"no-identity"`` (lambda_idt = 0).
Departure: batch 16 by default instead of 1 (the pool's batch must be <= its size).
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..backend import to_numpy
from ..init import dcgan_init_
from ..nn.module import frozen
from ..optim import Adam
from .base import GenerativeModel, SecondHalfLinearDecay
from ..viz import interleave_rows
from .nets import PatchDiscriminator

__all__ = ["ABLATIONS", "resnet_generator", "lsgan_forward", "lsgan_backward", "l1_forward",
           "smallest_indices", "ImagePool", "CycleGAN"]

ABLATIONS = ("none", "no-cycle", "no-identity")


def resnet_generator(c_in, c_out, ngf=64, n_blocks=6, norm="instance", rng=None):
    """The ResNet generator (two stride-2 down-samplings, ``n_blocks`` residual blocks)."""
    bias = norm != "batch"

    def nrm(c):
        n = nn.resblock.make_norm(norm, c)
        return [n] if n is not None else []

    layers = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, ngf, 7, bias=bias, rng=rng), *nrm(ngf),
              nn.ReLU()]
    for m in (1, 2):
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=bias, rng=rng),
                   *nrm(ngf * m * 2), nn.ReLU()]
    layers += [nn.ResnetBlock(4 * ngf, norm=norm, rng=rng) for _ in range(n_blocks)]
    for m in (4, 2):
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1,
                                      bias=bias, rng=rng), *nrm(ngf * m // 2), nn.ReLU()]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, c_out, 7, rng=rng), nn.Tanh()]
    return nn.Sequential(*layers)


def lsgan_forward(logits, target):
    """``mean (l - t)^2`` as a 0-d array; the cache holds ``l - t``."""
    d = logits - logits.dtype.type(target)
    from ..backend import get_array_module
    xp = get_array_module(logits)
    return xp.asarray((d * d).mean()), d


def lsgan_backward(dloss, cache):
    """``d/dl mean (l - t)^2 = 2 (l - t) / n``."""
    d = cache
    return d * d.dtype.type(2.0 * float(dloss) / d.size)


def l1_forward(x, target):
    """``mean |x - t|`` (0-d array) and ``sign(x - t) / n`` (its gradient for dloss = 1)."""
    from ..backend import get_array_module
    xp = get_array_module(x)
    diff = x - target
    return xp.asarray(xp.abs(diff).mean()), xp.sign(diff) * diff.dtype.type(1.0 / diff.size)


def smallest_indices(keys, m):
    """Indices of the ``m`` smallest keys, in order (= ``argsort(keys, kind="stable")[:m]``),
    by ranks from a pairwise comparison (elementwise kernels and an argmax, no sort: nothing
    that could synchronise inside a captured CUDA graph). ``keys`` is short (the pool)."""
    from ..backend import get_array_module
    xp = get_array_module(keys)
    n = keys.shape[0]
    lower = keys[None, :] < keys[:, None]                       # [i, j]: k_j < k_i
    tie = (keys[None, :] == keys[:, None]) & xp.tri(n, n, -1, dtype=bool)   # equal, j < i
    rank = (lower | tie).sum(axis=1)
    return (rank[None, :] == xp.arange(m)[:, None]).argmax(axis=1)


class ImagePool:
    """The buffer of past fakes of one discriminator (see the module docstring)."""

    def __init__(self, model, size):
        self.model, self.size, self.count, self.images = model, int(size), 0, None

    def query(self, fakes):
        if self.size == 0:
            return fakes
        m = self.model
        xp = m.xp
        n = int(fakes.shape[0])
        if n > self.size:
            raise ValueError(f"ImagePool: a batch of {n} fakes is larger than the pool "
                             f"({self.size}); use a batch of at most {self.size}")
        if self.images is None:
            self.images = xp.zeros((self.size,) + tuple(fakes.shape[1:]), dtype=fakes.dtype)
        k = min(n, self.size - self.count)             # still filling: store, return as is
        if k:
            self.images[self.count:self.count + k] = fakes[:k]
            self.count += k
        if k == n:
            return fakes
        rest = fakes[k:]
        u = m.random.random((n - k,), dtype=fakes.dtype)        # p > 0.5: swap
        keys = m.random.random((self.size,), dtype=np.float64)  # a random set of slots
        slots = smallest_indices(keys, n - k)
        old = self.images[slots]
        swap = (u > 0.5).reshape((-1,) + (1,) * (fakes.ndim - 1))
        self.images[slots] = xp.where(swap, rest, old)
        out = xp.where(swap, old, rest)
        return out if k == 0 else xp.concatenate([fakes[:k], out], axis=0)

    def state(self):
        return {"count": self.count,
                "images": None if self.images is None else to_numpy(self.images).copy()}

    def load(self, st):
        self.count = int(st.get("count", 0))
        imgs = st.get("images")
        self.images = None if imgs is None else self.model.to_model(np.asarray(imgs))


class CycleGAN(SecondHalfLinearDecay, GenerativeModel):
    name = "cyclegan"
    data_range = (-1.0, 1.0)
    default_dataset = "mnist2restyled"
    data_kinds = ("translation-unpaired", "translation-paired")
    conditional = False
    defaults = {
        "batch_size": 16, "epochs": 5, "dataset": "mnist2restyled",
        "ablation": "none",          # "none" | "no-cycle" | "no-identity"
        "lambda_cycle": 10.0, "lambda_identity": 0.5,
        "a_channels": 3,
        "ngf": 64, "ndf": 64, "n_blocks": 6, "d_layers": 1, "norm": "instance",
        "pool_size": 50,
        "lr": 2e-4, "betas": (0.5, 0.999),
        "decay_steps": None,         # None: constant lr; N: linear decay to 0 over steps N/2..N
    }

    def build(self):
        hp = self.hp
        if hp["ablation"] not in ABLATIONS:
            raise ValueError(f"CycleGAN: ablation must be one of {ABLATIONS}, got {hp['ablation']!r}")
        shape = self.data_shape
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 4:
            raise ValueError(f"CycleGAN: expects square images (C, H, W) with H a multiple of 4 "
                             f"(x = concat(A, B) along channels), got data_shape {shape}")
        a = int(hp["a_channels"])
        if not 1 <= a < shape[0]:
            raise ValueError(f"CycleGAN: a_channels must lie in [1, {shape[0] - 1}], got {a}")
        self.a_channels, self.b_channels = a, shape[0] - a
        self.lam_cycle = 0.0 if hp["ablation"] == "no-cycle" else float(hp["lambda_cycle"])
        self.lam_idt = 0.0 if hp["ablation"] == "no-identity" else float(hp["lambda_identity"])
        if self.lam_idt and self.a_channels != self.b_channels:
            raise ValueError(f"CycleGAN: the identity loss needs A and B with the same channels, "
                             f"got {self.a_channels} and {self.b_channels}; set "
                             "lambda_identity=0 or ablation='no-identity'")
        r, cb = self.rng, self.b_channels
        self.G_AB = resnet_generator(a, cb, hp["ngf"], hp["n_blocks"], hp["norm"], rng=r)
        self.G_BA = resnet_generator(cb, a, hp["ngf"], hp["n_blocks"], hp["norm"], rng=r)
        self.D_A = PatchDiscriminator(a, hp["ndf"], hp["d_layers"], hp["norm"], rng=r)
        self.D_B = PatchDiscriminator(cb, hp["ndf"], hp["d_layers"], hp["norm"], rng=r)
        for net in self.networks().values():
            dcgan_init_(net, rng=r)
        self.pool_A = ImagePool(self, hp["pool_size"])     # fakes F(b), judged by D_A
        self.pool_B = ImagePool(self, hp["pool_size"])     # fakes G(a), judged by D_B
        self._preview = None

    def build_optimizers(self):
        b, lr = tuple(self.hp["betas"]), self.hp["lr"]
        self.opts = {k: Adam(net.parameters(), lr=lr, betas=b) for k, net in self.networks().items()}

    def networks(self):
        return {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}

    def optimizers(self):
        return self.opts

    def split(self, x):
        return x[:, :self.a_channels], x[:, self.a_channels:]

    def graph_key(self):
        """CUDA graphs (scratchgan.runtime): while a pool fills, its host-side fill count
        changes the step's structure, so each filling step gets a key of its own (seen once:
        run eagerly); once both pools are full every step has one structure (device draws,
        gathers and scatters only) and is captured and replayed."""
        full = all(p.size == 0 or p.count >= p.size for p in (self.pool_A, self.pool_B))
        return ("pools full",) if full else ("pools filling", self.pool_A.count, self.pool_B.count)

    # -- gradients (no optimizer steps) -------------------------------------------------
    def _direction_grads(self, real, G, F, D):
        """One half of the generators' objective: GAN(D(G(real)), 1) + lambda |F(G(real)) - real|.
        Fills G's and F's .grad; returns (fake, logs)."""
        fake = G(real)
        logits = D(fake)
        l_gan, c = lsgan_forward(logits, 1.0)
        with frozen(D):
            d_fake = D.backward(lsgan_backward(1.0, c))
        l_cyc = None
        if self.lam_cycle:
            rec = F(fake)
            l_cyc, g = l1_forward(rec, real)
            d_fake = d_fake + F.backward(g * g.dtype.type(self.lam_cycle))
        G.backward(d_fake, input_grad=False)
        return fake, l_gan, l_cyc

    def _identity_grads(self, real, G):
        """lambda_idt lambda |G(real) - real| with real from G's target domain."""
        idt = G(real)
        l_idt, g = l1_forward(idt, real)
        G.backward(g * g.dtype.type(self.lam_idt * self.hp["lambda_cycle"]), input_grad=False)
        return l_idt

    def generator_grads(self, real_A, real_B):
        """Fill G_AB's and G_BA's .grad with the generators' full objective; D_A, D_B fixed.
        Returns (fake_B, fake_A, logs)."""
        fake_B, gan_AB, cyc_A = self._direction_grads(real_A, self.G_AB, self.G_BA, self.D_B)
        fake_A, gan_BA, cyc_B = self._direction_grads(real_B, self.G_BA, self.G_AB, self.D_A)
        logs = {"loss_g_ab": gan_AB, "loss_g_ba": gan_BA}
        total = gan_AB + gan_BA
        if self.lam_cycle:
            logs.update(loss_cycle_a=cyc_A, loss_cycle_b=cyc_B)
            total = total + self.lam_cycle * (cyc_A + cyc_B)
        if self.lam_idt:
            idt_B = self._identity_grads(real_B, self.G_AB)     # G(b) ~ b
            idt_A = self._identity_grads(real_A, self.G_BA)     # F(a) ~ a
            logs.update(loss_idt_a=idt_A, loss_idt_b=idt_B)
            total = total + self.lam_idt * self.hp["lambda_cycle"] * (idt_A + idt_B)
        logs["loss_g"] = total
        return fake_B, fake_A, logs

    def discriminator_grads(self, D, real, fake):
        """Fill D's .grad with 0.5 [(D(real) - 1)^2 + D(fake)^2] (fake held fixed)."""
        l_real, c = lsgan_forward(D(real), 1.0)
        D.backward(lsgan_backward(0.5, c), input_grad=False)
        l_fake, c = lsgan_forward(D(fake), 0.0)
        D.backward(lsgan_backward(0.5, c), input_grad=False)
        return 0.5 * (l_real + l_fake)

    # -- one iteration of the authors' optimize_parameters ----------------------------------
    def train_step(self, x, y=None):
        self.apply_schedule()
        x = self._check_x(x)
        real_A, real_B = self.split(x)
        for k in ("G_AB", "G_BA"):                         # (1) G and F, D_A and D_B fixed
            self.opts[k].zero_grad()
        fake_B, fake_A, logs = self.generator_grads(real_A, real_B)
        self.opts["G_AB"].step()
        self.opts["G_BA"].step()
        self.opts["D_B"].zero_grad()                       # (2) D_B on real b, pooled G(a)
        logs["loss_d_b"] = self.discriminator_grads(self.D_B, real_B, self.pool_B.query(fake_B))
        self.opts["D_B"].step()
        self.opts["D_A"].zero_grad()                       #     D_A on real a, pooled F(b)
        logs["loss_d_a"] = self.discriminator_grads(self.D_A, real_A, self.pool_A.query(fake_A))
        self.opts["D_A"].step()
        self.step += 1
        return logs

    # -- state: the pools ----------------------------------------------------------------
    def extra_state(self):
        return {"pool_A": self.pool_A.state(), "pool_B": self.pool_B.state()}

    def load_extra_state(self, state):
        if "pool_A" in state:
            self.pool_A.load(state["pool_A"])
            self.pool_B.load(state["pool_B"])

    # -- translation, previews -------------------------------------------------------------
    def translate(self, x, direction="AB"):
        """G(a) (``"AB"``) or F(b) (``"BA"``) at test time (no cache)."""
        if direction not in ("AB", "BA"):
            raise ValueError(f"CycleGAN.translate: direction must be 'AB' or 'BA', got {direction!r}")
        return self._eval_forward(self.G_AB if direction == "AB" else self.G_BA, self.to_model(x))

    def set_preview(self, x):
        self._preview = np.asarray(x[:20]) if not hasattr(x, "__cuda_array_interface__") else x[:20]

    def sample_noise(self, n, rng=None, labels=None):
        """Preview inputs: the first examples given to :meth:`set_preview` (n // 6 of them)."""
        k = max(1, min(int(n) // 6, 20))
        k = k - k % 10 if k >= 10 else k       # whole rows of 10 in the grid
        if self._preview is not None:
            return {"x": self.to_model(self._preview[:k])}
        return {"x": self.xp.full((k,) + self.data_shape, self.data_range[0], dtype=self.dtype)}

    def generate(self, noise):
        """Rows of up to 10: a, G(a), F(G(a)), b, F(b), G(F(b))."""
        a, b = self.split(noise["x"])
        fb = self.translate(a, "AB")
        fa = self.translate(b, "BA")
        return interleave_rows([a, fb, self.translate(fb, "BA"), b, fa, self.translate(fa, "AB")])
