"""Cost of the implicit-reparameterisation derivative ``gsbref.special.gamma_dz_dshape`` per
variate, as a ratio to drawing the Gamma variate with NumPy (``Generator.gamma``).

Interleaved timing (sampler, derivative, sampler, ...), one thread (OPENBLAS/OMP pinned), median
of the repeats.  Run: ``python benchmarks/implicit_gamma.py [n] [repeats]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from gsbref.special import gamma_dz_dshape  # noqa: E402


def main(n=100_000, repeats=7, shapes=(0.01, 1.0, 100.0)):
    rng = np.random.default_rng(0)
    print(f"n = {n} variates, median of {repeats} interleaved repeats, one thread")
    print(f"{'shape':>8} {'sample ns/var':>14} {'dz/dk ns/var':>14} {'ratio':>8}")
    for k in shapes:
        ts, td = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            z = rng.gamma(k, 1.0, n)
            t1 = time.perf_counter()
            gamma_dz_dshape(z, k)
            t2 = time.perf_counter()
            ts.append(t1 - t0)
            td.append(t2 - t1)
        s, d = np.median(ts) / n * 1e9, np.median(td) / n * 1e9
        print(f"{k:>8g} {s:>14.1f} {d:>14.1f} {d / s:>8.1f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
