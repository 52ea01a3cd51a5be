"""Conformance of other libraries' gradient estimators with gsbref's exact values.

Adapters (:mod:`._torch`, :mod:`._jax`) wrap PyTorch and JAX; neither library is imported until a
check runs.  Two checks:

(a) :mod:`.pointwise` -- the library's per-sample pathwise derivative ``dz/dtheta`` at chosen
    points (a grid of shapes 1e-4 ... 1e4 times quantiles, and a randomised search with shapes
    log-uniform on 1e-6 ... 1e7; for JAX also ``jax.random.beta`` end to end) against the exact
    implicit derivative, per region: largest relative error, NaN/inf count, points beyond
    ``sqrt(eps)`` of the dtype.  The float64 reference is re-validated against the mpmath oracle
    at random points of every region (:func:`validate_reference`), every flagged region's worst
    point is recomputed with the oracle, and the worst points overall with both oracle methods;
(b) :mod:`.expectation` -- the library's estimator, averaged, against the oracle's gradient on
    the catalog cases, by :func:`gsbref.testing.assert_unbiased`.

:func:`main_check` (``gsbref check torch|jax``) writes the report (:mod:`.report`);
:func:`main_export` (``gsbref truth --export``) writes the golden tables (:mod:`.golden`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import platform
import sys
import time
from typing import Sequence

import numpy as np

__all__ = ["adapter", "available", "run_check", "validate_reference", "main_check", "main_export"]

LIBRARIES = {"torch": "_torch", "jax": "_jax"}


def available(library: str) -> bool:
    """Whether ``library`` (``"torch"`` or ``"jax"``) can be imported (without importing it)."""
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {sorted(LIBRARIES)}, got {library!r}")
    if library in sys.modules and sys.modules[library] is None:  # import blocked on purpose
        return False
    try:
        return importlib.util.find_spec(library) is not None
    except (ImportError, ValueError):
        return False


def adapter(library: str):
    """The adapter module of ``library``; ImportError naming the extra when it is missing."""
    if not available(library):
        raise ImportError(f"{library} is not installed; pip install 'gsbref[{library}]'")
    return importlib.import_module(f".{LIBRARIES[library]}", __name__)


_POINT_KEYS = ("k", "a", "b", "z", "log_z", "log_ga", "log_gb", "seed")


def _confirmed_point(g, p, dps: int) -> dict:
    """One library value at point ``p`` of quantity ``g["quantity"]`` against both oracle methods."""
    from . import _reference as R

    c = R.confirm(g["quantity"], p, dps)
    exf = float(c.pop("value"))
    lib = p["lib"]
    if not np.isfinite(lib):
        rel = None
    else:
        rel = 0.0 if lib == exf else abs(lib - exf) / abs(exf) if exf != 0 else float("inf")
    return {"point": {k: p[k] for k in _POINT_KEYS if k in p}, "u": p["u"], "lib": lib, "bulk_reference": p["exact"],
            "oracle": c, "confirmed_rel_err": rel}


def _confirm_regions(parts, dps: int = 30) -> None:
    """For every region with NaN/inf or out-of-tolerance results, recompute the exact value at
    its worst finite point and at its first NaN/inf point with the oracle's quadrature (``dps``
    digits); store the confirmed relative error (``r["confirmed_rel_err"]``) and whether the
    region's flag stands against the oracle (``r["confirmed"]``)."""
    from . import _reference as R

    for g in parts:
        tol = g["tolerance"]
        for r in g["regions"].values():
            if not (r["nonfinite"] or r["out_of_tol"]):
                continue
            ok = True
            if r["nonfinite_point"] is not None:
                ok &= bool(np.isfinite(float(R.mp_exact(g["quantity"], r["nonfinite_point"], dps))))
            if r["out_of_tol"] and r["worst"] is not None:
                p = r["worst"]
                ex = float(R.mp_exact(g["quantity"], p, dps))
                rel = 0.0 if p["lib"] == ex else abs(p["lib"] - ex) / abs(ex) if ex != 0 else float("inf")
                r["confirmed_rel_err"] = rel
                ok &= rel > tol
            r["confirmed"] = ok


def _findings(parts, confirm_dps: int = 30) -> list[dict]:
    """Per (library, dtype, quantity, grid or search) with NaN/inf or out-of-tolerance results:
    the worst finite point and the first NaN/inf point over all regions, each recomputed with
    both oracle methods at ``confirm_dps`` digits, with a reproducer.  ``confirmed``: the NaN/inf
    occurred where the oracle is finite, and the worst error exceeds the tolerance against the
    oracle too."""
    from .report import reproducer

    out = []
    for g in parts:
        if not (g["n_nonfinite"] or g["n_out_of_tol"]):
            continue
        tol = g["tolerance"]
        src = "grid" if "n" not in g else (f"{g['n']} draws of jax.random.beta" if "end to end" in g["quantity"]
                                           else f"random search ({g['n']} draws)")
        regs = g["regions"]
        checked = []
        nf = [(k, r["nonfinite_point"]) for k, r in regs.items() if r["nonfinite_point"] is not None]
        if nf:
            c = _confirmed_point(g, nf[0][1], confirm_dps)
            c.update(kind="NaN/inf", region=nf[0][0], confirmed=bool(np.isfinite(float(c["oracle"]["quad"]))))
            checked.append(c)
        fin = [(k, r) for k, r in regs.items() if r["worst"] is not None and r["max_rel_err"] is not None]
        if g["n_out_of_tol"] and fin:
            k, r = max(fin, key=lambda kr: kr[1]["max_rel_err"])
            c = _confirmed_point(g, r["worst"], confirm_dps)
            c.update(kind="largest relative error", region=k,
                     confirmed=c["confirmed_rel_err"] is not None and c["confirmed_rel_err"] > tol)
            checked.append(c)
        out.append({
            "library": g["library"], "dtype": g["dtype"], "quantity": g["quantity"], "source": src,
            "evaluated": g["n_valid"], "nonfinite": g["n_nonfinite"], "out_of_tol": g["n_out_of_tol"], "tolerance": tol,
            "title": (f"{g['library']} {g['dtype']} {g['quantity']} ({src}): {g['n_nonfinite']} NaN/inf and "
                      f"{g['n_out_of_tol']} beyond {tol:.1e} of {g['n_valid']} evaluated points"),
            "confirmed": all(c["confirmed"] for c in checked), "points": checked,
            "reproducers": [reproducer(g["library"], g["quantity"], g["dtype"], c["point"], c["oracle"]["quad"])
                            for c in checked],
        })
    return out


def validate_reference(parts, per_region: int = 2, rng=0, dps: int = 30) -> dict:
    """The bulk reference against the mpmath oracle at ``per_region`` random points of every
    region (:func:`.pointwise.validate_reference`)."""
    from .pointwise import validate_reference as _v

    return _v(parts, per_region, rng, dps)


def run_check(library: str, *, n_samples: int = 60_000, search_draws: int = 10_000, rng=0,
              dtypes=("float64", "float32"), false_alarm: float = 1e-6, confirm: int = 2, log=None,
              expectation: bool = True) -> dict:
    """Run checks (a) and (b) for ``library``; the result dict :func:`report.write` takes.
    ``confirm``: points per region at which the bulk reference is re-checked with the oracle."""
    import gsbref

    from ..distributions._base import as_generator
    from . import _reference as R
    from . import expectation as E
    from . import pointwise

    rng = as_generator(rng)
    ad = adapter(library)
    if library == "torch":
        import torch

        torch.set_num_threads(1)
    log = log or (lambda s: None)
    res = {"library": library, "version": ad.version(), "gsbref_version": gsbref.__version__,
           "date": time.strftime("%Y-%m-%d"), "platform": f"{platform.machine()}, Python {platform.python_version()}",
           "dtypes": list(dtypes), "seconds": {}}
    ok, why = R.available()
    if ok:
        t0 = time.perf_counter()
        res["grid"] = [g for dt in dtypes for g in pointwise.grid_check(ad, dt)]
        res["search"] = [s for dt in dtypes for s in pointwise.random_search(ad, dt, search_draws, rng)]
        if hasattr(ad, "beta_draws"):
            res["end_to_end"] = [e for dt in dtypes for e in pointwise.end_to_end_beta(ad, dt, search_draws, rng)]
        res["seconds"]["pointwise"] = round(time.perf_counter() - t0, 1)
        log(f"{library}: grid and search in {res['seconds']['pointwise']} s")
        t0 = time.perf_counter()
        res["reference_check"] = validate_reference(res["grid"] + res["search"], confirm, rng)
        res["seconds"]["reference_check"] = round(time.perf_counter() - t0, 1)
        log(f"{library}: reference check in {res['seconds']['reference_check']} s, "
            f"max rel. diff {res['reference_check']['max_rel_diff']:.1e}")
        t0 = time.perf_counter()
        parts = res["grid"] + res["search"] + res.get("end_to_end", [])
        _confirm_regions(parts)
        res["findings"] = _findings(parts)
        res["seconds"]["findings"] = round(time.perf_counter() - t0, 1)
        log(f"{library}: {len(res['findings'])} findings confirmed in {res['seconds']['findings']} s")
    else:
        res["grid_note"] = f"the exact per-sample reference is not available ({why})"
    if expectation:
        t0 = time.perf_counter()
        res["expectation"] = E.expectation_check(ad, dtypes, n_samples, rng, false_alarm, log=log)
        res["seconds"]["expectation"] = round(time.perf_counter() - t0, 1)
    else:
        res["expectation"] = []
    return res


def _summary(res) -> str:
    L = []
    for part in res.get("grid", []) + res.get("search", []) + res.get("end_to_end", []):
        kind = "grid" if "n" not in part else (f"end-to-end draws: {part['n']}" if "end to end" in part["quantity"]
                                               else f"search of {part['n']}")
        L.append(f"- {part['quantity']} {part['dtype']} ({kind}): {part['n_nonfinite']} NaN/inf, "
                 f"{part['n_out_of_tol']} of {part['n_valid']} beyond {part['tolerance']:.1e}; largest relative error "
                 f"{max((r['max_rel_err'] or 0) for r in part['regions'].values()):.2e}.")
    rc = res.get("reference_check")
    if rc:
        n = sum(b["points"] for q in rc["quantities"].values() for b in q.values())
        L.append(f"- Bulk reference (gsbref.special) against the mpmath oracle ({rc['dps']} digits) at {n} points "
                 f"({rc['per_region']} per region, shapes 1e-6 … 1e7): largest relative difference {rc['max_rel_diff']:.1e}.")
    fs = res.get("findings", [])
    if fs:
        regs = [r for part in res.get("grid", []) + res.get("search", []) + res.get("end_to_end", [])
                for r in part["regions"].values()
                if "confirmed" in r]
        L.append(f"- {sum(r['confirmed'] for r in regs)} of {len(regs)} flagged regions confirmed at their worst point "
                 f"by the mpmath oracle (quadrature, 30 digits); {sum(f['confirmed'] for f in fs)} of {len(fs)} "
                 "summary findings confirmed by both oracle methods.")
    exp = res.get("expectation", [])
    if not exp:
        return "\n".join(L)
    tested = [r for r in exp if r["passed"] is not None]
    failed = [r for r in tested if not r["passed"]]
    L.append(f"- (b) {len(tested) - len(failed)} of {len(tested)} (case, dtype) rows pass the unbiasedness test"
             + (": failing " + ", ".join(f"{r['case']} ({r['dtype']})" for r in failed) if failed else "") + ".")
    return "\n".join(L)


def main_check(argv: Sequence[str] | None = None) -> int:
    """``gsbref check torch|jax [--out DIR] [--samples N] [--search N] [--seed S]``."""
    from .report import write

    p = argparse.ArgumentParser(prog="gsbref check", description="conformance of torch / jax gradient estimators")
    p.add_argument("library", choices=sorted(LIBRARIES))
    p.add_argument("--out", default="docs/results/conformance")
    p.add_argument("--samples", type=int, default=60_000, help="samples per (case, dtype) in check (b)")
    p.add_argument("--search", type=int, default=10_000, help="random-search draws per quantity and dtype")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--false-alarm", type=float, default=1e-6)
    p.add_argument("--confirm", type=int, default=2,
                   help="points per region at which the float64 reference is re-checked with the mpmath oracle")
    p.add_argument("--no-expectation", action="store_true", help="skip check (b)")
    a = p.parse_args(argv)
    if a.search < 1 or a.samples < 2 or a.confirm < 0:
        p.error("--search must be >= 1, --samples >= 2 and --confirm >= 0")
    try:
        res = run_check(a.library, n_samples=a.samples, search_draws=a.search, rng=a.seed,
                        false_alarm=a.false_alarm, confirm=a.confirm, expectation=not a.no_expectation,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
    except ImportError as exc:
        print(f"gsbref: error: {exc}", file=sys.stderr)
        return 2
    res["command"] = "gsbref check " + " ".join(argv if argv is not None else sys.argv[1:])
    res["summary"] = _summary(res)
    paths = write(res, a.out)
    for k, v in paths.items():
        print(f"{k}: {v}")
    return 0


def main_export(argv: Sequence[str] | None = None) -> int:
    """``gsbref truth --export [DIR] [--dps N] [--case NAME ...]`` (see :mod:`.golden`)."""
    from .golden import main_export as _m

    return _m(argv)
