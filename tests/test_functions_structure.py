"""Separable structure, univariate pieces, kinks and exponential-polynomial forms."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from scipy.special import expit

from gsbref.functions import Univariate, function

EPS = np.finfo(float).eps
DPS = 30


# ----------------------------------------------------------------------------------------------
# separable()
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr, consts, kind, a, b",
    [
        ("sum((z - 0.49)**2)", {}, "sum", 0, 1),
        ("mean(sin(2*z))", {}, "sum", 0, Fraction(1, 3)),
        ("prod(z)", {}, "prod", 0, 1),
        ("2.5 * sum(exp(z)) + 1", {}, "sum", 1, Fraction(5, 2)),
        ("1 + sum(exp(z)) * 0.1", {}, "sum", 1, Fraction(1, 10)),
        ("sum(softplus(z)) / 7", {}, "sum", 0, Fraction(1, 7)),
        ("-sum(exp(-0.3*z))", {}, "sum", 0, -1),
        ("4 - 2 * prod(1 + tanh(z))", {}, "prod", 4, -2),
        ("sum(z**2) - 0.5 * mean(abs(z)) - 1", {}, "sum", -1, 1),
        ("sum(c * z**2)", {"c": np.array([1.0, 2.0, 3.0])}, "sum", 0, 1),
        ("k * sum(z) + k", {"k": 3.0}, "sum", 3, 3),
    ],
)
def test_separable_recognised(expr, consts, kind, a, b):
    f = function(expr, **consts)
    sep = f.separable(3)
    assert sep is not None and sep.kind == kind and sep.d == 3
    a, b = Fraction(a), Fraction(b)
    with mpmath.workdps(DPS):
        exact_a = mpmath.mpf(a.numerator) / a.denominator
        exact_b = mpmath.mpf(b.numerator) / b.denominator
        assert mpmath.almosteq(sep.a(), exact_a, 10**-DPS)
        assert mpmath.almosteq(sep.b(), exact_b, 10 ** -(DPS - 1))
    assert sep.a_float == float(a) and abs(sep.b_float - float(b)) <= EPS * abs(float(b))
    # the decomposition reproduces f, in float64 and in mpmath
    rng = np.random.default_rng(2)
    z = rng.uniform(-1, 1, size=(5, 3))
    parts = np.stack([sep.g(j)(z[:, j]) for j in range(3)], -1)
    combined = parts.sum(-1) if kind == "sum" else parts.prod(-1)
    np.testing.assert_allclose(sep.a_float + sep.b_float * combined, f(z), rtol=64 * EPS, atol=64 * EPS)
    with mpmath.workdps(DPS):
        p = [mpmath.mpf(x) for x in z[0]]
        terms = [sep.g(j).mp(p[j]) for j in range(3)]
        total = mpmath.fsum(terms) if kind == "sum" else mpmath.fprod(terms)
        assert mpmath.almosteq(sep.a() + sep.b() * total, f.mp(p), 10 ** (-DPS + 2))


def test_separable_constant_vectors_per_coordinate():
    f = function("sum(c * z**2)", c=np.array([1.0, 2.0, 3.0]))
    sep = f.separable(3)
    assert repr(sep.g(2)) == "Univariate('c[2] * (x**2)')"
    assert float(sep.g(2)(2.0)) == 12.0
    assert function("sum(c * z)", c=np.array([1.0, 2.0])).separable(3) is None


@pytest.mark.parametrize(
    "expr",
    [
        "z[0] * z[1]",
        "sum(log_sigmoid(W @ z))",
        "log(sum(exp(z)))",
        "sum(z - mean(z))",
        "sum(z) * sum(z)",
        "sum(z) + prod(z)",
        "prod(z) + prod(z)",
        "sum(z) / sum(z**2)",
        "sum(z)**2",
    ],
)
def test_not_separable(expr):
    f = function(expr, W=np.ones((2, 3)))
    assert f.separable(3) is None


def test_single_coordinate_is_separable():
    sep = function("abs(z - 0.5)").separable(1)
    assert sep.kind == "sum" and repr(sep.g(0)) == "Univariate('abs(x - 0.5)')"
    sep = function("z[0]**2 + log(sum(exp(z)))").separable(1)
    np.testing.assert_allclose(sep.g(0)(np.array([0.5, 2.0])), [0.75, 6.0], rtol=4 * EPS)
    assert function("sum(W @ z)", W=np.ones((2, 1))).separable(1) is None
    assert function("z[0]**2 + sum(c * z)", c=np.ones(2)).separable(1) is None
    np.testing.assert_array_equal(
        function("abs(z - 0.5)").derivatives(np.array([[0.25], [1.0]]), 2)[:, :, 0],
        [[0.25, 0.5], [-1.0, 1.0], [0.0, 0.0]],
    )


def test_separable_bad_arguments():
    sep = function("sum(z)").separable(2)
    with pytest.raises(ValueError, match="positive integer"):
        function("sum(z)").separable(0)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        sep.g(2)
    assert "sum_j" in repr(sep)


# ----------------------------------------------------------------------------------------------
# Univariate
# ----------------------------------------------------------------------------------------------
def test_univariate_values_and_derivatives():
    g = function("sum(softplus(2*z - 1))").separable(2).g(1)
    assert isinstance(g, Univariate) and g.expr == "softplus((2 * x) - 1)"
    x = np.array([[-1.0, 0.0], [0.5, 3.0]])
    np.testing.assert_allclose(g(x), np.logaddexp(0, 2 * x - 1), rtol=4 * EPS)
    D = g.derivatives(x, 3)
    assert D.shape == (4, 2, 2)
    s, one_minus_s = expit(2 * x - 1), expit(1 - 2 * x)
    np.testing.assert_allclose(D[1], 2 * s, rtol=16 * EPS)
    np.testing.assert_allclose(D[2], 4 * s * one_minus_s, rtol=16 * EPS)
    with mpmath.workdps(DPS):
        M = g.mp_derivatives(mpmath.mpf("0.5"), 3)
        ref = mpmath.diffs(lambda t: mpmath.log1p(mpmath.exp(2 * t - 1)), mpmath.mpf("0.5"), 3)
        for m, r in zip(M, ref):
            assert mpmath.almosteq(m, r, 10 ** (-DPS + 8))
        assert mpmath.almosteq(g.mp("0.5"), mpmath.log(2), 10 ** (-DPS + 1))
    assert not g.has_kinks and g.kink_primitives == ()
    assert float(function("sum(3 + 0*z)").separable(2).g(0)(1.0)) == 3.0


# ----------------------------------------------------------------------------------------------
# kinks()
# ----------------------------------------------------------------------------------------------
def test_kinks_affine_full_precision():
    g = function("abs(z - 0.5)").separable(1).g(0)
    assert g.has_kinks and g.kink_primitives == ("abs",)
    with mpmath.workdps(50):
        (k,) = g.kinks(-3, 3)
        assert k == mpmath.mpf("0.5")
    assert g.kinks(0.6, 3) == []
    with mpmath.workdps(40):
        (k,) = function("sum(relu(3*z + 1))").separable(2).g(0).kinks(-2, 2)
        assert mpmath.almosteq(k, -mpmath.mpf(1) / 3, 10**-40)


def test_kinks_nonlinear_refined_by_bisection():
    g = function("sum(abs(z**2 - 2) + relu(sin(3*z)))").separable(2).g(0)
    with mpmath.workdps(DPS):
        ks = g.kinks(-2, 2.5)
        expected = sorted([-mpmath.sqrt(2), mpmath.sqrt(2)]
                          + [mpmath.pi * m / 3 for m in range(-1, 3)])
        assert len(ks) == len(expected)
        for k, e in zip(ks, expected):
            assert abs(k - e) <= 4 * mpmath.eps * max(1, abs(e))
        assert ks == sorted(ks)


def test_kinks_nested_and_exact_zero():
    g = function("sum(abs(abs(z) - 1))").separable(2).g(0)
    with mpmath.workdps(DPS):
        assert g.kinks(-2, 2) == [-1, 0, 1]


def test_kinks_without_sign_change_or_too_close():
    with mpmath.workdps(DPS):
        assert function("sum(abs(z**2))").separable(1).g(0).kinks(-1, 1) == []
        g = function("abs((z - 0.5) * (z - 0.52))").separable(1).g(0)
        assert g.kinks(0, 1, grid=5) == []  # closer than the grid spacing: unseen
        k1, k2 = g.kinks(0, 1)
        assert abs(k1 - mpmath.mpf("0.5")) <= 4 * mpmath.eps
        assert abs(k2 - mpmath.mpf("0.52")) <= 4 * mpmath.eps


def test_kinks_bad_interval():
    g = function("abs(z)").separable(1).g(0)
    with pytest.raises(ValueError, match="finite lo < hi"):
        g.kinks(-mpmath.inf, 1)
    with pytest.raises(ValueError, match="finite lo < hi"):
        g.kinks(1, 0)
    with pytest.raises(ValueError, match="grid"):
        g.kinks(0, 1, grid=2)


# ----------------------------------------------------------------------------------------------
# exp_poly()
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr, n_terms",
    [
        ("sum((z - 0.49)**2)", 3),
        ("sum(exp(-0.3*z))", 1),
        ("sum(sin(2*z + 1))", 2),
        ("sum(z**2 * exp(z))", 1),
        ("sum(cos(z)**2 - 3*expm1(z/2) / 4 + pi)", 4),
        ("sum(c * (z + 1)**3 * exp(2*z - 1) - sin(z) * cos(z))", 6),
    ],
)
def test_exp_poly_reproduces_g(expr, n_terms):
    sep = function(expr, c=np.array([0.5, 1.5])).separable(2)
    rng = np.random.default_rng(4)
    for j in range(2):
        g = sep.g(j)
        with mpmath.workdps(DPS):
            terms = g.exp_poly()
            assert terms is not None and len(terms) == n_terms
            for coef, k, c in terms:
                assert isinstance(k, int) and k >= 0
                assert isinstance(coef, (mpmath.mpf, mpmath.mpc)) and isinstance(c, (mpmath.mpf, mpmath.mpc))
            for x in rng.uniform(-2, 2, size=5):
                x = mpmath.mpf(x)
                value = mpmath.fsum(coef * x**k * mpmath.exp(c * x) for coef, k, c in terms)
                assert abs(value - g.mp(x)) <= mpmath.mpf(10) ** -25


def test_exp_poly_exact_terms():
    with mpmath.workdps(DPS):
        terms = function("sum((z - 0.49)**2)").separable(1).g(0).exp_poly()
        assert terms == [(mpmath.mpf("0.49") ** 2, 0, 0), (-2 * mpmath.mpf("0.49"), 1, 0), (1, 2, 0)]
        (term,) = function("sum(exp(-0.3*z))").separable(1).g(0).exp_poly()
        assert term == (1, 0, mpmath.mpf("-0.3"))


@pytest.mark.parametrize(
    "expr",
    ["sum(softplus(z))", "sum(exp(z**2))", "sum(z**0.5)", "sum(1 / z)", "sum(abs(z))",
     "sum(exp(exp(z)))", "sum(log(z))", "sum(sin(z**2))"],
)
def test_exp_poly_none(expr):
    with mpmath.workdps(DPS):
        assert function(expr).separable(1).g(0).exp_poly() is None
