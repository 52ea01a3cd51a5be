"""The checks of one row: deterministic identities, the Monte Carlo sample, variance, and the
oracle quantities they are measured against.

Everything here is a pure function of its arguments (the row, the base seed, the oracle bundle
of the row's case): the runner may call it in any process, in any order, and gets the same
numbers.  Tolerances:

* **implementation identity** (float64): the expectation of the estimator's own per-sample rule
  (``build_rule(...).evaluate`` at Gauss nodes; enumeration for theorem 2) against the mpmath
  target.  Allowed error: ``|Q_n - Q_2n| + 64 eps sum|w r|`` (the coarse rule's error bounds the
  fine one's for these geometrically converging rules, plus rounding), and the check demands that
  this is below :data:`QUAD_RTOL` relative -- otherwise it is reported *inconclusive*, never
  passed.  Enumeration: ``64 eps sum_z p(z) |r(z)|`` (rounding only).
* **formula identity** (mpmath, ``dps`` digits): the rule's expectation against the oracle for
  exact targets; at least half of the working digits must agree (the oracle's error estimates are
  far smaller; the half leaves room for tanh-sinh level cut-offs of either side).
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings

import mpmath
import numpy as np

from gsbref import oracle
from gsbref.oracle import truncation as tr
from gsbref.testing import gauss_points

from .rows import Row, get_case

EPS = float(np.finfo(float).eps)
SQRT_EPS = math.sqrt(EPS)
#: the implementation identity must converge to this relative accuracy to count
QUAD_RTOL = 1e-10
#: Gauss nodes per coordinate: start, and the largest total number of points tried
QUAD_START = 16
QUAD_MAX_POINTS = 300_000
#: Hill tail index below which the variance is taken as infinite (resummed.tail_index docstring)
TAIL_INFINITE = 1.8
#: digits the oracle works with (separable and discrete cases; nested quadrature cases)
DPS = 20
DPS_NESTED = 10
#: truncation sweep: largest order per mode
SWEEP = {"quick": 8, "full": 12}



# ----------------------------------------------------------------------------------------------
# seeds
# ----------------------------------------------------------------------------------------------
def seed_sequence(base_seed: int, row_id: str, purpose: str) -> np.random.SeedSequence:
    """The seed of one random stream of a row: ``SeedSequence([base_seed, *sha256(row id |
    purpose)])`` -- a function of the row, never of the order of execution."""
    if isinstance(base_seed, bool) or not isinstance(base_seed, (int, np.integer)) or base_seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {base_seed!r}")
    h = hashlib.sha256(f"{row_id}|{purpose}".encode()).digest()
    return np.random.SeedSequence([int(base_seed), *np.frombuffer(h[:16], dtype="<u4").tolist()])


def generator(base_seed: int, row_id: str, purpose: str) -> np.random.Generator:
    return np.random.default_rng(seed_sequence(base_seed, row_id, purpose))


# ----------------------------------------------------------------------------------------------
# oracle bundle of a case (phase 1 of a run)
# ----------------------------------------------------------------------------------------------
def case_dps(case_name: str) -> int:
    return DPS_NESTED if "nested" in get_case(case_name).tags else DPS


def case_truth(case_name: str, series: tuple = (), dps: int | None = None) -> dict:
    """The oracle quantities of one case: the exact gradient (mpf object arrays) and, for every
    ``(via, N)`` in ``series``, the expectations of the series terms ``0..N`` (fewer where higher
    terms are infinite: the largest available order is recorded with the reason)."""
    dps = case_dps(case_name) if dps is None else dps
    dist, f = get_case(case_name).build()
    t0 = time.perf_counter()
    g = oracle.gradient(dist, f, dps=dps)
    out = {
        "case": case_name, "dps": dps, "method": g.method,
        "gradient": {k: np.asarray(v, dtype=object) for k, v in g.items()},
        "errors": {k: np.asarray(v, dtype=object) for k, v in g.errors.items()},
        "terms": {}, "terms_note": {}, "terms_order": {}, "terms_exact": {},
    }
    for via, N in series:
        note = ""
        while True:
            try:
                T, exact = tr.term_expectations(dist, f, N, dps=dps, via=via)
                out["terms"][via] = {k: np.asarray(v, dtype=object) for k, v in T.items()}
                out["terms_order"][via] = N
                out["terms_exact"][via] = dict(exact)
                break
            except ValueError as exc:
                if "infinite" not in str(exc) or N == 1:
                    note = str(exc)
                    break
                note = f"orders > {N - 1}: {exc}"
                N -= 1
            except NotImplementedError as exc:
                note = str(exc)
                break
        if note:
            out["terms_note"][via] = note
    out["seconds"] = time.perf_counter() - t0
    return out


def _floats(a) -> np.ndarray:
    return np.array([float(x) for x in np.asarray(a, dtype=object).reshape(-1)]).reshape(np.shape(a))


def exact_float(bundle) -> dict:
    return {k: _floats(v) for k, v in bundle["gradient"].items()}


def rule_mp(bundle, row: Row, order: int | None = None) -> dict | None:
    """``E[rule_N]`` (mpf arrays) from the bundle's term expectations; None where unavailable."""
    via = row.opts.get("via", "gamma")
    T = bundle["terms"].get(via)
    N = row.opts.get("order", 1) if order is None else order
    if T is None or bundle["terms_order"][via] < N:
        return None
    exact = bundle["terms_exact"][via]
    with mpmath.workdps(bundle["dps"] + 10):
        # exact (untruncated) parameters keep all their terms; the others the first N + 1
        return {k: np.asarray((v if exact[k] else v[: N + 1]).sum(axis=0), dtype=object) for k, v in T.items()}


def digits(a, b) -> float:
    """Decimal digits on which ``a`` and ``b`` (arrays) agree, relative to ``max(1, |b|)``,
    the worst component; ``inf`` for exact agreement."""
    a = np.asarray(a, dtype=object).reshape(-1)
    b = np.asarray(b, dtype=object).reshape(-1)
    worst = math.inf
    with mpmath.workdps(60):
        for x, y in zip(a, b):
            d = abs(mpmath.mpf(x) - mpmath.mpf(y))
            if d == 0:
                continue
            worst = min(worst, float(-mpmath.log10(d / max(1, abs(mpmath.mpf(y))))))
    return worst


# ----------------------------------------------------------------------------------------------
# Gauss rules over the distribution (implementation identity, exact variance)
# ----------------------------------------------------------------------------------------------
def _point_count(dist, n: int) -> int:
    name = type(dist).__name__
    if name == "Dirac":
        return 1
    d = dist.dim if name == "MultivariateGaussian" else dist.event_size
    per = 2 * n if name == "Laplace" else n
    return per ** d


def _gauss_moments(dist, evaluate, n: int):
    """``{name: (E[r], E[r^2], sum|w r|, sum w r^2)}`` by the Gauss rule with ``n`` nodes."""
    z, w = gauss_points(dist, n)
    est = evaluate(z)
    out = {}
    for k, v in est.items():
        v = np.asarray(v, float).reshape(len(w), -1)
        wv = w[:, None] * v
        out[k] = (wv.sum(0), (wv * v).sum(0), np.abs(wv).sum(0))
    return out


def implementation_identity(row: Row, dist, f, target: dict) -> dict:
    """Gauss quadrature (or enumeration) of the estimator's per-sample rule against ``target``
    (float arrays).  Returns ``{"status": pass|FAIL|inconclusive|n/a, "digits", "detail",
    "variance": {name: exact single-sample variance or None}}``."""
    method = row.method
    if method == "gsb-discrete":
        return _enumeration_identity(row, dist, f, target)
    if method not in ("gsb", "gsb-closed"):
        return {"status": "n/a", "detail": f"no deterministic form of {method} in the suite", "variance": {}}
    if f.has_kinks:
        return {"status": "n/a", "detail": "f has kinks: Gauss quadrature does not converge on them", "variance": {}}
    name = type(dist).__name__
    if name in ("Beta", "Dirichlet") and row.opts.get("via", "gamma") == "gamma" and method == "gsb":
        return {"status": "n/a", "detail": "gamma construction: the rule is evaluated at (z, s) pairs", "variance": {}}
    from gsbref.estimators.gsb import build_rule

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {} if method == "gsb-closed" else {k: v for k, v in row.opts.items() if k in ("order", "via")}
        rule = build_rule(dist, f, method, warn=False, **kw) if method == "gsb" else build_rule(dist, f, method)

    def evaluate(z):
        with np.errstate(all="ignore"):
            return rule.evaluate(z)[0]

    try:
        gauss_points(dist, 2)
    except NotImplementedError:
        return {"status": "n/a", "detail": f"no Gauss rule for {name}", "variance": {}}
    n = QUAD_START if name != "Dirac" else 1
    last = None
    while _point_count(dist, 2 * n) <= QUAD_MAX_POINTS or name == "Dirac":
        coarse = _gauss_moments(dist, evaluate, n) if last is None else last
        fine = _gauss_moments(dist, evaluate, 2 * n)
        ok = True
        res = {}
        for k, t in target.items():
            t = np.asarray(t, float).reshape(-1)
            (m1, s1, _), (m2, s2, mag) = coarse[k], fine[k]
            tol = np.abs(m1 - m2) + 64 * EPS * mag
            ok &= bool(np.all(tol <= QUAD_RTOL * np.maximum(1, np.abs(t))))
            var2 = s2 - m2**2
            var_tol = np.abs((s1 - m1**2) - var2) + 64 * EPS * np.abs(s2)
            res[k] = (m2, tol, t, var2, var_tol)
        if ok or name == "Dirac":
            break
        last = fine
        n *= 2
    else:
        return {"status": "inconclusive", "detail": f"Gauss quadrature not converged to {QUAD_RTOL:g} "
                f"relative with {_point_count(dist, n)} points", "variance": {}}
    status, worst, variance = "pass", math.inf, {}
    for k, (m2, tol, t, var2, var_tol) in res.items():
        err = np.abs(m2 - t)
        if np.any(err > tol + QUAD_RTOL * np.maximum(1, np.abs(t))):
            status = "FAIL"
        with np.errstate(divide="ignore"):
            dg = np.where(err == 0, np.inf, -np.log10(np.maximum(err, 1e-300) / np.maximum(1, np.abs(t))))
        worst = min(worst, float(np.min(dg)))
        good = var_tol <= SQRT_EPS * np.maximum(np.abs(var2), 1e-300) + 64 * EPS
        variance[k] = np.where(good, np.maximum(var2, 0.0), np.nan).tolist()
    return {"status": status, "digits": worst, "variance": variance,
            "detail": f"Gauss quadrature of the implementation, {_point_count(dist, 2 * n)} points "
                      f"(allowed error |Q_n - Q_2n| + 64 eps sum|w r| + {QUAD_RTOL:g} relative)"}


def _enumeration_identity(row, dist, f, target):
    from gsbref.estimators.discrete import enumerate_states, theorem2_at

    states, probs = enumerate_states(dist)
    opts = {k: v for k, v in row.opts.items() if k in ("convention", "strategy")}
    est = theorem2_at(dist, f, states, **opts)
    status, worst, variance = "pass", math.inf, {}
    for k, t in target.items():
        v = np.asarray(est[k], float).reshape(len(probs), -1)
        pv = probs[:, None] * v
        mean = pv.sum(0)
        t = np.asarray(t, float).reshape(-1)
        tol = 64 * EPS * np.abs(pv).sum(0) + 64 * EPS * np.abs(t)
        err = np.abs(mean - t)
        if np.any(err > tol):
            status = "FAIL"
        with np.errstate(divide="ignore"):
            dg = np.where(err == 0, np.inf, -np.log10(np.maximum(err, 1e-300) / np.maximum(1, np.abs(t))))
            worst = min(worst, float(np.min(dg)))
        variance[k] = np.maximum((pv * v).sum(0) - mean**2, 0.0).tolist()
    return {"status": status, "digits": worst, "variance": variance,
            "detail": f"exact enumeration of the implementation over {len(probs)} states "
                      "(allowed error 64 eps sum p|r|)"}


def formula_identity(bundle, row: Row) -> dict:
    """Exact targets of the gsb rule: the rule's expectation (mpmath quadrature of the formula)
    against the oracle, in digits; needs at least half of the working digits."""
    if row.method != "gsb" or row.target != "exact":
        return {"status": "n/a"}
    rule = rule_mp(bundle, row)
    if rule is None:
        return {"status": "n/a", "detail": bundle["terms_note"].get(row.opts.get("via", "gamma"), "")}
    dg = min(digits(rule[k], bundle["gradient"][k]) for k in rule)
    need = bundle["dps"] / 2
    return {"status": "pass" if dg >= need else "FAIL", "digits": dg,
            "detail": f"rule expectation (mpmath, {bundle['dps']} digits) vs oracle ({bundle['method']}); "
                      f"needs >= {need:g} digits"}


# ----------------------------------------------------------------------------------------------
# calling an estimator
# ----------------------------------------------------------------------------------------------
def call_estimator(method: str, dist, f, n: int, rng, extra_estimators: dict | None = None, **opts) -> dict:
    """Per-sample estimates ``{name: (n, *param_shape)}`` of ``method`` (a registered estimator or
    one of ``extra_estimators``), with the contract of :func:`gsbref.estimators.estimate`."""
    if extra_estimators and method in extra_estimators:
        out = extra_estimators[method](dist, f, n, rng, **opts)
        res = {}
        for p in dist.parameters:
            s = np.asarray(out[p.name], dtype=float)
            if s.shape[0] != n:
                raise RuntimeError(f"estimator {method!r} returned {s.shape[0]} samples for '{p.name}', expected {n}")
            res[p.name] = s
        return res
    from gsbref.estimators import estimate

    return {k: e.samples for k, e in estimate(dist, f, method, n, rng, **opts).items()}


def sample_with_warnings(method, dist, f, n, rng, extra, **opts):
    """``(samples, seconds, warnings)``: the estimator's draw, its wall time and the distinct
    warnings it raised (category: message, first 160 characters)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        with np.errstate(all="ignore"):
            s = call_estimator(method, dist, f, n, rng, extra, **opts)
        sec = time.perf_counter() - t0
    msgs = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})
    return s, sec, msgs


def tail_indices(samples: dict) -> dict:
    """Hill tail index per parameter (the smallest over its components)."""
    from gsbref.estimators.resummed import tail_index

    out = {}
    for k, s in samples.items():
        if s.shape[0] < 2000:
            out[k] = None
            continue
        x = s.reshape(s.shape[0], -1)
        if np.all(np.ptp(x, axis=0) == 0):
            out[k] = math.inf
            continue
        with np.errstate(all="ignore"):
            out[k] = float(np.min(tail_index(x)))
    return out
