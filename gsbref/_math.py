"""Math namespaces with the same names: float64 arrays (NumPy/SciPy, or any array-API backend)
and mpmath scalars.

Densities, scores and characteristic functions are written once, as functions of a namespace
``M`` and the parameters, and evaluated either on float64 arrays (``M = NP``, or
``M = array_math(xp)`` for another array namespace ``xp`` such as CuPy or ``array_api_strict``) or
on mpmath numbers at the caller's precision (``M = MP``).  Only the functions the distributions
need are here.  ``M.array`` tells the two kinds apart (``True`` for array namespaces); the array
namespaces also carry ``where``, ``xlogy``, ``xlog1py``, ``expit`` and ``logaddexp`` and their
array namespace as ``M.xp``.  ``array_math(numpy)`` is ``NP`` itself (so NumPy results are those
of NumPy/SciPy), and ``NP.xp`` is the ``numpy`` module.

>>> bool(abs(NP.lgamma(np.array([5.0]))[0] - NP.log(24.0)) < 1e-15)
True
>>> array_math(np) is NP
True
>>> from mpmath import workdps
>>> with workdps(30):
...     bool(abs(MP.digamma(1) + MP.euler) < 1e-29)
True
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
from scipy import special as _sp

from ._backend import _NUMPY_NS, backend_name, is_numpy, special

__all__ = ["NP", "MP", "Namespace", "array_math"]


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
    array=True, xp=np, where=np.where, xlogy=_sp.xlogy, xlog1py=_sp.xlog1py, expit=_sp.expit,
    logaddexp=np.logaddexp,
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
    asarray=lambda x: x, array=False, xp=None,
)


def _lift(xp, fn):
    """``fn`` accepting Python scalars too (the standard's functions take arrays only)."""

    def lifted(*args):
        return fn(*(a if hasattr(a, "shape") else xp.asarray(a, dtype=xp.float64) for a in args))

    lifted.__name__ = getattr(fn, "__name__", "lifted")
    return lifted


@functools.lru_cache(maxsize=None)
def _array_math(xp) -> Namespace:
    sp = special(xp)
    L = functools.partial(_lift, xp)

    def S(name):
        # special functions are looked up on first call: a backend may lack one the caller never uses
        return _lift(xp, lambda *args: getattr(sp, name)(*args))

    return Namespace(
        backend_name(xp),
        exp=L(xp.exp), log=L(xp.log), log1p=L(xp.log1p), expm1=L(xp.expm1), sqrt=L(xp.sqrt),
        abs=L(xp.abs), sign=L(xp.sign), sin=L(xp.sin), cos=L(xp.cos), tanh=L(xp.tanh),
        lgamma=S("gammaln"), digamma=S("digamma"), polygamma=lambda n, x: sp.polygamma(n, x),
        gamma=S("gamma"), betaln=S("betaln"), hyp1f1=S("hyp1f1"), erfc=S("erfc"),
        pi=math.pi, euler=float(np.euler_gamma), inf=math.inf, one=1.0, zero=0.0,
        asarray=lambda x: xp.asarray(x, dtype=xp.float64),
        array=True, xp=xp, where=xp.where, xlogy=S("xlogy"), xlog1py=S("xlog1py"), expit=S("expit"),
        logaddexp=L(xp.logaddexp),
    )


def array_math(xp) -> Namespace:
    """The math namespace ``M`` for arrays of namespace ``xp`` (``NP`` for NumPy; cached)."""
    if xp is _NUMPY_NS or is_numpy(xp):
        return NP
    return _array_math(xp)
