"""Categorical with independent coordinates, ``Categorical(probs)``: ``probs`` has shape
``(*shape, K)`` (``K >= 2``, each ``probs[j]`` on the probability simplex), ``event_shape =
shape``, and coordinate ``j`` takes the value ``k`` in ``{0, ..., K-1}`` (float64) with
probability ``probs[j, k]``.  ``Categorical.from_logits(logits)`` gives a
:class:`CategoricalLogits` with ``probs = softmax(logits)`` and gradients with respect to
``logits``.

Gradient conventions (the gradient key is ``'probs'`` in both)
--------------------------------------------------------------
The simplex constraint means the K probabilities of a coordinate are not K free parameters.

* ``convention="reference-last"`` (the default; the paper's eq. 17): the last category is the
  reference, ``pi_{K-1} = 1 - sum_{k<K-1} pi_k`` (0-based), the free parameters are
  ``pi_0 .. pi_{K-2}``, and ``d log p(z_j) / d pi_jk = [z_j = k] / pi_jk - [z_j = K-1] / pi_j,K-1``.
  Result shape ``(..., *shape, K-1)``.  This is the gradient that theorem 2 (eq. 17) estimates:
  ``d L / d pi_jk = E[f(z_-j, k) - f(z_-j, K-1)]``.
* ``convention="free"``: every ``pi_jk`` treated as free (the mass function extended off the
  simplex), ``d log p(z_j) / d pi_jk = [z_j = k] / pi_jk``; shape ``(..., *shape, K)``.

Note that the reference-last shape ``(..., *shape, K-1)`` differs from the parameter shape.
For :class:`CategoricalLogits` every logit is free: ``d log p(z_j) / d l_jk = [z_j = k] -
softmax(l_j)_k``, shape ``(..., *shape, K)``.

A value of probability zero has log mass ``-inf`` and score ``+inf`` in its own entry (``-inf``
in every entry when it is the reference category); no RuntimeWarning is emitted.

``probs`` are renormalised at construction (the domain check admits sums within ``sqrt(eps)``
of one) so that sampling, masses and moments describe one distribution.  Theorem 1 does not
apply (discrete family): :meth:`Categorical.a_coefficients` raises NotImplementedError.

>>> c = Categorical(probs=[[0.5, 0.25, 0.25], [0.125, 0.375, 0.5]])
>>> c.event_shape, c.num_categories, c.values
((2,), 3, (0.0, 1.0, 2.0))
>>> float(np.exp(c.log_prob(np.array([0.0, 2.0]))))          # 0.5 * 0.5
0.25
>>> c.score(np.array([0.0, 2.0]))["probs"].tolist()            # reference-last
[[2.0, 0.0], [-2.0, -2.0]]
>>> c.score(np.array([0.0, 2.0]), convention="free")["probs"].tolist()
[[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]]
>>> cl = Categorical.from_logits([0.0, 0.0, np.log(2.0)])
>>> cl.probs.round(12).tolist(), cl.score(np.array(2.0))["logits"].round(12).tolist()
([0.25, 0.25, 0.5], [-0.25, -0.25, 0.5])
"""

from __future__ import annotations

import mpmath
import numpy as np
from scipy import special as _sp

from ._base import REAL, SIMPLEX, Distribution, Parameter, _check_n, as_generator

__all__ = ["Categorical", "CategoricalLogits"]

_CONVENTIONS = ("reference-last", "free")


class Categorical(Distribution):
    """Independent categorical coordinates; see the module docstring for the conventions."""

    parameters = (
        Parameter(
            "probs", SIMPLEX, (0.05, 1.0), event_ndim=1,
            doc="category probabilities along the last axis (typical: range of the unnormalised "
            "weights a strategy draws before normalising)",
        ),
    )
    discrete = True

    def __init__(self, probs):
        self._set_params(probs=probs)
        p = self.params["probs"]
        self._finish(p.shape)
        p = p / p.sum(axis=-1, keepdims=True)
        p.setflags(write=False)
        self.params["probs"] = p
        object.__setattr__(self, "probs", p)

    @classmethod
    def from_logits(cls, logits) -> "CategoricalLogits":
        """Categorical with ``probs = softmax(logits)``; gradients with respect to ``logits``."""
        return CategoricalLogits(logits=logits)

    def _finish(self, shape: tuple[int, ...]) -> None:
        name = self.parameters[0].name
        if shape[-1] < 2:
            raise ValueError(
                f"{type(self).__name__}: parameter '{name}' must lie in "
                f"{self.parameters[0].domain.describe()} with K >= 2 categories along the last axis; got shape {shape}"
            )
        object.__setattr__(self, "event_shape", tuple(shape[:-1]))

    # -- basic facts -----------------------------------------------------------------------
    @property
    def num_categories(self) -> int:
        """K, the number of categories of each coordinate."""
        return int(self.params[self.parameters[0].name].shape[-1])

    @property
    def values(self) -> tuple[float, ...]:
        """The support points ``0.0 .. K-1`` of one coordinate (the oracle enumerates them)."""
        return tuple(float(k) for k in range(self.num_categories))

    def _log_table(self) -> np.ndarray:
        """``log probs``, shape ``(*shape, K)`` (``-inf`` for zero probabilities)."""
        with np.errstate(divide="ignore"):
            return np.log(self.probs)

    def _check_values(self, z) -> np.ndarray:
        z = self._check_z(z)
        K = self.num_categories
        bad = ~((z >= 0) & (z <= K - 1) & (z == np.floor(z)))  # NaN is bad too
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{type(self).__name__}: z must take integer values in {{0, ..., {K - 1}}}; "
                f"got {float(z[idx])!r} at index {idx}"
            )
        return z.astype(np.intp)

    @staticmethod
    def _check_convention(convention: str) -> str:
        if convention not in _CONVENTIONS:
            raise ValueError(f"convention must be one of {_CONVENTIONS}, got {convention!r}")
        return convention

    def _sum_event(self, a: np.ndarray) -> np.ndarray:
        k = len(self.event_shape)
        return a.sum(axis=tuple(range(a.ndim - k, a.ndim))) if k else a

    # -- array methods ---------------------------------------------------------------------
    def sample(self, rng, n: int) -> np.ndarray:
        """``(n, *shape)`` float64 category indices, by inverse CDF.

        The cumulative sums are divided by their last entry, so the top is exactly 1; only the
        first K-1 of them are compared with ``u`` in [0, 1), so trailing categories of
        probability zero are never drawn, whatever the round-off in the sums.
        """
        rng = as_generator(rng)
        n = _check_n(n)
        cdf = np.cumsum(self.probs, axis=-1)
        cdf = cdf[..., :-1] / cdf[..., -1:]
        u = rng.random((n, *self.event_shape, 1))
        return (u >= cdf).sum(axis=-1).astype(float)

    def log_prob(self, z) -> np.ndarray:
        """Joint log mass of each draw, shape ``(...)``; ``z`` has shape ``(..., *shape)``."""
        idx = self._check_values(z)
        table = np.broadcast_to(self._log_table(), idx.shape + (self.num_categories,))
        lp = np.take_along_axis(table, idx[..., None], axis=-1)[..., 0]
        return self._sum_event(lp)

    def _onehot(self, idx: np.ndarray) -> np.ndarray:
        return idx[..., None] == np.arange(self.num_categories)

    def score(self, z, convention: str = "reference-last") -> dict[str, np.ndarray]:
        """``{'probs': d log p(z) / d pi}`` in the given convention (module docstring):
        shape ``(..., *shape, K-1)`` for ``"reference-last"``, ``(..., *shape, K)`` for ``"free"``."""
        self._check_convention(convention)
        onehot = self._onehot(self._check_values(z))
        with np.errstate(divide="ignore"):
            inv = 1.0 / self.probs
        free = np.where(onehot, inv, 0.0)
        if convention == "free":
            return {"probs": free}
        return {"probs": free[..., :-1] - free[..., -1:]}

    def _phases(self, omega) -> tuple[np.ndarray, np.ndarray]:
        """``exp(i omega_j k)`` of shape ``(..., *shape, K)`` and ``phi_j(omega_j)`` of ``(..., *shape)``."""
        w = self._check_z(omega)
        phase = np.exp(1j * w[..., None] * np.arange(self.num_categories))
        return phase, (self.probs * phase).sum(axis=-1)

    def log_cf(self, omega) -> np.ndarray:
        """``sum_j log sum_k pi_jk exp(i omega_j k)`` (principal branch per coordinate)."""
        _, phi = self._phases(omega)
        return self._sum_event(np.log(phi))

    def grad_log_cf(self, omega, convention: str = "reference-last") -> dict[str, np.ndarray]:
        """Parameter gradient of :meth:`log_cf`, in the conventions of :meth:`score` (eq. 12):
        ``(e^{i w k} - e^{i w (K-1)}) / phi`` (reference-last) or ``e^{i w k} / phi`` (free)."""
        self._check_convention(convention)
        phase, phi = self._phases(omega)
        if convention == "free":
            return {"probs": phase / phi[..., None]}
        return {"probs": (phase[..., :-1] - phase[..., -1:]) / phi[..., None]}

    def a_coefficients(self, order: int) -> dict[str, np.ndarray]:
        raise NotImplementedError(
            f"{type(self).__name__} is a discrete distribution: theorem 1 (the a_alpha coefficients "
            "of eq. 6) does not apply; theorem 2 applies instead -- for categorical coordinates "
            "eq. 17, d L / d pi_jk = E[f(z_-j, k) - f(z_-j, K-1)] with the last category as reference"
        )

    def mean(self) -> np.ndarray:
        """``E[z_j] = sum_k k pi_jk``, shape ``shape``."""
        return (self.probs * np.arange(self.num_categories)).sum(axis=-1)

    def variance(self) -> np.ndarray:
        """``Var[z_j] = sum_k pi_jk (k - E[z_j])^2``, shape ``shape``."""
        d = np.arange(self.num_categories) - self.mean()[..., None]
        return (self.probs * d * d).sum(axis=-1)

    # -- mpmath (used by the oracle) -------------------------------------------------------
    def mp_probs(self, j: int) -> list:
        """The K probabilities of flat coordinate ``j`` as mpf at the current precision,
        normalised there to sum to one (they differ from ``probs`` by O(K eps) relatively)."""
        row = [mpmath.mpf(float(v)) for v in self.probs.reshape(-1, self.num_categories)[j]]
        total = mpmath.fsum(row)
        return [v / total for v in row]


class CategoricalLogits(Categorical):
    """Categorical parametrised by ``logits`` of shape ``(*shape, K)``; ``probs = softmax(logits)``
    is a read-only property; ``score`` and ``grad_log_cf`` are with respect to the logits (all
    K of them free).

    >>> c = CategoricalLogits(logits=[800.0, 0.0])      # no overflow
    >>> c.probs.tolist(), c.log_prob(np.array(1.0)).tolist()
    ([1.0, 0.0], -800.0)
    """

    parameters = (
        Parameter("logits", REAL, (-4.0, 4.0), event_ndim=1,
                  doc="unnormalised log probabilities along the last axis"),
    )

    def __init__(self, logits):
        self._set_params(logits=logits)
        self._finish(self.params["logits"].shape)
        p = _sp.softmax(self.params["logits"], axis=-1)
        p.setflags(write=False)
        object.__setattr__(self, "_probs", p)

    @property
    def probs(self) -> np.ndarray:
        """``softmax(logits)`` along the last axis (computed once, stably)."""
        return self._probs

    def _log_table(self) -> np.ndarray:
        return _sp.log_softmax(self.params["logits"], axis=-1)

    @staticmethod
    def _check_convention(convention: str) -> str:
        if convention != "free":
            raise ValueError(
                f"CategoricalLogits: every logit is a free parameter; convention must be 'free', "
                f"got {convention!r}"
            )
        return convention

    def score(self, z, convention: str = "free") -> dict[str, np.ndarray]:
        """``{'logits': [z_j = k] - softmax(l_j)_k}``, shape ``(..., *shape, K)``."""
        self._check_convention(convention)
        onehot = self._onehot(self._check_values(z))
        return {"logits": onehot - self.probs}

    def grad_log_cf(self, omega, convention: str = "free") -> dict[str, np.ndarray]:
        """``d log phi_j / d l_jk = pi_jk (e^{i w_j k} / phi_j - 1)``, shape ``(..., *shape, K)``."""
        self._check_convention(convention)
        phase, phi = self._phases(omega)
        return {"logits": self.probs * (phase / phi[..., None] - 1.0)}

    def mp_probs(self, j: int) -> list:
        """softmax of the logits of flat coordinate ``j``, computed in mpmath at the current
        precision."""
        row = [mpmath.mpf(float(v)) for v in self.params["logits"].reshape(-1, self.num_categories)[j]]
        top = max(row)
        e = [mpmath.exp(v - top) for v in row]
        total = mpmath.fsum(e)
        return [v / total for v in e]
