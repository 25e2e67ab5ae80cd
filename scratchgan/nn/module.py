"""Parameter, Module and Sequential: the stateful wrapper around ``scratchgan.ops``.

The cache decision
------------------
A layer keeps **one pending cache**. ``forward`` stores what ``backward`` needs;
``backward`` consumes it. Two misuses fail loudly instead of giving a silently
wrong gradient:

* ``backward`` with no pending cache (no forward, or a second backward) raises
  :class:`CacheError`;
* a second ``forward`` while the first one's cache is still pending raises
  :class:`CacheError` too, because the later cache would otherwise replace the
  earlier one and the next ``backward`` would differentiate the wrong batch.

So a GAN step pairs each forward with its backward: ``D(x_real)`` then
``D.backward``, then ``D(x_fake)`` then ``D.backward``. Running real and fake
data through D separately also keeps BatchNorm's batch statistics apart, as
DCGAN practice does. Forward passes that need no gradient (sampling, metrics,
logging) run inside ``with scratchgan.no_grad():`` and store nothing.
``module.clear_cache()`` drops pending caches (after an exception, say).

When several forwards must be in flight at once, use the pure functions in
``scratchgan.ops``: they return the cache to the caller (cs231n style).

Parameters' ``.grad`` accumulate across backwards (``+=``); optimizers read
them and ``zero_grad()`` clears them. ``backward`` never updates parameters.
"""
from __future__ import annotations

import contextlib
import inspect
import threading
from collections import OrderedDict

import numpy as np

from ..backend import check_device, device_of, get_array_module, is_gpu_array, to_device, to_numpy

__all__ = ["CacheError", "is_grad_enabled", "frozen", "no_grad", "Parameter", "Module",
           "Sequential", "FUSED"]


class CacheError(RuntimeError):
    """A backward without its forward, or a forward over a pending cache."""


_grad_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_grad_state, "enabled", True)


@contextlib.contextmanager
def frozen(*modules):
    """Inside this block the modules' backwards pass gradients through to their inputs but
    compute no parameter gradients (``.grad`` is left untouched).

    A generator update differentiates through D with D's parameters held fixed:
    ``with frozen(D): ...`` skips D's weight-gradient GEMMs that would be thrown away.
    """
    mods = [m for mod in modules for m in mod.modules()]
    prev = [m._frozen for m in mods]
    try:
        for m in mods:
            object.__setattr__(m, "_frozen", True)
        yield
    finally:
        for m, p in zip(mods, prev):
            object.__setattr__(m, "_frozen", p)


@contextlib.contextmanager
def no_grad():
    """Forward passes inside this block keep no cache (sampling, evaluation)."""
    prev = is_grad_enabled()
    _grad_state.enabled = False
    try:
        yield
    finally:
        _grad_state.enabled = prev


class Parameter:
    """A trainable array ``.data`` with its accumulated gradient ``.grad``."""

    def __init__(self, data):
        xp = get_array_module(data)
        self.data = data
        self.grad = xp.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def zero_grad(self):
        self.grad[...] = 0

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: registers Parameters, sub-Modules and buffers set as attributes."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_cache", None)
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_frozen", False)

    # -- registration ------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            # Re-assigning a buffer (running statistics) keeps it a buffer.
            object.__setattr__(self, name, value)
            return
        for d in (self._parameters, self._modules, self._buffers):
            d.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, value):
        """A non-trainable array saved in the state dict (BatchNorm's running stats)."""
        self._buffers[name] = True
        object.__setattr__(self, name, value)

    # -- the cache protocol ------------------------------------------------
    def _save_cache(self, cache):
        """Store ``cache`` for the next backward (nothing under ``no_grad``)."""
        if not is_grad_enabled():
            return
        if self._cache is not None:
            raise CacheError(
                f"{self._label()}: forward called again while the previous forward's cache "
                "is still pending. Each forward must be followed by its backward before the "
                "next forward (see scratchgan.nn.module); wrap gradient-free forwards in "
                "scratchgan.no_grad(), or call clear_cache() to discard the pending one.")
        object.__setattr__(self, "_cache", cache)

    def _take_cache(self):
        """Return and clear the pending cache, or fail if there is none."""
        cache = self._cache
        if cache is None:
            raise CacheError(
                f"{self._label()}: backward called without a matching forward (no pending "
                "cache). Call forward first, outside no_grad(), and call backward once per forward.")
        object.__setattr__(self, "_cache", None)
        return cache

    def clear_cache(self):
        """Drop pending caches in this module and all sub-modules."""
        for m in self.modules():
            object.__setattr__(m, "_cache", None)

    def _label(self):
        return type(self).__name__

    # -- forward / backward -------------------------------------------------
    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal -----------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix=""):
        for name, p in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), p
        for mname, m in self._modules.items():
            yield from m.named_parameters(f"{prefix}.{mname}" if prefix else mname)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for name in self._buffers:
            yield (f"{prefix}.{name}" if prefix else name), getattr(self, name)
        for mname, m in self._modules.items():
            yield from m.named_buffers(f"{prefix}.{mname}" if prefix else mname)

    def zero_grad(self):
        """Zero every parameter's ``.grad``.

        When the module was flattened (``scratchgan.nn.flat.flatten_parameters``) and
        its flat buffer is still intact, this is one fill of the grad buffer; parameters
        added after flattening are zeroed one by one. After ``astype``/``to`` the views
        are gone (``is_intact()`` is False) and every parameter is zeroed separately.
        """
        flat = self.__dict__.get("_flat")
        if flat is not None and flat.is_intact():
            flat.zero_grad()
            for p in self.parameters():
                if not flat.owns(p):
                    p.zero_grad()
            return
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # -- dtype / device --------------------------------------------------------
    def _map_arrays(self, fn):
        for m in self.modules():
            for p in m._parameters.values():
                p.data = fn(p.data)
                p.grad = fn(p.grad)
            for b in m._buffers:
                object.__setattr__(m, b, fn(getattr(m, b)))
            object.__setattr__(m, "_cache", None)
        return self

    def astype(self, dtype):
        """Cast parameters and buffers (float64 for gradient checks)."""
        return self._map_arrays(lambda a: a.astype(dtype))

    def to(self, device: str):
        """Move parameters and buffers to 'cpu' or 'cuda'."""
        check_device(device)
        return self._map_arrays(lambda a: to_device(a, device))

    @property
    def device(self):
        ps = self.parameters()
        return device_of(ps[0].data) if ps else "cpu"

    @property
    def dtype(self):
        ps = self.parameters()
        return ps[0].data.dtype if ps else np.dtype(np.float32)

    # -- state -------------------------------------------------------------------
    def state_dict(self):
        """Host (NumPy) copies of every parameter and buffer, by dotted name."""
        out = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = to_numpy(p.data).copy()
        for name, b in self.named_buffers():
            out[name] = to_numpy(b).copy()
        return out

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays from ``state`` into this module, keeping its device and dtype."""
        own = dict(self.named_parameters())
        bufs = {}
        for m_name, m in self.named_modules():
            for b in m._buffers:
                bufs[f"{m_name}.{b}" if m_name else b] = (m, b)
        missing = [k for k in list(own) + list(bufs) if k not in state]
        unexpected = [k for k in state if k not in own and k not in bufs]
        if strict and (missing or unexpected):
            raise KeyError(f"{self._label()}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for k, v in state.items():
            if k in own:
                p = own[k]
                if tuple(v.shape) != tuple(p.data.shape):
                    raise ValueError(f"{self._label()}.load_state_dict: {k} has shape "
                                     f"{tuple(v.shape)}, expected {tuple(p.data.shape)}")
                xp = get_array_module(p.data)
                p.data[...] = xp.asarray(v, dtype=p.data.dtype)
            elif k in bufs:
                m, b = bufs[k]
                cur = getattr(m, b)
                if tuple(np.shape(v)) != tuple(np.shape(cur)):
                    raise ValueError(f"{self._label()}.load_state_dict: {k} has shape "
                                     f"{tuple(np.shape(v))}, expected {tuple(np.shape(cur))}")
                xp = get_array_module(cur)
                # in place, like parameters: a captured CUDA graph keeps writing to this array
                cur[...] = xp.asarray(v, dtype=cur.dtype)
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")


class Sequential(Module):
    """Runs its layers' forwards in order and their backwards in reverse.

    Gradient:
        the chain rule: ``dx = J_1^T (J_2^T (... J_L^T dy))``, each layer's
        backward called in reverse order on the gradient of the layer after it.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, expected a Module")
            setattr(self, str(i), layer)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        """Layers' forwards in order.

        On the GPU a BatchNorm followed by a ReLU or LeakyReLU runs as one fused layer
        (``kernels/batchnorm.cu``): the normalisation applies the activation, and the
        activation layer keeps a marker cache so that its backward passes ``dy`` on to
        the normalisation's backward, which applies ``act'``. The result is the same
        function and gradient; each layer still owns its own pending cache.
        """
        layers = list(self._modules.values())
        i, n = 0, len(layers)
        while i < n:
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < n else None
            if (nxt is not None and getattr(layer, "_fuses_activation", False)
                    and getattr(nxt, "_fusable_act", None) and _on_gpu(x)):
                x = layer.forward(x, act=nxt)
                nxt._save_cache(FUSED)
                i += 2
                continue
            x = layer(x)
            i += 1
        return x

    def backward(self, dy, input_grad=True):
        """Layers' backwards in reverse order; returns d/dx.

        ``input_grad=False``: nobody needs d/dx (the first network of a chain, or D's own
        update), so the first layer that has parameters computes only its parameter
        gradients, and the parameter-free layers before it just release their caches.
        Returns None then.
        """
        layers = list(self._modules.values())
        first = -1                       # every layer computes d/d(input)
        if not input_grad:
            first = next((i for i, m in enumerate(layers) if m.parameters()), len(layers))
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if i > first:
                dy = layer.backward(dy)
            elif i == first:
                dy = _backward_no_input_grad(layer, dy)
            else:
                for m in layer.modules():
                    if m._cache is not None:
                        m._take_cache()
                dy = None
        return dy


#: the cache an activation layer keeps when the layer before it applied it (fused)
FUSED = ("fused into the previous layer",)


def _on_gpu(x):
    return is_gpu_array(x)


_TAKES_INPUT_GRAD: dict = {}


def _backward_no_input_grad(layer, dy):
    """``layer.backward(dy, input_grad=False)`` where the layer takes that flag."""
    takes = _TAKES_INPUT_GRAD.get(type(layer))
    if takes is None:
        try:
            takes = "input_grad" in inspect.signature(layer.backward).parameters
        except (TypeError, ValueError):
            takes = False
        _TAKES_INPUT_GRAD[type(layer)] = takes
    return layer.backward(dy, input_grad=False) if takes else layer.backward(dy)
