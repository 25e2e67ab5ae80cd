"""InfoGAN categorical-code accuracy with the best one-to-one code-to-digit matching.

The categorical code c1 ~ Cat(K) is unsupervised: code 3 may well mean digit 7.
Its value as a classifier is measured after choosing the bijection between
codes and labels that maximizes the number of agreements. With the confusion
matrix C[c, y] = #{i : code_i = c, label_i = y}, that is the linear assignment
problem max_perm sum_c C[c, perm(c)], solved exactly by
``scipy.optimize.linear_sum_assignment`` (Hungarian algorithm). The InfoGAN
paper reports 5% error on MNIST this way (codes inferred by Q on the test set).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..backend import to_numpy

__all__ = ["confusion_matrix", "categorical_code_accuracy"]


def confusion_matrix(codes, labels, num_codes=None, num_classes=None):
    codes = to_numpy(codes).astype(np.int64).ravel()
    labels = to_numpy(labels).astype(np.int64).ravel()
    if codes.shape != labels.shape:
        raise ValueError(f"code accuracy: {codes.size} codes but {labels.size} labels")
    if codes.size == 0:
        raise ValueError("code accuracy: no codes given")
    if codes.min() < 0 or labels.min() < 0:
        raise ValueError("code accuracy: codes and labels must be non-negative integers")
    kc = int(num_codes or codes.max() + 1)
    ky = int(num_classes or labels.max() + 1)
    conf = np.zeros((kc, ky), dtype=np.int64)
    np.add.at(conf, (codes, labels), 1)
    return conf


def categorical_code_accuracy(codes, labels, num_codes=None, num_classes=None):
    """Accuracy of ``codes`` as predictions of ``labels`` under the best bijection.

    ``codes`` may be integer codes (N,) or code scores/probabilities (N, K), in
    which case the argmax is used. Returns a dict: ``accuracy``, ``error``,
    ``mapping`` {code: label}, ``confusion`` (list of lists).
    """
    codes = to_numpy(codes)
    if codes.ndim == 2:
        num_codes = num_codes or codes.shape[1]
        codes = codes.argmax(axis=1)
    conf = confusion_matrix(codes, labels, num_codes, num_classes)
    rows, cols = linear_sum_assignment(-conf)
    correct = int(conf[rows, cols].sum())
    acc = correct / int(conf.sum())
    return {"accuracy": acc, "error": 1.0 - acc,
            "mapping": {int(r): int(c) for r, c in zip(rows, cols)},
            "confusion": conf.tolist()}
