"""benchmarks/image2image_experiments.py in --quick mode: each subcommand writes its record and
picture, and the quadrant comparison scores a CVAE run made by the CLI on the same images."""
import json

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def exp():
    return load_benchmark("image2image_experiments")


def _png(path):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def test_pix2pix_and_cyclegan_quick(exp, tmp_path, data_dir):
    out = tmp_path / "out"
    common = ["--quick", "--device", "cpu", "--data-dir", data_dir, "--out-dir", str(out),
              "--no-progress"]
    exp.main(["classifier"] + common)
    clf = json.loads((out / "classifier_fashion.json").read_text())
    assert 0.0 <= clf["test_accuracy"] <= 1.0 and clf["quick"] is True
    exp.main(["pix2pix", "--task", "edges2fashion", "--objective", "l1"] + common)
    rec = json.loads((out / "pix2pix_edges2fashion_l1.json").read_text())
    assert {"l1", "ssim", "label_acc_translated", "label_acc_real_targets",
            "label_gap_points"} <= set(rec)
    assert rec["label_gap_points"] == pytest.approx(
        100 * (rec["label_acc_real_targets"] - rec["label_acc_translated"]))
    _png(out / "pix2pix_edges2fashion_l1_grid.png")
    exp.main(["cyclegan", "--ablation", "no-cycle"] + common)
    rec = json.loads((out / "cyclegan_no-cycle.json").read_text())
    for k in ("digit_acc_A_to_B", "digit_acc_B_to_A", "cycle_l1_A", "fd_lenet_A_to_B"):
        assert rec[k] == rec[k] and rec[k] >= 0, k          # finite, not NaN
    _png(out / "cyclegan_no-cycle_grid.png")


def test_quadrants_beside_a_cli_cvae_run(exp, tmp_path, data_dir):
    from scratchgan.cli import main as cli
    run = tmp_path / "cvae-q2"
    assert cli(["train", "cvae", "--dataset", "mnist", "--set", "n_revealed=2", "--dry-run",
                "--data-dir", data_dir, "--out", str(run), "--no-progress"]) == 0
    out = tmp_path / "out"
    exp.main(["quadrants", "--shown", "2", "--cvae", str(run), "--quick", "--device", "cpu",
              "--data-dir", data_dir, "--out-dir", str(out), "--no-progress"])
    ours = json.loads((out / "pix2pix_quadrants-paired2_l1-cgan.json").read_text())
    theirs = json.loads((out / "cvae_quadrants2.json").read_text())
    assert theirs["cvae_run"] == str(run)
    shared = {"l1", "ssim"} & set(ours) & set(theirs)
    assert shared == {"l1", "ssim"}, (set(ours), set(theirs))
    # a CVAE trained for another number of revealed quadrants is refused by name
    with pytest.raises(SystemExit, match="n_revealed=1"):
        exp.main(["quadrants", "--shown", "1", "--cvae", str(run), "--quick", "--device", "cpu",
                  "--data-dir", data_dir, "--out-dir", str(out), "--no-progress"])
