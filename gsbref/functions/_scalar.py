"""Elementwise kernels on plain values, in two flavours chosen by the input's type.

* float flavour: Python numbers, NumPy numbers and float (or int) arrays.  Written to be stable
  over the whole real line: ``softplus`` through ``logaddexp``, ``sigmoid`` through
  ``scipy.special.expit``, ``sech2`` (the square of 1/cosh) through ``exp(-2|x|)``.
* mpmath flavour: mpmath numbers and NumPy object arrays holding them.  Each kernel is applied
  elementwise at the caller's current mpmath precision.  A kernel whose result would leave the
  real line (``log`` of a negative number, say) raises ``ValueError`` instead of returning a
  silent ``mpc``.

* array-API flavour: arrays of any other namespace (CuPy, ``array_api_strict``, ...; see
  :mod:`gsbref._backend`), through :func:`xp_kernels`: the same formulas written with the
  standard's functions (``softplus`` through ``logaddexp``, ``sigmoid`` through the namespace's
  ``expit`` from :func:`gsbref._backend.special`); the result stays in the input's namespace.

No Taylor jets here: :mod:`gsbref.functions.jet` builds on these kernels and :mod:`gsbref.ops`
adds the dispatch to jets.

>>> float(softplus(800.0))
800.0
>>> import mpmath
>>> with mpmath.workdps(30):
...     bool(mpmath.almosteq(softplus(mpmath.mpf(-2)), mpmath.log1p(mpmath.exp(-2)), 1e-29))
True
"""

from __future__ import annotations

import functools
import types

import mpmath
import numpy as np
from scipy import special as _sp

__all__ = [
    "is_mp", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "sech2", "sigmoid",
    "softplus", "log_sigmoid", "abs", "relu", "sign", "heaviside", "power",
]

_MP_TYPES = (mpmath.mpf, mpmath.mpc)


def is_mp(x) -> bool:
    """True for mpmath numbers and NumPy object arrays (which we take to hold mpmath numbers)."""
    if isinstance(x, np.ndarray):
        return x.dtype == object
    return isinstance(x, _MP_TYPES)


def mpf(x):
    """``mpmath.mpf(x)`` (exact for floats and ints)."""
    return mpmath.mpf(x)


def to_mp_array(a) -> np.ndarray:
    """An object array of mpf with the shape of ``a`` (floats are converted exactly)."""
    a = np.asarray(a) if not is_mp(a) else a
    if isinstance(a, np.ndarray) and a.dtype == object:
        out = np.empty(a.shape, dtype=object)
        out[...] = np.frompyfunc(mpf, 1, 1)(a) if a.size else a
        return out
    if not isinstance(a, np.ndarray):
        out = np.empty((), dtype=object)
        out[()] = mpf(a)
        return out
    out = np.empty(a.shape, dtype=object)
    out[...] = np.frompyfunc(mpf, 1, 1)(a.astype(float)) if a.size else a
    return out


def _real(name):
    """Wrap an mpmath function so that a complex result raises a ValueError naming the input."""

    def checked(fn):
        def kernel(x):
            y = fn(x)
            if isinstance(y, mpmath.mpc):
                raise ValueError(f"{name}({mpmath.nstr(x, 8)}) is not a real number")
            return y

        kernel.__name__ = f"mp_{name}"
        return np.frompyfunc(kernel, 1, 1)

    return checked


def _mp_softplus(x):
    x = mpmath.mpf(x)
    if x > 0:
        return x + mpmath.log1p(mpmath.exp(-x))
    return mpmath.log1p(mpmath.exp(x))


def _mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-mpmath.mpf(x)))


def _mp_relu(x):
    x = mpmath.mpf(x)
    return x if x > 0 else mpmath.mpf(0)


def _mp_heaviside(x):
    x = mpmath.mpf(x)
    if x > 0:
        return mpmath.mpf(1)
    if x < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(1) / 2


_MP = {
    "exp": np.frompyfunc(mpmath.exp, 1, 1),
    "log": _real("log")(mpmath.log),
    "log1p": _real("log1p")(mpmath.log1p),
    "expm1": np.frompyfunc(mpmath.expm1, 1, 1),
    "sqrt": _real("sqrt")(mpmath.sqrt),
    "sin": np.frompyfunc(mpmath.sin, 1, 1),
    "cos": np.frompyfunc(mpmath.cos, 1, 1),
    "tanh": np.frompyfunc(mpmath.tanh, 1, 1),
    "sech2": np.frompyfunc(lambda x: mpmath.sech(x) ** 2, 1, 1),
    "sigmoid": np.frompyfunc(_mp_sigmoid, 1, 1),
    "softplus": np.frompyfunc(_mp_softplus, 1, 1),
    "log_sigmoid": np.frompyfunc(lambda x: -_mp_softplus(-mpmath.mpf(x)), 1, 1),
    "abs": np.frompyfunc(lambda x: mpmath.fabs(x), 1, 1),
    "relu": np.frompyfunc(_mp_relu, 1, 1),
    "sign": np.frompyfunc(lambda x: mpmath.mpf(mpmath.sign(x)), 1, 1),
    "heaviside": np.frompyfunc(_mp_heaviside, 1, 1),
}


def _np_sech2(x):
    e = np.exp(-2.0 * np.abs(x))
    return 4.0 * e / (1.0 + e) ** 2


_NP = {
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sech2": _np_sech2,
    "sigmoid": _sp.expit,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "log_sigmoid": lambda x: -np.logaddexp(0.0, -np.asarray(x, dtype=float)),
    "abs": np.abs,
    "relu": lambda x: np.maximum(x, 0.0),
    "sign": np.sign,
    "heaviside": lambda x: np.heaviside(x, 0.5),
}


#: values that take the NumPy (or mpmath) flavour; anything else is an array of another namespace
_HOST = (np.ndarray, np.generic, int, float, complex, list, tuple, mpmath.mpf, mpmath.mpc)


def is_host(x) -> bool:
    """True for NumPy arrays and numbers, Python numbers and mpmath numbers (the host flavours)."""
    return isinstance(x, _HOST)


@functools.lru_cache(maxsize=None)
def xp_kernels(xp) -> types.SimpleNamespace:
    """The elementwise kernels for arrays of namespace ``xp`` (attributes named as the kernels of
    this module, ``power(x, p)`` included).  Only array-API functions, no Python-scalar arguments
    (which older versions of the standard do not allow); ``heaviside`` keeps NaN, as NumPy's does.

    >>> import numpy as np
    >>> k = xp_kernels(np)
    >>> k.softplus(np.array([0.0])).tolist() == [float(np.log(2.0))]
    True
    """
    from .._backend import special

    sp = special(xp)

    def softplus(x):
        return xp.logaddexp(xp.zeros_like(x), x)

    def log_sigmoid(x):
        return -xp.logaddexp(xp.zeros_like(x), -x)

    def sech2(x):
        e = xp.exp(-2.0 * xp.abs(x))
        return 4.0 * e / (1.0 + e) ** 2

    def relu(x):
        return xp.maximum(x, xp.zeros_like(x))

    def heaviside(x):
        zero = xp.zeros_like(x)
        one = xp.ones_like(x)
        return xp.where(x > 0, one, xp.where(x < 0, zero, xp.where(x == 0, 0.5 * one, x)))

    def power(x, p):
        return x**p

    table = {name: getattr(xp, name) for name in ("exp", "log", "log1p", "expm1", "sqrt", "sin", "cos",
                                                  "tanh", "abs", "sign")}
    table.update(sigmoid=sp.expit, softplus=softplus, log_sigmoid=log_sigmoid, sech2=sech2, relu=relu,
                 heaviside=heaviside, power=power)
    return types.SimpleNamespace(**table)


def _xp_of(x):
    from .._backend import namespace

    return namespace(x)


def _kernel(name):
    mp_fn, np_fn = _MP[name], _NP[name]

    def kernel(x):
        if is_mp(x):
            return mp_fn(x)
        if not isinstance(x, _HOST):
            return getattr(xp_kernels(_xp_of(x)), name)(x)
        return np_fn(np.asarray(x, dtype=float))[()]

    kernel.__name__ = name
    kernel.__doc__ = f"Elementwise ``{name}`` on float arrays or on mpmath numbers / object arrays."
    return kernel


exp = _kernel("exp")
log = _kernel("log")
log1p = _kernel("log1p")
expm1 = _kernel("expm1")
sqrt = _kernel("sqrt")
sin = _kernel("sin")
cos = _kernel("cos")
tanh = _kernel("tanh")
sech2 = _kernel("sech2")
sigmoid = _kernel("sigmoid")
softplus = _kernel("softplus")
log_sigmoid = _kernel("log_sigmoid")
abs = _kernel("abs")  # noqa: A001 - the primitive's public name
relu = _kernel("relu")
sign = _kernel("sign")
heaviside = _kernel("heaviside")


def _mp_power_kernel(p):
    def kernel(x):
        y = mpmath.power(x, p)
        if isinstance(y, mpmath.mpc):
            raise ValueError(f"{mpmath.nstr(x, 8)} ** {mpmath.nstr(p, 8)} is not a real number")
        return y

    return np.frompyfunc(kernel, 1, 1)


def power(x, p):
    """``x ** p`` for a constant exponent ``p`` (an int stays an int: exact integer powers)."""
    if is_mp(x) or is_mp(p):
        return _mp_power_kernel(p)(x)
    if not isinstance(x, _HOST):
        return x**p
    return np.power(np.asarray(x, dtype=float), p)[()]
