"""benchmarks/lockstep.py: two models of one seed on the same minibatches. On two CPU models
every parameter must stay equal (the script's self-check; on a GPU it measures a gap)."""
import json

import pytest
from conftest import load_benchmark

mod = load_benchmark("lockstep")


@pytest.mark.parametrize("model,sets,nets", [
    ("bigan", ["updates=alternating"], {"E", "G", "D"}),
    ("betavae", ["objective=capacity", "optimizer=adam", "lr=5e-4", "capacity_steps=10"],
     {"encoder", "decoder"}),
])
def test_cpu_against_cpu_is_exact(tmp_path, model, sets, nets):
    out = tmp_path / "lockstep.json"
    mod.main(["--model", model, "--a", "cpu", "--b", "cpu", "--steps", "3", "--quick",
              "--out", str(out), "--set", *sets])
    res = json.loads(out.read_text())
    assert res["model"] == model and [r["step"] for r in res["rows"]] == [1, 2, 3]
    for key, val in (s.split("=") for s in sets):
        assert str(res["hyper"][key]) == val or res["hyper"][key] == float(val)
    for r in res["rows"]:
        assert set(r["gap"]) == nets and max(r["gap"].values()) == 0.0
        assert r["a"] == r["b"]


def test_a_different_setting_changes_the_run(tmp_path):
    """--set reaches the model: the capacity objective logs its capacity, the default does not."""
    out = tmp_path / "a.json"
    mod.main(["--model", "betavae", "--a", "cpu", "--b", "cpu", "--steps", "1", "--quick",
              "--out", str(out), "--set", "objective=capacity", "capacity_steps=4"])
    assert "capacity" in json.loads(out.read_text())["rows"][0]["a"]
    mod.main(["--model", "betavae", "--a", "cpu", "--b", "cpu", "--steps", "1", "--quick",
              "--out", str(out)])
    assert "capacity" not in json.loads(out.read_text())["rows"][0]["a"]


def test_parse_sets():
    assert mod.parse_sets(["lr=5e-4", "capacity_steps=10", "updates=alternating", "beta=4.0"]) \
        == {"lr": 5e-4, "capacity_steps": 10, "updates": "alternating", "beta": 4.0}
    assert isinstance(mod.parse_sets(["beta=4.0"])["beta"], float)
    with pytest.raises(SystemExit, match="key=value"):
        mod.parse_sets(["lr"])


@pytest.mark.parametrize("bad", [["--steps", "0"], ["--batch", "0"]])
def test_refuses_bad_counts_before_writing(tmp_path, capsys, bad):
    with pytest.raises(SystemExit):
        mod.main(["--model", "bigan", "--a", "cpu", "--b", "cpu", "--quick",
                  "--out", str(tmp_path / "x.json"), *bad])
    assert f"{bad[0]} must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
