"""The :class:`Function` object: one test function, evaluated and differentiated several ways.

Derivative engines (all through :class:`~gsbref.functions.jet.Jet`):

* ``"generic"``: seed ``z + t v`` for a set of directions ``v`` at once (the directions form an
  extra batch axis just before the coordinate axis) and read ``n! * coeffs[n]``.  Pure partials use
  ``v = e_j`` (d directions); the Hessian adds ``v = e_i + e_j`` and polarises:
  ``H_ij = c2(e_i + e_j) - c2(e_i) - c2(e_j)`` with ``c2(v) = v^T H v / 2``.  The batch is
  processed in chunks so that the jets stay within a fixed memory budget.
* ``"separable"``: when ``f = a + b * sum_j g_j(z_j)`` (or ``prod``), one elementwise jet seeded at
  ``z`` itself (no direction axis) gives every ``g_j^{(n)}(z_j)``: a factor ``d`` cheaper.  For kind
  ``"sum"`` the Hessian is diagonal.

``method="auto"`` takes the separable engine whenever :meth:`Function.separable` recognises ``f``.

Array namespaces.  Values, gradients, pure partial derivatives and Hessians of a formula
function accept float arrays of any array-API namespace (CuPy, ``array_api_strict``; see
:mod:`gsbref._backend`) and return arrays of that namespace: the expression tree is evaluated with
the namespace's functions and :class:`~gsbref.functions.jet.XpJet` (the same engines, the same
operation order, so the results agree with NumPy's to a few ulps and are usually identical).  A
function given as a Python callable is evaluated on the host (:func:`gsbref._backend.call_host`:
a copy there and back), since the callable's primitives (:mod:`gsbref.ops`) are NumPy's.  The
NumPy path is unchanged.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from . import _scalar
from ._expr import Binary, MatVec, Neg, Node, Var, evaluate, kink_primitives, mode_of, namespace_of, rebuild
from ._parse import check_constants, parse
from ._separable import Separable, recognise
from .jet import Jet, XpJet, _check_order

__all__ = ["Function", "function", "as_function"]

_CHUNK_ELEMENTS = 2**22  # coefficient-array elements per chunk in the generic engine
_METHODS = ("auto", "generic", "separable")


def function(expr: str, **constants) -> Function:
    """Parse a formula in ``z`` into a :class:`Function`.

    >>> import numpy as np
    >>> f = function("sum(log_sigmoid(W @ z + c))", W=np.eye(2), c=np.array([0.0, 1.0]))
    >>> f
    Function('sum(log_sigmoid(W @ z + c))', W=<array (2, 2)>, c=<array (2,)>)
    >>> float(f(np.array([0.0, 0.0]))) == float(np.log(0.5) - np.log1p(np.exp(-1.0)))
    True
    """
    consts = check_constants(constants)
    tree = parse(expr, consts)
    return Function(tree=tree, constants=consts, expr=expr.strip())


def as_function(obj, **constants) -> Function:
    """A :class:`Function` from a formula string, a Function (returned as is), or a callable
    written with :mod:`gsbref.ops` primitives (``z -> value`` on arrays, object arrays and jets).

    >>> from gsbref import ops
    >>> f = as_function(lambda z: ops.sum(ops.softplus(z)))
    >>> float(f.gradient(np.zeros(2))[0])
    0.5
    """
    if isinstance(obj, Function):
        if constants:
            raise ValueError("constants cannot be attached to an existing Function")
        return obj
    if isinstance(obj, str):
        return function(obj, **constants)
    if callable(obj):
        if constants:
            raise ValueError("constants are only for formula strings; close over them in a callable")
        return Function(fn=obj)
    raise TypeError(
        f"as_function needs a formula string, a Function or a callable, got {type(obj).__name__}"
    )


class Function:
    """A scalar test function ``f(z)`` of ``z`` with shape ``(..., d)``.

    Build it with :func:`function` (a formula) or :func:`as_function` (also callables).
    Formula-based functions know their structure: ``tree``, ``has_kinks``, ``kink_primitives``,
    :meth:`separable`, :meth:`first_affine`.  For a callable these are unknown: ``tree``,
    ``has_kinks`` and ``kink_primitives`` are ``None``, ``separable`` and ``first_affine`` return
    ``None``.

    >>> import numpy as np
    >>> f = function("sum((z - 0.49)**2)")
    >>> f.derivatives(np.array([0.5, 1.0]), 3)[:, 1]  # f, df/dz_1, d2f/dz_1^2, d3f/dz_1^3
    array([0.2602, 1.02  , 2.    , 0.    ])
    """

    def __init__(self, tree: Node | None = None, constants: dict | None = None,
                 expr: str | None = None, fn=None):
        if (tree is None) == (fn is None):
            raise ValueError("a Function needs exactly one of a tree or a callable")
        self.tree = tree
        self.expr = expr
        self.constants = dict(constants or {})
        self._fn = fn

    # -- description ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        if self.tree is None:
            name = getattr(self._fn, "__qualname__", type(self._fn).__name__)
            return f"Function(<callable {name}>)"
        text = self.expr if self.expr is not None else str(self.tree)
        parts = [repr(text)]
        for name, value in self.constants.items():
            shown = f"<array {np.shape(value)}>" if isinstance(value, np.ndarray) else repr(value)
            parts.append(f"{name}={shown}")
        return f"Function({', '.join(parts)})"

    @property
    def kink_primitives(self):
        """Sorted tuple of the kinked primitives used (``abs``, ``relu``); None for a callable."""
        return None if self.tree is None else kink_primitives(self.tree)

    @property
    def has_kinks(self):
        """True when ``abs`` or ``relu`` occurs (None for a callable: unknown)."""
        kinks = self.kink_primitives
        return None if kinks is None else bool(kinks)

    # -- evaluation -----------------------------------------------------------------------------
    def _raw(self, z, xp=None):
        """Evaluate on an array / object array / jet, squeeze a length-1 coordinate axis.
        ``xp``: the namespace of ``z`` when it is not NumPy's (formula functions only)."""
        batch_ndim = (len(z.shape) if isinstance(z, Jet) or xp is not None else np.ndim(z)) - 1
        if self.tree is not None:
            out = evaluate(self.tree, z, mode_of(z), xp)
            vector = self.tree.rank == 1
        else:
            out = self._fn(z)
            out_ndim = len(out.shape) if isinstance(out, Jet) else np.ndim(out)
            vector = out_ndim == batch_ndim + 1
        if vector:
            shape = out.shape if isinstance(out, Jet) or xp is not None else np.shape(out)
            if len(shape) == 0 or shape[-1] != 1:
                n = shape[-1] if shape else "?"
                raise ValueError(
                    f"f must be scalar-valued, but it returns a vector of length {n} per point; "
                    "wrap it in sum()"
                )
            out = out[..., 0]
        return out

    def __call__(self, z):
        """Float64 values: ``z`` of shape ``(..., d)`` -> shape ``(...)`` (an array of the
        namespace of ``z``; NumPy: a NumPy float for a single point)."""
        xp = _namespace(z)
        if xp is not None:
            return self._call_xp(_xp_float_points(z, xp), xp)
        z = _float_points(z)
        out = self._raw(z)
        if isinstance(out, Jet):  # pragma: no cover - a callable returning a jet for an array
            raise TypeError("the callable returned a Jet for an array argument")
        return np.array(np.broadcast_to(np.asarray(out, dtype=float), z.shape[:-1]))[()]

    def _call_xp(self, z, xp):
        if self.tree is None:
            return _call_host(self.__call__, z, xp)
        out = self._raw(z, xp)
        batch = tuple(z.shape[:-1])
        if isinstance(out, Jet):  # pragma: no cover - a formula returns a jet only for a jet
            raise TypeError("the formula returned a Jet for an array argument")
        if isinstance(out, (int, float)):
            return xp.full(batch, float(out), dtype=xp.float64)
        if tuple(out.shape) != batch:
            out = xp.broadcast_to(out, batch)
        return xp.asarray(out, dtype=xp.float64, copy=True)

    def mp(self, z):
        """mpmath value at the current precision: ``z`` a sequence of ``d`` numbers -> an mpf.

        An object array of shape ``(..., d)`` gives an object array of shape ``(...)``.
        """
        z = _mp_points(z)
        out = _to_mpf(np.broadcast_to(_object(self._raw(z)), z.shape[:-1]))
        return out[()] if out.ndim == 0 else out

    # -- structure ------------------------------------------------------------------------------
    def separable(self, d: int) -> Separable | None:
        """The decomposition ``a + b * sum_j g_j(z_j)`` / ``a + b * prod_j g_j(z_j)`` for ``d``
        coordinates, or None (see :mod:`gsbref.functions._separable`)."""
        d = _check_d(d)
        return None if self.tree is None else recognise(self.tree, d)

    def fused(self, d: int):
        """The all-orders derivative engine for ``d`` coordinates
        (:class:`gsbref.functions._fused.FusedSeparable`), or None when ``f`` is not separable or
        has no closed-form term; cached per ``d``."""
        d = _check_d(d)
        if self.tree is None:
            return None
        cache = self.__dict__.setdefault("_fused_cache", {})
        if d not in cache:
            from ._fused import FusedSeparable

            cache[d] = FusedSeparable.compile(self, d)
        return cache[d]

    def first_affine(self):
        """``(W, c, rest)`` with ``f(z) = rest(W @ z + c)`` when every ``z`` in the formula sits in
        the same ``W @ z + c`` (or ``W @ z``, ``c + W @ z``, ``W @ z - c``); else None.

        ``W`` is ``(h, d)``, ``c`` is ``(h,)`` (zeros when absent), ``rest`` a Function of
        ``u = W @ z + c`` (its argument is still called ``z`` in ``rest.tree``).
        """
        if self.tree is None:
            return None
        matches = []

        def replace(node):
            found = _match_affine(node)
            if found is not None:
                matches.append(found)
                return Var("z")
            if isinstance(node, Var):
                matches.append(None)
                return node
            return rebuild(node, [replace(c) for c in node.children])

        rest = replace(self.tree)
        if not matches or any(m is None for m in matches):
            return None
        (W0, c0) = matches[0]
        if any(W is not W0 and W.name != W0.name for W, _ in matches):
            return None
        if any(str(c) != str(c0) for _, c in matches):
            return None
        W = np.asarray(W0.value, dtype=float)
        h = W.shape[0]
        c = np.zeros(h) if c0 is None else np.broadcast_to(
            np.asarray(evaluate(c0, None, "float"), dtype=float), (h,)
        ).copy()
        rest_fn = Function(tree=rest, constants=self.constants, expr=None)
        return W, c, rest_fn

    # -- derivatives ----------------------------------------------------------------------------
    def derivatives(self, z, order: int, method: str = "auto"):
        """Pure partial derivatives in float64: shape ``(order + 1, ..., d)``, entry
        ``[n, ..., j] = d^n f / dz_j^n`` (entry 0 is ``f(z)``, repeated along ``j``).

        ``method``: ``"auto"`` (separable engine when possible), ``"separable"``, ``"generic"``.
        ``z`` may be an array of any array-API namespace; the result is then in it.
        """
        xp = _namespace(z)
        if xp is not None:
            z = _xp_float_points(z, xp)
            order = _check_order(order)
            if self.tree is None:
                return _call_host(lambda h: self.derivatives(h, order, method), z, xp)
            return self._derivatives(z, order, method, xp)
        z = _float_points(z)
        return self._derivatives(z, _check_order(order), method)

    def mp_derivatives(self, z, order: int, method: str = "auto"):
        """:meth:`derivatives` at one point in mpmath: object array ``(order + 1, d)`` of mpf."""
        z = _mp_points(z)
        return _to_mpf(self._derivatives(z, _check_order(order), method))

    def gradient(self, z, method: str = "auto"):
        """Gradient in float64, shape ``(..., d)`` (in the namespace of ``z``)."""
        d = self.derivatives(z, 1, method)
        return d[1] if isinstance(d, np.ndarray) else d[1, ...]

    def mp_gradient(self, z, method: str = "auto"):
        """Gradient in mpmath at the current precision: object array ``(d,)``."""
        return self.mp_derivatives(z, 1, method)[1]

    def hessian(self, z, method: str = "auto"):
        """Hessian in float64, shape ``(..., d, d)`` (in the namespace of ``z``)."""
        xp = _namespace(z)
        if xp is not None:
            z = _xp_float_points(z, xp)
            if self.tree is None:
                return _call_host(lambda h: self.hessian(h, method), z, xp)
            return self._hessian_xp(z, method, xp)
        z = _float_points(z)
        return self._hessian(z, method)

    def mp_hessian(self, z, method: str = "auto"):
        """Hessian in mpmath at the current precision: object array ``(d, d)``."""
        z = _mp_points(z)
        return _to_mpf(self._hessian(z, method))

    def _engine(self, d, method):
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        if method == "generic":
            return None
        sep = self.separable(d)
        if sep is None and method == "separable":
            raise ValueError(f"{self!r} is not separable for d = {d}; use method='generic'")
        return sep

    def _derivatives(self, z, order, method, xp=None):
        sep = self._engine(z.shape[-1], method)
        if xp is not None:
            if sep is not None:
                return _separable_derivatives_xp(sep, z, order, xp)
            coeffs = self._directional_xp(z, xp.eye(z.shape[-1], dtype=xp.float64), order, xp)
            return _factorials_xp(order, coeffs, xp) * coeffs
        if sep is not None:
            return _separable_derivatives(sep, z, order)
        d = z.shape[-1]
        coeffs = self._directional(z, np.eye(d), order)
        return _factorials(order, coeffs) * coeffs

    def _hessian_xp(self, z, method, xp):
        d = z.shape[-1]
        sep = self._engine(d, method)
        eye = xp.eye(d, dtype=xp.bool)
        if sep is not None and sep.kind == "sum":
            second = _separable_derivatives_xp(sep, z, 2, xp)[2, ...]
            return xp.where(eye, second[..., :, None], xp.zeros_like(second[..., :, None]))
        pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
        V = np.zeros((d + len(pairs), d))
        V[np.arange(d), np.arange(d)] = 1.0
        for k, (i, j) in enumerate(pairs):
            V[d + k, [i, j]] = 1.0
        c2 = self._directional_xp(z, _backend().asarray(V, xp), 2, xp)[2, ...]
        diag = c2[..., :d]
        H = xp.where(eye, 2 * diag[..., :, None], xp.zeros_like(diag[..., :, None]))
        for k, (i, j) in enumerate(pairs):
            v = c2[..., d + k] - diag[..., i] - diag[..., j]
            H[..., i, j] = v
            H[..., j, i] = v
        return H

    def _directional_xp(self, z, V, order, xp):
        """:meth:`_directional` for arrays of namespace ``xp`` (``V`` an array of ``xp``)."""
        batch = tuple(z.shape[:-1])
        m, d = V.shape[0], z.shape[-1]
        flat = xp.reshape(z, (-1, d))
        n = flat.shape[0]
        rows = max(1, _CHUNK_ELEMENTS // max(1, (order + 1) * m * d))
        out = xp.empty((order + 1, n, m), dtype=xp.float64)
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            block = flat[start:stop, ...]
            x = xp.broadcast_to(block[:, None, :], (stop - start, m, d))
            jet = XpJet.variable(x, order, xp.broadcast_to(V, x.shape))
            res = self._raw(jet, xp)
            if not isinstance(res, Jet):
                res = XpJet.constant(_xp_full(res, x.shape[:-1], xp), order, xp=xp)
            out[:, start:stop, ...] = xp.broadcast_to(res.coeffs, (order + 1,) + tuple(x.shape[:-1]))
        return xp.reshape(out, (order + 1,) + batch + (m,))

    def _hessian(self, z, method):
        d = z.shape[-1]
        sep = self._engine(d, method)
        if sep is not None and sep.kind == "sum":
            second = _separable_derivatives(sep, z, 2)[2]
            H = np.zeros(z.shape + (d,), dtype=second.dtype)
            idx = np.arange(d)
            H[..., idx, idx] = second
            return H
        pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
        V = np.zeros((d + len(pairs), d))
        V[np.arange(d), np.arange(d)] = 1.0
        for k, (i, j) in enumerate(pairs):
            V[d + k, [i, j]] = 1.0
        c2 = self._directional(z, V, 2)[2]
        diag = c2[..., :d]
        H = np.zeros(z.shape + (d,), dtype=c2.dtype)
        idx = np.arange(d)
        H[..., idx, idx] = 2 * diag
        for k, (i, j) in enumerate(pairs):
            H[..., i, j] = H[..., j, i] = c2[..., d + k] - diag[..., i] - diag[..., j]
        return H

    def _directional(self, z, V, order):
        """Taylor coefficients of ``t -> f(z + t V[k])``: shape ``(order + 1, ..., len(V))``."""
        batch = z.shape[:-1]
        m, d = len(V), z.shape[-1]
        flat = z.reshape((-1, d))
        mp = flat.dtype == object
        if mp:
            V = _scalar.to_mp_array(V)
        rows = max(1, _CHUNK_ELEMENTS // max(1, (order + 1) * m * d))
        out = np.empty((order + 1, flat.shape[0], m), dtype=object if mp else float)
        for start in range(0, flat.shape[0], rows):
            block = flat[start : start + rows]
            x = np.broadcast_to(block[:, None, :], (block.shape[0], m, d))
            jet = Jet.variable(x, order, np.broadcast_to(V, x.shape))
            res = self._raw(jet)
            if not isinstance(res, Jet):
                res = Jet.constant(np.broadcast_to(res, x.shape[:-1]), order)
            out[:, start : start + rows] = np.broadcast_to(res.coeffs, (order + 1,) + x.shape[:-1])
        return out.reshape((order + 1,) + batch + (m,))


# -- engines ---------------------------------------------------------------------------------------
def _separable_derivatives(sep: Separable, z, order: int):
    mode = "mp" if z.dtype == object else "float"
    jet = Jet.variable(z, order)
    g = evaluate(sep.elementwise, jet, mode)
    if not isinstance(g, Jet):
        g = Jet.constant(np.broadcast_to(g, z.shape), order)
    full = (order + 1,) + z.shape
    G = g.coeffs if g.coeffs.shape == full else np.broadcast_to(g.coeffs, full)
    a = evaluate(sep._a, None, mode)
    b = evaluate(sep._b, None, mode)
    value = G[0].sum(axis=-1) if sep.kind == "sum" else np.prod(G[0], axis=-1)
    others = _prod_except(G[0]) if sep.kind == "prod" else None
    # the jet was built by this call, so its coefficients can be scaled in place
    out = G if G.flags.writeable else np.array(G)
    out *= _factorials(order, G)
    value = a + b * value
    scale = b if others is None else b * others
    if not (isinstance(scale, (int, float)) and scale == 1):
        out *= scale
    out[0] = np.broadcast_to(np.asarray(value, dtype=G.dtype)[..., None], z.shape)
    return out


def _separable_derivatives_xp(sep: Separable, z, order: int, xp):
    """:func:`_separable_derivatives` for arrays of namespace ``xp``."""
    jet = XpJet.variable(z, order)
    g = evaluate(sep.elementwise, jet, "float", xp)
    if not isinstance(g, Jet):
        g = XpJet.constant(_xp_full(g, z.shape, xp), order, xp=xp)
    full = (order + 1,) + tuple(z.shape)
    G = g.coeffs if tuple(g.coeffs.shape) == full else xp.broadcast_to(g.coeffs, full)
    a = float(evaluate(sep._a, None, "float"))
    b = float(evaluate(sep._b, None, "float"))
    value = xp.sum(G[0, ...], axis=-1) if sep.kind == "sum" else xp.prod(G[0, ...], axis=-1)
    others = _prod_except_xp(G[0, ...], xp) if sep.kind == "prod" else None
    out = G * _factorials_xp(order, G, xp)
    value = a + b * value
    scale = b if others is None else b * others
    if not (isinstance(scale, float) and scale == 1):
        out = out * scale
    out[0, ...] = xp.broadcast_to(value[..., None], tuple(z.shape))
    return out


def _prod_except_xp(x, xp):
    """:func:`_prod_except` for arrays of namespace ``xp`` (``cumulative_prod``: the standard's
    ``multiply.accumulate``)."""
    ones = xp.ones(tuple(x.shape[:-1]) + (1,), dtype=x.dtype)
    prefix = xp.concat([ones, xp.cumulative_prod(x[..., :-1], axis=-1)], axis=-1)
    suffix = xp.concat([xp.flip(xp.cumulative_prod(xp.flip(x[..., 1:], axis=-1), axis=-1), axis=-1), ones], axis=-1)
    return prefix * suffix


def _factorials_xp(order, like, xp):
    f = xp.asarray([float(math.factorial(k)) for k in range(order + 1)], dtype=xp.float64)
    return xp.reshape(f, (order + 1,) + (1,) * (like.ndim - 1))


def _xp_full(value, shape, xp):
    """A constant (Python number or array of ``xp``) broadcast to ``shape`` in ``xp``."""
    if isinstance(value, (int, float)):
        return xp.full(tuple(shape), float(value), dtype=xp.float64)
    return xp.broadcast_to(value, tuple(shape))


def _prod_except(x):
    """``prod_{k != j} x[..., k]`` for every ``j``, without division (prefix and suffix products)."""
    ones = np.ones(x.shape[:-1] + (1,), dtype=x.dtype)
    prefix = np.concatenate([ones, np.multiply.accumulate(x[..., :-1], axis=-1)], axis=-1)
    suffix = np.concatenate([np.multiply.accumulate(x[..., :0:-1], axis=-1)[..., ::-1], ones], axis=-1)
    return prefix * suffix


def _factorials(order, like):
    f = np.array([math.factorial(k) for k in range(order + 1)], dtype=like.dtype)
    return f.reshape((order + 1,) + (1,) * (like.ndim - 1))


def _match_affine(node):
    """``(W, c)`` if ``node`` is ``W @ z``, ``W @ z + c``, ``c + W @ z`` or ``W @ z - c``."""

    def bare(n):
        return isinstance(n, MatVec) and isinstance(n.children[0], Var)

    if bare(node):
        return node.matrix, None
    if isinstance(node, Binary) and node.op in ("+", "-"):
        left, right = node.children
        if bare(left) and right.const:
            return left.matrix, right if node.op == "+" else Neg(right)
        if node.op == "+" and bare(right) and left.const:
            return right.matrix, left
    return None


# -- input checks ----------------------------------------------------------------------------------
def _backend():
    from .. import _backend

    return _backend


def _namespace(z):
    """The namespace of ``z`` when it is an array of a namespace other than NumPy's, else None
    (host data, jets and everything else take the NumPy path, which validates them)."""
    if isinstance(z, Jet) or _scalar.is_host(z) or not hasattr(z, "__array_namespace__"):
        return None
    return namespace_of(z)


def _xp_float_points(z, xp):
    """:func:`_float_points` for an array of namespace ``xp``: float64, shape ``(..., d)``."""
    if xp.isdtype(z.dtype, "bool") or not xp.isdtype(z.dtype, ("integral", "real floating")):
        kind = "complex" if xp.isdtype(z.dtype, "complex floating") else str(z.dtype)
        if kind == "complex":
            raise TypeError("z must be real")
        raise TypeError(f"z must be an array of real numbers, got dtype {z.dtype}")
    if z.dtype != xp.float64:
        z = xp.astype(z, xp.float64)
    if z.ndim < 1 or z.shape[-1] < 1:
        raise ValueError(f"z must have shape (..., d) with d >= 1, got shape {tuple(z.shape)}")
    return z


def _call_host(fn, z, xp):
    """``fn`` on a NumPy copy of ``z``, its result converted back to ``xp`` (callables)."""
    return _backend().call_host(fn, z, xp=xp, dtype=xp.float64)


def _check_d(d) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be a positive integer, got {d!r}")
    return int(d)


def _float_points(z):
    if isinstance(z, Jet):
        raise TypeError("pass arrays to a Function; jets go through gsbref.ops or the tree")
    a = np.asarray(z)
    if np.iscomplexobj(a):
        raise TypeError("z must be real")
    if a.dtype == object:
        a = a.astype(float)
    elif a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"z must be an array of real numbers, got dtype {a.dtype}")
    a = a.astype(float, copy=False)
    if a.ndim < 1 or a.shape[-1] < 1:
        raise ValueError(f"z must have shape (..., d) with d >= 1, got shape {a.shape}")
    return a


def _mp_points(z):
    if isinstance(z, np.ndarray):
        a = _scalar.to_mp_array(z)
    elif isinstance(z, (list, tuple)):
        a = np.empty(len(z), dtype=object)
        for i, v in enumerate(z):
            a[i] = mpmath.mpf(v)
    else:
        raise TypeError(f"z must be a sequence of d mpmath numbers, got {type(z).__name__}")
    if a.ndim < 1 or a.shape[-1] < 1:
        raise ValueError(f"z must have shape (..., d) with d >= 1, got shape {a.shape}")
    return a


def _object(x):
    if isinstance(x, np.ndarray) and x.dtype == object:
        return x
    a = np.empty(np.shape(x), dtype=object)
    a[...] = x
    return a


def _to_mpf(a):
    """Object array with every entry an mpf (ints and floats from zero seeds converted)."""
    out = np.empty(np.shape(a), dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(np.asarray(a, dtype=object).reshape(-1)):
        flat[i] = mpmath.mpf(v)
    return out
