"""The exact values the libraries are compared with, and the points at which they are compared.

Bulk reference (float64): ``gsbref.special`` (``gamma_dz_dshape(z, k)``, ``beta_dz_dparams(z, a,
b)``), claimed accurate to 1e-10 relative -- far below the float64 tolerance of the checks
(``sqrt(eps) = 1.5e-8``).  Confirmation (mpmath): ``gsbref.oracle.implicit_derivative(dist, z,
dps)``; every reported finding and a random subset of the bulk are recomputed with it.

Points: a grid cell is a parameter value and a probability ``u``; the point is the ``u``-quantile
from SciPy's inverse regularised incomplete gamma/beta functions (``gammaincinv``/``gammainccinv``,
``betaincinv``), rounded to the dtype under test.  Only the rounded numbers are used afterwards (the
library and the reference see the same inputs), so the quantile need not be exact.
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
    """``d log z / dk`` for a standard gamma sample at ``log z``: float64 where ``exp(log z)`` is
    a normal number, the mpmath oracle (20 digits) elsewhere."""
    log_z, k = np.broadcast_arrays(np.asarray(log_z, float), np.asarray(k, float))
    out = np.empty(log_z.shape)
    ok = log_z > np.log(TINY["float64"])
    z = np.exp(np.where(ok, log_z, 0.0))
    if ok.any():
        out[ok] = gamma_dz_dshape(z[ok], k[ok]) / z[ok]
    for i in zip(*np.nonzero(~ok)):
        out[i] = float(mp_dlogz_dshape(log_z[i], k[i], 20))
    return out


# ----------------------------------------------------------------------------------------------
# mpmath confirmation
# ----------------------------------------------------------------------------------------------
def mp_implicit(dist, z, dps: int) -> dict:
    """``gsbref.oracle.implicit_derivative(dist, z, dps)`` as ``{parameter: mpf}``."""
    from ..oracle import implicit_derivative

    return dict(implicit_derivative(dist, z, dps=dps))


def mp_gamma_dz_dshape(z, k, dps: int = 30):
    from .. import distributions

    return mp_implicit(distributions.Gamma(float(k), 1.0), z, dps)["shape"]


def mp_beta_dz_dparams(z, a, b, dps: int = 30):
    from .. import distributions

    d = mp_implicit(distributions.Beta(float(a), float(b)), z, dps)
    return d["alpha"], d["beta"]


def mp_dlogz_dshape(log_z, k, dps: int = 30):
    import mpmath

    with mpmath.workdps(dps + 10):
        z = mpmath.exp(mpmath.mpf(float(log_z)))
        return mp_gamma_dz_dshape(z, k, dps) / z
