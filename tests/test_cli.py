"""The command line: argument errors (exit 2), dry runs, the README's main job, checkpoint tools."""
import json
import subprocess
import sys

import numpy as np
import pytest

from scratchgan import cli
from scratchgan.backend import cupy_available
from scratchgan.checkpoint import load_checkpoint

from test_train import StandIn


def run_cli(argv, capsys):
    try:
        rc = cli.main(argv)
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def standin(monkeypatch):
    """The CLI's model registry with the stand-in model under the name 'gan'."""
    monkeypatch.setattr(cli, "registry", lambda: {"gan": StandIn})
    return StandIn


def real_registry():
    reg = cli.registry()
    assert reg is not None, "scratchgan.models does not import"
    return reg


@pytest.fixture
def no_env_data(monkeypatch, tmp_path):
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


# ------------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("argv, pattern", [
    (["train", "gann"], r"invalid choice: 'gann'.*gan.*dcgan.*cgan.*infogan.*wgan.*vae.*aae"),
    (["train", "gan", "--dataset", "cifar10"], r"invalid choice: 'cifar10'.*mnist.*ring8"),
    (["train", "gan", "--batch-size", "0"], r"--batch-size: must be a positive integer"),
    (["train", "gan", "--batch-size", "-4"], r"--batch-size: must be a positive integer"),
    (["train", "gan", "--steps", "0"], r"--steps: must be a positive integer"),
    (["train", "gan", "--steps", "ten"], r"--steps: expected a positive integer"),
    (["train", "gan", "--epochs", "0"], r"--epochs: must be a positive integer"),
    (["train", "gan", "--lr", "-1"], r"--lr: must be a positive"),
    (["train", "gan", "--epochs", "1", "--steps", "2"], r"not allowed with argument"),
    (["train", "gan", "--device", "tpu"], r"unknown device 'tpu'.*'cpu' and 'cuda'"),
    (["train", "gan", "--set", "nope"], r"expected KEY=VALUE"),
    (["sample", "/nonexistent/run"], r"checkpoint not found"),
    ([], r"required: COMMAND|the following arguments are required"),
])
def test_bad_arguments_exit_2(argv, pattern, capsys, standin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)           # a runs/gan-ring8 of the current folder is no matter
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2, (rc, out, err)
    assert "usage:" in err
    import re
    assert re.search(pattern, err, re.S), err


def test_missing_cuda_is_a_clear_error(capsys, standin, tmp_path, monkeypatch):
    if cupy_available():
        pytest.skip("a CUDA GPU is available here")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["train", "gan", "--device", "cuda"], capsys)
    assert rc == 2 and "device 'cuda'" in err and "--device cpu" in err


def test_unknown_hyperparameter(capsys, standin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(["train", "gan", "--set", "depth=3"], capsys)
    assert rc == 2 and "no hyperparameter 'depth'" in err and "lr" in err


def test_boolean_options_are_flags():
    p = cli.build_parser()
    for action in p._subparsers._group_actions[0].choices["train"]._actions:
        assert action.type is not bool, action.dest


# ------------------------------------------------------------------ stand-in end to end
def test_train_resume_and_sample_with_standin(tmp_path, capsys, standin, no_env_data):
    out = tmp_path / "run"
    rc, o, e = run_cli(["train", "gan", "--steps", "6", "--batch-size", "16", "--out", str(out),
                        "--no-progress", "--lr", "0.01", "--limit", "128"], capsys)
    assert rc == 0, e
    assert "ring8" in o and (out / "samples.png").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["dataset"] == "ring8" and cfg["hyper"] == {"lr": 0.01} and cfg["batch_size"] == 16
    rc, o, e = run_cli(["train", "gan", "--steps", "9", "--batch-size", "16", "--out", str(out),
                        "--no-progress", "--lr", "0.01", "--limit", "128", "--resume"], capsys)
    assert rc == 0, e
    assert load_checkpoint(out / "last.ckpt.npz")["trainer"]["step"] == 9
    rc, o, e = run_cli(["sample", str(out), "--n", "50", "--out", str(tmp_path / "s.png")], capsys)
    assert rc == 0, e
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_nan_exits_1_and_names_step(tmp_path, capsys, standin, no_env_data):
    rc, o, e = run_cli(["train", "gan", "--steps", "20", "--set", "nan_at=4", "--no-progress",
                        "--out", str(tmp_path), "--limit", "64", "--batch-size", "8"], capsys)
    assert rc == 1 and "non-finite loss at step 4: nll = nan" in e


def test_dry_run_defaults_need_no_data(tmp_path, capsys, standin, no_env_data):
    rc, o, e = run_cli(["train", "gan", "--dry-run", "--no-progress", "--out", str(tmp_path)],
                       capsys)
    assert rc == 0, e
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["steps"] == cli.DRY_RUN["steps"] and cfg["limit"] == cli.DRY_RUN["limit"]
    assert cfg["dataset"] == "ring8" and (tmp_path / "samples.png").is_file()


def test_mnist_dry_run_without_files_uses_standin_data(tmp_path, capsys, standin, no_env_data):
    (tmp_path / "none").mkdir()           # a data folder without the files
    rc, o, e = run_cli(["train", "gan", "--dataset", "mnist", "--dry-run", "--no-progress",
                        "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "run")], capsys)
    assert rc == 0, e
    assert "stand-in" in e and str(tmp_path / "none" / "mnist") in e and "(no download)" in e
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["standin"] is True and cfg["dataset"] == "mnist" and cfg["data_shape"] == [1, 28, 28]
    assert not (tmp_path / "xdg").exists()


def test_mnist_training_without_files_is_a_clear_error(tmp_path, capsys, standin, no_env_data,
                                                       monkeypatch):
    from scratchgan.data import idx
    monkeypatch.setattr(idx, "_fetch", lambda url, dest, timeout=None: (_ for _ in ()).throw(
        OSError("network disabled in tests")))
    (tmp_path / "none").mkdir()
    rc, o, e = run_cli(["train", "gan", "--dataset", "mnist", "--steps", "1", "--no-progress",
                        "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "run")], capsys)
    assert rc == 1 and "mnist data not found" in e and str(tmp_path / "none" / "mnist") in e
    assert "network disabled" in e and "download=True" not in e
    assert not (tmp_path / "xdg").exists()


def test_python_m_help():
    r = subprocess.run([sys.executable, "-m", "scratchgan", "train", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "--dry-run" in r.stdout and "--data-dir" in r.stdout


# ------------------------------------------------------------------------- real models
def test_main_job_writes_samples_png(tmp_path, capsys, no_env_data, monkeypatch):
    """The README's command `scratchgan train gan` (shortened to 150 steps here)."""
    reg = real_registry()
    assert reg["gan"].default_dataset == "ring8"
    monkeypatch.chdir(tmp_path)
    rc, o, e = run_cli(["train", "gan", "--steps", "150", "--no-progress"], capsys)
    assert rc == 0, e
    png = tmp_path / "runs" / "gan-ring8" / "samples.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "samples: runs/gan-ring8/samples.png" in o
    cfg = json.loads((png.parent / "config.json").read_text())
    assert cfg["batch_size"] == reg["gan"].defaults["batch_size"]
    rc, o, e = run_cli(["sample", "runs/gan-ring8", "--n", "200"], capsys)
    assert rc == 0 and (png.parent / "sample.png").is_file()


def test_checkpoint_tools_on_real_models(tmp_path, capsys, data_dir):
    runs = {}
    for name, extra in (("infogan", []), ("vae", ["--set", "latent_dim=2"]), ("dcgan", [])):
        runs[name] = tmp_path / name
        rc, _, e = run_cli(["train", name, "--dry-run", "--no-progress", "--data-dir", data_dir,
                            "--out", str(runs[name])] + extra, capsys)
        assert rc == 0, e
    rc, o, e = run_cli(["traverse", str(runs["infogan"]), "--rows", "2", "--frames", "5"], capsys)
    assert rc == 0, e
    assert (runs["infogan"] / "traverse.png").is_file() and "categorical" in o
    rc, o, e = run_cli(["interpolate", str(runs["dcgan"]), "--rows", "2", "--frames", "4"], capsys)
    assert rc == 0 and (runs["dcgan"] / "interpolation.png").is_file(), e
    rc, o, e = run_cli(["interpolate", str(runs["dcgan"]), "--n", "16", "--arithmetic", "1+2",
                        "3", "4"], capsys)
    assert rc == 0, e
    assert (runs["dcgan"] / "arithmetic.png").is_file()
    assert (runs["dcgan"] / "arithmetic_reference.png").is_file()
    rc, o, e = run_cli(["latent", str(runs["vae"]), "--data-dir", data_dir, "--n", "300",
                        "--grid", "5"], capsys)
    assert rc == 0, e
    assert (runs["vae"] / "latent_scatter.png").is_file() and (runs["vae"] / "manifold.png").is_file()
    rc, _, e = run_cli(["traverse", str(runs["vae"])], capsys)
    assert rc == 2 and "infogan" in e
    rc, _, e = run_cli(["interpolate", str(runs["dcgan"]), "--arithmetic", "99", "1", "2"], capsys)
    assert rc == 2 and "indices must lie in [0, 64)" in e


# ------------------------------------------------------------- --set values are parsed
class Typed(StandIn):
    """The stand-in with hyperparameters of every kind of default."""
    defaults = {**StandIn.defaults, "warmup": False, "k": 1, "betas": (0.5, 0.999),
                "z_dim": None, "generator_loss": "nonsaturating"}

    def __init__(self, data_shape, *, warmup=False, k=1, betas=(0.5, 0.999), z_dim=None,
                 generator_loss="nonsaturating", **kw):
        if generator_loss not in ("nonsaturating", "minimax"):
            raise ValueError(f"generator_loss must be 'nonsaturating' or 'minimax', got "
                             f"{generator_loss!r}")
        super().__init__(data_shape, **kw)
        self.got = {"warmup": warmup, "k": k, "betas": betas, "z_dim": z_dim}


@pytest.fixture
def typed(monkeypatch):
    monkeypatch.setattr(cli, "registry", lambda: {"gan": Typed})
    return Typed


@pytest.mark.parametrize("setting, value", [
    ("warmup=false", False), ("warmup=FALSE", False), ("warmup=0", False), ("warmup=True", True),
    ("warmup=1", True), ("k=3", 3), ("lr=1e-3", 1e-3), ("lr=2", 2.0),
    ("betas=0.9,0.99", [0.9, 0.99]), ("betas=(0.9, 0.99)", [0.9, 0.99]),
    ("z_dim=none", None), ("z_dim=8", 8), ("generator_loss=minimax", "minimax"),
])
def test_set_values_are_parsed_by_type(setting, value, tmp_path, capsys, typed, no_env_data):
    rc, o, e = run_cli(["train", "gan", "--dry-run", "--no-progress", "--out", str(tmp_path / "r"),
                        "--set", setting], capsys)
    assert rc == 0, e
    key = setting.split("=")[0]
    got = json.loads((tmp_path / "r" / "config.json").read_text())["hyper"][key]
    assert got == value and type(got) is type(value), (got, value)


@pytest.mark.parametrize("setting, pattern", [
    ("warmup=maybe", r"--set warmup=maybe: expected true or false \(or 1 / 0\) for warmup.*'maybe'"),
    ("k=abc", r"--set k=abc: expected an integer for k \(default 1\), got 'abc'"),
    ("k=1.5", r"expected an integer for k"),
    ("lr=abc", r"--set lr=abc: expected a finite number for lr \(default 0.05\), got 'abc'"),
    ("lr=nan", r"--set lr=nan: expected a finite number"),
    ("lr=inf", r"expected a finite number"),
    ("betas=0.5", r"--set betas=0.5: expected 2 comma-separated values like 0.5,0.999"),
    ("betas=a,b", r"expected 2 comma-separated numbers like 0.5,0.999.*'a,b'"),
    ("z_dim=abc", r"--set z_dim=abc: expected an integer or none for z_dim \(default None\)"),
    ("generator_loss=hinge", r"cannot build gan.*generator_loss must be"),
])
def test_bad_set_values_exit_2_before_writing(setting, pattern, tmp_path, capsys, typed,
                                              no_env_data):
    import re
    out = tmp_path / "r"
    rc, o, e = run_cli(["train", "gan", "--dry-run", "--no-progress", "--out", str(out),
                        "--set", setting], capsys)
    assert rc == 2 and "usage:" in e, (rc, o, e)
    assert re.search(pattern, e, re.S), e
    assert not out.exists()


def test_set_values_of_the_real_models():
    reg = real_registry()
    assert cli.parse_hyper(reg["wgan"], "warmup", "false") is False
    assert cli.parse_hyper(reg["aae"], "betas", "0.5,0.999") == (0.5, 0.999)
    assert cli.parse_hyper(reg["gan"], "z_dim", "None") is None
    assert cli.parse_hyper(reg["gan"], "z_dim", "32") == 32
    assert cli.parse_hyper(reg["gan"], "lr", "0.01") == 0.01
    assert cli.parse_hyper(reg["gan"], "optimizer", "adam") == "adam"
    with pytest.raises(ValueError, match="expected an integer for latent_dim"):
        cli.parse_hyper(reg["vae"], "latent_dim", "abc")
    with pytest.raises(ValueError, match="expected a finite number for lr_decay"):
        cli.parse_hyper(reg["gan"], "lr_decay", "nan")
    with pytest.raises(ValueError, match="expected an integer or none for z_dim"):
        cli.parse_hyper(reg["gan"], "z_dim", "abc")


# ------------------------------------------------------------ checkpoint tool messages
@pytest.mark.parametrize("content", [b"# a README\n", "npz"])
def test_sample_of_a_file_that_is_no_checkpoint(content, tmp_path, capsys):
    p = tmp_path / ("README.md" if content != "npz" else "plain.npz")
    if content == "npz":
        np.savez(p, a=np.ones(2))
    else:
        p.write_bytes(content)
    rc, o, e = run_cli(["sample", str(p)], capsys)
    assert rc == 2, (rc, o, e)
    assert "not a scratchgan checkpoint" in e and "run folder" in e and "last.ckpt.npz" in e
    assert "allow_pickle" not in e and ".prev.npz" not in e


def test_latent_without_a_2d_code_says_how_to_get_the_manifold(tmp_path, capsys, no_env_data):
    out = tmp_path / "aae"
    rc, o, e = run_cli(["train", "aae", "--dataset", "ring8", "--steps", "2", "--batch-size",
                        "16", "--limit", "64", "--no-progress", "--out", str(out)], capsys)
    assert rc == 0, e
    rc, o, e = run_cli(["latent", str(out), "--dataset", "ring8", "--n", "100"], capsys)
    assert rc == 0, e
    assert "no manifold plot" in o and "--set code_dim=2" in o
