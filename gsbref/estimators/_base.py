"""The estimator contract.

An estimator is a function ``fn(dist, f, n_samples, rng, **options) -> {name: samples}`` returning,
for every parameter ``name`` of ``dist``, the per-sample gradient estimates: an array of shape
``(n_samples, *param_shape)`` (``param_shape`` = ``dist.params[name].shape``; a parameter shared by
several coordinates receives the sum over them, as ``dist.score`` does).  Their mean estimates
``dE[f]/dtheta``; mean, standard error and variance follow from the samples and are never
re-derived by the estimator.  Estimators register themselves under a method name with
:func:`register`; :func:`estimate` looks them up and wraps the samples in :class:`Estimate`.

Every estimator's docstring says what it approximates, with what, what it requires, and cites the
paper's equation (or its source paper for baselines).

Array backends.  An estimator registered with ``array_api=True`` runs on the array namespace of
the distribution's parameters (CuPy, ``array_api_strict``, ...; see :mod:`gsbref._backend`) and
returns arrays of that namespace; :func:`estimate` takes ``backend=`` to move a distribution there
first.  The others run on NumPy only for now, and :func:`estimate` refuses other namespaces for
them (``NotImplementedError``) rather than silently computing on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._backend import asarray, backend_name, get_namespace, is_numpy, namespace
from ..distributions._base import Distribution, _check_n, as_generator

__all__ = ["Estimate", "register", "estimate", "available_methods", "array_api_methods", "ESTIMATORS"]

ESTIMATORS: dict[str, Callable] = {}
#: methods whose estimator runs on any array namespace (``register(..., array_api=True)``)
ARRAY_API: set[str] = set()


def register(name: str, array_api: bool = False):
    """Decorator: register ``fn`` as the estimator for ``method=name``; ``array_api=True`` declares
    that it runs on the namespace of the distribution's parameters (module docstring)."""

    def deco(fn):
        if name in ESTIMATORS:
            raise ValueError(f"estimator {name!r} registered twice")
        ESTIMATORS[name] = fn
        if array_api:
            ARRAY_API.add(name)
        return fn

    return deco


@dataclass(frozen=True)
class Estimate:
    """Per-sample gradient estimates of one parameter, ``samples`` of shape ``(S, *param_shape)``
    (an array of the namespace the estimator ran on; ``mean`` etc. are in the same namespace)."""

    samples: np.ndarray

    @property
    def n(self) -> int:
        return self.samples.shape[0]

    @property
    def mean(self) -> np.ndarray:
        if isinstance(self.samples, np.ndarray):
            return self.samples.mean(axis=0)
        return namespace(self.samples).mean(self.samples, axis=0)

    @property
    def variance(self) -> np.ndarray:
        """Single-sample variance (unbiased, ``ddof=1``)."""
        s = self.samples
        if isinstance(s, np.ndarray):
            return s.var(axis=0, ddof=1) if self.n > 1 else np.full(s.shape[1:], np.nan)
        xp = namespace(s)
        return xp.var(s, axis=0, correction=1) if self.n > 1 else xp.full(s.shape[1:], math.nan, dtype=s.dtype)

    @property
    def stderr(self) -> np.ndarray:
        v = self.variance
        return np.sqrt(v / self.n) if isinstance(v, np.ndarray) else namespace(v).sqrt(v / self.n)


def available_methods() -> list[str]:
    _load()
    return sorted(ESTIMATORS)


def array_api_methods() -> list[str]:
    """The methods that run on every array namespace (the others run on NumPy only)."""
    _load()
    return sorted(ARRAY_API)


def _load():
    # importing the estimator modules registers them
    from . import _registry  # noqa: F401


def estimate(dist: Distribution, f: Any, method: str, n_samples: int, rng: Any, *, backend=None,
             **options) -> dict[str, Estimate]:
    """Per-sample gradient estimates of ``E_{z~dist}[f(z)]`` by ``method``.

    Returns ``{parameter name: Estimate}`` with ``.samples`` ``(n_samples, *param_shape)``, ``.mean``,
    ``.stderr`` and ``.variance``.  ``rng`` is a NumPy Generator (or an int seed; for CuPy the GPU
    stream is seeded from it); ``options`` go to the estimator (e.g. ``order=8`` for truncated
    series).  ``backend``: ``None`` (the namespace of the distribution's parameters), a backend
    name (``"numpy"``, ``"cupy"``, ``"array_api_strict"``) or a namespace; the results are arrays of
    that namespace.

    >>> import gsbref
    >>> est = estimate(gsbref.Bernoulli(probs=[0.3, 0.6]), "sum(z)", "gsb-discrete", 4, 0,
    ...                backend="array_api_strict")
    >>> type(est["probs"].samples).__module__.split(".")[0], est["probs"].mean.shape
    ('array_api_strict', (2,))
    """
    from ..functions import as_function

    _load()
    if method not in ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; available: {sorted(ESTIMATORS)}")
    xp = getattr(dist, "xp", None) if backend is None else get_namespace(backend)
    if xp is not None and not is_numpy(xp):
        if method not in ARRAY_API:
            raise NotImplementedError(
                f"method {method!r} runs on NumPy only for now (array-API methods: {sorted(ARRAY_API)}); "
                f"got a distribution or backend on {backend_name(xp)}"
            )
        if backend is not None:
            if not hasattr(dist, "to_namespace"):
                raise NotImplementedError(f"{type(dist).__name__} is NumPy-only; backend={backend!r} is not available for it")
            dist = dist.to_namespace(xp)
    elif backend is not None and hasattr(dist, "to_namespace"):
        dist = dist.to_namespace(xp)
    n = _check_n(n_samples)
    rng = as_generator(rng)
    f = as_function(f)
    out = ESTIMATORS[method](dist, f, n, rng, **options)
    res = {}
    for p in dist.parameters:
        if xp is None or is_numpy(xp):
            s = np.asarray(out[p.name], dtype=float)
        else:
            s = asarray(out[p.name], xp, xp.float64)
        if s.shape[0] != n:
            raise RuntimeError(f"estimator {method!r} returned {s.shape[0]} samples for '{p.name}', expected {n}")
        res[p.name] = Estimate(s)
    return res
