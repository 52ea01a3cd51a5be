"""Cost of Gamma gradient estimators relative to drawing the Gamma variates themselves.

    python benchmarks/gamma_estimators.py [--total 1e7] [--repeat 5] [--dims 1,100,10000]

For ``Gamma(shape=2.5, scale=0.7)`` with ``d`` coordinates and ``S = total / d`` samples, and
``f = sum((z - 0.49)**2)`` and ``f = sum(softplus(z))``, times one gradient estimate (all
``S x d`` per-sample estimates of both parameters, through :func:`gsbref.estimators.estimate`) for

* ``resummed``      ``gsb-resummed`` with one ``t ~ Exp(1)`` per sample and coordinate,
* ``resummed-L8``   ``gsb-resummed`` with ``quadrature=8`` (Gauss-Laguerre in t),
* ``gsb8``          the paper's series (eq. 19) truncated at order 8 (biased for softplus by the
                    omitted terms; its truncation diagnostics are computed, the warnings hidden),
* ``score``         the score-function estimator,

and reports each as a ratio to the *floor*: the time ``numpy.random.Generator.gamma`` takes to draw
the same ``S x d`` variates (scalar parameters, ``size=(S, d)``).  Methods are interleaved within each
repeat (so drifts in machine load hit all of them alike) and the median over repeats is reported.
Threads are pinned to one (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``) before NumPy is imported.

``var`` is the single-sample variance of the estimate of ``d/dscale`` (mean over coordinates; for
``d/dshape`` see ``--param shape``), ``var*t/S`` the variance times the time per sample: the time
needed to bring the standard error of the mean down to 1 -- the number to compare across methods.
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
FUNCTIONS = {"quadratic": "sum((z - 0.49)**2)", "softplus": "sum(softplus(z))"}
METHODS = {
    "resummed": ("gsb-resummed", {}),
    "resummed-L8": ("gsb-resummed", {"quadrature": 8}),
    "gsb8": ("gsb", {"order": 8}),
    "score": ("score", {}),
}


def run(total: int, dims: list[int], repeat: int, param: str, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for d in dims:
        S = max(2, total // d)
        dist = gsbref.Gamma(shape=np.full(d, SHAPE), scale=np.full(d, SCALE))
        for fname, expr in FUNCTIONS.items():
            f = gsbref.function(expr)
            times = {"floor": []} | {m: [] for m in METHODS}
            var = {}
            for r in range(repeat):
                t0 = time.perf_counter()
                rng.gamma(SHAPE, SCALE, size=(S, d))
                times["floor"].append(time.perf_counter() - t0)
                for m, (method, opts) in METHODS.items():
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # gsb8's truncation warning (softplus)
                        t0 = time.perf_counter()
                        est = estimate(dist, f, method, S, rng, **opts)
                        times[m].append(time.perf_counter() - t0)
                    if r == repeat - 1:
                        var[m] = float(np.mean(est[param].variance))
                    del est
            floor = statistics.median(times["floor"])
            for m in METHODS:
                t = statistics.median(times[m])
                rows.append(dict(d=d, S=S, f=fname, method=m, time=t, ratio=t / floor, floor=floor,
                                 var=var[m], work=var[m] * t / S))
            print(f"  done d={d} f={fname} (floor {floor:.3f} s)", flush=True)
    return rows


def table(rows: list[dict], param: str) -> str:
    head = (f"{'d':>6} {'S':>9} {'f':>10} {'method':>12} {'time s':>8} {'x floor':>8} "
            f"{'var d/d' + param:>14} {'var*t/S':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['d']:>6} {r['S']:>9} {r['f']:>10} {r['method']:>12} {r['time']:8.3f} "
                     f"{r['ratio']:8.2f} {r['var']:14.4g} {r['work']:10.3g}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total", type=float, default=1e7, help="S * d per estimate (default 1e7)")
    ap.add_argument("--dims", default="1,100,10000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--param", default="scale", choices=["shape", "scale"])
    args = ap.parse_args()
    dims = [int(x) for x in args.dims.split(",")]
    print(f"Gamma(shape={SHAPE}, scale={SCALE}), S*d = {int(args.total):.0e}, median of {args.repeat} "
          f"interleaved repeats, numpy {np.__version__}, threads pinned to 1")
    rows = run(int(args.total), dims, args.repeat, args.param)
    print(table(rows, args.param))


if __name__ == "__main__":
    main()
