"""CycleGAN: gradients of the generators' and discriminators' objectives (check_grads, float64),
a PyTorch float64 twin of one step, the pool of past fakes, ablations, CuPy vs NumPy (gpu)."""
import numpy as np
import pytest

from conftest import require_torch
from scratchgan.models.cyclegan import CycleGAN, ImagePool
from test_model_gradients import check_grads, make
from test_pix2pix import torch_forward, torch_params

SMALL = dict(ngf=2, ndf=2, n_blocks=1, d_layers=1, pool_size=4)


def data(n, shape=(6, 8, 8), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n,) + shape)


@pytest.mark.parametrize("ablation", ["none", "no-cycle", "no-identity"])
def test_generator_gradients(ablation):
    m = make("cyclegan", (6, 8, 8), ablation=ablation, **SMALL)
    a, b = m.split(data(3))
    check_grads(m, lambda: m.generator_grads(a, b)[2]["loss_g"], [m.G_AB, m.G_BA])


def test_discriminator_gradients():
    m = make("cyclegan", (6, 8, 8), **SMALL)
    real, fake = data(3, (3, 8, 8), 1), data(3, (3, 8, 8), 2)
    check_grads(m, lambda: m.discriminator_grads(m.D_B, real, fake), [m.D_B])
    check_grads(m, lambda: m.discriminator_grads(m.D_A, fake, real), [m.D_A])


def test_unequal_channels_need_no_identity():
    with pytest.raises(ValueError, match="identity loss needs"):
        CycleGAN((4, 8, 8), a_channels=1, **SMALL)
    m = CycleGAN((4, 8, 8), a_channels=1, ablation="no-identity", **SMALL)
    logs = m.train_step(data(2, (4, 8, 8)).astype(np.float32))
    assert "loss_idt_a" not in logs and "loss_cycle_a" in logs


def test_pool_fills_then_swaps_with_device_draws():
    m = CycleGAN((6, 8, 8), rng=0, **SMALL)
    pool = ImagePool(m, 4)
    f1 = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1) * np.ones((3, 1, 2, 2), np.float32)
    assert np.array_equal(pool.query(f1), f1) and pool.count == 3
    f2 = f1 + 10
    s = m.random.state_dict()
    out = pool.query(f2)                         # 1 more fills the pool, 2 go through the swap
    assert pool.count == 4 and np.array_equal(out[0], f2[0])
    m.random.load_state_dict(s)
    u = m.random.random((2,), dtype=np.float32)
    keys = m.random.random((4,), dtype=np.float64)
    slots = np.argsort(keys, kind="stable")[:2]
    before = np.concatenate([f1, f2[:1]])
    for i, (ui, sl) in enumerate(zip(u, slots)):
        want = before[sl] if ui > 0.5 else f2[1 + i]
        assert np.array_equal(out[1 + i], want)
        assert np.array_equal(pool.images[sl], f2[1 + i] if ui > 0.5 else before[sl])
    with pytest.raises(ValueError, match="larger than the pool"):
        pool.query(np.zeros((5, 1, 2, 2), np.float32))


def test_state_dict_resumes_the_pool_exactly():
    x = [data(4, seed=s).astype(np.float32) for s in range(4)]
    a = CycleGAN((6, 8, 8), rng=0, **SMALL)
    for xi in x[:2]:
        a.train_step(xi)
    b = CycleGAN((6, 8, 8), rng=5, **SMALL)
    b.load_state_dict(a.state_dict())
    for xi in x[2:]:
        la, lb = a.train_step(xi), b.train_step(xi)
    assert {k: float(v) for k, v in la.items()} == {k: float(v) for k, v in lb.items()}


def test_linear_decay_in_the_second_half():
    m = CycleGAN((6, 8, 8), rng=0, decay_steps=100, **SMALL)
    assert [m.lr_at(s) for s in (0, 50)] == [2e-4, 2e-4]
    assert np.isclose(m.lr_at(75), 1e-4) and m.lr_at(100) == 0.0


def test_train_step_matches_torch_twin():
    """One step (pool still filling, so no draws) against autograd and torch.optim.Adam."""
    t = require_torch()
    m = make("cyclegan", (6, 8, 8), **SMALL)
    nets = m.networks()
    P = {k: torch_params(t, n) for k, n in nets.items()}
    opts = {k: t.optim.Adam(list(P[k].values()), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
            for k in nets}
    x = data(3)
    logs = m.train_step(x)
    A, B = t.tensor(x[:, :3]), t.tensor(x[:, 3:])
    G = lambda k, v: torch_forward(t, nets[k], v, P[k])
    fB, fA = G("G_AB", A), G("G_BA", B)
    mse = lambda l, v: ((l - v) ** 2).mean()
    loss_g = (mse(G("D_B", fB), 1) + mse(G("D_A", fA), 1)
              + 10 * ((G("G_BA", fB) - A).abs().mean() + (G("G_AB", fA) - B).abs().mean())
              + 5 * ((G("G_AB", B) - B).abs().mean() + (G("G_BA", A) - A).abs().mean()))
    for k in ("G_AB", "G_BA"):
        opts[k].zero_grad()
    loss_g.backward()
    for k in ("G_AB", "G_BA"):
        opts[k].step()
    for k, real, fake in (("D_B", B, fB), ("D_A", A, fA)):
        opts[k].zero_grad()
        ld = 0.5 * (mse(G(k, real), 1) + mse(G(k, fake.detach()), 0))
        ld.backward()
        opts[k].step()
    np.testing.assert_allclose(float(logs["loss_g"]), loss_g.item(), rtol=1e-10)
    for k, net in nets.items():
        for name, p in net.named_parameters():
            tg = P[k][id(p)].grad.numpy()
            np.testing.assert_allclose(p.grad, tg, rtol=1e-8, atol=1e-12, err_msg=f"{k}.{name}")
            if np.abs(tg).max() < 1e-12:
                # a bias just before instance norm: its gradient is zero up to rounding, and
                # Adam's step on rounding noise is +-lr either way; the gradients agree above
                continue
            np.testing.assert_allclose(p.data, P[k][id(p)].detach().numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{k}.{name}")


def test_cli_dry_run(tmp_path):
    from scratchgan import cli
    rc = cli.main(["train", "cyclegan", "--dry-run", "--no-progress", "--out", str(tmp_path),
                   "--set", "ngf=4", "--set", "ndf=4", "--set", "n_blocks=2"])
    assert rc == 0 and (tmp_path / "samples.png").is_file()
    rc = cli.main(["translate", str(tmp_path), "--n", "4", "--direction", "BA"])
    assert rc == 0 and (tmp_path / "translate.png").is_file()


@pytest.mark.gpu
def test_gpu_steps_match_cpu_float64():
    """Several steps (the pool fills and swaps: device draws) equal on CuPy and NumPy."""
    import cupy as cp
    kw = dict(rng=0, dtype=np.float64, ngf=4, ndf=4, n_blocks=2, pool_size=6)
    cpu, gpu = CycleGAN((6, 28, 28), **kw), CycleGAN((6, 28, 28), device="cuda", **kw)
    for s in range(4):
        x = data(4, (6, 28, 28), seed=s)
        lc, lg = cpu.train_step(x), gpu.train_step(cp.asarray(x))
    for k in lc:
        assert isinstance(lg[k], cp.ndarray) and lg[k].ndim == 0
        np.testing.assert_allclose(float(lg[k]), float(lc[k]), rtol=1e-7)
    np.testing.assert_allclose(cp.asnumpy(gpu.pool_A.images), cpu.pool_A.images, rtol=1e-7,
                               atol=1e-10)


@pytest.mark.gpu
def test_gpu_graph_replay_equals_eager_once_the_pools_are_full():
    import cupy as cp
    from scratchgan.runtime import StepRunner
    kw = dict(rng=0, ngf=4, ndf=4, n_blocks=2, pool_size=6, device="cuda")
    eager, graphed = CycleGAN((6, 28, 28), **kw), CycleGAN((6, 28, 28), **kw)
    runner = StepRunner(graphed, mode="auto")
    g = np.random.default_rng(1)
    for _ in range(6):     # filling: 4, 6 (eager, own keys); full: warm, capture, replay, replay
        x = cp.asarray(g.uniform(-1, 1, (4, 6, 28, 28)).astype(np.float32))
        le, lg = eager.train_step(x), runner(x)
    assert runner.captures == 1 and runner.mode_used == "graph", runner.reason
    assert {k: float(v) for k, v in le.items()} == {k: float(v) for k, v in lg.items()}
    assert cp.array_equal(eager.pool_B.images, graphed.pool_B.images)
