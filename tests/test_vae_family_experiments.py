"""benchmarks/vae_family_experiments.py in --quick mode: the CVAE and M2 records, and a CVAE
resume whose earlier checkpoints are gone (they stayed on another machine): its numbers are
kept, the missing quadrant count is trained."""
import json
import shutil

from conftest import load_benchmark


def test_cvae_quick_and_resume_without_old_checkpoints(tmp_path, data_dir):
    exp = load_benchmark("vae_family_experiments")
    out, work = tmp_path / "out", tmp_path / "work"
    common = ["--quick", "--device", "cpu", "--data-dir", data_dir, "--out-dir", str(out),
              "--work-dir", str(work), "--no-progress"]
    exp.main(["cvae", "--n-revealed", "1"] + common)
    first = json.loads((out / "cvae-quick.json").read_text())["runs"]["1"]
    assert {"baseline_ncll", "cvae_ncll_is", "cvae_neg_elbo"} <= set(first)
    shutil.rmtree(work / "cvae-q1")
    exp.main(["cvae", "--n-revealed", "1", "2", "--resume"] + common)
    runs = json.loads((out / "cvae-quick.json").read_text())["runs"]
    assert runs["1"] == first                       # kept as it was, not trained again
    assert not (work / "cvae-q1").exists()
    assert runs["2"]["cvae_ncll_is"] > 0 and (work / "cvae-q2" / "cvae").is_dir()


def test_m2_quick(tmp_path, data_dir):
    exp = load_benchmark("vae_family_experiments")
    out = tmp_path / "out"
    exp.main(["m2", "--quick", "--device", "cpu", "--data-dir", data_dir, "--out-dir", str(out),
              "--work-dir", str(tmp_path / "work"), "--no-progress", "--seeds", "0"])
    res = json.loads((out / "m2-quick.json").read_text())
    assert 0 <= res["runs"]["0"]["test_error"] <= 100


def test_m2_learning_curve_chunks_equal_one_run(tmp_path, data_dir):
    """--eval-every trains in chunks that resume each other: the end point must be the run
    made in one piece, bit for bit."""
    exp = load_benchmark("vae_family_experiments")
    common = ["--quick", "--device", "cpu", "--data-dir", data_dir, "--no-progress",
              "--seeds", "0", "--epochs", "2", "--alpha", "0.5"]
    exp.main(["m2", "--out-dir", str(tmp_path / "a"), "--work-dir", str(tmp_path / "wa")]
             + common)
    exp.main(["m2", "--out-dir", str(tmp_path / "b"), "--work-dir", str(tmp_path / "wb"),
              "--eval-every", "1"] + common)
    one = json.loads((tmp_path / "a" / "m2-quick.json").read_text())["runs"]["0"]
    chunked = json.loads((tmp_path / "b" / "m2-quick.json").read_text())["runs"]["0"]
    assert [c["epoch"] for c in chunked["curve"]] == [1, 2]
    assert chunked["curve"][-1]["test_error"] == chunked["test_error"] == one["test_error"]
    assert chunked["steps"] == one["steps"] and chunked["alpha"] == one["alpha"] == 0.5
    import numpy as np
    from scratchgan.checkpoint import load_checkpoint
    wa = load_checkpoint(tmp_path / "wa" / "m2-labels0" / exp.CHECKPOINT_NAME)["model"]
    wb = load_checkpoint(tmp_path / "wb" / "m2-labels0" / exp.CHECKPOINT_NAME)["model"]

    def same(a, b, where):
        if isinstance(a, dict):
            assert set(a) == set(b), where
            for k in a:
                same(a[k], b[k], f"{where}/{k}")
        elif isinstance(a, (list, tuple)):
            assert len(a) == len(b), where
            for i, (u, v) in enumerate(zip(a, b)):
                same(u, v, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where)
    same(wa, wb, "model")


def test_m2_stopped_run_keeps_its_curve_and_resumes(tmp_path, data_dir, monkeypatch):
    """A run stopped from outside (a time limit) after its first evaluation leaves a partial
    entry with its curve so far; --resume continues it to the run made in one piece."""
    import pytest
    exp = load_benchmark("vae_family_experiments")
    common = ["--quick", "--device", "cpu", "--data-dir", data_dir, "--no-progress",
              "--seeds", "0", "--epochs", "2", "--alpha", "0.5"]
    exp.main(["m2", "--out-dir", str(tmp_path / "a"), "--work-dir", str(tmp_path / "wa")]
             + common)
    real, calls = exp.test_error, []

    def stop_at_second(*a):
        calls.append(1)
        if len(calls) == 2:
            raise TimeoutError("stopped from outside")
        return real(*a)
    monkeypatch.setattr(exp, "test_error", stop_at_second)
    b = ["m2", "--out-dir", str(tmp_path / "b"), "--work-dir", str(tmp_path / "wb"),
         "--eval-every", "1"] + common
    with pytest.raises(TimeoutError):
        exp.main(b)
    partial = json.loads((tmp_path / "b" / "m2-quick.json").read_text())["runs"]["0"]
    assert partial["partial"] is True and partial["epochs_reached"] == 1
    assert [c["epoch"] for c in partial["curve"]] == [1]
    monkeypatch.setattr(exp, "test_error", real)
    exp.main(b + ["--resume"])
    one = json.loads((tmp_path / "a" / "m2-quick.json").read_text())["runs"]["0"]
    done = json.loads((tmp_path / "b" / "m2-quick.json").read_text())
    run = done["runs"]["0"]
    assert "partial" not in run and [c["epoch"] for c in run["curve"]] == [1, 2]
    assert run["curve"][0] == partial["curve"][0]
    assert run["test_error"] == one["test_error"] and run["steps"] == one["steps"]
    assert done["summary"]["n_draws"] == 1


def test_m2_supervised_reference_quick(tmp_path, data_dir):
    exp = load_benchmark("vae_family_experiments")
    out = tmp_path / "out"
    exp.main(["m2-supervised", "--quick", "--device", "cpu", "--data-dir", data_dir,
              "--out-dir", str(out), "--seeds", "0", "1"])
    res = json.loads((out / "m2-supervised-quick.json").read_text())
    for r in res["runs"].values():
        ce = [c["train_ce"] for c in r["curve"]]
        assert ce[-1] < ce[0]                      # descending the labelled cross-entropy
        assert 0 <= r["test_error"] <= 100
    assert res["runs"]["0"]["labelled_indices"] != res["runs"]["1"]["labelled_indices"]


def test_m2_resumed_longer_extends_its_curve(tmp_path, data_dir):
    """--resume with more epochs continues from the checkpoint: the stops it is already past are
    not scored again under a wrong epoch, the earlier points are kept, the new ones added."""
    exp = load_benchmark("vae_family_experiments")
    common = ["m2", "--quick", "--device", "cpu", "--data-dir", data_dir, "--no-progress",
              "--seeds", "0", "--eval-every", "1", "--out-dir", str(tmp_path / "o"),
              "--work-dir", str(tmp_path / "w")]
    exp.main(common + ["--epochs", "2"])
    first = json.loads((tmp_path / "o" / "m2-quick.json").read_text())["runs"]["0"]["curve"]
    exp.main(common + ["--epochs", "3", "--resume"])
    run = json.loads((tmp_path / "o" / "m2-quick.json").read_text())["runs"]["0"]
    assert [c["epoch"] for c in run["curve"]] == [1, 2, 3]
    assert run["curve"][:2] == first
    exp.main(["m2", "--quick", "--device", "cpu", "--data-dir", data_dir, "--no-progress",
              "--seeds", "0", "--epochs", "3", "--out-dir", str(tmp_path / "o3"),
              "--work-dir", str(tmp_path / "w3")])
    one = json.loads((tmp_path / "o3" / "m2-quick.json").read_text())["runs"]["0"]
    assert run["test_error"] == one["test_error"] and run["steps"] == one["steps"]


def test_m2_bad_options_are_named(tmp_path, data_dir):
    import pytest
    exp = load_benchmark("vae_family_experiments")
    common = ["m2", "--quick", "--device", "cpu", "--data-dir", data_dir, "--no-progress",
              "--seeds", "0", "--out-dir", str(tmp_path), "--work-dir", str(tmp_path / "w")]
    with pytest.raises(SystemExit, match="--eval-every.*>= 1, got 0"):
        exp.main(common + ["--eval-every", "0"])
    with pytest.raises(ValueError, match="M2: alpha .* >= 0, got -1.0"):
        exp.main(common + ["--alpha", "-1"])
    assert not (tmp_path / "m2-quick.json").exists()


def test_m1_features_quick(tmp_path, data_dir):
    """The M1-features diagnostic: 1-NN on the pixels and on M1's means, and M2's classifier on
    the means alone, per label draw at each evaluation; its 1-NN agrees with a brute-force
    count."""
    import numpy as np
    exp = load_benchmark("vae_family_experiments")
    out = tmp_path / "out"
    exp.main(["m1-features", "--quick", "--device", "cpu", "--data-dir", data_dir,
              "--out-dir", str(out), "--work-dir", str(tmp_path / "work"), "--epochs", "2",
              "--eval-every", "1", "--seeds", "0", "1"])
    res = json.loads((out / "m1-features-quick.json").read_text())
    assert [c["epoch"] for c in res["curve"]] == [1, 2]
    for c in res["curve"]:
        assert set(c["nn_error"]) == set(c["classifier_error"]) == {"0", "1"}
        assert all(0 <= v <= 100 for v in c["nn_error"].values())
    assert set(res["pixels_1nn"]) == {"0", "1"}
    rng = np.random.default_rng(0)
    f_lab, f_test = rng.normal(size=(7, 3)), rng.normal(size=(40, 3))
    y_lab, y_test = rng.integers(0, 3, 7), rng.integers(0, 3, 40)
    brute = y_lab[((f_test[:, None, :] - f_lab[None]) ** 2).sum(-1).argmin(1)]
    assert exp.nearest_neighbour_error(f_lab, y_lab, f_test, y_test, np) == \
        100.0 * (brute != y_test).sum() / 40


def test_m2_refuses_negative_m1_epochs(tmp_path, capsys):
    import pytest
    exp = load_benchmark("vae_family_experiments")
    with pytest.raises(SystemExit, match="--m1-epochs"):
        exp.main(["m2", "--variant", "m1m2", "--m1-epochs", "-1", "--out-dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())            # refused before anything is written


def test_refuses_empty_runs_before_writing(tmp_path):
    """--epochs 0 (once silently the default) and --batch 0 are refused by name."""
    import pytest
    exp = load_benchmark("vae_family_experiments")
    for cmd, flag in (("m2", "--epochs"), ("m1-features", "--epochs"), ("cvae", "--epochs"),
                      ("m2", "--batch"), ("m1-features", "--batch")):
        with pytest.raises(SystemExit, match=flag):
            exp.main([cmd, flag, "0", "--out-dir", str(tmp_path), "--work-dir",
                      str(tmp_path / "w")])
    assert not any(tmp_path.iterdir())
