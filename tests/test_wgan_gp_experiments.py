"""benchmarks/wgan_gp_experiments.py: each subcommand in --quick mode, and the ALI mode count."""
import json
import pathlib

import numpy as np
import pytest

from conftest import load_benchmark
from scratchgan.data.toy import toy_modes

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exp():
    return load_benchmark("wgan_gp_experiments")


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


def test_mnist_quick(exp, tmp_path, data_dir):
    exp.main(["mnist", "--quick", "--device", "cpu", "--data-dir", data_dir,
              "--out-dir", str(tmp_path)])
    d = json.loads((tmp_path / "mnist.json").read_text())
    keys = {"experiment", "settings", "runs", "short_budget", "paper_generator_iterations",
            "models", "reference", "table_markdown", "figure", "command", "device_name", "quick"}
    assert keys <= set(d), keys - set(d)
    assert d["quick"] is True and d["paper_generator_iterations"] == 200_000
    assert "200k" in d["short_budget"] and "warmup=False" in d["models"]["wgan"]
    assert d["command"].startswith("python benchmarks/wgan_gp_experiments.py mnist --quick")
    assert set(d["runs"]) == {"wgan", "wgan-gp"}
    iters, every = d["settings"]["iterations"], d["settings"]["eval_every"]
    for name, r in d["runs"].items():
        assert r["error"] is None and r["stopped_early"] is False
        assert r["iterations_done"] == iters
        assert r["hyper"]["n_critic"] == 5
        assert [e["iteration"] for e in r["evals"]] == list(range(0, iters + 1, every))
        for e in r["evals"]:
            assert {"is", "is_std", "fd", "wall_s", "train_s", "mean_loss_d",
                    "mean_em_estimate"} <= set(e)
            assert 1.0 <= e["is"] <= 10.0 and e["fd"] >= 0
        assert r["evals"][0]["mean_loss_d"] is None and r["evals"][-1]["mean_loss_d"] is not None
        cv = r["loss_curve"]
        assert len(cv["iteration"]) == len(cv["neg_loss_d"]) == len(cv["em_estimate"]) >= 1
        assert all(v is not None for v in cv["neg_loss_d"])
    w = d["runs"]["wgan"]
    assert w["hyper"]["warmup"] is False and w["hyper"]["clip"] == 0.01 and w["arch"] == "dcgan"
    # WGAN logs em_estimate = -loss_d exactly
    assert np.allclose(w["loss_curve"]["em_estimate"], w["loss_curve"]["neg_loss_d"])
    assert d["runs"]["wgan-gp"]["hyper"]["lambda_gp"] == 10.0
    assert d["reference"]["is_real_test"][0] > 5
    png = tmp_path / "mnist.png"
    assert png.is_file() and 1000 < png.stat().st_size <= exp.MAX_PNG_BYTES
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_time_limit_stops_early(exp, tmp_path, data_dir):
    exp.main(["mnist", "--quick", "--device", "cpu", "--data-dir", data_dir,
              "--out-dir", str(tmp_path), "--time-limit", "0"])
    d = json.loads((tmp_path / "mnist.json").read_text())
    for r in d["runs"].values():
        assert r["stopped_early"] is True and r["stopped_at"] == r["iterations_done"] == 0
        assert [e["iteration"] for e in r["evals"]] == [0]
    assert (tmp_path / "mnist.png").is_file()


@pytest.mark.gpu
@pytest.mark.parametrize("cmd", ["toy", "modes"])
def test_toy_and_modes_quick_on_the_gpu(exp, tmp_path, cmd):
    """--device cuda: every model's step is captured as a CUDA graph (none falls back to eager,
    which would record its reason), and the record names the device."""
    exp.main([cmd, "--quick", "--device", "cuda", "--out-dir", str(tmp_path)])
    data = json.loads((tmp_path / f"{cmd}.json").read_text())
    assert data["device"] == "cuda" and data["device_name"] != "cpu"
    if cmd == "toy":
        runs = list(data["panels"].values())
    else:
        runs = [r for m in data["results"].values() for r in m["runs"]]
    assert runs and all(r["graph_fallback_reason"] is None for r in runs), runs


@pytest.mark.parametrize("name", ["gan", "wgan-gp"])
def test_critic_values_in_chunks_equal_one_pass(exp, name):
    """The contour grid is scored a chunk at a time; the chunks must join in order."""
    model = exp.build_model(name, 8, seed=0)
    pts = np.random.default_rng(3).normal(size=(37, 2))
    whole = exp.critic_values(model, pts, chunk=1000)
    parts = exp.critic_values(model, pts, chunk=5)
    assert whole.shape == (37,)
    # float32 matmuls of other batch sizes may round differently in the last bits
    np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-6)
    assert np.ptp(whole) > 1e-3            # the points score differently: order is tested
