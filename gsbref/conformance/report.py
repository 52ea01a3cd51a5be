"""The conformance report: Markdown + JSON + heat maps (matplotlib, optional) per library."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_TORCH_BETA = (
    "import torch\nfrom torch.distributions.dirichlet import _Dirichlet_backward  # Beta/Dirichlet.rsample's backward\n"
    "z = torch.tensor({z!r}, dtype=torch.{dtype})\n"
    "conc = torch.tensor([{a!r}, {b!r}], dtype=torch.{dtype})\n"
    "x = torch.stack([z, 1 - z]); go = torch.tensor([1.0, 0.0], dtype=torch.{dtype})\n"
    "print(_Dirichlet_backward(x, conc, go)[{index}].item())\n"
    "# exact {what} (gsbref.oracle.implicit_derivative, 30 digits): {exact}")
_JAX_BETA = (
    "import jax, jax.numpy as jnp\n"
    "with jax.enable_x64({x64}):\n"
    "    key = jax.random.key({seed!r})\n"
    "    a, b = jnp.asarray({a!r}, jnp.{dtype}), jnp.asarray({b!r}, jnp.{dtype})\n"
    "    z, dz = jax.jvp(lambda {v}: jax.random.beta(key, a, b, dtype=jnp.{dtype}), ({v},), (jnp.ones_like({v}),))\n"
    "    print(float(z), float(dz))\n"
    "# JAX's own gamma variates here: log g_a = {log_ga!r}, log g_b = {log_gb!r} (jax.random.split(key), loggamma)\n"
    "# exact {what} of z = g_a / (g_a + g_b) at them (gsbref oracle, 30 digits): {exact}")
_REPRO = {
    ("jax", "beta.alpha (end to end)"): _JAX_BETA.replace("{v}", "a").replace("{what}", "dz/da"),
    ("jax", "beta.beta (end to end)"): _JAX_BETA.replace("{v}", "b").replace("{what}", "dz/db"),
    ("torch", "gamma.shape"): (
        "import torch\n"
        "k = torch.tensor({k!r}, dtype=torch.{dtype}); z = torch.tensor({z!r}, dtype=torch.{dtype})\n"
        "print(torch._standard_gamma_grad(k, z).item())  # Gamma.rsample's backward\n"
        "# exact dz/dk (gsbref.oracle.implicit_derivative, 30 digits): {exact}"),
    ("torch", "beta.alpha"): _TORCH_BETA.replace("{index}", "0").replace("{what}", "dz/da"),
    ("torch", "beta.beta"): _TORCH_BETA.replace("{index}", "1").replace("{what}", "dz/db"),
    ("jax", "gamma.shape"): (
        "import jax, jax.numpy as jnp\n"
        "with jax.enable_x64({x64}):\n"
        "    print(float(jax.lax.random_gamma_grad(jnp.asarray({k!r}, jnp.{dtype}), jnp.asarray({z!r}, jnp.{dtype}))))\n"
        "# exact dz/dk (gsbref.oracle.implicit_derivative, 30 digits): {exact}"),
    ("jax", "loggamma.shape"): (
        "import jax, jax.numpy as jnp\n"
        "from jax._src.random.core import _gamma_grad  # the tangent rule of jax.random.loggamma\n"
        "with jax.enable_x64({x64}):\n"
        "    print(float(_gamma_grad(jnp.asarray({log_z!r}, jnp.{dtype}), jnp.asarray({k!r}, jnp.{dtype}), log_space=True)))\n"
        "# exact d log z/dk at z = exp(log_z) (gsbref oracle, 30 digits): {exact}"),
}


def reproducer(library: str, quantity: str, dtype: str, point: dict, exact: str) -> str:
    t = _REPRO.get((library, quantity))
    if t is None:
        return f"# no reproducer template for {library} {quantity}; point {point!r}, exact {exact}"
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
        top = max(0.0, float(np.ceil(np.nanmax(np.where(np.isfinite(shown), shown, -17)))))
        im = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", origin="lower", cmap=cmap, vmin=-17, vmax=top)
        for (i, j), v in np.ndenumerate(h):
            if v == -1:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.8"))
        ax.set_xticks(range(len(g["quantiles"])),
                      [f"1-{1 - u:.0e}" if 1 - u < 1e-2 else f"{u:.3g}" for u in g["quantiles"]], rotation=60)
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


def _region_table(g) -> list[str]:
    L = ["| region | points | not repr. | NaN/inf | out of tol. | max rel. error | confirmed (oracle) |",
         "|---|---|---|---|---|---|---|"]
    for k, r in g["regions"].items():
        if "confirmed" not in r:
            conf = ""
        else:
            conf = ("yes" if r["confirmed"] else "**no**") + (f", {r['confirmed_rel_err']:.2e}" if "confirmed_rel_err" in r else "")
        L.append(f"| {k} | {r['points']} | {r['unrepresentable']} | {r['nonfinite']} | {r['out_of_tol']} | "
                 f"{_fmt(r['max_rel_err'])} | {conf} |")
    return L


def write(result: dict, directory) -> dict:
    """Write ``<library>.json``, ``<library>.md`` and the heat maps into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lib = result["library"]
    pics = heatmaps(result.get("grid", []), directory, lib)
    js = directory / f"{lib}.json"
    slim = {**result, **{part: [{k: v for k, v in g.items() if k != "records"} for g in result.get(part, [])]
                           for part in ("grid", "search")}}
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
        L += _region_table(g)
        L.append("")
        name = f"{lib}-{g['dtype']}-{g['quantity'].replace('.', '_')}.png"
        if name in pics:
            L += [f"![{g['quantity']} {g['dtype']}]({name})", ""]
    for s in result.get("search", []):
        L += [f"### {s['quantity']}, {s['dtype']} (random search: {s['n']} draws, parameters log-uniform on 1e-6 … 1e7)", "",
              f"{s['n_valid']} representable; {s['n_nonfinite']} NaN/inf; {s['n_out_of_tol']} out of tolerance "
              f"({s['tolerance']:.1e}).", ""]
        L += _region_table(s)
        L.append("")
    rc = result.get("reference_check")
    if rc:
        L += ["## Reference check", "",
              f"The float64 bulk reference against the mpmath oracle (quadrature, {rc['dps']} digits) at "
              f"{rc['per_region']} random evaluated points per region: largest relative difference "
              f"{rc['max_rel_diff']:.1e}.", "",
              "| quantity | shape band | points | max rel. difference |", "|---|---|---|---|"]
        for q, bands in rc["quantities"].items():
            for bname, b in bands.items():
                L.append(f"| {q} | {bname} | {b['points']} | {b['max_rel_diff']:.1e} |")
        L.append("")
    for s in result.get("end_to_end", []):
        L += [f"### {s['quantity']}, {s['dtype']} (jax.random.beta: {s['n']} draws, a and b log-uniform on 1e-6 … 1e7)", "",
              f"{s['n_valid']} evaluated (sample and exact derivative normal numbers, sample < 1, gammas reproduced; "
              f"{s['n_not_reproduced']} not reproduced); {s['n_nonfinite']} NaN/inf; {s['n_out_of_tol']} out of tolerance "
              f"({s['tolerance']:.1e}).", ""]
        L += _region_table(s)
        L.append("")
    if result.get("findings"):
        L += ["## Findings: worst points, confirmed with the mpmath oracle (both methods, 30 digits)", ""]
        for i, fnd in enumerate(result["findings"], 1):
            L += [f"**{i}. {fnd['title']}** — {'confirmed' if fnd['confirmed'] else '**not confirmed**'}.", ""]
            for c, rep in zip(fnd["points"], fnd["reproducers"]):
                o = c["oracle"]
                agree = "—" if o["agree_digits"] is None else ("all" if o["agree_digits"] == float("inf")
                                                                else f"{o['agree_digits']:.0f}")
                err = "NaN/inf" if c["confirmed_rel_err"] is None else f"{c['confirmed_rel_err']:.2e}"
                L += [f"- {c['kind']} (region {c['region']}) at " + ", ".join(f"{k}={v!r}" for k, v in c["point"].items())
                      + (f" (u={c['u']:.6g})" if c["u"] == c["u"] else "") + f": library {c['lib']!r}, oracle quad {o['quad']}, diff {o['diff']} "
                      f"(agree to {agree} digits); relative error {err}.", "", "```python", rep, "```", ""]
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
