"""Expression trees for test functions, and their evaluation on arrays, jets and mpmath.

A tree is built by :mod:`gsbref.functions._parse` from a formula in ``z``.  Every node knows at
build time

* its **rank**: 0 for a scalar per sample (a reduction, ``z[i]``, a number), 1 for a vector along
  the coordinate axis (``z``, ``exp(z)``, ``W @ z``, a constant vector);
* whether it is **constant** (does not involve ``z``).

Evaluation maps a node to a value with the same leading (batch) axes as ``z``: rank-1 values keep
the last axis, rank-0 values drop it.  When a rank-0 value that depends on ``z`` meets a rank-1 value
it gets a trailing axis of length 1, so ``z[0] * z`` or ``sum(z) - z`` broadcast as written.

The evaluator works in one of two modes: ``"float"`` (float64 arrays, float jets) or ``"mp"``
(mpmath object arrays, object jets).  In ``"float"`` mode the arrays may belong to another array
namespace (CuPy, ``array_api_strict``; :mod:`gsbref._backend`): :func:`evaluate` is then given that
namespace as ``xp`` (:func:`namespace_of` finds it), constant vectors and matrices are converted to
it (once per node and namespace), and the primitives map to the array-API kernels of
:func:`gsbref.functions._scalar.xp_kernels` (jets: :class:`~gsbref.functions.jet.XpJet`).  In ``"mp"`` mode numeric literals become
``mpmath.mpf(<their source text>)`` at the current precision (so ``0.49`` is the decimal 0.49),
constants given as floats are converted exactly, and ``pi`` is mpmath's pi.  All primitives go
through :mod:`gsbref.ops`, which dispatches on the value type.
"""

from __future__ import annotations

import math
import weakref

import mpmath
import numpy as np

from .. import ops
from . import _scalar
from .jet import Jet

ELEMENTWISE = (
    "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "sigmoid", "softplus",
    "log_sigmoid", "abs", "relu",
)
REDUCTIONS = ("sum", "prod", "mean")
KINKED = ("abs", "relu")


class Node:
    """Base class: ``rank`` (0 scalar, 1 vector), ``const`` (no ``z``), ``children``."""

    rank: int = 0
    const: bool = True
    children: tuple = ()

    def walk(self):
        """All nodes of the subtree, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


class Var(Node):
    """The argument ``z`` (or ``x`` in a univariate tree)."""

    rank = 1
    const = False

    def __init__(self, name: str = "z"):
        self.name = name

    def __str__(self) -> str:
        return self.name


class Literal(Node):
    """A number written in the formula; ``text`` is its source, used for mpmath conversion."""

    def __init__(self, value, text: str | None = None):
        self.value = value
        self.text = text if text is not None else repr(value)

    def __str__(self) -> str:
        return self.text


class Pi(Node):
    """The constant pi."""

    def __str__(self) -> str:
        return "pi"


class Named(Node):
    """A constant passed by keyword: a number, a vector (rank 1) or a matrix (only for ``@``)."""

    def __init__(self, name: str, value):
        self.name = name
        self.value = value
        self.rank = min(np.ndim(value), 1)
        self.ndim = np.ndim(value)

    def __str__(self) -> str:
        return self.name


class Neg(Node):
    def __init__(self, arg: Node):
        self.children = (arg,)
        self.rank, self.const = arg.rank, arg.const

    def __str__(self) -> str:
        return f"-{_paren(self.children[0])}"


class Binary(Node):
    """``left op right`` for op in ``+ - * /``."""

    def __init__(self, op: str, left: Node, right: Node):
        self.op = op
        self.children = (left, right)
        self.rank = max(left.rank, right.rank)
        self.const = left.const and right.const

    def __str__(self) -> str:
        left, right = self.children
        return f"{_paren(left)} {self.op} {_paren(right)}"


class Power(Node):
    """``base ** exponent`` with a constant scalar exponent."""

    def __init__(self, base: Node, exponent: Node):
        self.children = (base, exponent)
        self.rank, self.const = base.rank, base.const

    def __str__(self) -> str:
        base, exponent = self.children
        return f"{_paren(base)}**{_paren(exponent)}"


class Call(Node):
    """An elementwise primitive applied to one argument."""

    def __init__(self, name: str, arg: Node):
        self.name = name
        self.children = (arg,)
        self.rank, self.const = arg.rank, arg.const

    def __str__(self) -> str:
        return f"{self.name}({self.children[0]})"


class Reduce(Node):
    """``sum``, ``prod`` or ``mean`` over the coordinate axis of a vector."""

    rank = 0

    def __init__(self, name: str, arg: Node):
        self.name = name
        self.children = (arg,)
        self.const = arg.const

    def __str__(self) -> str:
        return f"{self.name}({self.children[0]})"


class Index(Node):
    """``arg[i]``: one coordinate of a vector."""

    rank = 0

    def __init__(self, arg: Node, i: int):
        self.i = i
        self.children = (arg,)
        self.const = arg.const

    def __str__(self) -> str:
        return f"{_paren(self.children[0])}[{self.i}]"


class MatVec(Node):
    """``W @ arg`` with a constant matrix ``W``."""

    rank = 1

    def __init__(self, matrix: Named, arg: Node):
        self.matrix = matrix
        self.children = (arg,)
        self.const = arg.const

    def __str__(self) -> str:
        return f"{self.matrix} @ {_paren(self.children[0])}"


def _paren(node: Node) -> str:
    return f"({node})" if isinstance(node, (Binary, Neg, Power, MatVec)) else str(node)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
def mode_of(z) -> str:
    """``"mp"`` for mpmath objects (object arrays, object jets), ``"float"`` otherwise."""
    if isinstance(z, Jet):
        return "mp" if isinstance(z.coeffs, np.ndarray) and z.coeffs.dtype == object else "float"
    if isinstance(z, np.ndarray) and z.dtype == object:
        return "mp"
    return "float"


def namespace_of(z):
    """The array namespace of ``z`` (an array or a jet) when it is not NumPy's, else None."""
    c = z.coeffs if isinstance(z, Jet) else z
    if z is None or _scalar.is_host(c):
        return None
    from .._backend import is_numpy, namespace

    xp = namespace(c)
    return None if is_numpy(xp) else xp


def _xp_constant(node: Named, xp):
    """A keyword constant in namespace ``xp`` (numbers stay Python floats; arrays are converted
    once per node and namespace)."""
    value = node.value
    if not isinstance(value, np.ndarray):
        return float(value)
    # kept beside the node, not in it: a tree stays picklable after use on another namespace
    cache = _XP_CONSTANTS.setdefault(node, {})
    key = id(xp)  # namespaces are modules: they live as long as the interpreter
    if key not in cache:
        from .._backend import asarray

        cache[key] = asarray(value.astype(float), xp)
    return cache[key]


#: ``{Named node: {id(namespace): the constant in that namespace}}``, dropped with the node
_XP_CONSTANTS: "weakref.WeakKeyDictionary[Node, dict]" = weakref.WeakKeyDictionary()


def mp_number(text_or_value):
    """A literal's source text or a float/int -> mpf at the current precision (exact for floats)."""
    if isinstance(text_or_value, str):
        return mpmath.mpf(text_or_value.replace("_", ""))
    return mpmath.mpf(text_or_value)


def constant_value(value, mode: str):
    """A keyword constant (number or array) in the representation of ``mode``."""
    if mode == "float":
        if isinstance(value, np.ndarray):
            return value.astype(float)
        return float(value)
    if isinstance(value, np.ndarray):
        return value if value.dtype == object else _scalar.to_mp_array(value)
    return mpmath.mpf(value)


def literal_value(node: Literal, mode: str):
    if mode == "float":
        return float(node.value)
    if isinstance(node.value, int):
        return mpmath.mpf(node.value)
    return mp_number(node.text)


def exponent_value(node: Node, mode: str):
    """The constant exponent of ``**``: an ``int`` when integral (exact powers), else a number."""
    p = evaluate(node, None, mode)
    if isinstance(p, np.ndarray):
        p = p[()]
    if float(p) == math.floor(float(p)) and abs(float(p)) < 2**31:
        return int(float(p))
    return p


def _expand(value):
    """Give a batch-shaped rank-0 value a trailing axis so it broadcasts against vectors."""
    if isinstance(value, Jet):
        return value._new(value.coeffs[..., None])
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return value[..., None]
    if not _scalar.is_host(value) and len(value.shape) >= 1:
        return value[..., None]
    return value


def _length(value):
    if isinstance(value, Jet):
        return value.shape[-1] if value.shape else None
    if not _scalar.is_host(value):
        return value.shape[-1] if len(value.shape) else None
    return np.shape(value)[-1] if np.ndim(value) else None


_BINARY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


def evaluate(node: Node, z, mode: str, xp=None):
    """Value of ``node`` at ``z`` (array, object array or jet), following the rank rules above.
    ``xp``: the namespace of ``z`` when it is not NumPy's (module docstring; mode ``"float"``)."""
    if xp is not None:
        return _evaluate_xp(node, z, xp)
    if isinstance(node, Var):
        return z
    if isinstance(node, Literal):
        return literal_value(node, mode)
    if isinstance(node, Pi):
        return math.pi if mode == "float" else +mpmath.pi
    if isinstance(node, Named):
        return constant_value(node.value, mode)
    if isinstance(node, Neg):
        return -evaluate(node.children[0], z, mode)
    if isinstance(node, Binary):
        left, right = node.children
        a, b = evaluate(left, z, mode), evaluate(right, z, mode)
        if left.rank != right.rank:
            if left.rank == 0 and not left.const:
                a = _expand(a)
            if right.rank == 0 and not right.const:
                b = _expand(b)
        elif left.rank == 1:
            la, lb = _length(a), _length(b)
            if la is not None and lb is not None and la != lb and 1 not in (la, lb):
                raise ValueError(
                    f"vector lengths do not match in '{node}': {la} and {lb}"
                )
        return _BINARY[node.op](a, b)
    if isinstance(node, Power):
        base, exponent = node.children
        return ops.power(evaluate(base, z, mode), exponent_value(exponent, mode))
    if isinstance(node, Call):
        return getattr(ops, node.name)(evaluate(node.children[0], z, mode))
    if isinstance(node, Reduce):
        return getattr(ops, node.name)(_vector(node, evaluate(node.children[0], z, mode)))
    if isinstance(node, Index):
        return ops.index(_vector(node, evaluate(node.children[0], z, mode)), node.i)
    if isinstance(node, MatVec):
        W = constant_value(node.matrix.value, mode)
        return ops.matvec(W, _vector(node, evaluate(node.children[0], z, mode)))
    raise TypeError(f"unknown expression node {node!r}")  # pragma: no cover - parser guarantees


def _evaluate_xp(node: Node, z, xp):
    """:func:`evaluate` in ``"float"`` mode for arrays and jets of namespace ``xp``."""
    if isinstance(node, Var):
        return z
    if isinstance(node, Literal):
        return float(node.value)
    if isinstance(node, Pi):
        return math.pi
    if isinstance(node, Named):
        return _xp_constant(node, xp)
    if isinstance(node, Neg):
        return -_evaluate_xp(node.children[0], z, xp)
    if isinstance(node, Binary):
        left, right = node.children
        a, b = _evaluate_xp(left, z, xp), _evaluate_xp(right, z, xp)
        if left.rank != right.rank:
            if left.rank == 0 and not left.const:
                a = _expand(a)
            if right.rank == 0 and not right.const:
                b = _expand(b)
        elif left.rank == 1:
            la, lb = _length(a), _length(b)
            if la is not None and lb is not None and la != lb and 1 not in (la, lb):
                raise ValueError(f"vector lengths do not match in '{node}': {la} and {lb}")
        return _BINARY[node.op](a, b)
    if isinstance(node, Power):
        base, exponent = node.children
        x = _evaluate_xp(base, z, xp)
        p = exponent_value(exponent, "float")
        if isinstance(x, Jet):
            return x**p
        return x**p if not isinstance(x, float) else float(np.power(x, p))
    if isinstance(node, Call):
        x = _evaluate_xp(node.children[0], z, xp)
        if isinstance(x, Jet):
            return getattr(x, node.name)()
        if isinstance(x, float):
            return float(getattr(_scalar, node.name)(x))
        return getattr(_scalar.xp_kernels(xp), node.name)(x)
    if isinstance(node, Reduce):
        x = _evaluate_xp(node.children[0], z, xp)
        if isinstance(x, Jet):
            return getattr(x, node.name)()
        x = _xp_vector(node, x)
        if node.name == "sum":
            return xp.sum(x, axis=-1)
        if node.name == "prod":
            return xp.prod(x, axis=-1)
        return xp.sum(x, axis=-1) / x.shape[-1]
    if isinstance(node, Index):
        x = _evaluate_xp(node.children[0], z, xp)
        if not isinstance(x, Jet):
            x = _xp_vector(node, x)
        n = x.shape[-1]
        if not -n <= node.i < n:
            raise ValueError(f"index {node.i} is out of range for {n} coordinates")
        return x[..., node.i]
    if isinstance(node, MatVec):
        W = _xp_constant(node.matrix, xp)
        x = _evaluate_xp(node.children[0], z, xp)
        if not isinstance(x, Jet):
            x = _xp_vector(node, x)
        if W.ndim != 2:
            raise ValueError(f"matvec(W, z): W must be a 2-d matrix, got shape {tuple(W.shape)}")
        if W.shape[1] != x.shape[-1]:
            raise ValueError(f"matvec(W, z): W has {W.shape[1]} columns but z has {x.shape[-1]} coordinates")
        if isinstance(x, Jet):
            return x.matvec(W)
        return xp.matmul(x, W.T)
    raise TypeError(f"unknown expression node {node!r}")  # pragma: no cover - parser guarantees


def _xp_vector(node, value):
    if isinstance(value, float) or len(value.shape) < 1:
        raise ValueError(f"'{node}' needs a vector argument")  # pragma: no cover - rank-checked
    return value


def _vector(node, value):
    """Rank-1 constants are bare vectors; give them an array form for reductions."""
    if isinstance(value, Jet):
        return value
    if np.ndim(value) < 1:
        raise ValueError(f"'{node}' needs a vector argument")  # pragma: no cover - rank-checked
    return value


def rebuild(node: Node, children) -> Node:
    """A copy of ``node`` with new children (leaves are returned unchanged)."""
    children = tuple(children)
    if not node.children:
        return node
    if isinstance(node, Neg):
        return Neg(*children)
    if isinstance(node, Binary):
        return Binary(node.op, *children)
    if isinstance(node, Power):
        return Power(*children)
    if isinstance(node, Call):
        return Call(node.name, *children)
    if isinstance(node, Reduce):
        return Reduce(node.name, *children)
    if isinstance(node, Index):
        return Index(children[0], node.i)
    if isinstance(node, MatVec):
        return MatVec(node.matrix, *children)
    raise TypeError(f"unknown expression node {node!r}")  # pragma: no cover


def kink_primitives(tree: Node) -> tuple:
    """Sorted names of the kinked primitives (``abs``, ``relu``) used in ``tree``."""
    return tuple(sorted({n.name for n in tree.walk() if isinstance(n, Call) and n.name in KINKED}))
