"""Gradient checking by central differences in float64.

For a function ``y = f(x_1, ..., x_n)`` and a fixed random upstream gradient
``dy``, the scalar ``L = sum(y * dy)`` has ``dL/dx_i = backward(dy)_i``. Each
element is checked against

    (L(x + eps e_j) - L(x - eps e_j)) / (2 eps),

whose truncation error is O(eps^2 f''') and whose rounding error is about
1e-16 |L| / eps, so eps = 1e-6 in float64 leaves roughly 1e-10 relative
error: a correct backward passes with rtol = 1e-5 by a wide margin, and a wrong
one fails by orders of magnitude.

For large layers, ``n_projections=k`` checks k random directions v instead of
every element: the directional derivative ``<dL/dx, v>`` against
``(L(x + eps v) - L(x - eps v)) / (2 eps)``.

A check passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` for
every element. Failures raise :class:`GradcheckError` naming the input, the
max absolute and relative errors, and the worst index with both values.

Inputs must be float64: float32 central differences cannot resolve the
tolerance above. Avoid kinks (ReLU at exactly 0, |x| at 0, max ties): a kink
makes the two one-sided slopes differ, and no tolerance should be widened to
hide that.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, to_numpy

__all__ = ["TOLERANCES", "GradcheckError", "GradcheckResult", "compare", "assert_close",
           "gradcheck", "gradcheck_module", "gradgradcheck"]

# Per-dtype tolerances (atol, rtol). float64 is for gradient checks; float32 is
# for comparing a float32 fast path with a float64 reference.
TOLERANCES = {
    np.dtype(np.float64): (1e-7, 1e-5),
    np.dtype(np.float32): (1e-4, 1e-3),
}


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


@dataclass
class GradcheckResult:
    name: str
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple
    analytic: float
    numeric: float
    n_checked: int
    passed: bool

    def __str__(self):
        return (f"{self.name}: max |err| {self.max_abs_err:.3e}, max rel err {self.max_rel_err:.3e}, "
                f"worst at index {self.worst_index}: analytic {self.analytic:.10g} vs numeric "
                f"{self.numeric:.10g} ({self.n_checked} checked)")


def _require_float64(arr, label):
    if arr.dtype != np.float64:
        raise TypeError(f"gradcheck: {label} has dtype {arr.dtype}; gradient checks run in float64 "
                        "(cast inputs with .astype(np.float64) and modules with .astype(np.float64))")


def compare(name, analytic, numeric, atol, rtol, index_of=None):
    """Compare two arrays element-wise; return a :class:`GradcheckResult`."""
    a = to_numpy(analytic).astype(np.float64).ravel()
    n = to_numpy(numeric).astype(np.float64).ravel()
    if a.shape != n.shape:
        raise GradcheckError(f"{name}: analytic gradient has {a.size} elements, numeric has {n.size}")
    err = np.abs(a - n)
    excess = err - (atol + rtol * np.abs(n))
    if not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        excess = np.zeros_like(err)
        excess[bad] = np.inf
    k = int(np.argmax(excess)) if a.size else 0
    rel = err / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
    idx = index_of(k) if index_of is not None else (k,)
    return GradcheckResult(name=name, max_abs_err=float(err.max(initial=0.0)),
                           max_rel_err=float(rel.max(initial=0.0)), worst_index=idx,
                           analytic=float(a[k]) if a.size else 0.0,
                           numeric=float(n[k]) if n.size else 0.0, n_checked=a.size,
                           passed=bool(a.size == 0 or excess[k] <= 0))


def assert_close(actual, desired, *, rtol=None, atol=None, name="output"):
    """Assert two arrays agree (per-dtype tolerances of ``actual``); report the worst index."""
    dt = np.dtype(to_numpy(actual).dtype)
    d_atol, d_rtol = TOLERANCES.get(dt, TOLERANCES[np.dtype(np.float32)])
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    shape = np.shape(to_numpy(actual))
    if shape != np.shape(to_numpy(desired)):
        raise AssertionError(f"{name}: shape {shape} differs from expected {np.shape(to_numpy(desired))}")
    res = compare(name, actual, desired, atol, rtol,
                  index_of=lambda k: tuple(int(i) for i in np.unravel_index(k, shape)))
    if not res.passed:
        raise AssertionError(f"{name} mismatch (atol={atol}, rtol={rtol}): {res}")
    return res


def _numeric_elementwise(loss, x, eps):
    """Central differences of ``loss()`` w.r.t. every element of ``x`` (perturbed in place)."""
    xp = get_array_module(x)
    g = np.zeros(x.size, dtype=np.float64)
    flat = x.reshape(-1)  # a view: x is contiguous
    for j in range(x.size):
        old = flat[j].item()
        flat[j] = old + eps
        lp = loss()
        flat[j] = old - eps
        lm = loss()
        flat[j] = old
        g[j] = (lp - lm) / (2 * eps)
    return xp.asarray(g.reshape(x.shape)) if xp is not np else g.reshape(x.shape)


def _check_array(name, loss, x, grad, eps, atol, rtol, n_projections, rng):
    _require_float64(x, name)
    if not x.flags.c_contiguous:
        raise ValueError(f"gradcheck: {name} must be C-contiguous to be perturbed in place")
    if grad is None:
        raise GradcheckError(f"{name}: backward returned no gradient")
    if tuple(grad.shape) != tuple(x.shape):
        raise GradcheckError(f"{name}: gradient shape {tuple(grad.shape)} != input shape {tuple(x.shape)}")
    if n_projections is None:
        num = _numeric_elementwise(loss, x, eps)
        return compare(name, grad, num, atol, rtol,
                       index_of=lambda k: tuple(int(i) for i in np.unravel_index(k, x.shape)))
    xp = get_array_module(x)
    saved = x.copy()
    ana, num = [], []
    for _ in range(n_projections):
        v = xp.asarray(rng.standard_normal(x.shape))
        x[...] = saved + eps * v
        lp = loss()
        x[...] = saved - eps * v
        lm = loss()
        x[...] = saved
        num.append((lp - lm) / (2 * eps))
        ana.append(float(xp.sum(grad * v)))
    return compare(f"{name} (random projections)", np.array(ana), np.array(num), atol, rtol,
                   index_of=lambda k: (f"direction {k}",))


def _raise_if_failed(results):
    failed = [r for r in results if not r.passed]
    if failed:
        raise GradcheckError("gradient check failed:\n  " + "\n  ".join(str(r) for r in failed))
    return results


def gradcheck(forward, backward, inputs, *, wrt=None, names=None, eps=1e-6, atol=None, rtol=None,
              n_projections=None, seed=0):
    """Check a pure ``forward(*inputs) -> (y, cache)`` / ``backward(dy, cache) -> grads`` pair.

    ``backward`` returns one gradient per input (a tuple, or a single array when
    there is one input); ``wrt`` lists the input positions to check (default:
    those whose gradient is not None). Returns the list of results; raises
    :class:`GradcheckError` on failure.
    """
    d_atol, d_rtol = TOLERANCES[np.dtype(np.float64)]
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    inputs = list(inputs)
    names = names or [f"input[{i}]" for i in range(len(inputs))]
    rng = np.random.default_rng(seed)
    y, cache = forward(*inputs)
    xp = get_array_module(y)
    dy = xp.asarray(rng.standard_normal(np.shape(y)))
    grads = backward(dy, cache)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) < len(inputs):
        raise GradcheckError(f"backward returned {len(grads)} gradients for {len(inputs)} inputs")
    if wrt is None:
        wrt = [i for i, g in enumerate(grads[:len(inputs)]) if g is not None]

    def loss():
        out, _ = forward(*inputs)
        return float(xp.sum(out * dy))

    results = [_check_array(names[i], loss, inputs[i], grads[i], eps, atol, rtol, n_projections, rng)
               for i in wrt]
    return _raise_if_failed(results)


def gradcheck_module(module, *inputs, eps=1e-6, atol=None, rtol=None, n_projections=None, seed=0,
                     check_inputs=True, params=None):
    """Check a Module's backward w.r.t. its inputs and every parameter.

    The module must already be float64 (``module.astype(np.float64)``). It runs
    in its current mode (``train()`` or ``eval()``). ``params`` restricts the
    check to the named parameters.
    """
    from .nn.module import no_grad

    d_atol, d_rtol = TOLERANCES[np.dtype(np.float64)]
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    for name, p in module.named_parameters():
        _require_float64(p.data, f"parameter {name}")
    rng = np.random.default_rng(seed)
    module.clear_cache()
    module.zero_grad()
    y = module(*inputs)
    xp = get_array_module(y)
    dy = xp.asarray(rng.standard_normal(np.shape(y)))
    dx = module.backward(dy)
    dxs = dx if isinstance(dx, (tuple, list)) else (dx,)

    def loss():
        with no_grad():
            out = module(*inputs)
        return float(xp.sum(out * dy))

    results = []
    if check_inputs:
        for i, x in enumerate(inputs):
            if i < len(dxs) and dxs[i] is not None:
                results.append(_check_array(f"{module._label()} input[{i}]", loss, x, dxs[i], eps,
                                            atol, rtol, n_projections, rng))
    for name, p in module.named_parameters():
        if params is not None and name not in params:
            continue
        results.append(_check_array(f"{module._label()} parameter {name}", loss, p.data, p.grad, eps,
                                    atol, rtol, n_projections, rng))
    return _raise_if_failed(results)


def gradgradcheck(critic, x, *, v=None, dout=None, eps=1e-6, atol=None, rtol=None,
                  n_projections=None, seed=0, check_input=True, params=None):
    """Check the second-order backward (:mod:`scratchgan.nn.second_order`) of a float64 critic.

    With ``g(x; θ) = ∇ₓ Σ dout ⊙ D(x; θ)`` (``dout`` defaults to ones: a per-sample critic)
    and a fixed random ``v`` of g's shape, the scalar ``Φ(θ, x) = Σ v ⊙ g`` has

    * ``∂Φ/∂θ`` = what ``penalty_backward(tape, v)`` accumulates into every ``.grad``;
    * ``∂Φ/∂x`` = what ``penalty_backward(tape, v, input_grad=True)`` returns (checked with
      ``check_input``).

    Each is compared with central differences of Φ, where Φ is evaluated by the module's
    **own first-order** forward and backward (``critic(x)`` then ``critic.backward(dout)``
    inside ``frozen(critic)``), independently of the double-backward code; the tape's ``g``
    is first compared with that backward too. Reporting (worst index, max errors) and
    ``n_projections`` are those of :func:`gradcheck`. ``params`` restricts the parameter
    check to the given names. Returns the results; raises :class:`GradcheckError`.
    """
    from .nn.second_order import input_gradient, penalty_backward
    from .nn.module import frozen

    d_atol, d_rtol = TOLERANCES[np.dtype(np.float64)]
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    _require_float64(x, "input")
    for name, p in critic.named_parameters():
        _require_float64(p.data, f"parameter {name}")
    rng = np.random.default_rng(seed)
    xp = get_array_module(x)
    critic.clear_cache()
    critic.zero_grad()
    g, tape = input_gradient(critic, x, dout)
    if dout is None:
        dout = xp.ones_like(tape.output)
    if v is None:
        v = xp.asarray(rng.standard_normal(np.shape(g)))
    dx = penalty_backward(tape, v, input_grad=check_input)
    label = critic._label()

    def first_order():
        critic.clear_cache()
        critic(x)
        with frozen(critic):
            return critic.backward(dout)

    def phi():
        return float(xp.sum(v * first_order()))

    results = [compare(f"{label} input gradient g vs the module's backward", g, first_order(),
                       atol, rtol,
                       index_of=lambda k: tuple(int(i) for i in np.unravel_index(k, g.shape)))]
    if check_input:
        results.append(_check_array(f"{label} d(sum v*g)/d input", phi, x, dx, eps, atol, rtol,
                                    n_projections, rng))
    for name, p in critic.named_parameters():
        if params is not None and name not in params:
            continue
        results.append(_check_array(f"{label} d(sum v*g)/d parameter {name}", phi, p.data, p.grad,
                                    eps, atol, rtol, n_projections, rng))
    return _raise_if_failed(results)
