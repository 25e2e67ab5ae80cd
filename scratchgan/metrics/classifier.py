"""A LeNet-style MNIST classifier, trained with scratchgan itself, for IS and FD.

Architecture (input 1x28x28 in [0, 1], normalized by the fixed MNIST mean/std
0.1307/0.3081 inside the model):

    conv5x5 1->16, ReLU, maxpool 2   -> 16x12x12
    conv5x5 16->32, ReLU, maxpool 2  -> 32x4x4
    flatten, Linear 512->128, ReLU   -> the 128-d *feature* layer (for FD)
    Linear 128->10                   -> logits (for IS)

About 80k parameters (a ~330 KB .npz). Pooling uses the small max-pool op in
:mod:`scratchgan.metrics.pool` (the models need none). Trained with
softmax cross-entropy and Adam, seeded, from one command::

    python -m scratchgan.metrics.classifier train --data-dir /path/to/data \
        --out scratchgan/metrics/weights/lenet_mnist.npz

The shipped weights file stores the parameters plus metadata (test accuracy,
seed, epochs). :func:`load_classifier` loads it (default path beside this file).

MNIST scores (generated images in ``data_range`` are mapped to [0, 1] first):

* :func:`mnist_inception_score` - IS over N samples in 10 splits;
* :func:`mnist_frechet_distance` - FD between the 128-d features of the samples
  and of a reference set (the 10,000 test images in the protocol).
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import pathlib
import sys
import time

import numpy as np

from ..backend import get_array_module, to_device, to_numpy
from ..nn import Conv2d, Flatten, Linear, Module, ReLU, Sequential, no_grad
from .pool import MaxPool2d
from .scores import frechet_distance_from_features, inception_score_from_log_probs

__all__ = ["MNIST_MEAN", "MNIST_STD", "WEIGHTS_DIR", "DEFAULT_WEIGHTS", "FEATURE_INDEX", "LeNet",
           "MNISTClassifier", "load_classifier", "weights_available", "mnist_inception_score",
           "mnist_frechet_distance", "load_mnist_arrays", "default_data_dir", "train_classifier",
           "save_classifier", "main", "evaluate_reference_scores"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "lenet_mnist.npz"
FEATURE_INDEX = 8        # output of the ReLU after the 512->128 Linear


class LeNet(Module):
    """conv-relu-pool x2, FC 128 (features), FC 10 (logits); input (N,1,28,28) or (N,784) in [0,1]."""

    def __init__(self, num_classes=10, rng=None):
        super().__init__()
        self.net = Sequential(
            Conv2d(1, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
            Conv2d(16, 32, 5, rng=rng), ReLU(), MaxPool2d(2),
            Flatten(), Linear(32 * 4 * 4, 128, rng=rng), ReLU(),
            Linear(128, num_classes, rng=rng))

    @staticmethod
    def _prepare(x):
        if x.ndim == 2 and x.shape[1] == 784:
            x = x.reshape(-1, 1, 28, 28)
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"LeNet: expected MNIST images (N, 1, 28, 28) or (N, 784) in [0, 1], "
                             f"got shape {tuple(x.shape)}")
        return (x - MNIST_MEAN) / MNIST_STD

    def forward(self, x):
        return self.net.forward(self._prepare(x))

    def backward(self, dlogits):
        # the input normalization is affine; its gradient is not needed for training
        return self.net.backward(dlogits) / MNIST_STD

    def features_and_logits(self, x):
        """(features (N,128), logits (N,10)) without keeping caches."""
        h = self._prepare(x)
        with no_grad():
            for i, layer in enumerate(self.net):
                h = layer(h)
                if i == FEATURE_INDEX:
                    feats = h
        return feats, h


class MNISTClassifier:
    """Batched, gradient-free access to a trained :class:`LeNet`."""

    def __init__(self, model: LeNet, meta=None):
        self.model = model.eval()
        self.meta = dict(meta or {})

    def _batches(self, x, batch_size, data_range):
        xp = get_array_module(x)
        lo, hi = data_range
        dtype = self.model.dtype
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            if xb.dtype == np.uint8:
                xb = xb.astype(dtype) / 255.0
            else:
                xb = ((xb.astype(dtype) - lo) / (hi - lo))
            if xb.ndim == 3:
                xb = xb[:, None]
            if self.model.device == "cuda" and xp is np:
                xb = to_device(xb, "cuda")
            yield self.model.features_and_logits(xb.astype(dtype, copy=False))

    def features_and_log_probs(self, x, batch_size=500, data_range=(0.0, 1.0)):
        """Host float64 arrays (features (N,128), log p(y|x) (N,10)).

        ``x``: uint8 images (scaled by 1/255) or floats in ``data_range``.
        """
        feats, logps = [], []
        for f, l in self._batches(x, batch_size, data_range):
            l = to_numpy(l).astype(np.float64)
            m = l.max(axis=1, keepdims=True)
            logps.append(l - m - np.log(np.exp(l - m).sum(axis=1, keepdims=True)))
            feats.append(to_numpy(f).astype(np.float64))
        return np.concatenate(feats), np.concatenate(logps)

    def predict(self, x, batch_size=500, data_range=(0.0, 1.0)):
        return self.features_and_log_probs(x, batch_size, data_range)[1].argmax(axis=1)

    def accuracy(self, x, labels, batch_size=500, data_range=(0.0, 1.0)):
        return float((self.predict(x, batch_size, data_range) == to_numpy(labels)).mean())


def load_classifier(path=None, device="cpu"):
    """Load the trained LeNet (default: the shipped ``weights/lenet_mnist.npz``)."""
    path = pathlib.Path(path or DEFAULT_WEIGHTS)
    if not path.exists():
        raise FileNotFoundError(
            f"classifier weights not found at {path}; train them with "
            "`python -m scratchgan.metrics.classifier train --data-dir DIR --out " + str(path) + "`")
    with np.load(path, allow_pickle=False) as z:
        state = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
    model = LeNet()
    model.load_state_dict({f"net.{k}" if not k.startswith("net.") else k: v for k, v in state.items()})
    if device != "cpu":
        model.to(device)
    return MNISTClassifier(model, meta)


def weights_available(path=None):
    return pathlib.Path(path or DEFAULT_WEIGHTS).exists()


def mnist_inception_score(images, classifier=None, splits=10, data_range=(0.0, 1.0), batch_size=500):
    """(mean, std) Inception Score of MNIST-like images under the LeNet classifier."""
    classifier = classifier or load_classifier()
    _, logp = classifier.features_and_log_probs(images, batch_size, data_range)
    return inception_score_from_log_probs(logp, splits)


def mnist_frechet_distance(images, reference, classifier=None, data_range=(0.0, 1.0),
                           reference_range=(0.0, 1.0), batch_size=500):
    """FD between LeNet features of ``images`` and of ``reference`` (e.g. the 10k test images)."""
    classifier = classifier or load_classifier()
    f1, _ = classifier.features_and_log_probs(images, batch_size, data_range)
    f2, _ = classifier.features_and_log_probs(reference, batch_size, reference_range)
    return frechet_distance_from_features(f1, f2)


# -- data --------------------------------------------------------------------------
def _read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist_arrays(split, data_dir):
    """(uint8 images (N,28,28), uint8 labels (N,)) via scratchgan.data when present."""
    try:
        from ..data.idx import load_mnist
        return load_mnist(split, "mnist", data_dir=data_dir, download=False)
    except ImportError:
        prefix = "train" if split == "train" else "t10k"
        root = pathlib.Path(data_dir) / "mnist"
        return (_read_idx_gz(root / f"{prefix}-images-idx3-ubyte.gz"),
                _read_idx_gz(root / f"{prefix}-labels-idx1-ubyte.gz"))


def default_data_dir():
    d = os.environ.get("SCRATCHGAN_DATA")
    if d:
        return d
    guess = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
    return str(guess)


# -- training ----------------------------------------------------------------------
def train_classifier(data_dir, out, epochs=5, batch_size=64, lr=1e-3, seed=0, device="cpu",
                     limit=None, log=print):
    """Train LeNet on MNIST train (60k), evaluate on test (10k), save ``out``. Returns the record."""
    from tqdm import tqdm
    from ..ops.loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward
    from ..optim import Adam

    rng = np.random.default_rng(seed)
    xtr, ytr = load_mnist_arrays("train", data_dir)
    xte, yte = load_mnist_arrays("test", data_dir)
    if limit:
        xtr, ytr = xtr[:limit], ytr[:limit]
    xtr = (xtr.astype(np.float32) / 255.0)[:, None]
    ytr = ytr.astype(np.int64)
    model = LeNet(rng=rng)
    if device != "cpu":
        model.to(device)
    opt = Adam(model.parameters(), lr=lr)
    n = xtr.shape[0]
    steps = n // batch_size
    t0 = time.time()
    for epoch in range(epochs):
        opt.lr = lr * (0.5 ** epoch)            # halve each epoch
        model.train()
        perm = rng.permutation(n)
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", mininterval=5, file=sys.stderr)
        run_loss = run_acc = 0.0
        for s in bar:
            idx = perm[s * batch_size:(s + 1) * batch_size]
            xb, yb = xtr[idx], ytr[idx]
            if device != "cpu":
                xb, yb = to_device(xb, device), to_device(yb, device)
            model.zero_grad()
            logits = model.forward(xb)
            loss, cache = softmax_cross_entropy_forward(logits, yb)
            model.backward(softmax_cross_entropy_backward(1.0, cache))
            opt.step()
            a = 0.02 if s else 1.0           # running averages start at the first batch
            run_loss = (1 - a) * run_loss + a * float(loss)
            run_acc = (1 - a) * run_acc + a * float((to_numpy(logits).argmax(1) == to_numpy(yb)).mean())
            if s % 50 == 0:
                bar.set_postfix(loss=f"{run_loss:.4f}", acc=f"{run_acc:.4f}")
        clf = MNISTClassifier(model)
        acc = clf.accuracy(xte, yte)
        log(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({time.time() - t0:.0f}s)")
        model.train()
    model.eval()
    clf = MNISTClassifier(model)
    test_acc = clf.accuracy(xte, yte)
    record = {"test_accuracy": test_acc, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "lr_schedule": "halved each epoch", "optimizer": "Adam", "seed": seed,
              "train_size": int(n), "train_seconds": round(time.time() - t0, 1),
              "device": device, "date": datetime.date.today().isoformat(),
              "parameters": int(sum(p.data.size for p in model.parameters())),
              "command": f"python -m scratchgan.metrics.classifier train --data-dir DATA --out {out} "
                         f"--epochs {epochs} --batch-size {batch_size} --lr {lr} --seed {seed}"}
    save_classifier(model, out, record)
    return record


def save_classifier(model, out, meta):
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"param/{k}": v.astype(np.float32) for k, v in model.state_dict().items()}
    np.savez_compressed(out, meta=np.array(json.dumps(meta)), **arrays)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m scratchgan.metrics.classifier",
                                description="Train or evaluate the LeNet used for MNIST IS/FD.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train on MNIST train, report test accuracy, save .npz")
    t.add_argument("--data-dir", default=default_data_dir())
    t.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    t.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    t.add_argument("--record", default=None, help="also write the JSON record here")
    e = sub.add_parser("eval", help="test accuracy, real-test IS (ceiling) and train-vs-test FD (floor)")
    e.add_argument("--data-dir", default=default_data_dir())
    e.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    e.add_argument("--record", default=None)
    args = p.parse_args(argv)
    if args.cmd == "train":
        rec = train_classifier(args.data_dir, args.out, args.epochs, args.batch_size, args.lr,
                               args.seed, args.device, args.limit)
        print(json.dumps(rec, indent=2))
        if args.record:
            pathlib.Path(args.record).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(args.record).write_text(json.dumps(rec, indent=2) + "\n")
    else:
        rec = evaluate_reference_scores(args.data_dir, args.weights)
        print(json.dumps(rec, indent=2))
        if args.record:
            pathlib.Path(args.record).write_text(json.dumps(rec, indent=2) + "\n")
    return 0


def evaluate_reference_scores(data_dir, weights=None, n=10000, seed=0):
    """Test accuracy, IS of the real test set (ceiling) and FD(train subset, test) (floor)."""
    clf = load_classifier(weights)
    xtr, _ = load_mnist_arrays("train", data_dir)
    xte, yte = load_mnist_arrays("test", data_dir)
    rng = np.random.default_rng(seed)
    sub = xtr[rng.choice(xtr.shape[0], size=n, replace=False)]
    f_te, lp_te = clf.features_and_log_probs(xte)
    f_tr, _ = clf.features_and_log_probs(sub)
    is_mean, is_std = inception_score_from_log_probs(lp_te, 10)
    return {"test_accuracy": float((lp_te.argmax(1) == yte).mean()),
            "is_real_test": [is_mean, is_std],
            "fd_train_vs_test": frechet_distance_from_features(f_tr, f_te),
            "n_train_subset": n, "meta": clf.meta}


if __name__ == "__main__":
    sys.exit(main())
