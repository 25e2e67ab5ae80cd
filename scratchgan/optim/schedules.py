"""Learning-rate schedules: functions of the update's step number that a model applies to its
optimizers' ``lr`` before each step (``GenerativeModel.apply_schedule``)."""
from __future__ import annotations

__all__ = ["linear_decay_second_half"]


def linear_decay_second_half(lr, step, total_steps):
    """The learning rate of update ``step`` (0-based) under pix2pix's and CycleGAN's schedule:
    ``lr`` for the first half of ``total_steps``, then falling linearly to 0 at
    ``total_steps``, and 0 after it. ``total_steps`` None or 0: ``lr`` throughout."""
    if not total_steps:
        return lr
    half = total_steps / 2.0
    return lr * max(0.0, min(1.0, 1.0 - (step - half) / max(half, 1.0)))
