"""Single-sample variance, time per sample and variance x time of every discrete estimator.

    python benchmarks/discrete_variance.py [--samples 20000] [--out docs/results/discrete_variance.md]

Cases: the toy problem E_{Bern(0.3)}[(z - 0.499)^2] (gradient w.r.t. the logit), a d = 10 Bernoulli
network f = sum(log_sigmoid(W z + c)) (logits), and a d = 20, K = 10 categorical network (logits).
For every estimator that applies: the single-sample variance averaged over the gradient's
components, the wall time per sample (median of 3 interleaved runs; BLAS pinned to one thread),
their product (the variance a unit of time buys: smaller is better), and the bias |mean - exact|
in units of its standard error against the oracle (large values mean a biased estimator: the
relaxations; the categorical case has 10^20 states, too many for the oracle, so no bias is shown).  RELAX's surrogate is fitted once per case before timing (its cost is not included).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import gsbref  # noqa: E402
from gsbref.estimators import estimate  # noqa: E402
from gsbref.testing import exact_gradient  # noqa: E402


def cases():
    rng = np.random.default_rng(7)
    W10 = np.round(rng.normal(size=(6, 10)), 3)
    c10 = np.round(rng.normal(size=6), 3)
    W20 = np.round(rng.normal(size=(8, 20)) / 3, 3)
    c20 = np.round(rng.normal(size=8), 3)
    yield ("toy: Bern(logit -0.847), (z-0.499)^2", gsbref.Bernoulli.from_logits(np.log(0.3 / 0.7)),
           gsbref.function("sum((z - 0.499)**2)"),
           ["gsb-discrete", "score:loo", "arm", "disarm", "rebar", "relax", "gumbel-softmax", "straight-through"])
    yield ("Bernoulli d=10 network (logits)", gsbref.Bernoulli.from_logits(np.linspace(-1.5, 1.5, 10)),
           gsbref.function("sum(log_sigmoid(W @ z + c))", W=W10, c=c10),
           ["gsb-discrete", "score:loo", "arm", "disarm", "rebar", "relax", "gumbel-softmax", "straight-through"])
    logits = np.round(np.random.default_rng(3).normal(size=(20, 10)), 3)
    yield ("Categorical d=20, K=10 network (logits)", gsbref.Categorical.from_logits(logits),
           gsbref.function("sum(log_sigmoid(W @ z + c))", W=W20, c=c20),
           ["gsb-discrete", "score:loo", "gumbel-softmax", "straight-through"])


def run(dist, f, method, n, rng, surrogate=None):
    opts = {}
    name = method
    if method == "score:loo":
        name, opts = "score", {"baseline": "loo"}
    if method in ("gumbel-softmax", "straight-through"):
        opts = {"temperature": 0.5}
    if method == "relax":
        opts = {"surrogate": surrogate}
    return estimate(dist, f, name, n, rng, **opts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    lines = ["| case | estimator | variance (mean over components) | time per sample (µs) | variance × time | bias / stderr |",
             "|---|---|---|---|---|---|"]
    for label, dist, f, methods in cases():
        try:
            truth = exact_gradient(dist, f, dps=None)
        except ValueError:  # too many states to enumerate (10^20 for the categorical case)
            truth = None
        surrogate = None
        if "relax" in methods:
            from gsbref.estimators.discrete_baselines import fit_relax_surrogate

            surrogate = fit_relax_surrogate(dist, f, np.random.default_rng(11), temperature=0.5)
        times = {m: [] for m in methods}
        results = {}
        for rep in range(3):
            for m in methods:  # interleaved
                t0 = time.perf_counter()
                r = run(dist, f, m, args.samples, np.random.default_rng(100 + rep), surrogate)
                times[m].append(time.perf_counter() - t0)
                results[m] = r
        for m in methods:
            (k, est), = results[m].items()
            var = float(np.mean(est.variance))
            t = statistics.median(times[m]) / args.samples
            if truth is None:
                z = "n/a (not enumerable)"
            elif np.all(est.stderr == 0):  # zero variance: report the absolute error instead
                z = f"{float(np.max(np.abs(est.mean - truth[k]))):.1e} (absolute; zero variance)"
            else:
                z = f"{float(np.max(np.abs(est.mean - truth[k]) / np.maximum(est.stderr, 1e-300))):.1f}"
            lines.append(f"| {label} | {m} | {var:.3g} | {t * 1e6:.3g} | {var * t * 1e6:.3g} | {z} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("# Discrete estimators: variance and cost\n\nMade by `python benchmarks/discrete_variance.py "
                     f"--samples {args.samples} --out {args.out}` (2-core shared machine; timings are medians of "
                     "3 interleaved runs). Variance × time: the variance per microsecond of work, smaller is "
                     "better. Gumbel-softmax and straight-through use temperature 0.5 and are biased: their "
                     "bias/stderr column is expected to be large.\n\n" + text)


if __name__ == "__main__":
    main()
