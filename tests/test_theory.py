"""Numerical checks of the GAN theory (scratchgan.theory); CPU, a few seconds."""
import math

import numpy as np
import pytest

from scratchgan import theory

LOG4 = math.log(4.0)


def test_trained_discriminator_matches_dstar(tmp_path):
    """A 1-32-32-1 tanh D trained with our Linear/Tanh, discriminator_loss and Adam.

    Bound 0.05 on max |D - D*| over the high-density region: with 256k fresh
    samples per class the statistical error of the fitted logit is small, and
    seeds 0-2 give 0.011-0.016, so 0.05 leaves a 3x margin for BLAS/platform
    differences. A broken D (swapped labels, wrong gradient sign, D stuck at 1/2)
    is off by > 0.3 in this region, since D* ranges over [0.02, 1] there.
    """
    r = theory.optimal_discriminator(seed=0, out=tmp_path)
    assert r["max_error"] < 0.05, r
    assert r["mean_error"] < 0.01, r
    # D* maximizes V pointwise: a trained D is at most at the optimum, and close to it
    assert r["value_trained"] <= r["value_optimal"] + 1e-6
    assert r["value_optimal"] - r["value_trained"] < 5e-3
    assert (tmp_path / "dstar.png").exists()


def test_dstar_formula_is_the_pointwise_maximizer():
    # a log y + b log(1 - y) is maximized at y = a / (a + b): compare with a fine scan
    x = np.array([-1.0, 0.5, 1.7, 2.5])
    ds = theory.analytic_dstar(x)
    from scipy import stats
    a, b = stats.norm.pdf(x, 0, 1), stats.norm.pdf(x, 2, 0.5)
    y = np.linspace(1e-6, 1 - 1e-6, 200001)[:, None]
    best = y[np.argmax(a * np.log(y) + b * np.log(1 - y), axis=0), 0]
    np.testing.assert_allclose(ds, best, atol=1e-5)


def test_value_at_optimum_is_two_jsd_minus_log4(tmp_path):
    r = theory.value_identity(out=tmp_path)
    assert r["max_abs_diff"] < 1e-9, r["max_abs_diff"]
    rows = r["rows"]
    # identical distributions: JSD = 0 and V = -log 4, the global minimum of C(G)
    assert abs(rows[0]["jsd"]) < 1e-12 and abs(rows[0]["value"] + LOG4) < 1e-10
    for row in rows:
        assert 0.0 <= row["jsd"] <= math.log(2.0) + 1e-12
        assert row["value"] >= -LOG4 - 1e-12
    # far-apart Gaussians: JSD approaches log 2, V approaches 0
    assert rows[-1]["jsd"] > 0.68
    assert (tmp_path / "value_jsd.png").exists()


def test_value_identity_against_equal_variance_closed_form():
    # for N(0,1) vs N(d,1), D* = sigmoid(d^2/2 - d x); V is independent of everything but d.
    # Cross-check V(D*) by Monte Carlo with many samples (independent of the quadrature).
    d = 2.0
    rng = np.random.default_rng(0)
    xp, xq = rng.normal(0, 1, 400000), rng.normal(d, 1, 400000)
    logit = lambda x: d * d / 2 - d * x
    mc = np.mean(-np.logaddexp(0, -logit(xp))) + np.mean(-np.logaddexp(0, logit(xq)))
    v = theory.value_at_optimum((0.0, 1.0), (d, 1.0))["value"]
    assert abs(mc - v) < 5e-3     # MC standard error here is about 1e-3


def test_jsd_saturates_while_emd_grows(tmp_path):
    r = theory.jsd_vs_emd(out=tmp_path)
    t, jsd, emd = map(np.asarray, (r["shifts"], r["jsd"], r["emd"]))
    assert r["max_jsd_error"] < 1e-9 and r["max_emd_error"] < 1e-9
    disjoint = t >= 1.0
    np.testing.assert_allclose(jsd[disjoint], math.log(2.0), atol=1e-9)   # flat: zero gradient
    np.testing.assert_allclose(np.diff(emd), np.diff(t), atol=1e-9)      # slope 1 everywhere
    assert np.all(np.diff(jsd[~disjoint]) > 0)
    assert (tmp_path / "jsd_vs_emd.png").exists()


def test_minimax_generator_gradient_vanishes(tmp_path):
    r = theory.generator_gradients(out=tmp_path)
    d = np.asarray(r["d"])
    g_mm, g_ns = np.abs(r["grad_minimax"]), np.abs(r["grad_nonsaturating"])
    assert r["max_err_minimax"] < 1e-12 and r["max_err_nonsaturating"] < 1e-12
    low = d < 1e-3
    assert low.sum() > 10
    assert g_mm[low].max() < 1e-3            # vanishes with D(G(z))
    assert g_ns[low].min() > 0.999           # stays near 1
    i = np.argmin(d)                         # D ~ 2e-9 at logit -20
    assert g_mm[i] == pytest.approx(d[i], rel=1e-9) and g_ns[i] == pytest.approx(1.0, abs=1e-8)
    assert (tmp_path / "generator_gradients.png").exists()


def test_cli_writes_plots(tmp_path):
    assert theory.main(["emd", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "jsd_vs_emd.png").exists() and (tmp_path / "theory.json").exists()
