"""The CUDA-graph capture flag.

:class:`scratchgan.runtime.StepRunner` captures a whole training step inside
``with capture_guard():``; code that must not do host work during a capture
(:meth:`scratchgan.optim.Optimizer.step`, a model's schedule) asks :func:`capturing`.
"""
from __future__ import annotations

import contextlib
import threading

__all__ = ["capture_guard", "capturing"]

_capture = {"depth": 0}
_capture_lock = threading.Lock()


def capturing() -> bool:
    """True inside ``with capture_guard():`` (a CUDA graph capture is in progress)."""
    return _capture["depth"] > 0


@contextlib.contextmanager
def capture_guard():
    """Mark a CUDA graph capture in progress (process-wide; nests).

    Inside it ``Optimizer.step()`` does not upload hyperparameters (a host-to-device
    copy cannot be captured) and raises ``RuntimeError`` instead when one changed
    since the last ``sync_hyper()``, when its flat groups would have to be rebuilt,
    or when GPU parameters would take the per-parameter path. Call ``sync_hyper()``
    on every optimizer (or run one eager step) before capturing.
    """
    with _capture_lock:
        _capture["depth"] += 1
    try:
        yield
    finally:
        with _capture_lock:
            _capture["depth"] -= 1


