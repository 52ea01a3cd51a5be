r"""Exact expectation of the truncated GSB rules, and their truncation bias.

The ``method="gsb"`` estimator keeps ``N`` terms of a series (section 5, eq. 26).  Its expectation
is ``sum_{n<=N} a_n E[d^n f]``; this module computes that sum by quadrature -- no sampling -- and
subtracts the exact gradient of :func:`gsbref.oracle.gradient`:

    ``truncation_bias(dist, f, N) = E[rule_N] - dE[f]/dtheta``.

The order convention is the estimator's (:mod:`gsbref.estimators.gsb`): ``N`` counts series terms
as the paper writes each series (Laplace scale: term ``n`` uses ``f^(2n)``; Gamma, Exponential,
ChiSquared: ``f^(n)``; Beta and Dirichlet: ``d^n/dzeta^n``; exact rules ignore ``N``).  The
implementation is independent of the estimator's: mpmath coefficients ``_a(MP, ...)``, mpmath jets
of the univariate terms (:meth:`Univariate.mp_derivatives`), tanh-sinh quadrature over the
oracle's pieces (:func:`gsbref.oracle._factorized.coordinate_pieces`, :func:`vquad`).

Supported:

* families with independent coordinates and theorem-1 coefficients (Gaussian, Laplace, Gamma,
  Exponential, ChiSquared, Dirac; Beta with ``via="cumulants"``) and separable ``f``
  (``a + b sum_j g_j`` or ``a + b prod_j g_j``): one 1-D integral per distinct coordinate; any
  ``f`` over up to ``MAX_NESTED`` coordinates by nested quadrature (slow);
* MultivariateGaussian (exact rule): Gauss-Hermite in whitened coordinates;
* Beta (``via="gamma"``, eq. 20) and Dirichlet (eq. 21) for separable ``f`` (Dirichlet: sums only),
  through a reduction to 1-D integrals: with ``s = zeta_1 + zeta_2`` independent of
  ``z = zeta_1 / s`` (Lukacs), ``d^n/dzeta_1^n g(zeta_1 / s) = s^-n D_n(z)`` with
  ``D_n(z) = d^n/du^n g((z + u)/(1 + u))`` at ``u = 0`` (``g(z/(1 + u))`` for ``zeta_2``), so term ``n``
  is ``(1/n) E[s^-n] E[D_n(z)]`` with ``E[s^-n] = Gamma(A - n) / Gamma(A)``, ``A = alpha + beta``
  (finite only for ``n < A``: larger orders raise ``ValueError``).  For the Dirichlet the same
  holds with the marginals ``z_k ~ Beta(alpha_k, A - alpha_k)`` and ``A = sum alpha``.

Terms that are infinite raise ``ValueError``: Beta/Dirichlet orders ``n >= A``; Gamma-type
families where ``g^(m)`` grows like ``z^-p`` at 0 with ``p >= shape`` (measured from ``g^(m)`` at
``1e-20`` and ``1e-21`` times the mean in mpmath -- exact for power and log singularities).

>>> import gsbref
>>> with __import__("mpmath").workdps(20):
...     b = truncation_bias(gsbref.Beta(2.0, 3.0), "sum(z)", 2, dps=20)
>>> round(float(b["alpha"]), 12)     # partial sum 0.10 minus the exact 0.12
-0.02
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
from mpmath import mp

from .._math import MP
from ..distributions._base import Factorized
from ._factorized import MAX_NESTED, coordinate_pieces, mp_num
from ._quad import Piece, gauss_hermite, nested_vquad, vquad

__all__ = ["truncation_bias", "best_order", "rule_expectation", "term_expectations"]

GUARD_DIGITS = 10
_GAMMA_LIKE = ("Gamma", "Exponential", "ChiSquared")
_PROBE = (mpmath.mpf("1e-20"), mpmath.mpf("1e-21"))


def _as_function(f):
    from ..functions import as_function

    return as_function(f)


def _check_order(order, allow_none=False):
    if order is None and allow_none:
        return None
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be a positive integer (number of series terms), got {order!r}")
    return int(order)


# ----------------------------------------------------------------------------------------------
# plans: which derivative order each series term uses (independent of the estimator's code)
# ----------------------------------------------------------------------------------------------
def _plan(dist, N):
    name = type(dist).__name__
    params = [p.name for p in dist.parameters]
    if name == "Gaussian":
        return {"loc": [(1, 1)], "scale": [(2, 2)]}, {"loc": True, "scale": True}
    if name == "Dirac":
        return {"loc": [(1, 1)]}, {"loc": True}
    if name == "Laplace":
        return {"loc": [(1, 1)], "scale": [(n, 2 * n) for n in range(1, N + 1)]}, {"loc": True, "scale": False}
    if name in _GAMMA_LIKE:
        return {p: [(n, n) for n in range(1, N + 1)] for p in params}, {p: False for p in params}
    return {p: [(n, n) for n in range(0, N + 1)] for p in params}, {p: False for p in params}


# ----------------------------------------------------------------------------------------------
# term expectations
# ----------------------------------------------------------------------------------------------
def term_expectations(dist, f: Any, order: int, dps: int = 30, via: str = "gamma"):
    """``({name: object array (N + 1, *param_shape)}, {name: exact?})``: the exact expectation of
    every series term ``n = 0..N`` of the rule (term 0 is ``a_0 E[f]`` or 0), at ``dps`` digits."""
    f = _as_function(f)
    N = _check_order(order)
    if via not in ("gamma", "cumulants"):
        raise ValueError(f"via must be 'gamma' or 'cumulants', got {via!r}")
    name = type(dist).__name__
    if getattr(dist, "discrete", False):
        raise ValueError(f"{name} is discrete: theorem 2 applies, there is no truncated series")
    with mpmath.workdps(dps + GUARD_DIGITS):
        if name == "MultivariateGaussian":
            T, exact = _mvn_terms(dist, f)
        elif name in ("Beta", "Dirichlet") and via == "gamma":
            T, exact = _gamma_construction_terms(dist, f, N)
        elif isinstance(dist, Factorized) and hasattr(type(dist), "_a"):
            if via == "cumulants" and name != "Beta":
                raise ValueError("via='cumulants' applies to the Beta only")
            T, exact = _factorized_terms(dist, f, N)
        else:
            raise NotImplementedError(f"no theorem-1 rule for {name}")
        out = {}
        for k, v in T.items():
            if isinstance(dist, Factorized):
                v = dist._reduce_to_param(k, np.asarray(v, dtype=object), 1)
            out[k] = _plus(np.asarray(v, dtype=object))
    return out, exact


def _plus(a):
    """Round every entry to the current precision (``+x``)."""
    out = np.empty(a.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(a.reshape(-1)):
        flat[i] = +mpmath.mpmathify(v)
    return out


def _factorized_terms(dist, f, N):
    plan, exact = _plan(dist, N)
    cls = type(dist)
    d = dist.event_size
    ev = dist.event_shape
    M = max(m for terms in plan.values() for _, m in terms)
    nmax = {p: max(n for n, _ in terms) for p, terms in plan.items()}
    thetas = [dist.coordinate(j) for j in range(d)]
    # E[d^m f / dz_j^m] for m = 0..M and every coordinate j -> moments[j][m]
    sep = f.separable(d)
    if cls.__name__ == "Dirac":
        loc = [mpmath.mpf(t["loc"]) for t in thetas]
        D = f.mp_derivatives(loc, M)
        moments = [[D[m, j] for m in range(M + 1)] for j in range(d)]
        moments_kind = "joint"
    elif sep is not None:
        gs = [sep.g(j) for j in range(d)]
        cache: dict = {}
        per = []
        for j in range(d):
            key = (tuple(sorted(thetas[j].items())), gs[j].expr)
            if key not in cache:
                if cls.__name__ in _GAMMA_LIKE:
                    _check_singular(dist, j, gs[j], M)
                cache[key] = _coordinate_moments(dist, thetas[j], gs[j], M)
            per.append(cache[key])
        moments = per
        moments_kind = sep.kind
        b = mp_num(sep.b)  # the offset a has no gradient
    else:
        if d > MAX_NESTED:
            raise NotImplementedError(
                f"f is not separable over the {d} coordinates of {dist!r}; nested quadrature of its "
                f"derivatives is limited to {MAX_NESTED} coordinates"
            )
        moments = _nested_moments(dist, f, M)
        moments_kind = "joint"
    T = {}
    for p, plist in plan.items():
        arr = np.empty((nmax[p] + 1, d), dtype=object)
        arr[...] = mp.zero
        for j in range(d):
            th = {k: mpmath.mpf(v) for k, v in thetas[j].items()}
            for n, m in plist:
                coef = cls._a(MP, m, **th)[p]
                if moments_kind == "joint":
                    val = moments[j][m]
                elif moments_kind == "sum":
                    val = b * moments[j][m]
                else:  # prod: b * E[g_j^(m)] * prod_{k != j} E[g_k]
                    others = mpmath.fprod(moments[k][0] for k in range(d) if k != j)
                    val = b * moments[j][m] * others
                arr[n, j] += coef * val
        T[p] = arr.reshape((nmax[p] + 1,) + ev)
    return T, exact


def _density(cls, th):
    def p(z):
        lp = cls._logpdf(MP, z, **th)
        return None if lp == -mp.inf else mpmath.exp(lp)

    return p


def _coordinate_moments(dist, theta, g, M):
    """``[E[g(z)], E[g'(z)], ..., E[g^(M)(z)]]`` for one coordinate, by tanh-sinh quadrature."""
    cls = type(dist)
    th = {k: mpmath.mpf(v) for k, v in theta.items()}
    dens = _density(cls, th)

    def integrand(z):
        p = dens(z)
        if p is None or p == 0:
            return None
        D = g.mp_derivatives(z, M)
        return [p * v for v in D]

    kinks = g.kinks if g.has_kinks else None
    vals, _ = vquad(integrand, coordinate_pieces(dist, theta, kinks))
    return vals


def _check_singular(dist, j, g, M):
    """``ValueError`` when ``E[g^(m)]`` is infinite at the lower end 0 of a Gamma-type support."""
    name = type(dist).__name__
    th = dist.coordinate(j)
    shape = {"Gamma": lambda: th["shape"], "Exponential": lambda: 1.0, "ChiSquared": lambda: th["df"] / 2}[name]()
    mean = mpmath.mpf(float(np.asarray(dist.mean()).reshape(-1)[j]))
    x1, x2 = (e * mean for e in _PROBE)
    try:
        D1, D2 = g.mp_derivatives(x1, M), g.mp_derivatives(x2, M)
    except (ValueError, ZeroDivisionError):
        return
    for m in range(1, M + 1):
        v1, v2 = abs(D1[m]), abs(D2[m])
        if v1 == 0 or v2 == 0:
            continue
        p = mpmath.log10(v2 / v1)  # growth exponent: g^(m) ~ z^-p
        if p >= shape - mpmath.mpf("1e-6"):
            raise ValueError(
                f"E[g^({m})(z)] is infinite for coordinate {j} of {dist!r}: g = {g.expr} has g^({m}) ~ "
                f"z^-{mpmath.nstr(p, 4)} at 0 and the density vanishes like z^({shape:g} - 1); the "
                f"rule's terms are infinite from derivative order {m} on"
            )


def _nested_moments(dist, f, M):
    """Non-separable f over <= MAX_NESTED coordinates: ``moments[j][m] = E[d^m f / dz_j^m]``."""
    cls = type(dist)
    d = dist.event_size
    thetas = [{k: mpmath.mpf(v) for k, v in dist.coordinate(j).items()} for j in range(d)]
    if cls.__name__ == "Gaussian":
        loc = [t["loc"] for t in thetas]
        sc = [t["scale"] for t in thetas]

        def fun(u):
            z = [loc[j] + sc[j] * u[j] for j in range(d)]
            D = f.mp_derivatives(z, M)
            return [D[m, j] for j in range(d) for m in range(M + 1)]

        vals, _ = gauss_hermite(fun, d)
    else:
        dens = [_density(cls, t) for t in thetas]
        pieces = [coordinate_pieces(dist, dist.coordinate(j)) for j in range(d)]

        def fun(z):
            ps = [dens[j](z[j]) for j in range(d)]
            if any(p is None for p in ps):
                return None
            w = mpmath.fprod(ps)
            D = f.mp_derivatives(list(z), M)
            return [w * D[m, j] for j in range(d) for m in range(M + 1)]

        vals, _ = nested_vquad(fun, pieces)
    return [[vals[j * (M + 1) + m] for m in range(M + 1)] for j in range(d)]


def _mvn_terms(dist, f):
    d = dist.dim
    loc = [mpmath.mpf(float(x)) for x in dist.loc]
    L = mpmath.cholesky(mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in dist.cov]))

    def fun(u):
        z = [loc[i] + mpmath.fsum(L[i, k] * u[k] for k in range(i + 1)) for i in range(d)]
        g = f.mp_gradient(z)
        H = f.mp_hessian(z)
        return [g[i] for i in range(d)] + [H[i, k] / 2 for i in range(d) for k in range(d)]

    vals, _ = gauss_hermite(fun, d)
    loc_t = np.empty((2, d), dtype=object)
    loc_t[0] = mp.zero
    loc_t[1] = vals[:d]
    cov_t = np.empty((3, d, d), dtype=object)
    cov_t[...] = mp.zero
    cov_t[2] = np.array(vals[d:], dtype=object).reshape(d, d)
    return {"loc": loc_t, "cov": cov_t}, {"loc": True, "cov": True}


# ----------------------------------------------------------------------------------------------
# Beta and Dirichlet through gamma variables
# ----------------------------------------------------------------------------------------------
def _path_moments(g, a, b, N):
    """Under ``z ~ Beta(a, b)``: ``(E[g(z)], [E[D^moved_n]], [E[D^still_n]])`` for ``n = 0..N`` where
    ``D^moved_n = d^n/du^n g((z + u)/(1 + u))`` and ``D^still_n = d^n/du^n g(z/(1 + u))`` at 0."""
    from ..functions._expr import evaluate
    from ..functions.jet import Jet

    a, b = mpmath.mpf(a), mpmath.mpf(b)
    lognorm = mpmath.log(mpmath.beta(a, b))
    facts = [mpmath.factorial(n) for n in range(N + 1)]

    def derivs(z, moved):
        c = np.empty(N + 1, dtype=object)
        c[0] = z
        base = z - 1 if moved else z
        for m in range(1, N + 1):
            c[m] = base * (-1) ** m
        out = evaluate(g.tree, Jet(c), "mp")
        coeffs = out.coeffs if isinstance(out, Jet) else [out] + [mp.zero] * N
        return [facts[n] * mpmath.mpmathify(coeffs[n]) for n in range(N + 1)]

    def integrand(z):
        if z <= 0 or z >= 1:
            return None
        p = mpmath.exp((a - 1) * mpmath.log(z) + (b - 1) * mpmath.log(1 - z) - lognorm)
        dm = derivs(z, True)
        ds = derivs(z, False)
        return [p * v for v in dm] + [p * v for v in ds[1:]]

    m = min(max(a / (a + b), mpmath.mpf("0.01")), mpmath.mpf("0.99"))
    pieces = [Piece(0, m, a if a < 1 else None, None), Piece(m, 1, None, b if b < 1 else None)]
    if g.has_kinks:
        ks = [k for k in g.kinks(mpmath.mpf(0), mpmath.mpf(1)) if 0 < k < 1 and k != m]
        if ks:
            edges = sorted([mpmath.mpf(0), m, mpmath.mpf(1)] + ks)
            pieces = []
            for i in range(len(edges) - 1):
                lp = a if (i == 0 and a < 1) else None
                rp = b if (i == len(edges) - 2 and b < 1) else None
                pieces.append(Piece(edges[i], edges[i + 1], lp, rp))
    vals, _ = vquad(integrand, pieces)
    moved = vals[: N + 1]
    still = [moved[0]] + vals[N + 1:]
    return moved[0], moved, still


def _inverse_moment(A, n):
    """``E[s^-n]`` for ``s ~ Gamma(A, 1)``; ``ValueError`` when infinite (``n >= A``)."""
    if n >= A:
        raise ValueError(
            f"E[s^-{n}] is infinite for s ~ Gamma({mpmath.nstr(A, 6)}, 1): term {n} of the gamma-"
            f"construction series (eq. 20/21) is infinite for n >= {mpmath.nstr(A, 6)} (DESIGN 1.5)"
        )
    return mpmath.exp(mpmath.loggamma(A - n) - mpmath.loggamma(A))


def _gamma_construction_terms(dist, f, N):
    name = type(dist).__name__
    d = dist.event_size
    ev = dist.event_shape
    sep = f.separable(d)
    if sep is None:
        raise NotImplementedError(
            f"the gamma-construction terms are reduced to 1-D integrals for separable f only; {f!r} is "
            f"not separable over the {d} coordinates of {dist!r}"
        )
    b_ = mp_num(sep.b)
    if name == "Beta":
        bp = dist.broadcast_params()
        al = [mpmath.mpf(float(x)) for x in np.asarray(bp["alpha"]).reshape(-1)]
        be = [mpmath.mpf(float(x)) for x in np.asarray(bp["beta"]).reshape(-1)]
        gs = [sep.g(j) for j in range(d)]
        cache: dict = {}
        per = []
        for j in range(d):
            key = (al[j], be[j], gs[j].expr)
            if key not in cache:
                cache[key] = _path_moments(gs[j], al[j], be[j], N)
            per.append(cache[key])
        T = {"alpha": np.empty((N + 1, d), dtype=object), "beta": np.empty((N + 1, d), dtype=object)}
        for j in range(d):
            A = al[j] + be[j]
            E0, moved, still = per[j]
            if sep.kind == "sum":
                scale = b_
            else:
                scale = b_ * mpmath.fprod(per[k][0] for k in range(d) if k != j)
            T["alpha"][0, j] = T["beta"][0, j] = mp.zero
            for n in range(1, N + 1):
                w = _inverse_moment(A, n) / n * scale
                T["alpha"][n, j] = w * moved[n]
                T["beta"][n, j] = w * still[n]
        return {k: v.reshape((N + 1,) + ev) for k, v in T.items()}, {"alpha": False, "beta": False}
    # Dirichlet
    if sep.kind != "sum":
        raise NotImplementedError(
            "Dirichlet: the 1-D reduction needs f = a + b * sum_k g_k(z_k) (the components of a simplex "
            "are dependent, so a product does not factorise)"
        )
    conc = np.asarray(dist.concentration, dtype=float)
    K = ev[-1]
    R = d // K
    rows = conc.reshape(R, K)
    T = np.empty((N + 1, d), dtype=object)
    for r in range(R):
        alpha = [mpmath.mpf(float(x)) for x in rows[r]]
        A = mpmath.fsum(alpha)
        mom = [_path_moments(sep.g(r * K + k), alpha[k], A - alpha[k], N) for k in range(K)]
        for i in range(K):
            T[0, r * K + i] = mp.zero
            for n in range(1, N + 1):
                acc = mom[i][1][n] + mpmath.fsum(mom[k][2][n] for k in range(K) if k != i)
                T[n, r * K + i] = b_ * _inverse_moment(A, n) / n * acc
    return {"concentration": T.reshape((N + 1,) + ev)}, {"concentration": False}


# ----------------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------------
def _select(d: dict, param):
    if param is None:
        return d
    if param not in d:
        raise ValueError(f"unknown parameter {param!r}; parameters: {sorted(d)}")
    return {param: d[param]}


def _scalarise(a):
    a = np.asarray(a, dtype=object)
    return a.reshape(()).item() if a.ndim == 0 else a


def rule_expectation(dist, f: Any, order: int | None = None, dps: int = 30, param: str | None = None,
                     via: str = "gamma") -> dict:
    """``{name: E[rule_N]}`` -- the expectation of the order-``order`` GSB rule (mpf or object array
    of the parameter's shape), computed by quadrature.  ``order`` may be omitted for exact rules
    (Gaussian, MultivariateGaussian, Dirac)."""
    if order is None:
        if type(dist).__name__ not in ("Gaussian", "MultivariateGaussian", "Dirac"):
            raise ValueError(f"{type(dist).__name__}: the rule is a truncated series; give order=N")
        order = 1
    T, _ = term_expectations(dist, f, order, dps, via)
    with mpmath.workdps(dps + GUARD_DIGITS):
        out = {k: _scalarise(_plus(np.asarray(v.sum(axis=0), dtype=object))) for k, v in T.items()}
    return _select(out, param)


def truncation_bias(dist, f: Any, order: int, dps: int = 30, param: str | None = None,
                    via: str = "gamma") -> dict:
    """``{name: E[rule_N] - dE[f]/dtheta}``: the bias of the order-``N`` rule (series terms as in
    :mod:`gsbref.estimators.gsb`), exact to about ``dps`` digits (mpf, or an object array of the
    parameter's shape).  Zero (to the precision) for exact rules and terminating series."""
    from . import gradient

    f = _as_function(f)
    rule = rule_expectation(dist, f, order, dps, None, via)
    exact = gradient(dist, f, dps=dps)
    with mpmath.workdps(dps + GUARD_DIGITS):
        out = {}
        for k, v in rule.items():
            diff = np.asarray(v, dtype=object) - np.asarray(exact[k], dtype=object)
            out[k] = _scalarise(_plus(np.asarray(diff, dtype=object)))
    return _select(out, param)


def best_order(dist, f: Any, max_order: int = 16, dps: int = 30, via: str = "gamma") -> dict:
    """``{name: (order, bias)}``: for each parameter the order ``1 <= N <= max_order`` whose rule
    has the smallest ``max |bias|`` over the parameter's entries, with that bias.  Orders whose
    terms are infinite (Beta/Dirichlet ``N >= alpha + beta``; singular f under a Gamma) are not
    considered; exact rules give ``(None, bias)``."""
    from . import gradient

    f = _as_function(f)
    N = _check_order(max_order)
    name = type(dist).__name__
    if name in ("Beta", "Dirichlet") and via == "gamma":
        if name == "Beta":
            bp = dist.broadcast_params()
            tmin = float(np.min(bp["alpha"] + bp["beta"]))
        else:
            tmin = float(np.min(np.asarray(dist.concentration).sum(-1)))
        N = min(N, int(math.ceil(tmin) - 1))
        if N < 1:
            raise ValueError(f"{dist!r}: every term of the gamma-construction series is infinite (DESIGN 1.5)")
    while True:
        try:
            T, exact_flags = term_expectations(dist, f, N, dps, via)
            break
        except ValueError as exc:  # an infinite term: retry with fewer terms
            if "infinite" not in str(exc) or N == 1:
                raise
            N -= 1
    exact = gradient(dist, f, dps=dps)
    out = {}
    with mpmath.workdps(dps + GUARD_DIGITS):
        for k, Tk in T.items():
            ex = np.asarray(exact[k], dtype=object)
            if exact_flags[k]:
                out[k] = (None, _scalarise(_plus(np.asarray(Tk.sum(axis=0) - ex, dtype=object))))
                continue
            best = None
            partial = np.asarray(Tk[0], dtype=object)
            for n in range(1, Tk.shape[0]):
                partial = partial + Tk[n]
                bias = np.asarray(partial - ex, dtype=object)
                size = max(abs(x) for x in bias.reshape(-1))
                if best is None or size < best[0]:
                    best = (size, n, _plus(bias))
            out[k] = (best[1], _scalarise(best[2]))
    return out
