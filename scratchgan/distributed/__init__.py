"""Data-parallel training over several GPUs (one process per GPU, NCCL), the ChainerMN way.

* :mod:`.comm`: communicators (NCCL; threads for tests on the CPU), the TCP rendezvous, the
  launcher's environment variables;
* :mod:`.parallel`: :func:`data_parallel` (broadcast from rank 0, gradient all-reduce before
  each optimizer step, per-rank noise streams);
* :mod:`.syncbn`: the synchronised BatchNorm (named option ``sync_bn``);
* :mod:`.launch`: ``python -m scratchgan.distributed.launch --nproc N -- COMMAND``.
* :mod:`.replay`: the one-process step's noise recorded and split over ranks, for the
  equivalence checks (``tests/test_distributed.py``, ``benchmarks/bench_distributed.py``).

The trainer takes the communicator (``Trainer(..., comm=comm)``): each rank reads a disjoint
shard of every epoch's shuffled data and rank 0 alone writes checkpoints, samples and metrics.
``scratchgan train MODEL --gpus N`` puts it together.
"""
from .comm import (Communicator, CommunicatorError, LocalGroup, NcclCommunicator, env_info,
                   rendezvous)
from .parallel import data_parallel, rank_seed, sync_state
from .syncbn import convert_sync_batchnorm


def init_from_env(device="cuda", environ=None, timeout=120.0):
    """The communicator of this process when a launcher started it as one of several ranks
    (see :func:`env_info`), else None. On 'cuda' it selects GPU ``LOCAL_RANK`` first."""
    info = env_info(environ)
    if info is None or info["world_size"] == 1:
        return None
    if device != "cuda":
        raise ValueError(f"distributed training needs device 'cuda' (NCCL); got device "
                         f"{device!r} with WORLD_SIZE={info['world_size']}")
    import cupy as cp
    n = cp.cuda.runtime.getDeviceCount()
    if info["local_rank"] >= n:
        raise ValueError(f"rank {info['rank']}: LOCAL_RANK {info['local_rank']} but only {n} "
                         f"GPU(s) are visible")
    cp.cuda.Device(info["local_rank"]).use()
    return NcclCommunicator(info["rank"], info["world_size"], info["addr"], info["port"],
                            timeout=timeout)


__all__ = ["Communicator", "CommunicatorError", "LocalGroup", "NcclCommunicator", "env_info",
           "rendezvous", "data_parallel", "rank_seed", "sync_state", "convert_sync_batchnorm",
           "init_from_env"]
