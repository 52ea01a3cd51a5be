"""Theorem 2 (``gsbref.estimators.discrete``) and its fast flips (``gsbref.estimators._flips``).

Tolerances and error rates
--------------------------
* **Exact identities** (no Monte Carlo): the estimator's expectation ``sum_z p(z) estimate(z)``,
  computed by enumerating every state, equals the oracle's exact gradient to ``EXACT_TOL = 1e-12``
  relative to ``max(1, max_z |f(z)|)``.  The rounding it has to cover is derived in
  :func:`rounding_bound` (a few roundings per evaluation of ``f``, the differences, and a pairwise
  sum over ``N`` states: at most ``(n_f + log2 N + 8) eps max|f|``); each test asserts that bound
  is below ``EXACT_TOL``, so the tolerance is not looser than it must be by more than a few digits.
* **Fast flips vs naive**: the two strategies differ only by the summation order of ``W z + c``;
  for the functions used (Lipschitz constant ``L`` per pre-activation) the difference is at most
  ``L h (d + 4) eps max_h (|W| |z| + |c|)_h`` (asserted below ``FLIP_TOL = 1e-12`` relative).
* **Monte Carlo**: per case one check of all ``m`` gradient components at family-wise false-alarm
  rate ``ALPHA = 1e-3`` (Bonferroni: each component at ``ALPHA / m``, two-sided normal quantile
  ``k``), ``|mean - exact| <= k * stderr + floor`` with a rounding ``floor = 4 S eps max|estimate|``.
  The sample size is *derived*, not tuned: from the exact per-sample variances (enumeration) the
  test computes the smallest ``S`` at which every wrong variant (sign flip, 2 % scale error, wrong
  reference category / off-by-one coordinate, missing logit Jacobian) is missed with probability
  at most ``BETA = 1e-3`` (normal approximation on its most detectable component), and checks
  that the seeded run does reject each of them.  Seeds are fixed, so runs are deterministic; a
  fresh seed would raise a false alarm with probability <= 1e-3 per case.  The false-alarm rate
  and power are measured over many seeds in the ``slow`` tests.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import gsbref
from gsbref import ops, oracle
from gsbref.estimators import _flips, available_methods, estimate
from gsbref.estimators._flips import base_values, choose_strategy, flipped_values
from gsbref.estimators.discrete import (
    CliqueDistribution,
    enumerate_states,
    theorem2,
    theorem2_at,
    theorem2_cliques,
    theorem2_expectation,
)

EPS = np.finfo(float).eps
EXACT_TOL = 1e-12
FLIP_TOL = 1e-12
ALPHA = 1e-3
BETA = 1e-3
SCALE_ERROR = 0.02
S_MIN, S_MAX = 400, 200_000


# ----------------------------------------------------------------------------------------------
# test functions and distributions
# ----------------------------------------------------------------------------------------------
def logsig(d, h=5, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return gsbref.function("sum(log_sigmoid(W @ z + c))", W=scale * rng.normal(size=(h, d)), c=rng.normal(size=h))


def kinked(d, h=4, seed=1):
    rng = np.random.default_rng(seed)
    return gsbref.function("sum(abs(W @ z - c))", W=rng.normal(size=(h, d)), c=rng.normal(size=h))


PROD = gsbref.function("prod(z + 0.5)")


def nonaffine(d):
    """A callable (no formula structure: first_affine is None), non-separable."""
    return gsbref.as_function(lambda z: ops.exp(-ops.sum(z) / 4) * ops.index(z, 0) + ops.sin(ops.index(z, d - 1)))


def bern(d, seed=0, logits=False, shape=None):
    rng = np.random.default_rng(100 + seed)
    shape = shape or (d,)
    if logits:
        return gsbref.Bernoulli.from_logits(rng.normal(size=shape))
    return gsbref.Bernoulli(probs=rng.uniform(0.05, 0.95, size=shape))


def cat(shape, K, seed=0, logits=False):
    rng = np.random.default_rng(200 + seed)
    if logits:
        return gsbref.Categorical.from_logits(rng.normal(size=(*shape, K)))
    return gsbref.Categorical(probs=rng.dirichlet(np.full(K, 2.0), size=shape))


def name_of(dist):
    return dist.parameters[0].name


def f_scale(dist, f):
    Z, _ = enumerate_states(dist)
    return max(1.0, float(np.max(np.abs(f(Z.reshape(len(Z), -1))))))


def rounding_bound(dist, f):
    """Worst-case float64 rounding of ``theorem2_expectation`` relative to the exact value:
    ``n_f`` roundings in one evaluation of ``f`` (its terms: ``h`` pre-activations of ``d`` terms,
    or ``d`` factors), 2 for a difference, 3 for a softmax / logit Jacobian, ``log2 N + 1`` for the
    pairwise sum of ``N`` weighted states, times ``max |f|``."""
    Z, _ = enumerate_states(dist)
    d = Z.reshape(len(Z), -1).shape[1]
    aff = f.first_affine()
    n_f = (aff[0].shape[0] + d + 4) if aff is not None else 4 * d + 8
    K = getattr(dist, "num_categories", 2)
    n = n_f + 2 + 3 + K + math.log2(len(Z)) + 1
    return n * EPS * f_scale(dist, f)


# ----------------------------------------------------------------------------------------------
# 1. exact identities: E[estimate] (enumeration) == oracle gradient
# ----------------------------------------------------------------------------------------------
EXACT_CASES = [
    # (id, dist builder, f builder, convention, oracle dps)
    ("bern-d12-logsig-dps30", lambda: bern(12), lambda: logsig(12), None, 30),
    ("bern-d12-prod", lambda: bern(12, 1), lambda: PROD, None, None),
    ("bernlogit-d12-logsig", lambda: bern(12, 2, logits=True), lambda: logsig(12, seed=2), None, None),
    ("bernlogit-d6-prod-dps30", lambda: bern(6, 3, logits=True), lambda: PROD, None, 30),
    ("bern-d5-kinked-dps30", lambda: bern(5, 4), lambda: kinked(5), None, 30),
    ("bern-d5-callable-dps30", lambda: bern(5, 5), lambda: nonaffine(5), None, 30),
    ("bern-shape2x3-logsig", lambda: bern(6, 6, shape=(2, 3)), lambda: logsig(6, seed=6), None, 30),
    ("bern-d1", lambda: bern(1, 7), lambda: gsbref.function("(z - 0.499)**2"), None, 30),
    ("cat-d5K3-logsig-ref", lambda: cat((5,), 3), lambda: logsig(5, seed=8), "reference-last", 30),
    ("cat-d5K3-logsig-free", lambda: cat((5,), 3), lambda: logsig(5, seed=8), "free", 30),
    ("cat-d4K4-prod-ref", lambda: cat((4,), 4, 1), lambda: PROD, "reference-last", 30),
    ("cat-d4K4-prod-free", lambda: cat((4,), 4, 1), lambda: PROD, "free", 30),
    ("catlogit-d4K4-logsig", lambda: cat((4,), 4, 2, logits=True), lambda: logsig(4, seed=9), None, 30),
    ("catlogit-d5K3-prod", lambda: cat((5,), 3, 3, logits=True), lambda: PROD, None, 30),
    ("cat-d8K2-callable-ref", lambda: cat((8,), 2, 4), lambda: nonaffine(8), "reference-last", None),
    ("cat-shape2x2K3-kinked-free", lambda: cat((2, 2), 3, 5), lambda: kinked(4, seed=3), "free", 30),
    ("cat-K1evt-ref", lambda: cat((), 5, 6), lambda: gsbref.function("sin(z)"), "reference-last", 30),
    ("cat-zero-ref-prob",
     lambda: gsbref.Categorical(probs=[[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.6, 0.4]]),
     lambda: logsig(3, seed=10), "reference-last", 30),
    ("cat-d12K2-logsig-free", lambda: cat((12,), 2, 7), lambda: logsig(12, seed=11), "free", None),
]


def _with_strategies(cases, make_f_at):
    """(case, strategy) pairs: every strategy that applies to the case's f."""
    out = []
    for c in cases:
        affine = make_f_at(c).first_affine() is not None
        for strategy in ("auto", "naive", "affine") if affine else ("auto", "naive"):
            out.append(pytest.param(c, strategy, id=f"{c[0]}-{strategy}"))
    return out


@pytest.mark.parametrize("case, strategy", _with_strategies(EXACT_CASES, lambda c: c[2]()))
def test_expectation_equals_oracle(case, strategy):
    _, make_dist, make_f, conv, dps = case
    dist, f = make_dist(), make_f()
    if strategy != "auto" and dps is not None and len(enumerate_states(dist)[0]) > 1024:
        dps = None  # the dps=30 oracle of the big cases runs once (strategy="auto"): 2 s each
    got = theorem2_expectation(dist, f, convention=conv, strategy=strategy)
    exact = oracle.gradient(dist, f, dps=dps, convention=conv).to_float()
    name = name_of(dist)
    assert set(got) == set(exact) == {name}
    assert np.shape(got[name]) == np.shape(exact[name])
    scale = f_scale(dist, f)
    assert rounding_bound(dist, f) < EXACT_TOL * scale
    err = np.max(np.abs(np.asarray(got[name]) - np.asarray(exact[name])))
    assert err <= EXACT_TOL * scale, f"max error {err:.3e} (scale {scale:.3g})"


def test_theorem2_at_per_sample_values_bernoulli():
    """Per sample: ``f(z_-j, 1) - f(z_-j, 0)`` (times ``pi (1 - pi)`` for logits), by brute force."""
    rng = np.random.default_rng(0)
    d = 6
    f = logsig(d, seed=12)
    for dist in (bern(d, 8), bern(d, 8, logits=True)):
        z = dist.sample(rng, 5)
        est = theorem2_at(dist, f, z)[name_of(dist)]
        for s in range(5):
            for j in range(d):
                hi, lo = z[s].copy(), z[s].copy()
                hi[j], lo[j] = 1.0, 0.0
                want = f(hi) - f(lo)
                if name_of(dist) == "logits":
                    p = dist.probs[j]
                    want *= p * (1 - p)
                assert abs(est[s, j] - want) <= FLIP_TOL * max(1.0, abs(f(hi)))


def test_theorem2_at_per_sample_values_categorical():
    """Per sample: ``f(z_-j, k) - f(z_-j, K-1)`` / ``f(z_-j, k)`` / softmax form, by brute force."""
    rng = np.random.default_rng(1)
    d, K = 3, 4
    f = PROD
    dp, dl = cat((d,), K, 9), cat((d,), K, 9, logits=True)
    z = dp.sample(rng, 4)
    ref = theorem2_at(dp, f, z)["probs"]
    free = theorem2_at(dp, f, z, convention="free")["probs"]
    lg = theorem2_at(dl, f, z)["logits"]
    assert ref.shape == (4, d, K - 1) and free.shape == lg.shape == (4, d, K)
    for s in range(4):
        for j in range(d):
            vals = []
            for k in range(K):
                x = z[s].copy()
                x[j] = k
                vals.append(float(f(x)))
            vals = np.array(vals)
            np.testing.assert_allclose(free[s, j], vals, rtol=0, atol=FLIP_TOL * vals.max())
            np.testing.assert_allclose(ref[s, j], vals[:-1] - vals[-1], rtol=0, atol=FLIP_TOL * vals.max())
            p = dl.probs[j]
            np.testing.assert_allclose(lg[s, j], p * (vals - p @ vals), rtol=0, atol=FLIP_TOL * vals.max())


# ----------------------------------------------------------------------------------------------
# cliques (eq. 9)
# ----------------------------------------------------------------------------------------------
def clique_dist(seed=0):
    rng = np.random.default_rng(300 + seed)
    return CliqueDistribution([
        ((0, 3), rng.dirichlet(np.ones(4)).reshape(2, 2)),
        ((2,), rng.dirichlet(np.ones(3))),
        ((4, 1), rng.dirichlet(np.ones(6)).reshape(3, 2)),
        ((5, 6), rng.dirichlet(np.ones(4)).reshape(2, 2)),
    ])


def clique_gradient_mp(dist, f, convention, dps=30):
    """Exact gradient by differentiating ``E[f] = sum_z f(z) prod_c p_c(z_c)`` in mpmath.  ``E`` is
    affine in one clique's table, so the symmetric difference with step 1 is exact: moving mass
    ``t`` to state ``s`` (from the last state, for reference-last) gives ``(E(1) - E(-1)) / 2``."""
    Z, _ = enumerate_states(dist)
    with mpmath.workdps(dps):
        fz = [f.mp([mpmath.mpf(v) for v in z]) for z in Z]
        zi = Z.astype(int)
        flat = [np.ravel_multi_index(tuple(zi[:, i] for i in ix), t.shape) for ix, t in dist.cliques]
        tabs = [[mpmath.mpf(float(v)) for v in t.reshape(-1)] for _, t in dist.cliques]

        def E(tables):
            total = mpmath.mpf(0)
            for n, v in enumerate(fz):
                w = mpmath.mpf(1)
                for c, tb in enumerate(tables):
                    w *= tb[flat[c][n]]
                total += v * w
            return total

        out = {}
        for c, (p, (_, t)) in enumerate(zip(dist.parameters, dist.cliques)):
            n_c = t.size
            comps = range(n_c) if convention == "free" else range(n_c - 1)
            g = []
            for s in comps:
                vals = []
                for step in (1, -1):
                    tb = [list(x) for x in tabs]
                    tb[c][s] += step
                    if convention != "free":
                        tb[c][n_c - 1] -= step
                    vals.append(E(tb))
                g.append(float((vals[0] - vals[1]) / 2))
            g = np.array(g)
            out[p.name] = g.reshape(t.shape) if convention == "free" else g
    return out


CLIQUE_FUNCS = {"logsig": lambda: logsig(7, seed=13), "prod": lambda: PROD, "callable": lambda: nonaffine(7)}


@pytest.mark.parametrize("convention", ["reference-last", "free"])
@pytest.mark.parametrize(
    "fname, strategy", [(n, s) for n in CLIQUE_FUNCS for s in ("naive", "affine", "auto") if n == "logsig" or s != "affine"]
)
def test_clique_expectation_exact(convention, fname, strategy):
    dist = clique_dist()
    f = CLIQUE_FUNCS[fname]()
    got = theorem2_expectation(dist, f, convention=convention, strategy=strategy)
    exact = clique_gradient_mp(dist, f, convention)
    scale = f_scale(dist, f)
    for name in exact:
        assert got[name].shape == exact[name].shape
        assert np.max(np.abs(got[name] - exact[name])) <= EXACT_TOL * scale, name


def test_singleton_cliques_match_independent_families():
    """Singleton cliques of a Categorical reproduce its estimates per sample; for a Bernoulli the
    table is ``[1 - pi, pi]`` with reference state 1, so the clique estimate is minus eq. 16."""
    rng = np.random.default_rng(2)
    c = cat((4,), 3, 11)
    f = logsig(4, seed=14)
    z = c.sample(rng, 50)
    cd = CliqueDistribution.from_independent(c)
    for conv in ("reference-last", "free"):
        a = theorem2_at(c, f, z, convention=conv)["probs"]
        b = theorem2_at(cd, f, z, convention=conv)
        np.testing.assert_array_equal(np.stack([b[f"clique{j}"] for j in range(4)], axis=1), a)
    b = bern(4, 12)
    zb = b.sample(rng, 50)
    cb = theorem2_at(CliqueDistribution.from_independent(b), f, zb)
    np.testing.assert_allclose(np.concatenate([cb[f"clique{j}"] for j in range(4)], axis=1),
                               -theorem2_at(b, f, zb)["probs"], rtol=0, atol=FLIP_TOL)


def test_clique_distribution_basics():
    cd = clique_dist(1)
    Z, p = enumerate_states(cd)
    assert Z.shape == (2 * 2 * 3 * 3 * 2 * 2 * 2, 7) and abs(p.sum() - 1) < 64 * EPS
    # score: E[score] = 0 (reference-last), = 1 per entry (free: sum_s p(s) [s = t] / p(t))
    for conv, want in (("reference-last", 0.0), ("free", 1.0)):
        for s in cd.score(Z, convention=conv).values():
            assert np.max(np.abs(np.tensordot(p, s, axes=1) - want)) < 1e3 * EPS
    # sampling: chi-square goodness of fit of each clique's states at level 1e-4
    z = cd.sample(np.random.default_rng(3), 20000)
    for ix, t in cd.cliques:
        states = np.ravel_multi_index(tuple(z[:, i].astype(int) for i in ix), t.shape)
        counts = np.bincount(states, minlength=t.size)
        assert stats.chisquare(counts, 20000 * t.reshape(-1)).pvalue > 1e-4
    with pytest.raises(ValueError, match="exactly once"):
        CliqueDistribution([((0, 1), np.full((2, 2), 0.25)), ((1,), [0.5, 0.5])])
    with pytest.raises(ValueError, match="exactly once"):
        CliqueDistribution([((0, 2), np.full((2, 2), 0.25))])
    with pytest.raises(ValueError, match="sum"):
        CliqueDistribution([((0,), [0.5, 0.6])])
    with pytest.raises(ValueError, match="one axis per coordinate"):
        CliqueDistribution([((0, 1), [0.5, 0.5])])
    with pytest.raises(ValueError, match="at least two"):
        CliqueDistribution([((0,), [1.0])])
    with pytest.raises(ValueError, match="integer values"):
        cd.log_prob(np.full(7, 2.0))


# ----------------------------------------------------------------------------------------------
# 2. Monte Carlo: sampled means vs the oracle, and the power against wrong variants
# ----------------------------------------------------------------------------------------------
def k_sigma(m, alpha=ALPHA):
    return float(stats.norm.isf(alpha / (2 * m)))


def variants(dist, est, free=None):
    """Wrong estimators derived from the correct per-sample estimates (and, for Categorical
    probabilities, the free-convention ones at the same samples)."""
    out = {"sign flip": -est, "2% scale": (1 + SCALE_ERROR) * est}
    if free is not None:  # reference category 0 instead of K-1
        out["wrong reference"] = free[..., :-1] - free[..., :1]
    else:  # an off-by-one coordinate index
        out["off-by-one coordinate"] = np.roll(est, 1, axis=1)
    if name_of(dist) == "logits" and isinstance(dist, gsbref.Bernoulli):
        p = dist.probs
        out["missing logit Jacobian"] = est / (p * (1 - p))
    return out


def per_sample(dist, f, z, convention):
    est = theorem2_at(dist, f, z, convention=convention)
    if isinstance(dist, CliqueDistribution):
        return np.concatenate([v.reshape(len(z), -1) for v in est.values()], axis=1), None
    e = est[name_of(dist)]
    free = None
    if name_of(dist) == "probs" and isinstance(dist, gsbref.Categorical) and convention != "free":
        free = theorem2_at(dist, f, z, convention="free")["probs"]
    return e, free


def exact_gradient(dist, f, convention):
    if isinstance(dist, CliqueDistribution):
        g = clique_gradient_mp(dist, f, convention or "reference-last")
        return np.concatenate([v.reshape(-1) for v in g.values()])
    return np.asarray(oracle.gradient(dist, f, dps=None, convention=convention).to_float()[name_of(dist)])


def mc_check(samples, exact, alpha=ALPHA):
    """True when every component is within ``k`` standard errors (Bonferroni) plus the floor."""
    S = samples.shape[0]
    x = samples.reshape(S, -1)
    g = np.asarray(exact, dtype=float).reshape(-1)
    k = k_sigma(x.shape[1], alpha)
    se = x.std(axis=0, ddof=1) / math.sqrt(S)
    floor = 4 * S * EPS * max(1.0, float(np.max(np.abs(x))))
    return bool(np.all(np.abs(x.mean(axis=0) - g) <= k * se + floor))


def design_sample_size(dist, f, convention, exact):
    """Smallest S at which every wrong variant is missed with probability <= BETA (its most
    detectable component, normal approximation), from exact means and variances by enumeration."""
    Z, p = enumerate_states(dist)
    e, free = per_sample(dist, f, Z, convention)
    g = exact.reshape(-1)
    m = g.size
    need = S_MIN
    for label, w in variants(dist, e, free).items():
        w = w.reshape(len(Z), -1)
        mean = p @ w
        sd = np.sqrt(np.maximum(p @ (w - mean) ** 2, 0.0))
        shift = np.abs(mean - g)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(sd > 0, shift / sd, np.where(shift > 1e-9 * max(1.0, np.abs(g).max()), np.inf, 0.0))
        best = r.max()
        assert best > 0, f"variant {label!r} cannot be told apart from the correct estimator here"
        if np.isfinite(best):
            need = max(need, math.ceil(((k_sigma(m) + stats.norm.isf(BETA)) / best) ** 2))
    assert need <= S_MAX, f"the case needs S = {need} for the stated power: choose a more informative case"
    return need


MC_CASES = [
    # (id, dist builder, f builder, convention)
    ("bern-probs-logsig", lambda: bern(8, 20), lambda: logsig(8, h=4, seed=20), None),
    ("bern-logits-prod", lambda: bern(6, 21, logits=True), lambda: PROD, None),
    ("cat-ref-logsig", lambda: cat((4,), 4, 22), lambda: logsig(4, h=4, seed=22), "reference-last"),
    ("cat-free-prod", lambda: cat((3,), 3, 23), lambda: PROD, "free"),
    ("cat-logits-logsig", lambda: cat((4,), 3, 24, logits=True), lambda: logsig(4, h=4, seed=24), None),
    ("cliques-logsig", lambda: clique_dist(2), lambda: logsig(7, h=3, seed=25), "reference-last"),
]


@pytest.mark.parametrize("case", MC_CASES, ids=[c[0] for c in MC_CASES])
def test_monte_carlo_against_oracle_and_power(case):
    _, make_dist, make_f, conv = case
    dist, f = make_dist(), make_f()
    exact = exact_gradient(dist, f, conv)
    S = design_sample_size(dist, f, conv, exact)
    z = dist.sample(np.random.default_rng(7), S)
    e, free = per_sample(dist, f, z, conv)
    assert mc_check(e, exact), "the correct estimator failed (false-alarm rate 1e-3 per case)"
    for label, w in variants(dist, e, free).items():
        assert not mc_check(w, exact), f"the check missed the wrong variant {label!r} (S = {S})"


def test_registered_and_routed_through_estimate():
    assert "gsb-discrete" in available_methods()
    d = 5
    f = logsig(d, seed=26)
    for dist, conv, shape in (
        (bern(d, 26), None, (d,)),
        (cat((d,), 3, 26), None, (d, 2)),
        (cat((d,), 3, 26), "free", (d, 3)),
        (cat((d,), 3, 26, logits=True), None, (d, 3)),
        (clique_dist(3), None, None),
    ):
        if isinstance(dist, CliqueDistribution):
            f7 = logsig(7, seed=26)
            res = estimate(dist, f7, "gsb-discrete", 3000, rng=5)
            exact = clique_gradient_mp(dist, f7, "reference-last")
            for name, g in exact.items():
                assert res[name].samples.shape == (3000, *g.shape)
                assert mc_check(res[name].samples, g)
            continue
        res = estimate(dist, f, "gsb-discrete", 3000, rng=5, convention=conv)
        (name,) = res
        assert res[name].samples.shape == (3000, *shape)
        assert mc_check(res[name].samples, exact_gradient(dist, f, conv))
    # the same rng seed gives the same samples; theorem2 and theorem2_cliques agree
    cd = clique_dist(3)
    a = theorem2_cliques(cd.cliques, "prod(z + 0.5)", 10, rng=np.random.default_rng(4))
    b = theorem2(cd, "prod(z + 0.5)", 10, np.random.default_rng(4))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_argument_errors():
    d = 3
    f = logsig(d)
    with pytest.raises(ValueError, match="no convention"):
        theorem2(bern(d), f, 10, 0, convention="free")
    with pytest.raises(ValueError, match="convention"):
        theorem2(cat((d,), 3, logits=True), f, 10, 0, convention="reference-last")
    with pytest.raises(ValueError, match="convention"):
        theorem2(cat((d,), 3), f, 10, 0, convention="last")
    with pytest.raises(ValueError, match="strategy"):
        theorem2(bern(d), f, 10, 0, strategy="fast")
    with pytest.raises(ValueError, match="affine"):
        theorem2(bern(d), PROD, 10, 0, strategy="affine")
    with pytest.raises(TypeError, match="Bernoulli, Categorical"):
        theorem2(gsbref.Gaussian(loc=np.zeros(d), scale=1.0), f, 10, 0)
    with pytest.raises(ValueError, match="coordinates"):
        theorem2(bern(4), f, 10, 0, strategy="affine")  # W has 3 columns, z has 4
    with pytest.raises(ValueError, match="values"):
        theorem2_at(bern(d), f, np.full((2, d), 0.5))
    with pytest.raises(TypeError):
        theorem2(bern(d), f, 10, None)


# ----------------------------------------------------------------------------------------------
# 3. fast flips == naive evaluation
# ----------------------------------------------------------------------------------------------
FLIP_FUNCS = {
    # formula: Lipschitz constant of rest per unit change of one pre-activation, relative to
    # max(1, |f|) (1 for the sums of 1-Lipschitz terms; for the product of sigmoids and the
    # Gaussian bump |d log f / du_h| <= 1 on the range used: |u| <= 25 there)
    "sum(log_sigmoid(W @ z + c))": 1.0,
    "sum(softplus(W @ z - c))": 1.0,
    "prod(sigmoid(W @ z + c))": 1.0,
    "exp(-sum((W @ z + c)**2) / 50)": 1.0,
    "sum(abs(W @ z + c))": 1.0,
}


def flip_bound(W, c, z, L):
    h, d = W.shape
    pre = np.abs(z) @ np.abs(W).T + np.abs(c)
    return L * h * (d + 4) * EPS * float(pre.max())


@settings(max_examples=30, deadline=None)
@given(
    d=st.integers(1, 30), h=st.integers(1, 12), S=st.integers(1, 6), K=st.integers(2, 5),
    m=st.integers(1, 3), seed=st.integers(0, 2**31 - 1), formula=st.sampled_from(sorted(FLIP_FUNCS)),
)
def test_affine_flips_equal_naive(d, h, S, K, m, seed, formula):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(h, d)) / d  # keeps |W z + c| = O(1) for z in [0, K - 1]^d
    c = rng.normal(size=h)
    f = gsbref.function(formula, W=W, c=c)
    z = rng.integers(0, K, size=(S, d)).astype(float)
    m = min(m, d)
    G = max(1, d // m)
    idx = rng.permutation(d)[: G * m].reshape(G, m)
    values = rng.integers(0, K, size=(S, G, K, m)).astype(float)
    a = flipped_values(f, z, idx, values, strategy="affine")
    b = flipped_values(f, z, idx, values, strategy="naive")
    scale = max(1.0, float(np.max(np.abs(b))))
    # z and the replacement values lie in [0, K - 1]
    assert flip_bound(W, c, np.full(d, K - 1.0), FLIP_FUNCS[formula]) * scale < FLIP_TOL * scale
    assert np.max(np.abs(a - b)) <= FLIP_TOL * scale
    # and the naive table is f at the explicitly modified points (one batched matrix product vs
    # another: the same rounding bound)
    s, g, a_ = S - 1, G - 1, K - 1
    x = z[s].copy()
    x[idx[g]] = values[s, g, a_]
    assert abs(b[s, g, a_] - f(x)) <= FLIP_TOL * scale


def test_flips_blocking_paths(monkeypatch):
    """Tiny blocks force the per-group blocking (one sample split over several blocks)."""
    rng = np.random.default_rng(5)
    d, h, S = 40, 6, 3
    f = logsig(d, h=h, seed=27, scale=1 / math.sqrt(d))
    z = (rng.random((S, d)) < 0.5).astype(float)
    idx = np.arange(d)[:, None]
    vals = (1 - z)[:, :, None, None]
    want = flipped_values(f, z, idx, vals, strategy="naive")
    monkeypatch.setattr(_flips, "BLOCK_ELEMENTS", 50)
    for strategy in ("naive", "affine"):
        got = flipped_values(f, z, idx, vals, strategy=strategy)
        assert np.max(np.abs(got - want)) <= FLIP_TOL * max(1.0, np.abs(want).max())
    np.testing.assert_allclose(base_values(f, z, "affine"), f(z), rtol=0, atol=FLIP_TOL * np.abs(f(z)).max())


def test_strategy_choice():
    assert choose_strategy(logsig(20), 20, "auto")[0] == "affine"
    assert choose_strategy(logsig(2), 2, "auto")[0] == "naive"
    assert choose_strategy(PROD, 20, "auto")[0] == "naive"
    assert choose_strategy(logsig(20), 20, "naive")[0] == "naive"
    with pytest.raises(ValueError, match="affine"):
        choose_strategy(PROD, 20, "affine")


# ----------------------------------------------------------------------------------------------
# 4. the variance table (printed; run with -s to see it)
# ----------------------------------------------------------------------------------------------
def test_variance_table(capsys):
    """Single-sample variances of theorem 2 (and, for scale, of the score-function estimator).
    Toy problem ``E_{Bern(theta)}[(z - 0.499)^2]`` (d = 1): theorem 2 integrates the only
    coordinate out, so its variance is exactly 0; d = 20, K = 10 categorical: sampled."""
    f = gsbref.function("(z - 0.499)**2")
    lines = ["toy E[(z - 0.499)^2]: theta, param, exact gradient, var theorem2, var score (exact)"]
    for theta in (0.1, 0.5, 0.9):
        for dist in (gsbref.Bernoulli(probs=[theta]), gsbref.Bernoulli.from_logits([math.log(theta / (1 - theta))])):
            Z, p = enumerate_states(dist)
            name = name_of(dist)
            e = theorem2_at(dist, f, Z)[name][:, 0]
            sc = f(Z) * dist.score(Z)[name][:, 0]
            g = float(oracle.gradient(dist, f, dps=None).to_float()[name][0])
            assert abs(p @ e - g) < EXACT_TOL
            assert np.all(e == e[0])  # zero variance, exactly
            var_s = p @ (sc - p @ sc) ** 2
            assert var_s > 0
            lines.append(f"  {theta:4.2f} {name:>6s} {g:10.6f} {0.0:10.3e} {var_s:10.3e}")
    d, K, h, n = 20, 10, 8, 2000
    rng = np.random.default_rng(20)
    W = rng.normal(size=(h, d)) / (K * math.sqrt(d))
    f = gsbref.function("sum(log_sigmoid(W @ z + c))", W=W, c=rng.normal(size=h))
    logits = rng.normal(size=(d, K))
    lines.append(f"d={d} K={K} categorical, {n} samples: parametrisation, theorem2 var min/median/max, score var median")
    for label, dist, conv in (
        ("reference-last", gsbref.Categorical(probs=np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)), "reference-last"),
        ("free", gsbref.Categorical(probs=np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)), "free"),
        ("logits", gsbref.Categorical.from_logits(logits), None),
    ):
        z = dist.sample(np.random.default_rng(1), n)
        e = theorem2_at(dist, f, z, convention=conv)[name_of(dist)]
        sc = dist.score(z, convention=conv or "free")[name_of(dist)] * f(z)[:, None, None]
        ve, vs = e.var(axis=0, ddof=1), sc.var(axis=0, ddof=1)
        assert np.median(ve) < np.median(vs)
        lines.append(f"  {label:>15s} {ve.min():.3e} {np.median(ve):.3e} {ve.max():.3e}  {np.median(vs):.3e}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))


# ----------------------------------------------------------------------------------------------
# slow: measured false-alarm rate and power over many seeds
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("case", MC_CASES, ids=[c[0] for c in MC_CASES])
def test_false_alarm_rate_and_power_over_seeds(case):
    """At a looser family-wise level (0.05, so that alarms are countable) over 200 seeds: the
    false-alarm count of the correct estimator must not exceed the binomial(200, 0.05) upper
    1e-4 quantile (Bonferroni is conservative: the true rate is <= 0.05), and each wrong variant
    must be rejected in at least 99 % of the seeds (designed miss rate <= 1e-3 at ALPHA = 1e-3)."""
    _, make_dist, make_f, conv = case
    dist, f = make_dist(), make_f()
    exact = exact_gradient(dist, f, conv)
    S = design_sample_size(dist, f, conv, exact)
    seeds = 200
    alarms, misses = 0, {}
    for seed in range(seeds):
        z = dist.sample(np.random.default_rng(10_000 + seed), S)
        e, free = per_sample(dist, f, z, conv)
        alarms += not mc_check(e, exact, alpha=0.05)
        for label, w in variants(dist, e, free).items():
            misses[label] = misses.get(label, 0) + mc_check(w, exact)
    assert alarms <= stats.binom.isf(1e-4, seeds, 0.05), alarms
    for label, k in misses.items():
        assert k <= 0.01 * seeds, f"{label}: missed in {k} of {seeds} seeds"
