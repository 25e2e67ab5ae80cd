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

Toy mixtures (ALI's 25 Gaussians: :func:`responsibility_mode_count` and the ``toy-modes``
evaluator) are counted two ways, since they disagree on diffuse generators:

* **the paper's count** (Dumoulin et al. 2017, ``paper/adversarially_learned_inference.tex``):
  each sample is assigned to the mixture component of largest responsibility (equal weights
  and equal isotropic covariances: the nearest mean); a mode is dropped when no sample is
  assigned to it. A generator spreading its samples over the plane fills every cell;
* **the strict count** (PacGAN, ``dis_thre=3``): a mode counts when at least ``min_count``
  samples lie within 3 standard deviations of its mean
  (:func:`scratchgan.metrics.toy.mode_statistics`), reported with the fraction of all samples
  within 3σ of some mean.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from ..data.toy import TOY_DATASETS, toy_modes, toy_std
from .evaluators import EvalContext, evaluator
from .lenet_scores import mnist_classifier
from .sampling import generate_samples
from .toy import mode_statistics, modes_covered

__all__ = ["NUM_MODES", "KL_ONE_MODE", "mode_histogram", "mode_statistics_from_modes",
           "modes_of_digits", "classify_channels", "stacked_mnist_modes",
           "evaluate_stacked_mnist_modes", "responsibility_mode_count", "toy_modes_evaluator"]

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


# -- toy mixtures ---------------------------------------------------------------------------
def responsibility_mode_count(samples, centres):
    """The ALI paper's count: every sample assigned to its nearest centre (the component of
    largest responsibility of an equal-weight mixture with equal isotropic covariances).
    Returns ``(modes with at least one sample, counts per centre)``; the assignment is
    :func:`scratchgan.metrics.toy.modes_covered`'s."""
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim != 2 or not len(c):
        raise ValueError(f"responsibility_mode_count: expected centres (K, d) with K >= 1, got "
                         f"{c.shape}")
    return modes_covered(samples, c)


@evaluator("toy-modes")
def toy_modes_evaluator(ctx: EvalContext, n_samples=10_000, threshold=3.0, min_count=1,
                        suffix=""):
    """Mode counts of ``n_samples`` generated points on the study's toy mixture (its means and
    standard deviation from :mod:`scratchgan.data.toy`; noise from ``ctx.rng(7)``):
    ``modes_responsibility`` (the paper's count), ``modes_3sigma`` (modes with at least
    ``min_count`` samples within ``threshold`` standard deviations), ``within_3sigma_fraction``
    and ``samples_finite`` (0 when the generator gave NaN or inf: both counts are then 0).
    ``suffix`` is appended to every key (two protocols in one study: ``"_2500"``)."""
    name = ctx.data.get("name")
    if name not in TOY_DATASETS or name in ("swissroll",):
        raise ValueError(f"toy-modes: needs a toy mixture with known means "
                         f"({', '.join(t for t in TOY_DATASETS if t != 'swissroll')}), got "
                         f"{name!r}")
    if int(n_samples) < 1:
        raise ValueError(f"toy-modes: n_samples must be >= 1, got {n_samples}")
    m = ctx.model
    g = np.asarray(to_numpy(m.generate(m.sample_noise(int(n_samples), rng=ctx.rng(7)))),
                   dtype=np.float64).reshape(int(n_samples), -1)
    centres = toy_modes(name)
    if not np.all(np.isfinite(g)):
        out = {"modes_responsibility": 0, "modes_3sigma": 0, "within_3sigma_fraction": 0.0,
               "samples_finite": 0, "num_modes": len(centres)}
    else:
        covered, _ = responsibility_mode_count(g, centres)
        strict = mode_statistics(g, centres, toy_std(name), threshold=threshold,
                                 min_count=int(min_count))
        out = {"modes_responsibility": covered, "modes_3sigma": strict["modes_covered"],
               "within_3sigma_fraction": strict["high_quality_fraction"], "samples_finite": 1,
               "num_modes": len(centres)}
    return {k + suffix: v for k, v in out.items()}
