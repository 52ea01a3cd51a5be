"""Run every example in turn: ``python examples/run_all.py --quick`` (what CI runs).

Size flags (``--quick``, ``--full``) and ``--seed`` are passed on to each example; ``--out DIR``
puts example ``<name>`` under ``DIR/<name>`` (default: each example's own folder under
``docs/results/examples/``).  Prints each example's wall time and the total, and exits non-zero
if any example fails (the others still run).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

EXAMPLES = ("discrete_models", "logistic_regression", "gamma_toy", "oracle_in_tests")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="examples/run_all.py", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    g.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--only", nargs="*", choices=EXAMPLES, default=None, help="run only these examples")
    args = p.parse_args(argv)
    flags = [f"--{s}" for s in ("quick", "full", "smoke") if getattr(args, s)]
    flags += ["--seed", str(args.seed)] + (["--no-plots"] if args.no_plots else [])
    failed = []
    t0 = time.perf_counter()
    for name in args.only or EXAMPLES:
        extra = ["--out", str(args.out / name)] if args.out else []
        t = time.perf_counter()
        print(f"=== {name} {' '.join(flags + extra)}", flush=True)
        try:
            importlib.import_module(name).main(flags + extra)
        except Exception:  # noqa: BLE001 - report it and go on with the next example
            traceback.print_exc()
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - t:.1f} s", flush=True)
    print(f"=== all examples: {time.perf_counter() - t0:.1f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""),
          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
