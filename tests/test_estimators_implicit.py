"""Tests of ``method="implicit"`` (implicit reparameterisation, Figurnov et al. 2018), and of the
Gamma family under ``method="pathwise"`` (explicit scale, implicit shape).

1. **Identity of the implementation** (deterministic, float64): the per-sample estimate
   (:func:`implicit_at`) integrated over the law by the trapezoidal rule in the log Gamma variables
   ``u = log zeta`` equals the oracle gradient (mpmath, 20 digits).  The rule converges
   geometrically in the step (the density of ``u`` is analytic and decays exponentially); the
   tolerance is the difference between steps ``h`` and ``h/2`` plus ``64 eps sum|w v|`` for
   rounding, and it is asserted to be below ``1e-10`` relative (no vacuous pass).  The line is cut
   where the mass beyond the cut is below ``TAIL = 1e-22``.  The Beta's gamma form and the
   Dirichlet are integrated over the Gamma variables behind them (``z = zeta / sum zeta``); the
   Beta's CDF form, a function of ``z`` alone, in ``x = logit z`` (the same argument: the density
   of ``x`` is analytic for ``|Im x| < pi`` and decays exponentially).  The CDF form has the same
   mean as the gamma form and a lower variance (it is the conditional mean of the latter given
   ``z``): checked exactly by the same quadrature.
2. **Monte Carlo** against the oracle with :func:`gsbref.testing.assert_unbiased`; module-wide
   false-alarm rate ``ALPHA_MODULE = 1e-3``, Bonferroni over the ``N_CALLS`` correct-estimator
   calls (each at ``FALSE_ALARM = ALPHA_MODULE / N_CALLS``).
3. **Power**: a sign flip, a 2 % scale error and an implicit-specific mistake -- the shape
   derivative of the standard Gamma used without the scale (``D(z, k)`` instead of
   ``mu D(z / mu, k)``) -- fail the same check at the same sample size (measured t statistics in
   :func:`test_wrong_variants_are_rejected`).
4. Refusals and options.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special as sp

import gsbref
from gsbref import special
from gsbref.catalog import case
from gsbref.estimators import estimate
from gsbref.estimators.implicit import implicit_at
from gsbref.estimators.pathwise import pathwise_at
from gsbref.testing import assert_unbiased, exact_gradient

EPS = np.finfo(float).eps
ALPHA_MODULE = 1e-3
TAIL = 1e-22


def _est(method="implicit", **options):
    def fn(dist, f, n, rng):
        return {k: e.samples for k, e in estimate(dist, f, method, n, rng, **options).items()}

    return fn


# ==============================================================================================
# 1. identity: trapezoidal rule in u = log zeta
# ==============================================================================================
def _log_gamma_line(k, h):
    """Nodes ``u`` and weights (density of ``u = log zeta``, ``zeta ~ Gamma(k, 1)``, times ``h``)."""
    lo = (math.log(TAIL) + math.log(k) + sp.gammaln(k)) / k
    hi = math.log(k + 60 * math.sqrt(k) + 60)
    u = h * np.arange(math.floor(lo / h), math.ceil(hi / h) + 1)
    return u, h * np.exp(k * u - np.exp(u) - sp.gammaln(k))


def _grid(shapes, h):
    lines = [_log_gamma_line(k, h) for k in shapes]
    U = np.meshgrid(*[l[0] for l in lines], indexing="ij")
    W = np.meshgrid(*[l[1] for l in lines], indexing="ij")
    return (np.stack([g.reshape(-1) for g in U], -1), np.prod(np.stack([g.reshape(-1) for g in W], -1), -1))


def _logit_line(a, b, h):
    """Nodes ``z`` and weights for ``z ~ Beta(a, b)``: the trapezoidal rule in ``x = logit z``
    (density ``e^(a x) / (1 + e^x)^(a + b) / B(a, b)``, analytic for ``|Im x| < pi``)."""
    lb = sp.betaln(a, b)
    lo = (math.log(TAIL) + math.log(a) + lb) / a
    hi = -(math.log(TAIL) + math.log(b) + lb) / b
    x = h * np.arange(math.floor(lo / h), math.ceil(hi / h) + 1)
    return sp.expit(x), h * np.exp(a * x - (a + b) * np.logaddexp(0, x) - lb)


def _points(dist, h, form):
    if isinstance(dist, gsbref.Beta) and form == "cdf":
        assert dist.event_size == 1
        a, b = (float(np.asarray(v).reshape(-1)[0]) for v in dist.broadcast_params().values())
        z, w = _logit_line(a, b, h)
        return z[:, None].reshape((-1, *dist.event_shape)), w
    if isinstance(dist, gsbref.Beta):
        a, b = (np.asarray(v, float).reshape(-1) for v in dist.broadcast_params().values())
        u, w = _grid(np.concatenate([a, b]), h)
        d = a.size
        return (u[:, :d], u[:, d:]), w
    if isinstance(dist, gsbref.Dirichlet):
        u, w = _grid(np.asarray(dist.concentration, float).reshape(-1), h)
        return u.reshape((-1, *dist.event_shape)), w
    if isinstance(dist, gsbref.Gamma):
        ks = np.asarray(np.broadcast_to(dist.shape, dist.event_shape), float).reshape(-1)
        mu = np.asarray(np.broadcast_to(dist.scale, dist.event_shape), float).reshape(-1)
    elif isinstance(dist, gsbref.Exponential):
        ks, mu = np.ones(dist.event_size), np.asarray(np.broadcast_to(dist.scale, dist.event_shape), float).reshape(-1)
    else:
        ks = np.asarray(dist.df, float).reshape(-1) / 2
        mu = np.full(ks.shape, 2.0)
    u, w = _grid(ks, h)
    return (mu * np.exp(u)).reshape((-1, *dist.event_shape)), w


def _integrate(est, W):
    return {k: ((W[:, None] * v.reshape(len(W), -1)).sum(0), np.abs(W[:, None] * v.reshape(len(W), -1)).sum(0))
            for k, v in est.items()}


# (case, step, Beta form)
IDENTITY_CASES = [
    ("gamma-toy1", 0.2, "cdf"),
    ("gamma-toy2", 0.2, "cdf"),
    ("gamma-softplus", 0.2, "cdf"),
    ("gamma-inverse", 0.2, "cdf"),
    ("gamma-from-rate", 0.2, "cdf"),
    ("gamma-small-shape-log", 0.2, "cdf"),
    ("gamma-sin", 0.1, "cdf"),  # sin(2 z) grows off the real axis: a smaller step
    ("gamma-prod", 0.2, "cdf"),
    ("exponential-softplus", 0.2, "cdf"),
    ("chisquared-quadratic", 0.2, "cdf"),
    ("beta-identity", 0.2, "cdf"),
    ("beta-identity", 0.2, "gamma"),
    ("beta-cubic", 0.2, "cdf"),
    ("beta-cubic", 0.2, "gamma"),
    ("dirichlet-k2", 0.2, "cdf"),
]


@pytest.mark.parametrize("name,h,form", IDENTITY_CASES)
def test_implementation_by_trapezoidal_rule(name, h, form):
    dist, f = case(name).build()
    want = exact_gradient(dist, f, dps=20)
    opts = {"form": form} if isinstance(dist, gsbref.Beta) else {}
    res = []
    for step in (h, h / 2):
        pts, W = _points(dist, step, form)
        res.append(_integrate(implicit_at(dist, f, pts, **opts), W))
    for k, w in want.items():
        w = np.asarray(w, float).reshape(-1)
        (q1, _), (q2, mag) = res[0][k], res[1][k]
        tol = np.abs(q1 - q2) + 64 * EPS * mag
        assert np.all(tol <= 1e-10 * np.maximum(1, np.abs(w))), f"{name} {k}: quadrature not converged {tol}"
        assert np.all(np.abs(q2 - w) <= tol + 1e-15 * np.maximum(1, np.abs(w))), f"{name} d/d{k}: {q2} vs {w} (tol {tol})"


@pytest.mark.parametrize("name", ["beta-identity", "beta-cubic"])
def test_cdf_form_is_the_rao_blackwellised_gamma_form(name):
    """Same mean; Var(cdf form) <= Var(gamma form), by the same quadrature (step 0.1): the
    conditional mean of the gamma form's dz/dtheta given z is the CDF form's."""
    dist, f = case(name).build()
    pg, Wg = _points(dist, 0.1, "gamma")
    pc, Wc = _points(dist, 0.1, "cdf")
    g = implicit_at(dist, f, pg, form="gamma")
    c = implicit_at(dist, f, pc, form="cdf")
    for k in g:
        mg, mc = Wg @ g[k].reshape(-1), Wc @ c[k].reshape(-1)
        assert abs(mg - mc) <= 1e-12 * max(1, abs(mg)), (k, mg, mc)
        vg, vc = Wg @ g[k].reshape(-1) ** 2 - mg**2, Wc @ c[k].reshape(-1) ** 2 - mc**2
        assert vc < vg, (k, vc, vg)


def test_dirichlet_jacobian_matches_the_gamma_construction():
    """``dirichlet_dz_dconcentration`` == ``(delta_ik - z_i) / s D(zeta_k, alpha_k)`` per sample,
    the K = 2 Dirichlet equals the Beta's gamma form per sample, and that equals
    ``special.beta_dz_dparams_gamma_construction`` (rtol 1e-12: a few roundings of the same
    formula, evaluated in log space on one side)."""
    rng = np.random.default_rng(4)
    alpha = np.array([0.7, 1.3, 2.5])
    from gsbref.estimators.grg import log_standard_gamma

    lz = log_standard_gamma(rng, np.broadcast_to(alpha, (200, 3)))
    g = np.exp(lz)
    s = g.sum(-1, keepdims=True)
    z = g / s
    J = np.asarray(special.dirichlet_dz_dconcentration(g, np.broadcast_to(alpha, g.shape)), float)
    D = np.asarray(special.gamma_dz_dshape(g, np.broadcast_to(alpha, g.shape)), float)
    want = (np.eye(3)[None] - z[:, :, None]) / s[:, :, None] * D[:, None, :]
    np.testing.assert_allclose(J, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    f = gsbref.function("z[0]**2 + sin(z[1])")
    dirk2 = gsbref.Dirichlet([2.0, 3.0])
    lz2 = log_standard_gamma(rng, np.broadcast_to([2.0, 3.0], (200, 2)))
    ed = implicit_at(dirk2, f, lz2)["concentration"]
    eb = implicit_at(gsbref.Beta(2.0, 3.0), gsbref.function("z**2 + sin(1 - z)"), (lz2[:, :1], lz2[:, 1:]),
                     form="gamma")
    np.testing.assert_allclose(ed[:, 0], eb["alpha"].reshape(-1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ed[:, 1], eb["beta"].reshape(-1), rtol=1e-12, atol=1e-15)
    # the Beta's gamma form (computed in log space here) == special's gamma-construction Jacobian
    beta = gsbref.Beta(2.0, 3.0)
    mine = implicit_at(beta, "sum(z)", (lz2[:, :1], lz2[:, 1:]), form="gamma")  # f' = 1: dz/dtheta
    da, db = special.beta_dz_dparams_gamma_construction(np.exp(lz2), 2.0, 3.0)
    np.testing.assert_allclose(mine["alpha"].reshape(-1), da, rtol=1e-12)
    np.testing.assert_allclose(mine["beta"].reshape(-1), db, rtol=1e-12)


def test_pathwise_gamma_with_implicit_shape_is_implicit():
    dist, f = case("gamma-softplus").build()
    z = dist.sample(np.random.default_rng(0), 100)
    a, b = pathwise_at(dist, f, z, shape="implicit"), implicit_at(dist, f, z)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


# ==============================================================================================
# 2. Monte Carlo against the oracle
# ==============================================================================================
MC_CASES = [
    ("gamma-toy1", 60_000, {}),
    ("gamma-toy2", 60_000, {}),
    ("gamma-softplus", 60_000, {}),
    ("gamma-small-shape", 60_000, {}),
    ("gamma-small-shape-log", 60_000, {}),
    ("gamma-inverse", 60_000, {}),
    ("gamma-sin", 60_000, {}),
    ("gamma-abs-kink", 60_000, {}),
    ("gamma-from-rate", 60_000, {}),
    ("gamma-prod", 60_000, {}),
    ("exponential-softplus", 60_000, {}),
    ("chisquared-quadratic", 60_000, {}),
    ("beta-identity", 60_000, {}),
    ("beta-identity", 60_000, {"form": "gamma"}),
    ("beta-small-shapes", 60_000, {}),
    ("beta-small-shapes", 60_000, {"form": "gamma"}),
    ("beta-cubic", 60_000, {}),
    ("beta-abs-kink", 60_000, {}),
    ("beta-exp", 60_000, {}),
    ("beta-exp", 60_000, {"form": "gamma"}),
    ("dirichlet-k2", 60_000, {}),
    pytest.param("dirichlet-k3-prod", 60_000, {}, marks=pytest.mark.slow),
    pytest.param("dirichlet-k3-softplus", 60_000, {}, marks=pytest.mark.slow),
]
PATHWISE_CASES = ["gamma-toy1", "gamma-softplus", "gamma-prod"]
#: (case, n, wrong variants) of test_wrong_variants_are_rejected
WRONG_CHECKS = [
    ("gamma-toy2", 60_000, ("flip", "2%", "unscaled")),
    ("beta-identity", 60_000, ("flip", "2%")),
]
# correct-estimator calls: MC_CASES + PATHWISE_CASES + the correct variants of the power test
N_CALLS = len(MC_CASES) + len(PATHWISE_CASES) + len(WRONG_CHECKS)
FALSE_ALARM = ALPHA_MODULE / N_CALLS


@pytest.mark.parametrize("name,n,options", MC_CASES)
def test_monte_carlo_unbiased(name, n, options):
    dist, f = case(name).build()
    res = assert_unbiased(_est(**options), dist, f, n_samples=n, rng=20261127, false_alarm=FALSE_ALARM)
    for k, v in res.estimate.items():
        assert np.shape(v) == dist.params[k].shape


@pytest.mark.parametrize("name", PATHWISE_CASES)
def test_pathwise_gamma_monte_carlo(name):
    dist, f = case(name).build()
    assert_unbiased(_est("pathwise", shape="implicit"), dist, f, n_samples=60_000, rng=11, false_alarm=FALSE_ALARM)


def _variant(transform):
    def fn(dist, f, n, rng):
        return {k: transform(k, e.samples) for k, e in estimate(dist, f, "implicit", n, rng).items()}

    return fn


def _unscaled(dist, f, n, rng):
    """The shape derivative of the *standard* Gamma applied to z itself: D(z, k), not mu D(z/mu, k)."""
    z = dist.sample(rng, n)
    out = implicit_at(dist, f, z)
    g = f.gradient(z.reshape(n, -1)).reshape(z.shape)
    out["shape"] = g * np.asarray(special.gamma_dz_dshape(z, np.broadcast_to(dist.shape, z.shape)), float)
    return out


def test_wrong_variants_are_rejected():
    """Sign flip, 2 % scale error and the unscaled shape derivative fail the same check at the
    same n.  Measured (seed 5, n = 60 000): critical value 5.13; 2 % error t = 37.4 / 21.7
    (gamma-toy2 shape / scale), 21.9 / 13.5 (beta-identity alpha / beta); unscaled D(z, k)
    t = 546; sign flips > 1000."""
    variants = {"flip": _variant(lambda k, s: -s), "2%": _variant(lambda k, s: 1.02 * s), "unscaled": _unscaled}
    for name, n, wrongs in WRONG_CHECKS:
        dist, f = case(name).build()
        truth = exact_gradient(dist, f, dps=20)
        assert_unbiased(_est(), dist, f, n_samples=n, rng=5, false_alarm=FALSE_ALARM, truth=truth)
        for w in wrongs:
            with pytest.raises(AssertionError, match="biased"):
                assert_unbiased(variants[w], dist, f, n_samples=n, rng=5, false_alarm=FALSE_ALARM, truth=truth)


# ==============================================================================================
# 4. refusals and options
# ==============================================================================================
def test_refusals_and_options():
    for dist in (gsbref.Gaussian(0.0, 1.0), gsbref.Laplace(0.0, 1.0), gsbref.Dirac(0.0),
                 gsbref.MultivariateGaussian([0.0, 0.0], np.eye(2))):
        with pytest.raises(ValueError, match=r"implicit: no implicit reparameterisation.*pathwise"):
            estimate(dist, "sum(z)", "implicit", 10, 0)
    for dist in (gsbref.Bernoulli(0.3), gsbref.Categorical([0.2, 0.8])):
        with pytest.raises(ValueError, match=r"implicit: no implicit.*gsb-discrete"):
            estimate(dist, "sum(z)", "implicit", 10, 0)
    with pytest.raises(ValueError, match="form= applies to Beta only"):
        estimate(gsbref.Gamma(2.0, 1.0), "sum(z)", "implicit", 10, 0, form="gamma")
    with pytest.raises(ValueError, match="form must be one of"):
        estimate(gsbref.Beta(2.0, 1.0), "sum(z)", "implicit", 10, 0, form="simplex")
