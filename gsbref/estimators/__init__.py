"""Gradient estimators: per-sample estimates of dE[f]/dtheta (see ``_base`` for the contract)."""

from ._base import ESTIMATORS, Estimate, available_methods, estimate, register

__all__ = ["Estimate", "estimate", "register", "available_methods", "ESTIMATORS"]
