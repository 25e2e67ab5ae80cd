"""Data: MNIST / Fashion-MNIST IDX files, their stand-ins, toy distributions, mini-batches.

Nothing here touches the network at import time.
"""
from .batches import BatchIterator, scale_images, unscale_images
from .datasets import DATASETS, IMAGE_DATASETS, check_dataset, dataset_info, is_toy, load_dataset
from .idx import (DataNotFoundError, IDXError, load_mnist, read_idx, write_idx)
from .standin import STANDIN_DATASETS, load_or_standin, standin_images, standin_mnist
from .toy import TOY_DATASETS, sample_toy, toy_dim, toy_modes, toy_num_classes, toy_std

__all__ = ["BatchIterator", "scale_images", "unscale_images", "DATASETS", "IMAGE_DATASETS",
           "check_dataset", "dataset_info", "is_toy", "load_dataset", "DataNotFoundError",
           "IDXError", "load_mnist", "read_idx", "write_idx", "STANDIN_DATASETS",
           "load_or_standin", "standin_images", "standin_mnist", "TOY_DATASETS", "sample_toy",
           "toy_dim", "toy_modes", "toy_num_classes", "toy_std"]
