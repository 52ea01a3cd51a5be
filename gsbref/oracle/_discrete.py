"""Exact E[f] and gradients for Bernoulli and Categorical families by enumeration.

Every state ``z`` of the ``K^d`` possible ones is visited once: ``E[f] = sum_z f(z) prod_j p_j(z_j)``.
Gradients contract the table of ``f`` values with each coordinate's probability table on every axis
but one, and with that coordinate's table derivative on the remaining axis (``"enumerate"``); the
``"diff"`` method differentiates ``E[f]`` itself numerically (``E`` is a polynomial in the
probabilities, so the central difference is exact up to rounding at doubled precision).

Conventions (the gradient key is the distribution's parameter name):

* ``Bernoulli(probs)``: ``d/dpi_j``;  ``from_logits``: ``d/dlogit_j``.
* ``Categorical(probs)``: ``convention="reference-last"`` (the paper's eq. 17, default) -- the last
  category is the reference, ``pi_K = 1 - sum_{k<K} pi_k``, gradient shape ``(..., K-1)``;
  ``convention="free"`` -- every ``pi_k`` a free variable, shape ``(..., K)``.
  ``from_logits``: ``d/dlogit_k`` (softmax), shape ``(..., K)``.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
from mpmath import mp

from ._factorized import central_difference

__all__ = ["discrete_moments", "MAX_STATES_MP", "MAX_STATES_FLOAT"]

MAX_STATES_MP = 2**12
MAX_STATES_FLOAT = 2**20


def _is_logits(dist):
    return "logits" in dist.params


def _coordinate_params(dist):
    """Per flat coordinate, the parameter vector (floats) that defines its table."""
    name = "logits" if _is_logits(dist) else "probs"
    arr = np.asarray(dist.params[name], dtype=float)
    if type(dist).__name__.startswith("Bernoulli"):
        arr = np.broadcast_to(arr, dist.event_shape).reshape(-1, 1)
    else:
        arr = np.broadcast_to(arr, (*dist.event_shape, arr.shape[-1])).reshape(-1, arr.shape[-1])
    return name, arr


def _table(kind, theta):
    """Probability table of one coordinate from its (mp) parameter vector."""
    if kind == "bernoulli-probs":
        p = theta[0]
        return [1 - p, p]
    if kind == "bernoulli-logits":
        p = 1 / (1 + mpmath.exp(-theta[0]))
        return [1 - p, p]
    if kind == "categorical-probs":
        return list(theta)
    m = max(theta)
    e = [mpmath.exp(t - m) for t in theta]
    s = mpmath.fsum(e)
    return [x / s for x in e]


def _dtables(kind, theta, convention):
    """Derivatives of the table w.r.t. each free parameter component: list of tables."""
    tab = _table(kind, theta)
    K = len(tab)
    if kind == "bernoulli-probs":
        return [[-mp.one, mp.one]]
    if kind == "bernoulli-logits":
        s = tab[1] * tab[0]
        return [[-s, s]]
    if kind == "categorical-probs":
        if convention == "free":
            return [[mp.one if m == k else mp.zero for m in range(K)] for k in range(K)]
        out = []
        for k in range(K - 1):
            row = [mp.zero] * K
            row[k] = mp.one
            row[K - 1] = -mp.one
            out.append(row)
        return out
    return [[tab[m] * ((1 if m == k else 0) - tab[k]) for m in range(K)] for k in range(K)]


def _kind(dist):
    fam = "bernoulli" if type(dist).__name__.startswith("Bernoulli") else "categorical"
    return f"{fam}-{'logits' if _is_logits(dist) else 'probs'}"


def _f_table(dist, f, K, d, mp_mode):
    states = itertools.product(range(K), repeat=d)
    if mp_mode:
        vals = np.empty((K,) * d, dtype=object)
        for st in states:
            vals[st] = f.mp([mpmath.mpf(s) for s in st])
        return vals
    grid = np.array(list(states), dtype=float).reshape(-1, d)
    return np.asarray(f(grid), dtype=float).reshape((K,) * d)


def _contract(F, tabs, keep=None):
    """Contract every axis ``i`` of the table ``F`` with ``tabs[i]`` except axis ``keep``
    (last axis first, so the remaining axis numbers stay valid)."""
    out = F
    for i in reversed(range(F.ndim)):
        if i != keep:
            out = np.moveaxis(out, i, -1) @ np.array(tabs[i], dtype=out.dtype)
    return out


def discrete_moments(dist, f, method, convention, mp_mode=True):
    name, params = _coordinate_params(dist)
    kind = _kind(dist)
    d = params.shape[0]
    K = 2 if kind.startswith("bernoulli") else params.shape[1]
    limit = MAX_STATES_MP if mp_mode else MAX_STATES_FLOAT
    if K**d > limit:
        raise ValueError(
            f"{type(dist).__name__}: exact enumeration visits K^d = {K}^{d} states, more than the "
            f"limit of {limit} at {'mpmath' if mp_mode else 'float64'} precision"
        )
    conv = convention if kind == "categorical-probs" else None
    conv_num = (lambda x: mpmath.mpf(float(x))) if mp_mode else float
    thetas = [[conv_num(x) for x in row] for row in params]
    Ftab = _f_table(dist, f, K, d, mp_mode)
    if not mp_mode:
        Ftab = Ftab.astype(float)

    def tables_of(ths):
        if mp_mode:
            return [_table(kind, t) for t in ths]
        return [[float(x) for x in _table(kind, [mpmath.mpf(v) for v in t])] for t in ths]

    def expectation(tabs):
        out = _contract(Ftab, tabs)
        return out[()] if isinstance(out, np.ndarray) else out

    tabs = tables_of(thetas)
    E = expectation(tabs)
    n_comp = len(_dtables(kind, [mpmath.mpf(float(x)) for x in params[0]], conv))
    grads = np.empty((d, n_comp), dtype=object if mp_mode else float)
    if method == "enumerate":
        for j in range(d):
            # marginal of f over all other coordinates: vector over the K values of z_j
            marg = _contract(Ftab, tabs, keep=j)
            th = [mpmath.mpf(float(x)) for x in params[j]] if not mp_mode else thetas[j]
            for c, dt in enumerate(_dtables(kind, th, conv)):
                if mp_mode:
                    grads[j, c] = mpmath.fsum(m * x for m, x in zip(marg, dt))
                else:
                    grads[j, c] = float(np.dot(marg, np.array([float(x) for x in dt])))
    elif method == "diff":
        if not mp_mode:
            raise ValueError("method='diff' needs mpmath precision (dps)")
        for j in range(d):
            for c in range(n_comp):
                def F(t, j=j, c=c):
                    ths = [list(r) for r in thetas]
                    if kind == "categorical-probs" and conv != "free":
                        ths[j][c] = thetas[j][c] + t
                        ths[j][K - 1] = thetas[j][K - 1] - t
                    else:
                        ths[j][c] = thetas[j][c] + t
                    return expectation(tables_of(ths)), mp.zero
                grads[j, c], _ = central_difference(F, mp.zero)
    else:
        raise ValueError(f"unknown method {method!r} for {type(dist).__name__}")
    shape = dist.event_shape
    g = grads[:, 0].reshape(shape) if kind.startswith("bernoulli") else grads.reshape(*shape, n_comp)
    # enumeration is exact: the only error is rounding, a few units in the last place per term
    eps = mpmath.mpf(2) ** (-mp.prec) if mp_mode else np.finfo(float).eps
    scale = float(np.max(np.abs(np.asarray(Ftab, dtype=float)))) if Ftab.size else 0.0
    E_err = eps * K**d * max(scale, 1.0)
    g_err = np.full(g.shape, E_err, dtype=object if mp_mode else float)
    return E, E_err, {name: g}, {name: g_err}, conv
