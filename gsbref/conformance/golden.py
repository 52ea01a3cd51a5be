"""Golden tables: the catalog's exact values as versioned fixtures other projects can vendor.

``gsbref truth --export DIR`` (:func:`main_export`) writes

* ``golden-<version>.json`` -- for every catalog case: the distribution (``repr`` and parameter
  values), the formula and its constants, ``E[f]`` and every gradient component as decimal strings
  of ``dps`` significant digits, the oracle's error estimates, the method that produced them, and a
  second, independent method's agreement (decimal digits, relative to the largest component of
  the same parameter's gradient, capped at ``dps``) where one applies; plus, once
  ``gsbref.oracle.implicit_derivative`` is available, per-sample implicit derivatives ``dz/dtheta``
  on a grid of shapes and quantiles (Gamma shape; Beta alpha and beta);
* ``golden-<version>-gradients.csv`` and ``golden-<version>-implicit.csv`` -- the same numbers,
  one row per component, for tools that read CSV.

Every file carries ``gsbref.__version__``, ``dps``, the methods, and a schema number
(:data:`SCHEMA`); values are strings so that no digit is lost to a float parser.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path
from typing import Sequence

import mpmath
import numpy as np

__all__ = ["SCHEMA", "golden_case", "implicit_grid", "export", "main_export"]

SCHEMA = 1
#: shapes and quantiles of the per-sample implicit-derivative grid (decades 1e-4 ... 1e4)
GRID_SHAPES = tuple(10.0 ** e for e in range(-4, 5))
GRID_QUANTILES = (1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-6)


def _s(x, dps: int) -> str:
    return mpmath.nstr(mpmath.mpf(x), dps, min_fixed=-5, max_fixed=8, strip_zeros=False)


def _flat(v) -> list:
    a = np.asarray(v, dtype=object)
    return list(a.reshape(-1))


def _agreement(a, b, err=0, cap: float = float("inf"), floor=0) -> float:
    """Decimal digits to which ``a`` and ``b`` agree, relative to the larger of ``|a|``, ``|b|``
    and ``floor`` (the largest component of the same gradient: norm-wise, so that a component
    that is 0 exactly -- it comes out as noise such as 1e-89 -- is judged on the gradient's scale);
    ``cap`` when they agree within ``err`` (the oracle's absolute error estimate)."""
    with mpmath.workdps(60):
        d = abs(mpmath.mpf(a) - mpmath.mpf(b))
        if d <= abs(mpmath.mpf(err)):
            return cap
        scale = max(abs(a), abs(b), abs(mpmath.mpf(floor)), mpmath.mpf(10) ** -300)
        return min(cap, float("inf") if d == 0 else float(-mpmath.log10(d / scale)))


def golden_case(c, dps: int) -> dict:
    """Exact E[f] and gradient of catalog case ``c`` at ``dps`` digits, with a cross-check."""
    from .. import oracle

    dist, f = c.build()
    t0 = time.perf_counter()
    g = oracle.gradient(dist, f, dps=dps)
    seconds = time.perf_counter() - t0
    methods = oracle.methods(dist, f)
    second = next((m for m in methods if m != g.method and m != "diff"), None)
    second = second or next((m for m in methods if m != g.method), None)
    agree = None
    if second is not None:
        g2 = oracle.gradient(dist, f, dps=dps, method=second)
        agree = {}
        for k in g:
            top = max(abs(x) for x in _flat(g[k]))
            agree[k] = min(_agreement(x, y, max(e, e2), float(dps), top) for x, y, e, e2 in
                           zip(_flat(g[k]), _flat(g2[k]), _flat(g.errors[k]), _flat(g2.errors[k])))
    with mpmath.workdps(dps + 5):
        grad = {k: [_s(x, dps) for x in _flat(v)] for k, v in g.items()}
        err = {k: [_s(x, 3) for x in _flat(v)] for k, v in g.errors.items()}
        out = {
            "name": c.name, "tags": list(c.tags), "distribution": repr(dist),
            "parameters": {k: np.asarray(v, float).tolist() for k, v in dist.params.items()},
            "f": c.f, "constants": {k: np.asarray(v, float).tolist() for k, v in c.constants.items()},
            "method": g.method, "expectation": _s(g.expectation.value, dps),
            "expectation_error": _s(g.expectation.error, 3),
            "gradient": grad, "gradient_shape": {k: list(np.shape(np.asarray(v, dtype=object))) for k, v in g.items()},
            "gradient_error": err, "convention": g.convention,
            "cross_check": None if second is None else {"method": second, "digits": agree},
            "seconds": round(seconds, 3),
        }
    return out


def implicit_grid(dps: int, shapes=GRID_SHAPES, quantiles=GRID_QUANTILES) -> list[dict]:
    """Per-sample implicit derivatives from ``gsbref.oracle.implicit_derivative`` (quadrature) at
    the float64 ``u``-quantiles (SciPy's inverse incomplete gamma/beta; the point ``z`` is exact as
    written, the quantile nominal) of Gamma(k, 1) (dz/dk, dz/dscale) and Beta(a, b) for ``a, b`` in
    every other shape (dz/da, dz/db), each with the number of decimal digits to which the oracle's
    second method (numerical differentiation of the CDF) agrees (``agree_digits``; ``None`` where
    that method fails).  Quantiles that are not normal positive float64 numbers (underflow) or
    round to 1 are left out.  Raises ImportError when the oracle function is not available."""
    from .. import distributions
    from ._reference import TINY, beta_points, gamma_points, mp_implicit

    def row(family, params, dist, u, z):
        d = mp_implicit(dist, z, dps)
        try:
            d2 = mp_implicit(dist, z, dps, method="diff")
            agree = {k2: _agreement(d[k2], d2[k2], cap=float(dps)) for k2 in d}
        except (ValueError, ZeroDivisionError, mpmath.libmp.NoConvergence):
            agree = None
        with mpmath.workdps(dps + 5):  # _s must not round the values to the default 53 bits
            dz = {k2: _s(v, dps) for k2, v in d.items()}
        return {"family": family, "params": params, "quantile": u, "z": repr(z), "dz": dz, "agree_digits": agree}

    rows = []
    for k in shapes:
        for u in quantiles:
            z = float(gamma_points(k, u, "float64"))
            if not TINY["float64"] <= z < np.inf:
                continue  # the quantile is not a normal float64 number
            rows.append(row("Gamma", {"shape": k, "scale": 1.0}, distributions.Gamma(k, 1.0), u, z))
    for a in shapes[::2]:
        for b in shapes[::2]:
            for u in quantiles:
                z = float(beta_points(a, b, u, "float64"))
                if not TINY["float64"] <= z < 1:
                    continue
                rows.append(row("Beta", {"alpha": a, "beta": b}, distributions.Beta(a, b), u, z))
    return rows


def export(directory, dps: int = 30, cases=None, implicit: bool = True, log=None,
           grid_shapes=GRID_SHAPES, grid_quantiles=GRID_QUANTILES) -> dict:
    """Write the golden tables into ``directory``; return the paths written.  ``cases``: catalog
    cases (default all); ``grid_shapes`` x ``grid_quantiles``: the implicit-derivative grid."""
    import gsbref

    from ..catalog import CASES

    if not isinstance(dps, int) or dps < 15:
        raise ValueError(f"dps must be an integer >= 15 (float64 needs 17 digits to round-trip), got {dps!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in (CASES if cases is None else cases):
        rows.append(golden_case(c, dps))
        if log:
            log(f"{c.name}: {rows[-1]['method']} in {rows[-1]['seconds']} s")
    grid, grid_note = [], None
    if implicit:
        try:
            grid = implicit_grid(dps, grid_shapes, grid_quantiles)
        except ImportError as exc:
            grid_note = f"per-sample implicit derivatives not exported: {exc}"
    version = gsbref.__version__
    meta = {"schema": SCHEMA, "gsbref_version": version, "dps": dps,
            "created": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
            "mpmath": mpmath.__version__,
            "methods": sorted({r["method"] for r in rows} | {r["cross_check"]["method"] for r in rows if r["cross_check"]}),
            "values": "decimal strings with dps significant digits; gradients flattened in C order (gradient_shape)",
            "implicit_grid": {"shapes": list(grid_shapes), "quantiles": list(grid_quantiles),
                              "method": "gsbref.oracle.implicit_derivative (quad) at SciPy float64 quantiles; z exact as written, "
                                        "quantile nominal; agree_digits: agreement with its 'diff' method",
                              "note": grid_note}}
    js = directory / f"golden-{version}.json"
    js.write_text(json.dumps({"meta": meta, "cases": rows, "implicit": grid}, indent=1) + "\n")
    gcsv = directory / f"golden-{version}-gradients.csv"
    with gcsv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["# gsbref", version, "dps", dps, "schema", SCHEMA])
        w.writerow(["case", "distribution", "f", "method", "quantity", "index", "value", "error", "cross_check_digits"])
        for r in rows:
            w.writerow([r["name"], r["distribution"], r["f"], r["method"], "E[f]", "", r["expectation"],
                        r["expectation_error"], ""])
            for k, vals in r["gradient"].items():
                dig = r["cross_check"]["digits"][k] if r["cross_check"] else ""
                for i, v in enumerate(vals):
                    w.writerow([r["name"], r["distribution"], r["f"], r["method"], f"d/d{k}", i, v,
                                r["gradient_error"][k][i], f"{dig:.1f}" if dig != "" else ""])
    paths = {"json": str(js), "gradients_csv": str(gcsv)}
    if grid:
        icsv = directory / f"golden-{version}-implicit.csv"
        with icsv.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["# gsbref", version, "dps", dps, "schema", SCHEMA])
            w.writerow(["family", "params", "quantile", "z", "parameter", "dz_dparameter", "agree_digits"])
            for r in grid:
                for k, v in r["dz"].items():
                    ag = "" if r["agree_digits"] is None else f"{r['agree_digits'][k]:.1f}"
                    w.writerow([r["family"], json.dumps(r["params"]), r["quantile"], r["z"], k, v, ag])
        paths["implicit_csv"] = str(icsv)
    return paths


def main_export(argv: Sequence[str] | None = None) -> int:
    """``gsbref truth --export DIR [--dps N] [--case NAME ...] [--no-implicit]``."""
    p = argparse.ArgumentParser(prog="gsbref truth --export", description="write the golden tables")
    p.add_argument("directory", nargs="?", default="docs/results/golden")
    p.add_argument("--dps", type=int, default=30)
    p.add_argument("--case", action="append", help="only these catalog cases (repeatable)")
    p.add_argument("--no-implicit", action="store_true", help="skip the per-sample implicit-derivative grid")
    a = p.parse_args(argv)
    from ..catalog import case

    cs = [case(n) for n in a.case] if a.case else None
    paths = export(a.directory, a.dps, cs, implicit=not a.no_implicit, log=lambda s: print(s, file=sys.stderr))
    for k, v in paths.items():
        print(f"{k}: {v}")
    return 0
