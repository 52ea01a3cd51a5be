"""The hypothesis strategies of :mod:`gsbref.strategies` keep their own promises.

Checked against the declarations only (never against what a constructor happens to accept):

* valid parameter sets lie in the declared domains, with the declared event ranks and the shapes of
  :data:`~gsbref.strategies.LAYOUTS`, from the typical ranges unless an edge value was drawn;
* an invalid parameter set violates the declaration of the parameter it names, in the way its
  ``reason`` states, and every kind of violation is reachable;
* formulas parse, carry the kinds of their pieces, are separable when they say so, use every
  elementwise primitive of the grammar somewhere, and respect the constraints of the distribution
  they are drawn for;
* a drawn case's truth is the float view of the oracle at the stated ``dps`` and agrees with a
  second oracle method to ``10**(-dps + 5)`` relative to ``max(1, |value|)`` (the tolerance of
  ``tests/test_oracle.py``: each method is asked for ``dps`` digits, five are left for error
  amplification).

Hypothesis settings: :func:`gsbref.strategies.property_settings` (derandomized with ``CI`` set).
"""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import mpmath
import numpy as np
import pytest
from hypothesis import Phase, find, given
from hypothesis import strategies as st

import gsbref
from gsbref import oracle
from gsbref import strategies as S
from gsbref.distributions import FAMILIES
from gsbref.functions._expr import ELEMENTWISE

SQRT_EPS = math.sqrt(np.finfo(float).eps)
FIND = S.property_settings(2000, "ci", phases=[Phase.generate])  # `find`: the first match, unshrunk


def _in_domain(p, v) -> bool:
    v = np.asarray(v, dtype=float)
    kind = p.domain.kind
    if kind == "interval":
        return bool(p.domain.contains(v).all())
    if kind == "simplex":
        return bool(np.isfinite(v).all() and (v >= 0).all() and (np.abs(v.sum(-1) - 1) <= SQRT_EPS).all())
    if kind == "positive-definite":
        return bool(np.isfinite(v).all() and np.array_equal(v, v.T) and np.linalg.eigvalsh(v).min() > 0)
    raise AssertionError(kind)


# ----------------------------------------------------------------------------------------------
# constructors and declarations
# ----------------------------------------------------------------------------------------------
def test_constructors_cover_every_family_and_alternate_constructor():
    labels = [c.label for c in S.constructors()]
    for name, cls in FAMILIES.items():
        assert name in labels
        for attr, value in vars(cls).items():
            if attr.startswith("from_") and isinstance(value, classmethod):
                assert f"{name}.{attr}" in labels
    assert {"Gamma.from_rate", "Bernoulli.from_logits", "Categorical.from_logits"} <= set(labels)
    for c in S.constructors():
        # the declared names are exactly the keyword arguments of the constructor
        make = c.family if c.method is None else getattr(c.family, c.method)
        args = [a for a in inspect.signature(make).parameters if a != "self"]
        assert args == [p.name for p in c.parameters], c
    assert S.constructors(["Bernoulli.from_logits"])[0].target is gsbref.BernoulliLogits
    with pytest.raises(ValueError, match="unknown family 'Gama'"):
        S.constructors(["Gama"])


def test_derived_rate_declaration_is_the_reciprocal_of_scale():
    rate = S.constructors(["Gamma.from_rate"])[0].parameters[1]
    scale = gsbref.Gamma.parameters[1]
    assert rate.name == "rate" and rate.domain == scale.domain and rate.log_scale == scale.log_scale
    assert rate.typical == (1 / scale.typical[1], 1 / scale.typical[0])


@pytest.mark.parametrize("c", S.constructors(), ids=lambda c: c.label)
def test_edge_values_lie_in_the_domain_and_reach_beyond_the_typical_range(c):
    for p in c.parameters:
        if p.domain.kind != "interval":
            continue
        edges = S.edge_values(p)
        assert all(bool(p.domain.contains(np.array(v))) for v in edges), (p.name, edges)
        lo, hi = p.typical
        assert lo in edges and hi in edges
        assert min(edges) < lo and max(edges) > hi or p.domain.low_closed or p.domain.high_closed


# ----------------------------------------------------------------------------------------------
# valid parameter sets
# ----------------------------------------------------------------------------------------------
@S.property_settings(60)
@given(s=S.parameter_sets(valid=True))
def test_valid_parameter_sets_respect_the_declarations(s):
    con = s.constructor
    layout = con.layout
    assert list(s.kwargs) == [p.name for p in con.parameters]
    shapes = {}
    for p in con.parameters:
        v = np.asarray(s.kwargs[p.name])
        assert v.dtype == np.float64
        assert _in_domain(p, v), (p.name, v)
        assert v.ndim >= p.event_ndim
        if p.event_ndim:
            core = v.shape[v.ndim - p.event_ndim:]
            assert len(set(core)) == 1 and core[0] >= layout.min_size, (p.name, v.shape)
            if not layout.batch:
                assert v.ndim == p.event_ndim
        if p.domain.kind == "interval":
            lo, hi = p.typical
            typical = (v >= lo) & (v <= hi)
            edge = np.isin(v, S.edge_values(p))
            assert (typical | edge).all(), (p.name, v)
        shapes[p.name] = v.shape
    if con.factorized:
        np.broadcast_shapes(*shapes.values())
    else:
        cores = {shp[len(shp) - p.event_ndim:][:1] for p, shp in zip(con.parameters, shapes.values()) if p.event_ndim}
        assert len(cores) <= 1, shapes


def test_edges_zero_gives_typical_values_only():
    @S.property_settings(30)
    @given(s=S.parameter_sets(families=["Gamma", "Bernoulli", "Laplace"], edges=0.0))
    def check(s):
        for p in s.constructor.parameters:
            lo, hi = p.typical
            v = np.asarray(s.kwargs[p.name])
            assert ((v >= lo) & (v <= hi)).all()

    check()


def test_every_edge_value_kind_is_reachable():
    """An edge value of each kind is drawn: below the typical range, a closed domain end, a zero
    simplex entry."""
    below = find(S.parameter_sets(["Gamma"], edges=0.5),
                 lambda s: (np.asarray(s.kwargs["shape"]) < 0.2).any(), settings=FIND)
    assert np.isin(below.kwargs["shape"], S.edge_values(gsbref.Gamma.parameters[0])).any()
    find(S.parameter_sets(["Bernoulli"], edges=0.5), lambda s: (np.asarray(s.kwargs["probs"]) == 1.0).any(),
         settings=FIND)
    find(S.parameter_sets(["Categorical"], edges=0.5), lambda s: (np.asarray(s.kwargs["probs"]) == 0.0).any(),
         settings=FIND)


def test_shapes_follow_the_requested_sizes_and_event_shapes():
    s = find(S.parameter_sets(["Dirichlet"], event_shapes=[(2,)], sizes=1), lambda s: True, settings=FIND)
    assert s.kwargs["concentration"].shape == (2, 2)  # K raised to the declared minimum 2
    s = find(S.parameter_sets(["MultivariateGaussian"], event_shapes=[(3,)], sizes=3), lambda s: True,
             settings=FIND)
    assert s.kwargs["loc"].shape == (3,) and s.kwargs["cov"].shape == (3, 3)  # no batches
    s = find(S.distributions(["Gaussian"], event_shapes=[(2, 3)]), lambda d: True, settings=FIND)
    assert s.event_shape == (2, 3)
    with pytest.raises(TypeError, match="sizes"):
        S.parameter_sets(sizes="two")


# ----------------------------------------------------------------------------------------------
# invalid parameter sets
# ----------------------------------------------------------------------------------------------
def _violates(bad: S.InvalidParameters) -> bool:
    """Does the named parameter break its declaration (or the layout) as the reason says?"""
    con = bad.constructor
    p = next(q for q in con.parameters if q.name == bad.parameter)
    v = bad.kwargs[p.name]
    if bad.exception is TypeError:
        arr = np.asarray(v)
        return arr.dtype.kind not in "biuf"
    arr = np.asarray(v, dtype=float)
    if arr.ndim < p.event_ndim:
        return True
    if p.event_ndim and (arr.shape[-1] < con.layout.min_size or arr.shape[-1] == 0):
        return True
    if p.event_ndim and not con.layout.batch and arr.ndim > p.event_ndim:
        return True
    shapes = {q.name: np.shape(bad.kwargs[q.name]) for q in con.parameters}
    if con.factorized:
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            return True
    else:
        cores = {shapes[q.name][-1] for q in con.parameters if q.event_ndim}
        if len(cores) > 1:
            return True
    return not _in_domain(p, arr)


@S.property_settings(80)
@given(bad=S.parameter_sets(valid=False))
def test_invalid_parameter_sets_violate_the_declaration_they_name(bad):
    assert isinstance(bad, S.InvalidParameters)
    assert bad.exception in (ValueError, TypeError)
    assert bad.parameter in [p.name for p in bad.constructor.parameters]
    assert bad.match == f"'{bad.parameter}'"
    assert _violates(bad), bad


@pytest.mark.parametrize("con", S.constructors(), ids=lambda c: c.label)
def test_every_applicable_violation_is_drawn(con):
    """Each violation :func:`~gsbref.strategies.violations` lists for a constructor is drawn, and
    together they cover :data:`~gsbref.strategies.VIOLATIONS`."""
    for v in S.violations(con):
        bad = find(S.parameter_sets([con.label], valid=False, sizes=[2, 3]),
                   lambda b, v=v: b.violation == v, settings=FIND)
        assert _violates(bad)


def test_violations_cover_every_kind():
    assert {v for c in S.constructors() for v in S.violations(c)} == set(S.VIOLATIONS)


def test_valid_none_mixes():
    find(S.distributions(valid=None), lambda d: isinstance(d, S.InvalidParameters), settings=FIND)
    find(S.distributions(valid=None), lambda d: isinstance(d, gsbref.distributions.Distribution), settings=FIND)
    with pytest.raises(TypeError, match="valid"):
        S.distributions(valid="yes")
    with pytest.raises(ValueError, match="edges"):
        S.distributions(edges=1.5)


# ----------------------------------------------------------------------------------------------
# formulas
# ----------------------------------------------------------------------------------------------
@S.property_settings(60)
@given(fm=S.formulas(), z=st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3))
def test_formulas_build_and_describe_themselves(fm, z):
    f = fm.build()
    assert set(fm.kinds) <= set(S.KINDS) and fm.kinds
    assert f.has_kinks == ("kinked" in fm.kinds)
    d = int(np.shape(next(iter(fm.constants.values())))[-1]) if fm.constants and fm.separable else None
    for dim in ([d] if d else [1, 2, 3]):
        try:
            sep = f.separable(dim)
        except ValueError:
            continue
        if fm.separable:
            assert sep is not None, (fm, dim)
    if fm.separable:
        with np.errstate(all="ignore"):
            value = f(np.array(z))
        assert np.isfinite(value) or "log(" in fm.expr or "1/(" in fm.expr  # log, 1/x need z > -a


@pytest.mark.parametrize("primitive", ELEMENTWISE)
def test_every_elementwise_primitive_is_drawn(primitive):
    fm = find(S.formulas(dim=1, dist=gsbref.Gamma(2.0, 1.0)), lambda fm: f"{primitive}(" in fm.expr,
              settings=FIND)
    fm.build()


@pytest.mark.parametrize("kind", S.KINDS)
def test_kinds_select_their_pieces(kind):
    @S.property_settings(25)
    @given(fm=S.formulas(kind))
    def check(fm):
        assert kind in fm.kinds

    check()
    with pytest.raises(ValueError, match="kinds"):
        S.formulas(("wiggly",))


def test_separable_flag_is_honoured():
    @S.property_settings(25)
    @given(fm=S.formulas(dim=3, separable=True))
    def sep(fm):
        assert fm.separable and fm.build().separable(3) is not None

    @S.property_settings(25)
    @given(fm=S.formulas(dim=3, separable=False))
    def nonsep(fm):
        assert not fm.separable and fm.build().separable(3) is None

    sep()
    nonsep()


def _exponents(expr: str) -> list[float]:
    out = []
    for piece in expr.split("exp(")[1:]:
        head = piece.split("*")[0]
        try:
            out.append(float(head))
        except ValueError:
            pass  # a bump exp(-(...)**2): bounded
    return out


@S.property_settings(40)
@given(dist=S.distributions(["Gamma", "Laplace", "Exponential", "ChiSquared", "Gamma.from_rate"],
                            event_shapes=[(), (2,)]),
       data=st.data())
def test_exponents_stay_inside_half_the_moment_strip(dist, data):
    fm = data.draw(S.formulas("exp-type", dist=dist, separable=True))
    lo, hi = S.context(dist).strip
    for c in _exponents(fm.expr):
        assert lo / 2 <= c <= hi / 2, (fm, lo, hi)


@S.property_settings(40)
@given(dist=S.distributions(["Gaussian", "Laplace", "MultivariateGaussian"], event_shapes=[(), (2,)]),
       data=st.data())
def test_log_and_inverse_only_on_nonnegative_supports(dist, data):
    fm = data.draw(S.formulas(("smooth", "divergent-series"), dist=dist))
    assert "log(" not in fm.expr and "1/(0" not in fm.expr and "1/(1." not in fm.expr, fm


def test_no_kink_on_a_point_mass():
    @S.property_settings(40)
    @given(dist=S.distributions(["Dirac"], event_shapes=[(), (2,)], edges=0.5), data=st.data())
    def check(dist, data):
        fm = data.draw(S.formulas("kinked", dist=dist))
        f = fm.build()
        loc = np.broadcast_to(dist.loc, dist.event_shape).reshape(-1)
        # f is differentiable at loc: one-sided difference quotients agree
        h = 1e-7
        for j in range(loc.size):
            e = np.zeros(loc.size)
            e[j] = h
            right = (f(loc + e) - f(loc)) / h
            left = (f(loc) - f(loc - e)) / h
            assert abs(right - left) <= 1e-5 * max(1.0, abs(right)), (fm, dist)

    check()


def test_formulas_with_a_distribution_use_its_event_size():
    d = gsbref.Gaussian([0.0, 1.0, 2.0], 1.0)
    fm = find(S.formulas(dist=d, separable=True), lambda fm: bool(fm.constants), settings=FIND)
    assert all(np.shape(v) == (3,) for v in fm.constants.values())
    with pytest.raises(ValueError, match="event size"):
        S.formulas(dim=2, dist=d)


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------
def _flat(v):
    return list(np.asarray(v, dtype=object).reshape(-1))


@S.property_settings(20)
@given(case=S.cases())
def test_case_truth_is_the_oracle_and_agrees_with_a_second_method(case):
    dist, f, dps = case.dist, case.f, case.dps
    assert dps == 12 and case.exact.dps == dps
    assert set(case.truth) == {p.name for p in type(dist).parameters}
    for k, v in case.exact.items():
        np.testing.assert_array_equal(np.asarray(case.truth[k], dtype=float),
                                      np.asarray(oracle.to_float(v), dtype=float))
    others = [m for m in oracle.methods(dist, f) if m != case.exact.method]
    assert others, case
    second = oracle.gradient(dist, f, dps=dps, method=others[0])
    tol = mpmath.mpf(10) ** (-dps + 5)
    for k in case.exact:
        for x, y in zip(_flat(case.exact[k]), _flat(second[k])):
            assert abs(x - y) <= tol * max(1, abs(x)), (case, k, case.exact.method, others[0], x, y)


def test_cases_without_truth_and_oracle_limits():
    c = find(S.cases(with_truth=False), lambda c: True, settings=FIND)
    assert c.truth is None and c.exact is None
    # the MultivariateGaussian takes polynomial and exp-type pieces only (ORACLE_LIMITS)
    with pytest.raises(ValueError, match="no family"):
        S.cases(families=["MultivariateGaussian"], kinds=("kinked",))

    @S.property_settings(30)
    @given(c=S.cases(families=["MultivariateGaussian", "Dirichlet"], sizes=[1, 2, 3], with_truth=False))
    def check(c):
        limit = S.ORACLE_LIMITS[type(c.dist).__name__]
        assert c.dist.event_size <= max(limit.max_size, limit.max_size_polynomial)
        allowed = limit.pieces if c.dist.event_size <= limit.max_size else ("polynomial",)
        assert set(c.kinds) & set(allowed), c
        assert c.formula.separable and not c.f.has_kinks

    check()


# ----------------------------------------------------------------------------------------------
# settings and the optional import
# ----------------------------------------------------------------------------------------------
def test_property_settings_profiles(monkeypatch):
    monkeypatch.delenv("GSBREF_HYPOTHESIS_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    assert S.property_settings(7).derandomize and S.property_settings(7).database is None
    monkeypatch.delenv("CI")
    assert not S.property_settings(7).derandomize
    monkeypatch.setenv("GSBREF_HYPOTHESIS_PROFILE", "explore")
    assert S.property_settings(7).max_examples == 70
    with pytest.raises(ValueError, match="profile"):
        S.property_settings(7, "fast")


def test_importing_gsbref_does_not_import_hypothesis():
    code = ("import sys, gsbref, gsbref.oracle, gsbref.estimators, gsbref.testing, gsbref.catalog; "
            "assert 'hypothesis' not in sys.modules, 'hypothesis imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_hypothesis_the_import_error_names_the_test_extra():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'hypothesis' or name.startswith('hypothesis.'):\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import gsbref.strategies\n"
        "except ImportError as e:\n"
        "    assert 'gsbref[test]' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
