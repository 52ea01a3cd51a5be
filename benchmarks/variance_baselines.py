"""Single-sample variance and cost of the continuous gradient estimators, side by side.

    python benchmarks/variance_baselines.py [--total 4e5] [--repeat 3] [--dims 1,10,100]
                                            [--problems toy1,toy2,laplace] [--no-implicit-cost]
                                            [--out docs/results/variance_baselines.md] [--json FILE]

Problems (the paper's section 6.1 toy problems, and the Laplace rule of eq. 18 on a smooth f):

* ``toy1``: ``Gamma(shape=3, scale=0.5)`` per coordinate (catalog ``gamma-toy1``), ``f = sum((z - 0.49)**2)``;
* ``toy2``: the same Gamma (catalog ``gamma-toy2``), ``f = sum(exp(-0.49 z))``;
* ``laplace``: ``Laplace(loc=0.2, scale=0.5)`` (catalog ``laplace-softplus``), ``f = sum(softplus(z))``;

each for ``d`` coordinates with identical parameters.  Estimators: ``score``, ``pathwise`` (Gamma:
scale explicit, shape through the implicit gradient, ``shape="implicit"``), ``implicit``, ``grg``,
``gsb`` (``order=8``), ``gsb-closed`` (where it applies: exponential-polynomial f), and
``gsb-resummed`` with sampled ``t`` and with ``quadrature=8``.

Reported per parameter: the single-sample variance of one coordinate's gradient estimate (the
mean over the ``d`` coordinates, which are exchangeable), the time per sample (one draw of the
whole ``d``-vector, all parameters, through :func:`gsbref.estimators.estimate`; CPU time of the
process (``time.process_time``: less sensitive than wall-clock time to the load of a shared
machine), median of ``repeat`` runs of ``S = total / d`` samples), and variance x time per sample (the time to bring
a coordinate's standard error to 1; lower is better).

Exact variances.  Where an estimator's per-coordinate estimate has the form ``A(z_j) + R B(z_j)``
with ``R = sum_{i != j} g(z_i)`` (``f = sum_j g(z_j)``) -- ``B = 0`` for pathwise, implicit, gsb,
gsb-closed, ``B = score`` for the score function, ``B = d log q(eps)/dk`` for GRG -- the variance is
``E[A^2] + 2 (d-1) m E[AB] + ((d-1) v + (d-1)^2 m^2) E[B^2] - (E[A] + (d-1) m E[B])^2``
(``m``, ``v`` the mean and variance of ``g(z)``), one-dimensional integrals computed by quadrature:
the trapezoidal rule in ``u = log z`` for the Gamma (steps 0.1 and 0.05; the larger of the two
results' difference and 1e-12 relative is the stated error) and Gauss-Laguerre on each half-line
for the Laplace (150 and 300 nodes).  These are marked ``exact``; the resummed estimators (which
draw ``t`` or evaluate shifted points) are Monte Carlo estimates from the ``S x repeat`` samples,
marked ``MC`` with the standard error of the variance estimate.  The sampled variances are
reported next to the exact ones as a check (``MC/exact`` column of the raw JSON).

Bias.  ``gsb`` at order 8 is exact for toy1 (the series terminates), biased by the omitted
terms for toy2 (relative ``< 1e-5``) and for Laplace + softplus (a divergent series, DESIGN 1.4);
the exact truncation bias from :func:`gsbref.oracle.truncation.truncation_bias` is listed.  The
Laguerre rule of ``quadrature=8`` has its own (small) bias for softplus (module docstring of
:mod:`gsbref.estimators.resummed`).

Implicit Gamma cost line: CPU time of :func:`gsbref.special.gamma_dz_dshape` per variate, as a
ratio to the time NumPy needs to draw the variate (``Generator.gamma``, scalar shape), at shapes
0.3, 3 and 30.

A variance whose standard deviation is below ``sqrt(eps) |mean|`` is shown as ``0 (rounding only)``
(the Laguerre form of the Laplace location estimate does not depend on ``z`` for separable f).
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy import special as sp  # noqa: E402

import gsbref  # noqa: E402
from gsbref.estimators import estimate  # noqa: E402
from gsbref.estimators._warnings import GSBTruncationWarning  # noqa: E402

PROBLEMS = {
    "toy1": ("Gamma", {"shape": 3.0, "scale": 0.5}, "sum((z - 0.49)**2)", "(z - 0.49)**2"),
    "toy2": ("Gamma", {"shape": 3.0, "scale": 0.5}, "sum(exp(-0.49*z))", "exp(-0.49*z)"),
    "laplace": ("Laplace", {"loc": 0.2, "scale": 0.5}, "sum(softplus(z))", "softplus(z)"),
}
# label: (method, options, families it applies to, form of the estimate: "z" (function of z_j),
#         "score", "grg", or None (Monte Carlo only))
METHODS = {
    "score": ("score", {}, ("Gamma", "Laplace"), "score"),
    "pathwise": ("pathwise", {}, ("Gamma", "Laplace"), "z"),
    "implicit": ("implicit", {}, ("Gamma",), "z"),
    "grg": ("grg", {}, ("Gamma",), "grg"),
    "gsb N=8": ("gsb", {"order": 8}, ("Gamma", "Laplace"), "z"),
    "gsb-closed": ("gsb-closed", {}, ("Gamma",), "z"),
    "resummed": ("gsb-resummed", {}, ("Gamma", "Laplace"), None),
    "resummed L8": ("gsb-resummed", {"quadrature": 8}, ("Gamma", "Laplace"), None),
}


def _dist(family, theta, d):
    cls = getattr(gsbref, family)
    return cls(**{k: np.full(d, v) for k, v in theta.items()})


def _options(label, family):
    method, opts, _, _ = METHODS[label]
    opts = dict(opts)
    if label == "pathwise" and family == "Gamma":
        opts["shape"] = "implicit"
    return method, opts


# ----------------------------------------------------------------------------------------------
# exact variances by quadrature (d = 1 pieces)
# ----------------------------------------------------------------------------------------------
def _nodes(family, theta, level):
    """Quadrature nodes ``z`` (and log-Gamma nodes ``u``) with weights for one coordinate."""
    if family == "Gamma":
        k, mu = theta["shape"], theta["scale"]
        h = 0.1 / 2**level
        lo = (math.log(1e-22) + math.log(k) + sp.gammaln(k)) / k
        hi = math.log(k + 60 * math.sqrt(k) + 60)
        u = h * np.arange(math.floor(lo / h), math.ceil(hi / h) + 1)
        w = h * np.exp(k * u - np.exp(u) - sp.gammaln(k))
        return mu * np.exp(u), u, w
    n = 150 * 2**level
    x, w = sp.roots_laguerre(n)
    m, b = theta["loc"], theta["scale"]
    z = np.concatenate([m - b * x, m + b * x])
    return z, None, np.concatenate([w, w]) / 2


def _pieces(label, family, theta, g_expr, z, u):
    """``{param: (A, B)}`` at the nodes (one coordinate)."""
    from gsbref.estimators.grg import gamma_standardisation, grg_at
    from gsbref.estimators.gsb import build_rule
    from gsbref.estimators.implicit import implicit_at
    from gsbref.estimators.pathwise import pathwise_at

    dist1 = _dist(family, theta, 1)
    f1 = gsbref.function(f"sum({g_expr})")
    Z = z[:, None]
    gz = np.asarray(f1(Z), float)
    method, opts = _options(label, family)
    form = METHODS[label][3]
    zero = np.zeros_like(z)
    if form == "score":
        s = dist1.score(Z)
        return {k: (gz * v.reshape(-1), v.reshape(-1)) for k, v in s.items()}
    if form == "grg":
        diag = {}
        est = grg_at(dist1, f1, u[:, None], diagnostics=diag)
        c = gamma_standardisation(u, theta["shape"])[2]
        return {"shape": (est["shape"].reshape(-1), c), "scale": (est["scale"].reshape(-1), zero)}
    if label == "pathwise":
        est = pathwise_at(dist1, f1, Z, **opts)
    elif label == "implicit":
        est = implicit_at(dist1, f1, Z)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GSBTruncationWarning)
            rule = build_rule(dist1, f1, method, order=opts.get("order"))
        est = rule.evaluate(Z)[0]
    return {k: (v.reshape(-1), zero) for k, v in est.items()}


def exact_variance(label, family, theta, g_expr, d):
    """``{param: (variance per coordinate, error estimate)}`` or None (Monte Carlo only)."""
    if METHODS[label][3] is None:
        return None
    res = []
    for level in (0, 1):
        z, u, w = _nodes(family, theta, level)
        gz = np.asarray(gsbref.function(f"sum({g_expr})")(z[:, None]), float)
        m = float(w @ gz)
        v = float(w @ gz**2) - m * m
        out = {}
        for k, (A, B) in _pieces(label, family, theta, g_expr, z, u).items():
            EA, EB = w @ A, w @ B
            EA2, EAB, EB2 = w @ A**2, w @ (A * B), w @ B**2
            r = d - 1
            second = EA2 + 2 * r * m * EAB + (r * v + r * r * m * m) * EB2
            mean = EA + r * m * EB
            out[k] = second - mean * mean
        res.append(out)
    return {k: (res[1][k], max(abs(res[1][k] - res[0][k]), 1e-12 * abs(res[1][k]))) for k in res[1]}


# ----------------------------------------------------------------------------------------------
# sampled variances and timings
# ----------------------------------------------------------------------------------------------
def _variance_with_se(x):
    """Mean over coordinates of the per-coordinate sample variance, with its standard error
    (the per-sample averages of squared deviations are iid across samples)."""
    x = x.reshape(x.shape[0], -1)
    mean = x.mean(axis=0)
    dev2 = ((x - mean) ** 2).mean(axis=1)
    S = x.shape[0]
    var, se = float(dev2.mean() * S / (S - 1)), float(dev2.std(ddof=1) / math.sqrt(S))
    # an estimate that does not depend on the draws (up to rounding) has variance 0: a standard
    # deviation below sqrt(eps) |mean| is taken as rounding (no estimator here comes near it
    # otherwise: the smallest genuine relative standard deviation in the table is ~0.1)
    floor = (math.sqrt(np.finfo(float).eps) * float(np.abs(mean).max())) ** 2
    return (0.0, 0.0) if var <= floor else (var, se)


def run(total, dims, repeat, problems, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for pname in problems:
        family, theta, f_expr, g_expr = PROBLEMS[pname]
        for d in dims:
            dist = _dist(family, theta, d)
            S = max(1000, int(total) // d)
            for label, (_, _, fams, _) in METHODS.items():
                if family not in fams:
                    continue
                method, opts = _options(label, family)
                times, chunks = [], []
                if method == "gsb-closed":
                    try:
                        estimate(dist, f_expr, method, 2, rng, **opts)
                    except ValueError:
                        continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", GSBTruncationWarning)
                    for _ in range(repeat):
                        t0 = time.process_time()
                        est = estimate(dist, f_expr, method, S, rng, **opts)
                        times.append(time.process_time() - t0)
                        chunks.append({k: e.samples for k, e in est.items()})
                t_s = statistics.median(times) / S
                exact = exact_variance(label, family, theta, g_expr, d)
                row = {"problem": pname, "d": d, "method": label, "S": S * repeat, "time_per_sample": t_s,
                       "params": {}}
                for k in chunks[0]:
                    x = np.concatenate([c[k] for c in chunks])
                    mc, mc_se = _variance_with_se(x)
                    entry = {"mc": mc, "mc_se": mc_se}
                    if exact is not None:
                        entry["exact"], entry["exact_err"] = exact[k]
                    row["params"][k] = entry
                rows.append(row)
                print(_fmt_row(row), flush=True)
    return rows


def truncation_biases(problems):
    from gsbref.oracle.truncation import truncation_bias

    out = {}
    for pname in problems:
        family, theta, f_expr, _ = PROBLEMS[pname]
        b = truncation_bias(_dist(family, theta, 1), f_expr, 8, dps=20)
        g = gsbref.oracle.gradient(_dist(family, theta, 1), f_expr, dps=20)
        out[pname] = {k: (float(np.asarray(b[k], float).reshape(-1)[0]), float(np.asarray(g[k], float).reshape(-1)[0]))
                      for k in b}
    return out


def implicit_cost(n=1_000_000, repeat=5, seed=1):
    from gsbref import special

    rng = np.random.default_rng(seed)
    out = []
    for k in (0.3, 3.0, 30.0):
        t_draw, t_dz = [], []
        for _ in range(repeat):
            t0 = time.process_time()
            z = rng.gamma(k, 1.0, size=n)
            t1 = time.process_time()
            special.gamma_dz_dshape(z, np.full(n, k))
            t2 = time.process_time()
            t_draw.append(t1 - t0)
            t_dz.append(t2 - t1)
        a, b = statistics.median(t_draw), statistics.median(t_dz)
        out.append({"shape": k, "draw_ns": 1e9 * a / n, "dz_ns": 1e9 * b / n, "ratio": b / a})
    return out


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------
def _var_text(e):
    if "exact" in e:
        return f"{e['exact']:.4g}"
    if e["mc"] == 0:
        return "0 (rounding only)"
    return f"{e['mc']:.4g} ± {e['mc_se']:.2g}"


def _fmt_row(row):
    parts = [f"{row['problem']:8s} d={row['d']:<4d} {row['method']:12s} t/sample {1e6 * row['time_per_sample']:9.3f} us"]
    for k, e in row["params"].items():
        v = e.get("exact", e["mc"])
        parts.append(f"{k}: var {_var_text(e)} (MC {e['mc']:.4g} ± {e['mc_se']:.2g}) var*t {v * row['time_per_sample'] * 1e6:.4g}")
    return " | ".join(parts)


def to_markdown(rows, biases, icost, command, total, repeat, problems):
    lines = [
        "# Single-sample variance of the continuous gradient estimators",
        "",
        f"Produced by `{command}` ({platform.python_implementation()} {platform.python_version()}, "
        f"NumPy {np.__version__}, one BLAS thread, {platform.machine()}; times are CPU times of the "
        "process on a shared machine: indicative, ratios within one run are the meaningful numbers).",
        "",
        "Variance: of one coordinate's gradient estimate, per parameter (mean over the d exchangeable "
        "coordinates).  `exact` = by quadrature (error below the last digit shown), `MC` = from "
        f"the S samples, ± its standard error; `0 (rounding only)`: relative standard deviation below sqrt(eps).  t = time per sample (the whole d-vector, all parameters; "
        f"median of {repeat} runs of S = max(1000, {int(total)} / d) samples).  var×t in units of µs: the "
        "time to bring one coordinate's standard error to 1 (lower is better).  The `pathwise` Gamma "
        "shape column is the implicit gradient (`shape=\"implicit\"`: the Gamma shape has no explicit "
        "reparameterisation).",
        "",
    ]
    for pname in problems:
        family, theta, f_expr, _ = PROBLEMS[pname]
        params = [p.name for p in getattr(gsbref, family).parameters]
        th = ", ".join(f"{k}={v:g}" for k, v in theta.items())
        lines += [f"## {pname}: {family}({th}) per coordinate, f = `{f_expr}`", ""]
        head = "| d | method | " + " | ".join(f"var d/d{p} | var×t d/d{p}" for p in params) + " | t/sample (µs) |"
        lines += [head, "|" + "---|" * (3 + 2 * len(params))]
        for row in rows:
            if row["problem"] != pname:
                continue
            cells = []
            for p in params:
                e = row["params"][p]
                v = e.get("exact", e["mc"])
                tag = "exact" if "exact" in e else "MC"
                cells += [f"{_var_text(e)} ({tag})", f"{v * row['time_per_sample'] * 1e6:.4g}"]
            lines.append(f"| {row['d']} | {row['method']} | " + " | ".join(cells) + f" | {1e6 * row['time_per_sample']:.3f} |")
        b = biases[pname]
        lines += ["", "gsb N=8 truncation bias (exact, per coordinate): " + ", ".join(
            f"d/d{k}: {bv:+.3g} ({bv / gv:+.2g} relative; gradient {gv:.6g})" for k, (bv, gv) in b.items()), ""]
    lines += ["## Implicit Gamma gradient per variate vs sampling the variate", "",
              "`gsbref.special.gamma_dz_dshape(z, k)` on 10^6 variates vs `Generator.gamma(k, size=10^6)` "
              "(median of 5):", "", "| shape k | draw (ns/variate) | dz/dk (ns/variate) | ratio |", "|---|---|---|---|"]
    for r in icost:
        lines.append(f"| {r['shape']:g} | {r['draw_ns']:.1f} | {r['dz_ns']:.1f} | {r['ratio']:.2f} |")
    # consistency of exact and sampled variances
    worst = 0.0
    for row in rows:
        for e in row["params"].values():
            if "exact" in e and e["mc_se"] > 0:
                worst = max(worst, abs(e["mc"] - e["exact"]) / e["mc_se"])
    lines += ["", f"Check: the sampled variances agree with the exact ones within {worst:.2f} of their "
              "standard errors (largest |MC - exact| / se over all exact entries).", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total", type=float, default=4e5, help="samples x coordinates per run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dims", default="1,10,100")
    ap.add_argument("--problems", default=",".join(PROBLEMS), help="subset of " + ",".join(PROBLEMS))
    ap.add_argument("--out", default="docs/results/variance_baselines.md")
    ap.add_argument("--no-implicit-cost", action="store_true", help="skip the implicit Gamma cost line")
    ap.add_argument("--json", default=None, help="also write the raw rows as JSON here")
    args = ap.parse_args(argv)
    dims = [int(x) for x in args.dims.split(",")]
    problems = args.problems.split(",")
    unknown = sorted(set(problems) - set(PROBLEMS))
    if unknown:
        ap.error(f"unknown problems {unknown}; known: {sorted(PROBLEMS)}")
    command = "python " + " ".join([os.path.relpath(sys.argv[0])] + (sys.argv[1:] if argv is None else list(argv)))
    rows = run(args.total, dims, args.repeat, problems)
    biases = truncation_biases(problems)
    icost = [] if args.no_implicit_cost else implicit_cost()
    for r in icost:
        print(f"implicit dz/dk, shape {r['shape']:g}: {r['dz_ns']:.1f} ns/variate, draw {r['draw_ns']:.1f} ns, ratio {r['ratio']:.2f}")
    md = to_markdown(rows, biases, icost, command, args.total, args.repeat, problems)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(md + "\n")
        print(f"wrote {args.out}")
    print(md)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "biases": biases, "implicit_cost": icost}, fh, indent=1)


if __name__ == "__main__":
    main()
