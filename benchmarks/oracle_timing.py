"""Time the oracle on one-dimensional catalog cases (median of repeats, seconds).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/oracle_timing.py [--dps 30] [--repeat 3]

Prints one line per (case, method): median wall time of ``oracle.gradient`` at the given precision.
mpmath keeps node caches between calls, so the first call of a precision is reported separately
("cold") from the median of the following ones ("warm").
"""

from __future__ import annotations

import argparse
import statistics
import time

from gsbref import oracle
from gsbref.catalog import CASES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dps", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all", action="store_true", help="include nested (multi-dimensional) cases")
    args = ap.parse_args()
    print(f"{'case':28s} {'method':10s} {'cold s':>8s} {'warm s':>8s}")
    for c in CASES:
        if "nested" in c.tags and not args.all:
            continue
        dist, f = c.build()
        for m in oracle.methods(dist, f):
            times = []
            for _ in range(args.repeat + 1):
                t0 = time.perf_counter()
                oracle.gradient(dist, f, dps=args.dps, method=m)
                times.append(time.perf_counter() - t0)
            print(f"{c.name:28s} {m:10s} {times[0]:8.3f} {statistics.median(times[1:]):8.3f}", flush=True)


if __name__ == "__main__":
    main()
