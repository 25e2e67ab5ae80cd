"""The evaluators of the encoder GAN, CVAE/M2 and β-VAE studies on cases whose answer is known:
1-NN and the linear probe, ALI's two mode counts, the CVAE's NCLL, M2's test error and its
labels-only reference, the β-VAE metric and the per-latent KL; and M2's choice of M1
dimensions (``m1_min_std``)."""
import math

import numpy as np
import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.data import dsprites as D
from scratchgan.data.toy import toy_modes, toy_std
from scratchgan.metrics.disentanglement import beta_vae_metric, per_latent_kl
from scratchgan.metrics.evaluators import EVALUATORS, EvalContext
from scratchgan.metrics.knn import (linear_probe_accuracy, nearest_neighbour_accuracy,
                                    reconstruction_distances, reference_and_evaluation)
from scratchgan.metrics.modes import responsibility_mode_count
from scratchgan.metrics.semisupervised import classification_error
from scratchgan.models import get_model


# -- 1-NN and the linear probe ------------------------------------------------------------------
def blobs(rng, n_per, k=4, spread=0.1, d=3):
    centres = 10.0 * np.eye(k, d)
    y = np.repeat(np.arange(k), n_per)
    return centres[y] + spread * rng.standard_normal((len(y), d)), y


def test_nearest_neighbour_known_cases():
    ref = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    ry = np.array([0, 1, 2])
    ev = np.array([[1.0, 1.0], [9.0, 2.0], [4.0, 0.5], [0.5, 7.0]])
    # nearest: 0, 1, 0 (4.0 is nearer 0 than 10), 2
    assert nearest_neighbour_accuracy(ref, ry, ev, np.array([0, 1, 0, 2])) == 100.0
    assert nearest_neighbour_accuracy(ref, ry, ev, np.array([0, 1, 1, 2])) == 75.0
    assert nearest_neighbour_accuracy(ref, ry, ev, np.array([1, 2, 2, 0])) == 0.0
    with pytest.raises(ValueError, match="labels"):
        nearest_neighbour_accuracy(ref, ry[:2], ev, np.zeros(4))


def test_probes_separate_blobs_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 50)
    xe, ye = blobs(rng, 50)
    assert nearest_neighbour_accuracy(x, y, xe, ye) == 100.0
    assert linear_probe_accuracy(x, y, xe, ye, epochs=30, batch=20) == 100.0
    ys = rng.permutation(y)               # labels that say nothing about the features
    assert nearest_neighbour_accuracy(x, ys, xe, ye) < 50.0
    assert linear_probe_accuracy(x, ys, xe, ye, epochs=30, batch=20) < 50.0


class FeatureModel:
    """features(x) -> {"penultimate": x, "output": x[:, :1]} on the host."""
    xp = np
    labelled_indices = [0, 5]
    num_classes = 2

    def to_model(self, a, dtype=None):
        return np.asarray(a)

    def features(self, x):
        x = np.asarray(x, dtype=np.float64)
        return {"penultimate": x, "output": x[:, :1]}


def test_knn_evaluator_splits_and_features():
    # class = sign of coordinate 1; coordinate 0 is noise
    rng = np.random.default_rng(1)

    def draw(n):
        x = np.stack([rng.standard_normal(n), rng.choice([-5.0, 5.0], n)], 1)
        return x, (x[:, 1] > 0).astype(int)
    x, y = draw(20)
    xt, yt = draw(40)
    data = {"name": "toy", "x_train": x, "y_train": y, "x_test": xt, "y_test": yt}
    ctx = EvalContext(model=FeatureModel(), data=data)
    r = EVALUATORS["knn"](ctx, features="penultimate", n_reference=12, evaluate_on="train_rest",
                          metric="nn")
    assert r == {"nn": 100.0, "nn_reference": 12, "nn_evaluated": 8}
    # coordinate 0 alone carries no label: far from perfect, and as an error it is 100 - acc
    acc = EVALUATORS["knn"](ctx, features="output", metric="a")["a"]
    err = EVALUATORS["knn"](ctx, features="output", metric="e", as_error=True)["e"]
    assert acc < 100.0 and err == pytest.approx(100.0 - acc)
    lab = EVALUATORS["knn"](ctx, features="penultimate", reference="labelled", metric="l")
    assert lab["l_reference"] == 2
    x_ref, y_ref, _, _ = reference_and_evaluation(ctx, "labelled")
    assert np.array_equal(x_ref, x[[0, 5]]) and np.array_equal(y_ref, y[[0, 5]])
    with pytest.raises(ValueError, match="train_rest"):
        EVALUATORS["knn"](ctx, evaluate_on="train_rest")          # no n_reference: nothing left
    with pytest.raises(ValueError, match="n_reference=50000"):
        EVALUATORS["knn"](ctx, n_reference=50000, evaluate_on="train_rest")
    # a dry run's stand-in set keeps the split's shape: the first 5/6 as neighbours
    dry = EvalContext(model=FeatureModel(), data=data, standin=True)
    r = EVALUATORS["knn"](dry, n_reference=50000, evaluate_on="train_rest", metric="d")
    assert (r["d_reference"], r["d_evaluated"]) == (16, 4)
    with pytest.raises(ValueError, match="gives"):
        EVALUATORS["knn"](ctx, features="hidden")


def test_linear_probe_evaluator_on_blobs():
    rng = np.random.default_rng(2)
    x, y = blobs(rng, 30, k=2)
    xt, yt = blobs(rng, 10, k=2)
    ctx = EvalContext(model=FeatureModel(), data={"name": "toy", "x_train": x, "y_train": y,
                                                  "x_test": xt, "y_test": yt})
    r = EVALUATORS["linear-probe"](ctx, features="penultimate", epochs=20, batch=10)
    assert r["probe_accuracy"] == 100.0 and r["probe_accuracy_evaluated"] == 20


def test_reconstruction_distances_known_cases():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert reconstruction_distances(x, x) == (0.0, pytest.approx((5 + 5 + 10) / 3))
    own, other = reconstruction_distances(x, x[::-1])      # reconstructions of the wrong rows
    assert own == pytest.approx((10 + 0 + 10) / 3) and own > 0

    class Identity(FeatureModel):
        def reconstruct(self, xb):
            return xb
    ctx = EvalContext(model=Identity(), data={"x_test": x})
    assert EVALUATORS["reconstruction-l2"](ctx)["recon_l2"] == 0.0


# -- mode counts ------------------------------------------------------------------------------
def test_responsibility_count_known_case():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    k, counts = responsibility_mode_count(np.array([[1.0, 1.0], [9.0, 2.0], [4.0, 0.5]]), centres)
    assert k == 2 and counts.tolist() == [2, 1, 0]


class PointModel:
    """A 'generator' that returns fixed points (cycled to n)."""

    def __init__(self, points):
        self.points = np.asarray(points, dtype=np.float64)

    def sample_noise(self, n, rng=None):
        return {"n": n}

    def generate(self, noise):
        return self.points[np.arange(noise["n"]) % len(self.points)]


def toy_ctx(points):
    return EvalContext(model=PointModel(points), data={"name": "grid25"})


def test_toy_modes_on_the_means_and_on_one_mode():
    centres = toy_modes("grid25")
    r = EVALUATORS["toy-modes"](toy_ctx(centres), n_samples=250)
    assert (r["modes_responsibility"], r["modes_3sigma"], r["within_3sigma_fraction"]) == \
        (25, 25, 1.0)
    r = EVALUATORS["toy-modes"](toy_ctx(centres[:1] + 0.5 * toy_std("grid25")), n_samples=100,
                                suffix="_x")
    assert (r["modes_responsibility_x"], r["modes_3sigma_x"], r["within_3sigma_fraction_x"]) == \
        (1, 1, 1.0)


def test_toy_modes_diffuse_samples_fill_the_cells_but_not_the_3sigma_discs():
    """The two counts disagree where they should: samples spread over the plane reach every
    nearest-mean cell but few land within 3σ of a mean."""
    g = np.random.default_rng(3).uniform(-5, 5, (10_000, 2))
    r = EVALUATORS["toy-modes"](toy_ctx(g), n_samples=10_000)
    assert r["modes_responsibility"] == 25
    # the 25 discs of radius 0.15 cover 25 π 0.15² / 100 = 1.8% of the square
    assert r["within_3sigma_fraction"] == pytest.approx(25 * math.pi * 0.15 ** 2 / 100, abs=0.006)
    assert r["modes_3sigma"] < 25 or r["within_3sigma_fraction"] < 0.05


def test_toy_modes_refusals_and_nonfinite():
    r = EVALUATORS["toy-modes"](toy_ctx([[np.nan, 0.0]]), n_samples=10)
    assert r["samples_finite"] == 0 and r["modes_responsibility"] == 0
    with pytest.raises(ValueError, match="toy mixture"):
        EVALUATORS["toy-modes"](EvalContext(model=PointModel([[0, 0]]), data={"name": "mnist"}))


# -- CVAE NCLL --------------------------------------------------------------------------------
def test_cvae_ncll_evaluator_matches_the_model_and_bounds():
    rng = np.random.default_rng(4)
    x = rng.random((40, 1, 28, 28)).astype(np.float32)
    m = get_model("cvae")((1, 28, 28), rng=0, hidden=16, latent_dim=4, n_revealed=2)
    ctx = EvalContext(model=m, data={"name": "mnist", "x_test": x})
    r = EVALUATORS["cvae-ncll"](ctx, n_samples=200, elbo_draws=20, batch_size=16)
    assert r["n_test"] == 40
    assert r["baseline_ncll"] == pytest.approx(float(np.mean(m.baseline_nll(x))), rel=1e-6)
    # the importance-sampled -log p(y|x) lies below the mean negative ELBO (Jensen)
    assert r["cvae_ncll_is"] < r["cvae_neg_elbo"]
    base = get_model("cvae")((1, 28, 28), rng=0, hidden=16, mode="baseline")
    rb = EVALUATORS["cvae-ncll"](EvalContext(model=base, data={"name": "mnist", "x_test": x}))
    assert set(rb) == {"baseline_ncll", "baseline_ncll_sem", "n_test"}
    with pytest.raises(ValueError, match="cvae model"):
        EVALUATORS["cvae-ncll"](EvalContext(model=FeatureModel(), data={"x_test": x}))


# -- M2: test error, labels-only reference, M1 dimensions ---------------------------------------
def test_classification_error_known_cases():
    y = np.array([0, 1, 2, 3])
    assert classification_error(lambda xb: xb, y, y) == 0.0
    assert classification_error(lambda xb: np.zeros(len(xb)), y, y) == 75.0
    with pytest.raises(ValueError):
        classification_error(lambda xb: xb, y, y[:3])


def prototype_data(rng, n_per, noise=0.05):
    """10 classes of 4x4 images: class c lights pixel c."""
    y = np.repeat(np.arange(10), n_per)
    x = np.full((len(y), 1, 4, 4), 0.1, np.float32)
    x.reshape(len(y), -1)[np.arange(len(y)), y] = 0.9
    return np.clip(x + noise * rng.standard_normal(x.shape), 0, 1).astype(np.float32), y


def test_classifier_error_and_labelled_reference_on_separable_images():
    rng = np.random.default_rng(5)
    x, y = prototype_data(rng, 20)
    xt, yt = prototype_data(rng, 10)
    m = get_model("m2")((1, 4, 4), rng=0, hidden=16, latent_dim=2, n_labels=20)
    m.attach_data(x, y)
    ctx = EvalContext(model=m, data={"name": "p", "x_train": x, "y_train": y, "x_test": xt,
                                     "y_test": yt})
    r = EVALUATORS["classifier-error"](ctx)
    assert r["test_error"] == classification_error(m.predict, xt, yt) and r["n_test"] == 100
    before = {k: p.data.copy() for k, p in m.classifier.named_parameters()}
    ref = EVALUATORS["labelled-classifier"](ctx, steps=300, lr=1e-2)
    assert ref["labelled_only_error"] == 0.0 and ref["n_labelled"] == 20
    # the model's own classifier is untouched
    assert all(np.array_equal(p.data, before[k]) for k, p in m.classifier.named_parameters())
    # labels that contradict the images: the reference cannot learn the test labels
    ctx.data["y_train"] = (y + 1) % 10
    m.attach_data(x, (y + 1) % 10)
    assert EVALUATORS["labelled-classifier"](ctx, steps=300, lr=1e-2)["labelled_only_error"] \
        == 100.0


def test_m1_min_std_keeps_the_dimensions_that_vary():
    """Dimensions whose M1 mean is constant (their encoder rows zeroed) are dropped; the others
    are kept; features and the Gaussian likelihood ignore the dropped ones; a checkpoint keeps
    the choice."""
    rng = np.random.default_rng(6)
    x, y = prototype_data(rng, 10, noise=0.2)
    hp = dict(features="m1", hidden=8, latent_dim=2, m1_hidden=8, m1_latent=4, m1_steps=2,
              m1_min_std=1e-3, n_labels=10, init_std=None)
    m = get_model("m2")((1, 4, 4), rng=0, **hp)
    last = m.m1_encoder[-1]
    last.weight.data[[1, 3]] = 0.0            # mu1 rows 1 and 3: constant
    m.attach_data(x, y)
    std = m.m1_posterior_std(x)
    assert std[1] == 0.0 and std[3] == 0.0 and std[0] > 1e-3 and std[2] > 1e-3
    for _ in range(2):                         # the M1 phase: nothing chosen yet
        m.train_step(x[:10])
    assert m.m1_kept is None
    last.weight.data[[1, 3]] = 0.0            # M1's steps moved them; constant again
    logs = m.train_step(x[:10])                # the first M2 step chooses
    assert m.m1_kept == [0, 2] and m.host_logs() == {"m1_dims_kept": 2}
    assert math.isfinite(float(logs["loss"]))
    f = m.features(m.to_model(x))
    assert np.all(f[:, [1, 3]] == 0) and np.any(f[:, [0, 2]] != 0)
    out = np.zeros((3, 8), np.float32)
    rows, _ = m._recon_rows(out, np.ones((3, 4), np.float32))
    assert np.allclose(rows, 0.5 * 2 * (math.log(2 * math.pi) + 1.0))    # 2 dims, not 4
    m2 = get_model("m2")((1, 4, 4), rng=1, **hp)
    m2.attach_data(x, y)
    m2.load_state_dict(m.state_dict())
    assert m2.m1_kept == [0, 2] and np.array_equal(m2.m1_mask, m.m1_mask)


def test_m1_min_std_refusals():
    with pytest.raises(ValueError, match="features='m1'"):
        get_model("m2")((1, 4, 4), rng=0, hidden=8, latent_dim=2, m1_min_std=0.1)
    with pytest.raises(ValueError, match="m1_min_std"):
        get_model("m2")((1, 4, 4), rng=0, features="m1", hidden=8, latent_dim=2, m1_min_std=-1)
    m = get_model("m2")((1, 4, 4), rng=0, features="m1", hidden=8, latent_dim=2, m1_hidden=8,
                        m1_latent=4, m1_steps=0, m1_min_std=1e6, n_labels=10)
    x, y = prototype_data(np.random.default_rng(7), 5)
    m.attach_data(x, y)
    with pytest.raises(ValueError, match="no M1 latent dimension"):
        m.train_step(x[:10])


# -- β-VAE metric and per-latent KL -----------------------------------------------------------
class FactorModel:
    """An 'encoder' whose code is the factor classes themselves (known from a lookup of the
    rendered images): a perfectly disentangled representation."""
    xp = np

    def __init__(self, classes_of):
        self.classes_of = classes_of

    def encode(self, x):
        return self.classes_of(x)


def test_beta_vae_metric_evaluator_is_the_metric_in_percent():
    seen = {}

    def images(classes):
        imgs = D.render_classes(classes).astype(np.float32)[:, None]
        for img, c in zip(imgs, classes):
            seen[img.tobytes()] = c
        return imgs

    def classes_of(x):
        return np.array([seen[img.tobytes()] for img in np.asarray(x, np.float32)], np.float64)

    # the direct call renders every image the evaluator will (the same seed draws the same
    # factors), so the lookup knows them
    model = FactorModel(classes_of)
    direct = beta_vae_metric(lambda x: classes_of(x), images, D.FACTOR_SIZES, seed=3, L=4,
                             n_train=60, n_eval=40)
    ctx = EvalContext(model=model, data={"name": "dsprites"}, seed=3)
    r = EVALUATORS["beta-vae-metric"](ctx, L=4, n_train=60, n_eval=40)
    assert r["disentanglement_metric"] == pytest.approx(100 * direct["eval_accuracy"])
    assert r["disentanglement_metric"] > 90.0 and r["chance"] == 20.0
    with pytest.raises(ValueError, match="dSprites"):
        EVALUATORS["beta-vae-metric"](EvalContext(model=model, data={"name": "mnist"}))


class PosteriorModel:
    def __init__(self, mu, log_std):
        self.mu, self.log_std = mu, log_std

    def posterior(self, x):
        n = len(x)
        return np.tile(self.mu, (n, 1)), np.tile(self.log_std, (n, 1))


def test_latent_kl_known_values():
    x = np.zeros((50, 1, 2, 2), np.float32)
    ctx = EvalContext(model=PosteriorModel(np.zeros(3), np.zeros(3)), data={"x_train": x})
    r = EVALUATORS["latent-kl"](ctx, n_images=20)
    assert r["kl_per_latent"] == [0.0, 0.0, 0.0] and r["active_latents"] == 0
    # mu = 1 in latent 0: KL 1/2; log std = log 2 in latent 2: KL (4 - 1 - 2 log 2) / 2
    ctx.model = PosteriorModel(np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, math.log(2)]))
    r = EVALUATORS["latent-kl"](ctx, n_images=20)
    want = [0.5, 0.0, 0.5 * (3 - 2 * math.log(2))]
    assert np.allclose(r["kl_per_latent"], want, atol=1e-12) and r["active_latents"] == 2
    assert r["kl_total"] == pytest.approx(sum(want))
    assert np.allclose(per_latent_kl(np.zeros((2, 1)), np.zeros((2, 1))), [0.0])


def test_m1_min_std_through_the_trainer_resumes_exactly(tmp_path):
    """The Trainer attaches the data, the M2 phase chooses the dimensions, and a run cut in two
    (checkpoint, resume) ends where the uncut run ends, with the same dimensions."""
    from scratchgan.train import Trainer
    x, y = prototype_data(np.random.default_rng(8), 10, noise=0.2)
    hp = dict(features="m1", hidden=8, latent_dim=2, m1_hidden=8, m1_latent=4, m1_steps=3,
              m1_min_std=0.0, n_labels=10, labelled_batch=5)

    def run(out, steps, resume=False):
        m = get_model("m2")((1, 4, 4), rng=0, **hp)
        Trainer(m, x, y, batch_size=10, steps=steps, out_dir=out, seed=1, progress=False,
                resume=resume, epoch_outputs=False, log_every=1).fit()
        return m
    whole = run(tmp_path / "a", 6)
    assert whole.m1_kept is not None and len(whole.m1_kept) >= 1
    run(tmp_path / "b", 4)
    cut = run(tmp_path / "b", 6, resume=True)
    assert cut.m1_kept == whole.m1_kept
    for k, net in whole.networks().items():
        for p, q in zip(net.parameters(), cut.networks()[k].parameters()):
            assert np.array_equal(p.data, q.data), k
