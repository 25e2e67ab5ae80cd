"""GPU bias + activation kernels against the float64 NumPy ops (needs CuPy and a GPU)."""
import numpy as np
import pytest

try:
    import cupy as cp
except Exception:  # pragma: no cover - depends on the machine
    cp = None

from scratchgan.ops import activation as cpu_act

pytestmark = pytest.mark.gpu

ACTS = {
    "relu": (cpu_act.relu_forward, cpu_act.relu_backward, ()),
    "leaky_relu": (cpu_act.leaky_relu_forward, cpu_act.leaky_relu_backward, (0.2,)),
    "tanh": (cpu_act.tanh_forward, cpu_act.tanh_backward, ()),
    "sigmoid": (cpu_act.sigmoid_forward, cpu_act.sigmoid_backward, ()),
    "softplus": (cpu_act.softplus_forward, cpu_act.softplus_backward, ()),
}


def fresh_rng():
    seed = int(np.random.SeedSequence().entropy % (2 ** 32))
    return np.random.default_rng(seed), seed


def rel(a, b):
    a = cp.asnumpy(a).astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def kinkless(rng, shape, scale=3.0):
    return np.sign(rng.standard_normal(shape)) * (0.1 + scale * np.abs(rng.standard_normal(shape)))


@pytest.mark.parametrize("name", sorted(ACTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_kernels_match_cpu(name, dtype):
    from scratchgan.cuda import activation as gact
    fwd, bwd, extra = ACTS[name]
    rng, seed = fresh_rng()
    x = kinkless(rng, (5, 7, 3, 9))
    x.flat[:4] = [40.0, -40.0, 800.0, -800.0]   # saturation and overflow-prone inputs
    dy = rng.standard_normal(x.shape)
    y_ref, c_ref = fwd(x, *extra)
    dx_ref = bwd(dy, c_ref)
    y, cache = getattr(gact, name + "_forward")(cp.asarray(x.astype(dtype)), *extra)
    dx = getattr(gact, name + "_backward")(cp.asarray(dy.astype(dtype)), cache)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for label, a, b in [("y", y, y_ref), ("dx", dx, dx_ref)]:
        assert bool(cp.isfinite(a).all()), f"{name} {label}: non-finite, seed {seed}"
        e = rel(a, b)
        assert e <= tol, f"{name} {label}: rel err {e:.3e} > {tol}, seed {seed}"
    # the op-level functions dispatch to the same kernels for CuPy input
    y2, c2 = fwd(cp.asarray(x.astype(dtype)), *extra)
    assert isinstance(y2, cp.ndarray) and rel(y2, y_ref) <= tol
    assert rel(bwd(cp.asarray(dy.astype(dtype)), c2), dx_ref) <= tol


@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "tanh", "sigmoid", "softplus"])
def test_bias_act_fused(act):
    from scratchgan.cuda import activation as gact
    rng, seed = fresh_rng()
    x = kinkless(rng, (4, 6, 5, 3))
    b = 0.05 * rng.standard_normal(6)   # keeps x + b away from 0 (|x| >= 0.1)
    dy = rng.standard_normal(x.shape)
    z = x + b.reshape(1, 6, 1, 1)
    if act == "identity":
        y_ref, dz = z, dy
    else:
        fwd, bwd, extra = ACTS[act]
        y_ref, c = fwd(z, *extra)
        dz = bwd(dy, c)
    slope = 0.2
    y, cache = gact.bias_act_forward(cp.asarray(x), cp.asarray(b), act, slope)
    dx, db = gact.bias_act_backward(cp.asarray(dy), cache)
    assert rel(y, y_ref) <= 1e-13, f"y, seed {seed}"
    assert rel(dx, dz) <= 1e-13, f"dx, seed {seed}"
    assert rel(db, dz.sum(axis=(0, 2, 3))) <= 1e-12, f"db, seed {seed}"
