"""The score-function (REINFORCE) estimator, ``method="score"``.

Monte Carlo checks: sampled means agree with ``oracle.gradient`` within ``K_MC`` standard errors.
Module-wide false-alarm rate ``ALPHA`` = 1e-3, Bonferroni over the ``N_COMPARISONS`` scalar
comparisons of :func:`test_monte_carlo_unbiased` (normal approximation of the mean of ``N_MC``
samples; fixed seeds).  With the leave-one-out baseline the per-sample estimates are correlated at
``O(1/S)``, which changes the standard error by a relative ``O(1/S)`` (negligible at S = 1e5).
Power: wrong variants (sign flip, 2 % scale error, a baseline that uses its own sample, the Gamma
score without its digamma term, the Categorical 'free' convention against the reference-last
gradient) must fail the same check; each is sized to an expected shift >= ``K_MC + 4`` standard
errors in at least one component (miss probability < 4e-5).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import special as sp
from scipy.stats import norm

import gsbref
from gsbref import oracle
from gsbref.catalog import CASES, case
from gsbref.distributions.dirac import NoDensityError
from gsbref.estimators import Estimate, estimate
from gsbref.estimators.score import score_function

ALPHA = 1e-3
N_MC = 100_000
_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))
# oracle cost: nested 3-D quadrature (~10 s); everything else takes < 3 s
_SLOW = {"dirichlet-k3-softplus"}


def _configs():
    out = []
    for c in CASES:
        if c.dist().__class__.__name__ == "Dirac":
            continue
        for baseline in (None, "loo"):
            out.append((c.name, baseline))
    # a constant baseline (any number keeps the estimate unbiased)
    out += [("gamma-softplus", 2.0), ("bernoulli-toy", 0.25), ("categorical-network", -1.5)]
    return out


CONFIGS = _configs()
def _n_scalars(name):
    """Scalar gradient components of a case (Categorical(probs), reference-last: K - 1 per row)."""
    dist = case(name).dist()
    total = 0
    for p in dist.parameters:
        shape = dist.params[p.name].shape
        if type(dist).__name__ == "Categorical":
            shape = shape[:-1] + (shape[-1] - 1,)
        total += int(np.prod(shape))
    return total


N_COMPARISONS = sum(_n_scalars(n) for n, _ in CONFIGS)
K_MC = float(norm.isf(ALPHA / (2 * N_COMPARISONS)))


@functools.lru_cache(maxsize=None)
def _exact(name, convention=None):
    dist, f = case(name).build()
    dps = 8 if "nested" in case(name).tags else None  # 8 digits: far below any standard error here
    g = oracle.gradient(dist, f, dps=dps, convention=convention)
    return {k: np.asarray(oracle.to_float(v), dtype=float) for k, v in g.items()}


def _rejections(est: dict, exact: dict, k: float) -> list[str]:
    """The scalar comparisons that fail: |mean - exact| > k se + sqrt(eps) scale (the second term
    only matters where an estimate is deterministic)."""
    bad = []
    for name, e in est.items():
        mean, se = np.atleast_1d(e.mean).ravel(), np.atleast_1d(e.stderr).ravel()
        ex = np.atleast_1d(exact[name]).ravel()
        assert ex.shape == mean.shape, (name, ex.shape, mean.shape)
        tol = k * se + _SQRT_EPS * np.abs(ex)
        for i in np.flatnonzero(np.abs(mean - ex) > tol):
            bad.append(f"d/d{name}[{i}]: {mean[i]:.6g} vs {ex[i]:.6g} (se {se[i]:.2g})")
    return bad


@pytest.mark.parametrize(
    "name,baseline",
    [pytest.param(n, b, id=f"{n}-{b}", marks=[pytest.mark.slow] if n in _SLOW else []) for n, b in CONFIGS],
)
def test_monte_carlo_unbiased(name, baseline):
    dist, f = case(name).build()
    est = estimate(dist, f, "score", N_MC, 2000 + CONFIGS.index((name, baseline)), baseline=baseline)
    exact = _exact(name)
    assert set(est) == set(exact)
    for k, e in est.items():
        assert e.samples.shape == (N_MC, *np.shape(exact[k]))
        assert np.isfinite(e.samples).all()
    bad = _rejections(est, exact, K_MC)
    assert not bad, f"{name} baseline={baseline}: " + "; ".join(bad)


def test_bonferroni_bookkeeping():
    assert N_COMPARISONS >= 150
    assert 4.0 < K_MC < 5.5


@pytest.mark.slow
def test_false_alarm_rate_is_calibrated():
    """The check's false-alarm rate, measured: at a per-comparison level of 5 % (k = 1.96), over 400
    seeds of correct configurations (with and without the leave-one-out baseline), each scalar's
    rejection count must lie within the two-sided 1e-4 bounds of Binomial(400, 0.05)."""
    from scipy.stats import binom

    n_seeds, n = 400, 4000
    k = float(norm.isf(0.025))
    lo, hi = binom.ppf(5e-5, n_seeds, 0.05), binom.isf(5e-5, n_seeds, 0.05)
    for name, baseline in [("gamma-softplus", None), ("gamma-softplus", "loo"), ("bernoulli-toy", "loo")]:
        dist, f = case(name).build()
        exact = _exact(name)
        counts = dict.fromkeys(exact, 0)
        for seed in range(n_seeds):
            for p, e in estimate(dist, f, "score", n, 60_000 + seed, baseline=baseline).items():
                counts[p] += int(abs(float(e.mean) - float(exact[p])) > k * float(e.stderr))
        for p, c in counts.items():
            assert lo <= c <= hi, f"{name} {baseline} d/d{p}: {c} of {n_seeds} (bounds {lo:.0f}..{hi:.0f})"


def test_every_family_with_a_density_is_covered():
    """Every continuous family (except Dirac) and both discrete ones, each parametrisation."""
    seen = {type(case(n).dist()).__name__ for n, _ in CONFIGS}
    expected = set(gsbref.distributions.FAMILIES) - {"Dirac"}
    assert expected <= seen, expected - seen


def test_loo_baseline_lowers_variance():
    """Leave-one-out baseline: unbiased (test_monte_carlo_unbiased) and lower variance.  Measured
    single-sample variances are printed in the assertion messages.  The variance estimates from
    1e5 samples have relative standard errors below 2 %; the asserted ratios are far outside that."""
    for name, param, factor in (("bernoulli-toy", "probs", 1e-3), ("gamma-softplus", "scale", 0.5)):
        dist, f = case(name).build()
        plain = estimate(dist, f, "score", N_MC, 5)[param]
        loo = estimate(dist, f, "score", N_MC, 5, baseline="loo")[param]
        assert loo.variance < factor * plain.variance, (name, float(plain.variance), float(loo.variance))


def test_categorical_free_convention():
    dist, f = case("categorical-quadratic").build()
    est = estimate(dist, f, "score", N_MC, 8, convention="free")
    assert est["probs"].samples.shape == (N_MC, 2, 4)
    exact = _exact("categorical-quadratic", "free")
    # its own Bonferroni: 8 comparisons, false alarm 1e-4
    assert not _rejections(est, exact, float(norm.isf(1e-4 / 16)))


# -- wrong variants ---------------------------------------------------------------------------
def _scaled(c):
    def wrap(dist, f, n, rng, **o):
        return {k: c * v for k, v in score_function(dist, f, n, rng, **o).items()}

    return wrap


def _self_baseline(dist, f, n, rng, **o):
    """b_s = f(z_s) / 2: a baseline that depends on its own sample (halves the estimate)."""
    return _scaled(0.5)(dist, f, n, rng)


def _no_digamma(dist, f, n, rng, **o):
    """d/dshape log p of the Gamma written as log(z / scale), forgetting -digamma(shape)."""
    z = dist.sample(rng, n)
    fz = np.asarray(f(z.reshape(n, -1)), float)
    p = dist.broadcast_params()
    s_shape = np.log(z) - np.log(p["shape"])  # missing - digamma(shape)
    s_scale = (z / p["scale"] - p["shape"]) / p["scale"]
    w = fz.reshape((n,) + (1,) * len(dist.event_shape))
    return {"shape": dist._reduce_to_param("shape", w * s_shape, 1),
            "scale": dist._reduce_to_param("scale", w * s_scale, 1)}


def _free_as_reference(dist, f, n, rng, **o):
    """The 'free' convention's first K-1 entries taken for the reference-last gradient."""
    out = score_function(dist, f, n, rng, convention="free", **o)
    return {"probs": out["probs"][..., :-1]}


WRONG = {
    "sign-flip": _scaled(-1.0),
    "scale-2pct": _scaled(1.02),
    "self-baseline": _self_baseline,
    "no-digamma": _no_digamma,
    "free-as-reference": _free_as_reference,
}
# (variant, case, options, n); measured shifts in standard errors at these n: sign flip > 100,
# scale-2pct 13 (bernoulli-toy, loo) and 11 (laplace-softplus loc, loo), self-baseline > 50,
# no-digamma > 50, free-as-reference > 50 (K_MC = 4.6)
WRONG_CASES = [
    ("sign-flip", "gamma-softplus", {}, N_MC),
    ("sign-flip", "categorical-logits", {"baseline": "loo"}, N_MC),
    ("scale-2pct", "bernoulli-toy", {"baseline": "loo"}, 4 * N_MC),
    ("scale-2pct", "laplace-softplus", {"baseline": "loo"}, 4 * N_MC),
    ("self-baseline", "beta-identity", {}, N_MC),
    ("no-digamma", "gamma-softplus", {}, N_MC),
    ("free-as-reference", "categorical-quadratic", {}, N_MC),
]


@pytest.mark.parametrize("variant,name,opts,n", WRONG_CASES, ids=[f"{v}-{c}" for v, c, _, _ in WRONG_CASES])
def test_wrong_variants_are_rejected(variant, name, opts, n):
    dist, f = case(name).build()
    out = WRONG[variant](dist, f, n, np.random.default_rng(99), **opts)
    est = {k: Estimate(np.asarray(v, float)) for k, v in out.items()}
    assert _rejections(est, _exact(name), K_MC), f"{variant} on {name} was not caught"


# -- errors -------------------------------------------------------------------------------------
def test_dirac_has_no_score_function_estimator():
    with pytest.raises(NoDensityError, match="needs a density"):
        estimate(gsbref.Dirac([0.5, 1.0]), "sum(z)", "score", 10, 0)


def test_bad_options():
    g = gsbref.Gamma(2.0, 1.0)
    with pytest.raises(ValueError, match="n_samples >= 2"):
        estimate(g, "z", "score", 1, 0, baseline="loo")
    with pytest.raises(ValueError, match="baseline"):
        estimate(g, "z", "score", 10, 0, baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        estimate(g, "z", "score", 10, 0, baseline=True)
    with pytest.raises(ValueError, match="baseline"):
        estimate(g, "z", "score", 10, 0, baseline=float("nan"))
    with pytest.raises(ValueError, match="convention"):
        estimate(g, "z", "score", 10, 0, convention="free")


def test_loo_baseline_formula():
    """b_s = (sum_r f_r - f_s) / (S - 1), checked against a direct computation."""
    dist = gsbref.Gamma(2.0, 1.0)
    est = estimate(dist, "softplus(z)", "score", 7, 3, baseline="loo")["scale"].samples
    z = dist.sample(3, 7)
    fz = np.logaddexp(0.0, z)
    b = np.array([np.delete(fz, s).mean() for s in range(7)])
    np.testing.assert_allclose(est, (fz - b) * (z - 2.0), rtol=1e-13, atol=1e-13)
    shape_score = np.log(z) - sp.digamma(2.0)
    plain = estimate(dist, "softplus(z)", "score", 7, 3)["shape"].samples
    np.testing.assert_allclose(plain, fz * shape_score, rtol=1e-13, atol=1e-13)
