"""The evaluators of the MNIST paper studies (scratchgan.metrics.standard) on stand-in data:
Parzen (the GAN paper's protocol), LeNet IS/FD, InfoGAN code accuracy, VAE ELBO / IW-LL."""
import numpy as np
import pytest

from scratchgan.data.standin import standin_images
from scratchgan.metrics import EVALUATORS, EvalContext, get_evaluator
from scratchgan.metrics.standard import samples01, vae_callables
from scratchgan.models import get_model


class PoolModel:
    """A stand-in generator: returns rows of a fixed pool of images, drawn with the rng."""

    data_range = (-1.0, 1.0)
    num_classes = 10
    dtype = np.float32

    def __init__(self, pool01):
        self.pool = pool01 * 2.0 - 1.0                     # stored in data_range
        self.calls = 0

    def sample_noise(self, n, rng=None, labels=None):
        return {"idx": rng.integers(0, len(self.pool), n), "labels": labels}

    def generate(self, noise):
        self.calls += 1
        return self.pool[noise["idx"]]


def data(n_train=256, n_test=128):
    xtr, ytr, _ = standin_images("mnist", n_train, data_range=(0.0, 1.0))
    xte, yte, _ = standin_images("mnist", n_test, data_range=(0.0, 1.0), split="test")
    return {"name": "mnist", "x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte,
            "data_range": (0.0, 1.0)}


def test_registered_names():
    assert {"parzen", "lenet-scores", "infogan-codes", "vae-likelihood"} <= set(EVALUATORS)
    with pytest.raises(KeyError, match="unknown evaluator 'nope'"):
        get_evaluator("nope")


def test_parzen_real_images_beat_their_blur_and_parzen_refuses_a_short_training_set():
    """Training images as samples score far above the mean image as one sample (what Parzen
    gives a blur); sigma is chosen on the validation slice."""
    d = data()
    real = PoolModel(d["x_train"][:128])
    blur = PoolModel(d["x_train"].mean(0, keepdims=True))
    opts = dict(n_samples=128, valid=(192, 256))
    r = get_evaluator("parzen")(EvalContext(real, d, seed=0), **opts)
    b = get_evaluator("parzen")(EvalContext(blur, d, seed=0), **opts)
    assert r["parzen_ll"] > b["parzen_ll"] + 50 and r["parzen_ll_std"] > 0
    assert r["parzen_samples"] == 128 and r["parzen_test"] == 128
    with pytest.raises(ValueError, match=r"train\[50000:51000\] need 51000 training images"):
        get_evaluator("parzen")(EvalContext(real, d), n_samples=16)


def test_one_evaluation_scores_the_same_samples_and_per_class_interleaves_labels():
    d = data()
    m = PoolModel(d["x_train"])
    ctx = EvalContext(m, d, seed=3, updates=10)
    a = samples01(ctx, 100)
    assert samples01(ctx, 100) is a and m.calls == 1       # cached within one evaluation
    assert a.min() >= 0.0 and a.max() <= 1.0
    ctx.updates = 20
    b = samples01(ctx, 100)
    assert b is not a                                       # a new evaluation draws again
    ctx.seed = 4
    assert samples01(ctx, 100) is not b                     # so does another seed
    seen = []
    m.sample_noise = lambda n, rng=None, labels=None: seen.append(labels) or \
        {"idx": rng.integers(0, 10, n), "labels": labels}
    samples01(ctx, 100, per_class=True)
    labels = np.concatenate(seen)
    assert labels.size == 100 and list(labels[:20]) == list(range(10)) * 2
    ctx.standin = True
    assert len(samples01(ctx, 10000)) == 200                # dry runs shrink the counts


def test_lenet_scores_real_images_near_the_floor_noise_far():
    d = data()
    real = PoolModel(d["x_test"])
    noise = PoolModel(np.random.default_rng(0).random((64, 1, 28, 28)).astype(np.float32))
    r = get_evaluator("lenet-scores")(EvalContext(real, d), n_samples=128)
    n = get_evaluator("lenet-scores")(EvalContext(noise, d), n_samples=128)
    assert r["lenet_fd"] < 0.2 * n["lenet_fd"] and r["lenet_is"] > n["lenet_is"]
    assert r["lenet_is_std"] >= 0


def test_infogan_codes_best_matching():
    d = data()

    class Coder:
        data_range = (0.0, 1.0)

        def __init__(self, codes):
            self.codes = codes

        def predict_codes(self, x):
            n = len(x)
            logits = np.zeros((n, 10), np.float32)
            logits[np.arange(n), self.codes[:n]] = 1.0
            return logits, np.zeros((n, 2), np.float32)

    perm = (d["y_test"] + 3) % 10                           # a relabelling: error 0
    r = get_evaluator("infogan-codes")(EvalContext(Coder(perm), d))
    assert r["code_error"] == 0.0 and r["code_accuracy"] == 1.0
    rand = np.random.default_rng(0).integers(0, 10, len(d["y_test"]))
    assert get_evaluator("infogan-codes")(EvalContext(Coder(rand), d))["code_error"] > 0.5
    with pytest.raises(ValueError, match="has no predict_codes"):
        get_evaluator("infogan-codes")(EvalContext(object(), d))


def test_vae_likelihood_bounds():
    d = data()
    vae = get_model("vae")((1, 28, 28), rng=0, hidden=16, latent_dim=2)
    assert vae_callables(vae) is not None
    r = get_evaluator("vae-likelihood")(EvalContext(vae, d, seed=1), k=8, n_test=64,
                                         binarize=True)
    assert np.isfinite(r["elbo"]) and np.isfinite(r["iw_ll"]) and r["iw_k"] == 8
    assert r["iw_ll"] >= r["elbo"] - 1.0                    # IW-LL bounds the ELBO (up to noise)
    with pytest.raises(ValueError, match="exposes no encode/decode pair"):
        get_evaluator("vae-likelihood")(EvalContext(PoolModel(d["x_test"]), d))


def test_batch_stats_sampling_leaves_the_running_averages_alone():
    """DCGAN samples with G's BatchNorm in training mode (each batch's own statistics): they
    differ from the eval-mode samples, and the running averages are restored."""
    d = {**data(), "data_range": (-1.0, 1.0)}
    d["x_test"] = d["x_test"] * 2 - 1
    model = get_model("dcgan")((1, 28, 28), rng=0, ngf=4, ndf=4)
    G = model.networks()["G"]
    was = G.training
    before = [np.copy(np.asarray(v)) for _, v in G.named_buffers()]
    ctx = EvalContext(model, d, seed=0)
    plain = samples01(ctx, 64)
    stats = samples01(ctx, 64, batch_stats=True)
    assert plain.shape == stats.shape and not np.allclose(plain, stats)
    after = [np.asarray(v) for _, v in G.named_buffers()]
    assert before and all(np.array_equal(a, b) for a, b in zip(before, after))
    assert G.training == was
    r = get_evaluator("lenet-scores")(ctx, n_samples=64, batch_stats=True)
    assert np.isfinite(r["lenet_fd"])
