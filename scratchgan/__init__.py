"""scratchgan: generative models from first principles, with hand-written gradients.

No autograd: every op in :mod:`scratchgan.ops` has an explicit forward and
backward, checked by :mod:`scratchgan.gradcheck`. NumPy runs on the CPU; CuPy
arrays run through hand-written CUDA kernels in ``kernels/``.
"""
from .backend import (get_array_module, to_device, to_numpy, cupy_available, set_conv_precision,
                      get_conv_precision, set_conv_algorithm, get_conv_algorithm)
from .rng import manual_seed
from .nn.module import no_grad
from . import nn
from . import init, optim

__version__ = "0.1.0"
