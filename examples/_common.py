"""Shared helpers of the examples: command line, Adam, data sets, curves, figures and JSON.

Nothing in :mod:`gsbref` imports this module.  Every example script builds its command line with
:func:`parser`, which knows the size flags ``--quick`` (CI smoke size), ``--full`` (the paper-sized
run, where it fits a CPU) and the default in between, ``--out`` (output folder) and ``--seed``.
The hidden ``--smoke`` size is the even smaller one the test suite uses.

Threads: the examples are meant to run on a 2-core machine shared with others, so BLAS is pinned
to one thread (environment variables set before NumPy is imported when a script is run directly,
and :func:`one_thread` around timed sections, which also covers an already imported NumPy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results" / "examples"
SIZES = ("smoke", "quick", "default", "full")


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def parser(name: str, doc: str) -> argparse.ArgumentParser:
    """The common command line of an example called ``name``."""
    p = argparse.ArgumentParser(prog=f"examples/{name}.py", description=(doc or "").split("\n\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="size", action="store_const", const="quick", help="CI smoke-test size (seconds)")
    g.add_argument("--full", dest="size", action="store_const", const="full", help="the paper-sized run (long)")
    g.add_argument("--smoke", dest="size", action="store_const", const="smoke", help=argparse.SUPPRESS)
    p.set_defaults(size="default")
    p.add_argument("--out", type=Path, default=RESULTS / name, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="base seed; run r uses seed + r (default 0)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures (JSON only)")
    return p


def command_line(name: str, argv) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", f"examples/{name}.py", *args])


def log(*parts) -> None:
    """Progress line (flushed at once, so that long runs show where they are)."""
    print(*parts, flush=True)


# ----------------------------------------------------------------------------------------------
# optimisation
# ----------------------------------------------------------------------------------------------
class Adam:
    """Adam (Kingma and Ba, 2015) on a dict of NumPy arrays, updated in place.

    ``step(grads)`` takes a *descent* step along ``grads`` (pass ``-grad`` to ascend).
    :meth:`gradient_variance` is the per-entry variance estimate ``v_hat - m_hat**2`` from the
    bias-corrected moment averages (the measure of gradient variance the paper reports).

    >>> p = {"x": np.array([1.0, -2.0])}
    >>> opt = Adam(p, lr=0.1)
    >>> for _ in range(200):
    ...     opt.step({"x": 2 * p["x"]})          # minimise |x|^2
    >>> bool(np.all(np.abs(p["x"]) < 0.05))
    True
    """

    def __init__(self, params: dict, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be finite and > 0, got {lr!r}")
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps
        self.m = {k: np.zeros_like(v, dtype=float) for k, v in params.items()}
        self.v = {k: np.zeros_like(v, dtype=float) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for k, g in grads.items():
            g = np.asarray(g, dtype=float)
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            self.params[k] -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def gradient_variance(self, keys=None) -> float:
        """Mean over the entries of ``keys`` (default all) of ``v_hat - m_hat**2`` (clipped at 0)."""
        if self.t == 0:
            return float("nan")
        c1, c2 = 1.0 - self.beta1**self.t, 1.0 - self.beta2**self.t
        keys = list(self.m) if keys is None else list(keys)
        tot = sum(np.maximum(self.v[k] / c2 - (self.m[k] / c1) ** 2, 0.0).sum() for k in keys)
        return float(tot / sum(self.m[k].size for k in keys))


# ----------------------------------------------------------------------------------------------
# data (scikit-learn ships both sets: nothing is downloaded)
# ----------------------------------------------------------------------------------------------
def binarised_digits(test_fraction: float = 0.2, split_seed: int = 0, threshold: float = 8.0):
    """The 8x8 handwritten digits of scikit-learn (1797 images, grey levels 0..16) binarised at
    ``threshold`` (pixel > threshold -> 1), split once into train and test with a fixed seed.
    Returns ``(X_train, X_test)`` float64 arrays of 0/1 with 64 columns."""
    from sklearn.datasets import load_digits

    X = (load_digits().data > threshold).astype(float)
    perm = np.random.default_rng(split_seed).permutation(len(X))
    n_test = round(test_fraction * len(X))
    return X[perm[n_test:]], X[perm[:n_test]]


def breast_cancer():
    """The Wisconsin diagnostic breast-cancer data of scikit-learn (569 x 30), features
    standardised, a constant column appended (the bias weight), labels in {-1, +1}."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    X = data.data
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    X = np.hstack([X, np.ones((len(X), 1))])
    y = np.where(data.target == 1, 1.0, -1.0)
    return X, y


# ----------------------------------------------------------------------------------------------
# timing, curves, output
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def one_thread():
    """Pin BLAS/OpenMP pools to one thread (threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - the environment variables still apply
        yield
        return
    with threadpool_limits(limits=1):
        yield


class Timer:
    """Accumulated wall time of the sections run under ``with timer:``."""

    def __init__(self):
        self.total = 0.0

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.total += time.perf_counter() - self._t0


def mean_std(curves) -> dict:
    """``{"mean": [...], "std": [...]}`` over runs (axis 0) of equally long curves; NaN-aware."""
    a = np.asarray(curves, dtype=float)
    with np.errstate(invalid="ignore"):
        std = np.nanstd(a, axis=0) if a.shape[0] > 1 else np.zeros(a.shape[1:])
    return {"mean": _clean(np.nanmean(a, axis=0)), "std": _clean(std)}


def _clean(x):
    x = np.asarray(x, dtype=float)
    return [None if not math.isfinite(v) else float(v) for v in x.reshape(-1)]


def to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(out: Path, name: str, payload: dict, command: str, started: float) -> Path:
    """``out/<name>.json`` with the numbers, the command that made them and the environment."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": command,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(to_jsonable({"meta": meta, **payload}), indent=1, sort_keys=False) + "\n")
    return path


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band(ax, x, curves: dict, label: str, color=None, log_y: bool = False):
    """Plot a mean +/- std band (``curves`` as returned by :func:`mean_std`)."""
    m = np.array([np.nan if v is None else v for v in curves["mean"]])
    s = np.array([np.nan if v is None else v for v in curves["std"]])
    x = np.asarray(x)
    (line,) = ax.plot(x, m, label=label, color=color, lw=1.3)
    ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
    if log_y:
        ax.set_yscale("log")
    return line


def save(fig, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
