"""Helpers the experiment scripts share: the device's name for the results, and JSON written
atomically (a temporary file, then a rename: a stopped run never leaves half a file)."""
from __future__ import annotations

import json
import os
import pathlib
import platform


def device_name(device):
    """The GPU's name on 'cuda' (the current device), else 'cpu (<processor>)'."""
    if device == "cuda":
        from scratchgan.backend import cupy
        cp = cupy()
        name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    return f"cpu ({platform.processor() or platform.machine()})"


def _default(o):
    if hasattr(o, "tolist"):          # NumPy / CuPy scalars and arrays
        return o.tolist()
    return str(o)


def write_json(path, obj, allow_nan=True):
    """``obj`` as indented JSON at ``path`` (parents created), written atomically."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_default, allow_nan=allow_nan) + "\n")
    os.replace(tmp, path)
