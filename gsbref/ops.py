"""Primitives for writing test functions once and evaluating them three ways.

Each primitive dispatches on the type of its argument:

* float arrays, NumPy numbers, Python numbers: NumPy/SciPy, numerically stable (``softplus`` via
  ``logaddexp``, ``sigmoid`` via ``scipy.special.expit``, ``log_sigmoid = -softplus(-x)``);
* mpmath numbers and NumPy ``object`` arrays of them: elementwise mpmath at the caller's current
  precision (a result off the real line, such as ``log`` of a negative number, is a ValueError);
* :class:`gsbref.functions.Jet`: truncated Taylor arithmetic, for derivatives of any order.

So a plain Python callable such as ``lambda z: ops.sum(ops.softplus(z))`` can be handed to
:func:`gsbref.functions.as_function` and gets values, mpmath values and derivatives.

Reductions (``sum``, ``prod``, ``mean``) and ``index`` act on the last axis, the coordinate axis of
``z`` with shape ``(..., d)``; ``matvec(W, z)`` is ``sum_j W[h, j] z[..., j]``.  ``abs`` and
``relu`` follow the kink convention of :mod:`gsbref.functions` on jets.

>>> import numpy as np
>>> f = lambda z: sum(softplus(z))
>>> z = np.array([[0.0, 1.0], [2.0, -3.0]])
>>> bool(np.allclose(f(z), np.log1p(np.exp(z)).sum(-1)))
True
>>> import mpmath
>>> with mpmath.workdps(40):
...     v = f(np.array([mpmath.mpf(0), mpmath.mpf(1)], dtype=object))
...     bool(mpmath.almosteq(v, mpmath.log(2) + mpmath.log1p(mpmath.e), 1e-39))
True
"""

from __future__ import annotations

import numpy as np

from .functions import _scalar
from .functions.jet import Jet

__all__ = [
    "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "sigmoid", "softplus",
    "log_sigmoid", "abs", "relu", "sum", "prod", "mean", "matvec", "index", "power",
]


def _elementwise(name):
    kernel = getattr(_scalar, name)

    def primitive(x):
        if isinstance(x, Jet):
            return getattr(x, name)()
        return kernel(x)

    primitive.__name__ = name
    primitive.__qualname__ = name
    primitive.__doc__ = (
        f"Elementwise ``{name}`` of a float array, an mpmath number / object array, or a Jet."
    )
    return primitive


exp = _elementwise("exp")
log = _elementwise("log")
log1p = _elementwise("log1p")
expm1 = _elementwise("expm1")
sqrt = _elementwise("sqrt")
sin = _elementwise("sin")
cos = _elementwise("cos")
tanh = _elementwise("tanh")
sigmoid = _elementwise("sigmoid")
softplus = _elementwise("softplus")
log_sigmoid = _elementwise("log_sigmoid")
abs = _elementwise("abs")  # noqa: A001 - the primitive's public name
relu = _elementwise("relu")


def _plain(x, what):
    if isinstance(x, np.ndarray):
        a = x
    elif _scalar.is_mp(x):
        raise ValueError(f"{what} needs an array with a last (coordinate) axis, got a scalar")
    else:
        a = np.asarray(x, dtype=float)
    if a.ndim < 1:
        raise ValueError(f"{what} needs an array with a last (coordinate) axis, got a scalar")
    return a


def _unwrap(r):
    """0-d arrays -> scalars, as NumPy reductions do."""
    return r[()] if isinstance(r, np.ndarray) else r


def sum(x):  # noqa: A001 - the primitive's public name
    """Sum over the last axis."""
    if isinstance(x, Jet):
        return x.sum()
    return _unwrap(_plain(x, "sum").sum(axis=-1))


def prod(x):
    """Product over the last axis."""
    if isinstance(x, Jet):
        return x.prod()
    return _unwrap(np.prod(_plain(x, "prod"), axis=-1))


def mean(x):
    """Mean over the last axis (the sum divided by the axis length)."""
    if isinstance(x, Jet):
        return x.mean()
    a = _plain(x, "mean")
    return _unwrap(a.sum(axis=-1) / a.shape[-1])


def matvec(W, x):
    """``W @ x`` along the last axis of ``x``: ``sum_j W[h, j] x[..., j]``, shape ``(..., h)``."""
    if isinstance(W, Jet):
        raise TypeError("matvec(W, z): W must be a constant matrix, not a Jet")
    W = np.asarray(W)
    if W.dtype != object:
        W = W.astype(float)
    if W.ndim != 2:
        raise ValueError(f"matvec(W, z): W must be a 2-d matrix, got shape {W.shape}")
    n = x.shape[-1] if isinstance(x, Jet) else _plain(x, "matvec").shape[-1]
    if W.shape[1] != n:
        raise ValueError(f"matvec(W, z): W has {W.shape[1]} columns but z has {n} coordinates")
    if isinstance(x, Jet):
        return x.matvec(W)
    return np.matmul(_plain(x, "matvec"), W.T)


def index(x, i):
    """Coordinate ``i`` of the last axis: ``x[..., i]``."""
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"index(z, i): i must be an integer, got {i!r}")
    n = x.shape[-1] if isinstance(x, Jet) else _plain(x, "index").shape[-1]
    if not -n <= i < n:
        raise ValueError(f"index {i} is out of range for {n} coordinates")
    if isinstance(x, Jet):
        return x[..., i]
    return _unwrap(_plain(x, "index")[..., i])


def power(x, p):
    """``x ** p`` for a constant exponent ``p`` (on jets, integer ``p`` is exact at ``x = 0``)."""
    if isinstance(x, Jet):
        return x**p
    return _scalar.power(x, p)
