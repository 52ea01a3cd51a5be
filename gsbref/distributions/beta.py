"""Beta with independent coordinates, ``Beta(alpha, beta)`` on (0, 1).

``log phi(w) = log 1F1(alpha; alpha + beta; i w)`` (Kummer's confluent hypergeometric function;
the moment-generating function is ``1F1(alpha; alpha + beta; c)``).  Its parameter gradient is the
termwise derivative of the series ``1F1(a; b; c) = sum_n (a)_n / (b)_n c**n / n!``:
``d/da (a)_n = (a)_n (psi(a + n) - psi(a))`` and likewise for ``b``.

Theorem 1 coefficients: ``a_n = d/dtheta kappa_n / n!`` (``kappa_n`` the cumulants).  They are
computed from the Riccati equation that ``R = d log M / dc`` satisfies (``M = 1F1(a; b; c)`` solves
``c M'' + (b - c) M' - a M = 0``): with ``R = sum_k r_k c**k`` (``r_k = kappa_{k+1} / k!``),
``r_0 = a / b`` and ``(k + b) r_k = r_{k-1} - sum_{i<k} r_i r_{k-1-i}``; the parameter derivatives
follow by differentiating that recurrence.  Unlike the moment -> cumulant recursion, it never
subtracts quantities much larger than the result: for concentrated Betas the cumulants are far
smaller than the raw moments they are computed from (in float64 the moment recursion is off by
2e-5 at n = 8 for Beta(50, 80) and by 400 % for Beta(300, 500); the Riccati form by < 1e-15).

Float64 evaluation of ``1F1`` at complex ``c``: SciPy's ``hyp1f1`` accepts complex ``c`` but is
unreliable there (relative errors of 1e19 for ``a=50, b=130, c=0.5i``, 1e-8 for ``a=0.3, b=0.8,
c=20-20i``), so this module sums the series itself (after Kummer's transformation
``1F1(a; b; c) = e**c 1F1(b - a; b; -c)`` when ``Re c < 0``), with a running rounding-error bound;
where the bound exceeds ``_SERIES_RTOL`` (large ``|c|``, or ``|1F1|`` much smaller than the largest
term) those elements are evaluated with mpmath instead.  In practice the float64 series serves
``|c|`` up to about 10 for typical shapes; beyond, each element costs ~0.1 ms (``log_cf``) or ~5 ms
(``grad_log_cf``) in mpmath.

Sampling: NumPy's beta sampler rounds draws within 1.1e-16 of 1 to exactly 1.0 (for
``Beta(0.05, 0.05)`` that is about 8 % of the draws: float64 cannot represent ``1 - z`` there).
Such draws (and exact zeros) are moved to the nearest float inside (0, 1) so that ``log_prob`` and
``score`` stay finite; ``log(1 - z)`` is then truncated at ``log(2**-53) = -36.7`` for them, which
biases score-function estimates for ``beta`` well below 1 (use :class:`Dirichlet` with K = 2 for a
representation that keeps both ``z`` and ``1 - z`` accurate).

>>> b = Beta(alpha=2.0, beta=3.0)
>>> [round(float(x), 12) for x in (b.mean()[()], b.variance()[()])]
[0.4, 0.04]
>>> bool(abs(b.log_cf(0.7) - np.log(complex(mpmath.hyp1f1(2, 5, 0.7j)))) < 1e-15)
True
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy import special as _sp

from .._backend import call_host, namespace
from .._math import MP, NP
from ._base import POSITIVE, Factorized, Parameter

__all__ = ["Beta"]

_EPS = np.finfo(float).eps
#: bound on the relative rounding error of the float64 series (a worst-case bound, typically
#: ~1e3 times the actual error) above which an element falls back to mpmath
_SERIES_RTOL = 1e-11
#: the float64 series is attempted only for |c| up to this (after Kummer's transformation);
#: beyond it the largest term exceeds the result by about e**|c| / |c|**b
_SERIES_MAX_ABS_C = 40.0
#: precision (decimal digits) of the mpmath fallback for float64 results
_FALLBACK_DPS = 25


# ----------------------------------------------------------------------------------------------
# 1F1(a; b; c) and its partial derivatives in a and b
# ----------------------------------------------------------------------------------------------
def _series_np(a, b, c):
    """Sum ``F = 1F1(a; b; c)``, ``F_a``, ``F_b`` for arrays (``a, b > 0`` real, ``c`` complex,
    ``|c| <= _SERIES_MAX_ABS_C``).  Returns ``F, F_a, F_b, bound`` where ``bound`` bounds the
    rounding error of each sum relative to ``|F|``."""
    a, b, c = np.broadcast_arrays(a, b, c)
    t = np.ones(c.shape, dtype=complex)
    S = t.copy()
    Sa = np.zeros(c.shape, dtype=complex)
    Sb = np.zeros(c.shape, dtype=complex)
    mag = np.ones(c.shape)  # sum of |t_n| (1 + |da_n| + |db_n|)
    da = np.zeros(c.shape)
    db = np.zeros(c.shape)
    absc = np.abs(c)
    n_max = int(2 * np.max(absc, initial=0.0)) + 200
    n = 0
    while True:
        # t_{n+1} = t_n (a + n) / (b + n) c / (n + 1)
        da = da + 1.0 / (a + n)
        db = db - 1.0 / (b + n)
        t = t * ((a + n) / (b + n)) * c / (n + 1)
        n += 1
        S = S + t
        Sa = Sa + t * da
        Sb = Sb + t * db
        at = np.abs(t) * (1.0 + np.abs(da) + np.abs(db))
        mag = mag + at
        # past n > 2|c| the terms shrink at least geometrically with ratio 1/2, so the tail is
        # below 2 |t_n|
        done = (n > 2 * absc) & (at <= 0.25 * _EPS * np.abs(S))
        if done.all() or n >= n_max:
            break
    # each term carries ~3n roundings from its recurrence, plus the summation
    bound = (3.0 * n + 2.0) * _EPS * mag / np.abs(S)
    bound = np.where(done, bound, np.inf)
    return S, Sa, Sb, bound


def _hyp_np(a, b, c, want_grad):
    """float64 ``(log F, F_a / F, F_b / F)`` for ``F = 1F1(a; b; c)``, Kummer-transformed where
    ``Re c < 0``; elements the float64 series cannot deliver to ``_SERIES_RTOL`` go to mpmath."""
    a, b, c = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), np.asarray(c, complex))
    shape = c.shape
    a, b, c = a.ravel(), b.ravel(), c.ravel()
    flip = c.real < 0
    # Kummer: 1F1(a; b; c) = e^c 1F1(b - a; b; -c); then d/da -> -d/da', d/db -> d/da' + d/db
    a2 = np.where(flip, b - a, a)
    c2 = np.where(flip, -c, c)
    logF = np.empty(c.shape, complex)
    ga = np.empty(c.shape, complex)
    gb = np.empty(c.shape, complex)
    use = np.abs(c2) <= _SERIES_MAX_ABS_C
    ok = np.zeros(c.shape, bool)
    if use.any():
        with np.errstate(all="ignore"):
            S, Sa, Sb, bound = _series_np(a2[use], b[use], c2[use])
        good = np.isfinite(bound) & (bound <= _SERIES_RTOL) & (S != 0)
        idx = np.flatnonzero(use)[good]
        S, Sa, Sb = S[good], Sa[good], Sb[good]
        logF[idx] = np.log(S) + np.where(flip[idx], c[idx], 0)
        fa, fb = Sa / S, Sb / S
        ga[idx] = np.where(flip[idx], -fa, fa)
        gb[idx] = np.where(flip[idx], fa + fb, fb)
        ok[idx] = True
    for i in np.flatnonzero(~ok):
        with mpmath.workdps(_FALLBACK_DPS):
            lf, (fa, fb) = _hyp_mp(mpmath.mpf(a[i]), mpmath.mpf(b[i]), mpmath.mpc(c[i]), want_grad)
        logF[i] = complex(lf)
        if want_grad:
            ga[i], gb[i] = complex(fa), complex(fb)
    # principal branch of log F (the Kummer form adds c, whose imaginary part can leave (-pi, pi])
    logF = logF.real + 1j * np.angle(np.exp(1j * logF.imag))
    return logF.reshape(shape), ga.reshape(shape), gb.reshape(shape)


def _hyp_array(M, a, b, c, want_grad):
    """:func:`_hyp_np` for the array namespace of ``M``: the float64 series (with its mpmath
    fallback) runs on the host; the result is converted back."""
    if M is NP:
        return _hyp_np(a, b, c, want_grad)
    return call_host(_hyp_np, a, b, c, want_grad, xp=M.xp)


def _hyp_mp(a, b, c, want_grad=True):
    """mpmath ``(log F, (F_a / F, F_b / F))`` at the working precision.  ``log F`` comes from
    ``mpmath.hyp1f1``; the derivatives from the termwise-differentiated series, summed with enough
    guard digits to absorb the cancellation (Kummer-transformed where ``Re c < 0``)."""
    logF = mpmath.log(mpmath.hyp1f1(a, b, c))
    if not want_grad:
        return logF, (None, None)
    flip = mpmath.re(c) < 0
    a2, c2 = (b - a, -c) if flip else (a, c)
    # the largest term is about e^|c|; start with that many guard digits plus margin, and redo
    # with more if the sum turns out much smaller than its largest term (near a zero of 1F1)
    guard = int(float(abs(c2)) / 2.3) + 15
    while True:
        fa, fb, lost = _grad_series_mp(a2, b, c2, guard)
        if lost <= guard - 10:
            break
        if not math.isfinite(lost) or lost > 10_000:
            raise ZeroDivisionError(f"Beta: the mgf 1F1({a}; {b}; {c}) vanishes; its log-gradient has a pole here")
        guard = int(lost) + 15
    if flip:
        fa, fb = -fa, fa + fb
    return logF, (+fa, +fb)


def _grad_series_mp(a, b, c, guard):
    """``(F_a / F, F_b / F, digits lost to cancellation)`` for ``F = 1F1(a; b; c)``, summed with
    ``guard`` extra digits."""
    target = mpmath.mpf(2) ** (-mpmath.mp.prec - 4)
    with mpmath.extradps(guard):
        a, b, c = mpmath.mpf(a), mpmath.mpf(b), mpmath.mpc(c)
        t = mpmath.mpc(1)
        S, Sa, Sb = mpmath.mpc(1), mpmath.mpc(0), mpmath.mpc(0)
        da = db = mpmath.mpf(0)
        biggest = mpmath.mpf(1)
        n = 0
        while True:
            da += 1 / (a + n)
            db -= 1 / (b + n)
            t = t * (a + n) / (b + n) * c / (n + 1)
            n += 1
            S += t
            Sa += t * da
            Sb += t * db
            size = abs(t) * (1 + abs(da) + abs(db))
            biggest = max(biggest, size)
            # past n > 2|c| the terms shrink at least geometrically (ratio <= 1/2)
            if n > 2 * abs(c) and size <= target * abs(S):
                break
        lost = float(mpmath.log10(biggest / abs(S))) if S != 0 else float("inf")
        return Sa / S, Sb / S, lost


def _cgf_coefficients(M, N, alpha, beta):
    """Taylor coefficients ``r_k`` (k < N) of ``d log M / dc`` and their ``alpha``/``beta``
    derivatives, by the Riccati recurrence of the module docstring (a = alpha, b = alpha + beta)."""
    a = alpha
    b = alpha + beta
    r = [a / b]
    ra = [1 / b]  # partial in a
    rb = [-a / (b * b)]  # partial in b
    for k in range(1, N):
        s = sum(r[i] * r[k - 1 - i] for i in range(k))
        sa = 2 * sum(ra[i] * r[k - 1 - i] for i in range(k))
        sb = 2 * sum(rb[i] * r[k - 1 - i] for i in range(k))
        rk = (r[k - 1] - s) / (k + b)
        r.append(rk)
        ra.append((ra[k - 1] - sa) / (k + b))
        rb.append((rb[k - 1] - sb - rk) / (k + b))
    d_alpha = [x + y for x, y in zip(ra, rb)]
    return r, d_alpha, rb


def _log1m(M, z):
    """``log(1 - z)``.  float64: ``log1p(-z)``.  mpmath: ``log(1 - z)``, because mpf subtraction
    rounds the exact difference (so ``z = 1 - 1e-500`` held exactly at high precision gives
    ``-1151.29...``), whereas ``mpmath.log1p(-z)`` rounds ``1 + x`` at the working precision and
    returns ``-inf`` there."""
    if M.array:
        return M.log1p(-z)
    return M.log(1 - z)


def _mmin(M, x, y):
    return (x + y - M.abs(x - y)) / 2


class Beta(Factorized):
    parameters = (
        Parameter("alpha", POSITIVE, (0.2, 10.0), log_scale=True, doc="first shape (mean alpha / (alpha + beta))"),
        Parameter("beta", POSITIVE, (0.2, 10.0), log_scale=True, doc="second shape"),
    )
    support = (0.0, 1.0)

    def __init__(self, alpha=1.0, beta=1.0):
        self._init(alpha=alpha, beta=beta)

    @staticmethod
    def _logpdf(M, z, alpha, beta):
        if M.array:
            # xlogy keeps the boundary values at their limits (0 * log 0 = 0 for alpha = 1)
            return M.xlogy(alpha - 1, z) + M.xlog1py(beta - 1, -z) - M.betaln(alpha, beta)
        return (alpha - 1) * M.log(z) + (beta - 1) * _log1m(M, z) - M.betaln(alpha, beta)

    @staticmethod
    def _score(M, z, alpha, beta):
        psi_ab = M.digamma(alpha + beta)
        return {
            "alpha": M.log(z) - M.digamma(alpha) + psi_ab,
            "beta": _log1m(M, z) - M.digamma(beta) + psi_ab,
        }

    @staticmethod
    def _log_mgf(M, c, alpha, beta):
        if M is MP:
            return _hyp_mp(alpha, alpha + beta, c, want_grad=False)[0]
        return _hyp_array(M, alpha, alpha + beta, c, want_grad=False)[0]

    @staticmethod
    def _grad_log_mgf(M, c, alpha, beta):
        # F(alpha; alpha + beta; c): d/dalpha = F_a + F_b, d/dbeta = F_b (divided by F)
        if M is MP:
            _, (fa, fb) = _hyp_mp(alpha, alpha + beta, c)
        else:
            _, fa, fb = _hyp_array(M, alpha, alpha + beta, c, want_grad=True)
        return {"alpha": fa + fb, "beta": fb}

    @staticmethod
    def _a(M, n, alpha, beta):
        if n == 0:
            z = 0 * alpha + 0 * beta
            return {"alpha": z, "beta": z}
        _, d_alpha, d_beta = _cgf_coefficients(M, n, alpha, beta)
        return {"alpha": d_alpha[n - 1] / n, "beta": d_beta[n - 1] / n}

    @staticmethod
    def _mean(M, alpha, beta):
        return alpha / (alpha + beta)

    @staticmethod
    def _variance(M, alpha, beta):
        s = alpha + beta
        return alpha * beta / (s * s * (s + 1))

    @staticmethod
    def _sample(rng, n, alpha, beta):
        z = rng.beta(alpha, beta)
        xp = namespace(z)
        # float64 cannot hold 1 - z below 2**-53: round such draws down into the open interval
        # (see the module docstring for what this does to log(1 - z))
        z = xp.where(z >= 1.0, math.nextafter(1.0, 0.0), z)
        return xp.where(z <= 0.0, math.nextafter(0.0, 1.0), z)

    @staticmethod
    def _quad_points(M, alpha, beta):
        m = alpha / (alpha + beta)
        s = M.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
        # mean -+ 4 sd, kept inside (m/2, (1+m)/2) so the points stay interior for any shapes
        return [m - _mmin(M, 4 * s, m / 2), m, m + _mmin(M, 4 * s, (1 - m) / 2)]

    @staticmethod
    def _endpoint_powers(M, alpha, beta):
        """The density behaves like ``z^(alpha - 1)`` at 0 and ``(1 - z)^(beta - 1)`` at 1."""
        return (alpha, beta)

    @staticmethod
    def _mgf_strip(M, alpha, beta):
        """E[exp(c z)] = 1F1(alpha; alpha + beta; c) is finite for every c (bounded support)."""
        return (-M.inf, M.inf)

    @staticmethod
    def _cdf(z, alpha, beta):
        return _sp.betainc(alpha, beta, np.clip(np.asarray(z, dtype=float), 0.0, 1.0))
