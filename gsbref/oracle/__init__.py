"""The oracle: exact ``E[f]`` and ``dE[f]/dtheta`` at any precision, by several independent methods.

>>> import gsbref
>>> from gsbref import oracle
>>> g = oracle.gradient(gsbref.Gamma(shape=3.0, scale=0.5), "sum(exp(-0.49*z))", dps=30)
>>> # closed form: E[exp(-e z)] = (1 + e mu)^-k, so dE/dk = -log(1 + e mu) E
>>> import mpmath
>>> with mpmath.workdps(30):
...     exact = -mpmath.log(1 + mpmath.mpf('0.49') / 2) * (1 + mpmath.mpf('0.49') / 2) ** -3
...     bool(abs(g["shape"] - exact) < mpmath.mpf(10) ** -25)
True

Methods (``method=``), each available where it applies (:func:`methods` lists them for a case):

``"closed"``     moment-generating-function closed forms for separable exponential-polynomial f
                 (polynomials, exp, sin, cos) under families with independent coordinates;
``"quad"``       tanh-sinh quadrature of ``f * dp/dtheta`` (``f * p * score``), together with ``E[f]``;
``"diff"``       numerical differentiation (doubled precision) of ``theta -> E_theta[f]`` computed by
                 quadrature, or by enumeration for discrete families;
``"enumerate"``  exact sums over all states (Bernoulli, Categorical);
``"exact"``      Dirac: ``f(loc)`` and its gradient by Taylor-mode jets at mpmath precision;
``"auto"``       the first applicable of closed, exact, enumerate, quad.

``dps=None`` is the float64 fast path: SciPy quadrature (``scipy.integrate.quad_vec``) for
separable f under families with independent coordinates, float enumeration for discrete families;
other cases run the mpmath path at 17 digits and convert.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np

from ..distributions._base import Distribution, Factorized
from ._results import OracleGradient, OracleValue, to_float

__all__ = ["expectation", "gradient", "methods", "truncation_bias", "best_order", "OracleValue",
           "OracleGradient", "to_float", "implicit_derivative"]

#: extra decimal digits carried internally beyond the requested ``dps``
GUARD_DIGITS = 10


def _as_function(f):
    from ..functions import as_function

    return as_function(f)


def _kind(dist: Distribution) -> str:
    name = type(dist).__name__
    if name == "Dirac":
        return "dirac"
    if dist.discrete:
        return "discrete"
    if name == "MultivariateGaussian":
        return "mvn"
    if name == "Dirichlet":
        return "dirichlet"
    if isinstance(dist, Factorized):
        return "factorized"
    raise TypeError(f"the oracle does not know the distribution {name}")


def methods(dist: Distribution, f) -> list[str]:
    """The methods that apply to ``(dist, f)``, preferred first."""
    f = _as_function(f)
    kind = _kind(dist)
    if kind == "dirac":
        return ["exact", "diff"]
    if kind == "discrete":
        return ["enumerate", "diff"]
    if kind in ("mvn", "dirichlet"):
        return ["quad", "diff"]
    from ._closed import closed_available

    return (["closed"] if closed_available(dist, f) else []) + ["quad", "diff"]


def _check_dps(dps):
    if dps is None:
        return None
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)) or dps < 5:
        raise ValueError(f"dps must be an integer >= 5 (decimal digits) or None for float64, got {dps!r}")
    return int(dps)


def _resolve(dist, f, method):
    avail = methods(dist, f)
    if method == "auto":
        return avail[0]
    if method not in avail:
        raise ValueError(
            f"method={method!r} does not apply to {type(dist).__name__} with this f; available: {avail}"
        )
    return method


def _finish_param(dist, name, arr):
    """Reduce per-coordinate values to the parameter's shape; a scalar parameter gives a scalar."""
    if isinstance(dist, Factorized) and not dist.discrete:
        arr = dist._reduce_to_param(name, np.asarray(arr, dtype=object), 0)
    arr = np.asarray(arr, dtype=object)
    return arr.reshape(()).item() if arr.ndim == 0 else arr


def _moments(dist, f, method, with_grad, convention):
    kind = _kind(dist)
    if kind == "dirac":
        return _dirac(dist, f, method, with_grad) + (None,)
    if kind == "discrete":
        from ._discrete import discrete_moments

        m = "enumerate" if method in ("auto", "enumerate") or not with_grad else method
        return discrete_moments(dist, f, m, convention or "reference-last", mp_mode=True)
    if kind == "mvn":
        from ._multivariate import mvn_moments

        return mvn_moments(dist, f, method, with_grad) + (None,)
    if kind == "dirichlet":
        from ._multivariate import dirichlet_moments

        return dirichlet_moments(dist, f, method, with_grad) + (None,)
    if method == "closed":
        from ._closed import closed_moments

        return closed_moments(dist, f, with_grad) + (None,)
    from ._factorized import factorized_moments

    return factorized_moments(dist, f, method, with_grad) + (None,)


def _dirac(dist, f, method, with_grad):
    from ._factorized import central_difference

    shape = dist.event_shape
    loc = [mpmath.mpf(float(x)) for x in np.broadcast_to(dist.params["loc"], shape).reshape(-1)]
    E = f.mp(loc)
    eps = mpmath.mpf(2) ** (-mpmath.mp.prec)
    E_err = eps * 8 * max(abs(E), 1)
    if not with_grad:
        return E, E_err, {}, {}
    if method == "exact":
        g = np.asarray(f.mp_gradient(loc), dtype=object).reshape(shape)
        err = np.vectorize(lambda v: eps * 64 * max(abs(v), 1), otypes=[object])(g)
    else:
        g = np.empty(len(loc), dtype=object)
        err = np.empty(len(loc), dtype=object)
        for j in range(len(loc)):
            def F(t, j=j):
                z = list(loc)
                z[j] = t
                return f.mp(z), mpmath.mpf(0)
            g[j], err[j] = central_difference(F, loc[j])
        g, err = g.reshape(shape), err.reshape(shape)
    return E, E_err, {"loc": g}, {"loc": err}


def expectation(dist: Distribution, f: Any, dps: int | None = 30, method: str = "auto") -> OracleValue:
    """Exact ``E_{z ~ dist}[f(z)]`` with an error estimate.

    ``f`` is a formula string, a :class:`gsbref.functions.Function` or a callable written with
    :mod:`gsbref.ops`; ``dps`` the decimal precision (``None``: float64 fast path); ``method`` one
    of :func:`methods` or ``"auto"``.
    """
    dps = _check_dps(dps)
    f = _as_function(f)
    if dps is None:
        from ._float import float_moments

        E, E_err, _, _, m = float_moments(dist, f, method, with_grad=False, convention=None)
        return OracleValue(E, E_err, m, None)
    method = _resolve(dist, f, method)
    with mpmath.workdps(dps + GUARD_DIGITS):
        E, E_err, _, _, _ = _moments(dist, f, method, False, None)
        E = mpmath.re(E) if isinstance(E, mpmath.mpc) else E
    return OracleValue(E, E_err, method, dps)


def gradient(dist: Distribution, f: Any, dps: int | None = 30, method: str = "auto",
             convention: str | None = None) -> OracleGradient:
    """Exact ``dE_{z ~ dist}[f(z)] / dtheta`` for every parameter of ``dist``, with error estimates.

    Returns an :class:`OracleGradient`: ``{name: mpf or object array with the parameter's shape}``,
    with ``.errors``, ``.method``, ``.dps`` and ``.expectation``.  ``convention`` applies to
    ``Categorical(probs)``: ``"reference-last"`` (default, the paper's eq. 17, shape ``(..., K-1)``)
    or ``"free"`` (shape ``(..., K)``).
    """
    dps = _check_dps(dps)
    f = _as_function(f)
    if convention not in (None, "reference-last", "free"):
        raise ValueError(f"convention must be 'reference-last' or 'free', got {convention!r}")
    if dps is None:
        from ._float import float_moments

        E, E_err, g, ge, m = float_moments(dist, f, method, with_grad=True, convention=convention)
        return OracleGradient(g, ge, m, None, OracleValue(E, E_err, m, None), convention)
    method = _resolve(dist, f, method)
    with mpmath.workdps(dps + GUARD_DIGITS):
        E, E_err, g, ge, conv = _moments(dist, f, method, True, convention)
        values = {k: _finish_param(dist, k, v) for k, v in g.items()}
        errors = {k: _finish_param(dist, k, v) for k, v in ge.items()}
    return OracleGradient(values, errors, method, dps, OracleValue(E, E_err, method, dps), conv)


from .truncation import best_order, truncation_bias  # noqa: E402  (uses gradient() above)
from .implicit import implicit_derivative  # noqa: E402
