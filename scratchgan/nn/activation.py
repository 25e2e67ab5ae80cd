"""Element-wise activation layers (no parameters)."""
from __future__ import annotations

from ..ops import activation as A
from ..validate import check_array
from .module import FUSED, Module

__all__ = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softplus"]


class _Activation(Module):
    _op = None  # name of the op pair in scratchgan.ops.activation, looked up at call time
    _fusable_act = None  # name under which a BatchNorm before it can apply it (GPU)

    def _label(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def _op_args(self):
        return ()

    def forward(self, x):
        check_array(self._label(), x)
        y, cache = getattr(A, f"{self._op}_forward")(x, *self._op_args())
        self._save_cache(cache)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        if cache is FUSED:   # the layer before applied this activation; it applies act' too
            return dy
        return getattr(A, f"{self._op}_backward")(dy, cache)

    def fused_args(self):
        """(activation name, slope) for a layer that applies this activation itself."""
        return self._fusable_act, 0.0


class ReLU(_Activation):
    """``max(x, 0)``.

    Gradient:
        ``dx = dy * [x > 0]`` (0 at x = 0).
    """
    _op = "relu"
    _fusable_act = "relu"


class LeakyReLU(_Activation):
    """``x`` for x > 0, ``negative_slope * x`` otherwise.

    Gradient:
        ``dx = dy`` where x > 0, ``negative_slope * dy`` elsewhere.
    """
    _op = "leaky_relu"
    _fusable_act = "leaky_relu"

    def fused_args(self):
        return "leaky_relu", self.negative_slope

    def __init__(self, negative_slope=0.01):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
            raise TypeError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def _op_args(self):
        return (self.negative_slope,)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Tanh(_Activation):
    """``tanh(x)``.

    Gradient:
        ``dx = dy * (1 - y^2)`` with ``y = tanh(x)`` (the forward's output, cached).
    """
    _op = "tanh"


class Sigmoid(_Activation):
    """``1 / (1 + e^{-x})`` (overflow-free).

    Gradient:
        ``dx = dy * y (1 - y)`` with ``y = sigmoid(x)`` (the forward's output, cached).
    """
    _op = "sigmoid"


class Softplus(_Activation):
    """``log(1 + e^x)`` (overflow-free).

    Gradient:
        ``dx = dy * sigmoid(x)``.
    """
    _op = "softplus"
