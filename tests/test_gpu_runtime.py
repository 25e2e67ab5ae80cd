"""Whole-step CUDA graphs (scratchgan.runtime.StepRunner) against eager steps, on the GPU.

The claim: a replayed graph computes exactly the step ``train_step`` computes
eagerly, with fresh noise, dropout masks, optimizer counts and schedules each
replay. Every kernel used by the models is deterministic (split-K reduces
through a workspace, no atomics), so graph and eager runs must agree bit for
bit; a mismatch names the first parameter that differs.
"""
import numpy as np
import pytest

import scratchgan as sg
from scratchgan.models import get_model
from scratchgan.runtime import StepRunner

pytestmark = pytest.mark.gpu

SMALL = {
    "gan": dict(shape=(1, 28, 28), hp=dict(arch="paper", g_hidden=64, d_units=32)),
    "dcgan": dict(shape=(1, 28, 28), hp=dict(ngf=8, ndf=8)),
    "cgan": dict(shape=(1, 28, 28), hp=dict(g_hidden_z=16, g_hidden_y=32, g_hidden=64,
                                            d_units_x=16, d_units_y=8, d_units=16)),
    "infogan": dict(shape=(1, 28, 28), hp={}),
    "wgan": dict(shape=(1, 28, 28), hp=dict(ngf=8, ndf=8)),
    "vae": dict(shape=(1, 28, 28), hp={}),
    "aae": dict(shape=(1, 28, 28), hp={}),
}


def _build(name, seed=0):
    cfg = SMALL[name]
    sg.manual_seed(seed)
    return get_model(name)(cfg["shape"], device="cuda", **cfg["hp"])


def _batches(model, steps, m=16, seed=1):
    """``steps`` steps of real data (host arrays), labels for conditional models."""
    g = np.random.default_rng(seed)
    lo, hi = model.data_range if model.data_range else (0.0, 1.0)
    out = []
    for _ in range(steps):
        k = model.batches_per_step()
        xs = [g.uniform(lo, hi, (m,) + model.data_shape).astype(np.float32) for _ in range(k)]
        ys = [g.integers(0, model.num_classes, m) for _ in range(k)]
        out.append((xs[0] if k == 1 else xs, (ys[0] if k == 1 else ys)
                    if model.conditional else None))
    return out


def _params(model):
    return {f"{k}.{n}": sg.backend.to_numpy(v)
            for k, net in model.networks().items() for n, v in net.state_dict().items()}


def _compare(a, b):
    for k in a:
        if not np.array_equal(a[k], b[k]):
            d = np.abs(a[k] - b[k]).max()
            return f"{k} differs (max abs diff {d:.3g})"
    return None


@pytest.mark.parametrize("name", sorted(SMALL))
def test_graph_replay_equals_eager(name):
    import cupy as cp
    steps = 20
    eager, graphed = _build(name), _build(name)
    if name == "wgan":   # keep the step structure fixed (the warm-up schedule has two)
        eager.hp["warmup"] = graphed.hp["warmup"] = False
    assert _compare(_params(eager), _params(graphed)) is None
    data = _batches(eager, steps)
    runner = StepRunner(graphed, mode="graph")
    logs_e, logs_g = [], []
    for x, y in data:
        xd = [cp.asarray(a) for a in x] if isinstance(x, list) else cp.asarray(x)
        le = eager.train_step(xd, y)
        lg = runner(xd, y)
        logs_e.append({k: float(v) for k, v in le.items()})
        logs_g.append({k: float(v) for k, v in lg.items()})
    assert runner.captures == 1 and runner.mode_used == "graph", runner.reason
    assert eager.step == graphed.step == steps
    diff = _compare(_params(eager), _params(graphed))
    assert diff is None, f"{name}: graph replay differs from eager after {steps} steps: {diff}"
    assert logs_e[-1] == logs_g[-1]
    # the noise stream advanced the same way on both
    assert eager.random.counter == graphed.random.counter
    # and each replay drew new noise: the logged losses move from step to step
    assert len({round(r[next(iter(r))], 12) for r in logs_g[3:]}) > 1


def test_graph_fallback_is_logged_and_exact():
    """A step that reads a value back cannot be captured: auto mode trains it eagerly,
    says why, and the result equals plain eager steps; graph mode raises."""
    import cupy as cp
    from scratchgan.runtime import GraphCaptureError

    class Syncing(type(_build("dcgan"))):
        def train_step(self, x, y=None):
            logs = super().train_step(x, y)
            logs["host"] = float(logs["loss_d"])      # a host read inside the step
            return logs

    def make():
        sg.manual_seed(0)
        return Syncing((1, 28, 28), device="cuda", ngf=8, ndf=8)

    a, b = make(), make()
    runner = StepRunner(b, mode="auto")
    for x, _ in _batches(a, 5):
        xd = cp.asarray(x)
        a.train_step(xd)
        runner(xd)
    assert runner.reason and runner.mode_used == "eager"
    assert _compare(_params(a), _params(b)) is None
    strict = StepRunner(make(), mode="graph")
    with pytest.raises(GraphCaptureError, match="could not be captured"):
        for x, _ in _batches(a, 3):
            strict(cp.asarray(x))


def test_sgd_schedule_advances_inside_graphs():
    """The GAN paper's SGD schedule (lr, momentum per update) reaches the graph through
    the optimizers' device hyperparameters."""
    import cupy as cp
    a, b = _build("gan"), _build("gan")
    for m in (a, b):   # a fast schedule, so 12 steps change lr and momentum visibly
        m.hp.update(lr_decay=1.01, momentum_saturate_step=10)
    runner = StepRunner(b, mode="graph")
    for x, _ in _batches(a, 12):
        a.train_step(cp.asarray(x))
        runner(cp.asarray(x))
    assert runner.mode_used == "graph"
    assert a.opt_G.lr == b.opt_G.lr and a.opt_G.momentum == b.opt_G.momentum
    assert _compare(_params(a), _params(b)) is None


def test_trainer_resume_bit_exact_in_graph_mode(tmp_path):
    from scratchgan.train import Trainer
    g = np.random.default_rng(3)
    x = g.uniform(-1, 1, (256, 1, 28, 28)).astype(np.float32)

    def run(out, steps, resume=False):
        sg.manual_seed(0)
        m = get_model("dcgan")((1, 28, 28), device="cuda", ngf=8, ndf=8)
        t = Trainer(m, x, batch_size=32, steps=steps, out_dir=out, progress=False,
                    checkpoint_every=5, resume=resume, step_mode="graph", log_every=4)
        t.fit()
        assert t.runner.captures >= 1
        return _params(m)

    full = run(tmp_path / "full", 24)
    run(tmp_path / "split", 11)
    resumed = run(tmp_path / "split", 24, resume=True)
    assert _compare(full, resumed) is None
