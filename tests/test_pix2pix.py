"""pix2pix: gradients of G's and D's objectives (check_grads, float64), a PyTorch float64 twin
of one whole training step, test-time dropout, the ablation variants, CuPy vs NumPy (gpu)."""
import numpy as np
import pytest

from conftest import require_torch
from scratchgan import nn
from scratchgan.models.nets import PatchDiscriminator, patchgan_receptive_field
from scratchgan.models.pix2pix import Pix2Pix
from test_model_gradients import check_grads, make

SMALL = dict(ngf=2, ndf=2, d_layers=1)


def pairs(n, shape=(2, 8, 8), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n,) + shape)


@pytest.mark.parametrize("objective", ["l1+cgan", "l1", "cgan"])
@pytest.mark.parametrize("shape", [(2, 8, 8), (4, 6, 6)])
def test_gradients(objective, shape):
    m = make("pix2pix", shape, objective=objective, a_channels=1 if shape[0] == 4 else None,
             **SMALL)
    x = pairs(4, shape)
    a, b = m.split(x)
    check_grads(m, lambda: m.generator_grads(a, b)["loss_g"], [m.G])
    if objective != "l1":
        fake = pairs(4, (m.b_channels,) + shape[1:], seed=3)
        check_grads(m, lambda: m.discriminator_grads(a, b, fake)["loss_d"], [m.D])


def test_receptive_field_and_patch_grid():
    assert [patchgan_receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    d = PatchDiscriminator(2, 4, d_layers=1, rng=np.random.default_rng(0)).astype(np.float64)
    d.eval()          # running statistics: batch statistics would couple every position
    x = np.zeros((1, 1, 28, 28))
    with nn.no_grad():
        out = d(x, x)
    assert out.shape == (1, 1, 12, 12)
    # receptive field measured: perturb one input pixel, see which logits move
    with nn.no_grad():
        x2 = x.copy()
        x2[0, 0, 14, 14] = 1.0
        moved = np.argwhere(np.abs(d(x2, x) - out)[0, 0] > 0)
    # logit i sees input rows 2i-5 .. 2i+10 (16 px, jump 2): pixel 14 reaches i = 2..9
    assert sorted(set(moved[:, 0])) == list(range(2, 10))
    assert sorted(set(moved[:, 1])) == list(range(2, 10))


def test_defaults_are_the_papers():
    m = Pix2Pix((2, 28, 28), rng=0, ngf=4, ndf=4)
    assert m.hp["lambda_l1"] == 100.0 and m.hp["lr"] == 2e-4 and tuple(m.hp["betas"]) == (0.5, 0.999)
    assert m.opt_D.lr == 2e-4 and m.opt_G.betas[0] == 0.5
    drops = [d for d in m.G.modules() if isinstance(d, nn.Dropout)]
    assert len(drops) == 3 and all(d.p == 0.5 and d.active_in_eval for d in drops)
    with pytest.raises(ValueError, match="objective must be"):
        Pix2Pix((2, 8, 8), objective="gan")
    with pytest.raises(ValueError, match="square image pairs"):
        Pix2Pix((2, 8, 6))


def test_translate_uses_dropout_noise_and_restores_state():
    m = Pix2Pix((2, 8, 8), rng=0, ngf=4, ndf=4, dtype=np.float64)
    a = pairs(6)[:, :1]
    bufs = {k: v.copy() for k, v in m.G.state_dict().items()}
    s0 = m.random.state_dict()
    y1, y2 = m.translate(a), m.translate(a)
    assert np.array_equal(y1, y2)                       # same stream state, same masks
    assert m.random.state_dict() == s0
    assert all(np.array_equal(bufs[k], v) for k, v in m.G.state_dict().items())
    m.random.normal((7,))                               # move the stream: other masks
    assert not np.allclose(m.translate(a), y1)


def test_l1_variant_leaves_d_alone_and_step_returns_device_scalars():
    m = Pix2Pix((2, 8, 8), rng=0, ngf=2, ndf=2, objective="l1")
    before = {k: v.copy() for k, v in m.D.state_dict().items()}
    logs = m.train_step(pairs(4).astype(np.float32))
    assert set(logs) == {"loss_l1", "loss_g"} and all(np.ndim(v) == 0 for v in logs.values())
    assert all(np.array_equal(before[k], v) for k, v in m.D.state_dict().items())


def test_preview_grid_rows():
    m = Pix2Pix((2, 8, 8), rng=0, ngf=2, ndf=2)
    x = pairs(20).astype(np.float32)
    m.set_preview(x)
    out = m.generate(m.sample_noise(30))
    assert out.shape == (30, 1, 8, 8)
    np.testing.assert_array_equal(out[:10], x[:10, :1])
    np.testing.assert_array_equal(out[20:30], x[:10, 1:])


# ------------------------------------------------------------------ PyTorch float64 twin
def torch_forward(t, module, x, P):
    """Run a scratchgan module tree with torch ops on the parameters ``P`` (id -> tensor)."""
    F = t.nn.functional
    f = lambda m, v: torch_forward(t, m, v, P)
    w = lambda p: None if p is None else P[id(p)]
    if isinstance(module, nn.Sequential):
        for layer in module:
            x = f(layer, x)
        return x
    if isinstance(module, nn.Conv2d):
        return F.conv2d(x, w(module.weight), w(module.bias), module.stride, module.padding,
                        module.dilation)
    if isinstance(module, nn.ConvTranspose2d):
        return F.conv_transpose2d(x, w(module.weight), w(module.bias), module.stride,
                                  module.padding, module.output_padding, 1, module.dilation)
    if isinstance(module, nn.BatchNorm2d):
        return F.batch_norm(x, None, None, w(module.weight), w(module.bias), True, 0.0, module.eps)
    if isinstance(module, nn.InstanceNorm2d):
        return F.instance_norm(x, weight=w(module.weight), bias=w(module.bias), eps=module.eps)
    if isinstance(module, nn.LeakyReLU):
        return F.leaky_relu(x, module.negative_slope)
    if isinstance(module, nn.ReLU):
        return t.relu(x)
    if isinstance(module, nn.Tanh):
        return t.tanh(x)
    if isinstance(module, nn.ReflectionPad2d):
        top, bottom, left, right = module.padding
        return F.pad(x, (left, right, top, bottom), mode="reflect")
    if isinstance(module, nn.Crop2d):
        top, bottom, left, right = module.crop
        return x[:, :, top:x.shape[2] - bottom, left:x.shape[3] - right]
    if isinstance(module, nn.UNetSkip):
        return t.cat([x, f(module.inner, x)], 1)
    if isinstance(module, nn.Residual):
        return x + f(module.body, x)
    if isinstance(module, nn.Dropout):
        assert module.p == 0, "the twin runs without dropout"
        return x
    if isinstance(module, PatchDiscriminator):
        return f(module.body, t.cat(x, 1) if isinstance(x, tuple) else x)
    raise TypeError(f"no torch twin for {type(module).__name__}")


def torch_params(t, net):
    return {id(p): t.tensor(p.data.copy(), requires_grad=True) for p in net.parameters()}


def test_train_step_matches_torch_twin():
    t = require_torch()
    F = t.nn.functional
    m = make("pix2pix", (2, 8, 8), dropout=0.0, **SMALL)
    PG, PD = torch_params(t, m.G), torch_params(t, m.D)
    optG = t.optim.Adam(list(PG.values()), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    optD = t.optim.Adam(list(PD.values()), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    x = pairs(4)
    logs = m.train_step(x)
    A, B = t.tensor(x[:, :1]), t.tensor(x[:, 1:])
    fake = torch_forward(t, m.G, A, PG)
    bce = F.binary_cross_entropy_with_logits
    lf = torch_forward(t, m.D, (A, fake.detach()), PD)
    lr_ = torch_forward(t, m.D, (A, B), PD)
    loss_d = 0.5 * (bce(lf, t.zeros_like(lf)) + bce(lr_, t.ones_like(lr_)))
    optD.zero_grad()
    loss_d.backward()
    optD.step()
    lg = torch_forward(t, m.D, (A, fake), PD)
    loss_g = bce(lg, t.ones_like(lg)) + 100.0 * (fake - B).abs().mean()
    optG.zero_grad()
    loss_g.backward()
    optG.step()
    np.testing.assert_allclose(float(logs["loss_d"]), loss_d.item(), rtol=1e-10)
    np.testing.assert_allclose(float(logs["loss_g"]), loss_g.item(), rtol=1e-10)
    for net, P in ((m.G, PG), (m.D, PD)):
        for name, p in net.named_parameters():
            np.testing.assert_allclose(p.data, P[id(p)].detach().numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=name)


def test_cli_dry_run(tmp_path, capsys):
    from scratchgan import cli
    rc = cli.main(["train", "pix2pix", "--dry-run", "--no-progress", "--out", str(tmp_path),
                   "--set", "ngf=4", "--set", "ndf=4"])
    assert rc == 0
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "last.ckpt.npz").is_file()
    rc = cli.main(["translate", str(tmp_path), "--n", "12"])
    assert rc == 0 and (tmp_path / "translate.png").is_file()
    out = capsys.readouterr().out
    assert "inputs, outputs, targets; 12 images" in out
    np.save(tmp_path / "in.npy", np.random.default_rng(0).uniform(0, 1, (3, 28, 28)))
    rc = cli.main(["translate", str(tmp_path), "--input", str(tmp_path / "in.npy"),
                   "--out", str(tmp_path / "t.png"), "--save-npy", str(tmp_path / "o.npy")])
    assert rc == 0 and np.load(tmp_path / "o.npy").shape == (3, 1, 28, 28)
    with pytest.raises(SystemExit):
        np.save(tmp_path / "bad.npy", np.zeros((3, 5, 5)))
        cli.main(["translate", str(tmp_path), "--input", str(tmp_path / "bad.npy")])


# ------------------------------------------------------------------ GPU
@pytest.mark.gpu
@pytest.mark.parametrize("objective", ["l1+cgan", "cgan"])
def test_gpu_step_matches_cpu_float64(objective):
    import cupy as cp
    x = pairs(4, (2, 28, 28))
    cpu = Pix2Pix((2, 28, 28), rng=0, ngf=4, ndf=4, dtype=np.float64, objective=objective)
    gpu = Pix2Pix((2, 28, 28), rng=0, ngf=4, ndf=4, dtype=np.float64, objective=objective,
                  device="cuda")
    for _ in range(2):
        lc, lg = cpu.train_step(x), gpu.train_step(cp.asarray(x))
    for k in lc:
        assert isinstance(lg[k], cp.ndarray) and lg[k].ndim == 0
        np.testing.assert_allclose(float(lg[k]), float(lc[k]), rtol=1e-8)
    for (n, p), q in zip(cpu.G.named_parameters(), gpu.G.parameters()):
        np.testing.assert_allclose(cp.asnumpy(q.data), p.data, rtol=1e-7, atol=1e-10, err_msg=n)


@pytest.mark.gpu
def test_gpu_graph_replay_equals_eager():
    """The whole step (dropout draws included) is captured into a CUDA graph and its replays
    equal eager steps."""
    import cupy as cp
    from scratchgan.runtime import StepRunner
    build = lambda: Pix2Pix((2, 28, 28), rng=0, ngf=8, ndf=8, device="cuda")
    eager, graphed = build(), build()
    runner = StepRunner(graphed, mode="graph")
    g = np.random.default_rng(1)
    for _ in range(4):
        x = cp.asarray(g.uniform(-1, 1, (8, 2, 28, 28)).astype(np.float32))
        le, lg = eager.train_step(x), runner(x)
    assert runner.captures == 1 and runner.mode_used == "graph", runner.reason
    assert {k: float(v) for k, v in le.items()} == {k: float(v) for k, v in lg.items()}
    for (n, p), q in zip(eager.G.named_parameters(), graphed.G.parameters()):
        assert cp.array_equal(p.data, q.data), n
