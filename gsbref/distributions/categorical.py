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
from .._backend import asarray, generator, namespace, special, to_numpy
from ._base import REAL, SIMPLEX, Distribution, Parameter, _check_n

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
        p = p / self.xp.sum(p, axis=-1, keepdims=True)
        if isinstance(p, np.ndarray):
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

    def _probs_in(self, xp):
        """``probs`` in namespace ``xp`` (converted once and cached)."""
        return self._params_in(xp)["probs"]

    def _log_table(self, xp=None) -> np.ndarray:
        """``log probs``, shape ``(*shape, K)`` (``-inf`` for zero probabilities)."""
        xp = self.xp if xp is None else xp
        with np.errstate(divide="ignore"):
            return xp.log(self._probs_in(xp))

    def _check_values(self, z) -> np.ndarray:
        """``z`` as integer category indices (int64; ``np.intp`` for NumPy), validated."""
        z = self._check_z(z)
        xp = self._ns_of(z)
        K = self.num_categories
        bad = ~((z >= 0) & (z <= K - 1) & (z == xp.floor(z)))  # NaN is bad too
        if bool(xp.any(bad)):
            bad, zh = to_numpy(bad), to_numpy(z)
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{type(self).__name__}: z must take integer values in {{0, ..., {K - 1}}}; "
                f"got {float(zh[idx])!r} at index {idx}"
            )
        return z.astype(np.intp) if isinstance(z, np.ndarray) else xp.astype(z, xp.int64)

    @staticmethod
    def _check_convention(convention: str) -> str:
        if convention not in _CONVENTIONS:
            raise ValueError(f"convention must be one of {_CONVENTIONS}, got {convention!r}")
        return convention

    def _sum_event(self, a: np.ndarray) -> np.ndarray:
        k = len(self.event_shape)
        return namespace(a).sum(a, axis=tuple(range(a.ndim - k, a.ndim))) if k else a

    # -- array methods ---------------------------------------------------------------------
    def sample(self, rng, n: int) -> np.ndarray:
        """``(n, *shape)`` float64 category indices, by inverse CDF.

        The cumulative sums are divided by their last entry, so the top is exactly 1; only the
        first K-1 of them are compared with ``u`` in [0, 1), so trailing categories of
        probability zero are never drawn, whatever the round-off in the sums.
        """
        xp = self.xp
        rng = generator(xp, rng)
        n = _check_n(n)
        cdf = xp.cumulative_sum(self.probs, axis=-1)
        cdf = cdf[..., :-1] / cdf[..., -1:]
        u = rng.random((n, *self.event_shape, 1))
        return xp.astype(xp.sum(xp.astype(u >= cdf, xp.int64), axis=-1), xp.float64)

    def log_prob(self, z) -> np.ndarray:
        """Joint log mass of each draw, shape ``(...)``; ``z`` has shape ``(..., *shape)``."""
        idx = self._check_values(z)
        xp = self._ns_of(idx)
        table = xp.broadcast_to(self._log_table(xp), idx.shape + (self.num_categories,))
        lp = xp.take_along_axis(table, idx[..., None], axis=-1)[..., 0]
        return self._sum_event(lp)

    def _onehot(self, idx: np.ndarray) -> np.ndarray:
        xp = self._ns_of(idx)
        return idx[..., None] == xp.arange(self.num_categories, dtype=idx.dtype)

    def score(self, z, convention: str = "reference-last") -> dict[str, np.ndarray]:
        """``{'probs': d log p(z) / d pi}`` in the given convention (module docstring):
        shape ``(..., *shape, K-1)`` for ``"reference-last"``, ``(..., *shape, K)`` for ``"free"``."""
        self._check_convention(convention)
        onehot = self._onehot(self._check_values(z))
        xp = self._ns_of(onehot)
        with np.errstate(divide="ignore"):
            inv = 1.0 / self._probs_in(xp)
        free = xp.where(onehot, inv, 0.0)
        if convention == "free":
            return {"probs": free}
        return {"probs": free[..., :-1] - free[..., -1:]}

    def _phases(self, omega) -> tuple[np.ndarray, np.ndarray]:
        """``exp(i omega_j k)`` of shape ``(..., *shape, K)`` and ``phi_j(omega_j)`` of ``(..., *shape)``."""
        w = self._check_z(omega)
        xp = self._ns_of(w)
        phase = xp.exp(1j * w[..., None] * xp.arange(self.num_categories, dtype=xp.float64))
        return phase, xp.sum(self._probs_in(xp) * phase, axis=-1)

    def log_cf(self, omega) -> np.ndarray:
        """``sum_j log sum_k pi_jk exp(i omega_j k)`` (principal branch per coordinate)."""
        _, phi = self._phases(omega)
        return self._sum_event(namespace(phi).log(phi))

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
        xp = self.xp
        return xp.sum(self.probs * xp.arange(self.num_categories, dtype=xp.float64), axis=-1)

    def variance(self) -> np.ndarray:
        """``Var[z_j] = sum_k pi_jk (k - E[z_j])^2``, shape ``shape``."""
        xp = self.xp
        d = xp.arange(self.num_categories, dtype=xp.float64) - self.mean()[..., None]
        return xp.sum(self.probs * d * d, axis=-1)

    # -- mpmath (used by the oracle) -------------------------------------------------------
    def mp_probs(self, j: int) -> list:
        """The K probabilities of flat coordinate ``j`` as mpf at the current precision,
        normalised there to sum to one (they differ from ``probs`` by O(K eps) relatively)."""
        row = [mpmath.mpf(float(v)) for v in to_numpy(self.probs).reshape(-1, self.num_categories)[j]]
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
        p = special(self.xp).softmax(self.params["logits"], axis=-1)
        if isinstance(p, np.ndarray):
            p.setflags(write=False)
        object.__setattr__(self, "_probs", p)

    @property
    def probs(self) -> np.ndarray:
        """``softmax(logits)`` along the last axis (computed once, stably)."""
        return self._probs

    def _probs_in(self, xp):
        if xp is self.xp:
            return self._probs
        cache = self._params_by_ns.setdefault("softmax", {})
        if id(xp) not in cache:
            cache[id(xp)] = asarray(self._probs, xp)
        return cache[id(xp)]

    def _log_table(self, xp=None) -> np.ndarray:
        xp = self.xp if xp is None else xp
        return special(xp).log_softmax(self._params_in(xp)["logits"], axis=-1)

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
        xp = self._ns_of(onehot)
        return {"logits": xp.astype(onehot, xp.float64) - self._probs_in(xp)}

    def grad_log_cf(self, omega, convention: str = "free") -> dict[str, np.ndarray]:
        """``d log phi_j / d l_jk = pi_jk (e^{i w_j k} / phi_j - 1)``, shape ``(..., *shape, K)``."""
        self._check_convention(convention)
        phase, phi = self._phases(omega)
        return {"logits": self._probs_in(namespace(phase)) * (phase / phi[..., None] - 1.0)}

    def mp_probs(self, j: int) -> list:
        """softmax of the logits of flat coordinate ``j``, computed in mpmath at the current
        precision."""
        row = [mpmath.mpf(float(v)) for v in to_numpy(self.params["logits"]).reshape(-1, self.num_categories)[j]]
        top = max(row)
        e = [mpmath.exp(v - top) for v in row]
        total = mpmath.fsum(e)
        return [v / total for v in e]
