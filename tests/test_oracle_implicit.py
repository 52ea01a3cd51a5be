"""The mpmath oracle of implicit reparameterisation derivatives: two independent methods agree,
closed forms, the families and the input validation."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import gsbref
import gsbref.special
from gsbref.oracle import implicit_derivative

DPS = 20
TOL = mpmath.mpf(10) ** (-DPS + 4)  # both methods carry dps + 20 digits internally; 4 digits of slack


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("k, z", [(1e-3, 1e-30), (1e-3, 0.7), (0.5, 3.0), (2.5, 0.4), (40.0, 30.0), (40.0, 60.0)])
def test_gamma_quad_and_diff_agree(k, z):
    d = gsbref.Gamma(shape=k, scale=1.0)
    q = implicit_derivative(d, [z], dps=DPS, method="quad")["shape"][0]
    f = implicit_derivative(d, [z], dps=DPS, method="diff")["shape"][0]
    assert q > 0
    assert _rel(q, f) < TOL


@pytest.mark.parametrize("a, b, z", [(0.3, 2.0, 0.05), (2.0, 3.0, 0.3), (2.0, 3.0, 0.9), (5.0, 0.5, 0.999)])
def test_beta_quad_and_diff_agree(a, b, z):
    d = gsbref.Beta(alpha=a, beta=b)
    q = implicit_derivative(d, [z], dps=DPS, method="quad")
    f = implicit_derivative(d, [z], dps=DPS, method="diff")
    assert q["alpha"][0] > 0 > q["beta"][0]
    for p in ("alpha", "beta"):
        assert _rel(q[p][0], f[p][0]) < TOL


@pytest.mark.parametrize("a, z", [(0.01, 1e-40), (0.7, 0.2), (30.0, 0.95)])
def test_beta_closed_forms(a, z):
    # Beta(a, 1): F = z^a, z = u^(1/a), dz/da = -z log z / a;  Beta(1, b): dz/db = (1-z) log(1-z) / b
    with mpmath.workdps(DPS + 5):
        za = mpmath.mpf(z)
        r = implicit_derivative(gsbref.Beta(alpha=a, beta=1.0), [z], dps=DPS)["alpha"][0]
        assert _rel(r, -za * mpmath.log(za) / a) < TOL
        r = implicit_derivative(gsbref.Beta(alpha=1.0, beta=a), [z], dps=DPS)["beta"][0]
        assert _rel(r, (1 - za) * mpmath.log1p(-za) / a) < TOL


def test_gamma_scale_exponential_chisquared():
    z = np.array([0.3, 2.0])
    g = implicit_derivative(gsbref.Gamma(shape=1.7, scale=0.5), z, dps=DPS)
    unit = implicit_derivative(gsbref.Gamma(shape=1.7, scale=1.0), z / 0.5, dps=DPS)
    for i in range(2):
        assert _rel(g["shape"][i], 0.5 * unit["shape"][i]) < TOL
        assert _rel(g["scale"][i], mpmath.mpf(z[i]) / 0.5) < TOL
    e = implicit_derivative(gsbref.Exponential(scale=2.0), z, dps=DPS).to_float()
    np.testing.assert_allclose(e["scale"], z / 2.0, rtol=1e-15)
    c = implicit_derivative(gsbref.ChiSquared(df=3.0), z, dps=DPS)["df"]
    h = implicit_derivative(gsbref.Gamma(shape=1.5, scale=1.0), z / 2, dps=DPS)["shape"]
    assert all(_rel(c[i], h[i]) < TOL for i in range(2))


def test_dirichlet_jacobian():
    g = np.array([[0.4, 1.3, 0.02], [2.0, 0.1, 0.5]])
    r = implicit_derivative(gsbref.Dirichlet(concentration=[0.5, 1.5, 0.2]), g, dps=DPS)
    J = r["concentration"]
    assert J.shape == (2, 3, 3)
    for s in range(2):
        for j in range(3):
            assert abs(mpmath.fsum(J[s, :, j])) < TOL  # sum_i z_i = 1
    Jf = r.to_float()["concentration"]
    np.testing.assert_allclose(Jf, gsbref.special.dirichlet_dz_dconcentration(g, [0.5, 1.5, 0.2]), rtol=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="z"):
        implicit_derivative(gsbref.Gamma(shape=1.0, scale=1.0), [-1.0])
    with pytest.raises(ValueError, match="z"):
        implicit_derivative(gsbref.Beta(alpha=1.0, beta=1.0), [1.5])
    with pytest.raises(ValueError, match="dps"):
        implicit_derivative(gsbref.Gamma(shape=1.0, scale=1.0), [1.0], dps=2)
    with pytest.raises(ValueError, match="method"):
        implicit_derivative(gsbref.Gamma(shape=1.0, scale=1.0), [1.0], method="nope")
    with pytest.raises(TypeError, match="Gaussian"):
        implicit_derivative(gsbref.Gaussian(loc=0.0, scale=1.0), [1.0])


@pytest.mark.parametrize("x,k", [(1e300, 1.0), (1e300, 50.0), (1e40, 3.0), (1e24, 3.0)])
def test_gamma_far_upper_tail_matches_the_asymptotic_series(x, k):
    # Q(k, x) = p(x) (1 + (k-1)/x + (k-1)(k-2)/x^2 + ...), so dz/dk = c S + dS/dk with
    # c = log x - psi(k); three terms leave a relative error O(k^3/x^3), far below 10^-30 here
    from gsbref.oracle.implicit import gamma_dz_dk_mp

    with mpmath.workdps(60):
        X, K = mpmath.mpf(x), mpmath.mpf(k)
        c = mpmath.log(X) - mpmath.digamma(K)
        want = c * (1 + (K - 1) / X + (K - 1) * (K - 2) / X**2) + 1 / X + (2 * K - 3) / X**2
        got = gamma_dz_dk_mp(x, k, dps=30)
        assert abs(got - want) <= mpmath.mpf(10) ** -29 * abs(want)
