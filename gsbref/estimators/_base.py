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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..distributions._base import Distribution, _check_n, as_generator

__all__ = ["Estimate", "register", "estimate", "available_methods", "ESTIMATORS"]

ESTIMATORS: dict[str, Callable] = {}


def register(name: str):
    """Decorator: register ``fn`` as the estimator for ``method=name``."""

    def deco(fn):
        if name in ESTIMATORS:
            raise ValueError(f"estimator {name!r} registered twice")
        ESTIMATORS[name] = fn
        return fn

    return deco


@dataclass(frozen=True)
class Estimate:
    """Per-sample gradient estimates of one parameter, ``samples`` of shape ``(S, *param_shape)``."""

    samples: np.ndarray

    @property
    def n(self) -> int:
        return self.samples.shape[0]

    @property
    def mean(self) -> np.ndarray:
        return self.samples.mean(axis=0)

    @property
    def variance(self) -> np.ndarray:
        """Single-sample variance (unbiased, ``ddof=1``)."""
        return self.samples.var(axis=0, ddof=1) if self.n > 1 else np.full(self.samples.shape[1:], np.nan)

    @property
    def stderr(self) -> np.ndarray:
        return np.sqrt(self.variance / self.n)


def available_methods() -> list[str]:
    _load()
    return sorted(ESTIMATORS)


def _load():
    # importing the estimator modules registers them
    from . import _registry  # noqa: F401


def estimate(dist: Distribution, f: Any, method: str, n_samples: int, rng: Any, **options) -> dict[str, Estimate]:
    """Per-sample gradient estimates of ``E_{z~dist}[f(z)]`` by ``method``.

    Returns ``{parameter name: Estimate}`` with ``.samples`` ``(n_samples, *param_shape)``, ``.mean``,
    ``.stderr`` and ``.variance``.  ``rng`` is a NumPy Generator (or an int seed); ``options`` go to
    the estimator (e.g. ``order=8`` for truncated series).
    """
    from ..functions import as_function

    _load()
    if method not in ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; available: {sorted(ESTIMATORS)}")
    n = _check_n(n_samples)
    rng = as_generator(rng)
    f = as_function(f)
    out = ESTIMATORS[method](dist, f, n, rng, **options)
    res = {}
    for p in dist.parameters:
        s = np.asarray(out[p.name], dtype=float)
        if s.shape[0] != n:
            raise RuntimeError(f"estimator {method!r} returned {s.shape[0]} samples for '{p.name}', expected {n}")
        res[p.name] = Estimate(s)
    return res
