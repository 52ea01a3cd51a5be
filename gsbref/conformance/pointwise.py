"""Check (a): a library's per-sample pathwise derivatives ``dz/dtheta`` against exact values.

Quantities (``QUANTITIES[library]``), each a library formula evaluated at chosen points:

``gamma.shape``     dz/dk of a standard Gamma(k, 1) sample at z (torch ``_standard_gamma_grad``,
                    JAX ``lax.random_gamma_grad``); exact: ``gsbref.special.gamma_dz_dshape``.
``beta.alpha``,     dz/da, dz/db of a Beta(a, b) sample at z along torch's transport
``beta.beta``       (``_Dirichlet_backward``; the inverse-CDF derivative); exact:
                    ``gsbref.special.beta_dz_dparams``.  The Dirichlet backward is the same
                    function of the Beta marginals, so this also covers ``Dirichlet.rsample``.
``loggamma.shape``  JAX: d log z / dk in log space (the tangent of ``jax.random.loggamma``, the
                    path of ``jax.random.beta`` and ``dirichlet``); exact: ``dz/dk / z``.

Error measure per point: ``|lib - exact| / |exact|`` (the libraries' values are rounded results of
``dtype`` arithmetic at ``dtype`` inputs, the exact value is taken at the same inputs); a point
whose result is NaN or infinite counts in the NaN/inf rate instead.  A point is *out of tolerance*
when the relative error exceeds ``sqrt(eps)`` of the dtype (1.5e-8 for float64, 3.5e-4 for
float32), the deterministic tolerance of the project's verification rules.  Points whose input
cannot be represented (the quantile is below the smallest normal number of the dtype -- zero or
subnormal, where the input itself has lost relative precision -- or rounds to 1), or whose exact
result is below the smallest normal number, are counted separately ("not repr.") and not
evaluated.
"""

from __future__ import annotations

import numpy as np

from . import _reference as R

SHAPES = tuple(10.0 ** (e / 2) for e in range(-8, 9))  # 1e-4 ... 1e4, half decades
QUANTILES = (1e-6, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1 - 1e-6)
SEARCH_RANGE = (1e-6, 1e7)

QUANTITIES = {"torch": ("gamma.shape", "beta.alpha", "beta.beta"),
              "jax": ("gamma.shape", "loggamma.shape")}

BANDS = ((0.0, 1e-4, "shape<1e-4"), (1e-4, 1e-2, "1e-4<=shape<1e-2"), (1e-2, 1.0, "1e-2<=shape<1"),
         (1.0, 1e2, "1<=shape<1e2"), (1e2, 1e4, "1e2<=shape<1e4"), (1e4, np.inf, "shape>=1e4"))
#: coarser bands of the second Beta parameter (the one not differentiated)
OTHER_BANDS = ((0.0, 1e-2, "other<1e-2"), (1e-2, 1e2, "1e-2<=other<1e2"), (1e2, np.inf, "other>=1e2"))


def quantities(adapter) -> tuple:
    """The quantities checked for ``adapter``: its ``QUANTITIES`` attribute if it has one, else
    ``QUANTITIES[adapter.NAME]``."""
    return tuple(getattr(adapter, "QUANTITIES", None) or QUANTITIES[adapter.NAME])


def tolerance(dtype: str) -> float:
    return float(np.sqrt(R.EPS[dtype]))


def band(x: float, bands=BANDS) -> str:
    for lo, hi, name in bands:
        if lo <= x < hi:
            return name
    return bands[-1][2]


def tail(u: float) -> str:
    return "lower tail (u<0.01)" if u < 0.01 else "upper tail (u>0.99)" if u > 0.99 else "bulk"


def _evaluate(adapter, quantity: str, dtype: str, shape, other, u):
    """Points, library values and exact values for one quantity.  ``shape`` is the parameter
    differentiated (k, or a for beta.alpha, b for beta.beta), ``other`` the second Beta
    parameter (ignored for gamma)."""
    shape = R.rnd(shape, dtype)
    other = R.rnd(other, dtype)
    if quantity == "gamma.shape":
        z = R.gamma_points(shape, u, dtype)
        valid = (z >= R.TINY[dtype]) & np.isfinite(z)
        zz = np.where(valid, z, 1.0)
        lib = adapter.gamma_dz_dshape(zz, shape, dtype)
        ref = R.gamma_dz_dshape(zz, shape)
        pts = {"k": shape, "z": z}
    elif quantity == "loggamma.shape":
        lz = R.log_gamma_points(shape, u, dtype)
        valid = np.isfinite(lz)
        ll = np.where(valid, lz, 0.0)
        lib = adapter.loggamma_dlogz_dshape(ll, shape, dtype)
        ref = R.dlogz_dshape(ll, shape)
        pts = {"k": shape, "log_z": lz}
    elif quantity in ("beta.alpha", "beta.beta"):
        a, b = (shape, other) if quantity == "beta.alpha" else (other, shape)
        z = R.beta_points(a, b, u, dtype)
        valid = (z >= R.TINY[dtype]) & (z < 1)
        zz = np.where(valid, z, 0.5)
        la, lb = adapter.beta_dz_dparams(zz, a, b, dtype)
        ra, rb = R.beta_dz_dparams(zz, a, b)
        lib, ref = (la, ra) if quantity == "beta.alpha" else (lb, rb)
        pts = {"a": a, "b": b, "z": z}
    else:
        raise ValueError(f"unknown quantity {quantity!r}")
    # no exact value, or one below the normal range of the dtype: not evaluated ("not repr.")
    valid = valid & np.isfinite(ref) & (np.abs(ref) >= R.TINY[dtype])
    with np.errstate(all="ignore"):
        rel = np.abs(lib - ref) / np.abs(ref)
    rel = np.where(ref == 0, np.where(lib == 0, 0.0, np.inf), rel)
    return pts, valid, lib, ref, rel


def _region_keys(quantity, shape, other, u):
    beta = quantity.startswith("beta")
    return [band(s) + (f", {band(o, OTHER_BANDS)}" if beta else "") + ", " + tail(uu)
            for s, o, uu in zip(shape, other, u)]


def _summarise(quantity, dtype, shape, other, u, valid, lib, rel, record):
    """Per region: points, unrepresentable, non-finite, out-of-tolerance counts, the largest
    finite relative error, the worst finite point (``worst``) and the first non-finite one
    (``nonfinite_point``)."""
    tol = tolerance(dtype)
    keys = np.asarray(_region_keys(quantity, shape, other, u))
    finite = np.isfinite(lib)
    regions = {}
    for key in sorted(set(keys.tolist())):
        m = keys == key
        ev = m & valid
        nf = ev & ~finite
        ok = ev & finite
        r = {"points": int(m.sum()), "unrepresentable": int((m & ~valid).sum()), "nonfinite": int(nf.sum()),
             "out_of_tol": int((ok & (rel > tol)).sum()),
             "max_rel_err": float(rel[ok].max()) if ok.any() else None, "worst": None, "nonfinite_point": None}
        if nf.any():
            r["nonfinite_point"] = record(int(np.flatnonzero(nf)[0]))
        if ok.any():
            r["worst"] = record(int(np.flatnonzero(ok)[np.argmax(rel[ok])]))
        regions[key] = r
    return regions


def _recorder(pts, S, O, U, lib, ref, rel, dtype):
    Sr, Or = R.rnd(S, dtype), R.rnd(O, dtype)

    def record(i):
        return {"shape": float(Sr[i]), "other": float(Or[i]), "u": float(U[i]),
                **{k: float(v[i]) for k, v in pts.items()}, "lib": float(lib[i]), "exact": float(ref[i]),
                "rel_err": float(rel[i]) if np.isfinite(lib[i]) else None}

    return record


def grid_check(adapter, dtype: str) -> list[dict]:
    """Every quantity of ``adapter`` on the grid ``SHAPES x QUANTILES`` (Beta: also ``x SHAPES``
    for the other parameter).  Returns one record per quantity with the heat-map matrix (max
    relative error over the other Beta parameter; NaN where a non-finite value occurred) and the
    per-region summary."""
    out = []
    for q in quantities(adapter):
        others = SHAPES if q.startswith("beta") else (1.0,)
        S, O, U = np.meshgrid(np.asarray(SHAPES), np.asarray(others), np.asarray(QUANTILES), indexing="ij")
        S, O, U = S.ravel(), O.ravel(), U.ravel()
        pts, valid, lib, ref, rel = _evaluate(adapter, q, dtype, S, O, U)
        nonfinite = valid & ~np.isfinite(lib)
        err = np.where(valid, np.where(nonfinite, np.nan, rel), -1.0).reshape(len(SHAPES), len(others), len(QUANTILES))
        heat = np.full((len(SHAPES), len(QUANTILES)), -1.0)
        for i in range(len(SHAPES)):
            for j in range(len(QUANTILES)):
                col = err[i, :, j]
                heat[i, j] = np.nan if np.isnan(col).any() else col.max()
        record = _recorder(pts, S, O, U, lib, ref, rel, dtype)
        regions = _summarise(q, dtype, R.rnd(S, dtype), R.rnd(O, dtype), U, valid, lib, rel, record)
        out.append({"library": adapter.NAME, "dtype": dtype, "quantity": q, "tolerance": tolerance(dtype),
                    "shapes": list(SHAPES), "quantiles": list(QUANTILES), "heat": heat.tolist(),
                    "regions": regions, "n_points": int(S.size), "n_valid": int(valid.sum()),
                    "n_nonfinite": int(nonfinite.sum()),
                    "n_out_of_tol": int((valid & np.isfinite(lib) & (rel > tolerance(dtype))).sum()),
                    "records": [record(i) for i in range(S.size) if valid[i]]})
    return out


def random_search(adapter, dtype: str, n: int, rng) -> list[dict]:
    """Log-uniform parameters over ``SEARCH_RANGE`` and probabilities with uniform log-odds in
    [-40, 40] (half of the draws) or uniform on (0, 1) (the other half), ``n`` draws per
    quantity, evaluated like :func:`grid_check`.  Returns one record per quantity with the worst
    points per region."""
    from ..distributions._base import as_generator

    rng = as_generator(rng)
    lo, hi = np.log(SEARCH_RANGE[0]), np.log(SEARCH_RANGE[1])
    out = []
    for q in quantities(adapter):
        S = np.exp(rng.uniform(lo, hi, n))
        O = np.exp(rng.uniform(lo, hi, n))
        t = rng.uniform(-40, 40, n)
        U = np.where(np.arange(n) % 2 == 0, 1 / (1 + np.exp(-t)), rng.uniform(0, 1, n))
        U = np.clip(U, np.nextafter(0, 1), np.nextafter(1, 0))
        pts, valid, lib, ref, rel = _evaluate(adapter, q, dtype, S, O, U)
        record = _recorder(pts, S, O, U, lib, ref, rel, dtype)
        regions = _summarise(q, dtype, R.rnd(S, dtype), R.rnd(O, dtype), U, valid, lib, rel, record)
        out.append({"library": adapter.NAME, "dtype": dtype, "quantity": q, "tolerance": tolerance(dtype), "n": n,
                    "n_valid": int(valid.sum()), "n_nonfinite": int((valid & ~np.isfinite(lib)).sum()),
                    "n_out_of_tol": int((valid & np.isfinite(lib) & (rel > tolerance(dtype))).sum()),
                    "regions": regions, "records": [record(i) for i in np.flatnonzero(valid)]})
    return out


def validate_reference(parts, per_region: int, rng, dps: int = 30) -> dict:
    """Recompute the float64 bulk reference with the mpmath oracle (quadrature, ``dps`` digits)
    at ``per_region`` random evaluated points of every region of every quantity in ``parts``
    (grid and search records; the reference is a function of the inputs only, so dtypes are
    pooled).  Returns ``{quantity: {band: {"points", "max_rel_diff", "worst"}}}`` keyed by the
    shape band of the differentiated parameter, and ``"max_rel_diff"`` over all."""
    from ..distributions._base import as_generator

    rng = as_generator(rng)
    pools: dict = {}
    for g in parts:
        for p in g.get("records", []):
            key = _region_keys(g["quantity"], [p["shape"]], [p["other"]], [p["u"]])[0]
            pools.setdefault(g["quantity"], {}).setdefault(key, []).append(p)
    out: dict = {}
    overall = 0.0
    for q, regions in pools.items():
        res = out.setdefault(q, {})
        for key in sorted(regions):
            pts = regions[key]
            for i in rng.choice(len(pts), size=min(per_region, len(pts)), replace=False):
                p = pts[int(i)]
                ex = float(R.mp_exact(q, p, dps))
                ref = R.bulk(q, p)
                d = 0.0 if ex == ref else abs(ref - ex) / abs(ex) if ex != 0 else np.inf
                b = res.setdefault(band(p["shape"]), {"points": 0, "max_rel_diff": 0.0, "worst": None})
                b["points"] += 1
                if d >= b["max_rel_diff"]:
                    b["max_rel_diff"], b["worst"] = d, {**{k: p[k] for k in ("k", "a", "b", "z", "log_z") if k in p},
                                                        "reference": ref, "oracle": ex}
                overall = max(overall, d)
    return {"quantities": out, "max_rel_diff": overall, "per_region": per_region, "dps": dps}


def end_to_end_beta(adapter, dtype: str, n: int, rng) -> list[dict]:
    """JAX only (adapters with ``beta_draws``): ``n`` draws of ``jax.random.beta`` with ``a, b``
    log-uniform over ``SEARCH_RANGE``, one key per draw, differentiated by ``jax.jvp``, against the
    exact derivative of the construction JAX uses, ``z = g_a / (g_a + g_b)`` with each gamma
    variate held at its fixed uniform: ``dz/da = z (1 - z) dlog g_a/da`` and ``dz/db = -z (1 - z)
    dlog g_b/db`` at JAX's own log-gammas (reproduced from the same key).  ``z (1 - z)`` is taken
    from ``s = log g_a - log g_b`` as ``e^{-|s|} / (1 + e^{-|s|})^2``.  Not evaluated: draws whose
    sample or exact derivative is not a normal number of ``dtype`` or whose sample rounds to 1, and
    draws whose reproduced gammas do not give JAX's sample to ``4 (1 + |s|) eps`` (the rounding of
    ``exp(s)``).  Returns one record per parameter as :func:`random_search` does (regions by the
    bands of the differentiated and of the other parameter)."""
    from ..distributions._base import as_generator

    rng = as_generator(rng)
    lo, hi = np.log(SEARCH_RANGE[0]), np.log(SEARCH_RANGE[1])
    A = R.rnd(np.exp(rng.uniform(lo, hi, n)), dtype)
    B = R.rnd(np.exp(rng.uniform(lo, hi, n)), dtype)
    seeds = rng.integers(0, 2**31 - 1, n)
    d = adapter.beta_draws(seeds, A, B, dtype)
    z, lga, lgb = d["z"], d["log_ga"], d["log_gb"]
    s = lga - lgb
    eps, tiny = R.EPS[dtype], R.TINY[dtype]
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(s))
        zz = e / (1 + e) ** 2
        zr = 1 / (1 + np.exp(-s))
        reproduced = np.abs(zr - z) <= 4 * (1 + np.abs(s)) * eps * z
    inside = (z >= tiny) & (z < 1) & np.isfinite(lga) & np.isfinite(lgb)
    base = inside & reproduced
    out = []
    for q, lib, lg, shape, other, sign in (("beta.alpha (end to end)", d["dz_da"], lga, A, B, 1.0),
                                          ("beta.beta (end to end)", d["dz_db"], lgb, B, A, -1.0)):
        ref = sign * zz * R.dlogz_dshape(np.where(base, lg, 0.0), shape)
        ok = base & (np.abs(ref) >= tiny)
        with np.errstate(all="ignore"):
            rel = np.where(ref == 0, np.where(lib == 0, 0.0, np.inf), np.abs(lib - ref) / np.abs(ref))
        pts = {"a": A, "b": B, "z": z, "log_ga": lga, "log_gb": lgb, "seed": seeds}

        def record(i, pts=pts, shape=shape, other=other, lib=lib, ref=ref, rel=rel):
            return {"shape": float(shape[i]), "other": float(other[i]), "u": float("nan"),
                    **{k: (int(v[i]) if k == "seed" else float(v[i])) for k, v in pts.items()},
                    "lib": float(lib[i]), "exact": float(ref[i]),
                    "rel_err": float(rel[i]) if np.isfinite(lib[i]) else None}

        regions = _summarise("beta", dtype, shape, other, np.full(n, 0.5), ok, lib, rel, record)
        regions = {k.rsplit(", ", 1)[0]: r for k, r in regions.items()}  # no quantile: drop the tail
        out.append({"library": adapter.NAME, "dtype": dtype, "quantity": q, "tolerance": tolerance(dtype), "n": n,
                    "n_valid": int(ok.sum()), "n_nonfinite": int((ok & ~np.isfinite(lib)).sum()),
                    "n_out_of_tol": int((ok & np.isfinite(lib) & (rel > tolerance(dtype))).sum()),
                    "n_not_reproduced": int((inside & ~reproduced).sum()), "regions": regions})
    return out
