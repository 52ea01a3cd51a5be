"""Separable structure of a test function, and the univariate pieces it is made of.

``Function.separable(d)`` recognises

* ``f(z) = a + b * sum_j g_j(z_j)``   (kind ``"sum"``; ``mean`` folds ``1/d`` into ``b``), or
* ``f(z) = a + b * prod_j g_j(z_j)``  (kind ``"prod"``),

from ``sum(E)``, ``mean(E)``, ``prod(E)`` with ``E`` elementwise in ``z`` (no indexing, no ``@``, no
reduction inside), wrapped in affine maps by constants (``alpha * sum(E) + beta``, ``sum(E) / k``,
``-sum(E)``; sums of ``sum``/``mean`` terms combine).  Constant vectors in ``E`` become their
``j``-th entry in ``g_j``.  For ``d = 1`` every expression without ``@`` is separable
(kind ``"sum"``): ``z[0]``, ``sum(.)``, ``prod(.)`` and ``mean(.)`` of a one-element vector all
equal that element.

``a`` and ``b`` are constant expressions; :class:`Separable` exposes them as zero-argument
callables ``a()`` and ``b()`` that return mpf at the caller's current mpmath precision (so a
literal ``0.49`` stays the decimal 0.49 at any precision), and as floats ``a_float``, ``b_float``.

:class:`Univariate` is the function ``x -> g_j(x)`` of one real variable: float and mpmath values,
derivatives by jets, the points where a kinked primitive's argument changes sign (``kinks``), and
the exponential-polynomial form (``exp_poly``) when there is one.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from . import _exp_poly
from ._expr import (
    KINKED, Binary, Call, Index, Literal, MatVec, Named, Neg, Node, Reduce, Var, evaluate,
    kink_primitives, rebuild,
)
from .jet import Jet, _check_order

__all__ = ["Separable", "Univariate", "recognise"]

_ZERO = Literal(0, "0")
_ONE = Literal(1, "1")


class Separable:
    """``f(z) = a + b * sum_j g_j(z_j)`` (kind ``"sum"``) or ``a + b * prod_j g_j(z_j)`` (``"prod"``).

    Attributes
    ----------
    kind : str
        ``"sum"`` or ``"prod"``.
    d : int
        Number of coordinates this decomposition is for.
    elementwise : Node
        The tree of ``E`` in vector form (``g_j(z_j) = E(z)[j]``), used by the fast jet path.
    """

    def __init__(self, kind: str, a: Node, b: Node, elementwise: Node, d: int):
        self.kind = kind
        self.d = d
        self.elementwise = elementwise
        self._a, self._b = a, b

    def a(self):
        """The offset ``a`` as an mpf at the current mpmath precision."""
        return mpmath.mpf(evaluate(self._a, None, "mp"))

    def b(self):
        """The scale ``b`` as an mpf at the current mpmath precision."""
        return mpmath.mpf(evaluate(self._b, None, "mp"))

    @property
    def a_float(self) -> float:
        """The offset ``a`` in float64."""
        return float(evaluate(self._a, None, "float"))

    @property
    def b_float(self) -> float:
        """The scale ``b`` in float64."""
        return float(evaluate(self._b, None, "float"))

    def g(self, j: int) -> Univariate:
        """The univariate factor / summand for coordinate ``j`` (``0 <= j < d``)."""
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < self.d:
            raise ValueError(f"coordinate j must be an integer in [0, {self.d}), got {j!r}")
        return Univariate(_coordinate(self.elementwise, int(j)))

    def __repr__(self) -> str:
        op = "sum" if self.kind == "sum" else "prod"
        return f"<Separable {self._a} + ({self._b}) * {op}_j g_j(z_j), g = {self.elementwise}, d={self.d}>"


# ----------------------------------------------------------------------------------------------
# recognition
# ----------------------------------------------------------------------------------------------
def recognise(tree: Node, d: int) -> Separable | None:
    """The separable decomposition of ``tree`` for ``d`` coordinates, or None."""
    if tree.const:
        return Separable("sum", tree, _ONE, _ZERO, d)
    if d == 1:
        flat = _flatten_single(tree)
        if flat is not None:
            return Separable("sum", _ZERO, _ONE, flat, d)
        return None
    found = _affine_of_reduction(tree, d)
    if found is None:
        return None
    kind, a, b, elementwise = found
    return Separable(kind, a, b, elementwise, d)


def _is_elementwise(node: Node, d: int) -> bool:
    for n in node.walk():
        if isinstance(n, (Reduce, Index, MatVec)):
            return False
        if isinstance(n, Named) and n.ndim == 1 and len(n.value) not in (1, d):
            return False
    return True


def _affine_of_reduction(node: Node, d: int):
    """``(kind, a, b, E)`` with ``node = a + b * reduce(E)``, or None."""
    if isinstance(node, Reduce):
        arg = node.children[0]
        if arg.const or not _is_elementwise(arg, d):
            return None
        if node.name == "prod":
            return "prod", _ZERO, _ONE, arg
        b = _ONE if node.name == "sum" else Binary("/", _ONE, Literal(d, str(d)))
        return "sum", _ZERO, b, arg
    if isinstance(node, Neg):
        inner = _affine_of_reduction(node.children[0], d)
        if inner is None:
            return None
        kind, a, b, e = inner
        return kind, _neg(a), _neg(b), e
    if not isinstance(node, Binary):
        return None
    left, right = node.children
    if left.rank != 0 or right.rank != 0:
        return None
    if left.const or right.const:
        c, x, c_left = (left, right, True) if left.const else (right, left, False)
        inner = _affine_of_reduction(x, d)
        if inner is None:
            return None
        kind, a, b, e = inner
        if node.op == "+":
            return kind, _add(a, c), b, e
        if node.op == "-":
            if c_left:
                return kind, _sub(c, a), _neg(b), e
            return kind, _sub(a, c), b, e
        if node.op == "*":
            return kind, _mul(a, c), _mul(b, c), e
        if node.op == "/" and not c_left:
            return kind, Binary("/", a, c) if a is not _ZERO else a, Binary("/", b, c), e
        return None
    if node.op in ("+", "-"):
        p, q = _affine_of_reduction(left, d), _affine_of_reduction(right, d)
        if p is None or q is None or p[0] != "sum" or q[0] != "sum":
            return None
        _, a1, b1, e1 = p
        _, a2, b2, e2 = q
        combined = Binary(node.op, _mul(e1, b1), _mul(e2, b2))
        a = _add(a1, a2) if node.op == "+" else _sub(a1, a2)
        return "sum", a, _ONE, combined
    return None


def _neg(x):
    return x if x is _ZERO else Neg(x)


def _add(x, y):
    return y if x is _ZERO else x if y is _ZERO else Binary("+", x, y)


def _sub(x, y):
    return _neg(y) if x is _ZERO else x if y is _ZERO else Binary("-", x, y)


def _mul(x, y):
    if x is _ZERO or y is _ZERO:
        return _ZERO
    return y if x is _ONE else x if y is _ONE else Binary("*", x, y)


def _flatten_single(node: Node):
    """For ``d = 1``: drop ``[0]`` and one-element reductions; None if ``@`` or a long vector."""
    if isinstance(node, MatVec):
        return None
    if isinstance(node, Named) and node.ndim == 1 and len(node.value) != 1:
        return None
    children = []
    for child in node.children:
        flat = _flatten_single(child)
        if flat is None:
            return None
        children.append(flat)
    if isinstance(node, Index):
        return children[0] if node.i in (0, -1) else None
    if isinstance(node, Reduce):
        return children[0]
    return rebuild(node, children)


def _coordinate(node: Node, j: int) -> Node:
    """The univariate tree of coordinate ``j``: ``z`` -> ``x``, constant vectors -> entry ``j``."""
    if isinstance(node, Var):
        return Var("x")
    if isinstance(node, Named) and node.ndim == 1:
        k = j if len(node.value) > 1 else 0
        return Named(f"{node.name}[{k}]", node.value[k])
    return rebuild(node, [_coordinate(c, j) for c in node.children])


# ----------------------------------------------------------------------------------------------
# univariate functions
# ----------------------------------------------------------------------------------------------
class Univariate:
    """A function of one real variable ``x``, evaluated elementwise.

    >>> from gsbref.functions import function
    >>> g = function("sum((z - 0.49)**2)").separable(3).g(0)
    >>> g
    Univariate('(x - 0.49)**2')
    >>> float(g(0.5))  # doctest: +NUMBER
    0.0001
    """

    def __init__(self, tree: Node):
        self.tree = tree

    @property
    def expr(self) -> str:
        """The expression in ``x``."""
        return str(self.tree)

    def __repr__(self) -> str:
        return f"Univariate({self.expr!r})"

    @property
    def kink_primitives(self) -> tuple:
        """Names of the kinked primitives (``abs``, ``relu``) used."""
        return kink_primitives(self.tree)

    @property
    def has_kinks(self) -> bool:
        """True when ``abs`` or ``relu`` occurs."""
        return bool(self.kink_primitives)

    def __call__(self, x):
        """Float64 values, elementwise; the output has the shape of ``x``."""
        x = np.asarray(x, dtype=float)
        return _fill(evaluate(self.tree, x, "float"), x.shape)

    def mp(self, x):
        """Value at one point ``x`` (an mpmath-convertible number), at the current precision."""
        return mpmath.mpf(evaluate(self.tree, mpmath.mpf(x), "mp"))

    def derivatives(self, x, order: int):
        """``[g(x), g'(x), ..., g^(order)(x)]`` in float64, shape ``(order + 1, *x.shape)``."""
        x = np.asarray(x, dtype=float)
        return _jet_derivatives(self.tree, Jet.variable(x, _check_order(order)), x.shape)

    def mp_derivatives(self, x, order: int):
        """The same at one mpmath point: an object array of ``order + 1`` mpf."""
        point = np.empty((), dtype=object)
        point[()] = mpmath.mpf(x)
        jet = Jet.variable(point, _check_order(order))
        out = _jet_derivatives(self.tree, jet, ())
        return np.array([mpmath.mpf(v) for v in out], dtype=object)

    def exp_poly(self):
        """``[(coef, k, c), ...]`` with ``g(x) = sum coef x**k exp(c x)`` (mpf/mpc at the current
        precision), or ``None`` when ``g`` has no such form (see :mod:`._exp_poly`)."""
        return _exp_poly.exp_poly(self.tree)

    def kinks(self, lo, hi, grid: int = 2049):
        """Sorted points in the open interval ``(lo, hi)`` where the argument of an ``abs`` or
        ``relu`` changes sign, as mpf refined to the current mpmath precision.

        An affine argument is solved exactly.  Otherwise sign changes are looked for on a grid of
        ``grid`` points and refined by bisection in mpmath; two sign changes closer than the grid
        spacing ``(hi - lo) / (grid - 1)`` can cancel and go unseen, and a zero without a sign
        change (``abs(x**2)``, where the function is smooth anyway) is not reported.
        """
        lo, hi = mpmath.mpf(lo), mpmath.mpf(hi)
        if not (mpmath.isfinite(lo) and mpmath.isfinite(hi)) or not lo < hi:
            raise ValueError(f"kinks(lo, hi) needs finite lo < hi, got {lo}, {hi}")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 3:
            raise ValueError(f"grid must be an integer >= 3, got {grid!r}")
        roots = []
        seen = set()
        for node in self.tree.walk():
            if not (isinstance(node, Call) and node.name in KINKED):
                continue
            arg = node.children[0]
            if arg.const or str(arg) in seen:
                continue
            seen.add(str(arg))
            affine = _exp_poly._affine(_exp_poly._convert(arg))
            if affine is not None:
                alpha, beta = affine
                if alpha != 0 and mpmath.im(alpha) == 0 and mpmath.im(beta) == 0:
                    roots.append(mpmath.mpf(-mpmath.re(beta) / mpmath.re(alpha)))
                continue
            roots.extend(_sign_changes(arg, lo, hi, grid))
        inside = sorted(r for r in roots if lo < r < hi)
        tol = mpmath.eps * 4
        out = []
        for r in inside:
            if not out or abs(r - out[-1]) > tol * max(1, abs(r)):
                out.append(r)
        return out


def _fill(value, shape):
    """Broadcast a (possibly constant) float result to ``shape``."""
    return np.array(np.broadcast_to(np.asarray(value, dtype=float), shape))[()]


def _jet_derivatives(tree: Node, jet: Jet, shape):
    out = evaluate(tree, jet, "mp" if jet.coeffs.dtype == object else "float")
    n = jet.order
    if not isinstance(out, Jet):
        out = Jet.constant(out, n)
    coeffs = np.broadcast_to(out.coeffs, (n + 1,) + tuple(shape))
    facts = np.array([math.factorial(k) for k in range(n + 1)], dtype=coeffs.dtype)
    return facts.reshape((n + 1,) + (1,) * len(shape)) * coeffs


def _sign_changes(arg: Node, lo, hi, grid: int):
    xs = np.linspace(float(lo), float(hi), grid)
    with np.errstate(all="ignore"):
        vals = np.broadcast_to(np.asarray(evaluate(arg, xs, "float"), dtype=float), xs.shape)
    sign = np.sign(vals)
    brackets = []
    for i in range(grid - 1):
        if sign[i] * sign[i + 1] < 0:
            brackets.append((i, i + 1))
        elif sign[i] == 0 and 0 < i and sign[i - 1] * sign[i + 1] < 0:
            brackets.append((i - 1, i + 1))
    grid_mp = [lo + (hi - lo) * k / (grid - 1) for k in range(grid)]
    roots = []
    for i, k in brackets:
        root = _bisect(arg, grid_mp[i], grid_mp[k])
        if root is not None:
            roots.append(root)
    return roots


def _bisect(arg: Node, a, b):
    """Refine a sign change of ``arg`` in ``[a, b]`` to the current mpmath precision."""

    def u(x):
        return mpmath.mpf(evaluate(arg, mpmath.mpf(x), "mp"))

    ua, ub = u(a), u(b)
    if ua == 0:
        return a
    if ub == 0:
        return b
    if mpmath.sign(ua) == mpmath.sign(ub):
        return None  # the float grid saw a sign change that mpmath does not confirm
    eps = mpmath.eps
    for _ in range(4 * mpmath.mp.prec + 200):
        m = (a + b) / 2
        if b - a <= eps * max(abs(a), abs(b)) or m in (a, b):
            break
        um = u(m)
        if um == 0:
            return m
        if mpmath.sign(um) == mpmath.sign(ua):
            a, ua = m, um
        else:
            b = m
    return (a + b) / 2
