"""Accuracy of gsbref.special against the cached mpmath reference (tests/data/implicit_reference.npz,
made by tests/data/make_implicit_reference.py), identities, validation, and the expectation check."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from scipy import integrate
from scipy import special as sc

import gsbref
from gsbref import oracle, special

DATA = np.load(pathlib.Path(__file__).parent / "data" / "implicit_reference.npz")
#: the target of issue #5: relative error 1e-10 in float64 over the whole grid
TARGET = 1e-10


def test_reference_grid_covers_the_issue():
    k = DATA["gamma_k"]
    assert k.min() <= 1e-4 * 1.0001 and k.max() >= 1e4 * 0.9999
    assert set(np.round(np.log10(DATA["gamma_q"][(DATA["gamma_q"] > 0) & (DATA["gamma_q"] < 0.5)]))) >= {-12, -6, -3}
    assert DATA["beta_a"].min() <= 1e-4 and DATA["beta_b"].max() >= 1e4


def test_gamma_dz_dshape_accuracy():
    k, z, ref = DATA["gamma_k"], DATA["gamma_z"], DATA["gamma_ref"]
    got = special.gamma_dz_dshape(z, k)
    assert np.isfinite(got).all() and (got > 0).all()
    rel = np.abs(got - ref) / ref
    worst = np.argmax(rel)
    assert rel.max() <= TARGET, f"k={k[worst]}, z={z[worst]}: rel err {rel.max():.2e}"


def test_gammainc_dshape_matches_reference_and_finite_differences():
    k, z, ref = DATA["gamma_k"], DATA["gamma_z"], DATA["gamma_ref"]
    # -p(z) dz/dk with the mpmath dz/dk and the density in log form; the density's own rounding
    # (exponent of size |log p| <= 750, relative error <= 750 eps) bounds the agreement
    logp = (k - 1) * np.log(z) - z - sc.gammaln(k)
    keep = (logp > -700) & (k < 10)
    got = special.gammainc_dshape(k[keep], z[keep])
    want = -np.exp(logp[keep]) * ref[keep]
    np.testing.assert_allclose(got, want, rtol=800 * np.finfo(float).eps * np.maximum(1, np.abs(logp[keep])).max() / 700)
    # an independent check: central differences of scipy's gammainc at moderate arguments
    kk, xx = np.meshgrid([0.5, 2.0, 7.0], [0.3, 1.0, 4.0])
    h = 1e-5 * kk
    fd = (sc.gammainc(kk + h, xx) - sc.gammainc(kk - h, xx)) / (2 * h)
    np.testing.assert_allclose(special.gammainc_dshape(kk, xx), fd, rtol=1e-8)  # O(h^2) + eps/h


def test_beta_dz_dparams_accuracy():
    a, b, z, ref = DATA["beta_a"], DATA["beta_b"], DATA["beta_z"], DATA["beta_ref"]
    da, db = special.beta_dz_dparams(z, a, b)
    assert np.isfinite(da).all() and np.isfinite(db).all()
    assert (da > 0).all() and (db < 0).all()
    for got, want, name in ((da, ref[:, 0], "a"), (db, ref[:, 1], "b")):
        rel = np.abs(got - want) / np.abs(want)
        w = np.argmax(rel)
        assert rel.max() <= TARGET, f"d/d{name}: a={a[w]}, b={b[w]}, z={z[w]}: rel err {rel.max():.2e}"


def test_betainc_dparams_finite_differences():
    a, b, x = np.meshgrid([0.5, 2.0], [0.7, 3.0], [0.1, 0.5, 0.9])
    da, db = special.betainc_dparams(a, b, x)
    h = 1e-5
    fa = (sc.betainc(a * (1 + h), b, x) - sc.betainc(a * (1 - h), b, x)) / (2 * h * a)
    fb = (sc.betainc(a, b * (1 + h), x) - sc.betainc(a, b * (1 - h), x)) / (2 * h * b)
    np.testing.assert_allclose(da, fa, rtol=1e-7)  # O(h^2) + eps/h
    np.testing.assert_allclose(db, fb, rtol=1e-7)


def test_symmetry_and_end_points():
    z = np.array([2.0**-30, 0.25, 0.5, 0.75])  # 1 - z exact in float64
    da, db = special.beta_dz_dparams(z, 0.7, 3.0)
    da2, db2 = special.beta_dz_dparams(1 - z, 3.0, 0.7)  # 1 - z ~ Beta(b, a)
    np.testing.assert_allclose(db, -da2, rtol=1e-13)
    np.testing.assert_allclose(da, -db2, rtol=1e-13)
    assert special.gamma_dz_dshape(0.0, 2.0) == 0 and special.gamma_dz_dshape(np.inf, 2.0) == np.inf
    assert special.beta_dz_dparams(0.0, 2.0, 2.0) == (0.0, 0.0)


def test_broadcasting_and_shapes():
    z = np.linspace(0.1, 3, 6).reshape(2, 3)
    assert special.gamma_dz_dshape(z, np.array([0.5, 1.0, 4.0])).shape == (2, 3)
    assert np.ndim(special.gamma_dz_dshape(1.0, 2.0)) == 0
    da, db = special.beta_dz_dparams(np.full((4, 1), 0.3), np.array([1.0, 2.0]), 3.0)
    assert da.shape == db.shape == (4, 2)
    J = special.dirichlet_dz_dconcentration(np.ones((5, 3)), [1.0, 2.0, 3.0])
    assert J.shape == (5, 3, 3)
    np.testing.assert_allclose(J.sum(-2), 0.0, atol=1e-15)


def test_gamma_construction_of_the_beta():
    g = np.array([[0.3, 1.2], [2.0, 0.05]])
    da, db = special.beta_dz_dparams_gamma_construction(g, 1.5, 0.4)
    J = special.dirichlet_dz_dconcentration(g, [1.5, 0.4])
    np.testing.assert_array_equal(da, J[:, 0, 0])
    np.testing.assert_array_equal(db, J[:, 0, 1])
    assert (da > 0).all() and (db < 0).all()


@pytest.mark.parametrize("bad", [
    lambda: special.gamma_dz_dshape(-1.0, 1.0),
    lambda: special.gamma_dz_dshape(1.0, 0.0),
    lambda: special.gamma_dz_dshape(1.0, np.nan),
    lambda: special.gammainc_dshape(np.inf, 1.0),
    lambda: special.beta_dz_dparams(1.5, 1.0, 1.0),
    lambda: special.beta_dz_dparams(0.5, -1.0, 1.0),
    lambda: special.betainc_dparams(1.0, 1.0, -0.1),
    lambda: special.dirichlet_dz_dconcentration(np.zeros((2, 3)), 1.0),
    lambda: special.dirichlet_dz_dconcentration(np.ones(3), [1.0, -1.0, 1.0]),
    lambda: special.beta_dz_dparams_gamma_construction(np.ones(3), 1.0, 1.0),
])
def test_validation(bad):
    with pytest.raises(ValueError):
        bad()


@pytest.mark.parametrize("k", [0.05, 1.0, 30.0])
def test_expectation_of_pathwise_term_is_the_gradient(k):
    # E[f'(z) dz/dk] = dE[f]/dk: integrate over the uniform u = P(k, z) (quantile substitution)
    f = gsbref.function("sum(softplus(z))")
    dfdz = lambda z: sc.expit(z)  # noqa: E731
    val, err = integrate.quad(lambda u: dfdz(sc.gammaincinv(k, u)) * special.gamma_dz_dshape(sc.gammaincinv(k, u), k),
                              0, 1, epsabs=1e-13, epsrel=1e-11, limit=200)
    exact = float(oracle.gradient(gsbref.Gamma(shape=k, scale=1.0), f, dps=20)["shape"])
    assert abs(val - exact) <= 1e-8 * abs(exact) + 10 * err  # gammaincinv accuracy ~1e-13 per node


def test_expectation_beta():
    a, b = 0.6, 2.5
    g = oracle.gradient(gsbref.Beta(alpha=a, beta=b), "sum(sin(3*z))", dps=20)
    for i, name in enumerate(("alpha", "beta")):
        val, err = integrate.quad(lambda u: 3 * np.cos(3 * sc.betaincinv(a, b, u))
                                  * special.beta_dz_dparams(sc.betaincinv(a, b, u), a, b)[i],
                                  0, 1, epsabs=1e-13, epsrel=1e-11, limit=200)
        assert abs(val - float(g[name])) <= 1e-8 * abs(float(g[name])) + 10 * err


@pytest.mark.slow
def test_reference_regenerates():
    """A random subset of the cached reference recomputed by both oracle methods."""
    from gsbref.oracle.implicit import beta_dz_dab_mp, gamma_dz_dk_mp

    rng = np.random.default_rng(20240605)
    dps = int(DATA["dps"])
    tol = 10.0 ** (-dps + 5)
    for i in rng.choice(DATA["gamma_k"].size, 12, replace=False):
        k, z, ref = DATA["gamma_k"][i], DATA["gamma_z"][i], DATA["gamma_ref"][i]
        q = float(gamma_dz_dk_mp(z, k, dps, "quad"))
        assert abs(q - ref) <= 4 * np.finfo(float).eps * abs(ref)
        d = float(gamma_dz_dk_mp(z, k, dps, "diff"))
        assert abs(d - q) <= tol * abs(q) + 4 * np.finfo(float).eps * abs(q)
    for i in rng.choice(DATA["beta_a"].size, 6, replace=False):
        a, b, z, ref = DATA["beta_a"][i], DATA["beta_b"][i], DATA["beta_z"][i], DATA["beta_ref"][i]
        q = [float(v) for v in beta_dz_dab_mp(z, a, b, dps, "quad")]
        np.testing.assert_allclose(q, ref, rtol=4 * np.finfo(float).eps)
