"""Bayesian logistic regression with Laplace prior and Laplace variational posterior (paper, fig. 3).

Model (eq. 27): ``w_j ~ Laplace(0, 1)``, ``p(y | x, w) = sigmoid(y x.w)`` with ``y in {-1, +1}``;
posterior ``q(w) = prod_j Laplace(w_j; mu_j, b_j)``.  The ELBO per data point is
``(1/B) sum_batch E_q[log sigmoid(y x.w)] - KL(q || p) / N`` with the closed-form KL of eq. 29,
``sum_j |mu_j| + b_j exp(-|mu_j| / b_j) - log b_j - 1``.  Data: scikit-learn's breast-cancer set
(569 x 30, standardised, plus a bias column), batches of 64, 50 posterior samples per step, Adam on
``(mu, log b)``.

Estimators of the gradient of the expected log-likelihood (all through
:func:`gsbref.estimators.estimate` on ``f = sum(log_sigmoid(A @ z))``, ``A = y x`` of the batch):

``gsb N=4``, ``gsb N=8``  eq. 18, the scale series truncated after N terms (derivatives of order 2N);
``gsb-resummed``          the exact derivative-free form of eq. 18 (Gauss-Laguerre in t, 8 nodes);
``pathwise``              reparameterisation by the inverse CDF (gsbref's ``"pathwise"`` when
                          registered, else three lines here);
``score``                 score function, no control variate (as in the paper).

Reported: curves (mean +/- std over runs) of the full-data ELBO, the log of the Monte Carlo variance
of the gradient estimate (mean over the 2d parameters of the per-sample variance / 50, in the
``(mu, log b)`` coordinates) and the accuracy of the posterior mean on the whole data set; and the
truncation bias of the N = 4 and N = 8 rules at the learned posterior: exactly (gsbref's oracle) on
one-dimensional slices (one coordinate, one data point, the other weights at their posterior mean),
and for the full expected log-likelihood by Monte Carlo against the exact resummed form.

Run: ``python examples/logistic_regression.py`` (``--quick`` for CI, ``--full`` for the longer run).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import numpy as np
from scipy.special import expit, log_expit

import gsbref
from gsbref.estimators import available_methods, estimate

NAME = "logistic_regression"
SIZES = {
    "smoke": dict(iters=2, runs=1, eval_every=1, bias_samples=10, slices=0, methods=("gsb4", "resummed", "pathwise", "score")),
    "quick": dict(iters=16, runs=1, eval_every=4, bias_samples=50, slices=1,
                  methods=("gsb4", "gsb8", "resummed", "pathwise", "score")),
    "default": dict(iters=300, runs=3, eval_every=15, bias_samples=400, slices=3,
                    methods=("gsb4", "gsb8", "resummed", "pathwise", "score")),
    "full": dict(iters=2000, runs=5, eval_every=50, bias_samples=2000, slices=5,
                 methods=("gsb4", "gsb8", "resummed", "pathwise", "score")),
}
LABELS = {"gsb4": "GSB N=4", "gsb8": "GSB N=8", "resummed": "GSB resummed", "pathwise": "pathwise", "score": "score function"}
BATCH = 64
SAMPLES = 50
LR = 1e-2
QUAD = 8
INIT_SCALE = 0.1
EVAL_SAMPLES = 200


def kl_laplace(mu, b):
    """Eq. 29 and its gradients ``(KL, dKL/dmu, dKL/db)``."""
    a = np.abs(mu)
    e = np.exp(-a / b)
    kl = (a + b * e - np.log(b) - 1.0).sum()
    return kl, np.sign(mu) * (1.0 - e), e * (1.0 + a / b) - 1.0 / b


def _pathwise(mu, b, A, n, rng):
    """Inverse-CDF reparameterisation ``w = mu - b sign(u) log(1 - 2|u|)``, u ~ U(-1/2, 1/2)."""
    u = rng.random((n, mu.size)) - 0.5
    eps = -np.sign(u) * np.log1p(-2.0 * np.abs(u))
    w = mu + b * eps
    gw = expit(-(w @ A.T)) @ A  # d/dw sum log sigmoid(A w)
    return {"loc": gw, "scale": gw * eps}


def gradient_samples(method, mu, b, A, rng):
    """Per-sample estimates ``{loc, scale}`` (SAMPLES, d) of ``d E[sum log sigmoid(A w)]``."""
    if method == "pathwise" and "pathwise" not in available_methods():
        return _pathwise(mu, b, A, SAMPLES, rng)
    dist = gsbref.Laplace(loc=mu, scale=b)
    f = gsbref.function("sum(log_sigmoid(A @ z))", A=A)
    name, opts = {"gsb4": ("gsb", {"order": 4}), "gsb8": ("gsb", {"order": 8}),
                  "resummed": ("gsb-resummed", {"quadrature": QUAD}), "pathwise": ("pathwise", {}),
                  "score": ("score", {})}[method]
    with warnings.catch_warnings():
        # the truncated series warns on every step where its last term is large; the bias is
        # measured separately below
        warnings.simplefilter("ignore")
        est = estimate(dist, f, name, SAMPLES, rng, **opts)
    return {k: e.samples for k, e in est.items()}


def full_elbo(mu, b, AX, rng):
    """Per-datum ELBO on the whole data with EVAL_SAMPLES posterior samples, and the accuracy of
    the posterior mean."""
    u = rng.random((EVAL_SAMPLES, mu.size)) - 0.5
    w = mu - b * np.sign(u) * np.log1p(-2.0 * np.abs(u))
    ll = log_expit(w @ AX.T).mean()
    return float(ll - kl_laplace(mu, b)[0] / len(AX)), float((AX @ mu > 0).mean())


def train(method, cfg, AX, seed):
    rng = np.random.default_rng(seed)
    N, d = AX.shape
    params = {"mu": np.zeros(d), "rho": np.full(d, math.log(INIT_SCALE))}
    opt = C.Adam(params, lr=LR)
    elbo, acc, logvar, its = [], [], [], []
    perm, pos = rng.permutation(N), 0
    timer = C.Timer()
    for it in range(cfg["iters"] + 1):
        if it % cfg["eval_every"] == 0:
            e, a = full_elbo(params["mu"], np.exp(params["rho"]), AX, np.random.default_rng(10**6 + it))
            elbo.append(e)
            acc.append(a)
            its.append(it)
        if it == cfg["iters"]:
            break
        if pos + BATCH > N:
            perm, pos = rng.permutation(N), 0
        A = AX[perm[pos:pos + BATCH]]
        pos += BATCH
        mu, b = params["mu"], np.exp(params["rho"])
        with C.one_thread(), timer:
            g = gradient_samples(method, mu, b, A, rng)
        gl, gs = g["loc"] / BATCH, g["scale"] * b / BATCH  # per datum; d/d log b = b d/db
        if it % cfg["eval_every"] == 0:
            var = np.concatenate([gl.var(axis=0, ddof=1), gs.var(axis=0, ddof=1)]).mean() / SAMPLES
            logvar.append(math.log(var))
        _, kmu, kb = kl_laplace(mu, b)
        opt.step({"mu": -(gl.mean(axis=0) - kmu / N), "rho": -(gs.mean(axis=0) - kb * b / N)})
    return {"iters": its, "elbo": elbo, "acc": acc, "logvar": logvar, "mu": params["mu"].copy(),
            "b": np.exp(params["rho"]), "sec_per_step": timer.total / cfg["iters"]}


def truncation_bias(mu, b, AX, cfg, rng):
    """Bias of the N = 4 and N = 8 scale rules at the posterior ``(mu, b)``.

    ``slices``: gsbref's oracle (exact, 15 digits) on 1-D problems ``f(w_j) = log sigmoid(a w_j +
    c)`` for the coordinates with the largest ``b_j max_n |a_nj|`` and the data point attaining
    it (``c`` = the rest of ``a.w`` at the posterior mean).  ``full``: the bias of the whole
    ``d/db E[mean_n log sigmoid(a_n.w)]`` by Monte Carlo, ``mean(gsb N) - mean(resummed)`` with
    standard errors."""
    from gsbref import oracle

    out = {"slices": [], "full": {}}
    reach = b[None, :] * np.abs(AX)
    order_j = np.argsort(-reach.max(axis=0))[: cfg["slices"]]
    for j in order_j:
        n = int(np.argmax(reach[:, j]))
        a = float(AX[n, j])
        c = float(AX[n] @ mu - a * mu[j])
        f = gsbref.function("log_sigmoid(a * z + c)", a=a, c=c)
        dist = gsbref.Laplace(loc=float(mu[j]), scale=float(b[j]))
        exact = float(oracle.gradient(dist, f, dps=15)["scale"])
        row = {"coordinate": int(j), "datum": n, "b_j": float(b[j]), "b_j*|a|": float(reach[n, j]),
               "exact_d_db": exact}
        for N in (4, 8):
            row[f"bias_N{N}"] = float(oracle.truncation_bias(dist, f, order=N, dps=15)["scale"])
        out["slices"].append(row)
    M = cfg["bias_samples"]
    dist = gsbref.Laplace(loc=mu, scale=b)
    f = gsbref.function("sum(log_sigmoid(A @ z)) * s", A=AX, s=1.0 / len(AX))
    ref = estimate(dist, f, "gsb-resummed", 4 * M, rng, quadrature=QUAD)["scale"]
    for N in (4, 8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = estimate(dist, f, "gsb", M, rng, order=N)["scale"]
        diff = e.mean - ref.mean
        se = np.sqrt(e.stderr**2 + ref.stderr**2)
        out["full"][f"N{N}"] = {"bias": diff, "stderr": se, "max_abs_z": float(np.max(np.abs(diff) / se)),
                                "relative_to_gradient_norm": float(np.linalg.norm(diff) / np.linalg.norm(ref.mean))}
    out["full"]["exact_resummed_mean"] = ref.mean
    out["full"]["samples"] = {"gsb": M, "resummed": 4 * M}
    return out


def main(argv=None):
    args = C.parser(NAME, __doc__).parse_args(argv)
    cfg = dict(SIZES[args.size])
    started = time.perf_counter()
    X, y = C.breast_cancer()
    AX = y[:, None] * X
    C.log(f"[{NAME}] size={args.size}: {AX.shape[0]} points, d = {AX.shape[1]}, {cfg['runs']} runs x {cfg['iters']} steps"
          f"; pathwise from {'gsbref' if 'pathwise' in available_methods() else 'this script (inverse CDF)'}")
    results = {}
    last = None
    for m in cfg["methods"]:
        runs = [train(m, cfg, AX, args.seed + r) for r in range(cfg["runs"])]
        results[m] = {"label": LABELS[m], "iters": runs[0]["iters"],
                      "elbo": C.mean_std([r["elbo"] for r in runs]), "acc": C.mean_std([r["acc"] for r in runs]),
                      "logvar": C.mean_std([r["logvar"] for r in runs]),
                      "final_elbo": [r["elbo"][-1] for r in runs], "final_acc": [r["acc"][-1] for r in runs],
                      "sec_per_step": float(np.median([r["sec_per_step"] for r in runs]))}
        if m == "resummed":
            last = runs[0]
        C.log(f"  {LABELS[m]:15s} final ELBO {np.mean(results[m]['final_elbo']):8.4f} +/- {np.std(results[m]['final_elbo']):.4f}"
              f", accuracy {np.mean(results[m]['final_acc']):.4f}, log-var (last) {results[m]['logvar']['mean'][-1]:7.2f}"
              f", {results[m]['sec_per_step'] * 1e3:.1f} ms/step")
    last = last or runs[0]
    C.log("  truncation bias of the N = 4, 8 rules at the learned posterior (resummed run, seed "
          f"{args.seed}) ...")
    bias = truncation_bias(last["mu"], last["b"], AX, cfg, np.random.default_rng(args.seed + 777))
    for row in bias["slices"]:
        C.log(f"    slice j={row['coordinate']:2d} (b|a| = {row['b_j*|a|']:.3f}): d/db exact {row['exact_d_db']:.4e}, "
              f"bias N=4 {row['bias_N4']:.3e}, N=8 {row['bias_N8']:.3e}")
    for N in (4, 8):
        r = bias["full"][f"N{N}"]
        C.log(f"    full ELBO term, N={N}: |bias| / |gradient| = {r['relative_to_gradient_norm']:.3g}, "
              f"max |bias|/stderr = {r['max_abs_z']:.1f}")
    config = {**cfg, "batch": BATCH, "samples": SAMPLES, "lr": LR, "quadrature": QUAD, "init_scale": INIT_SCALE,
              "eval_samples": EVAL_SAMPLES, "seed": args.seed}
    payload = {"config": config, "results": results, "truncation_bias": bias,
               "posterior": {"mu": last["mu"], "b": last["b"]}}
    path = C.write_json(args.out, NAME, payload, C.command_line(NAME, argv), started)
    if not args.no_plots:
        plot(results, args.out)
    C.log(f"[{NAME}] wrote {path} in {time.perf_counter() - started:.0f} s")
    return payload


def plot(results, out):
    plt = C.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for r in results.values():
        C.band(axes[0], r["iters"], r["elbo"], r["label"])
        C.band(axes[1], r["iters"][: len(r["logvar"]["mean"])], r["logvar"], r["label"])
        C.band(axes[2], r["iters"], r["acc"], r["label"])
    axes[0].set(xlabel="step", ylabel="ELBO per data point", title="training ELBO (whole data)")
    axes[1].set(xlabel="step", ylabel="log variance", title="gradient log-variance (MC, per step)")
    axes[2].set(xlabel="step", ylabel="accuracy", title="accuracy of the posterior mean")
    axes[2].legend(fontsize=8)
    C.save(fig, out, "curves")


if __name__ == "__main__":
    main()
