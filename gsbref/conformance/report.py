"""The conformance report: Markdown + JSON + heat maps (matplotlib, optional) per library."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_REPRO = {
    ("torch", "gamma.shape"): "import torch\nk = torch.tensor({k!r}, dtype=torch.{dtype})\nz = torch.tensor({z!r}, dtype=torch.{dtype})\nprint(torch._standard_gamma_grad(k, z).item())  # exact dz/dk (gsbref): {exact}",
    ("torch", "beta.alpha"): "import torch\nfrom torch.distributions.dirichlet import _Dirichlet_backward\nx = torch.tensor([{z!r}, 1 - {z!r}], dtype=torch.{dtype}); a = torch.tensor([{a!r}, {b!r}], dtype=torch.{dtype})\nprint(_Dirichlet_backward(x, a, torch.tensor([1.0, 0.0], dtype=torch.{dtype}))[0].item())  # exact dz/da (gsbref): {exact}",
    ("torch", "beta.beta"): "import torch\nfrom torch.distributions.dirichlet import _Dirichlet_backward\nx = torch.tensor([{z!r}, 1 - {z!r}], dtype=torch.{dtype}); a = torch.tensor([{a!r}, {b!r}], dtype=torch.{dtype})\nprint(_Dirichlet_backward(x, a, torch.tensor([1.0, 0.0], dtype=torch.{dtype}))[1].item())  # exact dz/db (gsbref): {exact}",
    ("jax", "gamma.shape"): "import jax, jax.numpy as jnp\njax.config.update('jax_enable_x64', {x64})\nprint(jax.lax.random_gamma_grad(jnp.asarray({k!r}, jnp.{dtype}), jnp.asarray({z!r}, jnp.{dtype})))  # exact dz/dk (gsbref): {exact}",
    ("jax", "loggamma.shape"): "import jax, jax.numpy as jnp\njax.config.update('jax_enable_x64', {x64})\nfrom jax._src.random.core import _gamma_grad  # the tangent rule of jax.random.loggamma\nprint(_gamma_grad(jnp.asarray({log_z!r}, jnp.{dtype}), jnp.asarray({k!r}, jnp.{dtype}), log_space=True))  # exact dlog z/dk (gsbref): {exact}",
}


def reproducer(library: str, quantity: str, dtype: str, point: dict, exact: str) -> str:
    t = _REPRO[(library, quantity)]
    return t.format(dtype=dtype, x64=dtype == "float64", exact=exact, **point)


def heatmaps(grid: list[dict], directory: Path, library: str) -> list[str]:
    """One PNG per (dtype, quantity): log10 relative error over shape x quantile; black cells:
    NaN/inf results, grey: input not representable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    for g in grid:
        h = np.asarray(g["heat"], float)
        fig, ax = plt.subplots(figsize=(7, 5))
        shown = np.where(h > 0, np.log10(np.where(h > 0, h, 1)), np.where(h == 0, -17, np.nan))
        cmap = matplotlib.colormaps["viridis"].copy()
        cmap.set_bad("black")
        im = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", origin="lower", cmap=cmap, vmin=-17, vmax=0)
        for (i, j), v in np.ndenumerate(h):
            if v == -1:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.8"))
        ax.set_xticks(range(len(g["quantiles"])), [f"{u:.3g}" for u in g["quantiles"]], rotation=60)
        ax.set_yticks(range(len(g["shapes"])), [f"{s:.0e}" for s in g["shapes"]])
        ax.set_xlabel("quantile u")
        ax.set_ylabel("shape" + (" (max over the other Beta parameter)" if g["quantity"].startswith("beta") else ""))
        ax.set_title(f"{library} {g['dtype']} {g['quantity']}: log10 relative error\n(black: NaN/inf, grey: input not representable; tolerance {g['tolerance']:.1e})")
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        p = directory / f"{library}-{g['dtype']}-{g['quantity'].replace('.', '_')}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p.name)
    return paths


def _fmt(x):
    return "—" if x is None else f"{x:.2e}"


def write(result: dict, directory) -> dict:
    """Write ``<library>.json``, ``<library>.md`` and the heat maps into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lib = result["library"]
    pics = heatmaps(result.get("grid", []), directory, lib)
    js = directory / f"{lib}.json"
    slim = {**result, "grid": [{k: v for k, v in g.items() if k != "records"} for g in result.get("grid", [])]}
    js.write_text(json.dumps(slim, indent=1, default=float) + "\n")
    L = [f"# Conformance report: {lib} {result['version']}", "",
         f"Produced by `{result['command']}` on {result['date']} ({result['platform']}); gsbref "
         f"{result['gsbref_version']}. Machine-readable: `{js.name}`.", "",
         "What is called in the library: see the docstring of `gsbref/conformance/_"
         f"{lib}.py`; tolerances and regions: `gsbref/conformance/pointwise.py`.", ""]
    if result.get("summary"):
        L += ["## Summary", "", result["summary"], ""]
    L += ["## (a) Per-sample derivatives dz/dθ against exact values", ""]
    if result.get("grid_note"):
        L += [f"Not run: {result['grid_note']}", ""]
    for g in result.get("grid", []):
        L += [f"### {g['quantity']}, {g['dtype']} (grid; tolerance {g['tolerance']:.1e})", "",
              f"{g['n_valid']} of {g['n_points']} grid points representable; {g['n_nonfinite']} NaN/inf; "
              f"{g['n_out_of_tol']} out of tolerance.", ""]
        L += ["| region | points | not repr. | NaN/inf | out of tol. | max rel. error |", "|---|---|---|---|---|---|"]
        for k, r in g["regions"].items():
            L.append(f"| {k} | {r['points']} | {r['unrepresentable']} | {r['nonfinite']} | {r['out_of_tol']} | {_fmt(r['max_rel_err'])} |")
        L.append("")
        name = f"{lib}-{g['dtype']}-{g['quantity'].replace('.', '_')}.png"
        if name in pics:
            L += [f"![{g['quantity']} {g['dtype']}]({name})", ""]
    for s in result.get("search", []):
        L += [f"### {s['quantity']}, {s['dtype']} (random search: {s['n']} draws, parameters log-uniform on 1e-6 … 1e7)", "",
              f"{s['n_valid']} representable; {s['n_nonfinite']} NaN/inf; {s['n_out_of_tol']} out of tolerance "
              f"({s['tolerance']:.1e}).", "",
              "| region | points | not repr. | NaN/inf | out of tol. | max rel. error |", "|---|---|---|---|---|---|"]
        for k, r in s["regions"].items():
            L.append(f"| {k} | {r['points']} | {r['unrepresentable']} | {r['nonfinite']} | {r['out_of_tol']} | {_fmt(r['max_rel_err'])} |")
        L.append("")
    if result.get("findings"):
        L += ["## Findings, with reproducers", ""]
        for i, fnd in enumerate(result["findings"], 1):
            L += [f"**{i}. {fnd['title']}** — {fnd['detail']}", "", "```python", fnd["reproducer"], "```", ""]
    L += ["## (b) Expectation of the estimator against the oracle gradient", "",
          "Each row: one library draw per sample, the library's autodiff for dz/dθ, gsbref's ∇f; "
          "`gsbref.testing.assert_unbiased` (batch-means t-test, Bonferroni over components) at the stated "
          "false-alarm rate per row.", "",
          "| case | dtype | n | passed | max abs t | critical | NaN/inf | target |", "|---|---|---|---|---|---|---|---|"]
    for r in result.get("expectation", []):
        p = {True: "yes", False: "**NO**", None: "n/a"}[r["passed"]]
        L.append(f"| {r['case']} | {r['dtype']} | {r['n_samples']} | {p} | {r.get('max_abs_t', float('nan')):.2f} | "
                 f"{r.get('critical', float('nan')):.2f} | {r['nonfinite']} | {r['target']} |")
    relaxed = [r for r in result.get("expectation", []) if r["relaxed"]]
    if relaxed:
        L += ["", "Relaxed (Concrete) estimators, temperature as stated: bias against the exact discrete gradient "
              "(estimate − oracle, ± standard error):", ""]
        for r in relaxed:
            parts = []
            for k in r["bias_vs_oracle"]:
                b = np.atleast_1d(r["bias_vs_oracle"][k])
                se = np.atleast_1d(r["stderr"][k])
                parts.append(f"d/d{k}: " + ", ".join(f"{x:+.4f} ± {e:.4f}" for x, e in zip(b, se)))
            L.append(f"- {r['case']} ({r['dtype']}, τ = {r['temperature']}): " + "; ".join(parts))
    md = directory / f"{lib}.md"
    md.write_text("\n".join(L) + "\n")
    return {"markdown": str(md), "json": str(js), "heatmaps": pics}
