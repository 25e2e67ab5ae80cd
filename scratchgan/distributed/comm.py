"""Communicators: who the ranks are and how they add up arrays.

A communicator has ``rank`` and ``world_size`` and three collectives, each **in place** on one
contiguous array of the rank's device:

* ``all_reduce_sum(a)`` / ``all_reduce_mean(a)``: every rank ends with the sum (mean) over
  the ranks of their arrays;
* ``broadcast(a, root=0)``: every rank ends with ``root``'s array;
* ``barrier()``.

Two implementations:

* :class:`NcclCommunicator`: one process per GPU, NCCL through ``cupy.cuda.nccl``; the
  collectives are enqueued on the current CuPy stream (no host synchronisation). The NCCL
  unique id travels from rank 0 to the others over a TCP rendezvous (:func:`rendezvous`).
* :class:`LocalGroup`: ``world_size`` ranks as threads of one process, on NumPy or CuPy arrays
  (CI has no GPU: the sharding, the data-parallel step and the synchronised BatchNorm are
  tested with it). Its collectives are exact: the sum is taken in rank order, in float64 for
  float32 inputs, so every rank gets the same bits.

Failure: a collective in a :class:`LocalGroup` waits at most ``timeout`` seconds for the other
ranks and then raises :class:`CommunicatorError`; for NCCL the launcher
(``python -m scratchgan.distributed.launch``) stops every rank when one fails.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np

__all__ = ["CommunicatorError", "Communicator", "LocalGroup", "rendezvous", "NcclCommunicator",
           "env_info"]


class CommunicatorError(RuntimeError):
    """A collective could not complete: another rank failed, or did not arrive in time."""


class Communicator:
    """The interface (see the module docstring)."""

    rank: int = 0
    world_size: int = 1

    def all_reduce_sum(self, a):  # pragma: no cover - abstract
        raise NotImplementedError

    def all_reduce_mean(self, a):
        self.all_reduce_sum(a)
        a *= a.dtype.type(1.0 / self.world_size)
        return a

    def broadcast(self, a, root=0):  # pragma: no cover - abstract
        raise NotImplementedError

    def barrier(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


# ----------------------------------------------------------------------------- threads
class LocalGroup:
    """``world_size`` ranks as threads of one process. ``group.comm(r)`` is rank r's
    communicator; ``group.run(fn)`` runs ``fn(comm)`` on every rank in its own thread and
    returns the results in rank order (re-raising the first rank's exception)."""

    def __init__(self, world_size, timeout=60.0):
        if not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"LocalGroup: world_size must be a positive int, got {world_size!r}")
        self.world_size = world_size
        self.timeout = float(timeout)
        self._barrier = threading.Barrier(world_size, timeout=self.timeout)
        self._slots = [None] * world_size
        self._result = None

    def comm(self, rank):
        return _LocalComm(self, rank)

    def run(self, fn):
        results, errors = [None] * self.world_size, [None] * self.world_size

        def body(r):
            try:
                results[r] = fn(self.comm(r))
            except BaseException as e:          # noqa: BLE001 - re-raised below
                errors[r] = e
                self._barrier.abort()           # the others stop waiting at once

        threads = [threading.Thread(target=body, args=(r,), daemon=True)
                   for r in range(self.world_size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first = next((e for e in errors if e is not None and not isinstance(e, CommunicatorError)),
                     next((e for e in errors if e is not None), None))
        if first is not None:
            raise first
        return results

    def _wait(self, rank):
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            raise CommunicatorError(
                f"rank {rank}: a collective did not complete: another rank failed or did not "
                f"arrive within {self.timeout:.0f} s") from None


class _LocalComm(Communicator):
    def __init__(self, group, rank):
        self.group, self.rank, self.world_size = group, int(rank), group.world_size

    def _exchange(self, a, combine):
        g = self.group
        g._slots[self.rank] = a
        g._wait(self.rank)                      # every rank has posted its array
        if self.rank == 0:
            g._result = combine(g._slots)
        g._wait(self.rank)                      # the result is ready
        a[...] = g._result
        g._wait(self.rank)                      # everyone has read it: slots may be reused
        return a

    def all_reduce_sum(self, a):
        def total(slots):
            from ..backend import get_array_module
            xp = get_array_module(a)
            acc = xp.zeros(a.shape, dtype=np.float64)
            for s in slots:                     # rank order: the same bits on every rank
                acc += s.astype(np.float64)
            return acc.astype(a.dtype)
        return self._exchange(a, total)

    def broadcast(self, a, root=0):
        return self._exchange(a, lambda slots: slots[root].copy())

    def barrier(self):
        self.group._wait(self.rank)


# ----------------------------------------------------------------------------- NCCL
def rendezvous(rank, world_size, payload=None, addr="127.0.0.1", port=29500, timeout=120.0):
    """Rank 0 serves ``payload`` (JSON) on ``addr:port`` to the ``world_size - 1`` others,
    which connect (retrying until ``timeout``) and return it. Rank 0 returns ``payload``."""
    deadline = time.time() + timeout
    if rank == 0:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((addr, int(port)))
        srv.listen(max(1, world_size - 1))
        srv.settimeout(max(1.0, deadline - time.time()))
        data = json.dumps(payload).encode()
        try:
            for _ in range(world_size - 1):
                try:
                    conn, _ = srv.accept()
                except socket.timeout:
                    raise CommunicatorError(f"rendezvous: rank 0 waited {timeout:.0f} s on "
                                            f"{addr}:{port} for the other ranks") from None
                with conn:
                    conn.sendall(len(data).to_bytes(8, "little") + data)
        finally:
            srv.close()
        return payload
    last = None
    while time.time() < deadline:
        try:
            with socket.create_connection((addr, int(port)), timeout=5.0) as c:
                n = int.from_bytes(_recv(c, 8), "little")
                return json.loads(_recv(c, n).decode())
        except OSError as e:
            last = e
            time.sleep(0.2)
    raise CommunicatorError(f"rendezvous: rank {rank} could not reach rank 0 at {addr}:{port} "
                            f"within {timeout:.0f} s ({last})")


def _recv(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise CommunicatorError("rendezvous: rank 0 closed the connection early")
        buf += chunk
    return buf


class NcclCommunicator(Communicator):
    """NCCL over the GPUs of the ranks (one process per GPU, the device already selected).

    ``NcclCommunicator(rank, world_size, addr, port)``: rank 0 makes the NCCL unique id and
    hands it to the others through :func:`rendezvous`. NVLink multicast (NVLS) is switched off
    (``NCCL_NVLS_ENABLE=0``) unless the environment says otherwise: the machines here refuse
    ``cuMulticastCreate``.
    """

    _DTYPES = {"float32": 7, "float64": 8, "int64": 4, "int32": 2, "uint64": 5}  # ncclDataType_t

    def __init__(self, rank, world_size, addr="127.0.0.1", port=29500, timeout=120.0):
        os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
        from cupy.cuda import nccl
        self.rank, self.world_size = int(rank), int(world_size)
        # the id travels as unsigned bytes: CuPy hands it out as bytes or as a tuple of
        # (signed) chars depending on its version, and takes it back the same way
        uid = [int(v) & 0xFF for v in nccl.get_unique_id()] if self.rank == 0 else None
        uid = rendezvous(self.rank, self.world_size, uid, addr, port, timeout)
        self._nccl = nccl
        try:
            self._comm = nccl.NcclCommunicator(self.world_size, bytes(uid), self.rank)
        except TypeError:
            signed = tuple(v - 256 if v > 127 else v for v in uid)
            self._comm = nccl.NcclCommunicator(self.world_size, signed, self.rank)

    def _args(self, a):
        import cupy as cp
        if not isinstance(a, cp.ndarray) or not a.flags.c_contiguous:
            raise TypeError("NcclCommunicator: collectives take C-contiguous CuPy arrays, got "
                            f"{type(a).__name__}")
        try:
            dt = self._DTYPES[a.dtype.name]
        except KeyError:
            raise TypeError(f"NcclCommunicator: unsupported dtype {a.dtype}") from None
        return a.data.ptr, a.size, dt, cp.cuda.get_current_stream().ptr

    def all_reduce_sum(self, a):
        ptr, n, dt, stream = self._args(a)
        self._comm.allReduce(ptr, ptr, n, dt, self._nccl.NCCL_SUM, stream)
        return a

    def broadcast(self, a, root=0):
        ptr, n, dt, stream = self._args(a)
        self._comm.bcast(ptr, n, dt, int(root), stream)
        return a

    def barrier(self):
        import cupy as cp
        one = cp.ones(1, dtype=cp.float32)
        self.all_reduce_sum(one)
        cp.cuda.get_current_stream().synchronize()


# ----------------------------------------------------------------------------- environment
def env_info(environ=None):
    """``{"rank", "world_size", "local_rank", "addr", "port"}`` from the variables a launcher
    sets (this package's launcher and torchrun: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
    MASTER_PORT; Open MPI: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK), or None when the
    process was not started as one of several ranks."""
    env = os.environ if environ is None else environ
    pairs = (("RANK", "WORLD_SIZE", "LOCAL_RANK"),
             ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"))
    for r, w, lr in pairs:
        if r in env and w in env:
            try:
                rank, world = int(env[r]), int(env[w])
                local = int(env.get(lr, rank))
            except ValueError:
                raise ValueError(f"distributed environment: {r}={env[r]!r}, {w}={env[w]!r} must "
                                 f"be integers") from None
            if not 0 <= rank < world:
                raise ValueError(f"distributed environment: rank {rank} outside [0, {world})")
            return {"rank": rank, "world_size": world, "local_rank": local,
                    "addr": env.get("MASTER_ADDR", "127.0.0.1"),
                    "port": int(env.get("MASTER_PORT", "29500"))}
    return None
