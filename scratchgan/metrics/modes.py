"""Stacked-MNIST mode statistics: modes covered (of 1000) and KL to uniform.

The protocol of the discrete mode test (Metz et al. 2017; Karras et al. 2018, appendix
"MNIST-1K"): each generated 3-channel image is split into its channels, each channel is
classified as a digit by a pretrained MNIST classifier (ours: the LeNet of
:mod:`scratchgan.metrics.classifier`, fed the central 28×28 of a 32×32 channel, i.e. the pad
removed), and the triple of digits is the image's mode ``100 d_R + 10 d_G + d_B``. Over the
samples:

* **modes covered**: the number of the 1000 modes hit by at least one sample;
* **KL to uniform**: ``KL(q ‖ u) = Σ_k q_k log(q_k / (1/1000))`` with q the empirical mode
  histogram (0 log 0 = 0). It is 0 for a perfectly uniform histogram and ``log 1000 ≈ 6.91``
  when every sample falls in one mode. (The number of samples matters: 26,000 samples was the
  size of Metz et al.'s test; with fewer samples even a uniform generator misses modes.)
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from .evaluators import EvalContext, evaluator
from .lenet_scores import mnist_classifier
from .sampling import generate_samples

__all__ = ["NUM_MODES", "KL_ONE_MODE", "mode_histogram", "mode_statistics_from_modes",
           "modes_of_digits", "classify_channels", "stacked_mnist_modes",
           "evaluate_stacked_mnist_modes"]

__all__ = ["NUM_MODES", "mode_histogram", "mode_statistics_from_modes", "modes_of_digits",
           "classify_channels", "stacked_mnist_modes", "KL_ONE_MODE"]

NUM_MODES = 1000


def mode_histogram(modes, num_modes=NUM_MODES):
    """Counts of each mode in ``modes`` (ints in [0, num_modes))."""
    modes = np.asarray(to_numpy(modes)).astype(np.int64).ravel()
    if modes.size and (modes.min() < 0 or modes.max() >= num_modes):
        raise ValueError(f"mode_histogram: modes must lie in [0, {num_modes}), got range "
                         f"[{modes.min()}, {modes.max()}]")
    return np.bincount(modes, minlength=num_modes)


def mode_statistics_from_modes(modes, num_modes=NUM_MODES):
    """``{"modes": covered, "kl": KL(q ‖ uniform), "n": samples}`` from integer modes."""
    counts = mode_histogram(modes, num_modes)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("mode_statistics_from_modes: no samples")
    q = counts[counts > 0] / n
    kl = float(np.sum(q * np.log(q * num_modes)))
    return {"modes": int((counts > 0).sum()), "kl": kl, "n": n}


def modes_of_digits(digits):
    """(N, 3) digits -> modes ``100 d0 + 10 d1 + d2``."""
    d = np.asarray(digits).astype(np.int64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"modes_of_digits: expected (N, 3) digits, got shape {d.shape}")
    return 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]


def classify_channels(images, classifier=None, data_range=(-1.0, 1.0), batch_size=500,
                      return_confidence=False):
    """Per-channel LeNet digits of (N, 3, H, W) images (H, W = 28 or 32: a 32×32 channel is
    cropped to its central 28×28, undoing the padding of ``stacked-mnist``); returns (N, 3),
    and with ``return_confidence`` also the (N, 3) top-class probabilities."""
    from .classifier import load_classifier
    images = np.asarray(to_numpy(images))
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] not in ((28, 28), (32, 32)):
        raise ValueError(f"classify_channels: expected (N, 3, 28|32, 28|32) images, got "
                         f"{images.shape}")
    if images.shape[2] == 32:
        images = images[:, :, 2:30, 2:30]
    classifier = classifier or load_classifier()
    out = np.empty((images.shape[0], 3), dtype=np.int64)
    conf = np.empty((images.shape[0], 3), dtype=np.float64)
    for c in range(3):
        _, logp = classifier.features_and_log_probs(np.ascontiguousarray(images[:, c]),
                                                    batch_size, data_range)
        out[:, c] = logp.argmax(axis=1)
        conf[:, c] = np.exp(logp.max(axis=1))
    return (out, conf) if return_confidence else out


def stacked_mnist_modes(images, classifier=None, data_range=(-1.0, 1.0), batch_size=500,
                        confident=0.9):
    """Modes covered and KL to uniform of generated stacked-MNIST images, plus two checks that
    the samples look like digits at all (a classifier assigns *some* digit to noise, so noise
    covers many modes): ``confidence``, the mean top-class probability over channels and
    samples, and ``confident_fraction``, the fraction of samples whose three channels are
    each classified with probability >= ``confident``."""
    digits, conf = classify_channels(images, classifier, data_range, batch_size,
                                     return_confidence=True)
    st = mode_statistics_from_modes(modes_of_digits(digits))
    st["confidence"] = float(conf.mean())
    st["confident_fraction"] = float((conf >= confident).all(axis=1).mean())
    return st


#: KL to uniform of a histogram with all samples in one mode
KL_ONE_MODE = math.log(NUM_MODES)


@evaluator("stacked-mnist-modes")
def evaluate_stacked_mnist_modes(ctx: EvalContext, n_samples=10000, confident=0.9):
    """The MNIST-1K discrete mode test on ``n_samples`` samples of the model (the EMA generator
    for pggan: ``generate`` uses it): ``modes`` covered of 1000, ``kl`` to uniform, the mean
    top-class ``confidence`` and the ``confident_fraction`` of samples whose three channels
    are each classified with probability >= ``confident``; ``n`` the samples scored."""
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"stacked-mnist-modes: n_samples must be >= 1, got {n_samples}")
    if not 0.0 < float(confident) <= 1.0:
        raise ValueError(f"stacked-mnist-modes: confident must lie in (0, 1], got {confident}")
    samples = generate_samples(ctx.model, n_samples, ctx.rng(31))
    data_range = getattr(ctx.model, "data_range", None) or (-1.0, 1.0)
    return stacked_mnist_modes(samples, mnist_classifier(ctx), data_range=tuple(data_range),
                               confident=float(confident))
