"""Wall time of the estimators on other array backends, as a ratio to NumPy.

    python benchmarks/backends.py [--total 1000000] [--repeat 5] [--skip-strict] [--skip-cupy]

Two tables, each at S * d = ``total`` for d in {10, 1000} (S = total / d samples):

* ``array_api_strict`` / NumPy: the cost of running through the standard's namespace (a wrapper of
  NumPy with its checks; the same numbers).  Measures the overhead, not a speed-up.
* CuPy / NumPy (skipped without CuPy or a GPU).

Cases (both tables): ``gsb`` (order 4), ``gsb-resummed``, ``implicit``, ``grg`` and the
score-function estimator on ``Gamma(2.5, 0.7)`` with ``f = sum(softplus(z))``; ``pathwise`` on
``Gaussian(0, 1)`` with the same ``f``; theorem 2 (``gsb-discrete``) on ``Bernoulli(0.3)`` with
``f = sum(log_sigmoid(W z + c))``, ``W`` of shape (8, d).  The CuPy time includes a device
synchronisation; a warm-up call first compiles the kernels.  Methods not yet on the array API
(``gsb``) print ``n/a``.  Host round trips that remain on other namespaces (see the estimators'
"Array backends" notes): ``gsb-resummed``'s fused softplus differences (``_fused.py``) and
``implicit``'s CDF derivatives (:mod:`gsbref.special`).

Each entry is the median over ``repeat`` runs (methods interleaved, BLAS/OpenMP pinned to one
thread on the host); ratios > 1 mean the backend is slower than NumPy.
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
from gsbref._backend import get_namespace  # noqa: E402
from gsbref.estimators import estimate  # noqa: E402
from gsbref.estimators._base import array_api_methods  # noqa: E402


def _cases(d: int):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(8, d)) / np.sqrt(d)
    fa = gsbref.function("sum(log_sigmoid(W @ z + c))", W=W, c=np.zeros(8))
    fs = gsbref.function("sum(softplus(z))")
    gam = gsbref.Gamma(np.full(d, 2.5), 0.7)
    gauss = gsbref.Gaussian(np.zeros(d), 1.0)
    bern = gsbref.Bernoulli(np.full(d, 0.3))
    return [
        ("gsb order 4, Gamma", gam, fs, "gsb", {"order": 4}),
        ("gsb-resummed, Gamma", gam, fs, "gsb-resummed", {}),
        ("implicit, Gamma", gam, fs, "implicit", {}),
        ("grg, Gamma", gam, fs, "grg", {}),
        ("pathwise, Gaussian", gauss, fs, "pathwise", {}),
        ("score, Gamma", gam, fs, "score", {}),
        ("gsb-discrete, Bernoulli", bern, fa, "gsb-discrete", {}),
    ]


def _time(fn, sync) -> float:
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def compare(backend: str, total: int, repeat: int, sync=lambda: None) -> None:
    xp = get_namespace(backend)
    supported = set(array_api_methods())
    print(f"\n{backend} / numpy wall-time ratio (S * d = {total}, median of {repeat})")
    print(f"{'case':26s} {'d':>6s} {'S':>8s} {'numpy s':>10s} {backend + ' s':>16s} {'ratio':>8s}")
    for d in (10, 1000):
        S = max(1, total // d)
        for label, dist, f, method, opts in _cases(d):
            if method not in supported:
                print(f"{label:26s} {d:6d} {S:8d} {'':>10s} {'n/a (numpy only)':>16s} {'n/a':>8s}", flush=True)
                continue
            other = dist.to_namespace(xp)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # truncation diagnostics are not timed here
                estimate(other, f, method, min(S, 64), 0, **opts)  # warm-up (kernel compilation)
                sync()
                tn, tb = [], []
                for rep in range(repeat):
                    tn.append(_time(lambda: estimate(dist, f, method, S, rep, **opts), lambda: None))
                    tb.append(_time(lambda: estimate(other, f, method, S, rep, **opts), sync))
            mn, mb = statistics.median(tn), statistics.median(tb)
            print(f"{label:26s} {d:6d} {S:8d} {mn:10.4f} {mb:16.4f} {mb / mn:8.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--total", type=int, default=1_000_000, help="S * d")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-strict", action="store_true")
    ap.add_argument("--skip-cupy", action="store_true")
    args = ap.parse_args()
    if not args.skip_strict:
        try:
            import array_api_strict  # noqa: F401
        except ImportError:
            print("array_api_strict is not installed: overhead table skipped")
        else:
            compare("array_api_strict", args.total, args.repeat)
    if not args.skip_cupy:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no GPU visible")
        except Exception as exc:  # ImportError, or CUDA not usable
            print(f"\nCuPy / NumPy table skipped: {exc}")
            return
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        print(f"\nGPU: {name}")
        compare("cupy", args.total, args.repeat, sync=cupy.cuda.Device().synchronize)


if __name__ == "__main__":
    main()
