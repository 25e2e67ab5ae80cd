"""Run folders: what a training run writes, when a folder may be trained into, and the model a
run folder holds.

A run folder (``scratchgan train --out DIR``, :class:`scratchgan.train.Trainer`'s ``out_dir``)
holds ``last.ckpt.npz`` (and the one it replaced, ``last.ckpt.prev.npz``), ``config.json``,
``metrics.jsonl``, ``resumes.jsonl``, sample pictures and loss curves (``RUN_FILES``).

The policy for a folder that already holds a run (:func:`is_run_folder`):

* a new run is refused (:class:`RunFolderError` naming some of its files and the ways out)
  unless ``overwrite`` (delete the previous run's files first, :func:`clear_run`);
* a dry run replaces a previous dry run's folder without being asked (its ``config.json``
  says ``"dry_run": true``); dry runs train ``DRY_RUN["steps"]`` steps on at most
  ``DRY_RUN["limit"]`` examples in batches of at most ``DRY_RUN["max_batch"]``, and go to
  ``runs/MODEL-DATASET-dry-run`` by default (:func:`default_run_folder`);
* ``resume`` continues the run from its checkpoint (:func:`open_resume`: the newest
  readable one, with the reason when the previous one had to be used).

:func:`load_model` rebuilds the trained model of a run folder (or of a checkpoint file).
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from .checkpoint import CheckpointError, load_latest, load_latest_info, previous_path
from .models import REGISTRY

__all__ = ["CHECKPOINT_NAME", "TOOL_PICTURES", "RUN_FILES", "RUN_MARKERS", "DRY_RUN",
           "RunFolderError", "has_checkpoint",
           "run_files", "is_run_folder", "clear_run", "default_run_folder", "check_new_run",
           "open_resume", "resolve_checkpoint", "load_model"]

CHECKPOINT_NAME = "last.ckpt.npz"
#: the pictures each checkpoint tool writes into the run folder when no --out is given (the
#: tools take their default names from here)
TOOL_PICTURES = {
    "sample": ("sample.png",),
    "interpolate": ("interpolation.png", "arithmetic.png", "arithmetic_reference.png"),
    "reconstruct": ("reconstructions.png",),
    "traverse": ("traverse.png",),
    "latent": ("latent_scatter.png", "manifold.png"),
    "translate": ("translate.png",),
}
#: what a run folder holds (besides samples/): ``clear_run`` deletes these
RUN_FILES = (CHECKPOINT_NAME, "last.ckpt.prev.npz", "config.json", "metrics.jsonl",
             "resumes.jsonl", "samples.png", "loss_curves.png") + \
    tuple(name for names in TOOL_PICTURES.values() for name in names)
#: any of these marks a folder as holding a run
RUN_MARKERS = (CHECKPOINT_NAME, "last.ckpt.prev.npz", "config.json", "metrics.jsonl")
#: what a dry run trains: steps, at most this many examples, batches of at most max_batch
DRY_RUN = {"steps": 3, "limit": 256, "max_batch": 16}


class RunFolderError(ValueError):
    """A run folder cannot be used as asked; the message says what was found and what to do."""


def run_files(out_dir):
    """The files of a previous run in ``out_dir`` (those :func:`clear_run` would delete)."""
    d = pathlib.Path(out_dir)
    if not d.is_dir():
        return []
    found = [d / f for f in RUN_FILES if (d / f).is_file()]
    samples = d / "samples"
    if samples.is_dir():
        found += sorted(f for f in samples.iterdir() if f.is_file() and f.suffix == ".png" and
                        f.name.startswith(("epoch_", "step_")))
    found += sorted(f for f in d.iterdir() if f.is_file() and f.name.endswith(".tmp") and
                    f.name.startswith((CHECKPOINT_NAME + ".", "last.ckpt.prev.npz.")))
    return found


def has_checkpoint(out_dir):
    """Whether ``out_dir`` holds a checkpoint (``last.ckpt.npz`` or the one it replaced)."""
    ckpt = pathlib.Path(out_dir) / CHECKPOINT_NAME
    return ckpt.exists() or previous_path(ckpt).exists()


def is_run_folder(out_dir):
    """Whether ``out_dir`` holds a previous run (a checkpoint, config.json or metrics)."""
    d = pathlib.Path(out_dir)
    return any((d / f).exists() for f in RUN_MARKERS)


def clear_run(out_dir):
    """Delete a previous run's files from ``out_dir`` (see ``RUN_FILES``, and the sample
    pictures in samples/); other files are left alone. Returns the paths deleted."""
    files = run_files(out_dir)
    for f in files:
        f.unlink()
    samples = pathlib.Path(out_dir) / "samples"
    if samples.is_dir() and not any(samples.iterdir()):
        samples.rmdir()
    return files


def default_run_folder(model, dataset, dry_run=False):
    """``runs/MODEL-DATASET`` (``-dry-run`` appended for a dry run), relative to the current
    folder."""
    return pathlib.Path(f"runs/{model}-{dataset}" + ("-dry-run" if dry_run else ""))


def _saved_config(out_dir):
    try:
        cfg = json.loads((pathlib.Path(out_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def check_new_run(out_dir, *, overwrite=False, dry_run=False):
    """Whether a new run may train into ``out_dir``, and whether it must clear a previous
    run's files first (returns True then; the caller clears them with :func:`clear_run` once
    everything else is checked). A folder holding a run is refused with
    :class:`RunFolderError` unless ``overwrite``, or unless both it and the new run are dry
    runs."""
    if not is_run_folder(out_dir):
        return False
    if overwrite or (dry_run and _saved_config(out_dir).get("dry_run")):
        return True
    names = ", ".join(f.name for f in run_files(out_dir)[:4])
    if not has_checkpoint(out_dir):
        raise RunFolderError(f"{out_dir} holds a run that wrote no checkpoint ({names}), so "
                             f"there is nothing to resume; start it over with --overwrite "
                             f"(deletes that run's files first), or give another --out")
    raise RunFolderError(f"{out_dir} already holds a run ({names}); continue it with --resume, "
                         f"or start it over with --overwrite (deletes that run's files first), "
                         f"or give another --out")


def open_resume(out_dir):
    """The checkpoint a resumed run continues from: ``(state, path, reason)`` as
    :func:`scratchgan.checkpoint.load_latest_info` gives it (``reason``: why the previous
    checkpoint was used, or None). :class:`RunFolderError` (its message starts with
    "resume:") when the folder has no checkpoint, none is readable, or it holds no run
    configuration."""
    out_dir = pathlib.Path(out_dir)
    ckpt = out_dir / CHECKPOINT_NAME
    if not has_checkpoint(out_dir):
        if is_run_folder(out_dir):
            raise RunFolderError(f"resume: the run in {out_dir} wrote no checkpoint (expected "
                                 f"{ckpt}), so it cannot be continued; start it over with "
                                 f"--overwrite instead of --resume, or give another --out")
        raise RunFolderError(f"resume: no checkpoint in {out_dir} (expected {ckpt}); give the "
                             "run folder with --out, or leave --resume out to start a new run")
    try:
        state, used, why = load_latest_info(ckpt)
    except (FileNotFoundError, CheckpointError) as e:
        raise RunFolderError(f"resume: {e}") from e
    if "model" not in (state.get("config") or {}):
        raise RunFolderError(f"resume: {used} has no run configuration (was it written by "
                             "'scratchgan train'?)")
    return state, used, why


def resolve_checkpoint(path):
    """A checkpoint file from ``path``: the file itself, or ``last.ckpt.npz`` in a run folder.
    A missing one whose previous checkpoint exists is returned (loading falls back to it);
    otherwise FileNotFoundError naming ``path``."""
    p = pathlib.Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.exists() and not previous_path(p).exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return p


def load_model(path, device="cpu", registry=None):
    """Rebuild a trained model from a checkpoint written by ``scratchgan train`` (a
    ``last.ckpt.npz`` file or its run folder).

    ``registry``: model name -> class (default :data:`scratchgan.models.REGISTRY`).
    Returns ``(model, config)``.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    state, _ = load_latest(path)
    config = state.get("config") or {}
    if "model" not in config:
        raise ValueError(f"{path}: the checkpoint has no model config (was it written by "
                         "'scratchgan train'?)")
    reg = REGISTRY if registry is None else registry
    if reg is None or config["model"] not in reg:
        raise ValueError(f"{path}: model {config['model']!r} is not available")
    cls = reg[config["model"]]
    model = cls(tuple(config["data_shape"]), num_classes=int(config.get("num_classes", 10)),
                device=device, dtype=np.dtype(config.get("dtype", "float32")),
                **config.get("hyper", {}))
    model.load_state_dict(state["model"])
    return model, config
