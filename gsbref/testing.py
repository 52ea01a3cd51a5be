"""Calibrated assertions for gradient estimators, in the spirit of ``numpy.testing``.

An *estimator* here is any callable ``estimator(dist, f, n_samples, rng) -> {name: per-sample
array (n_samples, *shape)}`` -- one of gsbref's (``lambda d, f, n, r: {k: e.samples for k, e in
gsbref.estimators.estimate(d, f, "score", n, r).items()}``) or a wrapper around another library's.

The statistical test
--------------------
:func:`assert_unbiased` compares the sample mean of every gradient component with the oracle's
exact value.  Per-sample estimates can be heavy-tailed (the score function at small Gamma shapes),
so the test does not use the per-sample standard deviation directly: the samples are split into
``B`` consecutive batches, and the batch means -- each an average of ``n / B`` independent
estimates, hence close to normal by the central limit theorem whenever the variance is finite --
enter a Student-t test with ``B - 1`` degrees of freedom.  The t statistic is exact for normal
batch means, and its level is robust to moderate non-normality, which a plain z-test on a
heavy-tailed sample is not.  The components are combined with Bonferroni's correction, so the
probability that a correct estimator fails is at most ``false_alarm`` (for finite variance and
batches large enough for the central limit theorem; with infinite variance no test on sample
means is calibrated, and the variance check of the verification suite reports it).

>>> import numpy as np, gsbref
>>> from gsbref.estimators import estimate
>>> est = lambda d, f, n, r: {k: e.samples for k, e in estimate(d, f, "score", n, r).items()}
>>> r = assert_unbiased(est, gsbref.Gamma(2.0, 0.5), "sum((z - 0.49)**2)", n_samples=60_000, rng=0)
>>> bool(r.max_abs_t < r.critical)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import mpmath
import numpy as np
from scipy import special, stats

__all__ = ["UnbiasednessResult", "assert_unbiased", "batch_means_test", "holm", "required_samples",
           "assert_close_to_truth", "power", "exact_gradient", "gauss_rule", "gauss_points"]

DEFAULT_BATCHES = 30


def exact_gradient(dist, f, dps: int | None = 20, **kwargs) -> dict[str, np.ndarray]:
    """The oracle's gradient as float64 arrays (``{name: array with the estimate's shape}``)."""
    from . import oracle

    g = oracle.gradient(dist, f, dps=dps, **kwargs)
    return {k: np.asarray(v, dtype=float) for k, v in g.to_float().items()}


@dataclass(frozen=True)
class UnbiasednessResult:
    """Outcome of :func:`assert_unbiased` (also attached to the AssertionError it raises)."""

    estimate: dict
    truth: dict
    t: dict  # t statistics per component
    n_samples: int
    batches: int
    critical: float
    false_alarm: float

    @property
    def max_abs_t(self) -> float:
        return max(float(np.max(np.abs(v))) if np.size(v) else 0.0 for v in self.t.values())

    @property
    def passed(self) -> bool:
        return self.max_abs_t <= self.critical

    @property
    def components(self) -> int:
        """Number of scalar comparisons (gradient components) in the test."""
        return sum(max(1, int(np.size(v))) for v in self.t.values())

    @property
    def p_values(self) -> dict:
        """Two-sided p-value of every component's t statistic (Student t, ``batches - 1`` degrees
        of freedom), unadjusted: ``{name: array with the parameter's shape}``."""
        return {k: 2.0 * stats.t.sf(np.abs(np.asarray(v, dtype=float)), self.batches - 1) for k, v in self.t.items()}

    @property
    def p_value(self) -> float:
        """The test's p-value over all components (Bonferroni: ``min(1, components * min p)``);
        the test fails exactly when this is below ``false_alarm`` (up to rounding of ``critical``)."""
        pmin = min((float(np.min(v)) for v in self.p_values.values() if np.size(v)), default=1.0)
        return min(1.0, self.components * pmin)

    def report(self) -> str:
        lines = [f"n = {self.n_samples} samples in {self.batches} batches; two-sided t critical value "
                 f"{self.critical:.3f} (false-alarm {self.false_alarm:g}, Bonferroni over components)"]
        for k in self.t:
            est, tru, t = (np.atleast_1d(x).reshape(-1) for x in (self.estimate[k], self.truth[k], self.t[k]))
            order = np.argsort(-np.abs(t))
            for i in order[: min(5, t.size)]:
                flag = "FAIL" if abs(t[i]) > self.critical else "ok"
                lines.append(f"  d/d{k}[{i}]: estimate {est[i]:.8g}, truth {tru[i]:.8g}, t = {t[i]:+.2f}  {flag}")
        return "\n".join(lines)


def _batch_t(samples: np.ndarray, truth: np.ndarray, batches: int, se_floor: np.ndarray | float = 0.0,
             allowance: np.ndarray | float = 0.0):
    n = samples.shape[0]
    m = n // batches
    used = samples[: m * batches].reshape(batches, m, *samples.shape[1:])
    bm = used.mean(axis=1)
    mean = bm.mean(axis=0)
    se = np.maximum(bm.std(axis=0, ddof=1) / np.sqrt(batches), se_floor)
    diff = mean - truth
    if np.any(np.asarray(allowance) > 0):
        diff = np.sign(diff) * np.maximum(np.abs(diff) - allowance, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.inf))
    return samples.mean(axis=0), t, se


def _critical(false_alarm: float, components: int, batches: int) -> float:
    return float(stats.t.ppf(1 - false_alarm / (2 * components), batches - 1))


def _run(estimator: Callable, dist, f, n_samples: int, rng: Any):
    from .distributions._base import as_generator

    out = estimator(dist, f, n_samples, as_generator(rng))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def batch_means_test(samples: dict, truth: dict, *, false_alarm: float = 1e-6, batches: int = DEFAULT_BATCHES,
                     se_floor_rtol: float = 0.0, allowance: dict | None = None) -> UnbiasednessResult:
    """The batch-means t-test of :func:`assert_unbiased` on per-sample estimates already drawn.

    ``samples``: ``{name: (n, *shape)}``; ``truth``: ``{name: array of that shape}`` (the value the
    estimator is supposed to estimate -- the exact gradient, or a known biased target).  Returns the
    :class:`UnbiasednessResult` (``.passed``, ``.p_values``, ``.p_value``) without raising; raises
    ``AssertionError`` only for malformed samples (wrong parameters or shapes, non-finite values).

    ``se_floor_rtol``: a component's standard error is taken as at least ``se_floor_rtol`` times
    the magnitude of the problem -- the largest ``|truth|`` or mean ``|samples|`` over all components
    of all parameters (float rounding in an estimator is relative to the magnitudes it computes
    with, not to a component that happens to vanish).  For deterministic estimators (zero variance,
    e.g. the Dirac rule) the test then becomes a relative-precision check at that level instead of
    demanding bit-equality (0 keeps the plain t-test).  ``allowance``: ``{name: array}``, a known bound on a
    bias that is accepted (e.g. a quadrature error bounded separately); the deviation is shrunk
    towards 0 by it before the t statistic is formed.

    >>> rng = np.random.default_rng(0)
    >>> r = batch_means_test({"a": 1.0 + rng.standard_normal((3000, 2))}, {"a": np.ones(2)})
    >>> r.passed, r.components, bool(0 < r.p_value <= 1)
    (True, 2, True)
    """
    if not (0 < false_alarm < 1):
        raise ValueError(f"false_alarm must lie in (0, 1), got {false_alarm!r}")
    if not (se_floor_rtol >= 0):
        raise ValueError(f"se_floor_rtol must be >= 0, got {se_floor_rtol!r}")
    samples = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
    if set(samples) != set(truth):
        raise AssertionError(f"estimator returned parameters {sorted(samples)}, expected {sorted(truth)}")
    n_samples = min(s.shape[0] for s in samples.values())
    if batches < 2 or n_samples < 2 * batches:
        raise ValueError(f"need batches >= 2 and n_samples >= 2 * batches, got {batches} and {n_samples}")
    est, tt = {}, {}
    comps = 0
    for k, s in samples.items():
        tr = np.asarray(truth[k], dtype=float)
        if s.shape[1:] != tr.shape:
            raise AssertionError(f"d/d{k}: per-sample shape {s.shape[1:]} differs from the truth's {tr.shape}")
        if not np.all(np.isfinite(s)):
            bad = int(np.sum(~np.isfinite(s)))
            raise AssertionError(f"d/d{k}: {bad} non-finite per-sample estimates out of {s.size}")
    magnitude = max(max(float(np.max(np.abs(np.asarray(truth[k], float)), initial=0.0)),
                        float(np.max(np.abs(s).mean(axis=0), initial=0.0))) for k, s in samples.items())
    for k, s in samples.items():
        tr = np.asarray(truth[k], dtype=float)
        floor = se_floor_rtol * magnitude
        allow = 0.0 if allowance is None else np.asarray(allowance.get(k, 0.0), dtype=float)
        est[k], tt[k], _ = _batch_t(s, tr, batches, floor, allow)
        comps += max(1, tr.size)
    crit = _critical(false_alarm, comps, batches)
    return UnbiasednessResult(est, {k: np.asarray(v, float) for k, v in truth.items()}, tt, n_samples, batches,
                              crit, false_alarm)


def assert_unbiased(estimator: Callable, dist, f, *, n_samples: int, rng: Any, false_alarm: float = 1e-6,
                    truth: dict | None = None, batches: int = DEFAULT_BATCHES, dps: int | None = 20,
                    oracle_kwargs: dict | None = None) -> UnbiasednessResult:
    """Assert that ``estimator``'s mean agrees with the exact gradient (batch-means t-test).

    Raises ``AssertionError`` with the estimate, the truth, the t statistic and the sample count of
    the worst components; returns an :class:`UnbiasednessResult` otherwise.  ``truth`` defaults to
    the oracle's gradient (``dps`` digits); ``false_alarm`` is the probability, for a correct
    estimator with finite variance, that the assertion fails (all components together).
    """
    if not (0 < false_alarm < 1):
        raise ValueError(f"false_alarm must lie in (0, 1), got {false_alarm!r}")
    if batches < 2 or n_samples < 2 * batches:
        raise ValueError(f"need batches >= 2 and n_samples >= 2 * batches, got {batches} and {n_samples}")
    if truth is None:
        truth = exact_gradient(dist, f, dps=dps, **(oracle_kwargs or {}))
    samples = _run(estimator, dist, f, n_samples, rng)
    res = batch_means_test(samples, truth, false_alarm=false_alarm, batches=batches)
    if not res.passed:
        err = AssertionError("estimator is biased (or its variance is infinite):\n" + res.report())
        err.result = res
        raise err
    return res


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as the input).

    Rejecting every hypothesis whose adjusted p-value is ``<= alpha`` controls the family-wise
    error rate at ``alpha`` under any dependence between the tests; it rejects everything
    Bonferroni rejects, and possibly more.

    >>> holm([0.01, 0.04, 0.03]).tolist()     # sorted: 0.01*3, max(0.03*2, 0.03), max(0.04, 0.06)
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float).reshape(-1)
    if np.any((p < 0) | (p > 1) | np.isnan(p)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def required_samples(sd, shift, *, false_alarm: float, components: int = 1, batches: int = DEFAULT_BATCHES,
                     detect: float = 0.999) -> int:
    """Samples at which the batch-means test (``false_alarm`` over ``components``) detects a mean
    shift ``shift`` of an estimator with single-sample standard deviation ``sd`` with probability
    at least ``detect`` (normal approximation of the batch means; the t quantiles with
    ``batches - 1`` degrees of freedom account for the estimated standard error).  Where several
    components are given, the most detectable one decides.

    >>> required_samples(1.0, 0.1, false_alarm=1e-3) > required_samples(1.0, 0.2, false_alarm=1e-3)
    True
    """
    sd = np.asarray(sd, dtype=float).reshape(-1)
    shift = np.abs(np.asarray(shift, dtype=float)).reshape(-1)
    crit = _critical(false_alarm, components, batches) + float(stats.t.ppf(detect, batches - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(sd > 0, shift / np.where(sd > 0, sd, 1.0), np.where(shift > 0, np.inf, 0.0))
    best = float(np.max(snr)) if snr.size else 0.0
    if best == 0.0:
        raise ValueError("the shift is zero in every component: no sample size detects it")
    if not np.isfinite(best):
        return 2 * batches
    return max(2 * batches, int(np.ceil((crit / best) ** 2)))


def power(estimator: Callable, dist, f, *, n_samples: int, rng: Any, false_alarm: float = 1e-6,
          batches: int = DEFAULT_BATCHES, detect: float = 0.9, dps: int | None = 20) -> dict[str, np.ndarray]:
    """The smallest relative bias per component that :func:`assert_unbiased` detects with
    probability ``detect`` at this sample size: ``(t_crit + t_detect) * se / |truth|``, with ``se``
    the batch-means standard error measured on one run (``inf`` where the truth is 0)."""
    truth = exact_gradient(dist, f, dps=dps)
    samples = _run(estimator, dist, f, n_samples, rng)
    comps = sum(max(1, np.size(v)) for v in truth.values())
    crit = _critical(false_alarm, comps, batches)
    extra = float(stats.t.ppf(detect, batches - 1))
    out = {}
    for k, s in samples.items():
        _, _, se = _batch_t(s, np.asarray(truth[k], float), batches)
        tr = np.abs(np.asarray(truth[k], float))
        with np.errstate(divide="ignore"):
            out[k] = np.where(tr > 0, (crit + extra) * se / np.where(tr > 0, tr, 1.0), np.inf)
    return out


def assert_close_to_truth(value: Any, dist, f, param: str, rtol: float, *, atol: float = 0.0,
                          dps: int | None = 20, **oracle_kwargs) -> None:
    """Assert that ``value`` (a gradient of ``param``, deterministic) equals the oracle's to
    ``rtol`` (and ``atol``), with a message giving both and the relative error."""
    truth = exact_gradient(dist, f, dps=dps, **oracle_kwargs)
    if param not in truth:
        raise ValueError(f"{dist!r} has no parameter {param!r}; parameters: {sorted(truth)}")
    v = np.asarray(value, dtype=float)
    t = truth[param]
    if v.shape != t.shape:
        raise AssertionError(f"d/d{param}: shape {v.shape} differs from the truth's {t.shape}")
    err = np.abs(v - t)
    ok = err <= atol + rtol * np.abs(t)
    if not np.all(ok):
        i = int(np.argmax(err - rtol * np.abs(t)))
        vf, tf = v.reshape(-1)[i], t.reshape(-1)[i]
        rel = abs(vf - tf) / abs(tf) if tf != 0 else np.inf
        raise AssertionError(f"d/d{param}[{i}]: value {vf:.15g}, truth {tf:.15g}, relative error {rel:.3g} > rtol {rtol:g}")


# ----------------------------------------------------------------------------------------------
# Gauss rules over a distribution: deterministic expectations of per-sample estimates
# ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _jacobi(n: int, a: float, b: float):
    """Gauss-Jacobi (weight (1-x)^a (1+x)^b) at 25 digits: SciPy's roots lose ~1e-13 for b = -0.5."""
    with mpmath.workdps(25):
        X, W = mpmath.gauss_quadrature(n, "jacobi", mpmath.mpf(a), mpmath.mpf(b))
        return np.array([float(x) for x in X]), np.array([float(w) for w in W])


def gauss_rule(dist, j: int, n: int):
    """Gauss nodes and weights (summing to 1) for flat coordinate ``j`` of a factorized
    distribution: Hermite (Gaussian), generalised Laguerre (Gamma, Exponential, ChiSquared),
    Laguerre on each half-line (Laplace: ``2 n`` nodes), Jacobi (Beta).  ``NotImplementedError``
    for other families."""
    name = type(dist).__name__
    th = dist.coordinate(j)
    if name == "Gaussian":
        x, w = np.polynomial.hermite.hermgauss(n)
        return th["loc"] + th["scale"] * math.sqrt(2) * x, w / w.sum()
    if name in ("Gamma", "Exponential", "ChiSquared"):
        k, mu = {"Gamma": lambda: (th["shape"], th["scale"]), "Exponential": lambda: (1.0, th["scale"]),
                 "ChiSquared": lambda: (th["df"] / 2, 2.0)}[name]()
        x, w = special.roots_genlaguerre(n, k - 1)
        return mu * x, w / w.sum()
    if name == "Laplace":
        x, w = special.roots_laguerre(n)
        return (np.concatenate([th["loc"] - th["scale"] * x, th["loc"] + th["scale"] * x]),
                np.concatenate([w, w]) / (2 * w.sum()))
    if name == "Beta":
        x, w = _jacobi(n, float(th["beta"]) - 1, float(th["alpha"]) - 1)
        return (1 + x) / 2, w / w.sum()
    raise NotImplementedError(name)


def gauss_points(dist, n: int):
    """Tensor-product Gauss points ``(z, w)`` over a distribution: ``z`` of shape
    ``(m, *event_shape)``, weights ``w`` summing to 1, ``n`` nodes per coordinate (Dirac: its
    point; MultivariateGaussian: Hermite in whitened coordinates).  ``sum_i w_i r(z_i)`` is then
    the exact expectation of any per-sample quantity ``r`` that is a polynomial of low enough
    degree, and converges fast for smooth ``r``: the deterministic way to check an estimator's
    implementation (no sampling).  ``NotImplementedError`` for families without a rule.

    >>> import gsbref
    >>> z, w = gauss_points(gsbref.Gamma(2.0, 0.5), 8)
    >>> bool(abs(w @ z - 1.0) < 1e-14), bool(abs(w @ z**2 - 1.5) < 1e-14)   # mean k mu, E z^2
    (True, True)
    """
    name = type(dist).__name__
    if name == "Dirac":
        return np.asarray(dist.params["loc"], float)[None], np.ones(1)
    if name == "MultivariateGaussian":
        d = dist.dim
        x, w = np.polynomial.hermite.hermgauss(n)
        grids = np.meshgrid(*([x] * d), indexing="ij")
        u = math.sqrt(2) * np.stack([g.reshape(-1) for g in grids], -1)
        W = np.prod(np.stack(np.meshgrid(*([w] * d), indexing="ij"), -1).reshape(-1, d), -1) / math.pi ** (d / 2)
        return dist.loc + u @ np.linalg.cholesky(dist.cov).T, W
    d = dist.event_size
    rules = [gauss_rule(dist, j, n) for j in range(d)]
    grids = np.meshgrid(*[r[0] for r in rules], indexing="ij")
    wgrids = np.meshgrid(*[r[1] for r in rules], indexing="ij")
    z = np.stack([g.reshape(-1) for g in grids], axis=-1)
    w = np.prod(np.stack([g.reshape(-1) for g in wgrids], axis=-1), axis=-1)
    return z.reshape((-1,) + dist.event_shape), w
