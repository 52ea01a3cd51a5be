"""Cost of the Gamma GSB estimators as a ratio to drawing the Gamma variates (the floor).

    python benchmarks/gsb_cost.py [--total 1000000] [--repeat 7] [--dims 1,100,10000]
                                  [--clock wall|cpu|user] [--profile]

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
``--clock user`` counts user-mode CPU time only (``getrusage``): it also leaves out the kernel's
time, mostly page faults on fresh result arrays -- which every method and the floor pay, but
which on a loaded machine with transparent huge pages comes in bursts of up to ~0.5 s at
``S*d = 1e7`` (compaction), the main noise of the CPU-clock tables there.

``--profile`` times instead the stages of one ``gsb`` order-8 softplus estimate (the same calls
:func:`gsbref.estimators.gsb.gsb` makes, one after the other), in ns per variate, median over
repeats: ``build_rule``; drawing the points; ``Rule.summary`` (estimates and term statistics);
the same with every sample in the variance subset (``variance_samples=None``, the full path
everywhere, for comparison); the diagnostics and the warning check.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
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


def profile(total: int, dims: list[int], repeat: int, clock) -> None:
    from gsbref.estimators.gsb import _summarise_stats, _warn_truncation, build_rule

    f = gsbref.function("sum(softplus(z))")
    print(f"{'d':>6s} {'S':>8s} {'floor':>7s} {'build':>7s} {'draw':>7s} {'summary':>8s} "
          f"{'(all-full)':>10s} {'diag+warn':>10s} {'sum/floor':>10s}")
    for d in dims:
        S = max(2, total // d)
        dist = gsbref.Gamma(np.full(d, SHAPE), SCALE)
        t = {k: [] for k in ("floor", "build", "draw", "summary", "full", "diag")}
        for rep in range(repeat):
            rng = np.random.default_rng(rep)
            t0 = clock()
            rng.gamma(SHAPE, SCALE, size=(S, d))
            t1 = clock()
            rule = build_rule(dist, f, order=8)
            t2 = clock()
            z = rule.draw(np.random.default_rng(rep), S)
            t3 = clock()
            _, stats = rule.summary(z)
            t4 = clock()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _warn_truncation(dist, _summarise_stats(rule, stats))
            t5 = clock()
            rule.summary(z, None)
            t6 = clock()
            for k, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5, t5 - t4)):
                t[k].append(v / (S * d) * 1e9)
        m = {k: statistics.median(v) for k, v in t.items()}
        ratio = (m["build"] + m["draw"] + m["summary"] + m["diag"]) / m["floor"]
        print(f"{d:6d} {S:8d} {m['floor']:7.1f} {m['build']:7.1f} {m['draw']:7.1f} {m['summary']:8.1f} "
              f"{m['full']:10.1f} {m['diag']:10.1f} {ratio:10.2f}", flush=True)


def _user_time() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


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
    ap.add_argument("--clock", choices=["wall", "cpu", "user"], default="wall")
    ap.add_argument("--profile", action="store_true", help="stages of gsb order 8, softplus (ns/variate)")
    args = ap.parse_args()
    clock = {"wall": time.perf_counter, "cpu": time.process_time, "user": _user_time}[args.clock]
    dims = [int(x) for x in args.dims.split(",")]
    if args.profile:
        print(f"gsb order 8, sum(softplus(z)), Gamma(shape={SHAPE}, scale={SCALE}), S*d = {int(args.total):.0e}, "
              f"median over {args.repeat} repeats, {args.clock} clock, ns per variate; sum/floor = "
              "(build + draw + summary + diag+warn) / floor")
        profile(int(args.total), dims, args.repeat, clock)
        return
    print(f"Gamma(shape={SHAPE}, scale={SCALE}), S*d = {int(args.total):.0e}, median over {args.repeat} "
          f"interleaved repeats of (method time / floor time), {args.clock} clock, numpy {np.__version__}, "
          "threads pinned to 1")
    print(_header(), flush=True)
    run(int(args.total), dims, args.repeat, clock)


if __name__ == "__main__":
    main()
