"""The model-agnostic training loop.

``Trainer(model, x, y, ...).fit()`` calls ``model.train_step(x_batch, y_batch)``
(one step of the paper's algorithm) until ``steps`` (or ``epochs`` full passes)
are done, and around it:

* a tqdm progress bar with the latest losses;
* ``metrics.jsonl``: one JSON record per ``log_every`` steps (step, epoch, time
  and every value ``train_step`` returned);
* fixed-noise samples (``model.sample_noise`` from a seed of its own, so the
  pictures are comparable across epochs): ``samples/epoch_XXX.png`` at the end of
  every epoch, ``samples/step_XXXXXXX.png`` every ``sample_every`` steps, and
  ``samples.png`` at the end. Images give a grid, 2-D data a scatter of samples
  over the data, 1-D data a histogram; ``loss_curves.png`` from the metrics;
* checkpoints ``last.ckpt.npz`` (the replaced one kept as ``last.ckpt.prev.npz``)
  at every epoch end, every ``checkpoint_every`` steps and at the end. They hold
  ``model.state_dict()`` (networks and optimizer state), the state of every random
  generator the run uses (scratchgan.rng's global one, any the model keeps, the
  batch iterator's), the iterator's position and the step, so ``resume=True``
  continues bit-exactly: N steps, save, resume, N more == 2N steps in one go;
* a NaN guard: a non-finite value returned by ``train_step`` stops training with
  :class:`NonFiniteLossError` naming the step and the loss; no checkpoint is
  written after it, so the last good one stays on disk. ``metrics.jsonl`` stays
  JSON: a non-finite value is written as ``null`` and named in the record's
  ``"nonfinite"`` dict (``{"loss_d": "nan"}``; "inf", "-inf");
  ``scratchgan.viz.read_metrics`` turns them back into floats;
* Ctrl-C (SIGINT, handled only inside ``fit()``): the current step is finished, a
  checkpoint written and :class:`TrainingInterrupted` raised (a KeyboardInterrupt
  naming the step and the checkpoint); a second Ctrl-C aborts at once;
* resuming appends a line to ``resumes.jsonl`` (time, step and file resumed from,
  why the previous checkpoint was used if it was, changed options) and sets
  ``resumed_from``; stale checkpoint temporaries (a write killed mid-way) are
  removed when ``fit()`` starts.

Steps run through :class:`scratchgan.runtime.StepRunner` (``step_mode``): on the
GPU each step is replayed from a captured CUDA graph where the model allows it.
A step returns its losses as device arrays and nothing in it waits for the GPU;
the trainer reads them back every ``log_every`` steps (one synchronisation),
and always before it writes a checkpoint, so the NaN guard sees every logged
step and no checkpoint is written after a non-finite loss. A non-finite value
is named with the step it was read at (a GPU run reads every ``log_every``-th
step's losses; set ``log_every=1`` to check every step).

Drawing samples has no side effect on training: the random generators' states
and the networks' buffers (BatchNorm running statistics) are restored after.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import signal
import sys
import threading
import time
import warnings

import numpy as np
from tqdm import tqdm

from . import rng as srng
from . import viz
from .backend import cupy, to_device, to_numpy
from .checkpoint import (load_latest_info, previous_path, remove_stale_temporaries,
                         save_checkpoint)
from .data.batches import BatchIterator
from .distributed import data_parallel, sync_state
from .models.base import GenerativeModel, check_label_range
from .runs import CHECKPOINT_NAME
from .runtime import StepRunner
from .viz import read_metrics

__all__ = ["DEVICE_DATA_BYTES", "NonFiniteLossError", "TrainingInterrupted", "metrics_line",
           "Trainer"]

#: a GPU run keeps a training set up to this size on the device (Trainer._device_data)
DEVICE_DATA_BYTES = 2 << 30


class NonFiniteLossError(RuntimeError):
    """``train_step`` returned NaN or inf."""

    def __init__(self, message, step=None, name=None, value=None):
        super().__init__(message)
        self.step, self.name, self.value = step, name, value


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``fit()``: the step was finished and a checkpoint written."""

    def __init__(self, message, step=None, checkpoint=None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


def metrics_line(rec):
    """One ``metrics.jsonl`` line: strict JSON, a non-finite float written as null and named
    in ``rec["nonfinite"]`` ({"name": "nan" | "inf" | "-inf"})."""
    bad = {k: ("nan" if math.isnan(v) else "inf" if v > 0 else "-inf")
           for k, v in rec.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        rec = {k: (None if k in bad else v) for k, v in rec.items()}
        rec["nonfinite"] = bad
    return json.dumps(rec, allow_nan=False)


def _buffers(model):
    out = []
    for net in model.networks().values():
        for m in net.modules():
            for b in m._buffers:
                arr = getattr(m, b)
                out.append((m, b, arr.copy()))
    return out


def _read_losses(losses):
    """A step's logs as host values: 0-d arrays (device or host) become floats (one
    synchronisation for all of a GPU step's values), ints and strings stay."""
    out = {}
    arrays = {k: v for k, v in (losses or {}).items() if hasattr(v, "__cuda_array_interface__")}
    if arrays:
        cp = cupy()
        host = cp.stack([a.reshape(()).astype(cp.float64) for a in arrays.values()]).get()
        vals = dict(zip(arrays, (float(v) for v in host)))
    else:
        vals = {}
    for k, v in (losses or {}).items():
        if k in vals:
            out[k] = vals[k]
        elif isinstance(v, (str, bool)):
            out[k] = v
        elif isinstance(v, (int, np.integer)):
            out[k] = int(v)
        else:
            out[k] = float(v)
    return out


def _format_losses(losses):
    return " ".join(f"{k}={v:.4g}" for k, v in losses.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool))


class Trainer:
    """Train ``model`` on ``x`` (and labels ``y``); see the module docstring.

    ``steps`` or ``epochs`` (not both) sets the length; ``steps`` is the total
    step count, also when resuming. ``config`` (a JSON-able dict: model name,
    hyperparameters, data set ...) is written to ``config.json`` and into each
    checkpoint so that ``scratchgan sample`` can rebuild the model.

    ``resume=True`` loads ``out_dir/last.ckpt.npz`` (its ``.prev.npz`` if that one is
    unreadable, with a warning); ``resume_state=(state, path, reason)`` (from
    :func:`scratchgan.checkpoint.load_latest_info`) gives an already loaded one.
    ``resume_changes`` (a dict) is recorded in ``resumes.jsonl``.

    ``comm`` (a :mod:`scratchgan.distributed` communicator): data-parallel training. The model
    is prepared with :func:`scratchgan.distributed.data_parallel` (state broadcast from rank
    0, gradients averaged before each optimizer step, a noise stream per rank), each rank
    reads a disjoint shard of every epoch (``batch_size`` is per rank), and rank 0 alone
    writes the run folder (checkpoints, samples, metrics, config). Losses logged are rank 0's.
    ``step_mode="auto"`` runs eagerly on several ranks.
    """

    def __init__(self, model, x, y=None, *, batch_size=64, epochs=None, steps=None,
                 out_dir="runs/run", seed=0, sample_every=None, checkpoint_every=None,
                 log_every=10, n_samples=None, progress=True, config=None, resume=False,
                 plot_data=None, modes=None, step_mode="auto", resume_state=None,
                 resume_changes=None, epoch_outputs=True, comm=None):
        if epochs is not None and steps is not None:
            raise ValueError("Trainer: give either epochs or steps, not both")
        for name, v in (("epochs", epochs), ("steps", steps), ("sample_every", sample_every),
                        ("checkpoint_every", checkpoint_every), ("log_every", log_every)):
            if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool)
                                  or v <= 0):
                raise ValueError(f"Trainer: {name} must be a positive int, got {v!r}")
        if not isinstance(model, GenerativeModel):
            raise TypeError(f"Trainer: model must be a scratchgan.models.GenerativeModel (the "
                            f"methods the trainer calls are declared there), got "
                            f"{type(model).__name__}")
        self.model = model
        if y is not None and model.uses_labels():
            # checked once here, so that a step on the GPU need not read labels back
            check_label_range(f"Trainer({type(model).__name__})", y, int(model.num_classes))
        if model.step == 0:
            # data-dependent initialisation (the GAN's official variant sets G's output bias
            # from the pixel marginals); a resumed run's checkpoint overwrites it
            model.init_from_data(x)
        model.attach_data(x, y)             # a model that keeps part of the data (m2's labels)
        self.comm = comm
        world = 1 if comm is None else int(comm.world_size)
        self.writer = comm is None or comm.rank == 0     # rank 0 alone writes the run folder
        if world > 1:
            data_parallel(model, comm)
            if step_mode == "auto":
                step_mode = "eager"
        self.runner = StepRunner(model, mode=step_mode)
        self._dev = None                 # the training set on the device (_device_data)
        self.x, self.y = x, y
        self.batches = BatchIterator(x, y, batch_size=batch_size,
                                     rng=np.random.default_rng([int(seed), 1]),
                                     rank=0 if comm is None else comm.rank, world_size=world)
        k = int(model.batches_per_step())
        self.steps = int(steps) if steps is not None else \
            max(1, int(epochs or 1) * len(self.batches) // k)
        self.out_dir = pathlib.Path(out_dir)
        self.seed = int(seed)
        self.sample_every = sample_every
        self.checkpoint_every = checkpoint_every
        # a checkpoint and a sample grid at every epoch's end (long benchmark runs with short
        # epochs turn this off and rely on checkpoint_every and the final save)
        self.epoch_outputs = bool(epoch_outputs)
        self.log_every = int(log_every)
        self.progress = progress
        self.config = dict(config or {})
        self.resume = bool(resume or resume_state is not None)
        self.resume_state = resume_state
        self.resume_changes = dict(resume_changes or {})
        self.resumed_from = None
        self._interrupted = False
        self.step = 0
        self.modes = modes
        self.kind = self._data_kind(x)
        if n_samples is None:
            n_samples = 1000 if self.kind in ("scatter", "hist") else 100
        self.n_samples = int(n_samples)
        self.fixed_noise = model.sample_noise(self.n_samples,
                                              rng=np.random.default_rng([self.seed, 2]))
        pd = x if plot_data is None else plot_data
        self.plot_data = pd[:2000] if self.kind in ("scatter", "hist") else None
        self.last_losses = {}
        self._curves_time = 0.0
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        self.metrics_path = self.out_dir / "metrics.jsonl"

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _data_kind(x):
        if x.ndim == 2 and x.shape[1] == 2:
            return "scatter"
        if x.ndim == 2 and x.shape[1] == 1:
            return "hist"
        return "grid"

    @property
    def device(self):
        return self.model.device

    def _to_model(self, a):
        if a is None:
            return None
        if a.dtype.kind == "f":
            a = a.astype(self.model.dtype, copy=False)
        return to_device(a, self.device) if self.device != "cpu" else a

    def _batches_done(self):
        b = self.batches
        return b.epoch * len(b) + b._batch

    def _device_data(self):
        """On the GPU, the training set lives on the device (when it fits in
        ``DEVICE_DATA_BYTES``) and batches are gathered there: a host-to-device copy of
        each batch from pageable memory would make the host wait for the previous step.
        The epoch's permutation is uploaded once per epoch. Returns None on the CPU."""
        if self.device == "cpu" or self.x.nbytes > DEVICE_DATA_BYTES:
            return None
        if self._dev is None:
            y = self._to_model(self.y) if (self.model.uses_labels() and self.y is not None) \
                else None
            self._dev = {"x": self._to_model(self.x), "y": y, "perm": None, "perm_dev": None}
        return self._dev

    def _next_batch(self, use_labels):
        dev = self._device_data()
        if dev is None or not self.batches.shuffle:
            xb, yb = self.batches.next_batch()
            return self._to_model(xb), (self._to_model(yb) if (use_labels and yb is not None)
                                        else None)
        perm, lo, hi = self.batches.next_indices()
        if dev["perm"] is not perm:                     # a new epoch: one upload
            dev["perm"], dev["perm_dev"] = perm, to_device(perm.astype(np.int64), self.device)
        idx = dev["perm_dev"][lo:hi]
        return dev["x"][idx], (dev["y"][idx] if (use_labels and dev["y"] is not None) else None)

    def _next_step_batches(self):
        """The real data of one ``train_step``: ``batches_per_step()`` minibatches (a list when
        more than one), labels only for models that use them."""
        k = int(self.model.batches_per_step())
        use_labels = self.model.uses_labels()
        xs, ys = [], []
        for _ in range(k):
            xb, yb = self._next_batch(use_labels)
            xs.append(xb)
            ys.append(yb)
        if k == 1:
            return xs[0], ys[0]
        return xs, (ys if use_labels and ys[0] is not None else None)

    def state_dict(self):
        gens = srng.model_generators(self.model)
        return {
            "config": self.config,
            "model": self.model.state_dict(),
            "rng": {"global": srng.get_state(),
                    "model": {k: g.bit_generator.state for k, g in gens.items()}},
            "batches": self.batches.state_dict(),
            "trainer": {"step": int(self.step), "total_steps": int(self.steps),
                        "seed": self.seed},
        }

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        srng.set_state(state["rng"]["global"])
        gens = srng.model_generators(self.model)
        saved = state["rng"].get("model", {})
        if set(saved) != set(gens):
            raise ValueError(f"checkpoint random generators {sorted(saved)} do not match the "
                             f"model's {sorted(gens)}")
        for k, g in gens.items():
            g.bit_generator.state = saved[k]
        self.batches.load_state_dict(state["batches"])
        self.step = int(state["trainer"]["step"])

    def save(self):
        if not self.writer:
            return None
        return save_checkpoint(self.checkpoint_path, self.state_dict(), keep_previous=True)

    def sample(self, noise=None):
        """Generate from ``noise`` (default: the fixed noise) with no effect on training."""
        noise = self.fixed_noise if noise is None else noise
        rng_state = srng.get_state()
        gens = {k: (g, g.bit_generator.state)
                for k, g in srng.model_generators(self.model).items()}
        bufs = _buffers(self.model)
        try:
            out = to_numpy(self.model.generate(noise))
        finally:
            srng.set_state(rng_state)
            for g, st in gens.values():
                g.bit_generator.state = st
            for m, b, arr in bufs:       # in place: a captured CUDA graph holds these arrays
                cur = getattr(m, b)
                if cur.shape == arr.shape and cur.dtype == arr.dtype:
                    cur[...] = arr
                else:
                    object.__setattr__(m, b, arr)
        return out

    def save_samples(self, path, title=None):
        return viz.save_samples(self.sample(), path, data_range=self.model.data_range,
                                data=self.plot_data, modes=self.modes, title=title)

    def _write_plots(self, tag=None, curves=True):
        """Fixed-noise samples (``samples/<tag>.png`` and ``samples.png``) and loss curves."""
        if not self.writer:
            return
        title = f"{self.model.name} step {self.step}"
        latest = self.out_dir / "samples.png"
        if tag is not None:
            tagged = self.save_samples(self.out_dir / "samples" / f"{tag}.png", title=title)
            shutil.copyfile(tagged, latest)
        else:
            self.save_samples(latest, title=title)
        if curves is None:  # during training: redraw the curves at most every 15 s
            curves = time.time() - self._curves_time > 15.0
        if curves:
            self._curves_time = time.time()
            viz.plot_loss_curves(self.metrics_path, self.out_dir / "loss_curves.png",
                                 title=self.model.name)

    def _prepare_metrics(self):
        if self.step == 0 or not self.metrics_path.exists():
            self.metrics_path.write_text("")
            return
        rows = [r for r in read_metrics(self.metrics_path) if r.get("step", 0) <= self.step]
        self.metrics_path.write_text("".join(metrics_line(r) + "\n" for r in rows))

    def _load_resume(self):
        if self.resume_state is not None:
            state, used, why = self.resume_state
        else:
            if not self.checkpoint_path.exists() and \
                    not previous_path(self.checkpoint_path).exists():
                raise FileNotFoundError(f"resume: no checkpoint in {self.out_dir} "
                                        f"(expected {self.checkpoint_path})")
            state, used, why = load_latest_info(self.checkpoint_path)
            if why:
                warnings.warn(f"resume: {why}; using the previous checkpoint {used}",
                              stacklevel=3)
        try:
            self.load_state_dict(state)
        except (ValueError, KeyError) as e:
            raise ValueError(f"resume: the checkpoint {used} does not match this run (model, "
                             f"data or batch size differ): {e}") from e
        self.resumed_from = {"step": int(self.step), "file": str(used), "reason": why}
        rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "from_step": int(self.step),
               "file": str(used), "total_steps": int(self.steps)}
        if why:
            rec["fallback_reason"] = why
        rec["changed"] = self.resume_changes
        if not self.writer:
            return
        with open(self.out_dir / "resumes.jsonl", "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")

    def _on_sigint(self, signum, frame):
        if self._interrupted:           # the second Ctrl-C: abort now
            raise KeyboardInterrupt
        self._interrupted = True
        sys.stderr.write(f"\ninterrupted: finishing step {self.step + 1} and writing a "
                         "checkpoint (Ctrl-C again to abort at once)\n")
        sys.stderr.flush()

    def _install_sigint(self):
        """Our SIGINT handler while fit() runs (main thread only); returns ``[old]`` (the
        handler to restore) or None when none was installed."""
        self._interrupted = False
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return [signal.signal(signal.SIGINT, self._on_sigint)]
        except (ValueError, OSError):
            return None

    # ------------------------------------------------------------------ the loop
    def fit(self):
        """Run to ``steps``; returns a summary dict (step, the step it started from, last
        losses, paths)."""
        self.model.check_run_length(self.steps)    # e.g. a schedule that ends: refuse first
        if self.writer:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.checkpoint_path)
        if self.resume:
            self._load_resume()
        if self.comm is not None and self.comm.world_size > 1:
            sync_state(self.model, self.comm)     # rank 0's state everywhere, own noise streams
            self.config["world_size"] = int(self.comm.world_size)
        if self.writer:
            (self.out_dir / "config.json").write_text(json.dumps(self.config, indent=2,
                                                                 default=str))
            self._prepare_metrics()
        start = self.step
        t0 = time.time()
        saved_at = start if self.resume else None
        per_epoch = len(self.batches)
        bar = tqdm(total=self.steps, initial=start, disable=not (self.progress and self.writer),
                   desc=self.model.name, dynamic_ncols=True, leave=True)
        old_handler = self._install_sigint()
        try:
            with open(self.metrics_path if self.writer else os.devnull, "a") as mf:
                while self.step < self.steps:
                    before = self._batches_done()
                    xb, yb = self._next_step_batches()
                    device_losses = self.runner(xb, yb)
                    self.step += 1
                    done = self._batches_done() // per_epoch
                    epoch_end = done > before // per_epoch and self.epoch_outputs
                    stop = self._interrupted and self.step < self.steps
                    will_save = epoch_end or stop or (self.checkpoint_every and
                                                      self.step % self.checkpoint_every == 0)
                    read = (self.step % self.log_every == 0 or self.step == self.steps
                            or will_save or self.device == "cpu")   # a CPU read costs nothing
                    if not read:       # the losses stay on the device: no synchronisation
                        bar.update(1)
                        if self.sample_every and self.step % self.sample_every == 0:
                            self._write_plots(f"step_{self.step:07d}", curves=False)
                        continue
                    losses = _read_losses(device_losses)
                    losses.update(self.model.host_logs())
                    bad = [(k, v) for k, v in losses.items()
                           if isinstance(v, float) and not math.isfinite(v)]
                    epoch = self._batches_done() / per_epoch
                    rec = {"step": self.step, "epoch": round(epoch, 4),
                           "time": round(time.time() - t0, 3), **losses}
                    if bad or self.step % self.log_every == 0 or self.step == self.steps:
                        mf.write(metrics_line(rec) + "\n")
                        mf.flush()
                    if bad:
                        k, v = bad[0]
                        last = (f"the last good checkpoint ({self.checkpoint_path}, step "
                                f"{saved_at}) is kept" if saved_at is not None else
                                "no checkpoint was written before it")
                        raise NonFiniteLossError(
                            f"non-finite loss at step {self.step}: {k} = {v}; training stopped, "
                            f"{last}. Try a smaller learning rate.", self.step, k, v)
                    self.last_losses = losses
                    if self.step % self.log_every == 0 or self.step == self.steps:
                        bar.set_postfix_str(_format_losses(losses), refresh=False)
                    bar.update(1)
                    if self.sample_every and self.step % self.sample_every == 0:
                        self._write_plots(f"step_{self.step:07d}", curves=False)
                    if epoch_end:
                        self._write_plots(f"epoch_{done:03d}", curves=None)
                    if will_save:
                        self.save()
                        saved_at = self.step
                    if stop:
                        raise TrainingInterrupted(
                            f"interrupted at step {self.step} of {self.steps}; checkpoint "
                            f"written to {self.checkpoint_path}", self.step,
                            self.checkpoint_path)
        except BaseException:
            try:  # leave the loss curves up to the failure
                viz.plot_loss_curves(self.metrics_path, self.out_dir / "loss_curves.png",
                                     title=self.model.name)
            except Exception:
                pass
            raise
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, signal.SIG_DFL if old_handler[0] is None
                              else old_handler[0])
            bar.close()
        if saved_at != self.step:
            self.save()
        self._write_plots()
        return {"step": self.step, "start_step": start, "resumed_from": self.resumed_from,
                "epochs": self.step / per_epoch,
                "losses": self.last_losses,
                "out_dir": str(self.out_dir), "samples": str(self.out_dir / "samples.png"),
                "checkpoint": str(self.checkpoint_path), "time": time.time() - t0}
