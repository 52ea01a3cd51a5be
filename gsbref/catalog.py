"""The catalog of (distribution, f) cases every check runs over.

One table, data only: a case names a distribution (built lazily, so importing this module costs
nothing), a formula for f with its constants, and tags saying what kind of case it is
(``smooth``, ``kink``, ``polynomial``, ``exp-type``, ``hard`` ...).  Adding a distribution or a test
function adds rows here, not code paths elsewhere.

>>> len(CASES) >= 40
True
>>> case("gamma-softplus").build()[0]
Gamma(shape=2.5, scale=0.7)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Case", "CASES", "case", "cases"]


@dataclass(frozen=True)
class Case:
    """One catalog row: ``name``, ``dist`` (a zero-argument factory), ``f`` (formula),
    ``constants`` (keyword constants of the formula), ``tags``."""

    name: str
    dist: Callable[[], Any]
    f: str
    constants: dict = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    def build(self):
        """``(distribution, Function)`` for this case."""
        from .functions import function

        return self.dist(), function(self.f, **self.constants)


def _d(name: str, *args, **kwargs):
    def make():
        from . import distributions

        cls = distributions.FAMILIES[name.split(".")[0]]
        if "." in name:
            return getattr(cls, name.split(".")[1])(*args, **kwargs)
        return cls(*args, **kwargs)

    return make


_W = np.array([[0.5, -1.0, 0.25], [1.5, 0.75, -0.5]])
_C = np.array([0.1, -0.2])
_W10 = np.round(np.sin(np.arange(30.0)).reshape(3, 10), 3)
_C10 = np.array([0.3, -0.1, 0.2])

CASES: tuple[Case, ...] = (
    # --- Gaussian (eq. 14) ---
    Case("gaussian-quadratic", _d("Gaussian", 0.3, 1.2), "sum((z - 0.49)**2)", tags=("polynomial",)),
    Case("gaussian-softplus", _d("Gaussian", [0.3, -1.0], [1.2, 0.5]), "sum(softplus(z))", tags=("smooth",)),
    Case("gaussian-sin", _d("Gaussian", 0.5, 2.0), "sum(sin(3*z))", tags=("exp-type",)),
    Case("gaussian-abs-kink", _d("Gaussian", 0.0, 1.0), "abs(z - 0.5)", tags=("kink",)),
    Case("gaussian-relu-kink", _d("Gaussian", 0.2, 0.8), "(relu(z) - 0.7)**2", tags=("kink",)),
    Case("gaussian-prod", _d("Gaussian", [0.5, -0.3, 1.0], [1.0, 0.7, 0.4]), "prod(z)", tags=("polynomial", "product")),
    Case("gaussian-nonseparable", _d("Gaussian", [0.5, -0.3], [1.0, 0.7]), "z[0]*z[1]**2", tags=("polynomial", "nested")),
    Case("gaussian-logsigmoid-net", _d("Gaussian", [0.2, -0.4], 0.5), "sum(log_sigmoid(W @ z + c))",
         {"W": _W[:, :2], "c": _C}, tags=("smooth", "nested", "network")),
    # --- MultivariateGaussian ---
    Case("mvn-quadratic", _d("MultivariateGaussian", [0.2, -0.5], [[1.0, 0.3], [0.3, 0.5]]),
         "z[0]**2 + z[0]*z[1] + 2*z[1]**2", tags=("polynomial", "nested")),
    Case("mvn-softplus", _d("MultivariateGaussian", [0.2, -0.5], [[1.0, -0.4], [-0.4, 0.8]]),
         "log_sigmoid(z[0] - z[1]) + z[0]*exp(0.5*z[1])", tags=("smooth", "nested")),
    # --- Dirac (eq. 15) ---
    Case("dirac-network", _d("Dirac", [0.3, -0.2, 0.9]), "sum(log_sigmoid(W @ z + c))", {"W": _W, "c": _C},
         tags=("smooth", "network")),
    Case("dirac-prod", _d("Dirac", [1.5, -0.5]), "z[0]*z[1]**2 + exp(z[0])", tags=("smooth",)),
    # --- Laplace (eq. 18) ---
    Case("laplace-softplus", _d("Laplace", 0.2, 0.5), "sum(softplus(z))", tags=("smooth", "divergent-series")),
    Case("laplace-exp-convergent", _d("Laplace", 0.1, 0.8), "sum(exp(-0.5*z))", tags=("exp-type",)),
    Case("laplace-quadratic", _d("Laplace", [0.0, 1.0], [1.0, 0.3]), "sum((z - 0.49)**2)", tags=("polynomial",)),
    Case("laplace-gauss-bump", _d("Laplace", 0.5, 1.0), "exp(-(z - 1)**2)", tags=("smooth", "divergent-series")),
    Case("laplace-logsigmoid", _d("Laplace", -0.3, 0.7), "sum(log_sigmoid(2*z + 0.5))", tags=("smooth",)),
    Case("laplace-abs-kink", _d("Laplace", 0.1, 0.6), "abs(z - 0.5)", tags=("kink",)),
    # --- Gamma (eq. 19), the paper's toy problems ---
    Case("gamma-toy1", _d("Gamma", 3.0, 0.5), "sum((z - 0.49)**2)", tags=("polynomial", "toy")),
    Case("gamma-toy2", _d("Gamma", 3.0, 0.5), "sum(exp(-0.49*z))", tags=("exp-type", "toy")),
    Case("gamma-softplus", _d("Gamma", 2.5, 0.7), "sum(softplus(z))", tags=("smooth",)),
    Case("gamma-small-shape", _d("Gamma", 0.05, 1.0), "sum(softplus(z))", tags=("smooth", "hard")),
    Case("gamma-small-shape-log", _d("Gamma", 0.3, 2.0), "sum(log(z + 1))", tags=("smooth", "hard")),
    Case("gamma-inverse", _d("Gamma", 2.0, 1.0), "1/(1 + z)", tags=("smooth", "divergent-series")),
    Case("gamma-sin", _d("Gamma", [1.5, 4.0], [0.4, 0.2]), "sum(sin(2*z))", tags=("exp-type",)),
    Case("gamma-abs-kink", _d("Gamma", 2.0, 0.5), "abs(z - 0.5)", tags=("kink",)),
    Case("gamma-from-rate", _d("Gamma.from_rate", 2.0, 3.0), "sum(exp(-z))", tags=("exp-type",)),
    Case("gamma-prod", _d("Gamma", [2.0, 0.7], [0.5, 1.5]), "prod(z)", tags=("polynomial", "product")),
    Case("exponential-softplus", _d("Exponential", 0.8), "sum(softplus(z - 1))", tags=("smooth",)),
    Case("chisquared-quadratic", _d("ChiSquared", [1.0, 3.0]), "sum((z - 1)**2)", tags=("polynomial",)),
    # --- Beta (eq. 20) ---
    Case("beta-identity", _d("Beta", 2.0, 3.0), "sum(z)", tags=("polynomial",)),
    Case("beta-small-shapes", _d("Beta", 0.2, 0.3), "sum(softplus(3*z))", tags=("smooth", "hard")),
    Case("beta-cubic", _d("Beta", 1.5, 0.6), "sum(z**3 - z)", tags=("polynomial",)),
    Case("beta-abs-kink", _d("Beta", 2.0, 2.0), "abs(z - 0.5)", tags=("kink",)),
    Case("beta-exp", _d("Beta", [0.5, 4.0], [2.0, 1.2]), "sum(exp(2*z))", tags=("exp-type",)),
    # --- Dirichlet (eq. 21) ---
    Case("dirichlet-k3-prod", _d("Dirichlet", [1.5, 2.0, 0.8]), "prod(z)", tags=("polynomial", "nested")),
    Case("dirichlet-k3-softplus", _d("Dirichlet", [0.7, 1.3, 2.5]), "sum(softplus(4*z - 1))", tags=("smooth", "nested")),
    Case("dirichlet-k2", _d("Dirichlet", [2.0, 3.0]), "z[0]", tags=("polynomial",)),
    # --- Bernoulli (eq. 16) ---
    Case("bernoulli-toy", _d("Bernoulli", 0.3), "sum((z - 0.499)**2)", tags=("toy",)),
    Case("bernoulli-d10-network", _d("Bernoulli", np.linspace(0.05, 0.95, 10)), "sum(log_sigmoid(W @ z + c))",
         {"W": _W10, "c": _C10}, tags=("network", "hard")),
    Case("bernoulli-prod", _d("Bernoulli", [0.2, 0.5, 0.9]), "prod(z + 0.5)", tags=("product",)),
    Case("bernoulli-logits", _d("Bernoulli.from_logits", [-1.0, 0.5, 2.0]), "sum(softplus(W @ z))",
         {"W": _W}, tags=("network",)),
    # --- Categorical (eq. 17) ---
    Case("categorical-quadratic", _d("Categorical", [[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]),
         "sum((z - 1.3)**2)", tags=("polynomial",)),
    Case("categorical-network", _d("Categorical", [[0.5, 0.3, 0.2]] * 3), "sum(log_sigmoid(W @ z + c))",
         {"W": _W, "c": _C}, tags=("network",)),
    Case("categorical-logits", _d("Categorical.from_logits", [[0.0, 1.0, -1.0], [0.5, 0.5, 2.0]]),
         "z[0]*z[1] + sum(sin(z))", tags=("smooth",)),
)


def case(name: str) -> Case:
    """The catalog row called ``name``."""
    for c in CASES:
        if c.name == name:
            return c
    raise KeyError(f"no catalog case {name!r}; known: {[c.name for c in CASES]}")


def cases(*tags: str) -> list[Case]:
    """Rows carrying every one of ``tags`` (all rows when none given)."""
    return [c for c in CASES if all(t in c.tags for t in tags)]
