"""Stacked MNIST (1000 modes) and MNIST / Fashion-MNIST padded to 32×32.

* ``stacked-mnist``: each example stacks three MNIST digits as the three channels of one
  32×32 image (each 28×28 digit padded by 2 pixels of background on every side), the
  discrete mode test of Metz et al. (2017) and Karras et al. (2018, appendix "MNIST-1K").
  Its label is ``100 d_R + 10 d_G + d_B`` (one of 1000 modes). The three digits of example
  ``i`` are drawn uniformly (with replacement) from the split's MNIST images by a NumPy
  generator seeded per split (train 0, test 1; ``seed`` overrides it), so the set is
  deterministic. The train split has 60,000 examples, the test split 10,000 (``limit``
  keeps the first rows).
* ``mnist32`` / ``fashion-mnist32``: the IDX images padded to 32×32 (1 channel), labels 0–9.

Registered in ``scratchgan.data.datasets.GENERATED``; pixels are scaled to ``data_range``
(background at its lower end).
"""
from __future__ import annotations

import numpy as np

from .batches import scale_images
from .idx import load_mnist

__all__ = ["PAD", "SIZE", "STACKED_SIZES", "pad32", "stacked_indices", "stack_digits",
           "StackedMNIST", "Padded32", "STACKED", "MNIST32", "FASHION32"]

PAD = 2
SIZE = 28 + 2 * PAD
STACKED_SIZES = {"train": 60_000, "test": 10_000}
_SEEDS = {"train": 0, "test": 1}


def pad32(images):
    """uint8 (N, 28, 28) -> uint8 (N, 32, 32), 2 background pixels on every side."""
    return np.pad(np.asarray(images), ((0, 0), (PAD, PAD), (PAD, PAD)))


def stacked_indices(n_source, n, seed):
    """(n, 3) source indices of the three channels, from ``default_rng(seed)``."""
    return np.random.default_rng(seed).integers(0, n_source, size=(n, 3))


def stack_digits(images, labels, idx):
    """Three digits per row of ``idx`` as the channels: uint8 (n, 3, 32, 32) and the mode
    labels ``100 d0 + 10 d1 + d2``."""
    padded = pad32(images)
    x = np.stack([padded[idx[:, c]] for c in range(3)], axis=1)
    lab = np.asarray(labels).astype(np.int64)
    y = 100 * lab[idx[:, 0]] + 10 * lab[idx[:, 1]] + lab[idx[:, 2]]
    return x, y


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid choices are 'train', 'test'")


class StackedMNIST:
    """The generated-set interface (``info``, ``load``) of ``stacked-mnist``; ``build`` makes
    it from given source images (the stand-in digits of a dry run without the files)."""

    standin_source = "mnist"

    def info(self):
        return {"shape": (3, SIZE, SIZE), "num_classes": 1000, "kind": "image",
                "note": "three MNIST digits as the RGB channels, padded to 32x32; label "
                        "100*d_R + 10*d_G + d_B"}

    def load(self, split="train", data_range=(0.0, 1.0), data_dir=None, limit=None, seed=None,
             download=True):
        _check_split(split)
        images, labels = load_mnist(split, dataset="mnist", data_dir=data_dir, download=download)
        return self.build(images, labels, split, data_range, limit, seed)

    def build(self, images, labels, split="train", data_range=(0.0, 1.0), limit=None, seed=None):
        """The set from uint8 (N, 28, 28) source digits and their labels."""
        _check_split(split)
        n = STACKED_SIZES[split] if limit is None else int(limit)
        idx = stacked_indices(len(images), n, _SEEDS[split] if seed is None else seed)
        x, y = stack_digits(images, labels, idx)
        return np.ascontiguousarray(scale_images(x, data_range)), y


class Padded32:
    """The generated-set interface of an IDX set padded to 32×32 (1 channel); ``build`` pads
    given source images (the stand-ins of a dry run without the files)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.standin_source = dataset

    def info(self):
        return {"shape": (1, SIZE, SIZE), "num_classes": 10, "kind": "image",
                "note": f"{self.dataset} padded from 28x28 to 32x32"}

    def load(self, split="train", data_range=(0.0, 1.0), data_dir=None, limit=None, seed=None,
             download=True):
        _check_split(split)
        images, labels = load_mnist(split, dataset=self.dataset, data_dir=data_dir,
                                    download=download)
        return self.build(images, labels, split, data_range, limit, seed)

    def build(self, images, labels, split="train", data_range=(0.0, 1.0), limit=None, seed=None):
        """The set from uint8 (N, 28, 28) source images and their labels."""
        _check_split(split)
        if limit is not None:
            images, labels = images[:int(limit)], labels[:int(limit)]
        x = scale_images(pad32(images), data_range)[:, None]
        return np.ascontiguousarray(x), np.asarray(labels).astype(np.int64)


STACKED = StackedMNIST()
MNIST32 = Padded32("mnist")
FASHION32 = Padded32("fashion-mnist")
