"""The study files of the encoder GANs (BiGAN, ALI), the conditional and semi-supervised VAEs
(CVAE, M2, M1+M2) and the β-VAE: valid TOML, registered evaluators, real hyperparameters, and
every metric a ``[[paper]]`` entry names is one the study's evaluations return (run on a small
model of the study's settings and small stand-in data)."""
import math
import pathlib
import tomllib

import numpy as np
import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.data.toy import sample_toy
from scratchgan.metrics.evaluators import EVALUATORS, EvalContext, get_evaluator
from scratchgan.models import LOOP_KEYS, REGISTRY, get_model

STUDIES = pathlib.Path(scratchgan.metrics.__file__).resolve().parents[1] / "studies"
NAMES = ["bigan-1nn", "ali-mixture", "gan-mixture", "cvae-ncll", "cvae-ncll-q2", "cvae-ncll-q3",
         "m2-100labels", "m1m2-100labels", "betavae-metric", "betavae-metric-vae",
         "betavae-metric-beta16", "betavae-metric-capacity"]
SHAPES = {"mnist": (1, 28, 28), "grid25": (2,), "dsprites": (1, 64, 64)}
#: smaller networks for the evaluation check (the study's other settings kept)
SMALL = {"bigan": {"hidden": 32}, "ali": {"gen_hidden": 16, "disc_hidden": 8},
         "cvae": {"hidden": 16, "latent_dim": 4},
         "m2": {"hidden": 16, "latent_dim": 4, "m1_hidden": 16, "m1_latent": 4, "m1_steps": 2,
                "n_labels": 20, "labelled_batch": 10},
         "betavae": {"enc_hidden": 32, "dec_hidden": 32}}
#: smaller evaluation sizes
SMALL_OPTIONS = {"n_reference": 150, "n_samples": 60, "n_train": 30, "n_eval": 20, "L": 4,
                 "steps": 5, "n_images": 16, "elbo_draws": 2, "epochs": 1}


def load(name):
    return tomllib.loads((STUDIES / f"{name}.toml").read_text())


def test_every_study_file_of_these_families_is_listed():
    """A new study of the models here is added to NAMES (and so checked)."""
    models = {"bigan", "ali", "cvae", "m2", "betavae"}
    here = {p.stem for p in STUDIES.glob("*.toml") if load(p.stem).get("model") in models
            and not p.stem.startswith("cvae-quadrants")}   # the image-to-image studies' own
    assert here == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_study_keys_are_real(name):
    s = load(name)
    assert s["name"] == name and s["model"] in REGISTRY and s["dataset"] in SHAPES
    defaults = {k for k in REGISTRY[s["model"]].defaults if k not in LOOP_KEYS}
    assert set(s.get("set", {})) <= defaults, set(s["set"]) - defaults
    seed_hyper = s.get("seed_hyper", [])
    assert set(seed_hyper) <= defaults and not set(seed_hyper) & set(s.get("set", {}))
    for e in s["evaluations"]:
        get_evaluator(e["name"])                          # a KeyError names the unknown one
        assert isinstance(e.get("options", {}), dict)
    sch = s["schedule"]
    for k in ("batch", "full", "short", "eval_every"):
        assert isinstance(sch[k], int) and sch[k] > 0, k
    assert sch["short"] <= sch["full"] and sch["full_source"]
    assert bool(s["variant"]) == bool(s["variant_note"])
    assert s.get("paper") or s.get("paper_note")          # a number, or why there is none
    for p in s.get("paper", []):
        assert p["direction"] in ("higher", "lower") and p["target_by"] in ("paper", "project")
        assert isinstance(p["protocol_matches"], bool) and p["source"] and p["protocol"]
        assert p["protocol_matches"] or p.get("protocol_note")   # how ours departs, said
        assert math.isfinite(p["value"]) and math.isfinite(p.get("target", p["value"]))
    # the settings build the model (a bad value is refused by the constructor)
    hyper = dict(s.get("set", {}), **{k: s["seeds"][0] for k in seed_hyper})
    get_model(s["model"])(SHAPES[s["dataset"]], rng=0, **hyper)


def _data(dataset, rng):
    if dataset == "grid25":
        x = sample_toy("grid25", 200, rng)
        return {"name": "grid25", "x_train": x, "y_train": None, "x_test": x[:50],
                "y_test": None}
    shape = SHAPES[dataset]
    y = np.repeat(np.arange(10), 20)
    yt = np.repeat(np.arange(10), 4)
    x = rng.random((len(y),) + shape).astype(np.float32)
    xt = rng.random((len(yt),) + shape).astype(np.float32)
    return {"name": dataset, "x_train": x, "y_train": y, "x_test": xt, "y_test": yt}


@pytest.mark.parametrize("name", NAMES)
def test_paper_metrics_are_what_the_evaluations_return(name):
    s = load(name)
    rng = np.random.default_rng(0)
    data = _data(s["dataset"], rng)
    hyper = dict(s.get("set", {}), **{k: 0 for k in s.get("seed_hyper", [])})
    hyper.update(SMALL[s["model"]])
    if hyper.get("m1_min_std") is not None:    # three M1 steps from N(0, 0.001²) weights
        hyper["m1_min_std"] = 0.0
    model = get_model(s["model"])(SHAPES[s["dataset"]], rng=0, **hyper)
    if hasattr(model, "attach_data"):
        model.attach_data(data["x_train"], data["y_train"])
    for _ in range(3):                                    # M1+M2: past its M1 phase
        model.train_step(data["x_train"][:10])
    ctx = EvalContext(model=model, data=data, seed=0)
    returned = {}
    for e in s["evaluations"]:
        opts = {k: SMALL_OPTIONS.get(k, v) for k, v in e.get("options", {}).items()}
        returned.update(EVALUATORS[e["name"]](ctx, **opts))
    for p in s.get("paper", []):
        assert p["metric"] in returned, (p["metric"], sorted(returned))
        assert isinstance(returned[p["metric"]], (int, float))
