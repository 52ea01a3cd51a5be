"""Taylor jets of ``f`` along curved paths, for the gamma construction of eqs. 20-21.

For ``z = zeta / sum(zeta)`` the rule needs ``d^n/dt^n f(z(zeta + t e_i))`` at ``t = 0``.  Moving one
gamma variable moves the point ``z`` along a curve, not a straight line, so the seeds of
:meth:`Function.derivatives` (``z + t e_j``) do not apply.  With ``s`` the sum of the gamma
variables of the simplex that ``zeta_i`` belongs to and ``u = t / s``:

* every component ``k`` of that simplex follows ``z_k(t) = (z_k - [k = i] ) / (1 + u) + [k = i]``,
  whose Taylor coefficients in ``t`` are ``c_m = (z_k - [k = i]) (-1)^m s^-m`` for ``m >= 1``;
* the components of other simplices stay put.

(For the Beta, the "simplex" of coordinate ``j`` is ``(z_j, 1 - z_j)`` and ``f`` only sees
``z_j``: moving ``zeta_1`` is the case ``k = i``, moving ``zeta_2`` the case ``k != i``.)

Those coefficients are written straight into a :class:`~gsbref.functions.Jet`, which is pushed
through ``f`` (the formula tree, or the callable, evaluated on jets); ``n!`` times the ``n``-th
output coefficient is the derivative.  No jet division is needed, and no power of ``s`` beyond the
requested order is formed.

>>> import numpy as np
>>> from gsbref.functions import function
>>> z = np.array([[0.25]]); s = np.array([[2.0]])
>>> # f = z: d^n/dzeta_1^n [zeta_1 / (zeta_1 + zeta_2)] = (-1)^(n+1) n! zeta_2 / s^(n+1)
>>> d = path_derivatives(function("z[0]"), z, curve_coefficients(z, s, np.array([[1.0]]), 3)[:, :, None, :])
>>> [float(x) for x in d[1:, 0, 0]]
[0.375, -0.375, 0.5625]
"""

from __future__ import annotations

import math

import numpy as np

from ..functions import Jet

__all__ = ["curve_coefficients", "path_derivatives", "eval_on_jet"]

#: coefficient-array elements per chunk (bounds the memory of one jet evaluation)
_CHUNK_ELEMENTS = 2**22


def eval_on_jet(f, jet: Jet) -> Jet:
    """``f`` evaluated on a jet of points ``(..., d)``: a jet of shape ``(...)``.

    Uses the Function's own evaluator (formula tree or callable), which accepts jets; a constant
    result is lifted to a constant jet.
    """
    out = f._raw(jet)
    if not isinstance(out, Jet):
        out = Jet.constant(np.broadcast_to(np.asarray(out, dtype=float), jet.shape[:-1]), jet.order)
    return out


def curve_coefficients(z: np.ndarray, s: np.ndarray, moved: np.ndarray, order: int) -> np.ndarray:
    """Taylor coefficients ``c_1 .. c_order`` (in ``t``) of ``z_k(t)`` when one gamma variable grows
    by ``t``: ``c_m = (z_k - moved_k) (-1)^m s^-m`` (see the module docstring).

    ``z``, ``s``, ``moved`` broadcast together (``moved`` is 1 for the component whose gamma variable
    moves, else 0).  Returns shape ``(order, *broadcast shape)``.
    """
    z, s, moved = np.broadcast_arrays(np.asarray(z, float), np.asarray(s, float), np.asarray(moved, float))
    out = np.empty((order,) + z.shape)
    base = z - moved
    inv = -1.0 / s
    p = np.ones(z.shape)
    for m in range(order):
        p = p * inv
        out[m] = base * p
    return out


def path_derivatives(f, z: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """``d^n/dt^n f(z + path_q(t))`` at ``t = 0`` for several paths ``q`` at once.

    ``z``: points ``(S, d)``; ``curves``: ``(N, S, Q, d)``, the coefficients ``c_1 .. c_N`` of path
    ``q`` for every coordinate (zero where a coordinate does not move).  Returns ``(N + 1, S, Q)``:
    entry 0 is ``f(z)``, entry ``n`` the ``n``-th derivative.
    """
    z = np.asarray(z, dtype=float)
    N, S, Q, d = curves.shape
    out = np.empty((N + 1, S, Q))
    rows = max(1, _CHUNK_ELEMENTS // max(1, (N + 1) * Q * d))
    facts = np.array([math.factorial(k) for k in range(N + 1)], dtype=float)[:, None, None]
    for a in range(0, S, rows):
        b = min(S, a + rows)
        c = np.empty((N + 1, b - a, Q, d))
        c[0] = z[a:b, None, :]
        c[1:] = curves[:, a:b]
        res = eval_on_jet(f, Jet(c))
        out[:, a:b] = np.broadcast_to(res.coeffs, (N + 1, b - a, Q)) * facts
    return out
