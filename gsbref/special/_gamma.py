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
the ratio ``p(t)/p(x)`` becomes ``exp(g(u))``::

    upper:  dz/dk = x int_0^inf (log x - psi(k) + u) exp(g(u)) du,  g(u) = k u - x expm1(u)
    lower:  dz/dk = x int_0^inf (psi(k) - log x + u) exp(g(u)) du,  g(u) = -k u - x expm1(-u)

with ``g`` concave and ``g(0) = 0``; on the side where each form is used ``max g`` is 0 or (upper form,
``exp(psi(k)) <= x < k``) below about ``1/(8k)``.

**Quadrature.**  One 24-point Gauss--Legendre rule on ``[0, U]``, ``U`` right of the point where
``g = -T``, ``T = 40`` (the neglected tail is of relative size about ``e^-40 ~ 4e-18``).  ``U`` comes
from an algebraic bound that lies right of that point (``g(u) <= (k - x) u - x u^2/2`` and
``x expm1(u) = T + k u`` for the upper form; ``e^-u >= (2 - u)/(2 + u)`` for the lower form) and one
Newton step, which from the right of a concave function's level crossing stays right of it.
On that interval the integrand falls by ``e^40`` with a shape between exponential, Gaussian and
double exponential; measured against the former 64-node rule on 1e5 random (shape, quantile) pairs
over shapes 1e-4 ... 1e5, 16 nodes give maximum relative error 6e-8, 20 nodes 5e-11, 22 nodes 1e-12
and 24 nodes the rounding level (4e-14).  The nodes are evaluated in blocks of :data:`_BLOCK`
elements so that the work arrays stay in cache.

**Series.**  The power series ``P = x^k e^(-x) sum_n x^n / Gamma(k + n + 1)`` differentiated term
by term gives, with ``tau_n = x^n / ((k+1)...(k+n))`` and ``H'_n = sum_{j=1..n} 1/(k+j)``::

    dz/dk = (x / k) [ sum_{n>=1} tau_n H'_n + c sum_{n>=0} tau_n ],  c = psi(k + 1) - log x,

whose terms are all non-negative for ``c >= 0``, i.e. ``x <= exp(psi(k + 1))`` (the ``1/k^2``
parts of ``d/dk (1/k)`` and ``psi(k)`` cancel exactly before any rounding, through ``psi(k) =
psi(k + 1) - 1/k``).  After term ``n``, with ``rho = x / (k + n + 1) < 1``, ``tau_m <= tau_n
rho^(m-n)`` and ``H'_m <= H'_n + (m - n)/(k + n + 1)``, so the remainder is at most ``tau_n rho/(1 -
rho) (H'_n + c + 1/((1 - rho)(k + n + 1)))``; summation stops when that is below ``2^-55`` of the
partial sum.  The series is used where ``c >= 0`` and either ``x <= 1`` or ``k <= 16`` (the terms
needed grow like ``sqrt(k)`` near ``x ~ k``, where the quadrature is cheaper); the upper and lower
quadratures take the rest, on their own sides of ``exp(psi(k))``.  All three are vectorised over
the elements of a region (masks, no per-element Python); when one shape serves all elements (or
each of a few runs or a short period of them, as broadcasting produces) the ``k``-only quantities
are scalars and the series becomes two polynomials in ``x`` (Horner).

Measured accuracy (``tests/test_special.py``, ``docs/results/implicit_accuracy.md``): maximum
relative error 2.3e-14 against the mpmath oracle over shapes 1e-4 ... 1e5 and quantile levels
1e-12 ... 1 - 1e-12 plus far tails.  Larger shapes are not validated: the exponent ``g`` is a
difference of terms of size ``k u`` whose rounding grows with ``k`` (a spot check at ``k = 1e10``,
``x = k (1 - 1e-8)`` gave relative error 4e-12; by ``k ~ 1e16`` the result is meaningless).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import special as sc

__all__ = ["gamma_dz_dshape_std", "gammainc_dshape_std", "log_gamma_pdf_std", "log_minus_digamma"]

#: the quadrature stops where the exponent is ``_TAIL`` below its value at ``u = 0`` (exp(-40) ~ 4e-18)
_TAIL = 40.0
#: Gauss--Legendre nodes of the one-panel rule (see the module docstring for the measured choice)
_NODES = 24
#: elements per block of the quadrature (two work arrays of _NODES x _BLOCK float64 stay in cache)
_BLOCK = 1024
#: above this shape the series serves only x <= 1 (the terms needed grow like sqrt(k) near x ~ k)
_SERIES_MAX_SHAPE = 16.0
#: relative size of the series remainder at which summation stops, and how often it is checked
_SERIES_STOP = 2.0**-55
_SERIES_CHECK = 4
_SERIES_MAX_TERMS = 400
#: least average number of elements per group of equal shapes evaluated with a scalar shape
_GROUP_MIN = 1024
_TINY = np.finfo(float).tiny

_GL_X, _GL_W = np.polynomial.legendre.leggauss(_NODES)
_GL_X = 0.5 * (_GL_X + 1.0)  # nodes on [0, 1]
_GL_W = 0.5 * _GL_W
_GL_WX = _GL_W * _GL_X

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


def _remainder_small(tau, rho, kn1, H, c, A, S):
    """Whether the series remainder after a term ``tau`` is below ``_SERIES_STOP`` of the partial sum
    ``A + c S`` (the bound of the module docstring; ``rho = x / kn1``, ``kn1 = k + n + 1``)."""
    if not np.all(rho < 1):
        return False
    gap = 1.0 - rho
    return bool(np.all(tau * rho * (H + c + 1.0 / (gap * kn1)) <= _SERIES_STOP * gap * (A + c * S)))


def _times_x_over_k(r, x, k):
    """``r x / k`` with one rounding into the subnormal range: ``(x / k) r`` unless ``x / k`` is
    itself below the normal range, then ``(r / k) x``."""
    t = x / k
    sub = t < _TINY
    if sub.any():
        return np.where(sub, np.divide(r, k, out=np.zeros_like(r), where=sub) * x, t * r)
    return t * r


def _series(x, k, c):
    """``(x / k) (sum_{n>=1} tau_n H'_n + c sum_{n>=0} tau_n)`` with ``c = psi(k + 1) - log x >= 0``.

    Per-element ``k``: the terms are summed until the remainder bound holds for every element
    (checked every :data:`_SERIES_CHECK` terms).  One ``k`` for all (a scalar): the series is a pair
    of polynomials in ``x`` with scalar coefficients ``a_n = 1/((k+1)...(k+n))`` and ``a_n H'_n``;
    their degree is where the bound holds at ``max(x)`` with ``c = 0`` (the bound relative to the
    sum grows with ``x`` and falls with ``c``), and they are evaluated by Horner's rule.
    """
    if np.ndim(k) == 0:
        k = float(k)
        xm = float(x.max())
        a_n, h_n = [1.0], [0.0]
        H = A = 0.0
        a = tau = S = 1.0
        for n in range(1, _SERIES_MAX_TERMS + 1):
            inv = 1.0 / (k + n)
            a *= inv
            H += inv
            a_n.append(a)
            h_n.append(a * H)
            tau *= xm * inv
            S += tau
            A += tau * H
            if _remainder_small(tau, xm / (k + n + 1), k + n + 1, H, 0.0, A, S):
                break
        else:  # pragma: no cover - unreachable: x < k + 1 in the series region
            raise RuntimeError("gamma series did not converge")
        PS = np.full(x.shape, a_n[-1])
        PA = np.full(x.shape, h_n[-1])
        for an, hn in zip(a_n[-2::-1], h_n[-2::-1]):
            PS *= x
            PS += an
            PA *= x
            PA += hn
        PA += c * PS
        return _times_x_over_k(PA, x, k)
    tau = np.ones_like(x)
    S = np.ones_like(x)
    A = np.zeros_like(x)
    H = np.zeros_like(k)
    for n in range(1, _SERIES_MAX_TERMS + 1):
        inv = 1.0 / (k + n)
        tau *= x * inv
        H += inv
        S += tau
        A += tau * H
        if n % _SERIES_CHECK == 0 and _remainder_small(tau, x / (k + (n + 1)), k + (n + 1), H, c, A, S):
            return _times_x_over_k(A + c * S, x, k)
    raise RuntimeError("gamma series did not converge")  # pragma: no cover - unreachable by the dispatch


def _newton_step(g, dg):
    """One Newton step ``u - (g + T) / g'`` for a point right of the root of a concave decreasing
    ``g(u) + T`` (the step stays right of the root); points with ``g + T >= 0`` or ``g' >= 0``
    (a bound that rounded onto the root) are kept."""
    ok = (g + _TAIL < 0) & (dg < 0)
    return np.where(ok, -(g + _TAIL) / np.where(ok, dg, -1.0), 0.0)


def _quad(x, k, c, upper):
    """``x int_0^U (c + u) exp(g(u)) du`` by :data:`_NODES`-point Gauss--Legendre on ``[0, U]``, in blocks
    of :data:`_BLOCK` elements (node arrays of shape ``(_NODES, block)`` in reused work buffers that stay
    in cache); ``g`` the upper or the lower exponent of the module docstring."""
    out = np.empty(x.shape)
    kk = np.broadcast_to(k, x.shape)
    ubuf = np.empty((_NODES, min(_BLOCK, x.size)))
    ebuf = np.empty_like(ubuf)
    for i in range(0, x.size, _BLOCK):
        s = slice(i, i + _BLOCK)
        xb, kb, cb = x[s], kk[s], c[s]
        m = xb.size
        u, e = ubuf[:, :m], ebuf[:, :m]
        d = kb - xb
        if upper:
            # g(u) = k u - x expm1(u) <= d u - x u^2 / 2, which reaches -T at Uq; x expm1(u1) = T + k Uq
            # gives g(u1) <= -T if u1 <= Uq: both lie right of the root, and so does a Newton step
            r = np.hypot(d, np.sqrt(2.0 * _TAIL) * np.sqrt(xb))
            U = np.where(d < 0, _TAIL / (0.5 * r - 0.5 * np.minimum(d, 0.0)), (np.maximum(d, 0.0) + r) / xb)
            U = np.minimum(U, np.log1p((_TAIL + kb * U) / xb))
            em = np.expm1(U)
            U = U + _newton_step(kb * U - xb * em, kb - xb * (em + 1.0))
            np.multiply(_GL_X[:, None], U, out=u)
            np.expm1(u, out=e)
        else:
            # g(u) = -k u - x expm1(-u) <= -d u - x u^2 / (2 + u)  (as e^-u >= (2 - u)/(2 + u)),
            # which reaches -T at the positive root of k u^2 + (2 d - T) u - 2 T
            b = 2.0 * d - _TAIL
            r = np.hypot(b, np.sqrt(8.0 * _TAIL) * np.sqrt(kb))
            U = np.where(b > 0, 4.0 * _TAIL / (np.maximum(b, 0.0) + r), (r - np.minimum(b, 0.0)) / (2.0 * kb))
            em = np.expm1(-U)
            U = U + _newton_step(-kb * U - xb * em, xb * (em + 1.0) - kb)
            np.multiply(_GL_X[:, None], -U, out=u)  # u holds -u here
            np.expm1(u, out=e)
        e *= xb
        u *= kb
        np.subtract(u, e, out=e)  # k u - x expm1(u), resp. -k u - x expm1(-u)
        np.exp(e, out=e)
        out[s] = xb * U * (cb * (_GL_W @ e) + U * (_GL_WX @ e))
    return out


def _take(a, idx):
    """The elements ``idx`` of an array (all for ``idx is None``); a scalar stands for all."""
    return a if idx is None or np.ndim(a) == 0 else a.take(idx)


def _dz_dk(x, k):
    """``dz/dk`` for 1-d ``x`` (finite, > 0) and ``k`` (> 0, a scalar or of ``x``'s shape): region dispatch."""
    lx = np.log(x)
    # c = log x - psi(k) = log(x / k) + (log k - psi(k)), log(x / k) through log1p when x ~ k
    near = (x >= 0.5 * k) & (x <= 2.0 * k)
    d = np.divide(x - k, k, out=np.zeros(x.shape), where=near)
    c = np.where(near, np.log1p(d), lx - np.log(k))
    c += log_minus_digamma(k)
    low = c < 0
    # the series has non-negative terms where c_ser = psi(k + 1) - log x >= 0
    psi1 = sc.psi(k + 1.0)
    cser_all = psi1 - lx
    ser = (cser_all >= 0) & ((x <= 1.0) | (k <= _SERIES_MAX_SHAPE))
    up = ~(ser | low)
    nser, nup = np.count_nonzero(ser), np.count_nonzero(up)
    nlow = x.size - nser - nup
    res = np.empty(x.shape)
    for count, sel, region in ((nser, ser, "series"), (nup, up, "upper"), (nlow, ~(ser | up), "lower")):
        if count == 0:
            continue
        idx = None if count == x.size else np.flatnonzero(sel)
        xs, ks, cs = _take(x, idx), _take(k, idx), _take(c, idx)
        if region == "series":
            val = _series(xs, ks, _take(cser_all, idx))
        else:
            val = _quad(xs, ks, cs if region == "upper" else -cs, region == "upper")
        if idx is None:
            return val
        res[idx] = val
    return res


def _shape_groups(k):
    """Split a 1-d array of shapes into ``(selector, shape)`` pairs with one shape each where that is
    cheap to see: all equal; few runs of equal values (``k`` broadcast along a trailing axis); a short
    period (``k`` broadcast along a leading axis, e.g. a Dirichlet concentration).  Otherwise one pair
    with the array itself.  A scalar shape lets the k-only quantities (digamma, the series'
    coefficients) be computed once; groups are kept to at least :data:`_GROUP_MIN` elements on
    average so that the per-call overhead stays small."""
    n = k.size
    if n == 0:
        return [(slice(None), k)]
    change = np.flatnonzero(k[1:] != k[:-1]) + 1
    if change.size == 0:
        return [(slice(None), k[0])]
    most = n // _GROUP_MIN
    if change.size < most:
        edges = [0, *change.tolist(), n]
        return [(slice(i, j), k[i]) for i, j in itertools.pairwise(edges)]
    for p in (np.flatnonzero(k[1:most + 1] == k[0]) + 1).tolist():
        if np.array_equal(k[p:], k[:-p]):
            return [(slice(j, None, p), k[j]) for j in range(p)]
    return [(slice(None), k)]


def gamma_dz_dshape_std(x, k):
    """``dz/dk`` at ``z = x`` for Gamma(k, 1); ``x`` in [0, inf], ``k`` > 0 (validated by the caller),
    float64 arrays that broadcast."""
    x, k = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(k, dtype=float))
    shape = x.shape
    x = x.reshape(-1)
    k = k.reshape(-1)
    out = np.empty(x.shape)
    for sel, kk in _shape_groups(k):
        xs = np.ascontiguousarray(x[sel])
        fin = (xs > 0) & (xs < np.inf)
        if fin.all():
            out[sel] = _dz_dk(xs, kk)
            continue
        res = np.where(xs == 0, 0.0, np.inf)
        if fin.any():
            res[fin] = _dz_dk(xs[fin], kk if np.ndim(kk) == 0 else kk[fin])
        out[sel] = res
    return out.reshape(shape)


def gammainc_dshape_std(k, x):
    """``dP(k, x)/dk = -p(x; k) dz/dk`` (<= 0), float64 arrays of one shape, ``x`` in [0, inf]."""
    x, k = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(k, dtype=float))
    out = np.zeros(x.shape)
    fin = (x > 0) & np.isfinite(x)
    dz = gamma_dz_dshape_std(x[fin], k[fin])
    out[fin] = -np.exp(log_gamma_pdf_std(x[fin], k[fin])) * dz
    return out
