"""The command line's rough edges: argument checks before the run folder, the data folder a run
remembers, model and data-set pairs that cannot work, run folders without a checkpoint,
unwritable outputs, options that were silently ignored, noise instead of messages, exit
codes, --version and the defaults in --help."""
import argparse
import json
import os
import pathlib
import re
import signal
import warnings

import numpy as np
import pytest

import scratchgan
from scratchgan import cli
from scratchgan.backend import cupy_available
from scratchgan.cli import common, compat
from scratchgan.cli import train as cli_train
from scratchgan.cli import tools as cli_tools
from scratchgan.data.datasets import DATASETS
from scratchgan.runs import RUN_FILES, TOOL_PICTURES, run_files

from test_cli import no_env_data, real_registry, run_cli, standin  # noqa: F401 (fixtures)
from test_train import StandIn

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BASE = ["train", "gan", "--no-progress", "--batch-size", "16", "--limit", "64"]


def one_line_error(err):
    """The error line of an argument error (argparse prints usage, then one line)."""
    lines = [l for l in err.splitlines() if l.startswith("scratchgan")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------- argument checks come before the run folder
@pytest.mark.parametrize("extra, pattern", [
    (["--device", "tpu"], r"unknown device 'tpu'"),
    (["--set", "depth=3"], r"no hyperparameter 'depth'"),
    (["--lr", "0.1", "--set", "lr=0.2"], r"--lr 0.1 and --set lr=0.2 both set the learning rate"),
    (["--data-dir", "missing"], r"--data-dir missing: no such folder"),
    (["--dataset", "mnist-quadrants"], r"gan cannot train on mnist-quadrants"),
])
def test_arguments_are_checked_before_the_run_folder(extra, pattern, tmp_path, capsys, standin,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = tmp_path / "runs" / "gan-ring8"          # as after `scratchgan train gan`
    default.mkdir(parents=True)
    (default / "config.json").write_text("{}")
    rc, o, e = run_cli(["train", "gan"] + extra, capsys)
    assert rc == 2, (rc, o, e)
    assert re.search(pattern, one_line_error(e)) and "already holds a run" not in e


def test_missing_cuda_comes_before_the_run_folder(tmp_path, capsys, standin, monkeypatch):
    if cupy_available():
        pytest.skip("a CUDA GPU is available here")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "gan-ring8").mkdir(parents=True)
    (tmp_path / "runs" / "gan-ring8" / "last.ckpt.npz").write_bytes(b"")
    rc, o, e = run_cli(["train", "gan", "--device", "cuda"], capsys)
    assert rc == 2 and "device 'cuda'" in e and "--device cpu" in e
    assert "already holds a run" not in e


def test_gpu_hint_fits_a_wheel_install(tmp_path, capsys, standin, monkeypatch):
    if cupy_available():
        pytest.skip("a CUDA GPU is available here")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common, "source_checkout", lambda: None)     # as from a wheel
    rc, o, e = run_cli(["train", "gan", "--device", "cuda"], capsys)
    line = one_line_error(e)
    assert rc == 2 and "pip install cupy" in line and "-e" not in line.split("pip install")[1]
    monkeypatch.setattr(common, "source_checkout", lambda: tmp_path)  # a source checkout
    rc, o, e = run_cli(["train", "gan", "--device", "cuda"], capsys)
    assert rc == 2 and f"pip install -e '.[gpu]' in {tmp_path}" in e


# ------------------------------------------------------------ the data folder of a run
class Spy:
    """Wraps a loader, recording the data_dir of each call."""

    def __init__(self, fn):
        self.fn, self.data_dirs = fn, []

    def __call__(self, *a, **kw):
        self.data_dirs.append(kw.get("data_dir"))
        return self.fn(*a, **kw)


def test_resume_uses_the_runs_data_dir(tmp_path, capsys, standin, no_env_data, monkeypatch):
    data, other = tmp_path / "data", tmp_path / "other"
    data.mkdir(), other.mkdir()
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    rc, o, e = run_cli(BASE + ["--dataset", "mnist", "--dry-run", "--steps", "2", "--out",
                               str(out), "--data-dir", "data"], capsys)
    assert rc == 0, e
    assert json.loads((out / "config.json").read_text())["data_dir"] == str(data.resolve())
    spy = Spy(cli_train.load_or_standin)
    monkeypatch.setattr(cli_train, "load_or_standin", spy)
    rc, o, e = run_cli(["train", "gan", "--resume", "--out", str(out), "--steps", "3",
                        "--no-progress"], capsys)
    assert rc == 0, e
    assert spy.data_dirs == [str(data.resolve())]
    rc, o, e = run_cli(["train", "gan", "--resume", "--out", str(out), "--steps", "4",
                        "--no-progress", "--data-dir", str(other)], capsys)   # given: it wins
    assert rc == 0, e
    assert spy.data_dirs[-1] == str(other.resolve())
    rows = [json.loads(l) for l in (out / "resumes.jsonl").read_text().splitlines()]
    assert rows[-1]["changed"]["data_dir"] == [str(data.resolve()), str(other.resolve())]


@pytest.fixture
def vae_standin_run(tmp_path_factory, no_env_data, monkeypatch):
    """A VAE dry run on stand-in MNIST images (an empty --data-dir), with a 2-D code."""
    reg = real_registry()
    if "vae" not in reg:
        pytest.skip("no vae in the registry")
    from scratchgan.data import idx
    monkeypatch.setattr(idx, "_fetch", lambda url, dest, timeout=None: (_ for _ in ()).throw(
        OSError("network disabled in tests")))
    root = tmp_path_factory.mktemp("vae")
    data, out = root / "data", root / "run"
    data.mkdir()
    rc = cli.main(["train", "vae", "--dataset", "mnist", "--dry-run", "--no-progress",
                   "--data-dir", str(data), "--out", str(out), "--set", "latent_dim=2"])
    assert rc == 0
    return out, data


def test_tools_use_the_runs_data_dir_and_stand_in(vae_standin_run, capsys, monkeypatch):
    out, data = vae_standin_run
    capsys.readouterr()
    assert json.loads((out / "config.json").read_text())["standin"] is True
    spy = Spy(cli_tools.load_or_standin)
    monkeypatch.setattr(cli_tools, "load_or_standin", spy)
    # latent: a stand-in run is shown stand-in images again, nothing is downloaded
    rc, o, e = run_cli(["latent", str(out), "--n", "64", "--grid", "3"], capsys)
    assert rc == 0, e
    assert (out / "latent_scatter.png").is_file() and (out / "manifold.png").is_file()
    for argv in (["reconstruct", str(out), "--n", "4"],
                 ["interpolate", str(out), "--between-real", "--rows", "2", "--frames", "3"]):
        rc, o, e = run_cli(argv, capsys)
        assert rc == 0, e
    assert spy.data_dirs == [str(data.resolve())] * 3
    other = data.parent / "other"
    other.mkdir()
    rc, o, e = run_cli(["reconstruct", str(out), "--n", "4", "--data-dir", str(other)], capsys)
    assert rc == 0, e
    assert spy.data_dirs[-1] == str(other.resolve())


# ------------------------------------------------------ model and data-set compatibility
REFUSED = [("dcgan", "quadrants-paired2"), ("gan", "edges2fashion"), ("vae", "edges2fashion"),
           ("gan", "mnist-quadrants"), ("vae", "mnist-quadrants"),
           ("dcgan", "mnist-quadrants"), ("wgan", "mnist-quadrants"),
           ("pix2pix", "mnist-quadrants"), ("cyclegan", "mnist-quadrants"),
           ("pggan", "mnist-quadrants"), ("m2", "ring8"), ("m2", "dsprites"),
           ("pix2pix", "fashion-mnist")]


@pytest.mark.parametrize("model, dataset", REFUSED)
def test_pairs_that_cannot_work_are_refused_before_anything_is_written(
        model, dataset, tmp_path, capsys, no_env_data, monkeypatch):
    reg = real_registry()
    monkeypatch.chdir(tmp_path)
    loads = Spy(cli_train.load_or_standin)
    monkeypatch.setattr(cli_train, "load_or_standin", loads)
    rc, o, e = run_cli(["train", model, "--dataset", dataset, "--dry-run", "--no-progress"],
                       capsys)
    assert rc == 2, (rc, o, e)
    line = one_line_error(e)
    assert f"{model} cannot train on {dataset}" in line
    work = line.split(f"data sets that work for {model}: ")[1].split(", ")
    assert work == compat.usable_datasets(reg[model]) and dataset not in work
    assert reg[model].default_dataset in work
    assert loads.data_dirs == [] and list(tmp_path.iterdir()) == []   # nothing read or written


def test_pix2pix_on_single_images_asks_for_a_paired_set(tmp_path, capsys, monkeypatch):
    real_registry()
    monkeypatch.chdir(tmp_path)
    rc, o, e = run_cli(["train", "pix2pix", "--dataset", "fashion-mnist", "--dry-run"], capsys)
    line = one_line_error(e)
    assert rc == 2 and "paired image-to-image set" in line and "a_channels" not in line
    assert "edges2fashion, quadrants-paired1, quadrants-paired2, quadrants-paired3" in line


def test_set_values_enter_the_rule(tmp_path, capsys, monkeypatch):
    """cyclegan trains on a paired set once A's channels fit it; m2 on ring8 with a multiple
    of its 8 classes."""
    reg = real_registry()
    assert compat.dataset_problem(reg["cyclegan"], "edges2fashion") is not None
    assert compat.dataset_problem(reg["cyclegan"], "edges2fashion", {"a_channels": 1}) is None
    assert compat.dataset_problem(reg["m2"], "ring8", {"n_labels": 96}) is None
    monkeypatch.chdir(tmp_path)
    rc, o, e = run_cli(["train", "cyclegan", "--dataset", "edges2fashion", "--dry-run"], capsys)
    assert rc == 2 and "with --set a_channels=1" in one_line_error(e)


def test_every_pair_the_cli_accepts_is_one_the_rule_accepts(tmp_path, capsys, no_env_data,
                                                            monkeypatch):
    """Each (model, data set) pair through `train --dry-run`, stopped where the data would be
    loaded: the CLI accepts exactly the pairs of the rule, and the README's table is the
    rule's."""
    reg = real_registry()
    monkeypatch.chdir(tmp_path)

    class Accepted(Exception):
        pass

    def stop(*a, **kw):
        raise Accepted

    monkeypatch.setattr(cli_train, "load_or_standin", stop)
    for model in cli.MODEL_NAMES:
        usable = compat.usable_datasets(reg[model])
        assert reg[model].default_dataset in usable, model
        for ds in DATASETS:
            try:
                rc, o, e = run_cli(["train", model, "--dataset", ds, "--dry-run"], capsys)
            except Accepted:
                assert ds in usable, (model, ds)
                continue
            assert rc == 2 and ds not in usable, (model, ds, e)
            assert f"data sets that work for {model}: {', '.join(usable)}" in e
    assert list(tmp_path.iterdir()) == []
    assert compat.compatibility_table(reg, cli.MODEL_NAMES) in README.read_text(), \
        "README's table of models and data sets differs from compat.compatibility_table"


def test_accepted_pairs_of_every_form_train(tmp_path, capsys, no_env_data, request):
    """One dry run for each data form a model declares: on the MNIST files where they are
    found, else on stand-in images (a set with no stand-in is then left out)."""
    reg = real_registry()
    try:
        data = request.getfixturevalue("data_dir")
    except pytest.skip.Exception:
        data = tmp_path / "empty"
        data.mkdir()
    missing = []
    for model, ds in (("gan", "ring8"), ("cvae", "mnist-quadrants"),
                      ("pix2pix", "quadrants-paired1"), ("cvae", "mnist")):
        assert compat.dataset_problem(reg[model], ds) is None
        out = tmp_path / f"{model}-{ds}"
        rc, o, e = run_cli(["train", model, "--dataset", ds, "--dry-run", "--no-progress",
                            "--data-dir", str(data), "--out", str(out)], capsys)
        if rc == 1 and "data not found" in e:
            missing.append(ds)
            continue
        assert rc == 0, (model, ds, e)
        assert (out / "last.ckpt.npz").is_file()
    assert len(missing) < 4, missing


# --------------------------------------------------------- run folders without checkpoint
def test_a_run_without_a_checkpoint_points_to_overwrite(tmp_path, capsys, standin, no_env_data):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"model": "gan"}))   # stopped before a checkpoint
    (out / "metrics.jsonl").write_text("")
    rc, o, e = run_cli(BASE + ["--out", str(out), "--steps", "2"], capsys)
    line = one_line_error(e)
    assert rc == 2 and "wrote no checkpoint" in line and "--overwrite" in line
    assert "--resume" not in line
    rc, o, e = run_cli(BASE + ["--out", str(out), "--steps", "2", "--resume"], capsys)
    line = one_line_error(e)
    assert rc == 2 and "wrote no checkpoint" in line and "--overwrite" in line
    rc, o, e = run_cli(BASE + ["--out", str(out), "--steps", "2", "--overwrite"], capsys)
    assert rc == 0, e


def test_overwrite_clears_the_pictures_of_the_tools(tmp_path, capsys, standin, no_env_data):
    out = tmp_path / "run"
    assert run_cli(BASE + ["--out", str(out), "--steps", "2"], capsys)[0] == 0
    names = ["sample.png", "interpolation.png", "arithmetic.png", "arithmetic_reference.png",
             "reconstructions.png", "traverse.png", "latent_scatter.png", "manifold.png",
             "translate.png"]
    for name in names:
        (out / name).write_bytes(b"png")
    assert sorted(n for ns in TOOL_PICTURES.values() for n in ns) == sorted(names)
    rc, o, e = run_cli(BASE + ["--out", str(out), "--steps", "2", "--overwrite"], capsys)
    assert rc == 0, e
    assert not [n for n in names if (out / n).exists()]


def test_the_tools_write_only_run_files(vae_standin_run, capsys):
    """Every picture a tool writes into a run folder by default is a run file (cleared by
    --overwrite)."""
    out, _ = vae_standin_run
    for argv in (["sample", str(out), "--n", "4"],
                 ["interpolate", str(out), "--rows", "2", "--frames", "3"],
                 ["interpolate", str(out), "--n", "4", "--arithmetic", "0", "1", "2"],
                 ["interpolate", str(out), "--between-real", "--rows", "2", "--frames", "3"],
                 ["reconstruct", str(out), "--n", "4"],
                 ["latent", str(out), "--n", "64", "--grid", "3"]):
        rc, o, e = run_cli(argv, capsys)
        assert rc == 0, (argv, e)
    known = {f.name for f in run_files(out)}
    files = {f.name for f in out.iterdir() if f.is_file()}
    assert files <= known, files - known
    assert set(RUN_FILES) >= {n for ns in TOOL_PICTURES.values() for n in ns}
    # and the tools name no picture of their own outside TOOL_PICTURES
    source = pathlib.Path(cli_tools.__file__).read_text()
    assert not re.findall(r"['\"][\w.-]+\.png['\"]", source)


# ------------------------------------------------------------------- unwritable outputs
def test_an_out_under_a_file_is_refused_up_front(tmp_path, capsys, standin, no_env_data,
                                                 monkeypatch):
    """(Running as root ignores mode bits, so a folder that cannot be created stands in for
    a read-only one here.)"""
    (tmp_path / "file").write_text("")
    loads = Spy(cli_train.load_or_standin)
    monkeypatch.setattr(cli_train, "load_or_standin", loads)
    rc, o, e = run_cli(BASE + ["--out", str(tmp_path / "file" / "run"), "--steps", "2"], capsys)
    assert rc == 2 and "is a file" in one_line_error(e) and loads.data_dirs == []


def test_a_read_only_out_is_refused_up_front(tmp_path, capsys, standin, no_env_data,
                                            monkeypatch):
    """A read-only folder, simulated by ``os.access`` (root ignores mode bits)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if pathlib.Path(p) == ro
                        else real_access(p, mode, **kw))
    loads = Spy(cli_train.load_or_standin)
    monkeypatch.setattr(cli_train, "load_or_standin", loads)
    rc, o, e = run_cli(BASE + ["--out", str(ro / "run"), "--steps", "2"], capsys)
    assert rc == 2 and "not writable" in one_line_error(e) and loads.data_dirs == []
    run = tmp_path / "run"
    assert run_cli(BASE + ["--out", str(run), "--steps", "2"], capsys)[0] == 0
    rc, o, e = run_cli(["sample", str(run), "--out", str(ro / "s.png")], capsys)
    assert rc == 2 and "not writable" in one_line_error(e)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if pathlib.Path(p) == run
                        else real_access(p, mode, **kw))
    rc, o, e = run_cli(["sample", str(run)], capsys)                 # the run folder itself
    assert rc == 2 and "--out" in one_line_error(e) and not (run / "sample.png").exists()


def test_a_chmod_read_only_out_is_refused(tmp_path, capsys, standin, no_env_data):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("mode bits do not stop this user (root)")
        rc, o, e = run_cli(BASE + ["--out", str(ro / "run"), "--steps", "2"], capsys)
        assert rc == 2 and "not writable" in one_line_error(e)
    finally:
        ro.chmod(0o700)


# ------------------------------------------------------------- options no longer ignored
def test_latent_refuses_out(vae_standin_run, capsys, tmp_path):
    out, _ = vae_standin_run
    for f in ("latent_scatter.png", "manifold.png"):
        (out / f).unlink(missing_ok=True)
    rc, o, e = run_cli(["latent", str(out), "--out", str(tmp_path / "z.png")], capsys)
    assert rc == 2 and "--out-dir" in one_line_error(e)
    assert not (out / "latent_scatter.png").exists()


def test_label_on_an_unconditional_model_is_refused(tmp_path, capsys, standin, no_env_data):
    run = tmp_path / "run"
    assert run_cli(BASE + ["--out", str(run), "--steps", "2"], capsys)[0] == 0
    rc, o, e = run_cli(["sample", str(run), "--label", "3", "--out", str(tmp_path / "s.png")],
                       capsys)
    assert rc == 2 and "not conditional" in one_line_error(e)
    assert not (tmp_path / "s.png").exists()


# ----------------------------------------------------------------- messages, not noise
def test_sample_out_with_an_unsupported_suffix(tmp_path, capsys, standin, no_env_data):
    run = tmp_path / "run"
    assert run_cli(BASE + ["--out", str(run), "--steps", "2"], capsys)[0] == 0
    rc, o, e = run_cli(["sample", str(run), "--out", str(tmp_path / "a.txt")], capsys)
    line = one_line_error(e)
    assert rc == 2 and "'.txt'" in line and ".png" in line and ".pdf" in line
    assert not (tmp_path / "a.txt").exists()


class Interrupting(StandIn):
    """Sends itself Ctrl-C at step 2 (as a user would)."""

    def train_step(self, x, y=None):
        out = super().train_step(x, y)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return out


def test_a_second_ctrl_c_during_the_last_plot(tmp_path, capsys, monkeypatch, no_env_data):
    monkeypatch.setattr(cli, "registry", lambda: {"gan": Interrupting})
    from scratchgan import viz

    def second_ctrl_c(*a, **kw):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(viz, "plot_loss_curves", second_ctrl_c)
    out = tmp_path / "run"
    rc, o, e = run_cli(BASE + ["--out", str(out), "--steps", "50"], capsys)
    assert rc == 130, e
    assert "Traceback" not in e and len(e.strip().splitlines()) <= 4, e
    assert "interrupted at step 2 of 50" in e
    assert f"resume with: scratchgan train gan --resume --out {out}" in e


class Overflowing(StandIn):
    """A loss that overflows (NumPy warns) and turns NaN at step 3."""

    def train_step(self, x, y=None):
        out = super().train_step(x, y)
        if self.step >= 3:
            big = np.exp(np.array([1000.0]))            # overflow
            out["nll"] = float((big - big)[0])          # invalid value: nan
        return out


def test_overflow_warnings_become_part_of_the_message(tmp_path, capsys, monkeypatch,
                                                      no_env_data):
    monkeypatch.setattr(cli, "registry", lambda: {"gan": Overflowing})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, o, e = run_cli(BASE + ["--out", str(tmp_path / "r"), "--steps", "10"], capsys)
    assert rc == 1 and "non-finite loss at step 3" in e
    assert "overflow" in e and "RuntimeWarning" not in e
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], caught


def test_stand_in_notices_are_plain_lines(tmp_path, capsys, no_env_data):
    """pix2pix's paired set built from stand-in images: a plain note, no UserWarning."""
    reg = real_registry()
    if "pix2pix" not in reg:
        pytest.skip("no pix2pix in the registry")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, o, e = run_cli(["train", "pix2pix", "--dataset", "quadrants-paired1", "--dry-run",
                            "--no-progress", "--data-dir", str(empty), "--out", str(out)],
                           capsys)
        assert rc == 0, e
        assert re.search(r"^scratchgan train: note: mnist files not found", e, re.M), e
        rc, o, e = run_cli(["translate", str(out), "--n", "4"], capsys)
        assert rc == 0, e
        assert "scratchgan translate: note:" in e and (out / "translate.png").is_file()
    assert not [w for w in caught if issubclass(w.category, UserWarning)], caught
    assert "UserWarning" not in e and "warnings.warn" not in e


# --------------------------------------------------------- exit codes, version, help
def test_resume_without_a_checkpoint_is_a_user_error(tmp_path, capsys, standin, no_env_data):
    rc, o, e = run_cli(BASE + ["--out", str(tmp_path / "none"), "--resume"], capsys)
    assert rc == 2 and "no checkpoint in" in one_line_error(e)


def test_version(capsys):
    rc, o, e = run_cli(["--version"], capsys)
    assert rc == 0 and o.strip() == f"scratchgan {scratchgan.__version__}"


def _subparsers():
    p = cli.build_parser()
    return p, p._subparsers._group_actions[0].choices


def test_help_shows_the_defaults_and_the_exit_status():
    p, subs = _subparsers()
    assert "exit status" in p.format_help() and "2 a user error" in p.format_help()
    for name, sub in subs.items():
        text = sub.format_help()
        assert "exit status" in text, name
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0 or isinstance(
                    action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            shown = sub._get_formatter()._get_help_string(action)
            assert "default" in shown, (name, action.option_strings, shown)
    assert re.search(r"--seed SEED\s+random seed \(default: 0\)", subs["sample"].format_help())


def test_readme_documents_exit_codes():
    text = README.read_text()
    assert "exit status 2" in text and "--version" in text
