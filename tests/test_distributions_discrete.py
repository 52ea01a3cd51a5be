"""Tests of the discrete families: Bernoulli, BernoulliLogits, Categorical, CategoricalLogits.

Tolerances
----------
* Deterministic float64 checks: ``RTOL = sqrt(eps)`` relative to the natural scale of the
  compared quantity (every formula here is a handful of roundings, far below that).
* mpmath checks run at ``DPS = 30`` digits and use ``MP_TOL = 10**(-DPS + 5)`` (``mpmath.diff``
  and the sums over configurations lose a few digits).  Float64 results compared with mpmath
  values use ``RTOL``.
* Sampling: Pearson chi-square goodness-of-fit with false-alarm rate ``ALPHA = 1e-4`` per test
  (fixed seeds, so a given run is reproducible; a random seed would fail with probability 1e-4).
  Each test computes its power against a 2 % relative error in any single probability (that
  mass moved to or from any other category of the coordinate) by the noncentral chi-square
  distribution, asserts it is >= 0.99 at the sample size used, and checks that the seeded
  sample does reject every such wrong distribution.
"""

from __future__ import annotations

import itertools
import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats

from gsbref.distributions import (
    FAMILIES,
    Bernoulli,
    BernoulliLogits,
    Categorical,
    CategoricalLogits,
)

EPS = np.finfo(float).eps
RTOL = math.sqrt(EPS)
DPS = 30
MP_TOL = mpmath.mpf(10) ** (-DPS + 5)
ALPHA = 1e-4
MIN_POWER = 0.99
REL_ERROR = 0.02

HYP = settings(max_examples=40, deadline=None)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def close(a, b, scale=1.0, rtol=RTOL):
    """``|a - b| <= rtol * max(scale, |b|)`` elementwise (arrays or scalars)."""
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(scale, np.abs(b))))


def configurations(d: int, K: int) -> np.ndarray:
    """All ``K**d`` values of ``d`` coordinates with values ``0..K-1``, shape ``(K**d, d)``."""
    return np.array(list(itertools.product(range(K), repeat=d)), dtype=float)


def mp_softmax(row):
    top = max(row)
    e = [mpmath.exp(v - top) for v in row]
    s = mpmath.fsum(e)
    return [v / s for v in e]


def mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


W = (0.9, -1.7, 1.1)


def f_np(Z: np.ndarray) -> np.ndarray:
    """A test function with interactions between coordinates, ``Z`` of shape ``(N, d)``."""
    w = np.array(W[: Z.shape[1]])
    return np.sin(Z @ w + 0.4) + 0.3 * (Z[:, 0] * Z[:, -1]) ** 2


def f_mp(z) -> mpmath.mpf:
    s = mpmath.fsum(mpmath.mpf(w) * mpmath.mpf(v) for w, v in zip(W, z))
    return mpmath.sin(s + mpmath.mpf(0.4)) + mpmath.mpf(0.3) * (mpmath.mpf(z[0]) * z[-1]) ** 2


def mp_expectation(masses, Z, f=f_mp):
    """``sum_z prod_j masses[j][z_j] f(z)`` over the configurations ``Z``."""
    total = []
    for z in Z:
        w = mpmath.fprod(masses[j][int(v)] for j, v in enumerate(z))
        total.append(w * f(z))
    return mpmath.fsum(total)


def exact_gradient(masses_at, shape, Z):
    """``d/dt`` at 0 of ``E[f]`` under ``masses_at(index, t)``, for every parameter ``index``."""
    g = np.empty(shape)
    with mpmath.workdps(DPS):
        for idx in np.ndindex(*shape):
            g[idx] = float(mpmath.diff(lambda t: mp_expectation(masses_at(idx, t), Z), 0))
    return g


# -- goodness of fit -------------------------------------------------------------------------
def pearson(counts: np.ndarray, probs: np.ndarray) -> float:
    """Pearson statistic summed over coordinates: ``counts``, ``probs`` of shape ``(d, K)``."""
    e = counts.sum(axis=-1, keepdims=True) * probs
    return float(((counts - e) ** 2 / e).sum())


def single_errors(probs: np.ndarray, rel: float = REL_ERROR):
    """Every table with one probability ``probs[j, k]`` changed by ``+-rel`` of itself, the
    difference taken from or given to one other category ``m`` of the same coordinate."""
    d, K = probs.shape
    for j, k, m in itertools.product(range(d), range(K), range(K)):
        if m == k:
            continue
        for sign in (1.0, -1.0):
            q = probs.copy()
            delta = sign * rel * probs[j, k]
            q[j, k] += delta
            q[j, m] -= delta
            if q[j, m] > 0:
                yield q


def worst_case_power(probs: np.ndarray, n: int) -> float:
    """Power of the level-ALPHA test against the least detectable single error (noncentral
    chi-square with noncentrality ``n sum (q - p)^2 / p``)."""
    df = probs.shape[0] * (probs.shape[1] - 1)
    lam = min(n * float(((q - probs) ** 2 / probs).sum()) for q in single_errors(probs))
    return float(stats.ncx2.sf(stats.chi2.isf(ALPHA, df), df, lam))


def check_frequencies(counts: np.ndarray, probs: np.ndarray) -> None:
    n = int(counts[0].sum())
    df = probs.shape[0] * (probs.shape[1] - 1)
    crit = stats.chi2.isf(ALPHA, df)
    assert worst_case_power(probs, n) >= MIN_POWER
    assert pearson(counts, probs) < crit
    missed = [q for q in single_errors(probs) if pearson(counts, q) <= crit]
    assert not missed, f"{len(missed)} wrong distributions not rejected"


# ----------------------------------------------------------------------------------------------
# fixtures: the instances most tests use
# ----------------------------------------------------------------------------------------------
B_PROBS = np.array([0.1, 0.6, 0.95])
C_PROBS = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
C_LOGITS = np.array([[0.3, -1.2, 0.8], [1.5, 0.0, -0.7]])


def bernoulli_cases():
    return [
        ("probs", Bernoulli(B_PROBS)),
        ("logits", Bernoulli.from_logits(special.logit(B_PROBS) + 0.1)),
    ]


# ----------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("param", ["probs", "logits"])
def test_bernoulli_sampling_frequencies(param):
    p = np.array([0.2, 0.35, 0.5, 0.65, 0.8])
    dist = Bernoulli(p) if param == "probs" else Bernoulli.from_logits(special.logit(p))
    n = 800_000
    z = dist.sample(np.random.default_rng(20240611), n)
    assert z.shape == (n, 5) and z.dtype == np.float64
    assert set(np.unique(z).tolist()) <= {0.0, 1.0}
    ones = z.sum(axis=0)
    counts = np.stack([n - ones, ones], axis=-1)
    table = np.stack([1 - dist.mean(), dist.mean()], axis=-1)
    check_frequencies(counts, table)


@pytest.mark.parametrize("param", ["probs", "logits"])
def test_categorical_sampling_frequencies(param):
    p = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.55, 0.15, 0.2, 0.1]])
    dist = Categorical(p) if param == "probs" else Categorical.from_logits(np.log(p) + 0.5)
    n = 1_500_000
    z = dist.sample(np.random.default_rng(7), n)
    assert z.shape == (n, 3) and z.dtype == np.float64
    counts = np.stack([np.bincount(z[:, j].astype(int), minlength=4) for j in range(3)])
    assert counts.shape == (3, 4)
    check_frequencies(counts, dist.probs)


def test_sampling_accepts_int_seed_and_refuses_none():
    c = Categorical(C_PROBS)
    assert np.array_equal(c.sample(3, 10), c.sample(3, 10))
    with pytest.raises(TypeError):
        c.sample(None, 10)
    with pytest.raises(ValueError):
        c.sample(3, 0)


class _TopGenerator(np.random.Generator):
    """Returns the largest float64 below 1 for every uniform draw."""

    def random(self, size=None, dtype=np.float64, out=None):
        return np.full(size, 1.0 - 2.0**-53)


def test_categorical_inverse_cdf_guard_at_the_top():
    # the cumulative sum of ten 0.1 is 1 - 1.1e-16: without the guard u = 1 - 2^-53 would pick
    # the category of probability zero after them
    p = np.array([[0.1] * 10 + [0.0], [0.5, 0.5, 0.0] + [0.0] * 8])
    assert np.cumsum(p[0])[-1] < 1.0
    z = Categorical(p).sample(_TopGenerator(np.random.PCG64(0)), 4)
    assert z.tolist() == [[9.0, 1.0]] * 4


# ----------------------------------------------------------------------------------------------
# edge cases: probabilities exactly 0 or 1
# ----------------------------------------------------------------------------------------------
def test_bernoulli_degenerate_probabilities():
    b = Bernoulli([0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert b.sample(5, 1000).tolist() == [[0.0, 1.0]] * 1000
        z = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
        assert b.log_prob(z).tolist() == [0.0, -np.inf, -np.inf, -np.inf]
        # possible value: one-sided derivative; impossible value: the sign of the limit
        assert b.score(z)["probs"].tolist() == [[-1.0, 1.0], [np.inf, 1.0], [-1.0, -np.inf], [np.inf, -np.inf]]
        assert b.mean().tolist() == [0.0, 1.0] and b.variance().tolist() == [0.0, 0.0]
        with mpmath.workdps(DPS):
            assert Bernoulli.mp_logpdf(0, probs=mpmath.mpf(0)) == 0
            assert Bernoulli.mp_logpdf(1, probs=mpmath.mpf(0)) == -mpmath.inf
            assert Bernoulli.mp_score(0, probs=mpmath.mpf(1))["probs"] == -mpmath.inf


def test_bernoulli_extreme_logits_are_stable():
    b = Bernoulli.from_logits([-800.0, 800.0, 40.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lp = b.log_prob(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
        assert close(lp[0], -1600.0)
        # log sigmoid(40) = -4.25e-18 must not be rounded to 0 by a cancellation
        assert lp[1] < 0 and close(lp[1], -math.log1p(math.exp(-40.0)))
        assert np.isfinite(b.score(np.array([1.0, 0.0, 1.0]))["logits"]).all()
        assert b.sample(1, 100)[:, :2].tolist() == [[0.0, 1.0]] * 100


def test_categorical_degenerate_probabilities():
    p = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.5, 0.0]])
    c = Categorical(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = c.sample(11, 5000)
        assert (z[:, 0] == 0).all() and (z[:, 1] != 0).all() and (z[:, 2] != 2).all()
        assert np.isfinite(c.log_prob(z)).all()
        bad = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 2.0]])
        assert np.isneginf(c.log_prob(bad)).all()
        s_ref = c.score(np.array([0.0, 1.0, 2.0]))["probs"]
        s_free = c.score(np.array([0.0, 1.0, 2.0]), convention="free")["probs"]
        assert s_free.tolist() == [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, np.inf]]
        # an impossible reference value makes every reference-last entry -inf
        assert s_ref.tolist() == [[1.0, 0.0], [0.0, 2.0], [-np.inf, -np.inf]]
        assert c.mean().tolist() == [0.0, 1.5, 0.5]


# ----------------------------------------------------------------------------------------------
# masses and scores against direct computation and mpmath
# ----------------------------------------------------------------------------------------------
def test_bernoulli_log_prob_is_log_of_product():
    b = Bernoulli(np.array([0.1, 0.6, 0.95, 0.3]))
    Z = configurations(4, 2)
    direct = [math.log(math.prod(p if v else 1 - p for p, v in zip(b.probs, z))) for z in Z]
    assert close(b.log_prob(Z), direct)
    # batch dimensions are kept
    assert b.log_prob(Z.reshape(4, 4, 4)).shape == (4, 4)


def test_categorical_log_prob_is_log_of_product():
    for c in (Categorical(C_PROBS), Categorical.from_logits(C_LOGITS)):
        Z = configurations(2, 3)
        direct = [math.log(c.probs[0, int(a)] * c.probs[1, int(b)]) for a, b in Z]
        assert close(c.log_prob(Z), direct)
        assert c.log_prob(Z.reshape(3, 3, 2)).shape == (3, 3)
    with mpmath.workdps(DPS):
        cl = Categorical.from_logits(C_LOGITS)
        exact = [float(mpmath.log(mp_softmax([mpmath.mpf(v) for v in C_LOGITS[0]])[int(a)]
                                  * mp_softmax([mpmath.mpf(v) for v in C_LOGITS[1]])[int(b)]))
                 for a, b in Z]
    assert close(cl.log_prob(Z), exact)


def test_bernoulli_score_matches_mpmath_derivative():
    Z = configurations(3, 2)
    for name, b in bernoulli_cases():
        s = b.score(Z)[name]
        assert s.shape == (8, 3)
        theta = b.params[name]
        with mpmath.workdps(DPS):
            for i, z in enumerate(Z.tolist()):
                for j in range(3):
                    t = mpmath.mpf(float(theta[j]))
                    d = mpmath.diff(lambda x: type(b).mp_logpdf(z[j], **{name: x}), t)
                    assert close(s[i, j], float(d), scale=1.0)
                    assert abs(type(b).mp_score(z[j], **{name: t})[name] - d) <= MP_TOL * max(1, abs(d))


def test_bernoulli_logits_score_is_chain_rule():
    b = Bernoulli.from_logits(np.array([-2.0, 0.3, 3.5]))
    Z = configurations(3, 2)
    p = b.probs
    via_probs = Bernoulli(p).score(Z)["probs"] * p * (1 - p)  # d pi / d l = pi (1 - pi)
    assert close(b.score(Z)["logits"], via_probs)


@pytest.mark.parametrize("convention", ["reference-last", "free"])
def test_categorical_score_matches_mpmath_derivative(convention):
    c = Categorical(C_PROBS)
    K = 3
    Z = configurations(2, K)
    s = c.score(Z, convention=convention)["probs"]
    nfree = K - 1 if convention == "reference-last" else K
    assert s.shape == (len(Z), 2, nfree)
    with mpmath.workdps(DPS):
        P = [c.mp_probs(j) for j in range(2)]
        for i, z in enumerate(Z):
            for j, k in itertools.product(range(2), range(nfree)):

                def logmass(t):
                    Q = [list(row) for row in P]
                    Q[j][k] += t
                    if convention == "reference-last":
                        Q[j][K - 1] -= t  # the reference absorbs the change: still on the simplex
                    return mpmath.fsum(mpmath.log(Q[jj][int(v)]) for jj, v in enumerate(z))

                assert close(s[i, j, k], float(mpmath.diff(logmass, 0)), scale=1.0)


def test_categorical_logits_score_matches_mpmath_and_chain_rule():
    c = Categorical.from_logits(C_LOGITS)
    K = 3
    Z = configurations(2, K)
    s = c.score(Z)["logits"]
    assert s.shape == (len(Z), 2, K)
    with mpmath.workdps(DPS):
        L = [[mpmath.mpf(v) for v in row] for row in C_LOGITS]
        for i, z in enumerate(Z):
            for j, k in itertools.product(range(2), range(K)):

                def logmass(t):
                    M = [list(row) for row in L]
                    M[j][k] += t
                    return mpmath.fsum(mpmath.log(mp_softmax(M[jj])[int(v)]) for jj, v in enumerate(z))

                assert close(s[i, j, k], float(mpmath.diff(logmass, 0)), scale=1.0)
    # chain rule through the softmax Jacobian J[m, k] = pi_m (delta_mk - pi_k)
    p = c.probs
    J = p[:, :, None] * (np.eye(K)[None] - p[:, None, :])
    free = Categorical(p).score(Z, convention="free")["probs"]
    assert close(np.einsum("njm,jmk->njk", free, J), s)


def test_mp_probs():
    with mpmath.workdps(DPS):
        c = Categorical(C_PROBS)
        cl = Categorical.from_logits(C_LOGITS)
        for j in range(2):
            assert abs(mpmath.fsum(c.mp_probs(j)) - 1) <= MP_TOL
            assert close([float(v) for v in c.mp_probs(j)], c.probs[j])
            ref = mp_softmax([mpmath.mpf(v) for v in C_LOGITS[j]])
            assert all(abs(a - b) <= MP_TOL for a, b in zip(cl.mp_probs(j), ref))
            assert close([float(v) for v in cl.mp_probs(j)], cl.probs[j])


# ----------------------------------------------------------------------------------------------
# identities by enumeration: E[score] and E[score f]
# ----------------------------------------------------------------------------------------------
def _enumeration_cases():
    """(label, distribution, gradient key, score kwargs, configurations, exact-gradient maker)."""
    Zb, Zc = configurations(3, 2), configurations(2, 3)
    b = Bernoulli(B_PROBS)
    bl = Bernoulli.from_logits(special.logit(B_PROBS) + 0.1)
    c = Categorical(C_PROBS)
    cl = Categorical.from_logits(C_LOGITS)

    def bern_masses(idx, t):
        p = [mpmath.mpf(float(v)) for v in b.probs]
        p[idx[0]] += t
        return [[1 - v, v] for v in p]

    def bern_logit_masses(idx, t):
        l = [mpmath.mpf(float(v)) for v in bl.logits]
        l[idx[0]] += t
        return [[mp_sigmoid(-v), mp_sigmoid(v)] for v in l]

    def cat_masses(convention):
        def masses(idx, t):
            j, k = idx
            P = [c.mp_probs(jj) for jj in range(2)]
            P[j][k] += t
            if convention == "reference-last":
                P[j][-1] -= t
            return P

        return masses

    def cat_logit_masses(idx, t):
        j, k = idx
        L = [[mpmath.mpf(float(v)) for v in row] for row in cl.logits]
        L[j][k] += t
        return [mp_softmax(row) for row in L]

    return [
        ("bernoulli", b, "probs", {}, Zb, bern_masses, (3,)),
        ("bernoulli-logits", bl, "logits", {}, Zb, bern_logit_masses, (3,)),
        ("categorical-reference-last", c, "probs", {"convention": "reference-last"}, Zc,
         cat_masses("reference-last"), (2, 2)),
        ("categorical-free", c, "probs", {"convention": "free"}, Zc, cat_masses("free"), (2, 3)),
        ("categorical-logits", cl, "logits", {}, Zc, cat_logit_masses, (2, 3)),
    ]


ENUM = _enumeration_cases()


@pytest.mark.parametrize("case", ENUM, ids=[c[0] for c in ENUM])
def test_expected_score_is_gradient_of_total_mass(case):
    label, dist, key, kw, Z, _, shape = case
    p = np.exp(dist.log_prob(Z))
    assert close(p.sum(), 1.0)
    s = dist.score(Z, **kw)[key]
    assert s.shape == (len(Z), *shape)
    es = np.einsum("n,n...->...", p, s)
    scale = np.einsum("n,n...->...", p, np.abs(s))
    # zero for every convention on the simplex; the "free" convention differentiates the mass
    # function extended off the simplex, whose total sum_k pi_k has gradient 1 in every entry
    expected = 1.0 if label == "categorical-free" else 0.0
    assert np.all(np.abs(es - expected) <= RTOL * scale)


@pytest.mark.parametrize("case", ENUM, ids=[c[0] for c in ENUM])
def test_expected_score_times_f_is_exact_gradient(case):
    label, dist, key, kw, Z, masses_at, shape = case
    p = np.exp(dist.log_prob(Z))
    s = dist.score(Z, **kw)[key]
    fz = f_np(Z)
    est = np.einsum("n,n...,n->...", p, s, fz)
    scale = np.einsum("n,n...,n->...", p, np.abs(s), np.abs(fz))
    exact = exact_gradient(masses_at, shape, Z)
    assert np.all(np.abs(est - exact) <= RTOL * np.maximum(scale, 1.0))


def test_theorem_2_rules_by_enumeration():
    """Eq. 16 (Bernoulli) and eq. 17 (categorical, reference last; and through the softmax
    Jacobian for logits) evaluated exactly by enumeration equal the mpmath gradient."""
    by_label = {c[0]: c for c in ENUM}

    def swap(Z, j, v):
        Z2 = Z.copy()
        Z2[:, j] = v
        return Z2

    _, b, _, _, Zb, masses, shape = by_label["bernoulli"]
    pb = np.exp(b.log_prob(Zb))
    eq16 = np.array([pb @ (f_np(swap(Zb, j, 1.0)) - f_np(swap(Zb, j, 0.0))) for j in range(3)])
    assert close(eq16, exact_gradient(masses, shape, Zb))

    _, c, _, _, Zc, masses, shape = by_label["categorical-reference-last"]
    K = c.num_categories
    pc = np.exp(c.log_prob(Zc))
    eq17 = np.array(
        [[pc @ (f_np(swap(Zc, j, k)) - f_np(swap(Zc, j, K - 1))) for k in range(K - 1)] for j in range(2)]
    )
    assert close(eq17, exact_gradient(masses, shape, Zc))

    _, cl, _, _, _, masses, shape = by_label["categorical-logits"]
    pl = np.exp(cl.log_prob(Zc))
    g = np.array(
        [[pl @ (f_np(swap(Zc, j, k)) - f_np(swap(Zc, j, K - 1))) for k in range(K - 1)] for j in range(2)]
    )
    p = cl.probs
    J = p[:, :, None] * (np.eye(K)[None] - p[:, None, :])  # d pi_m / d l_k
    via_eq17 = np.einsum("jm,jmk->jk", g, J[:, : K - 1, :])
    assert close(via_eq17, exact_gradient(masses, shape, Zc))


@pytest.mark.parametrize("case", ENUM, ids=[c[0] for c in ENUM])
def test_mean_and_variance_by_enumeration(case):
    _, dist, _, _, Z, _, _ = case
    p = np.exp(dist.log_prob(Z))
    m = p @ Z
    assert close(dist.mean(), m)
    assert close(dist.variance(), p @ (Z - m) ** 2)


# ----------------------------------------------------------------------------------------------
# characteristic functions
# ----------------------------------------------------------------------------------------------
OMEGAS = np.array([[0.3, -1.1, 2.0], [1.7, 0.2, -0.6], [0.0, 0.0, 0.0], [-2.5, 3.0, 0.9]])


@pytest.mark.parametrize("case", ENUM, ids=[c[0] for c in ENUM])
def test_log_cf_and_gradient_by_enumeration(case):
    _, dist, key, kw, Z, _, shape = case
    d = Z.shape[1]
    w = OMEGAS[:, :d]
    p = np.exp(dist.log_prob(Z))
    phase = np.exp(1j * w @ Z.T)  # (4, N)
    phi = phase @ p
    lcf = dist.log_cf(w)
    assert lcf.shape == (4,)
    assert close(np.exp(lcf), phi)
    # per coordinate, on the principal branch
    for j in range(d):
        one = np.zeros_like(w)
        one[:, j] = w[:, j]
        direct = np.log(np.exp(1j * one @ Z.T) @ p)
        assert close(dist.log_cf(one), direct)
    # grad log phi = E[score e^{i w.z}] / phi
    s = dist.score(Z, **kw)[key]
    expect = np.einsum("n,wn,n...->w...", p, phase, s) / phi.reshape(4, *([1] * len(shape)))
    g = dist.grad_log_cf(w, **kw)[key]
    assert g.shape == (4, *shape)
    assert close(g, expect)


def test_bernoulli_mp_cf_derivative():
    with mpmath.workdps(DPS):
        for cls, name, theta in ((Bernoulli, "probs", "0.3"), (BernoulliLogits, "logits", "-0.8")):
            t = mpmath.mpf(theta)
            c = mpmath.mpc(0, "0.7")
            d = mpmath.diff(lambda x: cls.mp_log_mgf(c, **{name: x}), t)
            assert abs(cls.mp_grad_log_mgf(c, **{name: t})[name] - d) <= MP_TOL
            # the mgf itself, directly: sum over the two values
            p1 = t if name == "probs" else mp_sigmoid(t)
            assert abs(mpmath.exp(cls.mp_log_mgf(c, **{name: t})) - (1 - p1 + p1 * mpmath.exp(c))) <= MP_TOL


# ----------------------------------------------------------------------------------------------
# theorem 1 does not apply
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dist, eq",
    [(Bernoulli(B_PROBS), "eq. 16"), (Bernoulli.from_logits([0.0]), "eq. 16"),
     (Categorical(C_PROBS), "eq. 17"), (Categorical.from_logits(C_LOGITS), "eq. 17")],
)
def test_a_coefficients_point_to_theorem_2(dist, eq):
    with pytest.raises(NotImplementedError, match="theorem 2") as info:
        dist.a_coefficients(3)
    assert eq in str(info.value)


# ----------------------------------------------------------------------------------------------
# API, declarations, invalid input
# ----------------------------------------------------------------------------------------------
def test_api_and_declarations():
    for name in ("Bernoulli", "BernoulliLogits", "Categorical", "CategoricalLogits"):
        assert name in FAMILIES and FAMILIES[name].discrete
    assert Bernoulli.values == (0.0, 1.0) and Bernoulli.support == (0, 1)
    bl = Bernoulli.from_logits([[0.0, 1.0]])
    assert type(bl) is BernoulliLogits and list(bl.params) == ["logits"]
    assert bl.event_shape == (1, 2) and bl.probs.shape == (1, 2)
    assert type(bl.with_params(logits=[[2.0, 3.0]])) is BernoulliLogits
    c = Categorical(np.full((2, 3, 4), 0.25))
    assert c.event_shape == (2, 3) and c.num_categories == 4 and c.values == (0.0, 1.0, 2.0, 3.0)
    cl = Categorical.from_logits(np.zeros((5, 2)))
    assert type(cl) is CategoricalLogits and list(cl.params) == ["logits"] and cl.num_categories == 2
    assert close(cl.probs, 0.5)
    assert type(cl.with_params(logits=np.ones((5, 2)))) is CategoricalLogits
    assert "Categorical(probs=" in repr(Categorical(C_PROBS))
    # broadcasting of a shared Bernoulli parameter: the score sums over the shared coordinates
    shared = Bernoulli(np.array([0.25]))
    assert shared.score(np.array([[1.0]]))["probs"].tolist() == [[4.0]]
    wide = Bernoulli(0.25)
    assert wide.score(np.array(1.0))["probs"].tolist() == 4.0


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match=r"'probs'.*\[0, 1\]"):
        Bernoulli([0.5, 1.5])
    with pytest.raises(TypeError, match="'probs'"):
        Bernoulli(["a"])
    with pytest.raises(ValueError, match="'logits'"):
        Bernoulli.from_logits([np.inf])
    with pytest.raises(ValueError, match="'probs'.*simplex"):
        Categorical([0.5, 0.6])
    with pytest.raises(ValueError, match="'probs'.*K >= 2"):
        Categorical([[1.0], [1.0]])
    with pytest.raises(ValueError, match="'probs'"):
        Categorical(0.5)  # no category axis
    with pytest.raises(ValueError, match="'logits'.*K >= 2"):
        Categorical.from_logits([0.3])
    with pytest.raises(TypeError, match="'logits'"):
        Categorical.from_logits([object(), object()])
    b, c = Bernoulli(B_PROBS), Categorical(C_PROBS)
    for bad in ([0.0, 0.5, 1.0], [0.0, 2.0, 1.0], [0.0, np.nan, 1.0]):
        with pytest.raises(ValueError, match=r"z must take values in \{0, 1\}"):
            b.log_prob(np.array(bad))
        with pytest.raises(ValueError, match="z must take values"):
            b.score(np.array(bad))
    for bad in ([0.0, 3.0], [0.5, 1.0], [-1.0, 0.0], [np.nan, 0.0]):
        with pytest.raises(ValueError, match="z must take integer values"):
            c.log_prob(np.array(bad))
    with pytest.raises(ValueError, match="z must have shape"):
        c.log_prob(np.zeros(3))
    with pytest.raises(ValueError, match="z must have shape"):
        b.log_prob(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="convention"):
        c.score(np.array([0.0, 1.0]), convention="first")
    with pytest.raises(ValueError, match="convention"):
        Categorical.from_logits(C_LOGITS).score(np.array([0.0, 1.0]), convention="reference-last")


# ----------------------------------------------------------------------------------------------
# property-based tests
# ----------------------------------------------------------------------------------------------
@st.composite
def simplex_tables(draw, max_d=3, max_k=5, zeros=True):
    d = draw(st.integers(1, max_d))
    K = draw(st.integers(2, max_k))
    elem = st.one_of(st.just(0.0), st.floats(1e-3, 1.0)) if zeros else st.floats(1e-3, 1.0)
    w = draw(hnp.arrays(np.float64, (d, K), elements=elem).filter(lambda a: (a.sum(-1) > 0).all()))
    return w / w.sum(axis=-1, keepdims=True)


unit_arrays = hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(0.0, 1.0))
logit_tables = st.tuples(st.integers(1, 3), st.integers(2, 5)).flatmap(
    lambda s: hnp.arrays(np.float64, s, elements=st.floats(-4.0, 4.0))
)


@HYP
@given(probs=unit_arrays, seed=st.integers(0, 2**32 - 1))
def test_bernoulli_properties(probs, seed):
    b = Bernoulli(probs)
    d = probs.shape[0]
    z = b.sample(seed, 16)
    assert z.shape == (16, d)
    lp = b.log_prob(z)
    assert lp.shape == (16,) and np.isfinite(lp).all() and (lp <= 0).all()
    assert b.score(z)["probs"].shape == (16, d)
    assert b.log_cf(np.zeros((3, d))).shape == (3,)
    assert b.grad_log_cf(np.ones((3, d)))["probs"].shape == (3, d)
    # the value of probability zero (if any) has log mass -inf
    impossible = np.where(probs == 0.0, 1.0, np.where(probs == 1.0, 0.0, np.nan))
    for j in np.flatnonzero(~np.isnan(impossible)):
        zz = z[0].copy()
        zz[j] = impossible[j]
        assert b.log_prob(zz) == -np.inf
    if ((probs > 0) & (probs < 1)).all() and d <= 3:
        assert np.isfinite(b.log_prob(configurations(d, 2))).all()


@HYP
@given(probs=simplex_tables(), seed=st.integers(0, 2**32 - 1))
def test_categorical_properties(probs, seed):
    c = Categorical(probs)
    d, K = probs.shape
    z = c.sample(seed, 16)
    assert z.shape == (16, d) and set(np.unique(z)) <= set(range(K))
    lp = c.log_prob(z)
    assert lp.shape == (16,) and np.isfinite(lp).all()
    assert c.score(z)["probs"].shape == (16, d, K - 1)
    assert c.score(z, convention="free")["probs"].shape == (16, d, K)
    assert c.log_cf(np.zeros((3, d))).shape == (3,)
    assert close(c.log_cf(np.zeros((3, d))), 0.0)
    assert c.grad_log_cf(np.ones((3, d)))["probs"].shape == (3, d, K - 1)
    assert c.mean().shape == (d,) and (c.variance() >= 0).all()
    zero = np.argwhere(probs == 0.0)
    if len(zero):
        j, k = zero[0]
        zz = z[0].copy()
        zz[j] = k
        assert c.log_prob(zz) == -np.inf


@HYP
@given(logits=logit_tables, seed=st.integers(0, 2**32 - 1))
def test_categorical_logits_properties(logits, seed):
    c = Categorical.from_logits(logits)
    d, K = logits.shape
    assert close(c.probs.sum(-1), 1.0)
    z = c.sample(seed, 16)
    lp = c.log_prob(z)
    assert lp.shape == (16,) and np.isfinite(lp).all() and (lp <= 0).all()
    s = c.score(z)["logits"]
    assert s.shape == (16, d, K) and close(s.sum(-1), 0.0)  # logits are shift invariant
    b = Bernoulli.from_logits(logits[:, 0])
    zb = b.sample(seed, 4)
    assert np.isfinite(b.log_prob(zb)).all()
    assert close(b.score(zb)["logits"], zb - b.probs)


@HYP
@given(
    probs=unit_arrays,
    bad=st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0, exclude_min=True),
                  st.just(np.nan)),
    where=st.integers(0, 4),
)
def test_bernoulli_invalid_probs(probs, bad, where):
    probs = probs.copy()
    probs[where % probs.shape[0]] = bad
    with pytest.raises(ValueError, match=r"parameter 'probs' must lie in \[0, 1\]"):
        Bernoulli(probs)


@HYP
@given(probs=simplex_tables(zeros=False), delta=st.floats(1e-6, 1.0), sign=st.sampled_from([-1, 1]),
       where=st.integers(0, 100))
def test_categorical_invalid_probs(probs, delta, sign, where):
    probs = probs.copy()
    flat = probs.reshape(-1)
    flat[where % flat.size] += sign * delta
    with pytest.raises(ValueError, match="parameter 'probs' must lie in the probability simplex"):
        Categorical(probs)
    flat[where % flat.size] = np.nan
    with pytest.raises(ValueError, match="parameter 'probs'"):
        Categorical(probs)


@HYP
@given(logits=logit_tables, bad=st.sampled_from([np.nan, np.inf, -np.inf]), where=st.integers(0, 100))
def test_logits_invalid_values(logits, bad, where):
    logits = logits.copy()
    logits.reshape(-1)[where % logits.size] = bad
    with pytest.raises(ValueError, match="parameter 'logits'"):
        Categorical.from_logits(logits)
    with pytest.raises(ValueError, match="parameter 'logits'"):
        Bernoulli.from_logits(logits)
