"""Running one training step: eagerly, or replayed from a captured CUDA graph.

A model's ``train_step`` reads as its paper's algorithm. This module is the
machinery below it: :class:`StepRunner` calls ``train_step`` as it is on the
CPU (and whenever graphs are off), and on the GPU captures one whole step into
a CUDA graph and replays it, so a step costs one graph launch on the host
instead of hundreds of kernel launches.

How a step becomes a graph
--------------------------
For each *shape* of step (the model's :meth:`graph_key`, e.g. WGAN's number of
critic iterations, and the shapes of the real data) the runner

1. runs one step eagerly on its own stream and memory pool (warm-up: kernels
   compile, launch plans and optimizer state are made, the pool learns the
   sizes);
2. captures the next step into a graph: the real data are first copied into
   static device buffers owned by the runner, then ``train_step`` runs under
   ``stream.begin_capture()``; nothing executes during capture, so the graph is
   launched once right after;
3. later steps copy their data into the static buffers and launch the graph.

Why a replay computes a *new* step and not the captured one again: every value
that changes from step to step lives on the device and is updated in place by
kernels inside the graph: the Philox counters of the noise and dropout streams
(:mod:`scratchgan.philox`), the optimizers' step counts and state, BatchNorm's
running statistics. Hyperparameters that a schedule changes between steps
(SGD's lr and momentum in the GAN paper's schedule) live in small device arrays
of the optimizers, which the runner refreshes before each launch
(``model.apply_schedule()`` then ``opt.sync_hyper()``). Host-side counters the
step advances (``model.step``) are advanced by the runner by the same amount
the captured step advanced them.

The captured step's memory comes from a private pool per graph, so no block the
graph uses is ever handed to other code.

What makes a step fall back to eager
------------------------------------
Anything in the step that needs the host: a value read back (``float(loss)``),
a host-to-device copy of host-drawn numbers (the AAE's toy-shaped priors), a
hyperparameter changed inside the step. CUDA refuses these during capture; the
runner then restores the host state, logs the reason once (``runner.reason``),
and runs that kind of step eagerly from then on. Set ``mode="graph"`` to make
such a failure an error instead.

Losses: ``train_step`` returns 0-d device arrays. A launch refreshes the
captured step's own output arrays, and the runner returns those: read (or copy)
them before the next call. :class:`scratchgan.train.Trainer` reads them at its
log interval, right after the step that produced them.
"""
from __future__ import annotations

import copy
import logging

import numpy as np

from .backend import cupy
from .cuda.capture import capture_guard
from .rng import model_generators

__all__ = ["MODES", "GraphCaptureError", "StepRunner"]

log = logging.getLogger("scratchgan.runtime")

MODES = ("auto", "eager", "graph")


class GraphCaptureError(RuntimeError):
    """A step could not be captured into a CUDA graph (with ``mode="graph"``)."""


class _Captured:
    """One captured step: its graph, static inputs, outputs and private pool."""

    def __init__(self, graph, xs, ys, logs, pool, step_delta):
        self.graph, self.xs, self.ys, self.logs = graph, xs, ys, logs
        self.pool, self.step_delta = pool, step_delta


class StepRunner:
    """``runner(x, y) -> logs``: one ``model.train_step`` eagerly or from a CUDA graph.

    ``mode``: ``"auto"`` (graphs on the GPU, falling back to eager with the reason
    logged), ``"eager"`` (always ``train_step`` itself), ``"graph"`` (graphs on the
    GPU; a step that cannot be captured raises :class:`GraphCaptureError`). On the
    CPU every mode runs ``train_step`` itself.

    ``x``/``y``: what ``train_step`` takes (one minibatch or a list of
    ``batches_per_step()`` of them, device or host arrays).
    Attributes: ``mode_used`` (``"eager"`` or ``"graph"``, of the last call),
    ``reason`` (why graphs were given up, or None), ``captures`` (graphs made).
    """

    def __init__(self, model, mode="auto"):
        if mode not in MODES:
            raise ValueError(f"StepRunner: mode must be one of {MODES}, got {mode!r}")
        self.model = model
        self.mode = mode
        self.reason = None
        self.mode_used = "eager"
        self.captures = 0
        self._graphs = {}
        self._warm = set()
        self._failed = set()
        self._stream = None

    # -- public ------------------------------------------------------------------------
    @property
    def uses_graphs(self):
        return self.mode != "eager" and self.model.device == "cuda"

    def __call__(self, x, y=None):
        if not self.uses_graphs:
            self.mode_used = "eager"
            return self.model.train_step(x, y)
        key = self._key(x, y)
        cap = self._graphs.get(key)
        if cap is not None:
            return self._replay(cap, x, y)
        if key in self._failed:
            self.mode_used = "eager"
            return self._eager(x, y)
        if key not in self._warm:
            self._warm.add(key)
            self.mode_used = "eager"
            return self._eager(x, y)
        return self._capture(key, x, y)

    def reset(self):
        """Drop every captured graph (after the model's arrays were replaced, e.g. by
        ``load_state_dict`` into new arrays, or a device move)."""
        self._graphs.clear()
        self._warm.clear()
        self._failed.clear()

    # -- internals ---------------------------------------------------------------------
    def _key(self, x, y):
        def shapes(a):
            if a is None:
                return None
            if isinstance(a, (list, tuple)):
                return tuple(shapes(b) for b in a)
            return (tuple(a.shape), str(a.dtype))
        return (self.model.graph_key(), shapes(x), shapes(y))

    def _get_stream(self):
        if self._stream is None:
            # a blocking stream: work on the legacy default stream (data copies, sampling)
            # stays ordered with the steps without explicit events
            self._stream = cupy().cuda.Stream(non_blocking=False)
        return self._stream

    def _eager(self, x, y):
        with self._get_stream():
            out = self.model.train_step(x, y)
        return out

    def _before_launch(self):
        """Host-side schedule work of a step, done before the graph runs."""
        self.model.apply_schedule()
        for opt in self.model.optimizers().values():
            opt.sync_hyper()

    @staticmethod
    def _static_like(a):
        cp = cupy()
        if a is None:
            return None
        if isinstance(a, (list, tuple)):
            return [StepRunner._static_like(b) for b in a]
        return cp.empty(a.shape, dtype=a.dtype)

    @staticmethod
    def _fill(dst, src):
        if dst is None:
            return
        if isinstance(dst, list):
            for d, s in zip(dst, src):
                StepRunner._fill(d, s)
            return
        if hasattr(src, "__cuda_array_interface__"):
            dst[...] = src
        else:
            dst.set(np.ascontiguousarray(src, dtype=dst.dtype))

    def _snapshot(self):
        m = self.model
        return {"step": m.step,
                "gens": {k: copy.deepcopy(g.bit_generator.state)
                         for k, g in model_generators(m).items()}}

    def _restore(self, snap):
        m = self.model
        m.step = snap["step"]
        gens = model_generators(m)
        for k, st in snap["gens"].items():
            gens[k].bit_generator.state = st
        m.clear_cache()

    def _capture(self, key, x, y):
        """Warm the key's private pool with this call's step (a real step), then capture
        the next step's graph without running it. Returns this call's logs."""
        cp = cupy()
        stream = self._get_stream()
        pool = cp.cuda.MemoryPool()
        self._before_launch()
        with stream, cp.cuda.using_allocator(pool.malloc):
            xs, ys = self._static_like(x), self._static_like(y)
            self._fill(xs, x)
            self._fill(ys, y)
            # this call's step, eagerly, on the private pool: the capture below is then
            # served from the pool's cache
            logs_now = self.model.train_step(xs, ys)
            logs_now = {k: (v.copy() if hasattr(v, "__cuda_array_interface__") else v)
                        for k, v in logs_now.items()}
        self.mode_used = "eager"
        snap = self._snapshot()
        try:
            self._before_launch()
            with stream, cp.cuda.using_allocator(pool.malloc):
                with capture_guard():
                    stream.begin_capture()
                    try:
                        logs = self.model.train_step(xs, ys)
                    finally:
                        graph = stream.end_capture()
            delta = self.model.step - snap["step"]
        except Exception as e:  # noqa: BLE001 - any refusal means: this kind of step stays eager
            try:
                stream.synchronize()
            except Exception:
                pass
            self._restore(snap)
            why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if self.mode == "graph":
                raise GraphCaptureError(
                    f"StepRunner: {type(self.model).__name__}.train_step could not be captured "
                    f"into a CUDA graph ({why}); use mode='auto' to train it eagerly") from e
            self._failed.add(key)
            self.reason = why
            log.warning("StepRunner: %s trains eagerly: its step could not be captured into a "
                        "CUDA graph (%s)", type(self.model).__name__, why)
            return logs_now
        # Nothing ran during capture, but the step's host-side effects (model.step, host
        # generators) did happen: undo them; each launch redoes them (step_delta).
        self._restore(snap)
        self._graphs[key] = _Captured(graph, xs, ys, logs, pool, delta)
        self.captures += 1
        return logs_now

    def _replay(self, cap, x, y):
        stream = self._get_stream()
        self._before_launch()
        with stream:
            self._fill(cap.xs, x)
            self._fill(cap.ys, y)
            cap.graph.launch(stream)
        self.model.step += cap.step_delta
        self.mode_used = "graph"
        return cap.logs
