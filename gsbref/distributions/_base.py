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
  families); ``rng`` must be a :class:`numpy.random.Generator` (or an int seed).
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

from .._math import MP, NP

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


def validate_parameter(owner: str, p: Parameter, value: Any) -> np.ndarray:
    """Convert ``value`` to a float64 array and check it against ``p.domain``.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` (naming the parameter and its
    domain) for NaN, out-of-domain values or a wrong number of dimensions.
    """
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
    return arr


def _fmt(v: np.ndarray) -> str:
    if v.ndim == 0:
        return repr(float(v))
    return np.array2string(v, separator=", ", precision=6, threshold=8)


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

    def _set_params(self, **values: Any) -> None:
        owner = type(self).__name__
        declared = {p.name: p for p in self.parameters}
        if set(values) != set(declared):
            raise TypeError(f"{owner} takes parameters {sorted(declared)}, got {sorted(values)}")
        params = {name: validate_parameter(owner, declared[name], v) for name, v in values.items()}
        for arr in params.values():
            arr.setflags(write=False)
        object.__setattr__(self, "params", params)
        for name, arr in params.items():
            object.__setattr__(self, name, arr)

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
        inner = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"{type(self).__name__}({inner})"

    def _check_z(self, z: Any) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        k = len(self.event_shape)
        if z.ndim < k or tuple(z.shape[z.ndim - k:]) != tuple(self.event_shape):
            raise ValueError(
                f"{type(self).__name__}: z must have shape (..., {', '.join(map(str, self.event_shape))}),"
                f" got {z.shape}"
            )
        return z

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
        """Parameters broadcast to ``event_shape`` (read-only views)."""
        return {k: np.broadcast_to(v, self.event_shape) for k, v in self.params.items()}

    def coordinate(self, j: int) -> dict[str, float]:
        """Parameters of flat coordinate ``j`` as Python floats."""
        return {k: float(v.reshape(-1)[j]) for k, v in self.broadcast_params().items()}

    def _reduce_to_param(self, name: str, g: np.ndarray, lead: int) -> np.ndarray:
        """Sum an elementwise gradient ``(*lead, *event_shape)`` down to the parameter's shape
        (parameters that were broadcast receive the sum over the broadcast axes)."""
        target = self.params[name].shape
        ev = self.event_shape
        full = g.shape[:lead] + tuple(ev)
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
        rng = as_generator(rng)
        n = _check_n(n)
        theta = {k: np.broadcast_to(v, (n, *self.event_shape)) for k, v in self.params.items()}
        return np.asarray(self._sample(rng, n, **theta), dtype=float).reshape(n, *self.event_shape)

    def _logpdf_array(self, z: np.ndarray) -> np.ndarray:
        z = self._check_z(z)
        lo, hi = self.support
        inside = (z >= lo) & (z <= hi)
        zc = np.where(inside, z, self._inside_point())
        with np.errstate(divide="ignore"):
            lp = self._logpdf(NP, zc, **self.params)
        return np.where(inside, lp, -np.inf)

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
        return lp.sum(axis=tuple(range(lp.ndim - k, lp.ndim))) if k else lp

    def score(self, z) -> dict[str, np.ndarray]:
        z = self._check_z(z)
        lead = z.ndim - len(self.event_shape)
        s = self._score(NP, z, **self.params)
        return {k: self._reduce_to_param(k, np.asarray(s[k], dtype=float), lead) for k in self.params}

    def log_cf(self, omega) -> np.ndarray:
        w = self._check_z(omega)
        lm = self._log_mgf(NP, 1j * w, **self.params)
        k = len(self.event_shape)
        lm = np.broadcast_to(lm, w.shape)
        return lm.sum(axis=tuple(range(lm.ndim - k, lm.ndim))) if k else lm

    def grad_log_cf(self, omega) -> dict[str, np.ndarray]:
        w = self._check_z(omega)
        lead = w.ndim - len(self.event_shape)
        g = self._grad_log_mgf(NP, 1j * w, **self.params)
        return {k: self._reduce_to_param(k, np.asarray(g[k], dtype=complex), lead) for k in self.params}

    def a_coefficients(self, order: int) -> dict[str, np.ndarray]:
        if not hasattr(self, "_a"):
            return super().a_coefficients(order)
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
            raise ValueError(f"order must be a non-negative integer, got {order!r}")
        out = {k: np.zeros((order + 1, *self.event_shape)) for k in self.params}
        for n in range(order + 1):
            a = self._a(NP, n, **self.params)
            for k in self.params:
                out[k][n] = np.broadcast_to(a[k], self.event_shape)
        return out

    def mean(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self._mean(NP, **self.params), dtype=float), self.event_shape).copy()

    def variance(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self._variance(NP, **self.params), dtype=float), self.event_shape).copy()

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
