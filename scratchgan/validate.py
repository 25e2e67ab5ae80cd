"""Input checks shared by the layers. Each raises with the layer's name, what was
expected and what was given."""
from __future__ import annotations

import numpy as np

from .backend import device_of

__all__ = ["FLOAT_DTYPES", "check_array", "check_size", "check_positive_int", "pair",
           "check_features"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_array(name: str, x, *, ndim=None, dtype=None, device=None, what="input"):
    """Validate an array's type, rank, dtype and device.

    ``ndim`` may be an int or a tuple of allowed ranks; ``dtype`` the dtype the
    layer's parameters have (the input must match it); ``device`` 'cpu' or 'cuda'.
    """
    try:
        dev = device_of(x)
    except TypeError:
        raise TypeError(f"{name}: expected the {what} to be a numpy or cupy array, "
                        f"got {type(x).__name__}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name}: expected a {want}-D {what}, got shape {tuple(x.shape)} "
                             f"({x.ndim}-D)")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 {what}, got dtype {x.dtype}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: {what} dtype {x.dtype} does not match the layer's parameters "
                        f"({np.dtype(dtype)}); cast the input or call .astype() on the layer")
    if device is not None and dev != device:
        raise ValueError(f"{name}: {what} is on {dev!r} but the layer's parameters are on "
                         f"{device!r}; move one of them with .to(device)")
    return x


def check_size(name: str, value, dim: int, expected: int, what="channels"):
    if value != expected:
        raise ValueError(f"{name}: expected {expected} {what} (dimension {dim}), got {value}")


def check_positive_int(name: str, label: str, value, allow_zero=False):
    vals = value if isinstance(value, tuple) else (value,)
    for v in vals:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name}: {label} must be an int or a pair of ints, got {value!r}")
        if v < 0 or (v == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else ">= 1"
            raise ValueError(f"{name}: {label} must be {bound}, got {value!r}")
    return value


def pair(name: str, label: str, value, allow_zero=False):
    """Turn an int or a 2-sequence into a validated (h, w) pair of ints."""
    given = value
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{name}: {label} must be an int or a pair, got {value!r}")
        value = tuple(int(v) if isinstance(v, np.integer) else v for v in value)
    else:
        value = (value, value)
    try:
        check_positive_int(name, label, value, allow_zero=allow_zero)
    except (TypeError, ValueError) as err:
        # Report the value as the caller wrote it, not the expanded pair.
        raise type(err)(str(err).replace(repr(value), repr(given))) from None
    return tuple(int(v) for v in value)


def check_features(name: str, x, in_features: int, *, dtype=None, device=None):
    """Validate a 2-D (N, in_features) input of a fully connected layer."""
    check_array(name, x, ndim=2, dtype=dtype, device=device, what=f"input (N, {in_features})")
    if x.shape[1] != in_features:
        raise ValueError(f"{name}: expected an input of shape (N, {in_features}), "
                         f"got shape {tuple(x.shape)} ({x.shape[1]} features)")
    return x
