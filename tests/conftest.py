import os

# Tests run many tiny matrix products: BLAS thread pools only add contention on
# small CI machines. Set before NumPy loads; an explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pathlib

import numpy as np
import pytest

from scratchgan.backend import cupy_available

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
