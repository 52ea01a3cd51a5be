"""The verification table: one :class:`Row` per (case, estimator, options), data only.

A row names a case of :mod:`gsbref.catalog` (or of :data:`EXTRA_CASES` below), a registered
estimator with its options, the quantity the estimator is expected to estimate (``target``), the
checks to run, the Monte Carlo sample sizes of the quick and full sweeps, the seeded wrong
variants whose detection measures the checks' power, and tags.  The engine
(:mod:`verification.runner`) has no per-family or per-estimator code paths beyond what the
target and the checks need: adding a distribution or an estimator adds rows here.

Targets
-------
``"exact"``       the exact gradient (the oracle's);
``"rule"``        a truncated series (``order=N``): the exact expectation of the order-``N`` rule,
                  ``gsbref.oracle.truncation.rule_expectation``; its difference from the gradient is
                  the truncation bias, reported, not failed (zero when the series terminates);
``"kink"``        ``f`` with ``abs``/``relu`` and a rule of derivative order >= 2: the rule's
                  expectation with pointwise derivatives (biased: the Dirac terms are missing,
                  DESIGN 1.3) -- flagged biased in the report;
``"relaxation"``  a relaxation estimator (``temperature=tau``): the exact gradient plus the
                  relaxation bias of ``relaxation_bias`` (single Bernoulli coordinate only, where
                  it is a quadrature, not a Monte Carlo estimate).

Checks
------
``"identity"``   deterministic: the expectation of the estimator's own per-sample rule by Gauss
                 quadrature (or enumeration) against the target computed by mpmath, and for exact
                 targets the rule's expectation against the oracle (digits of agreement);
``"mc"``         Monte Carlo unbiasedness (batch-means t-test, Holm over the whole run);
``"variance"``   sample variance, exact single-sample variance where a quadrature gives it,
                 heavy-tail detection, variance x cost;
``"truncation"`` for series rules: the truncation bias against the order (per case).

``variance="infinite"`` declares a row whose single-sample variance is infinite (with the reason
in ``note``): its Monte Carlo check is reported as "variance infinite: standard error
meaningless" instead of pass/fail, and it is left out of the multiple-testing family.

>>> ids = [r.id for r in ROWS]
>>> len(ids) == len(set(ids))
True
>>> row("gamma-softplus/gsb[order=4]").target
'rule'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gsbref.catalog import CASES, Case, _d

__all__ = ["Row", "ROWS", "EXTRA_CASES", "TARGETS", "CHECKS", "VARIANTS", "row", "rows", "get_case", "make_row"]

TARGETS = ("exact", "rule", "kink", "relaxation")
CHECKS = ("identity", "mc", "variance", "truncation")
VARIANTS = ("sign-flip", "scale-5pct", "dropped-term", "off-by-one", "swapped")

#: default Monte Carlo sample sizes per row (quick sweep, full sweep)
N_QUICK = 20_000
N_FULL = 200_000

#: cases the suite needs that the catalog does not (yet) have; same :class:`Case` type
EXTRA_CASES: tuple[Case, ...] = (
    # DESIGN 1.6: the resummed shape estimate of log z has infinite variance for shape <= 1
    Case("gamma-log-shape-half", _d("Gamma", 0.5, 1.0), "sum(log(z))", tags=("smooth", "hard", "singular")),
)


def get_case(name: str) -> Case:
    """The case called ``name`` in the catalog or in :data:`EXTRA_CASES`."""
    for c in CASES + EXTRA_CASES:
        if c.name == name:
            return c
    raise KeyError(f"no case {name!r} in gsbref.catalog or verification.rows.EXTRA_CASES")


def _freeze(v: Any):
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, np.ndarray)):
        return tuple(_freeze(x) for x in np.asarray(v, dtype=object).tolist())
    return v


@dataclass(frozen=True)
class Row:
    """One verification row (see the module docstring).  ``options`` is stored as sorted
    ``(name, value)`` pairs so that rows are hashable; :attr:`opts` gives the dict."""

    case: str
    method: str
    options: tuple = ()
    target: str = "exact"
    checks: tuple = ("identity", "mc", "variance")
    n_quick: int = N_QUICK
    n_full: int = N_FULL
    quick: bool = True
    variance: str = "finite"
    variants: tuple = ()
    tags: tuple = ()
    note: str = ""

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"Row {self.case}/{self.method}: target must be one of {TARGETS}, got {self.target!r}")
        bad = [c for c in self.checks if c not in CHECKS]
        if bad:
            raise ValueError(f"Row {self.case}/{self.method}: unknown checks {bad}; known: {CHECKS}")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            raise ValueError(f"Row {self.case}/{self.method}: unknown variants {bad}; known: {VARIANTS}")
        if self.variance not in ("finite", "infinite"):
            raise ValueError(f"Row {self.case}/{self.method}: variance must be 'finite' or 'infinite'")
        if self.target == "rule" and "order" not in self.opts:
            raise ValueError(f"Row {self.case}/{self.method}: target 'rule' needs the option order=N")
        for n in (self.n_quick, self.n_full):
            if isinstance(n, bool) or not isinstance(n, int) or n < 60:
                raise ValueError(f"Row {self.case}/{self.method}: sample sizes must be integers >= 60, got {n!r}")
        if ("dropped-term" in self.variants or "off-by-one" in self.variants) and self.target not in ("rule", "kink"):
            raise ValueError(f"Row {self.case}/{self.method}: series variants need a truncated-series row")

    @property
    def opts(self) -> dict:
        return {k: v for k, v in self.options}

    @property
    def id(self) -> str:
        """``case/method[opt=value,...]`` -- unique in a table; per-row seeds derive from it."""
        o = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.case}/{self.method}" + (f"[{o}]" if o else "")

    def n(self, mode: str) -> int:
        return self.n_quick if mode == "quick" else self.n_full

    def build(self):
        """``(distribution, Function)`` of the row's case."""
        return get_case(self.case).build()


def make_row(case: str, method: str, target: str = "exact", *, checks=None, n_quick: int = N_QUICK,
             n_full: int = N_FULL, quick: bool | None = None, variance: str = "finite", variants=(),
             tags=(), note: str = "", **options) -> Row:
    """A :class:`Row` with the checks a target implies (``"truncation"`` for series rules) and the
    case's tags; nested-quadrature cases (tag ``nested``) default to the full sweep only (their
    oracle takes seconds to minutes)."""
    c = get_case(case)
    if checks is None:
        checks = ("identity", "mc", "variance") + (("truncation",) if target in ("rule", "kink") and "order" in options else ())
    if quick is None:
        quick = "nested" not in c.tags
    return Row(case, method, _freeze(options), target, tuple(checks), n_quick, n_full, quick, variance,
               tuple(variants), tuple(c.tags) + tuple(tags), note)


R = make_row
_RELAX_T = 0.5  # relaxation temperature of the relaxation rows

ROWS: tuple[Row, ...] = (
    # --- Gaussian (eq. 14): exact rules; kinks lose the Dirac term of f'' -----------------------
    R("gaussian-quadratic", "gsb"),
    R("gaussian-quadratic", "gsb-closed"),
    R("gaussian-quadratic", "score"),
    R("gaussian-softplus", "gsb", variants=("sign-flip", "swapped")),
    R("gaussian-softplus", "score"),
    R("gaussian-sin", "gsb"),
    R("gaussian-sin", "gsb-closed"),
    R("gaussian-abs-kink", "gsb", "kink", note="scale: f'' = 0 pointwise, the Dirac term is missing"),
    R("gaussian-abs-kink", "score"),
    R("gaussian-relu-kink", "gsb", "kink"),
    R("gaussian-relu-kink", "score"),
    R("gaussian-prod", "gsb"),
    R("gaussian-prod", "gsb-closed"),
    R("gaussian-nonseparable", "gsb"),
    R("gaussian-logsigmoid-net", "gsb"),
    R("gaussian-logsigmoid-net", "score", n_full=400_000),
    # --- MultivariateGaussian -----------------------------------------------------------------
    R("mvn-quadratic", "gsb"),
    R("mvn-quadratic", "score"),
    R("mvn-softplus", "gsb"),
    # --- Dirac (eq. 15): backpropagation, zero variance -----------------------------------------
    R("dirac-network", "gsb", n_quick=200, n_full=2_000),
    R("dirac-prod", "gsb", n_quick=200, n_full=2_000),
    # --- Laplace (eq. 18) -------------------------------------------------------------------------
    R("laplace-softplus", "gsb", "rule", order=3, variants=("dropped-term", "off-by-one"),
      note="divergent series: the bias is smallest near order 3"),
    R("laplace-softplus", "gsb-resummed", variants=("sign-flip",)),
    R("laplace-softplus", "gsb-resummed", quadrature=16, variants=("scale-5pct", "swapped")),
    R("laplace-softplus", "score", baseline="loo"),
    R("laplace-exp-convergent", "gsb", "rule", order=6),
    R("laplace-exp-convergent", "gsb-closed"),
    R("laplace-exp-convergent", "gsb-resummed"),
    R("laplace-quadratic", "gsb", "rule", order=1, note="f'''' = 0: one term is exact"),
    R("laplace-quadratic", "gsb-closed"),
    R("laplace-quadratic", "gsb-resummed", quadrature=2),
    R("laplace-gauss-bump", "gsb", "rule", order=1, note="divergent for every order; best at 1"),
    R("laplace-gauss-bump", "gsb-resummed"),
    R("laplace-logsigmoid", "gsb-resummed", quadrature=16),
    R("laplace-logsigmoid", "score"),
    R("laplace-abs-kink", "gsb", "kink", order=2),
    R("laplace-abs-kink", "gsb-resummed", note="derivative-free: exact for kinks"),
    # --- Gamma (eq. 19) and the paper's toy problems ----------------------------------------------
    R("gamma-toy1", "gsb", "rule", order=2, variants=("scale-5pct", "dropped-term"),
      note="toy problem 1: the series terminates at order 2"),
    R("gamma-toy1", "gsb-closed"),
    R("gamma-toy1", "gsb-resummed"),
    R("gamma-toy1", "score"),
    R("gamma-toy2", "gsb", "rule", order=8, note="toy problem 2: convergent, ratio 0.245"),
    R("gamma-toy2", "gsb-closed", variants=("sign-flip",),
      note="corollary 3.1 with the corrected argument i*eps"),
    R("gamma-toy2", "gsb-resummed", quadrature=8),
    R("gamma-toy2", "score"),
    R("gamma-softplus", "gsb", "rule", order=4, variants=("dropped-term", "off-by-one")),
    R("gamma-softplus", "gsb-resummed", variants=("sign-flip", "scale-5pct")),
    R("gamma-softplus", "gsb-resummed", quadrature=8, variants=("swapped",)),
    R("gamma-softplus", "score"),
    R("gamma-small-shape", "gsb", "rule", order=2),
    R("gamma-small-shape", "gsb-resummed"),
    R("gamma-small-shape", "score", n_full=1_000_000),
    R("gamma-small-shape-log", "gsb", "rule", order=2),
    R("gamma-small-shape-log", "gsb-resummed"),
    R("gamma-log-shape-half", "gsb-resummed", checks=("mc", "variance"), variance="infinite",
      note="log z at shape 0.5: tail index of the shape estimates k + 1 = 1.5 (DESIGN 1.6)"),
    R("gamma-inverse", "gsb", "rule", order=3, note="divergent series: best order 3, bias ~15 %"),
    R("gamma-inverse", "gsb-resummed"),
    R("gamma-sin", "gsb", "rule", order=8),
    R("gamma-sin", "gsb-closed"),
    R("gamma-sin", "gsb-resummed"),
    R("gamma-abs-kink", "gsb", "kink", order=2),
    R("gamma-abs-kink", "gsb-resummed"),
    R("gamma-from-rate", "gsb-closed"),
    R("gamma-from-rate", "gsb-resummed", quadrature=8),
    R("gamma-prod", "gsb", "rule", order=1),
    R("gamma-prod", "gsb-closed"),
    R("gamma-prod", "gsb-resummed"),
    R("exponential-softplus", "gsb", "rule", order=4),
    R("exponential-softplus", "gsb-resummed"),
    R("exponential-softplus", "score"),
    R("chisquared-quadratic", "gsb", "rule", order=2),
    R("chisquared-quadratic", "gsb-closed"),
    R("chisquared-quadratic", "gsb-resummed"),
    # --- Beta (eq. 20) and Dirichlet (eq. 21) -------------------------------------------------------
    R("beta-identity", "gsb", "rule", order=2, variants=("dropped-term",),
      note="partial sums 0.15, 0.10 vs exact 0.12 (DESIGN 1.5)"),
    R("beta-identity", "gsb-closed"),
    R("beta-identity", "gsb-resummed", form="simplex", variants=("scale-5pct", "swapped")),
    R("beta-identity", "gsb-resummed"),
    R("beta-identity", "score"),
    R("beta-small-shapes", "gsb-resummed", checks=("mc", "variance"), variance="infinite",
      note="gamma form with alpha + beta = 0.5 <= 1: tail index ~1.5 (DESIGN 1.6)"),
    R("beta-small-shapes", "gsb-resummed", form="simplex"),
    R("beta-small-shapes", "score"),
    R("beta-cubic", "gsb", "rule", order=3, via="cumulants", note="theorem 1 on the Beta itself terminates"),
    R("beta-cubic", "gsb-closed"),
    R("beta-cubic", "gsb-resummed", form="simplex"),
    R("beta-abs-kink", "gsb-resummed", form="simplex"),
    R("beta-abs-kink", "score"),
    R("beta-exp", "gsb", "rule", order=1),
    R("beta-exp", "gsb-closed"),
    R("beta-exp", "gsb-resummed", form="simplex", variants=("sign-flip",)),
    R("dirichlet-k2", "gsb-resummed", form="simplex"),
    R("dirichlet-k2", "score"),
    R("dirichlet-k3-prod", "gsb-resummed", form="simplex"),
    R("dirichlet-k3-prod", "score"),
    R("dirichlet-k3-softplus", "gsb", "rule", order=2, checks=("mc", "variance", "truncation")),
    R("dirichlet-k3-softplus", "gsb-resummed"),
    # --- continuous baselines: pathwise, implicit reparameterisation, GRG -----------------------
    R("gaussian-softplus", "pathwise", variants=("sign-flip", "swapped")),
    R("gaussian-relu-kink", "pathwise", note="first derivatives only: exact for kinks"),
    R("mvn-quadratic", "pathwise"),
    R("dirac-prod", "pathwise", n_quick=200, n_full=2_000),
    R("laplace-softplus", "pathwise", variants=("scale-5pct",)),
    R("laplace-abs-kink", "pathwise"),
    R("exponential-softplus", "pathwise"),
    R("gamma-softplus", "pathwise", shape="implicit", note="scale pathwise, shape by implicit reparameterisation"),
    R("gamma-toy1", "implicit", variants=("scale-5pct", "swapped")),
    R("gamma-toy2", "implicit"),
    R("gamma-small-shape", "implicit"),
    R("gamma-small-shape-log", "implicit"),
    R("chisquared-quadratic", "implicit"),
    R("beta-identity", "implicit", variants=("sign-flip",)),
    R("beta-identity", "implicit", form="gamma"),
    R("beta-small-shapes", "implicit"),
    R("dirichlet-k2", "implicit"),
    R("dirichlet-k3-prod", "implicit"),
    R("gamma-toy1", "grg", variants=("sign-flip",)),
    R("gamma-toy2", "grg"),
    R("gamma-small-shape", "grg"),
    R("beta-exp", "grg", variants=("scale-5pct",)),
    R("dirichlet-k2", "grg"),
    # --- Bernoulli (eq. 16) and the discrete baselines ------------------------------------------
    R("bernoulli-toy", "gsb-discrete", variants=("sign-flip",)),
    R("bernoulli-toy", "score"),
    R("bernoulli-toy", "arm"),
    R("bernoulli-toy", "disarm"),
    R("bernoulli-toy", "rebar"),
    R("bernoulli-toy", "relax", n_steps=200),
    R("bernoulli-toy", "gumbel-softmax", "relaxation", temperature=_RELAX_T),
    R("bernoulli-toy", "straight-through", "relaxation", temperature=_RELAX_T),
    R("bernoulli-d10-network", "gsb-discrete", variants=("scale-5pct",)),
    R("bernoulli-d10-network", "arm"),
    R("bernoulli-d10-network", "disarm"),
    R("bernoulli-d10-network", "score", quick=False),
    R("bernoulli-d10-network", "rebar", quick=False),
    R("bernoulli-prod", "gsb-discrete"),
    R("bernoulli-prod", "score"),
    R("bernoulli-prod", "disarm"),
    R("bernoulli-logits", "gsb-discrete"),
    R("bernoulli-logits", "disarm"),
    R("bernoulli-logits", "relax", n_steps=200, quick=False),
    # --- Categorical (eq. 17) ---------------------------------------------------------------------
    R("categorical-quadratic", "gsb-discrete", variants=("sign-flip",)),
    R("categorical-quadratic", "score"),
    R("categorical-network", "gsb-discrete"),
    R("categorical-logits", "gsb-discrete"),
    R("categorical-logits", "score", baseline="loo"),
)


def row(row_id: str, table=ROWS) -> Row:
    """The row whose :attr:`Row.id` is ``row_id``."""
    for r in table:
        if r.id == row_id:
            return r
    raise KeyError(f"no row {row_id!r}")


def rows(mode: str = "quick", pattern: str | None = None, table=ROWS) -> list[Row]:
    """The rows of ``table`` run by ``mode`` (``"quick"``: rows with ``quick=True``; ``"full"``:
    all), optionally those whose id contains ``pattern``."""
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
    out = [r for r in table if mode == "full" or r.quick]
    if pattern:
        out = [r for r in out if pattern in r.id]
    return out
