"""Formula parsing, evaluation on arrays and mpmath, kinks, callables, structure queries."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy.special import expit

from gsbref import ops
from gsbref.functions import Function, Jet, as_function, function

EPS = np.finfo(float).eps
RNG_SEED = 20240611


def _softplus(x):
    return np.logaddexp(0.0, x)


def _examples(d, rng):
    """(formula, constants, numpy reference) for every example of the specification."""
    W = rng.normal(size=(3, d))
    c_h = rng.normal(size=3)
    c_d = rng.uniform(0.5, 2.0, size=d)
    return [
        ("sum((z - 0.49)**2)", {}, lambda z: ((z - 0.49) ** 2).sum(-1)),
        ("sum(softplus(z))", {}, lambda z: _softplus(z).sum(-1)),
        ("sum(exp(-0.3*z))", {}, lambda z: np.exp(-0.3 * z).sum(-1)),
        ("prod(z)", {}, lambda z: z.prod(-1)),
        ("z[0]*z[1]**2", {}, lambda z: z[..., 0] * z[..., 1] ** 2),
        ("sum(log_sigmoid(W @ z + c))", {"W": W, "c": c_h},
         lambda z: -_softplus(-(z @ W.T + c_h)).sum(-1)),
        ("mean(sin(2*z))", {}, lambda z: np.sin(2 * z).mean(-1)),
        ("sum(c * z**2)", {"c": c_d}, lambda z: (c_d * z**2).sum(-1)),
        ("sum(z) * z[0] - 2 * z[-1] / (1 + sum(z**2))", {},
         lambda z: z.sum(-1) * z[..., 0] - 2 * z[..., -1] / (1 + (z**2).sum(-1))),
        ("sum(tanh(z) + sigmoid(z) + log1p(z**2) + expm1(z/4) + sqrt(1 + z**2) + cos(pi*z))", {},
         lambda z: (np.tanh(z) + expit(z) + np.log1p(z**2) + np.expm1(z / 4)
                    + np.sqrt(1 + z**2) + np.cos(np.pi * z)).sum(-1)),
        ("sum(abs(z) - relu(z - 0.1)) + log(2 + z[1])", {},
         lambda z: (np.abs(z) - np.maximum(z - 0.1, 0)).sum(-1) + np.log(2 + z[..., 1])),
        ("-3 * sum(exp(z))**2 + +1.5", {}, lambda z: -3 * np.exp(z).sum(-1) ** 2 + 1.5),
    ]


@pytest.mark.parametrize("shape", [(4,), (7, 4), (2, 3, 4)])
def test_examples_match_numpy(shape):
    rng = np.random.default_rng(RNG_SEED)
    z = rng.uniform(-1.0, 1.0, size=shape)
    for expr, consts, ref in _examples(4, rng):
        f = function(expr, **consts)
        value = f(z)
        assert np.shape(value) == shape[:-1], expr
        expected = ref(z)
        # same operations in a possibly different order: a few roundings of the result's size
        tol = 64 * EPS * (1 + np.abs(expected))
        assert np.all(np.abs(value - expected) <= tol), expr


def test_single_coordinate_abs_is_squeezed():
    f = function("abs(z - 0.5)")
    z = np.array([[0.2], [0.5], [1.25]])
    np.testing.assert_array_equal(f(z), [0.3, 0.0, 0.75])
    assert f(np.array([0.0])).shape == ()


def test_vector_result_is_rejected():
    f = function("abs(z - 0.5)")
    with pytest.raises(ValueError, match="wrap it in sum"):
        f(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="scalar-valued"):
        function("W @ z", W=np.ones((2, 3)))(np.zeros(3))


def test_constant_function_broadcasts():
    f = function("2 * pi + sum(c)", c=np.array([1.0, 2.0]))
    np.testing.assert_array_equal(f(np.zeros((3, 5))), np.full(3, 2 * np.pi + 3.0))
    D = f.derivatives(np.zeros((3, 5)), 2)
    assert D.shape == (3, 3, 5)
    np.testing.assert_array_equal(D[1:], 0.0)


@pytest.mark.parametrize(
    "expr, message",
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("z.T", "attribute access"),
        ("lambda x: x", "lambda"),
        ("(lambda x: x)(z)", "calling anything but a primitive"),
        ("sum(z**z)", "exponent of '\\*\\*' must be a constant"),
        ("sum(foo * z)", "unknown name 'foo'.*allowed: z, pi"),
        ("sum(z) if z else 0", "conditional expression"),
        ("z[1:2]", "integer literal"),
        ("z[0.5]", "integer literal"),
        ("sum(z, 1)", "exactly one positional argument"),
        ("sum(z[0])", "reduces a vector"),
        ("z[0][1]", "only vectors can be indexed"),
        ("exp", "'exp' is a function"),
        ("sum(z) +", "cannot parse"),
        ("'abc'", "literal 'abc'"),
        ("z @ z", "left operand of '@' must be a matrix constant"),
        ("sum(z < 1)", "comparison"),
        ("sum(z ** c)", "exponent of '\\*\\*' must be a scalar"),
    ],
)
def test_rejected_formulas(expr, message):
    with pytest.raises(ValueError, match=message):
        function(expr, c=np.ones(2))


def test_unknown_name_lists_constants():
    with pytest.raises(ValueError, match="constants given: alpha, beta"):
        function("sum(gamma * z)", alpha=1.0, beta=2.0)


def test_matrix_only_left_of_matmul():
    W = np.ones((2, 3))
    with pytest.raises(ValueError, match="left operand of '@'"):
        function("sum(W * z)", W=W)
    with pytest.raises(ValueError, match="left operand of '@'"):
        function("W", W=W)


def test_bad_constants():
    with pytest.raises(ValueError, match="reserved"):
        function("sum(z)", exp=1.0)
    with pytest.raises(TypeError, match="real"):
        function("sum(c * z)", c=1j)
    with pytest.raises(TypeError, match="bool"):
        function("sum(c * z)", c=True)
    with pytest.raises(ValueError, match="3 dimensions"):
        function("sum(c * z)", c=np.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="must be a string"):
        function(3.0)


def test_length_mismatch_is_reported():
    f = function("sum(c * z)", c=np.ones(3))
    with pytest.raises(ValueError, match="lengths do not match"):
        f(np.zeros(4))
    with pytest.raises(ValueError, match="columns"):
        function("sum(W @ z)", W=np.ones((2, 3)))(np.zeros(4))
    with pytest.raises(ValueError, match="out of range"):
        function("z[3]")(np.zeros(3))


def test_bad_points():
    f = function("sum(z)")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., d\)"):
        f(1.0)
    with pytest.raises(TypeError, match="real"):
        f(np.array([1j]))
    with pytest.raises(ValueError, match="non-negative integer"):
        f.derivatives(np.zeros(2), -1)
    with pytest.raises(ValueError, match="method must be one of"):
        f.derivatives(np.zeros(2), 1, method="magic")
    with pytest.raises(ValueError, match="not separable"):
        function("z[0] * z[1]").derivatives(np.zeros(2), 1, method="separable")


# ----------------------------------------------------------------------------------------------
# mpmath evaluation
# ----------------------------------------------------------------------------------------------
def test_mp_matches_float():
    rng = np.random.default_rng(RNG_SEED + 1)
    z = rng.uniform(-1.0, 1.0, size=4)
    for expr, consts, _ in _examples(4, rng):
        f = function(expr, **consts)
        with mpmath.workdps(30):
            v = f.mp([mpmath.mpf(x) for x in z])
            assert isinstance(v, mpmath.mpf)
        # float64 result of a short computation: a few eps relative to its inputs' size
        assert abs(float(v) - f(z)) <= 64 * EPS * (1 + abs(float(v))), expr


def test_mp_literals_are_decimal():
    f = function("sum((z - 0.49)**2)")
    with mpmath.workdps(40):
        v = f.mp([mpmath.mpf(1)])
        assert mpmath.almosteq(v, mpmath.mpf("0.51") ** 2, 10**-39)
        assert not mpmath.almosteq(v, (1 - mpmath.mpf(0.49)) ** 2, 10**-30)
        third = function("sum(z) + 1/3").mp([0])
        assert mpmath.almosteq(third, mpmath.mpf(1) / 3, 10**-39)


def test_mp_float_constants_are_exact():
    c = np.array([0.1, 0.2])
    f = function("sum(c * z)", c=c)
    with mpmath.workdps(50):
        v = f.mp([1, 1])
        assert v == mpmath.mpf(0.1) + mpmath.mpf(0.2)


def test_mp_precision_not_leaked():
    before = mpmath.mp.dps
    f = function("sum(softplus(z)) + pi")
    with mpmath.workdps(60):
        v = f.mp([0.5, -0.25])
        assert mpmath.almosteq(
            v, mpmath.log1p(mpmath.exp(0.5)) + mpmath.log1p(mpmath.exp(-0.25)) + mpmath.pi, 10**-59
        )
    assert mpmath.mp.dps == before


def test_mp_domain_error_is_a_value_error():
    with mpmath.workdps(20), pytest.raises(ValueError, match="not a real number"):
        function("sum(log(z))").mp([-1.0])
    with mpmath.workdps(20), pytest.raises(ValueError, match="not a real number"):
        function("sum(z**0.5)").mp([-1.0])


def test_mp_batch_of_points():
    z = np.array([[mpmath.mpf(1), mpmath.mpf(2)], [mpmath.mpf(3), mpmath.mpf(4)]], dtype=object)
    with mpmath.workdps(20):
        v = function("prod(z)").mp(z)
    assert v.shape == (2,) and v[0] == 2 and v[1] == 12


# ----------------------------------------------------------------------------------------------
# kinks
# ----------------------------------------------------------------------------------------------
def test_kink_convention_abs_relu():
    f = function("sum(abs(z) + 3 * relu(z))")
    z = np.array([-0.5, 0.0, 0.5])
    D = f.derivatives(z, 3)
    np.testing.assert_array_equal(D[1], [-1.0, 1.5, 4.0])  # sign + 3 H, with H(0) = 1/2
    np.testing.assert_array_equal(D[2:], 0.0)
    assert f.has_kinks and f.kink_primitives == ("abs", "relu")
    assert not function("sum(z**2)").has_kinks


def test_kink_convention_near_zero_and_composed():
    f = function("sum(relu(z - 0.5)**2)")
    z = np.array([0.5 - 1e-12, 0.5, 0.5 + 1e-12])
    D = f.derivatives(z, 2)
    assert D[1][0] == 0.0 and D[1][1] == 0.0
    assert abs(D[1][2] - 2 * (z[2] - 0.5)) <= 4 * EPS
    # (relu(u))^2: second derivative 2 H(u)^2 (pointwise): 0, 1/2, 2
    np.testing.assert_array_equal(D[2], [0.0, 0.5, 2.0])
    # the relu = (x + |x|)/2 identity holds for the whole jet
    g = function("sum((z + abs(z)) / 2)")
    x = np.array([-1.0, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(g.derivatives(x, 3), function("sum(relu(z))").derivatives(x, 3))


def test_kink_convention_mpmath():
    with mpmath.workdps(30):
        D = function("sum(abs(z) + relu(z))").mp_derivatives([0, mpmath.mpf(-2)], 2)
    assert D[1, 0] == mpmath.mpf(1) / 2 and D[1, 1] == -1
    assert D[2, 0] == 0 and D[2, 1] == 0


# ----------------------------------------------------------------------------------------------
# callables, ops, repr
# ----------------------------------------------------------------------------------------------
def test_callable_with_ops_three_ways():
    f = as_function(lambda z: ops.sum(ops.softplus(z)) + ops.index(z, 0) * ops.prod(ops.tanh(z)))
    g = function("sum(softplus(z)) + z[0] * prod(tanh(z))")
    rng = np.random.default_rng(RNG_SEED + 2)
    z = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(f(z), g(z))
    np.testing.assert_allclose(f.derivatives(z, 3), g.derivatives(z, 3, method="generic"),
                               rtol=0, atol=64 * EPS * np.abs(g.derivatives(z, 3)).max())
    with mpmath.workdps(30):
        pt = [mpmath.mpf(x) for x in z[0]]
        assert mpmath.almosteq(f.mp(pt), g.mp(pt), 10**-28)
    assert f.has_kinks is None and f.kink_primitives is None and f.separable(3) is None
    assert f.first_affine() is None and f.tree is None and f.expr is None
    assert "callable" in repr(f)


def test_callable_vector_result():
    f = as_function(lambda z: ops.exp(z))
    np.testing.assert_allclose(f(np.zeros((2, 1))), [1.0, 1.0])
    with pytest.raises(ValueError, match="wrap it in sum"):
        f(np.zeros((2, 3)))


def test_ops_matvec_index_and_errors():
    W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    z = np.array([[1.0, -1.0], [0.5, 2.0]])
    np.testing.assert_array_equal(ops.matvec(W, z), z @ W.T)
    np.testing.assert_array_equal(ops.index(z, -1), z[:, -1])
    with pytest.raises(TypeError, match="integer"):
        ops.index(z, 0.5)
    with pytest.raises(ValueError, match="scalar"):
        ops.sum(1.0)
    with pytest.raises(ValueError, match="2-d matrix"):
        ops.matvec(np.ones(3), z)
    jet = Jet.variable(z, 2)
    np.testing.assert_array_equal(ops.matvec(W, jet).coeffs[1], np.ones((2, 2)) @ W.T)
    np.testing.assert_array_equal(ops.mean(jet).value, z.mean(-1))


def test_ops_float_stability():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    assert np.all(np.isfinite(ops.softplus(x))) and ops.softplus(x)[-1] == 1000.0
    assert ops.log_sigmoid(x)[0] == -1000.0 and ops.log_sigmoid(x)[-1] == 0.0
    assert ops.sigmoid(x)[0] == 0.0 and ops.sigmoid(x)[-1] == 1.0
    jet = Jet.variable(x, 4)
    for name in ("softplus", "log_sigmoid", "sigmoid", "tanh"):
        assert np.all(np.isfinite(getattr(ops, name)(jet).coeffs)), name


def test_as_function_passthrough_and_errors():
    f = function("sum(z)")
    assert as_function(f) is f
    assert isinstance(as_function("sum(z)"), Function)
    with pytest.raises(TypeError, match="formula string"):
        as_function(3)
    with pytest.raises(ValueError, match="constants"):
        as_function(f, c=1.0)


def test_repr_and_tree():
    f = function("sum(log_sigmoid(W @ z + c))", W=np.eye(2), c=np.zeros(2))
    assert repr(f) == "Function('sum(log_sigmoid(W @ z + c))', W=<array (2, 2)>, c=<array (2,)>)"
    assert str(f.tree) == "sum(log_sigmoid((W @ z) + c))"
    assert f.expr == "sum(log_sigmoid(W @ z + c))"


# ----------------------------------------------------------------------------------------------
# first affine map
# ----------------------------------------------------------------------------------------------
def test_first_affine():
    rng = np.random.default_rng(RNG_SEED + 3)
    W, c = rng.normal(size=(3, 2)), rng.normal(size=3)
    f = function("sum(log_sigmoid(W @ z + c)) + mean(W @ z + c)**2", W=W, c=c)
    W_, c_, rest = f.first_affine()
    np.testing.assert_array_equal(W_, W)
    np.testing.assert_array_equal(c_, c)
    z = rng.normal(size=(4, 2))
    np.testing.assert_allclose(rest(z @ W.T + c), f(z), rtol=16 * EPS)
    assert str(rest.tree) == "sum(log_sigmoid(z)) + (mean(z)**2)"
    W2, c2, _ = function("sum(softplus(W @ z))", W=W).first_affine()
    np.testing.assert_array_equal(c2, np.zeros(3))
    _, c3, _ = function("sum(softplus(W @ z - 1))", W=W).first_affine()
    np.testing.assert_array_equal(c3, -np.ones(3))
    assert function("sum(softplus(W @ z)) + z[0]", W=W).first_affine() is None
    assert function("sum(z**2)").first_affine() is None


def test_zero_dim_and_list_constants():
    f = function("sum(k*z) + sum(c*z)", k=np.array(2.0), c=[1, 2])
    np.testing.assert_array_equal(f(np.array([[1.0, 1.0], [0.5, -1.0]])), [7.0, -2.5])
    np.testing.assert_array_equal(f.gradient(np.zeros(2)), [3.0, 4.0])
    with mpmath.workdps(30):
        assert f.mp([1, 1]) == 7
