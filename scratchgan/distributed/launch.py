"""Start one process per GPU and watch them:

    python -m scratchgan.distributed.launch --nproc 2 -- scratchgan train dcgan --epochs 5
    python -m scratchgan.distributed.launch --nproc 2 -- python my_script.py

Each child gets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (the variables torchrun
sets), CUDA_VISIBLE_DEVICES unchanged (a rank selects GPU LOCAL_RANK) and
NCCL_NVLS_ENABLE=0 unless already set. The launcher polls the children: when one exits with
an error, it terminates the others (SIGTERM, then SIGKILL after ``--grace`` seconds), names the
failed rank and exits with its status, so no rank is left waiting forever in a collective.
A command that starts with ``scratchgan`` runs as ``python -m scratchgan``.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

__all__ = ["free_port", "child_env", "launch", "main"]


def free_port(addr="127.0.0.1"):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def child_env(rank, world_size, addr, port, base=None):
    env = dict(os.environ if base is None else base)
    env.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
               MASTER_ADDR=addr, MASTER_PORT=str(port))
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    return env


def launch(cmd, nproc, addr="127.0.0.1", port=None, grace=10.0, poll=0.2, log=print):
    """Run ``cmd`` (a list) as ``nproc`` ranks; returns the exit status (0 when all succeed)."""
    if nproc < 1:
        raise ValueError(f"launch: --nproc must be >= 1, got {nproc}")
    if not cmd:
        raise ValueError("launch: no command given (put it after --)")
    if cmd[0] == "scratchgan":
        cmd = [sys.executable, "-m", "scratchgan"] + list(cmd[1:])
    port = port or free_port(addr)
    procs = [subprocess.Popen(cmd, env=child_env(r, nproc, addr, port)) for r in range(nproc)]
    status = 0
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                r, c = failed[0]
                log(f"scratchgan.distributed.launch: rank {r} exited with status {c}; stopping "
                    f"the other ranks", file=sys.stderr)
                status = c
                break
            if all(c == 0 for c in codes):
                return 0
            time.sleep(poll)
    except KeyboardInterrupt:
        status = 130
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return status


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m scratchgan.distributed.launch",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", type=int, required=True, help="processes (one per GPU)")
    ap.add_argument("--master-addr", default="127.0.0.1")
    ap.add_argument("--master-port", type=int, default=None, help="default: a free port")
    ap.add_argument("--grace", type=float, default=10.0,
                    help="seconds between SIGTERM and SIGKILL when stopping ranks")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command of every rank")
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    try:
        return launch(cmd, args.nproc, args.master_addr, args.master_port, args.grace)
    except ValueError as e:
        ap.error(str(e))


if __name__ == "__main__":
    sys.exit(main())
