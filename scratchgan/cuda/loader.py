"""Find, compile (once per process) and launch the kernels in ``kernels/``.

Where the kernel sources are found (:func:`kernels_dir`), in this order:

1. ``$SCRATCHGAN_KERNELS``, when set: an explicit choice, so a wrong folder is an error
   rather than silently replaced by another;
2. ``<installed package>/_kernels/``: a wheel or any non-editable install, where
   ``setup.py``'s ``build_py`` copied the repository's ``kernels/*.cu`` and ``*.cuh``;
3. ``<repository>/kernels/``: an editable install (``pip install -e .``) or a source
   checkout on ``sys.path``, where the package is ``<repository>/scratchgan``.

A folder counts only if it holds at least one ``.cu`` file; the error when none does names
every folder searched.

Kernel files may include ``igemm.cuh`` from the same folder; the loader inlines
local ``#include "..."`` lines before handing the source to NVRTC, so no include
path is needed. Launch arguments are passed as CuPy arrays (made C-contiguous
first; views are never passed) and typed NumPy scalars.
"""
from __future__ import annotations

import os
import pathlib
import re

import numpy as np

from ..backend import cupy

__all__ = ["KERNELS_ENV", "kernel_search_path", "kernels_dir", "kernel_names", "read_source",
           "get_module", "get_function", "contiguous", "dtype_suffix", "scalar", "check_out",
           "sm_count"]

_MODULES: dict = {}
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.M)


KERNELS_ENV = "SCRATCHGAN_KERNELS"
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]   # .../scratchgan


def kernel_search_path() -> list:
    """The folders :func:`kernels_dir` tries, in order, as ``(description, path)`` pairs.

    With ``$SCRATCHGAN_KERNELS`` set, that folder alone; otherwise the installed package's
    ``_kernels/`` and then the repository's ``kernels/`` (next to the package folder)."""
    env = os.environ.get(KERNELS_ENV)
    if env:
        return [(f"${KERNELS_ENV}", pathlib.Path(env).expanduser())]
    return [("installed package (wheel / pip install .)", _PACKAGE_DIR / "_kernels"),
            ("repository checkout (pip install -e .)", _PACKAGE_DIR.parent / "kernels")]


def _has_kernels(d: pathlib.Path) -> bool:
    return d.is_dir() and any(d.glob("*.cu"))


def kernels_dir() -> pathlib.Path:
    """The folder holding the .cu files: the first of :func:`kernel_search_path` with any."""
    candidates = kernel_search_path()
    for _, d in candidates:
        if _has_kernels(d):
            return d
    searched = "; ".join(
        f"{label}: {str(d)!r} ({'no .cu files in it' if d.is_dir() else 'not a folder'})"
        for label, d in candidates)
    if os.environ.get(KERNELS_ENV):
        hint = (f"{KERNELS_ENV} is set, so no other folder was tried: point it at the folder "
                "holding conv2d_fwd.cu and the other .cu files (the repository's kernels/), "
                "or unset it")
    else:
        hint = ("expected the .cu files in the installed package's _kernels/ (a wheel or "
                "'pip install .' built by this repository's setup.py puts them there) or in "
                f"the repository's kernels/ (editable install); or set {KERNELS_ENV} to the "
                "folder holding them")
    raise FileNotFoundError(f"scratchgan.cuda: no CUDA kernel sources found. Searched {searched}. "
                            f"{hint}")


def kernel_names() -> list:
    """Names of the kernel sources in :func:`kernels_dir` (``conv2d_fwd`` for conv2d_fwd.cu)."""
    return sorted(p.stem for p in kernels_dir().glob("*.cu"))


def read_source(name: str) -> str:
    """Source of ``kernels/<name>.cu`` with local includes inlined (each once)."""
    d = kernels_dir()
    path = d / f"{name}.cu"
    if not path.is_file():
        raise FileNotFoundError(
            f"scratchgan.cuda: kernel source {str(path)!r} not found; expected {name}.cu in the "
            f"kernel folder {str(d)!r}, which holds {kernel_names()}")
    seen = set()

    def expand(text):
        def sub(m):
            inc = m.group(1)
            if inc in seen:
                return ""
            seen.add(inc)
            p = d / inc
            if not p.is_file():
                raise FileNotFoundError(f"scratchgan.cuda: {name}.cu includes missing {str(p)!r}")
            return expand(p.read_text())
        return _INCLUDE.sub(sub, text)

    return expand(path.read_text())


def get_module(name: str):
    """The compiled RawModule for ``kernels/<name>.cu`` (compiled on first use, then cached)."""
    mod = _MODULES.get(name)
    if mod is None:
        cp = cupy()
        mod = cp.RawModule(code=read_source(name), options=("-std=c++17",), backend="nvrtc")
        _MODULES[name] = mod
    return mod


def get_function(module: str, kernel: str):
    return get_module(module).get_function(kernel)


def contiguous(x):
    """A C-contiguous CuPy array with the same values (no copy when already contiguous)."""
    cp = cupy()
    if not isinstance(x, cp.ndarray):
        raise TypeError(f"scratchgan.cuda: expected a cupy array, got {type(x).__name__}")
    return x if x.flags.c_contiguous else cp.ascontiguousarray(x)


def dtype_suffix(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return "f32"
    if dtype == np.float64:
        return "f64"
    raise TypeError(f"scratchgan.cuda: kernels take float32 or float64 arrays, got {dtype}")


def scalar(dtype, v):
    """A typed kernel scalar of the array dtype (np.float32 / np.float64)."""
    return np.dtype(dtype).type(v)


def check_out(out, shape, dtype, label):
    """Validate (or allocate) an output array; it must be C-contiguous with the exact shape."""
    cp = cupy()
    if out is None:
        return cp.empty(shape, dtype=dtype)
    if not isinstance(out, cp.ndarray) or tuple(out.shape) != tuple(shape) or out.dtype != dtype \
            or not out.flags.c_contiguous:
        raise ValueError(f"{label}: out must be a C-contiguous cupy array of shape {tuple(shape)} "
                         f"and dtype {np.dtype(dtype)}, got "
                         f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out).__name__)}")
    return out


_SM_COUNT: dict = {}


def sm_count() -> int:
    cp = cupy()
    dev = cp.cuda.Device().id
    n = _SM_COUNT.get(dev)
    if n is None:
        n = int(cp.cuda.runtime.getDeviceProperties(dev)["multiProcessorCount"])
        _SM_COUNT[dev] = n
    return n
