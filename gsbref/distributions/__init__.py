"""One class per distribution; see :mod:`gsbref.distributions._base` for the shared contract."""

from ._base import Distribution, Domain, Factorized, Parameter, as_generator
from .gamma import Gamma
from .gaussian import Gaussian

__all__ = ["Distribution", "Domain", "Factorized", "Parameter", "as_generator", "Gaussian", "Gamma"]
