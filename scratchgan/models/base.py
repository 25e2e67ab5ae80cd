"""The interface every model implements, and the plumbing they share.

A model owns its networks (``networks()``), its optimizers (``optimizers()``),
two random generators and a step counter (``self.step``: completed
``train_step`` calls, i.e. generator iterations for the GANs):

* ``self.rng``, a NumPy ``Generator``: initial weights, and draws a caller asks
  for with an explicit generator (``sample_noise(n, rng=g)``: fixed-noise grids,
  metrics), made on the host and moved;
* ``self.random``, a :class:`scratchgan.philox.Philox` stream on the model's
  device: every draw *inside* ``train_step`` (noise, codes, fake labels, dropout
  masks). Its counter lives on the device, so a step draws without a host copy
  or a host synchronisation (and can be captured in a CUDA graph), and its
  NumPy twin gives the same numbers, so a CPU run and a GPU run see the same
  noise.

Devices: parameters live on ``self.device`` ('cpu' -> NumPy, 'cuda' -> CuPy).
Each network's parameters and gradients are views into one flat buffer
(``scratchgan.nn.flat``), so ``zero_grad`` is one fill and each optimizer one
fused update per network.

Losses and logs: ``train_step`` returns 0-d arrays on the model's device (and
plain ints for counts); nothing in a step reads a value back to the host. The
trainer converts them to floats at its log interval.

Real data per step: a step of the paper's algorithm may consume several real
minibatches (GAN's k discriminator steps, WGAN's n_critic critic steps).
``batches_per_step()`` says how many; ``train_step`` accepts either a list of
that many minibatches or one array holding them stacked along axis 0 (split
into equal parts). Models that use one minibatch per step accept one array.

Checkpoints: ``state_dict()`` returns host copies of everything a bit-identical
resume needs: every network (parameters and BatchNorm buffers), every
optimizer's state, the step counter, the model's generator state (``"rng"``)
the Philox stream's counter (``"random"``) and any extra schedule state
(``"extra"``). Schedules here are functions of ``self.step``, so the counter
restores them.
"""
from __future__ import annotations

import copy

import numpy as np

from ..backend import check_device, get_array_module, is_gpu_array, to_device
from ..cuda.loss import sigmoid_mean
from ..nn.flat import flatten_parameters
from ..nn.module import no_grad
from ..ops.activation import sigmoid
from ..optim.schedules import linear_decay_second_half
from ..philox import Philox
from ..rng import get_rng

__all__ = ["LOOP_KEYS", "check_label_range", "mean_sigmoid", "SecondHalfLinearDecay",
           "GenerativeModel"]

# keys of ``defaults`` that belong to the training loop, not to the constructor
LOOP_KEYS = ("batch_size", "epochs", "dataset")


def check_label_range(owner, y, num_classes):
    """Host integer labels must lie in [0, num_classes)."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{owner}: labels must lie in [0, {num_classes}), got range "
                         f"[{y.min()}, {y.max()}]")


def mean_sigmoid(logits):
    """Mean of D(x) = sigmoid(logit), a 0-d array on the logits' device (for logging; one
    launch on the GPU)."""
    if is_gpu_array(logits):
        return sigmoid_mean(logits)
    return sigmoid(logits).mean()



class SecondHalfLinearDecay:
    """pix2pix's and CycleGAN's learning-rate schedule for a model whose ``hp`` has ``lr`` and
    ``decay_steps``: every optimizer at ``lr``, then falling linearly to 0 over the second half
    of ``decay_steps`` (``scratchgan.optim.schedules.linear_decay_second_half``); ``decay_steps`` None:
    constant. Training past ``decay_steps`` would step at rate 0, so it is refused by name:
    before the run (``check_run_length``, which ``scratchgan.train.Trainer`` calls before it
    writes anything) and at the step itself."""

    def lr_at(self, step):
        return linear_decay_second_half(self.hp["lr"], step, self.hp["decay_steps"])

    def _past_decay(self, step):
        return ValueError(f"{type(self).__name__}: update {step} is past decay_steps="
                          f"{self.hp['decay_steps']}, where the learning rate reaches 0; train at "
                          f"most decay_steps updates or set a larger decay_steps")

    def check_run_length(self, total_steps):
        n = self.hp["decay_steps"]
        if n and total_steps > n:
            raise self._past_decay(int(n) + 1)

    def apply_schedule(self):
        lr = self.lr_at(self.step)
        if lr <= 0.0:
            raise self._past_decay(self.step + 1)
        for opt in self.optimizers().values():
            opt.lr = lr

    def host_logs(self):
        return {"lr": next(iter(self.optimizers().values())).lr} if self.hp["decay_steps"] else {}

class GenerativeModel:
    """Base class. Subclasses set the class attributes and implement the methods.

    ``defaults`` holds the paper's settings: the loop keys (``batch_size``,
    ``epochs``, ``dataset``) used by the trainer/CLI, and every constructor
    hyperparameter with its default. ``**hyper`` given to the constructor
    overrides them; an unknown name is a ValueError listing the valid ones.
    """

    name = "base"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    defaults: dict = {}
    #: the type of a hyperparameter whose default is None, for ``--set KEY=VALUE``
    hyper_types: dict = {}
    conditional = False
    #: the data forms the model trains on (``scratchgan.cli.compat``): "image", "toy",
    #: "image-pair", "translation-paired", "translation-unpaired"
    data_kinds = ("image", "toy")

    def __init__(self, data_shape, *, num_classes=10, device="cpu", dtype=np.float32, rng=None,
                 **hyper):
        if isinstance(data_shape, (int, np.integer)):
            data_shape = (int(data_shape),)
        try:
            data_shape = tuple(int(s) for s in data_shape)
        except TypeError:
            raise TypeError(f"{type(self).__name__}: data_shape must be a tuple of ints such as "
                            f"(1, 28, 28) or (2,), got {data_shape!r}") from None
        if not data_shape or any(s <= 0 for s in data_shape):
            raise ValueError(f"{type(self).__name__}: data_shape must be non-empty positive sizes, "
                             f"got {data_shape}")
        self.data_shape = data_shape
        self.num_classes = int(num_classes)
        self.device = check_device(device)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"{type(self).__name__}: dtype must be float32 or float64, got {self.dtype}")
        if rng is None:
            # a child stream of the global generator: manual_seed(s) fixes it, and the
            # model's draws do not disturb the stream the data iterator uses
            rng = np.random.default_rng(int(get_rng().integers(0, 2**63 - 1)))
        elif isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            rng = np.random.default_rng(int(rng))
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"{type(self).__name__}: rng must be None, an int seed or a "
                            f"numpy.random.Generator, got {type(rng).__name__}")
        self.rng = rng
        self.random = Philox(int(rng.integers(0, 2**63 - 1)), device=self.device)
        hp = {k: v for k, v in self.defaults.items() if k not in LOOP_KEYS}
        unknown = sorted(k for k in hyper if k not in hp)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown hyperparameter(s) {unknown}; valid "
                             f"names are {sorted(hp)}")
        hp.update(hyper)
        self.hp = hp
        self.step = 0
        self.build()
        for net in self.networks().values():
            net.astype(self.dtype)
            net.to(self.device)
            net.train()
            flatten_parameters(net)   # one data and one grad buffer per network
        self.build_optimizers()

    # -- to implement ---------------------------------------------------------
    def build(self):  # pragma: no cover - abstract
        """Create the networks (after ``self.hp`` is set)."""
        raise NotImplementedError

    def build_optimizers(self):  # pragma: no cover - abstract
        """Create the optimizers (networks are already on the device, in the dtype)."""
        raise NotImplementedError

    def networks(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def optimizers(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def train_step(self, x, y=None) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_noise(self, n, rng=None, labels=None) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def generate(self, noise: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared helpers ---------------------------------------------------------
    def batches_per_step(self) -> int:
        """Real minibatches the next ``train_step`` consumes (1 unless the algorithm says more)."""
        return 1

    def graph_key(self):
        """What distinguishes steps of different structure (``scratchgan.runtime`` keeps one
        CUDA graph per key): the number of real minibatches a step consumes."""
        return self.batches_per_step()

    def uses_labels(self) -> bool:
        """Whether ``train_step`` takes the data set's labels ``y`` (the trainer passes them and
        checks their range once): the conditional models'."""
        return bool(self.conditional)

    def init_from_data(self, x):
        """Data-dependent initialisation before the first step (the trainer calls it with the
        training examples when ``self.step == 0``); most models have none."""

    def attach_data(self, x, y):
        """Keep what the model needs of the whole training set ``(x, y)`` (M2 its labelled
        subset); the trainer calls it once, before training. Most models keep nothing."""

    def set_preview(self, x):
        """Choose the examples a preview picture shows from the training examples ``x`` (the
        translation models show input/output pairs); the command line calls it after building
        the model. Most models preview samples of their own and ignore it."""

    def check_run_length(self, total_steps):
        """Refuse, before anything is written, a run of ``total_steps`` steps the model cannot
        train (a schedule that ends earlier); the trainer calls it first thing in ``fit()``."""

    def apply_schedule(self):
        """Set the optimizers' hyperparameters for the step numbered ``self.step`` (models
        with schedules override this; the step runner calls it before a graph launch)."""

    def host_logs(self) -> dict:
        """Host values logged beside a step's device losses (a schedule's lr, say)."""
        return {}

    @property
    def xp(self):
        return get_array_module(next(iter(self.networks().values())).parameters()[0].data)

    def to_model(self, a, dtype=None):
        """A host or device array as an array of the model's device (and float dtype)."""
        a = to_device(np.asarray(a) if not hasattr(a, "__cuda_array_interface__") else a, self.device)
        if dtype is None:
            dtype = self.dtype
        return a.astype(dtype, copy=False) if dtype is not False else a

    def _rng(self, rng):
        return self.rng if rng is None else rng

    # -- draws: the device stream inside a step, a caller's host generator otherwise ----
    def draw_uniform(self, shape, low, high, rng=None):
        """U[low, high) in the model's dtype on its device: from ``self.random`` (no host
        work), or from the NumPy generator ``rng`` on the host, then moved."""
        if rng is None:
            return self.random.uniform(shape, low, high, dtype=self.dtype)
        return self.to_model(rng.uniform(low, high, size=shape))

    def draw_normal(self, shape, std=1.0, rng=None):
        """N(0, std^2), like :meth:`draw_uniform`."""
        if rng is None:
            return self.random.normal(shape, 0.0, std, dtype=self.dtype)
        return self.to_model(std * rng.standard_normal(size=shape))

    def draw_integers(self, high, n, rng=None):
        """Integers in [0, high), int64 on the model's device, like :meth:`draw_uniform`."""
        if rng is None:
            return self.random.integers(high, (int(n),))
        return self.to_model(rng.integers(0, high, size=int(n)), dtype=False)

    def _check_x(self, x, what="x"):
        """Move a data batch to the device, in the model's dtype, and check its shape."""
        if isinstance(x, (list, tuple)):
            raise TypeError(f"{type(self).__name__}: expected one array for {what}, got a "
                            f"{type(x).__name__}")
        x = self.to_model(x)
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"{type(self).__name__}: expected {what} of shape (N, "
                             f"{', '.join(map(str, self.data_shape))}), got {tuple(x.shape)}")
        if x.shape[0] < 2:
            raise ValueError(f"{type(self).__name__}: a training batch needs at least 2 examples, "
                             f"got {x.shape[0]}")
        return x

    def _check_labels(self, y, n):
        """Integer labels of shape (n,) as int64 on the model's device.

        Host labels are checked to lie in [0, num_classes). Labels already on the GPU
        are checked for shape and dtype only: reading their values would synchronise
        the step (the trainer checks the data set's labels once, on the host).
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: train_step needs labels y")
        if not hasattr(y, "__cuda_array_interface__"):
            y = np.asarray(y)
        if tuple(y.shape) != (n,) or y.dtype.kind not in "iu":
            raise ValueError(f"{type(self).__name__}: expected integer labels of shape ({n},), got "
                             f"shape {tuple(y.shape)} dtype {y.dtype}")
        if isinstance(y, np.ndarray):
            check_label_range(type(self).__name__, y, self.num_classes)
        return self.to_model(y, dtype=False).astype(np.int64, copy=False)

    def one_hot(self, labels):
        """Integer labels (host or device) -> one-hot rows on the device, in the model's dtype
        (a row gather from the identity: no host round trip for device labels)."""
        xp = self.xp
        labels = self.to_model(labels, dtype=False)
        return xp.eye(self.num_classes, dtype=self.dtype)[labels.astype(np.int64, copy=False)]

    def split_batches(self, x, y=None, n=None):
        """Split the real data of one step into ``n`` minibatches (list, or stacked array)."""
        n = self.batches_per_step() if n is None else n
        if isinstance(x, (list, tuple)):
            if len(x) != n:
                raise ValueError(f"{type(self).__name__}: this step needs {n} real minibatch(es) "
                                 f"(batches_per_step()), got a list of {len(x)}")
            ys = list(y) if y is not None else [None] * n
            if len(ys) != n:
                raise ValueError(f"{type(self).__name__}: got {len(x)} data batches but {len(ys)} "
                                 f"label batches")
            return list(x), ys
        total = int(x.shape[0])
        if total % n:
            raise ValueError(f"{type(self).__name__}: this step needs {n} real minibatches "
                             f"(batches_per_step()); pass a list of {n} arrays or one array whose "
                             f"length is a multiple of {n}, got {total} rows")
        m = total // n
        xs = [x[i * m:(i + 1) * m] for i in range(n)]
        ys = [None if y is None else y[i * m:(i + 1) * m] for i in range(n)]
        return xs, ys

    def zero_grad(self):
        for net in self.networks().values():
            net.zero_grad()

    def clear_cache(self):
        for net in self.networks().values():
            net.clear_cache()

    def _eval_forward(self, net, x):
        """A gradient-free forward in eval mode (no side effects on BN buffers or the rng)."""
        was = net.training
        net.eval()
        try:
            with no_grad():
                return net(x)
        finally:
            net.train(was)

    def num_parameters(self) -> dict:
        return {k: int(sum(p.data.size for p in net.parameters()))
                for k, net in self.networks().items()}

    # -- state -------------------------------------------------------------------
    def extra_state(self) -> dict:
        """Schedule or model-specific state beyond networks, optimizers, step and rng."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {
            "model": self.name,
            "data_shape": list(self.data_shape),
            "hyper": copy.deepcopy(self.hp),
            "networks": {k: net.state_dict() for k, net in self.networks().items()},
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers().items()},
            "step": int(self.step),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "random": self.random.state_dict(),
            "extra": self.extra_state(),
        }

    def load_state_dict(self, sd) -> None:
        if sd.get("model", self.name) != self.name:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state is for model "
                             f"{sd.get('model')!r}, not {self.name!r}")
        nets, opts = self.networks(), self.optimizers()
        for key, want in (("networks", nets), ("optimizers", opts)):
            have = set(sd.get(key, {}))
            if have != set(want):
                raise KeyError(f"{type(self).__name__}.load_state_dict: {key} {sorted(have)} do "
                               f"not match this model's {sorted(want)}")
        for k, net in nets.items():
            net.load_state_dict(sd["networks"][k])
            net.clear_cache()
        for k, opt in opts.items():
            opt.load_state_dict(sd["optimizers"][k])
        self.step = int(sd["step"])
        if "rng" in sd:
            self.rng.bit_generator.state = copy.deepcopy(sd["rng"])
        if "random" in sd:
            self.random.load_state_dict(sd["random"])
        self.load_extra_state(sd.get("extra", {}))

    def __repr__(self):
        nets = ", ".join(f"{k}={v}" for k, v in self.num_parameters().items())
        return (f"{type(self).__name__}(data_shape={self.data_shape}, device={self.device!r}, "
                f"dtype={self.dtype.name}, params: {nets})")
