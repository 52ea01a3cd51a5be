"""Two math namespaces with the same names: float64 arrays (NumPy/SciPy) and mpmath scalars.

Densities, scores and characteristic functions are written once, as functions of a namespace
``M`` and the parameters, and evaluated either on float64 arrays (``M = NP``) or on mpmath numbers
at the caller's precision (``M = MP``).  Only the functions the distributions need are here.

>>> bool(abs(NP.lgamma(np.array([5.0]))[0] - NP.log(24.0)) < 1e-15)
True
>>> from mpmath import workdps
>>> with workdps(30):
...     bool(abs(MP.digamma(1) + MP.euler) < 1e-29)
True
"""

from __future__ import annotations

import mpmath
import numpy as np
from scipy import special as _sp

__all__ = ["NP", "MP", "Namespace"]


class Namespace:
    """A bag of math functions (attributes) with a name."""

    def __init__(self, name: str, **functions):
        self.name = name
        self.__dict__.update(functions)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"<math namespace {self.name}>"


NP = Namespace(
    "numpy",
    exp=np.exp, log=np.log, log1p=np.log1p, expm1=np.expm1, sqrt=np.sqrt, abs=np.abs,
    sign=np.sign, sin=np.sin, cos=np.cos, tanh=np.tanh,
    lgamma=_sp.gammaln, digamma=_sp.digamma, polygamma=_sp.polygamma, gamma=_sp.gamma,
    betaln=_sp.betaln, hyp1f1=_sp.hyp1f1, erfc=_sp.erfc,
    pi=np.pi, euler=np.euler_gamma, inf=np.inf, one=1.0, zero=0.0,
    asarray=lambda x: np.asarray(x, dtype=float),
)


def _mp_sign(x):
    return mpmath.sign(x)


MP = Namespace(
    "mpmath",
    exp=mpmath.exp, log=mpmath.log, log1p=mpmath.log1p, expm1=mpmath.expm1, sqrt=mpmath.sqrt,
    abs=abs, sign=_mp_sign, sin=mpmath.sin, cos=mpmath.cos, tanh=mpmath.tanh,
    lgamma=mpmath.loggamma, digamma=mpmath.digamma, polygamma=mpmath.polygamma,
    gamma=mpmath.gamma, betaln=lambda a, b: mpmath.log(mpmath.beta(a, b)),
    hyp1f1=mpmath.hyp1f1, erfc=mpmath.erfc,
    pi=mpmath.pi, euler=mpmath.euler, inf=mpmath.inf, one=mpmath.mpf(1), zero=mpmath.mpf(0),
    asarray=lambda x: x,
)
