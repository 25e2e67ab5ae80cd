"""The fade-in blend of Progressive GAN's growing networks: ``y = (1 − α) y_old + α y_new``, α a
number or a one-element device array (docs/derivations/progressive.md)."""
from __future__ import annotations


__all__ = ["fade_in_forward", "fade_in_backward"]


def fade_in_forward(y_old, y_new, alpha):
    """``y = (1 − α) y_old + α y_new``; α a number or a one-element array (a device value)."""
    if tuple(y_old.shape) != tuple(y_new.shape):
        raise ValueError(f"FadeIn: the two branches give shapes {tuple(y_old.shape)} (old) and "
                         f"{tuple(y_new.shape)} (new); expected equal shapes")
    return (1 - alpha) * y_old + alpha * y_new, alpha


def fade_in_backward(dy, alpha):
    """``(dy_old, dy_new) = ((1 − α) dy, α dy)``."""
    return (1 - alpha) * dy, alpha * dy
