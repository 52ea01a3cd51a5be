"""Vector-valued tanh-sinh quadrature at arbitrary precision, with endpoint transforms.

The oracle integrates several functions over the same nodes at once (``E[f]`` and the score-weighted
integrals for every parameter share the costly evaluations of ``f``), so this module applies
mpmath's tanh-sinh nodes (``mpmath.calculus.quadrature.TanhSinh``) to a vector integrand and
estimates the error of each component the way ``mpmath.quad`` does: from the last three levels of
the node-halving sequence.

Endpoint singularities ``(z - lo)^(a - 1)`` with ``a < 1`` (Gamma and Beta with small shapes) put a
large share of the mass at distances below the precision of tanh-sinh nodes near the endpoint.  An
:class:`Piece` with ``power=a`` therefore integrates in ``u = (z - lo)^a`` instead, where the
density times the Jacobian is bounded:  ``z = lo + u^(1/a)``, ``dz = u^(1/a - 1) du / a``.

>>> from mpmath import mp, workdps, mpf, exp, sqrt, pi
>>> with workdps(30):
...     val, err = vquad(lambda x: [exp(-x * x / 2) / sqrt(2 * pi)], [Piece(-mp.inf, mp.inf)])
...     bool(abs(val[0] - 1) < mpf(10) ** -28)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import mpmath
from mpmath import mp

__all__ = ["Piece", "vquad", "QuadratureError"]


class QuadratureError(RuntimeError):
    """The quadrature did not reach the requested accuracy."""


@dataclass(frozen=True)
class Piece:
    """One interval ``[a, b]`` of an integral.

    ``left_power``/``right_power`` ``p`` (``0 < p < 1``): the integrand behaves like
    ``(z - a)^(p - 1)`` (resp. ``(b - z)^(p - 1)``) at that endpoint; the piece is then integrated in
    ``u = (z - a)^p`` (resp. ``u = (b - z)^p``).  At most one of the two may be set.
    """

    a: object
    b: object
    left_power: object = None
    right_power: object = None


def _levels(prec: int) -> int:
    # mpmath's own heuristic (guess_degree) plus a margin: one more level doubles the nodes
    return int(4 + max(0, mpmath.log(prec / 30.0, 2))) + 3


def _estimate_error(history: list, eps) -> object:
    """mpmath's tanh-sinh error estimate from the last (up to) three levels."""
    if len(history) < 2:
        return mp.inf
    if len(history) == 2:
        return abs(history[-1] - history[-2])
    r1, r2, r3 = history[-1], history[-2], history[-3]
    if r1 == r2 == r3:
        return mp.zero
    d12, d13 = abs(r1 - r2), abs(r1 - r3)
    if d12 == 0:
        return eps * max(1, abs(r1))
    if d13 == 0:
        return d12
    D1 = mpmath.log(d12, 10)
    D2 = mpmath.log(d13, 10)
    D4 = min(0, max(D1 * D1 / D2, 2 * D1, -mp.dps))
    return mpmath.mpf(10) ** int(D4)


def _piece_integrand(fun: Callable, piece: Piece):
    """Return (a', b', g) with  int_a^b fun(z) dz = int_a'^b' g(u) du."""
    a, b = mpmath.mpmathify(piece.a), mpmath.mpmathify(piece.b)
    if piece.left_power is not None and piece.right_power is not None:
        raise ValueError("a piece may carry an endpoint transform at one end only")
    power = piece.left_power if piece.left_power is not None else piece.right_power
    if power is None:
        return a, b, fun
    p = mpmath.mpf(power)
    inv = 1 / p
    left = piece.left_power is not None

    def g(u):
        if u <= 0:
            return None
        # exact sums keep z - a > 0 and b - z > 0 for tiny u (b = 1 for the Beta)
        z = mpmath.fadd(a, u**inv, exact=True) if left else mpmath.fsub(b, u**inv, exact=True)
        jac = u ** (inv - 1) * inv
        return [v * jac for v in fun(z)]

    return mp.zero, (b - a) ** p, g


def vquad(fun: Callable[[object], Sequence], pieces: Sequence[Piece], *, max_levels: int | None = None,
          tol=None):
    """Integrate a vector-valued ``fun`` over the union of ``pieces`` at the current mpmath precision.

    Returns ``(values, errors)``: lists of mpf, one per component of ``fun``'s output.  The error of
    each component is the sum over pieces of mpmath's tanh-sinh estimate.  ``fun`` may return
    ``None`` for a node where the integrand vanishes (e.g. outside the support).  ``tol``: the
    relative accuracy at which a piece stops refining (default ``2^8`` units of the working
    precision).
    """
    rule = mpmath.calculus.quadrature.TanhSinh(mp)
    prec = mp.prec
    eps = mpmath.mpf(2) ** (-prec)
    levels = max_levels or _levels(prec)
    total, total_err = None, None
    for piece in pieces:
        a, b, g = _piece_integrand(fun, piece)
        if a == b:
            continue
        history: list[list] = []
        for m in range(1, levels + 1):
            nodes = rule.get_nodes(a, b, m, prec)
            h = mpmath.mpf(2) ** (-m)
            acc = None
            for x, w in nodes:
                v = g(x)
                if v is None:
                    continue
                if acc is None:
                    acc = [w * vi for vi in v]
                else:
                    for i, vi in enumerate(v):
                        acc[i] += w * vi
            if acc is None:
                acc = [mp.zero] * (len(history[-1]) if history else 1)
            if history:
                prev = history[-1]
                if len(acc) < len(prev):  # every node of this level returned None
                    acc = acc + [mp.zero] * (len(prev) - len(acc))
                S = [h * (p / (2 * h) + s) for p, s in zip(prev, acc)]
            else:
                S = [h * s for s in acc]
            history.append(S)
            # mpmath's three-level estimate can stop a level too early on integrands that look
            # converged at levels 1-3 (seen on a Laplace piece: off by 4e-14 while claiming 1e-18);
            # four levels at least make that far less likely
            if m >= 4:
                errs = [_estimate_error([hh[i] for hh in history[-3:]], eps) for i in range(len(S))]
                scale = max([abs(s) for s in S] + [mp.one])
                if max(errs) <= (eps * 2**8 if tol is None else tol) * scale:
                    break
        final = history[-1]
        errs = [_estimate_error([hh[i] for hh in history[-3:]], eps) for i in range(len(final))]
        if total is None:
            total, total_err = list(final), list(errs)
        else:
            total = [t + s for t, s in zip(total, final)]
            total_err = [t + e for t, e in zip(total_err, errs)]
    if total is None:
        raise ValueError("empty integration domain")
    return total, total_err


def nested_vquad(fun: Callable[[list], Sequence], pieces: Sequence[Sequence[Piece]], *, tol=None):
    """Integrate ``fun(point)`` (a vector) over a product of intervals, one list of pieces per
    coordinate, by nested :func:`vquad`.  The error is the outer rule's estimate (the inner rules
    run to the same tolerance at every outer node)."""
    dims = len(pieces)

    def level(i, prefix):
        def integrand(x):
            pt = prefix + [x]
            if i == dims - 1:
                return fun(pt)
            vals, _ = vquad(level(i + 1, pt), pieces[i + 1], tol=tol)
            return vals
        return integrand

    return vquad(level(0, []), pieces[0], tol=tol)


_GH_CACHE: dict = {}


def _hermite_rule(n: int):
    """Gauss-Hermite nodes and weights for the standard normal density at the current precision."""
    key = (n, mp.prec)
    if key not in _GH_CACHE:
        x, w = mp.gauss_quadrature(n, "hermite")
        s2, sp = mpmath.sqrt(2), mpmath.sqrt(mp.pi)
        _GH_CACHE[key] = ([xi * s2 for xi in x], [wi / sp for wi in w])
    return _GH_CACHE[key]


def gauss_hermite(fun: Callable[[list], Sequence], dims: int, *, start: int = 12, max_nodes: int = 192, tol=None):
    """``E[fun(u)]`` for ``u`` a ``dims``-dimensional standard normal vector, by product
    Gauss-Hermite rules with the node count raised by half until two successive rules agree to the
    working precision (exact for polynomials of degree < 2n; geometric convergence for f analytic in
    a strip).  Returns ``(values, errors)``; the error is the change between the last two rules.
    Raises :class:`QuadratureError` when ``max_nodes`` per axis does not converge.
    """
    import itertools

    eps = mpmath.mpf(2) ** (-mp.prec)
    prev = None
    n = start
    while True:
        x, w = _hermite_rule(n)
        acc = None
        for idx in itertools.product(range(n), repeat=dims):
            wt = mpmath.fprod(w[i] for i in idx)
            v = fun([x[i] for i in idx])
            if acc is None:
                acc = [wt * vi for vi in v]
            else:
                for k, vi in enumerate(v):
                    acc[k] += wt * vi
        if prev is not None:
            errs = [abs(a - b) for a, b in zip(acc, prev)]
            scale = max([abs(a) for a in acc] + [mp.one])
            if max(errs) <= (eps * 2**10 if tol is None else tol) * scale:
                return acc, errs
        if n >= max_nodes:
            raise QuadratureError(
                f"Gauss-Hermite did not converge with {n} nodes per axis (last change "
                f"{mpmath.nstr(max(errs), 3)}); f is probably not smooth enough for nested quadrature"
            )
        prev = acc
        n = min(max_nodes, int(n * 1.5))
