"""One contiguous buffer for a network's parameters and one for their gradients.

``flatten_parameters(module)`` allocates a 1-D data buffer and a 1-D grad buffer
and rebinds every ``Parameter.data`` / ``.grad`` of the module to a C-contiguous
view (a slice, reshaped) into them::

    data = [ p0 (n0) | 0-pad | p1 (n1) | 0-pad | ... | p_{k-1} | 0-pad ]
             ^ offset 0        ^ offset o1 = roundup(n0, 64)

Each parameter starts at a multiple of :data:`ALIGN` = 64 elements (256 bytes in
float32, 512 in float64), so every view stays 256-byte aligned for vectorised
kernels, and the total size is a multiple of 64. The padding holds zeros in both
buffers and nothing ever writes to it (updates of a zero weight with a zero
gradient and zero optimizer state leave it zero).

What the buffers buy:

* ``Module.zero_grad()`` becomes one fill of the grad buffer instead of one per
  tensor;
* the fused optimizers of :mod:`scratchgan.optim` update a whole network with
  one kernel launch per step (see ``docs/derivations/optim.md``);
* ``clip_weights(module, c)`` clips the network with one call.

Everything that assigns **in place** keeps working through the views:
``p.data[...] = v``, ``p.grad += dW`` in the layers' backwards,
``Module.load_state_dict``, the per-parameter optimizer rules. Anything that
**rebinds** ``p.data`` or ``p.grad`` to a new array breaks the aliasing for that
parameter: ``Module.astype`` / ``Module.to`` (they replace every array) do so, and
afterwards :meth:`FlatParameters.is_intact` returns False and every user falls
back to the per-parameter path. So move or cast a module first and flatten it
afterwards; flattening again (which is always safe) rebuilds the buffers.

The flat object is stored as ``module._flat`` (set with ``object.__setattr__``,
so it is neither a parameter nor a buffer and the module's ``state_dict`` names
are unchanged). A registry keyed by ``id(param)`` (weak references to the flat
objects, checked by identity) lets an optimizer find the flat group of each of
its parameters: :func:`flat_group_of`.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..backend import device_of, get_array_module
from .module import Module

#: every parameter's offset in the buffers is a multiple of this many elements
ALIGN = 64

# id(param) -> FlatParameters holding it (weak: a dropped flat leaves the registry).
_REGISTRY: "weakref.WeakValueDictionary[int, FlatParameters]" = weakref.WeakValueDictionary()
# bumped by every flatten_parameters call, so optimizers know when to look again
_GENERATION = [0]


def generation() -> int:
    """A counter bumped by every :func:`flatten_parameters` call (cheap change detection)."""
    return _GENERATION[0]


def _round_up(n: int, k: int = ALIGN) -> int:
    return -(-n // k) * k


def _device_key(a):
    """('cpu', None) or ('cuda', device id): two arrays can share a buffer only if equal."""
    dev = device_of(a)
    return (dev, None) if dev == "cpu" else (dev, int(a.device.id))


class FlatParameters:
    """The flat data and grad buffers of one module, and the views handed to its parameters.

    Attributes: ``data`` and ``grad`` (1-D, ``size`` elements, same dtype and device
    as the parameters), ``params`` (the Parameters in ``module.parameters()`` order,
    each once), ``offsets`` (element offset of each parameter, multiples of
    :data:`ALIGN`), ``numels`` (element count of each), ``size`` (buffer length, a
    multiple of :data:`ALIGN`), ``dtype``.
    """

    def __init__(self, module, params, data, grad, offsets, numels, data_views, grad_views):
        self._module = weakref.ref(module)
        self.params = params
        self.data = data
        self.grad = grad
        self.offsets = offsets
        self.numels = numels
        self.size = int(data.size)
        self.dtype = data.dtype
        self._data_views = data_views
        self._grad_views = grad_views
        self._index = {id(p): i for i, p in enumerate(params)}

    @property
    def module(self):
        """The module this buffer was made for (None once it has been garbage-collected)."""
        return self._module()

    @property
    def device(self) -> str:
        return device_of(self.data)

    def is_intact(self) -> bool:
        """True while every parameter's ``.data`` and ``.grad`` are still the views made here.

        An identity check per parameter on the host (no device work). It turns False
        when anything rebinds a parameter's arrays (``Module.astype`` / ``Module.to``, a
        later flatten of a module sharing the parameter, ``p.data = new_array``).
        """
        for p, d, g in zip(self.params, self._data_views, self._grad_views):
            if p.data is not d or p.grad is not g:
                return False
        return True

    def index(self, p):
        """Position of Parameter ``p`` in ``params``, or None when it is not in this buffer."""
        i = self._index.get(id(p))
        return i if i is not None and self.params[i] is p else None

    def owns(self, p) -> bool:
        return self.index(p) is not None

    def zero_grad(self):
        """One fill of the whole grad buffer (padding included, which stays zero anyway)."""
        self.grad.fill(0)

    def view(self, flat_array, i):
        """The C-contiguous view of parameter ``i`` into another flat array of this layout
        (an optimizer's flat state buffer, say)."""
        o, n = self.offsets[i], self.numels[i]
        return flat_array[o:o + n].reshape(self.params[i].data.shape)

    def __repr__(self):
        return (f"FlatParameters({len(self.params)} params, size={self.size}, dtype={self.dtype}, "
                f"device={self.device!r}, intact={self.is_intact()})")


def flatten_parameters(module) -> FlatParameters:
    """Move every parameter of ``module`` into one data buffer and one grad buffer.

    Allocates ``data`` and ``grad`` (1-D, the parameters' dtype and device), copies
    each parameter's values and current gradient in at an offset padded to a
    multiple of :data:`ALIGN` elements, rebinds ``p.data`` / ``p.grad`` to views of
    the buffers, stores the result as ``module._flat`` and returns it. The values
    seen through the parameters are unchanged. A parameter that appears twice in
    the module (shared) gets one slot. Flattening again re-flattens safely (new
    buffers, the old object stops being intact). Flatten **after**
    ``astype``/``to``: those replace the arrays and break the views.
    """
    if not isinstance(module, Module):
        raise TypeError(f"flatten_parameters: expected a Module, got {type(module).__name__}")
    named, seen = [], set()
    for name, p in module.named_parameters():
        if id(p) not in seen:
            seen.add(id(p))
            named.append((name, p))
    if not named:
        raise ValueError(f"flatten_parameters: {type(module).__name__} has no parameters")

    first_name, first = named[0]
    dtype, dev = first.data.dtype, _device_key(first.data)
    for name, p in named:
        for what, a in (("data", p.data), ("grad", p.grad)):
            try:
                key = _device_key(a)
            except TypeError:
                raise TypeError(f"flatten_parameters: parameter {name!r} has .{what} of type "
                                f"{type(a).__name__}, expected a numpy or cupy array") from None
            if a.dtype != dtype or key != dev:
                raise ValueError(
                    f"flatten_parameters: parameter {name!r} .{what} is {a.dtype} on {key}, but "
                    f"{first_name!r} is {dtype} on {dev}; all parameters of a module must share one "
                    "dtype and device (cast/move the module with astype()/to() first)")
            if tuple(a.shape) != tuple(p.data.shape):
                raise ValueError(f"flatten_parameters: parameter {name!r} has grad shape "
                                 f"{tuple(a.shape)} but data shape {tuple(p.data.shape)}")

    offsets, numels, off = [], [], 0
    for _, p in named:
        n = int(p.data.size)
        offsets.append(off)
        numels.append(n)
        off = _round_up(off + n)
    size = max(off, ALIGN)

    xp = get_array_module(first.data)
    if dev[0] == "cuda":
        with xp.cuda.Device(dev[1]):
            data = xp.zeros(size, dtype=dtype)
            grad = xp.zeros(size, dtype=dtype)
    else:
        data = np.zeros(size, dtype=dtype)
        grad = np.zeros(size, dtype=dtype)

    params, dviews, gviews = [], [], []
    for (_, p), o, n in zip(named, offsets, numels):
        shape = p.data.shape
        dv = data[o:o + n].reshape(shape)
        gv = grad[o:o + n].reshape(shape)
        dv[...] = p.data   # copy before rebinding: p.data may itself be an old flat view
        gv[...] = p.grad
        params.append(p)
        dviews.append(dv)
        gviews.append(gv)
    for p, dv, gv in zip(params, dviews, gviews):
        p.data = dv
        p.grad = gv

    flat = FlatParameters(module, params, data, grad, offsets, numels, dviews, gviews)
    object.__setattr__(module, "_flat", flat)
    for p in params:
        _REGISTRY[id(p)] = flat
    _GENERATION[0] += 1
    return flat


def flat_group_of(p):
    """The FlatParameters holding Parameter ``p`` (the latest flatten that included it), or None."""
    flat = _REGISTRY.get(id(p))
    if flat is None or not flat.owns(p):
        return None
    return flat


__all__ = ["ALIGN", "FlatParameters", "flatten_parameters", "flat_group_of", "generation"]
