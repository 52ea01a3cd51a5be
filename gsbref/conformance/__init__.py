"""Conformance of other libraries' gradient estimators with gsbref's exact values.

Adapters (:mod:`._torch`, :mod:`._jax`) wrap PyTorch and JAX; neither library is imported until a
check runs.  Two checks:

(a) :mod:`.pointwise` -- the library's per-sample pathwise derivative ``dz/dtheta`` at chosen
    points (a grid of shapes 1e-4 ... 1e4 times quantiles, and a randomised search with shapes
    log-uniform on 1e-6 ... 1e7) against the exact implicit derivative, per region: largest
    relative error, NaN/inf count, points beyond ``sqrt(eps)`` of the dtype;
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

__all__ = ["adapter", "available", "run_check", "main_check", "main_export"]

LIBRARIES = {"torch": "_torch", "jax": "_jax"}


def available(library: str) -> bool:
    """Whether ``library`` (``"torch"`` or ``"jax"``) can be imported (without importing it)."""
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {sorted(LIBRARIES)}, got {library!r}")
    return importlib.util.find_spec(library) is not None


def adapter(library: str):
    """The adapter module of ``library``; ImportError naming the extra when it is missing."""
    if not available(library):
        raise ImportError(f"{library} is not installed; pip install 'gsbref[{library}]'")
    return importlib.import_module(f".{LIBRARIES[library]}", __name__)


def _findings(ad, parts, confirm_dps: int = 30) -> list[dict]:
    """The worst point of every region with NaN/inf or out-of-tolerance results, confirmed with
    the mpmath oracle, with a reproducer."""
    import mpmath

    from . import _reference as R
    from .report import reproducer

    out = []
    for g in parts:
        for region, r in g["regions"].items():
            if not (r["nonfinite"] or r["out_of_tol"]) or r["worst"] is None:
                continue
            p = r["worst"]
            q = g["quantity"]
            if q == "gamma.shape":
                ex = R.mp_gamma_dz_dshape(p["z"], p["k"], confirm_dps)
            elif q == "loggamma.shape":
                ex = R.mp_dlogz_dshape(p["log_z"], p["k"], confirm_dps)
            else:
                da, db = R.mp_beta_dz_dparams(p["z"], p["a"], p["b"], confirm_dps)
                ex = da if q == "beta.alpha" else db
            exs = mpmath.nstr(ex, 17)
            exf = float(ex)
            rel = abs(p["lib"] - exf) / abs(exf) if exf != 0 else float("inf")
            kind = "NaN/inf" if r["nonfinite"] else f"relative error {rel:.2e}"
            src = "grid" if "n" not in g else f"random search ({g['n']} draws)"
            out.append({
                "library": g["library"], "dtype": g["dtype"], "quantity": q, "region": region, "source": src,
                "title": f"{g['library']} {g['dtype']} {q}, {region}: {kind}",
                "detail": (f"{r['nonfinite']} NaN/inf and {r['out_of_tol']} out-of-tolerance points of {r['points']} "
                           f"in this region ({src}); worst at " + ", ".join(f"{k}={v!r}" for k, v in p.items()
                                                                           if k in ("k", "a", "b", "z", "log_z")) +
                           f": library {p['lib']!r}, exact (mpmath, {confirm_dps} digits) {exs}."),
                "point": p, "exact": exs, "confirmed_rel_err": rel,
                "reproducer": reproducer(g["library"], q, g["dtype"], {k: v for k, v in p.items() if k in ("k", "a", "b", "z", "log_z")}, exs),
            })
    return out


def _confirm_subset(parts, n: int, rng, dps: int = 30) -> dict:
    """Recompute ``n`` random grid/search points of the float64 bulk reference with the mpmath
    oracle: the largest relative difference (the reference's own error)."""
    from . import _reference as R

    worst = 0.0
    recs = [(g["quantity"], r) for g in parts for r in g.get("records", [])]
    if not recs:
        return {"points": 0, "max_rel_diff": None}
    idx = rng.choice(len(recs), size=min(n, len(recs)), replace=False)
    for i in idx:
        q, p = recs[i]
        if q == "gamma.shape":
            ex = R.mp_gamma_dz_dshape(p["z"], p["k"], dps)
        elif q == "loggamma.shape":
            ex = R.mp_dlogz_dshape(p["log_z"], p["k"], dps)
        else:
            da, db = R.mp_beta_dz_dparams(p["z"], p["a"], p["b"], dps)
            ex = da if q == "beta.alpha" else db
        ex = float(ex)
        if ex != 0:
            worst = max(worst, abs(p["exact"] - ex) / abs(ex))
    return {"points": int(len(idx)), "max_rel_diff": worst}


def run_check(library: str, *, n_samples: int = 60_000, search_draws: int = 10_000, rng=0,
              dtypes=("float64", "float32"), false_alarm: float = 1e-6, confirm: int = 50, log=None) -> dict:
    """Run checks (a) and (b) for ``library``; the result dict :func:`report.write` takes."""
    import gsbref

    from ..distributions._base import as_generator
    from . import _reference as R
    from . import expectation, pointwise

    rng = as_generator(rng)
    ad = adapter(library)
    if library == "torch":
        import torch

        torch.set_num_threads(1)
    res = {"library": library, "version": ad.version(), "gsbref_version": gsbref.__version__,
           "date": time.strftime("%Y-%m-%d"), "platform": f"{platform.machine()}, Python {platform.python_version()}",
           "dtypes": list(dtypes)}
    ok, why = R.available()
    if ok:
        res["grid"] = [g for dt in dtypes for g in pointwise.grid_check(ad, dt)]
        res["search"] = [s for dt in dtypes for s in pointwise.random_search(ad, dt, search_draws, rng)]
        res["findings"] = _findings(ad, res["grid"] + res["search"])
        res["reference_check"] = _confirm_subset(res["grid"], confirm, rng)
    else:
        res["grid_note"] = f"the exact per-sample reference is not available ({why})"
    res["expectation"] = expectation.expectation_check(ad, dtypes, n_samples, rng, false_alarm, log=log)
    return res


def _summary(res) -> str:
    L = []
    for part in res.get("grid", []) + res.get("search", []):
        kind = "grid" if "n" not in part else f"search of {part['n']}"
        L.append(f"- {part['quantity']} {part['dtype']} ({kind}): {part['n_nonfinite']} NaN/inf, "
                 f"{part['n_out_of_tol']} of {part['n_valid']} beyond {part['tolerance']:.1e}; largest relative error "
                 f"{max((r['max_rel_err'] or 0) for r in part['regions'].values()):.2e}.")
    rc = res.get("reference_check")
    if rc and rc["points"]:
        L.append(f"- Bulk reference (gsbref.special) against the mpmath oracle on {rc['points']} random grid points: "
                 f"largest relative difference {rc['max_rel_diff']:.1e}.")
    exp = res.get("expectation", [])
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
    a = p.parse_args(argv)
    try:
        res = run_check(a.library, n_samples=a.samples, search_draws=a.search, rng=a.seed,
                        false_alarm=a.false_alarm, log=lambda s: print(s, file=sys.stderr))
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
