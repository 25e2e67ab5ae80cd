"""Classification on fixed features: 1-nearest-neighbour accuracy and a linear probe.

Both score a representation (an encoder's features, M1's posterior means, the pixels) by how
well the labels of a reference set carry over to held-out examples:

* :func:`nearest_neighbour_accuracy`: each evaluation example takes the label of its nearest
  reference example (Euclidean; ties go to the first). BiGAN's ``NNC_e`` / ``NNC_e-``
  (Donahue et al. 2017, ``jeffdonahue/bigan`` ``load.py``: neighbours from the first 50,000
  training images, evaluation on the 10,000 after them) and the M1 feature diagnostic of
  M1+M2 (neighbours: the 100 labelled images).
* :func:`linear_probe_accuracy`: a softmax classifier trained on the reference features
  (standardised by their mean and std; Adam, cross-entropy, hand-written gradient
  dW = Xᵀ(P − Y)/n), scored on the evaluation features (BiGAN's ``CLS_e-``).

Accuracies are percentages. Arrays may live on the host (NumPy) or the GPU (CuPy); the
computation stays on their device.

Evaluators (:mod:`scratchgan.metrics.evaluators`): ``knn`` and ``linear-probe``; their
options pick the features (:func:`model_features`), the reference set and the evaluation set
(:func:`reference_and_evaluation`). Beside them, ``reconstruction-l2`` asks whether the
encoder inverts the generator: the mean ||x − G(E(x))|| over test images against the same
distance to another test image's reconstruction (the BiGAN authors' ``EGr`` and ``EGr_b``).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_numpy
from .evaluators import EvalContext, evaluator

__all__ = ["nearest_neighbour_accuracy", "linear_probe_accuracy", "model_features",
           "reference_and_evaluation", "reconstruction_distances", "knn_evaluator",
           "linear_probe_evaluator", "reconstruction_l2_evaluator"]


def nearest_neighbour_accuracy(ref_f, ref_y, eval_f, eval_y, chunk=1000):
    """1-NN (Euclidean) accuracy in % of ``eval_f`` labelled by its nearest row of ``ref_f``."""
    xp = get_array_module(ref_f)
    a = xp.asarray(ref_f, dtype=xp.float32).reshape(len(ref_f), -1)
    if len(a) == 0 or len(eval_f) == 0:
        raise ValueError(f"nearest_neighbour_accuracy: needs reference and evaluation examples, "
                         f"got {len(a)} and {len(eval_f)}")
    if len(ref_y) != len(a) or len(eval_y) != len(eval_f):
        raise ValueError(f"nearest_neighbour_accuracy: {len(a)} reference rows with "
                         f"{len(ref_y)} labels, {len(eval_f)} evaluation rows with "
                         f"{len(eval_y)} labels")
    a2 = (a * a).sum(1)
    ty = xp.asarray(ref_y)
    correct = 0
    for i in range(0, len(eval_f), chunk):
        b = xp.asarray(eval_f[i:i + chunk], dtype=xp.float32).reshape(-1, a.shape[1])
        d = a2[None, :] - 2.0 * (b @ a.T)            # ||b||² is the same along a row
        pred = ty[d.argmin(1)]
        correct += int((pred == xp.asarray(eval_y[i:i + chunk])).sum())
    return 100.0 * correct / len(eval_f)


def linear_probe_accuracy(ref_f, ref_y, eval_f, eval_y, epochs=30, lr=1e-3, batch=128, seed=0,
                          num_classes=None):
    """Accuracy in % of a softmax classifier fitted on ``(ref_f, ref_y)`` (Adam, ``epochs``
    passes of minibatches of ``batch``, cross-entropy), scored on ``(eval_f, eval_y)``."""
    xp = get_array_module(ref_f)
    x = xp.asarray(ref_f, dtype=xp.float32).reshape(len(ref_f), -1)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = (x - mu) / sd
    xt = (xp.asarray(eval_f, dtype=xp.float32).reshape(len(eval_f), -1) - mu) / sd
    y = xp.asarray(ref_y).astype(np.int64)
    k = int(num_classes or int(to_numpy(y).max()) + 1)
    batch = min(int(batch), len(x))
    w = xp.zeros((x.shape[1], k), xp.float32)
    b = xp.zeros((k,), xp.float32)
    mw, vw, mb, vb = (xp.zeros_like(w), xp.zeros_like(w), xp.zeros_like(b), xp.zeros_like(b))
    g = np.random.default_rng(seed)
    t = 0
    eye = xp.eye(k, dtype=xp.float32)
    for _ in range(int(epochs)):
        perm = g.permutation(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            idx = xp.asarray(perm[i:i + batch])
            xb, yb = x[idx], y[idx]
            s = xb @ w + b
            s = s - s.max(1, keepdims=True)
            p = xp.exp(s)
            p /= p.sum(1, keepdims=True)
            d = (p - eye[yb]) / batch
            gw, gb = xb.T @ d, d.sum(0)
            t += 1
            for prm, grd, m_, v_ in ((w, gw, mw, vw), (b, gb, mb, vb)):
                m_ *= 0.9
                m_ += 0.1 * grd
                v_ *= 0.999
                v_ += 0.001 * grd * grd
                prm -= lr * (m_ / (1 - 0.9 ** t)) / (xp.sqrt(v_ / (1 - 0.999 ** t)) + 1e-8)
    pred = (xt @ w + b).argmax(1)
    return 100.0 * float((pred == xp.asarray(eval_y)).mean())


def model_features(model, x, which="output", batch=1000):
    """Features of the examples ``x`` on the model's device, (N, d).

    ``which``: ``"pixels"`` (the flat inputs), or a key of the dict ``model.features(x)``
    returns (BiGAN and ALI: ``"penultimate"``, ``"output"``), or ``"features"`` for a model
    whose ``features(x)`` returns one array (M2: the pixels, or M1's posterior means for
    M1+M2)."""
    if which == "pixels":
        return model.to_model(x).reshape(len(x), -1)
    if not hasattr(model, "features"):
        raise ValueError(f"features={which!r}: {type(model).__name__} has no features(x); use "
                         f"features='pixels'")
    parts = []
    for i in range(0, len(x), batch):
        f = model.features(model.to_model(x[i:i + batch]))
        if isinstance(f, dict):
            if which not in f:
                raise ValueError(f"features={which!r}: {type(model).__name__}.features gives "
                                 f"{sorted(f)}")
            f = f[which]
        elif which != "features":
            raise ValueError(f"features={which!r}: {type(model).__name__}.features gives one "
                             f"array; use features='features' (or 'pixels')")
        parts.append(f.reshape(f.shape[0], -1))
    return model.xp.concatenate(parts)


def reference_and_evaluation(ctx: EvalContext, reference="train", n_reference=None,
                             evaluate_on="test", n_evaluate=None):
    """``(x_ref, y_ref, x_eval, y_eval)`` host arrays from the study's data.

    ``reference``: ``"train"`` (the first ``n_reference`` training examples, all when None) or
    ``"labelled"`` (the model's labelled subset, ``model.labelled_indices``: M2's label draw).
    ``evaluate_on``: ``"test"`` (the first ``n_evaluate`` test examples) or ``"train_rest"``
    (the training examples after the first ``n_reference``: the BiGAN authors' validation
    split). On the stand-in data of a dry run (``ctx.standin``), an ``n_reference`` as large as
    the set becomes its first 5/6."""
    d = ctx.data
    x, y = d["x_train"], d.get("y_train")
    if y is None:
        raise ValueError(f"the data set {d.get('name')!r} has no training labels to classify")
    if reference == "train":
        n = len(x) if n_reference is None else int(n_reference)
        if ctx.standin and n >= len(x) and n_reference is not None:
            n = max(1, len(x) * 5 // 6)      # a dry run's small stand-in set: the same split shape
        if not 0 < n <= len(x):
            raise ValueError(f"n_reference={n_reference}: expected 1..{len(x)} training examples")
        x_ref, y_ref = x[:n], y[:n]
    elif reference == "labelled":
        idx = getattr(ctx.model, "labelled_indices", None)
        if idx is None:
            raise ValueError(f"reference='labelled': {type(ctx.model).__name__} holds no labelled "
                             f"subset (labelled_indices)")
        idx = np.asarray(idx)
        x_ref, y_ref = x[idx], y[idx]
        n = len(x)
    else:
        raise ValueError(f"reference={reference!r}: expected 'train' or 'labelled'")
    if evaluate_on == "test":
        xe, ye = d["x_test"], d.get("y_test")
        if ye is None:
            raise ValueError(f"the data set {d.get('name')!r} has no test labels")
    elif evaluate_on == "train_rest":
        if reference != "train" or n >= len(x):
            raise ValueError("evaluate_on='train_rest' needs reference='train' with n_reference "
                             "below the training set's size")
        xe, ye = x[n:], y[n:]
    else:
        raise ValueError(f"evaluate_on={evaluate_on!r}: expected 'test' or 'train_rest'")
    if n_evaluate is not None:
        xe, ye = xe[:int(n_evaluate)], ye[:int(n_evaluate)]
    return x_ref, np.asarray(y_ref), xe, np.asarray(ye)


def _probe_inputs(ctx, features, reference, n_reference, evaluate_on, n_evaluate):
    x_ref, y_ref, xe, ye = reference_and_evaluation(ctx, reference, n_reference, evaluate_on,
                                                    n_evaluate)
    m = ctx.model
    return (model_features(m, x_ref, features), m.to_model(y_ref, dtype=False),
            model_features(m, xe, features), m.to_model(ye, dtype=False), len(x_ref), len(xe))


@evaluator("knn")
def knn_evaluator(ctx: EvalContext, features="output", reference="train", n_reference=None,
                  evaluate_on="test", n_evaluate=None, metric="knn_accuracy", as_error=False):
    """1-NN accuracy (or, with ``as_error``, error) in % under ``metric``, plus
    ``METRIC_reference`` and ``METRIC_evaluated`` (the set sizes)."""
    fr, yr, fe, ye, nr, ne = _probe_inputs(ctx, features, reference, n_reference, evaluate_on,
                                           n_evaluate)
    acc = nearest_neighbour_accuracy(fr, yr, fe, ye)
    return {metric: 100.0 - acc if as_error else acc, f"{metric}_reference": nr,
            f"{metric}_evaluated": ne}


@evaluator("linear-probe")
def linear_probe_evaluator(ctx: EvalContext, features="penultimate", reference="train",
                           n_reference=None, evaluate_on="test", n_evaluate=None,
                           metric="probe_accuracy", epochs=30, lr=1e-3, batch=128):
    """The linear probe's accuracy in % under ``metric`` (its minibatch order from
    ``ctx.rng(41)``)."""
    fr, yr, fe, ye, nr, ne = _probe_inputs(ctx, features, reference, n_reference, evaluate_on,
                                           n_evaluate)
    seed = int(ctx.rng(41).integers(0, 2**31 - 1))
    acc = linear_probe_accuracy(fr, yr, fe, ye, epochs=epochs, lr=lr, batch=batch, seed=seed,
                                num_classes=getattr(ctx.model, "num_classes", None))
    return {metric: acc, f"{metric}_reference": nr, f"{metric}_evaluated": ne}


def reconstruction_distances(x, xr):
    """``(mean ||x_i − r_i||, mean ||x_i − r_{i-1}||)``: each example against its own
    reconstruction, and against its neighbour's in the order given (a shuffled baseline)."""
    a = np.asarray(to_numpy(x), dtype=np.float64).reshape(len(x), -1)
    r = np.asarray(to_numpy(xr), dtype=np.float64).reshape(len(xr), -1)
    if a.shape != r.shape or len(a) < 2:
        raise ValueError(f"reconstruction_distances: expected two arrays of the same shape with "
                         f"at least 2 rows, got {a.shape} and {r.shape}")
    return (float(np.sqrt(((a - r) ** 2).sum(1)).mean()),
            float(np.sqrt(((np.roll(a, 1, 0) - r) ** 2).sum(1)).mean()))


@evaluator("reconstruction-l2")
def reconstruction_l2_evaluator(ctx: EvalContext, n_test=None, batch=1000):
    """``recon_l2`` (mean ||x − G(E(x))|| over the test images) and ``recon_l2_baseline`` (the
    distance to the previous test image's reconstruction)."""
    m = ctx.model
    if not hasattr(m, "reconstruct"):
        raise ValueError(f"reconstruction-l2: {type(m).__name__} has no reconstruct(x)")
    x = ctx.data["x_test"]
    if n_test is not None:
        x = x[:int(n_test)]
    xr = np.concatenate([to_numpy(m.reconstruct(x[i:i + batch]))
                         for i in range(0, len(x), int(batch))])
    own, other = reconstruction_distances(x, xr)
    return {"recon_l2": own, "recon_l2_baseline": other}
