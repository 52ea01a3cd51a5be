"""gsbref.testing: the batch-means t-test holds its false-alarm rate and catches small biases.

Synthetic estimators (known truth plus noise) keep this fast: the calibration of the test does not
depend on where the per-sample estimates come from.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import gsbref
from gsbref.testing import assert_close_to_truth, assert_unbiased, power

TRUTH = {"loc": np.array([0.5, -1.0]), "scale": np.array(2.0)}
DIST = gsbref.Gaussian([0.0, 0.0], 1.0)  # only used as a label here: truth is passed explicitly


def _noisy(bias=0.0, noise="normal"):
    def est(dist, f, n, rng):
        out = {}
        for k, t in TRUTH.items():
            shape = (n, *np.shape(t))
            e = rng.standard_normal(shape) if noise == "normal" else rng.standard_t(3, shape)
            out[k] = t * (1 + bias) + e
        return out

    return est


@pytest.mark.parametrize("noise", ["normal", "student-t3"])
def test_false_alarm_rate_holds(noise):
    """200 seeds at false_alarm = 0.05: the number of failures is at most the 0.999 quantile of
    Binomial(200, 0.05) = 21 (a correct test exceeds it with probability < 1e-3)."""
    fails = 0
    for seed in range(200):
        try:
            assert_unbiased(_noisy(noise=noise), DIST, "sum(z)", n_samples=600, rng=seed, false_alarm=0.05, truth=TRUTH)
        except AssertionError:
            fails += 1
    assert fails <= stats.binom.ppf(0.999, 200, 0.05), fails


def test_detects_small_bias_and_reports():
    est = _noisy(bias=0.01)
    with pytest.raises(AssertionError) as info:
        assert_unbiased(est, DIST, "sum(z)", n_samples=3_000_000, rng=1, false_alarm=1e-6, truth=TRUTH)
    msg = str(info.value)
    assert "estimate" in msg and "truth" in msg and "t = " in msg and "n = 3000000" in msg


def test_power_predicts_detection():
    # standard error of the mean 1/sqrt(n); the detectable relative bias is (t_crit + t_0.9) se / |truth|
    from gsbref import testing

    orig = testing.exact_gradient
    testing.exact_gradient = lambda *a, **k: TRUTH
    try:
        p = power(_noisy(), DIST, "sum(z)", n_samples=120_000, rng=2, false_alarm=1e-6)
    finally:
        testing.exact_gradient = orig
    crit = stats.t.ppf(1 - 1e-6 / 6, 29) + stats.t.ppf(0.9, 29)
    expect = crit / np.sqrt(120_000) / np.abs(TRUTH["loc"])
    np.testing.assert_allclose(p["loc"], expect, rtol=0.5)  # se measured from 30 batch means: +-40 % at 3 sigma


def test_rejects_nonfinite_and_shape_mismatch():
    def bad(dist, f, n, rng):
        out = _noisy()(dist, f, n, rng)
        out["scale"][0] = np.nan
        return out

    with pytest.raises(AssertionError, match="non-finite"):
        assert_unbiased(bad, DIST, "sum(z)", n_samples=600, rng=0, truth=TRUTH)
    with pytest.raises(ValueError, match="false_alarm"):
        assert_unbiased(_noisy(), DIST, "sum(z)", n_samples=600, rng=0, truth=TRUTH, false_alarm=2)


def test_assert_close_to_truth():
    d = gsbref.Gaussian(0.3, 1.2)
    assert_close_to_truth(2 * (0.3 - 0.49), d, "sum((z - 0.49)**2)", "loc", rtol=1e-12)
    with pytest.raises(AssertionError, match="relative error"):
        assert_close_to_truth(1.02 * 2 * (0.3 - 0.49), d, "sum((z - 0.49)**2)", "loc", rtol=1e-3)
