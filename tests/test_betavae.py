"""β-VAE: gradients of both networks for both objectives (β and capacity), that β really
multiplies the KL in the gradient, a PyTorch float64 twin, the capacity schedule and its
resume, traversals, the dry run, and a CuPy float64 check."""
import copy

import numpy as np
import pytest

from scratchgan import cli
from scratchgan.models import REGISTRY, get_model

from conftest import require_torch
from test_model_gradients import check_grads

SHAPE = (1, 6, 6)
SMALL = dict(latent_dim=3, enc_hidden=7, dec_hidden=5)


def make(dtype=np.float64, seed=3, device="cpu", redraw=True, **hyper):
    m = get_model("betavae")(SHAPE, rng=seed, dtype=dtype, device=device, **{**SMALL, **hyper})
    if redraw:   # weights N(0, 0.4^2): away from ReLU kinks, log sigma of order 1
        g = np.random.default_rng(seed + 10)
        for net in m.networks().values():
            for p in net.parameters():
                p.data[...] = 0.4 * g.standard_normal(p.shape)
    return m


def data(n=5, seed=0):
    """Binary images, like dSprites-like pictures."""
    return (np.random.default_rng(seed).random((n,) + SHAPE) < 0.4).astype(np.float64)


def eps_for(m, n, seed=1):
    return np.random.default_rng(seed).standard_normal((n, m.hp["latent_dim"]))


def grads(m):
    return {f"{k}.{i}": p.grad.copy() for k, net in m.networks().items()
            for i, p in enumerate(net.parameters())}


def test_registered():
    assert "betavae" in REGISTRY and "betavae" in cli.MODEL_NAMES
    cls = get_model("betavae")
    assert cls.default_dataset == "dsprites"
    d = cls.defaults
    assert (d["beta"], d["latent_dim"], d["enc_hidden"], d["dec_hidden"], d["batch_size"],
            d["optimizer"], d["lr"]) == (4.0, 10, 1200, 1200, 32, "adagrad", 1e-2)


def test_paper_networks():
    m = get_model("betavae")((1, 64, 64), rng=0)
    shapes = [tuple(p.data.shape) for p in m.encoder.parameters()]
    assert shapes == [(1200, 4096), (1200,), (1200, 1200), (1200,), (20, 1200), (20,)]
    shapes = [tuple(p.data.shape) for p in m.decoder.parameters()]
    assert shapes == [(1200, 10), (1200,), (1200, 1200), (1200,), (1200, 1200), (1200,),
                      (4096, 1200), (4096,)]
    names = [type(l).__name__ for l in m.encoder.modules()] + [type(l).__name__ for l in m.decoder.modules()]
    assert names.count("ReLU") == 2 and names.count("Tanh") == 3


@pytest.mark.parametrize("objective", ["beta", "capacity"])
def test_gradients_of_both_networks(objective):
    m = make(objective=objective, beta=4.0, gamma=3.0, capacity_max=50.0, capacity_steps=10)
    x = data()
    eps = eps_for(m, len(x))
    if objective == "capacity":
        m._t.fill(4)          # C = 20 nats, well away from KL (|KL - C| has a kink at 0)
        kl = float(m.loss_grads(x, eps)["kl"])
        assert abs(kl - 20.0) > 1.0, kl
    check_grads(m, lambda: m.loss_grads(x, eps)["loss"], [m.encoder, m.decoder])


def test_beta_multiplies_the_kl_in_the_gradient():
    """g(beta) = g_recon + beta g_KL exactly: g(4) - g(0) = 4 (g(1) - g(0)); the KL part
    reaches the encoder only; and the loss is recon + beta KL."""
    x = data(6)
    out = {}
    for beta in (0.0, 1.0, 4.0):
        m = make(beta=beta)
        eps = eps_for(m, len(x))
        m.zero_grad()
        logs = m.loss_grads(x, eps)
        out[beta] = (grads(m), logs)
    g0, g1, g4 = (out[b][0] for b in (0.0, 1.0, 4.0))
    for k in g0:
        kl_part = g1[k] - g0[k]
        np.testing.assert_allclose(g4[k] - g0[k], 4.0 * kl_part, rtol=1e-9, atol=1e-12, err_msg=k)
        if k.startswith("decoder"):
            assert np.abs(kl_part).max() < 1e-12, k            # KL does not see the decoder
    assert max(np.abs(g1[k] - g0[k]).max() for k in g0 if k.startswith("encoder")) > 1e-3
    for beta, (_, logs) in out.items():
        assert np.isclose(float(logs["loss"]), float(logs["recon_nll"]) + beta * float(logs["kl"]))


def test_kl_value_uses_log_std():
    m = make()
    x = data(4)
    mu, log_std = m.posterior(x)
    kl = 0.5 * (np.exp(2 * log_std) + mu ** 2 - 1 - 2 * log_std).sum(axis=1).mean()
    logs = m.loss_grads(x, eps_for(m, 4))
    assert np.isclose(float(logs["kl"]), kl)


def torch_twin(m, x, eps_list, hp, torch):
    """The same two steps in PyTorch float64 (autograd + torch.optim.Adagrad)."""
    def lin(net):
        return [mod for mod in net.modules() if type(mod).__name__ == "Linear"]

    tp = []
    for net in (m.encoder, m.decoder):
        for mod in lin(net):
            tp.append(torch.tensor(mod.weight.data.copy(), requires_grad=True))
            tp.append(torch.tensor(mod.bias.data.copy(), requires_grad=True))
    opt = torch.optim.Adagrad(tp, lr=hp["lr"], eps=1e-10,
                              initial_accumulator_value=hp["adagrad_initial"])
    ne = 2 * len(lin(m.encoder))
    k = hp["latent_dim"]
    xt = torch.tensor(x.reshape(len(x), -1))
    logs, grads_first = [], None
    for t, eps in enumerate(eps_list):
        opt.zero_grad()
        h = xt
        enc, dec = tp[:ne], tp[ne:]
        for i in range(0, ne, 2):
            h = h @ enc[i].T + enc[i + 1]
            if i + 2 < ne:
                h = torch.relu(h)
        mu, ls = h[:, :k], h[:, k:]
        z = mu + torch.exp(ls) * torch.tensor(eps)
        for i in range(0, len(dec), 2):
            z = z @ dec[i].T + dec[i + 1]
            if i + 2 < len(dec):
                z = torch.tanh(z)
        rec = torch.nn.functional.binary_cross_entropy_with_logits(z, xt, reduction="sum") / len(x)
        kl = 0.5 * (torch.exp(2 * ls) + mu ** 2 - 1 - 2 * ls).sum() / len(x)
        if hp["objective"] == "beta":
            loss = rec + hp["beta"] * kl
        else:
            c = hp["capacity_max"] * min(1.0, t / hp["capacity_steps"])
            loss = rec + hp["gamma"] * torch.abs(kl - c)
        loss.backward()
        if grads_first is None:
            grads_first = [p.grad.detach().numpy().copy() for p in tp]
        opt.step()
        logs.append(float(loss.detach()))
    return [p.detach().numpy() for p in tp], grads_first, logs


@pytest.mark.parametrize("objective,a0", [("beta", 0.0), ("capacity", 0.0), ("beta", 0.1)])
def test_torch_twin_two_steps(objective, a0):
    torch = require_torch()
    m = make(objective=objective, gamma=2.0, capacity_max=30.0, capacity_steps=4,
             adagrad_initial=a0)
    x = data(6)
    eps_list = []
    st = m.random.state_dict()
    for _ in range(2):                       # the eps the two steps will draw
        eps_list.append(np.asarray(m.draw_normal((6, m.hp["latent_dim"]))))
    m.random.load_state_dict(st)
    params, g_first, losses = torch_twin(m, x, eps_list, m.hp, torch)
    ours = []
    m.zero_grad()
    m.loss_grads(x, eps_list[0])
    g_ours = [p.grad.copy() for net in (m.encoder, m.decoder) for p in net.parameters()]
    m.zero_grad()
    m.clear_cache()
    for _ in range(2):
        ours.append(float(m.train_step(x)["loss"]))
    np.testing.assert_allclose(ours, losses, rtol=1e-10)
    for a, b in zip(g_ours, g_first):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    mine = [p.data for net in (m.encoder, m.decoder) for p in net.parameters()]
    for a, b in zip(mine, params):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_capacity_schedule_and_bit_exact_resume():
    m = make(dtype=np.float32, redraw=False, objective="capacity", capacity_max=25.0,
             capacity_steps=4)
    rng = np.random.default_rng(0)
    xs = [data(4, seed=s).astype(np.float32) for s in range(6)]
    cs = []
    for x in xs[:3]:
        cs.append(float(m.train_step(x)["capacity"]))
    np.testing.assert_allclose(cs, [0.0, 6.25, 12.5])
    sd = copy.deepcopy(m.state_dict())
    tail = [float(m.train_step(x)["loss"]) for x in xs[3:]]
    assert float(m.capacity()) == 25.0                  # capped at C_max
    m2 = make(dtype=np.float32, redraw=False, objective="capacity", capacity_max=25.0,
              capacity_steps=4, seed=9)
    m2.load_state_dict(sd)
    assert float(m2.capacity()) == 18.75
    tail2 = [float(m2.train_step(x)["loss"]) for x in xs[3:]]
    assert tail == tail2
    for a, b in zip(m.encoder.parameters(), m2.encoder.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    del rng


def test_traversals_and_inference():
    m = make()
    rows = m.traverse_rows(n_frames=5, span=2.0)
    assert len(rows) == 3 and all(r.shape == (5,) + SHAPE for r in rows)
    z0 = m.encode(data(1))[0]
    rows = m.traverse_rows(z0=z0, values=[-1.0, 0.0, 1.0])
    # the middle frame of row j is z0 with z_j = 0
    z = np.array(z0, float)
    z[1] = 0.0
    np.testing.assert_allclose(rows[1][1], m.generate({"z": z[None]})[0])
    assert m.reconstruct(data(2)).shape == (2,) + SHAPE
    assert m.generate(m.sample_noise(4, rng=np.random.default_rng(0))).shape == (4,) + SHAPE


def test_errors_name_the_setting():
    with pytest.raises(ValueError, match="objective"):
        make(objective="beta-tc")
    with pytest.raises(ValueError, match="beta"):
        make(beta=-1.0)
    with pytest.raises(ValueError, match="capacity_steps"):
        make(capacity_steps=0)
    with pytest.raises(ValueError, match="optimizer"):
        make(optimizer="sgd")
    with pytest.raises(ValueError, match="adagrad_initial"):
        make(adagrad_initial=-0.1)


def test_dry_run(tmp_path, capsys):
    rc = cli.main(["train", "betavae", "--dry-run", "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "betavae on dsprites" in out.out
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "last.ckpt.npz").is_file()
    import json
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == cli.DRY_RUN["steps"] and rows[-1]["kl"] is not None
    # scratchgan traverse dispatches to the model's traversal: one row per latent
    png = tmp_path / "trav.png"
    rc = cli.main(["traverse", str(tmp_path), "--frames", "4", "--out", str(png)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert png.is_file() and "10 rows x 4" in out.out


@pytest.mark.gpu
@pytest.mark.parametrize("objective", ["beta", "capacity"])
def test_gpu_matches_cpu_float64(objective):
    from scratchgan.backend import to_numpy
    cpu = make(objective=objective, gamma=2.0, capacity_steps=3)
    gpu = make(objective=objective, gamma=2.0, capacity_steps=3, device="cuda", redraw=False)
    for a, b in zip([p for n in cpu.networks().values() for p in n.parameters()],
                    [p for n in gpu.networks().values() for p in n.parameters()]):
        b.data[...] = gpu.to_model(a.data)
    for s in range(3):
        x = data(6, seed=s)
        la, lb = cpu.train_step(x), gpu.train_step(x)
        for k in la:
            assert np.isclose(float(la[k]), float(lb[k]), rtol=1e-9, atol=1e-10), (k, la[k], lb[k])
    for a, b in zip([p for n in cpu.networks().values() for p in n.parameters()],
                    [p for n in gpu.networks().values() for p in n.parameters()]):
        np.testing.assert_allclose(to_numpy(b.data), a.data, rtol=1e-8, atol=1e-10)


@pytest.mark.gpu
def test_gpu_dry_run(tmp_path, capsys):
    """The GPU trainer puts the (lazy) dSprites-like rows on the device and replays graphs."""
    rc = cli.main(["train", "betavae", "--dry-run", "--no-progress", "--device", "cuda",
                   "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert (tmp_path / "last.ckpt.npz").is_file()
