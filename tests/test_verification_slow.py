"""The verification suite's empirical false-alarm rate (slow: ``python -m pytest -m slow``).

Correct estimators on ten rows (exact, truncated-series and relaxation targets; gsb, resummed,
theorem 2, score, DisARM, Gumbel-softmax) are run over :data:`SEEDS` base seeds with the suite's
own machinery (:func:`verification.runner.run_row` and the Holm decision of a run).  Two rates are
measured and must not exceed their stated values beyond binomial noise:

* the run-level rate: the fraction of seeds in which *any* row fails, at an overall level
  ``alpha`` -- Holm controls it at ``<= alpha``;
* the per-comparison rate of the batch-means t-test: the fraction of unadjusted p-values
  ``<= 0.05`` over all components and seeds -- ``0.05`` for a calibrated test.

Bound: the upper ``1e-3`` quantile of ``Binomial(trials, stated rate)``, so that this test itself
fails a correct suite with probability ``< 1e-3`` per assertion (the per-comparison counts are
correlated within a seed only through the shared nothing: every row has its own stream).
The oracle bundles are computed once; only the sampling is repeated.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from verification import checks as C
from verification import runner
from verification.rows import row

SEEDS = 200
N = 4000
ROW_IDS = [
    "gamma-toy1/score",
    "gamma-softplus/gsb-resummed",
    "laplace-softplus/gsb[order=3]",
    "gaussian-softplus/gsb",
    "beta-identity/gsb-resummed[form=simplex]",
    "gamma-toy2/gsb-closed",
    "bernoulli-d10-network/gsb-discrete",
    "bernoulli-toy/disarm",
    "bernoulli-toy/gumbel-softmax[temperature=0.5]",
    "categorical-quadratic/score",
]


@pytest.mark.slow
def test_false_alarm_rate_over_seeds():
    rows = [dataclasses.replace(row(i), variants=(), checks=("mc",), n_quick=N) for i in ROW_IDS]
    needs = runner._series_needs(rows, "quick")
    bundles = {r.case: C.case_truth(r.case, needs.get(r.case, ())) for r in rows}
    m = sum(runner._components(r) for r in rows)
    alphas = (0.05, 0.2)
    run_fails = dict.fromkeys(alphas, 0)
    comp_rejects = comps = 0
    for seed in range(SEEDS):
        results = [runner.run_row(r, "quick", seed, bundles[r.case], 0.05 / m) for r in rows]
        assert all(r["error"] is None for r in results), [r["error"] for r in results]
        for r in results:
            p = np.concatenate([np.ravel(v) for v in r["mc"]["p"].values()])
            comp_rejects += int(np.sum(p <= 0.05))
            comps += p.size
        for a in alphas:
            res = [dict(r) for r in results]
            runner._decide(res, a)
            run_fails[a] += any(r["status"] == "FAIL" for r in res)
    print(f"\nfalse-alarm measurement: {SEEDS} seeds x {len(rows)} rows ({m} components), n = {N} per row")
    for a in alphas:
        bound = stats.binom.isf(1e-3, SEEDS, a)
        print(f"  run level alpha = {a:g}: {run_fails[a]} / {SEEDS} runs failed "
              f"(rate {run_fails[a] / SEEDS:.3f}; bound {bound:.0f})")
        assert run_fails[a] <= bound, (a, run_fails[a], bound)
    bound = stats.binom.isf(1e-3, comps, 0.05)
    print(f"  per comparison at 0.05: {comp_rejects} / {comps} (rate {comp_rejects / comps:.4f}; bound {bound:.0f})")
    assert comp_rejects <= bound
