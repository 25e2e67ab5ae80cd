"""PyTorch twins of every scratchgan model's ``train_step`` (tests and benchmarks).

``make_twin(model, device="cpu", dtype=None) -> Twin`` builds torch networks with the same
architecture as ``model`` (converted layer by layer from ``model.networks()``, so parameter
and buffer names equal scratchgan's ``state_dict`` names), copies the model's current
weights, BatchNorm buffers and optimizer state, and builds one ``torch.optim`` optimizer per
``model.optimizers()`` entry over the same parameters with the same hyperparameters.

``Twin.train_step(x, y=None, draws=None)`` runs one step of the same algorithm with autograd:
the same passes in the same order (each forward of a network draws its dropout masks when it
runs, as scratchgan's layers do), the same losses on logits with the same reductions, the same
optimizer steps, schedules and clipping; a network the model holds fixed in a pass (D in the
G pass: ``scratchgan.nn.module.frozen``) is held fixed here too (its parameters stop
requiring gradients for that pass). ``x`` is a tensor (or NumPy array), or a list of
``batches_per_step()`` of them; the losses come back as 0-d tensors (no host read). ``draws``:

* ``None``: the twin draws its own noise and masks with torch on its device (benchmarks;
  set ``twin.generator`` to a ``torch.Generator`` to seed them);
* an iterator of NumPy arrays: every random number the step needs is taken from it, in the
  order in which the scratchgan model draws them from ``model.random`` (tests; see
  ``record_draws``). Noise arrays are used as drawn (a normal already carries its std),
  integer arrays are labels/categories, and a dropout layer takes one uniform array ``u`` of
  its input's shape and keeps ``u >= p`` (p rounded to u's dtype, float32 in scratchgan).
  A draw of the wrong shape raises (the orders differ).

Draw order per step (the model's calls on ``model.random``; the twins consume them in the
same order; shapes for a minibatch of m rows):

* ``gan``/``dcgan`` (Algorithm 1, k D steps): for each D step: z (``uniform``, (m, z_dim):
  U[-sqrt3, sqrt3] for gan, U[-1, 1] for dcgan); then the forward passes' dropout masks in
  pass order: G(z) under no_grad (no dropout in gan/dcgan G), D(x_real), D(G(z)) -- the paper
  D draws three masks per pass (``random``: input (m, d), hidden (m, units), hidden
  (m, units)), the toy D two, dcgan none. Then the G step: z, then D(G(z))'s masks.
* ``cgan``: as gan, but each noise draw is z then the fake labels (``integers``, (m,)), and G
  draws two masks per pass (joined (m, hz+hy), hidden (m, h)), D two (joined (m, ux+uy),
  hidden (m, units)): D step z, labels, G masks, D(real) masks, D(fake) masks; G step z,
  labels, G masks, D masks.
* ``wgan``: per critic iteration z (``normal``, (m, z_dim)); then the G step's z.
* ``wgan-gp``: per critic iteration z (``normal``, (m, z_dim)), then ε (``uniform`` on
  [0, 1), (m, 1, 1, 1) for images, (m, 1) for flat data: one per sample, drawn after the
  D(x) and D(x̃) passes, before x̂); then the G step's z. No dropout anywhere.
* ``infogan``: D step z (``uniform`` (m, noise_dim)), cat (``integers`` (m,)), cont
  (``uniform`` (m, cont_dim)); G step the same three.
* ``vae``: eps (``normal``, (m, latent_dim)).
* ``aae`` (gaussian prior, no label prior): the prior sample (``normal`` with std
  prior_std, (m, code_dim)), after the reconstruction phase.

``record_draws(model)`` records those arrays: a context manager that shadows the draw
methods (uniform, random, normal, integers) of ``model.random`` with recording wrappers on
the instance, so the model's noise draws and its dropout layers (which hold the same stream)
are all recorded, and removes them on exit.

``Twin.parameters_numpy()`` returns ``{net: {name: ndarray}}`` with scratchgan's state_dict
names: parameters and BatchNorm running statistics.
"""
from __future__ import annotations

import contextlib
import copy
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from ..interop import torch_layers

__all__ = ["make_twin", "Twin", "record_draws", "DrawRecorder", "ReplayDraws", "TorchDraws",
           "compare_parameters", "convert_network", "TWINS", "frozen"]

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


# ----------------------------------------------------------------------------- recording
DRAW_METHODS = ("uniform", "random", "normal", "integers")


def model_stream(model):
    """The object every random draw of ``model.train_step`` goes through: ``model.random``, a
    :class:`scratchgan.philox.Philox` stream shared by the model's noise draws and its dropout
    layers."""
    return model.random


class DrawRecorder:
    """Records what the draw methods of one stream return: ``arrays`` (host NumPy copies, in
    call order) and ``calls`` (``(method, shape)``). Only outermost calls count
    (``Philox.random`` calls ``uniform`` internally)."""

    def __init__(self, stream):
        self.stream, self.arrays, self.calls, self._depth = stream, [], [], 0

    def wrap(self, name, method):
        def recorded(*args, **kwargs):
            self._depth += 1
            try:
                out = method(*args, **kwargs)
            finally:
                self._depth -= 1
            if self._depth == 0:
                a = _host(out)
                self.arrays.append(a)
                self.calls.append((name, a.shape))
            return out
        return recorded


def _host(a):
    """A NumPy copy of a NumPy/CuPy array (or scalar)."""
    if hasattr(a, "get") and hasattr(a, "__cuda_array_interface__"):
        a = a.get()
    return np.array(a, copy=True)


@contextlib.contextmanager
def record_draws(model):
    """``with record_draws(model) as rec: model.train_step(...)``: ``rec.arrays`` holds every
    array the step drew from ``model.random``, in order.

    The stream's draw methods are shadowed by recording wrappers set on the instance (so
    every holder of the stream, the model and its dropout layers alike, is recorded, and
    ``isinstance`` checks still see a Philox); they are removed on exit."""
    stream = model_stream(model)
    rec = DrawRecorder(stream)
    patched = []
    try:
        for name in DRAW_METHODS:
            setattr(stream, name, rec.wrap(name, getattr(stream, name)))
            patched.append(name)
        yield rec
    finally:
        for name in patched:
            delattr(stream, name)


# ----------------------------------------------------------------------------- draw sources
class TorchDraws:
    """The twin's own draws with torch on ``device`` (``generator``: optional torch.Generator)."""

    def __init__(self, device, dtype, generator=None):
        self.device, self.dtype, self.gen = torch.device(device), dtype, generator

    def uniform(self, shape, low, high):
        u = torch.rand(shape, generator=self.gen, device=self.device, dtype=self.dtype)
        return u * (high - low) + low

    def normal(self, shape, std=1.0):
        z = torch.randn(shape, generator=self.gen, device=self.device, dtype=self.dtype)
        return z if std == 1.0 else z * std

    def integers(self, high, shape):
        return torch.randint(0, high, shape, generator=self.gen, device=self.device)

    def keep(self, shape, p):
        # float32 uniforms, as scratchgan's dropout draws them
        return torch.rand(shape, generator=self.gen, device=self.device) >= p

    def skip_repeat(self, k):
        """The model drew its last ``k`` masks twice (a rewound stream); the twin's own draws
        need no skipping."""


class ReplayDraws:
    """Recorded arrays, taken in order; each must have the shape the twin expects."""

    def __init__(self, arrays, device, dtype):
        self.it = iter(arrays)
        self.device, self.dtype = torch.device(device), dtype
        self.n = 0

    def _next(self, what, shape):
        try:
            a = np.asarray(next(self.it))
        except StopIteration:
            raise RuntimeError(f"ReplayDraws: draw #{self.n} ({what}, shape {tuple(shape)}) "
                               f"requested but the recorded draws are exhausted") from None
        if tuple(a.shape) != tuple(shape):
            raise RuntimeError(f"ReplayDraws: draw #{self.n} ({what}) has shape {a.shape}, the "
                               f"twin expected {tuple(shape)}: the draw orders differ")
        self.n += 1
        self.history = getattr(self, "history", []) + [a]
        return a

    def skip_repeat(self, k):
        """The model rewound its stream and drew its last ``k`` arrays again (the GAN's
        official variant evaluates the fake pass twice with the same masks): consume the
        repeats, and fail unless each equals the draw it repeats."""
        prev = self.history[-k:]
        for i, a in enumerate(prev):
            b = self._next("repeated draw", a.shape)
            if not np.array_equal(a, b):
                raise RuntimeError(f"ReplayDraws: draw #{self.n - 1} should repeat draw "
                                   f"#{self.n - 1 - k}, but differs: the rewind did not "
                                   f"reproduce the stream")

    def _float(self, a):
        return torch.as_tensor(a).to(device=self.device, dtype=self.dtype)

    def uniform(self, shape, low, high):
        return self._float(self._next("uniform", shape))

    def normal(self, shape, std=1.0):
        return self._float(self._next("normal", shape))      # drawn with its std already

    def integers(self, high, shape):
        a = self._next("integers", shape)
        if a.dtype.kind not in "iu":
            raise RuntimeError(f"ReplayDraws: draw #{self.n - 1} should be integers, got {a.dtype}")
        return torch.as_tensor(a.astype(np.int64)).to(self.device)

    def keep(self, shape, p):
        u = self._next("dropout uniform", shape)
        # p rounded to u's dtype, as scratchgan compares
        return torch.as_tensor(u >= u.dtype.type(p)).to(self.device)


class _DrawBox:
    """Holder shared by a twin and its dropout layers: the draw source of the running step."""
    source = None


# ----------------------------------------------------------------------------- layers
class TDropout(torch.nn.Module):
    """Inverted dropout whose keep-mask comes from the twin's draw source (u >= p)."""

    def __init__(self, p, box):
        super().__init__()
        self.p, self.box = float(p), box

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = self.box.source.keep(tuple(x.shape), self.p)
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))


#: the layers scratchgan.interop builds PyTorch networks from (one definition for both)
TMaxout, TReshape, TSoftplus, TConcat, TTwoInput = (
    torch_layers()[1][k] for k in ("Maxout", "Reshape", "Softplus", "Concat", "TwoInputNet"))


def _children(mod):
    return list(mod._modules.items())


def _convert(mod, box):
    """A torch module equal to scratchgan module ``mod`` (parameters not yet copied)."""
    cls = type(mod).__name__
    if cls == "Sequential":
        return torch.nn.Sequential(OrderedDict((k, _convert(m, box)) for k, m in _children(mod)))
    if cls == "TwoInputNet":
        return TTwoInput(_convert(mod.x_branch, box), _convert(mod.y_branch, box),
                         _convert(mod.trunk, box), _convert(mod.join, box))
    if cls == "Linear":
        return torch.nn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
    if cls == "Maxout":
        return TMaxout(mod.in_features, mod.units, mod.pieces)
    if cls == "Conv2d":
        return torch.nn.Conv2d(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride,
                               mod.padding, mod.dilation, bias=mod.bias is not None)
    if cls == "ConvTranspose2d":
        return torch.nn.ConvTranspose2d(mod.in_channels, mod.out_channels, mod.kernel_size,
                                        mod.stride, mod.padding, mod.output_padding,
                                        bias=mod.bias is not None, dilation=mod.dilation)
    if cls in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(torch.nn, cls)(mod.num_features, eps=mod.eps, momentum=mod.momentum,
                                      affine=mod.affine)
    if cls == "ReLU":
        return torch.nn.ReLU()
    if cls == "LeakyReLU":
        return torch.nn.LeakyReLU(mod.negative_slope)
    if cls == "Tanh":
        return torch.nn.Tanh()
    if cls == "Sigmoid":
        return torch.nn.Sigmoid()
    if cls == "Softplus":
        return TSoftplus()
    if cls == "Dropout":
        return TDropout(mod.p, box)
    if cls == "Flatten":
        return torch.nn.Flatten(mod.start_dim, -1)
    if cls == "Unflatten":
        return torch.nn.Unflatten(mod.dim, mod.sizes)
    if cls == "Reshape":
        return TReshape(mod.shape)
    if cls == "Concat":
        return TConcat(mod.dim)
    raise NotImplementedError(f"scratchgan.testing: no torch twin for layer {cls}")


def _torch_state_names(net):
    names = [n for n, _ in net.named_parameters()]
    names += [n for n, _ in net.named_buffers() if not n.endswith("num_batches_tracked")]
    return names


def convert_network(net, box, device, dtype):
    """(torch module, {name: torch param}) with ``net``'s architecture, weights and buffers."""
    t = _convert(net, box).to(device=device, dtype=dtype)
    sd = net.state_dict()
    want = _torch_state_names(t)
    if sorted(want) != sorted(sd):
        raise RuntimeError(f"scratchgan.testing: state names differ for {type(net).__name__}: torch "
                           f"{sorted(want)} vs scratchgan {sorted(sd)}")
    with torch.no_grad():
        for n, p in t.named_parameters():
            p.copy_(torch.as_tensor(np.asarray(sd[n])))
        for n, b in t.named_buffers():
            if n in sd:
                b.copy_(torch.as_tensor(np.asarray(sd[n])))
    t.train(net.training)
    return t


# ----------------------------------------------------------------------------- optimizers
def convert_optimizer(opt, param_map, device, dtype):
    """A torch.optim optimizer over the twins of ``opt.params`` with ``opt``'s hyperparameters
    and state (scratchgan's ``state_dict()``: type, hyperparameters, per-parameter slots)."""
    sd = opt.state_dict()
    kind = str(sd["type"])
    params = [param_map[id(p)] for p in opt.params]
    if kind == "SGD":
        t = torch.optim.SGD(params, lr=sd["lr"], momentum=sd["momentum"], dampening=0,
                            nesterov=bool(sd["nesterov"]), weight_decay=sd["weight_decay"])
    elif kind == "Adam":
        t = torch.optim.Adam(params, lr=sd["lr"], betas=tuple(sd["betas"]), eps=sd["eps"],
                             weight_decay=sd["weight_decay"])
    elif kind == "RMSprop":
        t = torch.optim.RMSprop(params, lr=sd["lr"], alpha=sd["alpha"], eps=sd["eps"],
                                momentum=sd["momentum"], centered=False)
    elif kind == "Adagrad":
        t = torch.optim.Adagrad(params, lr=sd["lr"], eps=sd["eps"], lr_decay=0,
                                weight_decay=0, initial_accumulator_value=0)
    else:
        raise NotImplementedError(f"scratchgan.testing: no torch optimizer for {kind}")

    def arr(key, i):
        return torch.as_tensor(np.asarray(sd[key][i])).to(device=device, dtype=dtype)

    sdt = torch.get_default_dtype()
    for i, p in enumerate(params):
        if kind == "SGD":
            st = {"momentum_buffer": arr("velocity", i)} if sd["momentum"] != 0 else {}
        elif kind == "Adam":
            st = {"step": torch.tensor(float(sd["t"][i]), dtype=sdt), "exp_avg": arr("m", i),
                  "exp_avg_sq": arr("v", i)}
        elif kind == "RMSprop":
            st = {"step": torch.tensor(0.0, dtype=sdt), "square_avg": arr("square_avg", i)}
            if sd["momentum"] > 0:
                st["momentum_buffer"] = arr("velocity", i)
        else:
            st = {"step": torch.tensor(0.0, dtype=sdt), "sum": arr("sum", i)}
        if st:
            t.state[p] = st
    return t


# ----------------------------------------------------------------------------- losses
def bce(logits, target):
    """scratchgan.ops.loss.bce_with_logits: mean over all elements of softplus(l) - t l."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)))


def generator_loss(name, logits):
    if name == "nonsaturating":          # mean softplus(-l) = bce(l, 1)
        return bce(logits, 1.0)
    if name == "minimax":                # -mean softplus(l) = -bce(l, 0)
        return -bce(logits, 0.0)
    if name == "logratio":               # -mean l
        return -logits.mean()
    raise ValueError(f"unknown generator loss {name!r}")


# ----------------------------------------------------------------------------- twins
class Twin:
    """Base: networks (``self.nets``), optimizers (``self.optimizers``), the step counter and
    hyperparameters copied from the model; subclasses implement ``_step``."""

    def __init__(self, model, device="cpu", dtype=None):
        self.name = model.name
        self.device = torch.device(device)
        self.dtype = TORCH_DTYPES[np.dtype(model.dtype if dtype is None else dtype)]
        self.hp = copy.deepcopy(model.hp)
        self.step = int(model.step)
        self.data_shape = tuple(model.data_shape)
        self.num_classes = int(model.num_classes)
        self.conditional = bool(model.conditional)
        self.generator = None            # an optional torch.Generator for draws=None
        self._box = _DrawBox()
        self.nets, param_map = {}, {}
        for k, net in model.networks().items():
            t = convert_network(net, self._box, self.device, self.dtype)
            tp = dict(t.named_parameters())
            for n, p in net.named_parameters():
                param_map[id(p)] = tp[n]
            self.nets[k] = t
        self.optimizers = {k: convert_optimizer(o, param_map, self.device, self.dtype)
                           for k, o in model.optimizers().items()}
        # gradients exist (zeros) from the start and zero_grad keeps them: every parameter of an
        # optimizer is stepped on every update, also with a zero gradient, as in scratchgan
        for t in self.nets.values():
            for p in t.parameters():
                p.grad = torch.zeros_like(p)

    # -- API ------------------------------------------------------------------------------
    def train_step(self, x, y=None, draws=None):
        self._box.source = (TorchDraws(self.device, self.dtype, self.generator) if draws is None
                            else ReplayDraws(draws, self.device, self.dtype))
        try:
            out = self._step(x, y)
        finally:
            self._box.source = None
        self.step += 1
        return out

    def parameters_numpy(self):
        out = {}
        for k, t in self.nets.items():
            out[k] = {n: _np(p) for n, p in t.named_parameters()}
            out[k].update({n: _np(b) for n, b in t.named_buffers()
                           if not n.endswith("num_batches_tracked")})
        return out

    def batches_per_step(self):
        return 1

    # -- helpers --------------------------------------------------------------------------
    @property
    def draw(self):
        return self._box.source

    def tensor(self, a):
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(a)).to(device=self.device, dtype=self.dtype)

    def labels(self, y):
        if isinstance(y, torch.Tensor):
            return y.to(device=self.device, dtype=torch.int64)
        return torch.as_tensor(np.asarray(y).astype(np.int64)).to(self.device)

    def one_hot(self, labels, k=None):
        return F.one_hot(labels, self.num_classes if k is None else k).to(self.dtype)

    def split(self, x, y=None):
        n = self.batches_per_step()
        if isinstance(x, (list, tuple)):
            if len(x) != n:
                raise ValueError(f"{self.name} twin: this step needs {n} minibatches, got {len(x)}")
            return list(x), list(y) if y is not None else [None] * n
        m = x.shape[0] // n
        return ([x[i * m:(i + 1) * m] for i in range(n)],
                [None if y is None else y[i * m:(i + 1) * m] for i in range(n)])

    def _step(self, x, y):  # pragma: no cover - abstract
        raise NotImplementedError


def _np(t):
    return t.detach().cpu().numpy().copy()


def _zero(opt):
    opt.zero_grad(set_to_none=False)


@contextlib.contextmanager
def frozen(*nets):
    """Hold networks fixed (scratchgan.nn.module.frozen): gradients flow through them to their
    inputs, none into their parameters."""
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class GANTwin(Twin):
    """gan (paper/toy), dcgan and cgan: GAN.train_step (Algorithm 1, k D steps, then G)."""

    def __init__(self, model, device="cpu", dtype=None):
        super().__init__(model, device, dtype)
        self.G, self.D = self.nets["G"], self.nets["D"]
        self.opt_G, self.opt_D = self.optimizers["G"], self.optimizers["D"]
        self.gaussian = self.name == "gan" and self.hp.get("noise") == "gaussian"
        if self.name == "dcgan":
            self.z_low, self.z_high = -1.0, 1.0
        else:
            s = math.sqrt(3.0)
            self.z_low, self.z_high = -s, s
        self.sgd = self.name in ("gan", "cgan") and self.hp.get("optimizer") == "sgd"

    def batches_per_step(self):
        return self.hp["k"]

    def schedule(self, t):
        """GAN.schedule: (lr, momentum) of update number t (official variant: momentum by
        epoch)."""
        hp = self.hp
        lr = max(hp["lr"] * math.exp(-t * math.log(hp["lr_decay"])), hp["min_lr"])
        if hp.get("variant") == "official":
            a, b = hp["momentum_start"], hp["momentum_saturate"]
            frac = min(1.0, max(0.0, (t // hp["steps_per_epoch"] + 1 - a) / (b - a)))
        else:
            sat = hp["momentum_saturate_step"]
            frac = min(1.0, t / sat) if sat > 0 else 1.0
        return lr, hp["momentum"] + (hp["final_momentum"] - hp["momentum"]) * frac

    def sample_noise(self, m):
        if self.gaussian:
            z = self.draw.normal((m, self.hp["z_dim"]))
        else:
            z = self.draw.uniform((m, self.hp["z_dim"]), self.z_low, self.z_high)
        if not self.conditional:
            return {"z": z}
        labels = self.draw.integers(self.num_classes, (m,))
        return {"z": z, "y1h": self.one_hot(labels)}

    def g_forward(self, noise):
        return self.G(noise["z"], noise["y1h"]) if self.conditional else self.G(noise["z"])

    def d_forward(self, x, y1h):
        return self.D(x, y1h) if self.conditional else self.D(x)

    def _step(self, x, y):
        if self.sgd:                                          # apply_schedule
            lr, mom = self.schedule(self.step)
            for opt in self.optimizers.values():
                for g in opt.param_groups:
                    g["lr"], g["momentum"] = lr, mom
        if self.hp.get("variant") == "official":
            return self._official_step(x)
        xs, ys = self.split(x, y)
        out = {}
        for x_i, y_i in zip(xs, ys):                           # k D steps
            x_i = self.tensor(x_i)
            m = x_i.shape[0]
            y1h = self.one_hot(self.labels(y_i)) if self.conditional else None
            noise = self.sample_noise(m)
            _zero(self.opt_D)
            with torch.no_grad():
                x_fake = self.g_forward(noise)
            real = self.d_forward(x_i, y1h)
            l_real = bce(real, 1.0)
            l_real.backward()
            fake = self.d_forward(x_fake, noise.get("y1h"))
            l_fake = bce(fake, 0.0)
            l_fake.backward()
            self.opt_D.step()
            out["loss_d"] = (l_real + l_fake).detach()
        noise = self.sample_noise(m)                          # G step, D held fixed
        _zero(self.opt_G)
        with frozen(self.D):
            logits = self.d_forward(self.g_forward(noise), noise.get("y1h"))
            lg = generator_loss(self.hp["generator_loss"], logits)
            lg.backward()
        self.opt_G.step()
        out["loss_g"] = lg.detach()
        return out


    def _official_step(self, x):
        """The official variant with autograd: ONE forward S = G(z), D(x), D(S); d_obj and
        g_obj from it; both gradients at the same parameters; one simultaneous update."""
        x = self.tensor(self.split(x)[0][0])
        noise = self.sample_noise(x.shape[0])
        _zero(self.opt_D)
        _zero(self.opt_G)
        s = self.g_forward(noise)
        real = self.d_forward(x, None)
        fake = self.d_forward(s, None)
        n_masks = sum(isinstance(mod, TDropout) and mod.p > 0 for mod in self.D.modules())
        self.draw.skip_repeat(n_masks)        # the model's second pass over S, same masks
        d_obj = 0.5 * (bce(real, 1.0) + bce(fake, 0.0))
        g_obj = bce(fake, 1.0)
        d_params = [p for p in self.D.parameters()]
        g_params = [p for p in self.G.parameters()]
        gd = torch.autograd.grad(d_obj, d_params, retain_graph=True)
        gg = torch.autograd.grad(g_obj, g_params)
        for p, g in zip(d_params + g_params, gd + gg):
            p.grad = g
        self.opt_D.step()
        self.opt_G.step()
        return {"loss_d": d_obj.detach(), "loss_g": g_obj.detach()}


class WGANTwin(GANTwin):
    """WGAN Algorithm 1: critic steps with RMSprop and clipping, then a G step."""

    def batches_per_step(self):
        hp = self.hp
        t = self.step
        if hp["warmup"] and (t < hp["warmup_g_iters"] or t % hp["warmup_every"] == 0):
            return hp["warmup_iters"]
        return hp["n_critic"]

    def sample_noise(self, m):
        return {"z": self.draw.normal((m, self.hp["z_dim"]))}

    def _step(self, x, y):
        xs, _ = self.split(x)
        out = {}
        c = float(self.hp["clip"])
        for x_i in xs:
            x_i = self.tensor(x_i)
            m = x_i.shape[0]
            noise = self.sample_noise(m)
            _zero(self.opt_D)
            with torch.no_grad():
                x_fake = self.G(noise["z"])
            l_real = -self.D(x_i).mean()                      # -mean f(x)
            l_real.backward()
            l_fake = -self.D(x_fake).mean()                   # enters with sign -1
            (-l_fake).backward()
            self.opt_D.step()
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-c, c)
            out["loss_d"] = (l_real - l_fake).detach()
        noise = self.sample_noise(m)
        _zero(self.opt_G)
        with frozen(self.D):                                  # w held fixed (line 9)
            lg = -self.D(self.G(noise["z"])).mean()
            lg.backward()
        self.opt_G.step()
        out["loss_g"] = lg.detach()
        return out


class WGANGPTwin(WGANTwin):
    """WGAN-GP Algorithm 1 (scratchgan.models.wgan_gp): n_critic critic updates with the
    gradient penalty, then a G update, all with Adam (the model's lr, betas and eps).

    A critic update (:meth:`critic_step`), in the model's order: x̃ = G(z) under no_grad;
    −mean D(x) and +mean D(x̃) backward; ε (n, 1, ...) drawn; x̂ = εx + (1 − ε)x̃ as a leaf
    that requires grad; ``g = torch.autograd.grad(D(x̂).sum(), x̂, create_graph=True)``;
    ``gp = λ mean_n (‖g_n‖₂ − 1)²`` with the norm ``sqrt(Σ g²)`` over all of a sample's
    non-batch axes (no eps inside the sqrt, as ``gradient_penalty_forward``); then
    ``gp.backward(inputs=D's parameters)``: PyTorch's double backward gives ∂gp/∂w, and the
    ``inputs=`` restriction skips the Hessian-vector product down to x̂ that nobody uses (the
    model skips it too: ``penalty_backward(..., input_grad=False)``). The G update is WGAN's:
    −mean D(G(z)) with D frozen.
    """

    def batches_per_step(self):
        return self.hp["n_critic"]

    def draw_epsilon(self, m):
        return self.draw.uniform((m,) + (1,) * len(self.data_shape), 0.0, 1.0)

    def critic_update(self, x, penalty=True, draws=None):
        """One critic update on its own (benchmarks: what the penalty costs), with the draw
        source of :meth:`train_step` (``draws=None``: torch's own). Does not advance
        ``self.step``."""
        self._box.source = (TorchDraws(self.device, self.dtype, self.generator) if draws is None
                            else ReplayDraws(draws, self.device, self.dtype))
        try:
            return self.critic_step(x, penalty)
        finally:
            self._box.source = None

    def critic_step(self, x_i, penalty=True):
        """One critic update (lines 4-8) on the minibatch ``x_i``; returns its logs.
        ``penalty=False``: the same update with λ = 0 and no ε, x̂ or double backward (the
        plain WGAN critic step under Adam; benchmarks time it against the penalised one)."""
        x_i = self.tensor(x_i)
        m = x_i.shape[0]
        noise = self.sample_noise(m)                          # line 4: z
        _zero(self.opt_D)
        with torch.no_grad():
            x_fake = self.G(noise["z"])                       # line 5
        l_real = -self.D(x_i).mean()                          # -mean D(x)
        l_real.backward()
        l_fake = -self.D(x_fake).mean()                       # enters with sign -1
        (-l_fake).backward()
        wd = (l_real - l_fake).detach()                       # mean D(x̃) - mean D(x)
        out = {"loss_d": wd, "em_estimate": -wd}
        if penalty:
            eps = self.draw_epsilon(m)                        # line 4: ε ~ U[0, 1]
            x_hat = (eps * x_i + (1 - eps) * x_fake).requires_grad_(True)    # line 6
            g, = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)
            norm = torch.sqrt((g * g).sum(dim=tuple(range(1, g.dim()))))
            gp = self.hp["lambda_gp"] * ((norm - 1.0) ** 2).mean()          # line 7
            gp.backward(inputs=self._d_params)
            out.update({"loss_d": (wd + gp).detach(), "gp": gp.detach(),
                        "grad_norm": norm.detach().mean()})
        self.opt_D.step()                                     # line 8
        return out

    @property
    def _d_params(self):
        return [p for p in self.D.parameters() if p.requires_grad]

    def _step(self, x, y):
        xs, _ = self.split(x)
        out = {}
        for x_i in xs:                                        # line 2
            out = self.critic_step(x_i)
        noise = self.sample_noise(xs[-1].shape[0])            # line 9
        _zero(self.opt_G)
        with frozen(self.D):                                  # w held fixed (line 10)
            lg = -self.D(self.G(noise["z"])).mean()
            lg.backward()
        self.opt_G.step()                                     # line 10
        out["loss_g"] = lg.detach()
        return out


class InfoGANTwin(Twin):
    """InfoGAN: D/Q update on bce + lambda (-log Q), then G update on gen loss + lambda (-log Q)."""

    def __init__(self, model, device="cpu", dtype=None):
        super().__init__(model, device, dtype)
        self.G, self.trunk = self.nets["G"], self.nets["trunk"]
        self.d_head, self.q_head = self.nets["d_head"], self.nets["q_head"]
        self.opt_G, self.opt_D = self.optimizers["G"], self.optimizers["D"]

    def sample_noise(self, m):
        hp = self.hp
        z = self.draw.uniform((m, hp["noise_dim"]), -1.0, 1.0)
        cat = self.draw.integers(hp["cat_dim"], (m,))
        cont = self.draw.uniform((m, hp["cont_dim"]), -1.0, 1.0)
        inp = torch.cat([z, self.one_hot(cat, hp["cat_dim"]), cont], dim=1)
        return {"cat": cat, "cont": cont, "input": inp}

    def info_loss(self, q, noise):
        hp = self.hp
        K = hp["cat_dim"]
        ce = F.cross_entropy(q[:, :K], noise["cat"])
        loss = hp["lambda_cat"] * ce
        if hp["cont_dim"]:
            means = q[:, K:]
            n = means.shape[0]
            const = means.numel() * 0.5 * math.log(2 * math.pi)   # log std = 0 (std 1)
            nll = (((noise["cont"] - means) ** 2).sum() / 2 + const) / n
            loss = loss + hp["lambda_cont"] * nll
        return loss

    def _step(self, x, y):
        x = self.tensor(x)
        m = x.shape[0]
        noise = self.sample_noise(m)
        _zero(self.opt_D)
        with torch.no_grad():
            x_fake = self.G(noise["input"])
        l_real = bce(self.d_head(self.trunk(x)), 1.0)
        l_real.backward()
        h = self.trunk(x_fake)
        l_fake = bce(self.d_head(h), 0.0)
        info = self.info_loss(self.q_head(h), noise)
        (l_fake + info).backward()
        self.opt_D.step()
        noise = self.sample_noise(m)
        _zero(self.opt_G)
        with frozen(self.trunk, self.d_head, self.q_head):    # D and Q held fixed
            h = self.trunk(self.G(noise["input"]))
            lg = generator_loss(self.hp["generator_loss"], self.d_head(h))
            info_g = self.info_loss(self.q_head(h), noise)
            (lg + info_g).backward()
        self.opt_G.step()
        return {"loss_d": (l_real + l_fake).detach(), "loss_q": info.detach(),
                "loss_g": lg.detach(), "loss_info_g": info_g.detach()}


class VAETwin(Twin):
    """VAE Algorithm 1: eps ~ N(0, I), loss = Bernoulli NLL + KL (batch means), one update."""

    def __init__(self, model, device="cpu", dtype=None):
        super().__init__(model, device, dtype)
        self.encoder, self.decoder = self.nets["encoder"], self.nets["decoder"]
        self.opt = self.optimizers["opt"]

    def _step(self, x, y):
        x = self.tensor(x)
        n, k = x.shape[0], self.hp["latent_dim"]
        eps = self.draw.normal((n, k))
        _zero(self.opt)
        h = self.encoder(x)
        mu, logvar = h[:, :k], h[:, k:]
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z)
        rec = F.binary_cross_entropy_with_logits(logits, x.reshape(n, -1), reduction="sum") / n
        kl = 0.5 * (torch.exp(logvar) + mu * mu - 1 - logvar).sum() / n
        loss = rec + kl
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "recon_nll": rec.detach(), "kl": kl.detach()}


class AAETwin(Twin):
    """AAE: reconstruction phase, then D on prior vs codes, then the encoder fools D."""

    def __init__(self, model, device="cpu", dtype=None):
        super().__init__(model, device, dtype)
        if self.conditional or self.hp["prior"] != "gaussian":
            raise NotImplementedError("scratchgan.testing: the AAE twin covers the gaussian prior "
                                      "without label_prior")
        self.encoder, self.decoder, self.D = (self.nets["encoder"], self.nets["decoder"],
                                              self.nets["D"])
        self.opt_ae, self.opt_D, self.opt_G = (self.optimizers["ae"], self.optimizers["D"],
                                               self.optimizers["G"])

    def _step(self, x, y):
        x = self.tensor(x)
        m = x.shape[0]
        d = math.prod(self.data_shape)
        _zero(self.opt_ae)                                    # (1) reconstruction
        xhat = self.decoder(self.encoder(x))
        recon = d * ((xhat - x) ** 2).mean()
        recon.backward()
        self.opt_ae.step()
        z_prior = self.draw.normal((m, self.hp["code_dim"]), self.hp["prior_std"])
        _zero(self.opt_D)                                     # (2a) D: prior 1, codes 0
        with torch.no_grad():
            z_fake = self.encoder(x)
        a = bce(self.D(z_prior), 1.0)
        a.backward()
        b = bce(self.D(z_fake), 0.0)
        b.backward()
        self.opt_D.step()
        _zero(self.opt_G)                                     # (2b) encoder fools D
        with frozen(self.D):
            lg = bce(self.D(self.encoder(x)), 1.0)
            lg.backward()
        self.opt_G.step()
        return {"loss_recon": recon.detach(), "loss_d": (a + b).detach(), "loss_g": lg.detach()}


TWINS = {"gan": GANTwin, "dcgan": GANTwin, "cgan": GANTwin, "wgan": WGANTwin,
         "wgan-gp": WGANGPTwin, "infogan": InfoGANTwin, "vae": VAETwin, "aae": AAETwin}


def make_twin(model, device="cpu", dtype=None) -> Twin:
    """The torch twin of ``model`` (same architecture, weights, buffers, optimizer state and
    hyperparameters) on ``device`` in ``dtype`` (default: the model's)."""
    try:
        cls = TWINS[model.name]
    except KeyError:
        raise NotImplementedError(f"scratchgan.testing: no twin for model {model.name!r}") from None
    return cls(model, device=device, dtype=dtype)


# ----------------------------------------------------------------------------- comparison
def compare_parameters(model, twin):
    """Per tensor ``||twin - model|| / ||model||`` over every network's state_dict entry.

    Returns ``(worst, table)``: ``worst = (rel, "net.name")`` and ``table = {"net.name": rel}``.
    """
    theirs = twin.parameters_numpy()
    table = {}
    for k, net in model.networks().items():
        for n, ref in net.state_dict().items():
            ref = np.asarray(ref, dtype=np.float64)
            got = np.asarray(theirs[k][n], dtype=np.float64)
            den = np.linalg.norm(ref)
            num = np.linalg.norm(got - ref)
            table[f"{k}.{n}"] = num / den if den > 0 else num
    worst = max((v, n) for n, v in table.items())
    return worst, table
