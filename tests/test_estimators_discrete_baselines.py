"""Baseline estimators for Bernoulli / Categorical latent variables
(``gsbref.estimators.discrete_baselines``): ARM, DisARM, REBAR, RELAX (unbiased) and the
Gumbel-softmax / straight-through relaxations (biased).

Tolerances and error rates
--------------------------
* **Exact checks** (d = 1, no Monte Carlo): the estimator's expectation over its noise is computed
  by quadrature and compared with the oracle's gradient (enumeration).  ARM's per-sample estimate
  is piecewise linear and DisARM's piecewise constant in ``u`` (breaks at ``pi`` and ``1 - pi``):
  ``scipy.integrate.quad`` on each piece is exact up to rounding, tolerance ``QUAD_TOL = 1e-12``
  (absolute, the gradients are O(1)).  REBAR / RELAX are integrated over ``(u, v)`` by tensor
  Gauss-Legendre rules on the pieces ``u < 1 - pi``, ``u > 1 - pi``; the tolerance is
  ``10 x |I_n - I_2n|`` (the difference of two rule sizes bounds the error of the finer one for a
  converging rule; the factor 10 covers the ratio) plus ``1e-12`` of rounding.
* **Monte Carlo**: one check per (case, estimator) of all ``m`` components at family-wise false-alarm
  rate ``ALPHA = 1e-3`` (Bonferroni: each component at ``ALPHA / m``, two-sided normal quantile
  ``k``): ``|mean - exact| <= k * stderr``.  Where a power check is made, ``S`` is derived from a
  pilot run (independent seed) as the smallest sample size at which a 2 % scale error on the most
  detectable component is missed with probability <= ``BETA = 1e-3`` (normal approximation), and
  the seeded run must reject the sign-flipped and the 2 %-scaled estimates.  Seeds are fixed (runs
  deterministic); a fresh seed raises a false alarm with probability <= 1e-3 per check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy import special as sp

import gsbref
from gsbref import oracle
from gsbref.estimators import available_methods, estimate
from gsbref.estimators import discrete_baselines as db
from gsbref.functions import function

ALPHA = 1e-3
BETA = 1e-3
SCALE_ERROR = 0.02
QUAD_TOL = 1e-12
UNBIASED = ("arm", "disarm", "rebar", "relax")


def logsig(d, h, seed):
    r = np.random.default_rng(seed)
    return function("sum(log_sigmoid(W @ z + c))", W=r.normal(size=(h, d)), c=r.normal(size=h))


QUAD = "sum((z - 0.499)**2)"


def exact(dist, f):
    return np.asarray(oracle.gradient(dist, f, dps=None).to_float()[dist.parameters[0].name], dtype=float)


def k_sigma(m, alpha=ALPHA):
    return float(stats.norm.isf(alpha / (2 * m)))


def mc_check(samples, g):
    S = samples.shape[0]
    x = samples.reshape(S, -1)
    se = x.std(axis=0, ddof=1) / math.sqrt(S)
    return bool(np.all(np.abs(x.mean(axis=0) - np.reshape(g, -1)) <= k_sigma(x.shape[1]) * se))


def design_S(pilot, g):
    """Smallest S at which the 2 % scale error is missed with probability <= BETA."""
    x = pilot.reshape(pilot.shape[0], -1)
    snr = np.max(SCALE_ERROR * np.abs(np.reshape(g, -1)) / x.std(axis=0, ddof=1))
    return math.ceil(((k_sigma(x.shape[1]) + stats.norm.isf(BETA)) / snr) ** 2)


# ----------------------------------------------------------------------------------------------
# registration and argument checks
# ----------------------------------------------------------------------------------------------
def test_registered():
    assert {"arm", "disarm", "gumbel-softmax", "straight-through", "rebar", "relax"} <= set(available_methods())


def test_shapes_and_errors():
    b = gsbref.Bernoulli(probs=[[0.2, 0.6, 0.5]])
    for m in UNBIASED:
        assert estimate(b, QUAD, m, 5, 0, **({"n_steps": 3} if m == "relax" else {}))["probs"].samples.shape == (5, 1, 3)
    shared = gsbref.Bernoulli.from_logits(np.zeros(1))  # event (1,)
    assert estimate(shared, QUAD, "arm", 4, 0)["logits"].samples.shape == (4, 1)
    c = gsbref.Categorical(probs=[[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    assert estimate(c, "sum(z**2)", "gumbel-softmax", 3, 0, temperature=0.5)["probs"].samples.shape == (3, 2, 2)
    cl = gsbref.Categorical.from_logits(np.zeros((2, 3)))
    assert estimate(cl, "sum(z**2)", "straight-through", 3, 0, temperature=0.5)["logits"].samples.shape == (3, 2, 3)
    with pytest.raises(TypeError, match="temperature"):
        estimate(b, QUAD, "gumbel-softmax", 3, 0)
    with pytest.raises(ValueError, match="temperature"):
        estimate(b, QUAD, "gumbel-softmax", 3, 0, temperature=0.0)
    with pytest.raises(ValueError, match="0 < probs < 1"):
        estimate(gsbref.Bernoulli(probs=[0.0, 0.5]), QUAD, "arm", 3, 0)
    with pytest.raises(TypeError, match="Bernoulli"):
        estimate(c, "sum(z)", "arm", 3, 0)
    with pytest.raises(ValueError, match="reference-last"):
        estimate(c, "sum(z)", "gumbel-softmax", 3, 0, temperature=1.0, convention="free")


# ----------------------------------------------------------------------------------------------
# exact checks for d = 1 (quadrature over the noise)
# ----------------------------------------------------------------------------------------------
D1_CASES = [
    ("probs-quad", lambda: gsbref.Bernoulli(probs=0.3), QUAD),
    ("logits-quad", lambda: gsbref.Bernoulli.from_logits(0.8), QUAD),
    ("logits-logsig", lambda: gsbref.Bernoulli.from_logits(-0.4), "log_sigmoid(2.5 * z - 1)"),
]


def _arm_like_1d(method, lg, p, q, f):
    def g(u):
        if method == "arm":
            b1, b2 = float(u > q), float(u < p)
            return (f(np.array([[b1]]))[0] - f(np.array([[b2]]))[0]) * (u - 0.5)
        b, bt = float(u < p), float(u > q)
        w = 0.0 if b == bt else (-1.0 if bt else 1.0) * max(p, q)
        return 0.5 * (f(np.array([[b]]))[0] - f(np.array([[bt]]))[0]) * w

    edges = sorted({0.0, p, q, 1.0})
    return sum(integrate.quad(g, a, b, epsabs=1e-14, epsrel=1e-13)[0] for a, b in zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("method", ["arm", "disarm"])
@pytest.mark.parametrize("case", D1_CASES, ids=[c[0] for c in D1_CASES])
def test_arm_disarm_exact_d1(case, method):
    _, make, fs = case
    dist, f = make(), function(fs)
    lg, p, q, name = db._bernoulli_logits(dist)
    val = _arm_like_1d(method, float(lg[0]), float(p[0]), float(q[0]), f)
    if name == "probs":
        val /= float(p[0] * q[0])
    g = float(exact(dist, f))
    assert abs(val - g) <= QUAD_TOL
    assert abs(-val - g) > QUAD_TOL and abs((1 + SCALE_ERROR) * val - g) > QUAD_TOL  # wrong variants fail


def _gl_2d(fn, q, n):
    """Tensor Gauss-Legendre of fn(u, v) over (0, q) x (0, 1) and (q, 1) x (0, 1)."""
    x, w = np.polynomial.legendre.leggauss(n)
    v = (x + 1) / 2
    total = 0.0
    for a, b in ((0.0, q), (q, 1.0)):
        u = a + (b - a) * v
        U, V = np.meshgrid(u, v, indexing="ij")
        W = np.outer(w * (b - a) / 2, w / 2)
        total += float((fn(U.reshape(-1, 1), V.reshape(-1, 1)).reshape(n, n) * W).sum())
    return total


@pytest.mark.parametrize("variant", ["rebar-eta1", "rebar-eta0.3", "relax-net"])
@pytest.mark.parametrize("case", D1_CASES, ids=[c[0] for c in D1_CASES])
def test_rebar_relax_exact_d1(case, variant):
    _, make, fs = case
    dist, f = make(), function(fs)
    lg, p, q, name = db._bernoulli_logits(dist)
    if variant == "relax-net":
        r = np.random.default_rng(5)
        cv = db.RelaxSurrogate(0.7, 0.6, r.normal(size=(3, 1)), r.normal(size=3), r.normal(size=3), 0.4)
    else:
        cv = db.RelaxSurrogate(0.5, float(variant[9:]), np.zeros((1, 1)), np.zeros(1), np.zeros(1), 0.0)

    def fn(u, v):
        return db.rebar_at(f, lg, p, q, *db.rebar_noise_from(lg, p, q, u, v), cv)[0][:, 0]

    coarse, fine = _gl_2d(fn, float(q[0]), 100), _gl_2d(fn, float(q[0]), 200)
    if name == "probs":
        coarse, fine = coarse / float(p[0] * q[0]), fine / float(p[0] * q[0])
    err = abs(fine - float(exact(dist, f)))
    tol = 10 * abs(fine - coarse) + 1e-12
    assert err <= tol, (err, tol)
    g = float(exact(dist, f))
    assert abs(-fine - g) > tol and abs((1 + SCALE_ERROR) * fine - g) > tol  # wrong variants fail


# ----------------------------------------------------------------------------------------------
# Monte Carlo against the oracle, with power against wrong variants
# ----------------------------------------------------------------------------------------------
MC_CASES = [
    ("net2-logits", lambda: gsbref.Bernoulli.from_logits([0.5, -0.7]), lambda: logsig(2, 3, 5), UNBIASED),
    ("net4-probs", lambda: gsbref.Bernoulli(probs=[0.3, 0.6, 0.45, 0.7]), lambda: logsig(4, 3, 4), UNBIASED),
    ("net10-logits", lambda: gsbref.Bernoulli.from_logits(np.random.default_rng(3).normal(size=10)),
     lambda: logsig(10, 4, 3), ("arm", "disarm")),
    ("quad10-logits", lambda: gsbref.Bernoulli.from_logits(np.linspace(-1, 1, 10)), lambda: function(QUAD),
     ("arm", "disarm")),
    ("quad1-probs", lambda: gsbref.Bernoulli(probs=0.3), lambda: function(QUAD), ("arm", "disarm")),
]
PILOT = 20_000
S_MAX = 1_500_000


def _opts(method):
    return {"n_steps": 200} if method == "relax" else {}


def _run(dist, f, method, S, seed):
    if method == "relax":  # fit once per case (seeded), then estimate
        cv = db.fit_relax_surrogate(dist, f, rng=1000 + seed, n_steps=200)
        return estimate(dist, f, method, S, seed, surrogate=cv)[dist.parameters[0].name].samples
    return estimate(dist, f, method, S, seed)[dist.parameters[0].name].samples


@pytest.mark.parametrize(
    "case,method", [(c, m) for c in MC_CASES for m in c[3]], ids=[f"{c[0]}-{m}" for c in MC_CASES for m in c[3]]
)
def test_monte_carlo_against_oracle_and_power(case, method):
    _, make_d, make_f, _ = case
    dist, f = make_d(), make_f()
    g = exact(dist, f)
    S = design_S(_run(dist, f, method, PILOT, 7), g)
    assert S <= S_MAX, S
    s = _run(dist, f, method, max(S, PILOT), 11)
    assert mc_check(s, g)
    assert not mc_check(-s, g), "sign flip not detected"
    assert not mc_check((1 + SCALE_ERROR) * s, g), "2% scale error not detected"


# unbiasedness of REBAR / RELAX on the d = 10 network and quadratic cases (no power check: the
# 2 % error needs ~2.5e5 (network) and >1e9 (quadratic, REBAR eta=1) samples; see the slow test)
@pytest.mark.parametrize("method", ["rebar", "relax"])
@pytest.mark.parametrize("case", [c for c in MC_CASES if c[0] in ("net10-logits", "quad10-logits")],
                         ids=["net10-logits", "quad10-logits"])
def test_rebar_relax_unbiased_d10(case, method):
    _, make_d, make_f, _ = case
    dist, f = make_d(), make_f()
    g = exact(dist, f)
    s = _run(dist, f, method, PILOT, 13)
    assert mc_check(s, g)
    assert not mc_check(-s, g) or case[0] == "quad10-logits"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rebar", "relax"])
def test_rebar_relax_power_d10_network(method):
    dist, f = MC_CASES[2][1](), MC_CASES[2][2]()
    g = exact(dist, f)
    S = design_S(_run(dist, f, method, PILOT, 7), g)
    s = _run(dist, f, method, S, 11)
    assert mc_check(s, g)
    assert not mc_check(-s, g) and not mc_check((1 + SCALE_ERROR) * s, g)


# ----------------------------------------------------------------------------------------------
# RELAX: the hand-derived variance gradient, and the training
# ----------------------------------------------------------------------------------------------
def test_relax_variance_gradient_matches_finite_differences():
    # central differences, h = 1e-6: truncation ~ h^2 |d^3 V| ~ 1e-12 and rounding ~ eps |V| / h
    # ~ 1e-10 for |V| = O(1); tolerance 1e-7 (relative to max(1, |grad|)) covers both with margin
    dist, f = gsbref.Bernoulli.from_logits([0.4, -0.3, 1.1]), logsig(3, 2, 9)
    lg, p, q, _ = db._bernoulli_logits(dist)
    r = np.random.default_rng(2)
    cv = db.RelaxSurrogate(0.6, 0.8, r.normal(size=(4, 3)), r.normal(size=4), r.normal(size=4), 0.3)
    noise = db._rebar_noise(lg, p, q, 50, np.random.default_rng(3))
    _, grads = db.relax_variance_gradient(f, lg, p, q, *noise, cv)
    h = 1e-6
    for k in ("eta", "W1", "b1", "w2", "b2"):
        base = np.array(getattr(cv, k), dtype=float)
        num = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            vals = []
            for sgn in (1, -1):
                x = base.copy()
                x[idx] += sgn * h
                setattr(cv, k, float(x) if x.ndim == 0 else x)
                vals.append(db.relax_variance_gradient(f, lg, p, q, *noise, cv)[0])
            num[idx] = (vals[0] - vals[1]) / (2 * h)
        setattr(cv, k, float(base) if base.ndim == 0 else base)
        assert np.allclose(grads[k], num, rtol=0, atol=1e-7 * max(1.0, float(np.abs(num).max()))), k


def test_relax_training_reduces_variance_on_toy():
    # E_{Bern(0.3)}[(z - 0.499)^2]: REBAR's eta = 1 control variate is poor here; the fitted RELAX
    # surrogate must beat it (by a margin far beyond the variance estimates' sampling error)
    dist, f = gsbref.Bernoulli(probs=0.3), QUAD
    v_rebar = estimate(dist, f, "rebar", PILOT, 1)["probs"].variance[()]
    v_relax = estimate(dist, f, "relax", PILOT, 1, n_steps=300)["probs"].variance[()]
    assert v_relax < 0.1 * v_rebar


# ----------------------------------------------------------------------------------------------
# relaxations: consistency with their exact expectation, and the bias vs temperature
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["gumbel-softmax", "straight-through"])
def test_relaxation_mc_matches_quadrature(method):
    # the MC mean of the estimator equals the quadrature of its expectation (k-sigma check); and
    # the K = 2 Categorical relaxation is the binary Concrete at l = theta_1 - theta_0
    # (a difference of two Gumbels is logistic)
    f = "log_sigmoid(2.5 * z - 1)"
    b = gsbref.Bernoulli.from_logits(0.6)
    target = db.relaxed_gradient_1d(b, f, 0.5, method)
    s = estimate(b, f, method, 20_000, 3, temperature=0.5)["logits"].samples
    assert mc_check(s, [target])
    c = gsbref.Categorical.from_logits([0.2, 0.8])
    sc = estimate(c, f, method, 20_000, 4, temperature=0.5)["logits"].samples
    assert np.allclose(sc.sum(axis=1), 0.0, atol=1e-12)  # softmax invariance
    assert mc_check(sc[:, 1], [target])


def test_gumbel_softmax_bias_shrinks_with_temperature():
    # exact (quadrature) relaxed gradients.  The bias is not monotone over all tau (for the
    # log-sigmoid case it changes sign near tau = 0.5); from tau = 0.25 down it shrinks like O(tau).
    temps = [1.0, 0.25, 0.1, 0.05, 0.02]
    for f in ("log_sigmoid(2.5 * z - 1)", QUAD):
        dist = gsbref.Bernoulli(probs=0.3)
        bias = [abs(float(db.relaxation_bias(dist, f, t)["probs"][0])) for t in temps]
        assert bias[0] > 0.1 * max(abs(float(exact(dist, f))), 0.1)  # clearly nonzero at tau = 1
        assert all(b2 < b1 for b1, b2 in zip(bias[:-1], bias[1:])), bias
        assert bias[-1] < 0.1 * bias[0], bias


def test_relaxation_bias_monte_carlo_d4():
    dist, f = gsbref.Bernoulli.from_logits([0.3, -0.5, 0.9, 0.0]), logsig(4, 3, 6)
    bias, se = db.relaxation_bias(dist, f, 1.0, 20_000, 0)["logits"]
    assert np.any(np.abs(bias) > k_sigma(4) * se)  # biased at tau = 1
