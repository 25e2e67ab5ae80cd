"""VAE-GAN (scratchgan/models/vaegan.py): gradients of every network checked in float64, no GAN
gradient into the encoder, the GAN cost's sign, the equilibrium rule on the device, a PyTorch
float64 twin of one whole step, CuPy against NumPy, and the CLI dry run."""
import copy

import numpy as np
import pytest

from conftest import require_torch
from scratchgan.models import get_model
from test_model_gradients import check_grads, make

TINY = dict(enc_hidden=6, dec_hidden=7, d_hidden=5, latent_dim=3)
SHAPE = (1, 4, 4)

# (variant, extra hyperparameters): both variants, both Dis_l depths, both GAN terms
CASES = [
    ("mnist-mlp", {}),
    ("mnist-mlp", dict(dis_layer=2, generator_loss="nonsaturating")),
    ("cond-mnist", {}),
    ("cond-mnist", dict(recon="dis_l")),
]


def _inputs(m, n=5, seed=0):
    g = np.random.default_rng(seed)
    x = g.uniform(0, 1, size=(n,) + SHAPE)
    y1h = m.one_hot(np.arange(n) % 10) if m.conditional else None
    eps = g.standard_normal((n, m.hp["latent_dim"]))
    z_p = g.standard_normal((n, m.hp["latent_dim"]))
    return x, y1h, eps, z_p


def _grads(m):
    return {k: {n: p.grad.copy() for n, p in net.named_parameters()}
            for k, net in m.networks().items()}


@pytest.mark.parametrize("variant,extra", CASES)
def test_gradients_of_every_network(variant, extra):
    """Enc against L_enc = kl_weight KL + L_llike, Dec against gamma L_llike + GAN term, D
    against C_D: each through the model's own backward chain, central differences in float64.
    The encoder's check also fails if any GAN gradient reached it (L_enc has no GAN term)."""
    m = make("vaegan", SHAPE, variant=variant, **TINY, **extra)
    x, y1h, eps, z_p = _inputs(m)
    check_grads(m, lambda: m.step_grads(x, eps, z_p, y1h)["loss_enc"], [m.encoder])
    check_grads(m, lambda: m.step_grads(x, eps, z_p, y1h)["loss_dec"], [m.decoder])
    check_grads(m, lambda: m.step_grads(x, eps, z_p, y1h)["loss_d"], [m.D])


def test_no_gan_gradient_reaches_the_encoder():
    """The GAN cost depends on the encoder (through z -> x~ -> D), yet the encoder's gradient is
    unchanged when D's output layer (which enters only the GAN cost; Dis_l is D's first hidden
    layer) is changed, while the decoder's gradient does change."""
    m = make("vaegan", SHAPE, **TINY)
    x, y1h, eps, z_p = _inputs(m)
    state = m.random.state_dict()

    def run():
        m.random.load_state_dict(state)
        return m.step_grads(x, eps, z_p, y1h)

    # the GAN cost moves with the encoder's parameters: a finite difference along a direction
    w = m.encoder.blocks[3][0].weight.data
    d = np.random.default_rng(5).standard_normal(w.shape)
    h = 1e-5
    w += h * d
    up = float(run()["fake_cost"])
    w -= 2 * h * d
    down = float(run()["fake_cost"])
    w += h * d
    assert abs(up - down) / (2 * h) > 1e-4, "test setup: the GAN cost should depend on Enc"

    run()
    g0 = _grads(m)
    head = m.D.blocks[4][0]
    head.weight.data[...] *= -3.0
    head.bias.data[...] += 0.7
    run()
    g1 = _grads(m)
    for n in g0["encoder"]:
        assert np.array_equal(g0["encoder"][n], g1["encoder"][n]), f"encoder {n} saw the GAN"
    assert any(not np.allclose(g0["decoder"][n], g1["decoder"][n]) for n in g0["decoder"]), \
        "the decoder's GAN gradient should change with D's output layer"


def test_signs_d_lowers_its_cost_decoder_raises_it():
    """The sign trap: after a small D update C_D (the same draws, the same batch) is lower;
    after a small decoder update with gamma = 0 (GAN term only) D's fake cost is higher."""
    m = get_model("vaegan")(SHAPE, rng=1, dtype=np.float64, gamma=0.0, **TINY)
    x, y1h, eps, z_p = _inputs(m, n=8)
    state = m.random.state_dict()

    def run():
        m.random.load_state_dict(state)
        return m.step_grads(x, eps, z_p, y1h)

    before = run()
    m.opt_D.step()
    after = run()
    assert float(after["loss_d"]) < float(before["loss_d"])
    before = after
    m.opt_dec.step()
    after = run()
    assert float(after["fake_cost"]) > float(before["fake_cost"])
    assert np.isclose(float(after["loss_dec"]), -2 * float(after["fake_cost"]))


@pytest.mark.parametrize("real,fake,want", [
    (0.68, 0.68, (True, True)),      # inside the band: both update
    (0.20, 0.68, (False, True)),     # D winning on real: skip D
    (0.68, 0.30, (False, True)),     # D winning on fakes: skip D
    (1.20, 0.68, (True, False)),     # D losing: skip the decoder
    (0.20, 1.20, (True, True)),      # both rules fire: update both
])
def test_equilibrium_flags(real, fake, want):
    m = get_model("vaegan")(SHAPE, rng=0, equilibrium=True, **TINY)     # margin 0.35
    d, g = m.equilibrium_flags(np.float32(real), np.float32(fake))
    assert (bool(d), bool(g)) == want


def test_gated_step_skips_exactly_and_updates_exactly():
    """A False flag leaves parameters and RMSProp state bit-identical; a True flag equals
    an ungated step."""
    def fresh():
        m = get_model("vaegan")(SHAPE, rng=0, equilibrium=True, **TINY)
        x, y1h, eps, z_p = _inputs(m)
        for _ in range(2):                        # non-zero optimizer state
            m.train_step(x.astype(np.float32))
        m.step_grads(m.to_model(x), m.to_model(eps), m.to_model(z_p), y1h)
        return m

    def snap(m):
        return (copy.deepcopy(m.D.state_dict()), copy.deepcopy(m.opt_D.state_dict()))

    a = fresh()
    before = snap(a)
    a._gated_step(a.opt_D, np.bool_(False))
    after = snap(a)
    for k in before[0]:
        assert np.array_equal(before[0][k], after[0][k]), k
    for v0, v1 in zip(before[1]["square_avg"], after[1]["square_avg"]):
        assert np.array_equal(v0, v1)
    b, c = fresh(), fresh()
    b._gated_step(b.opt_D, np.bool_(True))
    c.opt_D.step()
    sb, sc = snap(b), snap(c)
    for k in sb[0]:
        assert np.array_equal(sb[0][k], sc[0][k]), k
    assert not np.array_equal(sb[0]["blocks.0.0.weight"], before[0]["blocks.0.0.weight"])


def test_steps_resume_and_shapes():
    for variant in ("mnist-mlp", "cond-mnist"):
        def new(seed=3):
            return get_model("vaegan")(SHAPE, rng=seed, variant=variant, **TINY)
        g = np.random.default_rng(0)
        data = [(g.uniform(0, 1, (6,) + SHAPE).astype(np.float32), g.integers(0, 10, 6))
                for _ in range(4)]
        m1 = new()
        for x, y in data[:2]:
            m1.train_step(x, y)
        sd = copy.deepcopy(m1.state_dict())
        logs = [m1.train_step(x, y) for x, y in data[2:]]
        assert all(np.isfinite(float(v)) for v in logs[-1].values())
        m2 = new(seed=99)
        m2.load_state_dict(sd)
        for x, y in data[2:]:
            m2.train_step(x, y)
        for k, net in m1.networks().items():
            for n, p in net.named_parameters():
                q = dict(m2.networks()[k].named_parameters())[n]
                assert np.array_equal(p.data, q.data), (variant, k, n)
        labels = np.arange(4) if m1.conditional else None
        s = m1.generate(m1.sample_noise(4, rng=np.random.default_rng(1), labels=labels))
        assert s.shape == (4,) + SHAPE and 0 <= s.min() and s.max() <= 1
        assert m1.encode(data[0][0][:4], labels).shape == (4, TINY["latent_dim"])
        assert m1.reconstruct(data[0][0][:4], labels).shape == (4,) + SHAPE
    with pytest.raises(ValueError, match="conditional"):
        new().encode(data[0][0][:4])
    with pytest.raises(ValueError, match="variant"):
        get_model("vaegan")(SHAPE, rng=0, variant="cond")
    with pytest.raises(ValueError, match="recon"):
        get_model("vaegan")(SHAPE, rng=0, recon="pixels")


def test_schedule():
    m = get_model("vaegan")(SHAPE, rng=0, **TINY)
    assert m.lr_factor(0) == 1.0 and m.lr_factor(18749) == 1.0
    assert np.isclose(m.lr_factor(18750), 2 / 3) and np.isclose(m.lr_factor(26250), 1 / 15)
    m.step = 25000
    m.apply_schedule()
    assert np.isclose(m.opt_D.lr, 0.075 / 256 * 2 / 15)
    assert np.isclose(m.opt_enc.lr, 0.075 / 128 * 2 / 15)
    half = get_model("vaegan")(SHAPE, rng=0, schedule_length=13750, **TINY)
    assert half.lr_factor(9374) == 1.0 and np.isclose(half.lr_factor(9375), 2 / 3)


# ------------------------------------------------------------------------ PyTorch twin
def _biases_before_bn(net):
    """Names of the Linear biases right before a BatchNorm (their exact gradient is zero)."""
    from scratchgan import nn as snn
    return {f"blocks.{i}.{j}.bias" for i, blk in enumerate(net.blocks)
            for j in range(len(blk) - 1) if isinstance(blk[j + 1], snn.BatchNorm1d)}


def _torch_step(torch, m, x, y, draws):
    """One step of the same algorithm with autograd (float64): the parameters after it."""
    import torch.nn.functional as F
    from scratchgan import nn as snn
    T = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)   # noqa: E731
    draws = list(draws)
    P = {k: {n: T(p.data).requires_grad_() for n, p in net.named_parameters()}
         for k, net in m.networks().items()}

    def take(shape):
        a = draws.pop(0)
        assert a.shape == tuple(shape), (a.shape, shape)
        return a

    def run(key, h, y1h, upto=None):
        net, p = m.networks()[key], P[key]
        n = len(net.cond) if upto is None else upto
        h = h.reshape(h.shape[0], -1)
        for i in range(n):
            if net.cond[i]:
                h = torch.cat([h, y1h], 1)
            for j, layer in enumerate(net.blocks[i]):
                pre = f"blocks.{i}.{j}."
                if isinstance(layer, snn.Linear):
                    h = F.linear(h, p[pre + "weight"], p[pre + "bias"])
                elif isinstance(layer, snn.BatchNorm1d):
                    h = F.batch_norm(h, None, None, p[pre + "weight"], p[pre + "bias"],
                                     training=True, eps=layer.eps)
                elif isinstance(layer, snn.ReLU):
                    h = F.relu(h)
                elif isinstance(layer, snn.Dropout):
                    u = take(tuple(h.shape))
                    h = h * T(u >= np.float32(layer.p)) / (1 - layer.p)
                else:
                    raise TypeError(type(layer))
        return h

    hp, mm, k = m.hp, x.shape[0], m.hp["latent_dim"]
    xt_ = T(x).reshape(mm, -1)
    y1h = T(m.one_hot(y)) if m.conditional else None
    eps = T(take((mm, k)))
    z_p = eps if hp["prior_from_eps"] else T(take((mm, k)))
    h = run("encoder", xt_, y1h)
    mu, lv = h[:, :k], h[:, k:]
    z = mu + torch.exp(0.5 * lv) * eps
    a = run("decoder", z, y1h)
    if hp["recon"] == "pixel":
        rec = (F.softplus(a) - xt_ * a).sum() / mm
    else:
        with torch.no_grad():
            t = run("D", xt_, y1h, m.dis_upto)
        f = run("D", torch.sigmoid(a), y1h, m.dis_upto)
        rec = 0.5 * ((f - t) ** 2).sum() / mm
    kl = 0.5 * (torch.exp(lv) + mu ** 2 - 1 - lv).sum() / mm
    enc_p, dec_p, d_p = (list(P[n].values()) for n in ("encoder", "decoder", "D"))
    g_enc = torch.autograd.grad(hp["kl_weight"] * kl + rec, enc_p, retain_graph=True)
    g_dec_rec = torch.autograd.grad(hp["gamma"] * rec, dec_p)
    zg = torch.cat([z.detach(), z_p])
    yg = None if y1h is None else torch.cat([y1h, y1h])
    xg = torch.sigmoid(run("decoder", zg, yg))
    real_cost = F.softplus(-run("D", xt_, y1h)).mean()
    fake_cost = F.softplus(run("D", xg, yg)).mean()
    g_d = torch.autograd.grad(real_cost + 2 * fake_cost, d_p, retain_graph=True)
    g_dec_gan = torch.autograd.grad(-2 * fake_cost, dec_p)
    g_dec = [u + v for u, v in zip(g_dec_rec, g_dec_gan)]
    assert not draws, "the model drew more than the twin"
    upd = {"encoder": True, "decoder": True, "D": True}
    if hp["equilibrium"]:
        r, fk = float(real_cost.detach()), float(fake_cost.detach())
        lo, hi = hp["equilibrium_value"] - hp["margin"], hp["equilibrium_value"] + hp["margin"]
        ud, ug = not (r < lo or fk < lo), not (r > hi or fk > hi)
        if not (ud or ug):
            ud = ug = True
        upd["D"], upd["decoder"] = ud, ug
    out = {}
    for key, grads, opt in (("encoder", g_enc, m.opt_enc), ("decoder", g_dec, m.opt_dec),
                            ("D", g_d, m.opt_D)):
        sd = opt.state_dict()
        out[key] = {}
        for i, ((n, p), g) in enumerate(zip(P[key].items(), grads)):
            w = p.detach().clone()
            if upd[key]:
                s = sd["alpha"] * T(sd["square_avg"][i]) + (1 - sd["alpha"]) * g * g
                w = w - sd["lr"] * g / (torch.sqrt(s) + sd["eps"])
            out[key][n] = w.numpy()
    return out, (float(real_cost.detach()), float(fake_cost.detach())), upd


@pytest.mark.parametrize("variant,extra", [
    ("mnist-mlp", dict(equilibrium=True, margin=0.02)),
    ("mnist-mlp", dict(dis_layer=2)),
    ("cond-mnist", dict(margin=0.02)),
])
def test_whole_step_against_pytorch_twin(variant, extra):
    torch = require_torch()
    from scratchgan.testing import record_draws
    def build():
        return get_model("vaegan")((1, 6, 6), rng=4, dtype=np.float64, variant=variant,
                                   enc_hidden=10, dec_hidden=12, d_hidden=9, latent_dim=3,
                                   **extra)
    g = np.random.default_rng(2)
    x0, y0 = g.uniform(0, 1, (8, 1, 6, 6)), g.integers(0, 10, 8)
    x, y = g.uniform(0, 1, (8, 1, 6, 6)), g.integers(0, 10, 8)
    m, ref_model = build(), build()       # (a deepcopy would break the flat parameter views)
    for mod in (m, ref_model):
        mod.train_step(x0, y0)            # non-zero RMSProp state before the compared step
    with record_draws(m) as rec:
        logs = m.train_step(x, y)
    want, costs, upd = _torch_step(torch, ref_model, x, y, rec.arrays)
    assert np.isclose(float(logs["real_cost"]), costs[0], rtol=1e-12)
    assert np.isclose(float(logs["fake_cost"]), costs[1], rtol=1e-12)
    if m.hp["equilibrium"]:
        assert bool(logs["update_d"]) == upd["D"] and bool(logs["update_dec"]) == upd["decoder"]
    for key, net in m.networks().items():
        lr = m.optimizers()[{"encoder": "enc", "decoder": "dec", "D": "D"}[key]].lr
        # a Linear bias right before BatchNorm has an exactly zero gradient, so its computed
        # gradient is rounding noise (~1e-17) that RMSProp divides by sqrt(s) + eps: its
        # moves are noise too and are checked to be tiny rather than equal
        before_bn = _biases_before_bn(net)
        start = dict(ref_model.networks()[key].named_parameters())
        for n, p in net.named_parameters():
            if n in before_bn:
                p0 = start[n].data
                assert np.abs(p.data - p0).max() < 1e-5 * lr, n
                assert np.abs(want[key][n] - p0).max() < 1e-5 * lr, n
                continue
            # in units of the learning rate: an RMSProp step moves a weight by ~lr
            err = np.abs(p.data - want[key][n]).max() / lr
            assert err < 1e-9, f"{key}.{n}: error {err:.3g} learning rates"


# ------------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["mnist-mlp", "cond-mnist"])
def test_cupy_matches_numpy_float64(variant):
    """Three float64 steps (equilibrium on, a narrow band so that it skips) on CuPy equal
    NumPy's: normals differ by an ulp or two between the devices, so to ~1e-9."""
    from scratchgan.backend import to_numpy
    hp = dict(variant=variant, enc_hidden=32, dec_hidden=48, d_hidden=40, latent_dim=4,
              equilibrium=True, margin=0.05)
    ms = {dev: get_model("vaegan")((1, 8, 8), rng=5, dtype=np.float64, device=dev, **hp)
          for dev in ("cpu", "cuda")}
    g = np.random.default_rng(0)
    data = [(g.uniform(0, 1, (16, 1, 8, 8)), g.integers(0, 10, 16)) for _ in range(3)]
    logs = {}
    for dev, m in ms.items():
        for x, y in data:
            logs[dev] = m.train_step(x, y)
    for k in logs["cpu"]:
        assert np.isclose(float(logs["cpu"][k]), float(to_numpy(logs["cuda"][k])),
                          rtol=1e-9, atol=1e-12), k
    start = get_model("vaegan")((1, 8, 8), rng=5, dtype=np.float64, **hp)
    for key, net in ms["cpu"].networks().items():
        other = dict(ms["cuda"].networks()[key].named_parameters())
        p0 = dict(start.networks()[key].named_parameters())
        lr = ms["cpu"].optimizers()[{"encoder": "enc", "decoder": "dec", "D": "D"}[key]].lr
        for n, p in net.named_parameters():
            q = to_numpy(other[n].data)
            if n in _biases_before_bn(net):
                # an exactly-zero gradient computed as rounding noise: RMSProp moves these
                # biases by noise (~1e-11) that differs between devices; both stay tiny
                assert np.abs(p.data - p0[n].data).max() < 1e-5 * lr, f"{key}.{n}"
                assert np.abs(q - p0[n].data).max() < 1e-5 * lr, f"{key}.{n}"
                continue
            assert np.allclose(p.data, q, rtol=1e-9, atol=1e-11), f"{key}.{n}"


@pytest.mark.gpu
def test_graph_replay_equals_eager():
    """The equilibrium rule's device-side skip captures into a CUDA graph: 6 replayed steps
    equal 6 eager ones bit for bit."""
    from scratchgan.backend import to_numpy
    from scratchgan.runtime import StepRunner
    hp = dict(enc_hidden=32, dec_hidden=48, d_hidden=40, latent_dim=4, equilibrium=True,
              margin=0.05)
    a = get_model("vaegan")((1, 8, 8), rng=5, device="cuda", **hp)
    b = get_model("vaegan")((1, 8, 8), rng=5, device="cuda", **hp)
    ra, rb = StepRunner(a, mode="graph"), StepRunner(b, mode="eager")
    g = np.random.default_rng(0)
    for _ in range(6):
        x = a.to_model(g.uniform(0, 1, (16, 1, 8, 8)))
        ra(x, None)
        rb(x, None)
    for key, net in a.networks().items():
        other = dict(b.networks()[key].named_parameters())
        for n, p in net.named_parameters():
            assert np.array_equal(to_numpy(p.data), to_numpy(other[n].data)), f"{key}.{n}"


# ------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("extra", [[], ["--set", "variant=cond-mnist"]])
def test_cli_dry_run(tmp_path, capsys, monkeypatch, extra):
    from scratchgan import cli
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))          # no cache: stand-in digits
    out = tmp_path / "run"
    rc = cli.main(["train", "vaegan", "--dry-run", "--no-progress", "--out", str(out)] + extra)
    _, e = capsys.readouterr()
    assert rc == 0, e
    assert (out / "samples.png").is_file() and (out / "last.ckpt.npz").is_file()
    # the encoder tools: the conditional variant's encoder and decoder get the labels
    assert cli.main(["reconstruct", str(out), "--n", "6"]) == 0
    assert (out / "reconstructions.png").is_file()
    assert cli.main(["interpolate", str(out), "--between-real", "--rows", "2"]) == 0
    assert (out / "interpolation.png").is_file()
