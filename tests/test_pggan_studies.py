"""The pggan studies' pieces run the way the study runner runs them: the model built from a
study's [set] (and short_set), trained through the library's Trainer, whose ``train_step``
takes the critic iterations and whose ``apply_schedule`` grows the networks, then scored by the
registered evaluators. Synthetic data, tiny schedules; everything is written under tmp_path."""
import json
import tomllib

import numpy as np
import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.metrics.evaluators import EvalContext, get_evaluator
from scratchgan.models import get_model
from scratchgan.train import Trainer

from test_study_files import STUDIES


def study(name):
    with open(STUDIES / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


def blobs(n, channels, seed=0):
    """Gaussian blobs in [-1, 1] at random places: data with structure, no download."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    x = np.empty((n, channels, 32, 32), np.float32)
    for i in range(n):
        for c in range(channels):
            cy, cx = r.integers(8, 24, 2)
            x[i, c] = 2 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0) - 1
    return x


def test_growing_row_trains_through_the_trainer_and_grows(tmp_path):
    s = study("pggan-mnist1k-progression")
    hp = {**s["set"], **s["schedule"]["short_set"], "stable_images": 40, "fade_images": 80}
    model = get_model("pggan")((3, 32, 32), rng=0, **hp)
    assert model.batches_per_step() == 5               # the critic iterations of one update
    x = blobs(64, 3)
    steps = 12
    tr = Trainer(model, x, batch_size=8, steps=steps, out_dir=tmp_path / "run", seed=0,
                 progress=False, log_every=1, epoch_outputs=False)
    tr.fit()
    assert model.images_shown() == steps * 5 * 8
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # a record holds the phase after its step: the first update trained at 4x4, the next phase
    # is the fade-in to 8x8 (alpha 0), and the run ends stable at 32x32
    assert model.phase(0)[:2] == (4, False)
    assert (recs[0]["images_shown"], recs[0]["resolution"], recs[0]["alpha"]) == (40, 8, 0.0)
    res = [r["resolution"] for r in recs]
    assert res == sorted(res) and res[-1] == 32 and {8, 16} <= set(res)
    assert recs[-1]["alpha"] == 1.0
    alphas = [r["alpha"] for r in recs if r["resolution"] == 8]
    assert min(alphas) < 1.0 and alphas[-1] == 1.0     # faded in, then stable
    assert model.generate(model.sample_noise(2, rng=np.random.default_rng(0))).shape == (2, 3, 32, 32)


def test_non_growing_row_trains_at_full_resolution(tmp_path):
    s = study("pggan-mnist1k-baseline")
    model = get_model("pggan")((3, 32, 32), rng=0, **s["set"])
    Trainer(model, blobs(32, 3), batch_size=8, steps=2, out_dir=tmp_path / "run",
            progress=False, epoch_outputs=False).fit()
    assert model.host_logs()["resolution"] == 32 and model.images_shown() == 2 * 5 * 8


def test_stacked_mnist_modes_of_a_trained_model(tmp_path):
    from scratchgan.metrics.classifier import weights_available
    if not weights_available():
        pytest.skip("LeNet weights not shipped")
    s = study("pggan-mnist1k-mbstd")
    model = get_model("pggan")((3, 32, 32), rng=0, **s["set"])
    x = blobs(32, 3)
    Trainer(model, x, batch_size=8, steps=2, out_dir=tmp_path / "run", progress=False,
            epoch_outputs=False).fit()
    ctx = EvalContext(model=model, data={"x_train": x, "name": "blobs"}, seed=0)
    st = get_evaluator("stacked-mnist-modes")(ctx, n_samples=64)
    assert st["n"] == 64 and 1 <= st["modes"] <= 64 and 0 <= st["kl"] <= np.log(1000) + 1e-9
    assert 0 <= st["confident_fraction"] <= 1
    assert "mnist_classifier" in ctx.extras                 # loaded once for the study


def test_swd_of_an_untrained_model_is_above_the_real_floor(tmp_path):
    model = get_model("pggan")((1, 32, 32), rng=0, fmap_base=64, fmap_max=16,
                               stable_images=16, fade_images=16)
    x = blobs(80, 1)
    Trainer(model, x, batch_size=8, steps=3, out_dir=tmp_path / "run", progress=False,
            epoch_outputs=False).fit()
    ctx = EvalContext(model=model, data={"x_train": x, "name": "blobs"}, seed=0)
    r = get_evaluator("swd")(ctx, n_images=32, real_floor=True)
    assert 0 < r["swd_real_mean"] < r["swd_mean"]
    assert set(r) >= {"swd_32", "swd_16"}
