"""Layers: stateful Modules that hold Parameters and caches and call ``scratchgan.ops``.

See :mod:`scratchgan.nn.module` for the one-pending-cache rule.
"""
from .module import (CacheError, Module, Parameter, Sequential, frozen, is_grad_enabled,
                     no_grad)
from .linear import Linear
from .activation import LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .norm import BatchNorm1d, BatchNorm2d
from .layernorm import LayerNorm
from .dropout import Dropout
from .shape import Flatten, Reshape, Unflatten
from .conditioning import Concat, OneHotMap, TwoInputNet, one_hot
from .maxout import Maxout
from .conv import Conv2d, ConvTranspose2d
