"""Taylor-mode derivatives (jets) against closed forms and against mpmath.diff.

Float64 tolerance.  A jet coefficient of order n comes out of n recurrence steps, each a sum of at
most n + 1 products of earlier coefficients; each step adds O(n) roundings of relative size eps
on numbers of the size of that order's derivatives, so the error of order n is bounded by about
(n + 1)**2 * eps times the magnitude of the order-n derivatives.  We therefore compare against
``tol(n) = (n + 1)**2 * eps * scale_n`` with ``scale_n`` the largest reference value of order n on
the points tested (plus, for multivariate formulas, a factor d for the d-term sums of ``@``,
``sum`` and ``prod``).  mpmath references are computed at 30 digits, so their own error is
negligible; mpmath jets are compared with ``10**(-dps + 8)`` relative to the same scale.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from gsbref.functions import Jet, function
from gsbref.functions import _function as function_module

EPS = np.finfo(float).eps
DPS = 30


def tol(n, scale, factor=1):
    return factor * (n + 1) ** 2 * EPS * scale


def assert_close_by_order(D, ref, factor=1):
    """``D``, ``ref``: arrays whose leading axis is the derivative order."""
    D, ref = np.asarray(D, dtype=float), np.asarray(ref, dtype=float)
    for n in range(D.shape[0]):
        scale = np.abs(ref[n]).max()
        err = np.abs(D[n] - ref[n]).max()
        assert err <= tol(n, scale, factor), (n, err, scale)


# ----------------------------------------------------------------------------------------------
# closed forms, univariate
# ----------------------------------------------------------------------------------------------
def test_polynomial_exact():
    # integer coefficients at dyadic points: every float operation is exact
    f = function("sum(3*z**4 - 2*z**3 + z - 5)")
    z = np.array([-2.0, -0.5, 0.0, 0.25, 3.0])
    D = f.derivatives(z, 7)
    expected = np.array([
        3 * z**4 - 2 * z**3 + z - 5,
        12 * z**3 - 6 * z**2 + 1,
        36 * z**2 - 12 * z,
        72 * z - 12,
        72 + 0 * z,
        0 * z, 0 * z, 0 * z,
    ])
    expected[0] = expected[0].sum()
    np.testing.assert_array_equal(D, expected)
    np.testing.assert_array_equal(D, f.derivatives(z, 7, method="generic"))


def test_multivariate_polynomials_exact():
    z = np.array([[0.5, -2.0, 3.0], [1.25, 0.75, -1.0]])
    D = function("prod(z)").derivatives(z, 3, method="generic")
    np.testing.assert_array_equal(D[1], z.prod(-1, keepdims=True) / z)
    np.testing.assert_array_equal(D[2:], 0.0)
    D = function("z[0]*z[1]**2").derivatives(z, 3)
    np.testing.assert_array_equal(D[1], np.stack([z[:, 1] ** 2, 2 * z[:, 0] * z[:, 1], 0 * z[:, 0]], -1))
    np.testing.assert_array_equal(D[2], np.stack([0 * z[:, 0], 2 * z[:, 0], 0 * z[:, 0]], -1))
    np.testing.assert_array_equal(D[3], 0.0)


def _grid(lo, hi, n=41):
    return np.linspace(lo, hi, n)[:, None]


def _mp_table(points, order, rows):
    """``rows(x, n)`` -> mpf for each point and order, converted to float: shape (order+1, P, 1)."""
    with mpmath.workdps(DPS):
        return np.array([[[float(rows(mpmath.mpf(x), n))] for x in points[:, 0]]
                         for n in range(order + 1)])


def test_exp_closed_form():
    c = -0.3  # the float the formula's literal becomes
    x = _grid(-5, 5)
    D = function("sum(exp(-0.3*z))").derivatives(x, 8)
    ref = _mp_table(x, 8, lambda t, n: mpmath.mpf(c) ** n * mpmath.exp(mpmath.mpf(c) * t))
    assert_close_by_order(D, ref)


def test_sin_cycles():
    x = _grid(-3, 3)
    D = function("sum(sin(2*z))").derivatives(x, 9)
    ref = _mp_table(x, 9, lambda t, n: 2**n * [mpmath.sin, mpmath.cos, lambda u: -mpmath.sin(u),
                                                lambda u: -mpmath.cos(u)][n % 4](2 * t))
    assert_close_by_order(D, ref)
    # the derivatives cycle with period 4 (times 2**4)
    for n in range(1, 6):
        assert np.abs(D[n + 4] - 16 * D[n]).max() <= tol(n + 4, np.abs(D[n + 4]).max())


def _poly_derivatives(first, order):
    """Integer coefficient lists P_n with f^(n) = P_n(y) when y' = first(y) (a coefficient list)."""
    polys = [[0, 1]]
    for _ in range(order):
        p = polys[-1]
        dp = [k * p[k] for k in range(1, len(p))] or [0]
        out = [0] * (len(dp) + len(first) - 1)
        for i, a in enumerate(dp):
            for j, b in enumerate(first):
                out[i + j] += a * b
        polys.append(out)
    return polys


def _horner(coeffs, y):
    return sum((c * y**k for k, c in enumerate(coeffs)), mpmath.mpf(0))


def test_softplus_up_to_order_8():
    # softplus' = s = sigmoid, s' = s (1 - s): softplus^(n) = P_{n-1}(s) with P' = P_s' * (s - s^2)
    polys = _poly_derivatives([0, 1, -1], 8)
    x = _grid(-12, 12, 97)
    D = function("sum(softplus(z))").derivatives(x, 8)

    def ref(t, n):
        if n == 0:
            return mpmath.log1p(mpmath.exp(t))
        return _horner(polys[n - 1], 1 / (1 + mpmath.exp(-t)))

    assert_close_by_order(D, _mp_table(x, 8, ref))
    # log_sigmoid(x) = -softplus(-x): derivatives with alternating signs
    L = function("sum(log_sigmoid(z))").derivatives(-x, 8)
    signs = np.array([-((-1.0) ** n) for n in range(9)])[:, None, None]
    assert_close_by_order(L, signs * _mp_table(x, 8, ref))


def test_tanh_and_sigmoid_polynomials():
    x = _grid(-6, 6, 61)
    tanh_polys = _poly_derivatives([1, 0, -1], 8)  # T' = 1 - T^2
    D = function("sum(tanh(z))").derivatives(x, 8)
    assert_close_by_order(D, _mp_table(x, 8, lambda t, n: _horner(tanh_polys[n], mpmath.tanh(t))))
    sig_polys = _poly_derivatives([0, 1, -1], 8)
    D = function("sum(sigmoid(z))").derivatives(x, 8)
    assert_close_by_order(
        D, _mp_table(x, 8, lambda t, n: _horner(sig_polys[n], 1 / (1 + mpmath.exp(-t))))
    )


def test_log_and_sqrt_closed_forms():
    x = _grid(0.5, 4)
    D = function("sum(log(z))").derivatives(x, 7)
    ref = _mp_table(x, 7, lambda t, n: mpmath.log(t) if n == 0
                    else (-1) ** (n - 1) * math.factorial(n - 1) / t**n)
    assert_close_by_order(D, ref)
    D = function("sum(sqrt(z))").derivatives(x, 7)
    ref = _mp_table(x, 7, lambda t, n: mpmath.rf(mpmath.mpf(1) / 2 - n + 1, n) * t ** (mpmath.mpf(1) / 2 - n))
    assert_close_by_order(D, ref)
    D = function("sum(z**-1.5)").derivatives(x, 7)
    ref = _mp_table(x, 7, lambda t, n: mpmath.rf(mpmath.mpf(-1.5) - n + 1, n) * t ** (-1.5 - n))
    assert_close_by_order(D, ref)


@pytest.mark.parametrize(
    "expr, fn, lo, hi",
    [
        ("sum(log1p(z))", mpmath.log1p, -0.5, 3.0),
        ("sum(expm1(z/3))", lambda t: mpmath.expm1(t / 3), -2.0, 2.0),
        ("sum(cos(1.5*z + 0.25))", lambda t: mpmath.cos(mpmath.mpf(1.5) * t + mpmath.mpf(0.25)), -2.0, 2.0),
        ("sum(1 / (1 + z**2))", lambda t: 1 / (1 + t**2), -2.0, 2.0),
        ("sum(z**-2)", lambda t: t**-2, 0.5, 2.0),
        ("sum(exp(tanh(z)) * softplus(z**2 - 1))",
         lambda t: mpmath.exp(mpmath.tanh(t)) * mpmath.log1p(mpmath.exp(t**2 - 1)), -1.5, 1.5),
        ("sum(sqrt(1 + sin(z)**2) / log(2 + z**2))",
         lambda t: mpmath.sqrt(1 + mpmath.sin(t) ** 2) / mpmath.log(2 + t**2), -1.5, 1.5),
    ],
)
def test_univariate_against_mpmath_diff(expr, fn, lo, hi):
    x = _grid(lo, hi, 9)
    D = function(expr).derivatives(x, 6)
    with mpmath.workdps(DPS):
        ref = np.array([[float(v) for v in mpmath.diffs(fn, mpmath.mpf(t), 6)] for t in x[:, 0]]).T
    # composite formulas: the error of each primitive's jet feeds the next (a few primitives)
    assert_close_by_order(D, ref[:, :, None], factor=4)


# ----------------------------------------------------------------------------------------------
# multivariate, against mpmath.diff
# ----------------------------------------------------------------------------------------------
def _cases(rng, d=3):
    W = rng.normal(size=(4, d))
    c = rng.normal(size=4)
    return [
        ("sum(log_sigmoid(W @ z + c))", {"W": W, "c": c}),
        ("prod(z)", {}),
        ("z[0]*z[1]**2", {}),
        ("sum(z) * z[0] - 2 * z[-1] / (1 + sum(z**2))", {}),
        ("mean(softplus(W @ sin(z)))**2", {"W": W}),
    ]


def _mp_partials(f, z, order):
    """Pure partials by mpmath.diffs on f.mp: object (order+1, d)."""
    d = len(z)
    out = np.empty((order + 1, d), dtype=object)
    for j in range(d):
        def along(t, j=j):
            p = list(z)
            p[j] = t
            return f.mp(p)
        out[:, j] = list(mpmath.diffs(along, z[j], order))
    return out


@pytest.mark.parametrize("case", range(5))
def test_composite_partials_against_mpmath(case):
    rng = np.random.default_rng(7)
    expr, consts = _cases(rng)[case]
    f = function(expr, **consts)
    points = rng.uniform(-1.0, 1.0, size=(3, 3))
    D = f.derivatives(points, 6)
    with mpmath.workdps(DPS):
        mp_points = [[mpmath.mpf(x) for x in p] for p in points]
        refs = [_mp_partials(f, p, 6) for p in mp_points]
        ref = np.stack([r.astype(float) for r in refs], axis=1)
        # mpmath jets: 10**(-dps + 8) of each order's scale
        for p, r in zip(mp_points, refs):
            M = f.mp_derivatives(p, 6)
            for n in range(7):
                scale = max(1, max(abs(v) for v in ref[n].ravel()))
                assert max(abs(M[n, j] - r[n, j]) for j in range(3)) <= mpmath.mpf(10) ** (-DPS + 8) * scale
    assert_close_by_order(D, ref, factor=3 * 4)  # d-term sums and a few primitives


@pytest.mark.parametrize("case", range(5))
def test_hessian_against_mpmath(case):
    rng = np.random.default_rng(11)
    expr, consts = _cases(rng)[case]
    f = function(expr, **consts)
    z = rng.uniform(-1.0, 1.0, size=3)
    H = f.hessian(z)
    assert H.shape == (3, 3)
    with mpmath.workdps(DPS):
        p = [mpmath.mpf(x) for x in z]
        ref = np.empty((3, 3), dtype=object)
        for i in range(3):
            for j in range(3):
                orders = [0, 0, 0]
                orders[i] += 1
                orders[j] += 1
                ref[i, j] = mpmath.diff(lambda *u: f.mp(list(u)), p, tuple(orders))
        M = f.mp_hessian(p)
        scale = max(1, max(abs(v) for v in ref.ravel()))
        assert max(abs(v) for v in (M - ref).ravel()) <= mpmath.mpf(10) ** (-DPS + 8) * scale
    ref = ref.astype(float)
    # polarisation c2(e_i + e_j) - c2(e_i) - c2(e_j): three order-2 errors of the largest entry
    assert np.abs(H - ref).max() <= 3 * tol(2, np.abs(ref).max(), factor=3 * 4)
    np.testing.assert_array_equal(H, H.T)


def test_hessian_batch_shape_and_gradient():
    rng = np.random.default_rng(5)
    f = function("sum(z)**3 - z[0]*z[1]")
    z = rng.normal(size=(2, 3, 2))
    H = f.hessian(z)
    assert H.shape == (2, 3, 2, 2)
    s = z.sum(-1)
    expected = np.empty_like(H)
    expected[...] = (6 * s)[..., None, None]
    expected[..., 0, 1] -= 1
    expected[..., 1, 0] -= 1
    assert np.abs(H - expected).max() <= tol(2, np.abs(expected).max(), factor=2)
    G = f.gradient(z)
    assert G.shape == z.shape
    expected_g = np.stack([3 * s**2 - z[..., 1], 3 * s**2 - z[..., 0]], -1)
    assert np.abs(G - expected_g).max() <= tol(1, np.abs(expected_g).max(), factor=2)


# ----------------------------------------------------------------------------------------------
# separable fast path == generic path
# ----------------------------------------------------------------------------------------------
SEPARABLE = [
    ("sum((z - 0.49)**2)", {}),
    ("sum(softplus(z))", {}),
    ("2.5 * mean(log_sigmoid(c * z + 1)) - 3", {"c": np.array([0.5, -1.0, 2.0, 1.5])}),
    ("-sum(exp(-0.3*z)) / 7", {}),
    ("prod(1 + tanh(z))", {}),
    ("3 * prod(sin(z) + c) + 1", {"c": np.array([1.5, 2.0, -1.0, 0.5])}),
    ("sum(abs(z - 0.5)) + mean(z**3)", {}),
]


@pytest.mark.parametrize("expr, consts", SEPARABLE)
def test_separable_equals_generic(expr, consts):
    f = function(expr, **consts)
    assert f.separable(4) is not None
    rng = np.random.default_rng(3)
    z = rng.uniform(-1.5, 1.5, size=(6, 4))
    fast = f.derivatives(z, 6, method="separable")
    slow = f.derivatives(z, 6, method="generic")
    np.testing.assert_array_equal(fast[0][..., 0], fast[0][..., 1])
    assert_close_by_order(fast, slow, factor=4 * 4)
    np.testing.assert_allclose(fast[0][..., 0], f(z), rtol=4 * 4 * EPS)
    Hf, Hg = f.hessian(z, method="separable"), f.hessian(z, method="generic")
    assert np.abs(Hf - Hg).max() <= 3 * tol(2, np.abs(Hg).max(), factor=4 * 4)
    with mpmath.workdps(DPS):
        p = [mpmath.mpf(x) for x in z[0]]
        a = f.mp_derivatives(p, 4, method="separable")
        b = f.mp_derivatives(p, 4, method="generic")
        scale = max(1, max(abs(v) for v in b.ravel()))
        assert max(abs(v) for v in (a - b).ravel()) <= mpmath.mpf(10) ** (-DPS + 8) * scale
        assert all(isinstance(v, mpmath.mpf) for v in a.ravel())


def test_generic_engine_chunks(monkeypatch):
    f = function("sum(log_sigmoid(W @ z))", W=np.arange(6.0).reshape(2, 3) / 5)
    z = np.random.default_rng(1).normal(size=(7, 3))
    whole = f.derivatives(z, 3)
    monkeypatch.setattr(function_module, "_CHUNK_ELEMENTS", 1)
    np.testing.assert_array_equal(f.derivatives(z, 3), whole)


# ----------------------------------------------------------------------------------------------
# the Jet class itself
# ----------------------------------------------------------------------------------------------
def test_jet_basics_and_errors():
    x = np.array([1.0, 2.0, 3.0])
    t = Jet.variable(x, 3)
    assert t.order == 3 and t.shape == (3,) and "order=3" in repr(t)
    np.testing.assert_array_equal(t.value, x)
    np.testing.assert_array_equal((t * t).derivatives()[:, 1], [4.0, 4.0, 2.0, 0.0])
    np.testing.assert_array_equal((2 - t).coeffs[:2, 0], [1.0, -1.0])
    np.testing.assert_array_equal(t[1].value, 2.0)
    np.testing.assert_array_equal(t.prod().derivatives(), [6.0, 11.0, 12.0, 6.0])
    np.testing.assert_array_equal((Jet.variable(np.zeros(1), 4) ** 3).derivatives()[:, 0], [0, 0, 0, 6, 0])
    np.testing.assert_allclose((1 / t).derivatives()[:, 0], [1.0, -1.0, 2.0, -6.0])
    np.testing.assert_allclose((t**-2).derivatives()[:, 1], [0.25, -0.25, 0.375, -0.75])
    np.testing.assert_array_equal((t**0).coeffs, Jet.constant(np.ones(3), 3).coeffs)
    with pytest.raises(ValueError, match="different orders"):
        t + Jet.variable(x, 2)
    with pytest.raises(TypeError, match="constant"):
        t**t
    with pytest.raises(ValueError, match="non-negative integer"):
        Jet.variable(x, -1)
    with pytest.raises(TypeError, match="real"):
        Jet(np.array([1j]))
    with pytest.raises(ValueError, match="value axis"):
        Jet.variable(1.0, 2).sum()


def test_jet_broadcasting_with_constants():
    t = Jet.variable(np.array([[1.0], [2.0]]), 2)  # value shape (2, 1)
    u = t * np.array([1.0, 2.0, 3.0]) + np.array([0.0, 1.0, 2.0])
    assert u.shape == (2, 3)
    np.testing.assert_array_equal(u.coeffs[1], [[1, 2, 3], [1, 2, 3]])
    v = Jet.variable(np.array(0.5), 2) + np.zeros((2, 2))
    assert v.shape == (2, 2)
    w = np.float64(2.0) * Jet.variable(np.array([1.0]), 1)  # NumPy defers to the jet
    assert isinstance(w, Jet)


def test_tails_keep_relative_accuracy():
    # sech^2, s (1 - s) and sigmoid(-x) are computed without the cancellation of 1 - tanh^2 or
    # 1 - s, so far in the tails the derivatives keep their relative accuracy
    x = np.array([[-30.0], [-20.0], [20.0], [30.0]])
    cases = [
        ("sum(tanh(z))", lambda t: mpmath.tanh(t)),
        ("sum(sigmoid(z))", lambda t: 1 / (1 + mpmath.exp(-t))),
        ("sum(softplus(z))", lambda t: mpmath.log1p(mpmath.exp(t))),
        ("sum(log_sigmoid(z))", lambda t: -mpmath.log1p(mpmath.exp(-t))),
    ]
    for expr, fn in cases:
        D = function(expr).derivatives(x, 4)
        with mpmath.workdps(DPS):
            ref = np.array([[float(v) for v in mpmath.diffs(fn, mpmath.mpf(t), 4)] for t in x[:, 0]]).T
        for n in range(1, 5):
            rel = np.abs(D[n, :, 0] - ref[n]) / np.abs(ref[n])
            assert rel.max() <= tol(n, 1.0), (expr, n, rel.max())


def test_mp_derivatives_of_a_callable():
    from gsbref import ops
    from gsbref.functions import as_function

    f = as_function(lambda z: ops.sum(ops.log_sigmoid(z)) * ops.index(z, 0))
    with mpmath.workdps(DPS):
        p = [mpmath.mpf("0.5"), mpmath.mpf("-1.25")]
        M = f.mp_derivatives(p, 3)
        ref = _mp_partials(f, p, 3)
        scale = max(1, max(abs(v) for v in ref.ravel()))
        assert max(abs(v) for v in (M - ref).ravel()) <= mpmath.mpf(10) ** (-DPS + 8) * scale
        H = f.mp_hessian(p)
        assert mpmath.almosteq(H[0, 1], 1 / (1 + mpmath.exp(p[1])), 10 ** (-DPS + 8))
        G = f.mp_gradient(p)
        assert all(isinstance(v, mpmath.mpf) for v in G)
