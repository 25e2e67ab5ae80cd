"""BiGAN (scratchgan.models.bigan) and ALI (scratchgan.models.ali): gradients of every network
against central differences (float64), the reparametrised encoder sample, one whole BiGAN step
against a PyTorch float64 twin, the authors' networks and schedule, steps and checkpoints, the
CLI (train --dry-run, reconstruct, interpolate --between-real, latent), and CuPy against NumPy.
"""
import copy
import json
import math

import numpy as np
import pytest

from scratchgan import cli
from scratchgan.models import get_model
from scratchgan.models.ali import ALI
from scratchgan.models.bigan import BiGAN
from test_model_gradients import check_grads, make

# name -> (model, data shape, tiny hyperparameters)
CASES = {
    "bigan_mnist_mlp": ("bigan", (1, 4, 4), dict(arch="mnist_mlp", hidden=6, z_dim=3)),
    "bigan_toy": ("bigan", (2,), dict(toy_hidden=5, z_dim=3)),
    "ali_mixture": ("ali", (2,), dict(gen_hidden=5, disc_hidden=4, maxout_pieces=3, z_dim=3)),
    "ali_mlp": ("ali", (1, 4, 4), dict(arch="mlp", hidden=6, z_dim=3)),
    "ali_gan_baseline": ("ali", (2,), dict(gen_hidden=5, disc_hidden=4, maxout_pieces=3,
                                           z_dim=3, joint=False)),
}


def batch(shape, n=6, seed=0):
    g = np.random.default_rng(seed)
    return g.uniform(0, 1, (n,) + shape) if len(shape) == 3 else g.normal(size=(n,) + shape)


def inputs(m, shape, n=6):
    x = batch(shape, n)
    noise = m.sample_noise(n, rng=np.random.default_rng(1))
    eps = np.random.default_rng(2).standard_normal((n, m.hp["z_dim"])) if m.name == "ali" else None
    return x, noise, eps


# ------------------------------------------------------------------- gradients (float64)
@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_of_every_network(case):
    """∇_D L_D, and ∇_{G,E} L_GE through D held fixed (through the reparametrised sample for
    ALI), against central differences of the losses the methods return."""
    name, shape, hyper = CASES[case]
    m = make(name, shape, **hyper)
    x, noise, eps = inputs(m, shape)
    check_grads(m, lambda: m.discriminator_grads(x, noise, eps)["loss_d"], [m.D])
    ge = [m.G] + ([m.E] if m.networks().get("E") is not None else [])
    check_grads(m, lambda: m.generator_encoder_grads(x, noise, eps)["loss_ge"], ge)
    if "E" in m.networks():    # the encoder on its own: its only path is the data pair's z input
        check_grads(m, lambda: m.generator_encoder_grads(x, noise, eps)["loss_ge"], [m.E])


@pytest.mark.parametrize("case", sorted(CASES))
def test_simultaneous_gradients_equal_the_two_separate_ones(case):
    """joint_grads (one forward of E and G feeding both objectives) fills exactly what
    discriminator_grads and generator_encoder_grads fill at the same point."""
    name, shape, hyper = CASES[case]
    m = make(name, shape, **hyper)
    x, noise, eps = inputs(m, shape)
    nets = m.networks()
    m.zero_grad()
    a = m.discriminator_grads(x, noise, eps)
    b = m.generator_encoder_grads(x, noise, eps)
    sep = {k: [p.grad.copy() for p in net.parameters()] for k, net in nets.items()}
    m.zero_grad()
    c = m.joint_grads(x, noise, eps)
    for k, net in nets.items():
        for p, g in zip(net.parameters(), sep[k]):
            np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-14, err_msg=k)
    assert np.isclose(float(c["loss_d"]), float(a["loss_d"]), rtol=1e-13)
    assert np.isclose(float(c["loss_ge"]), float(b["loss_ge"]), rtol=1e-13)


def test_reparametrised_sample_gradient():
    """ẑ = μ + exp(log σ) ε: encoder_backward sends dμ = g and d log σ = g σ ε (checked
    against central differences of <g, ẑ> in the encoder's raw outputs)."""
    m = make("ali", (2,), gen_hidden=5, disc_hidden=4, maxout_pieces=3, z_dim=3)
    x = batch((2,), 5)
    eps = np.random.default_rng(2).standard_normal((5, 3))
    g = np.random.default_rng(3).standard_normal((5, 3))

    def inner():
        out = (g * m.encoder_forward(m.to_model(x), eps)).sum()
        m.encoder_backward(g)
        return out

    check_grads(m, inner, [m.E])
    # and by hand at the output: perturb μ and log σ of one entry
    h = m._eval_forward(m.E, m.to_model(x))
    mu, ls = h[:, :3], h[:, 3:]
    z = mu + np.exp(ls) * eps
    d = 1e-6
    num_ls = ((mu + np.exp(ls + d) * eps) - (mu + np.exp(ls - d) * eps)) / (2 * d)
    np.testing.assert_allclose(num_ls, np.exp(ls) * eps, rtol=1e-7, atol=1e-10)
    assert z.shape == (5, 3)


def test_check_catches_a_wrong_encoder_gradient():
    """The check fails when the sample's gradient forgets the factor ε."""
    m = make("ali", (2,), gen_hidden=5, disc_hidden=4, maxout_pieces=3, z_dim=3)
    x, noise, eps = inputs(m, (2,))
    right = ALI.encoder_backward

    def wrong(self, dz):
        _, sigma = self._sample_cache
        self._sample_cache = None
        self.E.backward(self.xp.concatenate([dz, dz * sigma], axis=1), input_grad=False)

    m.encoder_backward = wrong.__get__(m)
    with pytest.raises(AssertionError):
        check_grads(m, lambda: m.generator_encoder_grads(x, noise, eps)["loss_ge"], [m.E])
    m.encoder_backward = right.__get__(m)


# ------------------------------------------------------------- the authors' networks
def test_bigan_authors_networks_and_initial_losses():
    m = BiGAN((1, 28, 28), rng=0, dtype=np.float64)
    assert m.arch == "mnist_mlp" and m.hp["z_dim"] == 50
    assert [tuple(p.shape) for p in m.E.parameters()] == [(1024, 784), (1024, 1024), (50, 1024)]
    assert [tuple(p.shape) for p in m.D.parameters()] == [(1024, 784), (1024, 1024), (1024, 50),
                                                          (1, 1024)]
    assert [tuple(p.shape) for p in m.G.parameters()] == [(1024, 50), (1024, 1024), (1024, 50),
                                                          (784, 1024)]
    assert not m.D.trunk[-1].weight.data.any()                       # zero-initialised logit
    w = m.E[1].weight.data
    assert abs(w.std() - 0.02) < 0.001 and abs(w.mean()) < 0.001
    assert m.opt_D.betas == (0.5, 0.999) and m.opt_E.weight_decay == 2.5e-5
    assert m.opt_G.lr == 2e-4 and m.defaults["batch_size"] == 128
    x = np.random.default_rng(0).uniform(0, 1, (8, 1, 28, 28))
    logs = m.joint_grads(x, m.sample_noise(8, rng=np.random.default_rng(1)))
    # D's last layer is 0, so every logit is 0: both objectives read ln 2 (the authors' log)
    assert float(logs["loss_d"]) == pytest.approx(math.log(2), abs=1e-15)
    assert float(logs["loss_ge"]) == pytest.approx(math.log(2), abs=1e-15)
    z = m.encode(x)
    assert z.shape == (8, 50) and np.abs(z).max() < 1
    f = m.features(x)
    assert f["penultimate"].shape == (8, 1024)
    # 2 sigmoid(a) - 1 subtracts from 1, so both sides carry an absolute rounding error of a
    # few ulps of 1 (2.2e-16 each): near z = 0 (|z| ~ 1e-5 here) that is ~1e-11 relative,
    # whatever the summation order of the BLAS. Hence an absolute bound of 8 ulps beside rtol.
    np.testing.assert_allclose(2 / (1 + np.exp(-f["output"])) - 1, z, rtol=1e-12,
                               atol=8 * np.finfo(np.float64).eps)
    assert m.reconstruct(x).shape == (8, 1, 28, 28)


def test_bigan_schedule_exponential_and_linear():
    m = BiGAN((2,), rng=0, arch="toy", lr_decay="exponential", lr=2e-4, steps_per_epoch=10,
              constant_epochs=200, decay_epochs=200)
    assert m.schedule(0) == 2e-4 and m.schedule(1999) == 2e-4
    assert m.schedule(2000) == pytest.approx(2e-4 * 0.01 ** (1 / 200))   # first decay epoch
    assert m.schedule(2000 + 99 * 10) == pytest.approx(2e-4 * 0.01 ** 0.5)
    assert m.schedule(10 ** 6) == pytest.approx(2e-6)
    lin = BiGAN((2,), rng=0, arch="toy", lr_decay="linear", lr=2e-4, steps_per_epoch=10)
    assert lin.hp["final_lr_mult"] == 0.0
    assert lin.schedule(2000) == 2e-4 and lin.schedule(3000) == pytest.approx(1e-4)
    lin.step = 3000
    lin.apply_schedule()
    assert lin.opt_E.lr == pytest.approx(1e-4) and lin.opt_D.lr == lin.opt_G.lr == lin.opt_E.lr
    assert BiGAN((1, 28, 28), rng=0).hp["lr_decay"] == "exponential"
    with pytest.raises(ValueError, match="lr_decay"):
        BiGAN((2,), rng=0, lr_decay="cosine")
    with pytest.raises(ValueError, match="updates"):
        BiGAN((2,), rng=0, updates="both")


def test_ali_settings_and_prior():
    m = ALI((2,), rng=0)
    assert m.arch == "mixture" and m.hp["z_dim"] == 2 and m.opt_D.betas == (0.8, 0.999)
    assert m.opt_G.lr == 1e-4 and m.defaults["batch_size"] == 100
    assert sum(type(l).__name__ == "Maxout" for l in m.D.trunk) == 3
    assert [type(l).__name__ for l in m.G].count("BatchNorm1d") == 4
    assert m.E[-1].weight.shape == (4, 400)                    # [μ, log σ] of a 2-d code
    z = m.sample_noise(20000, rng=np.random.default_rng(0))["z"]
    assert abs(z.std() - 1) < 0.02 and abs(z.mean()) < 0.02
    x = batch((2,), 4).astype(np.float32)
    mu, ls = m.posterior(x)
    assert np.array_equal(m.encode(x), mu)
    s = m.encode_sample(x, rng=np.random.default_rng(0))
    np.testing.assert_allclose(s, mu + np.exp(ls) * np.random.default_rng(0).standard_normal(
        (4, 2)), rtol=1e-5)
    b = ALI((2,), rng=0, joint=False)
    assert set(b.networks()) == {"G", "D"} and set(b.optimizers()) == {"G", "D"}
    assert b.D[1].weight.shape[1] == 2                           # D sees x only
    with pytest.raises(ValueError, match="GAN baseline"):
        b.encode(x)


# ---------------------------------------------------------------- steps and checkpoints
@pytest.mark.parametrize("case", ["bigan_mnist_mlp", "bigan_toy", "ali_mixture",
                                  "ali_gan_baseline"])
@pytest.mark.parametrize("updates", ["simultaneous", "alternating"])
def test_steps_and_bit_exact_resume(case, updates):
    name, shape, hyper = CASES[case]

    def build(seed):
        return get_model(name)(shape, rng=seed, updates=updates, **hyper)

    data = [batch(shape, 8, seed=s).astype(np.float32) for s in range(4)]
    a = build(5)
    for x in data[:2]:
        logs = a.train_step(x)
    for k, v in logs.items():
        assert not isinstance(v, float) and np.ndim(v) == 0 and np.isfinite(v), k
    sd = copy.deepcopy(a.state_dict())
    la = [a.train_step(x) for x in data[2:]]
    b = build(99)
    b.load_state_dict(sd)
    lb = [b.train_step(x) for x in data[2:]]
    assert la == lb
    for k, net in a.networks().items():
        for (n, p), q in zip(net.named_parameters(), b.networks()[k].parameters()):
            assert np.array_equal(p.data, q.data), (k, n)
        for (n, u), (_, v) in zip(net.named_buffers(), b.networks()[k].named_buffers()):
            assert np.array_equal(u, v), (k, n)
    g = a.generate(a.sample_noise(3, rng=np.random.default_rng(0)))
    assert g.shape == (3,) + shape and np.all(np.isfinite(g))


def test_every_network_moves_in_one_step():
    m = ALI((2,), rng=0, gen_hidden=8, disc_hidden=6, maxout_pieces=2)
    before = {k: [p.data.copy() for p in n.parameters()] for k, n in m.networks().items()}
    m.train_step(batch((2,), 16).astype(np.float32))
    for k, net in m.networks().items():
        assert all(not np.array_equal(a, p.data) for a, p in zip(before[k], net.parameters())), k


# --------------------------------------------------------- PyTorch float64 twin of a step
def test_bigan_step_matches_pytorch_twin():
    """One whole simultaneous BiGAN step (authors' networks at small widths, BatchNorm, L2
    weight decay, Adam): both losses, the gradients of D, G and E, the parameters after the
    step and the BatchNorm running statistics equal a torch.autograd + torch.optim twin to
    1e-10 relative per tensor."""
    from conftest import require_torch
    torch = require_torch()
    F = torch.nn.functional
    m = BiGAN((1, 6, 6), rng=3, dtype=np.float64, arch="mnist_mlp", hidden=12, z_dim=4)
    g = np.random.default_rng(17)
    for net in m.networks().values():                 # a non-zero D head, away from kinks
        for p in net.parameters():
            p.data[...] = 0.3 * g.standard_normal(p.shape)
    x = np.random.default_rng(0).uniform(0, 1, (16, 1, 6, 6))
    noise = m.sample_noise(16, rng=np.random.default_rng(1))
    T = {k: {n: torch.tensor(p.data.copy(), requires_grad=True) for n, p in net.named_parameters()}
         for k, net in m.networks().items()}
    bufs = {k: {n: torch.tensor(np.array(b)) for n, b in net.named_buffers()}
            for k, net in m.networks().items()}

    def bn(h, k, name):
        return F.batch_norm(h, bufs[k][f"{name}.running_mean"], bufs[k][f"{name}.running_var"],
                            training=True, momentum=0.1, eps=1e-5)

    lrelu = lambda h: F.leaky_relu(h, 0.2)                               # noqa: E731
    e, gg, d = T["E"], T["G"], T["D"]

    def E(xx):
        h = lrelu(F.linear(xx.reshape(len(xx), -1), e["1.weight"]))
        h = lrelu(bn(F.linear(h, e["3.weight"]), "E", "4"))
        return 2 * torch.sigmoid(F.linear(h, e["6.weight"])) - 1

    def G(z):
        a = F.linear(torch.relu(bn(F.linear(z, gg["net.x_branch.0.weight"]), "G",
                                   "net.x_branch.1")), gg["net.x_branch.3.weight"])
        h = torch.relu(bn(a + F.linear(z, gg["net.z_branch.0.weight"]), "G", "net.trunk.0"))
        return torch.sigmoid(F.linear(h, gg["net.trunk.2.weight"])).reshape(-1, 1, 6, 6)

    def D(xx, z):
        a = F.linear(lrelu(F.linear(xx.reshape(len(xx), -1), d["x_branch.1.weight"])),
                     d["x_branch.3.weight"])
        h = lrelu(bn(a + F.linear(z, d["z_branch.0.weight"]), "D", "trunk.0"))
        return F.linear(h, d["trunk.2.weight"])

    bce = F.binary_cross_entropy_with_logits
    xt, zt = torch.tensor(x), torch.tensor(noise["z"])
    zq, xg = E(xt), G(zt)
    lq, lp = D(xt, zq.detach()), D(xg.detach(), zt)                      # D's objective
    loss_d = 0.5 * (bce(lq, torch.ones_like(lq)) + bce(lp, torch.zeros_like(lp)))
    gd = torch.autograd.grad(loss_d, list(d.values()))
    lq, lp = D(xt, zq), D(xg, zt)                                         # G's and E's
    loss_ge = 0.5 * (bce(lq, torch.zeros_like(lq)) + bce(lp, torch.ones_like(lp)))
    gge = torch.autograd.grad(loss_ge, list(gg.values()) + list(e.values()))

    m.zero_grad()
    logs = m.joint_grads(x, noise)
    assert float(logs["loss_d"]) == pytest.approx(loss_d.item(), rel=1e-12)
    assert float(logs["loss_ge"]) == pytest.approx(loss_ge.item(), rel=1e-12)
    ours = [p.grad for p in m.D.parameters()] + [p.grad for p in m.G.parameters()] + \
        [p.grad for p in m.E.parameters()]
    for a, b in zip(ours, list(gd) + list(gge)):
        b = b.numpy()
        assert np.abs(b).max() > 0
        assert np.linalg.norm(a - b) <= 1e-10 * np.linalg.norm(b)
    # the Adam steps (L2 weight decay added to the gradient, as torch's weight_decay)
    opt = torch.optim.Adam([{"params": list(v.values())} for v in T.values()], lr=2e-4,
                           betas=(0.5, 0.999), eps=1e-8, weight_decay=2.5e-5)
    for (k, v), grads in zip(T.items(), [gge[len(gg):], gge[:len(gg)], gd]):
        for t, gr in zip(v.values(), grads):
            t.grad = gr.clone()
    opt.step()
    m.opt_D.step(), m.opt_G.step(), m.opt_E.step()
    for k, net in m.networks().items():
        for n, p in net.named_parameters():
            b = T[k][n].detach().numpy()
            assert np.linalg.norm(p.data - b) <= 1e-10 * np.linalg.norm(b), (k, n)
    # G and E ran once in train mode; D ran four times (two pairs, two objectives) here
    # and in the twin, so the running statistics must agree as well
    for k, net in m.networks().items():
        for n, buf in net.named_buffers():
            np.testing.assert_allclose(np.array(buf), bufs[k][n].numpy(), rtol=1e-10,
                                       err_msg=f"{k}.{n}")


# ------------------------------------------------------------------------------ the CLI
def run_cli(argv, capsys):
    try:
        rc = cli.main(argv)
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def no_env_data(monkeypatch, tmp_path):
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("model", ["bigan", "ali"])
def test_dry_run_trains_on_cpu(model, tmp_path, capsys, no_env_data):
    """`scratchgan train bigan|ali --dry-run` (BiGAN: MNIST stand-in images and the authors'
    networks; ALI: its default data set, the 25 Gaussians)."""
    rc, o, e = run_cli(["train", model, "--dry-run", "--no-progress", "--out",
                        str(tmp_path)], capsys)
    assert rc == 0, e
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == cli.DRY_RUN["steps"] and "loss_ge" in rows[-1]
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "last.ckpt.npz").is_file()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["dataset"] == ("mnist" if model == "bigan" else "grid25")


@pytest.mark.parametrize("model", ["bigan", "vae", "aae"])
def test_reconstruct_and_interpolate_between_real(model, tmp_path, capsys, no_env_data):
    """reconstruct (originals above reconstructions) and interpolate --between-real work for
    every model with encode(x), on a dry run's stand-in images."""
    hyper = {"bigan": ["--set", "hidden=16"], "vae": [], "aae": ["--set", "hidden=16"]}[model]
    run = tmp_path / "run"
    rc, o, e = run_cli(["train", model, "--dry-run", "--no-progress", "--out", str(run)]
                       + hyper, capsys)
    assert rc == 0, e
    from PIL import Image
    rc, o, e = run_cli(["reconstruct", str(run), "--n", "12", "--nrow", "6"], capsys)
    assert rc == 0, e
    png = run / "reconstructions.png"
    assert png.is_file() and "originals" in o
    h, w = Image.open(png).size[::-1]
    assert h > w / 6 * 3                       # 4 rows of 6: two (original, reconstruction) pairs
    out = tmp_path / "interp.png"
    rc, o, e = run_cli(["interpolate", str(run), "--between-real", "--rows", "2", "--frames", "4",
                        "--out", str(out)], capsys)
    assert rc == 0, e
    assert out.is_file()
    w, h = Image.open(out).size
    assert w / h == pytest.approx(6 / 2, rel=0.1)    # 2 real + 4 decoded images per strip
    rc, o, e = run_cli(["interpolate", str(run), "--between-real", "--arithmetic", "1", "2", "3"],
                       capsys)
    assert rc == 2 and "give one" in e


def test_reconstruct_codes_are_what_generate_takes(tmp_path, capsys, no_env_data):
    """The CLI's x -> E -> G equals the model's own G(E(x)) (BiGAN, on the toy set: the
    reconstruction picture is a scatter there); ALI's latent scatter works."""
    from scratchgan.cli.tools import encode_decode
    from scratchgan.runs import load_model
    run = tmp_path / "run"
    rc, o, e = run_cli(["train", "bigan", "--dry-run", "--no-progress", "--dataset", "grid25",
                        "--out", str(run)], capsys)
    assert rc == 0, e
    model, _ = load_model(run / "last.ckpt.npz")
    x = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32)
    z, xr = encode_decode(model, x)
    np.testing.assert_array_equal(z, model.encode(x))
    np.testing.assert_allclose(xr, model.reconstruct(x), rtol=1e-6)
    rc, o, e = run_cli(["reconstruct", str(run), "--n", "30"], capsys)
    assert rc == 0 and (run / "reconstructions.png").is_file(), e
    ali = tmp_path / "ali"
    rc, o, e = run_cli(["train", "ali", "--dry-run", "--no-progress", "--out", str(ali)], capsys)
    assert rc == 0, e
    rc, o, e = run_cli(["latent", str(ali), "--n", "300"], capsys)
    assert rc == 0 and (ali / "latent_scatter.png").is_file(), e


def test_reconstruct_needs_an_encoder(tmp_path, capsys, no_env_data):
    run = tmp_path / "run"
    rc, o, e = run_cli(["train", "gan", "--dry-run", "--no-progress", "--out", str(run)], capsys)
    assert rc == 0, e
    rc, o, e = run_cli(["reconstruct", str(run)], capsys)
    assert rc == 2 and "encoder" in e and "'gan'" in e
    ali = tmp_path / "ali"
    rc, o, e = run_cli(["train", "ali", "--dry-run", "--no-progress", "--set", "joint=false",
                        "--set", "gen_hidden=8", "--out", str(ali)], capsys)
    assert rc == 0, e
    rc, o, e = run_cli(["reconstruct", str(ali)], capsys)
    assert rc == 2 and "encoder" in e


# ------------------------------------------------------------------------------------ GPU
@pytest.mark.gpu
@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_gradients_match_numpy(case):
    """joint_grads on CuPy equals NumPy in float64 (every network's gradient, both losses)."""
    import cupy as cp
    name, shape, hyper = CASES[case]
    m = make(name, shape, **hyper)
    x, noise, eps = inputs(m, shape, n=8)
    m.zero_grad()
    ref_logs = m.joint_grads(x, noise, eps)
    ref = {k: [p.grad.copy() for p in net.parameters()] for k, net in m.networks().items()}
    for net in m.networks().values():
        net.to("cuda")
        net.zero_grad()
    m.device = "cuda"
    logs = m.joint_grads(cp.asarray(x), {"z": cp.asarray(noise["z"])},
                         None if eps is None else cp.asarray(eps))
    for k in ("loss_d", "loss_ge"):
        assert isinstance(logs[k], cp.ndarray) and logs[k].ndim == 0
        assert float(logs[k]) == pytest.approx(float(ref_logs[k]), rel=1e-10)
    for k, net in m.networks().items():
        for p, r in zip(net.parameters(), ref[k]):
            np.testing.assert_allclose(cp.asnumpy(p.grad), r, rtol=1e-8, atol=1e-11, err_msg=k)


@pytest.mark.gpu
@pytest.mark.parametrize("name,shape,hyper", [("bigan", (1, 28, 28), dict(hidden=32)),
                                              ("ali", (2,), dict(gen_hidden=32)),
                                              ("ali", (2,), dict(gen_hidden=32, joint=False))])
def test_gpu_graph_replay_equals_eager(name, shape, hyper):
    """A whole step is captured into one CUDA graph (no host reads) and its replays equal
    eager steps bit for bit."""
    import cupy as cp
    import scratchgan as sg
    from scratchgan.runtime import StepRunner

    def build():
        sg.manual_seed(0)
        return get_model(name)(shape, device="cuda", **hyper)

    eager, graphed = build(), build()
    runner = StepRunner(graphed, mode="graph")
    g = np.random.default_rng(1)
    for _ in range(5):
        x = cp.asarray(batch(shape, 16, seed=int(g.integers(1000))).astype(np.float32))
        le, lg = eager.train_step(x), runner(x)
    assert runner.captures == 1 and runner.mode_used == "graph", runner.reason
    assert {k: float(v) for k, v in le.items()} == {k: float(v) for k, v in lg.items()}
    for k, net in eager.networks().items():
        for (n, p), q in zip(net.named_parameters(), graphed.networks()[k].parameters()):
            assert cp.array_equal(p.data, q.data), (k, n)


# ------------------------------------------------------------------------------ toy data
def test_bigan_learns_the_ring_and_inverts_it():
    """A short toy run (2,000 steps, seeded): G covers the 8 modes of ring8 and G(E(x)) lands
    in the mode of x for most points (an encoder that ignores x would give 1/8)."""
    from scratchgan.data.toy import sample_toy
    m = BiGAN((2,), rng=0)
    x = sample_toy("ring8", 20000, np.random.default_rng(0))
    g = np.random.default_rng(1)
    for _ in range(2000):
        m.train_step(x[g.integers(0, 20000, 128)])
    centres = toy_modes_of("ring8")
    s = m.generate(m.sample_noise(5000, rng=np.random.default_rng(0)))
    near = lambda a: ((a[:, None] - centres[None]) ** 2).sum(-1).argmin(1)   # noqa: E731
    assert len(np.unique(near(s))) == 8
    xt = x[:2000]
    assert (near(xt) == near(m.reconstruct(xt))).mean() > 0.75


def toy_modes_of(name):
    from scratchgan.data.toy import toy_modes
    return toy_modes(name)
