"""The float64 fast path of the oracle (``dps=None``).

Separable f under families with independent coordinates: ``scipy.integrate.quad_vec`` over the same
pieces (and endpoint transforms) as the mpmath path, integrating ``[g p, g p score_k ...]`` at once.
Discrete families: enumeration in float64.  Anything else runs the mpmath path at 17 digits and
converts, which is slower but keeps one definition of every integral.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy.integrate import quad_vec

from .._math import NP

__all__ = ["float_moments"]

_EPSREL = 1e-13


def _float_pieces(dist, theta, g):
    from ._factorized import coordinate_pieces, peak_points

    with mpmath.workdps(20):
        kinks = getattr(g, "kinks", None) if getattr(g, "has_kinks", True) else None
        pieces = coordinate_pieces(dist, theta, kinks, peak_points(dist, theta, g.mp))
        return [(float(p.a), float(p.b), None if p.left_power is None else float(p.left_power),
                 None if p.right_power is None else float(p.right_power)) for p in pieces]


def _coordinate(dist, theta, g):
    cls = type(dist)
    names = list(theta)

    def base(z):
        lp = cls._logpdf(NP, z, **theta)
        if not np.isfinite(lp) or lp < -740.0:  # the density underflows: f is never evaluated there
            return np.zeros(1 + len(names))
        w = math.exp(lp) * float(g(np.array([z]))[0])
        s = cls._score(NP, z, **theta)
        return np.array([w, *(w * float(s[k]) for k in names)])

    def mp17():
        from ._factorized import _Coordinate

        with mpmath.workdps(17):
            kinks = getattr(g, "kinks", None) if getattr(g, "has_kinks", True) else None
            e, ee, gr, ge = _Coordinate(dist, theta, g.mp, kinks).quad()
            return (np.array([float(e), *(float(gr[k]) for k in names)]),
                    float(max([ee, *ge.values()])))

    pieces = _float_pieces(dist, theta, g)
    if any(lp is not None or rp is not None for _, _, lp, rp in pieces):
        # an endpoint singularity (shape < 1): the score's log term makes Gauss-Kronrod converge
        # slowly in float64; tanh-sinh at 17 digits handles it (and is still fast)
        return mp17()
    # f itself may overflow float64 where f p does not (exp(2z) under Gaussian(9, 9.9): the value
    # is 1.8e93 but the integrand needs exp(2z) beyond z = 355): then the mpmath path at 17 digits
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            total, err = _float_integral(pieces, base, len(names))
    except FloatingPointError:
        return mp17()
    if not np.all(np.isfinite(total)):
        return mp17()
    return total, err


def _float_integral(pieces, base, n_params):
    total = np.zeros(1 + n_params)
    err = 0.0
    for a, b, lp, rp in pieces:
        if lp is not None or rp is not None:
            p = lp if lp is not None else rp
            inv = 1.0 / p

            def fun(u, a=a, b=b, inv=inv, left=lp is not None):
                if u <= 0:
                    return np.zeros(1 + n_params)
                z = a + u**inv if left else b - u**inv
                return base(z) * (u ** (inv - 1) * inv)

            lo, hi = 0.0, (b - a) ** p
        else:
            fun, lo, hi = base, a, b
        val, e = quad_vec(fun, lo, hi, epsrel=_EPSREL, epsabs=0.0, limit=400)
        total += val
        err += e
    return total, err


def float_moments(dist, f, method, with_grad, convention):
    from . import _kind

    kind = _kind(dist)
    if kind == "discrete":
        from ._discrete import discrete_moments

        E, E_err, g, ge, conv = discrete_moments(dist, f, "enumerate", convention or "reference-last", mp_mode=False)
        return float(E), float(E_err), {k: _squeeze(v) for k, v in g.items()}, {k: _squeeze(v) for k, v in ge.items()}, "enumerate"
    sep = f.separable(dist.event_size) if kind == "factorized" else None
    if sep is None or method not in ("auto", "quad"):
        from . import expectation, gradient

        m = "auto" if method in ("auto", None) else method
        if with_grad:
            r = gradient(dist, f, dps=17, method=m, convention=convention)
            return (float(r.expectation.value), float(r.expectation.error), r.to_float(),
                    {k: _tofloat(v) for k, v in r.errors.items()}, r.method + "@17digits")
        r = expectation(dist, f, dps=17, method=m)
        return float(r.value), float(r.error), {}, {}, r.method + "@17digits"
    from ._factorized import mp_num

    with mpmath.workdps(17):
        a, b = float(mp_num(sep.a)), float(mp_num(sep.b))
    d = dist.event_size
    names = [p.name for p in dist.parameters]
    cache, per = {}, []
    for j in range(d):
        theta = dist.coordinate(j)
        gj = sep.g(j)
        key = (tuple(theta.items()), getattr(gj, "key", id(gj)))
        if key not in cache:
            cache[key] = _coordinate(dist, theta, gj)
        per.append(cache[key])
    vals = np.array([p[0] for p in per])  # (d, 1 + n_params)
    errs = np.array([p[1] for p in per])
    if sep.kind == "sum":
        E = a + b * vals[:, 0].sum()
        E_err = abs(b) * errs.sum()
        g = {k: b * vals[:, 1 + i] for i, k in enumerate(names)}
    else:
        E = a + b * np.prod(vals[:, 0])
        E_err = abs(b) * errs.sum() * max(1.0, abs(np.prod(vals[:, 0])))
        g = {}
        for i, k in enumerate(names):
            others = np.array([np.prod(np.delete(vals[:, 0], j)) for j in range(d)])
            g[k] = b * vals[:, 1 + i] * others
    shape = dist.event_shape
    out, oerr = {}, {}
    for k in names:
        arr = dist._reduce_to_param(k, g[k].reshape(shape), 0)
        out[k] = float(arr) if arr.ndim == 0 else arr
        e = dist._reduce_to_param(k, np.full(shape, abs(b) * errs.max()), 0)
        oerr[k] = float(e) if e.ndim == 0 else e
    return float(E), float(E_err), out, oerr, "quad"


def _tofloat(v):
    from ._results import to_float

    return to_float(v)


def _squeeze(v):
    v = np.asarray(v, dtype=float)
    return float(v) if v.ndim == 0 else v
