"""Export a trained run to PyTorch, and import the export back.

``export_run(run_dir, format="safetensors", out=None)`` writes one file holding

* every network's parameters and buffers (BatchNorm running statistics) under the names
  PyTorch gives them, ``"<network>.<state name>"`` (``"G.0.weight"``), in the dtype the run
  trained in (float32 or float64);
* the rest of the checkpoint (optimizer slots, step counters, random-generator states, the
  data-order state) as tensors ``"state.a<k>"``, so the export is complete;
* a manifest (JSON): the model name, its hyperparameters, the run configuration, the data
  shape, each network's layout (its layer tree with each layer's settings) and how the
  model generates samples from its noise.

Formats: ``"safetensors"`` (``<run>/model.safetensors``; the manifest is the metadata entry
``"scratchgan"``; needs the ``safetensors`` package, not torch) and ``"torch"``
(``<run>/model.pt``: ``torch.save`` of ``{"format", "manifest", "tensors"}``, readable with
``torch.load(..., weights_only=True)``).

``load_into_torch(file) -> {network: torch.nn.Module}`` builds each network as PyTorch
modules from the manifest's layout (the same layer-by-layer correspondence as the float64
twins of the tests) with the exported weights, in eval mode. ``torch_generate(file, noise)``
runs the generator the way the model's ``generate`` does. ``import_back(file) -> state``
rebuilds the checkpoint state ``scratchgan.checkpoint.load_checkpoint`` would return for the
exported run, array for array.

``main(argv)`` / ``add_arguments(parser)``: the command ``scratchgan export RUN [--format
safetensors|torch] [--out FILE]``. Every error (no checkpoint in the folder, an unknown
format, an existing output file, a missing package) is raised before anything is written.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import sys
import tempfile
from collections import OrderedDict

import numpy as np

from .checkpoint import CheckpointError, decode_state, encode_state, load_latest_info
from .runs import load_model

__all__ = ["EXPORT_FORMAT", "FORMATS", "GENERATORS", "ExportError", "export_run", "read_export",
           "load_into_torch", "torch_generate", "import_back", "network_layout",
           "add_arguments", "main", "run", "torch_layers"]

EXPORT_FORMAT = "scratchgan-export-v1"
FORMATS = {"safetensors": ".safetensors", "torch": ".pt"}
_META_KEY = "scratchgan"
_STATE_PREFIX = "state."

#: how each model generates: the network, the noise keys it takes (in order) and the output
#: transform applied to the network's output before the reshape to (n, *data_shape)
GENERATORS = {
    "gan": {"network": "G", "inputs": ["z"], "output": "identity"},
    "dcgan": {"network": "G", "inputs": ["z"], "output": "identity"},
    "wgan": {"network": "G", "inputs": ["z"], "output": "identity"},
    "wgan-gp": {"network": "G", "inputs": ["z"], "output": "identity"},
    "cgan": {"network": "G", "inputs": ["z", "y1h"], "output": "identity"},
    "infogan": {"network": "G", "inputs": ["input"], "output": "identity"},
    "aae": {"network": "decoder", "inputs": ["z"], "output": "identity"},
    "vae": {"network": "decoder", "inputs": ["z"], "output": "sigmoid"},
    "betavae": {"network": "decoder", "inputs": ["z"], "output": "sigmoid"},
}


class ExportError(ValueError):
    """An export that cannot be made or read: says what was wrong and what was expected."""


# ----------------------------------------------------------------------------- layout
def _plain_attr(v):
    """A layer setting as JSON (tuples -> lists), or None when it is no plain setting."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v, True
    if isinstance(v, np.generic):
        return v.item(), True
    if isinstance(v, (tuple, list)) and all(isinstance(u, (bool, int, float, str)) for u in v):
        return list(v), True
    return None, False


def network_layout(module) -> dict:
    """The layer tree of a scratchgan module as JSON: ``{"type", "attrs", "children"}``;
    ``attrs`` are the layer's plain settings (sizes, kernel, stride, eps, ...) and
    ``children`` the ``[name, layout]`` pairs of its sub-modules in order."""
    attrs = {}
    for k, v in vars(module).items():
        if k.startswith("_") or k == "training" or k in module._modules:
            continue
        if hasattr(v, "shape") or hasattr(v, "data"):
            continue                      # parameters and buffers travel as tensors
        val, ok = _plain_attr(v)
        if ok:
            attrs[k] = val
    return {"type": type(module).__name__, "attrs": attrs,
            "has_bias": getattr(module, "bias", None) is not None,
            "children": [[n, network_layout(m)] for n, m in module._modules.items()]}


# ----------------------------------------------------------------------------- export
def _check_format(fmt):
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of "
                          f"{', '.join(FORMATS)}")
    return fmt


def _require(fmt):
    """The package that writes/reads ``fmt``, imported here so that scratchgan itself needs
    neither safetensors nor torch."""
    try:
        if fmt == "safetensors":
            import safetensors.numpy as st
            return st
        import torch
        return torch
    except ImportError:
        pkg = "safetensors" if fmt == "safetensors" else "torch"
        raise ExportError(f"the {fmt} format needs the {pkg} package, which is not installed: "
                          f"pip install {pkg} (or pip install 'scratchgan[export]')") from None


def _find_checkpoint(run_dir):
    from .checkpoint import previous_path
    from .train import CHECKPOINT_NAME
    run = pathlib.Path(run_dir)
    if not run.exists():
        raise ExportError(f"run folder not found: {run} (give a folder written by "
                          "'scratchgan train')")
    ckpt = run / CHECKPOINT_NAME if run.is_dir() else run
    if not ckpt.exists() and not previous_path(ckpt).exists():
        raise ExportError(f"{run} holds no checkpoint (expected {ckpt.name} or "
                          f"{previous_path(ckpt).name}); give a run folder written by "
                          "'scratchgan train'")
    return ckpt


def _build_payload(ckpt):
    """(manifest, {tensor name: ndarray}) for the checkpoint ``ckpt``."""
    try:
        state, used, _ = load_latest_info(ckpt)
    except (FileNotFoundError, CheckpointError) as e:
        raise ExportError(f"cannot export: {e}") from e
    config = dict(state.get("config") or {})
    if "model" not in config or "model" not in state:
        raise ExportError(f"{used}: the checkpoint has no model configuration (was it "
                          "written by 'scratchgan train'?)")
    model, _ = load_model(used)
    structure, arrays = encode_state(state)
    tensors, networks = {}, {}
    nets_struct = structure["model"]["networks"]
    for net_name, net in model.networks().items():
        entries = nets_struct[net_name]
        names = list(entries)
        for n in names:
            key = entries[n]["__array__"]
            tensors[f"{net_name}.{n}"] = arrays.pop(key)
            entries[n] = {"__array__": f"{net_name}.{n}"}
        networks[net_name] = {"layout": network_layout(net), "tensors": names,
                              "buffers": [n for n, _ in net.named_buffers()]}
    _rename_rest(structure, arrays, tensors)
    dtype = np.dtype(config.get("dtype", "float32")).name
    gen = GENERATORS.get(config["model"])
    manifest = {"format": EXPORT_FORMAT, "model": config["model"],
                "hyper": model.hp, "config": config, "data_shape": list(model.data_shape),
                "num_classes": int(config.get("num_classes", 10)), "dtype": dtype,
                "step": int(state["model"].get("step", 0)), "checkpoint": used.name,
                "networks": networks, "generator": gen, "state": structure}
    return json.loads(json.dumps(manifest, default=_json_default)), tensors


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    raise TypeError(f"not JSON: {type(v).__name__}")


def _rename_rest(obj, arrays, tensors):
    """Point the remaining array references at ``state.a<k>`` tensor names."""
    if isinstance(obj, list):
        for v in obj:
            _rename_rest(v, arrays, tensors)
    elif isinstance(obj, dict):
        if "__array__" in obj and len(obj) == 1 and obj["__array__"] in arrays:
            name = _STATE_PREFIX + obj["__array__"]
            tensors[name] = arrays.pop(obj["__array__"])
            obj["__array__"] = name
            return
        for v in obj.values():
            _rename_rest(v, arrays, tensors)


def _write_exclusive(out, write):
    """``write(tmp_path)``, then move the file to ``out`` without replacing one that
    appeared meanwhile; the temporary file is removed on any failure."""
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            os.link(tmp, out)
        except FileExistsError:
            raise ExportError(f"{out} already exists; remove it or give another --out") from None
        except OSError:                   # no hard links here: a plain rename
            if out.exists():
                raise ExportError(f"{out} already exists; remove it or give another --out")
            os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def export_run(run_dir, format="safetensors", out=None) -> pathlib.Path:
    """Export the run in ``run_dir`` (a folder written by ``scratchgan train``, or its
    checkpoint file) to ``out`` (default ``<run>/model.safetensors`` or ``<run>/model.pt``);
    returns the path written. Raises :class:`ExportError` before writing anything when the
    folder holds no checkpoint, the format is unknown, ``out`` exists or the package the
    format needs is missing."""
    fmt = _check_format(format)
    ckpt = _find_checkpoint(run_dir)
    out = pathlib.Path(out) if out is not None else ckpt.parent / ("model" + FORMATS[fmt])
    if out.exists():
        raise ExportError(f"{out} already exists; remove it or give another --out")
    if not out.parent.is_dir():
        raise ExportError(f"the folder of {out} does not exist")
    lib = _require(fmt)
    manifest, tensors = _build_payload(ckpt)
    text = json.dumps(manifest)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if fmt == "safetensors":
        def write(path):
            lib.save_file(tensors, path, metadata={_META_KEY: text})
    else:
        def write(path):
            lib.save({"format": EXPORT_FORMAT, "manifest": text,
                      "tensors": {k: lib.from_numpy(v.copy()) for k, v in tensors.items()}},
                     path)
    return _write_exclusive(out, write)


# ----------------------------------------------------------------------------- reading
def _format_of(path):
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] == b"PK":                  # torch.save writes a zip archive
        return "torch"
    return "safetensors"


def read_export(file) -> tuple:
    """``(manifest, {tensor name: ndarray})`` of a file written by :func:`export_run`."""
    path = pathlib.Path(file)
    if not path.is_file():
        raise ExportError(f"export file not found: {path}")
    fmt = _format_of(path)
    lib = _require(fmt)
    try:
        if fmt == "safetensors":
            from safetensors import safe_open   # lazy: an optional dependency
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            text = meta.get(_META_KEY)
        else:
            blob = lib.load(path, map_location="cpu", weights_only=True)
            text = blob.get("manifest") if isinstance(blob, dict) else None
            tensors = {k: v.numpy() for k, v in (blob.get("tensors") or {}).items()} \
                if text else {}
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{path}: unreadable {fmt} file ({type(e).__name__}: {e})") from e
    if not text:
        raise ExportError(f"{path}: not a scratchgan export (no manifest)")
    manifest = json.loads(text)
    if manifest.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: unknown export format {manifest.get('format')!r}, "
                          f"expected {EXPORT_FORMAT!r}")
    return manifest, tensors


def import_back(file) -> dict:
    """The checkpoint state of the exported run, as ``load_checkpoint`` returns it: the
    same nested structure, the same arrays (dtype, shape, values)."""
    manifest, tensors = read_export(file)
    missing = sorted(_array_refs(manifest["state"]) - set(tensors))
    if missing:
        raise ExportError(f"{file}: the export lacks tensors {missing[:5]}")
    return decode_state(manifest["state"], tensors)


def _array_refs(obj, out=None):
    out = set() if out is None else out
    if isinstance(obj, list):
        for v in obj:
            _array_refs(v, out)
    elif isinstance(obj, dict):
        if "__array__" in obj and len(obj) == 1:
            out.add(obj["__array__"])
        else:
            for v in obj.values():
                _array_refs(v, out)
    return out


# ----------------------------------------------------------------------------- torch
@functools.lru_cache(maxsize=None)
def torch_layers():
    """``(torch, classes)``: the PyTorch layer classes that scratchgan layers map to beyond
    ``torch.nn``'s own (Maxout, Reshape, Softplus, Concat, TwoInputNet), made once; torch is
    imported here. The PyTorch twins of the tests (:mod:`scratchgan.testing.twins`) use the
    same classes."""
    torch = _require("torch")
    F = torch.nn.functional

    class Maxout(torch.nn.Module):
        """scratchgan's Maxout: weight (units*pieces, in); unit u = max over rows
        u*pieces .. u*pieces + pieces - 1 of x W^T + b."""

        def __init__(self, in_features, units, pieces):
            super().__init__()
            self.units, self.pieces = units, pieces
            self.weight = torch.nn.Parameter(torch.empty(units * pieces, in_features))
            self.bias = torch.nn.Parameter(torch.empty(units * pieces))

        def forward(self, x):
            z = F.linear(x, self.weight, self.bias)
            return z.view(z.shape[0], self.units, self.pieces).max(dim=2).values

    class Reshape(torch.nn.Module):
        def __init__(self, shape):
            super().__init__()
            self.shape = tuple(shape)

        def forward(self, x):
            return x.reshape((x.shape[0],) + self.shape)

    class Softplus(torch.nn.Module):
        """``max(x, 0) + log1p(exp(-|x|))`` (no threshold, as scratchgan's)."""

        def forward(self, x):
            return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))

    class Concat(torch.nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dim = dim

        def forward(self, *xs):
            return torch.cat(xs, dim=self.dim)

    class TwoInputNet(torch.nn.Module):
        """trunk(join(x_branch(x), y_branch(y))): cgan's two-input networks."""

        def __init__(self, x_branch, y_branch, trunk, join):
            super().__init__()
            self.x_branch, self.y_branch, self.trunk, self.join = x_branch, y_branch, trunk, join

        def forward(self, x, y):
            return self.trunk(self.join(self.x_branch(x), self.y_branch(y)))

    return torch, {"Maxout": Maxout, "Reshape": Reshape, "Softplus": Softplus,
                   "Concat": Concat, "TwoInputNet": TwoInputNet}


def _build(layout, torch, custom, where):
    t, a = layout["type"], layout["attrs"]
    kids = layout["children"]
    nn = torch.nn
    if t == "Sequential":
        return nn.Sequential(OrderedDict((n, _build(c, torch, custom, f"{where}.{n}"))
                                         for n, c in kids))
    if t == "TwoInputNet":
        sub = {n: _build(c, torch, custom, f"{where}.{n}") for n, c in kids}
        return custom["TwoInputNet"](sub["x_branch"], sub["y_branch"], sub["trunk"], sub["join"])
    if t == "Linear":
        return nn.Linear(a["in_features"], a["out_features"], bias=layout["has_bias"])
    if t == "Maxout":
        return custom["Maxout"](a["in_features"], a["units"], a["pieces"])
    if t == "Conv2d":
        return nn.Conv2d(a["in_channels"], a["out_channels"], tuple(a["kernel_size"]),
                         tuple(a["stride"]), tuple(a["padding"]), tuple(a["dilation"]),
                         bias=layout["has_bias"])
    if t == "ConvTranspose2d":
        return nn.ConvTranspose2d(a["in_channels"], a["out_channels"], tuple(a["kernel_size"]),
                                  tuple(a["stride"]), tuple(a["padding"]),
                                  tuple(a["output_padding"]), bias=layout["has_bias"],
                                  dilation=tuple(a["dilation"]))
    if t in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(nn, t)(a["num_features"], eps=a["eps"], momentum=a["momentum"],
                              affine=a["affine"])
    if t == "ReLU":
        return nn.ReLU()
    if t == "LeakyReLU":
        return nn.LeakyReLU(a["negative_slope"])
    if t == "Tanh":
        return nn.Tanh()
    if t == "Sigmoid":
        return nn.Sigmoid()
    if t == "Dropout":
        if a.get("active_in_eval"):
            raise ExportError(f"{where}: a Dropout active in eval mode has no PyTorch "
                              "equivalent here")
        return nn.Dropout(a["p"])
    if t == "Flatten":
        return nn.Flatten(a["start_dim"], -1)
    if t == "Unflatten":
        return nn.Unflatten(a["dim"], tuple(a["sizes"]))
    if t in ("Reshape", "Softplus", "Concat"):
        return custom[t](*([tuple(a["shape"])] if t == "Reshape" else
                           [a["dim"]] if t == "Concat" else []))
    raise ExportError(f"{where}: layer type {t} has no PyTorch builder in scratchgan.interop "
                      "(its parameters are in the file under this name all the same)")


def load_into_torch(file, networks=None) -> dict:
    """``{network name: torch.nn.Module}`` rebuilt from an export, weights and buffers
    loaded, in eval mode and the exported dtype. ``networks``: the names to build (default
    all); a network with a layer PyTorch has no builder for raises :class:`ExportError`."""
    manifest, tensors = read_export(file)
    torch, custom = torch_layers()
    names = list(manifest["networks"]) if networks is None else list(networks)
    out = {}
    for name in names:
        if name not in manifest["networks"]:
            raise ExportError(f"{file}: no network {name!r}; it holds "
                              f"{', '.join(manifest['networks'])}")
        spec = manifest["networks"][name]
        module = _build(spec["layout"], torch, custom, name)
        if spec["tensors"]:              # the dtype the run trained in
            first = np.asarray(tensors[f"{name}.{spec['tensors'][0]}"])
            module = module.to(torch.from_numpy(first).dtype)
        own = module.state_dict()        # after .to(): its tensors share the new storage
        wanted = [k for k in own if not k.endswith("num_batches_tracked")]
        if sorted(wanted) != sorted(spec["tensors"]):
            raise ExportError(f"{file}: network {name}: the PyTorch module has tensors "
                              f"{sorted(wanted)}, the export {sorted(spec['tensors'])}")
        with torch.no_grad():
            for k in wanted:
                own[k].copy_(torch.from_numpy(np.array(tensors[f"{name}.{k}"])))
        module.eval()
        out[name] = module
    return out


def torch_generate(file, noise, modules=None):
    """Samples from an export with PyTorch, as the model's ``generate(noise)`` makes them:
    ``noise`` is the dict ``model.sample_noise`` returns (NumPy arrays or tensors); returns
    a tensor (n, *data_shape)."""
    manifest, _ = read_export(file)
    gen = manifest.get("generator")
    if not gen:
        raise ExportError(f"{file}: model {manifest['model']!r} has no generator recipe; "
                          f"known: {', '.join(GENERATORS)}")
    torch = _require("torch")
    modules = modules or load_into_torch(file, [gen["network"]])
    net = modules[gen["network"]]
    dtype = next(iter(net.parameters())).dtype
    args = []
    for k in gen["inputs"]:
        if k not in noise:
            raise ExportError(f"torch_generate: noise lacks {k!r}; expected keys "
                              f"{gen['inputs']}")
        v = noise[k]
        v = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v))
        args.append(v.to(dtype))
    with torch.no_grad():
        y = net(*args)
        if gen["output"] == "sigmoid":
            y = torch.sigmoid(y)
    return y.reshape((-1,) + tuple(manifest["data_shape"]))


# ----------------------------------------------------------------------------- command
def add_arguments(parser):
    """The arguments of ``scratchgan export``."""
    parser.add_argument("run", help="run folder written by 'scratchgan train' (or its "
                                    "last.ckpt.npz)")
    parser.add_argument("--format", default="safetensors",
                        help="safetensors (default; needs the safetensors package) or torch "
                             "(torch.save; needs torch)")
    parser.add_argument("--out", default=None,
                        help="output file (default RUN/model.safetensors or RUN/model.pt); "
                             "an existing file is not replaced")
    return parser


def main(argv=None) -> int:
    """``scratchgan export RUN [--format safetensors|torch] [--out FILE]``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="scratchgan export", description="Export a trained run's networks to PyTorch "
        "(safetensors or torch.save) with a manifest."))
    return run(parser.parse_args(argv))


def run(args) -> int:
    """Carry out parsed ``export`` arguments: 0 done, 2 a user error (reported before
    anything is written)."""
    try:
        path = export_run(args.run, format=args.format, out=args.out)
    except ExportError as e:
        print(f"scratchgan export: error: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.run} -> {path}")
    return 0
