"""LeNet Inception Score and Fréchet distance of a model's MNIST-like samples, as evaluators.

Both use the shipped MNIST LeNet (:mod:`scratchgan.metrics.classifier`), handed over by the
runner as ``ctx.extras["mnist_classifier"]`` or loaded on the run's device. Images of 32×32
(``mnist32``, ``fashion-mnist32``, ``stacked-mnist`` channels) are cropped to their central
28×28, the frame the classifier was trained on; colour images are refused (score a channel at a
time). The Fréchet distance is taken against the study's test images (``x_test``), cropped the
same way.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .evaluators import EvalContext, evaluator
from .sampling import generate_samples

__all__ = ["crop_to_mnist", "mnist_classifier", "evaluate_lenet_fd", "evaluate_lenet_is"]


def crop_to_mnist(images):
    """(N, 1, H, W) or (N, H, W) images of 28 or 32 pixels -> (N, 1, 28, 28): the central
    28×28 of a 32×32 frame."""
    x = np.asarray(to_numpy(images))
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2:] not in ((28, 28), (32, 32)):
        raise ValueError(f"LeNet scores: expected (N, 1, 28|32, 28|32) images, got "
                         f"{np.asarray(images).shape}")
    return x if x.shape[2] == 28 else x[:, :, 2:30, 2:30]


def mnist_classifier(ctx):
    """The study's MNIST LeNet: ``ctx.extras["mnist_classifier"]`` when the runner hands one
    over, else the shipped weights on the run's device (kept in ``extras`` for the next
    evaluation)."""
    clf = ctx.extras.get("mnist_classifier")
    if clf is None:
        from .classifier import load_classifier
        clf = load_classifier(device=ctx.device)
        ctx.extras["mnist_classifier"] = clf
    return clf


def _samples(ctx, n_samples, stream):
    n = int(n_samples)
    if n < 2:
        raise ValueError(f"LeNet scores: n_samples must be >= 2, got {n_samples}")
    return crop_to_mnist(generate_samples(ctx.model, n, ctx.rng(stream)))


def _range(ctx):
    return tuple(getattr(ctx.model, "data_range", None) or (0.0, 1.0))


@evaluator("lenet-fd")
def evaluate_lenet_fd(ctx: EvalContext, n_samples=10000):
    """``fd_lenet``: the Fréchet distance between LeNet features of ``n_samples`` samples and
    of the study's test images."""
    from .classifier import mnist_frechet_distance
    ref = ctx.data.get("x_test")
    if ref is None:
        raise ValueError("lenet-fd: the study's data has no x_test to compare with")
    x = _samples(ctx, n_samples, 41)
    fd = mnist_frechet_distance(x, crop_to_mnist(ref), mnist_classifier(ctx),
                                data_range=_range(ctx),
                                reference_range=_range(ctx))
    return {"fd_lenet": float(fd)}


@evaluator("lenet-is")
def evaluate_lenet_is(ctx: EvalContext, n_samples=10000, splits=10):
    """``is_lenet`` and ``is_lenet_std``: the Inception Score of ``n_samples`` samples under
    the LeNet, mean and std over ``splits`` splits."""
    from .classifier import mnist_inception_score
    x = _samples(ctx, n_samples, 43)
    mean, std = mnist_inception_score(x, mnist_classifier(ctx), splits=int(splits),
                                      data_range=_range(ctx))
    return {"is_lenet": float(mean), "is_lenet_std": float(std)}
