"""Cost of the Gamma GSB estimators as a ratio to drawing the Gamma variates (the floor).

    python benchmarks/gsb_cost.py [--total 1000000] [--repeat 5]

For d in {1, 100, 10^4} and S = total / d samples: the median wall time (methods interleaved,
BLAS/OpenMP pinned to one thread) of ``estimate(Gamma(2.5, 0.7), f, method, S, rng)`` for
``gsb`` at orders 2, 4, 8 and ``gsb-resummed``, divided by the median time of
``rng.gamma(2.5, 0.7, size=(S, d))`` measured in the same loop.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import gsbref  # noqa: E402
from gsbref.estimators import estimate  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--total", type=int, default=1_000_000, help="S * d")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    methods = [("gsb", {"order": 2}), ("gsb", {"order": 4}), ("gsb", {"order": 8}), ("gsb-resummed", {})]
    print(f"{'f':22s} {'d':>6s} {'S':>8s} {'floor ns/variate':>17s} " + " ".join(
        f"{m + (str(o.get('order')) if o else ''):>14s}" for m, o in methods))
    for fexpr in ("sum((z - 0.49)**2)", "sum(softplus(z))"):
        f = gsbref.function(fexpr)
        for d in (1, 100, 10_000):
            S = max(1, args.total // d)
            dist = gsbref.Gamma(np.full(d, 2.5), 0.7)
            times = {i: [] for i in range(len(methods))}
            floor = []
            for rep in range(args.repeat):
                rng = np.random.default_rng(rep)
                t0 = time.perf_counter()
                rng.gamma(2.5, 0.7, size=(S, d))
                floor.append(time.perf_counter() - t0)
                for i, (m, opts) in enumerate(methods):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # truncation diagnostics are not timed here
                        t0 = time.perf_counter()
                        estimate(dist, f, m, S, np.random.default_rng(rep), **opts)
                        times[i].append(time.perf_counter() - t0)
            fl = statistics.median(floor)
            ratios = [statistics.median(times[i]) / fl for i in range(len(methods))]
            print(f"{fexpr:22s} {d:6d} {S:8d} {fl / (S * d) * 1e9:17.1f} " + " ".join(f"{r:14.2f}" for r in ratios),
                  flush=True)


if __name__ == "__main__":
    main()
