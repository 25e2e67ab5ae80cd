"""Weight initialization, in place.

Every function takes a :class:`~scratchgan.nn.Parameter` or an array, fills its
data in place and returns what it was given. Random values are drawn on the host
from ``scratchgan.rng.get_rng(rng)`` (float64), cast to the array's dtype and
copied into it, so a CPU and a GPU model seeded alike get the same numbers.

Fans follow the PyTorch convention for a weight of shape ``(d0, d1, *kernel)``:
``fan_in = d1 * prod(kernel)``, ``fan_out = d0 * prod(kernel)``. For Linear
``(out, in)`` and Conv2d ``(out, in, kh, kw)`` these are the true fan-in/out; for
ConvTranspose2d, stored ``(in, out, kh, kw)``, the roles of the two names swap
(``fan_in`` counts output channels) -- the same numbers PyTorch uses.

Gains (``calculate_gain``) keep activations' variance roughly constant through
a layer followed by the nonlinearity: linear/sigmoid 1, tanh 5/3, relu sqrt(2),
leaky_relu sqrt(2 / (1 + a^2)).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import get_array_module, device_of
from .rng import get_rng

DCGAN_STD = 0.02
_WEIGHTED = ("Conv2d", "ConvTranspose2d", "Linear")
_BATCHNORM = ("BatchNorm1d", "BatchNorm2d")


def _array(p, fn):
    """The array behind ``p`` (a Parameter's ``.data`` or the array itself)."""
    a = p
    try:
        device_of(a)
    except TypeError:
        a = getattr(p, "data", None)  # a Parameter (checked after arrays: CuPy arrays have .data)
        try:
            device_of(a)
        except TypeError:
            raise TypeError(f"{fn}: expected a Parameter or a numpy/cupy array, got "
                            f"{type(p).__name__}") from None
    if a.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating-point array, got dtype {a.dtype}")
    return a


def _write(a, host):
    """Copy host float64 values into ``a`` (NumPy or CuPy) in its dtype."""
    xp = get_array_module(a)
    a[...] = xp.asarray(host.astype(a.dtype, copy=False))


def _real(fn, label, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{fn}: {label} must be a finite real number, got {value!r}")
    return float(value)


def calculate_fans(shape):
    """``(fan_in, fan_out)`` of a weight of shape ``(d0, d1, *kernel)`` (see the module doc)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"calculate_fans: fan-in and fan-out need a weight with at least 2 "
                         f"dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity="relu", a=0.0):
    """Recommended gain for a nonlinearity (``a`` is LeakyReLU's negative slope)."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv2d", "conv_transpose2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = _real("calculate_gain", "a", a)
        return math.sqrt(2.0 / (1.0 + a * a))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; valid choices are "
                     "'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu'")


def normal_(p, mean=0.0, std=0.02, rng=None):
    """Fill with draws from N(mean, std^2)."""
    a = _array(p, "normal_")
    mean = _real("normal_", "mean", mean)
    std = _real("normal_", "std", std)
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    _write(a, get_rng(rng).normal(mean, std, size=a.shape))
    return p


def uniform_(p, a=0.0, b=1.0, rng=None):
    """Fill with draws from U[a, b)."""
    arr = _array(p, "uniform_")
    a = _real("uniform_", "a", a)
    b = _real("uniform_", "b", b)
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    _write(arr, get_rng(rng).uniform(a, b, size=arr.shape))
    return p


def xavier_uniform_(p, gain=1.0, rng=None):
    """Glorot: U[-bound, bound] with ``bound = gain sqrt(6 / (fan_in + fan_out))``,

    i.e. variance ``gain^2 * 2 / (fan_in + fan_out)``.
    """
    a = _array(p, "xavier_uniform_")
    fan_in, fan_out = calculate_fans(a.shape)
    bound = _real("xavier_uniform_", "gain", gain) * math.sqrt(6.0 / (fan_in + fan_out))
    _write(a, get_rng(rng).uniform(-bound, bound, size=a.shape))
    return p


def xavier_normal_(p, gain=1.0, rng=None):
    """Glorot: N(0, std^2) with ``std = gain sqrt(2 / (fan_in + fan_out))``."""
    a = _array(p, "xavier_normal_")
    fan_in, fan_out = calculate_fans(a.shape)
    std = _real("xavier_normal_", "gain", gain) * math.sqrt(2.0 / (fan_in + fan_out))
    _write(a, get_rng(rng).normal(0.0, std, size=a.shape))
    return p


def _he_fan(fn, shape, mode):
    fan_in, fan_out = calculate_fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"{fn}: mode must be 'fan_in' or 'fan_out', got {mode!r}")


def he_normal_(p, nonlinearity="relu", a=0.0, rng=None, *, mode="fan_in"):
    """He/Kaiming: N(0, std^2) with ``std = gain / sqrt(fan)`` (fan_in by default)."""
    arr = _array(p, "he_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(_he_fan("he_normal_", arr.shape, mode))
    _write(arr, get_rng(rng).normal(0.0, std, size=arr.shape))
    return p


def he_uniform_(p, nonlinearity="relu", a=0.0, rng=None, *, mode="fan_in"):
    """He/Kaiming: U[-bound, bound] with ``bound = gain sqrt(3 / fan)`` (same variance as he_normal_)."""
    arr = _array(p, "he_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _he_fan("he_uniform_", arr.shape, mode))
    _write(arr, get_rng(rng).uniform(-bound, bound, size=arr.shape))
    return p


def constant_(p, v):
    """Fill with the constant ``v``."""
    a = _array(p, "constant_")
    a[...] = _real("constant_", "v", v)
    return p


def zeros_(p):
    return constant_(p, 0.0)


def ones_(p):
    return constant_(p, 1.0)


def _is(module, names):
    """True when the module's class, or a base class, has one of these names."""
    return any(c.__name__ in names for c in type(module).__mro__)


def dcgan_init_(module, rng=None):
    """DCGAN initialization (Radford et al. 2015), in place, over ``module.modules()``:

    Conv2d / ConvTranspose2d / Linear weights ~ N(0, 0.02^2), their biases 0;
    BatchNorm1d / BatchNorm2d weights (gamma) ~ N(1, 0.02^2), biases (beta) 0.
    Layers are recognized by class name, so this module imports no layer file.
    Draws happen in ``modules()`` order, so a seeded ``rng`` is reproducible.
    Returns the module.
    """
    if not hasattr(module, "modules"):
        raise TypeError(f"dcgan_init_: expected a Module, got {type(module).__name__}")
    rng = get_rng(rng)
    for m in module.modules():
        if _is(m, _WEIGHTED):
            mean = 0.0
        elif _is(m, _BATCHNORM):
            mean = 1.0
        else:
            continue
        w = getattr(m, "weight", None)
        if w is not None:
            normal_(w, mean, DCGAN_STD, rng=rng)
        b = getattr(m, "bias", None)
        if b is not None:
            zeros_(b)
    return module


__all__ = ["calculate_fans", "calculate_gain", "normal_", "uniform_", "xavier_uniform_",
           "xavier_normal_", "he_normal_", "he_uniform_", "zeros_", "ones_", "constant_",
           "dcgan_init_"]


# -- whole-module initialisations used by the models --------------------------------
def _linear_like(m):
    from .nn import Linear, Maxout
    return isinstance(m, (Linear, Maxout))


def init_uniform_(module, irange, rng=None):
    """pylearn2's ``irange`` (the GAN paper's code): every Linear/Maxout weight ~
    U(-irange, irange), biases 0."""
    for m in module.modules():
        if _linear_like(m):
            uniform_(m.weight, -irange, irange, rng=rng)
            if m.bias is not None:
                zeros_(m.bias)
    return module


def mlp_init_normal_(module, std, rng=None):
    """Every Linear weight and bias ~ N(0, std^2) (the VAE paper's initialisation)."""
    from .nn import Linear
    for m in module.modules():
        if isinstance(m, Linear):
            normal_(m.weight, 0.0, std, rng=rng)
            if m.bias is not None:
                normal_(m.bias, 0.0, std, rng=rng)
    return module


def weights_normal_biases_zero_(module, std, rng=None):
    """Every Linear/Maxout weight ~ N(0, std²), biases 0 (BiGAN's and ALI's code)."""
    for m in module.modules():
        if _linear_like(m):
            normal_(m.weight, 0.0, std, rng=rng)
            if m.bias is not None:
                zeros_(m.bias)
    return module
