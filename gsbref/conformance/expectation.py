"""Check (b): a library's pathwise estimator, averaged, against the oracle's exact gradient.

For every catalog case whose family the adapter wires (``adapter.FAMILIES``), the adapter's
per-sample estimator (one library draw per sample, the library's autodiff for ``dz/dtheta``,
gsbref's ``grad f``) goes through :func:`gsbref.testing.assert_unbiased` (batch-means t-test,
Bonferroni over the components, false-alarm rate ``false_alarm`` per case).  Relaxed Bernoulli
estimators are biased for the discrete objective by construction: their row states the bias
against the oracle and, for one coordinate, tests the mean against the exact gradient of the
relaxed objective (:func:`gsbref.estimators.discrete_baselines.relaxed_gradient_1d`).
"""

from __future__ import annotations

import time

import numpy as np

DEFAULT_SAMPLES = 60_000


def _family(dist) -> str:
    name = type(dist).__name__
    return "Bernoulli" if name == "BernoulliLogits" else name


def supported_cases(adapter):
    from ..catalog import CASES

    out = []
    for c in CASES:
        dist, _ = c.build()
        if _family(dist) in adapter.FAMILIES:
            out.append(c)
    return out


def check_case(adapter, c, dtype: str, n_samples: int, rng, false_alarm: float, truth_cache: dict,
               temperature: float = 0.5) -> dict:
    from ..testing import assert_unbiased, exact_gradient

    dist, f = c.build()
    if c.name not in truth_cache:
        truth_cache[c.name] = exact_gradient(dist, f, dps=20)
    truth = truth_cache[c.name]
    relaxed = _family(dist) == "Bernoulli"
    est = adapter.estimator(dtype, temperature=temperature) if relaxed else adapter.estimator(dtype)
    row = {"case": c.name, "distribution": repr(dist), "f": c.f, "dtype": dtype, "n_samples": n_samples,
           "false_alarm": false_alarm, "relaxed": relaxed}
    t0 = time.perf_counter()
    target = truth
    if relaxed:
        from ..estimators.discrete_baselines import relaxed_gradient_1d

        row["temperature"] = temperature
        name = dist.parameters[0].name
        if np.size(dist.params[name]) == 1:
            target = {name: np.asarray(relaxed_gradient_1d(dist, f, temperature)).reshape(np.shape(truth[name]))}
            row["target"] = "exact gradient of the relaxed objective (quadrature)"
        else:
            target = None
            row["target"] = "none (bias against the oracle reported only)"
    else:
        row["target"] = "oracle gradient (dps=20)"
    samples = est(dist, f, n_samples, rng)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    row["nonfinite"] = int(sum(np.sum(~np.isfinite(v)) for v in samples.values()))
    row["estimate"] = {k: np.asarray(v.mean(axis=0)).tolist() for k, v in samples.items()}
    row["stderr"] = {k: np.asarray(v.std(axis=0, ddof=1) / np.sqrt(v.shape[0])).tolist() for k, v in samples.items()}
    row["truth"] = {k: np.asarray(v).tolist() for k, v in truth.items()}
    row["bias_vs_oracle"] = {k: (np.asarray(samples[k].mean(axis=0)) - np.asarray(truth[k])).tolist() for k in truth}
    if target is None:
        row["passed"] = None
        return row
    frozen = {k: v for k, v in samples.items()}
    try:
        res = assert_unbiased(lambda d, ff, n, r: frozen, dist, f, n_samples=n_samples, rng=0,
                              false_alarm=false_alarm, truth=target)
        row.update(passed=True, max_abs_t=res.max_abs_t, critical=res.critical)
    except AssertionError as exc:
        res = getattr(exc, "result", None)
        row.update(passed=False, message=str(exc).splitlines()[0])
        if res is not None:
            row.update(max_abs_t=res.max_abs_t, critical=res.critical)
    return row


def expectation_check(adapter, dtypes, n_samples: int = DEFAULT_SAMPLES, rng=0, false_alarm: float = 1e-6,
                      cases=None, log=None) -> list[dict]:
    """Every supported catalog case in every dtype.  Returns one row per (case, dtype)."""
    from ..distributions._base import as_generator

    rng = as_generator(rng)
    cases = supported_cases(adapter) if cases is None else cases
    cache: dict = {}
    rows = []
    for c in cases:
        for dt in dtypes:
            rows.append(check_case(adapter, c, dt, n_samples, rng, false_alarm, cache))
            if log:
                r = rows[-1]
                log(f"{adapter.NAME} {dt} {c.name}: passed={r['passed']} max|t|={r.get('max_abs_t', float('nan')):.2f} ({r['seconds']} s)")
    return rows
