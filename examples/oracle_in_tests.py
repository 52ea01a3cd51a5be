"""gsbref's oracle in another library's test suite: checking a third-party gradient estimator.

The "other library" here is a few lines standing in for one (a PyTorch- or JAX-style
``Gamma.rsample`` with implicit reparameterisation, written with SciPy): its per-sample gradient
of ``E[f(z)]`` with respect to the Gamma shape ``k`` and scale ``mu`` is

    ``dz/dk = -mu (dP/dk)(k, x) / (dP/dx)(k, x)``, ``dz/dmu = x`` for ``z = mu x``, ``x ~ Gamma(k, 1)``

(``P`` the regularised lower incomplete gamma; ``dP/dk`` by a central difference, as some
libraries do).  The library's test suite then needs only gsbref:

* :func:`test_rsample_gradient_is_unbiased` -- :func:`gsbref.testing.assert_unbiased` compares the
  mean of the per-sample gradients with the oracle's exact gradient by a batch-means t-test whose
  false-alarm rate is stated (1e-6 here);
* :func:`test_a_classic_bug_is_caught` -- the same test rejects a version with a typical mistake
  (the shape derivative taken at ``k - 1``, the exponent of the density); its power at this sample
  size is computed by :func:`gsbref.testing.power`;
* :func:`test_closed_form_mean_gradient` -- a deterministic closed form of the library
  (``E[exp(-eps z)] = (1 + eps mu)^-k``) against the oracle to a tolerance derived from the
  float64 epsilon.

Run the tests with ``python -m pytest examples/oracle_in_tests.py``, or
``python examples/oracle_in_tests.py`` to run them and write the numbers and a figure of the t
statistics (``--quick`` uses fewer samples).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import numpy as np
from scipy import special

import gsbref
from gsbref import oracle
from gsbref.testing import assert_unbiased, power

NAME = "oracle_in_tests"
DIST = dict(shape=2.5, scale=0.7)
F = "sum(softplus(z))"
FALSE_ALARM = 1e-6
SIZES = {"smoke": 6_000, "quick": 30_000, "default": 200_000, "full": 1_000_000}


# ----------------------------------------------------------------------------------------------
# the "third-party library" under test
# ----------------------------------------------------------------------------------------------
def third_party_rsample_grad(shape, scale, f_grad, n, rng, shape_offset=0.0):
    """Per-sample ``(d/dk, d/dmu)`` of ``f(z)`` through an implicitly reparameterised Gamma draw.
    ``shape_offset`` injects the bug of :func:`test_a_classic_bug_is_caught`."""
    x = rng.gamma(shape, 1.0, n)
    k = shape + shape_offset
    h = 1e-4 * k
    dP_dk = (special.gammainc(k + h, x) - special.gammainc(k - h, x)) / (2 * h)
    dP_dx = np.exp((k - 1) * np.log(x) - x - special.gammaln(k))
    dz_dk = -scale * dP_dk / dP_dx
    g = f_grad(scale * x)
    return g * dz_dk, g * x


def _estimator(shape_offset=0.0):
    """Adapter to gsbref's estimator signature ``(dist, f, n, rng) -> {name: (n,)}``."""

    def est(dist, f, n, rng):
        f = gsbref.functions.as_function(f)

        def grad(z):
            return f.gradient(z[:, None])[:, 0]

        gk, gm = third_party_rsample_grad(float(dist.params["shape"]), float(dist.params["scale"]), grad, n, rng,
                                          shape_offset)
        return {"shape": gk, "scale": gm}

    return est


# ----------------------------------------------------------------------------------------------
# the tests, as they would appear in the other library's suite
# ----------------------------------------------------------------------------------------------
def check_rsample_gradient_is_unbiased(n_samples=SIZES["quick"], rng=0):
    """The correct estimator passes; returns the test's result."""
    return assert_unbiased(_estimator(), gsbref.Gamma(**DIST), F, n_samples=n_samples, rng=rng,
                           false_alarm=FALSE_ALARM)


def check_a_classic_bug_is_caught(n_samples=SIZES["quick"], rng=1):
    """The k - 1 bug fails the test; returns (result, relative shift, detectable relative bias)."""
    dist = gsbref.Gamma(**DIST)
    detectable = power(_estimator(), dist, F, n_samples=n_samples, rng=rng + 100, false_alarm=FALSE_ALARM)
    exact = oracle.gradient(dist, F, dps=None).to_float()
    wrong = _estimator(shape_offset=-1.0)(dist, F, 4 * n_samples, np.random.default_rng(rng + 200))
    shift = abs(wrong["shape"].mean() - exact["shape"]) / abs(exact["shape"])
    # only meaningful if the bug is larger than what this sample size detects with probability 0.9
    assert shift > detectable["shape"], (shift, detectable["shape"])
    try:
        assert_unbiased(_estimator(shape_offset=-1.0), dist, F, n_samples=n_samples, rng=rng,
                        false_alarm=FALSE_ALARM)
    except AssertionError as e:
        return e.result, float(shift), float(detectable["shape"])
    raise AssertionError("the shape bug was not detected")


def check_closed_form_mean_gradient():
    """The library's closed form equals the oracle; returns both."""
    k, mu, eps = 2.5, 0.7, 0.49
    # the library's closed form: d/dk and d/dmu of (1 + eps mu)^-k
    value = {"shape": float(-np.log1p(eps * mu) * (1 + eps * mu) ** -k),
             "scale": float(-k * eps * (1 + eps * mu) ** (-k - 1))}
    exact = oracle.gradient(gsbref.Gamma(k, mu), "sum(exp(-0.49 * z))", dps=30)
    # a few operations in float64: 16 ulps of the largest value is a generous bound
    tol = 16 * np.finfo(float).eps
    for name, v in value.items():
        t = float(exact[name])
        assert abs(v - t) <= tol * max(abs(t), 1.0), (name, v, t)
    return value, {k2: float(exact[k2]) for k2 in value}


def test_rsample_gradient_is_unbiased():
    check_rsample_gradient_is_unbiased()


def test_a_classic_bug_is_caught():
    check_a_classic_bug_is_caught()


def test_closed_form_mean_gradient():
    check_closed_form_mean_gradient()


# ----------------------------------------------------------------------------------------------
def main(argv=None):
    args = C.parser(NAME, __doc__).parse_args(argv)
    n = SIZES[args.size]
    started = time.perf_counter()
    C.log(f"[{NAME}] size={args.size}: {n} samples per test, false-alarm rate {FALSE_ALARM:g}")
    ok = check_rsample_gradient_is_unbiased(n, args.seed)
    C.log(f"  correct estimator: max |t| = {ok.max_abs_t:.2f} <= critical {ok.critical:.2f}, p = {ok.p_value:.3g}")
    bad, shift, detectable = check_a_classic_bug_is_caught(n, args.seed + 1)
    C.log(f"  shape bug (k - 1): relative shift {shift:.3g} > detectable {detectable:.3g}; "
          f"max |t| = {bad.max_abs_t:.1f} > critical {bad.critical:.2f}: caught")
    value, exact = check_closed_form_mean_gradient()
    C.log(f"  closed form vs oracle: {value} == {exact}")

    def summary(r):
        return {"estimate": r.estimate, "truth": r.truth, "t": r.t, "critical": r.critical, "p_value": r.p_value,
                "n_samples": r.n_samples, "batches": r.batches}

    payload = {"config": {"dist": DIST, "f": F, "false_alarm": FALSE_ALARM, "n_samples": n, "seed": args.seed},
               "correct": summary(ok), "bug_shape_minus_one": {**summary(bad), "relative_shift": shift,
                                                               "detectable_relative_bias": detectable},
               "closed_form": {"library": value, "oracle": exact}}
    path = C.write_json(args.out, NAME, payload, C.command_line(NAME, argv), started)
    if not args.no_plots:
        plt = C.pyplot()
        fig, ax = plt.subplots(figsize=(5.5, 3))
        names = ["shape", "scale"]
        xs = np.arange(2)
        ax.bar(xs - 0.18, [abs(float(ok.t[k])) for k in names], 0.36, label="third-party rsample")
        ax.bar(xs + 0.18, [abs(float(bad.t[k])) for k in names], 0.36, label="with the k - 1 bug")
        ax.axhline(ok.critical, color="k", lw=0.8, ls="--", label=f"critical |t| (false alarm {FALSE_ALARM:g})")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"d/d{k}" for k in names])
        ax.set(ylabel="|t| against the oracle", title=f"Gamma(2.5, 0.7), f = softplus, n = {n}")
        ax.legend(fontsize=7)
        C.save(fig, args.out, "t_statistics")
    C.log(f"[{NAME}] wrote {path} in {time.perf_counter() - started:.0f} s")
    return payload


if __name__ == "__main__":
    main()
