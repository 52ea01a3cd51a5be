r"""Truncated Taylor arithmetic ("jets") on NumPy arrays, in float64 or mpmath.

A :class:`Jet` of order ``N`` stands for a function of one real variable ``t`` near ``t = 0``
through its Taylor coefficients: ``coeffs[k] = u^{(k)}(0) / k!`` for ``k = 0..N``.  The
coefficient array has shape ``(N + 1, *shape)``; ``shape`` is the shape of the value, so one jet
carries a whole array of functions of ``t`` (one per batch element, coordinate, direction ...).

Seeding ``z + t v`` and pushing it through ``f`` gives the directional derivatives
``d^n/dt^n f(z + t v) = n! * coeffs[n]``; with ``v = e_j`` these are pure partials.

Every primitive uses an O(N^2) recurrence on the coefficients, obtained by matching powers of
``t`` in a first-order ODE that the primitive satisfies.  For an input jet ``u`` and output ``w``:

==============  ===========================  ======================================================
primitive       identity used                recurrence, k >= 1
==============  ===========================  ======================================================
``u * v``       Cauchy product               ``w_k = sum_{i=0..k} u_i v_{k-i}``
``u / v``       ``w v = u``                  ``w_k = (u_k - sum_{i=1..k} v_i w_{k-i}) / v_0``
``exp(u)``      ``w' = u' w``                ``k w_k = sum_{i=1..k} i u_i w_{k-i}``
``log(u)``      ``u w' = u'``                ``w_k = (u_k - sum_{i=1..k-1} (i/k) w_i u_{k-i}) / u_0``
``u ** p``      ``u w' = p u' w``            ``k u_0 w_k = sum_{i=1..k} (p i - (k-i)) u_i w_{k-i}``
``sqrt(u)``     ``w^2 = u``                  ``w_k = (u_k - sum_{i=1..k-1} w_i w_{k-i}) / (2 w_0)``
``sin, cos``    ``s' = u' c, c' = -u' s``    ``k s_k = sum i u_i c_{k-i}``, ``k c_k = -sum i u_i s_{k-i}``
``tanh(u)``     ``w' = u' (1 - w^2)``        as ``exp`` with ``q = 1 - w^2`` in place of ``w``
``sigmoid(u)``  ``s' = u' s (1 - s)``        as ``exp`` with ``q = s (1 - s)`` in place of ``w``
``softplus(u)`` ``w' = u' sigmoid(u)``       ``k w_k = sum_{i=1..k} i u_i s_{k-i}``
==============  ===========================  ======================================================

``log1p`` and ``expm1`` reuse ``log(1 + u)`` and ``exp(u)`` for the higher coefficients with the
accurate value in ``w_0``; ``log_sigmoid(u) = -softplus(-u)``.  Integer powers use repeated
multiplication (exact, also where ``u_0 = 0``); negative integer powers divide ``1`` by it.

Kinks.  ``abs`` and ``relu`` follow the library's convention (see :mod:`gsbref.functions`):
their first derivative is ``sign(x)`` (0 at 0) and ``H(x)`` (the Heaviside step with
``H(0) = 1/2``), all higher derivatives are 0.  Composed with ``u`` this gives
``w_0 = |u_0|`` (or ``max(u_0, 0)``) and ``w_k = g'(u_0) u_k`` for ``k >= 1``.

Coefficient arrays may be float64 or ``object`` arrays of mpmath numbers: the recurrences only use
``+ - * /`` and the kernels of :mod:`gsbref.functions._scalar`, which dispatch on the dtype.
Operations with plain values (numbers, arrays, mpmath numbers) treat them as constants.

Other array namespaces.  :meth:`Jet.variable` and :meth:`Jet.constant` seeded with an array of
another namespace (CuPy, ``array_api_strict``, ...; :mod:`gsbref._backend`) return an
:class:`XpJet`, a :class:`Jet` whose float64 coefficients live in that namespace and whose
recurrences (the same ones) are written with the array API standard only.  The NumPy class is left
as it was (its hot loops index ``c[k]`` and sum with ``einsum``, which the standard does not have);
for the same inputs the two agree to rounding (the sums of products run in the same order, so
they are usually bit-identical).

>>> import numpy as np
>>> t = Jet.variable(np.array(0.5), order=4)     # the identity function near 0.5
>>> bool(np.allclose((t.exp() * t).derivatives(), np.exp(0.5) * (0.5 + np.arange(5))))
True
"""

from __future__ import annotations

import math

import numpy as np

from . import _scalar

__all__ = ["Jet"]


def _chain(u):
    """The chain-rule sum of ``w' = u' q``: ``k -> (1/k) sum_{i=1..k} i u_i q_{k-i}``.

    When ``u`` is linear in ``t`` (``u_i = 0`` for ``i >= 2``, as for a seeded variable and its
    affine images) the sum has the single term ``u_1 q_{k-1} / k``.
    """
    if u.shape[0] <= 2 or not np.any(u[2:]):
        u1 = u[1] if u.shape[0] > 1 else None

        def linear(q, k):
            return u1 * q[k - 1] / k

        return linear
    iu = _weights(u.shape[0] - 1, u) * u

    def general(q, k):
        return _dot(iu[1 : k + 1], q[k - 1 :: -1][:k]) / k

    return general


def _lift(c, value_ndim):
    """View coefficients ``(N+1, *s)`` as ``(N+1, 1, ..., 1, *s)`` with ``value_ndim`` value axes."""
    extra = value_ndim - (c.ndim - 1)
    if extra <= 0:
        return c
    return c.reshape(c.shape[:1] + (1,) * extra + c.shape[1:])


def _dot(a, b):
    """``sum_i a[i] * b[i]`` over the leading axis (works for float and object arrays)."""
    if a.dtype != object and b.dtype != object:
        return np.einsum("i...,i...->...", a, b)
    return (a * b).sum(axis=0)


def _weights(n, like):
    """``[0, 1, ..., n]`` shaped to broadcast against coefficient arrays like ``like``."""
    w = np.arange(n + 1)
    if like.dtype != object:
        w = w.astype(float)
    return w.reshape((n + 1,) + (1,) * (like.ndim - 1))


class Jet:
    """Truncated Taylor polynomial ``sum_k coeffs[k] t^k`` of an array-valued function of ``t``.

    Parameters
    ----------
    coeffs : array, shape ``(N + 1, *shape)``
        Taylor coefficients (``u^{(k)}(0) / k!``), float64 or object (mpmath numbers).
    """

    __slots__ = ("coeffs",)
    __array_ufunc__ = None  # make NumPy defer to our reflected operators

    def __init__(self, coeffs):
        if not isinstance(coeffs, np.ndarray) and not _scalar.is_host(coeffs):
            raise TypeError(
                "Jet coefficients of another array namespace: build the jet with Jet.variable / "
                "Jet.constant or XpJet"
            )
        c = np.asarray(coeffs)
        if c.ndim < 1 or c.shape[0] < 1:
            raise ValueError("Jet coefficients need a leading axis of length N + 1 >= 1")
        if c.dtype != object:
            if not np.issubdtype(c.dtype, np.number) or np.iscomplexobj(c):
                raise TypeError(f"Jet coefficients must be real numbers, got dtype {c.dtype}")
            c = c.astype(float, copy=False)
        self.coeffs = c

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def variable(cls, x, order: int, direction=1):
        """The jet of ``x + t * direction`` (broadcast), truncated at ``t**order``."""
        if not (_scalar.is_host(x) and _scalar.is_host(direction)):
            return XpJet.variable(x, order, direction)
        order = _check_order(order)
        x = _as_values(x)
        direction = _as_values(direction)
        shape = np.broadcast_shapes(np.shape(x), np.shape(direction))
        dtype = object if (x.dtype == object or direction.dtype == object) else float
        if dtype is object:  # exact mpmath numbers throughout, no stray Python floats
            x, direction = _to_mp(x), _to_mp(direction)
        c = np.zeros((order + 1,) + shape, dtype=dtype)
        c[0] = x
        if order >= 1:
            c[1] = direction
        return cls(c)

    @classmethod
    def constant(cls, x, order: int):
        """The jet of the constant ``x``."""
        if not _scalar.is_host(x):
            return XpJet.constant(x, order)
        order = _check_order(order)
        x = _as_values(x)
        c = np.zeros((order + 1,) + x.shape, dtype=object if x.dtype == object else float)
        c[0] = x
        return cls(c)

    # -- views ----------------------------------------------------------------------------------
    @property
    def order(self) -> int:
        """Truncation order ``N``."""
        return self.coeffs.shape[0] - 1

    @property
    def shape(self) -> tuple:
        """Shape of the value (the coefficient array without its leading axis)."""
        return self.coeffs.shape[1:]

    @property
    def value(self):
        """``coeffs[0]``: the value at ``t = 0``."""
        return self.coeffs[0]

    def derivatives(self):
        """``d^k/dt^k`` at ``t = 0`` for ``k = 0..N``: ``k! * coeffs[k]``, shape ``(N+1, *shape)``."""
        return _weights_factorial(self.order, self.coeffs) * self.coeffs

    def __repr__(self) -> str:
        return f"Jet(order={self.order}, shape={self.shape}, dtype={self.coeffs.dtype})"

    def _new(self, c):
        return Jet(c)

    def _like(self, other):
        """``other`` as a jet of the same order (constants get zero higher coefficients)."""
        if isinstance(other, Jet):
            if other.order != self.order:
                raise ValueError(f"jets of different orders: {self.order} and {other.order}")
            return other
        return Jet.constant(other, self.order)

    # -- arithmetic -----------------------------------------------------------------------------
    def __pos__(self):
        return self

    def __neg__(self):
        return Jet(-self.coeffs)

    def __add__(self, other):
        if isinstance(other, Jet):
            a, b = _align(self, self._like(other))
            return Jet(a + b)
        x = _as_values(other)
        shape = np.broadcast_shapes(self.shape, x.shape)
        c = _lift(self.coeffs, len(shape))
        c = np.array(np.broadcast_to(c, c.shape[:1] + shape), dtype=_dtype(c, x))
        c[0] = c[0] + x
        return Jet(c)

    __radd__ = __add__

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, Jet):
            x = _as_values(other)
            return Jet(_lift(self.coeffs, x.ndim) * x)
        u, v = _align(self, self._like(other))
        n = self.order
        w = np.empty(np.broadcast_shapes(u.shape, v.shape), dtype=_dtype(u, v))
        for k in range(n + 1):
            w[k] = _dot(u[: k + 1], v[k::-1])
        return Jet(w)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if not isinstance(other, Jet):
            x = _as_values(other)
            return Jet(_lift(self.coeffs, x.ndim) / x)
        u, v = _align(self, self._like(other))
        n = self.order
        w = np.empty(np.broadcast_shapes(u.shape, v.shape), dtype=_dtype(u, v))
        w[0] = u[0] / v[0]
        for k in range(1, n + 1):
            w[k] = (u[k] - _dot(v[1 : k + 1], w[k - 1 :: -1][:k])) / v[0]
        return Jet(w)

    def __rtruediv__(self, other):
        return self._like(other) / self

    def __pow__(self, p):
        if isinstance(p, Jet):
            raise TypeError("the exponent of a jet power must be a constant, not a jet")
        if _is_integer(p):
            return self._int_power(int(p))
        u = self.coeffs
        n = self.order
        w = np.empty_like(u)
        w[0] = _scalar.power(u[0], p)
        iu = _weights(n, u) * u
        for k in range(1, n + 1):
            # sum_{i=1..k} (p i - (k - i)) u_i w_{k-i} = p * sum i u_i w_{k-i} - sum (k-i) u_i w_{k-i}
            wi = w[k - 1 :: -1][:k]
            s = p * _dot(iu[1 : k + 1], wi) - _dot(u[1 : k + 1] * _weights(k - 1, u)[::-1], wi)
            w[k] = s / (k * u[0])
        return Jet(w)

    def _int_power(self, p: int):
        if p == 0:
            return Jet.constant(np.ones(self.shape, dtype=self.coeffs.dtype), self.order)
        if p < 0:
            return 1 / self._int_power(-p)
        result, base = None, self
        while p:
            if p & 1:
                result = base if result is None else result * base
            p >>= 1
            if p:
                base = base * base
        return result

    # -- transcendental primitives ----------------------------------------------------------------
    def _exp_like(self, w0, q_of):
        """Solve ``w' = u' q(w)`` where ``q_of(w, m)`` gives coefficient ``m`` of ``q``."""
        u = self.coeffs
        n = self.order
        w = np.empty_like(u, dtype=_dtype(u, np.asarray(w0)))
        w[0] = w0
        q = np.empty_like(w)
        chain = _chain(u)
        for k in range(1, n + 1):
            q[k - 1] = q_of(w, k - 1)
            w[k] = chain(q, k)
        return w

    def exp(self):
        """``exp`` of the jet."""
        return Jet(self._exp_like(_scalar.exp(self.coeffs[0]), lambda w, m: w[m]))

    def expm1(self):
        """``expm1`` of the jet (accurate value, higher coefficients as ``exp``)."""
        w = self._exp_like(_scalar.exp(self.coeffs[0]), lambda w, m: w[m])
        w[0] = _scalar.expm1(self.coeffs[0])
        return Jet(w)

    def _log_of(self, v, w0):
        """Coefficients of ``log v`` with value ``w0`` (``v`` a coefficient array)."""
        n = self.order
        w = np.empty_like(v, dtype=_dtype(v, np.asarray(w0)))
        w[0] = w0
        iw = np.zeros_like(w)  # iw[i] = i * w_i, filled as the w_i become known
        for k in range(1, n + 1):
            s = v[k] - _dot(iw[1:k], v[k - 1 : 0 : -1]) / k if k > 1 else v[k]
            w[k] = s / v[0]
            iw[k] = k * w[k]
        return Jet(w)

    def log(self):
        """``log`` of the jet."""
        return self._log_of(self.coeffs, _scalar.log(self.coeffs[0]))

    def log1p(self):
        """``log1p`` of the jet."""
        v = np.array(self.coeffs, copy=True)
        v[0] = v[0] + 1
        return self._log_of(v, _scalar.log1p(self.coeffs[0]))

    def sqrt(self):
        """``sqrt`` of the jet."""
        u = self.coeffs
        n = self.order
        w = np.empty_like(u)
        w[0] = _scalar.sqrt(u[0])
        for k in range(1, n + 1):
            s = u[k] - (_dot(w[1:k], w[k - 1 : 0 : -1]) if k > 1 else 0)
            w[k] = s / (2 * w[0])
        return Jet(w)

    def sincos(self):
        """``(sin, cos)`` of the jet, computed together."""
        u = self.coeffs
        n = self.order
        s = np.empty_like(u)
        c = np.empty_like(u)
        s[0] = _scalar.sin(u[0])
        c[0] = _scalar.cos(u[0])
        chain = _chain(u)
        for k in range(1, n + 1):
            s[k] = chain(c, k)
            c[k] = -chain(s, k)
        return Jet(s), Jet(c)

    def sin(self):
        """``sin`` of the jet."""
        return self.sincos()[0]

    def cos(self):
        """``cos`` of the jet."""
        return self.sincos()[1]

    def tanh(self):
        """``tanh`` of the jet; ``q = 1 - w^2`` with ``q_0 = sech(u_0)^2`` (no cancellation)."""
        u0 = self.coeffs[0]
        sech2 = _scalar.sech2(u0)

        def q_of(w, m):
            if m == 0:
                return sech2
            return -_dot(w[: m + 1], w[m::-1])

        return Jet(self._exp_like(_scalar.tanh(u0), q_of))

    def _sigmoid_coeffs(self, order=None):
        u0 = self.coeffs[0]
        r0 = _scalar.sigmoid(-u0)  # 1 - s_0, computed without cancellation

        def q_of(s, m):
            # q = s (1 - s) and (1 - s) has coefficients r0, -s_1, -s_2, ..., so
            # q_m = s_m r0 - sum_{j=0..m-1} s_j s_{m-j}
            if m == 0:
                return s[0] * r0
            return s[m] * r0 - _dot(s[:m], s[m:0:-1])

        jet = self if order is None else Jet(self.coeffs[: order + 1])
        return jet._exp_like(_scalar.sigmoid(u0), q_of)

    def sigmoid(self):
        """Logistic sigmoid of the jet."""
        return Jet(self._sigmoid_coeffs())

    def softplus(self):
        """``log(1 + exp(u))`` of the jet; its derivative is the sigmoid."""
        u = self.coeffs
        n = self.order
        s = self._sigmoid_coeffs(order=max(n - 1, 0))
        w = np.empty_like(u, dtype=s.dtype)
        w[0] = _scalar.softplus(u[0])
        chain = _chain(u)
        for k in range(1, n + 1):
            w[k] = chain(s, k)
        return Jet(w)

    def log_sigmoid(self):
        """``log(sigmoid(u)) = -softplus(-u)``."""
        return -((-self).softplus())

    def _kink(self, value, slope):
        c = self.coeffs
        w = c * slope
        w[0] = value
        return Jet(w)

    def abs(self):
        """``|u|`` with ``abs' = sign`` (0 at 0) and no higher derivatives (kink convention)."""
        u0 = self.coeffs[0]
        return self._kink(_scalar.abs(u0), _scalar.sign(u0))

    def relu(self):
        """``max(u, 0)`` with ``relu' = H`` (``H(0) = 1/2``), no higher derivatives."""
        u0 = self.coeffs[0]
        return self._kink(_scalar.relu(u0), _scalar.heaviside(u0))

    # -- structure ------------------------------------------------------------------------------
    def __getitem__(self, key):
        """Index the value (not the coefficient axis): ``jet[..., i]`` is the jet of ``u[..., i]``."""
        if not isinstance(key, tuple):
            key = (key,)
        return Jet(self.coeffs[(slice(None),) + key])

    def sum(self):
        """Sum over the last value axis."""
        self._need_axis("sum")
        return Jet(self.coeffs.sum(axis=-1))

    def mean(self):
        """Mean over the last value axis."""
        self._need_axis("mean")
        return Jet(self.coeffs.sum(axis=-1) / self.shape[-1])

    def prod(self):
        """Product over the last value axis (pairwise products, log2(d) vectorised rounds)."""
        self._need_axis("prod")
        jet = self
        while jet.shape[-1] > 1:
            m = jet.shape[-1]
            half = m // 2
            head = jet[..., :half] * jet[..., half : 2 * half]
            if m % 2:
                head = Jet(np.concatenate([head.coeffs, jet.coeffs[..., 2 * half :]], axis=-1))
            jet = head
        if jet.shape[-1] == 0:
            return Jet.constant(np.ones(jet.shape[:-1], dtype=jet.coeffs.dtype), jet.order)
        return jet[..., 0]

    def matvec(self, W):
        """``W @ u`` over the last value axis: ``sum_j W[h, j] u[..., j]`` -> shape ``(..., h)``."""
        W = _as_values(W)
        self._need_axis("matvec")
        return Jet(np.matmul(self.coeffs, W.T))

    def _need_axis(self, what):
        if len(self.shape) < 1:
            raise ValueError(f"{what} needs a jet with at least one value axis")


# -- helpers -------------------------------------------------------------------------------------
def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise ValueError(f"order must be a non-negative integer, got {order!r}")
    return int(order)


def _as_values(x):
    """Plain value -> array (object arrays for mpmath numbers, float otherwise)."""
    if isinstance(x, Jet):
        raise TypeError("expected a plain value, got a Jet")
    if isinstance(x, np.ndarray):
        return x if x.dtype == object else x.astype(float, copy=False)
    if _scalar.is_mp(x):
        a = np.empty((), dtype=object)
        a[()] = x
        return a
    return np.asarray(x, dtype=float)


def _to_mp(a):
    return a if a.dtype == object else _scalar.to_mp_array(a)


def _dtype(*arrays):
    return object if any(np.asarray(a).dtype == object for a in arrays) else float


def _align(a: Jet, b: Jet):
    nd = max(len(a.shape), len(b.shape))
    return _lift(a.coeffs, nd), _lift(b.coeffs, nd)


def _weights_factorial(n, like):
    f = np.array([math.factorial(k) for k in range(n + 1)], dtype=object if like.dtype == object else float)
    return f.reshape((n + 1,) + (1,) * (like.ndim - 1))


def _is_integer(p) -> bool:
    if isinstance(p, bool):
        return False
    if isinstance(p, (int, np.integer)):
        return True
    try:
        return float(p) == int(p) and abs(float(p)) < 2**31
    except (TypeError, ValueError, OverflowError):
        return False


# -- other array namespaces ------------------------------------------------------------------------
def _ns(a):
    from .._backend import namespace

    return namespace(a)


class XpJet(Jet):
    """A :class:`Jet` whose float64 coefficients are an array of a namespace other than NumPy
    (module docstring).  The recurrences are those of :class:`Jet`, written with the array API
    standard: coefficient ``k`` is ``c[k, ...]``, the sums ``sum_i a_i b_{k-i}`` are
    ``xp.sum(a[1:k+1, ...] * xp.flip(b[:k, ...], axis=0), axis=0)``, and every new coefficient array
    is allocated in ``xp``.  Constants (Python numbers or arrays of ``xp``) combine with it as with
    a :class:`Jet`; NumPy arrays are converted (host data joins the namespace).
    """

    __slots__ = ()

    def __init__(self, coeffs):
        xp = _ns(coeffs)
        if len(coeffs.shape) < 1 or coeffs.shape[0] < 1:
            raise ValueError("Jet coefficients need a leading axis of length N + 1 >= 1")
        if not xp.isdtype(coeffs.dtype, "real floating"):
            if not xp.isdtype(coeffs.dtype, "integral"):
                raise TypeError(f"Jet coefficients must be real numbers, got dtype {coeffs.dtype}")
            coeffs = xp.astype(coeffs, xp.float64)
        self.coeffs = coeffs

    @property
    def xp(self):
        """The array namespace of the coefficients."""
        return _ns(self.coeffs)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def variable(cls, x, order: int, direction=1):
        order = _check_order(order)
        xp = _ns(x if not _scalar.is_host(x) else direction)
        x, direction = _xp_values(x, xp), _xp_values(direction, xp)
        shape = tuple(np.broadcast_shapes(tuple(x.shape), tuple(direction.shape)))
        c = xp.zeros((order + 1,) + shape, dtype=xp.float64)
        c[0, ...] = x
        if order >= 1:
            c[1, ...] = direction
        return cls(c)

    @classmethod
    def constant(cls, x, order: int, xp=None):
        order = _check_order(order)
        xp = _ns(x) if xp is None else xp
        x = _xp_values(x, xp)
        c = xp.zeros((order + 1,) + tuple(x.shape), dtype=xp.float64)
        c[0, ...] = x
        return cls(c)

    def derivatives(self):
        xp = self.xp
        n = self.order
        f = xp.asarray([float(math.factorial(k)) for k in range(n + 1)], dtype=xp.float64)
        return xp.reshape(f, (n + 1,) + (1,) * (self.coeffs.ndim - 1)) * self.coeffs

    def __repr__(self) -> str:
        return f"XpJet(order={self.order}, shape={self.shape}, namespace={_backend_name(self.xp)})"

    def _new(self, c):
        return XpJet(c)

    def _like(self, other):
        if isinstance(other, Jet):
            if other.order != self.order:
                raise ValueError(f"jets of different orders: {self.order} and {other.order}")
            if not isinstance(other, XpJet):
                raise TypeError("a NumPy Jet and a jet of another array namespace cannot be combined")
            return other
        return XpJet.constant(other, self.order, xp=self.xp)

    def _const(self, other):
        """A constant operand: a Python number as is, an array in this jet's namespace."""
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return float(other)
        return _xp_values(other, self.xp)

    # -- arithmetic -----------------------------------------------------------------------------
    def __neg__(self):
        return XpJet(-self.coeffs)

    def __add__(self, other):
        xp = self.xp
        if isinstance(other, Jet):
            a, b = _xp_align(xp, self, self._like(other))
            return XpJet(a + b)
        x = self._const(other)
        c = self.coeffs
        if isinstance(x, float):
            head = c[0:1, ...] + x
            shape = self.shape
        else:
            shape = tuple(np.broadcast_shapes(self.shape, tuple(x.shape)))
            c = _xp_lift(xp, c, len(shape))
            head = c[0:1, ...] + x
        rest = xp.broadcast_to(c[1:, ...], (self.order,) + shape)
        return XpJet(xp.concat([xp.broadcast_to(head, (1,) + shape), rest], axis=0))

    __radd__ = __add__

    def __mul__(self, other):
        xp = self.xp
        if not isinstance(other, Jet):
            x = self._const(other)
            return XpJet((self.coeffs if isinstance(x, float) else _xp_lift(xp, self.coeffs, x.ndim)) * x)
        u, v = _xp_align(xp, self, self._like(other))
        n = self.order
        w = xp.empty(tuple(np.broadcast_shapes(tuple(u.shape), tuple(v.shape))), dtype=xp.float64)
        for k in range(n + 1):
            w[k, ...] = _xp_dot(xp, u[: k + 1, ...], xp.flip(v[: k + 1, ...], axis=0))
        return XpJet(w)

    __rmul__ = __mul__

    def __truediv__(self, other):
        xp = self.xp
        if not isinstance(other, Jet):
            x = self._const(other)
            return XpJet((self.coeffs if isinstance(x, float) else _xp_lift(xp, self.coeffs, x.ndim)) / x)
        u, v = _xp_align(xp, self, self._like(other))
        n = self.order
        w = xp.empty(tuple(np.broadcast_shapes(tuple(u.shape), tuple(v.shape))), dtype=xp.float64)
        w[0, ...] = u[0, ...] / v[0, ...]
        for k in range(1, n + 1):
            w[k, ...] = (u[k, ...] - _xp_dot(xp, v[1 : k + 1, ...], xp.flip(w[:k, ...], axis=0))) / v[0, ...]
        return XpJet(w)

    def __pow__(self, p):
        if isinstance(p, Jet):
            raise TypeError("the exponent of a jet power must be a constant, not a jet")
        if _is_integer(p):
            return self._int_power(int(p))
        xp = self.xp
        u = self.coeffs
        n = self.order
        p = float(p)
        w = xp.empty(u.shape, dtype=xp.float64)
        w[0, ...] = u[0, ...] ** p
        iu = _xp_weights(xp, n, u.ndim) * u
        for k in range(1, n + 1):
            wi = xp.flip(w[:k, ...], axis=0)
            s = p * _xp_dot(xp, iu[1 : k + 1, ...], wi) - _xp_dot(
                xp, u[1 : k + 1, ...] * xp.flip(_xp_weights(xp, k - 1, u.ndim), axis=0), wi)
            w[k, ...] = s / (k * u[0, ...])
        return XpJet(w)

    def _int_power(self, p: int):
        if p == 0:
            xp = self.xp
            return XpJet.constant(xp.ones(self.shape, dtype=xp.float64), self.order, xp=xp)
        if p < 0:
            return 1 / self._int_power(-p)
        result, base = None, self
        while p:
            if p & 1:
                result = base if result is None else result * base
            p >>= 1
            if p:
                base = base * base
        return result

    # -- transcendental primitives ----------------------------------------------------------------
    def _k(self):
        return _scalar.xp_kernels(self.xp)

    def _exp_like(self, w0, q_of):
        xp = self.xp
        u = self.coeffs
        n = self.order
        w = xp.empty(u.shape, dtype=xp.float64)
        w[0, ...] = w0
        q = xp.empty(u.shape, dtype=xp.float64)
        chain = _xp_chain(xp, u)
        for k in range(1, n + 1):
            q[k - 1, ...] = q_of(w, k - 1)
            w[k, ...] = chain(q, k)
        return w

    def exp(self):
        return XpJet(self._exp_like(self._k().exp(self.coeffs[0, ...]), lambda w, m: w[m, ...]))

    def expm1(self):
        k = self._k()
        w = self._exp_like(k.exp(self.coeffs[0, ...]), lambda w, m: w[m, ...])
        w[0, ...] = k.expm1(self.coeffs[0, ...])
        return XpJet(w)

    def _log_of(self, v, w0):
        xp = self.xp
        n = self.order
        w = xp.empty(v.shape, dtype=xp.float64)
        w[0, ...] = w0
        iw = xp.zeros(v.shape, dtype=xp.float64)
        for k in range(1, n + 1):
            if k > 1:
                s = v[k, ...] - _xp_dot(xp, iw[1:k, ...], xp.flip(v[1:k, ...], axis=0)) / k
            else:
                s = v[k, ...]
            w[k, ...] = s / v[0, ...]
            iw[k, ...] = k * w[k, ...]
        return XpJet(w)

    def log(self):
        return self._log_of(self.coeffs, self._k().log(self.coeffs[0, ...]))

    def log1p(self):
        xp = self.xp
        c = self.coeffs
        v = xp.concat([c[0:1, ...] + 1.0, c[1:, ...]], axis=0)
        return self._log_of(v, self._k().log1p(c[0, ...]))

    def sqrt(self):
        xp = self.xp
        u = self.coeffs
        n = self.order
        w = xp.empty(u.shape, dtype=xp.float64)
        w[0, ...] = self._k().sqrt(u[0, ...])
        for k in range(1, n + 1):
            s = u[k, ...] - (_xp_dot(xp, w[1:k, ...], xp.flip(w[1:k, ...], axis=0)) if k > 1 else 0.0)
            w[k, ...] = s / (2 * w[0, ...])
        return XpJet(w)

    def sincos(self):
        xp = self.xp
        u = self.coeffs
        n = self.order
        s = xp.empty(u.shape, dtype=xp.float64)
        c = xp.empty(u.shape, dtype=xp.float64)
        s[0, ...] = self._k().sin(u[0, ...])
        c[0, ...] = self._k().cos(u[0, ...])
        chain = _xp_chain(xp, u)
        for k in range(1, n + 1):
            s[k, ...] = chain(c, k)
            c[k, ...] = -chain(s, k)
        return XpJet(s), XpJet(c)

    def tanh(self):
        xp = self.xp
        u0 = self.coeffs[0, ...]
        sech2 = self._k().sech2(u0)

        def q_of(w, m):
            if m == 0:
                return sech2
            return -_xp_dot(xp, w[: m + 1, ...], xp.flip(w[: m + 1, ...], axis=0))

        return XpJet(self._exp_like(self._k().tanh(u0), q_of))

    def _sigmoid_coeffs(self, order=None):
        xp = self.xp
        u0 = self.coeffs[0, ...]
        r0 = self._k().sigmoid(-u0)

        def q_of(s, m):
            if m == 0:
                return s[0, ...] * r0
            return s[m, ...] * r0 - _xp_dot(xp, s[:m, ...], xp.flip(s[1 : m + 1, ...], axis=0))

        jet = self if order is None else XpJet(self.coeffs[: order + 1, ...])
        return jet._exp_like(self._k().sigmoid(u0), q_of)

    def sigmoid(self):
        return XpJet(self._sigmoid_coeffs())

    def softplus(self):
        xp = self.xp
        u = self.coeffs
        n = self.order
        s = self._sigmoid_coeffs(order=max(n - 1, 0))
        w = xp.empty(u.shape, dtype=xp.float64)
        w[0, ...] = self._k().softplus(u[0, ...])
        chain = _xp_chain(xp, u)
        for k in range(1, n + 1):
            w[k, ...] = chain(s, k)
        return XpJet(w)

    def _kink(self, value, slope):
        w = self.coeffs * slope
        w[0, ...] = value
        return XpJet(w)

    def abs(self):
        u0 = self.coeffs[0, ...]
        return self._kink(self._k().abs(u0), self._k().sign(u0))

    def relu(self):
        u0 = self.coeffs[0, ...]
        return self._kink(self._k().relu(u0), self._k().heaviside(u0))

    # -- structure ------------------------------------------------------------------------------
    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        return XpJet(self.coeffs[(slice(None),) + key])

    def sum(self):
        self._need_axis("sum")
        return XpJet(self.xp.sum(self.coeffs, axis=-1))

    def mean(self):
        self._need_axis("mean")
        return XpJet(self.xp.sum(self.coeffs, axis=-1) / self.shape[-1])

    def prod(self):
        self._need_axis("prod")
        xp = self.xp
        jet = self
        while jet.shape[-1] > 1:
            m = jet.shape[-1]
            half = m // 2
            head = jet[..., :half] * jet[..., half : 2 * half]
            if m % 2:
                head = XpJet(xp.concat([head.coeffs, jet.coeffs[..., 2 * half :]], axis=-1))
            jet = head
        if jet.shape[-1] == 0:
            return XpJet.constant(xp.ones(jet.shape[:-1], dtype=xp.float64), jet.order, xp=xp)
        return jet[..., 0]

    def matvec(self, W):
        self._need_axis("matvec")
        xp = self.xp
        W = _xp_values(W, xp)
        return XpJet(xp.matmul(self.coeffs, W.T))


def _backend_name(xp):
    from .._backend import backend_name

    return backend_name(xp)


def _xp_values(x, xp):
    """A constant for an :class:`XpJet` of namespace ``xp``: a float64 array of ``xp``."""
    if isinstance(x, Jet):
        raise TypeError("expected a plain value, got a Jet")
    if _scalar.is_mp(x):
        raise TypeError("mpmath numbers cannot enter a jet of another array namespace")
    from .._backend import asarray

    return asarray(x, xp, xp.float64)


def _xp_lift(xp, c, value_ndim):
    extra = value_ndim - (c.ndim - 1)
    if extra <= 0:
        return c
    return xp.reshape(c, tuple(c.shape[:1]) + (1,) * extra + tuple(c.shape[1:]))


def _xp_align(xp, a: Jet, b: Jet):
    nd = max(len(a.shape), len(b.shape))
    return _xp_lift(xp, a.coeffs, nd), _xp_lift(xp, b.coeffs, nd)


def _xp_dot(xp, a, b):
    """``sum_i a[i] * b[i]`` over the leading axis."""
    return xp.sum(a * b, axis=0)


def _xp_weights(xp, n, ndim):
    w = xp.arange(n + 1, dtype=xp.float64)
    return xp.reshape(w, (n + 1,) + (1,) * (ndim - 1))


def _xp_chain(xp, u):
    """:func:`_chain` for coefficient arrays of namespace ``xp``."""
    if u.shape[0] <= 2 or not bool(xp.any(u[2:, ...] != 0)):
        u1 = u[1, ...] if u.shape[0] > 1 else None

        def linear(q, k):
            return u1 * q[k - 1, ...] / k

        return linear
    iu = _xp_weights(xp, u.shape[0] - 1, u.ndim) * u

    def general(q, k):
        return _xp_dot(xp, iu[1 : k + 1, ...], xp.flip(q[:k, ...], axis=0)) / k

    return general
