"""CVAE (Sohn et al. 2015): gradients of every network, the two-Gaussian KL, a PyTorch float64
twin of a step, the importance-sampled conditional likelihood on known cases, CuPy against
NumPy, and the CLI dry run."""
import copy
import json
import math

import numpy as np
import pytest

from conftest import require_torch
from test_model_gradients import check_grads, make
from scratchgan.data.quadrants import quadrant_task, revealed_mask
from scratchgan.gradcheck import gradcheck
from scratchgan.models import get_model
from scratchgan.models.cvae import (gaussian_kl2_backward, gaussian_kl2_forward,
                                    importance_log_likelihood, masked_bernoulli_nll_backward,
                                    masked_bernoulli_nll_forward)

TINY = dict(hidden=6, latent_dim=3)


def whole(n=5, side=4, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, 1, side, side))


def pairs(n=6, side=4, seed=0):
    img = whole(n, side, seed)[:, 0]
    out = np.empty((n, 2, side, side))
    for i in range(n):
        x, y, _ = quadrant_task(img[i:i + 1], i % 3 + 1)
        out[i, 0], out[i, 1] = x[0], y[0]
    return out


# -- the pieces ---------------------------------------------------------------------------
def test_kl2_value_and_gradients():
    rng = np.random.default_rng(0)
    mu_q, lv_q, mu_p, lv_p = (rng.normal(size=(4, 3)) for _ in range(4))
    kl, _ = gaussian_kl2_forward(mu_q, lv_q, mu_p, lv_p)
    # closed form per dimension, written from the densities: E_q[log q - log p]
    vq, vp = np.exp(lv_q), np.exp(lv_p)
    ref = (np.log(np.sqrt(vp / vq)) + (vq + (mu_q - mu_p) ** 2) / (2 * vp) - 0.5).sum() / 4
    assert np.isclose(kl, ref, rtol=1e-12)
    # Monte Carlo check of the same quantity (independent of the formula)
    z = mu_q[0] + np.sqrt(vq[0]) * rng.standard_normal((200000, 3))
    lq = -0.5 * (np.log(2 * np.pi * vq[0]) + (z - mu_q[0]) ** 2 / vq[0])
    lp = -0.5 * (np.log(2 * np.pi * vp[0]) + (z - mu_p[0]) ** 2 / vp[0])
    kl0, _ = gaussian_kl2_forward(mu_q[:1], lv_q[:1], mu_p[:1], lv_p[:1])
    assert abs((lq - lp).sum(axis=1).mean() - kl0) < 0.05 * max(1.0, kl0)
    gradcheck(gaussian_kl2_forward, gaussian_kl2_backward, [mu_q, lv_q, mu_p, lv_p],
              names=["mu_q", "lv_q", "mu_p", "lv_p"])
    same, _ = gaussian_kl2_forward(mu_q, lv_q, mu_q, lv_q)
    assert abs(same) < 1e-12


def test_masked_bernoulli_gradient_and_mask():
    rng = np.random.default_rng(1)
    logits, y = rng.normal(size=(3, 8)), rng.uniform(size=(3, 8))
    m = (rng.uniform(size=(3, 8)) > 0.5).astype(float)
    y_marked = np.where(m > 0, y, -1.0)      # the -1 markers never count
    loss, _ = masked_bernoulli_nll_forward(logits, y_marked, m)
    ref = (m * (np.logaddexp(0, logits) - y * logits)).sum() / 3
    assert np.isclose(loss, ref, rtol=1e-12)
    gradcheck(lambda l: masked_bernoulli_nll_forward(l, y_marked, m),
              lambda d, c: masked_bernoulli_nll_backward(d, c), [logits])


# -- every network's gradient through the model's own backward chain ------------------------
@pytest.mark.parametrize("data,gen_input", [("whole", "x_yhat_z"), ("whole", "z"),
                                            ("pairs", "x_yhat_z")])
def test_cvae_network_gradients(data, gen_input):
    shape = (1, 4, 4) if data == "whole" else (2, 4, 4)
    m = make("cvae", shape, gen_input=gen_input, n_revealed=2, **TINY)
    batch = m.to_model(whole() if data == "whole" else pairs())
    x, full, y, mask = m.split(batch)
    eps = np.random.default_rng(4).standard_normal((x.shape[0], 3))
    check_grads(m, lambda: m.baseline_grads(x, y, mask)["loss_baseline"], [m.baseline])
    check_grads(m, lambda: m.cvae_grads(x, full, y, mask, eps)["loss"],
                [m.recognition, m.prior, m.generation])


def test_gradient_check_catches_a_wrong_kl_sign():
    m = make("cvae", (1, 4, 4), **TINY)
    x, full, y, mask = m.split(m.to_model(whole()))
    eps = np.random.default_rng(4).standard_normal((5, 3))

    def wrong():
        out = m.cvae_grads(x, full, y, mask, eps)["loss"]
        m.prior[-1].bias.grad *= -1                 # the prior's gradient with the wrong sign
        return out
    with pytest.raises(AssertionError):
        check_grads(m, wrong, [m.prior])


# -- a training step against a PyTorch float64 twin ------------------------------------------
def torch_twin_step(model, batch, eps):
    """One step of the model's algorithm written with torch autograd, independent formulas:
    BCE-with-logits, torch.distributions' KL, torch.optim.Adam."""
    import torch as T
    import torch.nn.functional as F
    from scratchgan.testing import convert_network
    dt = T.float64
    nets = {k: convert_network(v, None, "cpu", dt) for k, v in model.networks().items()}
    hp = model.hp
    opt_b = T.optim.Adam(nets["baseline"].parameters(), lr=hp["lr"])
    opt = T.optim.Adam([p for k in ("recognition", "prior", "generation")
                        for p in nets[k].parameters()], lr=hp["lr"])
    img = T.as_tensor(batch).reshape(batch.shape[0], -1)
    n, k = img.shape[0], hp["latent_dim"]
    hidden = T.as_tensor(~revealed_mask(hp["n_revealed"], batch.shape[-1])).reshape(1, -1)
    m = hidden.to(dt)
    x = T.where(hidden, T.full_like(img, -1.0), img)

    def masked_bce(logits):
        return (F.binary_cross_entropy_with_logits(logits, img, reduction="none") * m).sum() / n
    opt_b.zero_grad()
    lb = masked_bce(nets["baseline"](x))
    lb.backward()
    opt_b.step()
    with T.no_grad():
        c = T.where(hidden, T.sigmoid(nets["baseline"](x)), x)
    hq, hpr = nets["recognition"](img), nets["prior"](c)
    q = T.distributions.Normal(hq[:, :k], T.exp(0.5 * hq[:, k:]))
    p = T.distributions.Normal(hpr[:, :k], T.exp(0.5 * hpr[:, k:]))
    z = q.mean + q.stddev * T.as_tensor(eps)
    gin = z if hp["gen_input"] == "z" else T.cat([c, z], 1)
    rec = masked_bce(nets["generation"](gin))
    kl = T.distributions.kl_divergence(q, p).sum() / n
    opt.zero_grad()
    (rec + kl).backward()
    opt.step()
    return nets, {"loss_baseline": lb.item(), "recon_nll": rec.item(), "kl": kl.item()}


@pytest.mark.parametrize("gen_input", ["x_yhat_z", "z"])
def test_step_matches_torch_twin(gen_input):
    require_torch()
    from scratchgan.testing import record_draws
    m = get_model("cvae")((1, 8, 8), rng=2, dtype=np.float64, hidden=7, latent_dim=3,
                          n_revealed=1, gen_input=gen_input, lr=1e-2)
    batch = whole(6, 8, seed=3)
    before = copy.deepcopy(m.state_dict())
    with record_draws(m) as rec:
        logs = m.train_step(batch)
    assert [c[0] for c in rec.calls] == ["normal"]
    fresh = get_model("cvae")((1, 8, 8), rng=2, dtype=np.float64, hidden=7, latent_dim=3,
                              n_revealed=1, gen_input=gen_input, lr=1e-2)
    fresh.load_state_dict(before)
    nets, tlogs = torch_twin_step(fresh, batch, rec.arrays[0])
    for key in tlogs:
        assert np.isclose(float(logs[key]), tlogs[key], rtol=1e-11), key
    for name, net in m.networks().items():
        tsd = dict(nets[name].named_parameters())
        for pname, p in net.named_parameters():
            np.testing.assert_allclose(p.data, tsd[pname].detach().numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{name}.{pname}")


# -- importance sampling ----------------------------------------------------------------------
def linear_gaussian(k=3, d=4, rows=64, seed=0, diagonal=False):
    """z ~ N(mu0, diag s0^2); y | z ~ N(A z + b, sigma^2 I): log p(y) in closed form."""
    g = np.random.default_rng(seed)
    if diagonal:
        d = k
        A = np.diag(g.uniform(0.5, 2.0, k))
    else:
        A = g.normal(size=(d, k))
    b, mu0, s0, sig = g.normal(size=d), g.normal(size=k), g.uniform(0.5, 1.5, k), 0.7
    z = mu0 + s0 * g.standard_normal((rows, k))
    y = z @ A.T + b + sig * g.standard_normal((rows, d))
    cov = A @ np.diag(s0 ** 2) @ A.T + sig ** 2 * np.eye(d)
    r = y - (A @ mu0 + b)
    _, logdet = np.linalg.slogdet(cov)
    exact = -0.5 * (d * math.log(2 * math.pi) + logdet +
                    np.einsum("ni,ij,nj->n", r, np.linalg.inv(cov), r))

    def log_joint(zz):
        lik = -0.5 * (d * math.log(2 * math.pi * sig ** 2) +
                      ((y - zz @ A.T - b) ** 2).sum(1) / sig ** 2)
        pri = -0.5 * (np.log(2 * math.pi * s0 ** 2) + (zz - mu0) ** 2 / s0 ** 2).sum(1)
        return lik + pri
    return A, b, mu0, s0, sig, y, exact, log_joint


def test_importance_sampling_exact_with_the_true_posterior():
    """With q the exact posterior every weight equals p(y): any S gives log p(y) exactly."""
    A, b, mu0, s0, sig, y, exact, log_joint = linear_gaussian(diagonal=True)
    a = np.diag(A)
    post_var = 1 / (1 / s0 ** 2 + a ** 2 / sig ** 2)
    post_mu = post_var * (mu0 / s0 ** 2 + a * (y - b) / sig ** 2)
    g = np.random.default_rng(1)
    for s in (1, 7):
        est = importance_log_likelihood(log_joint, post_mu, np.log(post_var) + 0 * post_mu, s,
                                        g.standard_normal)
        np.testing.assert_allclose(est, exact, rtol=1e-10)


def test_importance_sampling_converges_as_samples_grow():
    """A poor proposal (the prior, widened): biased low for few samples (Jensen), close to the
    closed form with many."""
    A, b, mu0, s0, sig, y, exact, log_joint = linear_gaussian(rows=48)
    mu = np.broadcast_to(mu0, (len(y), 3)).copy()
    lv = np.broadcast_to(np.log((1.5 * s0) ** 2), (len(y), 3)).copy()
    g = np.random.default_rng(2)
    err = {s: (importance_log_likelihood(log_joint, mu, lv, s, g.standard_normal) - exact)
           for s in (1, 10, 3000)}
    assert err[1].mean() < -0.2                          # the bound is below log p(y)
    assert abs(err[3000].mean()) < 0.05 and np.abs(err[3000]).max() < 0.5
    assert abs(err[3000].mean()) < abs(err[10].mean()) < abs(err[1].mean())


def test_model_nll_is_tighter_than_the_bound():
    """The importance-sampled -log p(y|x) lies below the negative ELBO on average, and S = 1
    is the ELBO's own estimate: its mean matches the bound's."""
    m = get_model("cvae")((1, 8, 8), rng=0, dtype=np.float64, hidden=12, latent_dim=4)
    for _ in range(5):
        m.train_step(whole(32, 8, seed=_))
    batch = whole(300, 8, seed=9)
    nll = m.conditional_nll(batch, 200, rng=np.random.default_rng(0))
    nelbo = np.mean([m.negative_elbo(batch, rng=np.random.default_rng(s)) for s in range(20)], 0)
    one = m.conditional_nll(batch, 1, rng=np.random.default_rng(1))
    assert nll.mean() < nelbo.mean() - 1e-3
    assert abs(one.mean() - nelbo.mean()) < 0.05 * abs(nelbo.mean())
    base = m.baseline_nll(batch)
    assert base.shape == (300,) and np.all(base > 0)
    with pytest.raises(ValueError, match="baseline_nll"):
        get_model("cvae")((1, 8, 8), rng=0, mode="baseline", **TINY).conditional_nll(batch, 2)


# -- modes, errors, pictures ----------------------------------------------------------------
def test_baseline_mode_trains_the_baseline_only():
    m = get_model("cvae")((1, 8, 8), rng=0, mode="baseline", **TINY)
    frozen = {k: [p.data.copy() for p in net.parameters()] for k, net in m.networks().items()}
    logs = m.train_step(whole(6, 8).astype(np.float32))
    assert set(logs) == {"loss_baseline"}
    for k, net in m.networks().items():
        moved = any(not np.array_equal(a, p.data) for a, p in zip(frozen[k], net.parameters()))
        assert moved == (k == "baseline"), k
    m2 = get_model("cvae")((1, 8, 8), rng=0, train_baseline=False, **TINY)
    before = [p.data.copy() for p in m2.baseline.parameters()]
    assert "loss_baseline" not in m2.train_step(whole(6, 8).astype(np.float32))
    assert all(np.array_equal(a, p.data) for a, p in zip(before, m2.baseline.parameters()))
    out = m2.generate(m2.sample_noise(4, rng=np.random.default_rng(0)))
    assert out.shape == (4, 1, 8, 8) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="n_revealed"):
        get_model("cvae")((1, 8, 8), n_revealed=4)
    with pytest.raises(ValueError, match="even side"):
        get_model("cvae")((1, 7, 7))
    with pytest.raises(ValueError, match="gen_input"):
        get_model("cvae")((1, 8, 8), gen_input="y")


def test_completion_keeps_revealed_pixels():
    m = get_model("cvae")((1, 8, 8), rng=0, n_revealed=3, **TINY)
    batch = whole(4, 8).astype(np.float32)
    out = m.complete(batch, n=3, rng=np.random.default_rng(0))
    rev = revealed_mask(3, 8)
    assert out.shape == (3, 4, 1, 8, 8)
    assert np.array_equal(out[:, :, 0][:, :, rev], np.broadcast_to(batch[:, 0][:, rev],
                                                                  (3, 4, int(rev.sum()))))


# -- CuPy against NumPy ------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("data", ["whole", "pairs"])
def test_gpu_matches_cpu(data):
    from scratchgan.backend import to_numpy
    shape = (1, 8, 8) if data == "whole" else (2, 8, 8)
    batches = [whole(6, 8, seed=s) if data == "whole" else pairs(6, 8, seed=s) for s in range(2)]
    cpu = get_model("cvae")(shape, rng=4, dtype=np.float64, **TINY)
    gpu = get_model("cvae")(shape, rng=4, dtype=np.float64, device="cuda", **TINY)
    for b in batches:
        la, lb = cpu.train_step(b), gpu.train_step(b)
        for k in la:
            assert np.isclose(float(la[k]), float(lb[k]), rtol=1e-6, atol=1e-8), k
    for k, net in cpu.networks().items():
        for (n, p), q in zip(net.named_parameters(), gpu.networks()[k].parameters()):
            np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=1e-6, atol=1e-9,
                                       err_msg=f"{k}.{n}")
    a = cpu.conditional_nll(batches[0], 5, rng=np.random.default_rng(0))
    b = to_numpy(gpu.conditional_nll(batches[0], 5, rng=np.random.default_rng(0)))
    np.testing.assert_allclose(b, a, rtol=1e-8)


# -- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [[], ["--dataset", "mnist-quadrants"]])
def test_cli_dry_run(extra, tmp_path, monkeypatch, request):
    from scratchgan import cli
    if extra:       # the generated set needs the IDX files (data_dir skips without them)
        extra = extra + ["--data-dir", request.getfixturevalue("data_dir")]
    else:           # plain MNIST: stand-in digits when the files are absent
        monkeypatch.setenv("SCRATCHGAN_DATA", str(tmp_path / "none"))
    rc = cli.main(["train", "cvae", "--dry-run", "--no-progress", "--out", str(tmp_path / "r")]
                  + extra)
    assert rc in (0, None)
    rows = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3 and math.isfinite(rows[-1]["loss"])
    assert (tmp_path / "r" / "samples.png").is_file()
