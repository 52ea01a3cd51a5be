"""The exact values the libraries are compared with, and the points at which they are compared.

Bulk reference (float64): ``gsbref.special`` (``gamma_dz_dshape(z, k)``, ``beta_dz_dparams(z, a,
b)``), and for the log-space gamma tangent :func:`dlogz_dshape`.  ``gsbref.special`` was measured
to 5.4e-12 relative on shapes 1e-4 ... 1e4 (``docs/results/implicit_accuracy.md``); the checks go
to 1e-6 ... 1e7, so every run re-measures it there against the mpmath oracle
(:func:`gsbref.conformance.validate_reference`, reported as "reference check") and the report
states the largest difference found.  Confirmation (mpmath): ``gsbref.oracle.implicit_derivative(
dist, z, dps, method)`` with both of its methods (:func:`confirm`); every reported finding is
recomputed with it at 30 digits.

Points: a grid cell is a parameter value and a probability ``u``; the point is the ``u``-quantile
from SciPy's inverse regularised incomplete gamma/beta functions (``gammaincinv``/``gammainccinv``,
``betaincinv``), rounded to the dtype under test.  Only the rounded numbers are used afterwards (the
library and the reference see the same inputs), so the quantile need not be exact (SciPy returns
the smallest normal number for some Beta quantiles that underflow; such points are still valid
inputs, only their nominal ``u`` is wrong).
"""

from __future__ import annotations

import numpy as np
from scipy import special as sc

EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}
TINY = {"float64": float(np.finfo(np.float64).tiny), "float32": float(np.finfo(np.float32).tiny)}


def available() -> tuple[bool, str]:
    """Whether the references exist (``gsbref.special`` and ``oracle.implicit_derivative``)."""
    try:
        from .. import special  # noqa: F401
        from ..oracle import implicit_derivative  # noqa: F401
    except ImportError as exc:
        return False, str(exc)
    return True, ""


def rnd(x, dtype: str) -> np.ndarray:
    """Round to ``dtype`` and back to float64 (exact)."""
    return np.asarray(np.asarray(x, dtype=float).astype(dtype), dtype=float)


def gamma_points(k, u, dtype: str) -> np.ndarray:
    """The ``u``-quantile of Gamma(k, 1) rounded to ``dtype`` (upper half from the complement)."""
    k, u = np.broadcast_arrays(np.asarray(k, float), np.asarray(u, float))
    with np.errstate(all="ignore"):
        z = np.where(u <= 0.5, sc.gammaincinv(k, u), sc.gammainccinv(k, 1 - u))
    return rnd(z, dtype)


def beta_points(a, b, u, dtype: str) -> np.ndarray:
    """The ``u``-quantile of Beta(a, b) rounded to ``dtype`` (upper half as ``1 - q(1-u; b, a)``)."""
    a, b, u = np.broadcast_arrays(*(np.asarray(v, float) for v in (a, b, u)))
    with np.errstate(all="ignore"):
        z = np.where(u <= 0.5, sc.betaincinv(a, b, u), 1 - sc.betaincinv(b, a, 1 - u))
    return rnd(z, dtype)


def log_gamma_points(k, u, dtype: str) -> np.ndarray:
    """``log`` of the ``u``-quantile of Gamma(k, 1), also where the quantile underflows: there
    ``P(k, x) ~ x**k / Gamma(k + 1)`` gives ``log x = (log u + lgamma(k + 1)) / k`` (any point
    will do, see the module docstring)."""
    k, u = np.broadcast_arrays(np.asarray(k, float), np.asarray(u, float))
    z = gamma_points(k, u, "float64")
    with np.errstate(all="ignore"):
        lz = np.where(z > TINY["float64"], np.log(np.where(z > 0, z, 1.0)), (np.log(u) + sc.gammaln(k + 1)) / k)
    return rnd(lz, dtype)


# ----------------------------------------------------------------------------------------------
# float64 bulk reference
# ----------------------------------------------------------------------------------------------
def gamma_dz_dshape(z, k) -> np.ndarray:
    from .. import special

    return np.asarray(special.gamma_dz_dshape(np.asarray(z, float), np.asarray(k, float)), dtype=float)


def beta_dz_dparams(z, a, b) -> tuple[np.ndarray, np.ndarray]:
    from .. import special

    da, db = special.beta_dz_dparams(np.asarray(z, float), np.asarray(a, float), np.asarray(b, float))
    return np.asarray(da, dtype=float), np.asarray(db, dtype=float)


def dlogz_dshape(log_z, k) -> np.ndarray:
    """``d log z / dk`` for a standard gamma sample at ``log z``.

    Where ``exp(log z)`` is a normal float64 number: ``gamma_dz_dshape(z, k) / z``.  Below that
    (``z < 2.2e-308``): ``(psi(k + 1) - log z) / k``, the implicit derivative of the leading term
    ``P(k, z) = z**k / Gamma(k + 1) * (1 + O(z))`` of the lower incomplete gamma function; the
    neglected terms change the result by a relative ``O(z)``, far below float64 resolution.  Both
    branches are checked against the mpmath oracle by :func:`gsbref.conformance.validate_reference`.
    """
    log_z, k = np.broadcast_arrays(np.asarray(log_z, float), np.asarray(k, float))
    out = np.empty(log_z.shape)
    ok = log_z > np.log(TINY["float64"])
    z = np.exp(np.where(ok, log_z, 0.0))
    if ok.any():
        out[ok] = gamma_dz_dshape(z[ok], k[ok]) / z[ok]
    if (~ok).any():
        out[~ok] = (sc.digamma(k[~ok] + 1) - log_z[~ok]) / k[~ok]
    return out


def bulk(quantity: str, point: dict) -> float:
    """The float64 bulk reference of ``quantity`` at one ``point`` (keys as in the records)."""
    if quantity == "gamma.shape":
        return float(gamma_dz_dshape(point["z"], point["k"]))
    if quantity == "loggamma.shape":
        return float(dlogz_dshape(point["log_z"], point["k"])[()])
    if quantity in ("beta.alpha", "beta.beta"):
        da, db = beta_dz_dparams(point["z"], point["a"], point["b"])
        return float(da if quantity == "beta.alpha" else db)
    raise ValueError(f"unknown quantity {quantity!r}")


# ----------------------------------------------------------------------------------------------
# mpmath confirmation
# ----------------------------------------------------------------------------------------------
METHODS = ("quad", "diff")


def mp_implicit(dist, z, dps: int, method: str = "quad") -> dict:
    """``gsbref.oracle.implicit_derivative(dist, z, dps, method)`` as ``{parameter: mpf}`` (one
    float64 point ``z``)."""
    from ..oracle import implicit_derivative

    return {k: v.reshape(-1)[0] for k, v in implicit_derivative(dist, [float(z)], dps=dps, method=method).items()}


def mp_gamma_dz_dshape(z, k, dps: int = 30, method: str = "quad"):
    from .. import distributions

    return mp_implicit(distributions.Gamma(float(k), 1.0), z, dps, method)["shape"]


def mp_beta_dz_dparams(z, a, b, dps: int = 30, method: str = "quad"):
    from .. import distributions

    d = mp_implicit(distributions.Beta(float(a), float(b)), z, dps, method)
    return d["alpha"], d["beta"]


def mp_dlogz_dshape(log_z, k, dps: int = 30, method: str = "quad"):
    """``d log z / dk`` at ``z = exp(log_z)`` evaluated in mpmath.  ``implicit_derivative`` reads
    its samples as float64 (so ``exp(-4605.75)`` would become 0 there); this calls the per-point
    function it is built on, :func:`gsbref.oracle.implicit.gamma_dz_dk_mp`, with the mpf ``z``."""
    import mpmath

    from ..oracle.implicit import gamma_dz_dk_mp

    with mpmath.workdps(dps + 10):
        z = mpmath.exp(mpmath.mpf(float(log_z)))
        return gamma_dz_dk_mp(z, float(k), dps, method) / z


def mp_exact(quantity: str, point: dict, dps: int = 30, method: str = "quad"):
    """The mpmath value of ``quantity`` at ``point`` (an mpf)."""
    if quantity == "gamma.shape":
        return mp_gamma_dz_dshape(point["z"], point["k"], dps, method)
    if quantity == "loggamma.shape":
        return mp_dlogz_dshape(point["log_z"], point["k"], dps, method)
    if quantity in ("beta.alpha", "beta.beta"):
        da, db = mp_beta_dz_dparams(point["z"], point["a"], point["b"], dps, method)
        return da if quantity == "beta.alpha" else db
    if quantity in ("beta.alpha (end to end)", "beta.beta (end to end)"):
        return mp_beta_gamma_construction(point["log_ga"], point["log_gb"], point["a"], point["b"], dps, method)[
            0 if quantity.startswith("beta.alpha") else 1]
    raise ValueError(f"unknown quantity {quantity!r}")


def mp_beta_gamma_construction(log_ga, log_gb, a, b, dps: int = 30, method: str = "quad"):
    """``(dz/da, dz/db)`` of ``z = g_a / (g_a + g_b)`` at ``g = exp(log g)`` with each gamma
    variate at its fixed uniform: ``+-z (1 - z) dlog g/dshape`` (mpmath)."""
    import mpmath

    with mpmath.workdps(dps + 10):
        s = mpmath.mpf(float(log_ga)) - mpmath.mpf(float(log_gb))
        zz = mpmath.exp(-abs(s)) / (1 + mpmath.exp(-abs(s))) ** 2
        return (zz * mp_dlogz_dshape(log_ga, a, dps, method), -zz * mp_dlogz_dshape(log_gb, b, dps, method))


def confirm(quantity: str, point: dict, dps: int = 30) -> dict:
    """Both oracle methods at ``dps`` digits: ``{"quad": str, "diff": str | None, "agree_digits":
    float | None, "value": mpf}`` (``diff`` is ``None`` where mpmath's differentiation of the
    incomplete gamma/beta function fails; the value is the quadrature's)."""
    import mpmath

    q = mp_exact(quantity, point, dps, "quad")
    try:
        d = mp_exact(quantity, point, dps, "diff")
    except (ValueError, ZeroDivisionError, mpmath.libmp.NoConvergence):
        d = None
    agree = None
    if d is not None:
        with mpmath.workdps(dps + 10):
            diff = abs(q - d)
            agree = float("inf") if diff == 0 else float(-mpmath.log10(diff / max(abs(q), mpmath.mpf(10) ** -300)))
    return {"quad": mpmath.nstr(q, 20), "diff": None if d is None else mpmath.nstr(d, 20),
            "agree_digits": agree, "value": q}
