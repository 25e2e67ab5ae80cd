"""Run folders through the command line: no silent overwrite (--overwrite), --resume with the
run's own settings and a history, what resume says, Ctrl-C."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scratchgan.checkpoint import load_checkpoint, previous_path

from test_cli import no_env_data, run_cli, standin  # noqa: F401 (fixtures)

BASE = ["train", "gan", "--no-progress", "--batch-size", "16", "--limit", "128"]


def train(capsys, out, *extra):
    return run_cli(BASE + ["--out", str(out)] + list(extra), capsys)


# ------------------------------------------------------------------- no silent overwrite
def test_an_existing_run_is_not_overwritten(tmp_path, capsys, standin, no_env_data):
    out = tmp_path / "run"
    rc, o, e = train(capsys, out, "--steps", "6", "--sample-every", "2")
    assert rc == 0, e
    before = {f: f.read_bytes() for f in (out / "last.ckpt.npz", out / "config.json",
                                          out / "metrics.jsonl")}
    mtimes = {f: f.stat().st_mtime_ns for f in before}
    rc, o, e = train(capsys, out, "--steps", "3")
    assert rc == 2, (rc, o, e)
    assert str(out) in e and "--resume" in e and "--overwrite" in e
    for f, data in before.items():                      # nothing was written
        assert f.read_bytes() == data and f.stat().st_mtime_ns == mtimes[f], f
    assert not (out / "resumes.jsonl").exists()


def test_the_default_out_folder_is_protected_too(tmp_path, capsys, standin, no_env_data,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, o, e = run_cli(BASE + ["--steps", "2"], capsys)
    assert rc == 0, e
    rc, o, e = run_cli(BASE + ["--steps", "2"], capsys)
    assert rc == 2 and "runs/gan-ring8 already holds a run" in e


def test_overwrite_clears_the_previous_run(tmp_path, capsys, standin, no_env_data):
    out = tmp_path / "run"
    rc, o, e = train(capsys, out, "--steps", "6", "--sample-every", "2")
    assert rc == 0, e
    (out / "notes.txt").write_text("mine")
    assert (out / "samples" / "step_0000004.png").is_file()
    rc, o, e = train(capsys, out, "--steps", "3", "--overwrite", "--log-every", "1")
    assert rc == 0, e
    assert "removed" in o and str(out) in o
    assert not (out / "samples" / "step_0000004.png").exists()
    assert (out / "notes.txt").read_text() == "mine"          # not a run file: kept
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert load_checkpoint(out / "last.ckpt.npz")["trainer"]["step"] == 3
    rc, o, e = train(capsys, out, "--resume", "--overwrite")
    assert rc == 2 and "not allowed with argument" in e


def test_a_dry_run_replaces_a_previous_dry_run(tmp_path, capsys, standin, no_env_data):
    out = tmp_path / "dry"
    for _ in range(2):
        rc, o, e = run_cli(["train", "gan", "--dry-run", "--no-progress", "--out", str(out)],
                           capsys)
        assert rc == 0, e
    real = tmp_path / "real"
    assert train(capsys, real, "--steps", "2")[0] == 0
    rc, o, e = run_cli(["train", "gan", "--dry-run", "--no-progress", "--out", str(real)], capsys)
    assert rc == 2 and "already holds a run" in e


# ------------------------------------------------------------ --resume: the run's settings
def test_resume_uses_the_runs_own_settings(tmp_path, capsys, standin, no_env_data):
    out = tmp_path / "run"
    rc, o, e = run_cli(["train", "gan", "--no-progress", "--batch-size", "16", "--limit", "128",
                        "--steps", "4", "--lr", "0.01", "--seed", "7", "--out", str(out)], capsys)
    assert rc == 0, e
    cfg0 = json.loads((out / "config.json").read_text())
    # only the folder and a longer run: everything else comes from the run
    rc, o, e = run_cli(["train", "gan", "--no-progress", "--out", str(out), "--resume", "--steps",
                        "8", "--log-every", "2"], capsys)
    assert rc == 0, e
    assert "128 examples, batch 16" in o and "resumed from step 4 (" in o
    assert f"({out / 'last.ckpt.npz'})" in o
    cfg = json.loads((out / "config.json").read_text())
    for k in ("model", "dataset", "limit", "hyper", "seed", "dtype", "batch_size"):
        assert cfg[k] == cfg0[k], k
    assert cfg["hyper"] == {"lr": 0.01} and cfg["seed"] == 7 and cfg["steps"] == 8
    assert cfg["log_every"] == 2
    ck = load_checkpoint(out / "last.ckpt.npz")
    assert ck["trainer"]["step"] == 8 and ck["config"] == cfg
    rows = [json.loads(l) for l in (out / "resumes.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["from_step"] == 4
    assert rows[0]["file"] == str(out / "last.ckpt.npz")
    assert rows[0]["changed"] == {"steps": [4, 8], "log_every": [10, 2]}


def test_resume_is_bit_exact_through_the_cli(tmp_path, capsys, standin, no_env_data):
    assert train(capsys, tmp_path / "full", "--steps", "10")[0] == 0
    assert train(capsys, tmp_path / "part", "--steps", "5")[0] == 0
    rc, o, e = run_cli(["train", "gan", "--out", str(tmp_path / "part"), "--resume", "--steps",
                        "10", "--no-progress"], capsys)
    assert rc == 0, e
    a = load_checkpoint(tmp_path / "full" / "last.ckpt.npz")["model"]["networks"]["net"]
    b = load_checkpoint(tmp_path / "part" / "last.ckpt.npz")["model"]["networks"]["net"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("extra, pattern", [
    (["--lr", "1000"], r"--lr 1000 \(the run has 0.01\)"),
    (["--batch-size", "32"], r"--batch-size 32 \(the run has 16\)"),
    (["--limit", "256"], r"--limit 256 \(the run has 128\)"),
    (["--seed", "3"], r"--seed 3 \(the run has 0\)"),
    (["--dtype", "float32"], r"--dtype float32 \(the run has float64\)"),
    (["--dataset", "grid25"], r"--dataset grid25 \(the run has ring8\)"),
    (["--set", "nan_at=5"], r"--set nan_at=5 \(the run has the model.s default, nan_at=none\)"),
])
def test_resume_refuses_conflicting_settings(extra, pattern, tmp_path, capsys, standin,
                                             no_env_data):
    out = tmp_path / "run"
    rc, o, e = train(capsys, out, "--steps", "4", "--lr", "0.01", "--dtype", "float64")
    assert rc == 0, e
    cfg = (out / "config.json").read_text()
    rc, o, e = run_cli(["train", "gan", "--no-progress", "--out", str(out), "--resume",
                        "--steps", "8"] + extra, capsys)
    assert rc == 2, (rc, o, e)
    assert re.search(pattern, e), e
    assert (out / "config.json").read_text() == cfg and not (out / "resumes.jsonl").exists()
    assert load_checkpoint(out / "last.ckpt.npz")["trainer"]["step"] == 4


def test_resume_with_the_same_settings_and_nothing_left_to_do(tmp_path, capsys, standin,
                                                               no_env_data):
    out = tmp_path / "run"
    assert train(capsys, out, "--steps", "4", "--lr", "0.01")[0] == 0
    rc, o, e = train(capsys, out, "--resume", "--lr", "0.01")        # same values: fine, but
    assert rc == 2 and "at step 4 already" in e and "--steps" in e   # the run is complete
    rc, o, e = train(capsys, tmp_path / "none", "--resume")
    assert rc == 2 and "no checkpoint in" in e


def test_resume_says_why_the_previous_checkpoint_was_used(tmp_path, capsys, standin,
                                                          no_env_data):
    out = tmp_path / "run"
    assert train(capsys, out, "--steps", "6", "--checkpoint-every", "3")[0] == 0
    p = out / "last.ckpt.npz"
    p.write_bytes(p.read_bytes()[:200])
    rc, o, e = run_cli(["train", "gan", "--out", str(out), "--resume", "--steps", "8",
                        "--no-progress"], capsys)
    assert rc == 0, e
    assert f"resumed from step 3 ({previous_path(p)})" in o
    assert "last.ckpt.npz" in e and "truncated or corrupted" in e and "previous checkpoint" in e
    row = json.loads((out / "resumes.jsonl").read_text())
    assert row["from_step"] == 3 and "truncated" in row["fallback_reason"]


# ----------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_writes_a_checkpoint_and_prints_the_resume_command(tmp_path):
    """SIGINT to a real `python -m scratchgan train` on toy data: exit 130, no traceback."""
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "scratchgan", "train", "gan", "--dataset",
                             "ring8", "--steps", "1000000", "--batch-size", "16", "--limit",
                             "256", "--no-progress", "--log-every", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        metrics = out / "metrics.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:   # wait for a few steps
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        o, e = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (o, e)
    assert "Traceback" not in e, e
    m = re.search(r"resume with: (.*)", e)
    assert m, e
    cmd = shlex.split(m.group(1))
    assert cmd[:5] == ["scratchgan", "train", "gan", "--resume", "--out"] and cmd[5] == str(out)
    step = load_checkpoint(out / "last.ckpt.npz")["trainer"]["step"]
    assert step >= 3 and f"interrupted at step {step} " in e
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == step
    # the printed command continues the run (here with a nearer target)
    r = subprocess.run([sys.executable, "-m"] + cmd + ["--steps", str(step + 2), "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resumed from step {step} (" in r.stdout
    assert load_checkpoint(out / "last.ckpt.npz")["trainer"]["step"] == step + 2
