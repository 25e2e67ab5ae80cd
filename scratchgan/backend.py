"""Array backend: NumPy on the CPU, CuPy on the GPU.

Every op asks :func:`get_array_module` which library its arrays belong to, so the
same code runs on either. Arrays never move implicitly: :func:`to_device` is the
only place where data crosses between host and GPU.

CuPy is optional. Importing scratchgan never imports it unless it is installed,
and nothing here fails when it is missing until a GPU array is asked for.
"""
from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_DTYPE", "cupy_available", "get_array_module", "is_gpu_array", "device_of",
           "check_device", "to_device", "to_numpy", "cupy", "set_conv_precision",
           "get_conv_precision", "set_conv_algorithm", "get_conv_algorithm"]

try:  # CuPy is the optional `gpu` extra.
    import cupy as _cupy  # type: ignore
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None

DEFAULT_DTYPE = np.float32
_CONV_PRECISIONS = ("fp32", "tf32")
_state = {"conv_precision": "fp32", "conv_algorithm": "implicit_gemm"}
_CONV_ALGORITHMS = ("implicit_gemm", "im2col_cublas")


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def get_array_module(*arrays):
    """Return ``numpy`` or ``cupy`` for the given arrays.

    Mixing host and device arrays is an error: nothing is copied behind the
    caller's back.
    """
    xp = np
    seen_gpu = seen_cpu = False
    for a in arrays:
        if a is None:
            continue
        if _cupy is not None and isinstance(a, _cupy.ndarray):
            seen_gpu = True
            xp = _cupy
        elif isinstance(a, np.ndarray) or np.isscalar(a):
            seen_cpu = seen_cpu or isinstance(a, np.ndarray)
    if seen_gpu and seen_cpu:
        raise TypeError("arrays on different devices: got a mix of numpy (cpu) and cupy (cuda) "
                        "arrays; move them explicitly with scratchgan.backend.to_device")
    return xp


def is_gpu_array(x) -> bool:
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def device_of(x) -> str:
    """'cuda' for a CuPy array, 'cpu' for a NumPy array."""
    if is_gpu_array(x):
        return "cuda"
    if isinstance(x, np.ndarray):
        return "cpu"
    raise TypeError(f"expected a numpy or cupy array, got {type(x).__name__}")


def check_device(device: str) -> str:
    """Validate a device name ('cpu' or 'cuda') and return it."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid choices are 'cpu' and 'cuda'")
    if device == "cuda" and not cupy_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is usable "
                         "(CuPy is not installed or sees no device); use --device cpu "
                         "or install the gpu extra: pip install -e '.[gpu]'")
    return device


def to_device(x, device: str):
    """Copy ``x`` to 'cpu' (NumPy) or 'cuda' (CuPy). A no-op when already there."""
    check_device(device)
    if device == "cpu":
        return _cupy.asnumpy(x) if is_gpu_array(x) else np.asarray(x)
    return x if is_gpu_array(x) else _cupy.asarray(x)


def to_numpy(x):
    """Host copy of any array (NumPy arrays are returned as they are)."""
    return _cupy.asnumpy(x) if is_gpu_array(x) else np.asarray(x)


def cupy():
    """The CuPy module; a clear error when it is not installed."""
    if _cupy is None:
        raise ImportError("CuPy is not installed; install the gpu extra: pip install -e '.[gpu]'")
    return _cupy


def set_conv_precision(precision: str) -> None:
    """Select the GPU convolution arithmetic: 'fp32' (strict, default) or 'tf32' (tensor cores)."""
    if precision not in _CONV_PRECISIONS:
        raise ValueError(f"unknown conv precision {precision!r}; valid choices are {_CONV_PRECISIONS}")
    _state["conv_precision"] = precision


def get_conv_precision() -> str:
    return _state["conv_precision"]


def set_conv_algorithm(algorithm: str) -> None:
    """Select the GPU convolution algorithm: 'implicit_gemm' (our kernels) or 'im2col_cublas'."""
    if algorithm not in _CONV_ALGORITHMS:
        raise ValueError(f"unknown conv algorithm {algorithm!r}; valid choices are {_CONV_ALGORITHMS}")
    _state["conv_algorithm"] = algorithm


def get_conv_algorithm() -> str:
    return _state["conv_algorithm"]
