"""WGAN-GP (scratchgan.models.wgan_gp): gradient checks of its losses through the explicit
second-order backward, the penalty's gradient reaching the critic's weights, λ acting exactly
as finite differences predict, the official networks' shapes, steps, and the CLI."""
import copy
import json

import numpy as np
import pytest

from scratchgan import cli
from scratchgan.gradcheck import gradcheck
from scratchgan.models.wgan_gp import WGANGP

N_PROJ = 4


def make(shape, **hyper):
    """A float64 WGANGP with parameters redrawn N(0, 0.3^2) (away from ReLU kinks; gradients
    do not depend on the init)."""
    m = WGANGP(shape, rng=3, dtype=np.float64, **hyper)
    g = np.random.default_rng(17)
    for net in m.networks().values():
        for p in net.parameters():
            p.data[...] = 0.3 * g.standard_normal(p.shape)
    return m


def replay(model, fn):
    """``fn`` run from the same generator and Philox states every time (same z and ε)."""
    state = copy.deepcopy(model.rng.bit_generator.state)
    stream = model.random.state_dict()

    def run():
        model.rng.bit_generator.state = copy.deepcopy(state)
        model.random.load_state_dict(stream)
        model.zero_grad()
        model.clear_cache()
        return fn()
    return run


def check_grads(model, fn, net):
    """``fn() -> loss`` fills net's .grad; compare with central differences of the loss."""
    run = replay(model, fn)
    params = list(net.named_parameters())
    run()
    grads = [p.grad.copy() for _, p in params]
    assert any(np.abs(g).max() > 0 for g in grads), "no gradient reached the parameters"
    gradcheck(lambda *a: (np.asarray(run()), None), lambda dy, c: tuple(g * dy for g in grads),
              [p.data for _, p in params], names=[n for n, _ in params], n_projections=N_PROJ)


CASES = {"mlp": ((2,), dict(mlp_hidden=6, mlp_layers=3)),
         "mnist": ((1, 28, 28), dict(dim=2, z_dim=3))}


@pytest.mark.parametrize("arch", sorted(CASES))
def test_critic_and_generator_gradients(arch):
    shape, hyper = CASES[arch]
    m = make(shape, **hyper)
    assert m.arch == arch
    x = np.random.default_rng(2).uniform(0, 1, size=(4,) + shape)
    noise = m.sample_noise(4)
    check_grads(m, lambda: m.discriminator_grads(x, noise)["loss_d"], m.D)
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], m.G)


@pytest.mark.parametrize("arch", sorted(CASES))
def test_penalty_gradient_reaches_the_weights_and_lambda_acts_linearly(arch):
    """∇_w L(λ) = ∇_w W + λ ∇_w P₁: grad(λ=1) − grad(λ=0) must equal central differences of
    the unit penalty P₁ = mean (‖∇D(x̂)‖ − 1)², be non-zero for every weight, and scale
    exactly with λ."""
    shape, hyper = CASES[arch]
    m = make(shape, **hyper)
    x = np.random.default_rng(2).uniform(0, 1, size=(4,) + shape)
    noise = m.sample_noise(4)
    eps = np.random.default_rng(3).uniform(0, 1, size=(4,) + (1,) * len(shape))

    def grads_at(lam):
        m.hp["lambda_gp"] = lam
        m.zero_grad()
        logs = m.discriminator_grads(x, noise, eps=eps)
        return logs, [p.grad.copy() for p in m.D.parameters()]

    logs0, g0 = grads_at(0.0)
    logs1, g1 = grads_at(1.0)
    logs10, g10 = grads_at(10.0)
    assert float(logs0["gp"]) == 0.0 and np.isclose(float(logs10["gp"]), 10 * float(logs1["gp"]))
    dP = [b - a for a, b in zip(g0, g1)]
    for (name, p), d in zip(m.D.named_parameters(), dP):
        if name.endswith("weight"):
            assert np.abs(d).max() > 1e-6, f"the penalty's gradient does not reach {name}"
        else:   # ReLU/LeakyReLU critic: the penalty's bias gradients are exactly zero
            assert not d.any(), name
    for a, b, d in zip(g0, g10, dP):
        np.testing.assert_allclose(b - a, 10 * d, rtol=1e-9, atol=1e-12)

    def unit_penalty(*arrays):
        m.hp["lambda_gp"] = 1.0
        m.clear_cache()
        return np.asarray(m.discriminator_grads(x, noise, eps=eps)["gp"]), None

    gradcheck(unit_penalty, lambda dy, c: tuple(d * dy for d in dP),
              [p.data for p in m.D.parameters()],
              names=[n for n, _ in m.D.named_parameters()], n_projections=N_PROJ)


def test_official_networks_and_defaults():
    m = WGANGP((1, 28, 28), rng=0)
    assert m.arch == "mnist" and m.hp["lambda_gp"] == 10.0 and m.hp["n_critic"] == 5
    assert m.opt_D.lr == 1e-4 and m.opt_D.betas == (0.0, 0.9) and m.opt_G.betas == (0.0, 0.9)
    assert WGANGP((1, 28, 28), rng=0, official_betas=True).opt_D.betas == (0.5, 0.9)
    shapes = [tuple(p.shape) for p in m.D.parameters()]
    assert shapes == [(64, 1, 5, 5), (64,), (128, 64, 5, 5), (128,), (256, 128, 5, 5), (256,),
                      (1, 4096), (1,)]
    z = m.sample_noise(3, rng=np.random.default_rng(0))
    assert z["z"].shape == (3, 128)
    h = z["z"]
    from scratchgan.nn.module import no_grad
    sizes = []
    with no_grad():
        for layer in m.G:
            h = layer(h)
            if h.ndim == 4:
                sizes.append(h.shape[1:])
    assert sizes == [(256, 4, 4), (128, 7, 7), (128, 7, 7), (64, 14, 14), (64, 14, 14),
                     (1, 28, 28), (1, 28, 28)]              # 4 -> 7 (the crop) -> 14 -> 28
    toy = WGANGP((2,), rng=0)
    assert toy.arch == "mlp" and toy.hp["lambda_gp"] == 0.1 and toy.hp["z_dim"] == 2
    assert sum(type(l).__name__ == "Linear" for l in toy.D) == 4       # 3 x 512 ReLU + output
    assert [p.shape for p in toy.D.parameters()][:2] == [(512, 2), (512,)]
    with pytest.raises(ValueError, match="arch 'mnist' needs"):
        WGANGP((1, 32, 32), rng=0, arch="mnist")


def test_train_step_consumes_n_critic_batches_and_returns_arrays():
    m = WGANGP((2,), rng=0, mlp_hidden=16)
    x = np.random.default_rng(0).normal(size=(5 * 8, 2)).astype(np.float32)
    before = [p.data.copy() for p in m.D.parameters()]
    logs = m.train_step(x)
    assert m.step == 1 and set(logs) >= {"loss_d", "gp", "em_estimate", "grad_norm", "loss_g"}
    for k, v in logs.items():
        assert not isinstance(v, float) and np.ndim(v) == 0 and np.isfinite(v), k
        assert np.asarray(v).dtype == np.float32, k
    # every weight moves (the output bias has an exactly zero gradient: d/db of
    # mean D(x̃) − mean D(x) is 1 − 1, and the penalty's bias gradients vanish)
    assert all(not np.array_equal(a, p.data) for a, (n, p) in zip(before, m.D.named_parameters())
               if n.endswith("weight"))
    with pytest.raises(ValueError, match="5 real minibatches"):
        m.train_step(x[:7])


def test_toy_training_drives_the_gradient_norm_toward_one():
    """A few hundred critic steps on a fixed 2-D batch pull ‖∇D(x̂)‖ toward 1 (λ = 10 here)."""
    m = WGANGP((2,), rng=0, mlp_hidden=32, lambda_gp=10.0, lr=1e-3)
    x = np.random.default_rng(0).normal(size=(5 * 32, 2)).astype(np.float32) * 2
    for _ in range(60):
        logs = m.train_step(x)
    assert abs(float(logs["grad_norm"]) - 1) < 0.3 and float(logs["gp"]) < 0.5


def test_batchnorm_in_the_critic_is_refused():
    from scratchgan import nn
    from scratchgan.nn.second_order import SecondOrderError
    m = WGANGP((2,), rng=0, mlp_hidden=8)
    m.D = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    with pytest.raises(SecondOrderError, match="BatchNorm1d"):
        m.discriminator_grads(np.zeros((4, 2), np.float32), m.sample_noise(4))


def test_cli_dry_run(tmp_path, capsys):
    """`scratchgan train wgan-gp --dry-run` on a toy set writes metrics, samples and a
    checkpoint."""
    try:
        rc = cli.main(["train", "wgan-gp", "--dry-run", "--no-progress", "--dataset", "ring8",
                       "--set", "mlp_hidden=16", "--out", str(tmp_path)])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 0, err
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == cli.DRY_RUN["steps"] and "gp" in rows[-1]
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "last.ckpt.npz").is_file()


@pytest.mark.gpu
def test_gpu_step_matches_cpu_critic_gradient():
    """The critic gradient (with the penalty) on CuPy equals NumPy's in float64."""
    import cupy as cp
    shape, hyper = CASES["mnist"]
    m = make(shape, **hyper)
    x = np.random.default_rng(2).uniform(0, 1, size=(4,) + shape)
    noise = m.sample_noise(4, rng=np.random.default_rng(5))
    eps = np.random.default_rng(3).uniform(0, 1, size=(4, 1, 1, 1))
    m.discriminator_grads(x, noise, eps=eps)
    ref = [p.grad.copy() for p in m.D.parameters()]
    for net in m.networks().values():
        net.zero_grad()
        net.to("cuda")
    logs = m.discriminator_grads(cp.asarray(x), {"z": cp.asarray(noise["z"])}, eps=cp.asarray(eps))
    assert isinstance(logs["gp"], cp.ndarray) and logs["gp"].ndim == 0
    for p, r in zip(m.D.parameters(), ref):
        np.testing.assert_allclose(cp.asnumpy(p.grad), r, rtol=1e-8, atol=1e-10)


@pytest.mark.gpu
def test_gpu_graph_replay_equals_eager():
    """The whole step, penalty included, is captured into one CUDA graph (no host reads, no
    host-to-device copies) and its replays equal eager steps bit for bit."""
    import cupy as cp
    import scratchgan as sg
    from scratchgan.runtime import StepRunner

    def build():
        sg.manual_seed(0)
        return WGANGP((1, 28, 28), device="cuda", dim=8)

    eager, graphed = build(), build()
    runner = StepRunner(graphed, mode="graph")
    g = np.random.default_rng(1)
    for _ in range(6):
        xs = [cp.asarray(g.uniform(0, 1, (16, 1, 28, 28)).astype(np.float32)) for _ in range(5)]
        le, lg = eager.train_step(xs), runner(xs)
    assert runner.captures == 1 and runner.mode_used == "graph", runner.reason
    assert {k: float(v) for k, v in le.items()} == {k: float(v) for k, v in lg.items()}
    for (n, p), q in zip(eager.D.named_parameters(), graphed.D.parameters()):
        assert cp.array_equal(p.data, q.data), n
