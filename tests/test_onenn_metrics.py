"""1-NN on generated samples and the reconstruction error (scratchgan.metrics.onenn): known
cases, the evaluators on stand-in models, and the VAE-GAN and VAE trained through the Trainer
as their studies set them, then scored by the registry."""
import math
import tomllib

import numpy as np
import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.metrics import onenn as O
from scratchgan.metrics.evaluators import EvalContext, get_evaluator
from scratchgan.models import get_model
from scratchgan.train import Trainer

from test_study_files import STUDIES

QUICK_NETS = dict(enc_hidden=32, dec_hidden=48, d_hidden=48, latent_dim=4)


def templates(labels):
    """Class c -> an image lit on row block c only: 1-NN separates them exactly."""
    x = np.zeros((len(labels), 1, 28, 28), np.float32)
    for i, c in enumerate(labels):
        x[i, 0, 2 * c + 4:2 * c + 6, 4:24] = 1.0
    return x


def test_nn1_error_known_cases():
    y = np.arange(10).repeat(3)
    x = templates(y).reshape(len(y), -1)
    assert O.nn1_error(x, y, x, y, chunk=7) == 0.0
    assert O.nn1_error(x, (y + 1) % 10, x, y) == 1.0
    half = np.where(np.arange(len(y)) % 2 == 0, y, (y + 1) % 10)
    assert O.nn1_error(x[::3], half[::3], x, y) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="flat"):
        O.nn1_error(x[:, :10], y, x, y)
    with pytest.raises(ValueError, match="one label"):
        O.nn1_error(x, y[:-1], x, y)


class ConditionalStandIn:
    """Generates class templates from the labels (shifted by ``shift``: wrong on purpose);
    encodes to a 2-D code; reconstructs as ``recon(x)``."""
    conditional = True
    data_range = (0.0, 1.0)

    def __init__(self, shift=0, recon=lambda x: x):
        self.shift, self.recon = shift, recon

    def to_model(self, a):
        return a

    def encode(self, x, labels=None):
        return np.stack([x.reshape(len(x), -1).mean(1), np.asarray(labels, float)], 1)

    def sample_noise(self, n, rng=None, labels=None):
        return {"z": rng.standard_normal((n, 2)), "labels": labels}

    def generate(self, noise):
        return templates((np.asarray(noise["labels"]) + self.shift) % 10)

    def reconstruct(self, x, labels=None):
        return self.recon(x)


def _data():
    y_tr, y_te = np.arange(10).repeat(5), np.arange(10).repeat(2)
    return {"x_train": templates(y_tr), "y_train": y_tr, "x_test": templates(y_te),
            "y_test": y_te, "name": "templates"}


def test_onenn_generated_evaluator_right_and_wrong_labels():
    ev = get_evaluator("onenn-generated")
    # the labels cycle through the training labels (0 x5, 1 x5, ...): 50 samples cover all
    good = ev(EvalContext(ConditionalStandIn(), _data()), n_samples=50, prior=True,
              real_reference=True)
    assert good == {"onenn_error": 0.0, "onenn_error_prior": 0.0, "onenn_error_real": 0.0,
                    "n_generated": 50}
    part = ev(EvalContext(ConditionalStandIn(), _data()), n_samples=30)   # classes 0-5 only
    assert part["onenn_error"] == pytest.approx(0.4)
    bad = ev(EvalContext(ConditionalStandIn(shift=1), _data()), n_samples=50)
    assert bad["onenn_error"] == 1.0
    few = ev(EvalContext(ConditionalStandIn(), _data()), n_samples=5)   # labels 0, 0, 0, 0, 0
    assert few["onenn_error"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="label-conditioned"):
        ev(EvalContext(get_model("vae")((1, 28, 28), rng=0), _data()))
    with pytest.raises(ValueError, match="labelled"):
        ev(EvalContext(ConditionalStandIn(), {"x_train": _data()["x_train"]}))


def test_recon_mse_evaluator_known_cases():
    ev = get_evaluator("recon-mse")
    d = _data()
    assert ev(EvalContext(ConditionalStandIn(), d))["recon_mse"] == 0.0
    dark = ev(EvalContext(ConditionalStandIn(recon=np.zeros_like), d), n_test=7)
    assert dark["recon_mse"] == pytest.approx(float((d["x_test"][:7] ** 2).mean()))
    with pytest.raises(ValueError, match="does not reconstruct"):
        ev(EvalContext(object(), d))


def _study(name):
    with open(STUDIES / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("name", ["vaegan-cond-mnist-onenn", "vaegan-eq-mnist-quality"])
def test_vaegan_studies_train_through_the_trainer_and_are_scored(tmp_path, name):
    s = _study(name)
    steps = 4
    hp = {**s["set"], **QUICK_NETS, "schedule_length": steps}
    model = get_model("vaegan")((1, 28, 28), rng=0, **hp)
    d = _data()
    Trainer(model, d["x_train"], d["y_train"], batch_size=10, steps=steps,
            out_dir=tmp_path / "run", progress=False, epoch_outputs=False).fit()
    assert model.step == steps
    ctx = EvalContext(model, d, seed=0)
    for ev in s["evaluations"]:
        if ev["name"].startswith("lenet"):
            continue                                  # the LeNet scores have their own tests
        opts = {**ev.get("options", {}), "n_samples": 40} if ev["name"] == "onenn-generated" \
            else ev.get("options", {})
        rec = get_evaluator(ev["name"])(ctx, **opts)
        assert all(math.isfinite(v) for v in rec.values()), rec
    if name == "vaegan-cond-mnist-onenn":
        assert 0 <= rec["onenn_error"] <= 1 and rec["onenn_error_real"] == 0.0
