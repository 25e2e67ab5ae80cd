"""The fused optimizer kernels of ``kernels/optim.cu``: one launch updates a whole flat
parameter group (weights and state) with SGD, Adam, RMSprop or Adagrad.

:class:`scratchgan.optim.Optimizer` builds a launch per fused GPU group with
:func:`fused_kernel` and replays it every ``step()``; the kernels read their hyperparameters
from a float64 device array of :data:`HYPER_LEN` (so a CUDA graph replays a changed ``lr``)
and are tested against the flat NumPy rules of :mod:`scratchgan.optim.rules`.
"""
from __future__ import annotations

import numpy as np

from ..backend import cupy
from .loader import dtype_suffix, get_function, sm_count

__all__ = ["HYPER_LEN", "KERNEL_SLOTS", "fused_kernel", "launch_fused"]

#: device hyperparameter vector length (float64); each rule uses a prefix (see optim.cu)
HYPER_LEN = 8
KERNEL_NT = 256
KERNEL_SLOTS = {"sgd": 1, "adam": 2, "rmsprop": 2, "adagrad": 1}


def fused_kernel(rule, w, dw, slots, hyper_dev, counter=None, vector=None):
    """The RawKernel, launch geometry and argument tuple of one fused update.

    ``rule``: 'sgd', 'adam', 'rmsprop' or 'adagrad'. ``w``, ``dw`` and ``slots`` (the
    state buffers in the optimizer's slot order) are 1-D C-contiguous CuPy arrays of one
    dtype (float32 or float64) and length; ``hyper_dev`` a float64 CuPy array of
    :data:`HYPER_LEN`; ``counter`` Adam's int64 ``[t, blocks_done]``. ``vector``: use the
    16-byte-vector kernel (default: when every pointer is 16-byte aligned). Returns
    ``(kernel, grid, block, args)``: launch with ``kernel(grid, block, args)``. Nothing is
    copied: a launch updates ``w`` and the slots (and Adam's counter) in place.
    """
    cp = cupy()
    if rule not in KERNEL_SLOTS:
        raise ValueError(f"fused_kernel: unknown rule {rule!r}; expected one of "
                         f"{sorted(KERNEL_SLOTS)}")
    if len(slots) != KERNEL_SLOTS[rule]:
        raise ValueError(f"fused_kernel: {rule} takes {KERNEL_SLOTS[rule]} state buffer(s), "
                         f"got {len(slots)}")
    arrays = [("w", w), ("dw", dw)] + [(f"slots[{k}]", s) for k, s in enumerate(slots)]
    for label, a in arrays:
        if not isinstance(a, cp.ndarray) or a.ndim != 1 or not a.flags.c_contiguous \
                or a.dtype != w.dtype or a.size != w.size:
            raise ValueError(f"fused_kernel: {label} must be a 1-D C-contiguous cupy array of "
                             f"dtype {w.dtype} and length {w.size}, got "
                             f"{type(a).__name__} {getattr(a, 'shape', None)} "
                             f"{getattr(a, 'dtype', None)}")
    suf = dtype_suffix(w.dtype)
    if not (isinstance(hyper_dev, cp.ndarray) and hyper_dev.dtype == np.float64
            and hyper_dev.size >= HYPER_LEN and hyper_dev.flags.c_contiguous):
        raise ValueError(f"fused_kernel: hyper_dev must be a C-contiguous float64 cupy array of "
                         f"length >= {HYPER_LEN}, got {getattr(hyper_dev, 'dtype', None)} "
                         f"{getattr(hyper_dev, 'shape', None)}")
    if rule == "adam" and not (isinstance(counter, cp.ndarray) and counter.dtype == np.int64
                               and counter.size == 2 and counter.flags.c_contiguous):
        raise ValueError("fused_kernel: adam needs counter, a C-contiguous int64 cupy array "
                         f"[t, 0], got {getattr(counter, 'dtype', None)} "
                         f"{getattr(counter, 'shape', None)}")
    if vector is None:
        vector = all(a.data.ptr % 16 == 0 for _, a in arrays)
    width = 16 // w.itemsize if vector else 1
    name = f"{rule}_step_{suf}" if vector else f"{rule}_step_scalar_{suf}"
    kern = get_function("optim", name)
    packs = max(1, -(-int(w.size) // width))
    grid = (max(1, min(-(-packs // KERNEL_NT), 8 * sm_count())),)
    args = (w, dw, *slots, hyper_dev) + ((counter,) if rule == "adam" else ()) \
        + (np.int64(w.size),)
    return kern, grid, (KERNEL_NT,), args


def launch_fused(rule, w, dw, slots, hyper_dev, counter=None, vector=None):
    """One launch of the fused ``rule`` update on flat CuPy arrays (see :func:`fused_kernel`)."""
    kern, grid, block, args = fused_kernel(rule, w, dw, slots, hyper_dev, counter, vector)
    kern(grid, block, args)
    return w


