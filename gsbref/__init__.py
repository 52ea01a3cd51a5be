"""gsbref: reference implementation and exact oracle for stochastic gradient estimators.

``gsbref.function("sum(softplus(z))")`` builds a test function; ``gsbref.Gamma(shape, scale)`` and
the other families live in :mod:`gsbref.distributions`; :mod:`gsbref.oracle` gives exact
expectations and gradients; :mod:`gsbref.catalog` the table of cases every check runs over.
"""

from . import distributions, ops
from .distributions import *  # noqa: F401,F403
from .functions import Function, as_function, function

__version__ = "0.1.0.dev0"

__all__ = ["distributions", "ops", "function", "as_function", "Function", "oracle", "estimate", "estimators",
           "special", "testing", "catalog", *distributions.__all__]

# loaded on first use: the oracle pulls in the mpmath quadrature machinery, the estimators their
# registry; `import gsbref` stays cheap and imports no optional backend
_LAZY_MODULES = ("oracle", "estimators", "special", "testing", "catalog", "strategies")


def estimate(dist, f, method, n_samples, rng, **options):
    """Per-sample gradient estimates of ``E_{z~dist}[f(z)]``; see :func:`gsbref.estimators.estimate`.

    >>> import gsbref
    >>> r = gsbref.estimate(gsbref.Gamma(2.0, 0.5), "sum(z)", "gsb-resummed", n_samples=4, rng=0)
    >>> sorted(r), r["scale"].samples.shape
    (['scale', 'shape'], (4,))
    """
    from .estimators import estimate as _estimate

    return _estimate(dist, f, method, n_samples, rng, **options)


def __getattr__(name):
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'gsbref' has no attribute {name!r}")
