"""The optimizers: SGD (momentum, Nesterov), Adam, RMSprop, Adagrad, and WGAN's weight clipping.

An optimizer holds a list of :class:`~scratchgan.nn.Parameter` and applies its update rule
(:mod:`scratchgan.optim.rules`) to each ``(p.data, p.grad)`` on ``step()``.

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

Fused updates over flat parameter groups
----------------------------------------
When an optimizer's parameters include **all** the parameters of a flattened
module (:func:`scratchgan.nn.flat.flatten_parameters`, still intact), ``step()``
updates that whole group at once: on the GPU with **one** launch of a kernel of
``kernels/optim.cu`` per group, on the CPU with whole-array in-place NumPy ops
over the flat arrays (``*_update_flat``: the same operations in the same order
as the per-parameter rules, so the results are bit-identical to them). Other
parameters take the per-parameter rules. The state of a fused group lives in
flat buffers of the group's size (allocated when the group is found, at
construction or at the first ``step``/``sync_hyper`` after a flatten), and
``self.state[i][slot]`` are views into them, so both paths share one storage and
``state_dict`` keeps its per-parameter format. If a group stops being intact
(``Module.to``/``astype`` after flattening) its parameters fall back to the
per-parameter rules with the same state.

CUDA graphs. A captured launch replays its scalar arguments frozen, so the GPU
kernels read every hyperparameter from a small float64 device array of the
optimizer, written by :meth:`Optimizer.sync_hyper` only when a value changed
since the last upload (``step()`` calls it, except during a capture), and
Adam's step count ``t`` of a fused group is a device int64 the kernel advances
itself; the bias corrections ``1 - b^t`` are computed on the device in float64.
The steady-state fused GPU ``step()`` does no host synchronisation, no
host-to-device copy and no allocation. A graph runtime wraps its capture in
``with capture_guard():`` (:mod:`scratchgan.cuda.capture`); inside it ``step()``
refuses (``RuntimeError``) a hyperparameter changed since the last ``sync_hyper()``, a
re-planning of the groups, or GPU parameters outside intact flat groups (whose
per-parameter update would bake in host scalars and a host ``t``).
"""
from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np

from ..backend import cupy, device_of, get_array_module, to_numpy
from ..cuda.capture import capturing
from ..cuda.optim import HYPER_LEN, KERNEL_SLOTS, fused_kernel
from ..nn import flat as _flat
from ..nn.module import Module
from .rules import (adagrad_update, adagrad_update_flat, adam_update, adam_update_flat,
                    rmsprop_update, rmsprop_update_flat, sgd_update, sgd_update_flat)

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "OPTIMIZERS", "clip_weights"]


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





def clip_weights(params, c):
    """Clamp every parameter to ``[-c, c]`` in place (WGAN's Lipschitz constraint).

    ``params``: an iterable of Parameters (or arrays), e.g. ``critic.parameters()``; or
    a Module, or a :class:`~scratchgan.nn.flat.FlatParameters`. For a module with an
    intact flat buffer (or an intact FlatParameters) this is one clip over the flat
    data buffer (its zero padding is unaffected) plus one per parameter added after
    flattening.
    """
    c = _positive("clip_weights", "c", c)
    if isinstance(params, _flat.FlatParameters):
        if params.is_intact():
            xp = get_array_module(params.data)
            xp.clip(params.data, -c, c, out=params.data)
            return
        params = params.params
    elif isinstance(params, Module):
        fl = params.__dict__.get("_flat")
        plist = params.parameters()
        if fl is not None and fl.is_intact():
            xp = get_array_module(fl.data)
            xp.clip(fl.data, -c, c, out=fl.data)
            plist = [p for p in plist if not fl.owns(p)]
        params = plist
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
class _FusedGroup:
    """One flat parameter group updated at once: its flat state and (GPU) launch."""

    def __init__(self, flat, opt_index):
        self.flat = flat
        self.opt_index = opt_index      # optimizer parameter index of flat.params[j]
        self.slots = {}                 # slot name -> flat state array (group size)
        self.counter = None             # int64 [t, blocks_done] (Adam), host or device
        self.scratch = []               # CPU: flat scratch arrays
        self.launch = None              # GPU: (kernel, grid, block, args)
        self.gpu = device_of(flat.data) == "cuda"


class _Plan:
    """Which parameters are updated per fused group and which one by one."""

    def __init__(self, generation, fused, rest):
        self.generation = generation
        self.fused = fused
        self.rest = rest


class Optimizer:
    """Base class: a list of Parameters, one state dict per parameter and a rule.

    Subclasses set ``_update`` (a pure rule), ``_flat_update`` (its flat form),
    ``_rule`` (the kernel name in ``kernels/optim.cu``), ``_slots`` (the state
    arrays' names), ``_hyper_names``, ``_hyper_layout`` (the device hyper vector)
    and ``hyper()``.
    """

    _slots: tuple = ()
    _counters: tuple = ()      # integer per-parameter state (Adam's t)
    _hyper_names: tuple = ()
    _hyper_layout: tuple = ()  # names of the entries of the device hyper vector
    _rule: str = ""
    _n_scratch: int = 2

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
        self._plan = None
        self._synced = None      # hyper vector of the last upload (None: never)
        self._hyper_dev = {}     # CUDA device id -> float64 device array of HYPER_LEN
        self._current_plan()     # find flat groups now: their state is allocated here

    # hyperparameters ---------------------------------------------------------------------
    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _positive(type(self).__name__, "lr", value)

    def hyper(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _hyper_vector(self) -> tuple:
        """The values of ``_hyper_layout`` as Python floats (what the kernels read).

        The default flattens ``hyper()`` (tuples expanded, booleans as 0/1); the four
        optimizers here spell their layout out."""
        out = []
        for v in self.hyper().values():
            for x in (v if isinstance(v, (tuple, list)) else (v,)):
                out.append(float(x))
        return tuple(out)

    def sync_hyper(self) -> bool:
        """Upload the hyperparameters to the device arrays the fused kernels read, if changed.

        Compares the current values (``lr``, momentum, betas, ...) with those of the last
        upload on the host; only when one differs does it copy the float64 vector to each
        device holding a fused group (on the current stream: call it on the stream the
        steps run on). Also (re)builds the flat groups when they changed, allocating their
        state. ``step()`` calls it itself except during a capture, so call it before
        capturing a step in a CUDA graph. Returns True when it uploaded (or recorded, on
        the CPU) new values. Raises ``RuntimeError`` inside :func:`capture_guard`.
        """
        if capturing():
            raise RuntimeError(f"{type(self).__name__}.sync_hyper() called during CUDA graph "
                               "capture: a host-to-device copy cannot be captured; call it "
                               "before capture")
        self._current_plan()
        return self._upload_if_changed()

    def _upload_if_changed(self) -> bool:
        vals = self._hyper_vector()
        if vals == self._synced:
            return False
        if self._hyper_dev:
            cp = cupy()
            host = np.zeros(HYPER_LEN, dtype=np.float64)
            host[:len(vals)] = vals
            for dev_id, arr in self._hyper_dev.items():
                with cp.cuda.Device(dev_id):   # stream-ordered after earlier launches
                    arr.set(host, stream=cp.cuda.get_current_stream())
        self._synced = vals
        return True

    def _check_hyper_clean(self):
        """During capture: the device hyper vector must hold the current values."""
        vals = self._hyper_vector()
        if vals == self._synced:
            return
        name = type(self).__name__
        if self._synced is None:
            which = self._hyper_layout[0] if self._hyper_layout else "#0"
            how = "never uploaded"
        else:
            k = next((k for k, (a, b) in enumerate(zip(vals, self._synced)) if a != b), 0)
            which = self._hyper_layout[k] if k < len(self._hyper_layout) else f"#{k}"
            how = (f"uploaded {self._synced[k]!r}, now {vals[k]!r}"
                   if k < min(len(vals), len(self._synced)) else "layout changed")
        raise RuntimeError(f"{name}: hyperparameter {which!r} changed during CUDA graph capture "
                           f"({how}); call sync_hyper() before capture")

    # flat groups ---------------------------------------------------------------------------
    def _plan_valid(self, plan) -> bool:
        if plan is None or plan.generation != _flat.generation():
            return False
        return all(g.flat.is_intact() for g in plan.fused)

    def _current_plan(self):
        """The plan, rebuilt when a flatten happened or a group stopped being intact."""
        plan = self._plan
        if self._plan_valid(plan):
            return plan
        self._plan = self._build_plan(plan, allow_changes=not capturing())
        return self._plan

    def _fusable_dtype(self, flat) -> bool:
        """A group can be fused: a rule with a flat form and kernel, a float dtype (GPU:
        float32 or float64)."""
        if self._rule not in KERNEL_SLOTS or getattr(self, "_flat_update", None) is None:
            return False
        if flat.dtype.kind != "f":
            return False
        return not (device_of(flat.data) == "cuda"
                    and flat.dtype not in (np.dtype(np.float32), np.dtype(np.float64)))

    def _build_plan(self, old, allow_changes=True):
        """Group this optimizer's parameters by the intact flat buffers they wholly cover.

        A group of the old plan whose flat buffer is unchanged keeps its state buffers
        (so CUDA graphs captured over them stay valid); groups that are no longer fused
        first hand their step counts back to the per-parameter state, which the new
        groups then read.
        """
        old_groups = {id(g.flat): g for g in old.fused} if old is not None else {}
        eligible = []
        for i, p in enumerate(self.params):
            fl = _flat.flat_group_of(p)
            if fl is not None:
                eligible.append((fl, i))
        by_flat = {}
        for fl, i in eligible:
            by_flat.setdefault(id(fl), (fl, {}))[1][fl.index(self.params[i])] = i
        chosen, reused = [], {}
        for fid, (fl, by_j) in by_flat.items():
            if len(by_j) != len(fl.params) or not fl.is_intact() or not self._fusable_dtype(fl):
                continue
            opt_index = [by_j[j] for j in range(len(fl.params))]
            g = old_groups.get(fid)
            if g is not None and g.flat is fl and g.opt_index == opt_index:
                reused[fid] = g
            chosen.append((fid, fl, opt_index))
        if old is not None and len(reused) == len(chosen) == len(old_groups):
            old.generation = _flat.generation()   # an unrelated flatten: nothing to redo
            return old
        if not allow_changes:
            raise RuntimeError(
                f"{type(self).__name__}: its flat parameter groups changed (a flatten, or a "
                "group no longer intact) during CUDA graph capture; flatten first and call "
                "sync_hyper() (or step()) before capture")
        for fid, g in old_groups.items():   # groups not kept hand their t back
            if fid not in reused:
                self._pull_counters(g)
        fused, taken = [], set()
        for fid, fl, opt_index in chosen:
            g = reused.get(fid)
            if g is None:
                if self._counters and len({int(self.state[i].get(k, 0)) for i in opt_index
                                           for k in self._counters}) > 1:
                    continue   # parameters at different step counts: update them one by one
                g = self._make_group(fl, opt_index)
                if g is None:
                    continue
            fused.append(g)
            taken.update(opt_index)
        self._synced = None              # upload to every (possibly new) device array
        rest = [i for i in range(len(self.params)) if i not in taken]
        return _Plan(_flat.generation(), fused, rest)

    def _make_group(self, fl, opt_index):
        """Allocate a group's flat state, copy any existing per-parameter state in, and
        rebind ``self.state[i][slot]`` to views of it. None when the existing state does
        not fit (another device or shape): those parameters stay per-parameter."""
        xp = get_array_module(fl.data)
        dev = device_of(fl.data)
        for i in opt_index:
            for k in self._slots:
                a = self.state[i].get(k)
                if a is not None and (device_of(a) != dev or a.shape != self.params[i].data.shape):
                    return None
        g = _FusedGroup(fl, opt_index)
        ctx = xp.cuda.Device(fl.data.device.id) if g.gpu else contextlib.nullcontext()
        with ctx:
            for k in self._slots:
                buf = xp.zeros(fl.size, dtype=fl.dtype)
                for j, i in enumerate(opt_index):
                    view = fl.view(buf, j)
                    old = self.state[i].get(k)
                    if old is not None:
                        view[...] = old
                    self.state[i][k] = view
                g.slots[k] = buf
            t = int(self.state[opt_index[0]].get("t", 0)) if self._counters else 0
            g.counter = xp.asarray(np.array([t, 0], dtype=np.int64))
            if g.gpu:
                dev_id = int(fl.data.device.id)
                hd = self._hyper_dev.get(dev_id)
                if hd is None:
                    hd = xp.zeros(HYPER_LEN, dtype=np.float64)
                    self._hyper_dev[dev_id] = hd
                g.launch = fused_kernel(self._rule, fl.data, fl.grad,
                                        [g.slots[k] for k in self._slots], hd,
                                        g.counter if self._counters else None)
            else:
                g.scratch = [np.empty(fl.size, dtype=fl.dtype) for _ in range(self._n_scratch)]
        return g

    def _pull_counters(self, g):
        """Copy a fused group's step count into its parameters' state (a device read)."""
        if self._counters:
            t = int(to_numpy(g.counter)[0])
            for i in g.opt_index:
                for k in self._counters:
                    self.state[i][k] = t

    # stepping ------------------------------------------------------------------------------
    def zero_grad(self):
        """Zero the gradients: one fill per fused flat group, one per other parameter."""
        plan = self._plan if self._plan_valid(self._plan) else None
        if plan is None:
            for p in self.params:
                p.zero_grad()
            return
        for g in plan.fused:
            g.flat.zero_grad()
        for i in plan.rest:
            self.params[i].zero_grad()

    def step(self):
        """Apply one update to every parameter from its ``.grad``.

        Fused flat groups: one kernel launch each (GPU) or one flat NumPy update each
        (CPU); the other parameters: the per-parameter rule. Outside a capture this first
        calls :meth:`sync_hyper` (a host comparison; an upload only when a value changed).
        """
        plan = self._current_plan()
        if capturing():
            self._check_hyper_clean()
            for i in plan.rest:
                if device_of(self.params[i].data) == "cuda":
                    raise RuntimeError(
                        f"{type(self).__name__}: parameter {i} is not in an intact flat group "
                        "this optimizer wholly covers, so its update would be captured with "
                        "frozen host scalars; flatten_parameters() its module (after any "
                        "astype()/to()) before capturing")
        else:
            self._upload_if_changed()
        hyper = None
        for g in plan.fused:
            if g.gpu:
                kern, grid, block, args = g.launch
                kern(grid, block, args)
            else:
                if hyper is None:
                    hyper = self.hyper()
                self._flat_update(g.flat.data, g.flat.grad, g.slots, hyper, g.scratch, g.counter)
        if plan.rest:
            hyper = self.hyper() if hyper is None else hyper
            for i in plan.rest:
                self._step_param(i, hyper)

    def _step_param(self, i, hyper):
        """The per-parameter rule on parameter ``i`` (the reference path)."""
        p, st = self.params[i], self.state[i]
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
        """Plain Python scalars and lists of host NumPy arrays (one per parameter).

        Fused groups' step counts are read back from the device (a synchronisation:
        checkpoints only)."""
        if self._plan is not None:
            for g in self._plan.fused:
                self._pull_counters(g)
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
        """Restore hyperparameters and state; arrays go to each parameter's device and dtype.

        State arrays that already exist with the right device, dtype and shape (fused
        groups' views among them) are overwritten in place, so flat state buffers (and
        CUDA graphs captured over them) stay valid; fused groups' device step counts
        are written back."""
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
            st = self.state[i]
            for k in self._counters:
                st[k] = int(sd[k][i])
            for k in self._slots:
                cur = st.get(k)
                if cur is not None and device_of(cur) == device_of(p.data) \
                        and cur.dtype == p.data.dtype and cur.shape == p.data.shape:
                    cur[...] = xp.asarray(np.asarray(sd[k][i]), dtype=p.data.dtype)
                else:
                    st[k] = xp.array(np.asarray(sd[k][i]), dtype=p.data.dtype)
        plan = self._plan
        if plan is not None and self._counters:
            for g in list(plan.fused):
                ts = {int(self.state[i][k]) for i in g.opt_index for k in self._counters}
                if len(ts) == 1:
                    g.counter[...] = get_array_module(g.counter).asarray(
                        np.array([ts.pop(), 0], dtype=np.int64))
                else:  # different step counts in one group: update it per parameter
                    plan.fused.remove(g)
                    plan.rest = sorted(plan.rest + g.opt_index)
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

    _hyper_layout = ("lr", "momentum", "nesterov", "weight_decay")

    def _hyper_vector(self):
        return (self.lr, self.momentum, 1.0 if self.nesterov else 0.0, self.weight_decay)

    _update = staticmethod(sgd_update)
    _flat_update = staticmethod(sgd_update_flat)
    _rule = "sgd"
    _n_scratch = 2


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

    _hyper_layout = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def _hyper_vector(self):
        return (self.lr, self.betas[0], self.betas[1], self.eps, self.weight_decay)

    _update = staticmethod(adam_update)
    _flat_update = staticmethod(adam_update_flat)
    _rule = "adam"
    _n_scratch = 2


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

    _hyper_layout = ("lr", "alpha", "eps", "momentum")

    def _hyper_vector(self):
        return (self.lr, self.alpha, self.eps, self.momentum)

    _update = staticmethod(rmsprop_update)
    _flat_update = staticmethod(rmsprop_update_flat)
    _rule = "rmsprop"
    _n_scratch = 1


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

    _hyper_layout = ("lr", "eps")

    def _hyper_vector(self):
        return (self.lr, self.eps)

    _update = staticmethod(adagrad_update)
    _flat_update = staticmethod(adagrad_update_flat)
    _rule = "adagrad"
    _n_scratch = 1


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}
