"""Seconds-of-CPU quality checks on 2-D toy data.

* GAN (toy variant: the paper's ReLU G and maxout + dropout D, scaled down; Adam) on ring8
  (8 Gaussians of std 0.02 on a circle of radius 2): a mode counts as covered when at least
  20 of 2000 samples (1 %; a uniform share is 250) lie within 3 std (0.06) of its centre.
  The run passes when, at one of the checkpoints 1500/2000/2500 steps (batch 256), at least
  7 of the 8 modes are covered. Plain GANs can drop a mode, hence 7 and several checkpoints.
* AAE (Adam variant, code 2, Gaussian prior N(0, I)) on ring8: the aggregated posterior's
  first two moments, averaged over the last 500 of 1500 steps (the adversarial game
  oscillates around its fixed point), are within 0.2 (mean) and 0.25 (covariance entries)
  of the prior's. A control without the regularization phase fails the same criterion.
"""
import numpy as np

from scratchgan.data.toy import sample_toy, toy_modes, toy_std
from scratchgan.models import get_model


def ring8_coverage(samples, min_count=20):
    modes, s = toy_modes("ring8"), toy_std("ring8")
    d = np.linalg.norm(samples[:, None, :] - modes[None], axis=2)
    counts = (d < 3 * s).sum(axis=0)
    return int((counts >= min_count).sum()), counts


def test_gan_covers_ring8_modes():
    rng = np.random.default_rng(1)
    model = get_model("gan")((2,), rng=1)
    assert model.arch == "toy" and model.hp["optimizer"] == "adam"
    batch, history = 256, []
    for step in range(1, 2501):
        model.train_step(sample_toy("ring8", batch, rng))
        if step in (1500, 2000, 2500):
            g = model.generate(model.sample_noise(2000, rng=np.random.default_rng(0)))
            covered, counts = ring8_coverage(g)
            history.append((step, covered, counts.tolist()))
            if covered >= 7:
                break
    assert max(c for _, c, _ in history) >= 7, history


def aae_code_moments(lr_reg, steps=1500, seed=0):
    rng = np.random.default_rng(seed)
    x = sample_toy("ring8", 4000, rng)
    model = get_model("aae")((2,), rng=seed, output="linear", code_dim=2, prior="gaussian",
                             hidden=64, d_hidden=64, init_std=0.1, optimizer="adam",
                             lr_recon=1e-3, lr_reg=lr_reg)
    means, covs = [], []
    for i in range(steps):
        model.train_step(x[rng.integers(0, len(x), 100)])
        if i >= steps - 500 and (i + 1) % 25 == 0:
            z = model.encode(x[:1000])
            means.append(z.mean(axis=0))
            covs.append(np.cov(z.T))
    return np.mean(means, axis=0), np.mean(covs, axis=0)


def moments_match(mean, cov):
    return bool(np.all(np.abs(mean) < 0.2) and np.all(np.abs(cov - np.eye(2)) < 0.25))


def test_aae_codes_match_gaussian_prior_moments():
    mean, cov = aae_code_moments(lr_reg=1e-3)
    assert moments_match(mean, cov), (mean, cov)


def test_aae_moment_check_fails_without_regularization():
    # lr_reg ~ 0: the encoder only reconstructs; its codes need not follow N(0, I)
    mean, cov = aae_code_moments(lr_reg=1e-12, steps=600)
    assert not moments_match(mean, cov), (mean, cov)
