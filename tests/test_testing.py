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


# ----------------------------------------------------------------------------------------------
# batch_means_test, p-values, Holm, required_samples
# ----------------------------------------------------------------------------------------------
from gsbref.testing import batch_means_test, holm, required_samples  # noqa: E402


def test_p_values_match_the_critical_value():
    """The Bonferroni p-value is below false_alarm exactly when |t| exceeds the critical value."""
    rng = np.random.default_rng(5)
    for bias in (0.0, 0.02, 0.05):
        s = {k: t * (1 + bias) + rng.standard_normal((3000, *np.shape(t))) for k, t in TRUTH.items()}
        r = batch_means_test(s, TRUTH, false_alarm=1e-3)
        assert r.components == 3
        assert (r.p_value <= 1e-3) == (not r.passed)
        # the p-values are those of Student t with batches - 1 degrees of freedom
        for k in TRUTH:
            np.testing.assert_allclose(r.p_values[k], 2 * stats.t.sf(np.abs(r.t[k]), r.batches - 1))


def test_holm_against_definition():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12))
        adj = holm(p)
        m = p.size
        order = np.argsort(p)
        want = np.empty(m)
        running = 0.0
        for i, j in enumerate(order):  # adjusted p_(i) = max_{l <= i} (m - l) p_(l), capped at 1
            running = max(running, min(1.0, (m - i) * p[j]))
            want[j] = running
        np.testing.assert_allclose(adj, want)
        assert np.all(adj >= p) and np.all(adj <= np.minimum(1, m * p) + 1e-15)  # between raw and Bonferroni
    with pytest.raises(ValueError):
        holm([0.5, 1.5])


def test_se_floor_and_allowance():
    truth = {"a": np.array([2.0, 0.0])}
    const = {"a": np.tile([2.0 + 1e-12, 0.0], (600, 1))}  # deterministic, right to ~1e-12
    assert not batch_means_test(const, truth).passed  # plain t-test: zero standard error, nonzero difference
    assert batch_means_test(const, truth, se_floor_rtol=1.5e-8).passed
    off = {"a": np.tile([2.0 * (1 + 1e-6), 0.0], (600, 1))}
    assert not batch_means_test(off, truth, se_floor_rtol=1.5e-8).passed  # 1e-6 relative is caught
    assert batch_means_test(off, truth, se_floor_rtol=1.5e-8, allowance={"a": np.array([3e-6, 0.0])}).passed


def test_required_samples_detects_with_the_stated_probability():
    """At the designed n a shift is detected in (nearly) every one of 200 seeds: the design asks for
    probability 0.999, so more than 2 misses (Binomial(200, 1e-3) exceeds 2 with probability 1e-3)
    would refute it."""
    n = required_samples(1.0, 0.05, false_alarm=1e-3, components=1, detect=0.999)
    truth = {"a": np.array(1.0)}
    misses = 0
    for seed in range(200):
        s = {"a": 1.05 + np.random.default_rng(seed).standard_normal(n)}
        misses += batch_means_test(s, truth, false_alarm=1e-3).passed
    assert misses <= 2, (n, misses)
    # halving the shift quadruples n (up to rounding)
    assert abs(required_samples(1.0, 0.025, false_alarm=1e-3) / n - 4) < 0.01
    with pytest.raises(ValueError, match="zero"):
        required_samples(1.0, 0.0, false_alarm=1e-3)
