"""Formula strings -> expression trees (:mod:`gsbref.functions._expr`), through Python's ``ast``.

Only a small, explicit subset of Python expressions is accepted; every other syntax element is
rejected with a ValueError that names it.  Nothing is ever evaluated by Python itself.

Grammar (``E`` an expression, ``C`` a constant subexpression, ``W`` a matrix constant)::

    E := z | number | pi | name | E (+ - * /) E | -E | +E | E ** C | W @ E | E[int]
       | exp(E) | log(E) | log1p(E) | expm1(E) | sqrt(E) | sin(E) | cos(E) | tanh(E)
       | sigmoid(E) | softplus(E) | log_sigmoid(E) | abs(E) | relu(E)
       | sum(E) | prod(E) | mean(E)

``name`` is a keyword constant: a number, a 1-d vector, or a 2-d matrix (only left of ``@``).
Ranks (scalar / vector) are checked here: reductions and indexing need a vector argument, the
exponent of ``**`` must be a constant scalar.

>>> str(parse("sum((z - 0.49)**2)", {}))
'sum((z - 0.49)**2)'
>>> parse("z.T", {})
Traceback (most recent call last):
...
ValueError: attribute access ('.T') is not allowed in a formula
"""

from __future__ import annotations

import ast
import numbers

import mpmath
import numpy as np

from ._expr import (
    ELEMENTWISE, REDUCTIONS, Binary, Call, Index, Literal, MatVec, Named, Neg, Node, Pi, Power,
    Reduce, Var,
)

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
RESERVED = frozenset(("z", "pi") + ELEMENTWISE + REDUCTIONS)

_DESCRIBE = {
    ast.Attribute: "attribute access",
    ast.Lambda: "lambda",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression",
    ast.List: "list display",
    ast.Tuple: "tuple",
    ast.Dict: "dict display",
    ast.Set: "set display",
    ast.ListComp: "comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Starred: "starred expression",
    ast.NamedExpr: "assignment expression",
    ast.Slice: "slice",
    ast.JoinedStr: "f-string",
    ast.Await: "await",
}


def check_constants(constants: dict) -> dict:
    """Validate keyword constants; return them as numbers / float or object arrays."""
    out = {}
    for name, value in constants.items():
        if name in RESERVED:
            raise ValueError(
                f"constant name {name!r} is reserved (z, pi and the primitive names); rename it"
            )
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"constant {name!r} must be a real number or array, got a bool")
        if isinstance(value, mpmath.mpf):
            out[name] = value
            continue
        if isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
            out[name] = value
            continue
        if isinstance(value, (numbers.Complex, mpmath.mpc)):
            raise TypeError(f"constant {name!r} must be real, got {type(value).__name__}")
        arr = np.asarray(value)
        if arr.dtype == object:
            if not all(isinstance(v, (mpmath.mpf, numbers.Real)) for v in arr.flat):
                raise TypeError(f"constant {name!r}: object arrays must hold real mpmath numbers")
        elif arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"constant {name!r} must be a real number or array, got dtype {arr.dtype}")
        elif np.iscomplexobj(arr):
            raise TypeError(f"constant {name!r} must be real, got a complex array")
        else:
            arr = arr.astype(float)
        if arr.ndim > 2:
            raise ValueError(
                f"constant {name!r} has {arr.ndim} dimensions; numbers, vectors and matrices only"
            )
        out[name] = arr
    return out


def parse(expr: str, constants: dict) -> Node:
    """Parse ``expr`` into a tree; ``constants`` must already be checked."""
    if not isinstance(expr, str):
        raise TypeError(f"a formula must be a string, got {type(expr).__name__}")
    try:
        module = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"cannot parse formula {expr!r}: {err.msg}") from None
    tree = _Builder(expr.strip(), constants).build(module.body)
    if isinstance(tree, Named) and tree.ndim == 2:
        raise ValueError(f"a matrix constant can only be used as the left operand of '@': {expr!r}")
    return tree


class _Builder:
    def __init__(self, source: str, constants: dict):
        self.source = source
        self.constants = constants

    def fail(self, node, what):
        raise ValueError(f"{what} is not allowed in a formula")

    def build(self, node) -> Node:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            what = _DESCRIBE.get(type(node), f"syntax {type(node).__name__!r}")
            if isinstance(node, ast.Attribute):
                what += f" ('.{node.attr}')"
            self.fail(node, what)
        return method(node)

    def _no_matrix(self, node: Node, where: str) -> Node:
        if isinstance(node, Named) and node.ndim == 2:
            raise ValueError(
                f"matrix constant {node.name!r} can only be the left operand of '@', not {where}"
            )
        return node

    # leaves --------------------------------------------------------------------------------------
    def _Constant(self, node):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(node, f"the literal {value!r}")
        text = ast.get_source_segment(self.source, node) or repr(value)
        return Literal(value, text)

    def _Name(self, node):
        name = node.id
        if name == "z":
            return Var("z")
        if name == "pi":
            return Pi()
        if name in self.constants:
            value = self.constants[name]
            return Named(name, value)
        if name in ELEMENTWISE or name in REDUCTIONS:
            raise ValueError(f"{name!r} is a function; call it as {name}(...)")
        raise ValueError(
            f"unknown name {name!r}; allowed: z, pi, functions {', '.join(ELEMENTWISE + REDUCTIONS)}"
            f"; constants given: {', '.join(sorted(self.constants)) or 'none'}"
        )

    # operators -----------------------------------------------------------------------------------
    def _UnaryOp(self, node):
        arg = self._no_matrix(self.build(node.operand), "in a unary operation")
        if isinstance(node.op, ast.USub):
            return Neg(arg)
        if isinstance(node.op, ast.UAdd):
            return arg
        self.fail(node, f"the unary operator {type(node.op).__name__!r}")

    def _BinOp(self, node):
        if isinstance(node.op, ast.MatMult):
            return self._matmul(node)
        left, right = self.build(node.left), self.build(node.right)
        if isinstance(node.op, ast.Pow):
            self._no_matrix(left, "the base of '**'")
            self._no_matrix(right, "an exponent")
            if not right.const:
                raise ValueError(f"the exponent of '**' must be a constant, got '{right}'")
            if right.rank != 0:
                raise ValueError(f"the exponent of '**' must be a scalar, got vector '{right}'")
            return Power(left, right)
        op = _BINOPS.get(type(node.op))
        if op is None:
            self.fail(node, f"the operator {type(node.op).__name__!r}")
        self._no_matrix(left, f"an operand of '{op}'")
        self._no_matrix(right, f"an operand of '{op}'")
        return Binary(op, left, right)

    def _matmul(self, node):
        left, right = self.build(node.left), self.build(node.right)
        if not (isinstance(left, Named) and left.ndim == 2):
            raise ValueError(f"the left operand of '@' must be a matrix constant, got '{left}'")
        self._no_matrix(right, "the right operand of '@'")
        if right.rank != 1:
            raise ValueError(f"the right operand of '@' must be a vector, got scalar '{right}'")
        return MatVec(left, right)

    def _Call(self, node):
        if not isinstance(node.func, ast.Name):
            self.fail(node, "calling anything but a primitive by name")
        name = node.func.id
        if name not in ELEMENTWISE and name not in REDUCTIONS:
            raise ValueError(
                f"unknown function {name!r}; allowed: {', '.join(ELEMENTWISE + REDUCTIONS)}"
            )
        if node.keywords or len(node.args) != 1:
            raise ValueError(f"{name}() takes exactly one positional argument")
        arg = self._no_matrix(self.build(node.args[0]), f"an argument of {name}()")
        if name in REDUCTIONS:
            if arg.rank != 1:
                raise ValueError(f"{name}() reduces a vector; '{arg}' is a scalar")
            return Reduce(name, arg)
        return Call(name, arg)

    def _Subscript(self, node):
        arg = self._no_matrix(self.build(node.value), "indexed")
        index = node.slice
        sign = 1
        if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
            sign, index = -1, index.operand
        if not (isinstance(index, ast.Constant) and type(index.value) is int):
            raise ValueError("an index must be an integer literal, as in z[0] or z[-1]")
        if arg.rank != 1:
            raise ValueError(f"only vectors can be indexed; '{arg}' is a scalar")
        return Index(arg, sign * index.value)
