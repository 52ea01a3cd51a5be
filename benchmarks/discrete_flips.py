"""Time the flipped evaluations of theorem 2 (Bernoulli, one flip per coordinate and sample).

    python benchmarks/discrete_flips.py [--repeat 7] [--flips 16000] [--crossover] [--variance]

f = sum(log_sigmoid(W @ z + c)), W of shape (h, d) with h = 200, d in {10, 100, 1000}; S = flips / d
samples, so every d does the same number S * d of flipped evaluations.  The timings are
interleaved (one of each per round) and reported as the median over rounds:

  naive   f evaluated on the (S, d, d) flipped points (strategy="naive": a batched matrix product,
          O(d h) per flip);
  affine  rank-1 updates of the pre-activation, then rest = sum(log_sigmoid(.)) on the (S, d, h)
          batch (strategy="affine", O(h) per flip);
  floor   log_sigmoid (gsbref.ops, the kernel rest uses) on one (S, d, h) array of the flipped
          pre-activations: the S d h nonlinearities alone, which every exact method evaluates.
Also timed, for reference:
  blocked the same floor computed in blocks of _flips.BLOCK_ELEMENTS elements, as the affine
          strategy does (one whole (S, d, h) array is out of cache and its temporaries are fresh
          pages, so the unblocked floor can be slower than the affine strategy itself).

Printed: times in ms and the ratios naive / affine, affine / floor and affine / blocked floor
(targets at d = 1000: naive / affine >= 5, affine / floor <= 1.5).  BLAS and OpenMP are pinned to
one thread so that the ratios compare algorithms, not thread counts.

``--crossover`` times small d (for ``_flips.AFFINE_MIN_D``); ``--variance`` prints the
single-sample variance table of the theorem-2 estimator (and of the score-function estimator, for
scale) on the Bernoulli toy problem and a d = 20, K = 10 categorical case.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import statistics
import time

import numpy as np

import gsbref
from gsbref import ops
from gsbref.estimators._flips import BLOCK_ELEMENTS, flipped_values


def _problem(d, h, S, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(h, d)) / np.sqrt(d)
    c = rng.normal(size=h)
    f = gsbref.function("sum(log_sigmoid(W @ z + c))", W=W, c=c)
    z = (rng.random((S, d)) < 0.5).astype(float)
    pre = z @ W.T + c
    # the floor's input: the flipped pre-activations themselves, (S, d, h)
    flipped = pre[:, None, :] + (1.0 - 2.0 * z)[:, :, None] * W.T[None, :, :]
    return f, z, flipped


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _blocked_floor(x):
    """log_sigmoid over x in blocks of BLOCK_ELEMENTS (the block size the affine strategy uses)."""
    flat = x.reshape(-1, x.shape[-1])
    rows = max(1, BLOCK_ELEMENTS // x.shape[-1])
    for i in range(0, flat.shape[0], rows):
        ops.log_sigmoid(flat[i : i + rows])


def timings(d, h=200, flips=16000, repeat=7):
    S = max(1, flips // d)
    f, z, flipped = _problem(d, h, S)
    idx = np.arange(d)[:, None]
    vals = (1.0 - z)[:, :, None, None]
    runs = {
        "naive": lambda: flipped_values(f, z, idx, vals, strategy="naive"),
        "affine": lambda: flipped_values(f, z, idx, vals, strategy="affine"),
        "floor": lambda: ops.log_sigmoid(flipped),
        "floor-blocked": lambda: _blocked_floor(flipped),
    }
    a = runs["affine"]()
    b = runs["naive"]()
    diff = float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))
    for fn in runs.values():  # warm-up
        fn()
    times = {k: [] for k in runs}
    for _ in range(repeat):
        for k, fn in runs.items():
            times[k].append(_time(fn))
    return S, {k: statistics.median(v) for k, v in times.items()}, diff


def main_timing(args):
    print(f"f = sum(log_sigmoid(W @ z + c)), h = {args.h}, S * d = {args.flips} flips, median of {args.repeat} rounds")
    print(f"{'d':>6s} {'S':>6s} {'naive ms':>10s} {'affine ms':>10s} {'floor ms':>10s} {'blocked ms':>10s} "
          f"{'naive/affine':>13s} {'affine/floor':>13s} {'aff/blocked':>12s} {'max rel diff':>13s}")
    for d in args.d:
        S, t, diff = timings(d, args.h, args.flips, args.repeat)
        print(f"{d:6d} {S:6d} {1e3 * t['naive']:10.2f} {1e3 * t['affine']:10.2f} {1e3 * t['floor']:10.2f} "
              f"{1e3 * t['floor-blocked']:10.2f} {t['naive'] / t['affine']:13.2f} {t['affine'] / t['floor']:13.2f} "
              f"{t['affine'] / t['floor-blocked']:12.2f} {diff:13.1e}", flush=True)


def main_crossover(args):
    print("small d: naive / affine time ratio (> 1: affine faster)")
    for h in (10, 200):
        row = []
        for d in (2, 4, 8, 16, 32):
            _, t, _ = timings(d, h, args.flips, args.repeat)
            row.append(f"d={d}: {t['naive'] / t['affine']:.2f}")
        print(f"h = {h:4d}  " + "  ".join(row), flush=True)


def main_variance(args):
    from gsbref.estimators.discrete import enumerate_states, theorem2_at

    n = args.samples
    print("Single-sample variance per parameter (theorem 2 vs the score-function estimator f(z) score(z))")
    print("toy problem E_{z ~ Bern(theta)}[(z - 0.499)^2], d = 1: exact variances by enumeration")
    f = gsbref.function("(z - 0.499)**2")
    print(f"{'theta':>7s} {'param':>7s} {'gradient':>12s} {'var theorem2':>13s} {'var score':>12s}")
    for theta in (0.1, 0.3, 0.5, 0.7, 0.9):
        for dist in (gsbref.Bernoulli(probs=[theta]), gsbref.Bernoulli.from_logits([np.log(theta / (1 - theta))])):
            Z, p = enumerate_states(dist)
            name = dist.parameters[0].name
            e = theorem2_at(dist, f, Z)[name][:, 0]
            s = f(Z) * dist.score(Z)[name][:, 0]
            m = p @ e
            print(f"{theta:7.2f} {name:>7s} {m:12.6f} {p @ (e - m) ** 2:13.3e} {p @ (s - p @ s) ** 2:12.3e}")
    d, K, h = 20, 10, 8
    rng = np.random.default_rng(20)
    W = rng.normal(size=(h, d)) / (K * np.sqrt(d))
    c = rng.normal(size=h)
    f = gsbref.function("sum(log_sigmoid(W @ z + c))", W=W, c=c)
    logits = rng.normal(size=(d, K))
    print(f"\nd = {d}, K = {K}, f = sum(log_sigmoid(W @ z + c)), h = {h}, W ~ N(0, 1/(K^2 d)), "
          f"logits ~ N(0, 1); {n} samples (variances have relative standard error ~ sqrt(2/{n}) for "
          f"near-Gaussian estimates)")
    print(f"{'parametrisation':>26s} {'#params':>8s} {'theorem2 var: min':>18s} {'median':>10s} {'max':>10s}"
          f" {'score var: median':>18s} {'median ratio':>13s}")
    for label, dist, conv in (
        ("probs, reference-last", gsbref.Categorical(probs=np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)), "reference-last"),
        ("probs, free", gsbref.Categorical(probs=np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)), "free"),
        ("logits", gsbref.Categorical.from_logits(logits), None),
    ):
        z = dist.sample(np.random.default_rng(1), n)
        name = dist.parameters[0].name
        e = theorem2_at(dist, f, z, convention=conv)[name]
        sc = dist.score(z, convention=conv or "free")[name] * f(z)[:, None, None]
        ve, vs = e.var(axis=0, ddof=1), sc.var(axis=0, ddof=1)
        print(f"{label:>26s} {ve.size:8d} {ve.min():18.3e} {np.median(ve):10.3e} {ve.max():10.3e}"
              f" {np.median(vs):18.3e} {np.median(vs / np.maximum(ve, 1e-300)):13.3g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--flips", type=int, default=16000, help="S * d, the flipped evaluations per timing")
    ap.add_argument("--h", type=int, default=200)
    ap.add_argument("--d", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--crossover", action="store_true")
    ap.add_argument("--variance", action="store_true")
    ap.add_argument("--samples", type=int, default=20000, help="samples for the categorical variance table")
    args = ap.parse_args()
    if args.variance:
        main_variance(args)
    elif args.crossover:
        main_crossover(args)
    else:
        main_timing(args)


if __name__ == "__main__":
    main()
