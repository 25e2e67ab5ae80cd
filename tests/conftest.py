import os

# Tests run many tiny matrix products: BLAS thread pools only add contention on
# small CI machines. Set before NumPy loads; an explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pathlib

import numpy as np
import pytest

import scratchgan
from scratchgan.backend import cupy_available

REPO = pathlib.Path(__file__).resolve().parents[1]
# the folder holding the scratchgan package under test (the repository for an editable
# install or a run from the checkout)
PACKAGE_ROOT = pathlib.Path(scratchgan.__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "in_current_folder: runs in the folder pytest was started from, not in a "
                   "temporary one of its own")


# ----------------------------------------------------------- tests never write into the tree
@pytest.fixture(autouse=True)
def _own_current_folder(request, monkeypatch):
    """Each test runs in a temporary current folder of its own (its ``tmp_path``), so a
    relative path (a default ``--out runs/...``) can neither write into the repository nor
    find what an earlier command left there. Subprocesses import the scratchgan under test
    from there. ``@pytest.mark.in_current_folder`` opts out."""
    root = str(PACKAGE_ROOT)
    path = os.environ.get("PYTHONPATH")
    if root not in (path or "").split(os.pathsep):
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root] + ([path] if path else [])))
    if request.node.get_closest_marker("in_current_folder") is None:
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))


def _tree_entries():
    """The repository's untracked and ignored files (``git status``), or None when the tests
    do not run from a git checkout. Python's byte-code and pytest's own cache are left out."""
    import subprocess
    try:
        r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored",
                            "-z"], cwd=REPO, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None
    out = set()
    for entry in r.stdout.decode(errors="replace").split("\0"):
        if entry[:3] not in ("?? ", "!! "):
            continue
        parts = pathlib.PurePosixPath(entry[3:]).parts
        if "__pycache__" in parts or ".pytest_cache" in parts or entry.endswith(".pyc"):
            continue
        out.add(entry[3:])
    return out


def pytest_sessionstart(session):
    session.config._tree_before = _tree_entries()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_tree_before", None)
    if before is None:
        return
    after = _tree_entries() or set()
    new = sorted(after - before)
    if new:
        shown = "\n  ".join(new[:20]) + ("\n  ..." if len(new) > 20 else "")
        session.config.get_terminal_writer().line(
            f"\nThe tests left {len(new)} new file(s) in the repository {REPO}:\n  {shown}",
            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config, items):
    if cupy_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with CuPy; none is usable on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def require_torch():
    """The ``torch`` module for tests that compare against PyTorch.

    Without torch such tests skip, except under CI (the environment variable ``CI`` set to
    anything but "", "0" or "false"): there the ImportError surfaces, so a CI run without
    torch fails instead of silently skipping them. Call it at module level
    (``torch = require_torch()``) or through the ``torch_module`` fixture."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
        import torch
        return torch
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")


@pytest.fixture(scope="session")
def torch_module():
    return require_torch()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def data_dir():
    """The folder holding mnist/ and fashion-mnist/ IDX files, or skip."""
    d = os.environ.get("SCRATCHGAN_DATA") or (str(SHARED_DATA) if SHARED_DATA.exists() else None)
    if not d or not (pathlib.Path(d) / "mnist").exists():
        pytest.skip("MNIST IDX files not found: set SCRATCHGAN_DATA to a folder with mnist/")
    return d


def load_benchmark(name):
    """Import ``benchmarks/<name>.py`` (not a package) as a module, for the scripts' tests."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
