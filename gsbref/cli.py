"""Command line: ``gsbref verify`` runs the verification suite; ``gsbref truth`` prints the
oracle's exact E[f] and gradient.

    gsbref verify --quick --out report/          # report.md, report.json, figures; exit 1 on failure
    gsbref verify --full --workers 8 --out report/
    gsbref verify --full --scheduler tcp://host:8786 --out report/     (Dask)
    gsbref truth --dist "Gamma(shape=2.5, scale=0.7)" --f "sum(softplus(z))" --dps 40
    gsbref truth --case gamma-toy2 --json
    gsbref truth --list
    gsbref truth --export docs/results/golden    # golden tables other projects can vendor
    gsbref check torch --out report/             # conformance of torch (or jax) against the oracle

The suite lives in the top-level package ``verification`` (same distribution); it is imported only
inside the ``verify`` subcommand, so ``import gsbref`` never loads it.

Constants of the formula are given as ``--const NAME=VALUE`` with VALUE a Python literal (a number
or a nested list).  ``--method`` picks an oracle method (default ``auto``); ``--all-methods``
runs every applicable method and prints the digits on which they agree.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from typing import Any, Sequence

import mpmath
import numpy as np

__all__ = ["main", "parse_distribution"]


def parse_distribution(text: str):
    """Build a distribution from text like ``"Gamma(shape=2.5, scale=0.7)"`` or
    ``"Bernoulli.from_logits([0.5, -1])"`` without evaluating code (``ast.literal_eval`` on each
    argument).

    >>> parse_distribution("Gamma(shape=2.5, scale=0.7)")
    Gamma(shape=2.5, scale=0.7)
    """
    from . import distributions

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse distribution {text!r}: {exc.msg}") from None
    if not isinstance(node, ast.Call):
        raise ValueError(f"expected a call like Gamma(shape=2.5, scale=0.7), got {text!r}")
    func = node.func
    if isinstance(func, ast.Name):
        family, ctor = func.id, None
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        family, ctor = func.value.id, func.attr
    else:
        raise ValueError(f"expected a distribution name, got {ast.unparse(func)!r}")
    if family not in distributions.FAMILIES:
        raise ValueError(f"unknown distribution {family!r}; known: {sorted(distributions.FAMILIES)}")
    cls = distributions.FAMILIES[family]
    if ctor is not None and (ctor.startswith("_") or not callable(getattr(cls, ctor, None))):
        raise ValueError(f"{family} has no constructor {ctor!r}")
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except ValueError:
        raise ValueError(f"distribution arguments must be literal numbers or lists: {text!r}") from None
    return (getattr(cls, ctor) if ctor else cls)(*args, **kwargs)


def _parse_const(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--const expects NAME=VALUE, got {item!r}")
        try:
            out[name] = np.asarray(ast.literal_eval(value), dtype=float)
        except (ValueError, SyntaxError):
            raise ValueError(f"--const {name}: VALUE must be a number or a nested list, got {value!r}") from None
    return out


def _num(v, dps):
    if isinstance(v, np.ndarray):
        return [_num(x, dps) for x in v.tolist()] if v.dtype != object else [_num(x, dps) for x in v.reshape(-1)] if v.ndim == 1 else [_num(r, dps) for r in v]
    if dps is None:
        return float(v)
    return mpmath.nstr(v, dps, min_fixed=-4, max_fixed=6)


def _agreement_digits(values, dps):
    """Decimal digits on which a list of numbers agree (relative to the largest), capped at the
    working precision ``dps`` (``None``: float64)."""
    cap = 16 if dps is None else dps + 10
    with mpmath.workdps(cap + 5):
        vals = [mpmath.mpf(v) for v in values]
        scale = max(max(abs(v) for v in vals), mpmath.mpf(10) ** -300)
        spread = max(vals) - min(vals)
        if spread == 0:
            return float(cap)
        return min(float(cap), float(-mpmath.log10(spread / scale)))


def _truth(args) -> int:
    from . import oracle
    from .catalog import CASES, case
    from .functions import function

    if args.list:
        for c in CASES:
            print(f"{c.name:28s} {c.f:40s} {','.join(c.tags)}")
        return 0
    if args.case:
        dist, f = case(args.case).build()
    else:
        if not args.dist or not args.f:
            raise ValueError("give --dist and --f, or --case NAME (see --list)")
        dist = parse_distribution(args.dist)
        f = function(args.f, **_parse_const(args.const))
    dps = None if args.dps == 0 else args.dps
    methods = oracle.methods(dist, f) if args.all_methods else [args.method]
    results = []
    for m in methods:
        t0 = time.perf_counter()
        g = oracle.gradient(dist, f, dps=dps, method=m, convention=args.convention)
        results.append((g, time.perf_counter() - t0))
    shown = dps if dps is not None else None
    if args.json:
        out = {
            "distribution": repr(dist), "f": f.expr, "dps": dps,
            "results": [
                {
                    "method": g.method, "seconds": round(t, 4),
                    "expectation": _num(g.expectation.value, shown), "expectation_error": _num(g.expectation.error, 3 if shown else None),
                    "gradient": {k: _num(v, shown) for k, v in g.items()},
                    "gradient_error": {k: _num(v, 3 if shown else None) for k, v in g.errors.items()},
                    "convention": g.convention,
                }
                for g, t in results
            ],
        }
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    print(f"distribution: {dist!r}")
    print(f"f(z)        : {f.expr}")
    print(f"precision   : {'float64' if dps is None else f'{dps} digits'}")
    for g, t in results:
        print(f"\nmethod {g.method} ({t:.3f} s)")
        e = g.expectation
        print(f"  E[f]        = {_num(e.value, shown)}   (error estimate {_num(e.error, 3 if shown else None)})")
        for k, v in g.items():
            print(f"  dE/d{k:8s}= {_num(v, shown)}")
            print(f"  {'':13s}  (error estimate {_num(g.errors[k], 3 if shown else None)})")
    if len(results) > 1:
        print("\nagreement between methods (decimal digits):")
        for k in results[0][0]:
            flat = [np.asarray(g[k], dtype=object).reshape(-1) for g, _ in results]
            digits = [_agreement_digits([fl[i] for fl in flat], dps) for i in range(flat[0].size)]
            print(f"  {k}: {min(digits):.1f}")
    return 0


#: array backends ``gsbref verify --backend`` accepts: the estimators draw there, the statistics run
#: on NumPy copies; ``cupy`` needs CuPy and a GPU (``verification/gpu_check.sh`` is the prepared check)
BACKENDS = ("numpy", "array_api_strict", "cupy")
_BUILT_BACKENDS = BACKENDS


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _verify(args) -> int:
    if args.backend == "cupy":
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise ValueError("--backend cupy needs CuPy and an NVIDIA GPU: pip install 'gsbref[gpu]'") from None
    import verification  # lazy: the suite is a consumer of the library (see verification/__init__.py)
    from verification.runner import DEFAULT_ALPHA

    if args.list:
        for r in verification.rows("full" if args.full else "quick", args.rows):
            print(f"{r.id:60s} {r.target:10s} {','.join(r.checks)}")
        return 0
    mode = "full" if args.full else "quick"
    res = verification.run(mode=mode, seed=args.seed, alpha=args.alpha if args.alpha is not None else DEFAULT_ALPHA,
                           workers=args.workers, scheduler=args.scheduler, plugins=args.plugin or (),
                           pattern=args.rows, out=args.out, figures=not args.no_figures,
                           progress=False if args.quiet else None, backend=args.backend)
    s = res.data["summary"]
    if not args.quiet:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(s["status_counts"].items()))
        print(f"gsbref verify --{mode}: {s['rows']} rows ({counts}); power {s['power_caught']}/{s['power_total']} "
              f"wrong variants caught; {res.data['timing']['wall_seconds']:.1f} s")
        if args.backend != "numpy":
            on = sum(r.get("backend") == args.backend for r in res.data["rows"])
            print(f"  backend {args.backend}: {on} rows drew there; {len(res.data['rows']) - on} rows are numpy only")
        if args.out:
            print(f"report: {res.paths['md']}")
    if res.exit_code:
        for rid in s["failed_rows"]:
            print(f"gsbref verify: FAILED {rid}", file=sys.stderr)
        for v in s["missed_variants"]:
            print(f"gsbref verify: wrong variant NOT CAUGHT {v}", file=sys.stderr)
    return res.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # the conformance commands parse their own options (gsbref.conformance imports torch/jax lazily)
    if argv[:1] == ["check"]:
        from .conformance import main_check

        return main_check(argv[1:])
    if argv[:1] == ["truth"] and "--export" in argv:
        from .conformance import main_export

        rest = argv[1:]
        rest.remove("--export")
        return main_export(rest)
    parser = argparse.ArgumentParser(prog="gsbref", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="conformance of torch / jax estimators against the oracle "
                                 "(gsbref check torch|jax --help)")
    v = sub.add_parser("verify", help="run the verification suite and write the report")
    size = v.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the CI sweep (default; < 3 minutes on 2 cores)")
    size.add_argument("--full", action="store_true", help="every row, larger samples (long)")
    v.add_argument("--out", help="directory for report.md, report.json and the figures")
    v.add_argument("--backend", default="numpy", choices=BACKENDS, help="array backend of the estimators' draws (cupy needs a GPU; the "
                        "statistics run on NumPy copies)")
    v.add_argument("--workers", type=_positive_int, default=None, help="processes (default: CPU count; 1: serial)")
    v.add_argument("--scheduler", help="a Dask scheduler address (runs the cases on that cluster)")
    v.add_argument("--seed", type=int, default=None, help="base seed (per-row seeds derive from it)")
    v.add_argument("--alpha", type=float, default=None, help="overall false-alarm rate of the run (default 1e-3)")
    v.add_argument("--plugin", action="append", metavar="MODULE:CALLABLE", help="extra rows and estimators")
    v.add_argument("--rows", metavar="TEXT", help="only the rows whose id contains TEXT")
    v.add_argument("--list", action="store_true", help="list the rows and exit")
    v.add_argument("--no-figures", action="store_true", help="skip the figures and the toy-problem curves")
    v.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    t = sub.add_parser("truth", help="exact E[f] and its gradient (the oracle)")
    t.add_argument("--dist", help='a distribution, e.g. "Gamma(shape=2.5, scale=0.7)"')
    t.add_argument("--f", help='a formula, e.g. "sum(softplus(z))"')
    t.add_argument("--const", action="append", metavar="NAME=VALUE", help="a constant of the formula")
    t.add_argument("--case", help="a catalog case instead of --dist/--f")
    t.add_argument("--list", action="store_true", help="list the catalog cases")
    t.add_argument("--dps", type=int, default=30, help="decimal digits (0: float64 fast path)")
    t.add_argument("--method", default="auto", help="oracle method (closed, quad, diff, enumerate, exact, auto)")
    t.add_argument("--all-methods", action="store_true", help="run every applicable method and compare")
    t.add_argument("--convention", default=None, help="Categorical probabilities: reference-last (default) or free")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.add_argument("--export", metavar="DIR", nargs="?",
                   help="write the catalog's golden tables to DIR (gsbref truth --export --help)")
    args = parser.parse_args(argv)
    try:
        if args.command == "truth":
            return _truth(args)
        if args.command == "verify":
            if args.seed is None:
                from verification.runner import DEFAULT_SEED

                args.seed = DEFAULT_SEED
            return _verify(args)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"gsbref: error: {exc}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
