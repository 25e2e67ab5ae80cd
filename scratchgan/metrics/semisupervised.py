"""Semi-supervised classification: the test error of M2's q(y|x), and the reference it must beat.

Kingma et al. 2014 (Table 1) report the test error of the classifier q(y|x) after training
on 100 labelled and 59,900 unlabelled MNIST images, over label draws. Two evaluators:

* ``classifier-error``: the model's own prediction (``model.predict``) on the test images, in
  %, with ``m1_dims_kept`` for M1+M2 runs that choose M1's dimensions (``m1_min_std``);
* ``labelled-classifier``: the reference a semi-supervised model has to beat. A copy of the
  model's classifier network, at its initial weights or as trained, is fitted on the
  labelled images alone (full batch, Adam on the mean cross-entropy, :func:`fit_on_labelled`)
  on the model's current features (the pixels; M1's means for M1+M2, so that during and after
  M1's training it measures what M1's features are worth with 100 labels). The model itself
  is not changed.

The 1-nearest-neighbour error on the labelled features is the ``knn`` evaluator
(:mod:`scratchgan.metrics.knn`) with ``reference = "labelled"`` and ``as_error = true``.
"""
from __future__ import annotations

import copy

import numpy as np

from ..backend import to_numpy
from ..init import mlp_init_normal_
from ..ops import loss as L
from ..optim import Adam
from .evaluators import EvalContext, evaluator

__all__ = ["classification_error", "fit_on_labelled", "classifier_error_evaluator",
           "labelled_classifier_evaluator"]


def classification_error(predict, x, y, batch=1000):
    """Error in % of ``predict(x_batch) -> labels`` on ``(x, y)``."""
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"classification_error: expected as many labels as examples (> 0), got {len(x)} "
                         f"examples and {len(y)} labels")
    wrong = 0
    for i in range(0, len(x), batch):
        wrong += int((np.asarray(to_numpy(predict(x[i:i + batch]))) != np.asarray(y[i:i + batch]))
                     .sum())
    return 100.0 * wrong / len(x)


def fit_on_labelled(classifier, f_lab, y_lab, steps, lr=3e-4):
    """Fit ``classifier`` (a network of the library, changed in place) on the features
    ``f_lab`` and int labels ``y_lab`` (device arrays): ``steps`` full-batch Adam steps on the
    mean softmax cross-entropy. Returns the last cross-entropy (float)."""
    if int(steps) < 1:
        raise ValueError(f"fit_on_labelled: steps must be >= 1, got {steps}")
    opt = Adam(classifier.parameters(), lr=float(lr))
    ce = None
    for _ in range(int(steps)):
        opt.zero_grad()
        ce, cache = L.softmax_cross_entropy_forward(classifier(f_lab), y_lab)
        classifier.backward(L.softmax_cross_entropy_backward(1.0, cache), input_grad=False)
        opt.step()
    return float(to_numpy(ce))


def _test_set(ctx, n_test):
    x, y = ctx.data["x_test"], ctx.data.get("y_test")
    if y is None:
        raise ValueError(f"the data set {ctx.data.get('name')!r} has no test labels")
    if n_test is not None:
        x, y = x[:int(n_test)], y[:int(n_test)]
    return x, np.asarray(y)


@evaluator("classifier-error")
def classifier_error_evaluator(ctx: EvalContext, n_test=None, metric="test_error"):
    """Test error in % of ``model.predict`` under ``metric``."""
    m = ctx.model
    if not hasattr(m, "predict"):
        raise ValueError(f"classifier-error: {type(m).__name__} has no predict(x)")
    x, y = _test_set(ctx, n_test)
    out = {metric: classification_error(m.predict, x, y), "n_test": int(len(x))}
    kept = getattr(m, "m1_kept", None)
    if kept is not None:
        out["m1_dims_kept"] = len(kept)
    return out


@evaluator("labelled-classifier")
def labelled_classifier_evaluator(ctx: EvalContext, steps=3000, lr=3e-4, weights="initial",
                                  n_test=None, metric="labelled_only_error"):
    """Test error in % of a copy of the model's classifier fitted on the labelled images alone
    (``weights``: ``"initial"``, the classifier re-initialised the way the model initialises
    it, drawn from ``ctx.rng(23)``, or ``"current"``, as the model has trained it)."""
    m = ctx.model
    for name in ("classifier", "features", "labelled_indices"):
        if not hasattr(m, name):
            raise ValueError(f"labelled-classifier: {type(m).__name__} has no {name}; the "
                             f"evaluator scores semi-supervised models such as m2")
    if m.labelled_indices is None:
        raise ValueError("labelled-classifier: the model has no labelled subset yet "
                         "(attach_data; the trainer calls it)")
    if weights not in ("initial", "current"):
        raise ValueError(f"labelled-classifier: weights must be 'initial' or 'current', got "
                         f"{weights!r}")
    clf = copy.deepcopy(m.classifier)
    if weights == "initial":
        std = m.hp.get("init_std")
        if std is None:
            raise ValueError("labelled-classifier: weights='initial' re-draws N(0, init_std²) "
                             "weights; this model has init_std=None")
        mlp_init_normal_(clf, float(std), ctx.rng(23))
    idx = np.asarray(m.labelled_indices)
    x_l = ctx.data["x_train"][idx]
    y_l = m.to_model(np.asarray(ctx.data["y_train"])[idx], dtype=False)
    f_l = m.features(m.to_model(x_l))
    ce = fit_on_labelled(clf, f_l, y_l, steps, lr)
    x, y = _test_set(ctx, n_test)

    def predict(xb):
        return m._eval_forward(clf, m.features(m.to_model(xb))).argmax(axis=1)

    return {metric: classification_error(predict, x, y), f"{metric}_train_ce": ce,
            "n_labelled": int(len(idx))}
