"""``method="score"``: the score-function (likelihood-ratio, REINFORCE) estimator.

``d/dtheta E[f(z)] = E[f(z) d log p_theta(z) / dtheta]`` (the log-derivative identity; Williams 1992
for REINFORCE, Glynn 1990 for the likelihood ratio).  It is the baseline the paper compares its rules
with (Section 5): it needs ``f`` only through its values and any family with a density (or mass
function) whose score ``dist.score`` is implemented.

Baselines (control variates).  Because ``E[score] = 0``, subtracting a baseline ``b`` that is
independent of the sample it multiplies keeps every per-sample estimate unbiased:
``(f(z_s) - b_s) score(z_s)``.

* ``baseline=None``: no baseline;
* a number ``c``: ``b_s = c`` (e.g. a running average from a previous step);
* ``"loo"``: leave-one-out, ``b_s = mean of f(z_r) over r != s`` (Kool et al. 2019, "Buy 4 REINFORCE
  samples, get a baseline for free"): independent of ``z_s``, so still unbiased; needs ``S >= 2``.
  The per-sample estimates are then no longer independent of each other (each baseline uses the
  others' ``f``): their sample mean is unbiased, and ``Estimate.stderr`` (which assumes
  independence) is accurate to ``O(1/S)`` relatively -- the correlation between two estimates is
  ``O(1/S)``.

Requirements: ``E|f(z) score(z)|`` finite; ``f`` need not be differentiable or even continuous.
Families without a density (``Dirac``) raise :class:`~gsbref.distributions.dirac.NoDensityError`.
For ``Categorical(probs)`` the gradient follows ``dist.score``'s convention (default
``"reference-last"``, the paper's eq. 17: shape ``(S, *shape, K - 1)``; ``convention="free"`` gives
``(S, *shape, K)``), matching :func:`gsbref.oracle.gradient`.

Array backends: the estimator runs on the namespace of the distribution's parameters
(:mod:`gsbref._backend`); ``f`` is evaluated on the host (NumPy) until the functions layer is
array-API generic, everything else (sampling, score, products) in the namespace.
:func:`score_at` gives the per-sample estimates at given samples.

>>> import gsbref
>>> from gsbref.estimators import estimate
>>> est = estimate(gsbref.Bernoulli(probs=0.3), "sum((z - 0.499)**2)", "score", 1000, 0)
>>> est["probs"].samples.shape
(1000,)
"""

from __future__ import annotations

import numbers

import numpy as np

from .._backend import call_host, generator, is_numpy, namespace
from ..distributions.categorical import Categorical, CategoricalLogits
from ..distributions.dirac import Dirac, NoDensityError
from ._base import register
from .resummed import _sample_fast

__all__ = ["score_function", "score_at"]

#: samples x coordinates processed at once
_BLOCK = 2**15


def _baseline(fz: np.ndarray, baseline, xp) -> np.ndarray:
    n = fz.shape[0]
    if baseline is None:
        return xp.zeros((), dtype=xp.float64)
    if isinstance(baseline, str):
        if baseline != "loo":
            raise ValueError(f"score: baseline must be None, a number or 'loo', got {baseline!r}")
        if n < 2:
            raise ValueError("score: the leave-one-out baseline needs n_samples >= 2")
        return (xp.sum(fz) - fz) / (n - 1)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        c = float(baseline)
        if not np.isfinite(c):
            raise ValueError(f"score: a constant baseline must be finite, got {baseline!r}")
        return xp.asarray(c, dtype=xp.float64)
    raise ValueError(f"score: baseline must be None, a number or 'loo', got {baseline!r}")


def _check_dist(dist, convention):
    if isinstance(dist, Dirac):
        raise NoDensityError(
            "score: the score-function estimator needs a density, and Dirac (a point mass) has none; "
            "its gradient is f'(loc) (eq. 15), e.g. oracle.gradient or method 'gsb'"
        )
    is_cat = isinstance(dist, Categorical) and not isinstance(dist, CategoricalLogits)
    if convention is not None and not is_cat:
        raise ValueError(f"score: convention= applies to Categorical(probs) only, not {type(dist).__name__}")
    return is_cat


@register("score", array_api=True)
def score_function(dist, f, n_samples, rng, *, baseline=None, convention=None):
    """Per-sample score-function estimates ``(f(z_s) - b_s) d log p(z_s) / dtheta``.

    Approximates ``dE[f(z)] / dtheta`` for every distribution with a density or mass function, with
    ``z_s`` drawn from ``dist`` and ``dist.score``; ``baseline`` as in the module docstring.
    Unbiased for every ``f`` with ``E|f score|`` finite; the variance grows with ``Var f`` (summed
    over all coordinates: a coordinate's estimate carries the noise of the whole ``f``).
    ``convention`` applies to ``Categorical(probs)`` only.  Returns
    ``{name: (n_samples, *param_shape)}`` (Categorical reference-last: last axis ``K - 1``), in the
    namespace of the distribution's parameters.
    """
    _check_dist(dist, convention)
    n = n_samples
    xp = getattr(dist, "xp", None)  # None: a NumPy-only distribution (CliqueDistribution)
    if xp is None or is_numpy(xp):
        # the same draws as dist.sample (scalar-parameter NumPy samplers where they apply: faster)
        zf = _sample_fast(dist, rng, n)
        xp = np
    else:
        zf = xp.reshape(dist.sample(generator(xp, rng), n), (n, dist.event_size))
    return _score_at(dist, f, zf, baseline, convention, xp)


def score_at(dist, f, z, baseline=None, convention=None) -> dict:
    """The per-sample score-function estimates at given samples ``z`` (shape
    ``(S, *event_shape)``): what :func:`score_function` returns after drawing ``z``.  The result
    is in the namespace of ``z`` (the distribution's, if ``z`` is host data).

    >>> import gsbref
    >>> g = gsbref.Gaussian(loc=0.0, scale=1.0)
    >>> score_at(g, "sum(z)", np.array([0.5, -1.0]))["loc"].tolist()      # f(z) (z - loc) / scale**2
    [0.25, 1.0]
    """
    from ..functions import as_function

    _check_dist(dist, convention)
    z = dist._check_z(z) if hasattr(dist, "_check_z") else np.asarray(z, dtype=float)
    S = z.shape[0]
    if z.ndim != 1 + len(dist.event_shape):
        raise ValueError(f"z must have shape {('S', *dist.event_shape)}, got {tuple(z.shape)}")
    return _score_at(dist, as_function(f), namespace(z).reshape(z, (S, dist.event_size)), baseline, convention)


def _score_at(dist, f, zf, baseline, convention, xp=None):
    is_cat = _check_dist(dist, convention)
    xp = namespace(zf) if xp is None else xp
    n = zf.shape[0]
    z = xp.reshape(zf, (n, *dist.event_shape))
    rows = max(1, _BLOCK // max(1, zf.shape[1]))
    blocks = [slice(s0, min(n, s0 + rows)) for s0 in range(0, n, rows)]
    # blocks of samples keep the temporaries of f and of the score in cache
    fz = xp.empty((n,), dtype=xp.float64)
    for blk in blocks:
        # f runs on the host for non-NumPy namespaces (phase 1 of the array-API backends)
        fz[blk] = xp.reshape(call_host(f, zf[blk, ...], xp=xp, dtype=float), (-1,))
    w = fz - _baseline(fz, baseline, xp)
    out = None
    for blk in blocks:
        s = dist.score(z[blk, ...], convention=convention or "reference-last") if is_cat else dist.score(z[blk, ...])
        if out is None:
            out = {k: xp.empty((n, *v.shape[1:]), dtype=xp.float64) for k, v in s.items()}
        for k, v in s.items():
            v = xp.asarray(v, dtype=xp.float64)
            out[k][blk, ...] = xp.reshape(w[blk], (-1,) + (1,) * (v.ndim - 1)) * v
    return out
