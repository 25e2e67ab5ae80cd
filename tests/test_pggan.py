"""The pggan model: gradients of both objectives (float64, through the penalty's second-order
backward) in stable and fade-in phases, the whole progressive critic under gradgradcheck, the
growth schedule (α linear, graph keys), exact resume across a growth step, the ablation
switches, and CuPy against NumPy (gpu marker)."""
import copy

import numpy as np
import pytest

from scratchgan.gradcheck import gradgradcheck
from scratchgan.models import get_model
from scratchgan.models.pggan import PGGAN, ProgressiveCritic
from scratchgan.nn import PixelNorm

from test_model_gradients import check_grads

TINY = {"fmap_base": 32, "fmap_max": 4, "z_dim": 6}


def make(shape=(2, 8, 8), dtype=np.float64, seed=0, device="cpu", **hyper):
    hp = {**TINY, "stable_images": 8, "fade_images": 16, **hyper}
    if hp.get("variant") == "mnist1k":
        hp.pop("fmap_base"), hp.pop("fmap_max")
    return PGGAN(shape, rng=seed, dtype=dtype, device=device, **hp)


def data(model, n=4, seed=1):
    m = np.random.default_rng(seed).uniform(-1, 1, (n,) + model.data_shape)
    return m.astype(model.dtype)


def redraw(model, seed=17, scale=0.5):
    """Parameters redrawn so that no LeakyReLU input sits within a step of its kink."""
    g = np.random.default_rng(seed)
    for net in (model.G, model.D):
        for p in net.parameters():
            p.data[...] = scale * g.standard_normal(p.shape)
    model.G_ema.load_state_dict(model.G.state_dict())


def at_phase(model, images):
    """Move the schedule to ``images`` shown (batch m = 4 per critic iteration)."""
    model._m = 4
    model.step = images // (4 * model.hp["n_critic"])
    model.apply_schedule()


# ----------------------------------------------------------------------------- schedule
def test_schedule_alpha_linear_and_graph_keys():
    m = make(shape=(1, 32, 32), stable_images=100, fade_images=200)
    assert m.phase(0) == (4, False, 1.0) and m.phase(99) == (4, False, 1.0)
    assert m.phase(100) == (8, True, 0.0)
    assert m.phase(150)[:2] == (8, True) and m.phase(150)[2] == pytest.approx(0.25)
    assert m.phase(250)[2] == pytest.approx(0.75)
    assert m.phase(300) == (8, False, 1.0)
    assert m.phase(400)[:2] == (16, True)
    assert m.phase(700)[:2] == (32, True) and m.phase(1000) == (32, False, 1.0)
    assert m.phase(10**9) == (32, False, 1.0)
    keys = set()
    for images in (0, 150, 300, 450, 700, 1000):
        at_phase(m, images)
        keys.add(m.graph_key())
    assert len(keys) == 6, "each (resolution, fading) phase needs its own CUDA-graph key"
    at_phase(m, 160)
    assert m.D.alpha.item() == pytest.approx(0.3) and m.G.alpha.item() == pytest.approx(0.3)
    flat = make(shape=(1, 32, 32), progressive=False)
    assert flat.phase(0) == (32, False, 1.0) and flat.phase(10**7) == (32, False, 1.0)


def test_growth_changes_output_resolution_and_samples_keep_data_shape():
    m = make(dtype=np.float32, stable_images=8, fade_images=8)
    x = data(m, 4)
    seen = []
    for _ in range(6):
        m.train_step(x)
        seen.append((m.G.resolution, m.G.fading))
        s = m.generate(m.sample_noise(3, rng=np.random.default_rng(0)))
        assert s.shape == (3,) + m.data_shape and np.all(np.isfinite(s))
    assert (8, True) in seen and seen[-1] == (8, False) and seen[0] == (4, False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="power of two"):
        PGGAN((1, 28, 28))
    with pytest.raises(ValueError, match="variant"):
        PGGAN((1, 8, 8), variant="nope")
    m = make(dtype=np.float32)
    m.train_step(data(m, 4))
    with pytest.raises(ValueError, match="fixed minibatch"):
        m.train_step(data(m, 6))


# ----------------------------------------------------------------------------- gradients
PHASES = [0, 12, 30]       # 4x4 stable, 8x8 fading (alpha 0.25), 8x8 stable


@pytest.mark.parametrize("images", PHASES)
@pytest.mark.parametrize("variant", ["paper", "mnist1k"])
def test_discriminator_grads(images, variant):
    m = make(variant=variant)
    redraw(m)
    at_phase(m, images)
    x = m.process_reals(m.to_model(data(m)))
    noise = m.sample_noise(4, rng=np.random.default_rng(2))
    eps = m.to_model(np.random.default_rng(3).uniform(0, 1, (4, 1, 1, 1)))
    check_grads(m, lambda: m.discriminator_grads(x, noise, eps=eps)["loss_d"], [m.D])


@pytest.mark.parametrize("images", PHASES)
def test_generator_grads(images):
    m = make()
    redraw(m)
    at_phase(m, images)
    noise = m.sample_noise(4, rng=np.random.default_rng(4))
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], [m.G])


def test_generator_grads_batchnorm_baseline():
    m = make(variant="mnist1k", equalized=False)
    assert any("BatchNorm" in type(x).__name__ for x in m.G.modules())
    redraw(m)
    at_phase(m, 12)
    # seed 4 puts a LeakyReLU input 7e-7 from its kink (a finite-difference step crosses it)
    noise = m.sample_noise(4, rng=np.random.default_rng(5))
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], [m.G])


@pytest.mark.parametrize("images", [12, 30])
def test_whole_critic_gradgradcheck(images):
    m = make(mbstd_group=2)
    redraw(m, scale=0.6)
    at_phase(m, images)
    x = m.process_reals(m.to_model(data(m)))
    res = gradgradcheck(m.D, x, n_projections=3)
    assert all(r.passed for r in res)


def test_penalty_gradient_scales_with_lambda():
    """The penalty's gradient reaches the critic: ∂L_D/∂w moves with λ exactly linearly."""
    grads = []
    for lam in (0.0, 10.0, 20.0):
        m = make(lambda_gp=lam)
        redraw(m)
        at_phase(m, 12)
        x = m.process_reals(m.to_model(data(m)))
        noise = m.sample_noise(4, rng=np.random.default_rng(2))
        eps = m.to_model(np.random.default_rng(3).uniform(0, 1, (4, 1, 1, 1)))
        m.zero_grad()
        m.discriminator_grads(x, noise, eps=eps)
        grads.append(np.concatenate([p.grad.ravel() for p in m.D.parameters()]))
    pen = grads[1] - grads[0]
    assert np.abs(pen).max() > 1e-6
    np.testing.assert_allclose(grads[2] - grads[0], 2 * pen, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- resume
def test_resume_is_exact_across_a_growth_step(tmp_path):
    """Through the checkpoint file format (scratchgan.checkpoint), as training resumes."""
    from scratchgan.checkpoint import load_checkpoint, save_checkpoint
    m = make(dtype=np.float32, stable_images=32, fade_images=32, n_critic=2)
    batches = [data(m, 8, seed=s) for s in range(10)]    # 2 critic batches of 4: 8 images a step
    for b in batches[:3]:
        m.train_step(b)
    assert (m.G.resolution, m.G.fading) == (4, False)
    state = load_checkpoint(save_checkpoint(tmp_path / "pggan.ckpt.npz", m.state_dict()))
    assert state["extra"]["resolution"] == 4 and state["extra"]["images_shown"] == 24
    for b in batches[3:10]:
        m.train_step(b)
    assert (m.G.resolution, m.G.fading) == (8, False)
    r = make(dtype=np.float32, stable_images=32, fade_images=32, n_critic=2, seed=5)
    r.load_state_dict(state)
    for b in batches[3:10]:
        r.train_step(b)
    for k, net in m.networks().items():
        for (n, p), (_, q) in zip(net.named_parameters(), r.networks()[k].named_parameters()):
            assert np.array_equal(p.data, q.data), f"{k}.{n} differs after resume"
    assert r.state_dict()["extra"] == m.state_dict()["extra"]


def test_resume_mid_fade_restores_alpha():
    m = make(dtype=np.float32, stable_images=8, fade_images=32)
    for s in range(4):
        m.train_step(data(m, 4, seed=s))
    st = copy.deepcopy(m.state_dict())
    assert st["extra"]["fading"] and 0 < st["extra"]["alpha"] < 1
    r = make(dtype=np.float32, stable_images=8, fade_images=32, seed=9)
    r.load_state_dict(st)
    assert r.D.alpha.item() == pytest.approx(st["extra"]["alpha"])
    bad = copy.deepcopy(st)
    bad["extra"]["resolution"] = 4
    with pytest.raises(ValueError, match="schedule"):
        make(dtype=np.float32, stable_images=8, fade_images=32).load_state_dict(bad)


# ----------------------------------------------------------------------------- ablations
def test_ablation_switches_change_the_networks():
    base = make(variant="mnist1k", equalized=False, mbstd=False, progressive=False)
    names = lambda net: {type(x).__name__ for x in net.modules()}
    n_pn = lambda net: sum(isinstance(x, PixelNorm) for x in net.modules())
    assert "MinibatchStdDev" not in names(base.D) and n_pn(base.G) == 1      # latents only
    assert all(not getattr(x, "equalized", False) for x in base.D.modules())
    assert base.G.resolution == 8
    full = make(variant="mnist1k")
    assert "MinibatchStdDev" in names(full.D) and n_pn(full.G) > 1
    assert full.hp["n_critic"] == 5 and full.hp["drift"] == 0.0
    assert make().hp["drift"] == 0.001 and make().hp["betas"] == (0.0, 0.99)


def test_ema_tracks_generator():
    m = make(dtype=np.float64, ema=0.5)
    g0 = [p.data.copy() for p in m.G_ema.parameters()]
    m.train_step(data(m, 4))
    for p, q, e in zip(m.G.parameters(), m.G_ema.parameters(), g0):
        np.testing.assert_allclose(q.data, 0.5 * e + 0.5 * p.data, rtol=1e-12, atol=1e-15)


def test_critic_refuses_batchnorm_path():
    """No baseline critic holds a BatchNorm (the mnist1k baseline G does), and a critic path
    with one is refused by name when the penalty's input gradient is taken, not trained."""
    from scratchgan import nn
    from scratchgan.nn.second_order import SecondOrderError
    from scratchgan.nn.module import Sequential
    assert get_model("pggan") is PGGAN
    for variant in ("paper", "mnist1k"):
        m = make(variant=variant, equalized=False)
        assert isinstance(m.D, ProgressiveCritic)
        assert not any("BatchNorm" in type(x).__name__ for x in m.D.modules()), variant
    m = make()
    m.D.fromrgb4 = Sequential(*m.D.fromrgb4, nn.BatchNorm2d(m.D.fromrgb4[0].weight.shape[0]).astype(m.dtype))
    m.D._paths.clear()
    assert any("BatchNorm" in type(x).__name__ for x in m.D.path().modules())
    before = [p.data.copy() for p in m.D.parameters()]
    with pytest.raises(SecondOrderError, match="batch normalization couples the samples"):
        m.train_step(data(m, 4 * m.hp["n_critic"]))
    assert all(np.array_equal(p.data, b) for p, b in zip(m.D.parameters(), before))


# ----------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["paper", "mnist1k"])
def test_gpu_steps_match_numpy(variant):
    import cupy as cp
    a = make(variant=variant, stable_images=8, fade_images=8)
    b = make(variant=variant, stable_images=8, fade_images=8, device="cuda")
    n = 4 * a.hp["n_critic"]
    for s in range(4):                         # crosses 4x4 -> fade -> 8x8
        x = data(a, n, seed=s)
        la = a.train_step(x)
        lb = b.train_step(cp.asarray(x))
        assert abs(float(la["loss_d"]) - float(lb["loss_d"])) <= 1e-8 * (1 + abs(float(la["loss_d"])))
    for k in ("G", "D", "G_ema"):
        for (n_, p), (_, q) in zip(a.networks()[k].named_parameters(),
                                   b.networks()[k].named_parameters()):
            np.testing.assert_allclose(cp.asnumpy(q.data), p.data, rtol=1e-8, atol=1e-10,
                                       err_msg=f"{k}.{n_}")
