"""Packaging: what a wheel, an sdist, ``pip install .`` and ``pip install -e .`` ship, and
where :mod:`scratchgan.cuda.loader` finds the CUDA kernel sources after each.

``kernels/`` lives at the top of the repository, outside the package; ``setup.py`` copies
its ``*.cu``/``*.cuh`` into the built package as ``scratchgan/_kernels/`` (never for an
editable install, which reads ``kernels/`` directly). These tests build from a copy of the
build inputs (so the working tree is never written to), install into fresh virtual
environments made with ``--system-site-packages`` (NumPy & co. come from this Python) and
``--no-index --no-deps --no-build-isolation`` (nothing is downloaded), and run the check
from a folder outside the repository. No GPU: ``read_source`` only reads and inlines files.

Marked ``packaging`` (select with ``-m packaging``); it is not ``gpu`` or ``slow``, so the
README's test command, and with it ``.ci/run``, runs it. About 10-20 s on 2 CPU cores.

Also here: the loader's search order and error (monkeypatched folders, no build), and the
lazily imported submodules of ``import scratchgan as sg``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile

import pytest

from scratchgan.cuda import loader

REPO = pathlib.Path(__file__).resolve().parents[1]
KERNELS = REPO / "kernels"
KERNEL_FILES = sorted(KERNELS.glob("*.cu")) + sorted(KERNELS.glob("*.cuh"))
KERNEL_NAMES = sorted(p.stem for p in KERNELS.glob("*.cu"))
# Everything the build reads; copied to a scratch folder so building never touches the repo.
BUILD_INPUTS = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in",
                "scratchgan", "kernels")
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "_kernels", "*.egg-info")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _require_wheel_building():
    """Skip (fail under CI) when this Python cannot build a wheel offline."""
    have_bdist_wheel = (importlib.util.find_spec("wheel") is not None
                        or importlib.util.find_spec("setuptools.command.bdist_wheel") is not None)
    if not have_bdist_wheel:
        msg = ("building a wheel needs setuptools>=70.1 or the 'wheel' package; neither is "
               "installed in this Python")
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)


def _env() -> dict:
    """The environment for build and check subprocesses: offline pip, no path overrides."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", loader.KERNELS_ENV) and not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _run(cmd, cwd, timeout=300) -> str:
    res = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=_env(), capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, (f"command failed (exit {res.returncode}): {' '.join(map(str, cmd))}"
                                 f"\n--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}")
    return res.stdout


def _tree(root: pathlib.Path) -> set:
    """Every file and folder under root, as relative paths (what a build could add)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _pip(python, *args):
    return [python, "-m", "pip", *args]


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    """A copy of the build inputs, and the set of its paths before anything is built there."""
    _require_wheel_building()
    src = tmp_path_factory.mktemp("pkg") / "scratchgan-src"
    src.mkdir()
    for name in BUILD_INPUTS:
        p = REPO / name
        assert p.exists(), f"build input {name} missing from the repository root {REPO}"
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=COPY_IGNORE)
        else:
            shutil.copy2(p, src / name)
    return src, _tree(src)


@pytest.fixture(scope="module")
def wheel(source_tree, tmp_path_factory):
    """The wheel that ``pip wheel .`` builds in the source tree (in-tree, as pip does)."""
    src, _ = source_tree
    out = tmp_path_factory.mktemp("wheelhouse")
    _run(_pip(sys.executable, "wheel", "--no-deps", "--no-build-isolation", "-w", out, "."), src)
    wheels = sorted(out.glob("scratchgan-*.whl"))
    assert len(wheels) == 1, f"expected one scratchgan wheel in {out}, found {os.listdir(out)}"
    return wheels[0]


def _assert_wheel_ships_kernels(whl: pathlib.Path):
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        missing = [f"scratchgan/_kernels/{p.name}" for p in KERNEL_FILES
                   if f"scratchgan/_kernels/{p.name}" not in names]
        assert not missing, f"{whl.name} lacks kernel sources {missing}; it has {sorted(names)}"
        for p in KERNEL_FILES:
            assert z.read(f"scratchgan/_kernels/{p.name}") == p.read_bytes(), \
                f"{whl.name}: scratchgan/_kernels/{p.name} differs from kernels/{p.name}"
        assert "scratchgan/metrics/weights/lenet_mnist.npz" in names
        assert "scratchgan/studies/gan-official.toml" in names     # the reproduce studies
        assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
                   for n in names), f"{whl.name} carries no LICENSE"
        stray = sorted(n for n in names if n.startswith("kernels/") or "__pycache__" in n)
        assert not stray, f"{whl.name} has files outside the package layout: {stray}"


@pytest.mark.packaging
def test_kernel_sources_exist():
    assert KERNEL_NAMES and "conv2d_fwd" in KERNEL_NAMES, f"no kernels/*.cu in {KERNELS}"
    assert (KERNELS / "igemm.cuh").is_file()


@pytest.mark.packaging
def test_wheel_ships_every_kernel(wheel):
    _assert_wheel_ships_kernels(wheel)


@pytest.mark.packaging
def test_building_leaves_the_source_tree_clean(source_tree, wheel):
    """``pip wheel .`` (the build ``pip install .`` runs) adds no build/ or *.egg-info."""
    src, before = source_tree
    added = sorted(_tree(src) - before)
    assert not added, f"building the wheel left artefacts in the source tree: {added}"


@pytest.mark.packaging
def test_sdist_carries_kernels_and_builds_a_wheel_with_them(source_tree, tmp_path):
    src, before = source_tree
    out = tmp_path / "sdist"
    out.mkdir()
    _run([sys.executable, "-c",
          "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))", out], src)
    (sdist,) = out.glob("scratchgan-*.tar.gz")
    with tarfile.open(sdist) as t:
        members = {m.split("/", 1)[1] for m in t.getnames() if "/" in m}
    need = ["setup.py", "MANIFEST.in", "LICENSE"] + [f"kernels/{p.name}" for p in KERNEL_FILES]
    missing = [n for n in need if n not in members]
    assert not missing, f"{sdist.name} lacks {missing}"
    added = sorted(_tree(src) - before)
    assert not added, f"building the sdist left artefacts in the source tree: {added}"
    wh = tmp_path / "from-sdist"
    _run(_pip(sys.executable, "wheel", "--no-deps", "--no-build-isolation", "-w", wh, sdist), tmp_path)
    (whl,) = wh.glob("scratchgan-*.whl")
    _assert_wheel_ships_kernels(whl)


CHECK = textwrap.dedent("""
    import json, pathlib, sys
    import scratchgan
    from scratchgan.cuda.loader import kernels_dir, kernel_names, read_source
    print(json.dumps({
        "package": str(pathlib.Path(scratchgan.__file__).resolve().parent),
        "kernels_dir": str(kernels_dir().resolve()),
        "names": kernel_names(),
        "sources": {n: read_source(n) for n in kernel_names()},
        "sys_path": sys.path,
    }))
""")


@pytest.mark.packaging
@pytest.mark.parametrize("mode", ["wheel", "pip install .", "pip install -e ."])
def test_installed_package_finds_every_kernel(mode, source_tree, wheel, tmp_path, monkeypatch):
    """Install into a fresh venv, then from outside the repository read every kernel source."""
    src, before = source_tree
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], tmp_path)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # pip comes from the system site-packages; --ignore-installed: never touch the system's
    # own scratchgan (e.g. the repository's editable install), only the venv gets one.
    base = _pip(py, "install", "--no-deps", "--no-index", "--no-build-isolation",
                "--ignore-installed")
    target = {"wheel": [wheel], "pip install .": [src], "pip install -e .": ["-e", src]}[mode]
    _run(base + target, tmp_path)
    assert sorted(_tree(src) - before) == [], f"{mode} left artefacts in the source tree"

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    got = json.loads(_run([py, "-c", CHECK], outside))

    package = pathlib.Path(got["package"])
    if mode == "pip install -e .":
        assert package == (src / "scratchgan").resolve(), got["package"]
        assert pathlib.Path(got["kernels_dir"]) == (src / "kernels").resolve()
        assert not (package / "_kernels").exists(), "an editable install must not copy kernels"
    else:
        assert package.is_relative_to(venv.resolve()), \
            f"imported scratchgan from {package}, not from the venv {venv}; sys.path {got['sys_path']}"
        assert pathlib.Path(got["kernels_dir"]) == package / "_kernels"
    assert got["names"] == KERNEL_NAMES
    monkeypatch.setenv(loader.KERNELS_ENV, str(KERNELS))
    for name in KERNEL_NAMES:
        assert got["sources"][name] == loader.read_source(name), \
            f"{mode}: {name}.cu (includes inlined) differs from the repository's"
        assert '#include "' not in got["sources"][name]

    if mode != "pip install -e .":
        script = venv / ("Scripts/scratchgan.exe" if os.name == "nt" else "bin/scratchgan")
        assert "train" in _run([script, "--help"], outside)


# --- the loader's search order (no build) ---------------------------------------------------

def _fake_package(root: pathlib.Path, installed: bool, checkout: bool) -> pathlib.Path:
    pkg = root / "scratchgan"
    pkg.mkdir(parents=True)
    if installed:
        (pkg / "_kernels").mkdir()
        (pkg / "_kernels" / "a.cu").write_text("// installed\n")
    if checkout:
        (root / "kernels").mkdir()
        (root / "kernels" / "a.cu").write_text("// checkout\n")
    return pkg


@pytest.mark.parametrize("installed,checkout,expect", [
    (True, True, "_kernels"), (True, False, "_kernels"), (False, True, "kernels")])
def test_loader_search_order(tmp_path, monkeypatch, installed, checkout, expect):
    pkg = _fake_package(tmp_path, installed, checkout)
    monkeypatch.delenv(loader.KERNELS_ENV, raising=False)
    monkeypatch.setattr(loader, "_PACKAGE_DIR", pkg)
    assert loader.kernels_dir().name == expect
    assert loader.kernel_names() == ["a"]


def test_loader_env_wins_and_is_not_silently_replaced(tmp_path, monkeypatch):
    pkg = _fake_package(tmp_path / "p", installed=True, checkout=True)
    monkeypatch.setattr(loader, "_PACKAGE_DIR", pkg)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.cu").write_text("// mine\n")
    monkeypatch.setenv(loader.KERNELS_ENV, str(mine))
    assert loader.kernels_dir() == mine
    assert loader.read_source("a") == "// mine\n"
    monkeypatch.setenv(loader.KERNELS_ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="SCRATCHGAN_KERNELS.*absent.*not a folder"):
        loader.kernels_dir()


def test_loader_error_names_every_folder_searched(tmp_path, monkeypatch):
    pkg = _fake_package(tmp_path, installed=False, checkout=False)
    (tmp_path / "kernels").mkdir()          # a folder without .cu files does not count
    monkeypatch.delenv(loader.KERNELS_ENV, raising=False)
    monkeypatch.setattr(loader, "_PACKAGE_DIR", pkg)
    with pytest.raises(FileNotFoundError) as e:
        loader.kernels_dir()
    msg = str(e.value)
    assert str(pkg / "_kernels") in msg and "not a folder" in msg
    assert str(tmp_path / "kernels") in msg and "no .cu files" in msg
    assert loader.KERNELS_ENV in msg


def test_read_source_names_the_missing_kernel(tmp_path, monkeypatch):
    (tmp_path / "a.cu").write_text("// a\n")
    monkeypatch.setenv(loader.KERNELS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"nope\.cu.*\['a'\]"):
        loader.read_source("nope")


# --- import scratchgan as sg: submodules as attributes ---------------------------------------

def test_submodules_are_attributes_and_imported_lazily(tmp_path):
    code = textwrap.dedent("""
        import sys
        import scratchgan as sg
        heavy = [m for m in ("scratchgan.metrics", "scratchgan.theory", "scratchgan.gradcheck",
                             "scratchgan.runtime") if m in sys.modules]
        assert not heavy, f"imported eagerly by 'import scratchgan': {heavy}"
        assert callable(sg.gradcheck.gradcheck) and callable(sg.gradcheck.gradcheck_module)
        assert callable(sg.metrics.frechet_distance) and callable(sg.theory.optimal_discriminator)
        assert sg.runtime.StepRunner and sg.philox and sg.optim.Adam and sg.nn.Linear
        assert sg.metrics is sys.modules["scratchgan.metrics"]
        for name in ("gradcheck", "metrics", "theory", "runtime", "philox", "optim", "nn"):
            assert name in dir(sg), name
        try:
            sg.no_such_thing
        except AttributeError as e:
            assert "no_such_thing" in str(e) and "gradcheck" in str(e), e
        else:
            raise AssertionError("sg.no_such_thing did not raise AttributeError")
        from scratchgan import theory, gradcheck  # the import statement still works too
        print("ok")
    """)
    assert _run([sys.executable, "-c", code], tmp_path).strip() == "ok"
