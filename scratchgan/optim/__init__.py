"""First-order optimization: the update rules, the optimizers that apply them, schedules.

* :mod:`~scratchgan.optim.rules`: each update rule (SGD with momentum and Nesterov, Adam,
  RMSprop, Adagrad) written once, over flat arrays; the per-parameter form
  ``sgd_update(w, dw, state, hyper)`` is a view of it.
* :mod:`~scratchgan.optim.optimizers`: :class:`SGD`, :class:`Adam`, :class:`RMSprop`,
  :class:`Adagrad` (one fused update per flat parameter group: a NumPy pass on the CPU, one
  launch of ``kernels/optim.cu`` on the GPU, see :mod:`scratchgan.cuda.optim`) and
  :func:`clip_weights`.
* :mod:`~scratchgan.optim.schedules`: learning-rate schedules.

The CUDA-graph capture flag the optimizers respect lives with the graph machinery,
:mod:`scratchgan.cuda.capture`; ``capture_guard`` and ``capturing`` are re-exported here.
"""
from ..cuda.capture import capture_guard, capturing
from ..cuda.optim import HYPER_LEN, fused_kernel, launch_fused
from .optimizers import OPTIMIZERS, SGD, Adagrad, Adam, Optimizer, RMSprop, clip_weights
from .rules import (RULES, adagrad_update, adagrad_update_flat, adam_update, adam_update_flat,
                    rmsprop_update, rmsprop_update_flat, sgd_update, sgd_update_flat)
from .schedules import linear_decay_second_half

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "sgd_update_flat",
           "adam_update_flat", "rmsprop_update_flat", "adagrad_update_flat", "RULES",
           "fused_kernel", "launch_fused", "HYPER_LEN", "capture_guard", "capturing",
           "clip_weights", "Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "OPTIMIZERS",
           "linear_decay_second_half"]
