"""Gaussian with independent coordinates, ``Gaussian(loc, scale)``; ``scale`` is the standard
deviation.  Theorem 1 coefficients: ``d log phi / d loc = (i w)``, ``d log phi / d scale =
scale (i w)^2`` -- the Hessian rule of eq. 14 (``d/d scale = scale E[f'']`` per coordinate).

>>> g = Gaussian(loc=0.5, scale=2.0)
>>> g.a_coefficients(3)["scale"].tolist()
[0.0, 0.0, 2.0, 0.0]
"""

from __future__ import annotations

import math

import numpy as np

from ._base import POSITIVE, REAL, Factorized, Parameter

__all__ = ["Gaussian"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Gaussian(Factorized):
    parameters = (
        Parameter("loc", REAL, (-3.0, 3.0), doc="mean"),
        Parameter("scale", POSITIVE, (0.1, 3.0), log_scale=True, doc="standard deviation"),
    )
    support = (-math.inf, math.inf)

    def __init__(self, loc=0.0, scale=1.0):
        self._init(loc=loc, scale=scale)

    @staticmethod
    def _logpdf(M, z, loc, scale):
        u = (z - loc) / scale
        return -0.5 * u * u - M.log(scale) - 0.5 * M.log(2 * M.pi)

    @staticmethod
    def _score(M, z, loc, scale):
        u = (z - loc) / scale
        return {"loc": u / scale, "scale": (u * u - 1) / scale}

    @staticmethod
    def _log_mgf(M, c, loc, scale):
        return loc * c + 0.5 * scale * scale * c * c

    @staticmethod
    def _grad_log_mgf(M, c, loc, scale):
        return {"loc": c + 0 * loc, "scale": scale * c * c}

    @staticmethod
    def _a(M, n, loc, scale):
        return {"loc": M.one * (n == 1) + 0 * loc, "scale": scale * float(n == 2)}

    @staticmethod
    def _mean(M, loc, scale):
        return loc + 0 * scale

    @staticmethod
    def _variance(M, loc, scale):
        return scale * scale + 0 * loc

    @staticmethod
    def _sample(rng, n, loc, scale):
        return loc + scale * rng.standard_normal(loc.shape)

    @staticmethod
    def _quad_points(M, loc, scale):
        return [loc - 3 * scale, loc, loc + 3 * scale]

    @staticmethod
    def _cdf(z, loc, scale):
        from scipy.special import ndtr

        return ndtr((np.asarray(z) - loc) / scale)
