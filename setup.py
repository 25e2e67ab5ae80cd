"""The two build steps that setup.cfg cannot express (all metadata stays in setup.cfg).

1. Ship the CUDA kernels with the package. ``kernels/*.cu`` and ``kernels/*.cuh`` stay at
   the top level of the repository, the one copy kept in git. ``build_py`` copies them into
   the *built* package as ``scratchgan/_kernels/``, so a wheel, and any non-editable
   install (``pip install .``, a wheel, an sdist), carries them. An editable install
   (``pip install -e .``) copies nothing: ``scratchgan.cuda.loader`` then reads the
   repository's ``kernels/`` directly, so an edited kernel is picked up without reinstalling.
   An sdist carries ``kernels/`` through ``MANIFEST.in``.

2. A package-index description. The README's images and links point into the repository
   (``docs/images/...``, ``benchmarks/...``), paths a package index cannot resolve, so the
   long description is the README with relative images dropped and relative links reduced
   to their text (:func:`package_description`); absolute links and anchors stay.

3. Keep the source tree clean. ``build`` (and with it ``bdist_wheel``, whose staging folder
   lives under the build folder) works in a fresh temporary folder, removed when the build
   process exits, instead of ``./build``; ``egg_info`` writes ``scratchgan.egg-info`` into
   that folder too. So ``pip install .`` and ``pip wheel .`` leave no ``build/`` or
   ``*.egg-info`` behind. An explicit ``--build-base`` / ``--egg-base`` (command line or a
   ``[build]`` / ``[egg_info]`` section of setup.cfg) other than the defaults is respected,
   and editable installs keep setuptools' own choices.
"""
from __future__ import annotations

import atexit
import os
import pathlib
import re
import shutil
import tempfile

from setuptools import setup
from setuptools.command.build import build as _build
from setuptools.command.build_py import build_py as _build_py
from setuptools.command.egg_info import egg_info as _egg_info

HERE = pathlib.Path(__file__).resolve().parent
KERNEL_SOURCE_DIR = HERE / "kernels"                # the source of truth, in git
KERNEL_PATTERNS = ("*.cu", "*.cuh")
KERNEL_PACKAGE_DIR = ("scratchgan", "_kernels")    # where they land inside the built package

_TEMP_ROOT: str | None = None


def _temp_root() -> str:
    """One temporary folder per build process for build/ and egg-info, removed at exit."""
    global _TEMP_ROOT
    if _TEMP_ROOT is None:
        _TEMP_ROOT = tempfile.mkdtemp(prefix="scratchgan-build-")
        atexit.register(shutil.rmtree, _TEMP_ROOT, True)
    return _TEMP_ROOT


def kernel_sources() -> list[pathlib.Path]:
    """Every kernels/*.cu and kernels/*.cuh, sorted; an error if there are none."""
    files = sorted(p for pattern in KERNEL_PATTERNS for p in KERNEL_SOURCE_DIR.glob(pattern))
    if not any(p.suffix == ".cu" for p in files):
        raise RuntimeError(
            f"setup.py: no CUDA kernel sources (*.cu) in {str(KERNEL_SOURCE_DIR)!r}; expected the "
            "repository's kernels/ folder next to setup.py (an sdist carries it through "
            "MANIFEST.in's 'graft kernels')")
    return files


class build(_build):
    """``build`` in a temporary folder unless a build folder was chosen explicitly."""

    def finalize_options(self):
        if self.build_base == "build":      # the default: nobody asked for ./build
            self.build_base = os.path.join(_temp_root(), "build")
        super().finalize_options()


class egg_info(_egg_info):
    """``scratchgan.egg-info`` in the temporary folder unless an egg base was chosen."""

    def finalize_options(self):
        if self.egg_base is None:           # the default would be the source tree
            self.egg_base = _temp_root()
        super().finalize_options()


class build_py(_build_py):
    """The usual ``build_py``, plus kernels/*.cu and *.cuh copied to scratchgan/_kernels/."""

    def _kernel_outputs(self) -> list[tuple[pathlib.Path, pathlib.Path]]:
        target = pathlib.Path(self.build_lib, *KERNEL_PACKAGE_DIR)
        return [(src, target / src.name) for src in kernel_sources()]

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):   # pip install -e: the loader reads <repo>/kernels/
            return
        for src, dst in self._kernel_outputs():
            self.mkpath(str(dst.parent))
            self.copy_file(str(src), str(dst), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(dst) for _, dst in self._kernel_outputs()]


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|#)")   # https:, mailto:, #anchor


def package_description(text: str) -> str:
    """The README for a package index: relative images removed (with a line that held only
    the image), relative links replaced by their text; absolute ones kept."""
    def image(m):
        return m.group(0) if _ABSOLUTE.match(m.group(2)) else ""

    def link(m):
        return m.group(0) if _ABSOLUTE.match(m.group(2)) else m.group(1)

    out = []
    for line in text.splitlines(keepends=True):
        new = _LINK.sub(link, _IMAGE.sub(image, line))
        if new.strip() or not line.strip():
            out.append(new)
    return "".join(out)


if __name__ == "__main__":     # also how setuptools' build backend runs this file
    setup(cmdclass={"build": build, "build_py": build_py, "egg_info": egg_info},
          long_description=package_description((HERE / "README.md").read_text("utf-8")))
