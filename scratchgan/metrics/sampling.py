"""Drawing a model's samples for evaluation: the one sampling helper every evaluator uses.

``generate_samples(model, n, rng)`` draws ``n`` samples through ``model.sample_noise`` and
``model.generate`` in chunks, on the model's device, and returns them as one host NumPy
array (or draws the latent with a function of the caller's). Labels (``labels=``) are passed to ``sample_noise`` for conditional models, a chunk at
a time. The random generator is the caller's: an evaluator hands it
``EvalContext.rng(stream)``, so the samples are a function of the run's seed and the stream.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy

__all__ = ["generate_samples", "pad_to"]


def generate_samples(model, n, rng, chunk=500, labels=None, noise=None):
    """``n`` samples of ``model`` (host NumPy), drawn ``chunk`` at a time from ``rng``.
    ``noise(m, rng, labels)``, when given, replaces ``model.sample_noise`` (a latent drawn
    from another distribution than the prior; ``labels`` is the chunk's or None)."""
    n, chunk = int(n), int(chunk)
    if n < 1:
        raise ValueError(f"generate_samples: n must be >= 1, got {n}")
    if chunk < 1:
        raise ValueError(f"generate_samples: chunk must be >= 1, got {chunk}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape[0] != n:
            raise ValueError(f"generate_samples: {labels.shape[0]} labels for {n} samples")
    out = []
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        lab = None if labels is None else labels[i:i + m]
        if noise is not None:
            z = noise(m, rng, lab)
        else:
            z = model.sample_noise(m, rng=rng, **({} if lab is None else {"labels": lab}))
        out.append(np.asarray(to_numpy(model.generate(z))))
    return np.concatenate(out)


def pad_to(images, size, value):
    """(N, C, H, W) images centred in ``size``×``size`` (``value`` around them): MNIST's
    28×28 in the 32×32 frame of ``mnist32``; images already of that size come back as they
    are."""
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"pad_to: expected (N, C, H, W) images, got shape {x.shape}")
    H, W = x.shape[2:]
    if (H, W) == (size, size):
        return x
    if H > size or W > size or (size - H) % 2 or (size - W) % 2:
        raise ValueError(f"pad_to: cannot centre {H}×{W} images in {size}×{size}")
    out = np.full(x.shape[:2] + (size, size), value, dtype=x.dtype)
    t, l = (size - H) // 2, (size - W) // 2
    out[:, :, t:t + H, l:l + W] = x
    return out
