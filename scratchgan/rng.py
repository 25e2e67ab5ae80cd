"""The project's random number generators.

Layer initialization, noise sampling and batching draw from one NumPy
``Generator`` so that ``manual_seed(s)`` makes a run reproducible and a
checkpoint can save and restore the exact stream (``get_state``/``set_state``).
GPU code draws on the host and copies, so CPU and GPU runs see the same numbers.

A model may hold generators of its own (``model.rng``, a layer's); :func:`model_generators`
finds them all, for the trainer's checkpoints and the step runner's snapshots.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "get_rng", "get_state", "set_state", "model_generators"]

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


def model_generators(model) -> dict:
    """Every NumPy Generator that ``model`` or a layer of its networks (``model.networks()``)
    holds as an attribute, by path (``"model.rng"``, ``"D.3.rng"``); the global generator and
    repeats of one generator are left out."""
    found, seen = {}, {id(_rng)}

    def visit(obj, prefix):
        for k, v in list(vars(obj).items()):
            if isinstance(v, np.random.Generator) and id(v) not in seen:
                seen.add(id(v))
                found[f"{prefix}{k}"] = v

    visit(model, "model.")
    try:
        nets = model.networks()
    except Exception:
        nets = {}
    for net_name, net in nets.items():
        for mod_name, m in net.named_modules():
            visit(m, f"{net_name}.{mod_name + '.' if mod_name else ''}")
    return found
