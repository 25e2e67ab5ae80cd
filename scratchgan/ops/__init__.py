"""Pure functions, one file per family of operations.

Convention (cs231n style): ``<op>_forward(x, params..., hyper...) -> (y, cache)``
and ``<op>_backward(dy, cache) -> (dx, dparams...)``. Each backward's docstring
states the gradient it implements. Nothing here holds state or updates parameters.
"""

__all__ = []  # the families are submodules: scratchgan.ops.linear, .conv, .loss ...
