"""Run one seed of a study: train with :class:`scratchgan.train.Trainer` in pieces of
``eval_every`` updates, call the study's evaluators between pieces, keep the record.

A seed's folder (``OUT/seed-S``) holds the Trainer's run (its atomic checkpoint
``last.ckpt.npz``, metrics, config) and the runner's own state ``study-state.json`` (the
evaluations so far), written atomically after every evaluation. Every piece, also in an
uninterrupted run, starts from the checkpoint the previous piece wrote, so a run stopped
(``--time-limit``, Ctrl-C, a lost machine) and resumed follows exactly the same path and
ends with bit-identical parameters and the same evaluation record.
"""
from __future__ import annotations

import inspect
import json
import os
import pathlib
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .. import manual_seed
from ..checkpoint import load_latest_info, previous_path
from ..data.datasets import dataset_info, load_dataset
from ..data.toy import TOY_DATASETS
from ..data.idx import DataNotFoundError
from ..data.standin import load_or_standin, standin_images
from ..metrics.evaluators import EvalContext, get_evaluator
from ..metrics.standard import binarize_images, to_unit_range
from ..models import get_model
from ..train import Trainer, TrainingInterrupted
from .ledger import write_text_atomic
from .study import Study, StudyError

__all__ = ["CheckpointTooLarge", "DRY_RUN", "RunOptions", "RunnerError", "StudyTrainer",
           "checkpoint_bytes", "load_study_data", "piece_losses", "run_seed", "standin_like",
           "STATE_NAME", "DRY_RUN", "SIZE_OPTIONS", "dry_sizes"]

STATE_NAME = "study-state.json"
#: a dry run: stand-in data of this size, this many updates, an evaluation every few
DRY_RUN = {"train": 256, "test": 128, "updates": 2, "eval_every": 1, "max_batch": 16,
           "eval_size": 64}
#: the evaluator options that set how much an evaluation computes (samples, test images,
#: points, training steps); a dry run caps each at DRY_RUN["eval_size"], given or default
SIZE_OPTIONS = ("n_samples", "n_images", "n_test", "n_points", "n_train", "steps")
MIB = 1 << 20


class RunnerError(RuntimeError):
    """A run that cannot start or continue as asked (the message says why and what to do)."""


class CheckpointTooLarge(RunnerError):
    """A checkpoint or runner state over the size limit."""


@dataclass
class RunOptions:
    schedule: str = "full"
    device: str = "cpu"
    out_dir: pathlib.Path = pathlib.Path("runs/reproduce")
    data_dir: Optional[str] = None
    dry_run: bool = False
    resume: bool = False
    deadline: Optional[float] = None         # time.time() at which to stop cleanly
    progress: bool = True
    checkpoint_limit_mib: float = 16.0
    log: Any = print
    extras: Dict[str, Any] = field(default_factory=dict)


class StudyTrainer(Trainer):
    """The library's Trainer with a deadline: past ``deadline`` (``time.time()``) it stops
    after the current step with a checkpoint, as on Ctrl-C (``TrainingInterrupted``).
    ``plots`` False skips the sample grids and loss curves of a piece."""

    deadline: Optional[float] = None
    plots: bool = True

    @property
    def _interrupted(self):
        return self.__dict__.get("_stop_flag", False) or (
            self.deadline is not None and time.time() >= self.deadline)

    @_interrupted.setter
    def _interrupted(self, value):
        self.__dict__["_stop_flag"] = bool(value)

    def _write_plots(self, tag=None, curves=True):
        if self.plots:
            super()._write_plots(tag, curves)


def checkpoint_bytes(model) -> int:
    """The bytes a checkpoint of ``model`` will take (its arrays; the structure is small)."""
    def walk(obj):
        if isinstance(obj, dict):
            return sum(walk(v) for v in obj.values())
        if isinstance(obj, (list, tuple)):
            return sum(walk(v) for v in obj)
        if hasattr(obj, "nbytes") and hasattr(obj, "shape"):
            return int(obj.nbytes)                  # NumPy or CuPy: no copy to the host
        return 0
    return walk(model.state_dict())


def _atomic_json(path: pathlib.Path, obj) -> int:
    return write_text_atomic(path, json.dumps(obj, indent=1, default=str) + "\n")


def standin_like(name, n, data_range, split="train"):
    """Stand-in data shaped like data set ``name`` (for a dry run of a set made from the IDX
    files when they are missing): the stand-in digits padded or cropped to its size,
    repeated over its channels, labels taken modulo its classes. ``(x, y, note)``."""
    info = dataset_info(name)
    shape = tuple(info["shape"])
    x, y, sinfo = standin_images("mnist", int(n), data_range=(0.0, 1.0), split=split)
    if len(shape) != 3:
        raise DataNotFoundError(f"{name}: no stand-in for examples of shape {shape}")
    c, h, w = shape
    out = np.zeros((len(x), 1, h, w), np.float32)
    hh, ww = min(h, 28), min(w, 28)
    t, l, st, sl = (h - hh) // 2, (w - ww) // 2, (28 - hh) // 2, (28 - ww) // 2
    out[:, :, t:t + hh, l:l + ww] = x[:, :, st:st + hh, sl:sl + ww]
    lo, hi = data_range
    out = np.repeat(out, c, axis=1) * (hi - lo) + lo
    note = (f"{name} is made from IDX files that were not found; using {sinfo['note']}, shaped "
            f"as {name} {shape}")
    return np.ascontiguousarray(out, dtype=np.float32), \
        (y % int(info["num_classes"] or 10)).astype(np.int64), note


def _load_dry(name, data_range, data_dir, split, limit):
    try:
        return load_or_standin(name, data_range, data_dir=data_dir, split=split, limit=limit,
                               download=False, standin=True)
    except DataNotFoundError:
        return standin_like(name, limit, data_range, split)


def load_study_data(study: Study, data_range, data_dir=None, dry_run=False, seed=0):
    """The study's data as the mapping evaluators read (``x_train``, ``y_train``, ``x_test``,
    ``y_test``, ``name``, ``data_range``, ``standin``) and the training arrays ``(x, y)``
    (the first ``data.limit`` training examples, binarized when ``data.binarize``)."""
    name = study.dataset
    if dry_run:
        xtr, ytr, note = _load_dry(name, data_range, data_dir, "train", DRY_RUN["train"])
        xte, yte, _ = _load_dry(name, data_range, data_dir, "test", DRY_RUN["test"])
    else:
        # a toy mixture is drawn, not read: data.limit is its number of training points
        toy_n = study.data.get("limit") if name in TOY_DATASETS else None
        xtr, ytr = load_dataset(name, data_range, data_dir=data_dir, split="train", limit=toy_n)
        xte, yte = load_dataset(name, data_range, data_dir=data_dir, split="test")
        note = None
    data = {"name": name, "x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte,
            "data_range": tuple(data_range), "standin": note is not None}
    x, y = xtr, ytr
    limit = study.data.get("limit")
    if limit is not None and not dry_run:
        if limit > len(xtr):
            raise StudyError(f"{study.path}: data.limit = {limit} exceeds the {len(xtr)} "
                             f"training examples of {name}")
        x, y = xtr[:limit], (ytr[:limit] if ytr is not None else None)
    if study.data.get("binarize"):
        lo, hi = data_range
        b = binarize_images(to_unit_range(x, data_range), np.random.default_rng([seed, 7]))
        x = (b * (hi - lo) + lo).astype(x.dtype)
    return data, (x, y), note


def _build_model(study: Study, schedule, shape, num_classes, device, seed):
    cls = get_model(study.model)
    hyper = {k: v for k, v in cls.defaults.items() if k not in ("batch_size", "epochs", "steps",
                                                               "dataset")}
    chosen = study.hyper_for(schedule, seed)
    bad = sorted(k for k in chosen if k not in hyper)
    if bad:
        raise StudyError(f"{study.path}: [set] {bad[0]} is not a hyperparameter of "
                         f"{study.model}; valid keys: {', '.join(sorted(hyper))}")
    hyper.update(chosen)
    manual_seed(seed)
    try:
        model = cls(shape, num_classes=num_classes, device=device, **hyper)
    except (TypeError, ValueError) as e:
        raise StudyError(f"{study.path}: cannot build {study.model} with [set] "
                         f"{chosen}: {e}") from None
    return model, hyper


def _record_metrics(metrics: Dict[str, Any]) -> List[str]:
    """Every number an evaluator returns that is not a ``_std``: the ledger rows of an
    evaluation entry without a ``record`` option."""
    return [m for m in metrics if not m.endswith("_std")
            and isinstance(metrics[m], (int, float)) and not isinstance(metrics[m], bool)]


def piece_losses(metrics_path: pathlib.Path, lo: int, hi: int) -> Dict[str, float]:
    """The mean of each logged loss over the Trainer's metrics rows with lo < step <= hi."""
    sums, counts = {}, {}
    if not metrics_path.exists():
        return {}
    for line in metrics_path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not lo < r.get("step", -1) <= hi:
            continue
        for k, v in r.items():
            if k in ("step", "epoch", "time") or isinstance(v, bool) or \
                    not isinstance(v, (int, float)):
                continue
            sums[k] = sums.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


def dry_sizes(fn, opts: Dict[str, Any]) -> Dict[str, int]:
    """The size options of evaluator ``fn`` (:data:`SIZE_OPTIONS`, as given in ``opts`` or by
    default) capped at ``DRY_RUN["eval_size"]``: a dry run checks that every evaluation runs,
    not what it measures, so it evaluates a few samples."""
    cap = DRY_RUN["eval_size"]
    out = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name not in SIZE_OPTIONS:
            continue
        value = opts.get(name, param.default)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            out[name] = cap
    return out


def evaluate(study: Study, model, data, seed, device, standin, updates, extras):
    ctx = EvalContext(model=model, data=data, seed=seed, device=device, standin=standin,
                      updates=int(updates), extras=extras)
    metrics, recorded = {}, []
    t0 = time.time()
    for ev in study.evaluations:
        opts = dict(ev["options"])
        record = opts.pop("record", None)
        fn = get_evaluator(ev["name"])
        if standin:
            opts.update(dry_sizes(fn, opts))
        out = fn(ctx, **opts)
        metrics.update(out)
        recorded += [m for m in (record if record is not None else _record_metrics(out))
                     if m not in recorded]
    for m in recorded:
        if m not in metrics:
            raise StudyError(f"{study.path}: record names {m!r}, which no evaluator returned "
                             f"(returned: {', '.join(sorted(metrics))})")
    return {"updates": int(updates), "metrics": metrics, "recorded": recorded,
            "seconds": round(time.time() - t0, 2)}


def _existing_run(run_dir: pathlib.Path) -> bool:
    ck = run_dir / "last.ckpt.npz"
    return (run_dir / STATE_NAME).exists() or ck.exists() or previous_path(ck).exists()


def _plan(study: Study, opts: RunOptions):
    if opts.dry_run:
        return DRY_RUN["updates"], DRY_RUN["eval_every"], min(study.schedule["batch"],
                                                              DRY_RUN["max_batch"])
    return study.updates(opts.schedule), study.schedule["eval_every"], study.schedule["batch"]


def run_seed(study: Study, seed: int, opts: RunOptions) -> Dict[str, Any]:
    """Train and evaluate one seed; returns the runner state (``evaluations``, ``updates``,
    ``stopped``: True when ``opts.deadline`` stopped it; ``new_evaluations``: how many this
    call made, 0 when the run was already complete)."""
    log = opts.log
    run_dir = pathlib.Path(opts.out_dir) / f"seed-{seed}"
    state_path = run_dir / STATE_NAME
    total, every, batch = _plan(study, opts)
    limit_bytes = int(opts.checkpoint_limit_mib * MIB)
    identity = {"study": study.name, "seed": int(seed), "model": study.model,
                "set": study.hyper_for(opts.schedule, seed), "dataset": study.dataset, "data": study.data,
                "batch": batch, "dry_run": bool(opts.dry_run)}
    state = None
    if _existing_run(run_dir):
        if opts.resume:
            if not state_path.exists():
                raise RunnerError(f"--resume: {run_dir} holds a checkpoint but no {STATE_NAME}; "
                                  f"it is not a run of this runner")
            state = json.loads(state_path.read_text())
            changed = sorted(k for k in identity if state.get("identity", {}).get(k) != identity[k])
            if changed:
                raise RunnerError(f"--resume: the run in {run_dir} was made with other "
                                  f"{', '.join(changed)} ({ {k: state['identity'].get(k) for k in changed} }"
                                  f" against { {k: identity[k] for k in changed} }); give "
                                  f"another --out")
        elif opts.dry_run and state_path.exists() and \
                json.loads(state_path.read_text()).get("identity", {}).get("dry_run"):
            for f in sorted(run_dir.rglob("*"), reverse=True):     # a dry run replaces a dry run
                f.unlink() if f.is_file() else f.rmdir()
        else:
            raise RunnerError(f"{run_dir} already holds a run; continue it with --resume, or "
                              f"give another --out")
    elif opts.resume:
        raise RunnerError(f"--resume: no run in {run_dir} (expected {state_path})")

    cls = get_model(study.model)
    data_range = getattr(cls, "data_range", None) or (0.0, 1.0)
    data, (x, y), note = load_study_data(study, data_range, opts.data_dir, opts.dry_run, seed)
    if note:
        log(f"dry run: {note}")
    info = dataset_info(study.dataset)
    model, hyper = _build_model(study, opts.schedule, x.shape[1:], info["num_classes"], opts.device, seed)
    size = checkpoint_bytes(model)
    if size > limit_bytes:
        msg = (f"{study.name}: a checkpoint of {study.model} takes {size / MIB:.1f} MiB, over "
               f"the {opts.checkpoint_limit_mib:g} MiB limit; pass --checkpoint-limit-mib "
               f"{int(np.ceil(size / MIB)) + 1} to allow it")
        if not opts.dry_run:
            raise CheckpointTooLarge(msg)
        log(f"dry run: note: {msg}")
    k = int(getattr(model, "batches_per_step", lambda: 1)())
    if opts.dry_run and k * batch > len(x):
        batch = max(1, len(x) // k)            # a dry run's few examples: smaller batches
        identity["batch"] = batch
    if k * batch > len(x):
        raise StudyError(f"{study.path}: one {study.model} update needs {k} batches of {batch}, "
                         f"more than the {len(x)} training examples")
    run_dir.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = {"identity": identity, "schedule": opts.schedule, "updates": 0,
                 "evaluations": [], "train_seconds": 0.0, "device": opts.device}
    state["schedule"] = "dry-run" if opts.dry_run else opts.schedule
    state["total_updates"] = int(total)
    state["stopped"] = False
    state["new_evaluations"] = 0

    def save_state():
        n = _atomic_json(state_path, state)
        if n > limit_bytes:
            raise CheckpointTooLarge(f"{state_path} takes {n / MIB:.1f} MiB, over the "
                                     f"{opts.checkpoint_limit_mib:g} MiB limit")

    def check_checkpoint(path):
        n = pathlib.Path(path).stat().st_size
        if n > limit_bytes and not opts.dry_run:
            raise CheckpointTooLarge(f"checkpoint {path} takes {n / MIB:.1f} MiB, over the "
                                     f"{opts.checkpoint_limit_mib:g} MiB limit")

    ckpt = run_dir / "last.ckpt.npz"
    done = 0
    if ckpt.exists() or previous_path(ckpt).exists():
        done = int(load_latest_info(ckpt)[0]["trainer"]["step"])
    config = {"model": study.model, "dataset": study.dataset, "data_shape": list(x.shape[1:]),
              "num_classes": info["num_classes"], "hyper": hyper, "seed": int(seed),
              "batch_size": batch, "data_range": list(data_range), "study": study.name,
              "dry_run": bool(opts.dry_run), "standin": note is not None}
    evaluated = {e["updates"] for e in state["evaluations"]}

    def trainer(steps, resume):
        tr = StudyTrainer(model, x, y, batch_size=batch, steps=steps, out_dir=str(run_dir),
                          seed=seed, progress=opts.progress, config=config, resume=resume,
                          epoch_outputs=False, log_every=max(1, min(100, every)))
        tr.deadline = opts.deadline
        tr.plots = (steps >= total) and not opts.dry_run
        return tr

    def run_eval(at):
        rec = evaluate(study, model, data, seed, opts.device, opts.dry_run, at, opts.extras)
        before = max([e["updates"] for e in state["evaluations"] if e["updates"] < at] or [0])
        rec["losses"] = piece_losses(run_dir / "metrics.jsonl", before, at)
        state["evaluations"].append(rec)
        state["new_evaluations"] += 1
        evaluated.add(at)
        shown = ", ".join(f"{m} {rec['metrics'][m]:.4g}" for m in rec["recorded"])
        log(f"{study.name} seed {seed}: {at} of {total} updates: {shown}")
        save_state()

    if done > 0 and done not in evaluated and (done % every == 0 or done == total):
        trainer(done, True).fit()          # loads the checkpoint: evaluate what was missed
        run_eval(done)
    save_state()
    while done < total:
        nxt = min(total, (done // every + 1) * every)
        t0 = time.time()
        tr = trainer(nxt, done > 0)
        try:
            tr.fit()
        except TrainingInterrupted as e:
            state["train_seconds"] = round(state["train_seconds"] + time.time() - t0, 2)
            state["updates"] = int(e.step)
            state["stopped"] = True
            check_checkpoint(ckpt)
            save_state()
            return state
        state["train_seconds"] = round(state["train_seconds"] + time.time() - t0, 2)
        check_checkpoint(ckpt)
        done = int(tr.step)
        state["updates"] = done
        run_eval(done)
    state["updates"] = done
    save_state()
    return state
