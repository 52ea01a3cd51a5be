"""Conformance adapters (torch, jax): skip cleanly when a library is absent; fast."""

import json

import mpmath
import numpy as np
import pytest

import gsbref
from gsbref import conformance
from gsbref.catalog import case
from gsbref.conformance import _reference as R

EPS64 = float(np.finfo(np.float64).eps)


def _adapter(lib):
    if not conformance.available(lib):
        pytest.skip(f"{lib} not installed")
    if lib == "torch":
        import torch

        torch.set_num_threads(1)
    return conformance.adapter(lib)


def test_unknown_library_is_refused():
    with pytest.raises(ValueError, match="library"):
        conformance.available("tensorflow")


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_bad_dtype_is_refused(lib):
    ad = _adapter(lib)
    with pytest.raises(ValueError, match="dtype"):
        ad.gamma_dz_dshape(1.0, 2.0, "float16")


_JAX_SLOW = pytest.param("jax", marks=pytest.mark.slow)  # ~20 s per call: JAX compiles its gamma sampler


@pytest.mark.parametrize("lib", ["torch", _JAX_SLOW])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gamma_formula_is_what_sampling_differentiates(lib, dtype):
    # the backward formula evaluated at given points is the derivative autodiff gives through the
    # library's sampler: with scale 1 the sample is the standard gamma variate itself, so the
    # same function sees the same inputs and the results agree to a few ulps (XLA may fuse the
    # tangent's multiplication by the scale differently from the eager call)
    ad = _adapter(lib)
    rng = np.random.default_rng(1)
    k = np.exp(rng.uniform(np.log(0.05), np.log(50.0), 64))
    z, jac, *_ = ad.sample_jacobian("gamma", {"shape": k, "scale": np.ones(64)}, rng, dtype)
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(jac["shape"], ad.gamma_dz_dshape(z, R.rnd(k, dtype), dtype), rtol=4 * eps)
    scale = np.exp(rng.uniform(-1, 1, 64))
    z, jac, *_ = ad.sample_jacobian("gamma", {"shape": k, "scale": scale}, rng, dtype)
    np.testing.assert_allclose(jac["scale"], z / R.rnd(scale, dtype), rtol=4 * eps)  # z = x * scale (torch: x / (1 / scale)): 3 roundings


@pytest.mark.parametrize("lib", ["torch", _JAX_SLOW])
def test_dirichlet_jacobian_stays_on_the_simplex(lib):
    # sum_j z_j = 1 for every alpha, so every row of dz/dalpha sums to 0
    ad = _adapter(lib)
    rng = np.random.default_rng(2)
    alpha = np.exp(rng.uniform(np.log(0.3), np.log(30.0), (100, 3)))
    z, jac, *_ = ad.sample_jacobian("dirichlet", {"concentration": alpha}, rng, "float64")
    np.testing.assert_allclose(z.sum(-1), 1.0, atol=4 * EPS64)
    # both libraries' rows are g_i (e_i - z) (torch) or d_i z_i (e_i - z) (JAX): the row sum is
    # g_i (1 - sum z), |1 - sum z| <= 3 eps, and g_i <= sum_j |J_ij| / (1 - z_i); 8 eps allows the
    # roundings of the products as well
    J = jac["concentration"]
    bound = 8 * EPS64 * np.abs(J).sum(-1) / (1 - z)
    assert np.all(np.abs(J.sum(-1)) <= bound)


def test_torch_beta_formula_matches_rsample():
    ad = _adapter("torch")
    rng = np.random.default_rng(3)
    a = np.exp(rng.uniform(np.log(0.3), np.log(30.0), 200))
    b = np.exp(rng.uniform(np.log(0.3), np.log(30.0), 200))
    z, jac = ad.sample_jacobian("beta", {"alpha": a, "beta": b}, rng, "float64")
    da, db = ad.beta_dz_dparams(z, a, b, "float64")
    # rsample's backward sees x = (g1, g2)/(g1+g2) with x_1 not exactly 1 - z: sqrt(eps) (a float check)
    np.testing.assert_allclose(jac["alpha"], da, rtol=np.sqrt(EPS64))
    np.testing.assert_allclose(jac["beta"], db, rtol=np.sqrt(EPS64))


@pytest.mark.slow  # JAX compiles its gamma sampler per shape: ~20 s on a shared 2-core machine
def test_jax_beta_gammas_are_reproduced():
    ad = _adapter("jax")
    rng = np.random.default_rng(4)
    a = np.exp(rng.uniform(np.log(0.3), np.log(30.0), 100))
    b = np.exp(rng.uniform(np.log(0.3), np.log(30.0), 100))
    z, jac, logg = ad.sample_jacobian("beta", {"alpha": a, "beta": b}, rng, "float64")
    np.testing.assert_allclose(z, 1 / (1 + np.exp(logg[:, 1] - logg[:, 0])), rtol=8 * EPS64)
    # gamma construction: dz/da = z (1 - z) dlog g_a / da with JAX's own log-space tangent
    dlog = ad.loggamma_dlogz_dshape(logg[:, 0], a, "float64")
    one_minus_z = 1 / (1 + np.exp(logg[:, 0] - logg[:, 1]))  # not 1 - z: no cancellation near z = 1
    np.testing.assert_allclose(jac["alpha"], z * one_minus_z * dlog, rtol=64 * EPS64)  # a chain of ~10 roundings


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_expectation_check_passes_and_catches_a_wrong_estimator(lib):
    from gsbref.testing import assert_unbiased, exact_gradient

    ad = _adapter(lib)
    dist, f = case("gamma-softplus").build()
    truth = exact_gradient(dist, f, dps=None)
    est = ad.estimator("float64")
    assert_unbiased(est, dist, f, n_samples=30_000, rng=5, truth=truth, false_alarm=1e-6)

    def wrong(d, ff, n, rng):  # a 10% error in the shape gradient, the size of a dropped term
        out = est(d, ff, n, rng)
        out["shape"] = 1.1 * out["shape"]
        return out

    with pytest.raises(AssertionError, match="biased"):
        assert_unbiased(wrong, dist, f, n_samples=30_000, rng=5, truth=truth, false_alarm=1e-6)


def test_torch_relaxed_bernoulli_matches_the_relaxed_gradient():
    from gsbref.conformance import expectation

    ad = _adapter("torch")
    row = expectation.check_case(ad, case("bernoulli-toy"), "float64", 30_000, np.random.default_rng(6), 1e-6, {})
    assert row["relaxed"] and row["passed"], row


def test_golden_export_writes_versioned_exact_values(tmp_path):
    from gsbref.conformance import golden

    paths = golden.export(tmp_path, dps=20, cases=[case("gamma-toy2")], implicit=False)
    data = json.loads(open(paths["json"]).read())
    assert data["meta"]["gsbref_version"] == gsbref.__version__ and data["meta"]["dps"] == 20
    row = data["cases"][0]
    with mpmath.workdps(30):
        e = mpmath.mpf("0.49") / 2
        exact = -mpmath.log(1 + e) * (1 + e) ** -3  # dE/dk of E[exp(-0.49 z)] = (1 + 0.49 mu)^-k
        got = mpmath.mpf(row["gradient"]["shape"][0])
        assert abs(got - exact) <= mpmath.mpf(10) ** -19 * abs(exact)
    assert row["cross_check"]["digits"]["shape"] >= 18
    assert open(paths["gradients_csv"]).readline().startswith("# gsbref")
    with pytest.raises(ValueError, match="dps"):
        golden.export(tmp_path, dps=5, cases=[])


@pytest.mark.skipif(not R.available()[0], reason="gsbref.special / oracle.implicit_derivative not available yet")
@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_pointwise_grid_runs_and_reports(lib, tmp_path):
    from gsbref.conformance import pointwise

    ad = _adapter(lib)
    g = pointwise.grid_check(ad, "float64")[0]
    assert g["n_valid"] > 0 and np.shape(g["heat"]) == (len(pointwise.SHAPES), len(pointwise.QUANTILES))
    # at moderate shapes and bulk quantiles both libraries are close (loose: torch is approximate)
    r = g["regions"]["1<=shape<1e2, bulk"]
    assert r["nonfinite"] == 0 and r["max_rel_err"] < 1e-2
