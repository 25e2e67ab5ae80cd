"""Mini-batches: seeded shuffling with a resumable position, and image scaling."""
from __future__ import annotations

import numpy as np

__all__ = ["VALID_RANGES", "scale_images", "unscale_images", "BatchIterator"]

VALID_RANGES = ((0.0, 1.0), (-1.0, 1.0))


def scale_images(images, data_range=(0.0, 1.0)) -> np.ndarray:
    """uint8 pixels 0..255 -> float32 in ``data_range``: [0, 1] (x/255) or [-1, 1] (x/127.5 - 1)."""
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise TypeError(f"scale_images: expected uint8 pixels, got dtype {a.dtype}")
    rng_t = tuple(float(v) for v in data_range)
    if rng_t == (0.0, 1.0):
        return a.astype(np.float32) / np.float32(255.0)
    if rng_t == (-1.0, 1.0):
        return a.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    raise ValueError(f"scale_images: data_range must be one of {VALID_RANGES}, got {data_range!r}")


def unscale_images(x, data_range=(0.0, 1.0)) -> np.ndarray:
    """Inverse of :func:`scale_images`, clipped to [0, 1] floats (for plotting)."""
    lo, hi = (float(v) for v in data_range)
    return np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


class BatchIterator:
    """Mini-batches of ``(x, y)`` (``y`` may be None), reshuffled every epoch.

    * ``rng``: an int seed or a ``numpy.random.Generator`` that this iterator owns
      (it draws one permutation per epoch from it, nothing else).
    * ``drop_last``: drop the last incomplete batch (default) so every batch has
      ``batch_size`` rows; ``len()`` is the number of batches per epoch.
    * ``for xb, yb in it`` runs the rest of the current epoch; :meth:`next_batch`
      runs forever, moving to the next epoch when one ends.
    * :meth:`state_dict` / :meth:`load_state_dict` save and restore the exact
      position (epoch, index in the epoch, and the generator's state before the
      epoch's permutation, so the permutation is recomputed, not stored).
    * ``rank``/``world_size`` (data-parallel training): every rank draws the same permutation
      (the same seed) and batch b is the slice ``[rank B, (rank + 1) B)`` of the global batch
      ``perm[b W B : (b + 1) W B]``: the ranks read disjoint shards of every epoch, and
      together the global batch a 1-process run with batch W·B would read.
    """

    def __init__(self, x, y=None, batch_size=64, rng=None, shuffle=True, drop_last=True,
                 rank=0, world_size=1):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"BatchIterator: batch_size must be a positive int, got {batch_size!r}")
        n = len(x)
        if y is not None and len(y) != n:
            raise ValueError(f"BatchIterator: x has {n} rows but y has {len(y)}")
        if n == 0:
            raise ValueError("BatchIterator: the data set is empty")
        if not (isinstance(world_size, (int, np.integer)) and world_size >= 1
                and isinstance(rank, (int, np.integer)) and 0 <= rank < world_size):
            raise ValueError(f"BatchIterator: need 0 <= rank < world_size, got rank={rank!r}, "
                             f"world_size={world_size!r}")
        if drop_last and batch_size * world_size > n:
            raise ValueError(f"BatchIterator: batch_size {batch_size} x {world_size} rank(s) is "
                             f"larger than the data set ({n} rows) and drop_last=True would "
                             f"give no batch")
        self.rank, self.world_size = int(rank), int(world_size)
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.epoch = 0
        self._start_epoch()

    def __len__(self):
        n, g = len(self.x), self.batch_size * self.world_size
        return n // g if self.drop_last else -(-n // g)

    def _lo(self, b):
        return (b * self.world_size + self.rank) * self.batch_size

    @property
    def num_samples(self):
        return len(self.x)

    def _start_epoch(self):
        self._epoch_rng_state = self.rng.bit_generator.state
        n = len(self.x)
        self._perm = self.rng.permutation(n) if self.shuffle else np.arange(n)
        self._batch = 0  # index of the next batch in this epoch

    def _take(self, b):
        lo = self._lo(b)
        idx = self._perm[lo:lo + self.batch_size]
        if not self.shuffle:
            s = slice(lo, lo + len(idx))
            return self.x[s], (None if self.y is None else self.y[s])
        return self.x[idx], (None if self.y is None else self.y[idx])

    def next_indices(self):
        """Advance exactly as :meth:`next_batch` does, but return ``(perm, lo, hi)``: the next
        batch is rows ``perm[lo:hi]`` (``perm`` is the same object for a whole epoch), so a
        caller holding the data elsewhere (on the GPU) can gather them there."""
        if self._batch >= len(self):
            self.epoch += 1
            self._start_epoch()
        lo = self._lo(self._batch)
        self._batch += 1
        return self._perm, lo, lo + self.batch_size

    def next_batch(self):
        """The next batch, starting a new (reshuffled) epoch when the current one ends."""
        if self._batch >= len(self):
            self.epoch += 1
            self._start_epoch()
        out = self._take(self._batch)
        self._batch += 1
        return out

    @property
    def epoch_finished(self):
        return self._batch >= len(self)

    def __iter__(self):
        """The remaining batches of the current epoch (a fresh epoch if it had ended)."""
        if self._batch >= len(self):
            self.epoch += 1
            self._start_epoch()
        while self._batch < len(self):
            out = self._take(self._batch)
            self._batch += 1
            yield out

    # -- resume ----------------------------------------------------------------
    def state_dict(self):
        return {"epoch": int(self.epoch), "batch": int(self._batch),
                "epoch_rng_state": self._epoch_rng_state,
                "num_samples": int(len(self.x)), "batch_size": self.batch_size}

    def load_state_dict(self, sd):
        if int(sd["num_samples"]) != len(self.x) or int(sd["batch_size"]) != self.batch_size:
            raise ValueError(f"BatchIterator.load_state_dict: saved for {sd['num_samples']} rows, "
                             f"batch size {sd['batch_size']}; this iterator has {len(self.x)} "
                             f"rows, batch size {self.batch_size}")
        self.rng.bit_generator.state = sd["epoch_rng_state"]
        self._start_epoch()
        self.epoch = int(sd["epoch"])
        self._batch = int(sd["batch"])
        return self
