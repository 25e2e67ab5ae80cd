"""Data-parallel training on several GPUs: equivalence, failure, scaling.

    python -m scratchgan.distributed.launch --nproc 2 -- python benchmarks/bench_distributed.py equivalence --out OUT
    python benchmarks/bench_distributed.py failure --out OUT          # starts its own 2 ranks
    python benchmarks/bench_distributed.py scaling --out OUT          # 1 GPU, then 2 ranks

* equivalence: from the same weights, a 2-rank step with per-rank batch B/2 against the
  1-process step with batch B on rank 0's GPU (the same draws: each rank replays its half of
  the 1-process draws), FP32, for gan, wgan and dcgan with synchronised BatchNorm; the worst
  relative parameter difference after 3 steps.
* failure: two ranks train DCGAN with checkpoints every 5 steps; rank 1 kills itself
  (SIGKILL) at step 12; the launcher must stop rank 0 (blocked in an all-reduce) within its
  grace time, and the last checkpoint must load and resume in a single process.
* scaling: DCGAN-64 at per-GPU batch 128 on 1 and on 2 GPUs: images/s, parallel efficiency
  (target >= 90%) and the all-reduce time of one step against the step time.
Results: OUT/distributed-<what>.json (rank 0 writes).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_common import device_name, write_json  # noqa: E402
from scratchgan.distributed.replay import DrawRecorder, replay_slices  # noqa: E402


# WGAN's MNIST generator has BatchNorm: its data-parallel step equals the one-process step only
# with synchronised BatchNorm, as DCGAN's does
# one-process batches divisible by 8, so the same cases run on 2, 4 and 8 ranks (the GAN's
# paper batch is 100; 2026-11-30's 2-GPU figures used it)
CASES = {"gan": ("gan", (1, 28, 28), {}, (0, 1), 128),
         "wgan_sync_bn": ("wgan", (1, 28, 28), {}, (-1, 1), 64),
         "dcgan_sync_bn": ("dcgan", (1, 28, 28), {}, (-1, 1), 128)}


def equivalence_case(comm, name, shape, hyper, rr, B, dtype, sync_bn):
    """Three steps of one process on the whole batch against the same three steps split over
    the ranks (the same noise, replayed): the worst relative difference of any state entry."""
    import cupy as cp
    from scratchgan.distributed import convert_sync_batchnorm, data_parallel
    from scratchgan.models import get_model

    def build():
        return get_model(name)(shape, rng=5, device="cuda", dtype=np.dtype(dtype), **hyper)
    ref = build()
    rec = DrawRecorder(ref)
    g = np.random.default_rng(9)
    batches = [g.uniform(*rr, (B * ref.batches_per_step(),) + shape).astype(dtype)
               for _ in range(3)]
    for x in batches:
        ref.train_step(cp.asarray(x))
    m = build()
    if sync_bn:
        for net in m.networks().values():
            convert_sync_batchnorm(net, comm)
    data_parallel(m, comm)
    replay_slices(m, rec.calls, comm.rank, comm.world_size)
    k = m.batches_per_step()
    for x in batches:
        parts = np.split(x, k)
        mine = np.concatenate([np.split(p, comm.world_size)[comm.rank] for p in parts])
        m.train_step(cp.asarray(mine))
    worst, where = 0.0, None
    for n, net in m.networks().items():
        for key, v in net.state_dict().items():
            w = ref.networks()[n].state_dict()[key]
            rel = float(np.linalg.norm(v - w) / max(np.linalg.norm(w), 1e-30))
            if rel > worst:
                worst, where = rel, f"{n}.{key}"
    return worst, where


def equivalence(args):
    from scratchgan.distributed import init_from_env
    comm = init_from_env("cuda")
    out = {"gpu": device_name("cuda"), "world_size": comm.world_size, "steps": 3, "cases": {}}
    for case, (name, shape, hyper, rr, B) in CASES.items():
        out["cases"][case] = {"per_rank_batch": B // comm.world_size, "one_process_batch": B}
        for dtype in ("float64", "float32"):
            worst, where = equivalence_case(comm, name, shape, hyper, rr, B, dtype,
                                            sync_bn=case.endswith("sync_bn"))
            out["cases"][case][dtype] = {"worst_relative_parameter_difference": worst,
                                         "where": where}
            if comm.rank == 0:
                print(case, dtype, worst, where, flush=True)
    if comm.rank == 0:
        write(args.out, "equivalence", out)


def failure_rank(args):
    """One rank of the failure test (started by `failure`)."""
    from scratchgan.distributed import init_from_env
    from scratchgan.models import get_model
    from scratchgan.train import Trainer
    comm = init_from_env("cuda")
    m = get_model("dcgan")((1, 28, 28), rng=1, device="cuda", ngf=16, ndf=16)
    inner = m.train_step

    def step(x, y=None):
        if comm.rank == 1 and m.step == 12:
            os.kill(os.getpid(), signal.SIGKILL)
        return inner(x, y)
    m.train_step = step
    x = np.random.default_rng(0).uniform(-1, 1, (4096, 1, 28, 28)).astype(np.float32)
    Trainer(m, x, batch_size=32, steps=100000, out_dir=args.run, checkpoint_every=5,
            log_every=1, progress=False, comm=comm, config={"model": "dcgan"}).fit()


def failure(args):
    from scratchgan.checkpoint import load_latest_info
    from scratchgan.distributed.launch import launch
    run = pathlib.Path(args.out) / "failure-run"
    t0 = time.time()
    status = launch([sys.executable, __file__, "failure-rank", "--run", str(run)], 2, grace=10.0)
    stopped_s = time.time() - t0
    state, used, why = load_latest_info(run / "last.ckpt.npz")
    step = int(state["trainer"]["step"])
    from scratchgan.models import get_model
    from scratchgan.train import Trainer
    m = get_model("dcgan")((1, 28, 28), rng=7, device="cuda", ngf=16, ndf=16)
    x = np.random.default_rng(0).uniform(-1, 1, (4096, 1, 28, 28)).astype(np.float32)
    tr = Trainer(m, x, batch_size=32, steps=step + 2, out_dir=run, progress=False, resume=True)
    tr.fit()
    write(args.out, "failure", {"gpu": device_name("cuda"), "launcher_status": status,
                                "seconds_until_all_ranks_stopped": round(stopped_s, 1),
                                "killed_rank": 1, "killed_at_step": 12,
                                "last_checkpoint_step": step, "checkpoint_file": str(used),
                                "fallback_reason": why,
                                "single_process_resumed_to": int(m.step)})


def scaling_rank(args):
    import cupy as cp
    from scratchgan.distributed import init_from_env
    from scratchgan.models import get_model
    from scratchgan.nn.flat import flat_group_of
    comm = init_from_env("cuda")
    world = 1 if comm is None else comm.world_size
    m = get_model("dcgan")((3, 64, 64), rng=0, device="cuda")
    if comm is not None:
        from scratchgan.distributed import data_parallel
        data_parallel(m, comm)
    B = args.batch
    x = cp.asarray(np.random.default_rng(0).uniform(-1, 1, (B, 3, 64, 64)).astype(np.float32))
    for _ in range(args.warmup):
        m.train_step(x)
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(args.windows):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        for _ in range(args.steps):
            m.train_step(x)
        b.record()
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b) / args.steps)
    step_ms = float(np.median(times))
    ar_ms = None
    if comm is not None:
        bufs = [flat_group_of(p).grad for p in (m.G.parameters()[0], m.D.parameters()[0])]
        ts = []
        for _ in range(20):
            a, b = cp.cuda.Event(), cp.cuda.Event()
            a.record()
            for g in bufs:
                comm.all_reduce_mean(g)
            b.record()
            b.synchronize()
            ts.append(cp.cuda.get_elapsed_time(a, b))
        ar_ms = float(np.median(ts))
    if comm is None or comm.rank == 0:
        res = {"world_size": world, "per_gpu_batch": B, "step_ms": step_ms,
               "images_per_s": world * B / step_ms * 1000.0,
               "allreduce_ms_per_step": ar_ms,
               "gradient_values": int(sum(p.data.size for net in m.networks().values()
                                          for p in net.parameters()))}
        pathlib.Path(args.result).write_text(json.dumps(res))


def scaling(args):
    """1 GPU, then each N of --nproc (default 2; the 4/8-GPU issue runs --nproc 2 4 8)."""
    from scratchgan.distributed.launch import launch
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, __file__, "scaling-rank", "--batch", str(args.batch)]
    r1 = out / "scaling-1.json"
    subprocess.run(base + ["--result", str(r1)], check=True)
    one = json.loads(r1.read_text())
    rows = {}
    for n in args.nproc:
        rn = out / f"scaling-{n}.json"
        if launch(base + ["--result", str(rn)], n) != 0:
            raise SystemExit(f"the {n}-rank scaling run failed")
        res = json.loads(rn.read_text())
        eff = res["images_per_s"] / (n * one["images_per_s"])
        rows[str(n)] = dict(res, parallel_efficiency=eff,
                            verdict="met" if eff >= 0.9 else "missed")
    write(args.out, "scaling", {"gpu": device_name("cuda"),
                                "model": "dcgan 64x64 (paper's LSUN nets)",
                                "steps": "eager, FP32", "one_gpu": one, "ranks": rows,
                                "target": 0.9})


def write(out, what, obj):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    obj["date"] = time.strftime("%Y-%m-%d")
    obj["command"] = "python " + " ".join(sys.argv)
    write_json(out / f"distributed-{what}.json", obj)
    print(json.dumps(obj, indent=1), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["equivalence", "failure", "failure-rank", "scaling",
                                     "scaling-rank"])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--run", default=None)
    ap.add_argument("--result", default=None)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--nproc", type=int, nargs="+", default=[2], help="scaling: rank counts")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--windows", type=int, default=5)
    args = ap.parse_args(argv)
    {"equivalence": equivalence, "failure": failure, "failure-rank": failure_rank,
     "scaling": scaling, "scaling-rank": scaling_rank}[args.what](args)


if __name__ == "__main__":
    main()
