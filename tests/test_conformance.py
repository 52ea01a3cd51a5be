"""Conformance adapters (torch, jax): skip cleanly when a library is absent; fast."""

import json
from pathlib import Path

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


_JAX_SLOW = pytest.param("jax", marks=pytest.mark.slow)  # 2-10 s per call on the shared machine: JAX compiles its samplers


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
    data = json.loads(Path(paths["json"]).read_text())
    assert data["meta"]["gsbref_version"] == gsbref.__version__ and data["meta"]["dps"] == 20
    row = data["cases"][0]
    with mpmath.workdps(30):
        e = mpmath.mpf("0.49") / 2
        exact = -mpmath.log(1 + e) * (1 + e) ** -3  # dE/dk of E[exp(-0.49 z)] = (1 + 0.49 mu)^-k
        got = mpmath.mpf(row["gradient"]["shape"][0])
        assert abs(got - exact) <= mpmath.mpf(10) ** -19 * abs(exact)
    assert row["cross_check"]["digits"]["shape"] >= 18
    assert Path(paths["gradients_csv"]).read_text().startswith("# gsbref")
    with pytest.raises(ValueError, match="dps"):
        golden.export(tmp_path, dps=5, cases=[])


@pytest.mark.parametrize("lib", ["torch", _JAX_SLOW])
def test_pointwise_grid_runs_and_reports(lib, tmp_path):
    from gsbref.conformance import pointwise

    ad = _adapter(lib)
    g = pointwise.grid_check(ad, "float64")[0]
    assert g["n_valid"] > 0 and np.shape(g["heat"]) == (len(pointwise.SHAPES), len(pointwise.QUANTILES))
    # at moderate shapes and bulk quantiles both libraries are close (loose: torch is approximate)
    r = g["regions"]["1<=shape<1e2, bulk"]
    assert r["nonfinite"] == 0 and r["max_rel_err"] < 1e-2


# ---------------------------------------------------------------------------------------------
# the reference, the check's logic (no torch/jax needed), the exporter, the committed findings
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("log_z, k", [(-4605.75, 1e-3), (-800.0, 0.5), (-3.0e6, 1e-6), (-750.0, 2.0)])
def test_log_space_reference_below_the_float64_range(log_z, k):
    # exp(log_z) underflows in float64: the reference uses (psi(k + 1) - log z) / k, exact up to a
    # relative O(z) < 1e-300; both oracle methods at 30 digits, with the mpf z (not rounded to 0)
    got = R.dlogz_dshape(log_z, k)
    c = R.confirm("loggamma.shape", {"log_z": log_z, "k": k}, dps=30)
    assert c["agree_digits"] is not None and c["agree_digits"] >= 25
    exact = float(c["value"])
    assert exact > 0
    # digamma and one division/subtraction: a few roundings
    assert abs(got - exact) <= 8 * EPS64 * exact


def test_log_space_reference_in_the_float64_range_is_the_direct_one():
    log_z, k = np.array([-700.0, -5.0, 0.0, 2.0]), np.array([0.01, 0.3, 1.0, 5.0])
    z = np.exp(log_z)
    np.testing.assert_array_equal(R.dlogz_dshape(log_z, k), gsbref.special.gamma_dz_dshape(z, k) / z)


class _FakeAdapter:
    """A 'library' whose dz/dk is gsbref.special's value, times (1 + bias) for shapes below 1."""

    NAME = "fake"
    QUANTITIES = ("gamma.shape",)

    def __init__(self, bias):
        self.bias = bias

    def gamma_dz_dshape(self, z, k, dtype):
        v = gsbref.special.gamma_dz_dshape(R.rnd(z, dtype), R.rnd(k, dtype))
        return R.rnd(np.where(np.asarray(k) < 1, v * (1 + self.bias), v), dtype)


def test_pointwise_check_flags_exactly_the_wrong_regions_and_confirms_them():
    from gsbref.conformance import _confirm_regions, _findings, pointwise

    clean = pointwise.grid_check(_FakeAdapter(0.0), "float64")[0]
    assert clean["n_out_of_tol"] == 0 and clean["n_nonfinite"] == 0 and not _findings([clean])
    bias = 1e-6  # 70x the float64 tolerance sqrt(eps) = 1.5e-8
    g = pointwise.grid_check(_FakeAdapter(bias), "float64")[0]
    flagged = {k for k, r in g["regions"].items() if r["out_of_tol"]}
    small = {k for k, r in g["regions"].items() if k.split(",")[0] in ("shape<1e-4", "1e-4<=shape<1e-2", "1e-2<=shape<1")
             and r["points"] > r["unrepresentable"]}
    assert flagged == small
    for k in flagged:  # every evaluated point there is off by the bias (float64 rounding of the product aside)
        assert g["regions"][k]["max_rel_err"] == pytest.approx(bias, rel=1e-6)
    _confirm_regions([g])
    assert all(g["regions"][k]["confirmed"] for k in flagged)
    (f,) = _findings([g])
    assert f["confirmed"] and f["points"][0]["confirmed_rel_err"] == pytest.approx(bias, rel=1e-6)


def test_reference_validation_reports_the_bulk_against_the_oracle():
    from gsbref.conformance import pointwise, validate_reference

    g = pointwise.grid_check(_FakeAdapter(0.0), "float64")[0]
    rc = validate_reference([g], per_region=1, rng=3)
    n = sum(b["points"] for b in rc["quantities"]["gamma.shape"].values())
    assert n == sum(1 for r in g["regions"].values() if r["points"] > r["unrepresentable"])
    # docs/results/implicit_accuracy.md: gsbref.special within 5.4e-12 of the oracle on this range
    assert rc["max_rel_diff"] <= 5.4e-12


def test_golden_export_round_trips(tmp_path):
    import csv

    from gsbref.conformance import golden
    from gsbref.oracle import implicit_derivative

    # grid: shapes[::2] x shapes[::2] for the Beta, so (0.5, 3.0) gives 2 Gamma rows and 1 Beta row
    paths = golden.export(tmp_path, dps=20, cases=[case("gamma-toy2")], grid_shapes=(0.5, 3.0), grid_quantiles=(0.9,))
    data = json.loads(Path(paths["json"]).read_text())
    assert data["meta"]["schema"] == golden.SCHEMA and data["meta"]["implicit_grid"]["shapes"] == [0.5, 3.0]
    # gradients: the CSV holds exactly the JSON's strings, which parse back to the oracle's values
    with open(paths["gradients_csv"]) as fh:
        rows = list(csv.reader(fh))[2:]
    for c in data["cases"]:
        mine = [r for r in rows if r[0] == c["name"]]
        assert mine[0][4] == "E[f]" and mine[0][6] == c["expectation"]
        for k, vals in c["gradient"].items():
            assert [r[6] for r in mine if r[4] == f"d/d{k}"] == vals
        dist, f = case(c["name"]).build()
        truth = gsbref.oracle.gradient(dist, f, dps=25)
        with mpmath.workdps(25):
            for k, vals in c["gradient"].items():
                for v, t in zip(vals, np.asarray(truth[k], dtype=object).reshape(-1)):
                    assert abs(mpmath.mpf(v) - t) <= mpmath.mpf(10) ** -18 * abs(t)
    # implicit grid: z round-trips through repr exactly; values agree with a fresh oracle call
    assert [r["family"] for r in data["implicit"]] == ["Gamma", "Gamma", "Beta"]
    with open(paths["implicit_csv"]) as fh:
        irows = list(csv.reader(fh))[2:]
    assert len(irows) == sum(len(r["dz"]) for r in data["implicit"])
    for r in data["implicit"]:
        z = float(r["z"])
        assert repr(z) == r["z"]
        dist = (gsbref.Gamma(**r["params"]) if r["family"] == "Gamma" else gsbref.Beta(**r["params"]))
        fresh = implicit_derivative(dist, [z], dps=25)
        with mpmath.workdps(25):
            for k, v in r["dz"].items():
                t = fresh[k][0]
                assert abs(mpmath.mpf(v) - t) <= mpmath.mpf(10) ** -18 * abs(t)
                assert [x[5] for x in irows if x[3] == r["z"] and x[4] == k and x[0] == r["family"]
                        and json.loads(x[1]) == r["params"]] == [v]


def _committed_findings(lib):
    path = Path(__file__).resolve().parents[1] / "docs" / "results" / "conformance" / f"{lib}.json"
    if not path.exists():
        pytest.skip(f"no committed report {path}")
    ad = _adapter(lib)
    rep = json.loads(path.read_text())
    if rep["version"] != ad.version():
        pytest.skip(f"committed report is for {lib} {rep['version']}, installed {ad.version()}")
    return rep


@pytest.mark.parametrize("lib, quantity", [("torch", "gamma.shape"), ("torch", "beta.alpha"), ("jax", "loggamma.shape"),
                                            pytest.param("jax", "beta.alpha (end to end)", marks=pytest.mark.slow)])
def test_committed_reproducer_reproduces(lib, quantity, capsys):
    # run the reproducer printed in the committed report: the library prints the recorded value,
    # and it is off the exact value (printed in the reproducer, from the oracle) by more than the
    # dtype's tolerance
    rep = _committed_findings(lib)
    fnd = next(f for f in rep["findings"] if f["quantity"] == quantity and f["dtype"] == "float64")
    i = next(i for i, c in enumerate(fnd["points"]) if c["kind"] == "largest relative error")
    src = fnd["reproducers"][i]
    exec(compile(src, f"<{lib} reproducer>", "exec"), {})  # noqa: S102 -- the report's own snippet, run as a user would
    printed = float(capsys.readouterr().out.split()[-1])
    exact = float(src.rsplit(":", 1)[1])
    assert printed == fnd["points"][i]["lib"]
    assert abs(printed - exact) / abs(exact) > fnd["tolerance"]
