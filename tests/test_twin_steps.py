"""End-to-end check of every model's ``train_step`` against its PyTorch twin (float64, CPU).

From identical weights, data and random draws (the model's draws are recorded and replayed
into the twin, ``scratchgan.testing``), three training steps of the scratchgan model and of
its torch.autograd + torch.optim twin must leave every parameter and BatchNorm buffer equal
to 1e-10 relative (||twin - ours|| / ||ours|| per tensor), and every logged loss equal too.
The networks keep each paper's structure at small widths and batches of 16. Two checks show
that the comparison can fail: a twin with its learning rate changed by one part in a million,
and a replay with one dropout mask changed.

Two kinds of tensors are ill-conditioned, whatever the implementation, and are handled so:

* A bias directly followed by a training-mode BatchNorm (InfoGAN's Linear/conv layers) has an
  exact gradient of zero: BatchNorm subtracts the batch mean. Its computed gradient is rounding
  noise, which Adam normalises by sqrt(v) + eps into steps far above that noise, so its
  trajectory is noise in scratchgan and in torch alike (measured: both move it by ~1e-9
  relative in three steps while the other weights move by ~1e-3). For these biases, and the
  running means of the BatchNorms after them, the test asserts instead that the model itself
  moved the bias by at most NOISE_TOL and that the twin agrees to NOISE_TOL.
* The paper GAN's and CGAN's last D bias starts at 0 and, with D's paper init U(+-0.005), gets
  the gradient mean sigma(l_real) - 1 + mean sigma(l_fake) with every logit within ~1e-6 of 0:
  a cancellation that leaves up to 1e-10..3e-9 relative error in that scalar after three
  steps for some seeds, in either implementation. The cases below use d_irange=0.05 (same
  structure, larger D init), where the worst relative difference of any tensor over 30
  seeds is 7e-13 (gan, cgan); over all cases and 30 seeds it is 3.3e-12 (aae's last D bias,
  the same cancellation, milder).

Without torch these tests skip, except under CI (``CI`` set), where they fail.
"""
import numpy as np
import pytest

from conftest import require_torch

torch = require_torch()

from scratchgan.models import get_model  # noqa: E402
from scratchgan.testing import compare_parameters, make_twin, record_draws  # noqa: E402

TOL = 1e-10
NOISE_TOL = 1e-7
STEPS = 3
M = 16

# case -> (model name, data_shape, hyperparameters, data range (None: standard normal))
CASES = {
    "gan": ("gan", (1, 8, 8), dict(arch="paper", g_hidden=24, d_units=12, d_pieces=5, z_dim=10,
                                   d_irange=0.05), (0.0, 1.0)),
    "gan_k2": ("gan", (1, 8, 8), dict(arch="paper", g_hidden=24, d_units=12, d_pieces=5, z_dim=10,
                                      d_irange=0.05, k=2, generator_loss="minimax"), (0.0, 1.0)),
    "gan_official": ("gan", (1, 8, 8), dict(arch="paper", g_hidden=24, d_units=12, d_pieces=5,
                                            z_dim=10, d_irange=0.05, variant="official",
                                            steps_per_epoch=1, momentum_saturate=3), (0.0, 1.0)),
    "gan_gaussian": ("gan", (1, 8, 8), dict(arch="paper", g_hidden=24, d_units=12, d_pieces=5,
                                            z_dim=10, d_irange=0.05, noise="gaussian"), (0.0, 1.0)),
    "gan_toy": ("gan", (2,), dict(arch="toy", toy_hidden=16, toy_units=8, z_dim=4), None),
    "dcgan": ("dcgan", (1, 28, 28), dict(ngf=4, ndf=4, z_dim=8), (-1.0, 1.0)),
    "dcgan_depth3": ("dcgan", (1, 28, 28), dict(ngf=4, ndf=4, z_dim=8, depth=3), (-1.0, 1.0)),
    "wgan_depth3": ("wgan", (1, 28, 28), dict(ngf=4, ndf=4, z_dim=8, depth=3), (-1.0, 1.0)),
    "dcgan64": ("dcgan", (3, 64, 64), dict(ngf=2, ndf=2, z_dim=8), (-1.0, 1.0)),
    "cgan": ("cgan", (1, 8, 8), dict(z_dim=10, g_hidden_z=8, g_hidden_y=12, g_hidden=24,
                                     d_units_x=12, d_units_y=6, d_units=10, d_irange=0.05),
             (0.0, 1.0)),
    "infogan": ("infogan", (1, 28, 28), dict(noise_dim=8, g_fc=16, g_channels=8, g_conv=4,
                                             d_conv1=4, d_conv2=8, d_fc=16, q_fc=8), (0.0, 1.0)),
    "wgan": ("wgan", (1, 28, 28), dict(ngf=4, ndf=4, z_dim=8), (-1.0, 1.0)),
    "wgan_mlp": ("wgan", (2,), dict(mlp_hidden=16, mlp_layers=3, z_dim=4), None),
    "wgan_gp": ("wgan-gp", (1, 28, 28), dict(dim=4, z_dim=8), (0.0, 1.0)),
    "wgan_gp_mlp": ("wgan-gp", (2,), dict(mlp_hidden=16, mlp_layers=3, z_dim=4), None),
    "vae": ("vae", (1, 28, 28), dict(hidden=24, latent_dim=4), (0.0, 1.0)),
    "aae": ("aae", (1, 28, 28), dict(hidden=24, d_hidden=16, code_dim=4, prior_std=2.0),
            (0.0, 1.0)),
}


def build(case, seed=0):
    name, shape, hyper, _ = CASES[case]
    return get_model(name)(shape, rng=seed, dtype=np.float64, **hyper)


def batches(case, model, seed=0):
    """``STEPS`` steps of real data: (x, y) with batches_per_step() minibatches of M rows."""
    _, shape, _, rng_range = CASES[case]
    g = np.random.default_rng(100 + seed)
    out = []
    for _ in range(STEPS):
        n = M * model.batches_per_step()
        if rng_range is None:
            x = g.normal(size=(n,) + shape)
        else:
            x = g.uniform(*rng_range, size=(n,) + shape)
        y = g.integers(0, model.num_classes, size=n) if model.conditional else None
        out.append((x, y))
    return out


def run_pair(case, twin_hook=None, draws_hook=None, warmup=0, at_step=None):
    """Three steps of the model and of its twin from the same start; returns
    (model, twin, loss_diffs) with loss_diffs[key] the worst relative loss difference.
    ``warmup`` model steps first (the twin then starts from their optimizer state), and
    ``at_step`` sets the step counter (schedules) before the twin is made."""
    model = build(case)
    for x, y in batches(case, model, seed=1)[:warmup]:
        model.train_step(x, y)
    if at_step is not None:
        model.step = at_step
    twin = make_twin(model)
    model.start = {k: net.state_dict() for k, net in model.networks().items()}
    if twin_hook:
        twin_hook(twin)
    loss_diffs = {}
    for step, (x, y) in enumerate(batches(case, model)):
        with record_draws(model) as rec:
            logs = model.train_step(x, y)
        arrays = list(rec.arrays)
        assert arrays, f"{case}: the model drew nothing in step {step}"
        if draws_hook:
            arrays = draws_hook(step, arrays, rec.calls)
        it = iter(arrays)
        tlogs = twin.train_step(torch.from_numpy(x), None if y is None else torch.from_numpy(y),
                                draws=it)
        left = sum(1 for _ in it)
        assert left == 0, f"{case}: step {step}: the twin left {left} of {len(arrays)} draws unused"
        for k, v in tlogs.items():
            assert isinstance(v, torch.Tensor) and v.dim() == 0, f"{case}: {k} is not a 0-d tensor"
            if k in logs:
                ref = float(logs[k])
                d = abs(float(v) - ref) / max(abs(ref), 1e-3)   # WGAN's loss_d: a difference
                loss_diffs[k] = max(loss_diffs.get(k, 0.0), d)
    return model, twin, loss_diffs


def null_gradient_tensors(model):
    """{"net.layer.bias": "net.bn.running_mean"} for every bias directly followed by a
    BatchNorm in a Sequential of the model's networks (its exact gradient is zero)."""
    out = {}
    for k, net in model.networks().items():
        for prefix, mod in net.named_modules():
            if type(mod).__name__ != "Sequential":
                continue
            kids = list(mod._modules.items())
            for (na, a), (nb, b) in zip(kids, kids[1:]):
                if (type(a).__name__ in ("Linear", "Conv2d", "ConvTranspose2d")
                        and getattr(a, "bias", None) is not None
                        and "BatchNorm" in type(b).__name__):
                    pre = f"{k}.{prefix}." if prefix else f"{k}."
                    out[f"{pre}{na}.bias"] = f"{pre}{nb}.running_mean"
    return out


def check_against(model, twin, start, case):
    """Assert the comparison; returns the worst (rel, name) of the regular tensors and of the
    zero-gradient ones."""
    (_, _), table = compare_parameters(model, twin)
    null = null_gradient_tensors(model)
    exempt = set(null) | set(null.values())
    regular = {k: v for k, v in table.items() if k not in exempt}
    rel, name = max((v, k) for k, v in regular.items())
    assert rel <= TOL, (f"{case}: after {STEPS} steps the twin's {name} differs by {rel:.3g} "
                        f"relative (> {TOL:g}); worst tensors: {report(regular)}")
    worst_null = (0.0, None)
    nets = model.networks()
    for bias, rm in null.items():
        k, n = bias.split(".", 1)
        now = nets[k].state_dict()[n]
        moved = np.linalg.norm(now - start[k][n]) / np.linalg.norm(now)
        assert moved <= NOISE_TOL, (f"{case}: {bias} is followed by BatchNorm (zero gradient) but "
                                    f"the model moved it by {moved:.3g} relative")
        for t in (bias, rm):
            assert table[t] <= NOISE_TOL, f"{case}: the twin's {t} differs by {table[t]:.3g}"
            worst_null = max(worst_null, (table[t], t), key=lambda p: p[0])
    return (rel, name), worst_null


def report(table, n=5):
    worst = sorted(table.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k}: {v:.3g}" for k, v in worst)


@pytest.mark.parametrize("case", sorted(CASES))
def test_twin_matches_three_steps(case):
    model, twin, loss_diffs = run_pair(case)
    assert model.step == twin.step == STEPS
    (rel, name), (nrel, nname) = check_against(model, twin, model.start, case)
    print(f"\n{case}: worst tensor {name} rel {rel:.3g}"
          + (f"; worst zero-gradient tensor {nname} rel {nrel:.3g}" if nname else "")
          + f"; losses { {k: f'{v:.2g}' for k, v in loss_diffs.items()} }")
    bad = {k: v for k, v in loss_diffs.items() if not v <= TOL}
    assert not bad, f"{case}: logged losses differ from the twin's: {bad}"
    # the comparison covered every tensor, and the steps moved them
    _, table = compare_parameters(model, twin)
    assert len(table) == sum(len(net.state_dict()) for net in model.networks().values())


@pytest.mark.parametrize("case, at_step", [("gan", 60000), ("dcgan", None), ("wgan_mlp", None),
                                           ("wgan_gp_mlp", None), ("vae", None), ("aae", None)])
def test_twin_continues_a_trained_model(case, at_step):
    """A twin made after two model steps takes over the optimizer state (SGD momentum buffers,
    Adam moments and step counts, RMSprop and Adagrad accumulators) and the schedule's step:
    the next three steps agree as from a fresh start."""
    model, twin, loss_diffs = run_pair(case, warmup=2, at_step=at_step)
    (rel, name), _ = check_against(model, twin, model.start, case)
    assert all(v <= TOL for v in loss_diffs.values()), loss_diffs
    if at_step is not None:
        lr, mom = model.schedule()
        group = twin.optimizers["G"].param_groups[0]
        assert (group["lr"], group["momentum"]) == model.schedule(model.step - 1)
        assert mom > model.hp["momentum"]


def test_twin_step_moves_parameters():
    """The compared steps are not no-ops: the parameters move far more than the tolerance."""
    model = build("dcgan")
    before = {k: net.state_dict() for k, net in model.networks().items()}
    for x, y in batches("dcgan", model):
        model.train_step(x, y)
    for k, net in model.networks().items():
        for n, a in net.state_dict().items():
            if n.endswith("weight"):
                moved = np.linalg.norm(a - before[k][n]) / np.linalg.norm(before[k][n])
                assert moved > 1e3 * TOL, f"{k}.{n} moved only {moved:.3g}"


@pytest.mark.parametrize("case, net_name", [("dcgan", "D"), ("gan", "G")])
def test_comparison_detects_a_changed_learning_rate(case, net_name):
    """A twin whose learning rate differs by one part in a million is reported as different."""
    def hook(twin):
        if case == "gan":                  # SGD: the schedule sets lr from hp every step
            twin.hp["lr"] *= 1 + 1e-6
        else:
            for g in twin.optimizers[net_name].param_groups:
                g["lr"] *= 1 + 1e-6
    model, twin, _ = run_pair(case, twin_hook=hook)
    (rel, name), table = compare_parameters(model, twin)
    assert rel > TOL, f"{case}: a changed lr went unnoticed (worst {name} {rel:.3g})"
    if case == "dcgan":                    # only D's optimizer changed, so only D is off
        assert name.startswith("D."), name
        assert max(v for k, v in table.items() if k.startswith("D.")) > TOL
        # ...in the first step; later G steps see the changed D, so G drifts too, but less
        assert max(v for k, v in table.items() if k.startswith("G.")) < rel


def test_comparison_detects_a_changed_dropout_mask():
    """Replaying the GAN with one dropout mask redrawn gives a reported mismatch."""
    def hook(step, arrays, calls):
        if step != 0:
            return arrays
        i = next(j for j, (meth, _) in enumerate(calls) if meth == "random")
        arrays = list(arrays)
        arrays[i] = 1.0 - arrays[i]        # another keep-mask of the same shape
        return arrays
    model, twin, _ = run_pair("gan", draws_hook=hook)
    (rel, name), _ = compare_parameters(model, twin)
    assert rel > TOL, f"a changed dropout mask went unnoticed (worst {name} {rel:.3g})"


def test_replay_rejects_a_wrong_draw_order():
    model = build("infogan")
    twin = make_twin(model)
    (x, y), = batches("infogan", model)[:1]
    with record_draws(model) as rec:
        model.train_step(x, y)
    swapped = [rec.arrays[1], rec.arrays[0]] + rec.arrays[2:]    # cat before z
    with pytest.raises(RuntimeError, match="draw orders differ|should be integers"):
        twin.train_step(torch.from_numpy(x), draws=iter(swapped))


def test_record_draws_restores_the_stream():
    model = build("gan")
    stream = model.random
    before = stream.state_dict()
    with record_draws(model) as rec:
        model.train_step(*batches("gan", model)[0])
    assert all(name not in vars(stream) for name in ("uniform", "random", "normal", "integers"))
    assert [meth for meth, _ in rec.calls].count("uniform") == 2      # z of the D and G steps
    assert [meth for meth, _ in rec.calls].count("random") == 9       # 3 passes x 3 masks
    assert stream.state_dict()["counter"] > before["counter"]


def test_twin_draws_its_own_noise():
    """draws=None: the benchmark path runs with torch's own random numbers."""
    for case in ("gan", "cgan", "wgan", "wgan_gp", "wgan_gp_mlp", "infogan", "vae", "aae"):
        model = build(case)
        twin = make_twin(model)
        twin.generator = torch.Generator().manual_seed(0)
        (x, y) = batches(case, model)[0]
        out = twin.train_step(torch.from_numpy(x), None if y is None else torch.from_numpy(y))
        assert out and all(torch.isfinite(v) for v in out.values()), (case, out)
        assert twin.step == 1


# ----------------------------------------------------------------------------- WGAN-GP
# The wgan_gp cases above are the independent check of scratchgan.nn.second_order: the critic's
# penalty gradient ∂/∂w λ mean (‖∇ₓD(x̂)‖ − 1)² is hand-written there (input-gradient tape,
# forward tangent, weight-gradient pairings) and computed here by PyTorch's double backward
# (torch.autograd.grad(D(x̂).sum(), x̂, create_graph=True), then backward). Measured in float64
# (seed 0, three steps of n_critic = 5 critic updates and one G update, m = 16): every tensor
# within 1.2e-16 relative (conv: worst D.2.bias 1.15e-16; MLP: worst G.2.weight 1.2e-17);
# logged losses within 5e-15 (em_estimate, a difference of two near-equal means, measured
# against max(|ref|, 1e-3)); over 10 other seeds and data sets at most 4.5e-16 (conv,
# G.3.bias) and 4.7e-17 (MLP). Nothing needs a looser tolerance: the critics are Linear/Conv
# and (Leaky)ReLU, so there is no cancellation like the GAN's last D bias; the critic's last
# bias has an exactly zero gradient (mean D(x̃) − mean D(x) gives +1 − 1, the penalty none),
# so Adam leaves it where it started in both implementations (difference 0).

@pytest.mark.parametrize("case", ["wgan_gp", "wgan_gp_mlp"])
def test_wgan_gp_draw_order(case):
    """The model draws, per critic iteration, z (normal, (m, z_dim)) then ε (uniform, one per
    sample: (m, 1, 1, 1) for images, (m, 1) for flat data), then the G step's z; the twin
    consumes exactly these (run_pair checks that none is left over)."""
    model = build(case)
    x, _ = batches(case, model)[0]
    with record_draws(model) as rec:
        model.train_step(x)
    z = ("normal", (M, model.hp["z_dim"]))
    eps = ("uniform", (M,) + (1,) * len(model.data_shape))
    assert rec.calls == [z, eps] * model.hp["n_critic"] + [z]
    assert all(0.0 <= a.min() and a.max() < 1.0 for (meth, _), a in zip(rec.calls, rec.arrays)
               if meth == "uniform")


@pytest.mark.parametrize("case", ["wgan_gp", "wgan_gp_mlp"])
def test_comparison_detects_a_changed_penalty_weight(case):
    """A twin whose λ differs by one part in a million is reported as different, first in the
    critic: the penalty's (second-order) gradient reaches the weights and the 1e-10 comparison
    sees it. (Measured at seed 0: worst difference 6.8e-9 conv, 3.1e-9 MLP, against 1e-16
    with the same λ. Adam's β1 = 0 makes each update nearly scale-invariant per element, so
    a change of λ shows only through the ratio of the penalty to the Wasserstein term.)"""
    def hook(twin):
        twin.hp["lambda_gp"] *= 1 + 1e-6
    model, twin, _ = run_pair(case, twin_hook=hook)
    (rel, name), table = compare_parameters(model, twin)
    assert rel > TOL, f"{case}: a changed λ went unnoticed (worst {name} {rel:.3g})"
    assert name.startswith("D."), name
    assert max(v for k, v in table.items() if k.startswith("G.")) < rel


def test_wgan_gp_penalty_gradient_is_not_negligible():
    """With λ = 0 in the twin (the penalty's gradient dropped) the critic ends far from the
    model's, not just beyond 1e-10: the compared steps exercise the second-order backward."""
    def hook(twin):
        twin.hp["lambda_gp"] = 0.0
    model, twin, _ = run_pair("wgan_gp", twin_hook=hook)
    (rel, name), _ = compare_parameters(model, twin)
    assert name.startswith("D.") and rel > 1e-3, (name, rel)
