"""1-nearest-neighbour classification by generated samples (the VAE-GAN authors' MNIST test)
and the test-set reconstruction error of an autoencoding model.

The protocol of ``cond_vaegan_mnist.py`` (andersbll/autoencoding_beyond_pixels): generate
labelled samples of a label-conditioned model, z drawn from a Gaussian with the mean and
covariance of the posterior means of the encoded training set and the labels cycling through
the training labels; fit a 1-NN classifier (Euclidean, pixels) on them; report its error on
the test images. The authors generate 1,000,000 samples and publish no value.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_device, to_numpy
from .evaluators import EvalContext, evaluator
from .sampling import generate_samples

__all__ = ["nn1_error", "posterior_gaussian", "evaluate_onenn_generated",
           "reconstruction_mse", "evaluate_recon_mse"]


def nn1_error(train_x, train_y, test_x, test_y, chunk=1000):
    """Test error of the 1-nearest-neighbour (Euclidean) classifier on flat arrays of one
    device: argmin_j ||t - x_j||² = argmin_j (||x_j||² − 2 t·x_j)."""
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("nn1_error: each set needs one label per example")
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"nn1_error: expected flat (N, D) arrays of one D, got "
                         f"{train_x.shape} and {test_x.shape}")
    xp = get_array_module(train_x)
    sq = (train_x * train_x).sum(axis=1)
    wrong = 0
    for i in range(0, len(test_x), chunk):
        t = test_x[i:i + chunk]
        d = sq[None, :] - 2.0 * (t @ train_x.T)
        pred = train_y[xp.argmin(d, axis=1)]
        wrong += int((pred != test_y[i:i + chunk]).sum())
    return wrong / len(test_x)


def posterior_gaussian(model, x, labels=None, chunk=2000):
    """Mean and covariance (float64, host) of the posterior means ``model.encode`` gives the
    images ``x`` (with their labels for a conditional model)."""
    mus = []
    for i in range(0, len(x), chunk):
        lab = None if labels is None else labels[i:i + chunk]
        mus.append(np.asarray(to_numpy(model.encode(model.to_model(x[i:i + chunk]), lab))))
    mus = np.concatenate(mus).astype(np.float64)
    return mus.mean(axis=0), np.cov(mus.T)


def _flat(a, device):
    a = np.ascontiguousarray(np.asarray(a, np.float32).reshape(len(a), -1))
    return a if device == "cpu" else to_device(a, device)


def _labels(a, device):
    a = np.asarray(a).astype(np.int64)
    return a if device == "cpu" else to_device(a, device)


@evaluator("onenn-generated")
def evaluate_onenn_generated(ctx: EvalContext, n_samples=100000, prior=False,
                             real_reference=False):
    """``onenn_error``: the test error of 1-NN fitted on ``n_samples`` generated labelled
    samples, z ~ N(mean, cov) of the training set's posterior means, labels cycling through
    the training labels (the authors' protocol). ``prior``: also ``onenn_error_prior``, z ~
    N(0, I). ``real_reference``: also ``onenn_error_real``, 1-NN on the real training
    images."""
    model = ctx.model
    if not getattr(model, "conditional", False) or not hasattr(model, "encode"):
        raise ValueError(f"onenn-generated: needs a label-conditioned model with an encoder, "
                         f"got {type(model).__name__}")
    d = ctx.data
    if any(d.get(k) is None for k in ("x_train", "y_train", "x_test", "y_test")):
        raise ValueError("onenn-generated: needs labelled training and test sets")
    n = int(n_samples)
    if n < 1:
        raise ValueError(f"onenn-generated: n_samples must be >= 1, got {n_samples}")
    x_tr, y_tr = np.asarray(to_numpy(d["x_train"])), np.asarray(to_numpy(d["y_train"]))
    cycle = y_tr[np.arange(n) % len(y_tr)].astype(np.int64)
    test_x, test_y = _flat(to_numpy(d["x_test"]), ctx.device), _labels(to_numpy(d["y_test"]),
                                                                        ctx.device)
    mean, cov = posterior_gaussian(model, x_tr, y_tr)

    def draw(m, rng, labels):
        return {"z": model.to_model(rng.multivariate_normal(mean, cov, size=m)),
                "labels": labels}

    gx = generate_samples(model, n, ctx.rng(61), chunk=2000, labels=cycle, noise=draw)
    out = {"onenn_error": nn1_error(_flat(gx, ctx.device), _labels(cycle, ctx.device),
                                    test_x, test_y),
           "n_generated": n}
    if prior:
        gx = generate_samples(model, n, ctx.rng(62), chunk=2000, labels=cycle)
        out["onenn_error_prior"] = nn1_error(_flat(gx, ctx.device), _labels(cycle, ctx.device),
                                             test_x, test_y)
    if real_reference:
        out["onenn_error_real"] = nn1_error(_flat(x_tr, ctx.device), _labels(y_tr, ctx.device),
                                            test_x, test_y)
    return out


def reconstruction_mse(model, x, labels=None, chunk=1000):
    """Mean squared error per pixel of ``model.reconstruct`` on the images ``x``."""
    err, n = 0.0, 0
    for i in range(0, len(x), chunk):
        xb = np.asarray(x[i:i + chunk])
        args = () if labels is None else (labels[i:i + chunk],)
        r = np.asarray(to_numpy(model.reconstruct(model.to_model(xb), *args))).reshape(len(xb), -1)
        err += float(((r - xb.reshape(len(xb), -1)) ** 2).sum())
        n += r.size
    return err / n


@evaluator("recon-mse")
def evaluate_recon_mse(ctx: EvalContext, n_test=10000):
    """``recon_mse``: the mean squared error per pixel of the reconstructions of the first
    ``n_test`` test images (their labels for a conditional model)."""
    if not hasattr(ctx.model, "reconstruct"):
        raise ValueError(f"recon-mse: {type(ctx.model).__name__} does not reconstruct")
    x = ctx.data.get("x_test")
    if x is None:
        raise ValueError("recon-mse: the study's data has no x_test")
    n = int(n_test)
    if n < 1:
        raise ValueError(f"recon-mse: n_test must be >= 1, got {n_test}")
    x = np.asarray(to_numpy(x))[:n]
    y = ctx.data.get("y_test") if getattr(ctx.model, "conditional", False) else None
    return {"recon_mse": reconstruction_mse(ctx.model, x, None if y is None else
                                            np.asarray(to_numpy(y))[:n])}
