r"""All derivative orders at once for separable test functions (the *fused* engine).

The series rules of the Gamma and Laplace families need ``g^(n)(z)`` for every ``n`` up to the
order, at every sample.  Taylor jets give them in ``O(N^2)`` array passes per primitive (one
Cauchy-type sum per coefficient).  For the primitives of :mod:`gsbref.functions` applied to an
affine argument ``x = alpha z + beta`` the derivatives of every order have closed forms that share
one or two transcendental evaluations; this module evaluates them directly:

=====================  =====================================================================
term of ``g``          ``d^n/dz^n`` (``x = alpha z + beta``), all ``n`` at once
=====================  =====================================================================
polynomial             derivative coefficients ``c_k k! / (k - n)!`` (exact integers times
                       the coefficients), Horner per order; zero rows above the degree
``exp(x)``             ``alpha^n exp(x)``: one ``exp``
``sin(x)``, ``cos(x)`` ``alpha^n`` times ``sin, cos, -sin, -cos`` in turn: one ``sin``, one
                       ``cos``
``softplus(x)``        value ``max(x, 0) + log1p(u)``, ``n = 1``: ``sigmoid(x)``, ``n >= 2``: see
                       below; ``alpha^n`` times these
``sigmoid(x)``         ``softplus`` shifted by one order
``log_sigmoid(x)``     ``-softplus(-x)``
``tanh(x)``            ``2 sigmoid(2 x) - 1``
``expm1(x)``           ``exp(x) - 1``
anything else          Taylor jets of that term alone (``log``, ``sqrt``, kinks, products of
                       non-polynomial terms, non-affine arguments ...)
=====================  =====================================================================

Sums, differences and constant multiples of such terms are recognised, with constants that may be
vectors along the coordinate axis (one value per coordinate).

Sigmoid derivatives in Eulerian form
------------------------------------
With ``s = sigmoid(x)`` and ``r = 1 - s = sigmoid(-x)``, the ``m``-th derivative of ``s``
(``m >= 1``) is ``sum_{k=0}^{m-1} (-1)^k A(m, k) s^(k+1) r^(m-k)`` with ``A(m, k)`` the Eulerian
numbers (induction on ``m`` with ``s' = s r``, ``r' = -s r``; ``A(m, k) = A(m, m-1-k)``).  Put
``u = exp(-|x|)`` and ``M = 1 / (1 + u) = max(s, r)``, so that ``min(s, r) = u M``; then

    sigmoid^(m)(x) = sgn_m(x) M^(m+1) E_m(u),    E_m(u) = sum_k (-1)^k A(m, k) u^(k+1),

with ``sgn_m = 1`` for ``x <= 0`` and ``(-1)^(m-1)`` for ``x > 0`` (the symmetry ``k -> m-1-k``).
``softplus^(n) = sigmoid^(n-1)``.  For every ``n = 2..T`` at once: ``M^n = M^T (1 + u)^(T-n)``, so
``softplus^(n)(x) = sgn * sum_k Phi[n, k] B_k`` with the basis ``B_k = u M^T u^k``
(``k = 0..T-2``) and the exact integer matrix ``Phi[n] =`` coefficients of
``(1 + u)^(T-n) sum_k (-1)^k A(n-1, k) u^k``: one small matrix product (BLAS) gives all orders,
after one ``exp``, one reciprocal and ``T - 1`` multiplications for the basis.

Accuracy.  With ``eps`` the machine epsilon and ``u = fl(exp(-|x|))`` correct to ``2 eps``
(relative), ``M = fl(1 / fl(1 + u))`` is correct to ``2 eps``; ``M^T`` by binary powering to
``T * 2 eps + (T - 1) eps / 2``; each basis element ``B_k = u M^T u^k`` (``k <= T - 2``, each
factor ``u`` adding ``2.5 eps``) to ``(5 T - 3) eps``.  The matrix product adds at most
``T eps / 2`` relative to
``sum_k |Phi[n, k]| B_k``, and as ``(1 + u)^(T-n)`` has positive coefficients,
``sum_k |Phi[n, k]| B_k = M^n sum_k A(n-1, k) u^(k+1) =: C_n(x)`` -- the same Eulerian sum with all
signs positive, i.e. ``sum_k A s^(k+1) r^(n-1-k)`` -- hence

    |computed - exact| <= (6 T + 6) eps C_n(x),     C_n(x) <= C_n(0) = (n-1)! / 2^n,

(the ``+ 6`` covers the scalar factors ``coef alpha^n`` folded into ``Phi``).  ``C_n`` decays like
``u`` in both tails, exactly like ``softplus^(n)`` itself, so the error is also relative there.
The integer entries of ``Phi`` are exact in float64 while they are below ``2^53`` (``T <= 17``);
beyond, their rounding adds ``eps`` to the relative factor, which the bound covers.
:func:`softplus_error_bound` returns the bound; ``tests/test_functions_fused.py`` checks the
engine against mpmath with it.  For comparison, the monomial form in ``s``
(``sum_k (-1)^(k-1) (k-1)! S(n, k) s^k``, Stirling numbers) has ``sum |coef| s^k = 1.1e6`` at
``n = 9``, ``s = 1``, against ``C_9(0) = 79``: it loses relative accuracy where the derivatives
are small.

Where only linear combinations of the rows and their sums over the samples are needed (the
``gsb`` estimator beyond its variance subset), :meth:`FusedSeparable.combinations_and_sums`
never forms the rows of the softplus family: the combinations are one ``(P, T)`` product with
the basis, and the sums over the samples of the basis rows (positive numbers) are multiplied by
the coefficient matrix once per pass (:class:`RowSums`).

>>> import numpy as np
>>> from gsbref.functions import function
>>> f = function("sum(softplus(2 * z - 1))")
>>> z = np.array([[0.3, -1.2]])
>>> fused = FusedSeparable.compile(f, 2).derivatives(z, 6)
>>> jets = f.derivatives(z, 6)
>>> bool(np.allclose(fused, jets, rtol=1e-13, atol=1e-13))
True
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from ._expr import Binary, Call, Neg, Node, Power, Var, evaluate, exponent_value
from .jet import Jet, _check_order

__all__ = ["FusedSeparable", "RowSums", "Workspace", "eulerian", "sigmoid_matrix", "softplus_error_bound", "softplus_rows"]

#: columns per matrix-product call (the product's operands then stay in the L2 cache)
_GEMM_COLUMNS = 4096
_EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------------------------
# exact integer tables
# ----------------------------------------------------------------------------------------------
@cache
def eulerian(m: int) -> tuple:
    """Eulerian numbers ``A(m, k)``, ``k = 0..m-1`` (``A(0, 0) = 1``), as Python ints.

    >>> eulerian(4)
    (1, 11, 11, 1)
    """
    if m == 0:
        return (1,)
    prev = eulerian(m - 1)
    out = []
    for k in range(m):
        a = (k + 1) * prev[k] if k < len(prev) else 0
        b = (m - k) * prev[k - 1] if 0 <= k - 1 < len(prev) else 0
        out.append(a + b)
    return tuple(out)


@cache
def _phi_ints(T: int) -> tuple:
    """Rows ``n = 2..T`` of ``Phi`` (see the module docstring) as tuples of Python ints."""
    rows = []
    for n in range(2, T + 1):
        e = [(-1) ** k * a for k, a in enumerate(eulerian(n - 1))]  # E_{n-1}(u) / u, degree n - 2
        binom = [math.comb(T - n, i) for i in range(T - n + 1)]
        row = [0] * (T - 1)
        for i, bi in enumerate(binom):
            for k, ek in enumerate(e):
                row[i + k] += bi * ek
        rows.append(tuple(row))
    return tuple(rows)


def sigmoid_matrix(T: int, positive: bool, absolute: bool = False) -> np.ndarray:
    """``Phi`` for top order ``T >= 2``: shape ``(T - 1, T - 1)``, row ``n - 2`` for ``softplus^(n)``.

    ``positive=True`` applies the sign ``(-1)^n`` of the branch ``x > 0``; ``absolute=True`` gives
    ``|Phi|`` (for error bounds).  Read-only, cached.
    """
    return _phi(int(T), bool(positive), bool(absolute))


@cache
def _phi(T, positive, absolute):
    P = np.array(_phi_ints(T), dtype=float).reshape(T - 1, T - 1)
    if absolute:
        P = np.abs(P)
    elif positive:
        P *= np.array([(-1.0) ** n for n in range(2, T + 1)])[:, None]
    P.flags.writeable = False
    return P


def softplus_error_bound(x, n: int, top: int | None = None) -> np.ndarray:
    """Bound on the absolute rounding error of the fused ``softplus^(n)(x)`` (``n >= 2``) computed
    with top order ``top`` (default ``n``): ``(6 top + 6) eps C_n(x)`` with ``C_n`` the Eulerian sum
    with positive signs (module docstring), times ``1 + 1e-10`` for the rounding of the bound."""
    x = np.asarray(x, dtype=float)
    T = n if top is None else int(top)
    if not 2 <= n <= T:
        raise ValueError(f"need 2 <= n <= top, got n={n!r}, top={top!r}")
    u = np.exp(-np.abs(x))
    M = 1.0 / (1.0 + u)
    c = sum(a * u ** (k + 1) for k, a in enumerate(eulerian(n - 1))) * M**n
    return (6 * T + 6) * _EPS * c * (1 + 1e-10)


# ----------------------------------------------------------------------------------------------
# recognition: g = sum of terms
# ----------------------------------------------------------------------------------------------
class _Poly:
    """``sum_k c[k] z^k`` (coefficients: floats or arrays along the coordinate axis)."""

    kind = "poly"

    def __init__(self, c):
        self.c = list(c)

    def scaled(self, v):
        return _Poly([ck * v for ck in self.c])

    @property
    def degree(self):
        return len(self.c) - 1


class _Atom:
    """``coef * h^(shift)(alpha z + beta)`` for ``h`` in softplus / exp / sin / cos."""

    def __init__(self, kind, coef, alpha, beta, shift=0):
        self.kind, self.coef, self.alpha, self.beta, self.shift = kind, coef, alpha, beta, shift

    def scaled(self, v):
        return _Atom(self.kind, self.coef * v, self.alpha, self.beta, self.shift)


class _JetTerm:
    """``coef * node(z)``, differentiated by Taylor jets."""

    kind = "jet"

    def __init__(self, node, coef=1.0):
        self.node, self.coef = node, coef

    def scaled(self, v):
        return _JetTerm(self.node, self.coef * v)


def _const(node):
    v = evaluate(node, None, "float")
    return np.asarray(v, dtype=float) if np.ndim(v) else float(v)


def _poly_mul(p, q):
    c = [0.0] * (len(p.c) + len(q.c) - 1)
    for i, a in enumerate(p.c):
        for j, b in enumerate(q.c):
            c[i + j] = c[i + j] + a * b
    return _Poly(c)


def _only_poly(terms):
    if len(terms) == 1 and isinstance(terms[0], _Poly):
        return terms[0]
    if all(isinstance(t, _Poly) for t in terms):
        return _merge_polys(terms)
    return None


def _merge_polys(polys):
    n = max(len(p.c) for p in polys)
    c = [0.0] * n
    for p in polys:
        for k, v in enumerate(p.c):
            c[k] = c[k] + v
    return _Poly(c)


def _convert(node: Node):
    """``node`` (elementwise in ``z``) as a list of terms whose sum it is."""
    if node.const:
        return [_Poly([_const(node)])]
    if isinstance(node, Var):
        return [_Poly([0.0, 1.0])]
    if isinstance(node, Neg):
        return [t.scaled(-1.0) for t in _convert(node.children[0])]
    if isinstance(node, Binary):
        left, right = node.children
        if node.op in ("+", "-"):
            sign = 1.0 if node.op == "+" else -1.0
            return _convert(left) + [t.scaled(sign) for t in _convert(right)]
        if node.op == "/":
            if right.const:
                v = _const(right)
                if np.all(v != 0):
                    return [t.scaled(1.0 / v) for t in _convert(left)]
            return [_JetTerm(node)]
        # product
        if left.const or right.const:
            c, other = (left, right) if left.const else (right, left)
            v = _const(c)
            return [t.scaled(v) for t in _convert(other)]
        p, q = _only_poly(_convert(left)), _only_poly(_convert(right))
        if p is not None and q is not None:
            return [_poly_mul(p, q)]
        return [_JetTerm(node)]
    if isinstance(node, Power):
        base, exponent = node.children
        e = exponent_value(exponent, "float")
        p = _only_poly(_convert(base))
        if isinstance(e, int) and e >= 0 and p is not None:
            out = _Poly([1.0])
            for _ in range(e):
                out = _poly_mul(out, p)
            return [out]
        return [_JetTerm(node)]
    if isinstance(node, Call):
        p = _only_poly(_convert(node.children[0]))
        if p is None or p.degree > 1:
            return [_JetTerm(node)]
        beta = p.c[0]
        alpha = p.c[1] if p.degree == 1 else 0.0
        name = node.name
        if name == "softplus":
            return [_Atom("softplus", 1.0, alpha, beta)]
        if name == "sigmoid":
            return [_Atom("softplus", 1.0, alpha, beta, shift=1)]
        if name == "log_sigmoid":  # -softplus(-x)
            return [_Atom("softplus", -1.0, -alpha, -beta)]
        if name == "tanh":  # 2 sigmoid(2x) - 1
            return [_Atom("softplus", 2.0, 2.0 * alpha, 2.0 * beta, shift=1), _Poly([-1.0])]
        if name == "exp":
            return [_Atom("exp", 1.0, alpha, beta)]
        if name == "expm1":
            return [_Atom("exp", 1.0, alpha, beta), _Poly([-1.0])]
        if name in ("sin", "cos"):
            return [_Atom(name, 1.0, alpha, beta)]
        return [_JetTerm(node)]
    return [_JetTerm(node)]


def _is_scalar(v):
    return np.ndim(v) == 0


# ----------------------------------------------------------------------------------------------
# evaluation of the terms on a block
# ----------------------------------------------------------------------------------------------
class Workspace:
    """Scratch arrays reused across blocks (fresh large arrays cost page faults on every block)."""

    def __init__(self):
        self._arrays = {}
        self.cache = {}

    def get(self, name, shape):
        a = self._arrays.get(name)
        if a is None or a.shape != tuple(shape):
            a = np.empty(shape)
            self._arrays[name] = a
        return a


def _scale_rows(rows_scale, shape):
    """A list of per-row factors -> an array broadcastable to ``(R, *shape)``, or None if all 1."""
    if all(_is_scalar(v) and v == 1 for v in rows_scale):
        return None
    if all(_is_scalar(v) for v in rows_scale):
        return np.array(rows_scale, dtype=float).reshape((-1,) + (1,) * len(shape))
    return np.stack([np.broadcast_to(np.asarray(v, dtype=float), shape[-1:]) for v in rows_scale]).reshape(
        (len(rows_scale),) + (1,) * (len(shape) - 1) + shape[-1:])


def _accumulate(out, value, written):
    """``out = value`` (first term) or ``out += value``."""
    if written:
        out += value
    else:
        out[...] = value


def _alpha_powers(alpha, coef, lo, hi):
    """``coef * alpha^n`` for ``n = lo..hi`` (scalars or arrays)."""
    return [coef * alpha**n if n else coef * (alpha * 0 + 1) for n in range(lo, hi + 1)]


def _horner(e, z):
    """``sum_i e[i] z^i`` by Horner's rule (``len(e) >= 2``), a fresh array."""
    val = np.multiply(z, e[-1])
    for i in range(len(e) - 2, 0, -1):
        val += e[i]
        val *= z
    val += e[0]
    return val


def _poly_rows(term, z, lo, hi, out, written, work):
    """Rows ``n = lo..hi`` of a polynomial's derivatives (exact integer factors ``k!/(k-n)!``)."""
    c = term.c
    p = len(c) - 1
    for n in range(lo, hi + 1):
        row = out[n - lo]
        if n > p:
            if not written:
                row[...] = 0.0
            continue
        e = [c[n + i] * float(math.factorial(n + i) // math.factorial(i)) for i in range(p - n + 1)]
        if len(e) == 1:
            _accumulate(row, np.broadcast_to(np.asarray(e[0], dtype=float), z.shape), written)
        else:
            _accumulate(row, _horner(e, z), written)


def _affine(term, z):
    a, b = term.alpha, term.beta
    if _is_scalar(a) and a == 1:
        x = z if (_is_scalar(b) and b == 0) else z + b
    else:
        x = z * a
        if not (_is_scalar(b) and b == 0):
            x += b
    return x


def _exp_rows(term, z, lo, hi, out, written, work):
    x = _affine(term, z)
    e = np.exp(x)
    f = _scale_rows(_alpha_powers(term.alpha, term.coef, lo, hi), z.shape)
    val = e[None] if f is None else f * e[None]
    _accumulate(out, val, written)


def _sincos_rows(term, z, lo, hi, out, written, work):
    x = _affine(term, z)
    s, c = np.sin(x), np.cos(x)
    cycle = [s, c, -s, -c] if term.kind == "sin" else [c, -s, -c, s]
    f = _alpha_powers(term.alpha, term.coef, lo, hi)
    for i, n in enumerate(range(lo, hi + 1)):
        _accumulate(out[i], cycle[n % 4] * f[i] if not (_is_scalar(f[i]) and f[i] == 1) else cycle[n % 4], written)


def _mpow(M, T, out):
    """``M**T`` (``T >= 2``) into ``out`` by left-to-right binary powering (about ``2 log2 T``
    correctly rounded multiplications)."""
    bits = bin(T)[3:]
    np.multiply(M, M, out=out)
    if bits[0] == "1":
        out *= M
    for b in bits[1:]:
        out *= out
        if b == "1":
            out *= M
    return out


def softplus_rows(x, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
    """``softplus^(m)(x)`` for ``m = lo..hi``: shape ``(hi - lo + 1, *x.shape)`` (module docstring).

    >>> import numpy as np
    >>> r = softplus_rows(np.array([0.0]), 0, 3)[:, 0]
    >>> [round(float(v), 15) for v in r]     # log 2, 1/2, 1/4, 0
    [0.693147180559945, 0.5, 0.25, 0.0]
    """
    x = np.asarray(x, dtype=float)
    lo, hi = int(lo), int(hi)
    if not 0 <= lo <= hi:
        raise ValueError(f"need 0 <= lo <= hi, got lo={lo!r}, hi={hi!r}")
    if out is None:
        out = np.empty((hi - lo + 1,) + x.shape)
    _softplus_into(x, lo, hi, out, None, False, Workspace())
    return out


def _softplus_into(x, lo, hi, out, scale, written, work, combine=None):
    """Rows ``m = lo..hi`` of ``softplus^(m)(x)``, times ``scale`` (None, a list of scalars, or an
    array broadcastable to the rows), written or added into ``out[:hi - lo + 1]``.

    ``combine`` (a ``(P, hi - lo + 1)`` array; only with scalar or no ``scale`` and
    ``written=False``): ``out`` has ``P`` more rows, which receive ``combine @ rows``, folded into
    the matrix product where the signs allow.  Returns True when those rows were filled.
    """
    size = x.size
    xf = x.reshape(-1)
    u = work.get("sp_u", (size,))
    xmin, xmax = (float(xf.min()), float(xf.max())) if size else (1.0, 1.0)
    allpos, allneg = xmin > 0, xmax <= 0
    if allpos:
        np.negative(xf, out=u)
    else:
        np.abs(xf, out=u)
        np.negative(u, out=u)
    np.exp(u, out=u)  # u = exp(-|x|) in (0, 1]
    M = work.get("sp_M", (size,))
    np.add(u, 1.0, out=M)
    np.reciprocal(M, out=M)  # max(sigmoid(x), sigmoid(-x))
    scalars = scale is None or isinstance(scale, list)
    R = hi - lo + 1
    outf = out.reshape(out.shape[0], size)

    def row_scale(i):
        if scale is None:
            return 1.0
        if isinstance(scale, list):
            return scale[i]
        return np.broadcast_to(scale[i], x.shape).reshape(-1)

    low_rows = []  # m = 0, 1: the value and the sigmoid
    for m in range(lo, min(hi, 1) + 1):
        if m == 0:
            val = np.log1p(u)
            val += np.maximum(xf, 0.0)
        elif allpos:
            val = M
        elif allneg:
            val = u * M
        else:
            val = np.where(xf > 0, M, u * M)
        f = row_scale(m - lo)
        _accumulate(outf[m - lo], val if (_is_scalar(f) and f == 1) else val * f, written)
        low_rows.append(m - lo)
    folded = False
    if hi >= 2:
        T = hi
        first = max(lo, 2)
        nr = hi - first + 1
        n_basis = T - 1
        B = work.get("sp_B", (n_basis, size))
        _mpow(M, T, B[0])
        B[0] *= u
        for k in range(1, n_basis):
            np.multiply(B[k - 1], u, out=B[k])
        mixed = not (allpos or allneg)
        fold = combine is not None and scalars and not mixed and not written
        key = ("sp_P", T, allpos, first, lo, None if scale is None else tuple(scale),
               None if not fold else combine.tobytes())
        P = work.cache.get(key) if scalars else None
        if P is None:
            P = sigmoid_matrix(T, positive=allpos)[first - 2:]
            if scalars and scale is not None:
                P = P * np.array([scale[i] for i in range(first - lo, hi - lo + 1)])[:, None]
            if fold:
                P = np.vstack([P, combine[:, first - lo:] @ P])
            if scalars:
                work.cache[key] = P
        target = outf[first - lo:first - lo + P.shape[0]]
        direct = not written and target.flags.c_contiguous
        res = target if direct else work.get("sp_res", (P.shape[0], size))
        for c0 in range(0, size, _GEMM_COLUMNS):
            c1 = min(size, c0 + _GEMM_COLUMNS)
            np.matmul(P, B[:, c0:c1], out=res[:, c0:c1])
        if mixed:  # rows with odd n change sign where x > 0
            w = np.where(xf > 0, -1.0, 1.0)
            for n in range(first, hi + 1):
                if n % 2:
                    res[n - first] *= w
        if not scalars:
            res[:nr] *= np.broadcast_to(scale[first - lo:], (nr,) + x.shape).reshape(nr, size)
        if not direct:
            _accumulate(target, res, written)
        folded = fold
    if folded:
        for r in low_rows:
            for q in range(combine.shape[0]):
                if combine[q, r] != 0:
                    outf[R + q] += combine[q, r] * outf[r]
    return folded


def _softplus_basis(x, T, work, ones=False):
    """The basis of the folded product for top order ``T >= 2``: rows ``B_k = u M^T u^k``
    (``k = 0..T-2``), row ``T - 1`` ``sigmoid(x)`` and, with ``ones``, a row of ones (module
    docstring).  Returns ``(B, allpos)`` (``B`` of shape ``(nB, x.size)``, a workspace buffer;
    ``allpos``: ``x > 0`` everywhere), or None when ``x`` is empty or has both signs."""
    size = x.size
    xf = x.reshape(-1)
    if not size:
        return None
    allpos = float(xf.min()) > 0
    if not allpos and float(xf.max()) > 0:
        return None
    nB = T + (1 if ones else 0)  # T - 1 basis rows, the sigmoid row, the row of ones
    B = work.get(("spf_B", ones), (nB, size))
    u = work.get("sp_u", (size,))
    if allpos:
        np.negative(xf, out=u)
    else:
        np.copyto(u, xf)
    np.exp(u, out=u)  # exp(-|x|)
    sig = B[T - 1]
    np.add(u, 1.0, out=sig)
    np.reciprocal(sig, out=sig)  # M = max(sigmoid(x), sigmoid(-x))
    _mpow(sig, T, B[0])
    B[0] *= u
    for k in range(1, T - 1):
        np.multiply(B[k - 1], u, out=B[k])
    if not allpos:
        sig *= u  # sigmoid(x) = u M for x <= 0
    if ones and work.cache.get("spf_ones") is not B:  # the row of ones is filled once per buffer
        B[T] = 1.0
        work.cache["spf_ones"] = B
    return B, allpos


def _softplus_base(T, allpos, lo, scale, nB, work):
    """``(hi - lo + 1, nB)`` coefficients of rows ``m = lo..T`` on the basis of
    :func:`_softplus_basis` (``scale``: None or a list of per-row factors); cached, read-only."""
    key = ("spf_base", T, allpos, lo, nB, None if scale is None else tuple(scale))
    base = work.cache.get(key)
    if base is None:
        base = np.zeros((T - lo + 1, nB))
        phi = sigmoid_matrix(T, positive=allpos)
        for r in range(T - lo + 1):
            m = lo + r
            f = 1.0 if scale is None else scale[r]
            if m == 1:
                base[r, T - 1] = f
            else:
                base[r, :T - 1] = f * phi[m - 2]
        base.flags.writeable = False
        work.cache[key] = base
    return base


def _softplus_fold(x, lo, hi, out, scale, work, combine=None, shift=None):
    """The fast path of :func:`_softplus_into` for one softplus-family term with scalar factors,
    ``1 <= lo``, ``2 <= hi`` and ``x`` of one sign: a single matrix product gives every row
    ``m = lo..hi`` (the sigmoid row too: the basis gets ``sigmoid(x)`` as an extra row), the
    combinations ``combine @ rows`` (into ``out[R:]``) and, with ``shift`` ``(R,)``, rows minus
    ``shift`` (a basis row of ones).  Returns False, doing nothing, when ``x`` has both signs."""
    T = hi
    ones = shift is not None
    got = _softplus_basis(x, T, work, ones)
    if got is None:
        return False
    B, allpos = got
    size = x.size
    key = ("spf_P", T, allpos, lo, None if scale is None else tuple(scale),
           None if combine is None else combine.tobytes(), None if shift is None else shift.tobytes())
    P = work.cache.get(key)
    if P is None:
        base = _softplus_base(T, allpos, lo, scale, B.shape[0], work).copy()
        rows = [base]
        if combine is not None:
            rows.append(combine @ base)
        if ones:
            base[:, T] = -np.asarray(shift, dtype=float)
        P = np.ascontiguousarray(np.vstack(rows))
        work.cache[key] = P
    outf = out.reshape(out.shape[0], size)
    for c0 in range(0, size, _GEMM_COLUMNS):
        c1 = min(size, c0 + _GEMM_COLUMNS)
        np.matmul(P, B[:, c0:c1], out=outf[:P.shape[0], c0:c1])
    return True


def _softplus_scale(term, z, lo, hi, work):
    """The per-row factors ``coef alpha^n`` of a softplus-family term: None (all 1), a list of
    scalars, or an array broadcastable to the rows (cached in ``work``)."""
    key = ("sp_scale", id(term), lo, hi, z.shape)
    if key in work.cache:
        return work.cache[key]
    factors = _alpha_powers(term.alpha, term.coef, lo, hi)
    if all(_is_scalar(f) for f in factors):
        scale = [float(f) for f in factors]
        if all(f == 1 for f in scale):
            scale = None
    else:
        scale = _scale_rows(factors, z.shape)
    work.cache[key] = scale
    return scale


def _softplus_term(term, z, lo, hi, out, written, work, combine=None, shift=None):
    """Returns ``(combined, shifted)``: whether ``out[R:]`` holds ``combine @ rows`` and whether
    the rows were shifted."""
    h = term.shift
    x = _affine(term, z)  # may be z itself: _softplus_into does not write into x
    scale = _softplus_scale(term, z, lo, hi, work)
    foldable = not written and lo + h >= 1 and hi + h >= 2 and (scale is None or isinstance(scale, list))
    if foldable and _softplus_fold(x, lo + h, hi + h, out, scale, work, combine, shift):
        return combine is not None, shift is not None
    return _softplus_into(x, lo + h, hi + h, out, scale, written, work, combine), False


def _softplus_light(term, z, lo, hi, combine, comb_out, work, sums):
    """:meth:`FusedSeparable.combinations_and_sums` for one softplus-family term on the folded
    basis: ``combine @ rows`` as one ``(P, nB)`` product into ``comb_out``; the basis rows' sums
    over the samples go into ``sums`` -- the rows themselves are never formed.  Returns False
    (doing nothing) where the fold does not apply."""
    h = term.shift
    scale = _softplus_scale(term, z, lo, hi, work)
    if not (lo + h >= 1 and hi + h >= 2 and (scale is None or isinstance(scale, list))):
        return False
    T = hi + h
    got = _softplus_basis(_affine(term, z), T, work)
    if got is None:
        return False
    B, allpos = got
    base = _softplus_base(T, allpos, lo + h, scale, B.shape[0], work)
    key = ("spf_comb", T, allpos, lo + h, None if scale is None else tuple(scale), combine.tobytes())
    Pc = work.cache.get(key)
    if Pc is None:
        Pc = np.ascontiguousarray(combine @ base)
        work.cache[key] = Pc
    np.matmul(Pc, B, out=comb_out)
    sums.add_basis(base, B.reshape(B.shape[0], -1, z.shape[-1]))
    return True


class RowSums:
    """Per-coordinate sums over the samples of derivative rows, ``(R, d)``, accumulated block by
    block (:meth:`FusedSeparable.combinations_and_sums`).

    Blocks evaluated on the softplus basis contribute the sums of their basis rows, kept per
    coefficient matrix ``base`` and multiplied by it once, in :meth:`total` (``sum_s rows =
    base @ sum_s basis``); other blocks contribute the sums of their rows.  Rounding: the basis
    rows are positive, so their sums are accurate to (number of blocks + ``log2`` block size)
    ``eps`` relative, and the product adds the bound of the module docstring with ``C_n`` summed
    over the samples.
    """

    def __init__(self, R: int, d: int):
        self.R, self.d = int(R), int(d)
        self._rows = np.zeros((self.R, self.d))
        self._basis = {}
        self._ones = np.zeros((1, 0))

    def add_rows(self, rows):
        """Add the sums over axis 1 of ``rows`` ``(R, n, d)``."""
        if rows.shape[1] == 1:
            self._rows += rows[:, 0]
        else:
            self._rows += rows.sum(axis=1)

    def add_basis(self, base, B):
        """Add the sums over axis 1 of the basis rows ``B`` ``(nB, n, d)`` whose coefficient
        matrix (rows on basis) is ``base`` ``(R, nB)``."""
        entry = self._basis.get(id(base))
        if entry is None:
            entry = self._basis[id(base)] = (base, np.zeros((base.shape[1], self.d)))
        acc = entry[1]
        n = B.shape[1]
        if n == 1:
            acc += B[:, 0]
            return
        if self._ones.shape[-1] != n:
            self._ones = np.ones((1, n))
        if self.d == 1:  # products with ones: faster than NumPy's reductions along these axes
            acc[:, 0] += B.reshape(B.shape[0], n) @ self._ones[0]
        else:
            acc += np.matmul(self._ones, B)[:, 0]

    def total(self) -> np.ndarray:
        out = self._rows.copy()
        for base, acc in self._basis.values():
            out += base @ acc
        return out


def _jet_rows(term, z, lo, hi, out, written, work):
    jet = Jet.variable(z, max(hi, 1))
    res = evaluate(term.node, jet, "float")
    if not isinstance(res, Jet):
        res = Jet.constant(np.broadcast_to(np.asarray(res, dtype=float), z.shape), max(hi, 1))
    coeffs = np.broadcast_to(res.coeffs, (res.coeffs.shape[0],) + z.shape)
    facts = [float(math.factorial(n)) for n in range(lo, hi + 1)]
    f = _scale_rows([term.coef * v for v in facts], z.shape)
    val = coeffs[lo:hi + 1] * f if f is not None else coeffs[lo:hi + 1]
    _accumulate(out, val, written)


_KERNELS = {"poly": _poly_rows, "exp": _exp_rows, "sin": _sincos_rows, "cos": _sincos_rows,
            "softplus": _softplus_term, "jet": _jet_rows}


# ----------------------------------------------------------------------------------------------
# differences g(z + h) - g(z) without cancellation (the resummed estimators' kernel)
# ----------------------------------------------------------------------------------------------
#: beyond this shift of the argument, expm1 would overflow: the softplus difference is taken directly
_EXPM1_MAX = 700.0


def _softplus_value(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    e = np.exp(-np.asarray(x, dtype=float))
    e += 1.0
    return 1.0 / e


def _term_shift_diff(term, z, h):
    """``term(z + h) - term(z)`` elementwise (``h`` broadcasts against ``z``)."""
    if isinstance(term, _Poly):  # the terminating Taylor series sum_i h^i g^(i)(z) / i!
        c = term.c
        p = len(c) - 1
        if p == 0:
            return np.zeros(np.broadcast_shapes(np.shape(z), np.shape(h)))
        out = np.empty(np.broadcast_shapes(np.shape(z), np.shape(h)))
        for i in range(p, 0, -1):
            e = [c[i + j] * float(math.comb(i + j, i)) for j in range(p - i + 1)]
            gi = _horner(e, z) if len(e) > 1 else e[0]
            if i == p:
                np.multiply(h, gi, out=out)
            else:
                out += gi
                out *= h
        return out
    if isinstance(term, _JetTerm):
        zh = z + h
        v = np.asarray(evaluate(term.node, zh, "float"), dtype=float) - np.asarray(
            evaluate(term.node, z, "float"), dtype=float)
        return v * term.coef
    x = _affine(term, z)
    k = h * term.alpha  # shift of the argument
    if term.kind == "exp":  # e^x expm1(k)
        out = np.exp(x)
        out *= np.expm1(k)
    elif term.kind in ("sin", "cos"):  # sum-to-product: no cancellation for small k
        half = k * 0.5
        mid = x + half
        if term.kind == "sin":
            out = np.cos(mid)
            out *= 2.0
        else:
            out = np.sin(mid)
            out *= -2.0
        out *= np.sin(half)
    elif term.shift == 0:  # softplus(x + k) - softplus(x) = log1p(sigmoid(x) expm1(k))
        # expm1(k) overflows only for k > 709, where 0 * inf = nan may appear: those entries are
        # among the `big` ones recomputed below
        with np.errstate(over="ignore", invalid="ignore"):
            out = _sigmoid(x)
            out *= np.expm1(k)
        neg = np.broadcast_to(k < -1.0, out.shape)
        out[neg] = 0.0  # replaced below
        np.log1p(out, out=out)
        big = np.broadcast_to(k > _EXPM1_MAX, out.shape)
        if big.any():
            xb = np.broadcast_to(x, out.shape)[big]
            out[big] = _softplus_value(xb + np.broadcast_to(k, out.shape)[big]) - _softplus_value(xb)
        # k << 0 with x >> 0: sigmoid(x) expm1(k) rounds to -1; there log(sigmoid(-x) + sigmoid(x) e^k)
        # = logaddexp(-softplus(x), k - softplus(-x)) has no cancellation (and log1p is not needed:
        # its argument is below -1 + e^-1)
        if neg.any():
            xb = np.broadcast_to(x, out.shape)[neg]
            kb = np.broadcast_to(k, out.shape)[neg]
            out[neg] = np.logaddexp(-_softplus_value(xb), kb - _softplus_value(-xb))
    else:  # sigmoid(x + k) - sigmoid(x) = -sigmoid(x + k) sigmoid(-x) expm1(-k)
        with np.errstate(over="ignore", invalid="ignore"):
            out = _sigmoid(x + k)
            out *= _sigmoid(-x)
            out *= np.expm1(-k)
            np.negative(out, out=out)
        big = np.broadcast_to(-k > _EXPM1_MAX, out.shape)
        if big.any():
            xb = np.broadcast_to(x, out.shape)[big]
            out[big] = _sigmoid(xb + np.broadcast_to(k, out.shape)[big]) - _sigmoid(xb)
    if not (_is_scalar(term.coef) and term.coef == 1):
        out *= term.coef
    return out


def _constants(term):
    if isinstance(term, _Poly):
        return list(term.c)
    if isinstance(term, _JetTerm):
        consts = [term.coef]
        from ._expr import Named

        consts += [np.asarray(n.value) for n in term.node.walk() if isinstance(n, Named)]
        return consts
    return [term.coef, term.alpha, term.beta]


class FusedSeparable:
    """All-orders derivatives of a separable ``f = a + b sum_j g_j(z_j)`` (or ``prod``) whose
    ``g`` is a sum of the terms listed in the module docstring.

    Build with :meth:`compile`; :meth:`derivatives` has the meaning of
    :meth:`gsbref.functions.Function.derivatives` (float64 only), rows ``lowest..order``.
    """

    def __init__(self, sep, terms):
        self.sep = sep
        self.kind = sep.kind
        self.a = sep.a_float
        self.b = sep.b_float
        if self.kind == "sum" and self.b != 1:  # fold b into the summands
            terms = [t.scaled(self.b) for t in terms]
        self.terms = terms
        #: True when every constant is a scalar: each coordinate's g_j is the same function
        self.uniform = all(_is_scalar(v) for t in terms for v in _constants(t))
        #: the degree when g is a polynomial (its higher derivatives vanish identically), else None
        self.degree = terms[0].degree if len(terms) == 1 and isinstance(terms[0], _Poly) else None

    @classmethod
    def compile(cls, f, d: int):
        """The fused engine of ``f`` for ``d`` coordinates, or None when ``f`` is not separable or
        no term of its ``g`` has a closed form (jets are then as good)."""
        sep = f.separable(d)
        if sep is None:
            return None
        terms = _convert(sep.elementwise)
        polys = [t for t in terms if isinstance(t, _Poly)]
        others = [t for t in terms if not isinstance(t, _Poly)]
        if polys:
            merged = _merge_polys(polys)
            others.insert(0, merged)
        if all(isinstance(t, _JetTerm) for t in others):
            return None
        return cls(sep, others)

    def shift_difference(self, z, h) -> np.ndarray | None:
        """``d_j = f(z + h_j e_j) - f(z)`` for every coordinate ``j`` (one coordinate shifted at a
        time), shape of ``z`` -- for kind ``"sum"`` only (else None).  Differences are formed
        without cancellation where the term allows: ``log1p(sigmoid(x) expm1(alpha h))`` for
        softplus (relative error a few ``eps`` for every ``h``), ``exp(x) expm1(alpha h)``,
        sum-to-product for ``sin``/``cos``; polynomials and jet terms are evaluated twice.

        >>> import numpy as np
        >>> from gsbref.functions import function
        >>> fs = FusedSeparable.compile(function("sum(softplus(z))"), 1)
        >>> float(fs.shift_difference(np.array([[3.0]]), 1e-12)[0, 0])  # sigmoid(3) * 1e-12
        9.525741268224e-13
        """
        if self.kind != "sum":
            return None
        z = np.asarray(z, dtype=float)
        out = None
        for t in self.terms:
            v = _term_shift_diff(t, z, h)
            out = v if out is None else out + v
        return out

    def describe(self) -> list:
        """The recognised terms, as short strings (for diagnostics and tests)."""
        out = []
        for t in self.terms:
            if isinstance(t, _Poly):
                out.append(f"poly(degree {t.degree})")
            elif isinstance(t, _JetTerm):
                out.append(f"jet({t.node})")
            else:
                out.append(f"{t.kind}" + (f"^({t.shift})" if t.shift else ""))
        return out

    def _g_rows(self, z, lo, hi, out, work, combine=None, shift=None):
        written = False
        folded = shifted = False
        for t in self.terms:
            if t.kind == "softplus" and len(self.terms) == 1:
                folded, shifted = _softplus_term(t, z, lo, hi, out, written, work, combine, shift)
            else:
                _KERNELS[t.kind](t, z, lo, hi, out[:hi - lo + 1], written, work)
            written = True
        return folded, shifted

    def derivatives(self, z, order: int, lowest: int = 0, out=None, work: Workspace | None = None,
                    combine=None, shift=None):
        """Pure partials ``d^n f / dz_j^n`` for ``n = lowest..order``: shape
        ``(order - lowest + 1, ..., d)``; row ``n = 0`` is ``f(z)`` repeated along ``j``.

        ``out``: where to write them; ``work``: a :class:`Workspace` to reuse between calls.
        ``combine`` ``(P, order - lowest + 1)``: also return the linear combinations
        ``combine @ rows`` of the rows, shape ``(P, *z.shape)``; they are computed inside the matrix
        product of the sigmoid family when possible, and written into the last ``P`` rows of
        ``out`` when ``out`` has ``order - lowest + 1 + P`` rows.  Returns the rows, or
        ``(rows, combinations)`` when ``combine`` is given.
        """
        z = np.asarray(z, dtype=float)
        order = _check_order(order)
        if not 0 <= lowest <= order:
            raise ValueError(f"lowest must lie in [0, order], got {lowest!r}")
        work = Workspace() if work is None else work
        R = order - lowest + 1
        P = 0 if combine is None else combine.shape[0]
        if out is None or out.shape[0] != R + P:
            full = np.empty((R + P,) + z.shape)
            if out is not None:
                out_rows = out
            else:
                out_rows = None
        else:
            full, out_rows = out, None
        rows = full[:R]
        folded = shifted = False
        if self.kind == "sum":
            folded, shifted = self._g_rows(z, lowest, order, full, work, combine if lowest > 0 else None,
                                           shift if lowest > 0 else None)
            if lowest == 0:
                value = rows[0].sum(axis=-1, keepdims=True)
                value += self.a
                rows[0] = value
        else:
            G = work.get("prod_G", (order + 1,) + z.shape)
            self._g_rows(z, 0, order, G, work)
            from ._function import _prod_except

            others = _prod_except(G[0])
            value = self.a + self.b * np.prod(G[0], axis=-1, keepdims=True)
            G[1:] *= others
            G[1:] *= self.b
            G[0] = value
            rows[...] = G[lowest:]
        if out_rows is not None:
            out_rows[...] = rows
            rows = out_rows
        comb = full[R:]
        if combine is not None and not folded:
            np.matmul(combine, rows.reshape(R, -1), out=comb.reshape(P, -1))
        if shift is not None and not shifted:
            rows -= np.asarray(shift, dtype=float).reshape((R,) + (1,) * z.ndim)
        return rows if combine is None else (rows, comb)

    def combinations_and_sums(self, z, order: int, lowest: int, combine, out, sums: RowSums,
                              work: Workspace | None = None):
        """The rows' linear combinations and their sums over the samples, without keeping the rows.

        ``z`` ``(n, d)``; the rows are the pure partials of orders ``lowest..order`` (as in
        :meth:`derivatives`).  Writes ``combine @ rows`` (``combine`` ``(P, order - lowest + 1)``)
        into ``out``, a ``(P, n * d)`` array (its rows may lie anywhere, e.g. in the caller's result
        arrays), and adds the sums over the ``n`` samples of every row to ``sums`` (a
        :class:`RowSums` of ``(order - lowest + 1, d)``).  For a single softplus-family term with
        scalar factors, ``lowest >= 1`` and an argument of one sign, nothing of the rows' size is
        formed beyond the basis: the combinations are one ``(P, T)`` matrix product with the basis,
        and the basis rows are summed (:class:`RowSums`); otherwise the rows are computed
        (:meth:`derivatives`) and summed.

        >>> import numpy as np
        >>> from gsbref.functions import function
        >>> fs = FusedSeparable.compile(function("sum(softplus(z))"), 1)
        >>> z = np.array([[0.5], [1.5], [2.5]])
        >>> E, sums = np.empty((1, 3)), RowSums(3, 1)
        >>> fs.combinations_and_sums(z, 3, 1, np.array([[1.0, 0.5, 0.0]]), E, sums)
        >>> rows = fs.derivatives(z, 3, lowest=1)[:, :, 0]
        >>> bool(np.allclose(E[0], rows[0] + 0.5 * rows[1], rtol=1e-14, atol=0))
        True
        >>> bool(np.allclose(sums.total()[:, 0], rows.sum(axis=1), rtol=1e-14, atol=0))
        True
        """
        z = np.asarray(z, dtype=float)
        order = _check_order(order)
        if not 0 <= lowest <= order:
            raise ValueError(f"lowest must lie in [0, order], got {lowest!r}")
        work = Workspace() if work is None else work
        R = order - lowest + 1
        d = z.shape[-1]
        single = self.kind == "sum" and lowest >= 1 and len(self.terms) == 1 and self.terms[0].kind == "softplus"
        if single and _softplus_light(self.terms[0], z, lowest, order, combine, out, work, sums):
            return
        P = combine.shape[0]
        buf = work.get("light_rows", (R + P,) + z.shape)
        rows, comb = self.derivatives(z, order, lowest, out=buf, work=work, combine=combine)
        np.copyto(out, comb.reshape(P, -1))
        sums.add_rows(rows.reshape(R, -1, d))
