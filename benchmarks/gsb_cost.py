"""Cost of the Gamma GSB estimators as a ratio to drawing the Gamma variates (the floor).

    python benchmarks/gsb_cost.py [--total 1000000] [--repeat 7] [--dims 1,100,10000] [--clock wall]

For ``Gamma(shape=2.5, scale=0.7)`` with ``d`` coordinates and ``S = total / d`` samples, and
``f = sum((z - 0.49)**2)`` and ``f = sum(softplus(z))``: the time of one gradient estimate (all
``S x d`` per-sample estimates of both parameters, diagnostics included, through
:func:`gsbref.estimators.estimate`) for ``gsb`` at orders 2, 4, 8 and ``gsb-resummed`` (one
``t ~ Exp(1)`` per sample and coordinate), divided by the time of
``rng.gamma(2.5, 0.7, size=(S, d))`` -- NumPy drawing the same variates and nothing else.

Every repeat times the floor and then each method once (interleaved, so that drifts in machine
load hit all of them alike); the table shows, per method, the median over repeats of the ratio of
its time to the floor's time in the same repeat, and the median floor in ns per variate.  Threads
are pinned to one (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``) before NumPy is imported.
``--clock cpu`` uses process CPU time instead of wall time: on a shared machine it leaves out the
time the process waits for a core (it still sees the cache and memory-bandwidth contention).
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import gsbref  # noqa: E402
from gsbref.estimators import estimate  # noqa: E402

SHAPE, SCALE = 2.5, 0.7
FUNCTIONS = ("sum((z - 0.49)**2)", "sum(softplus(z))")
METHODS = [("gsb2", "gsb", {"order": 2}), ("gsb4", "gsb", {"order": 4}), ("gsb8", "gsb", {"order": 8}),
           ("gsb-resummed", "gsb-resummed", {})]


def run(total: int, dims: list[int], repeat: int, clock) -> list[dict]:
    rows = []
    for fexpr in FUNCTIONS:
        f = gsbref.function(fexpr)
        for d in dims:
            S = max(2, total // d)
            dist = gsbref.Gamma(np.full(d, SHAPE), SCALE)
            ratios = {name: [] for name, _, _ in METHODS}
            floor = []
            for rep in range(repeat):
                rng = np.random.default_rng(rep)
                t0 = clock()
                rng.gamma(SHAPE, SCALE, size=(S, d))
                fl = clock() - t0
                floor.append(fl)
                for name, method, opts in METHODS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # the truncation warnings are computed, not shown
                        t0 = clock()
                        estimate(dist, f, method, S, np.random.default_rng(rep), **opts)
                        ratios[name].append((clock() - t0) / fl)
            rows.append(dict(f=fexpr, d=d, S=S, floor=statistics.median(floor) / (S * d) * 1e9,
                             **{name: statistics.median(v) for name, v in ratios.items()}))
            print(_line(rows[-1]), flush=True)
    return rows


def _header() -> str:
    return f"{'f':22s} {'d':>6s} {'S':>8s} {'floor ns/variate':>17s} " + " ".join(
        f"{name:>13s}" for name, _, _ in METHODS)


def _line(r: dict) -> str:
    return f"{r['f']:22s} {r['d']:6d} {r['S']:8d} {r['floor']:17.1f} " + " ".join(
        f"{r[name]:13.2f}" for name, _, _ in METHODS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total", type=float, default=1e6, help="S * d per estimate (default 1e6)")
    ap.add_argument("--dims", default="1,100,10000")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    dims = [int(x) for x in args.dims.split(",")]
    print(f"Gamma(shape={SHAPE}, scale={SCALE}), S*d = {int(args.total):.0e}, median over {args.repeat} "
          f"interleaved repeats of (method time / floor time), {args.clock} clock, numpy {np.__version__}, "
          "threads pinned to 1")
    print(_header(), flush=True)
    run(int(args.total), dims, args.repeat, clock)


if __name__ == "__main__":
    main()
