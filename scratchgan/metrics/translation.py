"""Image-to-image translation scores (pix2pix, CycleGAN, and the CVAE's quadrant completions).

The papers' own measures (FCN-score on Cityscapes, perceptual studies) need data that is not
available; these follow the FCN-score idea offline: a fixed recogniser is run on the outputs
and its accuracy is set beside its accuracy on the real targets.

* Paired tasks (``edges2fashion``, ``quadrants-pairedQ``, and the CVAE on ``mnist`` with
  ``n_revealed = Q``): L1 and SSIM (Wang et al. 2004: Gaussian window 11, σ 1.5, K1 0.01,
  K2 0.03) to the targets in [0, 1]; for quadrant completion also the L1 over the hidden
  pixels; label preservation = the classifier's accuracy on the outputs and on the targets,
  and their gap in points. The classifier is the Fashion-MNIST LeNet (shipped as
  ``weights/lenet_fashion.npz``: 91.41% test accuracy, :func:`train_lenet`'s recipe) for
  Fashion tasks, the MNIST LeNet for MNIST ones.
* The unpaired task (``mnist2restyled``): digit preservation both ways (the MNIST LeNet on the
  grey B→A outputs, and on the stroke map recovered from the A→B outputs by undoing the known
  colouring, :func:`destyle`), beside the same on real images; cycle L1 both ways; the
  Fréchet distance in LeNet features between translations and the real target domain.
"""
from __future__ import annotations

import inspect
import pathlib
import time

import numpy as np

from ..backend import to_device, to_numpy
from ..data.image2image import INK, MNIST2RESTYLED, PAPER
from ..data.quadrants import revealed_mask
from .evaluators import EvalContext, evaluator
from .lenet_scores import mnist_classifier
from .scores import frechet_distance_from_features

__all__ = ["FASHION_WEIGHTS", "gaussian_window", "ssim", "destyle", "grey", "to_unit",
           "paired_scores", "load_fashion_classifier", "train_lenet", "translate_all",
           "evaluate_paired_translation", "evaluate_cycle_translation"]

FASHION_WEIGHTS = pathlib.Path(__file__).resolve().parent / "weights" / "lenet_fashion.npz"


def gaussian_window(size=11, sigma=1.5):
    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    return g / g.sum()


def _filter_valid(a, w):
    """Separable 'valid' filtering of (N, H, W) with the 1-D window w along both axes."""
    k = len(w)
    H, W = a.shape[1:]
    rows = sum(w[i] * a[:, i:H - k + 1 + i, :] for i in range(k))
    return sum(w[j] * rows[:, :, j:W - k + 1 + j] for j in range(k))


def ssim(x, y, data_range=1.0, size=11, sigma=1.5):
    """Mean SSIM per image, averaged over channels; x, y (N, C, H, W) in [0, data_range].
    Returns (N,)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim: expected two (N, C, H, W) arrays of one shape, got {x.shape} "
                         f"and {y.shape}")
    w = gaussian_window(size, sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for c in range(x.shape[1]):
        a, b = x[:, c], y[:, c]
        mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
        saa = _filter_valid(a * a, w) - mu_a ** 2
        sbb = _filter_valid(b * b, w) - mu_b ** 2
        sab = _filter_valid(a * b, w) - mu_a * mu_b
        m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
        out.append(m.mean(axis=(1, 2)))
    return np.mean(out, axis=0)


def destyle(b):
    """Restyled images (N, 3, H, W) in [0, 1] -> the stroke map (N, 1, H, W) in [0, 1] (the
    known colouring undone channel by channel, then averaged)."""
    from ..data.image2image import INK, PAPER
    s = (PAPER[None, :, None, None] - b) / (PAPER - INK)[None, :, None, None]
    return np.clip(s.mean(axis=1, keepdims=True), 0.0, 1.0)


def grey(a):
    """RGB images in [0, 1] -> their channel mean (N, 1, H, W)."""
    return np.clip(np.asarray(a).mean(axis=1, keepdims=True), 0.0, 1.0)


def to_unit(a, data_range):
    """Images in ``data_range`` -> [0, 1] (clipped), float32."""
    lo, hi = data_range
    return np.clip((np.asarray(a, np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def paired_scores(out01, b01, y, classifier, hidden=None):
    """L1 and SSIM of outputs to targets (both in [0, 1]), the classifier's accuracy on outputs
    and on targets and their gap in points; ``hidden`` ((H, W) bool): also the L1 over those
    pixels only."""
    out01, b01 = np.asarray(out01, np.float32), np.asarray(b01, np.float32)
    if out01.shape != b01.shape:
        raise ValueError(f"paired_scores: outputs {out01.shape} and targets {b01.shape} differ")
    rec = {"l1": float(np.abs(out01 - b01).mean()), "ssim": float(ssim(out01, b01).mean()),
           "label_acc_translated": classifier.accuracy(out01, y),
           "label_acc_real_targets": classifier.accuracy(b01, y)}
    rec["label_gap_points"] = 100 * (rec["label_acc_real_targets"] - rec["label_acc_translated"])
    if hidden is not None:
        rec["l1_hidden_pixels"] = float(np.abs(out01 - b01)[:, :, hidden].mean())
    return rec


def load_fashion_classifier(path=None, device="cpu"):
    """The frozen Fashion-MNIST LeNet (a :class:`MNISTClassifier` over its weights)."""
    from .classifier import LeNet, MNISTClassifier
    path = pathlib.Path(path or FASHION_WEIGHTS)
    if not path.exists():
        raise FileNotFoundError(f"Fashion-MNIST LeNet weights not found at {path}; train them "
                                f"with scratchgan.metrics.translation.train_lenet")
    with np.load(path) as z:
        state = {k: z[k] for k in z.files}
    m = LeNet()
    m.load_state_dict(state)
    if device != "cpu":
        m.to(device)
    return MNISTClassifier(m)


def train_lenet(x_train, y_train, x_test, y_test, epochs=15, lr=1e-3, halve_every=3, batch=64,
                seed=0, device="cpu", log=None):
    """The Fashion classifier's recipe: a LeNet trained with Adam (``lr`` halved every
    ``halve_every`` epochs), minibatches of ``batch`` from a seeded permutation per epoch, on
    images in [0, 1]. Returns ``(MNISTClassifier, test accuracy)``."""
    from ..ops.loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward
    from ..optim import Adam
    from .classifier import LeNet, MNISTClassifier
    if int(epochs) < 1 or int(batch) < 1 or len(x_train) < int(batch):
        raise ValueError(f"train_lenet: epochs and batch must be >= 1 and the training set at "
                         f"least one batch, got epochs {epochs}, batch {batch}, "
                         f"{len(x_train)} images")
    rng = np.random.default_rng(seed)
    model = LeNet(rng=rng)
    if device != "cpu":
        model.to(device)
    opt = Adam(model.parameters(), lr=lr)
    t0, acc = time.time(), None
    for epoch in range(int(epochs)):
        opt.lr = lr * 0.5 ** (epoch // int(halve_every))
        model.train()
        perm = rng.permutation(len(x_train))
        for s in range(len(x_train) // batch):
            idx = perm[s * batch:(s + 1) * batch]
            xb, yb = x_train[idx], y_train[idx]
            if device != "cpu":
                xb, yb = to_device(xb, device), to_device(yb, device)
            model.zero_grad()
            loss, cache = softmax_cross_entropy_forward(model.forward(xb), yb)
            model.backward(softmax_cross_entropy_backward(1.0, cache))
            opt.step()
        acc = MNISTClassifier(model).accuracy(x_test, y_test)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: test accuracy {acc:.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    return MNISTClassifier(model), acc


def translate_all(fn, a, batch=500):
    """``fn`` (a model's translation) applied ``batch`` images at a time; host NumPy."""
    return np.concatenate([np.asarray(to_numpy(fn(a[i:i + batch])))
                           for i in range(0, len(a), batch)])


def _fashion(ctx):
    clf = ctx.extras.get("fashion_classifier")
    if clf is None:
        clf = ctx.extras["fashion_classifier"] = load_fashion_classifier(device=ctx.device)
    return clf


def _test_set(ctx, n_test):
    x, y = ctx.data.get("x_test"), ctx.data.get("y_test")
    if x is None or y is None:
        raise ValueError("translation scores need the study's labelled test set (x_test, y_test)")
    n = int(n_test)
    if n < 1:
        raise ValueError(f"translation scores: n_test must be >= 1, got {n_test}")
    return np.asarray(to_numpy(x))[:n], np.asarray(to_numpy(y))[:n]


@evaluator("paired-translation")
def evaluate_paired_translation(ctx: EvalContext, n_test=10000, classifier="auto"):
    """Paired scores on the first ``n_test`` test examples: ``l1``, ``ssim``,
    ``label_acc_translated``, ``label_acc_real_targets``, ``label_gap_points`` and, for
    quadrant completion, ``l1_hidden_pixels``. A pix2pix model translates A of each
    ``concat(A, B)`` pair; a CVAE completes each whole image from its ``n_revealed`` quadrants
    (one draw of z from the prior network). ``classifier``: "fashion", "mnist", or "auto"
    (Fashion's for a Fashion data set)."""
    model, name = ctx.model, str(ctx.data.get("name", ""))
    pix2pix = hasattr(model, "translate") and hasattr(model, "split")
    if not pix2pix and not hasattr(model, "complete"):
        raise ValueError(f"paired-translation: {type(model).__name__} neither translates "
                         f"(pix2pix) nor completes (cvae)")
    kind = classifier if classifier != "auto" else ("fashion" if "fashion" in name else "mnist")
    if kind not in ("fashion", "mnist"):
        raise ValueError(f"paired-translation: classifier must be 'auto', 'fashion' or "
                         f"'mnist', got {classifier!r}")
    x, y = _test_set(ctx, n_test)
    dr = tuple(model.data_range)
    if pix2pix:
        a, b = model.split(x)
        out = translate_all(model.translate, a)
        hidden = ~revealed_mask(int(name[-1])) if name.startswith("quadrants-paired") else None
    else:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"paired-translation: a CVAE is scored on whole (N, 1, H, W) "
                             f"images, got {x.shape}")
        b, rng = x, ctx.rng(53)
        out = translate_all(lambda v: model.complete(model.to_model(v), n=1, rng=rng)[0], b)
        hidden = ~revealed_mask(int(model.hp["n_revealed"]), size=x.shape[-1])
    clf = _fashion(ctx) if kind == "fashion" else mnist_classifier(ctx)
    rec = paired_scores(to_unit(out, dr), to_unit(b, dr), y, clf, hidden)
    rec["n_test"] = int(len(x))
    return rec


@evaluator("cycle-translation")
def evaluate_cycle_translation(ctx: EvalContext, n_test=10000):
    """Unpaired scores of a CycleGAN on ``mnist2restyled``'s test domains (``n_test // 2``
    images each): ``digit_acc_A_to_B``, ``digit_acc_B_to_A`` and the same on real images
    (``digit_acc_real_B``, ``digit_acc_real_A``); ``cycle_l1_A``, ``cycle_l1_B``;
    ``fd_lenet_A_to_B``, ``fd_lenet_B_to_A``. The domains and both label arrays come from
    ``MNIST2RESTYLED.load_domains`` (the MNIST test files in ``ctx.data["data_dir"]``, or the
    library's default data folder; the stand-in digits in a dry run)."""
    model = ctx.model
    if not (hasattr(model, "translate") and
            "direction" in inspect.signature(model.translate).parameters):
        raise ValueError(f"cycle-translation: {type(model).__name__} has no two-way translate")
    n = int(n_test) // 2
    if n < 2:
        raise ValueError(f"cycle-translation: n_test must be >= 4, got {n_test}")
    dr = tuple(model.data_range)
    xa, ya, xb, yb = MNIST2RESTYLED.load_domains("test", dr, ctx.data.get("data_dir"),
                                                 download=not ctx.standin)
    xa, ya, xb, yb = xa[:n], ya[:n], xb[:n], yb[:n]

    def tr(v, d):
        return translate_all(lambda u: model.translate(u, direction=d), v)

    fb = tr(xa, "AB")
    ra = tr(fb, "BA")
    fa = tr(xb, "BA")
    rb = tr(fa, "AB")
    c = lambda v: to_unit(v, dr)  # noqa: E731
    clf = mnist_classifier(ctx)

    def feats(imgs):
        return clf.features_and_log_probs(imgs)[0]

    return {"n_test_per_domain": int(len(xa)),
            "digit_acc_A_to_B": clf.accuracy(destyle(c(fb)), ya),
            "digit_acc_real_B": clf.accuracy(destyle(c(xb)), yb),
            "digit_acc_B_to_A": clf.accuracy(grey(c(fa)), yb),
            "digit_acc_real_A": clf.accuracy(grey(c(xa)), ya),
            "cycle_l1_A": float(np.abs(c(ra) - c(xa)).mean()),
            "cycle_l1_B": float(np.abs(c(rb) - c(xb)).mean()),
            "fd_lenet_A_to_B": float(frechet_distance_from_features(feats(destyle(c(fb))),
                                                                      feats(destyle(c(xb))))),
            "fd_lenet_B_to_A": float(frechet_distance_from_features(feats(grey(c(fa))),
                                                                      feats(grey(c(xa)))))}
