"""benchmarks/paper_gaps.py: chunked training scored after each chunk, continued by the same
command, the BatchNorm-mode scoring, the real-data reference rows and the report."""
import json
import pathlib

PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "paper_gaps.py"


def load():
    from conftest import load_benchmark
    return load_benchmark("paper_gaps")


def test_chunks_resume_and_report(data_dir, tmp_path):
    mod = load()
    common = ["g", "--model", "gan", "--set", "variant=official", "--set", "g_hidden=16",
              "--set", "d_units=8", "--limit", "400", "--eval-every", "2", "--n-eval", "200",
              "--n-parzen", "200", "--device", "cpu", "--data-dir", data_dir,
              "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "out")]
    assert mod.main(common + ["--steps", "4"]) == 0
    curve = json.loads((tmp_path / "out/g.json").read_text())
    assert [r["step"] for r in curve["rows"]] == [2, 4]
    assert curve["train_examples"] == 400 and curve["hyper"]["variant"] == "official"
    assert set(curve["rows"][0]["metrics_eval"]) >= {"parzen", "is", "fd"}
    assert curve["rows"][1]["losses"]["momentum"] == 0.5          # epoch 1 of the ramp
    assert mod.main(common + ["--steps", "6"]) == 0                # the same command continues
    curve = json.loads((tmp_path / "out/g.json").read_text())
    assert [r["step"] for r in curve["rows"]] == [2, 4, 6] and len(curve["commands"]) == 2
    dc = ["d", "--model", "dcgan", "--set", "ngf=4", "--set", "ndf=4", "--limit", "256",
          "--steps", "2", "--n-eval", "100", "--bn-modes", "eval,train", "--device", "cpu",
          "--data-dir", data_dir, "--runs-dir", str(tmp_path / "runs"),
          "--out-dir", str(tmp_path / "out")]
    assert mod.main(dc) == 0
    row = json.loads((tmp_path / "out/d.json").read_text())["rows"][0]
    assert "metrics_eval" in row and "metrics_train" in row and "parzen" not in row["metrics_eval"]
    assert mod.main(["r", "--reference", "--n-eval", "200", "--device", "cpu", "--data-dir",
                     data_dir, "--out-dir", str(tmp_path / "out")]) == 0
    ref = json.loads((tmp_path / "out/r.json").read_text())["reference"]
    real = ref["real training images"]["parzen"]["mean"]
    blur = ref["mean training image (one sample)"]["parzen"]["mean"]
    assert real > blur
    assert mod.main(["-", "--report", "--out-dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out/paper_gaps.md").read_text()
    assert "## g (gan)" in text and "scores (train mode)" in text and "Real-data reference" in text
