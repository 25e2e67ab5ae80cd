"""benchmarks/pggan_experiments.py in --quick mode (CPU, tiny nets, a few hundred images): the
ablation rows, the 32×32 comparison with its growth picture, and the summary table."""
import json
import math

from conftest import load_benchmark


def test_ablation_and_table_quick(tmp_path, data_dir):
    exp = load_benchmark("pggan_experiments")
    exp.main(["ablation", "--quick", "--rows", "baseline", "progression", "--data-dir", data_dir,
              "--out-dir", str(tmp_path)])
    q = tmp_path / "quick"
    rows = {r: json.loads((q / f"ablation-{r}-seed0.json").read_text())
            for r in ("baseline", "progression")}
    for r in rows.values():
        assert 0 <= r["modes"] <= 1000 and r["kl"] >= 0 and 0 <= r["confident_fraction"] <= 1
    assert rows["progression"]["hyper"]["progressive"] and not rows["baseline"]["hyper"]["progressive"]
    # the growing row is scheduled 1.5x the images of the others (15,000k against 10,000k)
    assert rows["progression"]["images"] > rows["baseline"]["images"]
    exp.main(["table", "--out-dir", str(q)])
    assert "progression" in (q / "summary.md").read_text()


def test_mnist32_quick_scores_swd_against_training_images(tmp_path, data_dir):
    exp = load_benchmark("pggan_experiments")
    exp.main(["mnist", "--quick", "--data-dir", data_dir, "--out-dir", str(tmp_path)])
    q = tmp_path / "quick"
    for name in ("pggan", "dcgan"):
        r = json.loads((q / f"mnist32-{name}.json").read_text())
        assert r["swd_reference"].startswith("random training subset")
        assert math.isfinite(r["swd_mean"]) and r["swd_mean"] > 0 and r["fd_lenet"] > 0
        assert r["images"] == json.loads((q / "mnist32-dcgan.json").read_text())["images"]
    real = json.loads((q / "mnist32-real.json").read_text())
    assert "training subsets" in real["model"]
    assert 0 < real["swd_mean"] < r["swd_mean"]       # real beats an untrained-length model
    growth = json.loads((q / "mnist32-pggan.json").read_text())["growth"]
    assert [g["resolution"] for g in growth][0] == 4 and growth[-1]["resolution"] == 32
    assert (q / "mnist32-growth.png").stat().st_size > 1000
