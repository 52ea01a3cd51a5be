"""Two one-parameter special cases of :class:`~gsbref.distributions.Gamma`, each with its own
parameter (so gradients are with respect to that parameter):

* ``Exponential(scale)`` = ``Gamma(shape=1, scale)``; mean ``scale``.
  ``log phi(w) = -log(1 - scale i w)``, ``d/d scale log phi = sum_{n>=1} scale**(n-1) (i w)**n``.
* ``ChiSquared(df)`` = ``Gamma(shape=df/2, scale=2)``; mean ``df``.
  ``log phi(w) = -(df/2) log(1 - 2 i w)``, ``d/d df log phi = sum_{n>=1} (2**(n-1)/n) (i w)**n``.

Both series converge for ``|w| < 1/scale`` (``|w| < 1/2`` for the chi-squared).
``to_gamma()`` returns the equivalent ``Gamma``; the chain rule links the gradients
(``d/d df = (1/2) d/d shape``).

>>> Exponential(scale=0.5).a_coefficients(3)["scale"].tolist()
[0.0, 1.0, 0.5, 0.25]
>>> ChiSquared(df=3.0).a_coefficients(3)["df"].tolist()
[0.0, 1.0, 1.0, 1.3333333333333333]
>>> ChiSquared(df=3.0).to_gamma()
Gamma(shape=1.5, scale=2.0)
"""

from __future__ import annotations

import math

import numpy as np

from ._base import POSITIVE, Factorized, Parameter
from .gamma import Gamma

__all__ = ["Exponential", "ChiSquared"]


class Exponential(Factorized):
    parameters = (Parameter("scale", POSITIVE, (0.1, 5.0), log_scale=True, doc="scale (= mean)"),)
    support = (0.0, math.inf)

    def __init__(self, scale=1.0):
        self._init(scale=scale)

    def to_gamma(self) -> Gamma:
        """The same distribution as ``Gamma(shape=1, scale=scale)``."""
        return Gamma(shape=self.xp.ones_like(self.scale), scale=self.scale)

    @staticmethod
    def _logpdf(M, z, scale):
        return -z / scale - M.log(scale)

    @staticmethod
    def _score(M, z, scale):
        return {"scale": (z / scale - 1) / scale}

    @staticmethod
    def _log_mgf(M, c, scale):
        return -M.log(1 - scale * c)

    @staticmethod
    def _grad_log_mgf(M, c, scale):
        return {"scale": c / (1 - scale * c)}

    @staticmethod
    def _a(M, n, scale):
        if n == 0:
            return {"scale": 0 * scale}
        return {"scale": scale ** (n - 1)}

    @staticmethod
    def _mean(M, scale):
        return scale

    @staticmethod
    def _variance(M, scale):
        return scale * scale

    @staticmethod
    def _sample(rng, n, scale):
        return rng.exponential(scale)

    @staticmethod
    def _quad_points(M, scale):
        return [scale, 8 * scale, 40 * scale]

    @staticmethod
    def _endpoint_powers(M, scale):
        """The density behaves like ``z^0`` at 0: regular (p = 1)."""
        return (1 + 0 * scale, None)

    @staticmethod
    def _mgf_strip(M, scale):
        """E[exp(c z)] is finite for Re(c) < 1/scale."""
        return (-M.inf, 1 / scale)

    @staticmethod
    def _cdf(z, scale):
        return -np.expm1(-np.asarray(z, dtype=float) / scale)


class ChiSquared(Factorized):
    parameters = (Parameter("df", POSITIVE, (0.4, 20.0), log_scale=True, doc="degrees of freedom (= mean)"),)
    support = (0.0, math.inf)

    def __init__(self, df=1.0):
        self._init(df=df)

    def to_gamma(self) -> Gamma:
        """The same distribution as ``Gamma(shape=df/2, scale=2)``."""
        return Gamma(shape=self.df / 2, scale=self.xp.full_like(self.df, 2.0))

    @staticmethod
    def _logpdf(M, z, df):
        k = df / 2
        return (k - 1) * M.log(z) - z / 2 - M.lgamma(k) - k * M.log(2 * M.one)

    @staticmethod
    def _score(M, z, df):
        return {"df": (M.log(z) - M.log(2 * M.one) - M.digamma(df / 2)) / 2}

    @staticmethod
    def _log_mgf(M, c, df):
        return -(df / 2) * M.log(1 - 2 * c)

    @staticmethod
    def _grad_log_mgf(M, c, df):
        return {"df": -M.log(1 - 2 * c) / 2 + 0 * df}

    @staticmethod
    def _a(M, n, df):
        if n == 0:
            return {"df": 0 * df}
        return {"df": (2 * M.one) ** (n - 1) / n + 0 * df}

    @staticmethod
    def _mean(M, df):
        return df

    @staticmethod
    def _variance(M, df):
        return 2 * df

    @staticmethod
    def _sample(rng, n, df):
        return rng.chisquare(df)

    @staticmethod
    def _quad_points(M, df):
        s = M.sqrt(df)
        return [df, df + 6 * s + 8, df + 18 * s + 60]

    @staticmethod
    def _endpoint_powers(M, df):
        """The density behaves like ``z^(df/2 - 1)`` at 0."""
        return (df / 2, None)

    @staticmethod
    def _mgf_strip(M, df):
        """E[exp(c z)] is finite for Re(c) < 1/2."""
        return (-M.inf, M.one / 2)

    @staticmethod
    def _cdf(z, df):
        from scipy.special import gammainc

        return gammainc(df / 2, np.asarray(z, dtype=float) / 2)
