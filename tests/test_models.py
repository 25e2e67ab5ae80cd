"""The seven models at tiny sizes: steps run, samples have the right shape and range,
runs are reproducible and a checkpoint round trip continues bit-exactly."""
import copy

import numpy as np
import pytest

from scratchgan.gradcheck import gradcheck_module
from scratchgan.models import REGISTRY, GenerativeModel, Maxout, get_model
from scratchgan.ops.maxout import maxout_backward, maxout_forward
from scratchgan.gradcheck import gradcheck

# name -> (data_shape, tiny hyperparameters, data range of real batches)
TINY = {
    "gan": ((1, 6, 6), dict(g_hidden=8, d_units=6, d_pieces=3, z_dim=5), (0, 1)),
    "gan_toy": ((2,), dict(toy_hidden=8, toy_units=4, z_dim=3), None),
    "gan_official": ((1, 6, 6), dict(g_hidden=8, d_units=6, d_pieces=3, z_dim=5,
                                     variant="official", noise="gaussian"), (0, 1)),
    "dcgan": ((1, 28, 28), dict(ngf=2, ndf=2, z_dim=4), (-1, 1)),
    "cgan": ((1, 6, 6), dict(z_dim=5, g_hidden_z=4, g_hidden_y=4, g_hidden=8, d_units_x=6,
                             d_units_y=3, d_units=5), (0, 1)),
    "infogan": ((1, 8, 8), dict(noise_dim=4, g_fc=8, g_channels=3, g_conv=3, d_conv1=3, d_conv2=3,
                                d_fc=8, q_fc=6), (0, 1)),
    "wgan": ((1, 28, 28), dict(ngf=2, ndf=2, z_dim=4), (-1, 1)),
    "wgan_mlp": ((2,), dict(mlp_hidden=8, mlp_layers=2, z_dim=3), None),
    "vae": ((1, 6, 6), dict(hidden=8, latent_dim=3), (0, 1)),
    "aae": ((1, 6, 6), dict(hidden=8, d_hidden=6, code_dim=3), (0, 1)),
    "aae_label": ((1, 6, 6), dict(hidden=8, d_hidden=6, code_dim=2, prior="mixture10",
                                  label_prior=True), (0, 1)),
}


def make(key, seed=0, dtype=np.float32, device="cpu", **extra):
    shape, hyper, _ = TINY[key]
    cls = get_model(key.split("_")[0])
    return cls(shape, rng=seed, dtype=dtype, device=device, **{**hyper, **extra})


def real_batch(key, model, rng, m=6):
    shape, _, rng_range = TINY[key]
    n = m * model.batches_per_step()
    if rng_range is None:
        x = rng.normal(size=(n,) + shape).astype(np.float32)
    else:
        lo, hi = rng_range
        x = rng.uniform(lo, hi, size=(n,) + shape).astype(np.float32)
    y = rng.integers(0, 10, size=n) if model.conditional else None
    return x, y


def test_registry_and_errors():
    from scratchgan import cli
    assert {"gan", "dcgan", "cgan", "infogan", "wgan", "wgan-gp", "vae", "aae"} <= set(REGISTRY)
    assert tuple(REGISTRY) == cli.MODEL_NAMES, "cli.MODEL_NAMES and models.REGISTRY disagree"
    for name, cls in REGISTRY.items():
        assert issubclass(cls, GenerativeModel) and cls.name == name
        assert "batch_size" in cls.defaults
    with pytest.raises(ValueError, match="valid choices"):
        get_model("gann")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        get_model("gan")((2,), rng=0, learning_rate=0.1)
    with pytest.raises(ValueError, match="generator loss"):
        get_model("gan")((2,), rng=0, generator_loss="hinge")
    with pytest.raises(ValueError, match="28x28 or 64x64"):
        get_model("dcgan")((1, 32, 32), rng=0)
    with pytest.raises(ValueError, match="labels"):
        m = make("cgan")
        m.train_step(np.zeros((4, 1, 6, 6), np.float32))
    with pytest.raises(ValueError, match="shape"):
        make("vae").train_step(np.zeros((4, 1, 5, 5), np.float32))


@pytest.mark.parametrize("key", sorted(TINY))
def test_steps_finite_and_generate(key):
    model = make(key)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = real_batch(key, model, rng)
        logs = model.train_step(x, y)
        assert logs and all(np.isfinite(v) for v in logs.values()), logs
    assert model.step == 3
    noise = model.sample_noise(5, rng=np.random.default_rng(1))
    g = model.generate(noise)
    assert g.shape == (5,) + TINY[key][0] and g.dtype == np.float32
    assert np.all(np.isfinite(g))
    if model.data_range is not None:
        lo, hi = model.data_range
        assert g.min() >= lo and g.max() <= hi


def test_wgan_clipping_and_warmup():
    m = make("wgan_mlp", warmup=True)
    assert m.batches_per_step() == 100
    rng = np.random.default_rng(0)
    x, _ = real_batch("wgan_mlp", m, rng, m=4)
    logs = m.train_step(x)
    assert logs["critic_iters"] == 100 and logs["em_estimate"] == -logs["loss_d"]
    assert max(float(np.abs(p.data).max()) for p in m.D.parameters()) <= 0.01
    m.step = 30
    assert m.batches_per_step() == 5
    m.step = 500
    assert m.batches_per_step() == 100
    assert make("wgan_mlp").batches_per_step() == 5


def test_gan_k_and_schedule():
    m = make("gan", k=2)
    assert m.batches_per_step() == 2
    rng = np.random.default_rng(0)
    x, _ = real_batch("gan", m, rng)
    m.train_step([x[:6], x[6:]])
    with pytest.raises(ValueError, match="batches_per_step"):
        m.train_step(x[:5])
    lr, mom = m.schedule(0)
    assert (lr, mom) == (0.1, 0.5)
    lr, mom = m.schedule(62500)
    assert np.isclose(lr, 0.1 / 1.000004 ** 62500) and np.isclose(mom, 0.6)
    assert m.schedule(10**9) == (1e-6, 0.7)


def test_infogan_traversal_and_codes():
    m = make("infogan")
    noise = m.traversal_noise(cont_index=1, values=[-1, 0, 1], n_rows=4)
    assert noise["input"].shape == (12, m.code_dim)
    assert np.allclose(noise["cont"][:3, 1], [-1, 0, 1]) and np.all(noise["cont"][:, 0] == 0)
    assert list(noise["cat"][:6]) == [0, 0, 0, 1, 1, 1]
    noise = m.traversal_noise(cont_index=None, n_rows=2)
    assert list(noise["cat"][:10]) == list(range(10))
    logits, means = m.predict_codes(np.zeros((3, 1, 8, 8), np.float32))
    assert logits.shape == (3, 10) and means.shape == (3, 2)


def test_aae_label_prior_and_encode():
    m = make("aae_label")
    assert m.conditional
    noise = m.sample_noise(20, labels=np.full(20, 3))
    ang = np.arctan2(noise["z"][:, 1], noise["z"][:, 0])
    assert np.allclose(np.median(ang), 2 * np.pi * 3 / 10, atol=0.3)
    assert m.encode(np.zeros((4, 1, 6, 6), np.float32)).shape == (4, 2)
    with pytest.raises(ValueError, match="label_prior"):
        get_model("aae")((4,), rng=0, label_prior=True)
    assert make("vae").encode(np.zeros((4, 1, 6, 6), np.float32)).shape == (4, 3)


# -- maxout ----------------------------------------------------------------------------
def test_maxout_gradcheck():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 4))
    w = rng.normal(size=(3 * 4, 4))
    b = rng.normal(size=(12,))
    gradcheck(lambda x, w, b: maxout_forward(x, w, b, 4), maxout_backward, [x, w, b],
              names=["x", "w", "b"])
    layer = Maxout(4, 3, 2, rng=rng).astype(np.float64)
    gradcheck_module(layer, rng.normal(size=(6, 4)))


def test_maxout_values():
    x = np.array([[1.0, -2.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])  # unit 0: x0, x1; unit 1: -x0, -x1
    h, _ = maxout_forward(x, w, np.zeros(4), 2)
    assert np.array_equal(h, [[1.0, 2.0]])
    with pytest.raises(ValueError, match="Maxout"):
        Maxout(3, 2, 2).forward(np.zeros((2, 4), np.float32))


# -- determinism and checkpoints ---------------------------------------------------------
def params_of(model):
    return {f"{k}.{n}": p.data.copy() for k, net in model.networks().items()
            for n, p in net.named_parameters()}


def buffers_of(model):
    return {f"{k}.{n}": np.array(b) for k, net in model.networks().items()
            for n, b in net.named_buffers()}


def run_steps(model, key, data):
    out = []
    for x, y in data:
        out.append(model.train_step(x, y))
    return out


# the registry's dry-run configurations (dcgan, cgan, infogan, vae, ...) are checked in
# tests/models/test_contract.py; here the other architectures and variants
@pytest.mark.parametrize("key", ["gan", "gan_official", "wgan_mlp", "aae_label"])
def test_same_seed_same_run_and_bit_exact_resume(key):
    rng = np.random.default_rng(7)
    probe = make(key)
    data = [real_batch(key, probe, rng) for _ in range(4)]
    a, b = make(key, seed=11), make(key, seed=11)
    run_steps(a, key, data)
    run_steps(b, key, data)
    pa, pb = params_of(a), params_of(b)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    c = make(key, seed=12)
    assert not all(np.array_equal(pa[k], v) for k, v in params_of(c).items())

    # checkpoint after 2 steps, continue 2 steps; a fresh model loading it must match bit for bit
    m1 = make(key, seed=11)
    run_steps(m1, key, data[:2])
    sd = copy.deepcopy(m1.state_dict())
    logs1 = run_steps(m1, key, data[2:])
    m2 = make(key, seed=99)
    m2.load_state_dict(sd)
    assert m2.step == 2
    logs2 = run_steps(m2, key, data[2:])
    assert logs1 == logs2
    p1, p2 = params_of(m1), params_of(m2)
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)
    b1, b2 = buffers_of(m1), buffers_of(m2)
    assert all(np.array_equal(b1[k], b2[k]) for k in b1)
    s1, s2 = m1.state_dict(), m2.state_dict()
    for name in s1["optimizers"]:
        for k, v in s1["optimizers"][name].items():
            w = s2["optimizers"][name][k]
            if isinstance(v, list) and v and isinstance(v[0], np.ndarray):
                assert all(np.array_equal(i, j) for i, j in zip(v, w))
            else:
                assert v == w
    assert a.state_dict()["rng"] == b.state_dict()["rng"]


def test_load_state_dict_rejects_other_model():
    sd = make("vae").state_dict()
    with pytest.raises(ValueError, match="vae"):
        make("aae").load_state_dict(sd)


def test_float64_models():
    m = make("gan", dtype=np.float64)
    x, _ = real_batch("gan", m, np.random.default_rng(0))
    m.train_step(x.astype(np.float64))
    assert m.generate(m.sample_noise(2)).dtype == np.float64


@pytest.mark.gpu
@pytest.mark.parametrize("key", sorted(TINY))
def test_gpu_matches_cpu(key):
    """Same seed, same data: a float64 run on CuPy tracks the NumPy run (host-drawn noise)."""
    from scratchgan.backend import to_numpy
    rng = np.random.default_rng(5)
    cpu = make(key, seed=4, dtype=np.float64)
    gpu = make(key, seed=4, dtype=np.float64, device="cuda")
    data = [real_batch(key, cpu, rng) for _ in range(2)]
    for x, y in data:
        la = cpu.train_step(x, y)
        lb = gpu.train_step(x, y)
        for k in la:
            assert np.isclose(la[k], lb[k], rtol=1e-6, atol=1e-8), (k, la[k], lb[k])
    pa = params_of(cpu)
    pb = {k: to_numpy(v) for k, v in params_of(gpu).items()}
    for k in pa:
        np.testing.assert_allclose(pb[k], pa[k], rtol=1e-6, atol=1e-9, err_msg=k)
    g = gpu.generate(gpu.sample_noise(3, rng=np.random.default_rng(0)))
    assert g.shape == (3,) + TINY[key][0]
    np.testing.assert_allclose(to_numpy(g), cpu.generate(cpu.sample_noise(3, rng=np.random.default_rng(0))),
                               rtol=1e-6, atol=1e-9)


def test_vae_posterior_and_decoder():
    m = make("vae")
    x = np.random.default_rng(0).random((4, 1, 6, 6)).astype(np.float32)
    mu, logvar = m.posterior(x)
    assert mu.shape == logvar.shape == (4, 3)
    assert np.array_equal(mu, m.encode(x))
    logits = m.decode_logits(mu)
    assert logits.shape == (4, 36)
    assert np.allclose(1 / (1 + np.exp(-logits)), m.generate({"z": mu}).reshape(4, 36), atol=1e-6)


def test_dcgan_64_variant():
    m = get_model("dcgan")((3, 64, 64), rng=0, ngf=2, ndf=2, z_dim=4)
    assert m.arch == "64"
    convs = [l for l in m.G if type(l).__name__ == "ConvTranspose2d"]
    assert len(convs) == 5 and convs[0].weight.shape == (4, 16, 4, 4)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    logs = m.train_step(x)
    assert np.isfinite(logs["loss_d"]) and np.isfinite(logs["loss_g"])
    g = m.generate(m.sample_noise(2))
    assert g.shape == (2, 3, 64, 64) and g.min() >= -1 and g.max() <= 1


def test_gan_official_variant_pieces():
    """The official variant: per-epoch momentum (pylearn2 counting), G's output bias from
    the pixel marginals, one simultaneous update moving both networks, and clear errors."""
    m = make("gan_official", steps_per_epoch=10)
    assert m.schedule(0)[1] == 0.5 and m.schedule(9)[1] == 0.5           # epoch 1
    assert np.isclose(m.schedule(10)[1], 0.5 + 0.2 / 249)                # epoch 2
    assert m.schedule(10 * 249)[1] == 0.7 and m.schedule(10 * 400)[1] == 0.7
    x = np.random.default_rng(0).uniform(0, 1, (50, 1, 6, 6)).astype(np.float32)
    x[:, 0, 0, 0] = 0.0                                                  # a pixel never on
    m.init_from_data(x)
    bias = m.G[4].bias.data
    mean = np.clip(x.reshape(50, -1).astype(np.float64).mean(0), 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(bias, np.log(mean / (1 - mean)), rtol=1e-5)
    assert bias[0] < -15
    before = {k: v.copy() for k, v in params_of(m).items()}
    m.train_step(x[:6])
    after = params_of(m)
    assert any(not np.array_equal(before[k], after[k]) for k in before if k.startswith("G"))
    assert any(not np.array_equal(before[k], after[k]) for k in before if k.startswith("D"))
    plain = make("gan")
    plain.init_from_data(x)                                              # algorithm1: no-op
    assert not np.allclose(plain.G[4].bias.data, np.log(mean / (1 - mean)))
    with pytest.raises(ValueError, match="k=1"):
        make("gan_official", k=2)
    with pytest.raises(ValueError, match="variant must be"):
        make("gan", variant="offical")
    with pytest.raises(ValueError, match="noise must be"):
        make("gan", noise="normal")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        m.init_from_data(x * 2 - 1)


def test_trainer_initialises_from_data(tmp_path):
    """The trainer calls init_from_data before the first step (not when resuming)."""
    from scratchgan.train import Trainer
    m = make("gan_official")
    x = np.random.default_rng(1).uniform(0, 1, (40, 1, 6, 6)).astype(np.float32)
    Trainer(m, x, batch_size=10, steps=1, out_dir=tmp_path / "r", progress=False)
    mean = np.clip(x.reshape(40, -1).astype(np.float64).mean(0), 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(m.G[4].bias.data, np.log(mean / (1 - mean)), rtol=1e-5)
