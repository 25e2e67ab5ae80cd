"""First-order optimizers: SGD (momentum, Nesterov), Adam, RMSprop, Adagrad.

Two layers, cs231n style:

* pure update rules ``sgd_update(w, dw, state, hyper) -> (w, state)`` (and
  ``adam_update``, ``rmsprop_update``, ``adagrad_update``). ``w`` is updated **in
  place** and returned; ``state`` is a dict of arrays on ``w``'s device (created
  on the first call when empty) updated in place and returned; ``hyper`` is a
  dict of Python scalars. ``dw`` is never modified.
* optimizer classes that hold a list of :class:`~scratchgan.nn.Parameter` and
  apply the rule to each ``(p.data, p.grad)`` on ``step()``.

The rules follow the PyTorch formulations (so a run can be compared with
``torch.optim``); the equations are in ``docs/derivations/optim.md``.

``lr`` (and ``momentum`` where the rule has one) are plain attributes that may
be changed between steps for schedules; assigning a bad value raises at once.

``state_dict()`` returns plain Python scalars and lists of host NumPy arrays (one
entry per parameter, in order), e.g. for Adam
``{"type": "Adam", "lr": ..., "betas": [b1, b2], "eps": ..., "weight_decay": ...,
"t": [int, ...], "m": [array, ...], "v": [array, ...]}``, so it can be written to
``.npz`` or JSON. ``load_state_dict`` restores it onto the parameters' device and
dtype, after checking the type, the number of parameters and every shape.
Before the first step the slots hold zeros, which is exactly the lazy initial
state, so saving and restoring at any point continues bit-identically.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import get_array_module, device_of, to_numpy


# -- hyperparameter checks --------------------------------------------------------------
def _plain(value):
    """0-d arrays (as read back from .npz) become Python scalars."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _number(owner, label, value):
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {label} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {label} must be finite, got {value!r}")
    return value


def _positive(owner, label, value):
    value = _number(owner, label, value)
    if not value > 0:
        raise ValueError(f"{owner}: {label} must be > 0, got {value!r}")
    return value


def _nonneg(owner, label, value):
    value = _number(owner, label, value)
    if value < 0:
        raise ValueError(f"{owner}: {label} must be >= 0, got {value!r}")
    return value


def _unit(owner, label, value):
    """A decay/momentum coefficient in [0, 1)."""
    value = _number(owner, label, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: {label} must be in [0, 1), got {value!r}")
    return value


def _zeros_like(w):
    return get_array_module(w).zeros_like(w)


def _slot(state, key, w):
    if state.get(key) is None:
        state[key] = _zeros_like(w)
    return state[key]


# -- pure update rules --------------------------------------------------------------------
def sgd_update(w, dw, state, hyper):
    """SGD with optional momentum, Nesterov momentum and L2 weight decay.

    ``hyper``: ``lr``, ``momentum`` (0), ``nesterov`` (False), ``weight_decay`` (0).
    ``state``: ``velocity`` (zeros at first).

        g = dw + weight_decay * w
        v = momentum * v + g                     (when momentum > 0)
        step = g + momentum * v  (Nesterov)  or  v  (heavy ball)  or  g  (no momentum)
        w -= lr * step
    """
    lr = hyper["lr"]
    mom = hyper.get("momentum", 0.0)
    wd = hyper.get("weight_decay", 0.0)
    g = dw + wd * w if wd != 0 else dw
    if mom != 0:
        v = _slot(state, "velocity", w)
        v *= mom
        v += g
        step = g + mom * v if hyper.get("nesterov", False) else v
    else:
        step = g
    w -= lr * step
    return w, state


def adam_update(w, dw, state, hyper):
    """Adam with bias correction (and optional L2 weight decay added to the gradient).

    ``hyper``: ``lr``, ``betas`` (b1, b2), ``eps``, ``weight_decay`` (0).
    ``state``: ``m``, ``v`` (zeros at first) and step count ``t`` (0 at first).

        g = dw + weight_decay * w ;  t += 1
        m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t) ;  v_hat = v / (1 - b2^t)
        w -= lr * m_hat / (sqrt(v_hat) + eps)
    """
    lr = hyper["lr"]
    b1, b2 = hyper.get("betas", (0.9, 0.999))
    eps = hyper.get("eps", 1e-8)
    wd = hyper.get("weight_decay", 0.0)
    xp = get_array_module(w)
    g = dw + wd * w if wd != 0 else dw
    m = _slot(state, "m", w)
    v = _slot(state, "v", w)
    t = int(state.get("t", 0)) + 1
    state["t"] = t
    # One scratch buffer and in-place updates: the same arithmetic as the
    # formulas above, with fewer passes over memory.
    tmp = xp.multiply(g, 1 - b1)
    m *= b1
    m += tmp
    xp.multiply(g, g, out=tmp)
    tmp *= 1 - b2
    v *= b2
    v += tmp
    bc1 = 1.0 - b1 ** t
    bc2 = 1.0 - b2 ** t
    xp.sqrt(v, out=tmp)
    tmp /= math.sqrt(bc2)
    tmp += eps
    xp.divide(m, tmp, out=tmp)
    tmp *= lr / bc1
    w -= tmp
    return w, state


def rmsprop_update(w, dw, state, hyper):
    """RMSprop (uncentred), with optional momentum on the scaled step.

    ``hyper``: ``lr``, ``alpha`` (0.99), ``eps`` (1e-8), ``momentum`` (0).
    ``state``: ``square_avg`` and ``velocity`` (zeros at first).

        s = alpha s + (1 - alpha) dw^2
        u = dw / (sqrt(s) + eps)
        w -= lr * u                       (momentum = 0)
        b = momentum b + u ; w -= lr * b  (momentum > 0)
    """
    lr = hyper["lr"]
    alpha = hyper.get("alpha", 0.99)
    eps = hyper.get("eps", 1e-8)
    mom = hyper.get("momentum", 0.0)
    xp = get_array_module(w)
    s = _slot(state, "square_avg", w)
    s *= alpha
    s += (1 - alpha) * (dw * dw)
    denom = xp.sqrt(s)
    denom += eps
    u = dw / denom
    if mom != 0:
        b = _slot(state, "velocity", w)
        b *= mom
        b += u
        u = b
    w -= lr * u
    return w, state


def adagrad_update(w, dw, state, hyper):
    """Adagrad: per-coordinate step sizes shrinking with the accumulated squared gradient.

    ``hyper``: ``lr``, ``eps`` (1e-10). ``state``: ``sum`` (zeros at first).

        G += dw^2 ;  w -= lr * dw / (sqrt(G) + eps)
    """
    lr = hyper["lr"]
    eps = hyper.get("eps", 1e-10)
    xp = get_array_module(w)
    acc = _slot(state, "sum", w)
    acc += dw * dw
    denom = xp.sqrt(acc)
    denom += eps
    w -= lr * (dw / denom)
    return w, state


def clip_weights(params, c):
    """Clamp every parameter to ``[-c, c]`` in place (WGAN's Lipschitz constraint).

    ``params``: an iterable of Parameters (or arrays), e.g. ``critic.parameters()``.
    """
    c = _positive("clip_weights", "c", c)
    for i, p in enumerate(params):
        a = p
        try:
            device_of(a)
        except TypeError:  # not an array: a Parameter (CuPy arrays also have a .data attribute)
            a = getattr(p, "data", None)
            try:
                device_of(a)
            except TypeError:
                raise TypeError(f"clip_weights: item {i} is a {type(p).__name__}, expected a "
                                "Parameter or an array") from None
        xp = get_array_module(a)
        xp.clip(a, -c, c, out=a)


# -- optimizer classes ---------------------------------------------------------------------
class Optimizer:
    """Base class: a list of Parameters, one state dict per parameter and a rule.

    Subclasses set ``_update`` (a pure rule), ``_slots`` (the state arrays'
    names), ``_hyper_names`` and ``hyper()``.
    """

    _slots: tuple = ()
    _counters: tuple = ()      # integer per-parameter state (Adam's t)
    _hyper_names: tuple = ()

    def __init__(self, params):
        name = type(self).__name__
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be an iterable of Parameters (e.g. "
                            f"module.parameters()), got {type(params).__name__}") from None
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        seen = set()
        for i, p in enumerate(params):
            if not (hasattr(p, "data") and hasattr(p, "grad")) or isinstance(p, np.ndarray):
                raise TypeError(f"{name}: params[{i}] is a {type(p).__name__}, expected a "
                                "Parameter (with .data and .grad)")
            if id(p) in seen:
                raise ValueError(f"{name}: params[{i}] appears more than once in the list")
            seen.add(id(p))
        self.params = params
        self.state = [dict() for _ in params]

    # hyperparameters ---------------------------------------------------------------------
    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _positive(type(self).__name__, "lr", value)

    def hyper(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    # stepping ------------------------------------------------------------------------------
    def zero_grad(self):
        for p in self.params:
            p.zero_grad()

    def step(self):
        """Apply one update to every parameter from its ``.grad``."""
        hyper = self.hyper()
        for i, (p, st) in enumerate(zip(self.params, self.state)):
            dev = device_of(p.data)
            if device_of(p.grad) != dev:
                raise ValueError(f"{type(self).__name__}: parameter {i} is on {dev!r} but its "
                                 f"grad is on {device_of(p.grad)!r}")
            for k in self._slots:
                a = st.get(k)
                if a is not None and (device_of(a) != dev or a.shape != p.data.shape):
                    raise ValueError(
                        f"{type(self).__name__}: state {k!r} of parameter {i} is on "
                        f"{device_of(a)!r} with shape {tuple(a.shape)} but the parameter is on "
                        f"{dev!r} with shape {tuple(p.data.shape)}; move the model before "
                        "creating the optimizer, or save state_dict() and load it into a new one")
            w, _ = self._update(p.data, p.grad, st, hyper)
            if w is not p.data:  # the rules update in place; keep that promise checked
                p.data[...] = w

    # state ----------------------------------------------------------------------------------
    def _hyper_state(self) -> dict:
        out = {}
        for k, v in self.hyper().items():
            out[k] = list(v) if isinstance(v, tuple) else v
        return out

    def state_dict(self) -> dict:
        """Plain Python scalars and lists of host NumPy arrays (one per parameter)."""
        sd = {"type": type(self).__name__}
        sd.update(self._hyper_state())
        for k in self._counters:
            sd[k] = [int(st.get(k, 0)) for st in self.state]
        for k in self._slots:
            sd[k] = [to_numpy(st[k]).copy() if st.get(k) is not None
                     else np.zeros(p.data.shape, dtype=to_numpy(p.data).dtype)
                     for p, st in zip(self.params, self.state)]
        return sd

    def load_state_dict(self, sd):
        """Restore hyperparameters and state; arrays go to each parameter's device and dtype."""
        name = type(self).__name__
        if not isinstance(sd, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got {type(sd).__name__}")
        if _plain(sd.get("type")) != name:
            raise ValueError(f"{name}.load_state_dict: the state dict is for {sd.get('type')!r}, "
                             f"not {name!r}")
        missing = [k for k in self._hyper_names + self._counters + self._slots if k not in sd]
        if missing:
            raise KeyError(f"{name}.load_state_dict: missing keys {missing}")
        n = len(self.params)
        for k in self._counters + self._slots:
            if len(sd[k]) != n:
                raise ValueError(f"{name}.load_state_dict: {k!r} holds {len(sd[k])} entries but "
                                 f"this optimizer has {n} parameters")
        for k in self._slots:
            for i, (a, p) in enumerate(zip(sd[k], self.params)):
                if tuple(np.shape(a)) != tuple(p.data.shape):
                    raise ValueError(f"{name}.load_state_dict: {k}[{i}] has shape "
                                     f"{tuple(np.shape(a))}, but parameter {i} has shape "
                                     f"{tuple(p.data.shape)}")
        # hyperparameters go through the validating setters
        self._set_hyper({k: sd[k] for k in self._hyper_names})
        for i, p in enumerate(self.params):
            xp = get_array_module(p.data)
            st = {}
            for k in self._counters:
                st[k] = int(sd[k][i])
            for k in self._slots:
                st[k] = xp.array(np.asarray(sd[k][i]), dtype=p.data.dtype)
            self.state[i] = st
        return self

    def _set_hyper(self, h):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        hp = ", ".join(f"{k}={v}" for k, v in self.hyper().items())
        return f"{type(self).__name__}({len(self.params)} params, {hp})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay."""

    _slots = ("velocity",)
    _hyper_names = ("lr", "momentum", "nesterov", "weight_decay")

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params)
        self._set_hyper(dict(lr=lr, momentum=momentum, nesterov=nesterov,
                             weight_decay=weight_decay))

    @property
    def momentum(self):
        return self._momentum

    @momentum.setter
    def momentum(self, value):
        value = _unit("SGD", "momentum", value)
        if getattr(self, "nesterov", False) and value == 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0, got 0")
        self._momentum = value

    def _set_hyper(self, h):
        h = dict(h, nesterov=_plain(h["nesterov"]))
        if not isinstance(h["nesterov"], (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {h['nesterov']!r}")
        self.nesterov = False
        self.lr = h["lr"]
        self.momentum = h["momentum"]
        if h["nesterov"] and self.momentum == 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0, got 0")
        self.nesterov = bool(h["nesterov"])
        self.weight_decay = _nonneg("SGD", "weight_decay", h["weight_decay"])

    def hyper(self):
        return dict(lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                    weight_decay=self.weight_decay)

    _update = staticmethod(sgd_update)


class Adam(Optimizer):
    """Adam with bias-corrected first and second moment estimates."""

    _slots = ("m", "v")
    _counters = ("t",)
    _hyper_names = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self._set_hyper(dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @property
    def betas(self):
        return self._betas

    @betas.setter
    def betas(self, value):
        try:
            b1, b2 = value
        except (TypeError, ValueError):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {value!r}") from None
        self._betas = (_unit("Adam", "beta1", b1), _unit("Adam", "beta2", b2))

    def _set_hyper(self, h):
        self.lr = h["lr"]
        self.betas = h["betas"]
        self.eps = _positive("Adam", "eps", h["eps"])
        self.weight_decay = _nonneg("Adam", "weight_decay", h["weight_decay"])

    def hyper(self):
        return dict(lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)

    _update = staticmethod(adam_update)


class RMSprop(Optimizer):
    """RMSprop: the gradient divided by a running RMS of recent gradients."""

    _slots = ("square_avg", "velocity")
    _hyper_names = ("lr", "alpha", "eps", "momentum")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0):
        super().__init__(params)
        self._set_hyper(dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum))

    @property
    def momentum(self):
        return self._momentum

    @momentum.setter
    def momentum(self, value):
        self._momentum = _unit("RMSprop", "momentum", value)

    def _set_hyper(self, h):
        self.lr = h["lr"]
        self.alpha = _unit("RMSprop", "alpha", h["alpha"])
        self.eps = _positive("RMSprop", "eps", h["eps"])
        self.momentum = h["momentum"]

    def hyper(self):
        return dict(lr=self.lr, alpha=self.alpha, eps=self.eps, momentum=self.momentum)

    _update = staticmethod(rmsprop_update)


class Adagrad(Optimizer):
    """Adagrad: step sizes scaled by the root of the summed squared gradients."""

    _slots = ("sum",)
    _hyper_names = ("lr", "eps")

    def __init__(self, params, lr=1e-2, eps=1e-10):
        super().__init__(params)
        self._set_hyper(dict(lr=lr, eps=eps))

    def _set_hyper(self, h):
        self.lr = h["lr"]
        self.eps = _positive("Adagrad", "eps", h["eps"])

    def hyper(self):
        return dict(lr=self.lr, eps=self.eps)

    _update = staticmethod(adagrad_update)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "clip_weights",
           "Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "OPTIMIZERS"]
