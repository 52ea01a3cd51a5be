"""Array backends: the namespace of the inputs, special functions and random draws per namespace.

The distributions and the discrete / score estimators are written against the array API standard
(``xp.exp``, ``xp.sum``, ``xp.where`` ...), with ``xp`` the namespace of their inputs.  This module
supplies what the standard lacks, in one place:

* :func:`namespace` -- the namespace of some arrays (``array_api_compat.array_namespace``), with
  two conveniences: Python scalars, lists and NumPy arrays are *host data* that join any other
  namespace (they are converted with :func:`asarray`), and with no array at all the answer is
  NumPy (the ``numpy`` module itself from NumPy 2.1 on, ``array_api_compat.numpy`` before).  :func:`get_namespace` turns a backend name (``"numpy"``, ``"cupy"``,
  ``"array_api_strict"``) into a namespace.
* :func:`special` -- special functions (digamma, polygamma, gammaln, gammainc, betainc, log_ndtr,
  expit, logit, erf, xlogy, softmax, ...): SciPy for NumPy (the very same functions, so NumPy
  results do not change), ``cupyx.scipy.special`` for CuPy (imported on first use), and for every
  other namespace (``array_api_strict``, which has none) SciPy on a NumPy copy, converted back.
* :func:`generator` -- a random source with the draws the samplers and estimators need
  (``random``, ``standard_normal``, ``standard_exponential``, ``standard_gamma``, ``normal``,
  ``gamma``, ``exponential``, ``chisquare``, ``laplace``, ``beta``, ``uniform``).  For NumPy it is the ``numpy.random.Generator`` itself; for CuPy a
  ``cupy.random.RandomState`` seeded from the NumPy generator (different numbers, same law); for any
  other namespace the NumPy generator's draws converted (so ``array_api_strict`` sees exactly the
  numbers NumPy sees).
* :func:`to_numpy`, :func:`asarray` -- conversions at the boundaries (the mpmath oracle, the
  float64 special functions of :mod:`gsbref.special` and the fused derivative engine of
  :mod:`gsbref.functions._fused` run on the host; see :func:`call_host`).  The test functions of
  :mod:`gsbref.functions` given as formulas run on every namespace (phase 2 of issue #7).

No backend is imported when this module is: CuPy and ``array_api_strict`` are imported only when
arrays of theirs are passed or their names are asked for, and ``array_api_compat`` only when a
non-NumPy array is seen (it is needed for NumPy only by :func:`get_namespace`).

>>> import numpy as np
>>> xp = namespace(np.ones(2), 3.0)
>>> is_numpy(xp)
True
>>> bool(special(xp).digamma(np.array([1.0]))[0] == -np.euler_gamma)
True
>>> rng = generator(xp, 0)
>>> isinstance(rng, np.random.Generator)
True
"""

from __future__ import annotations

import functools
import types
from typing import Any

import numpy as np

__all__ = [
    "BACKENDS",
    "namespace",
    "get_namespace",
    "backend_name",
    "is_numpy",
    "is_cupy",
    "special",
    "generator",
    "to_numpy",
    "asarray",
    "call_host",
    "HostDraws",
    "CupyDraws",
]

#: backend names :func:`get_namespace` knows (any other array-API namespace module is accepted too)
BACKENDS = ("numpy", "cupy", "array_api_strict")

_HOST_TYPES = (int, float, complex, bool, np.generic, np.ndarray, list, tuple)


def _numpy_namespace():
    """The ``numpy`` module itself from NumPy 2.1 on (its main namespace has every function of the
    standard this package uses, ``astype`` and ``cumulative_sum`` being the last to arrive), else
    ``array_api_compat.numpy`` (a result-identical wrapper).  Using NumPy directly keeps the NumPy
    path free of wrapper overhead, which matters for small sample counts."""
    if hasattr(np, "cumulative_sum") and hasattr(np, "astype"):
        return np
    try:  # pragma: no cover - NumPy < 2.1
        import array_api_compat.numpy as xnp
    except ImportError:  # pragma: no cover - then a few kernels (Categorical.sample) need NumPy >= 2.1
        return np
    return xnp  # pragma: no cover


_NUMPY_NS: Any = _numpy_namespace()


def numpy_namespace():
    """The namespace used for NumPy arrays."""
    return _NUMPY_NS


def is_numpy(xp) -> bool:
    """True for ``numpy`` and ``array_api_compat.numpy``."""
    return xp is _NUMPY_NS or xp is np or getattr(xp, "__name__", "") in ("numpy", "array_api_compat.numpy")


def is_cupy(xp) -> bool:
    """True for ``cupy`` and ``array_api_compat.cupy`` (without importing CuPy)."""
    return getattr(xp, "__name__", "") in ("cupy", "array_api_compat.cupy")


def _is_cupy_array(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def namespace(*arrays):
    """The array namespace of ``arrays``.

    ``None``, Python scalars, lists, tuples and NumPy arrays are host data: they count only when no
    other array is given (then the answer is NumPy's namespace).  Arrays of one other namespace
    decide it; arrays of two different non-NumPy namespaces raise ``TypeError``.

    >>> is_numpy(namespace(1.0, None, [2.0]))
    True
    """
    others = [a for a in arrays if a is not None and not isinstance(a, _HOST_TYPES)]
    if not others:
        return numpy_namespace()
    from array_api_compat import array_namespace

    try:
        return array_namespace(*others)
    except TypeError as exc:
        raise TypeError(f"arrays from more than one array namespace were mixed: {exc}") from None


def get_namespace(backend):
    """A namespace from a backend name (``"numpy"``, ``"cupy"``, ``"array_api_strict"``) or a
    namespace module (returned as the compat namespace where one exists).

    >>> is_numpy(get_namespace("numpy"))
    True
    >>> get_namespace("tensorflow")
    Traceback (most recent call last):
    ...
    ValueError: backend must be one of ('numpy', 'cupy', 'array_api_strict') or an array namespace module, got 'tensorflow'
    """
    if isinstance(backend, types.ModuleType):
        if is_numpy(backend):
            return numpy_namespace()
        if backend.__name__ == "cupy":
            backend = "cupy"
        else:
            return backend
    if backend == "numpy":
        return numpy_namespace()
    if backend == "cupy":
        try:
            import array_api_compat.cupy as xcp
        except ImportError as exc:
            raise ImportError(
                "backend='cupy' needs CuPy and array_api_compat (pip install cupy-cuda12x array-api-compat)"
            ) from exc
        return xcp
    if backend == "array_api_strict":
        import array_api_strict

        return array_api_strict
    raise ValueError(f"backend must be one of {BACKENDS} or an array namespace module, got {backend!r}")


def backend_name(xp) -> str:
    """``"numpy"``, ``"cupy"`` or the namespace's module name."""
    if is_numpy(xp):
        return "numpy"
    if is_cupy(xp):
        return "cupy"
    return getattr(xp, "__name__", repr(xp))


# ----------------------------------------------------------------------------------------------
# conversions
# ----------------------------------------------------------------------------------------------
def to_numpy(x) -> np.ndarray:
    """``x`` as a NumPy array on the host (may share memory with ``x`` where the backend allows;
    treat it as read-only).  CuPy arrays are copied to the host; other arrays go through DLPack.

    >>> to_numpy([1.0, 2.0]).tolist()
    [1.0, 2.0]
    """
    if isinstance(x, (np.ndarray, np.generic)) or isinstance(x, _HOST_TYPES):
        return np.asarray(x)
    if _is_cupy_array(x):
        return x.get()
    try:
        return np.from_dlpack(x)
    except (TypeError, AttributeError, RuntimeError, BufferError, ValueError):
        return np.asarray(x)


def asarray(x, xp, dtype=None):
    """``x`` in namespace ``xp`` (converted through the host when it comes from another one).
    ``dtype``: ``None`` (keep), ``float`` / ``"float64"`` or a dtype of ``xp``."""
    if dtype is float or dtype == "float64":
        dtype = xp.float64
    if is_numpy(xp):
        return np.asarray(to_numpy(x) if not isinstance(x, _HOST_TYPES) else x, dtype=dtype)
    if not isinstance(x, _HOST_TYPES):
        src = namespace(x)
        if src is not xp and not (is_cupy(src) and is_cupy(xp)):
            x = to_numpy(x)
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype == object:
        raise TypeError("object arrays (mpmath numbers) cannot leave NumPy")
    return xp.asarray(x, dtype=dtype)


def call_host(fn, *args, xp=None, dtype=None, **kwargs):
    """``fn`` applied to host (NumPy) copies of the array arguments, its result converted back to
    ``xp`` (default: the namespace of the arguments).  For NumPy inputs this is ``fn(*args)``.

    This is the boundary where code without an array-API version runs: test functions given as
    Python callables, the fused differences of :mod:`gsbref.functions._fused`, the CDF derivatives
    of :mod:`gsbref.special` (implicit reparameterisation), SciPy special functions for namespaces
    without their own, the float64 ``1F1`` series of :class:`~gsbref.distributions.Beta`.  ``fn`` may return
    an array or a tuple / dict of arrays."""
    if xp is None:
        xp = namespace(*args, *kwargs.values())
    if is_numpy(xp):
        out = fn(*args, **kwargs)
        return out if dtype is None else _convert_out(out, xp, dtype)
    hargs = [to_numpy(a) if not isinstance(a, _HOST_TYPES) else a for a in args]
    hkw = {k: (to_numpy(v) if not isinstance(v, _HOST_TYPES) else v) for k, v in kwargs.items()}
    return _convert_out(fn(*hargs, **hkw), xp, dtype)


def _convert_out(out, xp, dtype):
    if isinstance(out, tuple):
        return tuple(_convert_out(o, xp, dtype) for o in out)
    if isinstance(out, dict):
        return {k: _convert_out(v, xp, dtype) for k, v in out.items()}
    return asarray(out, xp, dtype)


# ----------------------------------------------------------------------------------------------
# special functions
# ----------------------------------------------------------------------------------------------
#: functions :func:`special` provides (``trigamma(x) = polygamma(1, x)`` is added)
SPECIAL_FUNCTIONS = (
    "digamma", "polygamma", "gammaln", "gamma", "gammainc", "gammaincc", "betainc", "betaln",
    "log_ndtr", "ndtr", "ndtri", "expit", "logit", "erf", "erfc", "xlogy", "xlog1py", "softmax",
    "log_softmax", "hyp1f1",
)


class _Special:
    """Special functions of one namespace; attributes resolved on first use (see :func:`special`)."""

    def __init__(self, xp):
        self._xp = xp
        self.name = backend_name(xp)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"<special functions for {self.name}>"

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "trigamma":
            poly = self.polygamma
            fn = lambda x: poly(1, x)  # noqa: E731
        elif name not in SPECIAL_FUNCTIONS:
            raise AttributeError(f"special functions: no {name!r} (available: {SPECIAL_FUNCTIONS + ('trigamma',)})")
        else:
            fn = self._resolve(name)
        setattr(self, name, fn)
        return fn

    def _resolve(self, name):
        from scipy import special as sp

        xp = self._xp
        if is_numpy(xp):
            return getattr(sp, name)
        if is_cupy(xp):
            import cupyx.scipy.special as csp

            fn = getattr(csp, name, None)
            if fn is not None:
                return fn
            generic = _GENERIC.get(name)
            if generic is not None:
                return functools.partial(generic, xp)
            raise NotImplementedError(f"cupyx.scipy.special has no {name!r} and gsbref has no generic version")
        ref = getattr(sp, name)

        def host(*args, **kwargs):
            return call_host(ref, *args, xp=xp, **kwargs)

        host.__name__ = name
        return host


def _softmax_generic(xp, x, axis=-1):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax_generic(xp, x, axis=-1):
    s = x - xp.max(x, axis=axis, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))


def _xlogy_generic(xp, x, y):
    return xp.where(x == 0, xp.zeros_like(x * y), x * xp.log(y))


def _xlog1py_generic(xp, x, y):
    return xp.where(x == 0, xp.zeros_like(x * y), x * xp.log1p(y))


_GENERIC = {
    "softmax": _softmax_generic,
    "log_softmax": _log_softmax_generic,
    "xlogy": _xlogy_generic,
    "xlog1py": _xlog1py_generic,
}


@functools.lru_cache(maxsize=None)
def _special_cached(xp):
    return _Special(xp)


def special(xp):
    """Special functions for namespace ``xp`` (SciPy's call conventions).  For NumPy the attributes
    are the ``scipy.special`` functions themselves.

    >>> import numpy as np
    >>> sp = special(np)
    >>> sp.digamma is __import__("scipy.special").special.digamma
    True
    >>> bool(abs(sp.trigamma(np.array(1.0)) - np.pi**2 / 6) <= 4 * np.finfo(float).eps)   # a few ulps
    True
    """
    if is_numpy(xp):
        xp = numpy_namespace()
    return _special_cached(xp)


# ----------------------------------------------------------------------------------------------
# random draws
# ----------------------------------------------------------------------------------------------
def _as_np_generator(rng) -> np.random.Generator:
    from .distributions._base import as_generator

    return as_generator(rng)


class HostDraws:
    """Draws of a NumPy ``Generator`` converted to namespace ``xp`` (parameters converted to NumPy
    first).  The same seed gives the same numbers as NumPy, whatever the namespace."""

    def __init__(self, xp, rng: np.random.Generator):
        self.xp = xp
        self.numpy_generator = rng

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"HostDraws({backend_name(self.xp)})"

    def _draw(self, method, *args, size=None):
        hargs = [to_numpy(a) if not isinstance(a, _HOST_TYPES) else a for a in args]
        out = getattr(self.numpy_generator, method)(*hargs, size=size)
        return self.xp.asarray(np.asarray(out, dtype=float))

    def random(self, size=None):
        return self._draw("random", size=size)

    def standard_normal(self, size=None):
        return self._draw("standard_normal", size=size)

    def standard_exponential(self, size=None):
        return self._draw("standard_exponential", size=size)

    def standard_gamma(self, shape, size=None):
        return self._draw("standard_gamma", shape, size=size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._draw("normal", loc, scale, size=size)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._draw("uniform", low, high, size=size)

    def gamma(self, shape, scale=1.0, size=None):
        return self._draw("gamma", shape, scale, size=size)

    def exponential(self, scale=1.0, size=None):
        return self._draw("exponential", scale, size=size)

    def chisquare(self, df, size=None):
        return self._draw("chisquare", df, size=size)

    def laplace(self, loc=0.0, scale=1.0, size=None):
        return self._draw("laplace", loc, scale, size=size)

    def beta(self, a, b, size=None):
        return self._draw("beta", a, b, size=size)

    def spawn(self, n: int):
        return [HostDraws(self.xp, g) for g in self.numpy_generator.spawn(n)]


class CupyDraws:
    """Draws on the GPU from a ``cupy.random.RandomState`` (which has every sampler gsbref uses,
    with NumPy's signatures, parameters as arrays included); seeded from a NumPy generator."""

    def __init__(self, xp, state):
        self.xp = xp
        self.state = state

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return "CupyDraws()"

    def _p(self, a):
        return a if isinstance(a, (int, float)) else self.xp.asarray(a)

    def random(self, size=None):
        return self.state.random_sample(size=size, dtype=float)

    def standard_normal(self, size=None):
        return self.state.standard_normal(size=size, dtype=float)

    def standard_exponential(self, size=None):
        return self.state.standard_exponential(size=size, dtype=float)

    def standard_gamma(self, shape, size=None):
        return self.state.standard_gamma(self._p(shape), size=size, dtype=float)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self.state.normal(self._p(loc), self._p(scale), size=size, dtype=float)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self.state.uniform(self._p(low), self._p(high), size=size, dtype=float)

    def gamma(self, shape, scale=1.0, size=None):
        return self.state.gamma(self._p(shape), self._p(scale), size=size, dtype=float)

    def exponential(self, scale=1.0, size=None):
        return self.state.exponential(self._p(scale), size=size, dtype=float)

    def chisquare(self, df, size=None):
        return self.state.chisquare(self._p(df), size=size, dtype=float)

    def laplace(self, loc=0.0, scale=1.0, size=None):
        return self.state.laplace(self._p(loc), self._p(scale), size=size, dtype=float)

    def beta(self, a, b, size=None):
        return self.state.beta(self._p(a), self._p(b), size=size, dtype=float)

    def spawn(self, n: int):
        import cupy

        seeds = self.state.randint(0, 2**31 - 1, size=(n, 2)).get()
        return [CupyDraws(self.xp, cupy.random.RandomState(int(s[0]) * 2**31 + int(s[1]))) for s in seeds]


def generator(xp, rng):
    """A random source for namespace ``xp`` from ``rng`` (a NumPy ``Generator``, an int seed, or a
    source this function returned before, which is passed through).

    NumPy: the ``Generator`` itself.  CuPy: a :class:`CupyDraws` whose ``RandomState`` is seeded by
    one 63-bit integer drawn from ``rng`` (so the stream is a deterministic function of ``rng``; its
    numbers differ from NumPy's).  Other namespaces: :class:`HostDraws` (NumPy's numbers).
    """
    if isinstance(rng, (HostDraws, CupyDraws)):
        return rng
    if type(rng).__module__.split(".")[0] == "cupy":
        return CupyDraws(xp, rng)
    g = _as_np_generator(rng)
    if is_numpy(xp):
        return g
    if is_cupy(xp):
        import cupy

        return CupyDraws(xp, cupy.random.RandomState(int(g.integers(0, 2**63 - 1))))
    return HostDraws(xp, g)
