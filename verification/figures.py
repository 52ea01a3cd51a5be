"""PNG figures of a run (matplotlib, imported lazily with the non-interactive ``Agg`` backend).

Without matplotlib the run still completes; :func:`draw` then returns the reason, which the
report prints instead of the figures.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["draw"]


def _mpl():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def draw(data: dict, out: str) -> tuple[list[str], str | None]:
    """Write the figures of ``data`` (report.json content) into ``out``; ``(file names, None)``
    or ``([], reason)`` when matplotlib is not installed."""
    plt = _mpl()
    if plt is None:
        return [], "matplotlib is not installed (pip install 'gsbref[report]'): figures skipped"
    files = []
    for name, fn in (("truncation.png", _truncation), ("variance.png", _variance),
                     ("toy1.png", lambda p, d, path: _toy(p, d, path, "toy1")),
                     ("toy2.png", lambda p, d, path: _toy(p, d, path, "toy2"))):
        path = os.path.join(out, name)
        if fn(plt, data, path):
            files.append(name)
    return files, None


def _save(plt, fig, path):
    fig.tight_layout()
    # fixed metadata: the same run gives the same bytes
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return True


def _truncation(plt, data, path):
    recs = [r for r in data["truncation"] if r["bias"]]
    if not recs:
        return False
    n = len(recs)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, rec in zip(axes.ravel(), recs):
        for k, biases in rec["bias"].items():
            b = np.abs(np.asarray(biases, float))  # (N, components)
            orders = np.arange(1, b.shape[0] + 1)
            for j in range(b.shape[1]):
                y = np.where(b[:, j] > 0, b[:, j], np.nan)
                ax.semilogy(orders, y, marker="o", ms=3, label=f"{k}[{j}]" if b.shape[1] > 1 else k)
        ax.set_title(rec["case"] + ("" if rec["via"] == "gamma" else f" ({rec['via']})"), fontsize=8)
        ax.set_xlabel("order N", fontsize=7)
        ax.set_ylabel("|E[rule_N] - gradient|", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.suptitle("Truncation bias of the order-N series rules (exact, by quadrature)", fontsize=9)
    return _save(plt, fig, path)


def _variance(plt, data, path):
    rows = [r for r in data["rows"] if r.get("variance") and r["error"] is None]
    if not rows:
        return False
    cases = sorted({r["case"] for r in rows})
    methods = sorted({r["method"] + (f"[{','.join(f'{k}={v}' for k, v in r['options'].items())}]" if r["options"] else "")
                      for r in rows})
    fig, ax = plt.subplots(figsize=(max(8, 0.28 * len(cases)), 4.5))
    cmap = plt.get_cmap("tab20")
    for mi, m in enumerate(methods):
        xs, ys = [], []
        for r in rows:
            label = r["method"] + (f"[{','.join(f'{k}={v}' for k, v in r['options'].items())}]" if r["options"] else "")
            if label != m:
                continue
            v = [x for vals in r["variance"]["sample"].values() for x in np.ravel(vals)]
            v = [x for x in v if x > 0 and math.isfinite(x)]
            if not v:
                continue
            xs.append(cases.index(r["case"]))
            ys.append(math.log10(max(v)))
        if xs:
            marker = "x" if mi >= 20 else "o"
            ax.scatter(xs, ys, s=14, color=cmap(mi % 20), marker=marker, label=m)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(cases, rotation=90, fontsize=6)
    ax.set_ylabel("log10 single-sample variance (largest component)", fontsize=7)
    ax.legend(fontsize=5, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Variance per estimator and case", fontsize=9)
    return _save(plt, fig, path)


def _toy(plt, data, path, problem):
    curves = [v for v in data.get("toy", {}).values() if v["problem"] == problem]
    if not curves:
        return False
    dims = sorted({c["d"] for c in curves})
    fig, axes = plt.subplots(2, len(dims), figsize=(3.6 * len(dims), 5.2), squeeze=False)
    for j, d in enumerate(dims):
        for c in sorted((c for c in curves if c["d"] == d), key=lambda c: c["label"]):
            it = np.arange(len(c["loss"]))
            axes[0, j].plot(it, c["loss"], label=c["label"], lw=1)
            axes[1, j].plot(it, c["log10_variance"], label=c["label"], lw=1)
        axes[0, j].set_title(f"{problem}, d = {d}", fontsize=8)
        axes[0, j].set_ylabel("exact loss", fontsize=7)
        axes[0, j].set_yscale("log")
        axes[1, j].set_ylabel("log10 gradient variance", fontsize=7)
        axes[1, j].set_xlabel("iteration", fontsize=7)
        for ax in axes[:, j]:
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    return _save(plt, fig, path)
