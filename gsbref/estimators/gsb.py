r"""Generalized stochastic backpropagation: the paper's rules as per-sample estimators.

``method="gsb"`` -- theorem 1 (eq. 3/6) of the paper.  If ``d log phi_theta(w) / d theta =
sum_n a_n(theta) (i w)^n`` (the distribution's ``a_coefficients``), then ``dE[f]/dtheta = sum_n a_n
E[d^n f / dz^n]``; each sample ``z`` gives the estimate ``sum_n a_n d^n f(z) / dz^n`` (pure partials of
the coordinate the parameter belongs to; derivatives of all orders at once by the fused engine of
:mod:`gsbref.functions._fused` where ``f`` is a separable sum of polynomials, ``exp``, ``sin``,
``cos`` and the softplus family of affine arguments, else by Taylor jets).  Where the series is
infinite it is truncated at ``order`` (section 5, eq. 26) and the result is biased by the omitted
terms (:mod:`gsbref.oracle.truncation` computes that bias exactly).

``method="gsb-closed"`` -- corollary 3.1: for separable ``f`` whose coordinate terms are
exponential polynomials (see :mod:`gsbref.estimators._gsb_closed`) the infinite series sums in
closed form; the estimate is exact.

Rules per family (``N`` = ``order``; "exact" means no truncation):

===========================  =============================================================  =========
family (parameters)          per-sample estimate                                            paper
===========================  =============================================================  =========
Gaussian(loc, scale)         loc: ``f'(z_j)``; scale: ``scale_j f''(z_j)``  (exact)        eq. 14
MultivariateGaussian         loc: ``grad f(z)``; cov: ``hess f(z) / 2``  (exact)            eq. 14
Dirac(loc)                   loc: ``grad f(loc)``, every sample identical  (exact)          eq. 15
Laplace(loc, scale)          loc: ``f'`` (exact); scale: ``(2/b) sum_{n=1}^N b^2n f^(2n)``   eq. 18
Gamma(shape, scale)          shape: ``sum_{n=1}^N mu^n/n f^(n)``;                           eq. 19
                             scale: ``(k/mu) sum_{n=1}^N mu^n f^(n)``
Exponential, ChiSquared      their own coefficients (``Gamma`` special cases)               eq. 19
Beta(alpha, beta)            ``sum_{n=1}^N (1/n) d^n/dzeta^n f(zeta_1/(zeta_1+zeta_2))``      eq. 20
Dirichlet(concentration)     ``sum_{n=1}^N (1/n) d^n/dzeta_i^n f(zeta / sum zeta)``          eq. 21
any other ``Factorized``     ``sum_{n=0}^N a_n f^(n)`` from ``a_coefficients``               eq. 6
===========================  =============================================================  =========

Order convention: ``order=N`` is the upper limit of the summation index *as the paper writes each
series*, i.e. the number of series terms kept.  For Gamma, Exponential, ChiSquared, Beta and
Dirichlet term ``n`` uses the ``n``-th derivative; for the Laplace scale term ``n`` uses the
``2n``-th derivative (``order=4`` differentiates ``f`` eight times); for the generic theorem-1
path ``n`` is the derivative order and ``n = 0`` (the ``a_0 f`` term) is included.  Exact rules
(Gaussian, MultivariateGaussian, Dirac, the Laplace ``loc``) ignore ``order``.  Default:
:data:`DEFAULT_ORDER` (Beta/Dirichlet: at most the largest order whose terms are finite).

Requirements and refusals
-------------------------
* ``f`` must be differentiable ``max derivative`` times almost everywhere; for ``abs``/``relu``
  (kinks) and rules of derivative order >= 2 a :class:`GSBKinkWarning` is emitted: the Dirac terms
  of the distributional derivatives are missing and the estimate is biased (DESIGN section 1.3).
  A callable ``f`` has unknown structure and is not checked.
* Beta/Dirichlet: term ``n`` involves ``E[(zeta_1 + zeta_2)^-n]`` (``E[(sum zeta)^-n]``), infinite
  for ``n >= alpha + beta`` (``n >= sum alpha``): such orders raise ``ValueError`` (DESIGN 1.5).
  Its variance is infinite already for ``2n >= alpha + beta``.
* Gamma/Exponential/ChiSquared: ``E[f^(n)(z)]`` is infinite when ``f^(n)`` grows like ``z^-p``
  at 0 with ``p >= shape`` (``f = log z``: ``p = n``).  The growth exponent is measured from
  ``f^(n)`` at two points near 0 (``1e-6`` and ``1e-7`` times the mean); orders that would need an
  infinite term raise ``ValueError`` (``check_singular=False`` skips the check).  The measurement
  is a heuristic: it sees singularities at the end of the support only, and is conservative
  within ``1e-3`` of the boundary ``p = shape``.
* Discrete families (Bernoulli, Categorical) follow theorem 2 instead: ``ValueError``.

Diagnostics and truncation warnings
-----------------------------------
Pass ``diagnostics={}`` (any dict) to receive, after the call (the estimates always use every
sample; what each diagnostic is computed from is stated with it):

``"rule"``         the family and the paper's equation;
``"order"``        the order used (``None`` for exact rules);
``"exact"``        ``{name: bool}``, True where the parameter's rule is not truncated;
``"derivatives"``  ``{name: [derivative order of term n for n = 0..N]}`` (``None`` for unused n);
``"terms"``        ``{name: array (N + 1, *param_shape)}``: sample mean of term ``n`` over all
                   ``S`` samples (truncated series only; index ``n`` as in the order convention,
                   term 0 is ``a_0 f`` or 0);
``"term_stderr"``  their standard errors ``sqrt(v / S)``, with ``v`` the sample variance of the
                   term over the *variance subset* (below; for a parameter shared by several
                   coordinates: the sum over the coordinates of the terms' variances -- the
                   coordinates are independent -- rather than the variance of the summed term:
                   the two estimate the same number and differ by the sample covariances,
                   relative ``O(1 / sqrt(n))``);
``"variance_samples"`` ``{name: n}``: the number of values each of those variances comes from;
``"partial_sums"`` cumulative sums of ``"terms"`` over ``n``;
``"next_term"``    sample mean over all samples of the first omitted term ``T_{N+1}`` (computed
                   for the diagnostics only; an estimate of the truncation error where the
                   series converges fast);
``"terminated"``   True where ``T_{N+1}`` is exactly zero on every sample (all samples): the
                   series terminated (``f`` a polynomial of low enough degree) and the estimate
                   is exact;
``"converged"``    ``{name: bool array}``: False where the warning criterion below fired (``None``
                   for ``order == 1``: one term cannot show convergence);
``"notes"``        remarks, e.g. Beta/Dirichlet orders whose terms have infinite variance
                   (``2n >= alpha + beta``), where the sample standard error means nothing.

The variance subset (families with independent coordinates; option ``variance_samples``,
default :data:`VARIANCE_SAMPLES` ``= 2**15``): the first ``n_v = min(S, variance_samples)``
samples, per coordinate; where the coordinates are identically distributed and ``f`` treats them
alike (the same summand ``g`` in every coordinate, so that the terms' values are iid over
samples *and* coordinates), the first ``n_v = min(S, ceil(variance_samples / d))`` samples of all
``d`` coordinates, pooled into one variance per term (``n_v d`` values).  ``variance_samples=None``
uses every sample.  Accuracy: for ``n`` iid values with kurtosis ``kappa`` the sample variance
has relative standard deviation ``sqrt((kappa - 1) / n)``, so each reported standard error is off
by about ``sqrt((kappa - 1) / (4 n))`` relative.  With ``n = min(S, 2**15)`` values per
coordinate (``n >= min(S d, 2**15)`` when pooled) that is 0.4 % for normal terms and 1.0 % at
``kappa = 14``, the largest kurtosis of the terms of orders 1-8 measured in the catalog cases
gamma-softplus, laplace-softplus, gamma-toy2, gamma-sin and exponential-softplus (1.5 to 14,
``2e5`` samples); ``tests/test_estimators_gsb.py::test_subset_standard_errors_agree_with_the_full_sample``
checks the agreement with full-sample standard errors at this accuracy.  Such an error moves the
warning's significance threshold below from ``3`` to ``3 (1 +- 0.01)`` standard errors.  The
Beta/Dirichlet and MultivariateGaussian rules compute every diagnostic from all samples.

A truncated series that has not terminated emits :class:`GSBTruncationWarning` (with the sizes of
the last terms and the partial sum of the worst element in the message) where its last term
``T_N`` is significantly non-zero (``|T_N| > NOISE_Z`` standard errors, :data:`NOISE_Z` = 3) and either
``|T_N| > max(|T_{N-1}|, |T_{N-2}|)`` (terms stopped decreasing: divergent, or not yet in the
convergent regime; two previous terms because terms such as ``E[sin^(n)(z)]`` pass near zero with
period 4 while their envelope decreases; one for ``N = 2``) or
``|T_N| > TRUNCATION_RTOL |partial sum|`` (:data:`TRUNCATION_RTOL` = 1e-2: not converged).  This
is evidence, not proof: a convergent series whose terms change sign irregularly (``sin``) can
trigger it, a divergent one whose terms first decrease does not (softplus under
``Laplace(0.2, 0.5)``: ``|T_n|`` decreases up to ``n = 4`` and the bias is smallest at ``N = 3``,
1.5 %; ``docs/truncation.md``).

Array backends
--------------
For a distribution on a namespace other than NumPy (CuPy, ``array_api_strict``; see
:mod:`gsbref._backend`) both methods run there and return arrays of it.  ``gsb``: the points are
drawn through :func:`gsbref._backend.generator` (on ``array_api_strict`` NumPy's own numbers, so
the NumPy and array-API results at one seed come from the same draws), the derivatives of all
orders come from :meth:`gsbref.functions.Function.derivatives` (Taylor jets in the namespace; the
fused engine is NumPy code, ``engine="fused"`` raises ``NotImplementedError`` there), the
coefficients from ``dist.a_coefficients`` and the series, its sample means and variances and the
convergence test from array-API operations over all samples at once (no blocking: memory
``(N + 2) S d`` floats).  Differences from the NumPy path: the term variances are never pooled over
coordinates (the first ``min(S, variance_samples)`` samples of each coordinate, as NumPy does for
coordinates that differ); the diagnostics are arrays of the namespace; the warning's message
numbers cross to the host only when it fires.  With ``engine="jet"`` the NumPy path computes the
same derivatives, and the per-sample estimates and diagnostics agree to 64 eps
(``tests/test_backends.py::test_gsb_same_on_strict``).  Covered: Gaussian, Dirac, Laplace,
Gamma, Exponential, ChiSquared, MultivariateGaussian (gradient and Hessian in the namespace),
Beta and Dirichlet through the gamma construction (eqs. 20-21: the gamma draws, curve
coefficients and path jets, :class:`gsbref.functions.jet.XpJet`, in the namespace; diagnostics
from all samples as on NumPy), Beta with ``via="cumulants"`` and any other family with
``a_coefficients``.

Per-sample evaluation without sampling: :func:`build_rule` returns a :class:`Rule` whose
``evaluate(points)`` gives the estimates at given points (used by the deterministic tests).

Cost.  The estimator itself does not materialise the per-sample terms ``(N + 2, S, d)``: for the
families with independent coordinates ``Rule.summary`` walks over blocks of samples x
coordinates.  On the variance subset (``_BLOCK`` values per block) it computes the derivative
rows of all orders once per block (fused engine: for softplus one ``exp``, a reciprocal, ``N``
multiplications and one small matrix product for all orders, the estimates folded into the same
product) and accumulates per coordinate the sums and shifted sums of squares.  Beyond the subset
(``_LIGHT_BLOCK`` values per block) it computes only the estimates -- for softplus one ``(P, N +
1)`` matrix product with the basis, written straight into the result arrays where their layout
allows -- and the per-coordinate sums of the basis rows, from which the means of every order
follow by one product at the end; the rows and their squares are never formed there.
``benchmarks/gsb_cost.py`` measures the time per estimate against drawing the Gamma variates
alone (``docs/results/gsb_cost.txt``).  The estimates are those of the per-block products;
changing the block sizes or the variance subset changes no estimate beyond the order of the
basis products (the benchmark's estimates are bit-for-bit those of the previous version).

>>> import numpy as np, gsbref
>>> from gsbref.estimators import estimate
>>> est = estimate(gsbref.Gaussian(0.3, 1.2), "sum((z - 0.49)**2)", "gsb", 4, 0)
>>> est["scale"].samples.tolist()   # scale * f'' = 1.2 * 2 for every sample
[2.4, 2.4, 2.4, 2.4]
>>> rule = build_rule(gsbref.Gamma(3.0, 0.5), gsbref.function("sum((z - 0.49)**2)"), order=2)
>>> est, terms = rule.evaluate(np.array([1.0, 2.0]))
>>> est["shape"].tolist()        # mu f' + mu^2/2 f'' = z - 0.49 + 0.25
[0.76, 1.76]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._backend import backend_name, generator, is_numpy, to_numpy
from ..distributions._base import Factorized, _check_n, as_generator
from ._base import register
from ._gsb_jets import curve_coefficients, path_derivatives
from ._warnings import GSBKinkWarning, GSBTruncationWarning

__all__ = [
    "build_rule", "Rule", "gsb", "gsb_closed", "DEFAULT_ORDER", "TRUNCATION_RTOL", "NOISE_Z", "VARIANCE_SAMPLES",
    "GSBKinkWarning", "GSBTruncationWarning",
]

#: series terms kept when ``order`` is not given (Beta/Dirichlet: at most the largest finite order)
DEFAULT_ORDER = 8
#: a last term larger than this fraction of the partial sum counts as "not converged"
TRUNCATION_RTOL = 1e-2
#: a last term within this many standard errors of zero is never flagged (sampling noise)
NOISE_Z = 3.0
#: the singularity check looks at f^(n) at these multiples of the mean (Gamma-type families)
_SINGULAR_PROBE = (1e-6, 1e-7)
#: growth exponents within this of the integrability boundary count as infinite
_SINGULAR_SLACK = 1e-3

_GAMMA_LIKE = ("Gamma", "Exponential", "ChiSquared")
_ENGINES = ("auto", "fused", "jet")
#: samples x coordinates per block of the summary pass's full path (its rows stay in cache)
_BLOCK = 2**13
#: samples x coordinates per block of the summary pass's light path (estimates and sums only)
_LIGHT_BLOCK = 2**14
#: the diagnostics' term variances come from (at least, or all of fewer) this many values
VARIANCE_SAMPLES = 2**15
_EXACT_FAMILIES = ("Gaussian", "MultivariateGaussian", "Dirac")


# ----------------------------------------------------------------------------------------------
# the rule object
# ----------------------------------------------------------------------------------------------
@dataclass
class Rule:
    """One family's rule for one ``f``: how to draw the points it needs and how to turn them into
    per-sample estimates.

    ``draw(rng, n)`` returns the points (``z`` of shape ``(n, *event_shape)``; for Beta and
    Dirichlet the pair ``(z, s)`` with ``s`` the sum of the gamma variables behind each ``z``).
    ``evaluate(points, lookahead=False)`` returns ``(estimates, terms)``: ``{name: (S, *param_shape)}``
    and, for the truncated parameters, ``{name: (N + 1, S, *param_shape)}`` per-sample terms (their
    sum over the first axis is the estimate); ``lookahead=True`` appends the first omitted term
    ``N + 1`` to ``terms`` (not to the estimates).

    ``summary(points, variance_samples=VARIANCE_SAMPLES)`` (families with independent
    coordinates and a truncated series; else None) returns ``(estimates, stats)`` without
    materialising the per-sample terms: the same estimates as ``evaluate`` (up to rounding) and,
    per truncated parameter, the sample means (all samples) and variances (the variance subset,
    module docstring; ``"var_n"`` values) of every term ``0..N + 1`` (see
    :func:`_summarise_stats`), accumulated block by block.
    """

    family: str
    equation: str
    order: int | None
    exact: dict
    derivatives: dict
    draw: Callable
    evaluate: Callable
    max_derivative: int = 0
    notes: list = field(default_factory=list)
    summary: Callable | None = None


def _check_order(order, what="order"):
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"{what} must be a positive integer (number of series terms), got {order!r}")
    return int(order)


def _kink_warning(f, dist, params):
    if not f.has_kinks:
        return
    kinks = ", ".join(f.kink_primitives)
    warnings.warn(
        f"gsb: f uses {kinks}; the {type(dist).__name__} rule for {', '.join(repr(p) for p in params)} "
        "needs derivatives of order >= 2, whose Dirac terms at the kinks cannot be sampled, so the "
        "estimate is biased (DESIGN 1.3).  Derivative-free exact alternatives: method='gsb-resummed' "
        "(Laplace, Gamma, Beta, Dirichlet families), method='score'",
        GSBKinkWarning,
        stacklevel=4,
    )


def build_rule(dist, f, method: str = "gsb", order: int | None = None, via: str = "gamma",
               check_singular: bool = True, warn: bool = True, engine: str = "auto") -> Rule:
    """The :class:`Rule` of ``method`` (``"gsb"`` or ``"gsb-closed"``) for ``(dist, f)``.

    ``f`` must be a :class:`gsbref.functions.Function`.  ``via`` selects the Beta form:
    ``"gamma"`` (eq. 20, the paper's; default) or ``"cumulants"`` (theorem 1 applied to the Beta
    itself with :meth:`Beta.a_coefficients`, series in ``d^n f/dz^n``).  ``warn=False`` suppresses
    the kink warning (the estimators always warn).  ``engine`` (families with independent
    coordinates) picks how the derivatives of ``f`` are computed: ``"fused"`` (all orders at once
    in closed form, :mod:`gsbref.functions._fused`; ``ValueError`` when ``f`` has no such form),
    ``"jet"`` (Taylor jets) or ``"auto"`` (fused when available).
    """
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {_ENGINES}, got {engine!r}")
    if engine == "fused" and _xp_of(dist) is not None:
        raise NotImplementedError(
            f"gsb: engine='fused' is NumPy code; {type(dist).__name__} on {backend_name(_xp_of(dist))} "
            "uses the Taylor jets of the array namespace (engine='jet' or 'auto')"
        )
    if method == "gsb-closed":
        from ._gsb_closed import closed_rule

        return closed_rule(dist, f)
    if method != "gsb":
        raise ValueError(f"method must be 'gsb' or 'gsb-closed', got {method!r}")
    if via not in ("gamma", "cumulants"):
        raise ValueError(f"via must be 'gamma' or 'cumulants', got {via!r}")
    name = type(dist).__name__
    if getattr(dist, "discrete", False):
        raise ValueError(
            f"gsb: {name} is discrete; theorem 1 (derivatives of f) does not apply, theorem 2 (eq. 16/17, "
            "differences of f) does -- use method='gsb-discrete'"
        )
    if via == "cumulants" and name != "Beta":
        raise ValueError(f"via='cumulants' is the Beta's direct theorem-1 form; {name} has no such option")
    xp = _xp_of(dist)
    if xp is not None:
        rule = _xp_rule(dist, f, order, via, check_singular, xp)
    elif name == "MultivariateGaussian":
        rule = _mvn_rule(dist, f)
    elif name in ("Beta", "Dirichlet") and via == "gamma":
        rule = _gamma_construction_rule(dist, f, order)
    elif isinstance(dist, Factorized) and hasattr(type(dist), "_a"):
        rule = _factorized_rule(dist, f, order, check_singular, engine)
    else:
        raise ValueError(f"gsb: no theorem-1 rule for {name} (it provides no a_coefficients)")
    if warn and rule.max_derivative >= 2:
        params = [p for p, ms in rule.derivatives.items() if max((m for m in ms if m is not None), default=0) >= 2]
        _kink_warning(f, dist, params)
    return rule


# ----------------------------------------------------------------------------------------------
# families with independent coordinates and theorem-1 coefficients
# ----------------------------------------------------------------------------------------------
def _plan(dist, order):
    """``{name: [(n, m), ...]}``: series index ``n`` uses derivative order ``m``; plus exactness."""
    name = type(dist).__name__
    params = [p.name for p in dist.parameters]
    if name == "Gaussian":
        return "Gaussian (eq. 14)", {"loc": [(1, 1)], "scale": [(2, 2)]}, {"loc": True, "scale": True}, None
    if name == "Dirac":
        return "Dirac (eq. 15)", {"loc": [(1, 1)]}, {"loc": True}, None
    N = DEFAULT_ORDER if order is None else _check_order(order)
    if name == "Laplace":
        return ("Laplace (eq. 18)", {"loc": [(1, 1)], "scale": [(n, 2 * n) for n in range(1, N + 1)]},
                {"loc": True, "scale": False}, N)
    if name in _GAMMA_LIKE:
        return (f"{name} (eq. 19)", {p: [(n, n) for n in range(1, N + 1)] for p in params},
                {p: False for p in params}, N)
    return (f"{name} (theorem 1, eq. 6)", {p: [(n, n) for n in range(0, N + 1)] for p in params},
            {p: False for p in params}, N)


def _derivative_engine(f, d, engine):
    """``(rows, fused)``: ``rows(z, lo, hi, out=None, work=None, combine=None)`` gives the pure
    partials of orders ``lo..hi`` at points ``z`` ``(S, d)``, shape ``(hi - lo + 1, S, d)`` (and
    their combinations ``combine @ rows`` when asked, see
    :meth:`gsbref.functions._fused.FusedSeparable.derivatives`), by the fused engine or by jets."""
    fused = f.fused(d) if engine != "jet" else None
    if fused is None:
        if engine == "fused":
            raise ValueError(
                f"gsb: engine='fused' needs a separable f whose summands have closed-form derivatives "
                f"(polynomials, exp, sin, cos, softplus, sigmoid, log_sigmoid, tanh of affine arguments); "
                f"{f!r} has none: use engine='jet' or 'auto'"
            )

        def rows(z, lo, hi, out=None, work=None, combine=None, shift=None):
            D = f.derivatives(z, hi)
            D = D[lo:] if lo else D
            E = None
            if combine is not None:
                E = (combine @ D.reshape(D.shape[0], -1)).reshape((combine.shape[0],) + z.shape)
            if shift is not None:
                D -= shift.reshape((-1,) + (1,) * z.ndim)
            return D if E is None else (D, E)

        return rows, None

    def rows(z, lo, hi, out=None, work=None, combine=None, shift=None):
        return fused.derivatives(z, hi, lowest=lo, out=out, work=work, combine=combine, shift=shift)

    return rows, fused


def _fast_sample(dist, rng, n):
    """``dist.sample(rng, n)``, through NumPy's scalar-parameter samplers when every coordinate has
    the same parameters (the same numbers, faster)."""
    from .resummed import _sample_fast

    return _sample_fast(dist, rng, n).reshape((n,) + dist.event_shape)


def _factorized_rule(dist, f, order, check_singular, engine="auto"):
    family, plan, exact, N = _plan(dist, order)
    # the lookahead plan has one more series term: its per-sample values tell whether the series
    # terminated (all exactly zero: f is a polynomial of low enough degree)
    plan_next = plan if N is None else _plan(dist, N + 1)[1]
    M = max(m for terms in plan.values() for _, m in terms)
    M_next = max(m for terms in plan_next.values() for _, m in terms)
    ev = dist.event_shape
    d = dist.event_size
    same = all(np.all(v == v.reshape(-1)[0]) for v in dist.broadcast_params().values())
    coeffs = _coefficients(dist, M_next, same)  # {name: (M_next + 1, *event_shape)}
    nmax = {p: max(n for n, _ in terms) for p, terms in plan.items()}
    rows, fused = _derivative_engine(f, d, engine)
    # identically distributed coordinates that f treats alike (f^(m)(z_j) iid over j)
    iid = same and fused is not None and fused.uniform
    if check_singular and type(dist).__name__ in _GAMMA_LIKE:
        _check_singular_at_zero(dist, f, plan, rows, first_only=iid)
    is_dirac = type(dist).__name__ == "Dirac"

    def draw(rng, n):
        return _fast_sample(dist, as_generator(rng), _check_n(n))

    def evaluate(z, lookahead=False):
        z = np.asarray(z, dtype=float)
        S = z.shape[0]
        zf = z.reshape(S, d)
        use = plan_next if lookahead else plan
        Mu = M_next if lookahead else M
        if is_dirac and S > 1 and np.all(zf == zf[:1]):
            D = np.broadcast_to(rows(zf[:1], 0, Mu), (Mu + 1, S, d))
        else:
            D = rows(zf, 0, Mu)
        D = D.reshape((Mu + 1, S) + ev)
        est, terms = {}, {}
        for p, plist in use.items():
            top = max(n for n, _ in plist)
            T = np.zeros((top + 1, S) + ev)
            for n, m in plist:
                T[n] += coeffs[p][m] * D[m]
            T = dist._reduce_to_param(p, T, 2)
            est[p] = T[: nmax[p] + 1].sum(axis=0)
            if not exact[p]:
                terms[p] = T
        return est, terms

    derivs = {p: [dict(plist).get(n) for n in range(nmax[p] + 1)] for p, plist in plan.items()}
    summary = None
    if N is not None and not is_dirac:
        summary = _summary_pass(dist, rows, fused, plan, plan_next, nmax, exact, coeffs, N, iid)
    return Rule(family, family, N, exact, derivs, draw, evaluate, M, summary=summary)


def _coefficients(dist, M, same):
    """``dist.a_coefficients(M)``; where every coordinate has the same parameters (``same``), those
    of one coordinate broadcast to the event shape (the same numbers, without ``O(M d)`` work)."""
    ev = dist.event_shape
    if not same or dist.event_size == 1 or type(dist).__name__ not in _GAMMA_LIKE + ("Laplace",):
        return dist.a_coefficients(M)
    one = type(dist)(**dist.coordinate(0)).a_coefficients(M)
    return {k: np.broadcast_to(np.asarray(v, dtype=float).reshape((M + 1,) + (1,) * len(ev)), (M + 1,) + ev)
            for k, v in one.items()}


def _summary_pass(dist, rows, fused, plan, plan_next, nmax, exact, coeffs, N, iid):
    """The ``summary`` of a :class:`Rule` (families with independent coordinates).

    One pass over blocks of samples.  The first ``n_v`` samples (the *variance subset*, see
    ``variance_samples`` below) go through the full path: the derivative rows ``lo..hi`` of every
    order the plan uses are computed (``rows``; orders above the degree of a polynomial ``f`` are
    known to vanish and are not computed), then

    * the estimates ``sum_m c_m f^(m)``: when the coefficients ``c_m`` are the same in every
      coordinate, as linear combinations of the rows computed with them (inside the fused
      engine's matrix product); else one multiply-add per order;
    * for every derivative order a kept term uses, per coordinate: the sum of the deviations from
      a reference and of their squares (the reference is the first block's mean -- the
      shifted-data variance, accurate also when the spread is small against the mean; a common
      reference, subtracted inside the engine's matrix product, when the coordinates are
      identically distributed and ``f`` treats them alike);
    * for the lookahead orders: the sum, and whether any sample is non-zero.

    The remaining samples go through the light path (once every lookahead row has been seen
    non-zero in every coordinate, and the estimate coefficients are the same in every
    coordinate): the estimates and the per-coordinate sums of the rows only
    (:meth:`gsbref.functions._fused.FusedSeparable.combinations_and_sums`: for the softplus
    family neither the rows nor their squares are formed); the estimates are written straight
    into the result arrays where their layout allows.  Otherwise those samples go through the
    full path without the squares.

    Term ``n`` of parameter ``p`` is ``c_{p,m} f^(m)`` (``m`` its derivative order): its mean and
    variance per coordinate follow from those of ``f^(m)``; a parameter shared by several
    coordinates receives the sum over them of the means and of the variances -- the coordinates
    are independent, so the variance of the summed term is the sum of the variances.  Means and
    the lookahead's mean and zero test use every sample; variances the first ``n_v`` samples:
    ``n_v = min(S, variance_samples)`` per coordinate, or, for identically distributed
    coordinates with ``f`` treating them alike, ``n_v = min(S, ceil(variance_samples / d))``
    samples of all ``d`` coordinates pooled into one variance (the ``n_v d`` values have the same
    distribution); ``variance_samples=None``: all samples.
    """
    from ..functions._fused import RowSums, Workspace

    ev = dist.event_shape
    d = dist.event_size
    lo = min(m for plist in plan_next.values() for _, m in plist)
    hi = max(m for plist in plan_next.values() for _, m in plist)
    if fused is not None and fused.degree is not None:
        hi = min(hi, fused.degree)  # higher derivatives of a polynomial vanish identically
    R = hi - lo + 1  # rows computed (R <= 0: none)
    params = list(plan)
    # estimate coefficients per computed derivative row and coordinate
    tabs = {}
    for p in params:
        t = np.zeros((max(R, 0), d))
        for n, m in plan[p]:
            if n <= nmax[p] and m <= hi:
                t[m - lo] += np.asarray(coeffs[p][m], dtype=float).reshape(d)
        tabs[p] = t
    uniform = all(np.all(t == t[:, :1]) for t in tabs.values())
    # derivative orders whose mean and variance the kept terms need, and the orders of the
    # lookahead terms (only their mean and whether they vanish are used); orders above hi are 0
    stat_all = sorted({m for p in params if not exact[p] for n, m in plan_next[p] if n <= nmax[p]})
    look_all = sorted({max(plan_next[p])[1] for p in params if not exact[p]})
    stat_orders = [m for m in stat_all if m <= hi]
    look_orders = [m for m in look_all if m <= hi]
    look_only = [m for m in look_orders if m not in stat_orders]
    sr = [m - lo for m in stat_orders]
    if len(sr) > 1 and len(set(np.diff(sr))) == 1:
        stat_sel = slice(sr[0], sr[-1] + 1, sr[1] - sr[0])
    elif len(sr) == 1:
        stat_sel = slice(sr[0], sr[0] + 1)
    else:
        stat_sel = np.array(sr, dtype=int)
    K = len(sr)
    comb = np.stack([tabs[p][:, 0] for p in params]) if uniform and R > 0 else None  # (P, R)
    pooled = iid and d > 1  # one variance per term for all coordinates (module docstring)
    # per truncated parameter: series indices n, their derivative orders m, and the coefficients
    # c_{p,m} per coordinate ((L, 1) when the same in every coordinate)
    term_tab = {}
    for p in params:
        if exact[p]:
            continue
        plist = plan_next[p]
        ns, ms = [n for n, _ in plist], [m for _, m in plist]
        C = np.asarray(coeffs[p], dtype=float).reshape(-1, d)[ms]
        if np.all(C == C[:, :1]):
            C = np.ascontiguousarray(C[:, :1])
        m_last = max(plist)[1]
        term_tab[p] = (max(ns), ns, ms, C, m_last, np.asarray(coeffs[p][m_last], dtype=float).reshape(d) != 0)
    n_orders = max(m for plist in plan_next.values() for _, m in plist) + 1
    direct = {p: dist.params[p].shape == tuple(ev) for p in params}
    single = {p: int(np.prod(dist.params[p].shape, dtype=int)) == 1 for p in params}
    # every result has one value per sample and coordinate: one (P, S d) array holds them all
    # and the light path's matrix product writes into it
    backed = comb is not None and all(int(np.prod(dist.params[p].shape, dtype=int)) == d for p in params)
    if fused is not None:
        def light(blk, combine, out_, sums, work):
            fused.combinations_and_sums(blk, hi, lo, combine, out_, sums, work)
    else:
        def light(blk, combine, out_, sums, work):
            D, E = rows(blk, lo, hi, work=work, combine=combine)
            np.copyto(out_, E.reshape(E.shape[0], -1))
            sums.add_rows(D.reshape(D.shape[0], -1, d))

    def summary(z, variance_samples=VARIANCE_SAMPLES):
        variance_samples = _check_variance_samples(variance_samples)
        z = np.asarray(z, dtype=float)
        S = z.shape[0]
        zf = z.reshape(S, d)
        if variance_samples is None:
            nv = S
        else:
            nv = min(S, -(-variance_samples // d) if pooled else variance_samples)
        nP = len(params) if comb is not None else 0
        if backed:
            backing = np.empty((nP, S * d))
            out = {p: backing[i].reshape((S,) + dist.params[p].shape) for i, p in enumerate(params)}
        else:
            backing = None
            out = {p: np.empty((S,) + dist.params[p].shape) for p in params}
        flat = {p: out[p].reshape(S, -1) for p in params}
        csum = np.zeros((K, d))  # sums of deviations from ref (variance subset)
        css = np.zeros((K, 1 if pooled else d))  # sums of squared deviations (variance subset)
        tot = RowSums(max(R, 0), d)  # sums of the rows beyond the variance subset
        nonzero = {m: np.zeros(d, dtype=bool) for m in look_all}
        look_sum = {m: np.zeros(d) for m in look_only}
        all_nonzero = all(m > hi for m in look_all)  # rows above hi vanish: nothing to look for
        ref = shift = None
        work = Workspace()
        if R <= 0:
            for p in params:
                out[p][...] = 0.0
        s0 = 0
        while s0 < (S if R > 0 else 0):
            sub = s0 < nv
            if sub:
                nb = min(max(1, _BLOCK // d), nv - s0)
            else:
                nb = min(max(1, _LIGHT_BLOCK // d), S - s0)
            blk = zf[s0:s0 + nb]
            if not sub and comb is not None and all_nonzero:  # the light path
                E = backing[:, s0 * d:(s0 + nb) * d] if backed else work.get("light_E", (nP, nb * d))
                light(blk, comb, E, tot, work)
                if not backed:
                    _distribute(dist, params, direct, single, out, flat, E, s0, nb, d, ev)
                s0 += nb
                continue
            buf = work.get("summary_rows", (R + nP, nb, d))
            if comb is not None:
                D, E = rows(blk, lo, hi, out=buf, work=work, combine=comb, shift=shift if sub else None)
                _distribute(dist, params, direct, single, out, flat, E.reshape(nP, nb * d), s0, nb, d, ev)
            else:  # coefficients that differ between coordinates (never with a shift: not iid)
                D = rows(blk, lo, hi, out=buf[:R], work=work)
                for p in params:
                    e = np.einsum("rj,rsj->sj", tabs[p], D).reshape((nb,) + ev)
                    out[p][s0:s0 + nb] = dist._reduce_to_param(p, e, 1)
            if not all_nonzero:
                for m in look_orders:  # rows of lookahead orders are never shifted
                    if d == 1:
                        nonzero[m] |= bool(D[m - lo].reshape(-1).any())
                    else:
                        nonzero[m] |= D[m - lo].reshape(nb, d).any(axis=0)
                all_nonzero = all(np.all(nonzero[m]) for m in look_orders)
            if not sub:
                tot.add_rows(D.reshape(R, nb, d))
                s0 += nb
                continue
            for m in look_only:
                look_sum[m] += D[m - lo].reshape(nb, d).sum(axis=0)
            s0 += nb
            if not K:
                continue
            Ds = D.reshape(R, nb, d)[stat_sel]
            if ref is None:
                ref = Ds.sum(axis=1) / nb
                if iid:
                    ref[...] = ref.mean(axis=1, keepdims=True)
                    sh = np.zeros(R)
                    sh[np.asarray(sr)] = ref[:, 0]
                    shift = sh if np.any(sh) else None
                Ds -= ref[:, None, :]
            elif shift is None:
                Ds -= ref[:, None, :]
            if d == 1:  # 2-d views: contiguous reductions
                D2 = Ds.reshape(K, nb)
                csum += D2.sum(axis=1)[:, None]
                css += np.einsum("ks,ks->k", D2, D2)[:, None]
            else:
                csum += Ds.sum(axis=1) if nb > 1 else Ds[:, 0]
                if pooled:  # one sum of squares over the samples and coordinates
                    D2 = Ds.reshape(K, nb * d)
                    css += np.einsum("ks,ks->k", D2, D2)[:, None]
                else:
                    css += np.einsum("ksj,ksj->kj", Ds, Ds)
        tot = tot.total()
        # means (all samples) and variances (variance subset) of every derivative order used;
        # orders above hi vanish
        mean = np.zeros((n_orders, d))
        var = np.zeros((n_orders, 1 if pooled else d))
        if K:
            rest = tot[sr] - (S - nv) * ref
            mean[stat_orders] = ref + (csum + rest) / S
            if pooled:
                n_pool = nv * d
                cs = csum.sum(axis=1, keepdims=True)
                var[stat_orders] = np.maximum(css - cs * cs / n_pool, 0.0) / (n_pool - 1)
            elif nv > 1:
                var[stat_orders] = np.maximum(css - csum * csum / nv, 0.0) / (nv - 1)
        for m in look_only:
            mean[m] = (look_sum[m] + tot[m - lo]) / S  # (the lookahead's variance is not used)
        stats = {}
        for p, (top, ns, ms, C, m_last, c_live) in term_tab.items():
            tm = np.zeros((top + 1, d))
            tv = np.zeros((top + 1, d))
            tm[ns] = C * mean[ms]
            tv[ns] = C * C * var[ms]
            live = (nonzero[m_last] & c_live).astype(float).reshape(ev)
            stats[p] = {
                "mean": dist._reduce_to_param(p, tm.reshape((top + 1,) + ev), 1),
                "var": dist._reduce_to_param(p, tv.reshape((top + 1,) + ev), 1),
                "terminated": dist._reduce_to_param(p, live[None], 1)[0] == 0,
                "n": S,
                "var_n": nv * d if pooled and K else nv,
            }
        return out, stats

    return summary


def _distribute(dist, params, direct, single, out, flat, E, s0, nb, d, ev):
    """Estimates ``E`` ``(P, nb d)`` of samples ``s0 .. s0 + nb`` into the result arrays."""
    for i, p in enumerate(params):
        e = E[i].reshape(nb, d)
        if direct[p]:
            flat[p][s0:s0 + nb] = e
        elif single[p]:  # one value shared by all coordinates: a contiguous row sum
            flat[p][s0:s0 + nb, 0] = e[:, 0] if d == 1 else e.sum(axis=1)
        else:
            out[p][s0:s0 + nb] = dist._reduce_to_param(p, e.reshape((nb,) + ev), 1)


def _check_variance_samples(n):
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"variance_samples must be an integer >= 2 or None (all samples), got {n!r}")
    return int(n)


def _check_singular_at_zero(dist, f, plan, rows=None, first_only=False):
    """Refuse orders whose terms ``E[f^(m)(z)]`` are infinite because ``f^(m)`` blows up at 0 at
    least as fast as ``z^-shape`` (see the module docstring).  ``rows``: the rule's derivative
    engine (default: jets); ``first_only``: probe coordinate 0 alone (the coordinates are
    identically distributed and ``rows`` treats them alike, column by column)."""
    M = max(m for terms in plan.values() for _, m in terms)
    if M < 1:
        return
    mean = np.asarray(dist.mean(), dtype=float).reshape(-1)
    shape = _gamma_shape(dist).reshape(-1)
    if first_only:
        mean, shape = mean[:1], shape[:1]
    e1, e2 = _SINGULAR_PROBE
    with np.errstate(all="ignore"):
        probe = np.stack([e1 * mean, e2 * mean])
        D = rows(probe, 0, M) if rows is not None else f.derivatives(probe, M)
        D1, D2 = np.asarray(D[:, 0], dtype=float), np.asarray(D[:, 1], dtype=float)
        growth = np.log(np.abs(D2) / np.abs(D1)) / math.log(e1 / e2)  # p in f^(m) ~ z^-p
    growth = np.where(np.isinf(D2) & ~np.isnan(D1), np.inf, growth)
    # (NaN and -inf growth compare False: no evidence of a singularity there)
    flagged = growth[1:M + 1] >= shape - _SINGULAR_SLACK
    bad = []
    if flagged.any():
        m0 = int(np.argmax(flagged.any(axis=1)))
        j = int(np.argmax(flagged[m0]))
        bad.append((m0 + 1, j, growth[m0 + 1, j]))
    if bad:
        m, j, p = bad[0]
        raise ValueError(
            f"gsb: E[d^{m}f/dz^{m}] is infinite under {dist!r} (coordinate {j}): near z = 0 the "
            f"{m}-th derivative grows like z^-{p:.3g} while the density vanishes only like "
            f"z^({shape[j]:.3g} - 1), so the series of eq. 19 has infinite terms from n = {m} on "
            f"(DESIGN 1.4); use order <= {m - 1} (if that is >= 1) or the derivative-free "
            "method='gsb-resummed'"
        )


def _gamma_shape(dist):
    name = type(dist).__name__
    if name == "Gamma":
        return np.broadcast_to(dist.shape, dist.event_shape).astype(float)
    if name == "Exponential":
        return np.ones(dist.event_shape)
    return np.broadcast_to(dist.df / 2.0, dist.event_shape).astype(float)


# ----------------------------------------------------------------------------------------------
# multivariate Gaussian
# ----------------------------------------------------------------------------------------------
def _mvn_rule(dist, f):
    def draw(rng, n):
        return dist.sample(as_generator(rng), _check_n(n))

    def evaluate(z, lookahead=False):
        z = np.asarray(z, dtype=float)
        return {"loc": f.gradient(z), "cov": 0.5 * f.hessian(z)}, {}

    fam = "MultivariateGaussian (eq. 14)"
    return Rule(fam, fam, None, {"loc": True, "cov": True}, {"loc": [None, 1], "cov": [None, None, 2]},
                draw, evaluate, 2)


# ----------------------------------------------------------------------------------------------
# Beta and Dirichlet through gamma variables (eqs. 20-21)
# ----------------------------------------------------------------------------------------------
def _log_gamma_draws(rng, a):
    """``log`` of Gamma(a, 1) draws, accurate for small ``a`` (``log G + log(U)/a`` with
    ``G ~ Gamma(a + 1)``, ``U ~ U(0, 1]``)."""
    u = 1.0 - rng.random(a.shape)
    return np.log(rng.standard_gamma(a + 1.0)) + np.log(u) / a


def _gamma_construction_order(name, what, tmin, order):
    """The order ``N`` of eqs. 20-21 for ``order`` (None: the default) when the smallest total
    concentration is ``tmin``; ``ValueError`` where a term would be infinite (DESIGN 1.5)."""
    # largest n with E[s^-n] finite: n < total
    n_finite = int(math.ceil(tmin) - 1)
    if order is None:
        N = min(DEFAULT_ORDER, n_finite)
        if N < 1:
            raise ValueError(
                f"gsb: {name} with {what} = {tmin:.4g} <= 1: already the first term of eq. "
                f"{'20' if name == 'Beta' else '21'} involves E[s^-1] with s ~ Gamma({tmin:.4g}), which is "
                "infinite (DESIGN 1.5); use method='gsb-resummed' or 'score'"
            )
    else:
        N = _check_order(order)
        if N >= tmin:
            raise ValueError(
                f"gsb: order {N} is not available for {name} with {what} = {tmin:.4g}: term n of eq. "
                f"{'20' if name == 'Beta' else '21'} involves E[s^-n] with s ~ Gamma({tmin:.4g}) (the sum of "
                f"the gamma variables), which is infinite for n >= {tmin:.4g} (DESIGN 1.5); the largest "
                f"order with finite terms is {max(n_finite, 0)}.  The partial sums that exist do not "
                "approach the gradient in general: use method='gsb-resummed' or 'score'"
            )
    return N


def _gamma_construction_rule(dist, f, order):
    name = type(dist).__name__
    ev = dist.event_shape
    d = dist.event_size
    if name == "Beta":
        bp = dist.broadcast_params()
        total = np.asarray(bp["alpha"] + bp["beta"], dtype=float)
        what = "alpha + beta"
    else:
        conc = np.asarray(dist.concentration, dtype=float)
        total = conc.sum(axis=-1)
        what = "sum(concentration)"
    tmin = float(np.min(total))
    N = _gamma_construction_order(name, what, tmin, order)
    nfac = np.array([0.0] + [1.0 / n for n in range(1, N + 2)])

    if name == "Beta":
        a = np.broadcast_to(dist.params["alpha"], ev)
        b = np.broadcast_to(dist.params["beta"], ev)

        def draw(rng, n):
            rng = as_generator(rng)
            n = _check_n(n)
            l1 = _log_gamma_draws(rng, np.broadcast_to(a, (n,) + ev))
            l2 = _log_gamma_draws(rng, np.broadcast_to(b, (n,) + ev))
            from scipy.special import expit

            z = expit(l1 - l2)
            s = np.exp(np.logaddexp(l1, l2))
            return z, s

        def evaluate(points, lookahead=False):
            z, s = (np.asarray(x, dtype=float) for x in points)
            S = z.shape[0]
            L = N + 1 if lookahead else N
            zf, sf = z.reshape(S, d), s.reshape(S, d)
            # directions 0..d-1: zeta_1 of coordinate j; d..2d-1: zeta_2 of coordinate j
            curves = np.zeros((L, S, 2 * d, d))
            for j in range(d):
                curves[:, :, j, j] = curve_coefficients(zf[:, j], sf[:, j], 1.0, L)
                curves[:, :, d + j, j] = curve_coefficients(zf[:, j], sf[:, j], 0.0, L)
            D = path_derivatives(f, zf, curves)  # (L + 1, S, 2d)
            T = {"alpha": D[:, :, :d], "beta": D[:, :, d:]}
            est, terms = {}, {}
            for p, Tp in T.items():
                Tp = (nfac[: L + 1, None, None] * Tp).reshape((L + 1, S) + ev)
                Tp = dist._reduce_to_param(p, Tp, 2)
                terms[p] = Tp
                est[p] = Tp[: N + 1].sum(axis=0)
            return est, terms

        params = ["alpha", "beta"]
        family = "Beta (eq. 20, gamma construction)"
    else:
        K = ev[-1]
        R = d // K

        def draw(rng, n):
            rng = as_generator(rng)
            n = _check_n(n)
            lg = _log_gamma_draws(rng, np.broadcast_to(conc, (n,) + ev))
            mx = lg.max(axis=-1, keepdims=True)
            w = np.exp(lg - mx)
            tot = w.sum(axis=-1, keepdims=True)
            return w / tot, np.exp(mx[..., 0] + np.log(tot[..., 0]))

        def evaluate(points, lookahead=False):
            z, s = (np.asarray(x, dtype=float) for x in points)
            S = z.shape[0]
            L = N + 1 if lookahead else N
            zr = z.reshape(S, R, K)
            sr = s.reshape(S, R)
            curves = np.zeros((L, S, d, R, K))
            for r in range(R):
                for k in range(K):
                    i = r * K + k
                    moved = (np.arange(K) == k).astype(float)
                    curves[:, :, i, r, :] = curve_coefficients(zr[:, r, :], sr[:, r, None], moved, L)
            D = path_derivatives(f, z.reshape(S, d), curves.reshape(L, S, d, d))  # (L + 1, S, d)
            Tp = (nfac[: L + 1, None, None] * D).reshape((L + 1, S) + ev)
            return {"concentration": Tp[: N + 1].sum(axis=0)}, {"concentration": Tp}

        params = ["concentration"]
        family = "Dirichlet (eq. 21, gamma construction)"
    derivs = {p: [None] + list(range(1, N + 1)) for p in params}
    return Rule(family, family, N, {p: False for p in params}, derivs, draw, evaluate, N,
                _gamma_construction_notes(N, tmin))


def _gamma_construction_notes(N, tmin):
    notes = []
    n_var = int(math.ceil(tmin / 2) - 1)  # largest n with E[s^-2n] finite
    if N > n_var:
        notes.append(
            f"terms n >= {n_var + 1} have infinite variance (E[s^-2n] = inf for 2n >= {tmin:.4g}): "
            "standard errors of these estimates are not meaningful"
        )
    return notes


# ----------------------------------------------------------------------------------------------
# the array-API path (distributions on a namespace other than NumPy)
# ----------------------------------------------------------------------------------------------
def _xp_of(dist):
    """The distribution's namespace where it is not NumPy, else None (the NumPy path)."""
    xp = getattr(dist, "xp", None)
    return None if xp is None or is_numpy(xp) else xp


def _xp_rule(dist, f, order, via, check_singular, xp):
    """The :class:`Rule` of a family with independent coordinates on namespace ``xp`` (module
    docstring, "Array backends"): draws through :func:`gsbref._backend.generator`, derivatives
    from :meth:`Function.derivatives` (Taylor jets in ``xp``), coefficients from
    ``dist.a_coefficients``, the series and its statistics by array-API operations over all samples
    at once (no blocking); the multivariate Gaussian's gradient and Hessian and the gamma
    construction of Beta / Dirichlet (:func:`_gamma_construction_rule_xp`) likewise."""
    name = type(dist).__name__
    if name == "MultivariateGaussian":
        def draw(rng, n):
            return dist.sample(generator(xp, rng), _check_n(n))

        def evaluate(z, lookahead=False):  # gradient and Hessian of f in xp (Taylor jets)
            return {"loc": f.gradient(z), "cov": 0.5 * f.hessian(z)}, {}

        fam = "MultivariateGaussian (eq. 14)"
        return Rule(fam, fam, None, {"loc": True, "cov": True}, {"loc": [None, 1], "cov": [None, None, 2]},
                    draw, evaluate, 2)
    if name in ("Beta", "Dirichlet") and via == "gamma":
        return _gamma_construction_rule_xp(dist, f, order, xp)
    if not (isinstance(dist, Factorized) and hasattr(type(dist), "_a")):
        raise ValueError(f"gsb: no theorem-1 rule for {name} (it provides no a_coefficients)")
    family, plan, exact, N = _plan(dist, order)
    plan_next = plan if N is None else _plan(dist, N + 1)[1]
    M = max(m for terms in plan.values() for _, m in terms)
    M_next = max(m for terms in plan_next.values() for _, m in terms)
    ev = dist.event_shape
    d = dist.event_size
    coeffs = dist.a_coefficients(M_next)  # {name: (M_next + 1, *event_shape)} in xp
    nmax = {p: max(n for n, _ in terms) for p, terms in plan.items()}
    if check_singular and name in _GAMMA_LIKE:
        _check_singular_at_zero_xp(dist, f, plan, xp)
    is_dirac = name == "Dirac"

    def draw(rng, n):
        n = _check_n(n)
        return xp.reshape(dist.sample(generator(xp, rng), n), (n,) + tuple(ev))

    def per_coordinate(z, lookahead):
        """``{name: (top + 1, S, *event_shape)}`` terms before the reduction to the parameter."""
        S = z.shape[0]
        zf = xp.reshape(z, (S, d))
        use = plan_next if lookahead else plan
        Mu = M_next if lookahead else M
        if is_dirac:  # every sample is loc
            D = xp.broadcast_to(f.derivatives(zf[:1, ...], Mu), (Mu + 1, S, d))
        else:
            D = f.derivatives(zf, Mu)
        D = xp.reshape(D, (Mu + 1, S) + tuple(ev))
        zero = xp.zeros((S,) + tuple(ev), dtype=xp.float64)
        out = {}
        for p, plist in use.items():
            top = max(n for n, _ in plist)
            rows = [zero] * (top + 1)
            for n, m in plist:
                rows[n] = rows[n] + coeffs[p][m, ...] * D[m, ...]
            out[p] = xp.stack(rows)
        return out

    def evaluate(z, lookahead=False):
        T = per_coordinate(z, lookahead)
        est, terms = {}, {}
        for p, Tp in T.items():
            Tp = dist._reduce_to_param(p, Tp, 2)
            est[p] = xp.sum(Tp[: nmax[p] + 1, ...], axis=0)
            if not exact[p]:
                terms[p] = Tp
        return est, terms

    def summary(z, variance_samples=VARIANCE_SAMPLES):
        variance_samples = _check_variance_samples(variance_samples)
        S = z.shape[0]
        nv = S if variance_samples is None else min(S, variance_samples)
        T = per_coordinate(z, True)
        est, stats = {}, {}
        for p, Tp in T.items():
            est[p] = xp.sum(dist._reduce_to_param(p, Tp[: nmax[p] + 1, ...], 2), axis=0)
            if exact[p]:
                continue
            mean = xp.mean(Tp, axis=1)
            if nv > 1:
                var = xp.var(Tp[:, :nv, ...], axis=1, correction=1)
            else:
                var = xp.zeros_like(mean)
            live = xp.astype(xp.any(Tp[-1, ...] != 0, axis=0), xp.float64)
            stats[p] = {
                "mean": dist._reduce_to_param(p, mean, 1),
                "var": dist._reduce_to_param(p, var, 1),
                "terminated": dist._reduce_to_param(p, live[None, ...], 1)[0, ...] == 0,
                "n": S,
                "var_n": nv,
            }
        return est, stats

    derivs = {p: [dict(plist).get(n) for n in range(nmax[p] + 1)] for p, plist in plan.items()}
    return Rule(family, family, N, exact, derivs, draw, evaluate, M,
                summary=summary if N is not None and not is_dirac else None)


def _gamma_construction_rule_xp(dist, f, order, xp):
    """:func:`_gamma_construction_rule` in namespace ``xp``: the same draws (through
    :func:`gsbref._backend.generator`), curve coefficients and path jets (:class:`XpJet`), by
    array-API operations over all samples at once."""
    from .._backend import special
    from ..functions.jet import Jet, XpJet

    name = type(dist).__name__
    ev = tuple(dist.event_shape)
    d = dist.event_size
    f64 = xp.float64
    if name == "Beta":
        a = xp.broadcast_to(xp.asarray(dist.params["alpha"], dtype=f64), ev)
        b = xp.broadcast_to(xp.asarray(dist.params["beta"], dtype=f64), ev)
        total, what = a + b, "alpha + beta"
    else:
        conc = xp.asarray(dist.concentration, dtype=f64)
        total, what = xp.sum(conc, axis=-1), "sum(concentration)"
    tmin = float(xp.min(total))
    N = _gamma_construction_order(name, what, tmin, order)
    nfac = xp.asarray([0.0] + [1.0 / n for n in range(1, N + 2)], dtype=f64)

    def log_gamma_draws(g, shape):
        u = 1.0 - g.random(tuple(shape.shape))
        return xp.log(g.standard_gamma(shape + 1.0)) + xp.log(u) / shape

    def curve(z, s, moved, L):
        base = z - moved
        inv = -1.0 / s
        p = xp.ones(tuple(base.shape), dtype=f64)
        rows = []
        for _ in range(L):
            p = p * inv
            rows.append(base * p)
        return xp.stack(rows)

    def path(z, curves):
        L, S, Q, dd = curves.shape
        c = xp.concat([xp.broadcast_to(xp.reshape(z, (1, S, 1, dd)), (1, S, Q, dd)), curves], axis=0)
        res = f._raw(XpJet(c), xp)
        if isinstance(res, Jet):
            co = xp.broadcast_to(res.coeffs, (L + 1, S, Q))
        else:  # f constant
            v = xp.broadcast_to(xp.asarray(res, dtype=f64), (1, S, Q))
            co = xp.concat([v, xp.zeros((L, S, Q), dtype=f64)], axis=0)
        facts = xp.asarray([float(math.factorial(k)) for k in range(L + 1)], dtype=f64)
        return co * xp.reshape(facts, (L + 1, 1, 1))

    if name == "Beta":
        def draw(rng, n):
            g = generator(xp, rng)
            n = _check_n(n)
            l1 = log_gamma_draws(g, xp.broadcast_to(a, (n,) + ev))
            l2 = log_gamma_draws(g, xp.broadcast_to(b, (n,) + ev))
            return special(xp).expit(l1 - l2), xp.exp(xp.logaddexp(l1, l2))

        def evaluate(points, lookahead=False):
            z, s = points
            S = z.shape[0]
            L = N + 1 if lookahead else N
            zf, sf = xp.reshape(z, (S, d)), xp.reshape(s, (S, d))
            curves = xp.zeros((L, S, 2 * d, d), dtype=f64)
            for j in range(d):
                curves[:, :, j, j] = curve(zf[:, j], sf[:, j], 1.0, L)
                curves[:, :, d + j, j] = curve(zf[:, j], sf[:, j], 0.0, L)
            D = path(zf, curves)  # (L + 1, S, 2d)
            est, terms = {}, {}
            for p, Tp in (("alpha", D[:, :, :d]), ("beta", D[:, :, d:])):
                Tp = xp.reshape(xp.reshape(nfac[: L + 1], (L + 1, 1, 1)) * Tp, (L + 1, S) + ev)
                Tp = dist._reduce_to_param(p, Tp, 2)
                terms[p] = Tp
                est[p] = xp.sum(Tp[: N + 1, ...], axis=0)
            return est, terms

        params = ["alpha", "beta"]
        family = "Beta (eq. 20, gamma construction)"
    else:
        K = ev[-1]
        R = d // K

        def draw(rng, n):
            g = generator(xp, rng)
            n = _check_n(n)
            lg = log_gamma_draws(g, xp.broadcast_to(conc, (n,) + ev))
            mx = xp.max(lg, axis=-1, keepdims=True)
            w = xp.exp(lg - mx)
            tot = xp.sum(w, axis=-1, keepdims=True)
            return w / tot, xp.exp(mx[..., 0] + xp.log(tot[..., 0]))

        def evaluate(points, lookahead=False):
            z, s = points
            S = z.shape[0]
            L = N + 1 if lookahead else N
            zr = xp.reshape(z, (S, R, K))
            sr = xp.reshape(s, (S, R, 1))
            curves = xp.zeros((L, S, d, R, K), dtype=f64)
            for r in range(R):
                for k in range(K):
                    moved = xp.asarray([1.0 if i == k else 0.0 for i in range(K)], dtype=f64)
                    curves[:, :, r * K + k, r, :] = curve(zr[:, r, :], sr[:, r, :], moved, L)
            D = path(xp.reshape(z, (S, d)), xp.reshape(curves, (L, S, d, d)))  # (L + 1, S, d)
            Tp = xp.reshape(xp.reshape(nfac[: L + 1], (L + 1, 1, 1)) * D, (L + 1, S) + ev)
            return {"concentration": xp.sum(Tp[: N + 1, ...], axis=0)}, {"concentration": Tp}

        params = ["concentration"]
        family = "Dirichlet (eq. 21, gamma construction)"
    derivs = {p: [None] + list(range(1, N + 1)) for p in params}
    return Rule(family, family, N, {p: False for p in params}, derivs, draw, evaluate, N,
                _gamma_construction_notes(N, tmin))


def _gamma_shape_xp(dist, xp):
    name = type(dist).__name__
    ev = tuple(dist.event_shape)
    if name == "Gamma":
        return xp.broadcast_to(xp.asarray(dist.params["shape"], dtype=xp.float64), ev)
    if name == "Exponential":
        return xp.ones(ev, dtype=xp.float64)
    return xp.broadcast_to(xp.asarray(dist.params["df"], dtype=xp.float64) / 2.0, ev)


def _check_singular_at_zero_xp(dist, f, plan, xp):
    """:func:`_check_singular_at_zero` in namespace ``xp`` (derivatives by jets)."""
    M = max(m for terms in plan.values() for _, m in terms)
    if M < 1:
        return
    mean = xp.reshape(xp.asarray(dist.mean(), dtype=xp.float64), (-1,))
    shape = xp.reshape(_gamma_shape_xp(dist, xp), (-1,))
    e1, e2 = _SINGULAR_PROBE
    with np.errstate(all="ignore"):  # array_api_strict computes with NumPy: log(0) is expected here
        D = f.derivatives(xp.stack([e1 * mean, e2 * mean]), M)
        D1, D2 = D[:, 0, ...], D[:, 1, ...]
        growth = xp.log(xp.abs(D2) / xp.abs(D1)) / math.log(e1 / e2)
        inf = xp.full_like(growth, math.inf)
        growth = xp.where(xp.isinf(D2) & ~xp.isnan(D1), inf, growth)
        flagged = growth[1:M + 1, ...] >= shape - _SINGULAR_SLACK
    if not bool(xp.any(flagged)):
        return
    # the error message only: the (M, d) flags and exponents cross to the host
    fl, gr, sh = to_numpy(flagged), to_numpy(growth), to_numpy(shape)
    m0 = int(np.argmax(fl.any(axis=1)))
    j = int(np.argmax(fl[m0]))
    m, p = m0 + 1, gr[m0 + 1, j]
    raise ValueError(
        f"gsb: E[d^{m}f/dz^{m}] is infinite under {dist!r} (coordinate {j}): near z = 0 the "
        f"{m}-th derivative grows like z^-{p:.3g} while the density vanishes only like "
        f"z^({sh[j]:.3g} - 1), so the series of eq. 19 has infinite terms from n = {m} on "
        f"(DESIGN 1.4); use order <= {m - 1} (if that is >= 1) or the derivative-free "
        "method='gsb-resummed'"
    )


def _term_stats_xp(terms: dict, xp) -> dict:
    """:func:`_summarise`'s statistics of per-sample terms ``(N + 2, S, ...)`` in ``xp`` (all samples)."""
    stats = {}
    for p, T in terms.items():
        S = T.shape[1]
        mean = xp.mean(T, axis=1)
        stats[p] = {
            "mean": mean,
            "var": xp.var(T, axis=1, correction=1) if S > 1 else xp.zeros_like(mean),
            "terminated": xp.all(T[-1, ...] == 0, axis=0),
            "n": S,
            "var_n": S,
        }
    return stats


def _summarise_xp(rule: Rule, stats: dict, xp) -> dict:
    """:func:`_summarise_stats` in namespace ``xp`` (the diagnostics stay arrays of ``xp``)."""
    out = {
        "rule": rule.equation, "order": rule.order, "exact": dict(rule.exact),
        "derivatives": {k: list(v) for k, v in rule.derivatives.items()},
        "terms": {}, "term_stderr": {}, "partial_sums": {}, "next_term": {}, "terminated": {},
        "converged": {}, "variance_samples": {}, "notes": list(rule.notes),
    }
    for p, st in stats.items():
        S = st["n"]
        mean = st["mean"][:-1, ...]
        se = xp.sqrt(st["var"][:-1, ...] / S) if S > 1 else xp.zeros_like(mean)
        terminated = st["terminated"]
        out["terms"][p] = mean
        out["term_stderr"][p] = se
        out["partial_sums"][p] = xp.cumulative_sum(mean, axis=0)
        out["next_term"][p] = st["mean"][-1, ...]
        out["terminated"][p] = terminated
        out["variance_samples"][p] = int(st["var_n"])
        N = mean.shape[0] - 1
        if N < 2:
            out["converged"][p] = terminated if bool(xp.all(terminated)) else None
            continue
        last = xp.abs(mean[N, ...])
        prev = xp.abs(mean[N - 1, ...])
        if N >= 3:  # two previous terms (see _converged)
            prev = xp.maximum(prev, xp.abs(mean[N - 2, ...]))
        total = xp.abs(xp.sum(mean, axis=0))
        s_n = se[N, ...]
        s_n = xp.where(xp.isnan(s_n), xp.zeros_like(s_n), s_n)
        significant = last > NOISE_Z * s_n
        bad = significant & ((last > prev) | (last > TRUNCATION_RTOL * total))
        out["converged"][p] = ~bad | terminated
    return out


def _warn_truncation_xp(dist, diag, xp):
    """:func:`_warn_truncation` for diagnostics in ``xp``: the test runs in ``xp``; only where it
    fires do the few numbers of the message cross to the host."""
    bad = [p for p, ok in diag["converged"].items() if ok is not None and not bool(xp.all(ok))]
    if not bad:
        return
    host = {"rule": diag["rule"],
            "converged": {p: to_numpy(diag["converged"][p]) for p in bad},
            "terms": {p: to_numpy(diag["terms"][p]) for p in bad},
            "partial_sums": {p: to_numpy(diag["partial_sums"][p]) for p in bad}}
    _warn_truncation(dist, host, stacklevel=5)


# ----------------------------------------------------------------------------------------------
# diagnostics of a truncated series
# ----------------------------------------------------------------------------------------------
def _summarise(rule: Rule, terms: dict) -> dict:
    """Diagnostics from per-sample terms ``(N + 2, S, ...)`` (the last one is the lookahead)."""
    stats = {}
    for p, T in terms.items():
        S = T.shape[1]
        stats[p] = {
            "mean": T.mean(axis=1),
            "var": T.var(axis=1, ddof=1) if S > 1 else np.zeros(T.shape[:1] + T.shape[2:]),
            "terminated": np.all(T[-1] == 0, axis=0),
            "n": S,
            "var_n": S,
        }
    return _summarise_stats(rule, stats)


def _summarise_stats(rule: Rule, stats: dict) -> dict:
    """Diagnostics from the term statistics ``{name: {"mean", "var": (N + 2, ...), "terminated",
    "n"}}`` (sample means and variances of the terms ``0..N + 1``, the last one the lookahead;
    ``terminated``: the lookahead term is zero on every sample)."""
    out = {
        "rule": rule.equation,
        "order": rule.order,
        "exact": dict(rule.exact),
        "derivatives": {k: list(v) for k, v in rule.derivatives.items()},
        "terms": {},
        "term_stderr": {},
        "partial_sums": {},
        "next_term": {},
        "terminated": {},
        "converged": {},
        "variance_samples": {},
        "notes": list(rule.notes),
    }
    for p, st in stats.items():
        S = st["n"]
        mean = st["mean"][:-1]
        se = np.sqrt(st["var"][:-1] / S) if S > 1 else np.zeros_like(mean)
        terminated = st["terminated"]
        out["terms"][p] = mean
        out["term_stderr"][p] = se
        out["partial_sums"][p] = _cumsum0(mean)
        out["next_term"][p] = st["mean"][-1]
        out["terminated"][p] = terminated
        out["variance_samples"][p] = int(st.get("var_n", S))
        ok = _converged(mean, se)
        out["converged"][p] = terminated if ok is None and np.all(terminated) else (
            None if ok is None else ok | terminated)
    return out


def _cumsum0(a):
    """``np.cumsum(a, axis=0)`` (the same sums in the same order) by whole-row additions, which
    NumPy runs much faster than its cumulative sum along the first axis of a wide array."""
    out = np.array(a, dtype=float, copy=True)
    for n in range(1, out.shape[0]):
        out[n] += out[n - 1]
    return out


def _converged(mean, se):
    """False where the last term is significant and (not smaller than the previous one, or not
    small against the partial sum); None when there is only one series term."""
    N = mean.shape[0] - 1
    last = np.abs(mean[N])
    # terms n >= 1 that the rule uses; term 0 is a_0 f (or zero)
    if N < 2:
        return None
    prev = np.abs(mean[N - 1])
    if N >= 3:
        # two previous terms: terms like E[sin^(n)] change sign with period 4 and can pass
        # through ~0 while their envelope still decreases
        prev = np.maximum(prev, np.abs(mean[N - 2]))
    total = np.abs(mean.sum(axis=0))
    significant = last > NOISE_Z * np.nan_to_num(se[N])
    bad = significant & ((last > prev) | (last > TRUNCATION_RTOL * total))
    return ~bad


def _warn_truncation(dist, diag, stacklevel=4):
    for p, ok in diag["converged"].items():
        if ok is None or np.all(ok):
            continue
        mean = diag["terms"][p]
        N = mean.shape[0] - 1
        flat_ok = np.asarray(ok).reshape(-1)
        last = np.abs(mean[N]).reshape(-1)
        i = int(np.argmax(np.where(~flat_ok, last, -np.inf)))
        shown = range(max(1, N - 2), N + 1)
        sizes = ", ".join(f"|T_{n}| = {float(np.abs(mean[n]).reshape(-1)[i]):.3g}" for n in shown)
        prev = max(float(np.abs(mean[n]).reshape(-1)[i]) for n in shown if n < N)
        lastv = float(last[i])
        total = float(diag["partial_sums"][p][N].reshape(-1)[i])
        why = "the terms stopped decreasing" if lastv > prev else f"the last term exceeds {TRUNCATION_RTOL:g} of the sum"
        where = "" if np.ndim(ok) == 0 else f" (element {tuple(int(x) for x in np.unravel_index(i, np.shape(ok)))})"
        warnings.warn(
            f"gsb: the {diag['rule']} series for '{p}'{where} has not converged at order {N}: "
            f"{sizes}, partial sum {total:.6g}; {why}.  The series "
            "may diverge for this f (DESIGN 1.4) and the truncation bias cannot be judged from samples: "
            "gsbref.oracle.truncation.truncation_bias computes it; method='gsb-resummed' is exact",
            GSBTruncationWarning,
            stacklevel=stacklevel,
        )


# ----------------------------------------------------------------------------------------------
# the registered estimators
# ----------------------------------------------------------------------------------------------
@register("gsb", array_api=True)
def gsb(dist, f, n_samples, rng, order: int | None = None, via: str = "gamma",
        diagnostics: dict | None = None, check_singular: bool = True,
        variance_samples: int | None = VARIANCE_SAMPLES, engine: str = "auto") -> dict[str, np.ndarray]:
    """Generalized stochastic backpropagation (theorem 1; eqs. 14, 15, 18-21), per sample.

    Approximates ``dE_{z~dist}[f(z)]/dtheta`` by ``sum_{n<=N} a_n(theta) d^n f(z)/dz^n`` at samples
    ``z ~ dist`` (gamma variables for Beta/Dirichlet), with derivatives of ``f`` from the fused
    all-orders engine where ``f`` allows it, else from Taylor jets.
    Unbiased for the exact rules (Gaussian, MultivariateGaussian, Dirac, Laplace ``loc``) and for
    ``f`` whose series terminates (polynomials under Gamma/Laplace); otherwise biased by the
    omitted terms of the truncated series (eq. 26), and the truncated series may diverge as
    ``order`` grows (DESIGN 1.4).  Requires ``f`` differentiable enough; see the module docstring
    for the order convention, the refusals, ``diagnostics``, the warnings and the array backends.

    Options: ``order`` (series terms kept), ``via`` (Beta: ``"gamma"`` or ``"cumulants"``),
    ``diagnostics`` (a dict to fill), ``check_singular`` (Gamma-type families),
    ``variance_samples`` (how many values the diagnostics' term variances come from, an integer
    >= 2, or None for all samples; module docstring), ``engine`` (how the derivatives are
    computed: :func:`build_rule`).
    """
    variance_samples = _check_variance_samples(variance_samples)
    rule = build_rule(dist, f, "gsb", order=order, via=via, check_singular=check_singular, engine=engine)
    points = rule.draw(rng, n_samples)
    xp = _xp_of(dist)
    if xp is not None:  # the array-API path (module docstring)
        if rule.summary is not None:
            est, stats = rule.summary(points, variance_samples)
            diag = _summarise_xp(rule, stats, xp)
        else:
            est, terms = rule.evaluate(points, lookahead=True)
            diag = _summarise_xp(rule, _term_stats_xp(terms, xp), xp)
        _warn_truncation_xp(dist, diag, xp)
    else:
        if rule.summary is not None:
            est, stats = rule.summary(points, variance_samples)
            diag = _summarise_stats(rule, stats)
        else:
            est, terms = rule.evaluate(points, lookahead=True)
            diag = _summarise(rule, terms)
        _warn_truncation(dist, diag)
    if diagnostics is not None:
        diagnostics.update(diag)
    return est


@register("gsb-closed", array_api=True)
def gsb_closed(dist, f, n_samples, rng, diagnostics: dict | None = None) -> dict[str, np.ndarray]:
    """Corollary 3.1 in closed form: the whole theorem-1 series summed per sample.

    Approximates nothing: for separable ``f`` (``a + b sum_j g_j(z_j)`` or ``a + b prod_j
    g_j(z_j)``) whose terms are exponential polynomials ``g(x) = sum_t c_t x^k_t exp(r_t x)``
    (polynomials, ``exp``, ``sin``, ``cos`` of affine arguments: the paper's toy problems 1 and 2),
    ``sum_n a_n g^(n)(x)`` equals ``sum_t c_t sum_m binom(k_t, m) G^(m)(r_t) x^(k_t - m) exp(r_t x)``
    with ``G(c) = d/dtheta log E[exp(c z)]`` (the log characteristic function at ``w = -i c``).
    For ``g = exp(-eps x)`` this is ``G(-eps) exp(-eps x)``: the gradient of ``log phi`` at the
    argument ``i eps`` (the paper's eq. 25 / toy problem 2 print ``eps / i``, which gives wrong
    values: DESIGN 1.2).  Unbiased whenever ``E[f]`` is finite (``Re r_t`` inside the family's
    moment-generating strip; the variance needs ``2 Re r_t`` inside it).  Requires a family with
    independent coordinates and a closed-form moment generating function; raises ``ValueError``
    for any other ``f``.
    """
    rule = build_rule(dist, f, "gsb-closed")
    points = rule.draw(rng, n_samples)
    est, _ = rule.evaluate(points)
    if diagnostics is not None:
        diagnostics.update({"rule": rule.equation, "order": None, "exact": dict(rule.exact),
                            "notes": list(rule.notes)})
    return est
