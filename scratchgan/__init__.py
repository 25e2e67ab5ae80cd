"""scratchgan: generative models from first principles, with hand-written gradients.

No autograd: every op in :mod:`scratchgan.ops` has an explicit forward and
backward, checked by :mod:`scratchgan.gradcheck`. NumPy runs on the CPU; CuPy
arrays run through hand-written CUDA kernels in ``kernels/``.

``import scratchgan as sg`` loads the layers (``sg.nn``, ``sg.ops``), ``sg.optim`` and
``sg.init``. Every other submodule is an attribute too, imported on first access
(PEP 562 module ``__getattr__``), so ``import scratchgan`` stays cheap: ``sg.metrics`` and
``sg.theory`` pull in SciPy (about a second), ``sg.models``/``sg.train`` Matplotlib and tqdm.
"""
import importlib as _importlib

from .backend import (get_array_module, to_device, to_numpy, cupy_available, set_conv_precision,
                      get_conv_precision, set_conv_algorithm, get_conv_algorithm)
from .rng import manual_seed
from .nn.module import no_grad
from . import nn
from . import init, optim

__all__ = ["get_array_module", "to_device", "to_numpy", "cupy_available", "set_conv_precision",
           "get_conv_precision", "set_conv_algorithm", "get_conv_algorithm", "manual_seed",
           "no_grad", "nn", "init", "optim"]

__version__ = "0.1.0"

# Submodules imported on first attribute access (``sg.gradcheck``, ``sg.metrics``, ...).
# ``from scratchgan import metrics`` and ``import scratchgan.metrics`` work without this;
# the table makes plain attribute access work as well.
_LAZY_SUBMODULES = frozenset({
    "backend", "checkpoint", "cli", "cuda", "data", "gradcheck", "init", "metrics", "models",
    "nn", "ops", "optim", "philox", "rng", "runs", "runtime", "theory", "train", "validate",
    "viz",
})


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        module = _importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module        # later accesses skip __getattr__
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; its submodules are "
                         f"{', '.join(sorted(_LAZY_SUBMODULES))}")


def __dir__():
    return sorted(set(globals()) | _LAZY_SUBMODULES)
