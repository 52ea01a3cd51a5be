"""Point mass at ``loc`` with independent coordinates, ``Dirac(loc)``.

``log phi(w) = i loc w``, so ``d/d loc log phi = (i w)``: theorem 1 with eq. 15 gives
``d/d loc E[f(z)] = f'(loc)``, i.e. ordinary (deterministic) backpropagation.  A point mass has no
density with respect to Lebesgue measure, so :meth:`Dirac.log_prob` and :meth:`Dirac.score` raise
:class:`NoDensityError` (a subclass of both ``ValueError`` and ``NotImplementedError``): the
score-function estimator does not apply.

>>> d = Dirac(loc=[0.5, -1.0])
>>> d.sample(0, 2).tolist()
[[0.5, -1.0], [0.5, -1.0]]
>>> d.a_coefficients(2)["loc"].tolist()
[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
>>> d.variance().tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import namespace
from ._base import REAL, Factorized, Parameter

__all__ = ["Dirac", "NoDensityError"]


class NoDensityError(ValueError, NotImplementedError):
    """Raised for densities (and scores) of distributions that have none, such as a point mass."""


_NO_DENSITY = (
    "Dirac: a point mass has no density (w.r.t. Lebesgue measure), so log_prob and the score "
    "d log p / d loc do not exist and the score-function estimator does not apply; the gradient "
    "is d/d loc E[f(z)] = f'(loc) (theorem 1 with eq. 15: ordinary backpropagation)"
)


class Dirac(Factorized):
    parameters = (Parameter("loc", REAL, (-3.0, 3.0), doc="location of the point mass"),)
    support = (-math.inf, math.inf)

    def __init__(self, loc=0.0):
        self._init(loc=loc)

    @staticmethod
    def _logpdf(M, z, loc):
        raise NoDensityError(_NO_DENSITY)

    @staticmethod
    def _score(M, z, loc):
        raise NoDensityError(_NO_DENSITY)

    def log_prob(self, z):
        raise NoDensityError(_NO_DENSITY)

    def score(self, z):
        raise NoDensityError(_NO_DENSITY)

    @staticmethod
    def _log_mgf(M, c, loc):
        return loc * c

    @staticmethod
    def _grad_log_mgf(M, c, loc):
        return {"loc": c + 0 * loc}

    @staticmethod
    def _a(M, n, loc):
        return {"loc": M.one * (n == 1) + 0 * loc}

    @staticmethod
    def _mean(M, loc):
        return loc

    @staticmethod
    def _variance(M, loc):
        return 0 * loc

    @staticmethod
    def _sample(rng, n, loc):
        xp = namespace(loc)
        return xp.asarray(loc, dtype=xp.float64, copy=True)

    @staticmethod
    def _quad_points(M, loc):
        return [loc]

    @staticmethod
    def _mgf_strip(M, loc):
        """E[exp(c z)] = exp(c loc) is finite for every c."""
        return (-M.inf, M.inf)

    @staticmethod
    def _cdf(z, loc):
        return (np.asarray(z, dtype=float) >= loc).astype(float)
