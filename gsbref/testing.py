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

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats

__all__ = ["UnbiasednessResult", "assert_unbiased", "assert_close_to_truth", "power", "exact_gradient"]

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


def _batch_t(samples: np.ndarray, truth: np.ndarray, batches: int):
    n = samples.shape[0]
    m = n // batches
    used = samples[: m * batches].reshape(batches, m, *samples.shape[1:])
    bm = used.mean(axis=1)
    mean = bm.mean(axis=0)
    se = bm.std(axis=0, ddof=1) / np.sqrt(batches)
    diff = mean - truth
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.inf))
    return samples.mean(axis=0), t, se


def _critical(false_alarm: float, components: int, batches: int) -> float:
    return float(stats.t.ppf(1 - false_alarm / (2 * components), batches - 1))


def _run(estimator: Callable, dist, f, n_samples: int, rng: Any):
    from .distributions._base import as_generator

    out = estimator(dist, f, n_samples, as_generator(rng))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


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
    if set(samples) != set(truth):
        raise AssertionError(f"estimator returned parameters {sorted(samples)}, expected {sorted(truth)}")
    est, tt = {}, {}
    comps = 0
    for k, s in samples.items():
        tr = np.asarray(truth[k], dtype=float)
        if s.shape[1:] != tr.shape:
            raise AssertionError(f"d/d{k}: per-sample shape {s.shape[1:]} differs from the truth's {tr.shape}")
        if not np.all(np.isfinite(s)):
            bad = int(np.sum(~np.isfinite(s)))
            raise AssertionError(f"d/d{k}: {bad} non-finite per-sample estimates out of {s.size}")
        est[k], tt[k], _ = _batch_t(s, tr, batches)
        comps += max(1, tr.size)
    crit = _critical(false_alarm, comps, batches)
    res = UnbiasednessResult(est, {k: np.asarray(v, float) for k, v in truth.items()}, tt, n_samples, batches,
                             crit, false_alarm)
    if not res.passed:
        err = AssertionError("estimator is biased (or its variance is infinite):\n" + res.report())
        err.result = res
        raise err
    return res


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
