"""Same noise, split over ranks: the tool behind the data-parallel equivalence checks.

A data-parallel step is meant to equal the one-process step on the whole batch. To compare them
exactly, the ranks must use the very noise the one-process step used, each its own slice.
:class:`DrawRecorder` records every draw of a model's device stream (``model.random``) during
the one-process steps. :func:`replay_slices` makes rank ``r`` of ``N`` draw rows
``[r*m, (r+1)*m)`` of each recorded draw (axis 0, ``m = rows / N``), in the same order.

Both patch the stream's methods on the instance, so ``train_step`` runs unchanged. This is
for checks and studies, not for training: a real run keeps its per-rank streams
(:func:`scratchgan.distributed.rank_seed`).
"""
from __future__ import annotations

__all__ = ["DRAWS", "DrawRecorder", "replay_slices"]

DRAWS = ("uniform", "normal", "random", "integers")


class DrawRecorder:
    """Wraps ``model.random``'s draws; ``calls`` lists ``(name, array)`` in draw order (the
    outermost call only: ``random()`` draws through ``uniform()``)."""

    def __init__(self, model):
        self.calls, self._depth = [], 0
        for name in DRAWS:
            inner = getattr(model.random, name)

            def wrap(*a, _inner=inner, _name=name, **k):
                self._depth += 1
                try:
                    out = _inner(*a, **k)
                finally:
                    self._depth -= 1
                if self._depth == 0:
                    self.calls.append((_name, out.copy()))
                return out
            setattr(model.random, name, wrap)


def replay_slices(model, calls, rank, world):
    """Make ``model.random`` hand out rank ``rank``'s slice of each recorded draw, in order;
    a draw of another kind than the recorded one raises (the steps diverged)."""
    if not 0 <= rank < world:
        raise ValueError(f"replay_slices: rank must be in [0, {world}), got {rank}")
    it = iter(calls)

    def make(name):
        def draw(*a, **k):
            try:
                got, arr = next(it)
            except StopIteration:
                raise RuntimeError(f"replay_slices: a '{name}' draw past the end of the "
                                   f"{len(calls)} recorded draws") from None
            if got != name:
                raise RuntimeError(f"replay_slices: expected a '{got}' draw (as recorded), "
                                   f"the step asked for '{name}'")
            m = arr.shape[0] // world
            part = arr[rank * m:(rank + 1) * m]
            out = k.get("out")
            if out is not None:
                out[...] = part
                return out
            return part.copy()
        return draw
    for name in DRAWS:
        setattr(model.random, name, make(name))
