"""Random formulas from the grammar: jets agree with mpmath.diff, float with mpmath, engines agree.

The formulas are built from smooth primitives on well-defined arguments (``log(2 + sin(.))``,
``sqrt(1 + (.)**2)``, division by ``2 + cos(.)``), so every derivative exists everywhere.
Tolerances are ``sqrt(eps)`` relative to the size of the reference: a float64 jet of a few dozen
operations is accurate to a modest multiple of eps, while a wrong derivative rule is off by O(1).
"""

from __future__ import annotations

import mpmath
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gsbref.functions import function

D = 3
SQRT_EPS = np.sqrt(np.finfo(float).eps)
CONSTANTS = {
    "W": np.array([[0.5, -1.0, 0.25], [1.5, 0.5, -0.5], [-0.75, 0.25, 1.0]]),
    "c": np.array([0.3, -1.2, 0.7]),
    "k": 1.5,
}
UNARY = [
    "exp(tanh({}))", "sin({})", "cos({})", "tanh({})", "sigmoid({})", "softplus({})",
    "log_sigmoid({})", "log1p(({})**2)", "sqrt(1 + ({})**2)", "expm1(tanh({}))", "log(2 + sin({}))",
]


def vectors(depth):
    leaves = st.sampled_from(["z", "c", "(W @ z)", "(z - 0.25)"])
    if depth == 0:
        return leaves
    v, s = vectors(depth - 1), scalars(depth - 1)
    return st.one_of(
        leaves,
        st.builds(str.format, st.sampled_from(UNARY), v),
        st.builds(lambda a, op, b: f"({a} {op} {b})", v, st.sampled_from("+-*"), v),
        st.builds(lambda a, b: f"({a} / (2 + cos({b})))", v, v),
        st.builds(lambda a, b: f"({a} * {b})", v, s),
        st.builds(lambda a: f"(W @ {a})", v),
        st.builds(lambda a, p: f"({a})**{p}", v, st.sampled_from([2, 3])),
    )


def scalars(depth):
    leaves = st.one_of(
        st.builds(lambda i: f"z[{i}]", st.integers(-D, D - 1)),
        st.sampled_from(["0.5", "pi", "k"]),
    )
    if depth == 0:
        return leaves
    v, s = vectors(depth - 1), scalars(depth - 1)
    return st.one_of(
        leaves,
        st.builds(lambda r, a: f"{r}({a})", st.sampled_from(["sum", "mean", "prod"]), v),
        st.builds(str.format, st.sampled_from(UNARY), s),
        st.builds(lambda a, op, b: f"({a} {op} {b})", s, st.sampled_from("+-*"), s),
        st.builds(lambda a, b: f"({a} / (2 + cos({b})))", s, s),
    )


formulas = st.one_of(scalars(2), vectors(2).map(lambda v: f"sum({v})"))
points = st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=D, max_size=D)


def _mp_reference(f, z, order):
    out = np.empty((order + 1, D), dtype=object)
    for j in range(D):
        def along(t, j=j):
            p = list(z)
            p[j] = t
            return f.mp(p)
        out[:, j] = list(mpmath.diffs(along, z[j], order))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=formulas, z=points)
def test_random_formula_jets(expr, z):
    f = function(expr, **CONSTANTS)
    z = np.array(z)
    D2 = f.derivatives(z, 2)
    with mpmath.workdps(30):
        p = [mpmath.mpf(x) for x in z]
        ref = _mp_reference(f, p, 2)
        M = f.mp_derivatives(p, 2)
        scale = max(1, max(abs(v) for v in ref.ravel()))
        assert max(abs(v) for v in (M - ref).ravel()) <= mpmath.mpf(10) ** -22 * scale, expr
    ref = ref.astype(float)
    tol = SQRT_EPS * max(1.0, np.abs(ref).max())
    assert abs(f(z) - ref[0, 0]) <= tol, expr
    assert np.abs(D2 - ref).max() <= tol, expr
    np.testing.assert_array_equal(f.gradient(z), f.derivatives(z, 1)[1])
    if f.separable(D) is not None:
        generic = f.derivatives(z, 2, method="generic")
        assert np.abs(D2 - generic).max() <= tol, expr


@settings(max_examples=30, deadline=None)
@given(expr=formulas, z=points)
def test_random_formula_hessian(expr, z):
    f = function(expr, **CONSTANTS)
    z = np.array(z)
    H = f.hessian(z)
    with mpmath.workdps(30):
        p = [mpmath.mpf(x) for x in z]
        ref = np.empty((D, D))
        for i in range(D):
            for j in range(i, D):
                orders = [0] * D
                orders[i] += 1
                orders[j] += 1
                ref[i, j] = ref[j, i] = float(mpmath.diff(lambda *u: f.mp(list(u)), p, tuple(orders)))
    assert np.abs(H - ref).max() <= SQRT_EPS * max(1.0, np.abs(ref).max()), expr
