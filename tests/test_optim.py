"""Optimizers: hand-computed updates, agreement with torch.optim, state round trips,
hyperparameter validation and clip_weights."""
import io
import json
import math

import numpy as np
import pytest

from scratchgan.gradcheck import assert_close
from scratchgan.nn.module import Module, Parameter
from scratchgan import optim
from scratchgan.optim import SGD, Adam, RMSprop, Adagrad, clip_weights

GRADS = [1.0, 2.0, -1.0]   # a fixed gradient sequence for a single scalar weight w0 = 1


def _run_scalar(opt_cls, grads=GRADS, w0=1.0, **kw):
    p = Parameter(np.array([w0]))
    opt = opt_cls([p], **kw)
    out = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        out.append(float(p.data[0]))
    return out


# -- hand-computed updates ---------------------------------------------------------
def test_sgd_plain_by_hand():
    # w = 1 - 0.1*1 - 0.1*2 + 0.1*1
    assert np.allclose(_run_scalar(SGD, lr=0.1), [0.9, 0.7, 0.8], rtol=0, atol=1e-15)


def test_sgd_momentum_by_hand():
    # v1 = 1, w1 = 0.9 ; v2 = 0.9 + 2 = 2.9, w2 = 0.61 ; v3 = 2.61 - 1 = 1.61, w3 = 0.449
    assert np.allclose(_run_scalar(SGD, lr=0.1, momentum=0.9), [0.9, 0.61, 0.449], rtol=0, atol=1e-15)


def test_sgd_nesterov_by_hand():
    # step = g + mu v: 1 + 0.9 = 1.9 ; 2 + 0.9*2.9 = 4.61 ; -1 + 0.9*1.61 = 0.449
    assert np.allclose(_run_scalar(SGD, lr=0.1, momentum=0.9, nesterov=True),
                       [0.81, 0.349, 0.3041], rtol=0, atol=1e-15)


def test_sgd_weight_decay_by_hand():
    # g = dw + 0.1 w: 1.1 -> 0.89 ; 2.089 -> 0.6811 ; -0.93189 -> 0.774289
    assert np.allclose(_run_scalar(SGD, lr=0.1, weight_decay=0.1), [0.89, 0.6811, 0.774289],
                       rtol=0, atol=1e-15)


def test_adam_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    got = _run_scalar(Adam, lr=lr, betas=(b1, b2), eps=eps)
    # first step: m_hat = g, v_hat = g^2, so the step is lr * sign(g) (up to eps)
    assert math.isclose(got[0], 1.0 - lr / (1 + eps), rel_tol=0, abs_tol=1e-15)
    # textbook form, scalar by scalar
    w, m, v, want = 1.0, 0.0, 0.0, []
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr * (m / (1 - b1 ** t)) / (math.sqrt(v / (1 - b2 ** t)) + eps)
        want.append(w)
    assert np.allclose(got, want, rtol=1e-13, atol=0)


def test_rmsprop_by_hand():
    lr, a, eps = 0.01, 0.9, 1e-8
    for mom in (0.0, 0.5):
        got = _run_scalar(RMSprop, lr=lr, alpha=a, eps=eps, momentum=mom)
        w, s, b, want = 1.0, 0.0, 0.0, []
        for g in GRADS:
            s = a * s + (1 - a) * g * g
            u = g / (math.sqrt(s) + eps)
            b = mom * b + u
            w -= lr * (b if mom else u)
            want.append(w)
        assert np.allclose(got, want, rtol=1e-14, atol=0)
    # first step by hand: s = 0.1, step = 0.01 / sqrt(0.1)
    assert math.isclose(_run_scalar(RMSprop, [1.0], lr=lr, alpha=a, eps=1e-30)[0],
                        1.0 - 0.01 / math.sqrt(0.1), rel_tol=1e-14)


def test_adagrad_by_hand():
    # G: 1, 5, 6 ; steps 0.1*1/1, 0.1*2/sqrt5, -0.1/sqrt6
    want = np.cumsum([1.0, -0.1, -0.2 / math.sqrt(5), 0.1 / math.sqrt(6)])[1:]
    assert np.allclose(_run_scalar(Adagrad, lr=0.1, eps=1e-300), want, rtol=0, atol=1e-15)


# -- agreement with torch.optim ----------------------------------------------------
def _grad_fn(xp_sin, w, a, b):
    """A fixed, non-quadratic gradient field: d/dw [0.5 a (w - b)^2 - 0.3 cos w]."""
    return a * (w - b) + 0.3 * xp_sin(w)


TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=2e-2, betas=(0.5, 0.999), eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9)),
    ("RMSprop", dict(lr=5e-3, alpha=0.99, eps=1e-6, momentum=0.7)),
    ("Adagrad", dict(lr=0.1)),
]


@pytest.mark.parametrize("cls,kw", TORCH_CASES, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={x}" for k, x in v.items()))
def test_matches_torch_over_steps_with_schedule(cls, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    shapes = [(3, 2), (4,)]
    init = [rng.standard_normal(s) for s in shapes]
    a = [rng.uniform(0.5, 2.0, size=s) for s in shapes]
    b = [rng.standard_normal(s) for s in shapes]
    ours = [Parameter(w.copy()) for w in init]
    theirs = [torch.tensor(w.copy(), requires_grad=False) for w in init]
    opt = getattr(optim, cls)(ours, **kw)
    topt = getattr(torch.optim, cls)(theirs, **kw)
    for step in range(6):
        if step == 3:  # a schedule: change lr (and momentum) between steps in both
            opt.lr = kw["lr"] * 0.5
            for grp in topt.param_groups:
                grp["lr"] = kw["lr"] * 0.5
            if kw.get("momentum"):
                opt.momentum = 0.3
                for grp in topt.param_groups:
                    grp["momentum"] = 0.3
        for p, t, ai, bi in zip(ours, theirs, a, b):
            p.grad[...] = _grad_fn(np.sin, p.data, ai, bi)
            t.grad = _grad_fn(torch.sin, t, torch.tensor(ai), torch.tensor(bi))
        opt.step()
        topt.step()
        for i, (p, t) in enumerate(zip(ours, theirs)):
            assert_close(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14,
                         name=f"{cls} param {i} after step {step + 1}")


# -- state: device, dtype, round trips ---------------------------------------------------
def _problem(dtype=np.float64, seed=3):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in [(2, 3), (3,), (1, 1, 2, 2)]]


def _fill_grads(params, k):
    for j, p in enumerate(params):
        p.grad[...] = np.cos(p.data * (k + 1) + j) + 0.1 * p.data


def _npz_roundtrip(sd):
    """Save a state dict to .npz (lists of arrays flattened to key/i) and read it back."""
    flat = {}
    for k, v in sd.items():
        if isinstance(v, list) and v and isinstance(v[0], np.ndarray):
            for i, a in enumerate(v):
                flat[f"{k}/{i}"] = a
        else:
            flat[k] = np.asarray(v)
    buf = io.BytesIO()
    np.savez(buf, **flat)
    buf.seek(0)
    data = np.load(buf)
    out = {}
    for key in data.files:
        if "/" in key:
            k, i = key.split("/")
            out.setdefault(k, {})[int(i)] = data[key]
        else:
            out[key] = data[key]
    return {k: ([v[i] for i in sorted(v)] if isinstance(v, dict) else v) for k, v in out.items()}


OPT_FACTORIES = [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: Adam(ps, lr=1e-2, betas=(0.5, 0.999)),
    lambda ps: RMSprop(ps, lr=1e-2, momentum=0.5),
    lambda ps: Adagrad(ps, lr=0.1),
]


@pytest.mark.parametrize("make", OPT_FACTORIES, ids=["sgd", "adam", "rmsprop", "adagrad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("via", ["dict", "npz"])
@pytest.mark.parametrize("split", [0, 3])
def test_state_dict_restore_continues_bit_identically(make, dtype, via, split):
    ref = _problem(dtype)
    opt = make(ref)
    for k in range(split):
        _fill_grads(ref, k)
        opt.step()
    sd = opt.state_dict()
    # plain Python scalars / lists, host NumPy arrays; the scalars are JSON-able
    for k, v in sd.items():
        if isinstance(v, list) and v and isinstance(v[0], np.ndarray):
            assert all(isinstance(a, np.ndarray) and a.dtype == dtype for a in v)
        else:
            json.dumps(v)
    if via == "npz":
        sd = _npz_roundtrip(sd)
    copy = [Parameter(p.data.copy()) for p in ref]
    opt2 = make(copy)
    opt2.lr = opt2.lr * 3  # load_state_dict must restore the hyperparameters too
    opt2.load_state_dict(sd)
    assert opt2.lr == opt.lr
    for k in range(split, split + 4):
        _fill_grads(ref, k)
        _fill_grads(copy, k)
        opt.step()
        opt2.step()
    for p, q in zip(ref, copy):
        assert p.data.dtype == dtype
        assert np.array_equal(p.data, q.data)


def test_state_dict_is_a_snapshot():
    ps = _problem()
    opt = Adam(ps)
    _fill_grads(ps, 0)
    opt.step()
    sd = opt.state_dict()
    m0 = sd["m"][0].copy()
    opt.step()
    assert np.array_equal(sd["m"][0], m0) and sd["t"] == [1, 1, 1]


def test_load_state_dict_validates():
    ps = _problem()
    sd = Adam(ps).state_dict()
    with pytest.raises(ValueError, match="for 'Adam', not 'SGD'"):
        SGD(ps, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="holds 3 entries but this optimizer has 2"):
        Adam(ps[:2]).load_state_dict(sd)
    other = [Parameter(np.zeros(p.shape[::-1] if len(p.shape) > 1 else p.shape)) for p in ps]
    with pytest.raises(ValueError, match=r"m\[0\] has shape \(2, 3\), but parameter 0 has shape \(3, 2\)"):
        Adam(other).load_state_dict(sd)
    bad = dict(sd)
    del bad["v"]
    with pytest.raises(KeyError, match="'v'"):
        Adam(ps).load_state_dict(bad)
    bad = dict(sd, lr=-1.0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        Adam(ps).load_state_dict(bad)


# -- what a step touches --------------------------------------------------------------
def test_zero_gradient_behaviour():
    def fresh():
        return [Parameter(np.array([1.0, -2.0]))]

    # a zero gradient from a zero state leaves every rule's weights exactly unchanged
    for make in OPT_FACTORIES[1:] + [lambda ps: SGD(ps, lr=0.1, momentum=0.9)]:
        ps = fresh()
        make(ps).step()
        assert np.array_equal(ps[0].data, [1.0, -2.0])
    # but with nonzero moments a zero gradient still moves the weights (momentum, Adam)
    for make in [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.1)]:
        ps = fresh()
        opt = make(ps)
        ps[0].grad[...] = 1.0
        opt.step()
        after_one = ps[0].data.copy()
        opt.zero_grad()
        assert not ps[0].grad.any()
        opt.step()
        assert np.all(ps[0].data < after_one)
    # plain SGD and Adagrad do not move on a zero gradient, whatever came before
    for make in [lambda ps: SGD(ps, lr=0.1), lambda ps: Adagrad(ps, lr=0.1)]:
        ps = fresh()
        opt = make(ps)
        ps[0].grad[...] = 1.0
        opt.step()
        after_one = ps[0].data.copy()
        opt.zero_grad()
        opt.step()
        assert np.array_equal(ps[0].data, after_one)
    # weight decay shrinks weights even with a zero gradient
    ps = fresh()
    SGD(ps, lr=0.1, weight_decay=0.5).step()
    assert np.allclose(ps[0].data, [0.95, -1.9], rtol=0, atol=1e-15)


def test_step_only_touches_its_own_params_and_keeps_identity():
    a, b = _problem(), _problem(seed=4)
    b_before = [p.data.copy() for p in b]
    ids = [id(p.data) for p in a]
    opt = Adam(a, lr=0.1)
    for p in a + b:
        p.grad[...] = 1.0
    opt.step()
    assert [id(p.data) for p in a] == ids   # updated in place
    assert all(np.array_equal(p.data, q) for p, q in zip(b, b_before))
    assert all(np.all(p.grad == 1.0) for p in a)  # step leaves grads alone


def test_pure_update_functions_cs231n_style():
    w = np.array([1.0, 2.0])
    dw = np.array([0.5, -0.5])
    dw_before = dw.copy()
    w2, state = optim.sgd_update(w, dw, {}, dict(lr=0.1, momentum=0.9))
    assert w2 is w and np.allclose(w, [0.95, 2.05]) and np.allclose(state["velocity"], dw)
    assert np.array_equal(dw, dw_before)
    w2, state = optim.adam_update(w, dw, {}, dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8))
    assert state["t"] == 1 and set(state) == {"m", "v", "t"}
    w, state = optim.adagrad_update(np.zeros(2), dw, {}, dict(lr=1.0, eps=1e-10))
    assert np.allclose(w, [-1.0, 1.0]) and np.allclose(state["sum"], [0.25, 0.25])
    w, state = optim.rmsprop_update(np.zeros(2), dw, {}, dict(lr=1.0, alpha=0.75, eps=0.0))
    assert np.allclose(w, [-2.0, 2.0])  # s = 0.25 * 0.25, step = 0.5 / 0.25


def test_float32_state_stays_float32():
    ps = _problem(np.float32)
    opt = Adam(ps)
    _fill_grads(ps, 0)
    opt.step()
    assert all(p.data.dtype == np.float32 for p in ps)
    assert all(st["m"].dtype == np.float32 and st["v"].dtype == np.float32 for st in opt.state)


def test_accepts_a_module():
    class Two(Module):
        def __init__(self):
            super().__init__()
            self.weight = Parameter(np.ones((2, 2)))
            self.bias = Parameter(np.zeros(2))

    m = Two()
    opt = SGD(m, lr=0.5)
    m.weight.grad[...] = 1.0
    opt.step()
    assert np.allclose(m.weight.data, 0.5) and len(opt.params) == 2


# -- hyperparameter validation -----------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda ps: SGD(ps, lr=0.0), "SGD: lr must be > 0, got 0.0"),
    (lambda ps: SGD(ps, lr=-1), "lr must be > 0"),
    (lambda ps: SGD(ps, lr=0.1, momentum=1.0), r"momentum must be in \[0, 1\)"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.1), r"momentum must be in \[0, 1\)"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-1), "weight_decay must be >= 0"),
    (lambda ps: SGD(ps, lr=float("nan")), "finite"),
    (lambda ps: Adam(ps, betas=(0.9, 1.0)), r"beta2 must be in \[0, 1\)"),
    (lambda ps: Adam(ps, betas=(-0.1, 0.9)), r"beta1 must be in \[0, 1\)"),
    (lambda ps: Adam(ps, betas=0.9), "betas must be a pair"),
    (lambda ps: Adam(ps, eps=0.0), "eps must be > 0"),
    (lambda ps: RMSprop(ps, alpha=1.0), r"alpha must be in \[0, 1\)"),
    (lambda ps: RMSprop(ps, momentum=1.5), r"momentum must be in \[0, 1\)"),
    (lambda ps: Adagrad(ps, eps=-1.0), "eps must be > 0"),
    (lambda ps: SGD([], lr=0.1), "empty parameter list"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(_problem())


def test_bad_params_and_setters():
    ps = _problem()
    with pytest.raises(TypeError, match="params\\[0\\] is a ndarray"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([ps[0], ps[0]], lr=0.1)
    with pytest.raises(TypeError, match="real number"):
        SGD(ps, lr="0.1")
    opt = SGD(ps, lr=0.1, momentum=0.9)
    opt.lr = 0.01
    opt.momentum = 0.5
    assert (opt.lr, opt.momentum) == (0.01, 0.5)
    with pytest.raises(ValueError, match="lr must be > 0"):
        opt.lr = 0
    with pytest.raises(ValueError, match="momentum"):
        opt.momentum = 1.0
    assert (opt.lr, opt.momentum) == (0.01, 0.5)  # a rejected assignment changes nothing


# -- clip_weights ---------------------------------------------------------------------
def test_clip_weights():
    ps = [Parameter(np.array([-0.5, -0.01, 0.0, 0.005, 0.02])), Parameter(np.full((2, 2), 3.0))]
    arr = np.array([0.3, -0.3])
    ids = [id(p.data) for p in ps]
    clip_weights(ps + [arr], 0.01)
    assert np.array_equal(ps[0].data, [-0.01, -0.01, 0.0, 0.005, 0.01])
    assert np.all(ps[1].data == 0.01) and np.array_equal(arr, [0.01, -0.01])
    assert [id(p.data) for p in ps] == ids
    with pytest.raises(ValueError, match="c must be > 0"):
        clip_weights(ps, 0.0)
    with pytest.raises(TypeError, match="item 0"):
        clip_weights([1.0], 0.1)


@pytest.mark.gpu
def test_gpu_state_on_device_and_matches_cpu():
    import cupy as cp
    for make in OPT_FACTORIES:
        cpu = _problem(np.float32)
        gpu = [Parameter(cp.asarray(p.data)) for p in cpu]
        o1, o2 = make(cpu), make(gpu)
        for k in range(3):
            _fill_grads(cpu, k)
            for p, q in zip(gpu, cpu):
                p.grad[...] = cp.asarray(q.grad)
            o1.step()
            o2.step()
        for st in o2.state:
            assert all(isinstance(v, cp.ndarray) for v in st.values() if not isinstance(v, int))
        for p, q in zip(gpu, cpu):
            assert_close(cp.asnumpy(p.data), q.data, rtol=1e-5, atol=1e-6)
        sd = o2.state_dict()
        assert all(isinstance(a, np.ndarray) for k, v in sd.items() if isinstance(v, list)
                   for a in v if not isinstance(a, (int, float)))
        o3 = make([Parameter(p.data.copy()) for p in gpu]).load_state_dict(sd)
        assert all(isinstance(v, cp.ndarray) for st in o3.state for v in st.values()
                   if not isinstance(v, int))
    clip = [Parameter(cp.asarray([-1.0, 0.5, 2.0]))]
    clip_weights(clip, 0.6)
    assert cp.asnumpy(clip[0].data).tolist() == [-0.6, 0.5, 0.6]
