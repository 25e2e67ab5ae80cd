"""The evaluators of the MNIST paper studies (gan, cgan, aae, infogan, vae, dcgan, wgan), registered under the names a study's ``[[evaluations]]`` use:

* ``parzen``: Parzen window log-likelihood, the GAN paper's protocol (``parzen_ll``,
  ``parzen_ll_std`` the standard error, ``parzen_sigma``);
* ``lenet-scores``: LeNet Inception Score and Fréchet distance (``lenet_is``, ``lenet_is_std``,
  ``lenet_fd``) with the shipped classifier (:mod:`scratchgan.metrics.classifier`);
* ``infogan-codes``: InfoGAN's categorical code as a classifier of the test digits
  (``code_error``, ``code_accuracy``), best one-to-one code/digit matching;
* ``vae-likelihood``: test ELBO and importance-weighted log-likelihood (``elbo``,
  ``elbo_std``, ``iw_ll``, ``iw_ll_std``);

Every evaluator draws its samples from ``ctx.rng(stream)`` and never trains the model. With
``ctx.standin`` (a dry run) the sample counts shrink to a few hundred so that the whole
pipeline runs in seconds; such figures never reach the ledger.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_device, to_numpy
from ..nn.module import no_grad
from .codes import categorical_code_accuracy
from .evaluators import EvalContext, evaluator
from .likelihood import evaluate_vae
from .parzen import evaluate_parzen
from .scores import frechet_distance_from_features, inception_score_from_log_probs

__all__ = ["METRIC_INFO", "binarize_images", "dry_size", "generate_samples",
           "generate_samples_batch_stats", "infer_codes", "samples01",
           "to_unit_range", "vae_callables"]

#: label, unit and better direction of each metric these evaluators return (for the ledger)
METRIC_INFO = {
    "parzen_ll": ("Parzen LL", "nats", "higher"),
    "parzen_sigma": ("Parzen sigma", "", "higher"),
    "lenet_is": ("LeNet Inception Score", "", "higher"),
    "lenet_fd": ("LeNet Fréchet distance", "", "lower"),
    "code_error": ("categorical-code error", "", "lower"),
    "code_accuracy": ("categorical-code accuracy", "", "higher"),
    "elbo": ("test ELBO", "nats", "higher"),
    "iw_ll": ("IW log-likelihood", "nats", "higher"),
}

#: the most samples (or test images) an evaluator uses in a dry run
DRY_RUN_SAMPLES = 200


def dry_size(ctx: EvalContext, n: int) -> int:
    """``n``, or at most :data:`DRY_RUN_SAMPLES` on stand-in data."""
    return min(int(n), DRY_RUN_SAMPLES) if ctx.standin else int(n)


def to_unit_range(x, data_range):
    """Host float32 images in [0, 1] from images in ``data_range``."""
    lo, hi = data_range
    return np.clip((to_numpy(x).astype(np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def binarize_images(x01, rng):
    """Stochastic binarization (pixel ~ Bernoulli(intensity)): the binarized MNIST on which
    the VAE literature reports its bounds."""
    return (rng.random(x01.shape) < x01).astype(x01.dtype)


def generate_samples(model, n, rng, labels=None, batch=500):
    """``n`` samples (host arrays, in the model's data_range) drawn with ``rng``."""
    out = []
    for i in range(0, n, batch):
        m = min(batch, n - i)
        if labels is not None:
            noise = model.sample_noise(m, rng=rng, labels=labels[i:i + m])
        else:
            noise = model.sample_noise(m, rng=rng)
        with no_grad():
            out.append(to_numpy(model.generate(noise)))
    return np.concatenate(out)


def generate_samples_batch_stats(model, n, rng, batch=500):
    """``n`` samples with G's BatchNorm in training mode: each batch of ``batch`` normalised
    by its own statistics, as the reference DCGAN code samples. The running averages are
    saved and restored, so the model is unchanged."""
    G = model.networks()["G"]
    saved = {id(m): [np.copy(to_numpy(getattr(m, b))) for b in m._buffers]
             for m in G.modules() if m._buffers}
    was = G.training
    out = []
    try:
        G.train()
        for i in range(0, n, batch):
            noise = model.sample_noise(min(batch, n - i), rng=rng)
            with no_grad():
                out.append(to_numpy(model.g_forward(noise)))
    finally:
        G.train(was)
        for m in G.modules():
            if id(m) in saved:
                for b, v in zip(m._buffers, saved[id(m)]):
                    getattr(m, b)[...] = model.to_model(v, dtype=getattr(m, b).dtype)
    return np.concatenate(out)


def samples01(ctx: EvalContext, n: int, per_class: bool = False, batch_stats: bool = False):
    """``n`` samples in [0, 1] (cached for one evaluation, so that Parzen and the LeNet scores
    of one evaluation score the same samples). ``per_class``: n/10 samples of each class,
    interleaved so that every Inception-Score split holds all ten (the CGAN protocol).
    ``batch_stats``: G's BatchNorm normalises each batch of 500 by its own statistics
    (:func:`generate_samples_batch_stats`)."""
    n = dry_size(ctx, n)
    cache = ctx.extras.setdefault("_samples", {})
    at = (id(ctx.model), int(ctx.seed), int(ctx.updates))
    if cache.get("at") != at:                   # one evaluation: this model, seed and update
        cache.clear()
        cache["at"] = at
    key = (n, bool(per_class), bool(batch_stats))
    if key not in cache and batch_stats:
        if per_class:
            raise ValueError("batch_stats sampling takes no per_class labels")
        cache[key] = to_unit_range(generate_samples_batch_stats(ctx.model, n, ctx.rng(1)),
                                   ctx.model.data_range or (0.0, 1.0))
    if key not in cache:
        labels = None
        if per_class:
            k = int(getattr(ctx.model, "num_classes", 10))
            labels = np.tile(np.arange(k), max(1, n // k))
            n = labels.size
        raw = generate_samples(ctx.model, n, ctx.rng(1), labels=labels)
        cache[key] = to_unit_range(raw, ctx.model.data_range or (0.0, 1.0))
    return cache[key]


def _images01(ctx, split, limit=None):
    x = ctx.data[f"x_{split}"]
    if limit is not None:
        x = x[:limit]
    return to_unit_range(x, ctx.data.get("data_range") or (0.0, 1.0))


def _dev(ctx, a):
    return to_device(a, ctx.device) if ctx.device != "cpu" else a


@evaluator("parzen")
def parzen(ctx: EvalContext, n_samples=10000, valid=(50000, 51000), n_test=None,
           per_class=False, batch_stats=False):
    """Parzen window log-likelihood of the test set under ``n_samples`` samples: sigma chosen
    on the training images ``valid`` = [start, stop) (train[50000:51000], the GAN paper's
    first 1,000 of train[50000:60000]), then the test images scored (all of them by default)."""
    s = samples01(ctx, n_samples, per_class, batch_stats)
    train = ctx.data["x_train"]
    lo, hi = int(valid[0]), int(valid[1])
    if hi > len(train):
        if not ctx.standin:
            raise ValueError(f"parzen: the validation images train[{lo}:{hi}] need {hi} "
                             f"training images, the data has {len(train)}")
        lo, hi = len(train) - len(train) // 4, len(train)      # stand-in data is small
    v = to_unit_range(train[lo:hi], ctx.data.get("data_range") or (0.0, 1.0))
    t = _images01(ctx, "test", dry_size(ctx, n_test or len(ctx.data["x_test"])))
    r = evaluate_parzen(_dev(ctx, s.reshape(len(s), -1)), _dev(ctx, v.reshape(len(v), -1)),
                        _dev(ctx, t.reshape(len(t), -1)))
    return {"parzen_ll": float(r["mean"]), "parzen_ll_std": float(r["se"]),
            "parzen_sigma": float(r["sigma"]), "parzen_samples": int(r["n_samples"]),
            "parzen_test": int(r["n_test"])}


def _classifier(ctx):
    if ctx.extras.get("mnist_classifier") is None:
        from .classifier import load_classifier
        ctx.extras["mnist_classifier"] = load_classifier(device=ctx.device)
    return ctx.extras["mnist_classifier"]


@evaluator("lenet-scores")
def lenet(ctx: EvalContext, n_samples=10000, splits=10, per_class=False, n_test=None,
          batch_stats=False):
    """LeNet Inception Score (``splits`` splits) and Fréchet distance of the penultimate
    features of ``n_samples`` samples against the test images (docs/metrics.md);
    ``batch_stats``: sampled with G's BatchNorm in training mode."""
    clf = _classifier(ctx)
    s = samples01(ctx, n_samples, per_class, batch_stats)
    n_ref = dry_size(ctx, n_test or len(ctx.data["x_test"]))
    key = ("lenet_test_features", ctx.data.get("name"), n_ref, bool(ctx.standin))
    if key not in ctx.extras:
        ctx.extras[key] = clf.features_and_log_probs(_images01(ctx, "test", n_ref))[0]
    f, logp = clf.features_and_log_probs(s)
    m, sd = inception_score_from_log_probs(logp, min(int(splits), len(s)))
    return {"lenet_is": float(m), "lenet_is_std": float(sd),
            "lenet_fd": float(frechet_distance_from_features(f, ctx.extras[key]))}


def infer_codes(model, x, batch=1000):
    """The categorical code Q assigns to images ``x`` (argmax), or None when the model
    exposes no inference method."""
    for name in ("predict_codes", "infer_codes", "encode"):
        fn = getattr(model, name, None)
        if fn is not None:
            break
    else:
        return None
    codes = []
    for i in range(0, x.shape[0], batch):
        with no_grad():
            out = fn(x[i:i + batch])
        if isinstance(out, dict):
            out = out.get("categorical", out.get("c1", out.get("cat")))
        if isinstance(out, (tuple, list)):
            out = out[0]                       # (categorical logits, continuous means)
        out = to_numpy(out)
        codes.append(out.argmax(1) if out.ndim == 2 else out.astype(np.int64))
    return np.concatenate(codes)


@evaluator("infogan-codes")
def infogan_codes(ctx: EvalContext, n_test=None, num_codes=10):
    """InfoGAN's categorical code as a digit classifier on the test images (the paper's 5%
    error), codes matched one-to-one to digits by the best assignment."""
    n = dry_size(ctx, n_test or len(ctx.data["x_test"]))
    x, y = ctx.data["x_test"][:n], ctx.data["y_test"]
    if y is None:
        raise ValueError("infogan_codes: the data set has no test labels")
    codes = infer_codes(ctx.model, _dev(ctx, x))
    if codes is None:
        raise ValueError(f"infogan_codes: {type(ctx.model).__name__} has no predict_codes, "
                         f"infer_codes or encode method")
    r = categorical_code_accuracy(codes, to_numpy(y[:n]), num_codes=num_codes,
                                  num_classes=num_codes)
    return {"code_error": float(r["error"]), "code_accuracy": float(r["accuracy"])}


def vae_callables(model):
    """(encode -> (mu, logvar), decode -> Bernoulli logits) for a VAE model, or None.

    Uses ``encode_stats``/``decode_logits`` when the model has them, otherwise its
    ``encoder`` (x -> [mu, logvar]) and ``decoder`` (z -> logits) networks in eval mode.
    """
    enc = getattr(model, "encode_stats", None)
    dec = getattr(model, "decode_logits", None)
    if enc is None and hasattr(model, "encoder"):
        k = model.hp["latent_dim"]

        def enc(x):
            h = model._eval_forward(model.encoder, x)
            return h[:, :k], h[:, k:]
    if dec is None and hasattr(model, "decoder"):
        def dec(z):
            return model._eval_forward(model.decoder, z)
    if enc is None or dec is None:
        return None

    def encode(x):
        out = enc(x)
        if isinstance(out, dict):
            return out["mu"], out["logvar"]
        return out[0], out[1]
    return encode, dec


@evaluator("vae-likelihood")
def vae_likelihood(ctx: EvalContext, k=50, n_test=None, binarize=False, batch_size=500):
    """Test ELBO and importance-weighted log-likelihood (``k`` samples), nats per image.
    ``binarize``: score a stochastically binarized test set (drawn from stream 3), as the
    VAE literature does when it trains on binarized MNIST."""
    fns = vae_callables(ctx.model)
    if fns is None:
        raise ValueError(f"vae_likelihood: {type(ctx.model).__name__} exposes no "
                         f"encode/decode pair")
    n = dry_size(ctx, n_test or len(ctx.data["x_test"]))
    x = _images01(ctx, "test", n)
    if binarize:
        x = binarize_images(x, ctx.rng(3))
    lo, hi = ctx.model.data_range or (0.0, 1.0)
    x = (x * (hi - lo) + lo).astype(ctx.model.dtype)
    r = evaluate_vae(_dev(ctx, x), *fns, k=min(int(k), 5) if ctx.standin else int(k),
                     batch_size=batch_size, rng=ctx.rng(4))
    return {"elbo": r["elbo"], "elbo_std": r["elbo_se"], "iw_ll": r["iw_ll"],
            "iw_ll_std": r["iw_ll_se"], "iw_k": int(r["k"])}
