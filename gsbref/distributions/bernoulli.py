"""Bernoulli with independent coordinates, ``Bernoulli(probs)`` with ``probs = P[z_j = 1]``, and
its logit parametrisation ``Bernoulli.from_logits(logits)`` (a :class:`BernoulliLogits`, whose
only parameter -- and gradient key -- is ``logits``).

Values are ``0.0`` and ``1.0`` (float64), listed in the class attribute ``values`` so that an
oracle can enumerate them.  The family is discrete: theorem 1 of the paper (``a_alpha``
coefficients) does not apply and :meth:`Bernoulli.a_coefficients` raises
:class:`NotImplementedError`; the paper's discrete rule is theorem 2, which for this family is
eq. 16: ``d L / d pi_j = E[f(z_-j, 1) - f(z_-j, 0)]``.

Per coordinate (``pi = probs``, ``s = sigmoid(logits)``, ``c`` complex)::

    log p(z)     = z log pi + (1 - z) log(1 - pi)        (0 log 0 read as 0)
    d log p/d pi = z / pi - (1 - z) / (1 - pi)
    log E[e^{cz}] = log(1 + pi (e^c - 1))                 (principal branch)
    d log p/d l  = z - s(l)

At ``pi = 0`` (``pi = 1``) the value 0 (1) has probability one: its log mass is 0 and its score
is the one-sided derivative, ``-1`` (``+1``); the impossible value has log mass ``-inf`` and
score ``+inf`` (``-inf``), the sign of the limit.  None of this emits a RuntimeWarning.

>>> b = Bernoulli(probs=[0.25, 0.5])
>>> b.score(np.array([1.0, 0.0]))["probs"].tolist()
[4.0, -2.0]
>>> z = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
>>> float(np.exp(b.log_prob(z)).sum())            # the four masses add up to one
1.0
>>> bool(np.allclose(b.score(z)["probs"].T @ np.exp(b.log_prob(z)), 0.0))   # E[score] = 0
True
>>> Bernoulli(probs=0.0).log_prob(np.array([0.0, 1.0])).tolist()
[0.0, -inf]
>>> bl = Bernoulli.from_logits([0.0, 2.0])
>>> bool(np.allclose(bl.probs, [0.5, 1 / (1 + np.exp(-2.0))]))
True
>>> bl.score(np.array([1.0, 1.0]))["logits"].round(6).tolist()
[0.5, 0.119203]
"""

from __future__ import annotations

import numpy as np

from .._backend import namespace, special, to_numpy
from .._math import NP
from ._base import REAL, UNIT_INTERVAL, Factorized, Parameter

__all__ = ["Bernoulli", "BernoulliLogits"]


# -- helpers with one meaning in every math namespace (float64 arrays / mpmath scalars) --------
# The _math namespaces' arrays have xlogy etc.; mpmath scalars get the same meaning here.
def _xlogy(M, x, y):
    """``x log y``, 0 where ``x == 0`` (even for ``y == 0``)."""
    if M.array:
        return M.xlogy(x, y)
    return M.zero if x == 0 else x * M.log(y)


def _xlog1py(M, x, y):
    """``x log(1 + y)``, 0 where ``x == 0`` (even for ``y == -1``)."""
    if M.array:
        return M.xlog1py(x, y)
    return M.zero if x == 0 else x * M.log1p(y)


def _xdivy(M, x, y):
    """``x / y``, 0 where ``x == 0`` (even for ``y == 0``), ``sign(x) inf`` where only ``y`` is 0."""
    if M is NP:
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x == 0, 0.0, x / y)
    if M.array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return M.where(x == 0, 0.0, x / y)
    if x == 0:
        return M.zero
    if y == 0:
        return M.sign(x) * M.inf
    return x / y


def _sigmoid(M, x):
    if M.array:
        return M.expit(x)
    return 1 / (1 + M.exp(-x))


def _softplus(M, x):
    """``log(1 + e^x)`` without overflow."""
    if M is NP:
        return np.logaddexp(0.0, x)
    if M.array:
        return M.logaddexp(M.zero, x)
    return M.log1p(M.exp(x))


class Bernoulli(Factorized):
    """Independent Bernoulli coordinates, ``P[z_j = 1] = probs_j``; see the module docstring."""

    parameters = (
        Parameter("probs", UNIT_INTERVAL, (0.05, 0.95), doc="P[z = 1]"),
    )
    support = (0.0, 1.0)
    #: the support points of one coordinate (the oracle enumerates them)
    values = (0.0, 1.0)
    discrete = True

    def __init__(self, probs=0.5):
        self._init(probs=probs)

    @classmethod
    def from_logits(cls, logits) -> "BernoulliLogits":
        """Bernoulli with ``probs = sigmoid(logits)``; gradients are with respect to ``logits``."""
        return BernoulliLogits(logits=logits)

    # -- values ----------------------------------------------------------------------------
    def _check_values(self, z) -> np.ndarray:
        z = self._check_z(z)
        xp = self._ns_of(z)
        bad = (z != 0.0) & (z != 1.0)  # NaN is bad too
        if bool(xp.any(bad)):
            bad, zh = to_numpy(bad), to_numpy(z)
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{type(self).__name__}: z must take values in {{0, 1}}; got {float(zh[idx])!r} at index {idx}"
            )
        return z

    def log_prob(self, z) -> np.ndarray:
        """Joint log mass of each draw (``-inf`` for an impossible value, no warning)."""
        return super().log_prob(self._check_values(z))

    def score(self, z) -> dict[str, np.ndarray]:
        """``{name: d log p(z) / d theta}``; at ``probs`` in {0, 1} see the module docstring."""
        return super().score(self._check_values(z))

    def a_coefficients(self, order: int) -> dict[str, np.ndarray]:
        raise NotImplementedError(
            f"{type(self).__name__} is a discrete distribution: theorem 1 (the a_alpha coefficients "
            "of eq. 6) does not apply; theorem 2 applies instead -- for Bernoulli coordinates eq. 16, "
            "d L / d pi_j = E[f(z_-j, 1) - f(z_-j, 0)]"
        )

    # -- per-coordinate formulas -----------------------------------------------------------
    @staticmethod
    def _logpdf(M, z, probs):
        return _xlogy(M, z, probs) + _xlog1py(M, 1 - z, -probs)

    @staticmethod
    def _score(M, z, probs):
        return {"probs": _xdivy(M, z, probs) - _xdivy(M, 1 - z, 1 - probs)}

    @staticmethod
    def _log_mgf(M, c, probs):
        return M.log1p(probs * M.expm1(c))

    @staticmethod
    def _grad_log_mgf(M, c, probs):
        e = M.expm1(c)
        return {"probs": e / (1 + probs * e)}

    @staticmethod
    def _mean(M, probs):
        return probs + 0 * probs

    @staticmethod
    def _variance(M, probs):
        return probs * (1 - probs)

    @staticmethod
    def _sample(rng, n, probs):
        # u is uniform on [0, 1): probs = 0 never gives 1, probs = 1 always does
        xp = namespace(probs)
        return xp.astype(rng.random(probs.shape) < probs, xp.float64)


class BernoulliLogits(Bernoulli):
    """Bernoulli parametrised by ``logits`` (``probs = sigmoid(logits)``, available as the
    property ``probs``); ``score`` and ``grad_log_cf`` are with respect to ``logits``.

    >>> BernoulliLogits(logits=[-40.0, 40.0]).log_prob(np.array([[1.0, 0.0]])).tolist()
    [-80.0]
    """

    parameters = (
        Parameter("logits", REAL, (-4.0, 4.0), doc="log(pi / (1 - pi))"),
    )

    def __init__(self, logits=0.0):
        self._init(logits=logits)

    @property
    def probs(self) -> np.ndarray:
        """``sigmoid(logits)``, shape of ``logits``."""
        return special(self.xp).expit(self.params["logits"])

    @staticmethod
    def _logpdf(M, z, logits):
        # log sigmoid(l) = -softplus(-l), log(1 - sigmoid(l)) = -softplus(l); both finite
        return -z * _softplus(M, -logits) - (1 - z) * _softplus(M, logits)

    @staticmethod
    def _score(M, z, logits):
        return {"logits": z - _sigmoid(M, logits)}

    @staticmethod
    def _log_mgf(M, c, logits):
        return M.log1p(_sigmoid(M, logits) * M.expm1(c))

    @staticmethod
    def _grad_log_mgf(M, c, logits):
        s, e = _sigmoid(M, logits), M.expm1(c)
        return {"logits": s * _sigmoid(M, -logits) * e / (1 + s * e)}

    @staticmethod
    def _mean(M, logits):
        return _sigmoid(M, logits)

    @staticmethod
    def _variance(M, logits):
        return _sigmoid(M, logits) * _sigmoid(M, -logits)

    @staticmethod
    def _sample(rng, n, logits):
        xp = namespace(logits)
        return xp.astype(rng.random(logits.shape) < special(xp).expit(logits), xp.float64)
