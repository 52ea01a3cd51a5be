"""The paper's toy problems (section 6.1, figures 1 and 2) as a reproducible experiment.

Gradient descent on ``L(k, mu) = E_{z ~ prod_j Gamma(k_j, mu_j)}[f(z)]`` with
``f = sum_j (z_j - 0.49)^2`` (toy problem 1) and ``f = sum_j exp(-0.49 z_j)`` (toy problem 2), for
``d`` coordinates, from ``k = 3, mu = 0.5`` (the catalog's ``gamma-toy1``/``gamma-toy2``
distribution).  The parameters are updated on the log scale (``log k -= lr * k dL/dk``, which keeps
them positive) with :data:`BATCH` per-sample estimates per step and a fixed learning rate; every
method sees its own seeded stream.  Recorded per iteration: the exact loss (oracle, closed form)
and ``log10`` of the single-sample variance of the estimates, averaged over the components -- the
two panels of the paper's figures.  ``gsb`` is the order-2 rule for toy problem 1 (the series
terminates: exact) and the closed form of corollary 3.1 (with the corrected argument ``i eps``)
for toy problem 2.  The settings are this module's constants; a method added to :data:`METHODS`
adds curves.
"""

from __future__ import annotations

import warnings

import numpy as np

from gsbref import oracle
from gsbref.distributions import Gamma

from .checks import generator

__all__ = ["PROBLEMS", "METHODS", "DIMS", "ITERATIONS", "tasks", "run_task"]

EPSILON = 0.49
PROBLEMS = {"toy1": f"sum((z - {EPSILON})**2)", "toy2": f"sum(exp(-{EPSILON}*z))"}
#: per problem: curve label -> (method, options)
METHODS = {
    "toy1": {"gsb (order 2)": ("gsb", {"order": 2}), "gsb-resummed": ("gsb-resummed", {}), "score": ("score", {})},
    "toy2": {"gsb-closed": ("gsb-closed", {}), "gsb-resummed": ("gsb-resummed", {}), "score": ("score", {})},
}
DIMS = (1, 10, 100)
ITERATIONS = {"quick": 40, "full": 300}
BATCH = 16
LEARNING_RATE = 0.02
START = (3.0, 0.5)
#: a curve stops (and says so) when a log-parameter leaves (-LOG_RANGE, LOG_RANGE)
LOG_RANGE = 20.0


def tasks(mode: str, seed: int) -> list[tuple]:
    """Keys ``(problem, d, label, iterations)`` of the experiment's independent curves."""
    return [(p, d, label, ITERATIONS[mode]) for p in PROBLEMS for d in DIMS for label in METHODS[p]]


def run_task(key: tuple, seed: int) -> dict:
    """One curve: ``{"loss": [...], "log10_variance": [...]}`` (loss before each step)."""
    from gsbref.estimators import estimate

    problem, d, label, iters = key
    method, opts = METHODS[problem][label]
    f = PROBLEMS[problem]
    rng = generator(seed, "toy|" + "|".join(map(str, key)), "sgd")
    logk = np.full(d, np.log(START[0]))
    logmu = np.full(d, np.log(START[1]))
    loss, logvar = [], []
    stopped = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for it in range(iters):
            k, mu = np.exp(logk), np.exp(logmu)
            if not (np.all(np.isfinite(logk)) and np.all(np.isfinite(logmu))
                    and np.all(np.abs(logk) < LOG_RANGE) and np.all(np.abs(logmu) < LOG_RANGE)):
                stopped = f"parameters left exp(+-{LOG_RANGE}) at iteration {it}: the step diverged"
                break
            dist = Gamma(k, mu)
            loss.append(float(oracle.expectation(dist, f, dps=15, method="closed").value))
            est = estimate(dist, f, method, BATCH, rng, **opts)
            gk, gmu = est["shape"], est["scale"]
            v = np.concatenate([np.ravel(gk.variance), np.ravel(gmu.variance)])
            logvar.append(float(np.log10(max(np.mean(v), 1e-300))))
            logk = logk - LEARNING_RATE * k * np.asarray(gk.mean).reshape(d)
            logmu = logmu - LEARNING_RATE * mu * np.asarray(gmu.mean).reshape(d)
    return {"problem": problem, "d": d, "label": label, "loss": loss, "log10_variance": logvar, "stopped": stopped}
