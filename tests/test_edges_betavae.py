"""β-VAE's defaults train on every data set the model is run on (stand-in images for the
IDX sets, so no files are needed)."""
from __future__ import annotations

import numpy as np
import pytest

from scratchgan.data.datasets import load_dataset
from scratchgan.data.standin import standin_images
from scratchgan.models import REGISTRY

STEPS, BATCH = 20, 32


def _data(name):
    if name == "dsprites":
        return load_dataset("dsprites", limit=STEPS * BATCH)[0]
    return standin_images(name, STEPS * BATCH)[0]


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", "dsprites"])
def test_defaults_stay_finite_for_20_steps(dataset):
    x = _data(dataset)
    cls = REGISTRY["betavae"]
    model = cls(x.shape[1:], rng=np.random.default_rng(0))
    assert model.hp["adagrad_initial"] == cls.defaults["adagrad_initial"]
    kls, losses = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(STEPS):
            logs = model.train_step(x[s * BATCH:(s + 1) * BATCH])
            kls.append(float(logs["kl"]))
            losses.append(float(logs["loss"]))
    assert np.all(np.isfinite(losses)), f"{dataset}: losses {losses}"
    assert max(kls) < 1e4, f"{dataset}: the KL reached {max(kls):.3g} (steps: {kls})"
