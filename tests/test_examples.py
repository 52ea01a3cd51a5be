"""Smoke tests of the examples (``examples/*.py``): each runs at its tiny ``--smoke`` size in a
temporary folder and writes its JSON and figures; plus the checks that can fail in the examples'
own code: the gradient estimators of the discrete models are unbiased (exact gradient by
enumeration), their model gradients match finite differences, and the oracle-in-tests example
catches its injected bug.  Skipped without matplotlib or scikit-learn."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import discrete_models as dm
import run_all
from scipy import stats
from scipy.special import expit


@pytest.mark.parametrize("name", run_all.EXAMPLES)
def test_example_runs(name, tmp_path):
    rc = run_all.main(["--smoke", "--out", str(tmp_path), "--only", name])
    assert rc == 0
    data = json.loads((tmp_path / name / f"{name}.json").read_text())
    assert data["meta"]["command"].startswith(f"python examples/{name}.py")
    assert list((tmp_path / name).glob("*.png"))


def _model(kind, seed=0):
    X, _ = dm.C.binarised_digits()
    model = dm.make_model(kind, dict(d=4, cat=(2, 3), hidden=6), np.random.default_rng(seed), X)
    rng = np.random.default_rng(seed + 1)
    for k in model.p:  # move away from the symmetric initial point
        model.p[k] = model.p[k] + 0.3 * rng.normal(size=model.p[k].shape)
    return model, X[:2]


def _exact_logit_gradient(model, X):
    """sum_z q(z | x) f(z) d log q(z | x) / d logits, by enumeration."""
    L, _ = model.encode(X)
    Z = dm._all_codes(model)
    out = []
    for i in range(len(X)):
        f = model.logp(Z, np.broadcast_to(X[i], (len(Z), X.shape[1])))
        if L.ndim == 3:
            lp = L[i] - np.log(np.exp(L[i]).sum(-1, keepdims=True))
            Zr = Z.reshape(len(Z), *L[i].shape)
            w = np.exp((Zr * lp).sum((1, 2))) * f
            out.append((w[:, None, None] * (Zr - np.exp(lp))).sum(0))
        else:
            p = expit(L[i])
            w = np.exp((Z * np.log(p) + (1 - Z) * np.log1p(-p)).sum(1)) * f
            out.append((w[:, None] * (Z - p)).sum(0))
    return np.array(out)


UNBIASED = [("sbn", m) for m in ("bsb", "rebar", "relax", "disarm", "reinforce-loo")] + [
    ("vae", "bsb"), ("vae", "relax"), ("cat", "csb")]


@pytest.mark.parametrize("kind,method", UNBIASED)
def test_discrete_estimators_unbiased(kind, method):
    model, X = _model(kind)
    exact = _exact_logit_gradient(model, X)
    rng = np.random.default_rng(7)
    state = {}
    if method in ("rebar", "relax"):
        d = model.first()[0].shape[1]
        h = 3
        cvp = {"eta": np.ones(1), "W1": rng.normal(size=(h, d)), "b1": np.zeros(h),
               "w2": (0.3 if method == "relax" else 0.0) * np.ones(h), "b2": np.zeros(1)}
        state = {"cv": dm.RelaxSurrogate(dm.TAU, 1.0, cvp["W1"], cvp["b1"], cvp["w2"], 0.0), "cv_p": cvp,
                 "cv_opt": type("Frozen", (), {"step": lambda self, g: None})()}
    step = dm.categorical_step if kind == "cat" else dm.bernoulli_step
    B, R = 20, 300  # batch means over 20 independent repetitions of 300 estimates per datum
    means = []
    for _ in range(B):
        gL = step(model, np.repeat(X, R, axis=0), method, 2, rng, state)[0]
        means.append(gL.reshape(len(X), R, *gL.shape[1:]).mean(axis=1))
    means = np.array(means)
    t = (means.mean(0) - exact) / (means.std(0, ddof=1) / math.sqrt(B))
    # Bonferroni over the components, false-alarm rate 1e-4 for the whole test
    crit = stats.t.ppf(1 - 1e-4 / (2 * t.size), B - 1)
    assert np.all(np.abs(t) < crit), (np.abs(t).max(), crit)


def test_gumbel_softmax_is_biased_here():
    """The relaxation's bias is visible at these sizes (a check that the test above has power)."""
    model, X = _model("sbn")
    exact = _exact_logit_gradient(model, X)
    rng = np.random.default_rng(3)
    gL = dm.bernoulli_step(model, np.repeat(X, 20000, axis=0), "gumbel-softmax", 1, rng, {})[0]
    m = gL.reshape(2, 20000, -1)
    t = (m.mean(1) - exact) / (m.std(1, ddof=1) / math.sqrt(20000))
    assert np.abs(t).max() > 10


@pytest.mark.parametrize("kind", ["sbn", "vae", "cat"])
def test_model_gradients_match_finite_differences(kind):
    model, X = _model(kind)
    rng = np.random.default_rng(2)
    m = model.first()[0].shape[1]
    Z, w = rng.random((len(X), m)), rng.random(len(X))
    h = 1e-6  # central differences: error ~ h^2 f''' + eps f / h ~ 1e-10 relative
    tol = 1e-6
    for k, g in model.decoder_grads(Z, X, w).items():
        P = model.p[k]
        for i in list(np.ndindex(P.shape))[:40]:
            old = P[i]
            P[i] = old + h
            a = (w * model.logp(Z, X)).sum()
            P[i] = old - h
            b = (w * model.logp(Z, X)).sum()
            P[i] = old
            assert abs((a - b) / (2 * h) - g[i]) < tol * max(1.0, abs(g[i])), (k, i)
    gz = model.grad_code(Z, X)
    for j in range(m):
        E = np.zeros_like(Z)
        E[:, j] = h
        num = (model.logp(Z + E, X) - model.logp(Z - E, X)) / (2 * h)
        np.testing.assert_allclose(num, gz[:, j], rtol=tol, atol=tol)


def test_oracle_example_catches_its_bug():
    import oracle_in_tests as ot

    ot.check_rsample_gradient_is_unbiased(n_samples=6000, rng=0)
    bad, shift, detectable = ot.check_a_classic_bug_is_caught(n_samples=6000, rng=1)
    assert bad.max_abs_t > bad.critical and shift > detectable
    ot.check_closed_form_mean_gradient()


def test_adam_descends():
    p = {"x": np.array([3.0, -1.0])}
    opt = dm.C.Adam(p, lr=0.05)
    for _ in range(500):
        opt.step({"x": 2 * p["x"]})
    assert np.all(np.abs(p["x"]) < 0.05)
    with pytest.raises(ValueError, match="lr"):
        dm.C.Adam(p, lr=-1.0)
