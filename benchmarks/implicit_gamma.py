"""Cost of the implicit-reparameterisation derivatives ``gsbref.special.gamma_dz_dshape`` and
``gsbref.special.beta_dz_dparams`` per variate, as a ratio to drawing the variate with NumPy
(``Generator.gamma`` / ``Generator.beta``).

Interleaved timing (sampler, [baseline,] derivative, sampler, ...) on one thread (OPENBLAS/OMP
pinned).  Reported: ns per variate, the minimum over the repeats (the least disturbed run on a
shared machine) and, in brackets, the median; ratios use the minima.  ``--baseline DIR`` times an
earlier version of ``gsbref/special`` side by side in the same loop, e.g.::

    mkdir -p /tmp/old && for f in _gamma _beta; do
        git show HEAD~1:gsbref/special/$f.py > /tmp/old/$f.py; done
    python benchmarks/implicit_gamma.py --baseline /tmp/old

Run: ``python benchmarks/implicit_gamma.py [n] [repeats] [--baseline DIR] [--no-beta]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import importlib.util
import pathlib
import sys
import time

import numpy as np

from gsbref.special import _beta, _gamma

GAMMA_SHAPES = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
BETA_SHAPES = ((0.5, 0.5), (2.0, 3.0), (0.01, 1.0), (100.0, 200.0))


def _load(path, name):
    """Load a module file as ``gsbref.special.<name>`` (relative imports resolve in gsbref.special)."""
    spec = importlib.util.spec_from_file_location(f"gsbref.special.{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _beta_draw(rng, a, b, n):
    # a draw that rounds to 0 or 1 has derivative 0: keep it inside so that every element is computed
    return np.clip(rng.beta(a, b, n), np.finfo(float).tiny, 1 - np.finfo(float).epsneg)


def _time(draw, fns, repeats):
    """Interleaved repeats of ``z = draw()`` then each ``fn(z)``; seconds per call, (min, median)."""
    ts = [[] for _ in range(len(fns) + 1)]
    for _ in range(repeats):
        t0 = time.perf_counter()
        z = draw()
        ts[0].append(time.perf_counter() - t0)
        for j, fn in enumerate(fns, 1):
            t0 = time.perf_counter()
            fn(z)
            ts[j].append(time.perf_counter() - t0)
    return [(np.min(t), np.median(t)) for t in ts]


def _row(label, n, times):
    (s, sm), rest = times[0], times[1:]
    cells = [f"{label:>12} {s / n * 1e9:7.1f} [{sm / n * 1e9:6.1f}]"]
    for d, dm in rest:
        cells.append(f"{d / n * 1e9:8.0f} [{dm / n * 1e9:6.0f}] {d / s:7.1f}x")
    print(" | ".join(cells))


def main(n=20_000, repeats=15, baseline=None, beta=True):
    rng = np.random.default_rng(0)
    old_g = old_b = None
    if baseline is not None:
        base = pathlib.Path(baseline)
        old_g = _load(base / "_gamma.py", "_baseline_gamma")
        if beta:
            old_b = _load(base / "_beta.py", "_baseline_beta")
    cols = ("baseline ns [median] ratio | " if old_g else "") + "current ns [median] ratio"
    print(f"n = {n} variates per call, {repeats} interleaved repeats, one thread; ns per variate")
    print(f"Gamma(k, 1), dz/dk:  shape | draw ns [median] | {cols}")
    for k in GAMMA_SHAPES:
        kk = np.full(n, k)
        mods = ([old_g] if old_g else []) + [_gamma]
        fns = [lambda z, m=m, kk=kk: m.gamma_dz_dshape_std(z, kk) for m in mods]
        _row(f"{k:g}", n, _time(lambda k=k: rng.gamma(k, 1.0, n), fns, repeats))
    print(f"Gamma, a different shape per variate, k0 * exp(U(0, 1)):  k0 | draw | {cols}")
    for k0 in (0.01, 1.0, 10.0, 100.0):
        kv = k0 * np.exp(rng.uniform(0.0, 1.0, n))
        mods = ([old_g] if old_g else []) + [_gamma]
        fns = [lambda z, m=m, kv=kv: m.gamma_dz_dshape_std(z, kv) for m in mods]
        _row(f"{k0:g}", n, _time(lambda kv=kv: rng.gamma(kv, 1.0), fns, repeats))
    if not beta:
        return
    nb = max(n // 10, 1)  # the Beta derivative is ~100x dearer per element
    print(f"Beta(a, b), (dz/da, dz/db), n = {nb}:  a, b | draw | {cols}")
    for a, b in BETA_SHAPES:
        aa, bb = np.full(nb, a), np.full(nb, b)
        mods = ([old_b] if old_b else []) + [_beta]
        fns = [lambda z, m=m, aa=aa, bb=bb: m.beta_dz_dparams_std(z, aa, bb) for m in mods]
        _row(f"{a:g}, {b:g}", nb, _time(lambda a=a, b=b: _beta_draw(rng, a, b, nb), fns, repeats))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", nargs="?", type=int, default=20_000)
    p.add_argument("repeats", nargs="?", type=int, default=15)
    p.add_argument("--baseline", help="directory holding an earlier _gamma.py and _beta.py")
    p.add_argument("--no-beta", action="store_true")
    args = p.parse_args()
    main(args.n, args.repeats, args.baseline, not args.no_beta)
