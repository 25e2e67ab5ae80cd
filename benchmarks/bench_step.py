"""Time one whole ``train_step`` of every model: scratchgan against its PyTorch twin.

A case is (model, device, precision). For each case this builds the model with
``scratchgan.models.get_model``, gives it random data of the right shape and range
(labels for conditional models; one list of ``batches_per_step()`` minibatches for
WGAN's critic iterations, as the Trainer passes them) drawn with NumPy from a fixed
seed, several batches rotated and moved to the device before timing, and times
the model's real ``train_step`` next to the PyTorch twin from
``scratchgan.testing`` (``make_twin(model, device=...)``; the same algorithm,
eager mode, ``torch.backends.cudnn.benchmark = True``).

Cases (``--models``; batch: ``--batch-policy issue`` gives 128 to all and 100 to
the MLP GAN, ``paper`` each ``Model.defaults["batch_size"]``, ``--batch N`` one size):

    gan      GAN, the paper's MLP (arch="paper": ReLU G, maxout D with dropout, SGD), (1,28,28)
    dcgan28  DCGAN, MNIST net (arch="28", the shallow depth=2 variant), (1,28,28)
    dcgan64  DCGAN, the paper's 64x64 net (arch="64"), (3,64,64)
    cgan     conditional GAN (MLP, maxout), (1,28,28) + labels
    infogan  InfoGAN (conv D/Q trunk, G), (1,28,28)
    wgan     WGAN, DCGAN nets, n_critic = 5 critic batches per step, (1,28,28)
    wgan-gp  WGAN-GP, the official MNIST nets (arch="mnist", DIM 64, Adam), n_critic = 5
             critic batches per step, (1,28,28); batch 128 like the other cases (the
             official gan_mnist.py uses 50: ``--batch 50``). The twin's penalty is
             torch.autograd.grad(D(x̂).sum(), x̂, create_graph=True) and a double backward.
    vae      VAE (MLP, Adagrad), (1,28,28)
    aae      AAE (MLPs), (1,28,28)

GPU (``--device cuda``), for each precision in ``--precision`` (fp32: ours
``set_conv_precision("fp32")``, torch ``allow_tf32`` off for matmul and cuDNN; tf32:
``set_conv_precision("tf32")``, torch ``allow_tf32`` on for both):

    ours eager         model.train_step(x, y)
    ours runner_eager  scratchgan.runtime.StepRunner(model, mode="eager")   } when
    ours runner_auto   StepRunner(model, mode="auto"): CUDA-graph replay     } scratchgan.runtime
                       where it captures (mode_used, reason recorded)        } imports
    torch_eager        twin.train_step(x, y), losses read at the window end
    torch_eager_sync   the same with float(loss) of every loss after every step
                       (the issue's original baseline)

Each variant runs ``--warmup`` steps (>= 10; graph capture happens there), then the
variants take turns, one window of ``--window`` steps each (the Trainer's log
interval), until ``--steps`` steps each: a CUDA event (CuPy's for ours, torch's for
the twin) is recorded before the window's first step; the steps are issued without
reading anything back; then the last step's losses are read with float() as the
Trainer does at its log interval; a second event is recorded and the device is
synchronised. Per-step time = event time / window length; the median over windows
is reported, with the host time per step (perf_counter around the Python calls,
before anything is read back: launch overhead) and the wall time per step. Every
window starts from an idle GPU. Ours and the twin are interleaved in one process, so
the ratios come from one run.

CPU (``--device cpu``): ``--threads`` (default 2) BLAS/OpenMP threads, set before
NumPy and torch load, and ``torch.set_num_threads``; warm-up, then ``--repeats``
steps of each variant interleaved step by step, every step's losses read;
perf_counter median. (These rows replace the retired bench_cpu.py, which timed a
hand-built MLP GAN and an InfoGAN-style DCGAN; here the real gan and infogan models
run, with every other model.)

Targets (ours / torch eager, the best ours variant): GPU FP32 DCGAN-64 <= 0.8, GPU TF32
DCGAN-64 <= 1.0, GPU FP32 MNIST-scale models (gan, dcgan28, cgan, infogan, wgan, vae,
aae) <= 0.35, GPU FP32 WGAN-GP <= 0.8; CPU: the paper's MLP GAN <= 0.7, every other model
(dcgan28, dcgan64, infogan, wgan, cgan, aae, vae) <= 1.2 (no CPU or TF32 target for wgan-gp).

What the gradient penalty costs (cases whose model has one: wgan-gp). After the step
timing, one *critic update* (zero_grad, z, G(z) under no_grad, D(x) and D(x̃) forward and
backward, the optimizer step) is timed with the penalty and without it, on one minibatch
of the case's batch size, in the same way (GPU: CUDA-event windows, interleaved; CPU:
perf_counter, step by step):

    ours gp        WGANGP.discriminator_grads: + ε, x̂, input_gradient (data-only backward
                   keeping the signals), penalty_backward (tangent pass + weight pairings)
    ours plain     WGAN.discriminator_grads on the same critic and Adam (λ = 0, no ε, x̂ or
                   second-order pass)
    (GPU, when scratchgan.runtime imports: both again as one CUDA graph per update, through
    StepRunner(mode="auto") on a model-like wrapper whose train_step is the update)
    torch gp       twin.critic_update(x): autograd.grad(create_graph=True) + double backward
    torch plain    twin.critic_update(x, penalty=False): no autograd.grad, λ = 0

``penalty_cost`` in the case's JSON gives the ms of each and the ratios gp / plain (PyTorch
reports 2-5x for the penalty); the table's notes and the markdown repeat them.

A case or variant that fails (no twin for a model, a capture error ...) is recorded
with its error text; the others go on. The JSON (and a markdown table beside it) is
rewritten after every case, so a run cut short keeps what it measured.

    python benchmarks/bench_step.py --device cuda --precision fp32,tf32   # GPU rows
    python benchmarks/bench_step.py --device cpu                           # CPU rows (2 threads)
    python benchmarks/bench_step.py --device cpu --quick --models gan,dcgan28   # smoke test
    python benchmarks/bench_step.py --device cuda --models wgan-gp --precision fp32,tf32

Output: ``<out-dir>/step-<GPU name or cpu>-<date>.json`` and ``.md`` (``-quick`` added
for --quick runs; ``-2``, ``-3`` ... instead of overwriting an existing file).
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import pathlib
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
import traceback
import zlib

REPO = pathlib.Path(__file__).resolve().parents[1]

# name: (registry name, data shape, constructor hyperparameters, kind)
CASES = {
    "gan": ("gan", (1, 28, 28), {"arch": "paper"}, "mlp"),
    # depth 2 pinned: the net the step figures were first measured on (the default is now 3)
    "dcgan28": ("dcgan", (1, 28, 28), {"arch": "28", "depth": 2}, "conv"),
    "dcgan64": ("dcgan", (3, 64, 64), {"arch": "64"}, "conv"),
    "cgan": ("cgan", (1, 28, 28), {}, "mlp"),
    "infogan": ("infogan", (1, 28, 28), {}, "conv"),
    "wgan": ("wgan", (1, 28, 28), {"arch": "dcgan", "depth": 2}, "conv"),
    "wgan-gp": ("wgan-gp", (1, 28, 28), {"arch": "mnist", "n_critic": 5}, "conv"),
    "vae": ("vae", (1, 28, 28), {}, "mlp"),
    "aae": ("aae", (1, 28, 28), {}, "mlp"),
}
ISSUE_BATCH = {"gan": 100}          # the issue's batch sizes: 128, the MLP GAN 100
ISSUE_BATCH_DEFAULT = 128
OURS_VARIANTS = ("eager", "runner_eager", "runner_auto", "runner_graph")
DEFAULT_OURS_VARIANTS = ("eager", "runner_eager", "runner_auto")
RUNNER_MODE = {"runner_eager": "eager", "runner_auto": "auto", "runner_graph": "graph"}

TARGET_TEXT = {
    "cuda/fp32/dcgan64": "ours / torch eager <= 0.8 (DCGAN-64, FP32)",
    "cuda/tf32/dcgan64": "ours / torch eager <= 1.0 (DCGAN-64, TF32)",
    "cuda/fp32/mnist": "ours / torch eager <= 0.35 (MNIST-scale models, FP32)",
    "cpu/mlp": "ours / torch eager <= 0.7 (CPU, the paper's MLP GAN)",
    "cpu/conv": "ours / torch eager <= 1.2 (CPU, every other model)",
    "cuda/fp32/wgan-gp": "ours / torch eager <= 0.8 (WGAN-GP, official MNIST nets, FP32)",
}
PENALTY_CASES = ("wgan-gp",)        # cases whose critic update is timed with and without GP


def target_for(case, device, precision):
    """(target ratio, key of TARGET_TEXT) or (None, None) where the issue sets none."""
    kind = CASES[case][3]
    if case == "wgan-gp":
        return (0.8, "cuda/fp32/wgan-gp") if (device, precision) == ("cuda", "fp32") \
            else (None, None)
    if device == "cpu":
        return (0.7, "cpu/mlp") if case == "gan" else (1.2, "cpu/conv")
    if case == "dcgan64":
        return (0.8, "cuda/fp32/dcgan64") if precision == "fp32" else (1.0, "cuda/tf32/dcgan64")
    if precision == "fp32":
        return 0.35, "cuda/fp32/mnist"
    return None, None


# ----------------------------------------------------------------------------- arguments
def _csv(s):
    return [t.strip() for t in str(s).split(",") if t.strip()]


def _norm_name(s):
    return s.lower().replace("-", "").replace("_", "")


def _case_name(s):
    k = {_norm_name(c): c for c in CASES}.get(_norm_name(s))
    if k is None:
        raise argparse.ArgumentTypeError(f"unknown model case {s!r}; valid: {', '.join(CASES)}")
    return k


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cuda", "cpu", "both"), default=None,
                    help="where to time (default: cuda when CuPy sees a GPU, else cpu)")
    ap.add_argument("--models", default=",".join(CASES),
                    help="comma list of cases: " + ",".join(CASES))
    ap.add_argument("--precision", default="fp32,tf32",
                    help="GPU precisions, comma list of fp32,tf32 (CPU rows are fp32)")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed steps per variant (default: 200 on the GPU, 30 on the CPU)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed steps per variant on the CPU (overrides --steps there)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed steps per variant first (default: 10 on the GPU, 3 on the CPU)")
    ap.add_argument("--window", type=int, default=10,
                    help="GPU: steps per timed window; losses are read once per window, like "
                         "the Trainer's log interval (default 10)")
    ap.add_argument("--threads", type=int, default=2,
                    help="CPU rows: BLAS/OpenMP threads and torch.set_num_threads (default 2)")
    ap.add_argument("--batch-policy", choices=("issue", "paper"), default="issue",
                    help="issue: 128 for all, the MLP GAN 100 (default); paper: each model's "
                         "defaults['batch_size']")
    ap.add_argument("--batch", type=int, default=None, help="one batch size for every case")
    ap.add_argument("--n-batches", type=int, default=4,
                    help="distinct data batches rotated through the steps (default 4)")
    ap.add_argument("--ours-variants", default=",".join(DEFAULT_OURS_VARIANTS),
                    help="GPU: scratchgan variants, comma list of " + ",".join(OURS_VARIANTS))
    ap.add_argument("--no-torch", action="store_true", help="time scratchgan only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--tag", default="", help="extra text for the file name")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="start no new case after this many seconds (the rest are recorded as "
                         "skipped); the JSON is written after every case")
    ap.add_argument("--case-budget-s", type=float, default=90.0,
                    help="GPU: cut a case's timed windows (never below 30 steps) when the "
                         "warm-up says they would take longer than this (default 90 s; 0: off)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: GPU 2 warm-up and 4 timed steps in windows of 2, CPU 1 "
                         "warm-up and 4 timed steps; the file name ends in -quick")
    args = ap.parse_args(argv)
    try:
        args.cases = [_case_name(m) for m in _csv(args.models)]
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    if not args.cases:
        ap.error("--models names no case")
    args.precisions = [p.lower() for p in _csv(args.precision)]
    bad = [p for p in args.precisions if p not in ("fp32", "tf32")]
    if bad or not args.precisions:
        ap.error(f"--precision: valid values are fp32, tf32; got {args.precision!r}")
    args.ours = _csv(args.ours_variants)
    bad = [v for v in args.ours if v not in OURS_VARIANTS]
    if bad or not args.ours:
        ap.error(f"--ours-variants: valid values are {', '.join(OURS_VARIANTS)}; got {bad}")
    for name in ("steps", "repeats", "warmup", "threads", "batch", "n_batches", "window"):
        v = getattr(args, name)
        if v is not None and (v < (0 if name == "warmup" else 1)):
            ap.error(f"--{name.replace('_', '-')} must be >= {0 if name == 'warmup' else 1}")
    if args.quick:
        args.window = min(args.window, 2)
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.device in ("cpu", "both"):
    # The BLAS / OpenMP pools are sized when NumPy and torch load: set them first.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import scratchgan  # noqa: E402
from scratchgan.models import get_model  # noqa: E402


class Interrupted(BaseException):
    """SIGTERM (e.g. from `timeout`): stop, keep what was measured. A BaseException, so
    that no `except Exception` of a case or a variant swallows it."""


def _on_sigterm(signum, frame):
    raise Interrupted(f"signal {signum}")


def _err(e):
    return f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=-15)


def _short(e):
    s = f"{type(e).__name__}: {e}"
    return s if len(s) < 300 else s[:297] + "..."


# ----------------------------------------------------------------------------- optional parts
class Env:
    """What imports on this machine: torch, CuPy, scratchgan.runtime, scratchgan.testing."""

    def __init__(self, want_cuda, want_cpu, threads, no_torch):
        self.avail = {}
        self.torch = self.cp = self.StepRunner = self.twins = None
        if not no_torch:
            try:
                import torch
                self.torch = torch
                self.avail["torch"] = {"available": True, "version": torch.__version__}
                if want_cpu:
                    torch.set_num_threads(threads)
                if want_cuda and torch.cuda.is_available():
                    torch.backends.cudnn.benchmark = True
            except Exception as e:
                self.avail["torch"] = {"available": False, "error": _short(e)}
        else:
            self.avail["torch"] = {"available": False, "error": "--no-torch"}
        if want_cuda:
            try:
                import cupy as cp
                n = cp.cuda.runtime.getDeviceCount()
                if n < 1:
                    raise RuntimeError("CuPy sees no CUDA device")
                self.cp = cp
                self.avail["cupy"] = {"available": True, "version": cp.__version__}
            except Exception as e:
                self.avail["cupy"] = {"available": False, "error": _short(e)}
            if self.torch is not None and not self.torch.cuda.is_available():
                self.avail["torch"]["cuda"] = False
        try:
            from scratchgan.runtime import StepRunner
            self.StepRunner = StepRunner
            self.avail["runtime"] = {"available": True}
        except Exception as e:
            self.avail["runtime"] = {"available": False, "error": _short(e),
                                     "note": "scratchgan.runtime does not import: ours timed "
                                             "eager only"}
        if self.torch is not None:
            try:
                from scratchgan.testing import twins as torch_twins
                self.twins = torch_twins
                self.avail["torch_twins"] = {"available": True,
                                             "path": str(getattr(torch_twins, "__file__", ""))}
            except Exception as e:
                self.avail["torch_twins"] = {"available": False, "error": _short(e)}
        else:
            self.avail["torch_twins"] = {"available": False, "error": "torch does not import"}

    @property
    def torch_cuda(self):
        return self.torch is not None and self.torch.cuda.is_available()

    def gpu_name(self):
        if self.cp is None:
            return None
        try:
            name = self.cp.cuda.runtime.getDeviceProperties(self.cp.cuda.Device().id)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        except Exception as e:
            return f"unknown GPU ({_short(e)})"

    def free_memory(self):
        gc.collect()
        if self.cp is not None:
            try:
                self.cp.cuda.Device().synchronize()
                self.cp.get_default_memory_pool().free_all_blocks()
                self.cp.get_default_pinned_memory_pool().free_all_blocks()
            except Exception:
                pass
        if self.torch_cuda:
            try:
                self.torch.cuda.synchronize()
                self.torch.cuda.empty_cache()
            except Exception:
                pass


def set_torch_tf32(torch, on):
    """PyTorch TF32 for matmul and cuDNN (the legacy flags the issue names); returns what
    torch reports back, including the newer fp32_precision settings where they exist."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.cuda.matmul.allow_tf32 = bool(on)
        torch.backends.cudnn.allow_tf32 = bool(on)
        out = {}
        reads = [("matmul.allow_tf32", lambda: bool(torch.backends.cuda.matmul.allow_tf32)),
                 ("cudnn.allow_tf32", lambda: bool(torch.backends.cudnn.allow_tf32)),
                 ("cudnn.benchmark", lambda: bool(torch.backends.cudnn.benchmark)),
                 ("matmul.fp32_precision",
                  lambda: str(torch.backends.cuda.matmul.fp32_precision)),
                 ("cudnn.conv.fp32_precision",
                  lambda: str(torch.backends.cudnn.conv.fp32_precision)),
                 ("float32_matmul_precision", torch.get_float32_matmul_precision)]
        for key, read in reads:
            try:
                out[key] = read()
            except Exception:       # an attribute this torch version does not have
                pass
    return out


# ----------------------------------------------------------------------------- data and models
def batch_size_for(case, cls, args):
    if args.batch is not None:
        return args.batch
    if args.batch_policy == "paper":
        return int(cls.defaults.get("batch_size", ISSUE_BATCH_DEFAULT))
    return ISSUE_BATCH.get(case, ISSUE_BATCH_DEFAULT)


def build_model(case, device, seed):
    name, shape, hyper, _ = CASES[case]
    scratchgan.manual_seed(seed)
    return get_model(name)(shape, num_classes=10, device=device, dtype=np.float32, rng=seed,
                           **hyper)


def uses_labels(model):
    return bool(getattr(model, "conditional", False) or getattr(model, "uses_labels", False))


def host_batches(case, model, batch, n_batches, seed):
    """``n_batches`` step inputs: (list of k arrays (B, *shape) float32, labels (k, B) or None),
    values uniform over the model's data range, from a fixed seed per case."""
    rng = np.random.default_rng([seed, zlib.crc32(case.encode())])
    k = int(model.batches_per_step())
    lo, hi = getattr(model, "data_range", None) or (0.0, 1.0)
    out = []
    for _ in range(n_batches):
        xs = [rng.uniform(lo, hi, size=(batch, *model.data_shape)).astype(np.float32)
              for _ in range(k)]
        ys = [rng.integers(0, model.num_classes, size=batch).astype(np.int64) for _ in range(k)]
        out.append((xs, ys if uses_labels(model) else None))
    return out


def ours_inputs(batches, device, cp):
    """As the Trainer passes them: one array when a step takes one minibatch, else a list;
    labels moved to the device like the Trainer's (int64)."""
    mv = (lambda a: cp.asarray(a)) if device == "cuda" else (lambda a: a)
    out = []
    for xs, ys in batches:
        x = [mv(a) for a in xs]
        y = None if ys is None else [mv(a) for a in ys]
        if len(x) == 1:
            out.append((x[0], None if y is None else y[0]))
        else:
            out.append((x, y))
    return out


def torch_inputs(batches, device, torch, layout):
    """The same values as torch tensors; layout "list" (like ours) or "stacked" (k*B rows)."""
    def mv(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)
    out = []
    for xs, ys in batches:
        if len(xs) == 1:
            out.append((mv(xs[0]), None if ys is None else mv(ys[0])))
        elif layout == "stacked":
            out.append((mv(np.concatenate(xs)), None if ys is None else mv(np.concatenate(ys))))
        else:
            out.append(([mv(a) for a in xs], None if ys is None else [mv(a) for a in ys]))
    return out


def read_losses(logs):
    """What the Trainer does with a step's logs at its log interval: float() of each value
    (0-d device arrays are copied to the host here, which synchronises)."""
    out = {}
    for k, v in (logs or {}).items():
        if v is None or isinstance(v, (str, bool)):
            continue
        try:
            out[k] = float(v)
        except Exception:
            try:
                out[k] = float(np.asarray(scratchgan.to_numpy(v)).reshape(-1)[0])
            except Exception:
                out[k] = repr(v)[:80]
    return out


def _finite(losses):
    return all(math.isfinite(v) for v in losses.values() if isinstance(v, float))


# ----------------------------------------------------------------------------- variants
class Variant:
    """A step function under test. family 'ours' (CuPy/NumPy) or 'torch'."""

    def __init__(self, name, family, fn, inputs, read_every_step=False, info=None, keep=None):
        self.name, self.family, self.fn, self.inputs = name, family, fn, inputs
        self.read_every_step = read_every_step
        self.info = dict(info or {})
        self.keep = keep                # objects to keep alive (model, runner, twin)
        self.ms, self.host_ms, self.wall_ms = [], [], []
        self.last_losses = {}
        self.error = None
        self.steps_done = 0
        self.est_ms = None

    def call(self, i):
        x, y = self.inputs[i % len(self.inputs)]
        logs = self.fn(x, y)
        self.steps_done += 1
        return logs


def summarize(v, timer):
    def pct(a, q):
        return float(np.percentile(np.asarray(a), q)) if a else None
    d = {"ms_per_step": statistics.median(v.ms) if v.ms else None,
         "ms_min": min(v.ms) if v.ms else None,
         "ms_mean": statistics.fmean(v.ms) if v.ms else None,
         "ms_p90": pct(v.ms, 90),
         "host_ms_per_step": statistics.median(v.host_ms) if v.host_ms else None,
         "wall_ms_per_step": statistics.median(v.wall_ms) if v.wall_ms else None,
         "samples": len(v.ms), "timer": timer,
         "reads_losses": "every step" if v.read_every_step else "once per window (last step)",
         "last_losses": v.last_losses, "losses_finite": _finite(v.last_losses),
         "raw_ms": [round(t, 5) for t in v.ms]}
    d.update(v.info)
    if v.error:
        d["error"] = v.error
    return d


def gpu_window(v, env, start, n):
    """Time n steps of one variant: events around the window, losses read at its end."""
    if v.family == "ours":
        cp = env.cp
        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
        sync = cp.cuda.Device().synchronize

        def elapsed():
            return cp.cuda.get_elapsed_time(e0, e1)
    else:
        torch = env.torch
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sync = torch.cuda.synchronize

        def elapsed():
            return e0.elapsed_time(e1)
    e0.record()
    h0 = time.perf_counter()
    logs = None
    for j in range(n):
        logs = v.call(start + j)
        if v.read_every_step:
            read_losses(logs)
    h1 = time.perf_counter()
    losses = read_losses(logs)
    e1.record()
    e1.synchronize()
    sync()                      # the whole device: a runner may use a stream of its own
    h2 = time.perf_counter()
    v.ms.append(elapsed() / n)
    v.host_ms.append((h1 - h0) * 1e3 / n)
    v.wall_ms.append((h2 - h0) * 1e3 / n)
    v.last_losses = losses


def runner_info(v):
    """mode_used (of the last call), reason (why graphs were given up) and captures."""
    if hasattr(v.fn, "mode_used"):
        for k in ("mode_used", "reason", "captures"):
            v.info[k] = getattr(v.fn, k, None)


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def warm(v, steps, sync):
    """Untimed steps; the second half (after compilation, capture, autotuning) gives a
    rough ms per step, ``v.est_ms``, for the case's time cap."""
    logs, half, t_mid = None, steps // 2, None
    for i in range(steps):
        if i == half:
            sync()
            t_mid = time.perf_counter()
        logs = v.call(i)
    v.last_losses = read_losses(logs) if logs is not None else {}
    sync()
    v.est_ms = ((time.perf_counter() - t_mid) * 1e3 / (steps - half)
                if t_mid is not None else None)


# ----------------------------------------------------------------------------- one case
def make_ours_variants(case, device, names, env, batches, args, rec):
    out = []
    for vname in names:
        try:
            model = build_model(case, device, args.seed)
            inputs = ours_inputs(batches, device, env.cp)
            if vname == "eager":
                fn, info, keep = model.train_step, {"call": "model.train_step(x, y)"}, model
            else:
                if env.StepRunner is None:
                    rec["skipped_variants"][vname] = "scratchgan.runtime does not import"
                    continue
                mode = RUNNER_MODE[vname]
                runner = env.StepRunner(model, mode=mode)
                fn, keep = runner, (model, runner)
                info = {"call": f"StepRunner(model, mode={mode!r})(x, y)", "mode_requested": mode}
            out.append(Variant(vname, "ours", fn, inputs, info=info, keep=keep))
        except Exception as e:
            rec["errors"][vname] = _err(e)
            print(f"  {vname}: {_short(e)}", flush=True)
    return out


def make_torch_variants(case, device, env, batches, args, rec):
    if env.torch is None or env.twins is None:
        why = (env.avail.get("torch_twins", {}).get("error") or
               env.avail.get("torch", {}).get("error") or "unavailable")
        rec["skipped_variants"]["torch"] = why
        return []
    if device == "cuda" and not env.torch_cuda:
        rec["skipped_variants"]["torch"] = "torch sees no CUDA device"
        return []
    try:
        src = build_model(case, device, args.seed)
        twin = env.twins.make_twin(src, device=device, dtype=None)
        del src
    except Exception as e:
        rec["errors"]["torch"] = _err(e)
        print(f"  torch twin: {_short(e)}", flush=True)
        return []
    k = len(batches[0][0])
    layouts = ["list", "stacked"] if k > 1 else ["single"]
    inputs, errs = None, []
    for layout in layouts:      # a first step tells which input layout the twin takes
        try:
            inputs = torch_inputs(batches, device, env.torch, layout)
            x, y = inputs[0]
            read_losses(twin.train_step(x, y))
            rec["torch_input_layout"] = layout
            break
        except Exception as e:
            errs.append(f"layout {layout}: " + _err(e))
            inputs = None
    if inputs is None:
        rec["errors"]["torch"] = "\n".join(errs)
        print(f"  torch twin step failed: {errs[-1].splitlines()[0]}", flush=True)
        return []
    fn = twin.train_step
    names = ["torch_eager", "torch_eager_sync"] if device == "cuda" else ["torch_eager"]
    out = []
    for n in names:
        sync_each = n == "torch_eager_sync" or device == "cpu"
        info = {"call": "twin.train_step(x, y)" + ("; float() of every loss every step"
                                                  if sync_each else ""),
                "twin": type(twin).__name__}
        out.append(Variant(n, "torch", fn, inputs, read_every_step=sync_each, info=info,
                           keep=twin))
    return out


def warm_all(variants, plan, rec, sync_of, gpu):
    """Warm every variant up; return those that survived. A failure is recorded in
    ``rec["errors"]`` and leaves the other variants running."""
    active = []
    for v in variants:
        try:
            t0 = time.perf_counter()
            warm(v, plan["warmup"], sync_of(v))
            v.info["warmup_s"] = round(time.perf_counter() - t0, 3)
            v.info["warmup_ms_per_step_est"] = v.est_ms
            if gpu:
                runner_info(v)
            active.append(v)
        except Interrupted:
            raise
        except Exception as e:
            v.error = _err(e)
            rec["errors"][v.name] = v.error
            print(f"  {v.name} warm-up failed: {_short(e)}", flush=True)
            if gpu:
                _try(sync_of(v))
    return active


def run_gpu_case(case, precision, env, args, plan):
    cp, torch = env.cp, env.torch
    name, shape, hyper, kind = CASES[case]
    rec = new_record(case, "cuda", precision)
    scratchgan.set_conv_precision(precision)
    rec["ours_precision"] = {"conv_precision": scratchgan.get_conv_precision(),
                             "note": "set_conv_precision selects the convolution kernels "
                                     "(and TF32 for the im2col/cuBLAS conv path); Linear "
                                     "layers' matmuls stay FP32"}
    if env.torch_cuda:
        rec["torch_flags"] = set_torch_tf32(torch, precision == "tf32")
    probe = build_model(case, "cuda", args.seed)
    batch = batch_size_for(case, type(probe), args)
    fill_case_info(rec, probe, batch)
    batches = host_batches(case, probe, batch, args.n_batches, args.seed)
    del probe
    variants = make_ours_variants(case, "cuda", args.ours, env, batches, args, rec)
    variants += make_torch_variants(case, "cuda", env, batches, args, rec)
    syncs = {"ours": cp.cuda.Device().synchronize,
             "torch": torch.cuda.synchronize if env.torch_cuda else (lambda: None)}
    active = warm_all(variants, plan, rec, lambda v: syncs[v.family], gpu=True)
    window = plan["window"]
    n_windows = max(1, math.ceil(plan["steps"] / window))
    rec["timing"] = {"warmup": plan["warmup"], "window": window}
    # cap the case's timed part at --case-budget-s (never under 30 steps per variant)
    est = sum(getattr(v, "est_ms", None) or 0.0 for v in active)
    if args.case_budget_s and est > 0:
        fit = int(args.case_budget_s * 1e3 / (est * window))
        floor_ = 1 if args.quick else math.ceil(30 / window)
        if fit < n_windows:
            rec["timing"]["windows_planned"] = n_windows
            n_windows = max(floor_, fit)
            rec["notes"].append(f"timed windows cut from {rec['timing']['windows_planned']} to "
                                f"{n_windows}: the warm-up estimate ({est:.1f} ms per round of "
                                f"variants) would exceed --case-budget-s {args.case_budget_s}")
    rec["timing"].update({"windows": n_windows, "timed_steps_per_variant": n_windows * window,
                          "warmup_estimate_ms_per_round": round(est, 3)})
    for w in range(n_windows):
        for v in list(active):
            try:
                gpu_window(v, env, plan["warmup"] + w * window, window)
            except Interrupted:
                raise
            except Exception as e:
                v.error = _err(e)
                rec["errors"][v.name] = v.error
                active.remove(v)
                print(f"  {v.name} failed while timed: {_short(e)}", flush=True)
                _try(syncs[v.family])
    for v in variants:
        runner_info(v)                      # a runner may change its mind after warm-up
        timer = "cupy.cuda.Event" if v.family == "ours" else "torch.cuda.Event"
        (rec["ours"] if v.family == "ours" else rec["torch"])[v.name] = summarize(v, timer)
    finish_record(rec)
    del variants, active
    env.free_memory()
    add_penalty_cost(rec, case, "cuda", env, args, plan, batches)
    scratchgan.set_conv_precision("fp32")
    if env.torch_cuda:
        set_torch_tf32(torch, False)
    env.free_memory()
    return rec


def run_cpu_case(case, env, args, plan):
    rec = new_record(case, "cpu", "fp32")
    rec["threads"] = args.threads
    if env.torch is not None:
        rec["torch_threads"] = env.torch.get_num_threads()
    probe = build_model(case, "cpu", args.seed)
    batch = batch_size_for(case, type(probe), args)
    fill_case_info(rec, probe, batch)
    batches = host_batches(case, probe, batch, args.n_batches, args.seed)
    del probe
    variants = make_ours_variants(case, "cpu", ["eager"], env, batches, args, rec)
    variants += make_torch_variants(case, "cpu", env, batches, args, rec)
    for v in variants:
        v.read_every_step = True
    active = warm_all(variants, plan, rec, lambda v: (lambda: None), gpu=False)
    rec["timing"] = {"warmup": plan["warmup"], "repeats": plan["steps"],
                     "interleaved": "step by step"}
    for i in range(plan["steps"]):
        for v in list(active):
            try:
                t0 = time.perf_counter()
                logs = v.call(plan["warmup"] + i)
                losses = read_losses(logs)
                dt = (time.perf_counter() - t0) * 1e3
                v.ms.append(dt)
                v.host_ms.append(dt)
                v.wall_ms.append(dt)
                v.last_losses = losses
            except Interrupted:
                raise
            except Exception as e:
                v.error = _err(e)
                rec["errors"][v.name] = v.error
                active.remove(v)
                print(f"  {v.name} failed while timed: {_short(e)}", flush=True)
    for v in variants:
        (rec["ours"] if v.family == "ours" else rec["torch"])[v.name] = summarize(v, "perf_counter")
    rec["notes"].append("cpu: execution is synchronous and every step's losses are read, so "
                        "torch eager and torch eager+sync are one measurement (torch_eager)")
    finish_record(rec)
    del variants, active
    gc.collect()
    add_penalty_cost(rec, case, "cpu", env, args, plan, batches)
    gc.collect()
    return rec


# ----------------------------------------------------------------------------- penalty cost
class CriticUpdate:
    """Model-like wrapper whose ``train_step(x, y=None)`` is one critic update of a WGAN-GP
    model: with the penalty (``WGANGP.discriminator_grads``) or without (``WGAN``'s: λ = 0,
    no ε, x̂ or second-order pass), then ``opt_D.step()``. It has what
    ``scratchgan.runtime.StepRunner`` uses (``step``, ``graph_key``, ``apply_schedule``,
    ``optimizers``, ``networks``, ``clear_cache``), so the update can also run as a CUDA graph.
    """

    def __init__(self, model, penalty):
        from scratchgan.models.wgan import WGAN
        self.model, self.penalty, self.step = model, bool(penalty), 0
        self._plain = WGAN.discriminator_grads

    def train_step(self, x, y=None):
        m = self.model
        x = m._check_x(x)
        noise = m.sample_noise(x.shape[0])
        m.opt_D.zero_grad()
        logs = (m.discriminator_grads(x, noise) if self.penalty
                else self._plain(m, x, noise))
        m.opt_D.step()
        return logs

    @property
    def device(self):
        return self.model.device

    def graph_key(self):
        return ("critic_update", self.penalty)

    def apply_schedule(self):
        pass

    def optimizers(self):
        return self.model.optimizers()

    def networks(self):
        return self.model.networks()

    def clear_cache(self):
        self.model.clear_cache()


def make_penalty_variants(case, device, env, batches, args, pc):
    """Variants timing one critic update with and without the penalty (see the docstring)."""
    one = [(xs[:1], None) for xs, _ in batches]          # one minibatch of the case's batch
    out = []
    names = [("ours_gp", True, "eager"), ("ours_plain", False, "eager")]
    if device == "cuda" and env.StepRunner is not None and any(
            v in args.ours for v in ("runner_auto", "runner_graph")):
        names += [("ours_gp_graph", True, "auto"), ("ours_plain_graph", False, "auto")]
    for vname, pen, mode in names:
        try:
            model = build_model(case, device, args.seed)
            upd = CriticUpdate(model, pen)
            if mode == "eager":
                fn, keep = upd.train_step, (model, upd)
                info = {"call": f"critic update, penalty={pen}, eager"}
            else:
                runner = env.StepRunner(upd, mode=mode)
                fn, keep = runner, (model, upd, runner)
                info = {"call": f"critic update, penalty={pen}, StepRunner(mode={mode!r})"}
            out.append(Variant(vname, "ours", fn, ours_inputs(one, device, env.cp), info=info,
                               keep=keep))
        except Exception as e:
            pc["errors"][vname] = _err(e)
            print(f"  penalty cost {vname}: {_short(e)}", flush=True)
    if env.torch is None or env.twins is None or (device == "cuda" and not env.torch_cuda):
        pc["skipped"]["torch"] = "no torch twin here"
        return out
    try:
        twin = env.twins.make_twin(build_model(case, device, args.seed), device=device)
        tin = torch_inputs(one, device, env.torch, "single")
        for vname, pen in (("torch_gp", True), ("torch_plain", False)):
            def fn(x, y=None, _pen=pen):
                return twin.critic_update(x, penalty=_pen)
            info = {"call": f"twin.critic_update(x, penalty={pen})"}
            out.append(Variant(vname, "torch", fn, tin, read_every_step=device == "cpu",
                               info=info, keep=twin))
    except Exception as e:
        pc["errors"]["torch"] = _err(e)
        print(f"  penalty cost torch: {_short(e)}", flush=True)
    return out


def penalty_cost(case, device, env, args, plan, batches, n_windows=None):
    """Time one critic update with and without the gradient penalty; returns the record
    ``{"ms": {variant: ms}, "ratios": {...}, "variants": {...}, ...}``. Never raises."""
    pc = {"definition": "ms of one critic update with the gradient penalty / the same update "
                        "with λ = 0 and no penalty pass (ε, x̂, second-order backward skipped)",
          "batch_size": int(batches[0][0][0].shape[0]), "ms": {}, "ratios": {}, "variants": {},
          "errors": {}, "skipped": {}}
    try:
        variants = make_penalty_variants(case, device, env, batches, args, pc)
        if device == "cuda":
            syncs = {"ours": env.cp.cuda.Device().synchronize,
                     "torch": env.torch.cuda.synchronize if env.torch_cuda else (lambda: None)}
        else:
            syncs = {"ours": lambda: None, "torch": lambda: None}
        active = []
        for v in variants:
            try:
                warm(v, max(plan["warmup"], 3 if device == "cuda" else 1), syncs[v.family])
                runner_info(v)
                active.append(v)
            except Interrupted:
                raise
            except Exception as e:
                v.error = pc["errors"][v.name] = _err(e)
                print(f"  penalty cost {v.name} warm-up failed: {_short(e)}", flush=True)
                _try(syncs[v.family])
        window = plan["window"]
        n = n_windows or max(1, math.ceil(plan["steps"] / window))
        pc["timing"] = {"window": window, "windows": n}
        for w in range(n):
            for v in list(active):
                try:
                    if device == "cuda":
                        gpu_window(v, env, 1000 + w * window, window)
                    else:
                        t0 = time.perf_counter()
                        losses = read_losses(v.call(1000 + w))
                        v.ms.append((time.perf_counter() - t0) * 1e3)
                        v.last_losses = losses
                except Interrupted:
                    raise
                except Exception as e:
                    v.error = pc["errors"][v.name] = _err(e)
                    active.remove(v)
                    print(f"  penalty cost {v.name} failed while timed: {_short(e)}", flush=True)
                    _try(syncs[v.family])
        for v in variants:
            runner_info(v)
            d = summarize(v, "perf_counter" if device == "cpu" else
                          ("cupy.cuda.Event" if v.family == "ours" else "torch.cuda.Event"))
            d.pop("raw_ms", None)
            pc["variants"][v.name] = d
            if d["ms_per_step"] is not None:
                pc["ms"][v.name] = d["ms_per_step"]
        ms = pc["ms"]
        for fam, gp, plain in (("ours", "ours_gp", "ours_plain"),
                               ("ours_graph", "ours_gp_graph", "ours_plain_graph"),
                               ("torch", "torch_gp", "torch_plain")):
            if ms.get(gp) and ms.get(plain):
                pc["ratios"][fam] = ms[gp] / ms[plain]
        if ms.get("torch_gp"):
            for fam in ("ours_gp", "ours_gp_graph"):
                if ms.get(fam):
                    pc["ratios"][f"{fam}/torch_gp"] = ms[fam] / ms["torch_gp"]
        for v in ("ours_gp_graph", "ours_plain_graph"):
            mode = pc["variants"].get(v, {}).get("mode_used")
            if mode and mode != "graph":
                pc["notes"] = pc.get("notes", []) + [
                    f"{v} ran {mode}: {pc['variants'][v].get('reason')}"]
        del variants, active
    except Interrupted:
        raise
    except Exception as e:
        pc["errors"]["penalty_cost"] = _err(e)
        print(f"  penalty cost failed: {_short(e)}", flush=True)
    return pc


def penalty_note(pc):
    r = pc.get("ratios", {})
    parts = [f"{k} {r[k]:.2f}x" for k in ("ours", "ours_graph", "torch") if k in r]
    if not parts:
        return None
    ms = pc.get("ms", {})
    detail = ", ".join(f"{k} {v:.3f} ms" for k, v in ms.items())
    return ("penalty cost (critic update with GP / without, ms ratio): " + ", ".join(parts)
            + f" [{detail}]")


def add_penalty_cost(rec, case, device, env, args, plan, batches):
    if case not in PENALTY_CASES:
        return
    print("  penalty cost: one critic update with and without the gradient penalty ...",
          flush=True)
    n = rec.get("timing", {}).get("windows") if device == "cuda" else None
    pc = penalty_cost(case, device, env, args, plan, batches, n)
    rec["penalty_cost"] = pc
    if rec.get("summary") is not None:
        rec["summary"]["penalty_cost"] = dict(pc.get("ratios", {}))
    note = penalty_note(pc)
    if note:
        rec["notes"].append(note)
    if pc["errors"]:
        rec["notes"].append("penalty cost errors: " + ", ".join(sorted(pc["errors"])))


def _try(f):
    try:
        f()
    except Exception:
        pass


def new_record(case, device, precision):
    name, shape, hyper, kind = CASES[case]
    t, tkey = target_for(case, device, precision)
    return {"case": case, "model": name, "device": device, "precision": precision,
            "kind": kind, "data_shape": list(shape), "hyper": dict(hyper),
            "target": t, "target_text": TARGET_TEXT.get(tkey),
            "ours": {}, "torch": {}, "errors": {}, "skipped_variants": {}, "notes": [],
            "status": "running"}


def fill_case_info(rec, model, batch):
    rec["batch_size"] = batch
    rec["paper_batch_size"] = type(model).defaults.get("batch_size")
    rec["batches_per_step"] = int(model.batches_per_step())
    rec["examples_per_step"] = batch * rec["batches_per_step"]
    rec["labels"] = uses_labels(model)
    rec["data_range"] = list(getattr(model, "data_range", None) or (0.0, 1.0))
    try:
        rec["parameters"] = model.num_parameters()
    except Exception:
        pass


def _ms(d):
    return None if not d else d.get("ms_per_step")


def finish_record(rec):
    """Summary of a case: the headline times, ratios, host times and the target verdict."""
    ours = {k: _ms(v) for k, v in rec["ours"].items() if _ms(v) is not None}
    te = _ms(rec["torch"].get("torch_eager"))
    ts = _ms(rec["torch"].get("torch_eager_sync"))
    graph = rec["ours"].get("runner_auto") or rec["ours"].get("runner_graph") or {}
    s = {"ours_eager_ms": ours.get("eager"),
         "ours_runner_eager_ms": ours.get("runner_eager"),
         "ours_graph_ms": _ms(graph),
         "graph_variant": ("runner_auto" if "runner_auto" in rec["ours"] else
                           "runner_graph" if "runner_graph" in rec["ours"] else None),
         "graph_mode_used": graph.get("mode_used"), "graph_fallback_reason": graph.get("reason"),
         "torch_eager_ms": te, "torch_eager_sync_ms": ts}
    if ours:
        best = min(ours, key=ours.get)
        s["best_ours_variant"], s["best_ours_ms"] = best, ours[best]
    else:
        s["best_ours_variant"] = s["best_ours_ms"] = None
    ratios = {}
    for vname, ms in ours.items():
        if te:
            ratios[f"{vname}/torch_eager"] = ms / te
        if ts:
            ratios[f"{vname}/torch_eager_sync"] = ms / ts
    if s["best_ours_ms"] is not None:
        if te:
            ratios["best/torch_eager"] = s["best_ours_ms"] / te
        if ts:
            ratios["best/torch_eager_sync"] = s["best_ours_ms"] / ts
    s["ratios"] = ratios
    s["ratio_for_target"] = ratios.get("best/torch_eager")
    s["host_ms_per_step"] = {k: v.get("host_ms_per_step")
                             for k, v in {**rec["ours"], **rec["torch"]}.items()}
    if rec["target"] is None:
        s["met"] = None
        s["verdict"] = "no target"
    elif s["ratio_for_target"] is None:
        s["met"] = None
        s["verdict"] = "not measured"
    else:
        s["met"] = bool(s["ratio_for_target"] <= rec["target"])
        s["verdict"] = "met" if s["met"] else "missed"
    rec["summary"] = s
    if not ours and not rec["torch"]:
        rec["status"] = "failed"
    elif rec["errors"] or s["ratio_for_target"] is None:
        rec["status"] = "partial"
    else:
        rec["status"] = "ok"
    for name, d in {**rec["ours"], **rec["torch"]}.items():
        if d.get("last_losses") and not d.get("losses_finite", True):
            rec["notes"].append(f"{name}: non-finite loss at the end of timing")


# ----------------------------------------------------------------------------- environment
def versions(env):
    v = {"python": platform.python_version(), "numpy": np.__version__,
         "scratchgan": getattr(scratchgan, "__version__", None)}
    if env.cp is not None:
        cp = env.cp
        v["cupy"] = cp.__version__
        for key, f in (("cuda_runtime", cp.cuda.runtime.runtimeGetVersion),
                       ("cuda_driver", cp.cuda.runtime.driverGetVersion)):
            try:
                v[key] = int(f())
            except Exception as e:
                v[key] = _short(e)
    else:
        try:
            import cupy
            v["cupy"] = cupy.__version__
        except Exception:
            v["cupy"] = None
    if env.torch is not None:
        t = env.torch
        v["torch"] = t.__version__
        v["torch_cuda"] = getattr(t.version, "cuda", None)
        try:
            v["cudnn"] = t.backends.cudnn.version() if env.torch_cuda else None
        except Exception:
            v["cudnn"] = None
    else:
        v["torch"] = None
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout
        v["git_commit"] = head or None
        v["git_dirty_files"] = len([ln for ln in dirty.splitlines() if ln.strip()])
    except Exception:
        v["git_commit"] = None
    return v


def machine(env):
    m = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
         "affinity_cores": (len(os.sched_getaffinity(0))
                            if hasattr(os, "sched_getaffinity") else None),
         "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                       "OPENBLAS_NUM_THREADS")}}
    try:
        with open("/proc/cpuinfo") as f:
            m["cpu_model"] = sorted({ln.split(":", 1)[1].strip() for ln in f
                                     if ln.startswith("model name")})
    except OSError:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        m["numpy_blas"] = cfg.get("Build Dependencies", {}).get("blas")
        m["numpy_simd"] = cfg.get("SIMD Extensions")
    except Exception:
        pass
    if env.torch is not None:
        try:
            m["torch_threads"] = env.torch.get_num_threads()
            m["torch_mkldnn"] = bool(env.torch.backends.mkldnn.is_available())
        except Exception:
            pass
    if env.cp is not None:
        try:
            p = env.cp.cuda.runtime.getDeviceProperties(env.cp.cuda.Device().id)
            m["gpu"] = env.gpu_name()
            m["gpu_memory_gib"] = round(p.get("totalGlobalMem", 0) / 2**30, 1)
            m["gpu_sms"] = p.get("multiProcessorCount")
            m["gpu_cc"] = f"{p.get('major')}.{p.get('minor')}"
        except Exception as e:
            m["gpu"] = f"unknown ({_short(e)})"
    return m


# ----------------------------------------------------------------------------- output
def _f(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def table_md(cases):
    head = ("| model | device | prec | batch | ours eager ms | ours graph ms (mode) | torch ms | "
            "torch+sync ms | best/torch | best/torch+sync | target | verdict | host ms/step "
            "ours eager / graph / torch |")
    lines = [head, "|" + "---|" * 13]
    for r in cases:
        s = r.get("summary") or {}
        if r.get("status") in ("skipped", "failed", "interrupted") and not s:
            err = r.get("error") or r.get("status")
            lines.append(f"| {r['case']} | {r['device']} | {r['precision']} | – | "
                         f"{r['status']}: {str(err).splitlines()[0][:60]} | | | | | | | | |")
            continue
        mode = s.get("graph_mode_used")
        g = _f(s.get("ours_graph_ms")) + (f" ({mode})" if mode else "")
        h = s.get("host_ms_per_step", {})
        hg = h.get(s.get("graph_variant")) if s.get("graph_variant") else None
        ratio = s.get("ratios", {})
        verdict = s.get("verdict", "")
        if r.get("errors"):
            verdict += " (errors: " + ", ".join(sorted(r["errors"])) + ")"
        lines.append(
            f"| {r['case']} | {r['device']} | {r['precision']} | {r.get('batch_size', '–')} | "
            f"{_f(s.get('ours_eager_ms'))} | {g} | {_f(s.get('torch_eager_ms'))} | "
            f"{_f(s.get('torch_eager_sync_ms'))} | {_f(ratio.get('best/torch_eager'), 3)} | "
            f"{_f(ratio.get('best/torch_eager_sync'), 3)} | "
            f"{'≤ ' + str(r['target']) if r.get('target') is not None else '–'} | {verdict} | "
            f"{_f(h.get('eager'))} / {_f(hg)} / {_f(h.get('torch_eager'))} |")
    pen = [r for r in cases if r.get("penalty_cost")]
    if pen:
        lines += ["", "Gradient penalty cost: ms of one critic update with the penalty (gp) and "
                  "the same update with λ = 0 and no penalty pass (plain); ratio = gp / plain.",
                  "", "| model | device | prec | batch | ours gp | ours plain | ours ratio | "
                  "ours graph gp | ours graph plain | ours graph ratio | torch gp | torch plain | "
                  "torch ratio |", "|" + "---|" * 13]
        for r in pen:
            pc = r["penalty_cost"]
            ms, ra = pc.get("ms", {}), pc.get("ratios", {})
            lines.append(
                f"| {r['case']} | {r['device']} | {r['precision']} | {pc.get('batch_size', '–')} | "
                f"{_f(ms.get('ours_gp'), 3)} | {_f(ms.get('ours_plain'), 3)} | "
                f"{_f(ra.get('ours'))} | {_f(ms.get('ours_gp_graph'), 3)} | "
                f"{_f(ms.get('ours_plain_graph'), 3)} | {_f(ra.get('ours_graph'))} | "
                f"{_f(ms.get('torch_gp'), 3)} | {_f(ms.get('torch_plain'), 3)} | "
                f"{_f(ra.get('torch'))} |")
    return "\n".join(lines)


def out_paths(args, env, want_cuda, want_cpu, date):
    gpu = env.gpu_name() if want_cuda else None
    parts = []
    if gpu:
        parts.append(re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-") or "gpu")
    if want_cpu or not gpu:
        parts.append("cpu")
    if args.tag:
        parts.append(re.sub(r"[^A-Za-z0-9_.]+", "-", args.tag).strip("-"))
    stem = "step-" + "-".join(parts) + f"-{date}" + ("-quick" if args.quick else "")
    d = pathlib.Path(args.out_dir)
    d.mkdir(parents=True, exist_ok=True)
    n, base = 1, stem
    while (d / f"{stem}.json").exists() or (d / f"{stem}.md").exists():
        n += 1
        stem = f"{base}-{n}"
    return d / f"{stem}.json", d / f"{stem}.md"


def write(doc, jpath, mpath):
    doc["table_md"] = table_md(doc["cases"])
    tmp = jpath.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    os.replace(tmp, jpath)
    md = [f"# Whole training step: scratchgan vs PyTorch ({doc['date']})", "",
          f"Command: `{doc['command']}`  ", f"Device: {doc['device_name']}; "
          f"versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()
                                    if k in ("numpy", "cupy", "torch", "cuda_runtime", "cudnn")),
          "", "Median ms per step (GPU: CUDA events over windows of "
          f"{doc['settings']['window']} steps, losses read once per window; CPU: perf_counter, "
          f"{doc['settings']['threads']} threads). best = fastest scratchgan variant; "
          "torch = twin eager, losses read once per window; torch+sync = float(loss) every "
          "step.", "", doc["table_md"], ""]
    tmp = mpath.with_suffix(".md.tmp")
    tmp.write_text("\n".join(md))
    os.replace(tmp, mpath)


def plan_for(device, args):
    if device == "cuda":
        steps = args.steps if args.steps is not None else (4 if args.quick else 200)
        warmup = args.warmup if args.warmup is not None else (2 if args.quick else 10)
        return {"steps": steps, "warmup": warmup, "window": max(1, min(args.window, steps))}
    steps = args.repeats if args.repeats is not None else (
        args.steps if args.steps is not None else (4 if args.quick else 30))
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    return {"steps": steps, "warmup": warmup, "window": 1}


def main(args):
    t_start = time.perf_counter()
    want = args.device
    if want is None:
        want = "cuda" if scratchgan.cupy_available() else "cpu"
    want_cuda, want_cpu = want in ("cuda", "both"), want in ("cpu", "both")
    env = Env(want_cuda, want_cpu, args.threads, args.no_torch)
    date = datetime.date.today().isoformat()
    jpath, mpath = out_paths(args, env, want_cuda and env.cp is not None, want_cpu, date)
    plans = {d: plan_for(d, args) for d in ("cuda", "cpu")}
    warnings_ = []
    if not args.quick:
        if want_cuda and (plans["cuda"]["warmup"] < 10 or plans["cuda"]["steps"] < 30):
            warnings_.append("GPU: fewer than 10 warm-up or 30 timed steps")
        if want_cpu and plans["cpu"]["steps"] < 30:
            warnings_.append("CPU: fewer than 30 timed steps")
    doc = {"benchmark": "bench_step", "schema": 1,
           "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
           "argv": sys.argv[1:], "date": date,
           "started": datetime.datetime.now().isoformat(timespec="seconds"),
           "device_name": " + ".join(x for x in (env.gpu_name() if want_cuda else None,
                                                "cpu" if want_cpu else None) if x),
           "quick": bool(args.quick), "versions": versions(env), "machine": machine(env),
           "availability": env.avail,
           "settings": {"device": want, "models": args.cases, "precisions": args.precisions,
                        "ours_variants_gpu": args.ours, "batch_policy": args.batch_policy,
                        "batch": args.batch, "n_batches_rotated": args.n_batches,
                        "seed": args.seed, "threads": args.threads, "window": args.window,
                        "plan": {d: plans[d] for d in ("cuda", "cpu")
                                 if (d == "cuda" and want_cuda) or (d == "cpu" and want_cpu)},
                        "dtype": "float32",
                        "cudnn_benchmark": bool(env.torch_cuda and want_cuda and
                                                env.torch.backends.cudnn.benchmark),
                        "timing": "GPU: CUDA events around windows of `window` steps; the "
                                  "window ends by reading the last step's losses with float() "
                                  "(the Trainer's log interval) and a device synchronise; "
                                  "median over windows of event ms / window. host ms: "
                                  "perf_counter around the step calls before any read-back. "
                                  "CPU: perf_counter per step, losses read every step, median. "
                                  "Variants interleaved window by window (CPU: step by step).",
                        "labels": "int64, moved to the device before timing (as the Trainer)",
                        "data": "uniform over the model's data range, fixed seed per case"},
           "targets": TARGET_TEXT, "warnings": warnings_,
           "loadavg_1_5_15min_start": loadavg(), "cases": []}
    if not env.avail["runtime"]["available"]:
        doc["warnings"].append("scratchgan.runtime does not import: ours timed eager only")
    if not env.avail.get("torch_twins", {}).get("available"):
        doc["warnings"].append("scratchgan.testing (the PyTorch twins) unavailable: no PyTorch rows ("
                               + str(env.avail.get("torch_twins", {}).get("error")) + ")")
    for w in doc["warnings"]:
        print("warning:", w, flush=True)

    todo = []
    if want_cuda:
        todo += [(c, "cuda", p) for c in args.cases for p in args.precisions]
    if want_cpu:
        todo += [(c, "cpu", "fp32") for c in args.cases]
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    interrupted = None
    try:
        for case, device, prec in todo:
            if interrupted or (args.budget_s is not None and
                               time.perf_counter() - t_start > args.budget_s):
                why = interrupted or f"time budget of {args.budget_s} s spent"
                doc["cases"].append({**new_record(case, device, prec), "status": "skipped",
                                     "error": why})
                continue
            if device == "cuda" and env.cp is None:
                doc["cases"].append({**new_record(case, device, prec), "status": "failed",
                                     "error": "CuPy / CUDA unavailable: "
                                              + str(env.avail.get("cupy", {}).get("error"))})
                write(doc, jpath, mpath)
                continue
            print(f"[{time.perf_counter() - t_start:7.1f} s] {case} {device} {prec} ...",
                  flush=True)
            t0, load0 = time.perf_counter(), loadavg()
            try:
                rec = (run_gpu_case(case, prec, env, args, plans["cuda"]) if device == "cuda"
                       else run_cpu_case(case, env, args, plans["cpu"]))
            except Interrupted as e:
                interrupted = f"interrupted ({e})"
                rec = {**new_record(case, device, prec), "status": "interrupted",
                       "error": interrupted}
            except Exception as e:
                rec = {**new_record(case, device, prec), "status": "failed", "error": _err(e)}
                print(f"  case failed: {_short(e)}", flush=True)
                if device == "cuda":
                    _try(lambda: scratchgan.set_conv_precision("fp32"))
                    _try(env.free_memory)
            rec["case_seconds"] = round(time.perf_counter() - t0, 2)
            rec["loadavg_1_5_15min"] = {"before": load0, "after": loadavg()}
            doc["cases"].append(rec)
            print("  " + one_line(rec), flush=True)
            write(doc, jpath, mpath)
    finally:
        signal.signal(signal.SIGTERM, old)
        doc["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        doc["total_seconds"] = round(time.perf_counter() - t_start, 1)
        write(doc, jpath, mpath)
    print(f"\nwrote {jpath}\nwrote {mpath}\n")
    print(doc["table_md"], flush=True)
    return doc


def one_line(rec):
    s = rec.get("summary")
    if not s:
        return f"{rec['status']}: {str(rec.get('error', '')).splitlines()[0][:200]}"
    parts = [f"{k} {v['ms_per_step']:.3f} ms" for k, v in {**rec["ours"], **rec["torch"]}.items()
             if v.get("ms_per_step") is not None]
    r = s.get("ratio_for_target")
    parts.append(f"best/torch {r:.3f}" if r is not None else "best/torch –")
    parts.append(s.get("verdict", ""))
    if s.get("graph_mode_used"):
        parts.append(f"graph mode_used={s['graph_mode_used']}")
    if rec["errors"]:
        parts.append("errors: " + ", ".join(rec["errors"]))
    pc = rec.get("penalty_cost")
    if pc:
        r = pc.get("ratios", {})
        parts.append("penalty cost gp/plain: " + (", ".join(
            f"{k} {r[k]:.2f}x" for k in ("ours", "ours_graph", "torch") if k in r) or "–"))
    return " | ".join(parts)


if __name__ == "__main__":
    main(ARGS)
