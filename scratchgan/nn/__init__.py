"""Layers: stateful Modules that hold Parameters and caches and call ``scratchgan.ops``.

See :mod:`scratchgan.nn.module` for the one-pending-cache rule.
"""
from .module import CacheError, Module, Parameter, Sequential, is_grad_enabled, no_grad
