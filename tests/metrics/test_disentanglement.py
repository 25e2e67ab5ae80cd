"""The β-VAE disentanglement metric on known cases: a perfect factor encoder scores ~100 %,
an encoder of 3 of the 5 factors ~80 % (the two factors it ignores look alike), a random
encoder ~chance; the pair features and the hand-written logistic regression."""
import numpy as np
import pytest

from scratchgan.data import dsprites as D
from scratchgan.metrics import LinearSoftmax, beta_vae_metric, pair_features

SIZES = D.FACTOR_SIZES


def factors_as_images(classes):
    """The 'images' of the known cases: the factor indices themselves, scaled to [0, 1)."""
    return np.asarray(classes, np.float64) / np.array(SIZES, np.float64)


def perfect(x):
    return x


def three_factors(x):
    """Encodes scale, pos_x and pos_y only, mixed with a fixed rotation (still linear)."""
    r = np.random.default_rng(5).standard_normal((3, 3))
    return x[:, [1, 3, 4]] @ r


def test_pairs_share_exactly_factor_k():
    f, y = pair_features(perfect, factors_as_images, SIZES, 200, np.random.default_rng(0), L=16)
    assert f.shape == (200, 5) and set(np.unique(y)) == set(range(5))
    np.testing.assert_array_equal(f[np.arange(200), y], 0.0)          # shared: no difference
    others = f.copy()
    others[np.arange(200), y] = np.nan
    assert np.nanmin(others) > 0


def test_perfect_encoder_scores_near_100():
    r = beta_vae_metric(perfect, factors_as_images, SIZES, seed=0, L=64, n_train=1000, n_eval=1000)
    assert r["eval_accuracy"] >= 0.99 and r["chance"] == 0.2 and r["num_factors"] == 5


def test_three_of_five_factors_scores_about_80():
    r = beta_vae_metric(three_factors, factors_as_images, SIZES, seed=1, L=64, n_train=2000,
                        n_eval=2000)
    assert 0.72 <= r["eval_accuracy"] <= 0.88, r


def test_random_encoder_scores_near_chance():
    g = np.random.default_rng(2)
    enc = lambda x: g.standard_normal((len(x), 10))  # noqa: E731
    r = beta_vae_metric(enc, factors_as_images, SIZES, seed=2, L=64, n_train=2000, n_eval=2000)
    assert abs(r["eval_accuracy"] - 0.2) < 0.04, r


def test_on_rendered_images_with_a_pixel_encoder():
    """Through the real renderer: an 'encoder' of the centroid and the pixel count captures
    pos_x, pos_y and scale, so the score is far above chance."""
    def enc(imgs):
        im = imgs.reshape(len(imgs), 64, 64).astype(np.float64)
        n = im.sum(axis=(1, 2))
        g = np.arange(64)
        return np.stack([(im.sum(axis=1) * g).sum(1) / n, (im.sum(axis=2) * g).sum(1) / n,
                         np.sqrt(n)], axis=1)
    images = lambda c: D.render_classes(c)  # noqa: E731
    r = beta_vae_metric(enc, images, SIZES, seed=3, L=16, n_train=300, n_eval=300)
    assert r["eval_accuracy"] > 0.6, r


def test_logistic_regression_fits_and_is_at_its_optimum():
    g = np.random.default_rng(4)
    w = g.standard_normal((3, 4))
    f = g.standard_normal((3000, 4)) * np.array([1.0, 10.0, 0.1, 3.0])
    p = np.exp(f @ w.T)
    p /= p.sum(1, keepdims=True)
    y = np.array([g.choice(3, p=pi) for pi in p])
    clf = LinearSoftmax(l2=1e-3).fit(f, y)
    # stationarity: the gradient of the objective vanishes at the fitted parameters
    F = np.concatenate([(f - clf.mean_) / clf.scale_, np.ones((len(f), 1))], axis=1)
    theta = np.concatenate([clf.coef_, clf.intercept_[:, None]], axis=1)
    logits = F @ theta.T
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    grad = (P - np.eye(3)[y]).T @ F / len(f)
    grad[:, :-1] += 1e-3 * theta[:, :-1]
    grad[:, -1] += 1e-8 * theta[:, -1]
    assert np.abs(grad).max() < 1e-8
    # it predicts as well as the true model does (the Bayes rule)
    assert clf.score(f, y) >= (p.argmax(1) == y).mean() - 0.01
    with pytest.raises(ValueError, match="features"):
        LinearSoftmax().fit(f[:, 0], y)
