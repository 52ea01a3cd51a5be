"""Result containers of the oracle: a value with its error estimate, and a gradient mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

__all__ = ["OracleValue", "OracleGradient", "to_float"]


def to_float(x: Any):
    """mpf (or object array of mpf) -> float (or float64 array)."""
    if isinstance(x, np.ndarray):
        return np.vectorize(float, otypes=[float])(x) if x.size else x.astype(float)
    return float(x)


@dataclass(frozen=True)
class OracleValue:
    """An exact expectation ``value`` (mpf, or float on the ``dps=None`` path) with an ``error``
    estimate, the ``method`` that produced it and the precision ``dps`` (``None``: float64)."""

    value: Any
    error: Any
    method: str
    dps: int | None

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        v = mpmath.nstr(self.value, 20) if self.dps else repr(self.value)
        return f"OracleValue({v} +/- {mpmath.nstr(self.error, 3)}, method={self.method!r}, dps={self.dps})"


class OracleGradient(dict):
    """``{parameter name: dE[f]/dtheta}`` -- an mpf for a scalar parameter, else an object array of
    mpf with the parameter's shape (float64 arrays on the ``dps=None`` path).

    Attributes: ``errors`` (same structure, error estimates), ``method``, ``dps``, ``convention``
    (for Categorical probabilities) and ``expectation`` (the :class:`OracleValue` of ``E[f]``,
    computed on the way).
    """

    def __init__(self, values: dict, errors: dict, method: str, dps: int | None,
                 expectation: OracleValue | None = None, convention: str | None = None):
        super().__init__(values)
        self.errors = errors
        self.method = method
        self.dps = dps
        self.expectation = expectation
        self.convention = convention

    def to_float(self) -> dict[str, Any]:
        """The gradient as float64 (scalars as Python floats, arrays as float64 arrays)."""
        return {k: to_float(v) for k, v in self.items()}

    def __repr__(self) -> str:
        def show(v):
            if isinstance(v, np.ndarray):
                return "[" + ", ".join(mpmath.nstr(x, 15) if self.dps else repr(float(x)) for x in v.reshape(-1)) + "]"
            return mpmath.nstr(v, 20) if self.dps else repr(float(v))

        inner = ", ".join(f"{k}: {show(v)}" for k, v in self.items())
        return f"OracleGradient({{{inner}}}, method={self.method!r}, dps={self.dps})"
