"""The update rules, each written once.

A rule's flat form ``<rule>_update_flat(w, dw, state, hyper, scratch, counter)`` updates the
weights ``w`` (and the state arrays ``state[slot]``) **in place** from the gradient ``dw``
with whole-array operations into preallocated ``scratch`` arrays of ``w``'s shape; ``hyper``
is a dict of Python scalars; ``counter`` is a step count the rule advances (Adam's: an int64
array or list ``[t, ...]``, its ``counter[0]`` the step). ``dw`` is never modified. The
optimizers run it over a whole flat parameter group at once
(:func:`scratchgan.nn.flat.flatten_parameters`), and it is the reference the CUDA kernels of
``kernels/optim.cu`` are tested against.

The per-parameter form ``<rule>_update(w, dw, state, hyper) -> (w, state)`` (cs231n style) is
a view of the flat form on one parameter's arrays: the state slots are created (zeros) on
first use, the scratch arrays are made for the call, and Adam's step count is
``state["t"]``. So the two forms perform the same element-wise operations in the same order,
and on the CPU they agree bit for bit.

The rules follow the PyTorch formulations (so a run can be compared with ``torch.optim``);
the equations are in ``docs/derivations/optim.md``.
"""
from __future__ import annotations

import math

from ..backend import get_array_module

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "sgd_update_flat",
           "adam_update_flat", "rmsprop_update_flat", "adagrad_update_flat", "RULES"]


# -- the flat forms ----------------------------------------------------------------------------
def _decayed_gradient(xp, w, dw, wd, out):
    """``g' = dw + wd w`` written into ``out`` (``dw`` itself when ``wd`` is 0): the L2 weight
    decay every rule applies first."""
    if wd == 0:
        return dw
    xp.multiply(w, wd, out=out)
    out += dw
    return out


def sgd_update_flat(w, dw, state, hyper, scratch, counter=None):
    """Flat SGD: ``state["velocity"]``, two scratch arrays.

        g' = dw + wd w              (wd != 0; scratch[1])
        v  = mu v + g'              (mu != 0)
        s  = g' + mu v (Nesterov) | v | g'
        w -= lr s                   (lr s in scratch[0])
    """
    xp = get_array_module(w)
    lr = hyper["lr"]
    mom = hyper.get("momentum", 0.0)
    wd = hyper.get("weight_decay", 0.0)
    tmp, gbuf = scratch[0], scratch[1]
    g = _decayed_gradient(xp, w, dw, wd, gbuf)
    if mom != 0:
        v = state["velocity"]
        v *= mom
        v += g
        if hyper.get("nesterov", False):
            xp.multiply(v, mom, out=tmp)
            tmp += g
            step = tmp
        else:
            step = v
    else:
        step = g
    xp.multiply(step, lr, out=tmp)
    w -= tmp
    return w


def adam_update_flat(w, dw, state, hyper, scratch, counter):
    """Flat Adam: ``state["m"]``, ``state["v"]``, two scratch arrays and the step count
    ``counter[0]`` (an int64 array ``[t, 0]``, advanced here).

        g' = dw + wd w ;  t = t + 1
        m = b1 m + (1 - b1) g' ;  v = b2 v + (1 - b2) g'^2
        w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """
    xp = get_array_module(w)
    lr = hyper["lr"]
    b1, b2 = hyper.get("betas", (0.9, 0.999))
    eps = hyper.get("eps", 1e-8)
    wd = hyper.get("weight_decay", 0.0)
    tmp, gbuf = scratch[0], scratch[1]
    g = _decayed_gradient(xp, w, dw, wd, gbuf)
    m, v = state["m"], state["v"]
    t = int(counter[0]) + 1
    counter[0] = t
    xp.multiply(g, 1 - b1, out=tmp)
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
    return w


def rmsprop_update_flat(w, dw, state, hyper, scratch, counter=None):
    """Flat RMSprop: ``state["square_avg"]``, ``state["velocity"]``, one scratch array.

        s = alpha s + (1 - alpha) dw^2 ;  u = dw / (sqrt(s) + eps)
        b = mu b + u, u = b   (mu != 0) ;  w -= lr u
    """
    xp = get_array_module(w)
    lr = hyper["lr"]
    alpha = hyper.get("alpha", 0.99)
    eps = hyper.get("eps", 1e-8)
    mom = hyper.get("momentum", 0.0)
    tmp = scratch[0]
    s = state["square_avg"]
    s *= alpha
    xp.multiply(dw, dw, out=tmp)
    tmp *= 1 - alpha
    s += tmp
    xp.sqrt(s, out=tmp)
    tmp += eps
    xp.divide(dw, tmp, out=tmp)
    u = tmp
    if mom != 0:
        b = state["velocity"]
        b *= mom
        b += tmp
        u = b
    xp.multiply(u, lr, out=tmp)
    w -= tmp
    return w


def adagrad_update_flat(w, dw, state, hyper, scratch, counter=None):
    """Flat Adagrad: ``state["sum"]``, one scratch array.

        G += dw^2 ;  w -= lr * (dw / (sqrt(G) + eps))
    """
    xp = get_array_module(w)
    lr = hyper["lr"]
    eps = hyper.get("eps", 1e-10)
    tmp = scratch[0]
    acc = state["sum"]
    xp.multiply(dw, dw, out=tmp)
    acc += tmp
    xp.sqrt(acc, out=tmp)
    tmp += eps
    xp.divide(dw, tmp, out=tmp)
    tmp *= lr
    w -= tmp
    return w


# -- the per-parameter forms: views of the flat forms --------------------------------------------
class _LazySlots:
    """``state[slot]`` for a flat rule, creating a slot (zeros like ``w``) the first time the
    rule reads it: a rule reads only the slots its hyperparameters use (SGD without momentum
    keeps no velocity)."""

    def __init__(self, state, like):
        self.state, self.like = state, like

    def __getitem__(self, key):
        if self.state.get(key) is None:
            self.state[key] = get_array_module(self.like).zeros_like(self.like)
        return self.state[key]


def _per_parameter(flat_rule, n_scratch, counter_key=None):
    def update(w, dw, state, hyper):
        xp = get_array_module(w)
        scratch = [xp.empty_like(w) for _ in range(n_scratch)]
        counter = None if counter_key is None else [int(state.get(counter_key, 0))]
        flat_rule(w, dw, _LazySlots(state, w), hyper, scratch, counter)
        if counter_key is not None:
            state[counter_key] = counter[0]
        return w, state
    return update


def sgd_update(w, dw, state, hyper):
    """SGD with optional momentum, Nesterov momentum and L2 weight decay.

    ``hyper``: ``lr``, ``momentum`` (0), ``nesterov`` (False), ``weight_decay`` (0).
    ``state``: ``velocity`` (zeros at first).

        g = dw + weight_decay * w
        v = momentum * v + g                     (when momentum > 0)
        step = g + momentum * v  (Nesterov)  or  v  (heavy ball)  or  g  (no momentum)
        w -= lr * step
    """
    return _sgd_update(w, dw, state, hyper)


_sgd_update = _per_parameter(sgd_update_flat, 2)


def adam_update(w, dw, state, hyper):
    """Adam with bias correction (and optional L2 weight decay added to the gradient).

    ``hyper``: ``lr``, ``betas`` (b1, b2), ``eps``, ``weight_decay`` (0).
    ``state``: ``m``, ``v`` (zeros at first) and step count ``t`` (0 at first).

        g = dw + weight_decay * w ;  t += 1
        m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t) ;  v_hat = v / (1 - b2^t)
        w -= lr * m_hat / (sqrt(v_hat) + eps)
    """
    return _adam_update(w, dw, state, hyper)


_adam_update = _per_parameter(adam_update_flat, 2, 't')


def rmsprop_update(w, dw, state, hyper):
    """RMSprop (uncentred), with optional momentum on the scaled step.

    ``hyper``: ``lr``, ``alpha`` (0.99), ``eps`` (1e-8), ``momentum`` (0).
    ``state``: ``square_avg`` and ``velocity`` (zeros at first).

        s = alpha s + (1 - alpha) dw^2
        u = dw / (sqrt(s) + eps)
        w -= lr * u                       (momentum = 0)
        b = momentum b + u ; w -= lr * b  (momentum > 0)
    """
    return _rmsprop_update(w, dw, state, hyper)


_rmsprop_update = _per_parameter(rmsprop_update_flat, 1)


def adagrad_update(w, dw, state, hyper):
    """Adagrad: per-coordinate step sizes shrinking with the accumulated squared gradient.

    ``hyper``: ``lr``, ``eps`` (1e-10). ``state``: ``sum`` (zeros at first).

        G += dw^2 ;  w -= lr * dw / (sqrt(G) + eps)
    """
    return _adagrad_update(w, dw, state, hyper)


_adagrad_update = _per_parameter(adagrad_update_flat, 1)


#: rule name -> (per-parameter form, flat form, state slots, scratch arrays the flat form needs)
RULES = {
    "sgd": (sgd_update, sgd_update_flat, ("velocity",), 2),
    "adam": (adam_update, adam_update_flat, ("m", "v"), 2),
    "rmsprop": (rmsprop_update, rmsprop_update_flat, ("square_avg", "velocity"), 1),
    "adagrad": (adagrad_update, adagrad_update_flat, ("sum",), 1),
}
