"""Importing this module registers every estimator (see :mod:`gsbref.estimators._base`)."""

from . import discrete, discrete_baselines, grg, gsb, implicit, pathwise, resummed, score  # noqa: F401
