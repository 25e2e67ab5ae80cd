"""Convolution layers: Conv2d and ConvTranspose2d (NCHW, PyTorch weight layouts)."""
from __future__ import annotations

import math

from ..backend import DEFAULT_DTYPE
from ..ops.conv import (conv2d_backward, conv2d_forward, conv2d_output_size,
                        conv_transpose2d_backward, conv_transpose2d_forward,
                        conv_transpose2d_output_size)
from ..rng import get_rng
from ..validate import check_array, check_positive_int, pair
from .module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d"]


def _init_uniform(gen, shape, fan_in):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) in float32 (PyTorch's default conv init bound)."""
    bound = 1.0 / math.sqrt(fan_in)
    return gen.uniform(-bound, bound, size=shape).astype(DEFAULT_DTYPE)


class _ConvBase(Module):
    def _set_geometry(self, name, in_channels, out_channels, kernel_size, stride, padding,
                      dilation):
        """Validate and store the channel counts and the (h, w) pairs both layers share."""
        check_positive_int(name, "in_channels", in_channels)
        check_positive_int(name, "out_channels", out_channels)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(name, "kernel_size", kernel_size)
        self.stride = pair(name, "stride", stride)
        self.padding = pair(name, "padding", padding, allow_zero=True)
        self.dilation = pair(name, "dilation", dilation)

    def _init_parameters(self, gen, weight_shape, fan_in, bias):
        """Weight, then bias, from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        self.weight = Parameter(_init_uniform(gen, weight_shape, fan_in))
        self.bias = Parameter(_init_uniform(gen, (self.out_channels,), fan_in)) if bias else None

    def _check_input(self, x):
        name = self._label()
        check_array(name, x, ndim=4, dtype=self.weight.dtype, device=self.device,
                    what=f"input (N, {self.in_channels}, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: expected {self.in_channels} input channels "
                             f"(input of shape (N, {self.in_channels}, H, W)), got shape "
                             f"{tuple(x.shape)} with {x.shape[1]} channels")

    def _check_dy(self, dy, expected):
        check_array(self._label(), dy, ndim=4, dtype=self.weight.dtype, device=self.device,
                    what="upstream gradient dy")
        if tuple(dy.shape) != tuple(expected):
            raise ValueError(f"{self._label()}: backward expected dy of shape {tuple(expected)} "
                             f"(the forward's output), got {tuple(dy.shape)}")

    def _accumulate(self, dw, db):
        if dw is not None:          # None: a frozen layer (scratchgan.nn.frozen)
            self.weight.grad += dw
        if db is not None:
            self.bias.grad += db


class Conv2d(_ConvBase):
    """2-D convolution ``y = conv(x, weight) + bias``.

    ``weight`` is (out_channels, in_channels, kh, kw) and ``bias`` (out_channels,),
    both drawn U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels*kh*kw
    from ``get_rng(rng)``, float32 on the CPU. Output size per axis:
    ``(H + 2 padding - dilation (k-1) - 1) // stride + 1``.

    Gradient:
        with ``x_pad`` the zero-padded input and stride s, dilation d:
        ``dW[o, c, i, j] = sum_{n,p,q} dy[n, o, p, q] x_pad[n, c, s p + d i, s q + d j]``,
        ``db[o] = sum_{n,p,q} dy[n, o, p, q]``, and ``dx`` is the transposed convolution of
        ``dy`` with the same ``W`` (the adjoint of the forward's linear map in x), cropped
        by the padding. Derivation: docs/derivations/conv.md.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, rng=None):
        super().__init__()
        name = f"Conv2d({in_channels!r}, {out_channels!r})"
        self._set_geometry(name, in_channels, out_channels, kernel_size, stride, padding, dilation)
        kh, kw = self.kernel_size
        self._init_parameters(get_rng(rng), (self.out_channels, self.in_channels, kh, kw),
                              fan_in=self.in_channels * kh * kw, bias=bias)

    def _label(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation})")

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}")

    def output_size(self, hw):
        return conv2d_output_size(hw, self.kernel_size, self.stride, self.padding, self.dilation)

    def forward(self, x):
        self._check_input(x)
        H, W = x.shape[2:]
        P, Q = self.output_size((H, W))
        if P < 1 or Q < 1:
            eff = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size))
            padded = (H + 2 * self.padding[0], W + 2 * self.padding[1])
            raise ValueError(f"{self._label()}: the (dilated) kernel {eff} is larger than the padded "
                             f"input {padded}; expected a padded input of at least {eff}, got input "
                             f"shape {tuple(x.shape)}")
        y, cache = conv2d_forward(x, self.weight.data,
                                  None if self.bias is None else self.bias.data,
                                  self.stride, self.padding, self.dilation)
        self._save_cache((cache, y.shape))
        return y

    def backward(self, dy, input_grad=True):
        """Accumulate dW, db; return dx (None with ``input_grad=False``)."""
        cache, y_shape = self._take_cache()
        self._check_dy(dy, y_shape)
        dx, dw, db = conv2d_backward(dy, cache, input_grad, not self._frozen)
        self._accumulate(dw, db)
        return dx


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution (the adjoint of Conv2d), PyTorch semantics.

    ``weight`` is (in_channels, out_channels, kh, kw), ``bias`` (out_channels,), both
    drawn U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = out_channels*kh*kw (PyTorch
    computes fan-in from the weight's dim 1). Output size per axis:
    ``(H-1) stride - 2 padding + dilation (k-1) + output_padding + 1``;
    ``output_padding`` must be smaller than stride or dilation.

    Gradient:
        the forward is the adjoint of Conv2d's input map, so
        ``dx = conv2d(dy, W)`` (the ordinary convolution with the same weight, stride,
        padding and dilation), ``dW[c, o, i, j] = sum_{n,p,q} x[n, c, p, q]
        dy_pad[n, o, s p + d i, s q + d j]`` and ``db[o] = sum_{n,h,w} dy[n, o, h, w]``.
        Derivation: docs/derivations/conv.md.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True, rng=None):
        super().__init__()
        name = f"ConvTranspose2d({in_channels!r}, {out_channels!r})"
        self._set_geometry(name, in_channels, out_channels, kernel_size, stride, padding, dilation)
        self.output_padding = pair(name, "output_padding", output_padding, allow_zero=True)
        for ax, (op, s, d) in enumerate(zip(self.output_padding, self.stride, self.dilation)):
            if op >= max(s, d):
                raise ValueError(f"{name}: output_padding must be smaller than stride or dilation "
                                 f"(< max(stride, dilation) = {max(s, d)} on axis {ax}), got "
                                 f"output_padding={self.output_padding}, stride={self.stride}, "
                                 f"dilation={self.dilation}")
        kh, kw = self.kernel_size
        self._init_parameters(get_rng(rng), (self.in_channels, self.out_channels, kh, kw),
                              fan_in=self.out_channels * kh * kw, bias=bias)

    def _label(self):
        return (f"ConvTranspose2d({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding}, dilation={self.dilation})")

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}")

    def output_size(self, hw):
        return conv_transpose2d_output_size(hw, self.kernel_size, self.stride, self.padding,
                                            self.output_padding, self.dilation)

    def forward(self, x):
        self._check_input(x)
        Ho, Wo = self.output_size(x.shape[2:])
        if Ho < 1 or Wo < 1:
            raise ValueError(f"{self._label()}: input of shape {tuple(x.shape)} gives an output "
                             f"size of {(Ho, Wo)}; expected at least (1, 1): the padding "
                             f"{self.padding} crops more than the transposed convolution produces")
        y, cache = conv_transpose2d_forward(x, self.weight.data,
                                            None if self.bias is None else self.bias.data,
                                            self.stride, self.padding, self.output_padding,
                                            self.dilation)
        self._save_cache((cache, y.shape))
        return y

    def backward(self, dy, input_grad=True):
        """Accumulate dW, db; return dx (None with ``input_grad=False``)."""
        cache, y_shape = self._take_cache()
        self._check_dy(dy, y_shape)
        dx, dw, db = conv_transpose2d_backward(dy, cache, input_grad, not self._frozen)
        self._accumulate(dw, db)
        return dx
