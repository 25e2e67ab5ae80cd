"""The study files (scratchgan/studies/*.toml) against SCHEMA.md, the evaluator registry and the
models' hyperparameters; and the pggan studies' schedules against the authors' config.py."""
import pathlib
import tomllib

import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.data.datasets import DATASETS
from scratchgan.metrics.evaluators import EVALUATORS
from scratchgan.models import REGISTRY

STUDIES = pathlib.Path(scratchgan.metrics.__file__).resolve().parents[1] / "studies"
FILES = sorted(STUDIES.glob("*.toml"))


def load(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def study(name):
    return load(STUDIES / f"{name}.toml")


def test_there_are_studies():
    assert len(FILES) >= 8


def problems(s, stem):
    """What is wrong with study ``s`` (file stem ``stem``), as a list of sentences."""
    out = []

    def need(cond, msg):
        if not cond:
            out.append(msg)

    need(s.get("name") == stem, f"name {s.get('name')!r} is not the file's stem {stem!r}")
    for key in ("title", "citation", "model", "dataset"):
        need(isinstance(s.get(key), str) and s.get(key), f"{key} missing")
    need(s.get("model") in REGISTRY, f"unknown model {s.get('model')!r}")
    need(s.get("dataset") in DATASETS, f"unknown data set {s.get('dataset')!r}")
    if s.get("variant"):
        need(s.get("variant_note"), "a variant without variant_note")
    seeds = s.get("seeds") or []
    need(seeds and all(isinstance(v, int) for v in seeds), "seeds must be a list of ints")
    defaults = REGISTRY[s["model"]].defaults if s.get("model") in REGISTRY else {}
    for key in s.get("set", {}):
        need(key in defaults, f"[set] {key} is not a hyperparameter of {s.get('model')}")
    sch = s.get("schedule", {})
    for key in ("batch", "full", "short", "eval_every"):
        v = sch.get(key)
        need(isinstance(v, int) and not isinstance(v, bool) and v > 0,
             f"schedule.{key} must be a positive int")
    need(sch.get("full_source"), "schedule.full_source missing")
    if isinstance(sch.get("short"), int) and isinstance(sch.get("full"), int):
        need(sch["short"] <= sch["full"], "schedule.short exceeds schedule.full")
    if "short_set" in sch:
        need(sch.get("short_note"), "short_set without short_note")
        for key in sch["short_set"]:
            need(key in defaults, f"short_set {key} is not a hyperparameter of {s.get('model')}")
    need(s.get("evaluations"), "no [[evaluations]]")
    for ev in s.get("evaluations", []):
        need(ev.get("name") in EVALUATORS, f"unknown evaluator {ev.get('name')!r}")
        need(isinstance(ev.get("options", {}), dict), "options must be a table")
    papers = s.get("paper", [])
    need(isinstance(papers, list), "paper must be [[paper]] tables (the paper's name: citation)")
    papers = papers if isinstance(papers, list) else []
    if not papers:
        need(s.get("paper_note"), "no [[paper]] entry and no paper_note saying why")
    for p in papers:
        need(isinstance(p.get("metric"), str), "paper.metric missing")
        need(isinstance(p.get("value"), (int, float)), "paper.value must be a number")
        need(p.get("direction") in ("higher", "lower"), "paper.direction: higher or lower")
        need(p.get("source") and p.get("protocol"), "paper.source and paper.protocol needed")
        need(p.get("target_by", "paper") in ("paper", "project"), "target_by: paper or project")
        need(isinstance(p.get("protocol_matches"), bool), "protocol_matches must be a bool")
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_study_file_follows_the_schema(path):
    assert problems(load(path), path.stem) == []


def test_the_schema_checks_reject_bad_files():
    good = study("pggan-mnist1k-progression")
    assert problems(good, "pggan-mnist1k-progression") == []
    bad = {**good, "set": {**good["set"], "no_such_key": 1},
           "evaluations": [{"name": "no-such-evaluator"}],
           "schedule": {**good["schedule"], "short": good["schedule"]["full"] + 1}}
    del bad["paper_note"]
    got = problems(bad, "other-name")
    for want in ("not the file's stem", "[set] no_such_key", "unknown evaluator",
                 "short exceeds", "no paper_note"):
        assert any(want in g for g in got), (want, got)


# ----------------------------------------------------------------------------- pggan
def _model(s, shape, short=False):
    hp = dict(s.get("set", {}))
    if short:
        hp.update(s["schedule"].get("short_set", {}))
    return REGISTRY[s["model"]](shape, rng=0, **hp)


@pytest.mark.parametrize("row,kimg", [("baseline", 10_000), ("ournorm", 10_000),
                                      ("mbstd", 10_000), ("progression", 15_000)])
def test_mnist1k_schedules_are_the_official_images_in_updates(row, kimg):
    s = study(f"pggan-mnist1k-{row}")
    m = _model(s, (3, 32, 32))
    per_update = m.batches_per_step() * s["schedule"]["batch"]
    assert m.batches_per_step() == 5
    assert s["schedule"]["full"] * per_update == kimg * 1000
    assert s["schedule"]["short"] * 5 == s["schedule"]["full"]
    assert m.hp["progressive"] == (row == "progression")
    assert m.hp["equalized"] == (row != "baseline")
    assert m.hp["mbstd"] == (row in ("mbstd", "progression"))


def test_growing_schedules_reach_full_resolution_before_they_end():
    s = study("pggan-mnist1k-progression")
    per_update = 5 * s["schedule"]["batch"]
    full = _model(s, (3, 32, 32))
    assert full.phase(s["schedule"]["full"] * per_update) == (32, False, 1.0)
    short = _model(s, (3, 32, 32), short=True)
    assert short.phase(s["schedule"]["short"] * per_update) == (32, False, 1.0)
    # without short_set the short run would train its last update at 8x8: the key is needed
    assert full.phase((s["schedule"]["short"] - 1) * per_update)[:2] == (8, False)
    for name in ("pggan-mnist32-swd", "pggan-fashion32-swd"):
        s = study(name)
        m = _model(s, (1, 32, 32), short=True)
        assert m.phase(s["schedule"]["short"] * s["schedule"]["batch"]) == (32, False, 1.0)
        official = _model(s, (1, 32, 32))
        assert official.phase(s["schedule"]["short"] * s["schedule"]["batch"])[0] == 4


# ----------------------------------------------------------------------------- image2image
def test_cyclegan_learning_rate_decay_ends_with_each_schedule():
    for name in ("cyclegan-mnist2restyled", "cyclegan-mnist2restyled-no-cycle",
                 "cyclegan-mnist2restyled-no-identity"):
        s = study(name)
        assert s["set"]["decay_steps"] == s["schedule"]["full"]
        assert s["schedule"]["short_set"]["decay_steps"] == s["schedule"]["short"]


def test_quadrant_studies_pair_pix2pix_with_the_cvae_on_the_same_task():
    for q in (1, 2, 3):
        p, c = study(f"pix2pix-quadrants{q}"), study(f"cvae-quadrants{q}-completion")
        assert p["dataset"] == f"quadrants-paired{q}" and c["set"]["n_revealed"] == q
        assert [e["name"] for e in p["evaluations"]] == [e["name"] for e in c["evaluations"]]
        assert c["schedule"]["full"] == 20 * (60000 // c["schedule"]["batch"])


# ----------------------------------------------------------------------------- vaegan
def test_vaegan_learning_rate_schedule_spans_each_run():
    for name in ("vaegan-cond-mnist-onenn", "vaegan-mnist-quality", "vaegan-eq-mnist-quality"):
        s = study(name)
        assert s["set"]["schedule_length"] == s["schedule"]["full"]
        assert s["schedule"]["short_set"]["schedule_length"] == s["schedule"]["short"]
    assert study("vaegan-cond-mnist-onenn")["schedule"]["full"] == 27500   # the script's
    for name, batch in (("vaegan-mnist-quality", 128), ("vae-mnist-quality", 100)):
        s = study(name)                                                      # 20 epochs each
        assert s["schedule"]["batch"] == batch and s["schedule"]["full"] == 20 * (60000 // batch)


#: narrower networks for the build test, used only where a study's [set] leaves the width alone
NARROW = {"pix2pix": {"ngf": 8, "ndf": 8}, "cyclegan": {"ngf": 8, "ndf": 8},
          "dcgan": {"ngf": 8, "ndf": 8}, "pggan": {"fmap_base": 64, "fmap_max": 16},
          "vaegan": {"enc_hidden": 16, "dec_hidden": 16, "d_hidden": 16},
          "wgan": {"ngf": 8, "ndf": 8}, "wgan-gp": {"dim": 8}}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_study_model_builds_with_its_settings(path):
    """[set] (and [set] with short_set) build the model on the study's data shape: a value the
    model refuses fails here, not on the device."""
    from scratchgan.data.datasets import dataset_info
    s = load(path)
    if s.get("model") not in REGISTRY:
        pytest.skip("unknown model: reported by the schema test")
    cls = REGISTRY[s["model"]]
    shape = tuple(dataset_info(s["dataset"])["shape"])
    settings = [dict(s.get("set", {}))]
    if s["schedule"].get("short_set"):
        settings.append({**settings[0], **s["schedule"]["short_set"]})
    for hp in settings:
        narrow = {k: v for k, v in NARROW.get(s["model"], {}).items()
                  if k not in hp and k in cls.defaults}
        model = cls(shape, rng=0, **hp, **narrow)
        for key, value in hp.items():
            assert model.hp[key] == value, key
