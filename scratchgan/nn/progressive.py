"""The layers of Progressive GAN (Karras et al. 2018), each with a hand-written backward and,
where the gradient penalty passes through the critic, its second-order passes for
:mod:`scratchgan.nn.second_order`. Their pure forward/backward functions live in
:mod:`scratchgan.ops` (``resample``, ``pixelnorm``, ``minibatch_stddev``, ``fade_in``).

Layers (docs/derivations/progressive.md has every derivation):

* :class:`Upsample2d` nearest ×2 (G) and :class:`AvgPool2d` (2×2 or k×k average, D): linear
  maps, so their Jacobian does not depend on the input and they add no second-order term;
* :class:`EqualizedConv2d` / :class:`EqualizedLinear`: weights drawn N(0, 1) and multiplied by
  the He constant ``c = gain / sqrt(fan_in)`` **at every forward** (equalised learning rate);
  ``equalized=False`` gives the ordinary layer with He-normal initial weights N(0, c²);
* :class:`PixelNorm`: ``y = x / sqrt(mean_c x² + ε)`` over the channel axis (G only: first
  order);
* :class:`MinibatchStdDev`: appends one feature map holding the mean over features and pixels
  of the per-feature standard deviation over a group of samples; it couples the samples and is
  nonlinear, so it carries its own second-order term (:func:`mbstd_backward_jvp`);
* :class:`FadeIn`: ``y = (1 − α) old(x) + α new(x)`` with α held in a 0-d array on the device
  (passed explicitly to the ops), two branches that are sub-networks;
* :func:`to_rgb` / :func:`from_rgb`: 1×1 equalised convolutions (linear, gain 1 / LeakyReLU).

All ops are array-generic (NumPy or CuPy) and do no host reads.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import DEFAULT_DTYPE, get_array_module
from ..ops.conv import (conv2d_backward, conv2d_core_backward_filter, conv2d_core_forward,
                        conv2d_forward)
from ..ops.fade_in import fade_in_backward, fade_in_forward
from ..ops.linear import linear_backward, linear_forward
from ..ops.minibatch_stddev import mbstd_backward, mbstd_backward_jvp, mbstd_forward, mbstd_jvp
from ..ops.pixelnorm import pixelnorm_backward, pixelnorm_forward
from ..ops.resample import (avgpool_backward, avgpool_forward, upsample2x_backward,
                            upsample2x_forward)
from ..rng import get_rng
from ..validate import check_array, check_features
from .activation import LeakyReLU
from .conv import Conv2d
from .second_order import ChainRule, Rule, _ConvRule, _LinearRule, rules_of
from .linear import Linear
from .module import Module, Sequential

__all__ = ["Upsample2d", "AvgPool2d", "EqualizedConv2d", "EqualizedLinear", "PixelNorm",
           "MinibatchStdDev", "FadeIn", "to_rgb", "from_rgb"]


# ============================================================================ modules
class _LinearMapRule(Rule):
    """A parameter-free linear layer ``y = A x``: tangent ``A u``, data backward ``Aᵀ s``,
    ``ṡ_in = Aᵀ ṡ`` (no second-order term: the Jacobian is constant)."""

    def forward(self, h):
        return self.layer._apply(h), tuple(h.shape)

    def backward(self, rec, s):
        return self.layer._adjoint(s)

    def tangent(self, rec, u):
        return self.layer._apply(u)

    def second(self, rec, s, ds, u, input_grad):
        return None if ds is None or not input_grad else self.layer._adjoint(ds)


class _LinearMap(Module):
    def forward(self, x):
        check_array(self._label(), x, ndim=4, what="input (N, C, H, W)")
        self._save_cache(tuple(x.shape))
        return self._apply(x)

    def backward(self, dy):
        self._take_cache()
        return self._adjoint(dy)

    def second_order_rule(self):
        return _LinearMapRule(self)


class Upsample2d(_LinearMap):
    """Nearest-neighbour ×2 upsampling (each pixel copied to a 2×2 block).

    Gradient:
        ``dx[n, c, i, j] = sum_{a, b in {0, 1}} dy[n, c, 2 i + a, 2 j + b]``.
    """

    def _apply(self, x):
        return upsample2x_forward(x)

    def _adjoint(self, dy):
        return upsample2x_backward(dy)


class AvgPool2d(_LinearMap):
    """``factor``×``factor`` average pooling with stride ``factor`` (2: the critic's
    downsampling; a larger factor shrinks an image to a lower resolution in one step).

    Gradient:
        ``dx[n, c, k i + a, k j + b] = dy[n, c, i, j] / k^2`` (a, b < k).
    """

    def __init__(self, factor=2):
        super().__init__()
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ValueError(f"AvgPool2d: factor must be an int >= 1, got {factor!r}")
        self.factor = factor

    def extra_repr(self):
        return f"factor={self.factor}"

    def _label(self):
        return f"AvgPool2d({self.factor})"

    def _apply(self, x):
        return avgpool_forward(x, self.factor)

    def _adjoint(self, dy):
        return avgpool_backward(dy, self.factor)


def _gen(rng):
    """A NumPy Generator from None (the global one), an int seed or a Generator."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    return get_rng(rng)


def _he(fan_in, gain):
    return gain / math.sqrt(fan_in)


class _EqConvRule(_ConvRule):
    """Equalised convolution ``y = conv(x, c W) + b``: the conv rule with the scaled weight
    ``Ŵ = c W`` in every pass, and ``∂Φ/∂W = c ∂Φ/∂Ŵ``."""

    def forward(self, h):
        m = self.layer
        m._check_input(h)
        return conv2d_forward(h, m.effective_weight(), None if m.bias is None else m.bias.data,
                              m.stride, m.padding, m.dilation)

    def tangent(self, rec, u):
        return conv2d_core_forward(u, rec[1], *self._hyper())

    def second(self, rec, s, ds, u, input_grad):
        m, pg = self.layer, self.param_grad()
        c = m.scale
        ds_in = None
        if pg:
            m.weight.grad += c * conv2d_core_backward_filter(u, s, m.weight.shape, *self._hyper())
        if ds is not None:
            ds_in, dw, db = conv2d_backward(ds, rec, input_grad, pg)
            if pg:
                m.weight.grad += c * dw
                if db is not None:
                    m.bias.grad += db
        return ds_in


class EqualizedConv2d(Conv2d):
    """Conv2d with the equalised learning rate.

    ``equalized=True``: ``weight`` ~ N(0, 1), bias 0, and the forward uses ``c·weight`` with
    the He constant ``c = gain / sqrt(in_channels·kh·kw)`` recomputed at every call, so Adam's
    per-parameter step acts on a unit-scale weight. Backward: ``∂L/∂W = c ∂L/∂Ŵ`` (chain rule
    through Ŵ = c W); ``∂L/∂x`` uses Ŵ. ``equalized=False``: the plain layer, weights drawn
    He-normal N(0, c²) (the same function at initialisation) and ``c = 1`` in the forward.

    Gradient:
        with ``W_hat = c W``: ``dx`` and ``dW_hat`` are Conv2d's gradients for
        ``W_hat``, ``dW = c dW_hat`` and ``db = sum_{n,p,q} dy``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 gain=math.sqrt(2.0), equalized=True, rng=None):
        gen = _gen(rng)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias=bias, rng=gen)
        kh, kw = self.kernel_size
        he = _he(self.in_channels * kh * kw, gain)
        self.equalized, self.gain = bool(equalized), float(gain)
        self.scale = he if self.equalized else 1.0
        std = 1.0 if self.equalized else he
        self.weight.data[...] = (std * gen.standard_normal(self.weight.shape)).astype(DEFAULT_DTYPE)
        if self.bias is not None:
            self.bias.data[...] = 0

    def _label(self):
        return "Equalized" + super()._label()

    def effective_weight(self):
        w = self.weight.data
        return w * self.scale if self.equalized else w

    def forward(self, x):
        self._check_input(x)
        y, cache = conv2d_forward(x, self.effective_weight(),
                                  None if self.bias is None else self.bias.data,
                                  self.stride, self.padding, self.dilation)
        self._save_cache((cache, y.shape))
        return y

    def backward(self, dy, input_grad=True):
        cache, y_shape = self._take_cache()
        self._check_dy(dy, y_shape)
        dx, dw, db = conv2d_backward(dy, cache, input_grad, not self._frozen)
        if dw is not None and self.equalized:
            dw *= self.scale
        self._accumulate(dw, db)
        return dx

    def second_order_rule(self):
        return _EqConvRule(self)


class _EqLinearRule(_LinearRule):
    """Equalised linear ``y = x (c W)ᵀ + b``: the linear rule with Ŵ = c W, ``∂Φ/∂W = c ∂Φ/∂Ŵ``."""

    def forward(self, h):
        m = self.layer
        check_features(m._label(), h, m.in_features, dtype=m.weight.dtype, device=m.device)
        return linear_forward(h, m.effective_weight(), None if m.bias is None else m.bias.data)

    def tangent(self, rec, u):
        return linear_forward(u, rec[1], None)[0]

    def second(self, rec, s, ds, u, input_grad):
        m, pg = self.layer, self.param_grad()
        c = m.scale
        ds_in = None
        if pg:
            m.weight.grad += c * linear_backward(s, (u, rec[1], False), False, True)[1]
        if ds is not None:
            ds_in, dw, db = linear_backward(ds, rec, input_grad, pg)
            if pg:
                m.weight.grad += c * dw
                if db is not None:
                    m.bias.grad += db
        return ds_in


class EqualizedLinear(Linear):
    """Linear with the equalised learning rate (see :class:`EqualizedConv2d`):
    ``y = x (c W)ᵀ + b``, ``c = gain / sqrt(in_features)``, W ~ N(0, 1), b = 0.

    Gradient:
        ``dx = dy (c W)``, ``dW += c dy^T x``, ``db += sum_n dy``.
    """

    def __init__(self, in_features, out_features, bias=True, gain=math.sqrt(2.0), equalized=True,
                 rng=None):
        gen = _gen(rng)
        super().__init__(in_features, out_features, bias=bias, rng=gen)
        he = _he(self.in_features, gain)
        self.equalized, self.gain = bool(equalized), float(gain)
        self.scale = he if self.equalized else 1.0
        std = 1.0 if self.equalized else he
        self.weight.data[...] = (std * gen.standard_normal(self.weight.shape)).astype(DEFAULT_DTYPE)
        if self.bias is not None:
            self.bias.data[...] = 0

    def _label(self):
        return f"EqualizedLinear({self.in_features}, {self.out_features})"

    def effective_weight(self):
        w = self.weight.data
        return w * self.scale if self.equalized else w

    def forward(self, x):
        check_features(self._label(), x, self.in_features, dtype=self.weight.dtype,
                       device=self.device)
        y, cache = linear_forward(x, self.effective_weight(),
                                  None if self.bias is None else self.bias.data)
        self._save_cache(cache)
        return y

    def backward(self, dy, input_grad=True):
        cache = self._take_cache()
        dx, dw, db = linear_backward(dy, cache, input_grad, not self._frozen)
        if dw is not None:
            self.weight.grad += dw * self.scale if self.equalized else dw
        if db is not None:
            self.bias.grad += db
        return dx

    def second_order_rule(self):
        return _EqLinearRule(self)


class PixelNorm(Module):
    """Pixelwise feature normalisation ``y = x / sqrt(mean_c x² + ε)`` over axis 1 (a
    generator layer; it has no second-order passes, and a critic containing it is refused).

    Gradient:
        ``dx = r (dy - y mean_c(y dy))`` with ``r = (mean_c x^2 + eps)^(-1/2)``.
    """

    def __init__(self, eps=1e-8):
        super().__init__()
        self.eps = float(eps)

    def forward(self, x):
        check_array("PixelNorm", x, what="input (N, C, ...)")
        y, cache = pixelnorm_forward(x, self.eps)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        return pixelnorm_backward(dy, self._take_cache())


class _MbstdRule(Rule):
    """Minibatch stddev: data backward :func:`mbstd_backward`, tangent :func:`mbstd_jvp`,
    ``ṡ_in`` :func:`mbstd_backward_jvp` (with its second-order term)."""

    def forward(self, h):
        return mbstd_forward(h, self.layer.group_size, self.layer.eps)

    def backward(self, rec, s):
        return mbstd_backward(s, rec)

    def tangent(self, rec, u):
        return mbstd_jvp(u, rec)

    def second(self, rec, s, ds, u, input_grad):
        return mbstd_backward_jvp(s, ds, u, rec) if input_grad else None


class MinibatchStdDev(Module):
    """Appends the minibatch standard deviation as one feature map (see :func:`mbstd_forward`).
    ``group_size``: members per group (4 in the authors' TensorFlow code; None: the whole
    batch, as in their Theano MNIST code). In a critic, ∇ₓ of ``Σ_n D(x_n)`` then couples the
    samples of a group; the penalty uses that gradient, as the authors do.

    Gradient:
        ``dx = dy[:, :C] + (a_m / (K G)) d / sigma``, with ``a_m`` the sum of
        ``dy``'s statistic channel over the members and pixels of group m,
        ``K = C H W``, ``d`` the deviations from the group mean and ``sigma`` their
        standard deviation (:func:`mbstd_backward`).
    """

    def __init__(self, group_size=4, eps=1e-8):
        super().__init__()
        if group_size is not None and (isinstance(group_size, bool) or int(group_size) < 1):
            raise ValueError(f"MinibatchStdDev: group_size must be None or an int >= 1, got "
                             f"{group_size!r}")
        self.group_size = None if group_size is None else int(group_size)
        self.eps = float(eps)

    def extra_repr(self):
        return f"group_size={self.group_size}"

    def forward(self, x):
        check_array("MinibatchStdDev", x, ndim=4, what="input (N, C, H, W)")
        y, cache = mbstd_forward(x, self.group_size, self.eps)
        self._save_cache(cache)
        return y

    def backward(self, dy):
        return mbstd_backward(dy, self._take_cache())

    def second_order_rule(self):
        return _MbstdRule(self)


class _FadeInRule(Rule):
    """``y = (1 − α) A(x) + α B(x)``: every pass is the blend of the branches' passes (each a
    :class:`~scratchgan.nn.second_order.ChainRule`), with the signals scaled by (1 − α) and α."""

    def __init__(self, layer):
        self.layer = layer
        self.old = ChainRule(rules_of(layer.old, "FadeIn.old"))
        self.new = ChainRule(rules_of(layer.new, "FadeIn.new"))
        self.has_params = self.old.has_params or self.new.has_params

    def param_grad(self):
        return self.has_params

    def forward(self, h):
        yo, ro = self.old.forward(h)
        yn, rn = self.new.forward(h)
        a = self.layer.alpha
        return fade_in_forward(yo, yn, a)[0], (ro, rn, a)

    def backward(self, rec, s):
        ro, rn, a = rec
        so, sn = fade_in_backward(s, a)
        return self.old.backward(ro, so) + self.new.backward(rn, sn)

    def tangent(self, rec, u):
        ro, rn, a = rec
        return fade_in_forward(self.old.tangent(ro, u), self.new.tangent(rn, u), a)[0]

    def second(self, rec, s, ds, u, input_grad):
        ro, rn, a = rec
        dso, dsn = (None, None) if ds is None else fade_in_backward(ds, a)
        out_o = self.old.second(ro, None, dso, u, input_grad)
        out_n = self.new.second(rn, None, dsn, u, input_grad)
        if not input_grad:
            return None
        if out_o is None or out_n is None:          # None stands for an exact zero
            out = out_n if out_o is None else out_o
            return get_array_module(u).zeros_like(u) if out is None else out
        return out_o + out_n


class FadeIn(Module):
    """``y = (1 − α) old(x) + α new(x)``: the fade-in of a new resolution's layers.

    ``old`` and ``new`` are sub-networks (Modules, usually Sequentials) fed the same input; α is
    a one-element array buffer (shape (1,), broadcasting over any output; a checkpoint keeps
    its shape) in the layer's dtype and device, set with :meth:`set_alpha` (a device
    write, outside any CUDA-graph capture) so a captured step reads the current value. The
    backward sends ``(1 − α) dy`` into ``old`` and ``α dy`` into ``new`` and sums their input
    gradients. The second-order passes blend the branches' passes the same way.

    Gradient:
        ``dx = old.backward((1 - alpha) dy) + new.backward(alpha dy)``.
    """

    def __init__(self, old, new, alpha=0.0):
        super().__init__()
        for label, m in (("old", old), ("new", new)):
            if not isinstance(m, Module):
                raise TypeError(f"FadeIn: {label} must be a Module, got {type(m).__name__}")
        self.old, self.new = old, new
        self.register_buffer("alpha", np.full((1,), float(alpha), dtype=DEFAULT_DTYPE))

    def set_alpha(self, value):
        """Write α in place (the same array, so a captured graph reads the new value)."""
        self.alpha[...] = value
        return self

    def forward(self, x):
        y, a = fade_in_forward(self.old(x), self.new(x), self.alpha)
        self._save_cache(a)
        return y

    def backward(self, dy, input_grad=True):
        a = self._take_cache()
        do, dn = fade_in_backward(dy, a)
        gx_o = _seq_backward(self.old, do, input_grad)
        gx_n = _seq_backward(self.new, dn, input_grad)
        if not input_grad:
            return None
        return gx_o + gx_n

    def second_order_rule(self):
        return _FadeInRule(self)


def _seq_backward(m, dy, input_grad):
    if isinstance(m, Sequential):
        return m.backward(dy, input_grad=input_grad)
    return m.backward(dy)


def to_rgb(in_channels, out_channels=3, kernel_size=1, equalized=True, rng=None):
    """toRGB: a linear 1×1 equalised convolution (gain 1) to the image channels."""
    return EqualizedConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                           gain=1.0, equalized=equalized, rng=rng)


def from_rgb(in_channels, out_channels, slope=0.2, equalized=True, rng=None):
    """fromRGB: a 1×1 equalised convolution (gain √2) and LeakyReLU(slope)."""
    return Sequential(EqualizedConv2d(in_channels, out_channels, 1, equalized=equalized, rng=rng),
                      LeakyReLU(slope))
