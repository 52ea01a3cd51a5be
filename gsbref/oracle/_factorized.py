"""Exact E[f] and its gradient for families with independent coordinates (``Factorized``).

Two independent ways, both by quadrature (tanh-sinh; Gauss-Hermite for nested Gaussian
coordinates) at the caller's precision:

``"quad"``  the gradient as the integral of ``f * dp/dtheta = f * p * score``, computed together with
            ``E[f]`` on the same nodes;
``"diff"``  numerical differentiation of ``theta -> E_theta[f]``: the integrals of ``f p(theta +- h)``
            for every parameter are computed in the same pass as ``E[f]`` (the costly values of f
            are shared) at doubled working precision, and the central difference is formed from
            them (see :func:`diff_steps` for the step and its error budget).  It uses the density
            only, never the score formula.

Separable ``f`` (``a + b sum_j g_j(z_j)`` or ``a + b prod_j g_j(z_j)``) reduces to one-dimensional
integrals per coordinate (identical coordinates are integrated once); any other ``f`` over up to
``MAX_NESTED`` coordinates is integrated by nested quadrature.
"""

from __future__ import annotations

from typing import Any, Callable

import mpmath
import numpy as np
from mpmath import mp

from .._math import MP

from ..distributions._base import Factorized
from ._quad import Piece, vquad

__all__ = ["coordinate_pieces", "peak_points", "factorized_moments", "MAX_NESTED", "mp_num"]

MAX_NESTED = 3


def mp_num(v: Any):
    """A number, or a zero-argument callable returning one, as an mpmath number."""
    if callable(v):
        v = v()
    return mpmath.mpmathify(v)


def peak_points(dist: Factorized, theta: dict, g: Callable) -> list:
    """Split points around the maximum of ``|g(z)| p(z)`` when it lies outside the distribution's
    bulk (the span of the family's quadrature points): for exponential-type g the integrand's mass
    can sit many standard deviations out (Gaussian(9, 9.9) with exp(2z) peaks at 9 + 2 * 9.9^2,
    20 sd away), where pieces laid out around the bulk are too wide for the quadrature to resolve it.

    A coarse scan (15 digits) over points spreading geometrically from the bulk, and towards finite
    ends of the support, locates the peak; the peak and its two scan neighbours are returned.  Empty
    when the peak lies inside the bulk (the common case: the pieces are then unchanged)."""
    cls = type(dist)
    lo, hi = (mpmath.mpmathify(v) for v in cls.support)
    with mpmath.workdps(15):
        th = {k: mpmath.mpmathify(v) for k, v in theta.items()}
        pts = [mpmath.mpmathify(p) for p in cls._quad_points(MP, **th)]
        pts = [p for p in pts if lo < p < hi]
        if not pts:
            return []
        a, b = min(pts), max(pts)
        w = (b - a) if b > a else max(abs(a), mp.one)
        cands = {a, b, (a + b) / 2}
        for m in (2.0 ** j for j in range(-2, 11)):
            cands.update((a - m * w, b + m * w))
        for j in range(1, 60):
            if mpmath.isfinite(lo):
                cands.add(lo + (a - lo) * mpmath.ldexp(1, -j))
            if mpmath.isfinite(hi):
                cands.add(hi - (hi - b) * mpmath.ldexp(1, -j))
        scan = []
        for z in sorted(c for c in cands if lo < c < hi):
            try:
                v = abs(g(z))
                h = mpmath.log(v) + cls._logpdf(MP, z, **th) if v > 0 else -mp.inf
            except (ValueError, ZeroDivisionError, OverflowError):
                h = -mp.inf
            scan.append((z, h if mpmath.isfinite(h) else -mp.inf))
        if not scan:
            return []
        i = max(range(len(scan)), key=lambda j: scan[j][1])
        if scan[i][1] == -mp.inf or a <= scan[i][0] <= b:
            return []
        if (i == 0 and mpmath.isfinite(lo)) or (i == len(scan) - 1 and mpmath.isfinite(hi)):
            return []  # the mass piles up against a finite end: the end piece (and its transform) owns it
        return [scan[j][0] for j in (i - 1, i, i + 1) if 0 <= j < len(scan)]


def coordinate_pieces(dist: Factorized, theta: dict, kinks: Callable | None = None,
                      extra: list | None = None) -> list[Piece]:
    """Split one coordinate's support into quadrature pieces: at the family's points (mode, mean,
    tails), at the kinks of the integrand (``kinks(lo, hi)`` returns points in ``(lo, hi)``), at
    ``extra`` points (e.g. :func:`peak_points`), with endpoint transforms where the density is
    singular at a finite end of the support."""
    cls = type(dist)
    lo, hi = (mpmath.mpmathify(v) for v in cls.support)
    th = {k: mpmath.mpmathify(v) for k, v in theta.items()}
    pts = [mpmath.mpmathify(p) for p in cls._quad_points(MP, **th)]
    pts = [p for p in pts if lo < p < hi]
    pts += [mpmath.mpmathify(p) for p in (extra or ()) if lo < p < hi]
    if kinks is not None and pts:
        span = max(pts) - min(pts)
        span = span if span > 0 else mp.one
        klo = max(lo, min(pts) - 20 * span)
        khi = min(hi, max(pts) + 20 * span)
        pts += [mpmath.mpmathify(k) for k in kinks(klo, khi) if klo < k < khi]
    pts = sorted(set(pts))
    # drop points closer than a relative 1e-6 to each other (they would make tiny pieces)
    kept: list = []
    for p in pts:
        if not kept or abs(p - kept[-1]) > mpmath.mpf("1e-6") * max(abs(p), mp.one):
            kept.append(p)
    edges = [lo, *kept, hi]
    powers = cls._endpoint_powers(MP, **th) if hasattr(cls, "_endpoint_powers") else (None, None)
    pieces = []
    for i in range(len(edges) - 1):
        left = powers[0] if (i == 0 and mpmath.isfinite(lo) and powers[0] is not None and powers[0] < 1) else None
        right = (powers[1] if (i == len(edges) - 2 and mpmath.isfinite(hi) and powers[1] is not None
                               and powers[1] < 1 and left is None) else None)
        pieces.append(Piece(edges[i], edges[i + 1], left, right))
    if len(pieces) == 1 and powers[0] is not None and powers[1] is not None and powers[0] < 1 and powers[1] < 1:
        mid = (lo + hi) / 2
        pieces = [Piece(lo, mid, powers[0], None), Piece(mid, hi, None, powers[1])]
    return pieces


def diff_steps(theta: dict, smooth: bool = True) -> dict:
    """Central-difference steps of the ``"diff"`` method, one per parameter (``prec`` = the caller's
    precision in bits).

    ``smooth`` (the density is smooth in the parameters at every z): ``h = 2^-(prec/2 + 10)
    max(1, |theta|)``, so the truncation error ``h^2 |d^3 p / d theta^3| / 6`` is about
    ``2^-(prec + 20)``; the difference ``p(theta + h) - p(theta - h)`` cancels ``prec/2 + 10`` bits,
    which :func:`diff_precision` adds back.  Not smooth (the Laplace density has a kink at ``z =
    loc``, so the nodes within ``h`` of it see a one-sided difference): ``h = 2^-(prec + 10)``,
    making that region's share ``O(h)`` negligible, at a working precision ``2 prec + 40``.
    """
    prec = mp.prec
    e = (prec // 2 + 10) if smooth else (prec + 10)
    return {k: mpmath.ldexp(1, -e) * max(mp.one, abs(mpmath.mpmathify(v))) for k, v in theta.items()}


def diff_precision(smooth: bool = True) -> int:
    """Working precision (bits) of the ``"diff"`` integrands (see :func:`diff_steps`)."""
    return mp.prec + (mp.prec // 2 if smooth else mp.prec) + 40


def diff_tolerance():
    """Relative accuracy at which the ``"diff"`` quadrature stops: the caller's precision."""
    return mpmath.ldexp(1, -mp.prec - 8)


def density_factors(cls, th: dict, mode: str, steps: dict | None):
    """Return ``factors(z)``: the density values one node multiplies f (or g) by.

    ``"E"``: ``[p]``; ``"quad"``: ``[p, p s_1, ..., p s_P]`` with the analytic scores;
    ``"diff"``: ``[p, (p(theta + h_1) - p(theta - h_1)) / (2 h_1), ...]`` -- the density
    differentiated numerically under the integral, never through the score formula.
    ``None`` where the density vanishes.
    """
    names = list(th)

    def factors(z):
        lp = cls._logpdf(MP, z, **th)
        if lp == -mp.inf:
            return None
        p = mpmath.exp(lp)
        if mode == "E":
            return [p]
        if mode == "quad":
            s = cls._score(MP, z, **th)
            return [p, *(p * s[k] for k in names)]
        out = [p]
        for k in names:
            pm = []
            for sign in (1, -1):
                t2 = dict(th)
                t2[k] = th[k] + sign * steps[k]
                pm.append(mpmath.exp(cls._logpdf(MP, z, **t2)))
            out.append((pm[0] - pm[1]) / (2 * steps[k]))
        return out

    return factors


class _Coordinate:
    """Integrals for one coordinate of a factorized distribution and one univariate g."""

    def __init__(self, dist, theta, g_mp, kinks):
        self.dist = dist
        self.cls = type(dist)
        self.theta = theta
        self.g = g_mp
        self.kinks = kinks

    def _integrate(self, mode, steps=None, tol=None):
        th = {k: mpmath.mpmathify(v) for k, v in self.theta.items()}
        factors = density_factors(self.cls, th, mode, steps)
        g = self.g

        def integrand(z):
            fac = factors(z)
            if fac is None:
                return None
            gz = g(z)
            return [gz * x for x in fac]

        extra = peak_points(self.dist, self.theta, g)
        return vquad(integrand, coordinate_pieces(self.dist, self.theta, self.kinks, extra), tol=tol)

    def expectation(self):
        vals, errs = self._integrate("E")
        return vals[0], errs[0]

    def quad(self):
        vals, errs = self._integrate("quad")
        names = list(self.theta)
        return vals[0], errs[0], dict(zip(names, vals[1:])), dict(zip(names, errs[1:]))

    def diff(self):
        smooth = getattr(self.cls, "_smooth_in_params", True)
        steps, tol = diff_steps(self.theta, smooth), diff_tolerance()
        with mpmath.workprec(diff_precision(smooth)):
            vals, errs = self._integrate("diff", steps, tol)
        names = list(self.theta)
        return (+vals[0], +errs[0], {k: +v for k, v in zip(names, vals[1:])},
                {k: +e + abs(v) * steps[k] ** 2 for k, v, e in zip(names, vals[1:], errs[1:])})


def central_difference(F: Callable, x):
    """dF/dx by a central difference at doubled working precision (used where the expectation is
    a polynomial or an explicit function of the parameter: discrete families, Dirac).

    ``F(t)`` returns ``(value, error)``.  Step ``h = 2^-(prec+20) max(1, |x|)``: the truncation error
    ``h^2 |F'''| / 6`` is below ``2^-(2 prec)``; the errors of ``F`` are divided by ``2h``.
    Returns ``(derivative, error estimate)`` at the caller's precision.
    """
    prec = mp.prec
    h = mpmath.ldexp(1, -(prec + 20)) * max(mp.one, abs(x))
    with mpmath.workprec(2 * prec + 60):
        fp, ep = F(x + h)
        fm, em = F(x - h)
        d = (fp - fm) / (2 * h)
        err = (ep + em) / (2 * h) + h * h * abs(d)
    return +d, +err


def factorized_moments(dist: Factorized, f, method: str, with_grad: bool = True):
    """E[f] and (optionally) ``{name: per-coordinate gradient array}`` for a factorized family.

    Returns ``(E, E_err, grads, grad_errs)`` where grads map each parameter name to an object array
    of ``event_shape`` (the gradient w.r.t. that coordinate's copy of the parameter); the caller
    reduces broadcast parameters.
    """
    d = dist.event_size
    sep = f.separable(d)
    names = [p.name for p in dist.parameters]
    shape = dist.event_shape
    if sep is not None:
        a, b = mp_num(sep.a), mp_num(sep.b)
        cache: dict = {}
        per = []
        for j in range(d):
            theta = dist.coordinate(j)
            gj = sep.g(j)
            key = (tuple(theta.items()), _g_key(gj))
            if key not in cache:
                coord = _Coordinate(dist, theta, gj.mp, getattr(gj, "kinks", None) if getattr(gj, "has_kinks", True) else None)
                if not with_grad:
                    e, ee = coord.expectation()
                    cache[key] = (e, ee, {}, {})
                elif method == "quad":
                    cache[key] = coord.quad()
                else:
                    cache[key] = coord.diff()
            per.append(cache[key])
        if sep.kind == "sum":
            E = a + b * mpmath.fsum(p[0] for p in per)
            E_err = abs(b) * mpmath.fsum(p[1] for p in per)
            grads = {k: np.array([b * p[2][k] for p in per], dtype=object).reshape(shape) for k in names} if with_grad else {}
            gerrs = {k: np.array([abs(b) * p[3][k] for p in per], dtype=object).reshape(shape) for k in names} if with_grad else {}
        elif sep.kind == "prod":
            es = [p[0] for p in per]
            prod_all = mpmath.fprod(es)
            E = a + b * prod_all
            rel = mpmath.fsum(p[1] / abs(p[0]) if p[0] != 0 else mp.inf for p in per)
            E_err = abs(b * prod_all) * rel if prod_all != 0 else abs(b) * mpmath.fsum(p[1] for p in per)
            grads, gerrs = {}, {}
            if with_grad:
                for k in names:
                    gl, el = [], []
                    for j, p in enumerate(per):
                        others = mpmath.fprod(es[:j] + es[j + 1:])
                        gl.append(b * p[2][k] * others)
                        el.append(abs(b * others) * p[3][k])
                    grads[k] = np.array(gl, dtype=object).reshape(shape)
                    gerrs[k] = np.array(el, dtype=object).reshape(shape)
        else:  # pragma: no cover - the functions layer only returns sum/prod
            raise ValueError(f"unknown separable kind {sep.kind!r}")
        return E, E_err, grads, gerrs
    if d > MAX_NESTED:
        raise ValueError(
            f"f is not separable over the {d} coordinates of {dist!r}; nested quadrature is limited to "
            f"{MAX_NESTED} coordinates (write f as a sum or product over coordinates, or reduce d)"
        )
    return _nested(dist, f, method, with_grad)


def _g_key(g):
    key = getattr(g, "key", None)
    return key if key is not None else id(g)


def _combine(fz, facs):
    """Component 0: ``f prod_j p_j``; then for each coordinate j and each factor c >= 1 of that
    coordinate: ``f * fac_j[c] * prod_{i != j} p_i``."""
    ps = [fc[0] for fc in facs]
    out = [fz * mpmath.fprod(ps)]
    for j, fc in enumerate(facs):
        others = mpmath.fprod(ps[:j] + ps[j + 1:])
        out += [fz * c * others for c in fc[1:]]
    return out


def _nested(dist, f, method, with_grad):
    """Non-separable f: one nested quadrature over all coordinates with every coordinate's density
    factors multiplied in (product Gauss-Hermite when the family is Gaussian, whose integrand is
    then analytic; nested tanh-sinh otherwise)."""
    from ._quad import gauss_hermite, nested_vquad

    d = dist.event_size
    names = [p.name for p in dist.parameters]
    cls = type(dist)
    shape = dist.event_shape
    mode = method if with_grad else "E"
    thetas = [dist.coordinate(j) for j in range(d)]
    smooth = getattr(cls, "_smooth_in_params", True)
    steps = [diff_steps(t, smooth) for t in thetas] if mode == "diff" else [None] * d
    tol = diff_tolerance() if mode == "diff" else None
    work = diff_precision(smooth) if mode == "diff" else mp.prec
    with mpmath.workprec(work):
        th = [{k: mpmath.mpmathify(v) for k, v in t.items()} for t in thetas]
        factors = [density_factors(cls, th[j], mode, steps[j]) for j in range(d)]
        if cls.__name__ == "Gaussian":
            loc = [t["loc"] for t in th]
            sc = [t["scale"] for t in th]

            def fun(u):
                z = [loc[j] + sc[j] * u[j] for j in range(d)]
                # the rule integrates against the density of z already: divide it out of every factor
                facs = []
                for j in range(d):
                    fc = factors[j](z[j])
                    facs.append([c / fc[0] for c in fc])
                return _combine(f.mp(z), facs)

            vals, errs = gauss_hermite(fun, d, tol=tol)
        else:
            pieces = [coordinate_pieces(dist, thetas[j]) for j in range(d)]

            def fun(z):
                facs = [factors[j](z[j]) for j in range(d)]
                if any(fc is None for fc in facs):
                    return None
                return _combine(f.mp(z), facs)

            vals, errs = nested_vquad(fun, pieces, tol=tol)
        E, E_err = vals[0], errs[0]
        grads = {k: np.empty(d, dtype=object) for k in names}
        gerrs = {k: np.empty(d, dtype=object) for k in names}
        if with_grad:
            per = len(names)
            for j in range(d):
                base = 1 + j * per
                for i, k in enumerate(names):
                    grads[k][j], gerrs[k][j] = +vals[base + i], +errs[base + i]
        E, E_err = +E, +E_err
    if not with_grad:
        return E, E_err, {}, {}
    return E, E_err, {k: v.reshape(shape) for k, v in grads.items()}, {k: v.reshape(shape) for k, v in gerrs.items()}
