"""Shape derivative of the regularised incomplete gamma function and the implicit
reparameterisation derivative ``dz/dk`` of a unit-scale Gamma variate (float64).

Notation: ``P(k, x)`` is the regularised lower incomplete gamma function, ``p(x; k) =
x^(k-1) e^(-x) / Gamma(k)`` the Gamma(k, 1) density, ``psi`` the digamma function.  Differentiating
``P(k, x) = int_0^x p(t; k) dt`` under the integral sign (``d log p / dk = log t - psi(k)``) and
dividing by ``p(x; k)`` gives two equivalent integrals for ``dz/dk = -(dP/dk) / p``::

    dz/dk = -int_0^x (log t - psi(k)) p(t; k) dt / p(x; k)          (lower form)
          = +int_x^inf (log t - psi(k)) p(t; k) dt / p(x; k)        (upper form)

(they agree because ``E[log z] = psi(k)``).  The integrand of the lower form has one sign when
``x <= exp(psi(k))`` and that of the upper form when ``x >= exp(psi(k))``: evaluated on its own side
each is an integral of a positive function, so nothing cancels.  In the variable ``t = x e^(-+u)``
the ratio ``p(t)/p(x)`` becomes ``exp(-+k u - x expm1(-+u))``::

    upper:  dz/dk = x int_0^inf (log x - psi(k) + u) exp(k u - x expm1(u)) du
    lower:  dz/dk = x int_0^inf (psi(k) - log x + u) exp(-k u - x expm1(-u)) du

two log-concave integrands (times a positive linear factor) that Gauss--Legendre quadrature on
``[0, U]`` integrates to full precision, ``U`` being where the exponent has dropped by
:data:`_TAIL` (found by Newton's method from the right, where it converges monotonically).

For ``x <= min(1, exp(psi(k + 1)))`` (small ``x``, in particular every small-shape case) the power
series ``P = x^k e^(-x) sum_n x^n / Gamma(k + n + 1)`` differentiated term by term gives, with
``tau_n = x^n / ((k+1)...(k+n))`` and ``H'_n = sum_{j=1..n} 1/(k+j)``::

    dz/dk = (x / k) [ sum_{n>=1} tau_n H'_n + (psi(k + 1) - log x) sum_{n>=0} tau_n ]

whose terms are all non-negative there (the ``1/k^2`` parts of ``d/dk (1/k)`` and ``psi(k)``
cancel exactly before any rounding, through ``psi(k) = psi(k + 1) - 1/k``).
"""

from __future__ import annotations

import numpy as np
from scipy import special as sc

__all__ = ["gamma_dz_dshape_std", "gammainc_dshape_std", "log_gamma_pdf_std", "log_minus_digamma"]

#: the quadrature integrates the exponent down to ``max - _TAIL`` (exp(-45) ~ 3e-20)
_TAIL = 45.0
#: Gauss--Legendre nodes of the one-panel rules
_NODES = 64
#: terms of the power series (x <= 1: tau_n <= 1/n!, 1/24! ~ 2e-24)
_SERIES_TERMS = 24

_GL_X, _GL_W = np.polynomial.legendre.leggauss(_NODES)
_GL_X = 0.5 * (_GL_X + 1.0)  # nodes on [0, 1]
_GL_W = 0.5 * _GL_W

# Bernoulli-number coefficients of log k - psi(k) - 1/(2k) = sum B_2n / (2n k^2n)
_LMD = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760)
# Stirling remainder mu(k) = lgamma(k) - (k - 1/2) log k + k - log(2 pi)/2 = sum B_2n / (2n(2n-1) k^(2n-1))
_STIR = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360)
_ASYMPTOTIC_FROM = 10.0


def log_minus_digamma(k):
    """``log(k) - psi(k)`` without cancellation at large ``k`` (positive, ~ ``1/(2k)``)."""
    k = np.asarray(k, dtype=float)
    big = k >= _ASYMPTOTIC_FROM
    kb = np.where(big, k, _ASYMPTOTIC_FROM)
    r = (1.0 / kb) ** 2
    s = 0.0
    for c in reversed(_LMD):
        s = s * r + c
    asym = 0.5 / kb + s * r
    ks = np.where(big, 1.0, k)
    direct = np.log(ks) - sc.psi(ks)
    return np.where(big, asym, direct)


def _stirling_mu(k):
    r = (1.0 / k) ** 2
    s = 0.0
    for c in reversed(_STIR):
        s = s * r + c
    return s / k


def _log_ratio(x, k):
    """``log(x / k)``, through ``log1p`` when ``x`` is near ``k``."""
    d = (x - k) / k
    near = np.abs(d) < 0.5
    return np.where(near, np.log1p(np.where(near, d, 0.0)), np.log(x) - np.log(k))


def log_gamma_pdf_std(x, k):
    """``log p(x; k)`` of Gamma(k, 1) for ``x > 0`` (large ``k``: Stirling form, no cancellation)."""
    x = np.asarray(x, dtype=float)
    k = np.asarray(k, dtype=float)
    big = k >= _ASYMPTOTIC_FROM
    kb = np.where(big, k, _ASYMPTOTIC_FROM)
    xb = np.where(big, x, kb)
    d = (xb - kb) / kb
    # -k (lambda - 1 - log lambda) with lambda = x/k, lambda - 1 - log lambda = d - log1p(d)
    with np.errstate(divide="ignore"):
        expo = -kb * (d - np.log1p(d))
        asym = -np.log(xb) + 0.5 * np.log(kb / (2 * np.pi)) + expo - _stirling_mu(kb)
        ks = np.where(big, 1.0, k)
        xs = np.where(big, 1.0, x)
        direct = (ks - 1) * np.log(xs) - xs - sc.gammaln(ks)
    return np.where(big, asym, direct)


def _newton_right(phi, dphi, u, iters=8):
    """Root of a concave decreasing ``phi`` by Newton's method from a point right of it."""
    for _ in range(iters):
        f = phi(u)
        g = dphi(u)
        ok = (f < 0) & (g < 0)  # a zero slope only where u has rounded onto the maximum: keep u
        u = np.where(ok, u - f / np.where(ok, g, -1.0), u)
    return u


def _series(x, k):
    lx = np.log(x)
    c = sc.psi(k + 1.0) - lx
    tau = np.ones_like(x)
    S = np.ones_like(x)
    A = np.zeros_like(x)
    H = np.zeros_like(x)
    for n in range(1, _SERIES_TERMS + 1):
        kn = k + n
        tau = tau * x / kn
        H = H + 1.0 / kn
        S = S + tau
        A = A + tau * H
    return (x / k) * (A + c * S)


def _quad_upper(x, k, c):
    """x int_0^U (c + u) exp(k u - x expm1(u)) du for x >= exp(psi(k)), c = log x - psi(k) >= 0."""
    d = k - x
    # k u - x expm1(u) <= d u - x u^2/2, which is -TAIL at the positive root U below
    r = np.hypot(d, np.sqrt(2 * x * _TAIL))
    U = np.where(d < 0, 2 * _TAIL / (r - np.minimum(d, 0.0)), (d + r) / x)
    U = _newton_right(lambda u: k * u - x * np.expm1(u) + _TAIL, lambda u: k - x * np.exp(u), U)
    u = U[..., None] * _GL_X
    f = (c[..., None] + u) * np.exp(k[..., None] * u - x[..., None] * np.expm1(u))
    return x * U * (f @ _GL_W)


def _quad_lower(x, k, c):
    """x int_0^U (c + u) exp(-k u - x expm1(-u)) du for x <= exp(psi(k)), c = psi(k) - log x >= 0."""
    U = (_TAIL + x) / k  # -k u - x expm1(-u) <= -k u + x
    U = np.minimum(U, _TAIL / (k - x))  # ... <= -(k - x) u as well (x < k here)
    U = _newton_right(lambda u: -k * u - x * np.expm1(-u) + _TAIL, lambda u: -k + x * np.exp(-u), U)
    u = U[..., None] * _GL_X
    f = (c[..., None] + u) * np.exp(-k[..., None] * u - x[..., None] * np.expm1(-u))
    return x * U * (f @ _GL_W)


def gamma_dz_dshape_std(x, k):
    """``dz/dk`` at ``z = x`` for Gamma(k, 1); ``x`` in [0, inf], ``k`` > 0 (validated by the caller),
    both float64 arrays of one shape."""
    x, k = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(k, dtype=float))
    out = np.empty(x.shape)
    zero = x == 0
    inf = np.isinf(x)
    out[zero] = 0.0
    out[inf] = np.inf
    fin = ~(zero | inf)
    xf, kf = x[fin], k[fin]
    res = np.empty(xf.shape)
    # log x - psi(k) = log(x/k) + (log k - psi(k))
    c_up = _log_ratio(xf, kf) + log_minus_digamma(kf)
    ser = (xf <= 1.0) & (np.log(xf) <= sc.psi(kf + 1.0))
    up = ~ser & (c_up >= 0)
    lo = ~ser & ~up
    if ser.any():
        res[ser] = _series(xf[ser], kf[ser])
    if up.any():
        res[up] = _quad_upper(xf[up], kf[up], c_up[up])
    if lo.any():
        res[lo] = _quad_lower(xf[lo], kf[lo], -c_up[lo])
    out[fin] = res
    return out


def gammainc_dshape_std(k, x):
    """``dP(k, x)/dk = -p(x; k) dz/dk`` (<= 0), float64 arrays of one shape, ``x`` in [0, inf]."""
    x, k = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(k, dtype=float))
    out = np.zeros(x.shape)
    fin = (x > 0) & np.isfinite(x)
    dz = gamma_dz_dshape_std(x[fin], k[fin])
    out[fin] = -np.exp(log_gamma_pdf_std(x[fin], k[fin])) * dz
    return out
