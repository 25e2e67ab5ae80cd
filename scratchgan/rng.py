"""The project's random number generator.

Layer initialization, noise sampling and batching draw from one NumPy
``Generator`` so that ``manual_seed(s)`` makes a run reproducible and a
checkpoint can save and restore the exact stream (``get_state``/``set_state``).
GPU code draws on the host and copies, so CPU and GPU runs see the same numbers.
"""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the global generator to ``seed`` and return it."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative int seed, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    return _rng


def get_rng(rng=None) -> np.random.Generator:
    """``rng`` when given, otherwise the global generator."""
    return _rng if rng is None else rng


def get_state() -> dict:
    """The global generator's bit-generator state (a JSON-able dict)."""
    return _rng.bit_generator.state


def set_state(state: dict) -> None:
    _rng.bit_generator.state = state
