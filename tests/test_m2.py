"""M2 and M1+M2 (Kingma et al. 2014): the labelled subset, the bounds' values, every network's
gradient, a PyTorch float64 twin of a step, CuPy against NumPy, and the CLI dry run/resume."""
import copy
import json
import math

import numpy as np
import pytest

from conftest import require_torch
from test_model_gradients import check_grads, make
from scratchgan.models import get_model
from scratchgan.models.m2 import select_labelled

TINY = dict(hidden=6, latent_dim=3, n_labels=20, labelled_batch=4)
M1 = dict(features="m1", m1_hidden=5, m1_latent=4, m1_steps=2)


def data(n=60, side=4, seed=0):
    g = np.random.default_rng(seed)
    return g.uniform(0.05, 0.95, (n, 1, side, side)), np.arange(n) % 10


def attached(dtype=np.float64, shape=(1, 4, 4), redraw=True, **hp):
    m = make("m2", shape, **{**TINY, **hp}) if redraw else \
        get_model("m2")(shape, rng=1, dtype=dtype, **{**TINY, **hp})
    x, y = data(side=shape[-1])
    m.attach_data(x, y)
    return m, x, y


def test_labelled_subset_is_balanced_and_seeded():
    y = np.random.default_rng(0).integers(0, 10, 5000)
    a, b, c = (select_labelled(y, 100, s) for s in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(set(a)) == 100 and np.all(np.bincount(y[a], minlength=10) == 10)
    with pytest.raises(ValueError, match="multiple"):
        select_labelled(y, 95, 0)
    m, x, yy = attached()
    assert m.x_lab.shape == (20, 1, 4, 4) and np.all(np.bincount(m.y_lab) == 2)
    wl, wu, alpha = m.loss_weights()
    assert np.isclose(wl, 20 / 80) and np.isclose(wu, 60 / 80) and alpha == 0.1
    with pytest.raises(ValueError, match="attach_data"):
        get_model("m2")((1, 4, 4), **TINY).train_step(x[:5])


def test_unlabelled_bound_values():
    """-U(x) = sum_y pi_y l(x, y) - H(pi), l from the labelled bound of each class; the
    repeated-batch layout (row c*M + i) must pair each class with its own noise."""
    m, x, _ = attached()
    f = m.to_model(x[:5]).reshape(5, -1)
    eps = np.random.default_rng(3).standard_normal((50, 3))
    logs = m.unlabelled_grads(f, eps, 1.0)
    m.zero_grad()
    l = np.empty((5, 10))
    for c in range(10):
        rows, back = m._bound_rows(f, m.one_hot(np.full(5, c)), eps[c * 5:(c + 1) * 5])
        back(np.zeros(5))
        l[:, c] = rows
    a = m._eval_forward(m.classifier, f)
    pi = np.exp(a - a.max(1, keepdims=True))
    pi /= pi.sum(1, keepdims=True)
    neg_u = (pi * l).sum(1) + (pi * np.log(pi)).sum(1)
    assert np.isclose(-float(logs["unlabelled_bound"]), neg_u.mean(), rtol=1e-12)
    assert np.isclose(float(logs["entropy"]), -(pi * np.log(pi)).sum(1).mean(), rtol=1e-12)
    # l(x, y) = -log p(x|y,z) + KL + log 10 >= log 10 + entropy of grey pixels > 0
    assert np.all(l > math.log(10))


@pytest.mark.parametrize("features", ["pixels", "m1"])
def test_network_gradients(features):
    hp = M1 if features == "m1" else {}
    m, x, _ = attached(**hp)
    xl, yl, xu = m.x_lab[:4], m.y_lab[:4], m.to_model(x[:5])
    g = np.random.default_rng(4)
    eps_l, eps_u = g.standard_normal((4, 3)), g.standard_normal((50, 3))
    fl = fu = None
    if features == "m1":
        fl, fu = g.standard_normal((4, 4)), g.standard_normal((5, 4))
    nets = [m.classifier, m.encoder, m.decoder]
    check_grads(m, lambda: m.m2_grads(xl, yl, xu, eps_l, eps_u, fl, fu)["loss"], nets)
    fu_ = m.features(xu, fu)
    check_grads(m, lambda: -m.unlabelled_grads(fu_, eps_u, 1.0)["unlabelled_bound"], nets)
    fl_ = m.features(xl, fl)
    check_grads(m, lambda: (lambda o: -0.3 * o["labelled_bound"] + 0.1 * o["class_loss"])(
        m.labelled_grads(fl_, yl, eps_l, 0.3, 0.1)), nets)
    if features == "m1":
        e1 = g.standard_normal((5, 4))
        check_grads(m, lambda: m.m1_grads(xu, e1)["m1_loss"], [m.m1_encoder, m.m1_decoder])


def test_gradient_check_catches_a_missing_entropy():
    m, x, _ = attached()
    f = m.to_model(x[:5]).reshape(5, -1)
    eps = np.random.default_rng(3).standard_normal((50, 3))

    def wrong():            # the classifier's gradient with the entropy's term left out
        logs = m.unlabelled_grads(f, eps, 1.0)
        m.classifier[-1].bias.grad *= 1.05
        return -logs["unlabelled_bound"]
    with pytest.raises(AssertionError):
        check_grads(m, wrong, [m.classifier])


# -- a training step against a PyTorch float64 twin -------------------------------------------
def torch_twin_step(model, x_u, draws):
    """One step of J^alpha with autograd: torch.distributions for the Gaussians and the
    categorical entropy, an explicit loop over the classes, torch.optim.Adam."""
    import torch as T
    import torch.nn.functional as F
    from scratchgan.testing import convert_network
    dt = T.float64
    nets = {k: convert_network(v, None, "cpu", dt) for k, v in model.networks().items()}
    hp, K, k = model.hp, model.num_classes, model.hp["latent_dim"]
    opt = T.optim.Adam([p for n in ("classifier", "encoder", "decoder")
                        for p in nets[n].parameters()], lr=hp["lr"])
    it = iter(draws)
    idx = T.as_tensor(next(it))
    xl_img = T.as_tensor(np.asarray(model.x_lab))[idx].reshape(len(idx), -1)
    yl = T.as_tensor(np.asarray(model.y_lab))[idx]
    xu_img = T.as_tensor(x_u).reshape(len(x_u), -1)
    m1 = hp["features"] == "m1"

    def feats(img, noise):
        if not m1:
            return img
        with T.no_grad():
            h = nets["m1_encoder"](img)
            d = hp["m1_latent"]
            return h[:, :d] + T.exp(0.5 * h[:, d:]) * T.as_tensor(noise)
    if m1:
        nl, nu = next(it), next(it)
    else:
        nl = nu = None
    fl, fu = feats(xl_img, nl), feats(xu_img, nu)
    eps_l, eps_u = T.as_tensor(next(it)), T.as_tensor(next(it))

    def bound(f, y1h, eps):                       # l(x, y) per row
        h = nets["encoder"](T.cat([f, y1h], 1))
        q = T.distributions.Normal(h[:, :k], T.exp(0.5 * h[:, k:]))
        z = q.mean + q.stddev * eps
        out = nets["decoder"](T.cat([z, y1h], 1))
        if m1:
            d = f.shape[1]
            rec = -T.distributions.Normal(out[:, :d], T.exp(0.5 * out[:, d:])).log_prob(f).sum(1)
        else:
            rec = F.binary_cross_entropy_with_logits(out, f, reduction="none").sum(1)
        prior = T.distributions.Normal(T.zeros_like(z), T.ones_like(z))
        return rec + T.distributions.kl_divergence(q, prior).sum(1) + math.log(K)
    nl_, nu_ = model.x_lab.shape[0], model.n_unlabelled
    wl, wu = nl_ / (nl_ + nu_), nu_ / (nl_ + nu_)
    lab = bound(fl, F.one_hot(yl, K).to(dt), eps_l).mean()
    ce = F.cross_entropy(nets["classifier"](fl), yl)
    logits = nets["classifier"](fu)
    pi = T.softmax(logits, 1)
    mu = len(x_u)
    ls = T.stack([bound(fu, F.one_hot(T.full((mu,), c), K).to(dt), eps_u[c * mu:(c + 1) * mu])
                  for c in range(K)], 1)
    neg_u = (pi * ls).sum(1) - T.distributions.Categorical(logits=logits).entropy()
    loss = wl * lab + wu * neg_u.mean() + hp["alpha"] * ce
    opt.zero_grad()
    loss.backward()
    opt.step()
    return nets, {"loss": loss.item(), "class_loss": ce.item(), "labelled_bound": -lab.item(),
                  "unlabelled_bound": -neg_u.mean().item()}


@pytest.mark.parametrize("features", ["pixels", "m1"])
def test_step_matches_torch_twin(features):
    require_torch()
    from scratchgan.testing import record_draws
    hp = dict(TINY, lr=1e-2, **(dict(M1, m1_steps=0) if features == "m1" else {}))
    m, x, y = attached(redraw=False, **hp)
    before = copy.deepcopy(m.state_dict())
    xu = x[:6]
    with record_draws(m) as rec:
        logs = m.train_step(xu)
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["integers"] + ["normal"] * (4 if features == "m1" else 2)
    fresh, _, _ = attached(redraw=False, **hp)
    fresh.load_state_dict(before)
    nets, tlogs = torch_twin_step(fresh, xu, rec.arrays)
    for key in tlogs:
        assert np.isclose(float(logs[key]), tlogs[key], rtol=1e-10), (key, logs[key], tlogs[key])
    for name, net in m.networks().items():
        tsd = dict(nets[name].named_parameters())
        for pname, p in net.named_parameters():
            np.testing.assert_allclose(p.data, tsd[pname].detach().numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{name}.{pname}")


def test_m1_phase_then_m2_phase():
    m, x, _ = attached(redraw=False, **M1)
    assert m.graph_key() == "m1"
    logs = m.train_step(x[:8])
    assert set(logs) == {"m1_loss"}
    m.train_step(x[:8])
    assert m.graph_key() == "m2" and not m.in_m1_phase()
    m1_before = [p.data.copy() for p in m.m1_encoder.parameters()]
    logs = m.train_step(x[:8])
    assert "unlabelled_bound" in logs
    assert all(np.array_equal(a, p.data) for a, p in zip(m1_before, m.m1_encoder.parameters()))


def test_generation_and_analogies():
    m, x, _ = attached(redraw=False)
    noise = m.sample_noise(20, rng=np.random.default_rng(0))
    assert list(noise["labels"]) == [c for c in range(10) for _ in range(2)]
    g = m.generate(noise)
    assert g.shape == (20, 1, 4, 4) and g.min() >= 0 and g.max() <= 1
    an = m.analogies(x[:3])
    assert an.shape == (3, 10, 1, 4, 4)
    # one style, ten classes: column c equals decoding the style with class c
    z = m.encode_style(x[:3])
    np.testing.assert_allclose(an[:, 4], m.decode(z, np.full(3, 4)), rtol=1e-12)
    assert m.predict(x[:7]).shape == (7,)


# -- CuPy against NumPy -------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("features", ["pixels", "m1"])
def test_gpu_matches_cpu(features):
    from scratchgan.backend import to_numpy
    hp = dict(TINY, **(M1 if features == "m1" else {}))
    x, y = data(side=4)
    models = []
    for dev in ("cpu", "cuda"):
        mm = get_model("m2")((1, 4, 4), rng=4, dtype=np.float64, device=dev, **hp)
        mm.attach_data(x, y)
        models.append(mm)
    cpu, gpu = models
    for s in range(4):
        la, lb = cpu.train_step(x[s * 6:(s + 1) * 6]), gpu.train_step(x[s * 6:(s + 1) * 6])
        for k in la:
            assert np.isclose(float(la[k]), float(lb[k]), rtol=1e-6, atol=1e-8), k
    for k, net in cpu.networks().items():
        for (n, p), q in zip(net.named_parameters(), gpu.networks()[k].parameters()):
            np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=1e-6, atol=1e-9,
                                       err_msg=f"{k}.{n}")


# -- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [[], ["--set", "features=m1", "--set", "m1_steps=2"]])
def test_cli_dry_run_and_resume(extra, tmp_path, monkeypatch):
    from scratchgan import cli
    monkeypatch.setenv("SCRATCHGAN_DATA", str(tmp_path / "none"))   # stand-in digits
    out = str(tmp_path / "r")
    rc = cli.main(["train", "m2", "--dry-run", "--no-progress", "--out", out] + extra)
    assert rc in (0, None)
    rc = cli.main(["train", "m2", "--resume", "--steps", "5", "--no-progress", "--out", out])
    assert rc in (0, None)
    rows = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 5 and math.isfinite(rows[-1]["loss"])
