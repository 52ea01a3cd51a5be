"""Family-specific checks for the continuous families: Laplace, Dirac, Exponential, ChiSquared,
Beta, Dirichlet, MultivariateGaussian (the generic contract is in test_distributions.py).

Tolerances: ``10**(-dps + 3)`` for mpmath against mpmath references; ``C sqrt(eps)`` or ``C eps``
times the magnitude for float64 (C stated where used); statistical checks at level ``ALPHA = 1e-4``
per statistic with fixed seeds (deterministic runs; 1e-4 is the false-alarm rate of a fresh seed).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special as sp
from scipy import stats

from gsbref._math import MP, NP
from gsbref.distributions import (
    Beta, ChiSquared, Dirac, Dirichlet, Exponential, Gamma, Gaussian, Laplace, MultivariateGaussian,
)
from gsbref.distributions import beta as beta_module
from gsbref.distributions.dirac import NoDensityError

EPS = np.finfo(float).eps
SQRT_EPS = math.sqrt(EPS)
DPS = 30
MP_TOL = 10.0 ** (-DPS + 3)
ALPHA = 1e-4
K_SIGMA = float(stats.norm.isf(ALPHA / 2))


def ks_pvalue(x, cdf, upper=None):
    """One-sample KS p-value of the draws ``x`` against ``cdf`` (exact null distribution, scipy
    ``kstwo``).  With ``upper``, the supremum is taken over ``t <= upper`` only (a censored KS
    statistic; it is stochastically smaller than the full one, so the ``kstwo`` p-value is
    conservative): used where float64 cannot represent the draws near the top of the support."""
    x = np.sort(x)
    n = x.size
    i = np.arange(1, n + 1)
    if upper is not None:
        keep = x <= upper
        x, i = x[keep], i[keep]
    F = cdf(x)
    D = max(np.max(i / n - F, initial=0.0), np.max(F - (i - 1) / n, initial=0.0))
    if upper is not None:
        D = max(D, abs(i.size / n - float(cdf(np.array([upper]))[0])))
    return float(stats.kstwo.sf(D, n))


#: top of the range tested by the censored KS statistic on (0, 1): float64 spacing near 1 is
#: 1.1e-16, so 1 - z is representable only to ~1e-4 relative here
UPPER = 1 - 1e-12


# ----------------------------------------------------------------------------------------------
# Laplace
# ----------------------------------------------------------------------------------------------
def test_laplace_cf_has_the_location_term():
    """``log phi(w) = i mu w - log(1 + b^2 w^2)``: checked against ``mpmath.quad`` of
    ``e^{iwz} p(z)`` (dps 20, split at the kink) at mu = 0.5, b = 2, w = 0.3; the paper's printed
    ``i w - log(1 + b^2 w^2)`` differs there by a phase of ``(1 - mu) w = 0.15``."""
    mu, b, w = 0.5, 2.0, 0.3
    lap = Laplace(loc=mu, scale=b)
    with mpmath.workdps(20):
        th = {"loc": mpmath.mpf(mu), "scale": mpmath.mpf(b)}
        f = lambda z: mpmath.exp(1j * w * z + Laplace.mp_logpdf(z, **th))
        pts = [-mpmath.inf, *Laplace._quad_points(MP, **th), mpmath.inf]
        val, err = mpmath.quad(f, pts, error=True)
    assert abs(np.exp(lap.log_cf(w)) - complex(val)) <= max(10 * float(err), 1e-17) + 8 * SQRT_EPS
    printed = 1j * w - np.log(1 + b * b * w * w)
    assert abs(np.exp(printed) - complex(val)) > 0.1  # |e^{0.15 i} - 1| = 0.15


def test_laplace_a_coefficients_and_kink():
    lap = Laplace(loc=[0.5, -1.0], scale=[2.0, 0.5])
    a = lap.a_coefficients(6)
    np.testing.assert_array_equal(a["loc"][:, 0], [0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(a["scale"][:, 0], [0, 0, 4, 0, 16, 0, 64])
    np.testing.assert_array_equal(a["scale"][:, 1], [0, 0, 1, 0, 0.25, 0, 0.0625])
    # the density's kink is a quadrature breakpoint; the cdf is 1/2 there
    assert 0.5 in Laplace._quad_points(NP, loc=0.5, scale=2.0)
    assert Laplace._cdf(0.5, loc=0.5, scale=2.0) == 0.5
    # at the kink the loc score is set to 0 (a probability-zero event)
    assert lap.score(np.array([0.5, -1.0]))["loc"].tolist() == [0.0, 0.0]


def test_laplace_cdf_matches_quadrature():
    with mpmath.workdps(20):
        th = {"loc": mpmath.mpf(0.3), "scale": mpmath.mpf(1.7)}
        for x in (-2.0, 0.3, 1.1, 6.0):
            pts = sorted({*[float(p) for p in Laplace._quad_points(MP, **th)]} | {x})
            pts = [p for p in pts if p <= x]
            val = mpmath.quad(lambda z: mpmath.exp(Laplace.mp_logpdf(z, **th)), [-mpmath.inf, *pts])
            assert abs(Laplace._cdf(x, loc=0.3, scale=1.7) - float(val)) <= 8 * EPS


# ----------------------------------------------------------------------------------------------
# Dirac
# ----------------------------------------------------------------------------------------------
def test_dirac():
    d = Dirac(loc=[0.5, -2.0, 3.0])
    z = d.sample(np.random.default_rng(0), 1000)
    assert (z == d.loc).all()
    for call in (d.log_prob, d.score, lambda z: Dirac.mp_logpdf(0.5, loc=0.5)):
        with pytest.raises(NoDensityError, match="point mass has no density") as info:
            call(z)
        assert "score-function estimator does not apply" in str(info.value)
        assert isinstance(info.value, ValueError) and isinstance(info.value, NotImplementedError)
    w = np.array([0.3, -1.0, 2.0])
    np.testing.assert_array_equal(d.log_cf(w), 1j * (w @ d.loc))
    np.testing.assert_array_equal(d.grad_log_cf(w)["loc"], 1j * w)
    a = d.a_coefficients(3)["loc"]
    np.testing.assert_array_equal(a, [[0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(d.mean(), d.loc)
    np.testing.assert_array_equal(d.variance(), 0.0)
    # eq. 15: sum_n a_n E[f^(n)(z)] = f'(loc) for f = sin
    grad = sum(a[n] * (np.sin, np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x))[n](d.loc) for n in range(1, 4))
    np.testing.assert_array_equal(grad, np.cos(d.loc))


# ----------------------------------------------------------------------------------------------
# Exponential and ChiSquared as Gamma special cases
# ----------------------------------------------------------------------------------------------
def test_exponential_is_gamma_shape_one():
    """Same log_prob, scale score, a-coefficients, log_cf, moments and cdf as ``Gamma(1, scale)``
    (within ``8 eps`` relative: the formulas differ only in rounding)."""
    e = Exponential(scale=[0.3, 1.0, 4.0])
    g = e.to_gamma()
    assert isinstance(g, Gamma) and g.event_shape == e.event_shape
    np.testing.assert_array_equal(g.shape, 1.0)
    z = e.sample(np.random.default_rng(2), 50)
    np.testing.assert_allclose(e.log_prob(z), g.log_prob(z), rtol=8 * EPS)
    np.testing.assert_allclose(e.score(z)["scale"], g.score(z)["scale"], rtol=8 * EPS)
    np.testing.assert_allclose(e.a_coefficients(8)["scale"], g.a_coefficients(8)["scale"], rtol=8 * EPS)
    w = np.array([0.1, 0.5, 0.2])
    np.testing.assert_allclose(e.log_cf(w), g.log_cf(w), rtol=8 * EPS)
    np.testing.assert_allclose(e.mean(), g.mean(), rtol=8 * EPS)
    np.testing.assert_allclose(e.variance(), g.variance(), rtol=8 * EPS)
    x = np.array([0.1, 1.0, 7.0])
    np.testing.assert_allclose(Exponential._cdf(x, scale=1.3), Gamma._cdf(x, shape=1.0, scale=1.3), rtol=8 * EPS)


def test_chisquared_is_gamma_half_df_scale_two():
    """``ChiSquared(df) = Gamma(df/2, 2)``; by the chain rule ``d/d df = (1/2) d/d shape`` for the
    score, ``grad_log_cf`` and the a-coefficients (within ``8 eps`` relative, ``16 eps`` absolute for
    scores near zero)."""
    c = ChiSquared(df=[0.5, 3.0, 11.0])
    g = c.to_gamma()
    np.testing.assert_array_equal(g.shape, c.df / 2)
    np.testing.assert_array_equal(g.scale, 2.0)
    z = c.sample(np.random.default_rng(3), 50)
    np.testing.assert_allclose(c.log_prob(z), g.log_prob(z), rtol=8 * EPS)
    np.testing.assert_allclose(c.score(z)["df"], 0.5 * g.score(z)["shape"], rtol=8 * EPS, atol=16 * EPS)
    np.testing.assert_allclose(c.a_coefficients(8)["df"], 0.5 * g.a_coefficients(8)["shape"], rtol=8 * EPS)
    w = np.array([0.1, 0.3, 0.2])
    np.testing.assert_allclose(c.grad_log_cf(w)["df"], 0.5 * g.grad_log_cf(w)["shape"], rtol=8 * EPS)
    np.testing.assert_allclose(c.log_cf(w), g.log_cf(w), rtol=8 * EPS)
    np.testing.assert_allclose(c.mean(), c.df, rtol=0)
    np.testing.assert_allclose(c.variance(), 2 * c.df, rtol=0)


def test_gamma_broadcast_scale_score_is_summed():
    """``Gamma(shape=[1, 2, 3], scale=0.5)``: the scalar scale's score is the sum of the three
    per-coordinate scores (``8 eps`` times the sum of magnitudes)."""
    g = Gamma(shape=[1.0, 2.0, 3.0], scale=0.5)
    z = g.sample(np.random.default_rng(4), 20)
    s = g.score(z)
    assert s["shape"].shape == (20, 3) and s["scale"].shape == (20,)
    per = (z / 0.5 - np.array([1.0, 2.0, 3.0])) / 0.5
    assert (np.abs(s["scale"] - per.sum(-1)) <= 8 * EPS * np.abs(per).sum(-1)).all()
    assert g.a_coefficients(3)["scale"].shape == (4, 3)


# ----------------------------------------------------------------------------------------------
# Beta
# ----------------------------------------------------------------------------------------------
BETA_CASES = [(2.0, 3.0), (0.3, 0.5), (50.0, 80.0), (0.05, 0.05), (10.0, 0.2)]
C_VALUES = [0.3j, 3j, 12j, 45j, 150j, -5 + 2j, 20 - 20j, -0.7, 2.5, -60.0, 30.0]
#: the float64 1F1 guarantees its relative rounding error below _SERIES_RTOL (mpmath otherwise),
#: so log 1F1 and its gradient are good to 2 _SERIES_RTOL plus rounding of the log
BETA_FLOAT_TOL = 2 * beta_module._SERIES_RTOL


@pytest.mark.parametrize("ab", BETA_CASES)
def test_beta_float_log_mgf_and_gradient_match_mpmath(ab):
    """float64 ``_log_mgf`` / ``_grad_log_mgf`` (own series with mpmath fallback) against mpmath at
    dps 30, for complex ``c`` up to |c| = 150 and real ``c`` of either sign -- including
    ``Beta(50, 80)``, where SciPy's complex ``hyp1f1`` is off by a factor 1e19."""
    a, b = ab
    c = np.array(C_VALUES)
    lm = Beta._log_mgf(NP, c, alpha=np.float64(a), beta=np.float64(b))
    g = Beta._grad_log_mgf(NP, c, alpha=np.float64(a), beta=np.float64(b))
    with mpmath.workdps(DPS):
        for i, ci in enumerate(C_VALUES):
            th = {"alpha": mpmath.mpf(a), "beta": mpmath.mpf(b)}
            ref = complex(Beta.mp_log_mgf(mpmath.mpmathify(ci), **th))
            assert abs(lm[i] - ref) <= BETA_FLOAT_TOL * max(1, abs(ref)), (ci, lm[i], ref)
            gref = Beta.mp_grad_log_mgf(mpmath.mpmathify(ci), **th)
            for k in th:
                r = complex(gref[k])
                assert abs(g[k][i] - r) <= BETA_FLOAT_TOL * max(1, abs(r)), (ci, k, g[k][i], r)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    la=st.floats(math.log(0.2), math.log(10.0)),
    lb=st.floats(math.log(0.2), math.log(10.0)),
    r=st.floats(0.0, 60.0),
    t=st.floats(-math.pi, math.pi),
)
def test_beta_float_log_mgf_hypothesis(la, lb, r, t):
    """As above, for shapes drawn log-uniformly from the typical range and any ``|c| <= 60``."""
    a, b, c = math.exp(la), math.exp(lb), r * complex(math.cos(t), math.sin(t))
    lm = complex(Beta._log_mgf(NP, np.array([c]), alpha=np.float64(a), beta=np.float64(b))[0])
    g = Beta._grad_log_mgf(NP, np.array([c]), alpha=np.float64(a), beta=np.float64(b))
    with mpmath.workdps(DPS):
        th = {"alpha": mpmath.mpf(a), "beta": mpmath.mpf(b)}
        F = mpmath.hyp1f1(th["alpha"], th["alpha"] + th["beta"], mpmath.mpc(c))
        if abs(F) < 1e-12:
            return  # (near) a zero of phi: log and gradient are singular there
        ref = complex(mpmath.log(F))
        assert abs(lm - ref) <= BETA_FLOAT_TOL * max(1, abs(ref))
        gref = Beta.mp_grad_log_mgf(mpmath.mpc(c), **th)
        for k in th:
            assert abs(complex(g[k][0]) - complex(gref[k])) <= BETA_FLOAT_TOL * max(1, abs(complex(gref[k])))


def _cumulant_derivatives_by_moments(a, b, N):
    """Independent reference for Beta's a_n: closed-form raw moments ``E z^m = prod_{r<m}
    (a+r)/(a+b+r)``, their derivatives, and the moment -> cumulant recursion, at the working
    precision.  Returns ``{name: [d kappa_n / n!]}``."""
    m = [mpmath.mpf(1)]
    la = [mpmath.mpf(0)]
    lb = [mpmath.mpf(0)]
    for k in range(1, N + 1):
        m.append(m[-1] * (a + k - 1) / (a + b + k - 1))
        la.append(la[-1] + 1 / (a + k - 1) - 1 / (a + b + k - 1))
        lb.append(lb[-1] - 1 / (a + b + k - 1))
    out = {}
    for name, lg in (("alpha", la), ("beta", lb)):
        dm = [m[k] * lg[k] for k in range(N + 1)]
        kap = [mpmath.mpf(0)] * (N + 1)
        dk = [mpmath.mpf(0)] * (N + 1)
        for n in range(1, N + 1):
            kap[n] = m[n] - mpmath.fsum(math.comb(n - 1, k - 1) * kap[k] * m[n - k] for k in range(1, n))
            dk[n] = dm[n] - mpmath.fsum(
                math.comb(n - 1, k - 1) * (dk[k] * m[n - k] + kap[k] * dm[n - k]) for k in range(1, n)
            )
        out[name] = [dk[n] / math.factorial(n) for n in range(N + 1)]
    return out


@pytest.mark.parametrize("ab", [(2.0, 3.0), (0.3, 0.5), (50.0, 80.0), (300.0, 500.0)])
def test_beta_a_coefficients_match_moment_cumulant_recursion(ab):
    """``_a`` (Riccati recurrence) against the moment -> cumulant recursion run at dps 60 (it loses
    ~16 digits by cancellation at n = 8 for Beta(300, 500) -- measured against dps 120 -- so 60
    digits leave > 40): mpmath ``_a`` at dps 30 within ``10**(-27)`` relative, float64 within
    ``8 sqrt(eps)`` relative.  (In float64 the moment recursion itself is off by 2e-5 at n = 8 for
    Beta(50, 80) and by 400 % for Beta(300, 500), which is why ``_a`` does not use it.)"""
    a, b = ab
    N = 8
    with mpmath.workdps(60):
        ref = _cumulant_derivatives_by_moments(mpmath.mpf(a), mpmath.mpf(b), N)
    A = Beta(alpha=a, beta=b).a_coefficients(N)
    with mpmath.workdps(DPS):
        for n in range(N + 1):
            got = Beta._a(MP, n, alpha=mpmath.mpf(a), beta=mpmath.mpf(b))
            for k in ("alpha", "beta"):
                r = ref[k][n]
                assert abs(got[k] - r) <= MP_TOL * max(abs(r), 10.0 ** (-DPS)), (k, n)
                assert abs(A[k][n][()] - float(r)) <= 8 * SQRT_EPS * abs(float(r)) + 1e-300, (k, n)


@pytest.mark.parametrize("ab", BETA_CASES)
def test_beta_quad_points_and_cdf(ab):
    """``_quad_points`` are sorted, interior, and include the mean; ``_cdf`` equals mpmath's
    regularised incomplete beta function (dps 30) within ``64 eps`` (scipy's ``betainc`` is
    accurate to a few tens of eps; plain ``mpmath.quad`` of the density is *not* a usable reference
    at shape 0.05: tanh-sinh misses 3 % of the mass at the ``z**-0.95`` endpoint singularity and
    under-reports its own error)."""
    a, b = ab
    with mpmath.workdps(DPS):
        th = {"alpha": mpmath.mpf(a), "beta": mpmath.mpf(b)}
        pts = Beta._quad_points(MP, **th)
        assert 0 < pts[0] < pts[1] < pts[2] < 1
        assert pts[1] == Beta._mean(MP, **th)
        for x in (1e-30, float(pts[0]), float(pts[1]), float(pts[2]), 0.999):
            ref = float(mpmath.betainc(th["alpha"], th["beta"], 0, x, regularized=True))
            assert abs(Beta._cdf(x, alpha=a, beta=b) - ref) <= 64 * EPS, (x, ref)


def test_beta_log_prob_at_the_boundary_has_its_limit():
    """At z = 0 and z = 1 ``log_prob`` is the limit of the density (``+inf``, finite or ``-inf``);
    alpha = 1 gives the finite ``log beta`` at z = 0, with no RuntimeWarning (0 log 0 = 0)."""
    b = Beta(alpha=[0.5, 1.0, 2.0], beta=[2.0, 2.0, 0.5])
    lp = b._logpdf_array(np.array([[0.0, 0.0, 1.0]]))
    assert lp[0, 0] == np.inf and lp[0, 1] == pytest.approx(np.log(2.0)) and lp[0, 2] == np.inf


def test_beta_mp_logpdf_resolves_points_near_one():
    """The oracle's endpoint transform evaluates the density at ``z = 1 - d`` held exactly in a
    long mpf; ``mp_logpdf``/``mp_score`` must see ``1 - z = d`` (``mpmath.log1p(-z)`` would round
    ``1 + (-z)`` to 0 and return ``-inf``).  Checked at ``d = 1e-500`` (dps 30, ``10**(-27)``
    relative)."""
    with mpmath.workdps(DPS):
        a, b = mpmath.mpf(1.5), mpmath.mpf(0.6)
        d = mpmath.mpf(10) ** -500
        z = mpmath.fsub(1, d, exact=True)
        expect = (b - 1) * mpmath.log(d) + (a - 1) * mpmath.log(z) - mpmath.log(mpmath.beta(a, b))
        got = Beta.mp_logpdf(z, alpha=a, beta=b)
        assert abs(got - expect) <= MP_TOL * abs(expect)
        s = Beta.mp_score(z, alpha=a, beta=b)["beta"]
        assert abs(s - (mpmath.log(d) - mpmath.digamma(b) + mpmath.digamma(a + b))) <= MP_TOL * abs(s)


# ----------------------------------------------------------------------------------------------
# sampling at extreme shapes
# ----------------------------------------------------------------------------------------------
N_EXTREME = 200_000


def test_extreme_shape_gamma_sampling():
    """Gamma(0.05, 1): no NaN, no exact zeros (P[z < 5e-324] = 5e-324^0.05 / Gamma(1.05) ~ 1e-16),
    finite log_prob; the KS test at level 1e-4 accepts the draws."""
    g = Gamma(shape=0.05, scale=1.0)
    z = g.sample(np.random.default_rng(10), N_EXTREME)
    assert not np.isnan(z).any() and (z > 0).all()
    assert np.isfinite(g.log_prob(z)).all()
    assert ks_pvalue(z, lambda x: Gamma._cdf(x, shape=0.05, scale=1.0)) > ALPHA


def test_extreme_shape_beta_sampling():
    """Beta(0.05, 0.05): float64 cannot represent ``1 - z`` below 2**-53, and NumPy rounds those
    draws to exactly 1.0 -- about 8 % of them.  ``Beta.sample`` moves them to ``1 - 2**-53`` (no
    NaN, no 0 or 1, finite ``log_prob``).  The fraction moved lies between the exact probabilities
    ``P[1 - z < 2**-54]`` and ``P[1 - z < 2**-53]`` (K_SIGMA binomial standard errors of slack,
    false-alarm rate 1e-4), i.e. the clamp corrects rounding and nothing else.  Below ``UPPER`` the
    draws pass the (censored) KS test at level 1e-4."""
    a = b = 0.05
    d = Beta(alpha=a, beta=b)
    z = d.sample(np.random.default_rng(11), N_EXTREME)
    top = np.nextafter(1.0, 0.0)
    assert not np.isnan(z).any() and (z > 0).all() and (z < 1).all()
    assert np.isfinite(d.log_prob(z)).all()
    frac = float(np.mean(z == top))
    with mpmath.workdps(30):
        lo = float(mpmath.betainc(b, a, 0, mpmath.mpf(2) ** -54, regularized=True))
        hi = float(mpmath.betainc(b, a, 0, mpmath.mpf(2) ** -53, regularized=True))
    se = math.sqrt(hi * (1 - hi) / N_EXTREME)
    assert lo - K_SIGMA * se <= frac <= hi + K_SIGMA * se, (lo, frac, hi)
    assert 0.05 < frac < 0.1  # the "about 8 %" quoted in the docstrings
    assert ks_pvalue(z, lambda x: Beta._cdf(x, alpha=a, beta=b), upper=UPPER) > ALPHA


def test_extreme_shape_dirichlet_sampling():
    """Dirichlet(0.05, 0.05, 0.05): the log-space sampler gives no NaN and no zero component
    (P[z_k < 5e-324] ~ 1e-16); NumPy's ``Generator.dirichlet`` gives ~3 % zeros here.  The first
    marginal, Beta(0.05, 0.1), passes the censored KS test (t <= UPPER) at level 1e-4: about 0.9 %
    of its draws lie within 1.1e-16 of 1 and are stored as 1.0 (the other components keep the
    information; log_prob stays finite)."""
    d = Dirichlet([0.05, 0.05, 0.05])
    z = d.sample(np.random.default_rng(12), N_EXTREME)
    assert not np.isnan(z).any() and (z > 0).all()
    np.testing.assert_allclose(z.sum(-1), 1.0, rtol=0, atol=4 * EPS)
    assert np.isfinite(d.log_prob(z)).all()
    assert ks_pvalue(z[:, 0], lambda x: Beta._cdf(x, alpha=0.05, beta=0.1), upper=UPPER) > ALPHA


# ----------------------------------------------------------------------------------------------
# Dirichlet
# ----------------------------------------------------------------------------------------------
def test_dirichlet_two_components_is_beta():
    """Dirichlet([a, b]) at (z, 1 - z) has Beta(a, b)'s log density and scores (within ``8 eps``
    relative, ``32 eps`` absolute: digamma differences), and its first component passes the KS
    test against Beta(a, b) at level 1e-4 (N = 2e5)."""
    a, b = 0.7, 2.5
    d = Dirichlet([a, b])
    be = Beta(alpha=a, beta=b)
    z = be.sample(np.random.default_rng(13), 100)
    zz = np.stack([z, 1 - z], -1)
    np.testing.assert_allclose(d.log_prob(zz), be.log_prob(z), rtol=8 * EPS, atol=32 * EPS)
    s, sb = d.score(zz)["concentration"], be.score(z)
    np.testing.assert_allclose(s[:, 0], sb["alpha"], rtol=8 * EPS, atol=32 * EPS)
    np.testing.assert_allclose(s[:, 1], sb["beta"], rtol=8 * EPS, atol=32 * EPS)
    x = d.sample(np.random.default_rng(14), 200_000)[:, 0]
    assert ks_pvalue(x, lambda t: Beta._cdf(t, alpha=a, beta=b)) > ALPHA


def test_dirichlet_marginals_and_covariance():
    """K = 4: each marginal is Beta(alpha_k, alpha_0 - alpha_k) (KS at level 1e-4 each), and the
    sample covariance of each pair is within K_SIGMA standard errors of
    ``-alpha_i alpha_j / (alpha_0^2 (alpha_0 + 1))`` (false-alarm rate 1e-4 per pair; SE from the
    sample fourth moments), N = 2e5."""
    alpha = np.array([0.4, 1.0, 2.5, 6.0])
    a0 = alpha.sum()
    d = Dirichlet(alpha)
    z = d.sample(np.random.default_rng(15), 200_000)
    for k in range(4):
        assert ks_pvalue(z[:, k], lambda t: Beta._cdf(t, alpha=alpha[k], beta=a0 - alpha[k])) > ALPHA
    # the closed-form moments are those of the Beta marginals (whose moments are checked against
    # quadrature in test_distributions.py)
    for k in range(4):
        marginal = Beta(alpha=alpha[k], beta=a0 - alpha[k])
        np.testing.assert_allclose(d.mean()[k], marginal.mean(), rtol=4 * EPS)
        np.testing.assert_allclose(d.variance()[k], marginal.variance(), rtol=8 * EPS)
    m = d.mean()
    c = z - m
    n = z.shape[0]
    for i in range(4):
        for j in range(i + 1, 4):
            prod = c[:, i] * c[:, j]
            true = -alpha[i] * alpha[j] / (a0 * a0 * (a0 + 1))
            assert abs(prod.mean() - true) <= K_SIGMA * prod.std() / math.sqrt(n)


def test_dirichlet_score_matches_mpmath():
    """``mp_score`` equals ``mpmath.diff`` of ``mp_logpdf`` in each concentration (dps 30,
    ``10**(-27)`` relative to ``max(1, |logpdf|)``); the float64 ``score`` and ``log_prob`` agree
    with the mpmath values within ``8 sqrt(eps)`` of the same scale."""
    alpha = [0.3, 1.7, 4.0]
    d = Dirichlet(alpha)
    z = d.sample(np.random.default_rng(16), 3)
    s_np, lp_np = d.score(z)["concentration"], d.log_prob(z)
    with mpmath.workdps(DPS):
        al = [mpmath.mpf(a) for a in alpha]
        for r in range(3):
            zs = [mpmath.mpf(float(v)) for v in z[r]]
            lp = Dirichlet.mp_logpdf(zs, al)
            sc = Dirichlet.mp_score(zs, al)
            scale = max(1, abs(lp))
            for k in range(3):
                ref = mpmath.diff(lambda x: Dirichlet.mp_logpdf(zs, [x if i == k else al[i] for i in range(3)]), al[k])
                assert abs(sc[k] - ref) <= MP_TOL * max(scale, abs(ref))
                assert abs(s_np[r, k] - float(ref)) <= 8 * SQRT_EPS * float(max(scale, abs(ref)))
            assert abs(lp_np[r] - float(lp)) <= 8 * SQRT_EPS * float(scale)


def test_dirichlet_batch_validation_and_not_implemented():
    d = Dirichlet([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    assert d.event_shape == (2, 3)
    z = d.sample(np.random.default_rng(17), 5)
    assert z.shape == (5, 2, 3)
    lp = d.log_prob(z)
    parts = [Dirichlet(d.concentration[i]).log_prob(z[:, i]) for i in range(2)]
    np.testing.assert_allclose(lp, parts[0] + parts[1], rtol=8 * EPS)
    assert d.score(z)["concentration"].shape == (5, 2, 3)
    # off the simplex: zero density
    assert Dirichlet([1.0, 2.0]).log_prob(np.array([0.7, 0.7])) == -np.inf
    assert Dirichlet([1.0, 2.0]).log_prob(np.array([-0.1, 1.1])) == -np.inf
    for bad in ([1.0], [[1.0], [2.0]], [1.0, -1.0], [1.0, np.nan], [0.0, 1.0], 2.0):
        with pytest.raises(ValueError, match="'concentration'"):
            Dirichlet(bad)
    with pytest.raises(TypeError):
        Dirichlet(["a", "b"])
    for call in (lambda: d.log_cf(z[0]), lambda: d.grad_log_cf(z[0]), lambda: d.a_coefficients(3)):
        with pytest.raises(NotImplementedError, match="gamma construction"):
            call()
    np.testing.assert_allclose(d.mean().sum(-1), 1.0, rtol=4 * EPS)


# ----------------------------------------------------------------------------------------------
# MultivariateGaussian
# ----------------------------------------------------------------------------------------------
LOC = np.array([0.5, -1.0, 2.0])
COV = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])


def test_mvn_validation():
    for loc, cov in (
        ([0.0, 1.0], np.eye(3)),          # dimensions disagree
        ([[0.0, 1.0]], np.eye(2)),        # batched loc
    ):
        with pytest.raises(ValueError, match="'(loc|cov)'"):
            MultivariateGaussian(loc, cov)
    for cov in (-np.eye(2), [[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.5], [0.0, 1.0]], np.ones(2),
                [[1.0, np.nan], [np.nan, 1.0]], np.eye(2)[None]):
        with pytest.raises(ValueError, match="'cov'"):
            MultivariateGaussian([0.0, 0.0], cov)
    with pytest.raises(ValueError, match="'loc'"):
        MultivariateGaussian([0.0, np.nan], np.eye(2))
    with pytest.raises(TypeError):
        MultivariateGaussian(["a", "b"], np.eye(2))


def test_mvn_diagonal_is_gaussian():
    """Diagonal cov = independent Gaussians: same log_prob and loc score (``8 eps`` relative /
    ``8 eps`` x magnitude absolute); the Gaussian's scale score is ``2 sigma`` times the diagonal of
    the cov score (chain rule, cov_ii = sigma_i^2), off-diagonal entries are ``s_i s_j / 2``."""
    sd = np.array([0.5, 1.5, 3.0])
    mvn = MultivariateGaussian(LOC, np.diag(sd**2))
    g = Gaussian(loc=LOC, scale=sd)
    z = g.sample(np.random.default_rng(20), 40)
    np.testing.assert_allclose(mvn.log_prob(z), g.log_prob(z), rtol=8 * EPS, atol=8 * EPS * 10)
    sm, sg = mvn.score(z), g.score(z)
    np.testing.assert_allclose(sm["loc"], sg["loc"], rtol=8 * EPS, atol=8 * EPS)
    diag = np.diagonal(sm["cov"], axis1=-2, axis2=-1)
    np.testing.assert_allclose(2 * sd * diag, sg["scale"], rtol=8 * EPS, atol=8 * EPS * 10)
    u = (z - LOC) / sd**2
    np.testing.assert_allclose(sm["cov"][:, 0, 1], 0.5 * u[:, 0] * u[:, 1], rtol=8 * EPS, atol=8 * EPS)
    w = np.array([0.2, -0.4, 0.1])
    np.testing.assert_allclose(mvn.log_cf(w), g.log_cf(w), rtol=8 * EPS)


def test_mvn_score_matches_mpmath():
    """``mp_score`` equals ``mpmath.diff`` of ``mp_logpdf`` for each loc entry and each *single*
    cov entry (the free-entry convention; dps 30, ``10**(-27)`` relative), and a symmetric
    perturbation of the pair (k, l) has derivative ``G_kl + G_lk``; the float64 ``score`` agrees with
    ``mp_score`` within ``8 sqrt(eps)`` times ``max(1, |logpdf|)``."""
    mvn = MultivariateGaussian(LOC, COV)
    z = mvn.sample(np.random.default_rng(21), 2)
    s_np = mvn.score(z)
    with mpmath.workdps(DPS):
        loc = [mpmath.mpf(v) for v in LOC]
        cov = [[mpmath.mpf(v) for v in row] for row in COV]
        for r in range(2):
            zs = [mpmath.mpf(float(v)) for v in z[r]]
            lp = MultivariateGaussian.mp_logpdf(zs, loc, cov)
            sc = MultivariateGaussian.mp_score(zs, loc, cov)
            scale = max(1, abs(lp))
            for i in range(3):
                f = lambda x: MultivariateGaussian.mp_logpdf(zs, [x if j == i else loc[j] for j in range(3)], cov)
                ref = mpmath.diff(f, loc[i])
                assert abs(sc["loc"][i] - ref) <= MP_TOL * scale
                assert abs(s_np["loc"][r, i] - float(ref)) <= 8 * SQRT_EPS * float(scale)
            for k in range(3):
                for l in range(3):
                    def f(x):
                        c = [row[:] for row in cov]
                        c[k][l] = x
                        return MultivariateGaussian.mp_logpdf(zs, loc, c)

                    ref = mpmath.diff(f, cov[k][l])
                    assert abs(sc["cov"][k][l] - ref) <= MP_TOL * scale
                    assert abs(s_np["cov"][r, k, l] - float(ref)) <= 8 * SQRT_EPS * float(scale)

                    def g(x):
                        c = [row[:] for row in cov]
                        c[k][l] = cov[k][l] + x
                        c[l][k] = cov[l][k] + x if k != l else c[k][l]
                        return MultivariateGaussian.mp_logpdf(zs, loc, c)

                    sym = mpmath.diff(g, 0)
                    expect = sc["cov"][k][l] + (sc["cov"][l][k] if k != l else 0)
                    assert abs(sym - expect) <= MP_TOL * scale


def test_mvn_cf_and_a_coefficients():
    """``grad_log_cf`` equals the theorem-1 sum ``sum_alpha A_alpha (i w)^alpha`` over the
    multi-index coefficients (exactly a finite sum here; ``8 eps`` x magnitude), and equals the
    central difference of ``log_cf`` in each parameter (step h = eps^(1/3) x scale: truncation and
    rounding both ~eps^(2/3), tolerance ``8 eps^(2/3)``)."""
    mvn = MultivariateGaussian(LOC, COV)
    w = np.array([[0.3, -0.2, 0.5], [1.0, 0.4, -0.7]])
    g = mvn.grad_log_cf(w)
    assert g["loc"].shape == (2, 3) and g["cov"].shape == (2, 3, 3)
    A = mvn.a_coefficients(3)
    assert len(A["loc"]) == 3 and len(A["cov"]) == 6
    for name in ("loc", "cov"):
        total = sum(coef * np.prod((1j * w) ** np.array(alpha), axis=-1).reshape((-1,) + (1,) * coef.ndim)
                    for alpha, coef in A[name].items())
        np.testing.assert_allclose(total, g[name], rtol=8 * EPS, atol=8 * EPS)
    assert mvn.a_coefficients(1)["cov"] == {} and mvn.a_coefficients(0)["loc"] == {}
    h = EPS ** (1 / 3)
    for k in range(3):
        dl = np.zeros(3)
        dl[k] = h
        fd = (MultivariateGaussian(LOC + dl, COV).log_cf(w) - MultivariateGaussian(LOC - dl, COV).log_cf(w)) / (2 * h)
        np.testing.assert_allclose(fd, g["loc"][:, k], atol=8 * EPS ** (2 / 3) * 10)
        for l in range(3):
            dc = np.zeros((3, 3))
            dc[k, l] += h
            dc[l, k] += h if k != l else 0.0
            fd = (MultivariateGaussian(LOC, COV + dc).log_cf(w) - MultivariateGaussian(LOC, COV - dc).log_cf(w)) / (2 * h)
            expect = g["cov"][:, k, l] + (g["cov"][:, l, k] if k != l else 0)
            np.testing.assert_allclose(fd, expect, atol=8 * EPS ** (2 / 3) * 10)


def test_mvn_sampling_moments_and_cf():
    """N = 2e5 draws: each entry of the sample covariance within K_SIGMA standard errors
    (``sqrt((S_ii S_jj + S_ij^2) / N)``, Gaussian fourth moments), and the empirical characteristic
    function at one ``w`` within K_SIGMA standard errors of ``exp(log_cf)`` (real and imaginary
    parts; each check has false-alarm rate 1e-4)."""
    mvn = MultivariateGaussian(LOC, COV)
    n = 200_000
    z = mvn.sample(np.random.default_rng(22), n)
    c = z - LOC
    for i in range(3):
        for j in range(3):
            se = math.sqrt((COV[i, i] * COV[j, j] + COV[i, j] ** 2) / n)
            assert abs((c[:, i] * c[:, j]).mean() - COV[i, j]) <= K_SIGMA * se, (i, j)
    w = np.array([0.4, -0.3, 0.6])
    e = np.exp(1j * z @ w)
    phi = np.exp(mvn.log_cf(w))
    for part in (np.real, np.imag):
        assert abs(part(e).mean() - part(phi)) <= K_SIGMA * part(e).std() / math.sqrt(n)
    np.testing.assert_array_equal(mvn.covariance(), COV)
    np.testing.assert_array_equal(mvn.variance(), np.diag(COV))
    np.testing.assert_array_equal(mvn.mean(), LOC)


def test_mvn_theorem1_quadratic():
    """Theorem 1 for f(z) = z^T B z / 2 + b^T z (B symmetric): ``E f = tr(B S)/2 + mu^T B mu / 2 +
    b^T mu``; the rule ``grad_cov = E[Hessian]/2 = B/2`` and ``grad_loc = E[grad f] = B mu + b``
    agree with the exact derivatives (symmetric-perturbation derivative ``G_kl + G_lk`` for k != l)."""
    B = np.array([[1.0, 0.3, 0.0], [0.3, 2.0, -0.5], [0.0, -0.5, 0.7]])
    bvec = np.array([0.1, -0.2, 0.3])
    mvn = MultivariateGaussian(LOC, COV)
    A = mvn.a_coefficients(2)
    # sum_alpha A_alpha E[d^alpha f]: E[d_k f] = (B mu + b)_k and d_k d_l f = B_kl
    idx = lambda alpha: tuple(np.repeat(np.arange(3), alpha))  # (2,0,0) -> (0, 0); (1,1,0) -> (0, 1)
    grad_loc = sum(coef * (B @ LOC + bvec)[idx(alpha)] for alpha, coef in A["loc"].items())
    grad_cov = sum(coef * B[idx(alpha)] for alpha, coef in A["cov"].items())
    np.testing.assert_allclose(grad_loc, B @ LOC + bvec, rtol=4 * EPS)
    np.testing.assert_allclose(grad_cov, B / 2, rtol=4 * EPS)
