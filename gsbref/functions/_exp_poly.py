"""Exponential-polynomial form of a univariate expression: ``g(x) = sum coef * x**k * exp(c*x)``.

Such ``g`` have closed-form expectations under many distributions (moments times moment
generating functions), which is what the oracle uses.  The conversion is structural, on the
expression tree, at the caller's current mpmath precision:

* a constant subexpression ``v``           -> ``[(v, 0, 0)]``
* ``x``                                    -> ``[(1, 1, 0)]``
* ``A + B``, ``A - B``, ``-A``             -> merge the term lists
* ``A * B``                                -> all products: ``(a b, k + l, c + e)``
* ``A / v`` with ``v`` constant            -> coefficients divided by ``v``
* ``A ** n`` with ``n`` a non-negative int -> repeated products
* ``exp(alpha x + beta)``                  -> ``[(exp(beta), 0, alpha)]``; ``expm1`` likewise minus 1
* ``sin``/``cos`` of ``alpha x + beta``    -> two complex exponentials ``exp(+-i(alpha x + beta))``

Terms with the same ``(k, c)`` are merged and exact zeros dropped.  Anything else (``log``,
``softplus``, ``abs``, ``exp`` of a non-affine argument, a non-integer power ...) gives ``None``.
"""

from __future__ import annotations

import mpmath

from ._expr import Binary, Call, Neg, Node, Power, Var, evaluate, exponent_value


def exp_poly(tree: Node):
    """List of ``(coef, k, c)`` with ``g(x) = sum coef x**k exp(c x)``, or ``None``."""
    terms = _convert(tree)
    if terms is None:
        return None
    out = [(_norm(coef), k, c) for (k, c), coef in terms.items() if coef != 0]
    out.sort(key=lambda t: (t[1], float(mpmath.re(t[2])), float(mpmath.im(t[2]))))
    return out


def _norm(v):
    """mpc with zero imaginary part -> mpf; everything as an mpmath number."""
    v = mpmath.mpmathify(v)
    if isinstance(v, mpmath.mpc) and v.imag == 0:
        return mpmath.mpf(v.real)
    return v


def _add(*term_dicts):
    out = {}
    for terms in term_dicts:
        for key, coef in terms.items():
            out[key] = out.get(key, 0) + coef
    return out


def _scale(terms, factor):
    return {key: coef * factor for key, coef in terms.items()}


def _mul(p, q):
    out = {}
    for (k1, c1), a in p.items():
        for (k2, c2), b in q.items():
            key = (k1 + k2, _norm(c1 + c2))
            out[key] = out.get(key, 0) + a * b
    return out


def _affine(terms):
    """``(alpha, beta)`` if ``terms`` is ``alpha x + beta``, else None."""
    if terms is None or any(c != 0 or k > 1 for (k, c) in terms):
        return None
    alpha = sum((coef for (k, _), coef in terms.items() if k == 1), mpmath.mpf(0))
    beta = sum((coef for (k, _), coef in terms.items() if k == 0), mpmath.mpf(0))
    return alpha, beta


def _convert(node: Node):
    zero = mpmath.mpf(0)
    if node.const:
        return {(0, zero): evaluate(node, None, "mp")}
    if isinstance(node, Var):
        return {(1, zero): mpmath.mpf(1)}
    if isinstance(node, Neg):
        inner = _convert(node.children[0])
        return None if inner is None else _scale(inner, -1)
    if isinstance(node, Binary):
        left, right = node.children
        if node.op == "/":
            if not right.const:
                return None
            inner = _convert(left)
            divisor = evaluate(right, None, "mp")
            return None if inner is None or divisor == 0 else _scale(inner, 1 / divisor)
        a, b = _convert(left), _convert(right)
        if a is None or b is None:
            return None
        if node.op == "+":
            return _add(a, b)
        if node.op == "-":
            return _add(a, _scale(b, -1))
        return _mul(a, b)
    if isinstance(node, Power):
        base, exponent = node.children
        n = exponent_value(exponent, "mp")
        if not isinstance(n, int) or n < 0:
            return None
        inner = _convert(base)
        if inner is None:
            return None
        out = {(0, zero): mpmath.mpf(1)}
        for _ in range(n):
            out = _mul(out, inner)
        return out
    if isinstance(node, Call) and node.name in ("exp", "expm1", "sin", "cos"):
        ab = _affine(_convert(node.children[0]))
        if ab is None:
            return None
        alpha, beta = ab
        if node.name in ("exp", "expm1"):
            out = {(0, _norm(alpha)): mpmath.exp(beta)}
            return _add(out, {(0, zero): mpmath.mpf(-1)}) if node.name == "expm1" else out
        plus = {(0, _norm(1j * alpha)): mpmath.exp(1j * beta)}
        minus = {(0, _norm(-1j * alpha)): mpmath.exp(-1j * beta)}
        if node.name == "cos":
            return _scale(_add(plus, minus), mpmath.mpf(1) / 2)
        return _scale(_add(plus, _scale(minus, -1)), 1 / mpmath.mpc(0, 2))
    return None
