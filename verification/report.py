"""report.md (for a person: the summary table first, failures at the top) and report.json (for
machines: every number, with provenance), plus the figures.

Everything in both files except the ``timing`` section, the wall-time line and the platform of
the provenance is a function of the rows and the seed: the same seed gives the same report.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

__all__ = ["write", "markdown", "to_json"]

_ORDER = {"error": 0, "FAIL": 1, "inf-var": 2, "pass": 3}


def _clean(x):
    """JSON-safe: non-finite floats as strings, numpy scalars as Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def to_json(data: dict) -> str:
    return json.dumps(_clean(data), indent=1, sort_keys=True)


def _g(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def _flat(d):
    return [float(v) for vals in d.values() for v in np.ravel(np.asarray(vals, dtype=float))]


def _digits(r):
    ds = [v.get("digits") for v in r["identity"].values() if v.get("status") in ("pass", "FAIL")]
    ds = [d for d in ds if d is not None]
    if not ds:
        st = {v.get("status") for v in r["identity"].values()}
        return "inconcl." if "inconclusive" in st else "—"
    d = min(ds)
    return "exact" if math.isinf(d) else f"{d:.1f}"


def _target(r):
    if r["target"] == "exact":
        return "exact"
    b = _flat(r.get("bias", {})) or [0.0]
    size = max(abs(x) for x in b)
    what = {"rule": "rule N=" + str(r["options"].get("order", "")), "kink": "kink rule", "relaxation": "relaxed"}[r["target"]]
    return f"{what} (bias {_g(size, 2)})" if size > 0 else f"{what} (unbiased)"


def _variance(r):
    v = r.get("variance")
    if not v:
        return "—"
    if v["infinite"]:
        return "**infinite**"
    s = max((x for x in _flat(v["sample"])), default=float("nan"))
    txt = _g(s)
    if v.get("exact"):
        e = [x for x in _flat(v["exact"]) if math.isfinite(x)]
        if e:
            txt += f" (exact {_g(max(e))})"
    if v["heavy_tail_detected"]:
        txt += " heavy tail?"
    return txt


def markdown(data: dict, figures: list[str], figure_note: str | None) -> str:
    s = data["summary"]
    prov = data["provenance"]
    rows = sorted(data["rows"], key=lambda r: (_ORDER[r["status"]], r["p_holm"] if r["p_holm"] is not None else 1.0))
    failed = s["failed_rows"]
    missed = s["missed_variants"]
    L = ["# gsbref verification report", ""]
    if failed or missed:
        what = []
        if failed:
            what.append(f"{len(failed)} row(s) failed: " + ", ".join(f"`{x}`" for x in failed))
        if missed:
            what.append(f"{len(missed)} wrong variant(s) not caught: " + ", ".join(f"`{x}`" for x in missed))
        L += [f"**RESULT: FAILED** — " + "; ".join(what), ""]
    else:
        L += [f"**RESULT: all checks passed** ({s['rows']} rows; {s['power_caught']}/{s['power_total']} "
              "wrong variants caught)", ""]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(s["status_counts"].items(), key=lambda kv: _ORDER[kv[0]]))
    L += [f"Mode `{prov['mode']}`, seed {prov['seed']}, {s['rows']} rows ({counts}); overall Monte Carlo "
          f"false-alarm rate α = {s['alpha']:g} (Holm over {s['mc_components_tested']} gradient components).",
          "", "## Summary", "",
          "| # | row | status | target | identity digits | max \\|t\\| | p (Holm) | variance |",
          "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        t = r["mc"]["max_abs_t"] if r.get("mc") else None
        st = r["status"] if r["status"] == "pass" else f"**{r['status']}**"
        L.append(f"| {i} | `{r['id']}` | {st} | {_target(r)} | {_digits(r)} | {_g(t)} | {_g(r['p_holm'], 2)} | {_variance(r)} |")
    L += ["", "Status: **FAIL** a check rejected the estimator (reasons below); **error** the row crashed; "
          "**inf-var** the single-sample variance is infinite, so the Monte Carlo mean has no meaningful "
          "standard error and is reported without pass/fail; pass otherwise.  *Target*: what the estimator "
          "is supposed to estimate (the exact gradient, or a known biased quantity with its bias against the "
          "gradient).  *Identity digits*: agreement of the deterministic identities (the rule's expectation by "
          "quadrature or enumeration against the oracle), the worse of the formula-level and the "
          "implementation-level check; — where no deterministic form exists.  *max |t|*: the largest "
          "batch-means t statistic of the Monte Carlo mean against the target ("
          f"{prov['batches']} batches).  *Variance*: the largest component's single-sample variance "
          "(exact by quadrature in parentheses where available).", ""]
    problems = [r for r in rows if r["status"] in ("FAIL", "error")]
    if problems:
        L += ["## Failures", ""]
        for r in problems:
            L.append(f"- `{r['id']}` ({r['status']}): " + "; ".join(r["reasons"]))
        L.append("")
    L += ["## Multiple testing and false-alarm rate", "",
          f"Every Monte Carlo check with finite variance is a batch-means Student-t test of each gradient "
          f"component's mean against its target ({prov['batches']} batches of consecutive samples).  The "
          f"{s['mc_components_tested']} component p-values of the run form one family, adjusted by Holm's "
          f"step-down procedure; a row fails when any of its adjusted p-values is ≤ α = {s['alpha']:g}.  "
          f"So a run of correct estimators reports a Monte Carlo failure with probability at most "
          f"{s['alpha']:g} (for finite variance and near-normal batch means).  The power variants below "
          f"are tested at the strictest Holm level, α/m = {s['alpha_per_component_bonferroni']:.3g} per component.  "
          "Deterministic estimators (zero variance) are compared to float precision: their standard error "
          "is floored at sqrt(eps) times the target's magnitude.", ""]
    inf = [r for r in rows if r["status"] == "inf-var"]
    if inf:
        L += ["## Infinite variance", ""]
        for r in inf:
            ti = r["variance"]["tail_index"]
            L.append(f"- `{r['id']}`: variance infinite — standard error meaningless, no pass/fail. "
                     f"{r['variance']['reason']}  Measured Hill tail index: "
                     + ", ".join(f"{k} {_g(v)}" for k, v in ti.items())
                     + f" (< 2: infinite variance).  Sample mean {_fmt_param(r['mc']['mean'])} vs target "
                     f"{_fmt_param(r['target_value'])}.")
        L.append("")
    L += _power_section(data)
    L += _truncation_section(data)
    L += ["## Figures", ""]
    if figure_note:
        L += [figure_note, ""]
    for fig in figures:
        L += [f"![{fig}]({fig})", ""]
    L += ["## Details", ""]
    for r in rows:
        L += _details(r)
    L += ["## Timing (machine-dependent)", "",
          f"Wall time {data['timing']['wall_seconds']:.1f} s with {data['timing']['executor']}.  "
          "Variance × cost uses the measured seconds per sample of this run.", "",
          "| row | seconds | µs / sample | variance × cost (s) |", "|---|---|---|---|"]
    for r in sorted(data["rows"], key=lambda r: r["id"]):
        tm = r.get("timing", {})
        sps = tm.get("seconds_per_sample")
        v = max(_flat(r["variance"]["sample"]), default=float("nan")) if r.get("variance") else None
        vc = None if (v is None or sps is None or r["variance"]["infinite"]) else v * sps
        L.append(f"| `{r['id']}` | {_g(tm.get('row_seconds'))} | {_g(None if sps is None else 1e6 * sps)} | {_g(vc)} |")
    L += ["", "## Provenance", ""]
    for k in sorted(prov):
        L.append(f"- {k}: `{prov[k]}`")
    L.append("")
    return "\n".join(L)


def _fmt_param(d):
    return "{" + ", ".join(f"{k}: " + ", ".join(_g(x, 6) for x in np.ravel(np.asarray(v, float))) for k, v in d.items()) + "}"


def _power_section(data):
    pw = data["power"]
    s = data["summary"]
    L = ["## Power: seeded wrong variants", "",
         f"Caught **{s['power_caught']}/{s['power_total']}**.  Each variant is the row's estimator with a "
         "deliberate slip (sign flip; 5 % scale error; dropped series term = order N−1 reported as N; "
         "off-by-one order = N+1 reported as N; two parameters' estimates swapped).  Its exact mean shift "
         "is known from the oracle; the sample size is designed from a pilot run's standard deviation so "
         "that the same t-test, at the run's strictest level, catches it with probability 0.999 "
         "(capped; a capped variant may be missed and is then reported as a failed power check).", "",
         "| row | variant | largest \\|shift\\| | n (designed) | max \\|t\\| | critical | caught |",
         "|---|---|---|---|---|---|---|"]
    for p in pw:
        if "error" in p:
            L.append(f"| `{p['row']}` | {p['variant']} | — | — | — | — | **no** ({p['error']}) |")
            continue
        shift = max(abs(x) for x in _flat(p["shift"]))
        cap = " capped" if p["capped"] else ""
        L.append(f"| `{p['row']}` | {p['variant']} | {_g(shift)} | {p['n']} ({p['n_designed']}{cap}) | "
                 f"{_g(p['max_abs_t'])} | {_g(p['critical'])} | {'yes' if p['caught'] else '**NO**'} |")
    L.append("")
    return L


def _truncation_section(data):
    recs = data["truncation"]
    if not recs:
        return []
    L = ["## Truncation bias against the order", "",
         "Exact bias `E[rule_N] − gradient` of the series rules (eqs. 18–21), largest component, for each "
         "available order N (term expectations by mpmath quadrature); the best order minimises it.  "
         "Divergent series (softplus, 1/(1+z), exp(−z²)) have a best order; convergent ones decrease; "
         "terminating ones reach 0.", ""]
    nmax = max((len(v) for r in recs for v in r["bias"].values()), default=0)
    L += ["| case | param | " + " | ".join(f"N={n}" for n in range(1, nmax + 1)) + " | best |",
          "|---|---|" + "---|" * nmax + "---|"]
    for r in recs:
        if not r["bias"]:
            L.append(f"| {r['case']} | — | " + " | ".join("" for _ in range(nmax)) + f" | {r['note'][:80]} |")
            continue
        for k, rows in r["bias"].items():
            cells = [_g(max(abs(x) for x in b), 2) for b in rows] + [""] * (nmax - len(rows))
            best = r["best"][k]
            L.append(f"| {r['case']}{'' if r['via'] == 'gamma' else ' (' + r['via'] + ')'} | {k} | "
                     + " | ".join(cells) + f" | N={best['order']} ({_g(best['max_abs_bias'], 2)}) |")
    notes = [r for r in recs if r["note"]]
    if notes:
        L.append("")
        for r in notes:
            L.append(f"- {r['case']}: {r['note']}")
    L.append("")
    return L


def _details(r):
    L = [f"### `{r['id']}` — {r['status']}", ""]
    if r["note"]:
        L.append(f"- note: {r['note']}")
    if r["error"]:
        L += [f"- error: `{r['error']}`", ""]
        return L
    L.append(f"- n = {r['n']}, target: {_target(r)}, tags: {', '.join(r['tags'])}")
    L.append(f"- exact gradient {_fmt_param(r['exact'])}")
    if r["target"] != "exact":
        L.append(f"- target {_fmt_param(r['target_value'])}")
    for kind, idt in r["identity"].items():
        if idt.get("status") and idt["status"] != "n/a":
            L.append(f"- {kind} identity: {idt['status']}, {_g(idt.get('digits'))} digits — {idt.get('detail', '')}")
        elif idt.get("detail"):
            L.append(f"- {kind} identity: n/a — {idt['detail']}")
    if r.get("mc"):
        m = r["mc"]
        L.append(f"- Monte Carlo mean {_fmt_param(m['mean'])} ± {_fmt_param(m['stderr'])} (1 se); "
                 f"t {_fmt_param(m['t'])}; Holm-adjusted p {_g(r['p_holm'], 3)}")
        if m.get("allowance"):
            L.append(f"- quadrature-error allowance (|mean_m − mean_2m| on the same draws): {_fmt_param(m['allowance'])}")
    if r.get("variance"):
        v = r["variance"]
        L.append(f"- sample variance {_fmt_param(v['sample'])}"
                 + (f"; exact {_fmt_param(v['exact'])}" if v.get("exact") else "")
                 + f"; Hill tail index " + ", ".join(f"{k} {_g(x)}" for k, x in v["tail_index"].items()))
    for w in r["warnings"]:
        L.append(f"- warning: {w}")
    for reason in r.get("reasons", []):
        L.append(f"- **{reason}**")
    L.append("")
    return L


def write(data: dict, out, figures: bool = True) -> dict:
    """Write report.json, the figures and report.md into ``out`` (created); returns the paths."""
    from .figures import draw

    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    names, note = draw(data, out) if figures else ([], "figures not requested (--no-figures)")
    data["figures"] = {"files": names, "note": note}
    paths = {"json": os.path.join(out, "report.json"), "md": os.path.join(out, "report.md")}
    with open(paths["json"], "w") as fh:
        fh.write(to_json(data) + "\n")
    with open(paths["md"], "w") as fh:
        fh.write(markdown(data, names, note))
    paths["figures"] = [os.path.join(out, n) for n in names]
    return paths
