"""The WGAN-GP studies' pieces: ALI's mode count and the toy-modes evaluator on hand-made
samples, the critic diagnostics of Figure 1, and GAN / WGAN / WGAN-GP built from the studies'
[set], trained through the Trainer and scored by the registry."""
import math
import tomllib

import numpy as np
import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.data.toy import sample_toy, toy_modes
from scratchgan.metrics import toy as TY
from scratchgan.metrics.critic import critic_gradients, critic_weight_stats
from scratchgan.metrics.evaluators import EvalContext, get_evaluator
from scratchgan.models import get_model
from scratchgan.train import Trainer

from test_study_files import STUDIES


def study(name):
    with open(STUDIES / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


def test_grid25_is_alis_5x5_grid():
    c = toy_modes("grid25")
    assert c.shape == (25, 2)
    assert sorted({tuple(p) for p in c.tolist()}) == [(x, y) for x in (-4, -2, 0, 2, 4)
                                                      for y in (-4, -2, 0, 2, 4)]


def test_mode_assignment_hand_made():
    c = toy_modes("grid25")
    want = [0, 6, 12, 24]
    x = [c[k] + [0.3, -0.2] for k in want] + [c[k] + [-0.1, 0.4] for k in want]
    x.append([40.0, -40.0])                               # nearest corner: (4, -4)
    x = np.array(x)
    corner = int(np.flatnonzero((c == [4, -4]).all(axis=1))[0])
    assert corner not in want
    a = TY.assign_modes(x, c)
    assert a[:8].tolist() == want + want and a[8] == corner
    k, counts = TY.modes_covered(x, c)
    covered = set(want) | {corner}
    assert k == len(covered) and set(np.flatnonzero(counts).tolist()) == covered
    assert counts.sum() == len(x)
    assert TY.modes_covered(c[[3]] + 0.9, c)[0] == 1       # one sample covers a mode
    assert (TY.assign_modes(x * 3, c * 3) == a).all()      # independent of the scale
    with pytest.raises(ValueError, match="expected samples"):
        TY.assign_modes(x[:, :1], c)


class PointsModel:
    """A stand-in generator whose samples are the rows of ``pool`` in order."""

    def __init__(self, pool):
        self.pool, self.at = np.asarray(pool, np.float64), 0

    def sample_noise(self, n, rng=None, labels=None):
        i = (self.at + np.arange(n)) % len(self.pool)
        self.at += n
        return {"i": i}

    def generate(self, noise):
        return self.pool[noise["i"]]


def test_toy_modes_evaluator_known_cases():
    ev = get_evaluator("toy-modes")
    c = toy_modes("grid25")
    every = ev(EvalContext(PointsModel(c), {"name": "grid25"}), n_samples=250)
    assert every == {"modes_responsibility": 25, "modes_3sigma": 25,
                     "within_3sigma_fraction": 1.0, "samples_finite": 1, "num_modes": 25}
    one = ev(EvalContext(PointsModel(c[:1] + 1.0), {"name": "grid25"}), n_samples=100)
    assert one["modes_responsibility"] == 1 and one["modes_3sigma"] == 0      # 1.0 off: 20 sigma
    assert one["within_3sigma_fraction"] == 0.0
    with pytest.raises(ValueError, match="toy mixture with known means"):
        ev(EvalContext(PointsModel(c), {"name": "swissroll"}))


def _train(name, steps, x, batch=32, **override):
    s = study(name)
    model = get_model(s["model"])(x.shape[1:], rng=0, **{**s["set"], **override})
    Trainer(model, x, batch_size=batch, steps=steps, out_dir=_train.tmp / name, progress=False,
            epoch_outputs=False).fit()
    return model


@pytest.fixture(autouse=True)
def _tmp(tmp_path):
    _train.tmp = tmp_path


@pytest.mark.parametrize("name", ["gan-toy-grid25", "wgan-toy-grid25", "wgan-gp-toy-grid25"])
def test_toy_studies_train_through_the_trainer_and_count_modes(name):
    s = study(name)
    x = sample_toy("grid25", 512, np.random.default_rng(0)).astype(np.float32)
    model = _train(name, 3, x, toy_hidden=16, toy_units=16) if s["model"] == "gan" else \
        _train(name, 3, x, mlp_hidden=16)
    if s["model"] != "gan":
        assert model.batches_per_step() == 5 and model.hp["z_dim"] == 2
    if s["model"] == "wgan-gp":
        assert model.hp["lambda_gp"] == 0.1                 # gan_toy.py's on toy data
    rec = get_evaluator("toy-modes")(EvalContext(model, {"name": "grid25", "x_train": x}),
                                     n_samples=500)
    assert 1 <= rec["modes_responsibility"] <= 25 and 0 <= rec["modes_3sigma"] <= 25


@pytest.mark.parametrize("name", ["wgan-capacity-swissroll-c0.01", "wgan-gp-capacity-swissroll"])
def test_critic_gradients_through_depth(name):
    s = study(name)
    x = sample_toy("swissroll", 512, np.random.default_rng(0)).astype(np.float32)
    model = _train(name, 3, x, mlp_hidden=8)
    depth = s["set"]["mlp_layers"]
    rec = get_evaluator("critic-gradients")(EvalContext(model, {"x_train": x}), n_points=64)
    assert len(rec["signal_norms"]) == len(rec["weight_grad_norms"]) == depth + 1
    assert rec["input_grad_norm_mean"] == pytest.approx(rec["signal_norms"][0], rel=1e-6)
    assert all(math.isfinite(v) and v >= 0 for v in rec["signal_norms"])
    if s["model"] == "wgan":
        c = s["set"]["clip"]
        assert rec["weight_abs_max"] <= c + 1e-7            # clipping holds after the steps
        assert 0 <= rec["fraction_at_clip"] <= 1
        assert all(float(np.abs(p.grad).max()) == 0 for p in model.D.parameters())
    else:
        assert "fraction_at_clip" not in rec


def test_critic_weight_stats_known_case():
    from scratchgan import nn
    from scratchgan.metrics.critic import linear_layers
    net = nn.Sequential(nn.Linear(2, 3, rng=np.random.default_rng(0)))
    w = linear_layers(net)[0].weight.data
    w[...] = np.array([0.01, -0.01, 0.005, 0.0, 0.01, -0.002]).reshape(w.shape)
    st = critic_weight_stats(net, clip=0.01)
    assert st["weight_abs_max"] == pytest.approx(0.01) and st["fraction_at_clip"] == 0.5
    with pytest.raises(ValueError, match="one shape"):
        critic_gradients(None, np.zeros((3, 2)), np.zeros((4, 2)), np.random.default_rng(0))


@pytest.mark.parametrize("name", ["wgan-gp-mnist-lenet", "wgan-clipping-mnist-lenet"])
def test_mnist_studies_build_the_papers_settings_and_are_scored(name):
    s = study(name)
    m = get_model(s["model"])
    lo, hi = m.data_range
    x = np.random.default_rng(0).uniform(lo, hi, (64, 1, 28, 28)).astype(np.float32)
    small = {"dim": 8} if s["model"] == "wgan-gp" else {"ngf": 8, "ndf": 8}
    model = _train(name, 2, x, batch=8, **small)
    assert model.hp["n_critic"] == 5
    if s["model"] == "wgan-gp":
        assert model.arch == "mnist" and model.hp["lambda_gp"] == 10.0
        assert tuple(model.hp["betas"]) == (0.0, 0.9)
    else:
        assert model.arch == "dcgan" and model.hp["warmup"] is False and model.hp["clip"] == 0.01
    from scratchgan.metrics.classifier import weights_available
    if not weights_available():
        pytest.skip("LeNet weights not shipped")
    ctx = EvalContext(model, {"x_test": x, "name": "mnist"})
    is_ = get_evaluator("lenet-is")(ctx, n_samples=40, splits=2)
    fd = get_evaluator("lenet-fd")(ctx, n_samples=40)
    assert 1.0 <= is_["is_lenet"] <= 10.0 and fd["fd_lenet"] >= 0
