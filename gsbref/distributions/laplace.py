"""Laplace with independent coordinates, ``Laplace(loc, scale)``: density
``exp(-|z - loc| / scale) / (2 scale)``, mean ``loc``, variance ``2 scale**2``.

Characteristic function: ``log phi(w) = i loc w - log(1 + scale**2 w**2)``.  (The paper prints the
location term as ``i w``; without the factor ``loc`` the ``d/d loc`` rule of eq. 18 cannot be
derived.)  Theorem 1 coefficients (eq. 18): ``d/d loc log phi = (i w)`` and
``d/d scale log phi = 2 scale (i w)**2 / (1 - scale**2 (i w)**2) = sum_{n even >= 2} 2 scale**(n-1) (i w)**n``,
a series that converges for ``scale |w| < 1``.

>>> lap = Laplace(loc=0.5, scale=2.0)
>>> lap.a_coefficients(4)["scale"].tolist()
[0.0, 0.0, 4.0, 0.0, 16.0]
>>> bool(abs(lap.log_cf(0.3) - (0.5j * 0.3 - np.log(1 + 4.0 * 0.09))) < 1e-15)
True
"""

from __future__ import annotations

import math

import numpy as np

from ._base import POSITIVE, REAL, Factorized, Parameter

__all__ = ["Laplace"]


class Laplace(Factorized):
    parameters = (
        Parameter("loc", REAL, (-3.0, 3.0), doc="location (mean and median)"),
        Parameter("scale", POSITIVE, (0.1, 3.0), log_scale=True, doc="scale b (variance 2 b**2)"),
    )
    support = (-math.inf, math.inf)
    #: the density has a kink at z = loc, so it is not smooth in ``loc`` (read by the oracle)
    _smooth_in_params = False

    def __init__(self, loc=0.0, scale=1.0):
        self._init(loc=loc, scale=scale)

    @staticmethod
    def _logpdf(M, z, loc, scale):
        return -M.abs(z - loc) / scale - M.log(2 * scale)

    @staticmethod
    def _score(M, z, loc, scale):
        # d/d loc at the kink z == loc is set to 0 (the density is not differentiable there;
        # the set has probability zero)
        d = z - loc
        return {"loc": M.sign(d) / scale, "scale": (M.abs(d) / scale - 1) / scale}

    @staticmethod
    def _log_mgf(M, c, loc, scale):
        # log(1 - b^2 c^2) = log(1 - b c) + log(1 + b c): the principal logs of the two factors
        # keep the result continuous along the imaginary axis (both factors have positive real part)
        return loc * c - M.log(1 - scale * c) - M.log(1 + scale * c)

    @staticmethod
    def _grad_log_mgf(M, c, loc, scale):
        return {"loc": c + 0 * loc, "scale": 2 * scale * c * c / (1 - scale * scale * c * c)}

    @staticmethod
    def _a(M, n, loc, scale):
        a_loc = M.one * (n == 1) + 0 * loc
        if n >= 2 and n % 2 == 0:
            a_scale = 2 * scale ** (n - 1) + 0 * loc
        else:
            a_scale = 0 * scale + 0 * loc
        return {"loc": a_loc, "scale": a_scale}

    @staticmethod
    def _mean(M, loc, scale):
        return loc + 0 * scale

    @staticmethod
    def _variance(M, loc, scale):
        return 2 * scale * scale + 0 * loc

    @staticmethod
    def _sample(rng, n, loc, scale):
        return rng.laplace(loc, scale)

    @staticmethod
    def _quad_points(M, loc, scale):
        # the kink at loc must be a breakpoint; +-12 b leaves e^-12 ~ 6e-6 of mass outside each,
        # which the infinite end pieces integrate smoothly
        return [loc - 12 * scale, loc - 3 * scale, loc, loc + 3 * scale, loc + 12 * scale]

    @staticmethod
    def _mgf_strip(M, loc, scale):
        """E[exp(c z)] is finite for -1/scale < Re(c) < 1/scale."""
        return (-1 / scale, 1 / scale)

    @staticmethod
    def _cdf(z, loc, scale):
        u = (np.asarray(z, dtype=float) - loc) / scale
        # exp of a non-positive argument only: no overflow on either branch
        return np.where(u < 0, 0.5 * np.exp(-np.abs(u)), 1.0 - 0.5 * np.exp(-np.abs(u)))
