"""Tests of the fused all-orders derivative engine (:mod:`gsbref.functions._fused`).

Deterministic checks, float64 against mpmath at ``DPS`` digits (whose own error, ~1e-28, is
negligible):

* the exact integer tables (Eulerian numbers, the matrix ``Phi``) and the Eulerian form of the
  sigmoid derivatives, in mpmath, to ``1e-25`` relative;
* the softplus family within the rounding bound the module derives, ``(6 T + 6) eps C_n(x)``,
  over ``x`` from ``-740`` to ``740`` (both tails, where the derivatives are tiny) -- and the
  bound is asserted to be small against the derivatives' scale, so that it cannot pass vacuously;
* exp, sin, cos and polynomials within their own bounds (stated at each test);
* the fused engine against the Taylor-jet engine on composite formulas (normwise, see there);
* the light kernel of the summary pass (combinations and row sums without the rows) against
  the rows it avoids forming;
* the cancellation-free differences ``g(z + h) - g(z)`` of the resummed estimators.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import gsbref
from gsbref.functions._fused import (
    FusedSeparable,
    RowSums,
    Workspace,
    eulerian,
    sigmoid_matrix,
    softplus_error_bound,
    softplus_rows,
)

DPS = 30
EPS = np.finfo(float).eps
X_GRID = np.array([-740.0, -300.0, -35.5, -8.25, -2.0, -0.75, -1e-3, 0.0, 1e-3, 0.6, 1.5, 3.0, 9.0, 40.0,
                   300.0, 740.0])


def _mp_softplus_derivs(x, top):
    """``softplus^(m)(x)`` for ``m = 0..top`` in mpmath (Taylor jets at DPS digits)."""
    g = gsbref.function("sum(softplus(z))").separable(1).g(0)
    with mpmath.workdps(DPS):
        return np.array([float(v) for v in g.mp_derivatives(mpmath.mpf(float(x)), top)])


# ----------------------------------------------------------------------------------------------
# exact tables and the representation
# ----------------------------------------------------------------------------------------------
def test_eulerian_numbers():
    for m in range(1, 15):
        a = eulerian(m)
        assert sum(a) == math.factorial(m)
        assert a == a[::-1]  # A(m, k) = A(m, m-1-k)
    assert eulerian(5) == (1, 26, 66, 26, 1)


@pytest.mark.parametrize("T", [2, 3, 6, 9, 13])
def test_phi_gives_sigmoid_derivatives_in_exact_arithmetic(T):
    """sgn * sum_k Phi[n, k] u^(k+1) M^T == softplus^(n)(x) in mpmath (the identity behind the
    engine, free of float rounding): agreement to 1e-25 relative to C_n(x)."""
    P = sigmoid_matrix(T, positive=False)
    Pabs = sigmoid_matrix(T, positive=False, absolute=True)
    with mpmath.workdps(DPS):
        for x in (-7.5, -0.3, 0.0, 0.4, 2.0, 11.0):
            xm = mpmath.mpf(x)
            u = mpmath.exp(-abs(xm))
            M = 1 / (1 + u)
            g = gsbref.function("sum(softplus(z))").separable(1).g(0)
            exact = g.mp_derivatives(xm, T)
            for n in range(2, T + 1):
                sgn = 1 if x <= 0 else (-1) ** n
                val = sgn * sum(mpmath.mpf(int(P[n - 2, k])) * u ** (k + 1) * M**T for k in range(T - 1))
                c = sum(mpmath.mpf(int(Pabs[n - 2, k])) * u ** (k + 1) * M**T for k in range(T - 1))
                assert abs(val - exact[n]) <= mpmath.mpf(10) ** -25 * c, (T, x, n)


# ----------------------------------------------------------------------------------------------
# float64 accuracy against mpmath
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("top", [2, 5, 9, 12])
def test_softplus_rows_within_the_derived_bound(top):
    rows = softplus_rows(X_GRID, 0, top)
    exact = np.array([_mp_softplus_derivs(x, top) for x in X_GRID]).T  # (top + 1, len)
    # rows 0 and 1 (value, sigmoid): a few correctly rounded operations, 8 eps relative
    assert np.all(np.abs(rows[:2] - exact[:2]) <= 8 * EPS * np.abs(exact[:2]))
    for n in range(2, top + 1):
        bound = softplus_error_bound(X_GRID, n, top)
        err = np.abs(rows[n] - exact[n])
        assert np.all(err <= bound), (n, err / bound)
        # not vacuous: relative to the row's scale the bound is tiny (at most 2.0e-12 for n <= 12,
        # 4.4e-13 for n <= 9: max over x in [-40, 40] of the bound over max |softplus^(n)|)
        assert bound.max() <= 5e-12 * np.abs(exact[n]).max(), (n, bound.max() / np.abs(exact[n]).max())
        # and relative in the tails (|x| >= 8), where the derivatives decay like exp(-|x|)
        tail = (np.abs(X_GRID) >= 8) & (exact[n] != 0)
        assert np.all(err[tail] <= (6 * top + 6) * EPS * np.abs(exact[n][tail]) * 2)


def test_mixed_signs_and_branch_at_zero():
    """x of both signs in one call takes the sign-fix path; x = 0 sits on the branch point."""
    x = np.array([-3.0, -0.0, 0.0, 2.5])
    rows = softplus_rows(x, 1, 7)
    exact = np.array([_mp_softplus_derivs(v, 7) for v in x]).T[1:]
    for i, n in enumerate(range(1, 8)):
        tol = 8 * EPS * np.abs(exact[i]) if n == 1 else softplus_error_bound(x, n, 7)
        assert np.all(np.abs(rows[i] - exact[i]) <= tol), n


def _mp_rows(expr, z, top):
    f = gsbref.function(expr)
    with mpmath.workdps(DPS):
        return np.array([[float(v) for v in f.mp_derivatives([mpmath.mpf(float(x))], top)[:, 0]] for x in z]).T


@pytest.mark.parametrize("expr,kind", [
    ("sum(exp(z))", "exp"), ("sum(exp(-2 * z))", "exp"), ("sum(sin(z))", "trig"), ("sum(cos(3 * z))", "trig"),
    ("sum(z**3 - 2 * z + 0.5)", "poly"), ("sum(log_sigmoid(z))", "softplus"), ("sum(sigmoid(z))", "softplus1"),
    ("sum(tanh(z))", "tanh"),
])
def test_primitives_against_mpmath(expr, kind):
    """Per-family bounds (z dyadic, so alpha z + beta is exact):

    * exp: ``exp`` correct to 2 eps, ``alpha^n`` to ``n eps / 2``, one product: ``(n + 4) eps |exact|``;
    * sin/cos: the rotating pattern times ``alpha^n`` (exact for integer alpha): 4 eps ``|alpha|^n``
      (absolute: the value can vanish);
    * polynomial: Horner with ``k!/(k-n)!`` exact, ``gamma_{2p} sum_i |e_i| |z|^i`` with ``p`` the
      degree, evaluated here as ``4 p eps`` times the absolute polynomial;
    * softplus family (sigmoid = softplus shifted by one order, log_sigmoid(x) = -softplus(-x),
      tanh(x) = 2 sigmoid(2 x) - 1): the module's bound with the top order of the call, times
      ``2^n`` for tanh's ``alpha = 2``.
    """
    top = 8
    z = np.array([-6.5, -1.25, -0.125, 0.375, 1.0, 2.75, 9.5])
    fs = FusedSeparable.compile(gsbref.function(expr), 1)
    got = fs.derivatives(z[:, None], top)[:, :, 0]
    exact = _mp_rows(expr, z, top)
    for n in range(top + 1):
        if kind == "exp":
            tol = (n + 4) * EPS * np.abs(exact[n])
        elif kind == "trig":
            alpha = 3.0 if "3 *" in expr else 1.0
            tol = 4 * EPS * alpha**n * np.ones_like(z)
        elif kind == "poly":
            c = [0.5, -2.0, 0.0, 1.0]
            absval = sum(abs(c[k]) * math.factorial(k) / math.factorial(k - n) * np.abs(z) ** (k - n)
                         for k in range(n, 4))
            tol = 4 * 3 * EPS * absval if n <= 3 else np.zeros_like(z)
        else:
            shift = 1 if kind in ("softplus1", "tanh") else 0
            m = n + shift
            x = 2 * z if kind == "tanh" else (-z if expr.startswith("sum(log_") else z)
            scale = (2.0**n) * 2 if kind == "tanh" else 1.0
            if m >= 2:
                tol = scale * softplus_error_bound(x, m, top + shift)
            else:
                tol = scale * 8 * EPS * np.abs(_mp_rows("sum(softplus(z))", x, 1)[m]) + (
                    2 * EPS if kind == "tanh" and n == 0 else 0)  # tanh value: 2 sigmoid - 1
        assert np.all(np.abs(got[n] - exact[n]) <= tol), (expr, n, got[n] - exact[n], tol)


# ----------------------------------------------------------------------------------------------
# fused engine == jet engine on composite formulas
# ----------------------------------------------------------------------------------------------
COMPOSITE = [
    ("sum(softplus(z))", {}), ("3 * sum(softplus(2 * z - 1)) - 2", {}), ("mean(softplus(z) + z**3)", {}),
    ("sum(softplus(z - c))", {"c": np.array([0.5, -1.0, 2.0])}),
    ("sum(exp(c * z) + sin(z))", {"c": np.array([0.5, -1.0, 2.0])}),
    ("prod(sigmoid(z) + 1)", {}), ("sum(log(z) + tanh(z))", {}), ("sum(expm1(-z) + cos(2 * z))", {}),
]


@pytest.mark.parametrize("expr,consts", COMPOSITE, ids=[c[0] for c in COMPOSITE])
def test_fused_equals_jets(expr, consts):
    """Normwise agreement per derivative row: ``|fused - jet| <= 1e-12 max|row|``.  Reason: for
    the orders used here (T <= 9) the fused bound ``(6 T + 6) eps C_n`` is at most ``4.4e-13``
    of the row's scale (max over x of the bound over max |softplus^(n)|, n <= 9; the other
    families' bounds are smaller), and the jets' recurrences round at the same level; 1e-12
    covers the sum of both.
    """
    f = gsbref.function(expr, **consts)
    rng = np.random.default_rng(3)
    z = rng.gamma(2.0, 1.0, size=(40, 3)) if "log" in expr else rng.normal(0.0, 3.0, size=(40, 3))
    fs = FusedSeparable.compile(f, 3)
    assert fs is not None
    for order in (1, 4, 9):
        got = fs.derivatives(z, order)
        want = f.derivatives(z, order)
        scale = np.abs(want).reshape(order + 1, -1).max(axis=1)
        err = np.abs(got - want).reshape(order + 1, -1).max(axis=1)
        assert np.all(err <= 1e-12 * scale), (order, err / scale)
        low = fs.derivatives(z, order, lowest=1)
        assert np.all(np.abs(low - want[1:]).reshape(order, -1).max(axis=1) <= 1e-12 * scale[1:])


def test_combine_and_shift_options():
    """``combine`` gives ``combine @ rows`` of the unshifted rows; ``shift`` subtracts per row;
    both in the single matrix product of the softplus family and in the generic path."""
    rng = np.random.default_rng(0)
    for expr in ("sum(softplus(z))", "sum((z - 0.49)**2)", "sum(exp(-z) + softplus(z))"):
        fs = FusedSeparable.compile(gsbref.function(expr), 2)
        for z in (rng.gamma(2.5, 0.7, size=(30, 2)), rng.normal(size=(30, 2))):
            C = rng.normal(size=(2, 6))
            sh = rng.normal(size=6)
            plain = fs.derivatives(z, 6, lowest=1)
            buf = np.empty((8, 30, 2))
            rows, comb = fs.derivatives(z, 6, lowest=1, out=buf, combine=C, shift=sh)
            assert np.shares_memory(comb, buf)
            scale = np.abs(plain).max()
            np.testing.assert_allclose(rows, plain - sh[:, None, None], rtol=0, atol=1e-14 * max(1, scale))
            want = np.tensordot(C, plain, axes=1)
            np.testing.assert_allclose(comb, want, rtol=0, atol=1e-14 * np.abs(C).sum() * max(1, scale))


LIGHT = ["sum(softplus(z))", "sum(softplus(0.5 * z))", "2 * sum(sigmoid(z))", "sum(log_sigmoid(-z))",
         "sum((z - 0.49)**2)", "sum(exp(-z) + softplus(z))", "sum(log(z) + tanh(z))", "prod(sigmoid(z) + 1)"]


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("expr", [*LIGHT, "sum(softplus(z + c))"])
def test_combinations_and_sums_equal_the_rows_they_avoid(expr, d):
    """``combinations_and_sums`` over blocks of 1, 7 and 40 samples (one RowSums across them)
    against ``derivatives``, normwise as in :func:`test_fused_equals_jets`: each computation of a
    row is within ``4.4e-13 max|row|`` (the fused bound for ``T <= 9``), whether the basis
    products are taken row by row or folded into ``combine @ base`` first, or summed over the
    samples before the coefficient matrix is applied; so the combinations agree to
    ``1e-12 sum_n |C_qn| max|row_n|`` and the sums over ``n`` samples to ``1e-12 n max|row|``.
    Arguments of one sign (Gamma draws: the fold path) and of both signs (the generic path)."""
    rng = np.random.default_rng(4)
    consts = {"c": np.linspace(0.5, 2.0, d)} if "c)" in expr else {}  # one constant per coordinate
    fs = FusedSeparable.compile(gsbref.function(expr, **consts), d)
    assert fs is not None
    lo, hi = 1, 9
    R = hi - lo + 1
    for z in (rng.gamma(2.5, 0.7, size=(48, d)), rng.normal(0.0, 2.0, size=(48, d))):
        if "log(z)" in expr:
            z = np.abs(z) + 0.1
        C = rng.normal(size=(2, R))
        rows = fs.derivatives(z, hi, lowest=lo)  # (R, 48, d)
        E = np.empty((2, z.size))
        sums = RowSums(R, d)
        work = Workspace()
        for a, b in ((0, 1), (1, 8), (8, 48)):
            fs.combinations_and_sums(z[a:b], hi, lo, C, E[:, a * d:b * d], sums, work)
        want = np.tensordot(C, rows, axes=1).reshape(2, -1)
        scale = np.abs(rows).reshape(R, -1).max(axis=1)
        tol = 1e-12 * (np.abs(C) @ scale)
        assert np.all(np.abs(E - want).max(axis=1) <= tol), (np.abs(E - want).max(axis=1), tol)
        got = sums.total()
        assert got.shape == (R, d)
        err = np.abs(got - rows.sum(axis=1)).max(axis=1)
        assert np.all(err <= 1e-12 * z.shape[0] * scale), (err, scale)


def test_row_sums_accumulate():
    """``add_rows`` and ``add_basis`` add (blocks of one sample and of many), ``total`` combines
    the basis sums with their coefficient matrices."""
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(3, 5, 4))
    s = RowSums(3, 4)
    s.add_rows(rows[:, :1])
    s.add_rows(rows[:, 1:])
    np.testing.assert_allclose(s.total(), rows.sum(axis=1), rtol=4 * EPS)
    base = rng.normal(size=(3, 2))
    B = rng.gamma(1.0, size=(2, 6, 4))
    s.add_basis(base, B[:, :1])
    s.add_basis(base, B[:, 1:])
    np.testing.assert_allclose(s.total(), rows.sum(axis=1) + base @ B.sum(axis=1), rtol=1e-14, atol=1e-14)


def test_recognition():
    def kinds(expr, d=2, **c):
        fs = FusedSeparable.compile(gsbref.function(expr, **c), d)
        return None if fs is None else fs.describe()

    assert kinds("sum(softplus(z))") == ["softplus"]
    assert kinds("sum(sigmoid(z))") == ["softplus^(1)"]
    assert kinds("sum((z - 0.49)**2)") == ["poly(degree 2)"]
    assert kinds("sum(tanh(z))") == ["poly(degree 0)", "softplus^(1)"]
    assert kinds("sum(log(z) + exp(z))") == ["jet(log(z))", "exp"]
    assert kinds("sum(z * softplus(z))") is None  # a product of non-polynomial terms: jets only
    assert kinds("sum(z) * sum(z)") is None  # not separable
    fs = FusedSeparable.compile(gsbref.function("sum(softplus(z - c))", c=np.array([0.0, 1.0])), 2)
    assert not fs.uniform
    assert FusedSeparable.compile(gsbref.function("sum(softplus(z))"), 2).uniform
    assert FusedSeparable.compile(gsbref.function("sum(z**3)"), 2).degree == 3
    f = gsbref.function("sum(softplus(z))")
    assert f.fused(3) is f.fused(3)  # cached per d


def test_bad_arguments():
    fs = FusedSeparable.compile(gsbref.function("sum(softplus(z))"), 1)
    with pytest.raises(ValueError, match="lowest"):
        fs.derivatives(np.zeros((2, 1)), 3, lowest=4)
    with pytest.raises(ValueError, match="order"):
        fs.derivatives(np.zeros((2, 1)), -1)
    with pytest.raises(ValueError, match="lo"):
        softplus_rows(np.zeros(2), 3, 2)
    with pytest.raises(ValueError, match="n <= top"):
        softplus_error_bound(0.0, 5, 3)


# ----------------------------------------------------------------------------------------------
# differences for the resummed estimators
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", ["sum(softplus(z))", "sum(log_sigmoid(2 * z - 1))", "sum(exp(-0.5 * z))",
                                  "sum(sigmoid(z))", "sum(tanh(z))", "sum((z - 0.49)**2)"])
def test_shift_difference_against_mpmath(expr):
    """``g(z + h) - g(z)`` without cancellation, for h from 1e-12 to 50 and of both signs.

    Softplus family and exp: ``log1p(sigmoid(x) expm1(k))`` and friends are products of a few
    correctly rounded factors (each within 2 eps) followed by ``log1p`` (condition number <= 1):
    16 eps relative.  The quadratic goes through its terminating Taylor series, exact up to
    the rounding of ``h (g'(z) + h g''/2)``: 16 eps times ``|h| (|g'(z)| + |h|)``.
    """
    f = gsbref.function(expr)
    fs = FusedSeparable.compile(f, 1)
    g = f.separable(1).g(0)
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 4.0, size=30)
    h = np.concatenate([10.0 ** rng.uniform(-12, 1.7, size=15), -(10.0 ** rng.uniform(-12, 0.5, size=15))])
    got = fs.shift_difference(z[:, None], h[:, None])[:, 0]
    # the exact difference cancels up to ~25 digits of g (|h| >= 1e-12, |g| <= ~20): 60 digits
    with mpmath.workdps(60):
        exact = np.array([float(g.mp(mpmath.mpf(a) + mpmath.mpf(b)) - g.mp(mpmath.mpf(a))) for a, b in zip(z, h)])
    if expr.startswith("sum((z"):
        tol = 16 * EPS * np.abs(h) * (np.abs(2 * (z - 0.49)) + np.abs(h))
    else:
        tol = 16 * EPS * np.abs(exact)
    assert np.all(np.abs(got - exact) <= tol), np.max(np.abs(got - exact) / tol)
