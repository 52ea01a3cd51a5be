"""Declared parameters, validation, and the two base classes every distribution derives from.

A distribution declares its parameters (name, domain, typical range, event rank) once, in the class
attribute ``parameters``.  Validation, ``repr``, the hypothesis strategies and the oracle read
those declarations; nothing else lists a distribution's parameters.

Two kinds of families:

* :class:`Factorized` -- independent coordinates, every parameter elementwise (Gaussian, Laplace,
  Gamma, Beta, Dirac, Bernoulli, ...).  A subclass writes the *per-coordinate* formulas once, as
  static methods of a math namespace ``M`` (``gsbref._math.NP`` for float64 arrays, ``MP`` for
  mpmath scalars); the base class turns them into array methods and the oracle uses the mpmath
  versions.  ``event_shape`` is the broadcast shape of the parameters.
* :class:`Distribution` -- anything else (MultivariateGaussian, Dirichlet, Categorical) implements
  the array methods directly.

Conventions shared by every family
----------------------------------
* ``sample(rng, n)`` returns ``(n, *event_shape)`` float64 (integers stored as float for discrete
  families); ``rng`` must be a :class:`numpy.random.Generator` (or an int seed), or a random source
  from :func:`gsbref._backend.generator`.

Array backends
--------------
Parameters may be arrays of any array-API namespace (NumPy, CuPy, ``array_api_strict``): the
distribution's namespace ``xp`` is that of its array parameters (Python numbers, lists and NumPy
arrays join it), and they are stored there as float64 (validation runs on a host copy).  Every
array method then computes in the namespace of its input ``z`` (or ``omega``) when that is an
array of another namespace, else in ``xp``, and returns arrays of that namespace: CuPy in, CuPy
out.  ``to_namespace(xp)`` converts a distribution.  The mpmath methods (``mp_*``) and the
oracle stay on the host.
* ``log_prob(z)`` takes ``z`` of shape ``(..., *event_shape)`` and returns the joint log density of
  each draw, shape ``(...)``.
* ``score(z)`` returns ``{name: d log p(z) / d theta}``, each of shape ``(..., *param_shape)``.
* ``log_cf(omega)`` is ``log E[exp(i omega . z)]`` (complex), ``omega`` shaped like ``z``;
  ``grad_log_cf(omega)`` its parameter gradient ``{name: (..., *param_shape)}``.
* ``a_coefficients(order)`` returns ``{name: array (order + 1, *event_shape)}``: entry ``[n, j]`` is
  the coefficient ``a_n`` of ``(i omega_j)^n`` in ``d log phi / d theta_j`` (theorem 1, eq. 6 of the
  paper), with the parameters broadcast to ``event_shape``; for independent coordinates only pure
  powers of a parameter's own coordinate occur.  (A parameter shared by several coordinates has
  the sum over those coordinates as its gradient, as ``score`` and ``grad_log_cf`` return it.)
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._backend import _HOST_TYPES, asarray, generator, get_namespace, is_numpy, namespace, to_numpy
from .._math import MP, array_math

__all__ = [
    "Domain",
    "Parameter",
    "Distribution",
    "Factorized",
    "as_generator",
    "REAL",
    "POSITIVE",
    "UNIT_INTERVAL",
    "OPEN_UNIT_INTERVAL",
]


# ----------------------------------------------------------------------------------------------
# Domains and parameters
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Domain:
    """A parameter's domain.

    ``kind`` is ``"interval"`` (elementwise ``low <(=) x <(=) high``), ``"simplex"`` (last axis
    non-negative and summing to one), or ``"positive-definite"`` (last two axes a symmetric
    positive-definite matrix).

    >>> POSITIVE.describe()
    '(0, inf)'
    >>> bool(POSITIVE.contains(np.array(0.0)))
    False
    """

    kind: str = "interval"
    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False

    def describe(self) -> str:
        if self.kind == "simplex":
            return "the probability simplex (non-negative entries summing to 1 along the last axis)"
        if self.kind == "positive-definite":
            return "symmetric positive-definite matrices"
        lo = "[" if self.low_closed else "("
        hi = "]" if self.high_closed else ")"
        fmt = lambda v: "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"
        return f"{lo}{fmt(self.low)}, {fmt(self.high)}{hi}"

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Elementwise membership for ``"interval"`` domains (NaN is never contained)."""
        x = np.asarray(x, dtype=float)
        lo = operator.ge if self.low_closed else operator.gt
        hi = operator.le if self.high_closed else operator.lt
        return lo(x, self.low) & hi(x, self.high)


REAL = Domain()
POSITIVE = Domain(low=0.0)
UNIT_INTERVAL = Domain(low=0.0, high=1.0, low_closed=True, high_closed=True)
OPEN_UNIT_INTERVAL = Domain(low=0.0, high=1.0)
SIMPLEX = Domain(kind="simplex")
POSITIVE_DEFINITE = Domain(kind="positive-definite")


@dataclass(frozen=True)
class Parameter:
    """Declaration of one parameter.

    ``typical`` is a range of values a test should draw from (log-uniformly when ``log_scale``);
    ``event_ndim`` is 0 for elementwise parameters, 1 when the last axis belongs to one
    coordinate (probabilities, concentrations), 2 for matrices (covariances).
    """

    name: str
    domain: Domain
    typical: tuple[float, float]
    event_ndim: int = 0
    log_scale: bool = False
    doc: str = ""


def as_generator(rng: Any) -> np.random.Generator:
    """Return ``rng`` as a NumPy Generator; an int is taken as a seed.  ``None`` is refused:
    randomness is always explicit in gsbref.

    >>> int(as_generator(3).integers(10)) == int(as_generator(3).integers(10))
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng must be a numpy.random.Generator or an int seed, got {type(rng).__name__}; "
        "gsbref never uses global random state"
    )


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (number of samples) must be a positive integer, got {n!r}")
    return int(n)


def validate_parameter(owner: str, p: Parameter, value: Any, xp=None) -> np.ndarray:
    """Convert ``value`` to a float64 array and check it against ``p.domain``.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` (naming the parameter and its
    domain) for NaN, out-of-domain values or a wrong number of dimensions.  The checks run on a
    NumPy copy; the result is a float64 array of namespace ``xp`` (default NumPy).
    """
    if value is not None and not isinstance(value, _HOST_TYPES):
        value = to_numpy(value)  # an array of another namespace: validate a host copy
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy raises for exotic input
        raise TypeError(f"{owner}: parameter '{p.name}' must be array-like numbers") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == bool
    ):
        raise TypeError(
            f"{owner}: parameter '{p.name}' must be real numbers, got dtype {arr.dtype}"
        )
    arr = np.array(arr, dtype=np.float64)  # a private copy: later changes by the caller don't leak in
    where = f"{owner}: parameter '{p.name}' must lie in {p.domain.describe()}"
    if arr.ndim < p.event_ndim:
        raise ValueError(f"{where}; it needs at least {p.event_ndim} dimension(s), got shape {arr.shape}")
    if p.event_ndim >= 1 and arr.shape[-1] < 1:
        raise ValueError(f"{where}; its last axis is empty")
    if np.isnan(arr).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise ValueError(f"{where}; got NaN at index {idx}")
    if p.domain.kind == "interval":
        bad = ~p.domain.contains(arr)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{where}; got {float(arr[idx])!r} at index {idx}")
    elif p.domain.kind == "simplex":
        if (arr < 0).any() or not np.isfinite(arr).all():
            raise ValueError(f"{where}; got a negative or infinite entry")
        total = arr.sum(axis=-1)
        # summing K float64 numbers is exact to ~K eps; sqrt(eps) leaves room for user rounding
        tol = np.sqrt(np.finfo(float).eps)
        if (np.abs(total - 1.0) > tol).any():
            worst = float(np.max(np.abs(total - 1.0)))
            raise ValueError(f"{where}; the entries sum to 1 +/- {worst:.3g} (tolerance {tol:.1e})")
    elif p.domain.kind == "positive-definite":
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(f"{where}; expected a square (d, d) matrix, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{where}; got an infinite entry")
        scale = max(1.0, float(np.max(np.abs(arr))))
        if np.max(np.abs(arr - arr.T)) > np.sqrt(np.finfo(float).eps) * scale:
            raise ValueError(f"{where}; the matrix is not symmetric")
        try:
            np.linalg.cholesky(arr)
        except np.linalg.LinAlgError:
            raise ValueError(f"{where}; the matrix is not positive definite") from None
    if xp is not None and not is_numpy(xp):
        return asarray(arr, xp)
    return arr


def _fmt(v: np.ndarray) -> str:
    if v.ndim == 0:
        return repr(float(v))
    return np.array2string(v, separator=", ", precision=6, threshold=8)


def _is_array(v) -> bool:
    """An array of NumPy or of another array namespace (not a scalar, module or container)."""
    if isinstance(v, np.ndarray):
        return True
    return hasattr(v, "shape") and hasattr(v, "dtype") and hasattr(v, "__array_namespace__")


def _reduce_generic(xp, g, full, target, ev, lead):
    """:meth:`Factorized._reduce_to_param` for arrays of any namespace."""
    g = xp.broadcast_to(g, full)
    pad = len(ev) - len(target)
    axes = list(range(lead, lead + pad))
    for i, t in enumerate(target):
        if t == 1 and ev[pad + i] != 1:
            axes.append(lead + pad + i)
    if axes:
        g = xp.sum(g, axis=tuple(axes), keepdims=True)
        g = xp.reshape(g, g.shape[:lead] + tuple(target))
    return g


# ----------------------------------------------------------------------------------------------
# The base class
# ----------------------------------------------------------------------------------------------
class Distribution:
    """Base class: parameter storage, validation, repr.  See the module docstring for the
    contract every subclass fulfils."""

    parameters: ClassVar[tuple[Parameter, ...]] = ()
    #: True for distributions over a discrete set (theorem 2 applies instead of theorem 1)
    discrete: ClassVar[bool] = False

    # set by _set_params
    event_shape: tuple[int, ...]
    params: dict[str, np.ndarray]
    #: the array namespace of the parameters (set by _set_params)
    xp: Any

    def _set_params(self, **values: Any) -> None:
        owner = type(self).__name__
        declared = {p.name: p for p in self.parameters}
        if set(values) != set(declared):
            raise TypeError(f"{owner} takes parameters {sorted(declared)}, got {sorted(values)}")
        try:
            xp = namespace(*values.values())
        except TypeError as exc:
            # a non-array value (a string, an object): name the parameter it was given for
            for name, v in values.items():
                validate_parameter(owner, declared[name], v)
            raise TypeError(f"{owner}: {exc}") from None
        params = {name: validate_parameter(owner, declared[name], v, xp) for name, v in values.items()}
        for arr in params.values():
            if isinstance(arr, np.ndarray):
                arr.setflags(write=False)
        object.__setattr__(self, "xp", xp)
        object.__setattr__(self, "_params_by_ns", {})
        object.__setattr__(self, "params", params)
        for name, arr in params.items():
            object.__setattr__(self, name, arr)

    # -- array namespaces ------------------------------------------------------------------
    def to_namespace(self, xp) -> "Distribution":
        """The same distribution with every array attribute (parameters and what was derived from
        them at construction) converted to namespace ``xp`` (a namespace or a backend name such as
        ``"cupy"``); ``self`` when it is already there.  No re-validation, no re-normalisation: the
        numbers are the same.

        >>> from gsbref.distributions import Gaussian
        >>> g = Gaussian(loc=[0.0, 1.0], scale=2.0)
        >>> g.to_namespace("numpy") is g
        True
        """
        xp = get_namespace(xp)
        if xp is self.xp or (is_numpy(xp) and is_numpy(self.xp)):
            return self
        new = object.__new__(type(self))
        for k, v in self.__dict__.items():
            if k == "_params_by_ns":
                v = {}
            elif k == "params":
                v = {n: asarray(a, xp) for n, a in v.items()}
            elif k == "xp":
                v = xp
            elif _is_array(v):
                v = asarray(v, xp)
            object.__setattr__(new, k, v)
        for n, a in new.params.items():
            object.__setattr__(new, n, a)
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        return new

    def _ns_of(self, z):
        """The namespace a method computes in for input ``z``: that of ``z`` when ``z`` is an array
        of a non-NumPy namespace, else the distribution's."""
        if isinstance(z, _HOST_TYPES):
            return self.xp
        return namespace(z)

    def _params_in(self, xp) -> dict:
        """The parameters in namespace ``xp`` (converted once and cached)."""
        if xp is self.xp:
            return self.params
        cache = self._params_by_ns
        key = id(xp)
        if key not in cache:
            cache[key] = {k: asarray(v, xp) for k, v in self.params.items()}
        return cache[key]

    def param_shape(self, name: str) -> tuple[int, ...]:
        return self.params[name].shape

    @property
    def event_size(self) -> int:
        return int(np.prod(self.event_shape, dtype=int))

    def with_params(self, **changes: Any) -> "Distribution":
        """A copy with some parameters replaced (used by the oracle to perturb a parameter)."""
        values = dict(self.params)
        values.update(changes)
        return self._rebuild(values)

    def _rebuild(self, values: dict[str, Any]) -> "Distribution":
        return type(self)(**values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_fmt(to_numpy(v))}" for k, v in self.params.items())
        return f"{type(self).__name__}({inner})"

    def _check_z(self, z: Any) -> np.ndarray:
        """``z`` as a float64 array of the namespace :meth:`_ns_of` picks, shape-checked."""
        return self._z(z)[1]

    def _z(self, z: Any):
        """``(xp, z)``: the namespace :meth:`_ns_of` picks and ``z`` as a float64 array there,
        shape-checked."""
        xp = self._ns_of(z)
        z = np.asarray(z, dtype=float) if is_numpy(xp) else asarray(z, xp, xp.float64)
        k = len(self.event_shape)
        if z.ndim < k or tuple(z.shape[z.ndim - k:]) != tuple(self.event_shape):
            raise ValueError(
                f"{type(self).__name__}: z must have shape (..., {', '.join(map(str, self.event_shape))}),"
                f" got {z.shape}"
            )
        return xp, z

    # subclasses implement these
    def sample(self, rng, n: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, z) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, z) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_cf(self, omega) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad_log_cf(self, omega) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def a_coefficients(self, order: int) -> dict[str, np.ndarray]:
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form theorem-1 coefficients"
        )

    def mean(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def variance(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class Factorized(Distribution):
    """Independent coordinates with elementwise parameters.

    Subclasses declare ``parameters`` and ``support`` (``(low, high)`` of one coordinate) and
    implement, as static methods taking the math namespace ``M`` first and the parameters as
    keywords (each formula written once, used for float64 arrays and for mpmath scalars):

    ``_logpdf(M, z, **theta)``       log density (log mass for discrete families) of one coordinate
    ``_score(M, z, **theta)``        ``{name: d logpdf / d theta}``
    ``_log_mgf(M, c, **theta)``      ``log E[exp(c z)]`` for complex ``c`` (so ``log_cf(w) = _log_mgf(i w)``)
    ``_grad_log_mgf(M, c, **theta)`` ``{name: d _log_mgf / d theta}``
    ``_a(M, n, **theta)``            ``{name: a_n}``, coefficient of ``c**n`` in ``_grad_log_mgf``
                                      (optional; only where theorem 1 applies)
    ``_mean(M, **theta)``, ``_variance(M, **theta)``
    ``_sample(rng, n, **theta)``     float64 arrays, ``theta`` broadcast to ``event_shape``
    ``_quad_points(M, **theta)``     sorted interior points splitting the support for quadrature
                                      (mode, mean +- a few standard deviations, kinks of the density)

    and optionally ``_cdf(z, **theta)`` (float64, for goodness-of-fit tests) and
    ``_endpoint_powers(M, **theta) -> (p_low, p_high)``: the density behaves like ``(z - low)^(p_low - 1)``
    near a finite lower end of the support (``None``: regular), likewise at the upper end; the
    oracle's quadrature integrates in ``u = (z - low)^p`` there when ``p < 1``.
    """

    support: ClassVar[tuple[float, float]] = (-math.inf, math.inf)

    def _init(self, **values: Any) -> None:
        self._set_params(**values)
        try:
            shape = np.broadcast_shapes(*(v.shape for v in self.params.values()))
        except ValueError:
            shapes = {k: v.shape for k, v in self.params.items()}
            raise ValueError(f"{type(self).__name__}: parameter shapes do not broadcast: {shapes}") from None
        object.__setattr__(self, "event_shape", tuple(shape))

    # -- parameters per coordinate ---------------------------------------------------------
    def broadcast_params(self) -> dict[str, np.ndarray]:
        """Parameters broadcast to ``event_shape`` (read-only views; in the namespace ``xp``)."""
        xp = self.xp
        return {k: xp.broadcast_to(v, self.event_shape) for k, v in self.params.items()}

    def coordinate(self, j: int) -> dict[str, float]:
        """Parameters of flat coordinate ``j`` as Python floats."""
        return {k: float(to_numpy(v).reshape(-1)[j]) for k, v in self.broadcast_params().items()}

    def _reduce_to_param(self, name: str, g: np.ndarray, lead: int) -> np.ndarray:
        """Sum an elementwise gradient ``(*lead, *event_shape)`` down to the parameter's shape
        (parameters that were broadcast receive the sum over the broadcast axes).  ``g`` may be a
        NumPy array (object arrays of mpmath numbers included) or an array of another namespace."""
        target = self.params[name].shape
        ev = self.event_shape
        full = g.shape[:lead] + tuple(ev)
        if not isinstance(g, np.ndarray):
            return _reduce_generic(namespace(g), g, full, target, ev, lead)
        g = np.broadcast_to(g, full)
        # axes of event_shape that the parameter does not have, or has with length 1
        pad = len(ev) - len(target)
        axes = list(range(lead, lead + pad))
        for i, t in enumerate(target):
            if t == 1 and ev[pad + i] != 1:
                axes.append(lead + pad + i)
        if axes:
            g = g.sum(axis=tuple(axes), keepdims=True)
            g = g.reshape(g.shape[:lead] + target)
        return g

    # -- array methods ---------------------------------------------------------------------
    def sample(self, rng, n: int) -> np.ndarray:
        xp = self.xp
        rng = generator(xp, rng)
        n = _check_n(n)
        theta = {k: xp.broadcast_to(v, (n, *self.event_shape)) for k, v in self.params.items()}
        return xp.reshape(xp.asarray(self._sample(rng, n, **theta), dtype=xp.float64), (n, *self.event_shape))

    def _logpdf_array(self, z: np.ndarray) -> np.ndarray:
        xp, z = self._z(z)
        lo, hi = self.support
        inside = (z >= lo) & (z <= hi)
        zc = xp.where(inside, z, self._inside_point())
        with np.errstate(divide="ignore"):
            lp = self._logpdf(array_math(xp), zc, **self._params_in(xp))
        return xp.where(inside, lp, -math.inf)

    def _inside_point(self) -> float:
        lo, hi = self.support
        if math.isfinite(lo) and math.isfinite(hi):
            return 0.5 * (lo + hi)
        if math.isfinite(lo):
            return lo + 1.0
        if math.isfinite(hi):
            return hi - 1.0
        return 0.0

    def log_prob(self, z) -> np.ndarray:
        lp = self._logpdf_array(z)
        k = len(self.event_shape)
        if not k:
            return lp
        xp = self._ns_of(lp)
        return xp.sum(lp, axis=tuple(range(lp.ndim - k, lp.ndim)))

    def score(self, z) -> dict[str, np.ndarray]:
        xp, z = self._z(z)
        lead = z.ndim - len(self.event_shape)
        s = self._score(array_math(xp), z, **self._params_in(xp))
        return {k: self._reduce_to_param(k, xp.asarray(s[k], dtype=xp.float64), lead) for k in self.params}

    def log_cf(self, omega) -> np.ndarray:
        w = self._check_z(omega)
        xp = self._ns_of(w)
        lm = self._log_mgf(array_math(xp), 1j * w, **self._params_in(xp))
        k = len(self.event_shape)
        lm = xp.broadcast_to(lm, w.shape)
        return xp.sum(lm, axis=tuple(range(lm.ndim - k, lm.ndim))) if k else lm

    def grad_log_cf(self, omega) -> dict[str, np.ndarray]:
        w = self._check_z(omega)
        xp = self._ns_of(w)
        lead = w.ndim - len(self.event_shape)
        g = self._grad_log_mgf(array_math(xp), 1j * w, **self._params_in(xp))
        return {k: self._reduce_to_param(k, xp.asarray(g[k], dtype=xp.complex128), lead) for k in self.params}

    def a_coefficients(self, order: int) -> dict[str, np.ndarray]:
        if not hasattr(self, "_a"):
            return super().a_coefficients(order)
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
            raise ValueError(f"order must be a non-negative integer, got {order!r}")
        xp, ev = self.xp, self.event_shape
        M = array_math(xp)
        rows: dict[str, list] = {k: [] for k in self.params}
        for n in range(order + 1):
            a = self._a(M, n, **self.params)
            for k in self.params:
                rows[k].append(xp.broadcast_to(xp.asarray(a[k], dtype=xp.float64), ev))
        return {k: xp.stack(v) for k, v in rows.items()}

    def _moment(self, fn) -> np.ndarray:
        xp = self.xp
        m = xp.asarray(fn(array_math(xp), **self.params), dtype=xp.float64)
        return xp.asarray(xp.broadcast_to(m, self.event_shape), copy=True)

    def mean(self) -> np.ndarray:
        return self._moment(self._mean)

    def variance(self) -> np.ndarray:
        return self._moment(self._variance)

    # -- mpmath, one coordinate (used by the oracle) ---------------------------------------
    @classmethod
    def mp_logpdf(cls, z, **theta):
        return cls._logpdf(MP, z, **theta)

    @classmethod
    def mp_score(cls, z, **theta) -> dict:
        return cls._score(MP, z, **theta)

    @classmethod
    def mp_log_mgf(cls, c, **theta):
        return cls._log_mgf(MP, c, **theta)

    @classmethod
    def mp_grad_log_mgf(cls, c, **theta) -> dict:
        return cls._grad_log_mgf(MP, c, **theta)
