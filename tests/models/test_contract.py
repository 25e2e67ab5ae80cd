"""The contract every registered model keeps, from its dry-run configuration.

For each model of ``scratchgan.models.REGISTRY`` (a model added there is covered without
editing this file):

* it has a dry-run configuration: its own ``defaults`` (with ``batch_size``) and its own
  ``default_dataset``, one the command line knows and can train on without files;
* ``python -m scratchgan train MODEL --dry-run --out OUT`` exits 0 and writes its run into OUT
  and nowhere else (not into the current folder, not into the home folder);
* one ``train_step`` on that run's configuration (read back from the ``config.json`` the dry
  run wrote, so the configuration here is the command line's own) gives finite losses and
  finite parameters, and changes the parameters;
* the same seed builds the same model (weights, optimizer state, generators), and
  resume is bit-exact: a step, a checkpoint written to a file and loaded into a freshly built
  model (other initial weights), then the same next step, equals the run that went on without
  stopping: every parameter, buffer, optimizer state entry, generator and the losses;
* (gpu) from the same state a step on the GPU equals the step on the CPU, in float64, within
  the bounds of the other whole-model GPU tests.

The dry runs train on the deterministic stand-in data (no data files are looked up), so the
suite checks the same thing on every machine.
"""
import contextlib
import json
import math
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

import scratchgan
from scratchgan import cli
from scratchgan.backend import to_device, to_numpy
from scratchgan.checkpoint import load_checkpoint, save_checkpoint
from scratchgan.data.standin import load_or_standin
from scratchgan.models import REGISTRY

MODELS = list(REGISTRY)
PACKAGE_ROOT = pathlib.Path(scratchgan.__file__).resolve().parents[1]
# the other whole-model GPU comparisons (tests/test_models.py::test_gpu_matches_cpu)
GPU_LOSS_TOL = dict(rtol=1e-6, atol=1e-8)
GPU_STATE_TOL = dict(rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------ helpers
class DryRun:
    """One ``python -m scratchgan train MODEL --dry-run`` in a folder of its own."""

    def __init__(self, name, root):
        self.name = name
        self.out, self.cwd, self.home = root / "out", root / "cwd", root / "home"
        self.cwd.mkdir()
        self.home.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "SCRATCHGAN_DATA"}
        env.update(HOME=str(self.home), XDG_CACHE_HOME=str(self.home / ".cache"),
                   MPLCONFIGDIR=str(root / "matplotlib"),
                   PYTHONPATH=os.pathsep.join([str(PACKAGE_ROOT)] +
                                              [p for p in [env.get("PYTHONPATH")] if p]))
        self.env = env
        r = subprocess.run([sys.executable, "-m", "scratchgan", "train", name, "--dry-run",
                            "--no-progress", "--out", str(self.out)], cwd=self.cwd, env=env,
                           capture_output=True, text=True, timeout=600)
        self.returncode, self.stdout, self.stderr = r.returncode, r.stdout, r.stderr

    def config(self):
        assert self.returncode == 0, f"the dry run of {self.name} failed:\n{self.stderr[-3000:]}"
        return json.loads((self.out / "config.json").read_text())

    def data(self):
        """The training data of the run: the stand-in set its config names."""
        cfg = self.config()
        with contextlib.ExitStack() as stack:
            mp = stack.enter_context(pytest.MonkeyPatch.context())
            for k in ("SCRATCHGAN_DATA", "XDG_CACHE_HOME"):
                mp.delenv(k, raising=False)
            mp.setenv("XDG_CACHE_HOME", self.env["XDG_CACHE_HOME"])
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", UserWarning)     # "files not found: stand-in"
            x, y, _ = load_or_standin(cfg["dataset"], tuple(cfg["data_range"]), split="train",
                                      limit=cfg["limit"], download=False, standin=True)
        assert list(x.shape[1:]) == cfg["data_shape"], (x.shape, cfg["data_shape"])
        return x, y


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """``dry_run(name)``: the model's command-line dry run, run once for the whole module."""
    runs = {}

    def get(name):
        if name not in runs:
            runs[name] = DryRun(name, tmp_path_factory.mktemp(f"dry-run-{name}"))
        return runs[name]
    return get


def build(cfg, seed, device="cpu", dtype=None):
    """The model of a run configuration, as ``scratchgan train`` builds it."""
    cls = REGISTRY[cfg["model"]]
    return cls(tuple(cfg["data_shape"]), num_classes=cfg["num_classes"], device=device,
               dtype=np.dtype(dtype or cfg["dtype"]), rng=seed, **cfg["hyper"])


def attach(model, x, y):
    """What the trainer and the command line hand a model before its first step."""
    if hasattr(model, "set_preview"):
        model.set_preview(x)
    if model.step == 0 and hasattr(model, "init_from_data"):
        model.init_from_data(x)
    if hasattr(model, "attach_data"):
        model.attach_data(x, y)
    return model


def step_data(model, cfg, x, y, i, device="cpu"):
    """The real data of step ``i``: ``batches_per_step()`` minibatches of the run's batch size
    (a list when more than one) and their labels for models that use labels."""
    k, b = int(model.batches_per_step()), int(cfg["batch_size"])
    use_labels = getattr(model, "conditional", False) or getattr(model, "uses_labels", False)
    lo = i * k * b
    assert lo + k * b <= len(x), "the dry run's data is too small for two steps"
    xs = [to_device(x[lo + j * b: lo + (j + 1) * b], device) for j in range(k)]
    ys = [to_device(y[lo + j * b: lo + (j + 1) * b], device) if use_labels else None
          for j in range(k)]
    if k == 1:
        return xs[0], ys[0]
    return xs, (ys if use_labels else None)


def host_logs(logs):
    out = {}
    for k, v in logs.items():
        a = to_numpy(v)
        out[k] = float(a) if a.ndim == 0 else a
    return out


def parameters(model):
    return {f"{k}.{n}": to_numpy(p.data).copy() for k, net in model.networks().items()
            for n, p in net.named_parameters()}


def assert_identical(a, b, where="state"):
    """Equal bit for bit: nested dicts, lists and tuples of arrays and plain values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, sorted(a), sorted(b))
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_identical(u, v, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape,
                                                           b.shape)
        assert np.array_equal(a.view(np.uint8) if a.dtype.kind == "f" else a,
                              b.view(np.uint8) if b.dtype.kind == "f" else b), where
    else:
        assert a == b, (where, a, b)


def arrays(state, prefix=""):
    """``{path: array}`` of every floating-point array in a nested state."""
    out = {}
    if isinstance(state, dict):
        for k, v in state.items():
            out.update(arrays(v, f"{prefix}{k}."))
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            out.update(arrays(v, f"{prefix}{i}."))
    elif isinstance(state, np.ndarray) and state.dtype.kind == "f":
        out[prefix.rstrip(".")] = state
    return out


class Resume:
    """Step 1, a checkpoint file, step 2 (the run that goes on) and, from the checkpoint
    loaded into a freshly built model, the same step 2 (the resumed run)."""

    def __init__(self, run, tmp):
        cfg = run.config()
        x, y = run.data()
        seed = int(cfg["seed"])
        self.first = attach(build(cfg, seed), x, y)
        self.initial = self.first.state_dict()
        self.again = attach(build(cfg, seed), x, y).state_dict()
        self.before = parameters(self.first)
        self.logs1 = host_logs(self.first.train_step(*step_data(self.first, cfg, x, y, 0)))
        self.after1 = parameters(self.first)
        ckpt = save_checkpoint(tmp / "model.ckpt.npz", self.first.state_dict())
        self.logs2 = host_logs(self.first.train_step(*step_data(self.first, cfg, x, y, 1)))
        self.fresh = attach(build(cfg, seed + 1), x, y)
        self.fresh_before = parameters(self.fresh)
        self.fresh.load_state_dict(load_checkpoint(ckpt))
        self.resumed_logs2 = host_logs(self.fresh.train_step(*step_data(self.fresh, cfg, x, y,
                                                                        1)))


@pytest.fixture(scope="module")
def resume(dry_run, tmp_path_factory):
    """``resume(name)``: the model's :class:`Resume`, run once for the whole module."""
    runs = {}

    def get(name):
        if name not in runs:
            runs[name] = Resume(dry_run(name), tmp_path_factory.mktemp(f"resume-{name}"))
        return runs[name]
    return get


# ------------------------------------------------------------------------------- tests
def test_the_command_line_lists_every_registered_model():
    assert list(cli.MODEL_NAMES) == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_dry_run_configuration(name):
    """The class itself (not the base class) says what a dry run trains: its data set, batch
    size and hyperparameters; the data set is one a dry run can train on without files."""
    from scratchgan.data.datasets import DATASETS
    cls = REGISTRY[name]
    own = vars(cls)
    assert isinstance(own.get("defaults"), dict) and "batch_size" in own["defaults"], \
        f"{cls.__name__} has no defaults of its own with a batch_size: no dry-run configuration"
    assert "default_dataset" in own, f"{cls.__name__} names no default_dataset of its own"
    assert own["default_dataset"] in DATASETS, (name, own["default_dataset"])
    assert int(own["defaults"]["batch_size"]) >= 1


@pytest.mark.parametrize("name", MODELS)
def test_cli_dry_run_writes_only_its_run_folder(name, dry_run):
    run = dry_run(name)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith(f"dry run: {name} on "), run.stdout
    assert not any(run.cwd.iterdir()), sorted(p.name for p in run.cwd.iterdir())
    assert not any(run.home.iterdir()), sorted(str(p) for p in run.home.rglob("*"))
    files = {p.name for p in run.out.iterdir()}
    assert {"config.json", "metrics.jsonl", "last.ckpt.npz", "samples.png"} <= files, files
    cfg = run.config()
    assert cfg["model"] == name and cfg["dry_run"] is True
    assert cfg["batch_size"] <= cli.DRY_RUN["max_batch"] and cfg["limit"] == cli.DRY_RUN["limit"]
    rows = [json.loads(line) for line in (run.out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == cli.DRY_RUN["steps"]
    state = load_checkpoint(run.out / "last.ckpt.npz")
    assert state["trainer"]["step"] == cli.DRY_RUN["steps"]
    assert state["model"]["model"] == name and state["model"]["step"] == cli.DRY_RUN["steps"]


@pytest.mark.parametrize("name", MODELS)
def test_a_step_is_finite(name, resume):
    r = resume(name)
    assert r.logs1, "train_step returned no losses"
    for k, v in r.logs1.items():
        assert np.all(np.isfinite(v)), (k, v)
    for k, p in r.after1.items():
        assert np.isfinite(p).all(), k
    moved = [k for k in r.before if not np.array_equal(r.before[k], r.after1[k])]
    assert moved, "a step changed no parameter"
    assert r.first.step == 2


@pytest.mark.parametrize("name", MODELS)
def test_the_same_seed_builds_the_same_model(name, resume):
    r = resume(name)
    assert_identical(r.again, r.initial)


@pytest.mark.parametrize("name", MODELS)
def test_resume_is_bit_exact(name, resume):
    r = resume(name)
    # the fresh model started elsewhere, so the checkpoint is what made it equal
    assert any(not np.array_equal(r.before[k], r.fresh_before[k]) for k in r.before)
    assert_identical(r.resumed_logs2, r.logs2, "losses")
    assert_identical(r.fresh.state_dict(), r.first.state_dict())
    assert all(math.isfinite(v) for v in r.logs2.values() if isinstance(v, float))


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODELS)
def test_gpu_step_equals_cpu_step(name, dry_run):
    """From the same state (the CPU model's, loaded into the GPU model) and the same data, one
    float64 step on CuPy equals the NumPy step: losses, parameters, buffers, optimizer state."""
    run = dry_run(name)
    cfg = run.config()
    x, y = run.data()
    seed = int(cfg["seed"])
    cpu = attach(build(cfg, seed, dtype=np.float64), x, y)
    gpu = attach(build(cfg, seed + 1, device="cuda", dtype=np.float64), x, y)
    gpu.load_state_dict(cpu.state_dict())
    la = host_logs(cpu.train_step(*step_data(cpu, cfg, x, y, 0)))
    lb = host_logs(gpu.train_step(*step_data(gpu, cfg, x, y, 0, device="cuda")))
    assert set(la) == set(lb)
    for k in la:
        assert np.allclose(la[k], lb[k], **GPU_LOSS_TOL), (k, la[k], lb[k])
    sa, sb = cpu.state_dict(), gpu.state_dict()
    assert sa["step"] == sb["step"] == 1
    for part in ("networks", "optimizers"):
        want, got = arrays(sa[part]), arrays(sb[part])
        assert set(want) == set(got), part
        for k in want:
            np.testing.assert_allclose(to_numpy(got[k]), want[k], err_msg=f"{part}.{k}",
                                       **GPU_STATE_TOL)
