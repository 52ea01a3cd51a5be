"""Gamma with independent coordinates, ``Gamma(shape, scale)`` -- the paper's Gamma(k, mu) with
shape ``k`` and scale ``mu`` (mean ``k mu``).  ``Gamma.from_rate(shape, rate)`` builds it from a
rate (``scale = 1 / rate``; gradients are still with respect to ``shape`` and ``scale``).

Theorem 1 coefficients (eq. 19): ``log phi(w) = -k log(1 - i mu w)``, so
``d/dk log phi = sum_{n>=1} mu^n (i w)^n / n`` and ``d/dmu log phi = sum_{n>=1} k mu^(n-1) (i w)^n``.

>>> Gamma(shape=3.0, scale=0.5).a_coefficients(3)["shape"].tolist()
[0.0, 0.5, 0.125, 0.041666666666666664]
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import asarray, is_numpy, namespace, to_numpy
from ._base import POSITIVE, Factorized, Parameter, validate_parameter

__all__ = ["Gamma"]


#: the rate of :meth:`Gamma.from_rate` (validated like a declared parameter; not stored)
_RATE = Parameter("rate", POSITIVE, (0.2, 10.0), log_scale=True, doc="rate 1/mu")


class Gamma(Factorized):
    parameters = (
        Parameter("shape", POSITIVE, (0.2, 10.0), log_scale=True, doc="shape k"),
        Parameter("scale", POSITIVE, (0.1, 5.0), log_scale=True, doc="scale mu (mean = k mu)"),
    )
    support = (0.0, math.inf)

    def __init__(self, shape=1.0, scale=1.0):
        self._init(shape=shape, scale=scale)

    @classmethod
    def from_rate(cls, shape, rate):
        """Gamma with ``scale = 1 / rate`` (``rate`` must lie in (0, inf)).

        >>> Gamma.from_rate(2.0, 4.0)
        Gamma(shape=2.0, scale=0.25)
        """
        r = validate_parameter("Gamma.from_rate", _RATE, rate)  # names 'rate' for every refusal
        try:
            xp = namespace(shape, rate)
        except TypeError:  # a non-array shape: the constructor below names it
            xp = np
        try:
            np.broadcast_shapes(np.shape(to_numpy(shape)), r.shape)
        except ValueError:
            raise ValueError(f"Gamma.from_rate: parameters 'shape' {np.shape(to_numpy(shape))} and 'rate' "
                             f"{r.shape} do not broadcast") from None
        return cls(shape=shape, scale=1.0 / (r if is_numpy(xp) else asarray(rate, xp, xp.float64)))

    @staticmethod
    def _logpdf(M, z, shape, scale):
        return (shape - 1) * M.log(z) - z / scale - M.lgamma(shape) - shape * M.log(scale)

    @staticmethod
    def _score(M, z, shape, scale):
        return {"shape": M.log(z) - M.log(scale) - M.digamma(shape), "scale": (z / scale - shape) / scale}

    @staticmethod
    def _log_mgf(M, c, shape, scale):
        return -shape * M.log(1 - scale * c)

    @staticmethod
    def _grad_log_mgf(M, c, shape, scale):
        return {"shape": -M.log(1 - scale * c), "scale": shape * c / (1 - scale * c)}

    @staticmethod
    def _a(M, n, shape, scale):
        if n == 0:
            return {"shape": 0 * shape * scale, "scale": 0 * shape * scale}
        return {"shape": scale**n / n + 0 * shape, "scale": shape * scale ** (n - 1)}

    @staticmethod
    def _mean(M, shape, scale):
        return shape * scale

    @staticmethod
    def _variance(M, shape, scale):
        return shape * scale * scale

    @staticmethod
    def _sample(rng, n, shape, scale):
        return rng.gamma(shape, scale)

    @staticmethod
    def _quad_points(M, shape, scale):
        s = M.sqrt(shape)
        pts = [scale * shape, scale * (shape + 4 * s + 4), scale * (shape + 12 * s + 30)]
        return pts

    @staticmethod
    def _endpoint_powers(M, shape, scale):
        """The density behaves like ``z^(shape - 1)`` at 0 (used by the oracle's quadrature)."""
        return (shape, None)

    @staticmethod
    def _mgf_strip(M, shape, scale):
        """E[exp(c z)] is finite for Re(c) in this interval."""
        return (-M.inf, 1 / scale)

    @staticmethod
    def _cdf(z, shape, scale):
        from scipy.special import gammainc

        return gammainc(shape, np.asarray(z) / scale)
