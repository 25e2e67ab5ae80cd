"""Fused optimizer updates over flat parameter groups.

Chain of references: the per-parameter rules (sgd_update, ...; checked by hand and
against torch.optim in test_optim.py) -> the flat NumPy updates (*_update_flat),
equal to them bit for bit on the CPU -> the CUDA kernels of kernels/optim.cu,
compared with the flat NumPy updates (float64 to 1e-12, float32 to 1e-6 relative)
-> a CUDA graph of step() replayed, equal to eager steps.
"""
import io

import numpy as np
import pytest

import scratchgan.optim as optim
from scratchgan.nn import BatchNorm1d, Linear, Parameter, ReLU, Sequential
from scratchgan.nn.flat import flatten_parameters
from scratchgan.optim import SGD, Adam, Adagrad, RMSprop, capture_guard, capturing, clip_weights


def mlp(seed=0, dtype=np.float64, widths=(3, 5, 70, 2)):
    g = np.random.default_rng(seed)
    layers = [Linear(widths[0], widths[1], rng=g), BatchNorm1d(widths[1])]
    for a, b in zip(widths[1:-1], widths[2:]):
        layers += [ReLU(), Linear(a, b, rng=g)]
    return Sequential(*layers).astype(dtype)


CASES = [
    ("sgd", lambda ps: SGD(ps, lr=0.1)),
    ("sgd-mom", lambda ps: SGD(ps, lr=0.05, momentum=0.9)),
    ("sgd-nesterov-wd", lambda ps: SGD(ps, lr=0.05, momentum=0.5, nesterov=True,
                                       weight_decay=0.01)),
    ("sgd-wd", lambda ps: SGD(ps, lr=0.05, weight_decay=0.1)),
    ("adam", lambda ps: Adam(ps, lr=1e-2)),
    ("adam-wd", lambda ps: Adam(ps, lr=2e-2, betas=(0.5, 0.999), eps=1e-6, weight_decay=0.1)),
    ("rmsprop", lambda ps: RMSprop(ps, lr=1e-2, alpha=0.9)),
    ("rmsprop-mom", lambda ps: RMSprop(ps, lr=5e-3, alpha=0.99, eps=1e-6, momentum=0.7)),
    ("adagrad", lambda ps: Adagrad(ps, lr=0.1)),
]
IDS = [c[0] for c in CASES]
MAKERS = [c[1] for c in CASES]


def _grads(params, k, dtype):
    rng = np.random.default_rng(100 + k)
    return [rng.standard_normal(p.shape).astype(dtype) for p in params]


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad[...] = g


def _schedule(opt, k):
    """Change lr (and momentum where there is one) between steps."""
    opt.lr = opt.lr * (0.5 if k % 2 else 1.5)
    if getattr(opt, "momentum", 0) and k == 3:
        opt.momentum = 0.3


def _assert_same(ps, qs, what=""):
    for j, (p, q) in enumerate(zip(ps, qs)):
        assert p.data.dtype == q.data.dtype
        assert np.array_equal(p.data, q.data), f"{what} param {j}: max diff " \
            f"{np.max(np.abs(p.data - q.data))}"


# -- CPU: flat NumPy updates == per-parameter reference, bit for bit ---------------------------
@pytest.mark.parametrize("make", MAKERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_cpu_step_is_bitwise_the_reference(make, dtype):
    ref, net = mlp(dtype=dtype), mlp(dtype=dtype)
    fl = flatten_parameters(net)
    o_ref, o_fus = make(ref.parameters()), make(net.parameters())
    assert len(o_fus._plan.fused) == 1 and o_fus._plan.rest == []
    assert o_ref._plan.fused == [] and len(o_ref._plan.rest) == len(ref.parameters())
    for k in range(6):
        _schedule(o_ref, k)
        _schedule(o_fus, k)
        g = _grads(ref.parameters(), k, dtype)
        _set_grads(ref.parameters(), g)
        _set_grads(net.parameters(), g)
        o_ref.step()
        o_fus.step()
        _assert_same(ref.parameters(), net.parameters(), f"step {k + 1}")
    # the fused state is the same state, and the padding stayed zero
    s_ref, s_fus = o_ref.state_dict(), o_fus.state_dict()
    assert list(s_ref) == list(s_fus)
    for key in s_ref:
        if isinstance(s_ref[key], list) and s_ref[key] and isinstance(s_ref[key][0], np.ndarray):
            for a, b in zip(s_ref[key], s_fus[key]):
                assert np.array_equal(a, b), key
        else:
            assert s_ref[key] == s_fus[key], key
    used = np.zeros(fl.size, bool)
    for o, n in zip(fl.offsets, fl.numels):
        used[o:o + n] = True
    assert np.all(fl.data[~used] == 0) and np.all(fl.grad[~used] == 0)
    for buf in o_fus._plan.fused[0].slots.values():
        assert np.all(buf[~used] == 0)


def test_fused_step_does_not_call_the_per_parameter_rule(monkeypatch):
    net = mlp()
    flatten_parameters(net)
    opt = Adam(net.parameters(), lr=1e-3)

    def boom(*a, **k):
        raise AssertionError("per-parameter rule called on a fused group")

    monkeypatch.setattr(Adam, "_update", staticmethod(boom))
    _set_grads(net.parameters(), _grads(net.parameters(), 0, np.float64))
    plan = opt._plan
    opt.step()
    opt.step()
    assert opt._plan is plan   # steady state: no re-planning


def test_state_views_share_the_flat_state():
    net = mlp()
    fl = flatten_parameters(net)
    opt = RMSprop(net.parameters(), lr=1e-2, momentum=0.5)
    g = opt._plan.fused[0]
    for j, (p, st) in enumerate(zip(net.parameters(), opt.state)):
        for k in ("square_avg", "velocity"):
            assert st[k].shape == p.shape and np.shares_memory(st[k], g.slots[k])
            o = fl.offsets[j]
            st[k].flat[0] = 7.0 + j
            assert g.slots[k][o] == 7.0 + j


def test_two_groups_and_mixed_lists():
    enc, dec = mlp(seed=1), mlp(seed=2, widths=(2, 4, 3))
    enc_r, dec_r = mlp(seed=1), mlp(seed=2, widths=(2, 4, 3))
    loose, loose_r = Parameter(np.ones((3, 2))), Parameter(np.ones((3, 2)))
    flatten_parameters(enc)
    flatten_parameters(dec)
    # encoder + decoder + a loose parameter: two fused groups and one per-parameter
    opt = Adam(enc.parameters() + [loose] + dec.parameters(), lr=1e-2, weight_decay=0.01)
    ref = Adam(enc_r.parameters() + [loose_r] + dec_r.parameters(), lr=1e-2, weight_decay=0.01)
    assert len(opt._plan.fused) == 2
    assert opt._plan.rest == [len(enc.parameters())]
    # a list that covers only part of a group: per-parameter for all of it
    part = SGD(enc.parameters()[:-1], lr=0.1)
    assert part._plan.fused == []
    ps = enc.parameters() + [loose] + dec.parameters()
    qs = enc_r.parameters() + [loose_r] + dec_r.parameters()
    for k in range(4):
        g = _grads(ps, k, np.float64)
        _set_grads(ps, g)
        _set_grads(qs, g)
        opt.step()
        ref.step()
        _assert_same(qs, ps, f"step {k + 1}")
    assert opt.state_dict()["t"] == [4] * len(ps)
    # zero_grad: one fill per group plus the loose parameter
    opt.zero_grad()
    assert all(not p.grad.any() for p in ps)


def test_fallback_when_a_group_breaks_and_refuse_after_reflatten():
    """A group losing intactness falls back to per-parameter updates with the same state
    (Adam's t included); flattening again fuses it again, state carried over."""
    ref, net = mlp(), mlp()
    flatten_parameters(net)
    o_ref = Adam(ref.parameters(), lr=1e-2, betas=(0.5, 0.99))
    o_fus = Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.99))

    def run(steps, k0):
        for k in range(k0, k0 + steps):
            g = _grads(ref.parameters(), k, np.float64)
            _set_grads(ref.parameters(), g)
            _set_grads(net.parameters(), g)
            o_ref.step()
            o_fus.step()
        _assert_same(ref.parameters(), net.parameters(), f"after step {k0 + steps}")

    run(3, 0)
    p = net.parameters()[2]
    p.data = p.data.copy()            # rebinding one view breaks the group
    assert not net._flat.is_intact()
    run(2, 3)
    assert o_fus._plan.fused == [] and [st["t"] for st in o_fus.state] == [5] * len(o_fus.state)
    flatten_parameters(net)           # re-flatten: fused again, state copied into new buffers
    run(3, 5)
    assert len(o_fus._plan.fused) == 1
    assert o_fus.state_dict()["t"] == [8] * len(o_fus.state)


def test_flatten_after_the_optimizer_was_made():
    ref, net = mlp(), mlp()
    o_ref = SGD(ref.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    o_fus = SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for k in range(5):
        if k == 2:
            flatten_parameters(net)   # picked up at the next step, velocity carried over
        g = _grads(ref.parameters(), k, np.float64)
        _set_grads(ref.parameters(), g)
        _set_grads(net.parameters(), g)
        o_ref.step()
        o_fus.step()
        assert len(o_fus._plan.fused) == (1 if k >= 2 else 0)
    _assert_same(ref.parameters(), net.parameters())


def test_flattening_another_module_keeps_a_groups_buffers():
    a, b = mlp(), mlp(seed=3)
    flatten_parameters(a)
    opt = Adam(a.parameters(), lr=1e-3)
    grp = opt._plan.fused[0]
    bufs = dict(grp.slots)
    flatten_parameters(b)             # bumps the generation: opt re-plans, keeps its group
    opt.step()
    assert opt._plan.fused[0] is grp and all(grp.slots[k] is bufs[k] for k in bufs)


# -- capture guard and hyperparameter sync --------------------------------------------------------
def test_capture_guard_flag_and_dirty_hyper():
    net = mlp()
    flatten_parameters(net)
    opt = Adam(net.parameters(), lr=1e-3)
    assert not capturing()
    assert opt.sync_hyper() is True and opt.sync_hyper() is False
    with capture_guard():
        assert capturing()
        with capture_guard():
            assert capturing()
        assert capturing()
        opt.step()                                  # clean: fine
        opt.lr = 5e-4
        with pytest.raises(RuntimeError, match=r"Adam: hyperparameter 'lr' changed during CUDA "
                           r"graph capture .*call sync_hyper\(\) before capture"):
            opt.step()
        opt.lr = 1e-3                               # back to the uploaded value: clean again
        opt.step()
        opt.betas = (0.5, 0.999)
        with pytest.raises(RuntimeError, match="'beta1' changed during CUDA graph capture"):
            opt.step()
        with pytest.raises(RuntimeError, match=r"sync_hyper\(\) called during CUDA graph capture"):
            opt.sync_hyper()
    assert not capturing()
    assert opt.sync_hyper() is True                 # uploads the new betas
    with capture_guard():
        opt.step()
    sgd = SGD(net.parameters(), lr=0.1, momentum=0.5)
    sgd.sync_hyper()
    sgd.nesterov = True
    with capture_guard(), pytest.raises(RuntimeError, match="SGD: hyperparameter 'nesterov'"):
        sgd.step()


def test_capture_guard_refuses_replanning():
    net = mlp()
    opt = RMSprop(net.parameters(), lr=1e-3)
    opt.sync_hyper()
    with capture_guard():
        flatten_parameters(net)
        with pytest.raises(RuntimeError, match="flat parameter groups changed .* during CUDA "
                                               "graph capture"):
            opt.step()
    opt.step()
    assert len(opt._plan.fused) == 1


def test_unrelated_flatten_during_capture_is_fine():
    a, b = mlp(), mlp(seed=3)
    flatten_parameters(a)
    opt = Adam(a.parameters(), lr=1e-3)
    opt.sync_hyper()
    plan = opt._plan
    with capture_guard():
        flatten_parameters(b)      # another network: this optimizer's groups are unchanged
        opt.step()
    assert opt._plan is plan


def test_capture_guard_is_exception_safe():
    with pytest.raises(KeyError):
        with capture_guard():
            raise KeyError("x")
    assert not capturing()


# -- state dicts: old format, exact resume ------------------------------------------------------------
def _npz(sd):
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


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target", ["flat", "plain"])
def test_resume_is_exact(make, dtype, target):
    """N fused steps, save, load into a fresh model/optimizer (flat or not), N more == 2N."""
    N = 3
    full = mlp(dtype=dtype)
    flatten_parameters(full)
    o_full = make(full.parameters())
    half = mlp(dtype=dtype)
    flatten_parameters(half)
    o_half = make(half.parameters())
    for k in range(N):
        for net, opt in ((full, o_full), (half, o_half)):
            _schedule(opt, k)
            _set_grads(net.parameters(), _grads(net.parameters(), k, dtype))
            opt.step()
    sd_net, sd_opt = half.state_dict(), _npz(o_half.state_dict())
    fresh = mlp(seed=9, dtype=dtype)
    if target == "flat":
        flatten_parameters(fresh)
    o_new = make(fresh.parameters())
    fresh.load_state_dict(sd_net)
    o_new.load_state_dict(sd_opt)
    if target == "flat":
        assert len(o_new._plan.fused) == 1
    for k in range(N, 2 * N):
        for net, opt in ((full, o_full), (fresh, o_new)):
            _schedule(opt, k)
            _set_grads(net.parameters(), _grads(net.parameters(), k, dtype))
            opt.step()
    _assert_same(full.parameters(), fresh.parameters())


def test_load_state_dict_writes_into_the_flat_state_in_place():
    net = mlp()
    flatten_parameters(net)
    opt = Adam(net.parameters(), lr=1e-2)
    grp = opt._plan.fused[0]
    bufs = {k: v for k, v in grp.slots.items()}
    _set_grads(net.parameters(), _grads(net.parameters(), 0, np.float64))
    opt.step()
    opt.step()
    sd = opt.state_dict()
    assert sd["t"] == [2] * len(net.parameters())
    other = Adam(mlp().parameters(), lr=1e-2)
    other.step()
    opt.load_state_dict(other.state_dict())
    assert opt._plan.fused[0] is grp and all(grp.slots[k] is bufs[k] for k in bufs)
    assert int(grp.counter[0]) == 1
    for a, b in zip(opt.state_dict()["m"], other.state_dict()["m"]):
        assert np.array_equal(a, b)


def test_unequal_step_counts_in_a_group_fall_back():
    ref, net = mlp(), mlp()
    flatten_parameters(net)
    o_ref, o_fus = Adam(ref.parameters(), lr=1e-2), Adam(net.parameters(), lr=1e-2)
    sd = o_ref.state_dict()
    sd["t"] = [3] + [5] * (len(sd["t"]) - 1)
    o_ref.load_state_dict(sd)
    o_fus.load_state_dict(sd)
    assert o_fus._plan.fused == []
    for k in range(2):
        g = _grads(ref.parameters(), k, np.float64)
        _set_grads(ref.parameters(), g)
        _set_grads(net.parameters(), g)
        o_ref.step()
        o_fus.step()
    _assert_same(ref.parameters(), net.parameters())
    assert o_fus.state_dict()["t"] == [5] + [7] * (len(sd["t"]) - 1)


def test_optimizer_zero_grad_fused(monkeypatch):
    net = mlp()
    fl = flatten_parameters(net)
    opt = SGD(net.parameters(), lr=0.1)
    from scratchgan.nn.flat import FlatParameters
    calls = []
    monkeypatch.setattr(Parameter, "zero_grad", lambda self: calls.append("p"))
    orig = FlatParameters.zero_grad
    monkeypatch.setattr(FlatParameters, "zero_grad", lambda self: (calls.append("f"), orig(self)))
    fl.grad[...] = 1.0
    opt.zero_grad()
    assert calls == ["f"] and not fl.grad.any()


def test_clip_weights_module_matches_list():
    a, b = mlp(), mlp()
    flatten_parameters(a)
    for p in a.parameters() + b.parameters():
        p.data *= 20
    clip_weights(a, 0.01)
    clip_weights(b.parameters(), 0.01)
    _assert_same(a.parameters(), b.parameters())


# -- GPU ------------------------------------------------------------------------------------------
RULES = {  # rule -> (optimizer factory, slot names, hyper dict for the flat NumPy update)
    "sgd": (lambda ps: SGD(ps, lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.01),
            ("velocity",), dict(lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam": (lambda ps: Adam(ps, lr=2e-3, betas=(0.5, 0.999), eps=1e-6, weight_decay=0.05),
             ("m", "v"), dict(lr=2e-3, betas=(0.5, 0.999), eps=1e-6, weight_decay=0.05)),
    "rmsprop": (lambda ps: RMSprop(ps, lr=1e-3, alpha=0.95, eps=1e-7, momentum=0.6),
                ("square_avg", "velocity"), dict(lr=1e-3, alpha=0.95, eps=1e-7, momentum=0.6)),
    "adagrad": (lambda ps: Adagrad(ps, lr=0.05, eps=1e-9), ("sum",), dict(lr=0.05, eps=1e-9)),
}
FLAT_NUMPY = {"sgd": optim.sgd_update_flat, "adam": optim.adam_update_flat,
              "rmsprop": optim.rmsprop_update_flat, "adagrad": optim.adagrad_update_flat}


def _hyper_vector(rule, h):
    cls = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}[rule]
    opt = cls([Parameter(np.zeros(1))], **h)
    v = np.zeros(optim.HYPER_LEN)
    vals = opt._hyper_vector()
    v[:len(vals)] = vals
    return v


def _rel_err(got, want):
    scale = np.maximum(np.abs(want), np.abs(want).max() * 1e-3)
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)) / scale))


@pytest.mark.gpu
@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,vector", [(64 * 4099, True), (1000003, True), (777, False),
                                      (5, True)])
def test_gpu_kernel_matches_flat_numpy(rule, dtype, n, vector):
    """One launch vs the flat NumPy update, from fresh random state; a poisoned tail past n
    must stay untouched, so the kernel writes exactly [0, n)."""
    import cupy as cp
    from scratchgan.cuda.loader import get_function, dtype_suffix
    _, slot_names, h = RULES[rule]
    rng = np.random.default_rng(n + len(rule))
    pad = 64
    w = rng.standard_normal(n + pad).astype(dtype)
    dw = rng.standard_normal(n + pad).astype(dtype)
    slots = []
    for s in slot_names:
        a = rng.standard_normal(n + pad).astype(dtype)
        if s in ("v", "square_avg", "sum"):
            a = np.abs(a)                       # second moments are nonnegative
        slots.append(a)
    w[n:] = np.nan                              # poison past the end
    for a in slots:
        a[n:] = np.nan
    t0 = 6
    # reference: flat NumPy update on [0, n)
    w_ref = w[:n].copy()
    st_ref = {k: a[:n].copy() for k, a in zip(slot_names, slots)}
    scratch = [np.empty(n, dtype) for _ in range(2)]
    counter_ref = np.array([t0, 0], np.int64)
    FLAT_NUMPY[rule](w_ref, dw[:n].copy(), st_ref, h, scratch, counter_ref)
    # kernel on full-length buffers with n elements to update
    wd_, gd_ = cp.asarray(w), cp.asarray(dw)
    sd_ = [cp.asarray(a) for a in slots]
    hyper = cp.asarray(_hyper_vector(rule, h))
    counter = cp.asarray(np.array([t0, 0], np.int64))
    name = f"{rule}_step_{dtype_suffix(dtype)}" if vector else \
        f"{rule}_step_scalar_{dtype_suffix(dtype)}"
    kern = get_function("optim", name)
    grid = (max(1, min(-(-n // 1024), 8 * 132)),)
    args = (wd_, gd_, *sd_, hyper) + ((counter,) if rule == "adam" else ()) + (np.int64(n),)
    kern(grid, (256,), args)
    cp.cuda.get_current_stream().synchronize()
    got_w = cp.asnumpy(wd_)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert np.all(np.isnan(got_w[n:])), "kernel wrote past n"
    assert _rel_err(got_w[:n], w_ref) <= tol, f"w rel err {_rel_err(got_w[:n], w_ref)}"
    for k, a in zip(slot_names, sd_):
        got = cp.asnumpy(a)
        assert np.all(np.isnan(got[n:])), f"{k}: kernel wrote past n"
        assert _rel_err(got[:n], st_ref[k]) <= tol, f"{k} rel err {_rel_err(got[:n], st_ref[k])}"
    if rule == "adam":
        assert cp.asnumpy(counter).tolist() == [t0 + 1, 0]   # advanced once, done-count reset


@pytest.mark.gpu
@pytest.mark.parametrize("rule", ["sgd", "rmsprop", "adagrad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_kernel_bitwise_without_pow(rule, dtype):
    """Rules without pow(): every operation is one IEEE-rounded op in NumPy and in the
    kernel (the _rn intrinsics are never contracted to FMAs), so the results agree bit for
    bit; the vector and scalar kernels agree too."""
    import cupy as cp
    _, slot_names, h = RULES[rule]
    rng = np.random.default_rng(3)
    n = 64 * 1000
    w = rng.standard_normal(n).astype(dtype)
    dw = rng.standard_normal(n).astype(dtype)
    st = {k: np.abs(rng.standard_normal(n)).astype(dtype) for k in slot_names}
    w_ref, st_ref = w.copy(), {k: a.copy() for k, a in st.items()}
    FLAT_NUMPY[rule](w_ref, dw, st_ref, h, [np.empty(n, dtype) for _ in range(2)], None)
    hyper = cp.asarray(_hyper_vector(rule, h))
    for vector in (True, False):
        wd_ = cp.asarray(w)
        sd_ = [cp.asarray(st[k]) for k in slot_names]
        optim.launch_fused(rule, wd_, cp.asarray(dw), sd_, hyper, vector=vector)
        assert np.array_equal(cp.asnumpy(wd_), w_ref), f"vector={vector}"
        for k, a in zip(slot_names, sd_):
            assert np.array_equal(cp.asnumpy(a), st_ref[k]), f"{k} vector={vector}"


@pytest.mark.gpu
@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_fused_optimizer_matches_cpu(rule, dtype):
    """The optimizer on a flattened GPU model vs the same on the CPU over steps with a
    changing lr; one launch per group; steady-state steps allocate nothing."""
    import cupy as cp
    make = RULES[rule][0]
    cpu = mlp(dtype=dtype, widths=(3, 40, 300, 7))
    gpu = mlp(dtype=dtype, widths=(3, 40, 300, 7)).to("cuda")
    flatten_parameters(cpu)
    flatten_parameters(gpu)
    oc, og = make(cpu.parameters()), make(gpu.parameters())
    assert len(og._plan.fused) == 1 and og._plan.fused[0].gpu
    pool = cp.get_default_memory_pool()
    for k in range(5):
        oc.lr = og.lr = 0.01 / (k + 1)
        g = _grads(cpu.parameters(), k, dtype)
        _set_grads(cpu.parameters(), g)
        for p, a in zip(gpu.parameters(), g):
            p.grad[...] = cp.asarray(a)
        oc.step()
        og.step()
        if k == 2:
            cp.cuda.get_current_stream().synchronize()
            used = pool.used_bytes()
        if k > 2:
            assert pool.used_bytes() == used, "a steady-state fused step allocated"
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for p, q in zip(cpu.parameters(), gpu.parameters()):
        np.testing.assert_allclose(cp.asnumpy(q.data), p.data, rtol=tol, atol=tol * 1e-2)
    sc, sg = oc.state_dict(), og.state_dict()
    if rule == "adam":
        assert sc["t"] == sg["t"] == [5] * len(cpu.parameters())
    for key in RULES[rule][1]:
        for a, b in zip(sc[key], sg[key]):
            assert isinstance(b, np.ndarray)
            np.testing.assert_allclose(b, a, rtol=max(tol, 1e-5) if dtype == np.float32 else tol,
                                       atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("rule", list(RULES))
def test_gpu_cuda_graph_replay_equals_eager(rule):
    """A CUDA graph of one step() replayed 5 times == 5 eager steps (bitwise: same kernels).
    For Adam the bias correction must advance every replay: t lives on the device. Then
    an lr change, sync_hyper() on the graph's stream, 2 more replays == 2 more eager steps:
    the hyperparameters live on the device too."""
    import cupy as cp
    make = RULES[rule][0]
    eager = mlp(dtype=np.float32, widths=(3, 64, 129, 5)).to("cuda")
    graph = mlp(dtype=np.float32, widths=(3, 64, 129, 5)).to("cuda")
    flatten_parameters(eager)
    flatten_parameters(graph)
    oe, og = make(eager.parameters()), make(graph.parameters())
    g = _grads(eager.parameters(), 0, np.float32)
    for net in (eager, graph):
        for p, a in zip(net.parameters(), g):
            p.grad[...] = cp.asarray(a)
    og.sync_hyper()
    s = cp.cuda.Stream(non_blocking=True)
    cp.cuda.get_current_stream().synchronize()
    with s:
        with capture_guard():
            s.begin_capture()
            og.step()
            cgraph = s.end_capture()
        for _ in range(5):
            cgraph.launch(s)
    s.synchronize()
    for _ in range(5):
        oe.step()
    cp.cuda.get_current_stream().synchronize()
    for p, q in zip(eager.parameters(), graph.parameters()):
        assert cp.array_equal(p.data, q.data), "graph replays differ from eager steps"
    if rule == "adam":
        assert og.state_dict()["t"] == [5] * len(graph.parameters())
    # change lr: upload on the graph's stream, replay twice
    oe.lr = og.lr = og.lr * 0.25
    with s:
        assert og.sync_hyper() is True
        cgraph.launch(s)
        cgraph.launch(s)
    s.synchronize()
    oe.step()
    oe.step()
    cp.cuda.get_current_stream().synchronize()
    for p, q in zip(eager.parameters(), graph.parameters()):
        assert cp.array_equal(p.data, q.data), "graph did not pick up the new lr"
    if rule == "adam":
        assert og.state_dict()["t"] == [7] * len(graph.parameters())


@pytest.mark.gpu
def test_gpu_graph_of_zero_grad_and_step_with_adam_reference():
    """Graph of (zero_grad, grad += fixed, step) replayed vs the per-parameter CPU reference
    in float64: the bias correction of every replay matches Adam's textbook t = 1..5."""
    import cupy as cp
    make = RULES["adam"][0]
    cpu = mlp(dtype=np.float64)
    gpu = mlp(dtype=np.float64).to("cuda")
    fl = flatten_parameters(gpu)
    oc, og = make(cpu.parameters()), make(gpu.parameters())
    g = _grads(cpu.parameters(), 1, np.float64)
    fixed = cp.zeros_like(fl.grad)
    for j, a in enumerate(g):
        fl.view(fixed, j)[...] = cp.asarray(a)
    og.sync_hyper()
    gpu.zero_grad()            # warm up (compile) the captured element-wise ops eagerly
    fl.grad += fixed
    gpu.zero_grad()
    s = cp.cuda.Stream(non_blocking=True)
    cp.cuda.get_current_stream().synchronize()
    with s:
        with capture_guard():
            s.begin_capture()
            gpu.zero_grad()
            fl.grad += fixed
            og.step()
            cgraph = s.end_capture()
        for _ in range(5):
            cgraph.launch(s)
    s.synchronize()
    for _ in range(5):
        _set_grads(cpu.parameters(), g)
        oc.step()
    for p, q in zip(cpu.parameters(), gpu.parameters()):
        np.testing.assert_allclose(cp.asnumpy(q.data), p.data, rtol=1e-12, atol=1e-14)


@pytest.mark.gpu
@pytest.mark.parametrize("rule", list(RULES))
def test_gpu_resume_is_exact(rule):
    import cupy as cp
    make = RULES[rule][0]
    N = 3
    full, half = (mlp(dtype=np.float32).to("cuda") for _ in range(2))
    for net in (full, half):
        flatten_parameters(net)
    o_full, o_half = make(full.parameters()), make(half.parameters())

    def step(net, opt, k):
        opt.lr = 0.01 / (k + 1)
        for p, a in zip(net.parameters(), _grads(net.parameters(), k, np.float32)):
            p.grad[...] = cp.asarray(a)
        opt.step()

    for k in range(N):
        step(full, o_full, k)
        step(half, o_half, k)
    sd_net, sd_opt = half.state_dict(), _npz(o_half.state_dict())
    fresh = mlp(seed=4, dtype=np.float32).to("cuda")
    flatten_parameters(fresh)
    o_new = make(fresh.parameters())
    fresh.load_state_dict(sd_net)
    o_new.load_state_dict(sd_opt)
    for k in range(N, 2 * N):
        step(full, o_full, k)
        step(fresh, o_new, k)
    for p, q in zip(full.parameters(), fresh.parameters()):
        assert cp.array_equal(p.data, q.data)


@pytest.mark.gpu
def test_gpu_capture_guard_refuses_per_parameter_gpu_updates():
    net = mlp().to("cuda")                          # not flattened
    opt = Adam(net.parameters(), lr=1e-3)
    opt.sync_hyper()
    with capture_guard(), pytest.raises(RuntimeError, match="not in an intact flat group"):
        opt.step()


@pytest.mark.gpu
def test_gpu_clip_and_zero_grad_on_flat():
    import cupy as cp
    net = mlp().to("cuda")
    fl = flatten_parameters(net)
    opt = RMSprop(net.parameters(), lr=1e-3)
    fl.grad[...] = 1.0
    opt.zero_grad()
    assert not bool(fl.grad.any())
    fl.data *= 100
    clip_weights(net, 0.01)
    assert float(cp.abs(fl.data).max()) <= np.float32(0.01)
