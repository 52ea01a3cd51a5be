"""Dirichlet, ``Dirichlet(concentration)`` with ``concentration`` of shape ``(..., K)``, K >= 2.

``event_shape`` is ``concentration.shape``: leading axes index independent Dirichlets, the last axis
the K components of one draw.  ``log_prob`` sums over all of them (the joint density of one draw of
the whole array, with respect to Lebesgue measure on the first K - 1 components of each simplex).
``score`` is ``d log p / d alpha_k = log z_k - psi(alpha_k) + psi(sum alpha)``.

Theorem 1 is not applied to the Dirichlet directly: its characteristic function is a multivariate
confluent hypergeometric function (Humbert/Lauricella type) with no usable closed form, and the paper
applies the theorem through the gamma construction of eq. 21 (``z_k = g_k / sum g``, ``g_k ~
Gamma(alpha_k, 1)``), so :meth:`log_cf`, :meth:`grad_log_cf` and :meth:`a_coefficients` raise
``NotImplementedError`` saying so.

Sampling works in log space: ``log g = log G + log(U) / alpha`` with ``G ~ Gamma(alpha + 1)`` and
``U ~ Uniform(0, 1]`` (a standard identity in law), then ``z = e^(log g - max) / sum``, so small
concentrations do not produce 0/0.  NumPy's ``Generator.dirichlet`` returns exact zeros for 3 % of
the components at ``alpha = 0.05``, K = 3, and for 20 % at ``alpha = 0.01``; here a component is 0
only when it lies below the smallest float64 (~5e-324): probability ~1e-16 at ``alpha = 0.05``, and
measured 4e-4 of the components at ``alpha = 0.01`` (where ``log_prob`` is then ``+inf``, as the
density's limit at the boundary).  A component within 1.1e-16 of 1 is stored as 1.0 (0.9 % of the
draws of each component at ``alpha = 0.05``, K = 3); the other components keep the information, so
``log_prob`` and ``score`` stay finite.

>>> d = Dirichlet([1.0, 2.0, 3.0])
>>> d.mean().tolist()
[0.16666666666666666, 0.3333333333333333, 0.5]
>>> z = d.sample(0, 4)
>>> z.shape, bool(np.allclose(z.sum(-1), 1.0))
((4, 3), True)
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from .._backend import generator, special
from ._base import POSITIVE, Distribution, Parameter, _check_n

__all__ = ["Dirichlet"]

_EPS = np.finfo(float).eps


class Dirichlet(Distribution):
    parameters = (
        Parameter(
            "concentration", POSITIVE, (0.2, 10.0), event_ndim=1, log_scale=True,
            doc="concentrations alpha_k > 0 along the last axis (K >= 2)",
        ),
    )

    def __init__(self, concentration=(1.0, 1.0)):
        self._set_params(concentration=concentration)
        a = self.concentration
        if a.shape[-1] < 2:
            raise ValueError(
                f"Dirichlet: parameter 'concentration' must lie in {POSITIVE.describe()} with at least "
                f"K = 2 entries along its last axis; got shape {a.shape}"
            )
        object.__setattr__(self, "event_shape", tuple(a.shape))

    # -- sampling --------------------------------------------------------------------------
    def sample(self, rng, n: int) -> np.ndarray:
        xp = self.xp
        rng = generator(xp, rng)
        n = _check_n(n)
        a = xp.broadcast_to(self.concentration, (n, *self.event_shape))
        u = 1.0 - rng.random(a.shape)  # in (0, 1]: log u is finite
        log_g = xp.log(rng.gamma(a + 1.0)) + xp.log(u) / a
        z = xp.exp(log_g - xp.max(log_g, axis=-1, keepdims=True))  # largest entry exactly 1
        # dividing by the sum (rather than subtracting a log-sum-exp in log space) keeps every
        # component's relative accuracy and the row sums within a few eps of 1
        return z / xp.sum(z, axis=-1, keepdims=True)

    # -- density ---------------------------------------------------------------------------
    def _log_norm(self, xp) -> np.ndarray:
        a = self._params_in(xp)["concentration"]
        sp = special(xp)
        return sp.gammaln(xp.sum(a, axis=-1)) - xp.sum(sp.gammaln(a), axis=-1)

    def log_prob(self, z) -> np.ndarray:
        z = self._check_z(z)
        xp = self._ns_of(z)
        a = self._params_in(xp)["concentration"]
        K = a.shape[-1]
        # a draw on the simplex sums to 1 within ~K eps; sqrt(eps) also admits user rounding
        inside = xp.all(z >= 0, axis=-1) & (xp.abs(xp.sum(z, axis=-1) - 1.0) <= K * math.sqrt(_EPS))
        zc = xp.where(inside[..., None], z, 1.0 / K)
        with np.errstate(divide="ignore"):
            lp = xp.sum(special(xp).xlogy(a - 1.0, zc), axis=-1) + self._log_norm(xp)
        lp = xp.where(inside, lp, -math.inf)
        nb = len(self.event_shape) - 1  # batch axes of the parameter, summed
        return xp.sum(lp, axis=tuple(range(lp.ndim - nb, lp.ndim))) if nb else lp

    def score(self, z) -> dict[str, np.ndarray]:
        z = self._check_z(z)
        xp = self._ns_of(z)
        a = self._params_in(xp)["concentration"]
        sp = special(xp)
        with np.errstate(divide="ignore"):
            s = xp.log(z) - sp.digamma(a) + sp.digamma(xp.sum(a, axis=-1, keepdims=True))
        return {"concentration": s}

    # -- theorem 1 -------------------------------------------------------------------------
    _NO_CF = (
        "Dirichlet: the characteristic function is a multivariate confluent hypergeometric "
        "function without a usable closed form; the paper applies theorem 1 through the gamma "
        "construction of eq. 21 (z = g / sum g, g_k ~ Gamma(alpha_k, 1)) -- use Gamma for that"
    )

    def log_cf(self, omega):
        raise NotImplementedError(self._NO_CF)

    def grad_log_cf(self, omega):
        raise NotImplementedError(self._NO_CF)

    def a_coefficients(self, order: int):
        raise NotImplementedError(
            "Dirichlet: no theorem-1 coefficients of its own; theorem 1 is applied through the "
            "gamma construction (eq. 21: z = g / sum g, g_k ~ Gamma(alpha_k, 1)), whose coefficients "
            "are Gamma.a_coefficients"
        )

    # -- moments ---------------------------------------------------------------------------
    def mean(self) -> np.ndarray:
        a = self.concentration
        return a / self.xp.sum(a, axis=-1, keepdims=True)

    def variance(self) -> np.ndarray:
        a = self.concentration
        a0 = self.xp.sum(a, axis=-1, keepdims=True)
        return a * (a0 - a) / (a0 * a0 * (a0 + 1.0))

    # -- mpmath (one Dirichlet, used by the oracle) ----------------------------------------
    @classmethod
    def mp_logpdf(cls, z_seq, alpha_seq):
        """log density at ``z_seq`` (K mpf numbers on the simplex) for concentrations ``alpha_seq``,
        at the working precision."""
        a0 = mpmath.fsum(alpha_seq)
        return (
            mpmath.loggamma(a0)
            - mpmath.fsum(mpmath.loggamma(a) for a in alpha_seq)
            + mpmath.fsum((a - 1) * mpmath.log(z) for a, z in zip(alpha_seq, z_seq))
        )

    @classmethod
    def mp_score(cls, z_seq, alpha_seq):
        """``[d log p / d alpha_k]`` as a list of mpf."""
        psi0 = mpmath.digamma(mpmath.fsum(alpha_seq))
        return [mpmath.log(z) - mpmath.digamma(a) + psi0 for a, z in zip(alpha_seq, z_seq)]
