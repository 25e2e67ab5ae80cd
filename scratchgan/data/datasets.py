"""One entry point for every data set: ``load_dataset(name, data_range, ...)``.

Three kinds: the IDX image sets (mnist, fashion-mnist), the toy distributions, and the
*generated* sets made in code (from nothing, or from the IDX sets), each registered in
``GENERATED`` by the dotted path of an object with

* ``info() -> {"shape": per-sample shape, "num_classes": K, "kind": str}`` and
* ``load(split, data_range, data_dir, limit, seed, download) -> (x, y)``,

imported only when that set is asked for.
"""
from __future__ import annotations

import importlib

import numpy as np

from .batches import scale_images
from .idx import DATASET_NAMES as IMAGE_DATASETS, load_mnist
from .toy import TOY_DATASETS, sample_toy, toy_dim, toy_num_classes

__all__ = ["GENERATED", "DATASETS", "TOY_SIZES", "check_dataset", "generated_spec", "is_toy",
           "dataset_info", "load_dataset"]

#: generated sets, one entry a line: name -> "module:attribute" of its spec object
GENERATED = {
    "edges2fashion": "scratchgan.data.image2image:EDGES2FASHION",
    "quadrants-paired1": "scratchgan.data.image2image:QUADRANTS_PAIRED1",
    "quadrants-paired2": "scratchgan.data.image2image:QUADRANTS_PAIRED2",
    "quadrants-paired3": "scratchgan.data.image2image:QUADRANTS_PAIRED3",
    "mnist2restyled": "scratchgan.data.image2image:MNIST2RESTYLED",
    "mnist-quadrants": "scratchgan.data.quadrants:QUADRANTS",
    "dsprites": "scratchgan.data.dsprites:SPEC",
    "stacked-mnist": "scratchgan.data.stacked_mnist:STACKED",
    "mnist32": "scratchgan.data.stacked_mnist:MNIST32",
    "fashion-mnist32": "scratchgan.data.stacked_mnist:FASHION32",
}
DATASETS = IMAGE_DATASETS + TOY_DATASETS + tuple(GENERATED)
TOY_SIZES = {"train": 10_000, "test": 2_000}
_TOY_SEEDS = {"train": 0, "test": 1}


def check_dataset(name) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid choices are {', '.join(DATASETS)}")
    return name


def generated_spec(name):
    """The spec object of the generated set ``name`` (imported on first use)."""
    module, attr = GENERATED[check_dataset(name)].split(":")
    return getattr(importlib.import_module(module), attr)


def is_toy(name) -> bool:
    return check_dataset(name) in TOY_DATASETS


def dataset_info(name) -> dict:
    """``{"shape": per-sample shape, "num_classes": K, "kind": "image" | "toy"}``."""
    check_dataset(name)
    if name in TOY_DATASETS:
        return {"shape": (toy_dim(name),), "num_classes": toy_num_classes(name), "kind": "toy"}
    if name in GENERATED:
        return dict(generated_spec(name).info())
    return {"shape": (1, 28, 28), "num_classes": 10, "kind": "image"}


def load_dataset(name, data_range=(0.0, 1.0), data_dir=None, split="train", limit=None,
                 flat=False, download=True, seed=None):
    """``(x, y)`` for ``name``.

    Images (mnist, fashion-mnist): x float32 (N, 1, 28, 28) scaled to ``data_range``
    ((N, 784) with ``flat=True``), y int64 labels 0..9.
    Toy sets: x float32 (N, d) in their own coordinates (``data_range`` does not
    apply), y int64 component labels; N = ``limit`` or 10,000 (train) / 2,000
    (test), drawn from a fixed seed per split (``seed`` overrides it).
    ``limit`` keeps the first ``limit`` rows.
    """
    check_dataset(name)
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid choices are 'train', 'test'")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit <= 0):
        raise ValueError(f"load_dataset: limit must be a positive int or None, got {limit!r}")
    if name in TOY_DATASETS:
        n = int(limit) if limit is not None else TOY_SIZES[split]
        rng = np.random.default_rng(_TOY_SEEDS[split] if seed is None else seed)
        x, y = sample_toy(name, n, rng, return_labels=True)
        return x.astype(np.float32), y.astype(np.int64)
    if name in GENERATED:
        return generated_spec(name).load(split=split, data_range=data_range, data_dir=data_dir,
                                         limit=limit, seed=seed, download=download)
    images, labels = load_mnist(split, dataset=name, data_dir=data_dir, download=download)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = scale_images(images, data_range)
    x = x.reshape(len(x), -1) if flat else x[:, None, :, :]
    return np.ascontiguousarray(x), labels.astype(np.int64)
