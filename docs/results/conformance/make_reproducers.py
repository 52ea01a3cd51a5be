"""Print the README's reproducers: each snippet (torch or jax only), what it prints here, and the
exact value from gsbref's mpmath oracle (30 digits, both methods where they work).

    python docs/results/conformance/make_reproducers.py [torch|jax ...]
"""

from __future__ import annotations

import contextlib
import io
import sys

import mpmath

from gsbref.conformance import _reference as R
from gsbref.conformance.report import reproducer

# (library, quantity, dtype, point): the points quoted in README.md
POINTS = [
    ("torch", "gamma.shape", "float64", {"k": 2.5, "z": 1.3}),
    ("torch", "gamma.shape", "float64", {"k": 0.001, "z": 5.120025083764957}),
    ("torch", "beta.alpha", "float64", {"z": 0.010117553066096518, "a": 0.0001, "b": 316.22776601683796}),
    ("torch", "beta.alpha", "float64", {"z": 0.0005575481353533585, "a": 0.0782721363878688, "b": 36637.70330984616}),
    ("torch", "beta.alpha", "float32", {"z": 0.9989850521087646, "a": 3162.277587890625, "b": 9.999999747378752e-05}),
    ("jax", "loggamma.shape", "float64", {"log_z": -4605.75, "k": 0.001}),
    ("jax", "loggamma.shape", "float32", {"log_z": -140.0, "k": 0.10000000149011612}),
    ("jax", "gamma.shape", "float32", {"k": 9524666.0, "z": 9527266.0}),
    ("jax", "beta.alpha (end to end)", "float64", {"a": 1.211992249337826e-05, "b": 0.00021645706228264687,
                                                    "seed": 1484980994, "log_ga": -6856.244960725904,
                                                    "log_gb": -6597.873692928953}),
    ("jax", "beta.alpha (end to end)", "float32", {"a": 0.003318490693345666, "b": 0.0006135890143923461,
                                                    "seed": 2050657715, "log_ga": -1131.919921875,
                                                    "log_gb": -1146.2230224609375}),
]


def main(libs) -> None:
    for lib, q, dt, p in POINTS:
        if lib not in libs:
            continue
        c = R.confirm(q, p, 30)
        src = reproducer(lib, q, dt, p, c["quad"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(src, "<reproducer>", "exec"), {})  # noqa: S102 -- running the snippet is the point
        got = float(out.getvalue().split()[-1])
        exact = float(c["value"])
        print(f"## {lib} {dt} {q} {p}\n```python\n{src}\n```")
        print(f"prints {got!r}; exact (quad) {c['quad']}, (diff) {c['diff']}; relative error "
              f"{abs(got - exact) / abs(exact):.3g}\n")


if __name__ == "__main__":
    with mpmath.workdps(15):
        main(sys.argv[1:] or ["torch", "jax"])
