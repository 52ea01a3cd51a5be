r"""Corollary 3.1 in closed form (``method="gsb-closed"``).

For one coordinate with moment generating function ``M(c) = E[exp(c z)]`` let
``G(c) = d/dtheta log M(c) = sum_n a_n c^n`` (theorem 1's coefficients with ``i w = c``).  For an
exponential-polynomial term ``g(x) = x^k exp(r x)``,

    ``dE[g(z)]/dtheta = d^k/dc^k [M(c) G(c)] at c = r = sum_{m=0}^k binom(k, m) G^(m)(r) E[z^(k-m) exp(r z)]``

(Leibniz's rule), so ``sum_m binom(k, m) G^(m)(r) x^(k - m) exp(r x)`` is an unbiased per-sample
estimate -- it is exactly the theorem-1 series ``sum_n a_n g^(n)(x)`` summed in closed form (for
``k = 0``: ``sum_n a_n r^n exp(r x) = G(r) exp(r x)``; for a polynomial, ``r = 0``, it is the finite
series up to order ``k``).  The closed form is the analytic continuation of the series: it stays
exact where the series in ``r`` diverges (``|r| scale >= 1``), as long as ``M(r)`` exists.

``G`` and its ``c``-derivatives come from the family's ``_grad_log_mgf`` in mpmath (30 digits,
``mpmath.diff`` for ``m >= 1``) once per coordinate; the per-sample work is float64.  Complex
``r`` (``sin``, ``cos``) give complex conjugate pairs whose sum is real; the real part is returned.

Separable ``f = a + b * sum_j g_j(z_j)``: the estimate for coordinate ``j`` is ``b`` times the rule
of ``g_j``.  ``f = a + b * prod_j g_j(z_j)``: ``b`` times the rule of ``g_j`` times
``prod_{k != j} g_k(z_k)`` (unbiased because the coordinates are independent).

Array backends: for a distribution on another namespace (CuPy, ``array_api_strict``) the draws
come from :func:`gsbref._backend.generator` and the per-sample closed forms (complex128) and the
product form's other factors are computed in that namespace; the coefficients ``G^(m)(r)`` are
computed in mpmath from the parameters, as for NumPy.  On ``array_api_strict`` the estimates equal
NumPy's at the same seed (``tests/test_backends.py::test_gsb_closed_same_on_strict``).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from .._backend import is_numpy
from .._math import MP
from ..distributions._base import Factorized, _check_n, as_generator

__all__ = ["closed_rule", "closed_coefficients"]

_DPS = 30


def closed_coefficients(cls, theta: dict, terms, dps: int = _DPS) -> dict:
    """``{name: [(coef, k, r, [G^(0)(r), ..., G^(k)(r)]), ...]}`` as Python complex numbers, for
    one coordinate with parameters ``theta`` and exponential-polynomial ``terms`` (``(coef, k, r)``
    triples from ``Univariate.exp_poly()``).  Raises ``ValueError`` when ``Re r`` lies outside the
    family's moment-generating strip (``E[f]`` infinite)."""
    out: dict = {}
    with mpmath.workdps(dps):
        th = {k: mpmath.mpf(v) for k, v in theta.items()}
        names = list(th)
        for coef, k, r in terms:
            r = mpmath.mpmathify(r)
            if hasattr(cls, "_mgf_strip"):
                lo, hi = cls._mgf_strip(MP, **th)
                if not (lo < mpmath.re(r) < hi):
                    raise ValueError(
                        f"gsb-closed: E[exp({mpmath.nstr(r, 6)} z)] is infinite under {cls.__name__}"
                        f"({', '.join(f'{n}={mpmath.nstr(v, 6)}' for n, v in th.items())}) (the moment "
                        f"generating function exists for {mpmath.nstr(lo, 6)} < Re c < {mpmath.nstr(hi, 6)}), "
                        "so E[f] and its gradient are infinite"
                    )
            for name in names:
                def G(c, name=name):
                    return cls._grad_log_mgf(MP, c, **th)[name]

                derivs = [G(r)] + [mpmath.diff(G, r, m) for m in range(1, k + 1)]
                out.setdefault(name, []).append(
                    (complex(coef), int(k), complex(r), [complex(v) for v in derivs])
                )
    return out


def _term_rule(x, entries):
    """``sum_t coef_t sum_m binom(k_t, m) G_t^(m) x^(k_t - m) exp(r_t x)`` (complex array)."""
    acc = np.zeros(np.shape(x), dtype=complex)
    for coef, k, r, G in entries:
        e = np.exp(r * x)
        poly = np.zeros(np.shape(x), dtype=complex)
        for m in range(k + 1):
            if G[m] != 0:
                poly = poly + math.comb(k, m) * G[m] * x ** (k - m)
        acc = acc + coef * poly * e
    return acc


def closed_rule(dist, f):
    """The :class:`~gsbref.estimators.gsb.Rule` of ``method="gsb-closed"`` (see the module
    docstring); ``ValueError`` where the closed form does not apply."""
    from .gsb import Rule

    name = type(dist).__name__
    if not isinstance(dist, Factorized) or not hasattr(type(dist), "_grad_log_mgf"):
        raise ValueError(
            f"gsb-closed: {name} has no closed-form moment generating function with independent "
            "coordinates; corollary 3.1 needs one (use method='gsb')"
        )
    d = dist.event_size
    ev = dist.event_shape
    sep = f.separable(d)
    if sep is None:
        raise ValueError(
            f"gsb-closed: {f!r} is not of the form a + b * sum_j g_j(z_j) or a + b * prod_j g_j(z_j); "
            "corollary 3.1's closed form needs separable f with exponential-polynomial g_j "
            "(use method='gsb' with a truncation order, or 'gsb-resummed')"
        )
    cls = type(dist)
    per = []
    cache: dict = {}
    gs = [sep.g(j) for j in range(d)]
    for j in range(d):
        theta = dist.coordinate(j)
        with mpmath.workdps(_DPS):
            terms = gs[j].exp_poly()
        if terms is None:
            raise ValueError(
                f"gsb-closed: the coordinate term {gs[j].expr!r} of f is not an exponential polynomial "
                "(sum of c x^k exp(r x): polynomials, exp, sin, cos of affine arguments), so the series "
                "of theorem 1 has no closed form here (use method='gsb' or 'gsb-resummed')"
            )
        key = (tuple(sorted(theta.items())), gs[j].expr)
        if key not in cache:
            cache[key] = closed_coefficients(cls, theta, terms)
        per.append(cache[key])
    b = sep.b_float
    prod = sep.kind == "prod"
    params = [p.name for p in dist.parameters]

    xp = getattr(dist, "xp", None)
    if xp is not None and not is_numpy(xp):
        draw, evaluate = _xp_draw_evaluate(dist, sep, per, params, xp)
        fam = f"{name} (corollary 3.1, closed form)"
        return Rule(fam, fam, None, {p: True for p in params}, {p: [] for p in params}, draw, evaluate, 0,
                    notes=["exp-polynomial terms summed in closed form"])

    def draw(rng, n):
        return dist.sample(as_generator(rng), _check_n(n))

    def evaluate(z, lookahead=False):
        z = np.asarray(z, dtype=float)
        S = z.shape[0]
        zf = z.reshape(S, d)
        others = None
        if prod:
            vals = np.stack([np.broadcast_to(gs[j](zf[:, j]), (S,)) for j in range(d)], axis=-1)
            others = _prod_except(vals)
        est = {}
        for p in params:
            out = np.empty((S, d))
            for j in range(d):
                out[:, j] = b * _term_rule(zf[:, j], per[j].get(p, [])).real
            if prod:
                out = out * others
            est[p] = dist._reduce_to_param(p, out.reshape((S,) + ev), 1)
        return est, {}

    fam = f"{name} (corollary 3.1, closed form)"
    derivs = {p: [] for p in params}
    return Rule(fam, fam, None, {p: True for p in params}, derivs, draw, evaluate, 0,
                notes=["exp-polynomial terms summed in closed form"])


def _term_rule_xp(x, entries, xp):
    """:func:`_term_rule` in namespace ``xp`` (complex128 arithmetic, the same operations)."""
    c128 = xp.complex128
    acc = xp.zeros(tuple(x.shape), dtype=c128)
    for coef, k, r, G in entries:
        e = xp.exp(xp.asarray(r, dtype=c128) * x)
        poly = xp.zeros(tuple(x.shape), dtype=c128)
        for m in range(k + 1):
            if G[m] != 0:
                poly = poly + xp.asarray(math.comb(k, m) * G[m], dtype=c128) * x ** (k - m)
        acc = acc + xp.asarray(coef, dtype=c128) * poly * e
    return acc


def _xp_draw_evaluate(dist, sep, per, params, xp):
    """``draw`` and ``evaluate`` of the closed rule on namespace ``xp``: the draws from
    :func:`gsbref._backend.generator`, the per-sample closed forms and (product form) the values of
    the other factors by array-API operations; only the coefficients ``G^(m)(r)`` (per coordinate,
    from the parameters) were computed in mpmath."""
    from .._backend import generator
    from ..functions._expr import evaluate as eval_tree
    from ..functions._function import _prod_except_xp

    d = dist.event_size
    ev = tuple(dist.event_shape)
    b = sep.b_float
    prod = sep.kind == "prod"

    def draw(rng, n):
        n = _check_n(n)
        return xp.reshape(dist.sample(generator(xp, rng), n), (n,) + ev)

    def evaluate(z, lookahead=False):
        S = z.shape[0]
        zf = xp.reshape(z, (S, d))
        others = None
        if prod:
            vals = eval_tree(sep.elementwise, zf, "float", xp)
            if isinstance(vals, (int, float)):
                vals = xp.full((S, d), float(vals), dtype=xp.float64)
            others = _prod_except_xp(xp.broadcast_to(vals, (S, d)), xp)
        est = {}
        for p in params:
            cols = [b * xp.real(_term_rule_xp(zf[:, j], per[j].get(p, []), xp)) for j in range(d)]
            out = xp.stack(cols, axis=-1)
            if prod:
                out = out * others
            est[p] = dist._reduce_to_param(p, xp.reshape(out, (S,) + ev), 1)
        return est, {}

    return draw, evaluate


def _prod_except(x):
    ones = np.ones(x.shape[:-1] + (1,))
    prefix = np.concatenate([ones, np.cumprod(x[..., :-1], axis=-1)], axis=-1)
    suffix = np.concatenate([np.cumprod(x[..., :0:-1], axis=-1)[..., ::-1], ones], axis=-1)
    return prefix * suffix
