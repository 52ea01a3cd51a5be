"""The generic distribution contract, checked for every class in ``gsbref.distributions.FAMILIES``.

Families are built from their declared ``Parameter``s only (typical ranges, domains), so a new
family is covered by adding it to ``FAMILIES``.  Checks that do not apply to a family are skipped
by what the family says about itself: the ``discrete`` flag, a missing per-coordinate formula, or a
``NotImplementedError`` (e.g. a point mass has no density).

Statistical checks use fixed seeds, so every run is deterministic; the false-alarm rates quoted are
those of a fresh seed.  Deterministic checks use tolerances derived from the precision:
``10**(-dps + 3)`` for mpmath (the reference values -- ``mpmath.diff``, ``mpmath.taylor``,
``mpmath.quad`` -- are accurate to about the working precision; three digits allow for cancellation
between terms up to ~1e3 in the formulas) and ``C sqrt(eps)`` times the magnitude for float64 (C
given where used).
"""

from __future__ import annotations

import math
import zlib

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from gsbref._math import MP
from gsbref.distributions import FAMILIES, Factorized

NAMES = sorted(FAMILIES)
EPS = np.finfo(float).eps
SQRT_EPS = math.sqrt(EPS)
DPS = 30
MP_TOL = 10.0 ** (-DPS + 3)

#: per-check false-alarm rate of every statistical check in this file
ALPHA = 1e-4
#: two-sided normal quantile for ALPHA (3.89)
K_SIGMA = float(stats.norm.isf(ALPHA / 2))
#: draws per coordinate for the sample checks (see test_sample_power for the power this buys)
N_SAMPLES = 400_000
SIZE = 3  # coordinates (or K, or d) of the instances built from the declarations


# ----------------------------------------------------------------------------------------------
# building instances from the declarations
# ----------------------------------------------------------------------------------------------
def _draw_typical(p, rng, shape):
    lo, hi = p.typical
    if p.log_scale:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), shape))
    return rng.uniform(lo, hi, shape)


def draw_value(p, rng, size=SIZE):
    """A value for parameter ``p`` drawn from its typical range (log-uniformly when declared)."""
    kind = p.domain.kind
    if kind == "positive-definite":
        # 'typical' is the range of the eigenvalues
        q, _ = np.linalg.qr(rng.standard_normal((size, size)))
        c = (q * _draw_typical(p, rng, size)) @ q.T
        return 0.5 * (c + c.T)
    if kind == "simplex":
        # 'typical' is the range of the unnormalised weights
        w = _draw_typical(p, rng, size)
        return w / w.sum()
    return _draw_typical(p, rng, (size,) * max(1, p.event_ndim))


def _seed(name: str, salt: str = "") -> int:
    return zlib.crc32((name + salt).encode())


def make(name: str, seed_salt: str = ""):
    cls = FAMILIES[name]
    rng = np.random.default_rng(_seed(name, seed_salt))
    return cls(**{p.name: draw_value(p, rng) for p in cls.parameters})


_INSTANCES: dict = {}
_SAMPLES: dict = {}


def instance(name):
    if name not in _INSTANCES:
        _INSTANCES[name] = make(name)
    return _INSTANCES[name]


def samples(name):
    """N_SAMPLES draws of the instance (cached: several checks read them)."""
    if name not in _SAMPLES:
        _SAMPLES[name] = instance(name).sample(np.random.default_rng(_seed(name, "sample")), N_SAMPLES)
    return _SAMPLES[name]


def has_density(d) -> bool:
    try:
        d.log_prob(d.sample(0, 1))
    except NotImplementedError:
        return False
    return True


def is_factorized(name):
    return issubclass(FAMILIES[name], Factorized)


def need(cond: bool, why: str):
    if not cond:
        pytest.skip(why)


def mp_theta(d, j):
    return {k: mpmath.mpf(v) for k, v in d.coordinate(j).items()}


def expected_score_shape(d, name, lead):
    """Score shapes are ``lead + param_shape``, except where a family documents otherwise."""
    shape = lead + d.params[name].shape
    if type(d).__name__ == "Categorical" and name == "probs":
        # documented: reference-last convention (eq. 17) drops the reference category
        return lead + d.params[name].shape[:-1] + (d.params[name].shape[-1] - 1,)
    return shape


# ----------------------------------------------------------------------------------------------
# declarations and construction
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_declarations(name):
    cls = FAMILIES[name]
    assert cls.parameters, "every family declares its parameters"
    names = [p.name for p in cls.parameters]
    assert len(set(names)) == len(names)
    for p in cls.parameters:
        lo, hi = p.typical
        assert lo < hi, p
        if p.log_scale:
            assert lo > 0, f"{p.name}: a log-scale typical range must be positive"
        if p.domain.kind == "interval" and p.event_ndim == 0:
            assert p.domain.contains(np.array([lo, hi])).all(), f"{p.name}: typical range outside domain"
    d = instance(name)
    assert isinstance(d.event_shape, tuple)
    assert repr(d).startswith(name + "(")
    for p in cls.parameters:
        with pytest.raises(ValueError):
            d.params[p.name][...] = 0.0  # parameters are read-only
    rebuilt = d.with_params()
    for k, v in d.params.items():
        np.testing.assert_array_equal(rebuilt.params[k], v)


@pytest.mark.parametrize("name", NAMES)
def test_non_numeric_parameter_is_type_error(name):
    cls = FAMILIES[name]
    good = {p.name: draw_value(p, np.random.default_rng(0)) for p in cls.parameters}
    for p in cls.parameters:
        with pytest.raises(TypeError):
            cls(**{**good, p.name: "abc"})


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_and_reproducibility(name):
    d = instance(name)
    z = d.sample(np.random.default_rng(1), 7)
    assert z.shape == (7, *d.event_shape) and z.dtype == np.float64
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(z, d.sample(1, 7))  # an int is a seed
    with pytest.raises(TypeError):
        d.sample(None, 3)
    with pytest.raises(ValueError):
        d.sample(1, 0)
    if d.discrete:
        np.testing.assert_array_equal(z, np.round(z))


# ----------------------------------------------------------------------------------------------
# samples agree with the distribution
# ----------------------------------------------------------------------------------------------
def _moment_z(z, mean, var):
    """z-scores of the sample mean and the sample variance (each coordinate).

    ``SE(mean) = sqrt(var / N)``; ``SE(s^2) = sqrt((m4 - var^2) / N)`` with the sample fourth
    central moment ``m4`` (a consistent plug-in; N = 4e5 keeps its error at the per-cent level)."""
    n = z.shape[0]
    zbar = z.mean(0)
    c = z - mean
    s2 = (c * c).mean(0)
    m4 = ((z - zbar) ** 4).mean(0)
    z_mean = (zbar - mean) / np.sqrt(var / n)
    z_var = (s2 - var) / np.sqrt(np.maximum(m4 - var * var, 1e-300) / n)
    return z_mean, z_var


def _ks_pvalues(d, z):
    """Per-coordinate one-sample Kolmogorov-Smirnov p-values (exact distribution, scipy ``kstwo``)
    of the draws ``z`` against the family's ``_cdf``."""
    n = z.shape[0]
    theta = d.broadcast_params()
    flat_z = z.reshape(n, -1)
    out = []
    for j in range(flat_z.shape[1]):
        lo, hi = d.support
        x = np.clip(np.sort(flat_z[:, j]), lo, hi)  # the cdf is 0 / 1 outside the support
        F = d._cdf(x, **{k: v.reshape(-1)[j] for k, v in theta.items()})
        i = np.arange(1, n + 1)
        D = max(np.max(i / n - F), np.max(F - (i - 1) / n))
        out.append(float(stats.kstwo.sf(D, n)))
    return np.array(out)


def _ks_applicable(d):
    return isinstance(d, Factorized) and not d.discrete and hasattr(d, "_cdf") and bool((d.variance() > 0).all())


@pytest.mark.parametrize("name", NAMES)
def test_sample_moments(name):
    """Sample mean and variance of each coordinate within K_SIGMA = 3.89 standard errors of
    ``mean()`` / ``variance()``: false-alarm rate 1e-4 per statistic (about 1e-2 for the whole
    file's ~100 statistics).  A point mass (variance 0) must be reproduced exactly."""
    d = instance(name)
    try:
        mean, var = d.mean(), d.variance()
    except NotImplementedError:
        pytest.skip(f"{name} has no closed-form moments")
    z = samples(name)
    assert mean.shape == var.shape == tuple(d.event_shape)
    if (var == 0).all():
        np.testing.assert_array_equal(z, np.broadcast_to(mean, z.shape))
        return
    z_mean, z_var = _moment_z(z, mean, var)
    assert np.abs(z_mean).max() < K_SIGMA, z_mean
    assert np.abs(z_var).max() < K_SIGMA, z_var


@pytest.mark.parametrize("name", NAMES)
def test_sample_ks(name):
    """One-sample KS test of each coordinate against ``_cdf`` at level 1e-4 (false-alarm rate
    1e-4 per coordinate), N = 4e5 draws."""
    d = instance(name)
    need(_ks_applicable(d), f"{name}: no continuous per-coordinate cdf")
    p = _ks_pvalues(d, samples(name))
    assert p.min() > ALPHA, p


@pytest.mark.parametrize("name", NAMES)
def test_sample_power(name):
    """The sample checks above have power: a 2 % scale error (each coordinate dilated by 1.02
    about its mean, i.e. the standard deviation 2 % too large) is rejected in *every* coordinate
    by the KS test or the variance z-test at the same level 1e-4.  With N = 4e5 the variance
    statistic moves by 0.0404 / sqrt((kurtosis - 1) / N) standard errors -- 18 for a Gaussian, 4.5
    at kurtosis 33 (Gamma shape 0.2, the edge of its typical range) -- and KS covers the rest."""
    d = instance(name)
    need(not d.discrete, "a scale error of a discrete family is not a dilation")
    try:
        mean, var = d.mean(), d.variance()
    except NotImplementedError:
        pytest.skip(f"{name} has no closed-form moments")
    need(bool((var > 0).all()), "point mass: no scale")
    z = samples(name)
    zd = mean + 1.02 * (z - mean)
    _, z_var = _moment_z(zd, mean, var)
    rejected = np.abs(z_var).reshape(-1) >= K_SIGMA
    if _ks_applicable(d):
        rejected |= _ks_pvalues(d, zd) <= ALPHA
    assert rejected.all(), (z_var, rejected)


# ----------------------------------------------------------------------------------------------
# per-coordinate formulas against mpmath (Factorized families)
# ----------------------------------------------------------------------------------------------
def _coordinate_points(name, d):
    """(j, z) pairs: one draw for each of the first two coordinates."""
    z = d.sample(np.random.default_rng(_seed(name, "pts")), 1).reshape(-1)
    return [(j, float(z[j])) for j in range(min(2, z.size))]


@pytest.mark.parametrize("name", NAMES)
def test_score_matches_mpmath_diff(name):
    """``_score(MP)`` equals ``mpmath.diff`` of ``mp_logpdf`` in each parameter (dps 30, tolerance
    ``10**(-27)`` relative to ``max(1, |logpdf|, |score|)``), and the float64 ``score`` equals the
    mpmath score within ``8 sqrt(eps)`` times the same scale."""
    need(is_factorized(name), f"{name} is not Factorized (checked in its own test file)")
    d = instance(name)
    need(has_density(d), f"{name} has no density")
    with mpmath.workdps(DPS):
        for j, zj in _coordinate_points(name, d):
            th = mp_theta(d, j)
            z = mpmath.mpf(zj)
            s_mp = type(d).mp_score(z, **th)
            lp = type(d).mp_logpdf(z, **th)
            zfull = d.sample(np.random.default_rng(0), 1)[0].reshape(-1)
            zfull[j] = zj
            s_full = d.score(zfull.reshape(d.event_shape))
            for k in th:
                f = lambda x, k=k: type(d).mp_logpdf(z, **{**th, k: x})
                ref = mpmath.diff(f, th[k])
                scale = max(1, abs(lp), abs(ref))
                assert abs(s_mp[k] - ref) <= MP_TOL * scale, (k, j, s_mp[k], ref)
                if d.params[k].shape == d.event_shape:
                    got = float(s_full[k].reshape(-1)[j])
                    assert abs(got - float(ref)) <= 8 * SQRT_EPS * float(scale), (k, j)


@pytest.mark.parametrize("name", NAMES)
def test_grad_log_mgf_matches_mpmath_diff(name):
    """``mp_grad_log_mgf`` equals ``mpmath.diff`` of ``mp_log_mgf`` in each parameter at a complex
    and a real ``c`` inside the domain of convergence (dps 30, tolerance ``10**(-27)`` relative);
    float64 ``log_cf`` / ``grad_log_cf`` at a real ``w`` equal the mpmath values within
    ``8 sqrt(eps)`` relative to ``max(1, |value|)``."""
    need(is_factorized(name) and hasattr(FAMILIES[name], "_log_mgf"), f"{name}: no per-coordinate log-mgf")
    d = instance(name)
    mean, sd = d.mean().reshape(-1), np.sqrt(d.variance().reshape(-1))
    cls = type(d)
    with mpmath.workdps(DPS):
        for j in range(min(2, d.event_size)):
            th = mp_theta(d, j)
            R = abs(mean[j]) + 3 * sd[j] + 1e-3
            for c in (mpmath.mpc(0.5 * math.cos(1.0), 0.5 * math.sin(1.0)) / R, mpmath.mpf(-0.5) / R):
                g = cls.mp_grad_log_mgf(c, **th)
                for k in th:
                    ref = mpmath.diff(lambda x, k=k: cls.mp_log_mgf(c, **{**th, k: x}), th[k])
                    assert abs(g[k] - ref) <= MP_TOL * max(1, abs(ref)), (k, j, c)
            # float64 against mpmath at a real omega
            w = 0.7 / R
            omega = np.zeros(d.event_size)
            omega[j] = w
            lcf = d.log_cf(omega.reshape(d.event_shape))
            ref = cls.mp_log_mgf(mpmath.mpc(0, w), **th)
            assert abs(complex(lcf) - complex(ref)) <= 8 * SQRT_EPS * max(1, abs(complex(ref)))
            glcf = d.grad_log_cf(np.broadcast_to(w, d.event_shape))
            gref = cls.mp_grad_log_mgf(mpmath.mpc(0, w), **th)
            for k in th:
                if d.params[k].shape == d.event_shape:
                    got = complex(glcf[k].reshape(-1)[j])
                    assert abs(got - complex(gref[k])) <= 8 * SQRT_EPS * max(1, abs(complex(gref[k]))), k


@pytest.mark.parametrize("name", NAMES)
def test_a_coefficients_match_mpmath_taylor(name):
    """``_a(MP, n)`` for n <= 8 equals the Taylor coefficients of ``mp_grad_log_mgf`` at ``c = 0``
    (``mpmath.taylor``, dps 30, tolerance ``10**(-27)`` relative to ``max(1, |coefficient|)``); the
    float64 ``a_coefficients(8)`` equals them within ``8 sqrt(eps)`` relative."""
    cls = FAMILIES[name]
    need(is_factorized(name) and hasattr(cls, "_a"), f"{name}: theorem 1 coefficients not defined")
    d = instance(name)
    order = 8
    a_np = d.a_coefficients(order)
    for k, v in a_np.items():
        assert v.shape == (order + 1, *d.event_shape)
    with mpmath.workdps(DPS):
        for j in range(min(2, d.event_size)):
            th = mp_theta(d, j)
            for k in th:
                ref = mpmath.taylor(lambda c, k=k: cls.mp_grad_log_mgf(c, **th)[k], 0, order)
                for n in range(order + 1):
                    got = cls._a(MP, n, **th)[k]
                    scale = max(1, abs(ref[n]))
                    assert abs(got - ref[n]) <= MP_TOL * scale, (k, j, n, got, ref[n])
                    assert abs(a_np[k][n].reshape(-1)[j] - float(ref[n])) <= 8 * SQRT_EPS * float(scale)


@pytest.mark.parametrize("name", NAMES)
def test_a_coefficient_series_sums_to_grad_log_cf(name):
    """Theorem 1's premise, ``d log phi / d theta = sum_n a_n (i w)**n``: at ``|w| = 0.01 / R``
    (R = |mean| + 3 sd, well inside the radius of convergence) the order-8 partial sum leaves a
    remainder below ~1e-18 relative, so it must equal ``grad_log_cf`` within ``8 sqrt(eps)``."""
    cls = FAMILIES[name]
    need(is_factorized(name) and hasattr(cls, "_a"), f"{name}: theorem 1 coefficients not defined")
    d = instance(name)
    R = np.abs(d.mean()) + 3 * np.sqrt(d.variance()) + 1e-3
    w = 0.01 / R * np.linspace(-1, 1, d.event_size).reshape(d.event_shape)
    a = d.a_coefficients(8)
    g = d.grad_log_cf(w)
    for k in a:
        series = sum(a[k][n] * (1j * w) ** n for n in range(9))
        assert g[k].shape == series.shape
        assert np.abs(g[k] - series).max() <= 8 * SQRT_EPS * max(1.0, np.abs(series).max())


def _quad_pieces(d, j):
    lo, hi = d.support
    th = mp_theta(d, j)
    pts = [mpmath.mpf(p) for p in type(d)._quad_points(MP, **th)]
    return th, [mpmath.mpf(lo) if math.isfinite(lo) else -mpmath.inf, *sorted(pts),
                mpmath.mpf(hi) if math.isfinite(hi) else mpmath.inf]


QUAD_DPS = 20


@pytest.mark.parametrize("name", NAMES)
def test_log_cf_matches_quadrature(name):
    """``exp(mp_log_mgf(i w))`` equals ``mpmath.quad`` of ``e^{i w z} p(z)`` over the pieces given by
    ``_quad_points`` (one coordinate, dps 20): tolerance ``max(10 * quad's error estimate,
    10**(-dps + 3))``.  The float64 ``log_cf`` agrees within ``8 sqrt(eps)``."""
    d = instance(name)
    need(is_factorized(name) and not d.discrete and hasattr(d, "_quad_points"), f"{name}: not a density family")
    need(has_density(d), f"{name} has no density")
    cls = type(d)
    sd = float(np.sqrt(d.variance().reshape(-1)[0]))
    w = 0.7 / sd
    with mpmath.workdps(QUAD_DPS):
        th, pieces = _quad_pieces(d, 0)
        f = lambda z: mpmath.exp(mpmath.mpc(0, w) * z + cls.mp_logpdf(z, **th))
        val, err = mpmath.quad(f, pieces, error=True)
        ref = mpmath.exp(cls.mp_log_mgf(mpmath.mpc(0, w), **th))
        assert abs(val - ref) <= max(10 * err, 10.0 ** (-QUAD_DPS + 3)), (val, ref, err)
        omega = np.zeros(d.event_size)
        omega[0] = w
        lcf = complex(d.log_cf(omega.reshape(d.event_shape)))
        assert abs(np.exp(lcf) - complex(val)) <= 8 * SQRT_EPS


@pytest.mark.parametrize("name", NAMES)
def test_mgf_strip_matches_quadrature(name):
    """Inside the declared strip ``_mgf_strip`` (optional hook used by the oracle), at real ``c``
    halfway to each finite edge (or at ``+-1/sd`` where the strip is unbounded), ``exp(mp_log_mgf(c))``
    equals ``mpmath.quad`` of ``e^{cz} p(z)`` (dps 20, tolerance ``max(10 x error estimate,
    10**(-dps + 3))`` relative)."""
    cls = FAMILIES[name]
    d = instance(name)
    need(is_factorized(name) and hasattr(cls, "_mgf_strip") and not d.discrete, f"{name}: no mgf strip declared")
    need(has_density(d), f"{name} has no density")
    sd = float(np.sqrt(d.variance().reshape(-1)[0]))
    with mpmath.workdps(QUAD_DPS):
        th, pieces = _quad_pieces(d, 0)
        lo, hi = cls._mgf_strip(MP, **th)
        assert lo < 0 < hi
        for c in (lo / 2 if mpmath.isfinite(lo) else mpmath.mpf(-1 / sd),
                  hi / 2 if mpmath.isfinite(hi) else mpmath.mpf(1 / sd)):
            val, err = mpmath.quad(lambda z: mpmath.exp(c * z + cls.mp_logpdf(z, **th)), pieces, error=True)
            ref = mpmath.exp(cls.mp_log_mgf(c, **th))
            assert abs(val - ref) <= max(10 * err, 10.0 ** (-QUAD_DPS + 3) * abs(ref)), (c, val, ref)


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_powers_describe_the_density(name):
    """``_endpoint_powers`` (optional hook used by the oracle): near a finite end of the support
    ``log p`` behaves like ``(p - 1) log t``; the slope of ``log p`` against ``log t`` between
    ``t = 1e-10 sd`` and ``1e-20 sd`` (dps 30) must equal ``p - 1`` up to the next-order term,
    ``O(t / sd) / log(1e10) < 1e-9``."""
    cls = FAMILIES[name]
    d = instance(name)
    need(is_factorized(name) and hasattr(cls, "_endpoint_powers"), f"{name}: no endpoint powers declared")
    sd = mpmath.mpf(float(np.sqrt(d.variance().reshape(-1)[0])))
    with mpmath.workdps(DPS):
        th = mp_theta(d, 0)
        powers = cls._endpoint_powers(MP, **th)
        for edge, p, sign in ((d.support[0], powers[0], 1), (d.support[1], powers[1], -1)):
            if p is None:
                continue
            assert math.isfinite(edge)
            t1, t2 = sd * mpmath.mpf("1e-10"), sd * mpmath.mpf("1e-20")
            l1 = cls.mp_logpdf(edge + sign * t1, **th)
            l2 = cls.mp_logpdf(edge + sign * t2, **th)
            slope = (l2 - l1) / (mpmath.log(t2) - mpmath.log(t1))
            assert abs(slope - (p - 1)) < 1e-9, (edge, slope, p)


@pytest.mark.parametrize("name", NAMES)
def test_moments_match_quadrature(name):
    """``_mean`` / ``_variance`` (mpmath and float64) equal the quadrature moments of the density
    (continuous families: ``mpmath.quad`` over the ``_quad_points`` pieces, dps 20, tolerance
    ``max(10 * error estimate, 10**(-dps + 3))`` relative) or the sums over ``values`` (discrete
    families, exact to the working precision)."""
    d = instance(name)
    need(is_factorized(name), f"{name} is not Factorized (checked in its own test file)")
    need(has_density(d), f"{name} has no density")
    cls = type(d)
    with mpmath.workdps(QUAD_DPS):
        if d.discrete:
            need(hasattr(cls, "values"), f"{name}: support not enumerable")
            th = mp_theta(d, 0)
            pm = [(mpmath.mpf(v), mpmath.exp(cls.mp_logpdf(mpmath.mpf(v), **th))) for v in cls.values]
            m0 = mpmath.fsum(p for _, p in pm)
            m1 = mpmath.fsum(v * p for v, p in pm)
            m2 = mpmath.fsum((v - m1) ** 2 * p for v, p in pm)
            errs = (0, 0, 0)
        else:
            th, pieces = _quad_pieces(d, 0)
            dens = lambda z: mpmath.exp(cls.mp_logpdf(z, **th))
            m0, e0 = mpmath.quad(dens, pieces, error=True)
            m1, e1 = mpmath.quad(lambda z: z * dens(z), pieces, error=True)
            m2, e2 = mpmath.quad(lambda z: (z - m1) ** 2 * dens(z), pieces, error=True)
            errs = (e0, e1, e2)
        tol = lambda e, v: max(10 * e, 10.0 ** (-QUAD_DPS + 3) * max(1, abs(v)))
        assert abs(m0 - 1) <= tol(errs[0], 1)
        mean, var = cls._mean(MP, **th), cls._variance(MP, **th)
        assert abs(mean - m1) <= tol(errs[1], m1), (mean, m1)
        assert abs(var - m2) <= tol(errs[2], m2), (var, m2)
    assert abs(d.mean().reshape(-1)[0] - float(m1)) <= 8 * SQRT_EPS * max(1, abs(float(m1)))
    assert abs(d.variance().reshape(-1)[0] - float(m2)) <= 8 * SQRT_EPS * max(1, abs(float(m2)))


# ----------------------------------------------------------------------------------------------
# broadcasting
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_broadcast_parameter_gets_summed_gradient(name):
    """With the first parameter of shape (3,) and the others scalar, the score and ``grad_log_cf``
    of a scalar parameter are the sums over coordinates of those of the fully expanded instance
    (exact up to summation order: ``8 eps`` times the sum of magnitudes)."""
    cls = FAMILIES[name]
    need(is_factorized(name) and len(cls.parameters) >= 2, f"{name}: nothing to broadcast against")
    full = instance(name)
    first = cls.parameters[0].name
    small = cls(**{k: (v if k == first else v[0]) for k, v in full.params.items()})
    expanded = cls(**{k: (v if k == first else np.full(SIZE, v[0])) for k, v in full.params.items()})
    assert small.event_shape == expanded.event_shape == (SIZE,)
    z = expanded.sample(np.random.default_rng(5), 4)
    checks = []
    if has_density(full):
        checks.append((small.score(z), expanded.score(z)))
        np.testing.assert_allclose(small.log_prob(z), expanded.log_prob(z), rtol=8 * EPS)
    w = 0.3 / (np.abs(expanded.mean()) + 3 * np.sqrt(expanded.variance()) + 1e-3) * np.ones(SIZE)
    checks.append((small.grad_log_cf(w), expanded.grad_log_cf(w)))
    for s_small, s_full in checks:
        for k in full.params:
            if k == first:
                assert s_small[k].shape == s_full[k].shape
                np.testing.assert_allclose(s_small[k], s_full[k], rtol=8 * EPS, atol=0)
            else:
                lead = s_full[k].shape[:-1]
                assert s_small[k].shape == lead
                bound = 8 * EPS * np.abs(s_full[k]).sum(-1)
                assert (np.abs(s_small[k] - s_full[k].sum(-1)) <= bound).all()


# ----------------------------------------------------------------------------------------------
# hypothesis: parameters from the declared typical ranges
# ----------------------------------------------------------------------------------------------
@st.composite
def family_params(draw, name):
    """Parameters for ``name`` from the typical ranges: elementwise parameters scalar or (2,),
    vector parameters of length K in {2, 3}, matrices K x K."""
    cls = FAMILIES[name]
    K = draw(st.sampled_from([2, 3]))
    batch = draw(st.sampled_from([(), (2,)]))
    out = {}
    for p in cls.parameters:
        lo, hi = p.typical
        n = {0: int(np.prod(batch, dtype=int)), 1: K, 2: K}[p.event_ndim] if p.domain.kind == "interval" else K
        if p.log_scale:
            u = draw(st.lists(st.floats(math.log(lo), math.log(hi)), min_size=n, max_size=n))
            vals = np.exp(u)
        else:
            vals = np.array(draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n)))
        if p.domain.kind == "positive-definite":
            angle = draw(st.floats(0, math.pi))
            if K == 2:
                q = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
            else:
                q = np.linalg.qr(np.random.default_rng(int(angle * 1e6)).standard_normal((K, K)))[0]
            c = (q * vals) @ q.T
            out[p.name] = 0.5 * (c + c.T)
        elif p.domain.kind == "simplex":
            out[p.name] = vals / vals.sum()
        elif p.event_ndim == 0:
            out[p.name] = vals.reshape(batch)
        else:
            out[p.name] = vals
    return out


HYP = settings(max_examples=15, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", NAMES)
@HYP
@given(data=st.data())
def test_hypothesis_samples_have_finite_log_prob_and_shaped_scores(name, data):
    """For parameters anywhere in the typical ranges: draws have finite ``log_prob``, and every
    score has the documented shape ``(n, *param_shape)``."""
    theta = data.draw(family_params(name))
    d = FAMILIES[name](**theta)
    seed = data.draw(st.integers(0, 2**32 - 1))
    z = d.sample(np.random.default_rng(seed), 50)
    try:
        lp = d.log_prob(z)
    except NotImplementedError:
        return
    assert lp.shape == (50,)
    assert np.isfinite(lp).all(), (theta, z[~np.isfinite(lp)])
    s = d.score(z)
    assert set(s) == set(d.params)
    for k, v in s.items():
        assert v.shape == expected_score_shape(d, k, (50,)), (k, v.shape)
        assert np.isfinite(v).all()


def _invalid_values(p, good):
    """Values outside the domain of ``p`` (same shape as ``good``), including NaN."""
    bad = []
    nan = np.array(good, dtype=float)
    nan.reshape(-1)[0] = np.nan
    bad.append(nan)
    dom = p.domain
    if dom.kind == "interval":
        for edge, closed, step in ((dom.low, dom.low_closed, -1.0), (dom.high, dom.high_closed, 1.0)):
            if math.isfinite(edge):
                for v in ([edge + step] if closed else [edge, edge + step]):
                    x = np.array(good, dtype=float)
                    x.reshape(-1)[0] = v
                    bad.append(x)
    elif dom.kind == "simplex":
        x = np.array(good, dtype=float)
        x[..., 0] = -0.1
        bad.append(x)
        bad.append(np.array(good) * 2)
    elif dom.kind == "positive-definite":
        bad.append(-np.array(good))
        x = np.array(good, dtype=float)
        x[0, -1] += 1.0
        bad.append(x)
    return bad


@pytest.mark.parametrize("name", NAMES)
@HYP
@given(data=st.data())
def test_hypothesis_invalid_parameters_raise_value_error_naming_them(name, data):
    cls = FAMILIES[name]
    theta = data.draw(family_params(name))
    for p in cls.parameters:
        for bad in _invalid_values(p, theta[p.name]):
            with pytest.raises(ValueError, match=f"'{p.name}'"):
                cls(**{**theta, p.name: bad})
