"""benchmarks/wgan_gp_experiments.py: each subcommand in --quick mode, and the ALI mode count."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from scratchgan.data.toy import toy_modes

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exp():
    spec = importlib.util.spec_from_file_location(
        "wgan_gp_experiments", ROOT / "benchmarks" / "wgan_gp_experiments.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(exp, tmp_path, cmd, name, keys):
    exp.main([cmd, "--quick", "--out-dir", str(tmp_path)])
    data = json.loads((tmp_path / f"{name}.json").read_text())
    assert keys <= set(data), keys - set(data)
    png = tmp_path / f"{name}.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["quick"] is True
    return data


def test_capacity_quick(exp, tmp_path):
    d = _run(exp, tmp_path, "capacity", "capacity",
             {"experiment", "runs", "scaled_down", "iterations", "width", "depth", "figure"})
    assert set(d["runs"]) == {"wgan clip c=0.01", "wgan-gp"}
    for r in d["runs"].values():
        h = r["history"][-1]
        assert len(h["signal_norms"]) == d["depth"] + 1      # the data x, then each hidden layer
        assert len(h["weight_grad_norms"]) == d["depth"] + 1
        assert h["input_grad_norm_mean"] == pytest.approx(h["signal_norms"][0], rel=1e-6)
    clip = d["runs"]["wgan clip c=0.01"]
    assert np.max(np.abs(clip["weights"])) <= 0.01 + 1e-7   # clipping holds
    assert 0 <= clip["weight_stats"]["fraction_at_clip"] <= 1


def test_toy_quick(exp, tmp_path):
    d = _run(exp, tmp_path, "toy", "toy",
             {"experiment", "panels", "scaled_down", "paper_settings", "iterations", "width"})
    assert len(d["panels"]) == 9
    assert "scaled down" in d["scaled_down"] and "100k" in d["scaled_down"]
    assert 1 <= d["panels"]["grid25/wgan-gp"]["modes_ali"] <= 25
    assert "modes_ali" not in d["panels"]["swissroll/gan"]


def test_modes_quick(exp, tmp_path):
    d = _run(exp, tmp_path, "modes", "modes",
             {"protocol", "reduced_protocol", "results", "published", "table_markdown",
              "runs_per_model"})
    assert d["reduced_protocol"] is True and "REDUCED" in d["protocol"]
    assert set(d["results"]) == {"gan", "wgan", "wgan-gp"}
    for r in d["results"].values():
        assert len(r["runs"]) == d["runs_per_model"] == 2
        assert 1 <= r["mean"] <= 25
    assert d["published"]["GAN"]["mean"] == 10.4 and d["published"]["ALI"]["mean"] == 13.4
    assert "10.4 ± 9.2" in d["table_markdown"]


def test_grid25_is_alis_5x5_grid():
    c = toy_modes("grid25")
    assert c.shape == (25, 2)
    assert sorted({tuple(p) for p in c.tolist()}) == [(x, y) for x in (-4, -2, 0, 2, 4)
                                                      for y in (-4, -2, 0, 2, 4)]


def test_mode_assignment_hand_made(exp):
    c = toy_modes("grid25")
    # samples near 4 chosen modes (a small offset), one far outside the grid (assigned to the
    # nearest corner), one exactly between two modes on the boundary of both cells
    want = [0, 6, 12, 24]
    x = [c[k] + [0.3, -0.2] for k in want] + [c[k] + [-0.1, 0.4] for k in want]
    x.append([40.0, -40.0])                               # nearest corner: (4, -4)
    x = np.array(x)
    corner = int(np.flatnonzero((c == [4, -4]).all(axis=1))[0])
    assert corner not in want
    a = exp.assign_modes(x, c)
    assert a[:8].tolist() == want + want
    assert a[8] == corner
    k, counts = exp.modes_covered(x, c)
    covered = set(want) | {corner}
    assert k == len(covered)
    assert set(np.flatnonzero(counts).tolist()) == covered
    assert counts.sum() == len(x)
    # a mode is dropped only when nothing is assigned: one sample is enough to cover it
    k1, _ = exp.modes_covered(c[[3]] + 0.9, c)
    assert k1 == 1
    # the assignment does not depend on the components' scale (equal isotropic components)
    assert (exp.assign_modes(x * 3, c * 3) == a).all()
