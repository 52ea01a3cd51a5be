"""Tests of ``method="pathwise"`` (reparameterisation gradients).

1. **Identity of the implementation** (deterministic, float64): the per-sample estimate
   (:func:`pathwise_at`) integrated over ``z`` by Gauss quadrature (Hermite for Gaussians, Laguerre
   on each half-line for Laplace, generalised Laguerre for the Exponential; ``n`` and ``2n`` nodes)
   equals the oracle gradient (mpmath, 20 digits).  Tolerance: the difference between the two node
   counts (the coarse rule's error bounds the fine one's for these geometrically converging rules)
   plus ``64 eps sum|w v|`` for rounding; the test also asserts that this tolerance is below
   ``1e-10`` relative, so it cannot pass vacuously.  The Cholesky backward pass of the covariance
   gradient is checked per sample against central finite differences of ``f(loc + chol(cov) eps)``
   in mpmath at 40 digits (step ``1e-12``: truncation ``~1e-24``, rounding ``~1e-28``).
2. **Monte Carlo** against the oracle with :func:`gsbref.testing.assert_unbiased` (batch means,
   Bonferroni over components).  Module-wide false-alarm rate ``ALPHA_MODULE = 1e-3``, split
   evenly (Bonferroni) over the ``N_CALLS`` calls of this module that check a correct estimator,
   so each call runs at ``FALSE_ALARM = ALPHA_MODULE / N_CALLS``.
3. **Power**: wrong variants -- sign flip, 2 % scale error, and estimator-specific mistakes (the
   covariance gradient with the off-diagonal pair counted as one variable, i.e. off-diagonals
   doubled; the Gaussian/Laplace scale through ``|z - loc|`` instead of ``z - loc``) -- must fail
   the same check at the same sample size.  The sample sizes put the 2 % shift at >= 2.5 times the
   critical value (measured t statistics in :func:`test_wrong_variants_are_rejected`).
4. Refusals: Gamma shape without ``shape="implicit"``, ChiSquared/Beta/Dirichlet, discrete families.

The Gamma family (scale explicit, shape implicit) is tested in ``test_estimators_implicit.py``.
Cases whose oracle takes > 5 s (two-dimensional non-separable quadrature) are ``slow``.
"""

from __future__ import annotations


import mpmath
import numpy as np
import pytest
from scipy import special as sp

import gsbref
from gsbref.catalog import case
from gsbref.estimators import estimate
from gsbref.estimators.pathwise import cholesky_backward, pathwise_at
from gsbref.testing import assert_unbiased, exact_gradient, gauss_points

EPS = np.finfo(float).eps
ALPHA_MODULE = 1e-3


def _est(method="pathwise", **options):
    def fn(dist, f, n, rng):
        return {k: e.samples for k, e in estimate(dist, f, method, n, rng, **options).items()}

    return fn


# ==============================================================================================
# 1. identity of the implementation: Gauss quadrature of the per-sample estimate
# ==============================================================================================
def _quad_mean(dist, f, n):
    z, W = gauss_points(dist, n)
    est = pathwise_at(dist, f, z)
    out = {}
    for k, v in est.items():
        v = v.reshape(len(W), -1)
        out[k] = ((W[:, None] * v).sum(0), np.abs(W[:, None] * v).sum(0))
    return out


# (case, nodes per coordinate); Laplace: per half-line
IDENTITY_CASES = [
    ("gaussian-quadratic", 8),
    ("gaussian-softplus", 60),
    ("gaussian-sin", 60),
    ("gaussian-prod", 8),
    ("gaussian-nonseparable", 8),
    ("mvn-quadratic", 8),
    ("laplace-quadratic", 8),
    ("laplace-exp-convergent", 40),
    ("exponential-softplus", 150),
    pytest.param("laplace-softplus", 150, marks=pytest.mark.slow),
    pytest.param("mvn-softplus", 60, marks=pytest.mark.slow),
    pytest.param("gaussian-logsigmoid-net", 60, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,n", IDENTITY_CASES)
def test_implementation_by_gauss_quadrature(name, n):
    dist, f = case(name).build()
    want = exact_gradient(dist, f, dps=20)
    coarse, fine = _quad_mean(dist, f, n), _quad_mean(dist, f, 2 * n)
    for k, w in want.items():
        w = np.asarray(w, float).reshape(-1)
        (q1, _), (q2, mag) = coarse[k], fine[k]
        tol = np.abs(q1 - q2) + 64 * EPS * mag
        assert np.all(tol <= 1e-10 * np.maximum(1, np.abs(w))), f"{name} {k}: quadrature not converged {tol}"
        assert np.all(np.abs(q2 - w) <= tol + 1e-15 * np.maximum(1, np.abs(w))), f"{name} d/d{k}: {q2} vs {w} (tol {tol})"


def test_dirac_is_backprop_exactly():
    """eq. 15: every sample is grad f(loc), equal to the oracle's gradient to float rounding."""
    for name in ("dirac-network", "dirac-prod"):
        dist, f = case(name).build()
        est = estimate(dist, f, "pathwise", 4, 0)["loc"].samples
        assert np.all(est == est[0])
        want = exact_gradient(dist, f, dps=20)["loc"]
        np.testing.assert_allclose(est[0], want, rtol=16 * EPS, atol=16 * EPS)


def _mp_chol(A):
    n = A.rows
    L = mpmath.zeros(n, n)
    for i in range(n):
        for j in range(i + 1):
            s = A[i, j] - mpmath.fsum(L[i, k] * L[j, k] for k in range(j))
            L[i, j] = mpmath.sqrt(s) if i == j else s / L[j, j]
    return L


def test_cholesky_backward_of_a_linear_function_of_cov():
    """For ``h(cov) = tr(A cov)`` (A symmetric) the L-gradient is ``2 A L`` and the symmetric
    cov-gradient is ``A`` itself; batched, 3 x 3, to ``64 eps`` of ``|A|`` times the condition
    number of L (the back substitutions)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3, 3))
    cov = X @ X.T + 0.5 * np.eye(3)
    L = np.linalg.cholesky(cov)
    A = rng.standard_normal((4, 3, 3))
    A = A + np.swapaxes(A, -1, -2)
    G = cholesky_backward(L, 2 * A @ L)
    tol = 64 * EPS * np.abs(A).max() * np.linalg.cond(L)
    np.testing.assert_allclose(G, A, rtol=0, atol=tol)


@pytest.mark.parametrize("name", ["mvn-quadratic", "mvn-softplus"])
def test_cholesky_backward_is_the_derivative_along_symmetric_perturbations(name):
    """Per sample: <G, E> == d/dh f(loc + chol(cov + h E) eps) at h = 0 for symmetric E (the
    oracle's convention), by central differences in mpmath (40 digits, step 1e-12)."""
    dist, f = case(name).build()
    rng = np.random.default_rng(0)
    eps = rng.standard_normal((3, dist.dim))
    z = dist.loc + eps @ dist._chol.T
    G = pathwise_at(dist, f, z)["cov"]
    assert np.allclose(G, np.swapaxes(G, -1, -2), rtol=0, atol=0)
    E_list = [np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 0.0]]),
              np.array([[0.0, 0.0], [0.0, 1.0]])]
    with mpmath.workdps(40):
        h = mpmath.mpf("1e-12")
        C = mpmath.matrix(dist.cov.tolist())
        for s in range(len(z)):
            e = mpmath.matrix(eps[s].tolist())
            for E in E_list:
                Em = mpmath.matrix(E.tolist())

                def val(hh, Em=Em, e=e):
                    L = _mp_chol(C + hh * Em)
                    zz = mpmath.matrix(dist.loc.tolist()) + L * e
                    return f.mp([zz[i] for i in range(dist.dim)])

                fd = (val(h) - val(-h)) / (2 * h)
                got = float((G[s] * E).sum())
                # float64 gradient and solves: a few hundred roundings of O(|G|) terms
                assert abs(got - float(fd)) <= 1e3 * EPS * max(1.0, abs(float(fd))), (s, E, got, fd)


# ==============================================================================================
# 2. Monte Carlo against the oracle
# ==============================================================================================
# (case, n_samples)
MC_CASES = [
    ("gaussian-quadratic", 60_000),
    ("gaussian-softplus", 60_000),
    ("gaussian-prod", 60_000),
    ("gaussian-nonseparable", 60_000),
    ("gaussian-abs-kink", 60_000),      # kinks: the pathwise rule needs f' only, and is exact
    ("gaussian-relu-kink", 60_000),
    ("mvn-quadratic", 60_000),
    ("laplace-softplus", 60_000),
    ("laplace-quadratic", 60_000),
    ("laplace-exp-convergent", 60_000),
    ("laplace-gauss-bump", 60_000),
    ("laplace-logsigmoid", 60_000),
    ("laplace-abs-kink", 60_000),
    ("exponential-softplus", 60_000),
    pytest.param("mvn-softplus", 60_000, marks=pytest.mark.slow),
    pytest.param("gaussian-logsigmoid-net", 60_000, marks=pytest.mark.slow),
]
# correct-estimator calls of assert_unbiased in this module: MC_CASES + the correct variants of
# test_wrong_variants_are_rejected (3)
N_CALLS = len(MC_CASES) + 3
FALSE_ALARM = ALPHA_MODULE / N_CALLS


@pytest.mark.parametrize("name,n", MC_CASES)
def test_monte_carlo_unbiased(name, n):
    dist, f = case(name).build()
    res = assert_unbiased(_est(), dist, f, n_samples=n, rng=20261127, false_alarm=FALSE_ALARM)
    for k, v in res.estimate.items():
        assert np.shape(v) == dist.params[k].shape


def _variant(transform):
    """A wrong estimator: ``transform(name, samples, dist) -> samples`` applied to pathwise."""

    def fn(dist, f, n, rng):
        return {k: transform(k, e.samples, dist) for k, e in estimate(dist, f, "pathwise", n, rng).items()}

    return fn


def _abs_scale(dist, f, n, rng):
    """The Gaussian/Laplace scale gradient through |z - loc| / scale (a plausible slip)."""
    z = dist.sample(rng, n)
    out = pathwise_at(dist, f, z)
    g = f.gradient(z.reshape(n, -1)).reshape(z.shape)
    out["scale"] = g * np.abs(z - dist.loc) / dist.scale
    return out


def test_wrong_variants_are_rejected():
    """The same check (same n, same false-alarm rate) rejects a sign flip, a 2 % scale error and
    estimator-specific mistakes.  Measured (seed 5): critical values 4.99 / 5.24 / 5.38; the 2 %
    error gives t = 25.3 (laplace-softplus d/dloc) and 15.8, 13.4 (gaussian-softplus d/dloc);
    |z - loc| in the scale gives t = 147 and 123, 147; the doubled off-diagonal of d/dcov t = 27.0
    (mvn-quadratic); the sign flips t > 100."""
    flip = _variant(lambda k, s, d: -s)
    scale2 = _variant(lambda k, s, d: 1.02 * s)
    offdiag = _variant(lambda k, s, d: s + (s - s * np.eye(2)) if k == "cov" else s)
    checks = [("laplace-softplus", 100_000, [flip, scale2, _abs_scale]),
              ("gaussian-softplus", 100_000, [flip, scale2, _abs_scale]),
              ("mvn-quadratic", 60_000, [flip, offdiag])]
    for name, n, wrongs in checks:
        dist, f = case(name).build()
        truth = exact_gradient(dist, f, dps=20)
        assert_unbiased(_est(), dist, f, n_samples=n, rng=5, false_alarm=FALSE_ALARM, truth=truth)
        for wrong in wrongs:
            with pytest.raises(AssertionError, match="biased"):
                assert_unbiased(wrong, dist, f, n_samples=n, rng=5, false_alarm=FALSE_ALARM, truth=truth)


# ==============================================================================================
# 4. refusals and options
# ==============================================================================================
def test_refusals():
    with pytest.raises(ValueError, match=r"implicit.*shape='implicit'"):
        estimate(gsbref.Gamma(2.0, 1.0), "sum(z)", "pathwise", 10, 0)
    for dist in (gsbref.ChiSquared(3.0), gsbref.Beta(2.0, 3.0), gsbref.Dirichlet([1.0, 2.0])):
        with pytest.raises(ValueError, match=r"no explicit reparameterisation.*'implicit'.*'grg'"):
            estimate(dist, "sum(z)", "pathwise", 10, 0)
    for dist in (gsbref.Bernoulli(0.3), gsbref.Categorical([0.2, 0.8])):
        with pytest.raises(ValueError, match=r"discrete.*gsb-discrete"):
            estimate(dist, "sum(z)", "pathwise", 10, 0)
    with pytest.raises(ValueError, match="shape= applies to Gamma only"):
        estimate(gsbref.Gaussian(0.0, 1.0), "sum(z)", "pathwise", 10, 0, shape="implicit")
    with pytest.raises(ValueError, match="shape must be None or 'implicit'"):
        estimate(gsbref.Gamma(2.0, 1.0), "sum(z)", "pathwise", 10, 0, shape="grg")


def test_broadcast_parameter_receives_the_sum():
    dist = gsbref.Gaussian([0.1, -0.2, 0.4], 0.7)  # one scale for three coordinates
    f = gsbref.function("sum(softplus(z))")
    z = dist.sample(np.random.default_rng(1), 5)
    est = pathwise_at(dist, f, z)
    assert est["loc"].shape == (5, 3) and est["scale"].shape == (5,)
    per = sp.expit(z) * (z - dist.loc) / 0.7
    np.testing.assert_allclose(est["scale"], per.sum(-1), rtol=1e-14)
    np.testing.assert_allclose(est["loc"], sp.expit(z), rtol=1e-14)
