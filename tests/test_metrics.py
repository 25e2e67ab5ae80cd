"""Metrics on cases with known answers (scratchgan.metrics)."""
import math

import numpy as np
import pytest
import scipy.linalg
from scipy.special import logsumexp as sp_logsumexp

from scratchgan.gradcheck import gradcheck
from scratchgan.metrics import (categorical_code_accuracy, evaluate_parzen, evaluate_vae, feature_statistics,
                                frechet_distance, frechet_distance_from_features, inception_score,
                                inception_score_from_log_probs, logmeanexp, mode_statistics,
                                parzen_log_likelihood, parzen_log_prob, parzen_select_sigma)
from scratchgan.metrics.likelihood import (bernoulli_log_prob, elbo_per_example,
                                           iw_log_likelihood_per_example)
from scratchgan.metrics.pool import MaxPool2d, maxpool_backward, maxpool_forward


# -- log-mean-exp ---------------------------------------------------------------------
def test_logmeanexp_matches_naive_on_small_inputs(rng):
    a = rng.normal(size=(5, 7))
    np.testing.assert_allclose(logmeanexp(a, axis=1), np.log(np.mean(np.exp(a), axis=1)), rtol=1e-12)
    np.testing.assert_allclose(logmeanexp(a, axis=0), np.log(np.mean(np.exp(a), axis=0)), rtol=1e-12)


def test_logmeanexp_is_stable_where_naive_underflows():
    a = np.array([[-2000.0, -2001.0, -2002.0]])
    with np.errstate(divide="ignore"):
        assert np.isneginf(np.log(np.mean(np.exp(a))))
    expected = -2000.0 + math.log((1 + math.exp(-1) + math.exp(-2)) / 3)
    assert logmeanexp(a, axis=1)[0] == pytest.approx(expected, rel=1e-14)
    assert logmeanexp(np.array([[1000.0, 1000.0]]), axis=1)[0] == pytest.approx(1000.0)


# -- Parzen -----------------------------------------------------------------------------
def _parzen_direct(mu, x, sigma):
    d = mu.shape[1]
    d2 = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    return sp_logsumexp(-d2 / (2 * sigma ** 2), axis=1) - math.log(mu.shape[0]) - d * math.log(
        sigma * math.sqrt(2 * math.pi))


@pytest.mark.parametrize("sigma", [0.1, 0.3, 1.0])
def test_parzen_matches_direct_formula_with_batching_and_chunks(rng, sigma):
    mu = rng.random((37, 12))
    x = rng.random((23, 12))
    ref = _parzen_direct(mu, x, sigma)
    got = parzen_log_prob(mu, x, sigma, batch_size=5, chunk_size=8)   # uneven batches and chunks
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-8)
    mean, se = parzen_log_likelihood(mu.astype(np.float32), x.astype(np.float32), sigma, batch_size=7)
    assert mean == pytest.approx(ref.mean(), rel=1e-6)
    assert se == pytest.approx(ref.std() / math.sqrt(ref.size), rel=1e-5)


def test_parzen_images_shape_and_far_points_finite(rng):
    mu = rng.random((10, 1, 28, 28))
    x = mu[:3] + 0.9                       # ~ -6e4 / (2 * 0.01) exponents: naive exp underflows
    lp = parzen_log_prob(mu, x, 0.1)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp, _parzen_direct(mu.reshape(10, -1), x.reshape(3, -1), 0.1), rtol=1e-10)


def test_parzen_selects_the_best_sigma(rng):
    # samples and validation from the same N(0, 0.3^2 I) in 2-D: bandwidths near the data scale win
    mu = rng.normal(0, 0.3, (2000, 2))
    valid = rng.normal(0, 0.3, (500, 2))
    best, scores = parzen_select_sigma(mu, valid, np.logspace(-2, 1, 10))
    assert best == max(scores, key=scores.get)
    assert 0.03 < best < 0.5
    r = evaluate_parzen(mu, valid, rng.normal(0, 0.3, (500, 2)), sigmas=np.logspace(-2, 1, 10))
    true_ll = -math.log(2 * math.pi * 0.09) - 1.0          # E log N(x; 0, .09 I) in 2-D
    assert abs(r["mean"] - true_ll) < 0.2 and r["se"] > 0


def test_parzen_training_data_beats_noise(rng):
    # clustered "images": real samples sit near the clusters, noise does not
    centres = rng.random((10, 64))
    def draw(n):
        return np.clip(centres[rng.integers(0, 10, n)] + 0.05 * rng.normal(size=(n, 64)), 0, 1)
    train, valid, test = draw(1000), draw(200), draw(200)
    noise = rng.random((1000, 64))
    good = evaluate_parzen(train, valid, test)
    bad = evaluate_parzen(noise, valid, test)
    assert good["mean"] > bad["mean"] + 10 * (good["se"] + bad["se"])


def test_parzen_on_mnist_train_beats_noise(data_dir):
    from scratchgan.metrics.classifier import load_mnist_arrays
    xtr, _ = load_mnist_arrays("train", data_dir)
    xte, _ = load_mnist_arrays("test", data_dir)
    train = xtr[:1000].reshape(1000, -1) / 255.0
    valid = xtr[50000:50200].reshape(200, -1) / 255.0
    test = xte[:200].reshape(200, -1) / 255.0
    noise = np.random.default_rng(0).random((1000, 784))
    good, bad = evaluate_parzen(train, valid, test), evaluate_parzen(noise, valid, test)
    assert good["mean"] > bad["mean"] + 100


# -- Inception Score -------------------------------------------------------------------------
def test_inception_score_of_uniform_predictions_is_one():
    m, s = inception_score(np.full((1000, 10), 0.1), splits=10)
    assert m == pytest.approx(1.0, abs=1e-12) and s == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_balanced_one_hots_is_num_classes():
    for k in (2, 10):
        probs = np.eye(k)[np.arange(100 * k) % k]             # exact zeros: 0 log 0 must be 0
        m, s = inception_score(probs, splits=10)
        assert m == pytest.approx(k, rel=1e-12) and s < 1e-12


def test_inception_score_from_log_probs_handles_large_logits(rng):
    logits = rng.normal(size=(500, 10)) * 300.0                # nearly one-hot
    logp = logits - sp_logsumexp(logits, axis=1, keepdims=True)
    m, _ = inception_score_from_log_probs(logp, splits=5)
    p = np.exp(logp)
    py = p.reshape(5, 100, 10).mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.nansum(p.reshape(5, 100, 10) * (logp.reshape(5, 100, 10) - np.log(py)[:, None]), axis=2)
    assert np.isfinite(m) and m == pytest.approx(np.exp(kl.mean(1)).mean(), rel=1e-9)
    assert 1.0 < m <= 10.0


# -- Fréchet distance -----------------------------------------------------------------------
def test_frechet_distance_of_a_set_with_itself_is_zero(rng):
    f = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))
    assert abs(frechet_distance_from_features(f, f)) < 1e-6


def _fd_closed_form(m1, c1, m2, c2):
    r1 = scipy.linalg.sqrtm(c1).real
    return float(((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(r1 @ c2 @ r1).real))


def test_frechet_distance_matches_closed_form(rng):
    # diagonal: FD = ||m1 - m2||^2 + sum (sqrt a - sqrt b)^2
    a, b = rng.random(5) + 0.5, rng.random(5) + 0.5
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # general (non-commuting) covariances, via the symmetric form (C1^1/2 C2 C1^1/2)^1/2
    A, B = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    c1, c2 = A @ A.T + 0.1 * np.eye(6), B @ B.T + 0.1 * np.eye(6)
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(_fd_closed_form(m1, c1, m2, c2), rel=1e-8)


def test_frechet_distance_from_gaussian_samples(rng):
    A = rng.normal(size=(4, 4)) * 0.5
    c1, c2 = np.eye(4), A @ A.T + 0.5 * np.eye(4)
    m1, m2 = np.zeros(4), np.array([1.0, 0.0, -1.0, 0.5])
    f1 = rng.multivariate_normal(m1, c1, size=50000)
    f2 = rng.multivariate_normal(m2, c2, size=50000)
    exact = _fd_closed_form(m1, c1, m2, c2)
    assert frechet_distance_from_features(f1, f2) == pytest.approx(exact, rel=0.03)


def test_frechet_distance_singular_covariance_is_finite(rng):
    f = rng.normal(size=(50, 3)) @ np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    m, c = feature_statistics(f)                         # rank 2 of 3
    assert np.isfinite(frechet_distance(m, c, m + 1, c))


# -- InfoGAN code accuracy --------------------------------------------------------------------------
def test_hungarian_accuracy_of_permuted_labelling_is_one(rng):
    labels = rng.integers(0, 10, 1000)
    perm = rng.permutation(10)
    r = categorical_code_accuracy(perm[labels], labels)
    assert r["accuracy"] == 1.0 and r["error"] == 0.0
    assert all(r["mapping"][int(perm[d])] == d for d in range(10))


def test_hungarian_accuracy_partial_and_from_scores():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    codes = np.array([2, 2, 1, 0, 0, 0, 1, 1, 1, 2])   # best: 2->0, 0->1, 1->2 => 2 + 3 + 3 correct
    assert categorical_code_accuracy(codes, labels)["accuracy"] == pytest.approx(0.8)
    scores = np.eye(3)[codes] * 5.0
    assert categorical_code_accuracy(scores, labels)["accuracy"] == pytest.approx(0.8)
    # a greedy (per-code majority) mapping would send two codes to the same label; matching cannot
    assert categorical_code_accuracy(np.zeros(10, int), labels, num_codes=3)["accuracy"] == pytest.approx(0.4)


# -- toy 2-D mode coverage ----------------------------------------------------------------------------
def _ring(k=8, r=2.0):
    t = 2 * np.pi * np.arange(k) / k
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def test_mode_statistics_perfect_and_collapsed(rng):
    c, std = _ring(), 0.02
    x = c[rng.integers(0, 8, 20000)] + std * rng.normal(size=(20000, 2))
    r = mode_statistics(x, c, std)
    assert r["modes_covered"] == 8
    # P(|N(0, I_2)| <= 3) = 1 - exp(-9/2)
    assert r["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.003)
    assert r["kl_to_uniform"] < 0.01
    collapsed = c[rng.integers(0, 3, 2000)] + std * rng.normal(size=(2000, 2))
    collapsed = np.concatenate([collapsed, c[3:] + 0.0])     # one stray point on each other mode
    r = mode_statistics(collapsed, c, std)
    assert r["modes_covered"] == 3 and r["counts"][3] == 1
    noise = rng.uniform(-3, 3, (2000, 2))
    assert mode_statistics(noise, c, std)["high_quality_fraction"] < 0.02


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mode_statistics_on_the_builtin_toy_sets(name):
    from scratchgan.data import toy
    x = toy.sample_toy(name, 5000, np.random.default_rng(0))
    centres = toy.toy_modes(name)
    r = mode_statistics(x, centres, toy.toy_std(name))
    assert r["modes_covered"] == len(centres)
    assert r["high_quality_fraction"] > 0.97          # 1 - exp(-4.5) = 0.989 for isotropic modes


def test_mode_statistics_per_axis_std():
    c = np.zeros((1, 2))
    x = np.array([[0.5, 0.0], [0.0, 0.5]])
    r = mode_statistics(x, c, std=[0.2, 1.0])      # 2.5 and 0.5 std units: both within 3
    assert r["high_quality_fraction"] == 1.0
    r = mode_statistics(x, c, std=[0.1, 1.0])      # 5 std units: out
    assert r["high_quality_fraction"] == 0.5


# -- VAE likelihood ------------------------------------------------------------------------------------
def _linear_gaussian(rng, dx=5, dz=2, s=0.5):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I): log p(x) = log N(x; b, W W^T + s^2 I) exactly,
    and the exact posterior is Gaussian: Sigma = (I + W^T W / s^2)^-1, mu = Sigma W^T (x - b) / s^2."""
    W, b = rng.normal(size=(dx, dz)), rng.normal(size=dx)
    Sigma = np.linalg.inv(np.eye(dz) + W.T @ W / s ** 2)
    from scipy.stats import multivariate_normal
    logpx = lambda x: multivariate_normal(b, W @ W.T + s ** 2 * np.eye(dx)).logpdf(x)
    decode = lambda z: (z @ W.T + b, np.full((z.shape[0], dx), 2 * math.log(s)))
    return W, b, Sigma, s, logpx, decode


def test_importance_weighted_bound_approaches_exact_log_likelihood(rng):
    W, b, Sigma, s, logpx, decode = _linear_gaussian(rng)
    x = rng.normal(size=(40, 5)) + b
    exact = logpx(x)
    # a deliberately crude diagonal encoder: mean 0, unit variance (the prior)
    crude = lambda x: (np.zeros((x.shape[0], 2)), np.zeros((x.shape[0], 2)))
    elbo = elbo_per_example(x, crude, decode, np.random.default_rng(1), n_samples=200, likelihood="gaussian")
    iw5 = iw_log_likelihood_per_example(x, crude, decode, np.random.default_rng(2), 5, "gaussian")
    iw5000 = iw_log_likelihood_per_example(x, crude, decode, np.random.default_rng(3), 5000, "gaussian")
    assert elbo.mean() < iw5.mean() < iw5000.mean() <= exact.mean() + 0.02
    assert abs(iw5000.mean() - exact.mean()) < 0.1
    assert exact.mean() - elbo.mean() > 1.0            # the crude encoder's bound is loose


def test_elbo_is_tight_for_the_exact_diagonal_posterior(rng):
    # with W having orthogonal columns, the exact posterior is diagonal: ELBO = IW = log p(x) per sample
    dz, dx, s = 2, 4, 0.5
    W = np.linalg.qr(rng.normal(size=(dx, dz)))[0] * np.array([1.5, 0.7])
    b = rng.normal(size=dx)
    Sigma = np.linalg.inv(np.eye(dz) + W.T @ W / s ** 2)
    assert abs(Sigma[0, 1]) < 1e-12
    encode = lambda x: ((x - b) @ W @ Sigma / s ** 2, np.tile(np.log(np.diag(Sigma)), (x.shape[0], 1)))
    decode = lambda z: (z @ W.T + b, np.full((z.shape[0], dx), 2 * math.log(s)))
    from scipy.stats import multivariate_normal
    x = rng.normal(size=(10, dx))
    exact = multivariate_normal(b, W @ W.T + s ** 2 * np.eye(dx)).logpdf(x)
    iw = iw_log_likelihood_per_example(x, encode, decode, rng, 3, "gaussian")
    np.testing.assert_allclose(iw, exact, rtol=1e-10)        # every importance weight equals p(x)
    r = evaluate_vae(x, encode, decode, k=3, batch_size=4, likelihood="gaussian")
    assert r["iw_ll"] == pytest.approx(exact.mean(), rel=1e-10)
    assert r["elbo"] == pytest.approx(exact.mean(), abs=0.5)  # one-sample reconstruction term


def test_bernoulli_log_prob_from_logits_is_stable(rng):
    logits = rng.normal(size=(3, 6)) * 3
    x = (rng.random((3, 6)) > 0.5).astype(float)
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(bernoulli_log_prob(logits, x),
                               (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1), rtol=1e-12)
    big = np.array([[800.0, -800.0]])
    np.testing.assert_allclose(bernoulli_log_prob(big, np.array([[1.0, 0.0]])), [0.0], atol=1e-12)
    assert bernoulli_log_prob(big, np.array([[0.0, 0.0]]))[0] == pytest.approx(-800.0)


# -- max pooling -----------------------------------------------------------------------------------------
def _distinct_input(rng, shape):
    # a random permutation of well-separated values: no ties inside a window, so no kinks
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + 0.01 * rng.random(shape))


def test_maxpool_forward_matches_loops(rng):
    x = rng.normal(size=(2, 3, 6, 4))
    y, _ = maxpool_forward(x, 2)
    ref = np.array([[[[x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max() for j in range(2)] for i in range(3)]
                     for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(y, ref)


def test_maxpool_gradcheck(rng):
    x = _distinct_input(rng, (2, 2, 4, 6)).astype(np.float64)
    gradcheck(lambda x: maxpool_forward(x, 2), maxpool_backward, [x], names=["x"])


def test_maxpool_ties_route_gradient_once():
    x = np.zeros((1, 1, 2, 2))
    y, cache = maxpool_forward(x, 2)
    dx = maxpool_backward(np.ones_like(y), cache)
    assert dx.sum() == 1.0 and dx[0, 0, 0, 0] == 1.0


def test_maxpool_module_rejects_bad_shapes():
    with pytest.raises(ValueError, match="MaxPool2d"):
        MaxPool2d(2)(np.zeros((1, 1, 5, 4)))
    with pytest.raises(ValueError, match="MaxPool2d"):
        MaxPool2d(2)(np.zeros((4, 4)))


# -- the MNIST classifier -------------------------------------------------------------------------------
def test_lenet_shapes_and_gradient_flow(rng):
    from scratchgan.metrics.classifier import LeNet
    m = LeNet(rng=rng).astype(np.float64)
    x = rng.random((3, 1, 28, 28))
    y = m(x)
    assert y.shape == (3, 10)
    dx = m.backward(np.ones_like(y))
    assert dx.shape == x.shape
    f, l = m.features_and_logits(x.reshape(3, 784))
    assert f.shape == (3, 128) and np.all(f >= 0)
    np.testing.assert_allclose(l, y)


@pytest.fixture(scope="module")
def mnist_eval(data_dir):
    from scratchgan.metrics.classifier import load_classifier, load_mnist_arrays, weights_available
    assert weights_available(), "the LeNet weights ship with the package"
    xte, yte = load_mnist_arrays("test", data_dir)
    clf = load_classifier()
    feats, logp = clf.features_and_log_probs(xte)
    return clf, xte, yte, feats, logp


def test_classifier_accuracy_at_least_99_percent(mnist_eval):
    _, _, yte, _, logp = mnist_eval
    assert (logp.argmax(1) == yte).mean() >= 0.99


def test_real_test_images_score_near_the_is_ceiling(mnist_eval):
    clf, xte, _, feats, logp = mnist_eval
    m, s = inception_score_from_log_probs(logp, 10)
    assert m > 9.5 and s < 0.2
    # the same images given as floats in [-1, 1] (a tanh generator's range) give the same scores
    x = xte[:1000].astype(np.float32) / 127.5 - 1.0
    _, lp2 = clf.features_and_log_probs(x, data_range=(-1.0, 1.0))
    np.testing.assert_allclose(lp2, logp[:1000], atol=1e-3)
    # FD: the test set against itself is 0, against noise is large, half vs half is small
    noise = np.random.default_rng(0).random((2000, 1, 28, 28)).astype(np.float32)
    f_noise, lp_noise = clf.features_and_log_probs(noise)
    fd_half = frechet_distance_from_features(feats[:5000], feats[5000:])
    fd_noise = frechet_distance_from_features(f_noise, feats)
    assert fd_half < 0.05 * fd_noise
    assert inception_score_from_log_probs(lp_noise, 10)[0] < m


# -- GPU (CuPy) paths agree with NumPy ------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_metrics_match_cpu(rng):
    import cupy as cp
    mu, x = rng.random((300, 50)), rng.random((70, 50))
    cpu = parzen_log_prob(mu, x, 0.2, batch_size=16, chunk_size=64)
    gpu = parzen_log_prob(cp.asarray(mu), cp.asarray(x), 0.2, batch_size=16, chunk_size=64)
    assert isinstance(gpu, np.ndarray)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-10)
    logits = rng.normal(size=(200, 10)) * 4
    logp = logits - sp_logsumexp(logits, axis=1, keepdims=True)
    assert inception_score_from_log_probs(cp.asarray(logp), 10)[0] == pytest.approx(
        inception_score_from_log_probs(logp, 10)[0], rel=1e-10)
    xi = _distinct_input(rng, (2, 3, 8, 8))
    y, c = maxpool_forward(xi, 2)
    yg, cg = maxpool_forward(cp.asarray(xi), 2)
    np.testing.assert_array_equal(cp.asnumpy(yg), y)
    dy = rng.normal(size=y.shape)
    np.testing.assert_array_equal(cp.asnumpy(maxpool_backward(cp.asarray(dy), cg)), maxpool_backward(dy, c))
    W, b, Sigma, s, logpx, decode = _linear_gaussian(rng)
    enc = lambda x: (cp.zeros((x.shape[0], 2)), cp.zeros((x.shape[0], 2)))
    dec = lambda z: tuple(cp.asarray(a) for a in decode(cp.asnumpy(z)))
    xs = rng.normal(size=(8, 5)) + b
    r = evaluate_vae(cp.asarray(xs), enc, dec, k=4000, likelihood="gaussian")
    assert abs(r["iw_ll"] - logpx(xs).mean()) < 0.2


@pytest.mark.gpu
def test_gpu_classifier_matches_cpu(rng):
    from scratchgan.metrics.classifier import load_classifier, weights_available
    assert weights_available(), "the LeNet weights ship with the package"
    x = rng.random((64, 1, 28, 28)).astype(np.float32)
    f_cpu, lp_cpu = load_classifier().features_and_log_probs(x)
    f_gpu, lp_gpu = load_classifier(device="cuda").features_and_log_probs(x)
    np.testing.assert_allclose(lp_gpu, lp_cpu, atol=2e-3)
    np.testing.assert_allclose(f_gpu, f_cpu, atol=2e-3 * max(1.0, np.abs(f_cpu).max()))
