"""One class per distribution; see :mod:`gsbref.distributions._base` for the shared contract.

``FAMILIES`` maps each public class name to its class (tests and strategies iterate over it).
"""

from ._base import Distribution, Domain, Factorized, Parameter, as_generator
from .gamma import Gamma
from .gaussian import Gaussian

# -- continuous families (added by their modules) --
from .beta import Beta
from .dirac import Dirac
from .dirichlet import Dirichlet
from .exponential import ChiSquared, Exponential
from .laplace import Laplace
from .mvn import MultivariateGaussian
# -- discrete families (added by their modules) --
from .bernoulli import Bernoulli, BernoulliLogits
from .categorical import Categorical, CategoricalLogits

FAMILIES = {
    cls.__name__: cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Distribution) and cls not in (Distribution, Factorized)
}

__all__ = ["Distribution", "Domain", "Factorized", "Parameter", "as_generator", "FAMILIES", *FAMILIES]
