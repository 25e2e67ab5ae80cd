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
