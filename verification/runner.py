"""The engine: rows in, one result per row out, through any ``concurrent.futures.Executor``.

A run has two phases.  Phase 1 computes the oracle quantities of every case the rows use (the
exact gradient and, for series rules, the expectations of the series terms), once per case --
the oracle "cache" of the run.  Phase 2 runs every row (identities, Monte Carlo, variance, power
variants) against its case's bundle, plus the figure experiments.  Every task is a pure function
of its arguments and its seeds derive from ``(base seed, row id)`` (:func:`checks.seed_sequence`),
so a serial run, a process pool and a Dask cluster produce identical results.

After both phases, the Monte Carlo p-values of all rows with finite variance form one family:
Holm's step-down procedure at level ``alpha`` decides which rows fail, so the probability that a
run with only correct estimators reports any Monte Carlo failure is at most ``alpha`` (for finite
variances and batch means close to normal; the slow test measures it).
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from gsbref.testing import batch_means_test, holm, required_samples

from . import checks as C
from .rows import ROWS, Row, get_case, rows as select_rows
from .variants import DETECT, expected_shift, variant_call

__all__ = ["run", "RunResult", "SerialExecutor", "DEFAULT_SEED", "DEFAULT_ALPHA", "BATCHES", "load_plugin"]

DEFAULT_SEED = 20240607
#: the run's overall false-alarm rate (Monte Carlo checks of correct estimators, all rows together)
DEFAULT_ALPHA = 1e-3
BATCHES = 30
#: largest sample size a power variant is run at
POWER_CAP = {"quick": 1_000_000, "full": 4_000_000}
#: pilot samples of a power variant, at most (the row's sample size otherwise), to measure its standard deviation
POWER_PILOT = 20_000
#: smallest sample size of a power run: batches of >= 100 samples, so that the batch means are near normal
POWER_MIN = 100 * BATCHES


class SerialExecutor(Executor):
    """Runs each task at submission, in this process (the ``--workers 1`` executor)."""

    def submit(self, fn, /, *args, **kwargs):
        fut = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # reported through the future, like any executor
            fut.set_exception(exc)
        return fut


# ----------------------------------------------------------------------------------------------
# one row
# ----------------------------------------------------------------------------------------------
#: significant digits of the numbers in the results.  NumPy's float64 kernels (SIMD loops with
#: scalar remainders, pairwise sums) depend on memory alignment in the last bit or two, which
#: differs between processes; 10 digits are far below any tolerance and above that noise.
DIGITS = 10


def _jsonable(x):
    a = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        q = np.where(np.isfinite(a) & (a != 0), a, 0.0)
        e = np.floor(np.log10(np.abs(np.where(q == 0, 1.0, q))))
        r = np.where(np.isfinite(a) & (a != 0), np.round(q / 10.0**e, DIGITS - 1) * 10.0**e, a)
    return r.tolist()


def _below_rounding(samples: dict, target: dict) -> float:
    """``64 eps`` times the problem's magnitude (largest |target| or mean |sample|): differences
    and spreads below this are float rounding, reported as 0."""
    mag = max(max(float(np.max(np.abs(np.asarray(target[k], float)), initial=0.0)),
                  float(np.max(np.abs(v).mean(0), initial=0.0))) for k, v in samples.items())
    return 64 * C.EPS * mag


def _target(row: Row, bundle: dict, dist, f) -> tuple[dict, dict]:
    """``(target, bias)`` float arrays: what the row's estimator estimates, and target - exact."""
    exact = C.exact_float(bundle)
    if row.target == "exact":
        return exact, {k: np.zeros_like(v) for k, v in exact.items()}
    if row.target in ("rule", "kink"):
        rule = C.rule_mp(bundle, row)
        if rule is None:
            raise ValueError(f"{row.id}: the rule's expectation is not available: "
                             f"{bundle['terms_note'].get(row.opts.get('via', 'gamma'), 'no series terms')}")
        t = {k: C._floats(v) for k, v in rule.items()}
        return t, {k: t[k] - exact[k] for k in t}
    # relaxation: exact quadrature of the relaxed estimator's mean (single coordinate)
    from gsbref.estimators.discrete_baselines import relaxation_bias

    rb = relaxation_bias(dist, f, row.opts["temperature"], method=row.method)
    bias = {k: np.asarray(v[0], float).reshape(np.shape(exact[k])) for k, v in rb.items()}
    return {k: exact[k] + bias[k] for k in exact}, bias


def _terms_float(bundle, row):
    """Term expectations (floats) of the row's truncated parameters; None without a series."""
    via = row.opts.get("via", "gamma")
    T = bundle["terms"].get(via)
    if T is None:
        return None
    return {k: C._floats(v) for k, v in T.items() if not bundle["terms_exact"][via][k]}


#: backends a run accepts: the rows whose estimator runs on any array namespace (every built-in one)
#: draw there, a plugin estimator without that support runs on NumPy and the row says so; the
#: statistics always run on NumPy copies of the samples
RUN_BACKENDS = ("numpy", "array_api_strict", "cupy")


def _row_backend(row: Row, backend: str, extra_estimators: dict | None) -> str | None:
    """The backend the row's estimator draws on: ``backend`` when it supports it, else None (NumPy)."""
    if backend == "numpy" or (extra_estimators and row.method in extra_estimators):
        return None
    from gsbref.estimators._base import array_api_methods

    return backend if row.method in array_api_methods() else None


def run_row(row: Row, mode: str, seed: int, bundle: dict, alpha_component: float,
            extra_estimators: dict | None = None, batches: int = BATCHES, backend: str = "numpy") -> dict:
    """All checks of one row; a JSON-ready dict (``status`` is set later by the run).  With
    ``backend="array_api_strict"`` the row's estimator draws on that namespace when it supports it
    (the statistics run on NumPy copies of its samples); ``out["backend"]`` records which ran."""
    t_start = time.perf_counter()
    on = _row_backend(row, backend, extra_estimators)
    out: dict[str, Any] = {
        "id": row.id, "case": row.case, "method": row.method, "options": {k: v for k, v in row.options},
        "target": row.target, "tags": list(row.tags), "note": row.note, "checks": list(row.checks),
        "declared_variance": row.variance, "n": row.n(mode), "error": None, "warnings": [],
        "identity": {}, "mc": None, "variance": None, "power": [], "timing": {},
        "backend": on or ("numpy" if backend == "numpy" else "numpy (numpy only)"),
    }
    try:
        dist, f = row.build()
        target, bias = _target(row, bundle, dist, f)
        out["exact"] = {k: _jsonable(v) for k, v in C.exact_float(bundle).items()}
        out["target_value"] = {k: _jsonable(v) for k, v in target.items()}
        out["bias"] = {k: _jsonable(v) for k, v in bias.items()}
        if "identity" in row.checks:
            out["identity"]["formula"] = C.formula_identity(bundle, row)
            out["identity"]["implementation"] = C.implementation_identity(row, dist, f, target)

        def call(n, rng, **opts):
            if on is None:
                return C.sample_with_warnings(row.method, dist, f, n, rng, extra_estimators, **opts)
            from gsbref._backend import to_numpy

            s, sec, msgs = C.sample_with_warnings(row.method, dist, f, n, rng, extra_estimators, backend=on, **opts)
            return {k: np.asarray(to_numpy(v), dtype=float) for k, v in s.items()}, sec, msgs

        n = row.n(mode)
        if "mc" in row.checks or "variance" in row.checks:
            samples, sec, msgs = call(n, C.generator(seed, row.id, "mc"), **row.opts)
            out["warnings"] = msgs
            out["timing"] = {"seconds": sec, "seconds_per_sample": sec / n}
            allowance = None
            if "quadrature" in row.opts:
                # the t-quadrature's error is a bias: bound it by the same draws with twice the nodes
                finer, _, _ = call(n, C.generator(seed, row.id, "mc"), **{**row.opts, "quadrature": 2 * row.opts["quadrature"]})
                allowance = {k: np.abs(samples[k].mean(0) - finer[k].mean(0)) for k in samples}
            noise = _below_rounding(samples, target)
            if allowance is not None:
                allowance = {k: np.where(v <= noise, 0.0, v) for k, v in allowance.items()}
            res = batch_means_test(samples, target, false_alarm=alpha_component, batches=batches,
                                   se_floor_rtol=C.SQRT_EPS, allowance=allowance)
            # means that agree with the target to rounding: t = 0 exactly (not rounding noise / floor)
            agree = {k: np.abs(np.asarray(res.estimate[k]) - np.asarray(target[k], float)) <= noise for k in samples}
            t_stat = {k: np.where(agree[k], 0.0, res.t[k]) for k in samples}
            p_val = {k: np.where(agree[k], 1.0, res.p_values[k]) for k in samples}
            sd = {k: samples[k].std(0, ddof=1) for k in samples}
            flat = {k: np.all(sd[k] <= noise) for k in samples}  # constant up to rounding
            tails = C.tail_indices({k: v for k, v in samples.items() if not flat[k]})
            tails.update({k: math.inf for k in samples if flat[k]})
            out["mc"] = {
                "mean": {k: _jsonable(v) for k, v in res.estimate.items()},
                "t": {k: _jsonable(v) for k, v in t_stat.items()},
                "p": {k: _jsonable(v) for k, v in p_val.items()},
                "stderr": {k: _jsonable(np.where(sd[k] <= noise, 0.0, sd[k]) / math.sqrt(n)) for k in samples},
                "max_abs_t": float(max(np.max(np.abs(v), initial=0.0) for v in t_stat.values())),
                "batches": batches, "components": res.components,
                "allowance": None if allowance is None else {k: _jsonable(v) for k, v in allowance.items()},
            }
            var = {k: np.where(sd[k] <= noise, 0.0, sd[k] ** 2) for k in samples}
            exact_var = out["identity"].get("implementation", {}).get("variance", {})
            heavy = {k: v for k, v in tails.items() if v is not None and v < C.TAIL_INFINITE}
            out["variance"] = {
                "sample": {k: _jsonable(v) for k, v in var.items()},
                "exact": exact_var or None,
                "tail_index": {k: None if v is None else float(_jsonable(v)) for k, v in tails.items()},
                "infinite": row.variance == "infinite",
                "heavy_tail_detected": sorted(heavy),
                "reason": row.note if row.variance == "infinite" else "",
            }
            for name in row.variants:
                out["power"].append(_power(name, row, mode, seed, dist, target, bundle, call, alpha_component,
                                           res.components, batches))
    except Exception as exc:  # a row that crashes is a failed row, named in the report
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=6)
    out["timing"]["row_seconds"] = time.perf_counter() - t_start
    return out


def _power(name, row, mode, seed, dist, target, bundle, call, alpha_component, comps, batches):
    rec: dict[str, Any] = {"variant": name, "row": row.id}
    try:
        shift = expected_shift(name, row, dist, target, _terms_float(bundle, row))
        wrong = variant_call(name, row, lambda n, rng, **o: call(n, rng, **o)[0])
        pilot = wrong(dist, min(POWER_PILOT, max(row.n(mode), POWER_MIN)), C.generator(seed, row.id, f"power-pilot/{name}"))
        sd = np.concatenate([np.asarray(pilot[k].std(0, ddof=1)).reshape(-1) for k in sorted(shift)])
        sh = np.concatenate([np.asarray(shift[k], float).reshape(-1) for k in sorted(shift)])
        n_need = required_samples(sd, sh, false_alarm=alpha_component * comps, components=comps,
                                  batches=batches, detect=DETECT)
        cap = POWER_CAP[mode]
        n = min(max(n_need, POWER_MIN), cap)
        samples = wrong(dist, n, C.generator(seed, row.id, f"power/{name}"))
        res = batch_means_test(samples, target, false_alarm=alpha_component * comps, batches=batches,
                               se_floor_rtol=C.SQRT_EPS)
        rec.update({"n": n, "n_designed": n_need, "capped": n_need > cap, "caught": not res.passed,
                    "max_abs_t": float(_jsonable(res.max_abs_t)), "critical": float(_jsonable(res.critical)),
                    "shift": {k: _jsonable(v) for k, v in shift.items()}})
    except Exception as exc:
        rec.update({"caught": False, "error": f"{type(exc).__name__}: {exc}"})
    return rec


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
def _series_needs(rows: Sequence[Row], mode: str) -> dict[str, set]:
    needs: dict[str, dict] = {}
    for r in rows:
        if r.method != "gsb" or r.target not in ("rule", "kink", "exact"):
            continue
        via = r.opts.get("via", "gamma")
        N = r.opts.get("order", 1)
        if "off-by-one" in r.variants:
            N += 1
        if "truncation" in r.checks:
            N = max(N, C.SWEEP[mode])
        d = needs.setdefault(r.case, {})
        d[via] = max(d.get(via, 0), N)
    return {c: tuple(sorted(v.items())) for c, v in needs.items()}


def _components(r: Row) -> int:
    dist = get_case(r.case).dist()
    return sum(max(1, int(np.prod(dist.params[p.name].shape, dtype=int))) for p in dist.parameters)


@dataclass
class RunResult:
    """Everything a run produced: ``data`` (the report.json content), ``exit_code`` (0 healthy,
    1 a failed check or power variant), ``paths`` (files written)."""

    data: dict
    paths: dict = field(default_factory=dict)

    @property
    def failed_rows(self) -> list[str]:
        return [r["id"] for r in self.data["rows"] if r["status"] in ("FAIL", "error")]

    @property
    def missed_variants(self) -> list[str]:
        return [f"{p['row']}:{p['variant']}" for p in self.data["power"] if not p["caught"]]

    @property
    def exit_code(self) -> int:
        return 1 if (self.failed_rows or self.missed_variants) else 0


class _Progress:
    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def step(self, label: str = ""):
        self.done += 1
        if not self.enabled:
            return
        width = 30
        k = int(width * self.done / max(1, self.total))
        el = time.perf_counter() - self.t0
        self.stream.write(f"\r[{'#' * k}{'-' * (width - k)}] {self.done}/{self.total} {el:6.1f}s {label[:48]:48s}")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def load_plugin(spec: str) -> dict:
    """``module:callable`` -> ``{"rows": [...], "estimators": {...}}`` (the callable returns that
    dict; either key may be missing)."""
    import importlib

    mod, sep, attr = spec.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"--plugin expects module:callable, got {spec!r}")
    obj = getattr(importlib.import_module(mod), attr)
    got = obj() if callable(obj) else obj
    if not isinstance(got, dict) or not set(got) <= {"rows", "estimators"}:
        raise TypeError(f"plugin {spec!r} must return a dict with keys 'rows' and/or 'estimators'")
    return {"rows": list(got.get("rows", ())), "estimators": dict(got.get("estimators", {}))}


def _executor(executor, workers, scheduler):
    if executor is not None:
        return executor, (lambda: None), "given"
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ValueError("--scheduler needs dask.distributed: pip install 'gsbref[dask]'") from None
        client = Client(scheduler)
        return client.get_executor(pure=False), client.close, f"dask {scheduler}"
    if workers is None:
        workers = os.cpu_count() or 1
    if workers <= 1:
        return SerialExecutor(), (lambda: None), "serial"
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # never fork: a parent that has loaded a multithreaded library (JAX, torch, a threaded BLAS) can
    # deadlock in a forked child; the forkserver starts workers from a clean single-threaded process
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return ex, ex.shutdown, f"process pool ({workers} workers)"


def _gather(executor, tasks: list[tuple[str, Callable, tuple]], progress: _Progress) -> dict:
    futs = {executor.submit(fn, *args): key for key, fn, args in tasks}
    out = {}
    for fut in as_completed(futs):
        key = futs[fut]
        out[key] = fut.result()
        progress.step(str(key))
    return out


def run(rows: Iterable[Row] | None = None, *, mode: str = "quick", seed: int = DEFAULT_SEED,
        alpha: float = DEFAULT_ALPHA, executor: Executor | None = None, workers: int | None = None,
        scheduler: str | None = None, extra_estimators: dict | None = None, plugins: Sequence[str] = (),
        pattern: str | None = None, out: str | os.PathLike | None = None, figures: bool = True,
        progress: bool | None = None, backend: str = "numpy") -> RunResult:
    """Run the verification suite.

    ``rows``: the rows to run (default: the table of :mod:`verification.rows` for ``mode``,
    filtered by ``pattern``); ``extra_estimators``: ``{method name: fn(dist, f, n, rng, **options)}``
    for rows whose method is not registered in gsbref (plugins); ``plugins``: ``module:callable``
    specs adding rows and estimators.  ``executor`` (any ``concurrent.futures.Executor``), else
    ``scheduler`` (a Dask scheduler address), else a process pool of ``workers`` (1: serial).
    ``out``: directory for report.md, report.json and the figures (None: nothing written).
    """
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if backend not in RUN_BACKENDS:
        raise ValueError(f"backend {backend!r} is not available: one of {RUN_BACKENDS}")
    if backend == "cupy":
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise ValueError("backend 'cupy' needs CuPy and an NVIDIA GPU: pip install 'gsbref[gpu]'") from None
    C.seed_sequence(seed, "", "")  # validates the seed
    table = list(select_rows(mode, pattern) if rows is None else rows)
    extra = dict(extra_estimators or {})
    for spec in plugins:
        p = load_plugin(spec)
        table += p["rows"]
        extra.update(p["estimators"])
    ids = [r.id for r in table]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicate row ids: {dup}")
    if not table:
        raise ValueError("no rows to run")
    from gsbref.estimators import available_methods

    unknown = sorted({r.method for r in table} - set(available_methods()) - set(extra))
    if unknown:
        raise ValueError(f"rows use unknown estimators {unknown}: register them or pass extra_estimators")

    tested = [r for r in table if "mc" in r.checks and r.variance == "finite"]
    m_planned = sum(_components(r) for r in tested)
    alpha_component = alpha / max(1, m_planned)  # Bonferroni level: the strictest Holm step

    t0 = time.perf_counter()
    ex, close, how = _executor(executor, workers, scheduler)
    needs = _series_needs(table, mode)
    cases = sorted({r.case for r in table})
    from . import toy

    toy_tasks = toy.tasks(mode, seed) if figures else []
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(len(cases) + len(table) + len(toy_tasks), show)
    try:
        bundles = _gather(ex, [(c, C.case_truth, (c, needs.get(c, ()))) for c in cases], bar)
        tasks = [(r.id, run_row, (r, mode, seed, bundles[r.case], alpha_component, extra or None, BATCHES, backend))
                 for r in table]
        tasks += [(("toy",) + key, toy.run_task, (key, seed)) for key in toy_tasks]
        results = _gather(ex, tasks, bar)
    finally:
        close()
    wall = time.perf_counter() - t0

    row_results = [results[r.id] for r in table]
    _decide(row_results, alpha)
    power = [p for r in row_results for p in r["power"]]
    data = {
        "provenance": _provenance(mode, seed, alpha, backend),
        "summary": _summary(row_results, power, alpha, m_planned, alpha_component),
        "rows": row_results,
        "power": power,
        "truncation": _truncation(table, bundles),
        "oracle": {c: {"method": b["method"], "dps": b["dps"], "seconds": b["seconds"],
                       "terms_note": b["terms_note"]} for c, b in sorted(bundles.items())},
        "toy": {"|".join(map(str, k[1:])): v for k, v in results.items() if isinstance(k, tuple)},
        "timing": {"wall_seconds": wall, "executor": how},
    }
    res = RunResult(data)
    if out is not None:
        from .report import write

        res.paths = write(data, out, figures=figures)
    return res


def _decide(row_results: list[dict], alpha: float) -> None:
    """Holm over every component of every tested row; then each row's status."""
    family = []  # (row index, p)
    for i, r in enumerate(row_results):
        if r["error"] is None and r["mc"] is not None and "mc" in r["checks"] and r["declared_variance"] == "finite":
            for k, p in r["mc"]["p"].items():
                for v in np.asarray(p, float).reshape(-1):
                    family.append((i, float(v)))
    adj = holm([p for _, p in family]) if family else np.array([])
    best: dict[int, float] = {}
    for (i, _), a in zip(family, adj):
        best[i] = min(best.get(i, 1.0), float(a))
    for i, r in enumerate(row_results):
        reasons = []
        if r["error"] is not None:
            r["status"] = "error"
            r["reasons"] = [r["error"]]
            r["p_holm"] = None
            continue
        for kind, idt in r["identity"].items():
            if idt.get("status") == "FAIL":
                reasons.append(f"{kind} identity: {idt.get('digits', 0):.1f} digits ({idt.get('detail', '')})")
        r["p_holm"] = best.get(i)
        if r["p_holm"] is not None and r["p_holm"] <= alpha:
            reasons.append(f"Monte Carlo mean differs from the target: max |t| = {r['mc']['max_abs_t']:.2f}, "
                           f"Holm-adjusted p = {r['p_holm']:.2e} <= {alpha:g}")
        if reasons:
            r["status"] = "FAIL"
        elif r["declared_variance"] == "infinite" and r["mc"] is not None:
            r["status"] = "inf-var"
            reasons.append("variance infinite: standard error meaningless, no pass/fail")
        else:
            r["status"] = "pass"
        r["reasons"] = reasons


def _summary(rows, power, alpha, m_planned, alpha_component):
    count = {}
    for r in rows:
        count[r["status"]] = count.get(r["status"], 0) + 1
    return {
        "rows": len(rows), "status_counts": count, "alpha": alpha,
        "mc_components_tested": m_planned, "alpha_per_component_bonferroni": alpha_component,
        "multiple_testing": "Holm step-down over every gradient component of every Monte Carlo check "
                            "with finite variance; family-wise false-alarm rate <= alpha",
        "power_caught": sum(1 for p in power if p["caught"]), "power_total": len(power),
        "failed_rows": [r["id"] for r in rows if r["status"] in ("FAIL", "error")],
        "missed_variants": [f"{p['row']}:{p['variant']}" for p in power if not p["caught"]],
    }


def _truncation(table, bundles) -> list[dict]:
    """Per (case, via) with a series row that asks for it: bias of the order-N rule for every
    available N, and the best order per parameter."""
    import mpmath

    out = []
    seen = set()
    for r in table:
        if "truncation" not in r.checks or r.method != "gsb":
            continue
        via = r.opts.get("via", "gamma")
        key = (r.case, via)
        if key in seen:
            continue
        seen.add(key)
        b = bundles[r.case]
        T = b["terms"].get(via)
        rec = {"case": r.case, "via": via, "note": b["terms_note"].get(via, ""), "bias": {}, "best": {}}
        if T is not None:
            with mpmath.workdps(b["dps"] + 10):
                for k, Tk in T.items():
                    if b["terms_exact"][via][k]:
                        continue  # an exact rule: no truncation
                    ex = np.asarray(b["gradient"][k], dtype=object)
                    partial = np.asarray(Tk[0], dtype=object)
                    rows_k = []
                    for N in range(1, Tk.shape[0]):
                        partial = partial + Tk[N]
                        rows_k.append(C._floats(partial - ex).reshape(-1).tolist())
                    rec["bias"][k] = rows_k
                    sizes = [max(abs(x) for x in v) for v in rows_k]
                    i = int(np.argmin(sizes))
                    rec["best"][k] = {"order": i + 1, "max_abs_bias": sizes[i]}
        out.append(rec)
    return out


def _provenance(mode, seed, alpha, backend):
    import platform

    import mpmath
    import scipy

    import gsbref

    return {
        "gsbref": getattr(gsbref, "__version__", "unknown"), "numpy": np.__version__, "scipy": scipy.__version__,
        "mpmath": mpmath.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "mode": mode, "seed": seed, "alpha": alpha, "dtype": "float64",
        "backend": backend, "batches": BATCHES, "oracle_dps": C.DPS, "oracle_dps_nested": C.DPS_NESTED,
        "seed_derivation": "numpy.random.SeedSequence([seed, *sha256(row id | purpose)[:16] as 4 uint32])",
    }
