"""Second-order backward: the parameter gradient of a function of ∇ₓD (the gradient penalty).

WGAN-GP's critic loss contains ``P = λ mean_n (‖∇ₓD(x̂_n)‖ − 1)²``. Its gradient with respect to
the critic's parameters θ is a gradient of a gradient. With ``g = ∇ₓD(x̂)`` (per sample) and
``v = ∂P/∂g`` (see :func:`scratchgan.ops.second_order.gradient_penalty_backward`), the chain rule gives

    ∂P/∂θ = ∂Φ/∂θ,        Φ(θ) = Σ v ⊙ g(θ)        (v held fixed),

so what the library must supply is ``∂(Σ v ⊙ ∇ₓD)/∂θ``. Two functions do it:

* :func:`input_gradient` ``(critic, x) -> (g, tape)``: a forward pass and a **data-only**
  backward (no parameter gradient), keeping every layer's input ``h_{l-1}`` and its backward
  signal ``s_l = ∂D/∂h_l``; ``g = s_0``.
* :func:`penalty_backward` ``(tape, v)``: **accumulates** ``∂Φ/∂θ`` into every parameter's
  ``.grad`` (and optionally returns ``∂Φ/∂x``).

The method (docs/derivations/second_order.md has the full derivation). ``Φ = Σ_n <v_n, ∇ₓD(x_n)>``
is the directional derivative of ``D`` along ``v``: ``Φ = d/dt Σ_n D(x_n + t v_n)`` at t = 0.
Mixed partials commute, so ``∂Φ/∂θ = d/dt ∇_θ D(x + t v)``: the forward-mode derivative, along
the input direction v, of the ordinary first-order parameter gradient. Differentiating the
backpropagation equations along ``x → x + t v`` gives two tangents:

* the **forward tangent** ``u_l = ḣ_l``: ``u_0 = v``, ``u_l = J_l u_{l-1}`` (each layer's
  Jacobian-vector product: a Linear/Conv forward *without bias*, ``a'(z) ⊙ u`` for an
  activation, LayerNorm's symmetric Jacobian);
* the **backward tangent** ``ṡ_l``: ``ṡ_L = 0`` (D's output weight is a constant),
  ``ṡ_{l-1} = J_lᵀ ṡ_l + (∂(J_lᵀ s_l)/∂h_{l-1}) u_{l-1}``. The second term is zero for layers
  whose Jacobian does not depend on their input (Linear, Conv, reshapes) and for
  piecewise-linear activations away from their kink; for a smooth activation it is
  ``a''(z) ⊙ s_l ⊙ u_{l-1}``, for LayerNorm
  :func:`~scratchgan.ops.layernorm.layernorm_backward_jvp`.

A layer's first-order parameter gradient is a bilinear pairing of (backward signal, input), e.g.
``dW = s_lᵀ h_{l-1}`` for Linear; its tangent, by the product rule, is

    ∂Φ/∂W_l = ṡ_lᵀ h_{l-1} + s_lᵀ u_{l-1},       ∂Φ/∂b_l = Σ ṡ_l,

two calls of the **existing** weight-gradient op (``linear_backward``,
``conv2d_core_backward_filter``/``conv2d_backward``), one with (ṡ, h) and one with (s, u).
For a critic of Linear/Conv layers and (Leaky)ReLUs the tangent ṡ is identically zero (the
tape keeps it as ``None`` and skips its GEMMs): ``∂Φ/∂W_l = s_lᵀ u_{l-1}`` and the penalty's
bias gradients are exactly zero. Everything runs on the ops of :mod:`scratchgan.ops`, so NumPy
and CuPy arrays both work, with no host reads (capturable in a CUDA graph).

Supported layers: Linear, Conv2d, ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, LayerNorm, Flatten,
Reshape, Unflatten, nested Sequential, and any layer with a ``second_order_rule()`` method
returning a :class:`Rule` (the Progressive GAN layers of :mod:`scratchgan.nn.progressive`:
equalised Linear/Conv2d, average pooling, upsampling, minibatch stddev, the fade-in blend of
two sub-networks; a composite layer runs its sub-networks' passes with :class:`ChainRule`;
docs/derivations/progressive.md). BatchNorm raises :class:`SecondOrderError` (it couples
the samples of a batch, so ∇ₓD is not per-sample and the penalty is ill-defined; Gulrajani et
al. 2017, §4, replace it by layer normalization in the critic). Any other layer raises too.

The tape is explicit (cs231n style): the critic's own pending caches are not touched and
``.grad`` changes only in :func:`penalty_backward`. A frozen layer
(:func:`scratchgan.nn.frozen`) gets no parameter gradient.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..ops import activation as A
from ..ops.conv import (conv2d_backward, conv2d_core_backward_filter, conv2d_core_forward,
                        conv2d_forward)
from ..ops.layernorm import (layernorm_backward, layernorm_backward_jvp, layernorm_forward,
                             layernorm_jvp)
from ..ops.linear import linear_backward, linear_forward
from ..ops.second_order import ACTIVATION_DERIVATIVES
from ..validate import check_features
from .activation import _Activation
from .conv import Conv2d
from .layernorm import LayerNorm
from .linear import Linear
from .module import Module, Sequential, no_grad
from .norm import _BatchNorm
from .shape import _Reshaping

__all__ = ["SecondOrderError", "Tape", "input_gradient", "penalty_backward", "Rule",
           "ChainRule", "rules_of"]


class SecondOrderError(TypeError):
    """A layer that has no second-order backward (BatchNorm, or an unsupported type)."""


def _add(a, b):
    """``a + b`` where None stands for an exact zero."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _accumulate(param, grad):
    if grad is not None:
        param.grad += grad


def _accumulate_layer(m, param_grad, dw, db):
    """Add a layer's weight (and bias) gradient into its .grad unless it is frozen."""
    if param_grad:
        _accumulate(m.weight, dw)
        if m.bias is not None:
            _accumulate(m.bias, db)


# ----------------------------------------------------------------------------- layer rules
class _Rule:
    """One layer's four passes. ``forward(h) -> (y, rec)``; ``backward(rec, s) -> s_in``
    (data only); ``tangent(rec, u) -> J u``; ``second(rec, s, ds, u, input_grad)`` accumulates
    the layer's ∂Φ/∂θ and returns ``ṡ_in`` (None: zero)."""

    has_params = False

    def __init__(self, layer):
        self.layer = layer

    def param_grad(self):
        return bool(self.layer.parameters()) and not self.layer._frozen


class _LinearRule(_Rule):
    """``y = x Wᵀ + b``. Data backward ``s_in = s W``; tangent ``u_out = u Wᵀ`` (no bias);
    ``ṡ_in = ṡ W``; ``∂Φ/∂W = ṡᵀ h + sᵀ u``, ``∂Φ/∂b = Σ_n ṡ`` (linear_backward twice)."""

    has_params = True

    def forward(self, h):
        m = self.layer
        check_features(m._label(), h, m.in_features, dtype=m.weight.dtype, device=m.device)
        return linear_forward(h, m.weight.data, None if m.bias is None else m.bias.data)

    def backward(self, rec, s):
        return linear_backward(s, rec, True, False)[0]

    def tangent(self, rec, u):
        return linear_forward(u, self.layer.weight.data, None)[0]

    def second(self, rec, s, ds, u, input_grad):
        m, pg = self.layer, self.param_grad()
        h, w, has_bias = rec
        ds_in = None
        if pg:
            _accumulate(m.weight, linear_backward(s, (u, w, False), False, True)[1])
        if ds is not None:
            ds_in, dw, db = linear_backward(ds, rec, input_grad, pg)
            _accumulate_layer(m, pg, dw, db)
        return ds_in


class _ConvRule(_Rule):
    """``y = conv(x, W) + b``. Data backward = backward-data of s; tangent ``conv(u, W)``
    (no bias); ``ṡ_in`` = backward-data of ṡ; ``∂Φ/∂W = bwd_filter(h, ṡ) + bwd_filter(u, s)``,
    ``∂Φ/∂b = Σ_{n,p,q} ṡ``."""

    has_params = True

    def forward(self, h):
        m = self.layer
        m._check_input(h)
        return conv2d_forward(h, m.weight.data, None if m.bias is None else m.bias.data,
                              m.stride, m.padding, m.dilation)

    def backward(self, rec, s):
        return conv2d_backward(s, rec, True, False)[0]

    def _hyper(self):
        m = self.layer
        return m.stride, m.padding, m.dilation

    def tangent(self, rec, u):
        return conv2d_core_forward(u, self.layer.weight.data, *self._hyper())

    def second(self, rec, s, ds, u, input_grad):
        m, pg = self.layer, self.param_grad()
        ds_in = None
        if pg:
            _accumulate(m.weight, conv2d_core_backward_filter(u, s, m.weight.shape, *self._hyper()))
        if ds is not None:
            ds_in, dw, db = conv2d_backward(ds, rec, input_grad, pg)
            _accumulate_layer(m, pg, dw, db)
        return ds_in


class _ActivationRule(_Rule):
    """``y = a(z)`` element-wise. Data backward ``s_in = a'(z) s``; tangent ``a'(z) u``;
    ``ṡ_in = a'(z) ṡ + a''(z) s u`` (the a''-term is the second-order term sent back down;
    it is absent for ReLU and LeakyReLU)."""

    def forward(self, z):
        m = self.layer
        y, _ = getattr(A, f"{m._op}_forward")(z, *m._op_args())
        slope = getattr(m, "negative_slope", 0.0)
        d1, _ = ACTIVATION_DERIVATIVES[m._op](z, y, slope)
        return y, (z, y, slope, d1)

    def backward(self, rec, s):
        return rec[3] * s

    def tangent(self, rec, u):
        return rec[3] * u

    def second(self, rec, s, ds, u, input_grad):
        if not input_grad:
            return None
        z, y, slope, d1 = rec
        _, d2 = ACTIVATION_DERIVATIVES[self.layer._op](z, y, slope)
        out = None if ds is None else d1 * ds
        return out if d2 is None else _add(out, d2 * s * u)


class _LayerNormRule(_Rule):
    """LayerNorm: data backward ``N(γ s)``, tangent ``γ N(u)`` and the second-order term of
    :func:`scratchgan.ops.layernorm.layernorm_backward_jvp` (LayerNorm's Jacobian depends on
    its input, so ``ṡ_in`` is non-zero even where ``ṡ`` is zero)."""

    has_params = True

    def forward(self, h):
        self.layer._check_input(h)
        return layernorm_forward(h, *self.layer.op_args())

    def backward(self, rec, s):
        return layernorm_backward(s, rec, True, False)[0]

    def tangent(self, rec, u):
        return layernorm_jvp(u, rec)

    def second(self, rec, s, ds, u, input_grad):
        m, pg = self.layer, self.param_grad()
        ds_in, dg, db = layernorm_backward_jvp(s, ds, u, rec, input_grad, pg)
        if pg:
            _accumulate(m.weight, dg)
            _accumulate(m.bias, db)
        return ds_in


class _ReshapeRule(_Rule):
    """Flatten/Reshape/Unflatten: every pass reshapes; no second-order term."""

    def forward(self, h):
        with no_grad():
            y = self.layer(h)
        return y, (tuple(h.shape), tuple(y.shape))

    def backward(self, rec, s):
        return s.reshape(rec[0])

    def tangent(self, rec, u):
        return u.reshape(rec[1])

    def second(self, rec, s, ds, u, input_grad):
        return None if ds is None or not input_grad else ds.reshape(rec[0])


def _rule_for(layer, where):
    hook = getattr(layer, "second_order_rule", None)
    if hook is not None:            # a layer that brings its own four passes (progressive.py)
        return hook()
    if isinstance(layer, _BatchNorm):
        raise SecondOrderError(
            f"scratchgan.nn.second_order: {layer._label()} at {where} of the critic: batch "
            "normalization couples the samples of a batch, so the input gradient of one sample "
            "is not per-sample and the gradient penalty is ill-defined (Gulrajani et al. 2017, "
            "section 4, forbid it in the critic). Use scratchgan.nn.LayerNorm, or no "
            "normalization.")
    for cls, rule in ((Linear, _LinearRule), (Conv2d, _ConvRule), (_Activation, _ActivationRule),
                      (LayerNorm, _LayerNormRule), (_Reshaping, _ReshapeRule)):
        if isinstance(layer, cls):
            if rule is _ActivationRule and layer._op not in ACTIVATION_DERIVATIVES:
                break
            return rule(layer)
    raise SecondOrderError(
        f"scratchgan.nn.second_order: {layer._label()} at {where} of the critic has no second-order "
        "backward; supported: Linear, Conv2d, ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, "
        "LayerNorm, Flatten, Reshape, Unflatten, nested Sequential and layers with a "
        "second_order_rule() method (scratchgan.nn.progressive).")


#: the public name of the rule protocol, for layers defined outside this module: a Module
#: with a method ``second_order_rule()`` returning a :class:`Rule` is supported by the tape.
Rule = _Rule


class ChainRule(_Rule):
    """The four passes of a chain of rules (a sub-network inside a composite layer, such as
    the two branches of :class:`scratchgan.nn.progressive.FadeIn`).

    The record is a dict holding the inner records, the inner backward signals (filled by
    :meth:`backward`) and the inner tangents (filled by :meth:`tangent`, or recomputed by
    :meth:`second` for the ``u`` it is given). The passes are the tape's own, applied inside:
    ``backward`` walks down keeping each inner ``s_l``; ``tangent`` walks up keeping each
    inner ``u_{l-1}``; ``second`` walks down with ``ṡ``, each inner layer accumulating its
    ``∂Φ/∂θ`` and returning its ``ṡ_in``.
    """

    def __init__(self, rules):
        self.layer = None
        self.rules = list(rules)
        self.has_params = any(r.has_params for r in self.rules)

    def param_grad(self):
        return self.has_params

    def forward(self, h):
        recs = []
        for r in self.rules:
            h, rec = r.forward(h)
            recs.append(rec)
        return h, {"recs": recs, "signals": None, "u": None, "tangents": None}

    def backward(self, rec, s):
        signals = [None] * len(self.rules)
        for i in range(len(self.rules) - 1, -1, -1):
            signals[i] = s
            s = self.rules[i].backward(rec["recs"][i], s)
        rec["signals"] = signals
        return s

    def _tangents(self, rec, u):
        if rec["u"] is not u:
            ts = []
            for r, rr in zip(self.rules, rec["recs"]):
                ts.append(u)
                u = r.tangent(rr, u)
            rec["u"], rec["tangents"], rec["u_out"] = ts[0] if ts else u, ts, u
        return rec["tangents"], rec["u_out"]

    def tangent(self, rec, u):
        return self._tangents(rec, u)[1]

    def second(self, rec, s, ds, u, input_grad):
        if rec["signals"] is None:
            raise RuntimeError("ChainRule.second: the data backward has not run on this record")
        tangents, _ = self._tangents(rec, u)
        first = next((i for i, r in enumerate(self.rules) if r.has_params), len(self.rules))
        lowest = 0 if input_grad else first
        for i in range(len(self.rules) - 1, lowest - 1, -1):
            need_in = i > first or input_grad
            ds = self.rules[i].second(rec["recs"][i], rec["signals"][i], ds, tangents[i], need_in)
        return ds if input_grad else None


def rules_of(module, where="<sub-network>"):
    """The rules of a module's layers in forward order (nested Sequentials flattened)."""
    return [_rule_for(m, f"position {name!r} of {where}") for name, m in _layers(module)]


def _layers(module, prefix=""):
    """The critic's layers in forward order (nested Sequentials flattened) with their names."""
    if isinstance(module, Sequential):
        for name, m in module._modules.items():
            yield from _layers(m, f"{prefix}.{name}" if prefix else name)
    elif not isinstance(module, Module):
        raise SecondOrderError(f"scratchgan.nn.second_order: expected a Module, got "
                               f"{type(module).__name__}")
    else:
        yield (prefix or "<root>"), module


# ----------------------------------------------------------------------------- the two passes
class Tape:
    """What :func:`input_gradient` keeps for :func:`penalty_backward`: per layer its rule, its
    record (input and forward cache) and its backward signal ``s_l``; plus ``output`` (D(x))
    and ``g`` (= ∇ₓ Σ dout ⊙ D(x)). It may be used for several ``v``."""

    def __init__(self, rules, records, signals, output, g):
        self.rules, self.records, self.signals = rules, records, signals
        self.output, self.g = output, g

    def __repr__(self):
        return (f"Tape({len(self.rules)} layers, input gradient of shape {tuple(self.g.shape)})")


def input_gradient(critic, x, dout=None):
    """``g = ∇ₓ Σ_n dout_n D(x_n)`` by a data-only backward; returns ``(g, tape)``.

    ``dout`` defaults to ones, which needs a per-sample critic (output (N,) or (N, 1)): then
    ``g_n = ∇ D(x_n)``. A general ``dout`` (the output's shape) lets a single layer be checked
    (``scratchgan.gradcheck.gradgradcheck``). No ``.grad`` is touched and the critic's pending
    caches are not used; parameter gradients come later, from :func:`penalty_backward`.
    ``tape.output`` is ``D(x)``.
    """
    named = list(_layers(critic))
    rules = [_rule_for(m, f"position {name!r}") for name, m in named]
    records, h = [], x
    for r in rules:
        h, rec = r.forward(h)
        records.append(rec)
    out = h
    xp = get_array_module(out)
    if dout is None:
        n = x.shape[0]
        if tuple(out.shape) not in ((n,), (n, 1)):
            raise ValueError(f"input_gradient: the critic's output has shape {tuple(out.shape)}; "
                             f"expected one score per sample, ({n},) or ({n}, 1), or pass dout")
        dout = xp.ones_like(out)
    elif tuple(dout.shape) != tuple(out.shape):
        raise ValueError(f"input_gradient: dout has shape {tuple(dout.shape)}, expected the "
                         f"output's {tuple(out.shape)}")
    signals = [None] * len(rules)
    s = dout
    for i in range(len(rules) - 1, -1, -1):
        signals[i] = s
        s = rules[i].backward(records[i], s)
    return s, Tape(rules, records, signals, out, s)


def penalty_backward(tape, v, input_grad=False):
    """Accumulate ``∂(Σ v ⊙ g)/∂θ`` into every (non-frozen) parameter's ``.grad``.

    ``v`` has the shape of ``g``. Pass 1 pushes ``u_0 = v`` up the critic (``u_l = J_l
    u_{l-1}``); pass 2 walks down with ``ṡ`` (zero at the top), each layer adding
    ``ṡ_lᵀ h_{l-1} + s_lᵀ u_{l-1}``-type pairings to its parameters' gradients and sending
    ``ṡ_{l-1} = J_lᵀ ṡ_l + (second-order term) u_{l-1}`` down. Returns ``∂Φ/∂x = H v`` (the
    critic's input Hessian applied to v) with ``input_grad=True``, else None (then pass 2 stops
    at the first layer with parameters).
    """
    if tuple(v.shape) != tuple(tape.g.shape):
        raise ValueError(f"penalty_backward: v has shape {tuple(v.shape)}, expected the input "
                         f"gradient's {tuple(tape.g.shape)}")
    rules, records, signals = tape.rules, tape.records, tape.signals
    L = len(rules)
    first = next((i for i, r in enumerate(rules) if r.has_params), L - 1)
    lowest = 0 if input_grad else first         # layers below it need no ṡ
    tangents, u = [None] * L, v
    for i in range(L):                          # the last layer's output tangent is not needed
        tangents[i] = u
        if i < L - 1:
            u = rules[i].tangent(records[i], u)
    ds = None
    for i in range(L - 1, lowest - 1, -1):
        need_in = i > first or input_grad
        ds = rules[i].second(records[i], signals[i], ds, tangents[i], need_in)
    if not input_grad:
        return None
    return get_array_module(v).zeros_like(v) if ds is None else ds


