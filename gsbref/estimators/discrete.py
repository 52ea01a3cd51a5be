"""Theorem 2 (discrete stochastic backpropagation): per-sample gradient estimates from differences of
``f`` at single-coordinate (or single-clique) changes of a sample.

What it approximates, with what
-------------------------------
For ``z ~ p_theta`` with independent coordinates (or, eq. 9, independent cliques) the gradient of
``L = E[f(z)]`` is a sum, over coordinates ``j``, of ``d p_j / d theta`` times the average over
``z_-j`` of a difference of ``f`` in coordinate ``j``.  The estimator draws ``z`` and, for every
``j``, evaluates ``f`` with ``z_j`` replaced by each value of its range while ``z_-j`` is kept
(``z_j`` itself is integrated out exactly, so each per-sample estimate is unbiased):

``Bernoulli(probs)``  (eq. 16)   ``f(z_-j, 1) - f(z_-j, 0)``;
``Bernoulli.from_logits``        the same times ``d pi_j / d l_j = pi_j (1 - pi_j)``;
``Categorical(probs)``           ``convention="reference-last"`` (default; eq. 17, 0-based categories):
                                 ``f(z_-j, k) - f(z_-j, K-1)`` for ``k < K-1``, shape ``(S, ..., K-1)``;
                                 ``convention="free"``: ``f(z_-j, k)`` for every ``k`` -- its
                                 expectation is the gradient with every ``pi_jk`` a free variable
                                 (``E`` extended multilinearly off the simplex), shape ``(S, ..., K)``;
``Categorical.from_logits``      ``pi_jk (f(z_-j, k) - sum_m pi_jm f(z_-j, m))`` (the free gradient
                                 contracted with the softmax Jacobian), shape ``(S, ..., K)``;
:class:`CliqueDistribution`      (eq. 9) for clique ``c`` with joint table ``p_c``, flattened in C order,
                                 reference state the last one: ``f(z_-c, s) - f(z_-c, s_last)``
                                 (``"reference-last"``, shape ``(S, n_c - 1)``) or ``f(z_-c, s)``
                                 (``"free"``, shape ``(S, *table_shape)``).

The keys and shapes follow :meth:`Categorical.score` and the oracle's ``convention=`` (a Bernoulli
has one parameter per coordinate and takes no convention).  Requirements: ``f`` finite on the
support; nothing about smoothness.  Cost per sample: ``d (K - 1) + 1`` evaluations of ``f``
(``sum_c n_c`` for cliques), batched by :mod:`gsbref.estimators._flips`; for ``f = rest(W z + c)``
the flips are rank-1 updates of the pre-activation (``strategy="affine"``).  For an event shape
with more than one axis ``f`` sees the flattened coordinates ``z.reshape(S, -1)``, as in the oracle.

Array backends: for Bernoulli and Categorical families the estimates are computed in the namespace
of the samples (the distribution's, when drawn by :func:`theorem2`; see :mod:`gsbref._backend`),
with ``f`` evaluated on the host for now.  :class:`CliqueDistribution` is NumPy-only.

>>> import numpy as np
>>> import gsbref
>>> from gsbref.estimators.discrete import theorem2_at, theorem2_expectation
>>> b = gsbref.Bernoulli(probs=[0.3, 0.6])
>>> est = theorem2_at(b, "z[0] * z[1] + z[0]", np.array([[0.0, 1.0], [1.0, 0.0]]))
>>> est["probs"].tolist()                  # [f(1, z1) - f(0, z1), f(z0, 1) - f(z0, 0)] per sample
[[2.0, 0.0], [1.0, 1.0]]
>>> g = theorem2_expectation(b, "z[0] * z[1] + z[0]")   # sum_z p(z) estimate(z): exact
>>> [round(float(v), 12) for v in g["probs"]]             # dE/dpi = [1 + pi_1, pi_0]
[1.6, 0.3]
>>> c = gsbref.Categorical(probs=[0.2, 0.3, 0.5])      # event shape (): z has shape (S,)
>>> theorem2_at(c, "z[0]**2", np.array([1.0]))["probs"].tolist()      # f(k) - f(2), k = 0, 1
[[-4.0, -3.0]]
>>> theorem2_at(c, "z[0]**2", np.array([1.0]), convention="free")["probs"].tolist()
[[0.0, 1.0, 4.0]]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import asarray, is_numpy, namespace
from ..distributions._base import SIMPLEX, Parameter, _check_n, as_generator
from ..distributions.bernoulli import Bernoulli, BernoulliLogits
from ..distributions.categorical import Categorical, CategoricalLogits
from ._base import register
from ._flips import base_values, flipped_values

__all__ = [
    "MAX_ENUMERATED_STATES",
    "CliqueDistribution",
    "enumerate_states",
    "theorem2",
    "theorem2_at",
    "theorem2_cliques",
    "theorem2_expectation",
]

#: largest number of states :func:`enumerate_states` (and so :func:`theorem2_expectation`) visits
MAX_ENUMERATED_STATES = 2**20


def _as_function(f):
    from ..functions import as_function

    return as_function(f)


# ----------------------------------------------------------------------------------------------
# Distributions over disjoint cliques (eq. 9)
# ----------------------------------------------------------------------------------------------
class CliqueDistribution:
    """``p(z) = prod_c p_c(z_c)`` over disjoint cliques of coordinates, each with its joint table.

    ``cliques`` is a sequence of ``(indices, table)`` pairs: ``indices`` the coordinates of the
    clique (distinct integers; together the cliques cover ``0 .. d-1`` exactly once), ``table`` an
    array with one axis per index, ``table[v_1, .., v_m] = P[z_{i_1} = v_1, .., z_{i_m} = v_m]``
    (each axis of length >= 2, entries non-negative summing to one within ``sqrt(eps)``;
    renormalised).  Coordinate values are ``0.0 .. K_i - 1`` as for :class:`Categorical`.

    The parameters are the tables, named ``"clique0"``, ``"clique1"``, ... in the order given; the
    gradient conventions (``convention=`` of :meth:`score` and :func:`theorem2_cliques`) treat the
    table of clique ``c`` flattened in C order: ``"reference-last"`` (the last state is eq. 9's
    normalising assignment ``z_c^*``; free entries are the first ``n_c - 1``; shape ``(..., n_c - 1)``)
    and ``"free"`` (every entry free, shape ``(..., *table_shape)``).

    >>> cd = CliqueDistribution([((0, 2), [[0.1, 0.2], [0.3, 0.4]]), ((1,), [0.5, 0.25, 0.25])])
    >>> cd.event_shape, [p.name for p in cd.parameters]
    ((3,), ['clique0', 'clique1'])
    >>> float(np.exp(cd.log_prob(np.array([1.0, 2.0, 0.0]))))     # 0.3 * 0.25
    0.075
    >>> cd.score(np.array([1.0, 2.0, 0.0]))["clique0"].round(6).tolist()   # [z_c = s]/p - [z_c = last]/p_last
    [0.0, 0.0, 3.333333]
    """

    discrete = True

    def __init__(self, cliques: Sequence[tuple[Sequence[int], Any]]):
        parsed = []
        seen: list[int] = []
        for i, item in enumerate(cliques):
            try:
                indices, table = item
            except (TypeError, ValueError):
                raise TypeError(f"clique {i}: expected an (indices, table) pair, got {item!r}") from None
            idx = tuple(_as_index(v, i) for v in np.atleast_1d(np.asarray(indices)).tolist())
            if len(set(idx)) != len(idx):
                raise ValueError(f"clique {i}: repeated coordinate in {idx}")
            parsed.append((idx, _check_table(table, len(idx), i)))
            seen.extend(idx)
        if not parsed:
            raise ValueError("CliqueDistribution needs at least one clique")
        d = len(seen)
        if sorted(seen) != list(range(d)):
            dup = sorted({v for v in seen if seen.count(v) > 1})
            raise ValueError(
                f"the cliques must cover coordinates 0..{d - 1} exactly once; "
                + (f"repeated: {dup}" if dup else f"got {sorted(seen)}")
            )
        self.cliques = tuple(parsed)
        self.event_shape = (d,)
        self.parameters = tuple(
            Parameter(f"clique{i}", SIMPLEX, (0.05, 1.0), event_ndim=t.ndim, doc=f"joint table of coordinates {ix}")
            for i, (ix, t) in enumerate(parsed)
        )
        self.params = {p.name: t for p, (_, t) in zip(self.parameters, parsed)}
        sizes = np.zeros(d, dtype=int)
        for ix, t in parsed:
            sizes[list(ix)] = t.shape
        self.num_values = tuple(int(k) for k in sizes)

    @classmethod
    def from_independent(cls, dist) -> CliqueDistribution:
        """Singleton cliques from a ``Bernoulli(probs)`` or ``Categorical(probs)`` (flattened
        coordinates; the Bernoulli table is ``[1 - pi, pi]``, so its reference state is ``z = 1``)."""
        if isinstance(dist, (BernoulliLogits, CategoricalLogits)):
            raise TypeError("from_independent takes probability parametrisations (tables are probabilities)")
        if isinstance(dist, Bernoulli):
            p = np.broadcast_to(dist.params["probs"], dist.event_shape).reshape(-1)
            tabs = np.stack([1.0 - p, p], axis=-1)
        elif isinstance(dist, Categorical):
            tabs = dist.probs.reshape(-1, dist.num_categories)
        else:
            raise TypeError(f"from_independent takes a Bernoulli or Categorical, got {type(dist).__name__}")
        return cls([((j,), t) for j, t in enumerate(tabs)])

    def __repr__(self) -> str:
        inner = ", ".join(f"{ix}: {t.shape}" for ix, t in self.cliques)
        return f"CliqueDistribution({inner})"

    @property
    def event_size(self) -> int:
        return self.event_shape[0]

    def _check_values(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        if z.ndim < 1 or z.shape[-1] != self.event_size:
            raise ValueError(f"CliqueDistribution: z must have shape (..., {self.event_size}), got {z.shape}")
        top = np.asarray(self.num_values) - 1
        bad = ~((z >= 0) & (z <= top) & (z == np.floor(z)))
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"CliqueDistribution: z must take integer values in range; got {float(z[at])!r} at {at}")
        return z.astype(np.intp)

    def _flat_states(self, zi: np.ndarray, c: int) -> np.ndarray:
        ix, t = self.cliques[c]
        return np.ravel_multi_index(tuple(zi[..., i] for i in ix), t.shape)

    def sample(self, rng, n: int) -> np.ndarray:
        """``(n, d)`` float64 values: each clique's state by inverse CDF on its flattened table."""
        rng = as_generator(rng)
        n = _check_n(n)
        out = np.empty((n, self.event_size))
        for ix, t in self.cliques:
            cdf = np.cumsum(t.reshape(-1))
            cdf = cdf[:-1] / cdf[-1]
            state = (rng.random((n, 1)) >= cdf).sum(axis=-1)
            out[:, list(ix)] = np.stack(np.unravel_index(state, t.shape), axis=-1)
        return out

    def log_prob(self, z) -> np.ndarray:
        """Joint log mass, shape ``(...)`` (``-inf`` for a state of probability zero)."""
        zi = self._check_values(z)
        total = np.zeros(zi.shape[:-1])
        with np.errstate(divide="ignore"):
            for c, (_, t) in enumerate(self.cliques):
                total = total + np.log(t.reshape(-1)[self._flat_states(zi, c)])
        return total

    def score(self, z, convention: str = "reference-last") -> dict[str, np.ndarray]:
        """``{clique name: d log p(z) / d table}`` in the conventions of the class docstring."""
        _check_clique_convention(convention)
        zi = self._check_values(z)
        out = {}
        for c, (p, (_, t)) in enumerate(zip(self.parameters, self.cliques)):
            flat = t.reshape(-1)
            hit = self._flat_states(zi, c)[..., None] == np.arange(flat.size)
            with np.errstate(divide="ignore"):
                free = np.where(hit, 1.0 / flat, 0.0)
            out[p.name] = free.reshape(zi.shape[:-1] + t.shape) if convention == "free" else free[..., :-1] - free[..., -1:]
        return out


def _as_index(v, i) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"clique {i}: coordinate indices must be non-negative integers, got {v!r}")
    return int(v)


def _check_table(table, m: int, i: int) -> np.ndarray:
    t = np.array(table, dtype=float)
    if t.ndim != m:
        raise ValueError(f"clique {i}: the table needs one axis per coordinate ({m}), got shape {t.shape}")
    if any(k < 2 for k in t.shape):
        raise ValueError(f"clique {i}: every coordinate needs at least two values, got table shape {t.shape}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"clique {i}: table entries must be finite and non-negative")
    tol = math.sqrt(np.finfo(float).eps)
    if abs(t.sum() - 1.0) > tol:
        raise ValueError(f"clique {i}: table entries sum to {t.sum()!r}, not 1 (tolerance {tol:.1e})")
    t = t / t.sum()
    t.setflags(write=False)
    return t


_CLIQUE_CONVENTIONS = ("reference-last", "free")


def _check_clique_convention(convention):
    if convention not in _CLIQUE_CONVENTIONS:
        raise ValueError(f"convention must be one of {_CLIQUE_CONVENTIONS}, got {convention!r}")
    return convention


# ----------------------------------------------------------------------------------------------
# The estimators
# ----------------------------------------------------------------------------------------------
@register("gsb-discrete", array_api=True)
def theorem2(dist, f, n_samples: int, rng, convention: str | None = None, strategy: str = "auto"):
    """Theorem 2 of the paper (eq. 9; eq. 16 for Bernoulli, eq. 17 for Categorical coordinates):
    per-sample estimates of ``d E[f(z)] / d theta`` (see the module docstring for the forms).

    ``dist``: :class:`Bernoulli`, :class:`BernoulliLogits`, :class:`Categorical`,
    :class:`CategoricalLogits` or :class:`CliqueDistribution`; ``convention``: for Categorical
    probabilities and cliques ``"reference-last"`` (default, eq. 17 / eq. 9) or ``"free"``;
    ``strategy``: ``"auto"``, ``"affine"`` or ``"naive"`` (how the flipped values of ``f`` are
    computed: :mod:`gsbref.estimators._flips`).  Returns ``{parameter name: (n_samples, ...)}``.
    Unbiased for every ``f`` that is finite on the support.
    """
    n = _check_n(n_samples)
    z = dist.sample(as_generator(rng), n)
    return theorem2_at(dist, f, z, convention=convention, strategy=strategy)


def theorem2_cliques(tables, f, n_samples: int, rng, convention: str | None = None, strategy: str = "auto"):
    """Eq. 9 for a distribution over disjoint cliques: ``tables`` is a :class:`CliqueDistribution`
    or the ``(indices, table)`` pairs that build one.  Returns ``{"clique<i>": (n_samples, ...)}``
    (``"reference-last"``: ``(n_samples, n_c - 1)``; ``"free"``: ``(n_samples, *table_shape)``).

    >>> cd = CliqueDistribution([((0, 1), [[0.4, 0.1], [0.2, 0.3]])])
    >>> est = theorem2_cliques(cd, "z[0] * z[1]", 2000, rng=0)
    >>> est["clique0"].shape, est["clique0"][0].tolist()        # f(s) - f(1, 1) for s = 00, 01, 10
    ((2000, 3), [-1.0, -1.0, -1.0])
    """
    dist = tables if isinstance(tables, CliqueDistribution) else CliqueDistribution(tables)
    return theorem2(dist, f, n_samples, rng, convention=convention, strategy=strategy)


def theorem2_at(dist, f, z, convention: str | None = None, strategy: str = "auto") -> dict[str, np.ndarray]:
    """The per-sample theorem-2 estimates at given samples ``z`` (shape ``(S, *event_shape)``):
    what :func:`theorem2` returns after drawing ``z``.  Exposed so that the estimator's exact
    expectation can be computed by enumeration (:func:`theorem2_expectation`)."""
    f = _as_function(f)
    if isinstance(dist, CliqueDistribution):
        return _cliques_at(dist, f, z, convention, strategy)
    if not isinstance(dist, (Bernoulli, Categorical)):
        raise TypeError(
            f"theorem 2 applies to discrete families with independent coordinates or cliques "
            f"(Bernoulli, Categorical, CliqueDistribution); got {type(dist).__name__}"
        )
    logits = isinstance(dist, (BernoulliLogits, CategoricalLogits))
    bern = isinstance(dist, Bernoulli)
    if bern and convention is not None:
        raise ValueError(
            f"{type(dist).__name__} has one parameter per coordinate and takes no convention, got {convention!r}"
        )
    if not bern:
        convention = "free" if logits and convention is None else convention or "reference-last"
        dist._check_convention(convention)
    zc = dist._check_values(z)
    xp = namespace(zc)
    zc = zc.astype(np.intp) if is_numpy(xp) else xp.astype(zc, xp.int64)
    ev = dist.event_shape
    if zc.ndim != 1 + len(ev):
        raise ValueError(f"z must have shape {('S', *ev)}, got {tuple(zc.shape)}")
    S = zc.shape[0]
    d = dist.event_size
    zi = xp.reshape(zc, (S, d))
    K = 2 if bern else dist.num_categories
    table = _value_table(f, zi, K, strategy)  # (S, d, K): f with z_j = k
    if bern:
        name = dist.parameters[0].name
        g = table[..., 1] - table[..., 0]
        if logits:
            p = xp.reshape(xp.broadcast_to(asarray(dist.probs, xp), ev), (d,))
            g = g * (p * (1.0 - p))
        return {name: dist._reduce_to_param(name, xp.reshape(g, (S, *ev)), 1)}
    if logits:
        p = xp.reshape(asarray(dist.probs, xp), (d, K))
        g = p * (table - xp.sum(table * p, axis=-1, keepdims=True))
        return {"logits": xp.reshape(g, (S, *ev, K))}
    if convention == "free":
        return {"probs": xp.reshape(table, (S, *ev, K))}
    return {"probs": xp.reshape(table[..., :-1] - table[..., -1:], (S, *ev, K - 1))}


def _value_table(f, zi: np.ndarray, K: int, strategy: str) -> np.ndarray:
    """``T[s, j, k] = f(z_s with coordinate j set to k)`` for integer samples ``zi`` ``(S, d)``:
    ``d (K - 1)`` flips per sample plus ``f(z_s)`` itself (which fills ``T[s, j, z_sj]``)."""
    xp = namespace(zi)
    if not is_numpy(xp):
        return _value_table_xp(xp, f, zi, K, strategy)
    S, d = zi.shape
    z = zi.astype(float)
    alt = (zi[:, :, None] + np.arange(1, K)) % K  # (S, d, K-1): every other value of z_j
    flips = flipped_values(f, z, np.arange(d)[:, None], alt[..., None].astype(float), strategy)
    base = base_values(f, z, strategy)
    table = np.empty((S, d, K))
    np.put_along_axis(table, alt, flips, axis=-1)
    np.put_along_axis(table, zi[:, :, None], np.broadcast_to(base[:, None, None], (S, d, 1)), axis=-1)
    return table


def _value_table_xp(xp, f, zi, K, strategy):
    """:func:`_value_table` for any namespace: the flips are gathered by ``take_along_axis``
    (flip ``a`` of coordinate ``j`` holds the value ``(z_sj + 1 + a) mod K``, so value ``k != z_sj``
    is flip ``(k - z_sj - 1) mod K``) instead of scattered."""
    S, d = zi.shape
    z = xp.astype(zi, xp.float64)
    alt = (zi[:, :, None] + xp.arange(1, K, dtype=zi.dtype)) % K  # (S, d, K-1)
    flips = flipped_values(f, z, np.arange(d)[:, None], xp.astype(alt, xp.float64)[..., None], strategy)
    base = base_values(f, z, strategy)
    pos = (xp.arange(K, dtype=zi.dtype) - zi[:, :, None] - 1) % K  # (S, d, K); K - 1 at k == z_sj
    own = pos == K - 1
    table = xp.take_along_axis(flips, xp.where(own, 0, pos), axis=-1)
    return xp.where(own, base[:, None, None], table)


def _cliques_at(dist: CliqueDistribution, f, z, convention, strategy):
    convention = _check_clique_convention(convention or "reference-last")
    zi = dist._check_values(z)
    if zi.ndim != 2:
        raise ValueError(f"z must have shape (S, {dist.event_size}), got {zi.shape}")
    S = zi.shape[0]
    z = zi.astype(float)
    out: dict[str, np.ndarray] = {}
    # cliques with the same table shape are one batch: every state of each clique is a flip
    by_shape: dict[tuple, list[int]] = {}
    for c, (_, t) in enumerate(dist.cliques):
        by_shape.setdefault(t.shape, []).append(c)
    for shape, members in by_shape.items():
        idx = np.array([dist.cliques[c][0] for c in members])  # (G, m)
        states = np.stack(np.unravel_index(np.arange(math.prod(shape)), shape), axis=-1).astype(float)
        F = flipped_values(f, z, idx, states[None, None], strategy)  # (S, G, n_c)
        for g, c in enumerate(members):
            name = dist.parameters[c].name
            if convention == "free":
                out[name] = F[:, g].reshape(S, *shape)
            else:
                out[name] = F[:, g, :-1] - F[:, g, -1:]
    return {p.name: out[p.name] for p in dist.parameters}


# ----------------------------------------------------------------------------------------------
# Exact expectations by enumeration
# ----------------------------------------------------------------------------------------------
def enumerate_states(dist, limit: int = MAX_ENUMERATED_STATES) -> tuple[np.ndarray, np.ndarray]:
    """Every state ``z`` of a Bernoulli / Categorical / CliqueDistribution and its probability:
    ``(Z of shape (N, *event_shape), p of shape (N,))``, ``N = prod_j K_j <= limit``.

    >>> Z, p = enumerate_states(CliqueDistribution([((0,), [0.25, 0.75])]))
    >>> Z.tolist(), p.tolist()
    ([[0.0], [1.0]], [0.25, 0.75])
    """
    if isinstance(dist, CliqueDistribution):
        sizes = dist.num_values
    elif isinstance(dist, Bernoulli):
        sizes = (2,) * dist.event_size
    elif isinstance(dist, Categorical):
        sizes = (dist.num_categories,) * dist.event_size
    else:
        raise TypeError(f"cannot enumerate the states of {type(dist).__name__}")
    N = math.prod(sizes)
    if N > limit:
        raise ValueError(f"{N} states exceed the enumeration limit {limit}")
    Z = np.array(list(itertools.product(*(range(k) for k in sizes))), dtype=float).reshape(N, *dist.event_shape)
    xp = getattr(dist, "xp", None)
    if xp is not None and not is_numpy(xp):
        Z = asarray(Z, xp)
        return Z, xp.exp(dist.log_prob(Z))
    return Z, np.exp(dist.log_prob(Z))


def theorem2_expectation(dist, f, convention: str | None = None, strategy: str = "auto",
                         limit: int = MAX_ENUMERATED_STATES) -> dict[str, np.ndarray]:
    """``sum_z p(z) estimate(z)``: the exact expectation of :func:`theorem2`'s per-sample estimate,
    by enumeration of every state (no Monte Carlo).  Theorem 2 says it equals the exact gradient;
    compare with :func:`gsbref.oracle.gradient`.

    Rounding: each state's estimate carries the rounding of a few evaluations of ``f``; the sum over
    states is pairwise (error ``O(log N eps)`` relative to ``max |estimate|``).
    """
    Z, p = enumerate_states(dist, limit)
    est = theorem2_at(dist, f, Z, convention=convention, strategy=strategy)
    out = {}
    xp = namespace(p)
    if not is_numpy(xp):
        for name, e in est.items():
            w = xp.reshape(xp.reshape(p, (-1,) + (1,) * (e.ndim - 1)) * e, (p.shape[0], -1))
            out[name] = xp.reshape(xp.sum(xp.permute_dims(w, (1, 0)), axis=-1), e.shape[1:])
        return out
    for name, e in est.items():
        w = (p.reshape((-1,) + (1,) * (e.ndim - 1)) * e).reshape(len(p), -1)
        # numpy sums pairwise along a contiguous last axis
        out[name] = np.ascontiguousarray(w.T).sum(axis=-1).reshape(e.shape[1:])[()]
    return out
