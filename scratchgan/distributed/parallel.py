"""Data parallelism below the models: their ``train_step`` runs unchanged on every rank.

:func:`data_parallel` prepares a model for ``comm`` (a :mod:`~scratchgan.distributed.comm`
communicator):

1. **Same start.** Every network's flat parameter buffer, every buffer (BatchNorm running
   statistics) and every optimizer state array is broadcast from rank 0 (:func:`sync_state`;
   the trainer calls it again after a resume).
2. **Averaged gradients.** Each optimizer's ``step`` first all-reduces (mean) the gradients it
   is about to apply: one collective per flat gradient buffer (one per network, see
   ``scratchgan.nn.flat``), plus one per parameter outside a flat group. Since every rank's
   loss is a mean over its own B examples and all ranks hold B, the mean of the ranks'
   gradients is the gradient of the loss over all W·B examples: a W-rank step with per-rank
   batch B is the 1-process step with batch W·B (up to the order of floating-point sums), for
   models whose networks treat examples independently (no BatchNorm, or the synchronised
   BatchNorm of :mod:`.syncbn`).
3. **Own noise.** Rank r > 0 draws from its own Philox stream: seed
   ``rank_seed(seed0, r)`` derived from rank 0's seed, same counter. The ranks draw the same
   shapes each step, so their counters stay equal and a checkpoint (rank 0's stream) restores
   every rank's stream: a run is reproducible for a given world size.

The collectives run on the current stream (NCCL) with no host synchronisation, so the step
stays asynchronous.
"""
from __future__ import annotations

from ..nn.flat import flat_group_of

__all__ = ["rank_seed", "sync_state", "data_parallel"]

_GOLDEN = 0x9E3779B97F4A7C15


def rank_seed(seed0: int, rank: int) -> int:
    """The Philox seed of ``rank`` given rank 0's (rank 0 keeps its own)."""
    return (int(seed0) + int(rank) * _GOLDEN) % (1 << 64)


def _grad_buffers(opt):
    """The arrays whose mean ``opt.step`` needs: each flat group's whole grad buffer once,
    then the grads of parameters outside any flat group."""
    seen, out = set(), []
    for p in opt.params:
        fl = flat_group_of(p)
        if fl is not None and fl.is_intact():
            if id(fl) not in seen:
                seen.add(id(fl))
                out.append(fl.grad)
        else:
            out.append(p.grad)
    return out


def sync_state(model, comm, root=0):
    """Broadcast parameters, buffers and optimizer state from ``root``; then give this rank
    its own noise stream (:func:`rank_seed`)."""
    for net in model.networks().values():
        fl = getattr(net, "_flat", None)
        if fl is not None and fl.is_intact():
            comm.broadcast(fl.data, root)
        else:
            for p in net.parameters():
                comm.broadcast(p.data, root)
        for m in net.modules():
            for b in m._buffers:
                comm.broadcast(getattr(m, b), root)
    for opt in model.optimizers().values():
        for st in opt.state:
            for k in sorted(st):
                v = st[k]
                if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
                    comm.broadcast(v, root)
    import numpy as np
    from ..backend import to_device, to_numpy
    st = model.random.state_dict()                  # a device read: start and resume only
    a = np.array([st["seed"], st["counter"]], dtype=np.uint64)
    a = to_device(a, model.device) if model.device != "cpu" else a
    comm.broadcast(a, root)                         # rank 0's seed and counter
    seed0, counter = (int(v) for v in to_numpy(a))
    model.random.load_state_dict({"seed": rank_seed(seed0, comm.rank) if comm.rank else seed0,
                                  "counter": counter})


def data_parallel(model, comm):
    """Make ``model`` train data-parallel over ``comm`` (in place; returns it). Idempotent."""
    if getattr(model, "_comm", None) is comm:
        return model
    if getattr(model, "_comm", None) is not None:
        raise ValueError("data_parallel: the model is already attached to another communicator")
    model._comm = comm
    sync_state(model, comm)
    for opt in model.optimizers().values():
        inner = opt.step

        def step(inner=inner, opt=opt):
            for g in _grad_buffers(opt):
                comm.all_reduce_mean(g)       # the mean gradient over the ranks
            return inner()
        opt.step = step
    return model

