"""The verification suite (``verification/``, ``gsbref verify``): the table, seeds, executors,
failure on a broken estimator, the report files.

Fast: a handful of rows (the quick sweep itself is the CI command, not a unit test).  The
false-alarm rate over many seeds is measured in ``tests/test_verification_slow.py``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import verification
from gsbref.catalog import CASES
from gsbref.cli import main as cli_main
from gsbref.estimators import available_methods
from verification import checks as C
from verification import runner
from verification.report import _clean
from verification.rows import ROWS, Row, get_case, make_row, row

# cheap rows covering an exact rule with variants, a truncated series, the resummed quadrature
# allowance, theorem 2 (enumeration identity) and a relaxation target; 5000 samples keep it fast
FEW = [dataclasses.replace(row(i), n_quick=5000) for i in (
    "gamma-toy1/gsb[order=2]",
    "laplace-softplus/gsb-resummed[quadrature=16]",
    "bernoulli-toy/gsb-discrete",
    "bernoulli-toy/gumbel-softmax[temperature=0.5]",
    "gamma-softplus/gsb-resummed[quadrature=8]",
)]


def _results(res):
    """The reproducible part of a run: every row's results without its timings."""
    out = []
    for r in res.data["rows"]:
        r = dict(r)
        r.pop("timing")
        out.append(r)
    return json.loads(json.dumps(_clean(out), sort_keys=True))


# ----------------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------------
def test_table_covers_every_registered_estimator_and_case_family():
    methods = {r.method for r in ROWS}
    # every registered estimator has rows
    missing = set(available_methods()) - methods
    assert not missing, missing
    families = {type(c.dist()).__name__ for c in CASES}
    assert families <= {type(get_case(r.case).dist()).__name__ for r in ROWS}
    assert len({r.id for r in ROWS}) == len(ROWS)
    quick = verification.rows("quick")
    assert {"toy"} <= {t for r in quick for t in r.tags} and any(r.variance == "infinite" for r in quick)
    assert any("hard" in r.tags for r in quick) and any("kink" in r.tags for r in quick)


def test_rows_are_validated():
    with pytest.raises(ValueError, match="target"):
        Row("gamma-toy1", "gsb", target="nonsense")
    with pytest.raises(ValueError, match="order=N"):
        make_row("gamma-toy1", "gsb", "rule")
    with pytest.raises(ValueError, match="unknown variants"):
        make_row("gamma-toy1", "gsb", variants=("typo",))
    with pytest.raises(KeyError):
        get_case("no-such-case")
    with pytest.raises(ValueError, match="unknown estimators"):
        verification.run([make_row("gamma-toy1", "no-such-method")], workers=1, figures=False)


def test_seeds_depend_on_the_row_not_the_order():
    a = C.seed_sequence(7, "gamma-toy1/gsb[order=2]", "mc").generate_state(4)
    b = C.seed_sequence(7, "gamma-toy1/gsb[order=2]", "mc").generate_state(4)
    c = C.seed_sequence(7, "gamma-toy1/gsb-closed", "mc").generate_state(4)
    d = C.seed_sequence(8, "gamma-toy1/gsb[order=2]", "mc").generate_state(4)
    assert (a == b).all() and not (a == c).all() and not (a == d).all()
    with pytest.raises(ValueError, match="seed"):
        C.seed_sequence(-1, "x", "y")


# ----------------------------------------------------------------------------------------------
# serial, reversed, process pool and Dask give identical results
# ----------------------------------------------------------------------------------------------
def test_serial_pool_and_dask_identical():
    serial = verification.run(FEW, seed=11, workers=1, figures=False)
    assert serial.exit_code == 0, serial.data["summary"]
    assert serial.data["summary"]["power_total"] >= 4
    rev = verification.run(FEW[::-1], seed=11, workers=1, figures=False)
    by_id = {r["id"]: r for r in _results(rev)}
    assert [by_id[r["id"]] for r in _results(serial)] == _results(serial)
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:  # no fork: other tests may have loaded jax
        pool = verification.run(FEW, seed=11, executor=ex, figures=False)
    assert _results(pool) == _results(serial)
    other = verification.run(FEW[:1], seed=12, workers=1, figures=False)
    assert _results(other)[0]["mc"]["mean"] != _results(serial)[0]["mc"]["mean"]
    distributed = pytest.importorskip("distributed")
    # the --scheduler path: dask.distributed.Client(address).get_executor()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        dask = verification.run(FEW, seed=11, scheduler=cl.scheduler_address, figures=False)
    assert _results(dask) == _results(serial)


# ----------------------------------------------------------------------------------------------
# a broken estimator fails loudly
# ----------------------------------------------------------------------------------------------
def test_broken_estimator_fails_and_is_named_first(tmp_path):
    rc = cli_main(["verify", "--quick", "--rows", "gamma-toy1/gsb-closed", "--plugin",
                   "verification.demo_broken:plugin", "--workers", "1", "--out", str(tmp_path), "--quiet",
                   "--no-figures"])
    assert rc == 1
    md = (tmp_path / "report.md").read_text()
    assert "RESULT: FAILED" in md.splitlines()[2]
    table = [ln for ln in md.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 2 |") or ln.startswith("| 3 |")]
    assert "score-sign-flipped" in table[0] and "score-sign-flipped" in table[1] and "gamma-toy1" in table[2]
    data = json.loads((tmp_path / "report.json").read_text())
    assert set(data["summary"]["failed_rows"]) == {"gamma-softplus/score-sign-flipped", "bernoulli-prod/score-sign-flipped"}


def test_python_api_extra_estimator():
    def scaled(dist, f, n, rng, **o):
        from gsbref.estimators import estimate

        return {k: 1.5 * e.samples for k, e in estimate(dist, f, "gsb-closed", n, rng).items()}

    bad = make_row("gamma-toy1", "closed-scaled", checks=("mc",))
    res = verification.run([row("gamma-toy1/gsb-closed"), bad], workers=1, figures=False,
                           extra_estimators={"closed-scaled": scaled})
    assert res.exit_code == 1 and res.failed_rows == [bad.id]


def test_crashing_row_is_an_error_not_a_crash():
    def boom(dist, f, n, rng, **o):
        raise RuntimeError("deliberate")

    res = verification.run([make_row("gamma-toy1", "boom", checks=("mc",))], workers=1, figures=False,
                           extra_estimators={"boom": boom})
    r = res.data["rows"][0]
    assert r["status"] == "error" and "deliberate" in r["error"] and res.exit_code == 1


# ----------------------------------------------------------------------------------------------
# infinite variance, power, identities
# ----------------------------------------------------------------------------------------------
def test_infinite_variance_row_is_flagged_not_tested():
    r = dataclasses.replace(row("gamma-log-shape-half/gsb-resummed"), n_quick=100_000)
    res = verification.run([r, row("gamma-toy1/gsb-closed")], workers=1, figures=False)
    out = res.data["rows"][0]
    assert out["status"] == "inf-var" and out["p_holm"] is None
    assert out["variance"]["tail_index"]["shape"] < C.TAIL_INFINITE  # detected, not only declared
    assert res.data["summary"]["mc_components_tested"] == 2  # only gamma-toy1's two components
    assert res.exit_code == 0


def test_identity_catches_a_wrong_rule():
    """The implementation identity is not vacuous: the order-1 rule against the order-2 target."""
    r = row("gamma-toy1/gsb[order=2]")
    bundle = C.case_truth(r.case, (("gamma", 3),))
    dist, f = r.build()
    target, _ = runner._target(r, bundle, dist, f)
    assert C.implementation_identity(r, dist, f, target)["status"] == "pass"
    wrong = dataclasses.replace(r, options=(("order", 1),))
    assert C.implementation_identity(wrong, dist, f, target)["status"] == "FAIL"


def test_backend_cupy_without_cupy_is_a_clear_error(capsys):
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - a GPU machine runs the real thing (verification/gpu_check.sh)
        pytest.skip("CuPy is installed")
    assert cli_main(["verify", "--backend", "cupy", "--quiet"]) == 2
    assert "needs CuPy" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs CuPy"):
        verification.run(FEW[:1], backend="cupy")


# ----------------------------------------------------------------------------------------------
# report files
# ----------------------------------------------------------------------------------------------
def test_report_files(tmp_path):
    res = verification.run(FEW[:2], seed=3, workers=1, figures=False, out=tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    for k in ("gsbref", "seed", "dtype", "backend", "platform", "numpy", "mode"):
        assert k in data["provenance"]
    assert data["provenance"]["seed"] == 3 and data["provenance"]["backend"] == "numpy"
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Summary") < md.index("## Details") and "RESULT: all checks passed" in md
    # figures: drawn from the run's data plus one short toy curve
    pytest.importorskip("matplotlib")
    from verification import figures, toy

    curve = toy.run_task(("toy1", 1, "score", 3), 0)
    assert len(curve["loss"]) == 3 and np.isfinite(curve["log10_variance"]).all()
    res.data["toy"] = {"toy1|1|score|3": curve}
    names, note = figures.draw(res.data, str(tmp_path))
    assert note is None and {"truncation.png", "variance.png", "toy1.png"} <= set(names)
    assert all(os.path.getsize(tmp_path / n) > 1000 for n in names)


def test_python_m_gsbref_verify_lists_rows(capsys):
    assert cli_main(["verify", "--list", "--rows", "gamma-toy1"]) == 0
    out = capsys.readouterr().out
    assert "gamma-toy1/gsb[order=2]" in out and "gamma-toy1/score" in out
