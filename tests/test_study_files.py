"""The study files (scratchgan/studies/*.toml) against SCHEMA.md, the evaluator registry and the
models' hyperparameters; and the pggan studies' schedules against the authors' config.py."""
import pathlib
import tomllib

import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.data.datasets import DATASETS
from scratchgan.metrics.evaluators import EVALUATORS
from scratchgan.models import REGISTRY
from scratchgan.reproduce import StudyError, load_study

STUDIES = pathlib.Path(scratchgan.metrics.__file__).resolve().parents[1] / "studies"
FILES = sorted(STUDIES.glob("*.toml"))


def load(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def study(name):
    return load(STUDIES / f"{name}.toml")


def test_there_are_studies():
    assert len(FILES) >= 8


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_study_file_loads(path):
    """Every study passes the runner's own checks (schema, model, data set, [set] and short_set
    keys against the model's defaults, evaluator names and options against the registry)."""
    study_obj = load_study(str(path))
    assert study_obj.name == path.stem


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("[set]\n", "[set]\nno_such_key = 1\n", 1), "no_such_key"),
    (lambda t: t.replace('name = "pggan-mnist1k-progression"', 'name = "other"'), "stem"),
    (lambda t: t.replace('name = "progressive-growing"', 'name = "no-such-evaluator"', 1)
     if 'name = "progressive-growing"' in t else t.replace('[[evaluations]]\nname = "',
                                                         '[[evaluations]]\nname = "no-such-', 1),
     "evaluator"),
])
def test_the_loader_rejects_bad_files(tmp_path, edit, message):
    text = (STUDIES / "pggan-mnist1k-progression.toml").read_text()
    bad = edit(text)
    assert bad != text
    path = tmp_path / "pggan-mnist1k-progression.toml"
    path.write_text(bad)
    with pytest.raises(StudyError, match=message):
        load_study(str(path))


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
