"""gsbref: reference implementation and exact oracle for stochastic gradient estimators."""

from . import distributions
from .distributions import *  # noqa: F401,F403

__version__ = "0.1.0.dev0"
