"""The evaluator registry: what a study's ``[[evaluations]]`` entries name.

A study (``scratchgan/studies/*.toml``) lists evaluations by name; the runner
(:mod:`scratchgan.reproduce`) looks each name up here and calls it on the model being
trained. Every evaluator has one signature::

    fn(ctx: EvalContext, **options) -> dict[str, float | int | list | str]

``options`` are the entry's ``options`` table, passed as keyword arguments; the returned
dict maps metric names (the keys a study's ``[[paper]]`` entries refer to as ``metric``)
to JSON-serialisable values. A metric with a spread returns it under ``NAME_std``
(for example ``parzen_ll`` and ``parzen_ll_std``).

Evaluators live in the metrics module of their family and register themselves with
:func:`evaluator`; this module imports nothing from ``scratchgan`` beyond NumPy-level
helpers, so metrics modules may import it without a cycle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import numpy as np

__all__ = ["EvalContext", "evaluator", "get_evaluator", "EVALUATORS"]


@dataclass
class EvalContext:
    """What an evaluator may read.

    model:   the :class:`scratchgan.models.base.GenerativeModel` being trained (its
             ``sample_noise``/``generate`` and networks; evaluators must not train it).
    data:    the study's data as a mapping with ``x_train``, ``y_train``, ``x_test``,
             ``y_test`` (NumPy arrays, ``y_*`` may be None) and ``name`` (the data set).
    seed:    the run's seed; an evaluator draws its randomness from
             ``np.random.default_rng([seed, stream])`` with a stream of its own.
    device:  "cpu" or "cuda".
    standin: True when ``data`` is the deterministic stand-in (a dry run); figures
             computed then are never written to the ledger.
    updates: the updates done when the evaluation runs.
    extras:  anything a study's runner hands to its evaluators by name (for example a
             trained classifier), so that an evaluator need not rebuild it.
    """

    model: Any
    data: Dict[str, Any]
    seed: int = 0
    device: str = "cpu"
    standin: bool = False
    updates: int = 0
    extras: Dict[str, Any] = field(default_factory=dict)

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([int(self.seed), int(stream)])


EVALUATORS: Dict[str, Callable[..., dict]] = {}


def evaluator(name: str) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Register ``fn`` under ``name`` (a name may be registered once)."""

    def register(fn: Callable[..., dict]) -> Callable[..., dict]:
        if name in EVALUATORS and EVALUATORS[name] is not fn:
            raise ValueError(f"evaluator {name!r} is registered twice "
                             f"({EVALUATORS[name].__module__} and {fn.__module__})")
        EVALUATORS[name] = fn
        return fn

    return register


def get_evaluator(name: str) -> Callable[..., dict]:
    try:
        return EVALUATORS[name]
    except KeyError:
        known = ", ".join(sorted(EVALUATORS)) or "none"
        raise KeyError(f"unknown evaluator {name!r}; registered: {known}") from None
