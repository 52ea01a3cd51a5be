"""gsbref: reference implementation and exact oracle for stochastic gradient estimators.

``gsbref.function("sum(softplus(z))")`` builds a test function; ``gsbref.Gamma(shape, scale)`` and
the other families live in :mod:`gsbref.distributions`; :mod:`gsbref.oracle` gives exact
expectations and gradients; :mod:`gsbref.catalog` the table of cases every check runs over.
"""

from . import distributions, ops
from .distributions import *  # noqa: F401,F403
from .functions import Function, as_function, function

__version__ = "0.1.0.dev0"

__all__ = ["distributions", "ops", "function", "as_function", "Function", "oracle", *distributions.__all__]


def __getattr__(name):
    # the oracle imports mpmath quadrature machinery; load it on first use
    if name == "oracle":
        import importlib

        return importlib.import_module(".oracle", __name__)
    raise AttributeError(f"module 'gsbref' has no attribute {name!r}")
