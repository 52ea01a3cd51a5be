"""Closed forms through the moment generating function, for exponential-polynomial integrands.

If a coordinate's term is ``g(x) = sum_t coef_t x^k_t exp(c_t x)`` (polynomials, ``exp``, ``sin``,
``cos`` of affine arguments, and products of these), then with ``M(c) = E[exp(c z)]``

    ``E[g(z)] = sum_t coef_t M^(k_t)(c_t)``   and
    ``dE[g(z)]/dtheta = sum_t coef_t d^k_t/dc^k_t [M(c) dlogM(c)/dtheta] at c = c_t``

where ``log M`` and its parameter gradient are the family's closed forms (the same ones that give
the characteristic function, ``log phi(w) = log M(i w)``).  Terms with ``k = 0`` are exact
formulas; ``k >= 1`` take ``mpmath.diff`` of the analytic function ``M`` in ``c`` (mpmath raises the
working precision itself, so the result is accurate to the working precision).

The formulas require ``c`` inside the strip where ``M`` exists (``Re c < 1/scale`` for the Gamma,
``|Re c| < 1/scale`` for the Laplace, ...): outside it ``E[f]`` is infinite and a ``ValueError``
says so.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mp

from .._math import MP

from ._factorized import mp_num

__all__ = ["closed_moments", "closed_available"]


def closed_available(dist, f) -> bool:
    from ..distributions._base import Factorized

    if not isinstance(dist, Factorized) or dist.discrete or not hasattr(type(dist), "_log_mgf"):
        return False
    sep = f.separable(dist.event_size)
    if sep is None:
        return False
    with mpmath.workdps(20):
        return all(sep.g(j).exp_poly() is not None for j in range(min(dist.event_size, 64)))


def _check_strip(cls, c, theta):
    if not hasattr(cls, "_mgf_strip"):
        return
    lo, hi = cls._mgf_strip(MP, **theta)
    re = mpmath.re(c)
    if not (lo < re < hi):
        raise ValueError(
            f"{cls.__name__}({', '.join(f'{k}={mpmath.nstr(v, 8)}' for k, v in theta.items())}): "
            f"E[exp(c z)] is infinite for Re(c) = {mpmath.nstr(re, 8)} (the moment generating function "
            f"exists for {mpmath.nstr(lo, 8)} < Re(c) < {mpmath.nstr(hi, 8)}), so E[f] is infinite"
        )


def _coordinate(cls, theta, terms, with_grad):
    th = {k: mpmath.mpmathify(v) for k, v in theta.items()}
    names = list(th)

    def M(c):
        return mpmath.exp(cls._log_mgf(MP, c, **th))

    def MG(c, k):
        return M(c) * cls._grad_log_mgf(MP, c, **th)[k]

    E = mp.zero
    G = {k: mp.zero for k in names}
    for coef, kk, c in terms:
        _check_strip(cls, c, th)
        if kk == 0:
            E += coef * M(c)
            if with_grad:
                for k in names:
                    G[k] += coef * MG(c, k)
        else:
            E += coef * mpmath.diff(M, c, kk)
            if with_grad:
                for k in names:
                    G[k] += coef * mpmath.diff(lambda x, k=k: MG(x, k), c, kk)
    # the expectation of a real f is real; the imaginary part is rounding of complex terms
    re = lambda v: mpmath.re(v) if isinstance(v, mpmath.mpc) else v
    return re(E), {k: re(v) for k, v in G.items()}


def closed_moments(dist, f, with_grad=True):
    cls = type(dist)
    d = dist.event_size
    sep = f.separable(d)
    a, b = mp_num(sep.a), mp_num(sep.b)
    names = [p.name for p in dist.parameters]
    cache = {}
    per = []
    for j in range(d):
        theta = dist.coordinate(j)
        gj = sep.g(j)
        terms = gj.exp_poly()
        key = (tuple(theta.items()), tuple((mpmath.nstr(t[0], mp.dps), t[1], mpmath.nstr(t[2], mp.dps)) for t in terms))
        if key not in cache:
            cache[key] = _coordinate(cls, theta, terms, with_grad)
        per.append(cache[key])
    shape = dist.event_shape
    eps = mpmath.mpf(2) ** (-mp.prec)
    if sep.kind == "sum":
        E = a + b * mpmath.fsum(p[0] for p in per)
        grads = {k: np.array([b * p[1][k] for p in per], dtype=object).reshape(shape) for k in names} if with_grad else {}
    else:
        es = [p[0] for p in per]
        E = a + b * mpmath.fprod(es)
        grads = {}
        if with_grad:
            for k in names:
                grads[k] = np.array([b * p[1][k] * mpmath.fprod(es[:j] + es[j + 1:]) for j, p in enumerate(per)],
                                    dtype=object).reshape(shape)
    # closed forms are exact up to rounding (a few ulps per term and per mpmath.diff)
    E_err = eps * 64 * d * max(abs(E), mp.one)
    gerrs = {k: np.vectorize(lambda v: eps * 64 * d * max(abs(v), mp.one), otypes=[object])(g) for k, g in grads.items()}
    return E, E_err, grads, gerrs
