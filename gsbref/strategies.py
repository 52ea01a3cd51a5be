"""Hypothesis strategies for property-based tests of gsbref and of code checked against it.

Three strategies, each built from declarations rather than from per-family code:

* :func:`distributions` -- distribution instances (``valid=True``), or :class:`InvalidParameters`
  (``valid=False``: keyword arguments that the constructor must refuse, with the exception type and
  the parameter its message must name), or both (``valid=None``).  Values come from each
  parameter's declared :class:`~gsbref.distributions.Parameter` (domain, typical range, log scale,
  event rank); :func:`constructors` lists what is drawn from (every class of
  :data:`gsbref.distributions.FAMILIES` and their alternate ``from_*`` constructors).
* :func:`functions` / :func:`formulas` -- test functions from the formula grammar of
  :mod:`gsbref.functions` by kind (``"polynomial"``, ``"exp-type"``, ``"smooth"``,
  ``"divergent-series"``, ``"kinked"``); given a distribution, the constants are bounded so that
  ``E[f]`` and its gradient are finite under it (support and moment-generating strip read from
  the family).
* :func:`cases` -- ``(distribution, f)`` pairs that the oracle integrates in a fraction of a
  second, with the oracle's exact gradient.

Importing :mod:`gsbref` does not import hypothesis; this module needs it (the ``test`` extra).

Generation rules
----------------
``"interval"`` parameters are drawn from the declared ``typical`` range, log-uniformly where
``log_scale``; with probability ``edges`` an entry is an *edge value* instead (:func:`edge_values`:
the ends of the typical range, closed ends of the domain, and one step beyond the typical range
toward an open end -- still inside the domain).  Two domain kinds need their own generation, chosen
by the declared :class:`~gsbref.distributions.Domain` ``kind``, never by family:

* ``"simplex"``: each row holds weights from the typical range (the declared range of the weights
  before normalising), divided by their sum; an edge row has one entry set to zero;
* ``"positive-definite"``: ``Q diag(lambda) Q^T`` with eigenvalues ``lambda`` drawn like an
  interval parameter from the typical range (declared as the eigenvalue range) and a rotation
  ``Q`` from the QR factorisation of a drawn matrix.

What the declarations do not say is kept in one table, :data:`LAYOUTS` (whether a family takes
batch axes, the least length of its event axis, the support of families without a ``support``
attribute), and, for alternate constructors, :data:`DERIVED_PARAMETERS` (``Gamma.from_rate``'s
``rate`` is declared nowhere; it is derived from the declaration of ``scale``).

Reproducibility: :func:`property_settings` returns hypothesis settings from a named profile:
``"ci"`` (derandomized, no example database: the same examples on every run) when the environment
variable ``CI`` is set or ``GSBREF_HYPOTHESIS_PROFILE=ci``; ``"dev"`` (random, with the database)
otherwise; ``"explore"`` (random, ten times the examples) on request.

>>> import numpy as np
>>> from hypothesis import given, settings
>>> @settings(max_examples=10, derandomize=True, database=None, deadline=None)
... @given(distributions(families=["Gamma", "Gamma.from_rate", "Beta"]))
... def check(dist):
...     z = dist.sample(0, 20)
...     assert np.isfinite(dist.log_prob(z)).all()
>>> check()
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without hypothesis
    raise ImportError(
        "gsbref.strategies needs the 'hypothesis' package; install it with the test extra: "
        "pip install 'gsbref[test]'"
    ) from exc

from . import distributions as _dists
from ._math import MP
from .distributions._base import Distribution, Domain, Factorized, Parameter
from .functions import Function, function

__all__ = [
    "DERIVED_PARAMETERS",
    "KINDS",
    "LAYOUTS",
    "ORACLE_LIMITS",
    "VIOLATIONS",
    "Constructor",
    "DrawnCase",
    "Formula",
    "InvalidParameters",
    "Layout",
    "ParameterSet",
    "cases",
    "constructors",
    "context",
    "distributions",
    "edge_values",
    "formulas",
    "functions",
    "parameter_sets",
    "property_settings",
    "violations",
]

#: the kinds of test function :func:`formulas` knows
KINDS = ("smooth", "kinked", "polynomial", "divergent-series", "exp-type")


# ----------------------------------------------------------------------------------------------
# what the declarations do not say
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Shape and support facts about a family that its :class:`Parameter` declarations lack.

    ``batch``: parameters may carry leading (batch) axes; ``min_size``: the least length of the
    axes an ``event_ndim >= 1`` parameter adds (``K >= 2`` categories or components);
    ``support``: ``(low, high)`` of one coordinate for a family without a ``support`` attribute
    (discrete families give theirs by ``values``).
    """

    batch: bool = True
    min_size: int = 1
    support: tuple[float, float] | None = None


#: per-family facts missing from the declarations (the defaults: ``Layout()``)
LAYOUTS: dict[str, Layout] = {
    # MultivariateGaussian.__init__ refuses batches of loc (one d-dimensional Gaussian)
    "MultivariateGaussian": Layout(batch=False, support=(-math.inf, math.inf)),
    # K >= 2 is checked in __init__, not declared
    "Dirichlet": Layout(min_size=2, support=(0.0, 1.0)),
    "Categorical": Layout(min_size=2),
    "CategoricalLogits": Layout(min_size=2),
}


def _reciprocal(p: Parameter, name: str) -> Parameter:
    lo, hi = p.typical
    return Parameter(name, p.domain, (1.0 / hi, 1.0 / lo), p.event_ndim, p.log_scale,
                     f"1 / {p.name} (derived from the declaration of {p.name!r})")


#: parameters of alternate constructors that no class declares: ``(class name, argument name)
#: -> (declared parameter it is derived from, derivation)``
DERIVED_PARAMETERS: dict[tuple[str, str], tuple[str, Callable[[Parameter, str], Parameter]]] = {
    ("Gamma", "rate"): ("scale", _reciprocal),
}


@dataclass(frozen=True)
class OracleLimit:
    """Where the oracle is cheap and reliable for a family it integrates by nested quadrature (used
    by :func:`cases`): event sizes up to ``max_size`` with pieces of f of the kinds ``pieces``, up
    to ``max_size_polynomial`` with polynomial pieces only."""

    max_size: int
    max_size_polynomial: int
    pieces: tuple[str, ...]


#: nested-quadrature families.  Costs measured on 2 shared cores at dps 12: Dirichlet K = 3 takes
#: 6 s, K = 2 0.05 s; MultivariateGaussian d = 2 with softplus 10 s, d = 1 0.06-1 s, polynomials at
#: d = 2 0.3 s.  Reliability: the MultivariateGaussian's Gauss-Hermite rule (at most 192 nodes)
#: raises QuadratureError for kinked f and for some smooth ones at dps 12 (tanh(-0.75 (z - 0.75))
#: under N(0, 1): last change 6e-20; a Gaussian bump of width 0.87 under N(0, 3): 7e-14), so it
#: gets polynomials and exp-type pieces only; the nested Dirichlet quadrature does not split at
#: kinks (Dirichlet([1, 2.43]), f = sum(relu(z - 0.3111)), dps 12: error estimates 1e-7, quad and
#: diff differ by 1.3e-7).
ORACLE_LIMITS: dict[str, OracleLimit] = {
    "MultivariateGaussian": OracleLimit(max_size=1, max_size_polynomial=2, pieces=("polynomial", "exp-type")),
    "Dirichlet": OracleLimit(max_size=2, max_size_polynomial=2,
                             pieces=("polynomial", "exp-type", "smooth", "divergent-series")),
}


# ----------------------------------------------------------------------------------------------
# constructors
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constructor:
    """One way to build a distribution: ``family(**kw)`` or ``family.method(**kw)``.

    ``parameters`` are the declarations of its keyword arguments; ``target`` the class built
    (``Bernoulli.from_logits`` builds a ``BernoulliLogits``)."""

    label: str
    family: type
    method: str | None
    parameters: tuple[Parameter, ...]
    target: type

    @property
    def layout(self) -> Layout:
        return LAYOUTS.get(self.target.__name__, Layout())

    @property
    def factorized(self) -> bool:
        return issubclass(self.target, Factorized)

    def __call__(self, **kwargs) -> Distribution:
        make = self.family if self.method is None else getattr(self.family, self.method)
        return make(**kwargs)

    def __repr__(self) -> str:
        return f"Constructor({self.label})"


def _alternates(cls: type) -> list[Constructor]:
    out = []
    for name, attr in vars(cls).items():
        if not (name.startswith("from_") and isinstance(attr, classmethod)):
            continue
        method = getattr(cls, name)
        params, target = [], cls
        for arg in inspect.signature(method).parameters:
            decl = {p.name: p for p in cls.parameters}
            sub = [c for c in _dists.FAMILIES.values() if issubclass(c, cls) and c is not cls
                   and arg in {p.name for p in c.parameters}]
            if arg in decl:
                params.append(decl[arg])
            elif sub:
                target = sub[0]
                params.append(next(p for p in target.parameters if p.name == arg))
            elif (cls.__name__, arg) in DERIVED_PARAMETERS:
                base, derive = DERIVED_PARAMETERS[(cls.__name__, arg)]
                params.append(derive(decl[base], arg))
            else:
                raise LookupError(
                    f"{cls.__name__}.{name}: argument {arg!r} is declared nowhere; declare it on a "
                    "class or add it to gsbref.strategies.DERIVED_PARAMETERS"
                )
        out.append(Constructor(f"{cls.__name__}.{name}", cls, name, tuple(params), target))
    return out


def _all_constructors() -> tuple[Constructor, ...]:
    out = []
    for name, cls in _dists.FAMILIES.items():
        out.append(Constructor(name, cls, None, tuple(cls.parameters), cls))
        out.extend(_alternates(cls))
    return tuple(out)


def constructors(families: Iterable[str | type] | None = None) -> tuple[Constructor, ...]:
    """The constructors :func:`distributions` draws from.

    ``families``: None (every class of ``FAMILIES`` and every ``from_*`` classmethod), or names
    (``"Gamma"``, ``"Gamma.from_rate"``) and classes (the class's own constructor).

    >>> [c.label for c in constructors(["Bernoulli", "Bernoulli.from_logits"])]
    ['Bernoulli', 'Bernoulli.from_logits']
    >>> [p.name for p in constructors(["Gamma.from_rate"])[0].parameters]
    ['shape', 'rate']
    """
    every = _all_constructors()
    if families is None:
        return every
    by_label = {c.label: c for c in every}
    out = []
    for fam in families:
        label = fam.__name__ if isinstance(fam, type) else fam
        if label not in by_label:
            raise ValueError(f"families: unknown family {label!r}; known: {sorted(by_label)}")
        out.append(by_label[label])
    if not out:
        raise ValueError("families must name at least one family")
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------------------------
def edge_values(p: Parameter) -> tuple[float, ...]:
    """Edge values of an ``"interval"`` parameter, all inside its domain: the ends of the typical
    range, the closed ends of the domain, and one step beyond the typical range toward each open
    end (to a tenth of the distance from a finite end, one typical width further toward an
    infinite one).

    >>> edge_values(_dists.Gamma.parameters[0])
    (0.2, 10.0, 0.02, 19.8)
    >>> edge_values(_dists.Bernoulli.parameters[0])
    (0.05, 0.95, 0.0, 1.0)
    """
    dom, (lo, hi) = p.domain, p.typical
    width = hi - lo
    vals = [lo, hi]
    for end, closed, typ, step in ((dom.low, dom.low_closed, lo, -1.0), (dom.high, dom.high_closed, hi, 1.0)):
        if math.isfinite(end) and closed:
            vals.append(end)
        elif math.isfinite(end):  # a tenth of the distance (a decade, for a log-scale parameter)
            vals.append(end + (typ - end) / 10)
        else:
            vals.append(typ + step * width)
    out = []
    for v in vals:
        v = float(v)
        if bool(dom.contains(np.array(v))) and v not in out:
            out.append(v)
    return tuple(out)


def _coin(draw, probability: float) -> bool:
    """True with the given probability; shrinks toward False."""
    if probability <= 0:
        return False
    return draw(st.integers(0, 999)) >= 1000 - round(1000 * probability)


def _typical(p: Parameter) -> st.SearchStrategy[float]:
    lo, hi = p.typical
    if p.log_scale:
        return st.floats(math.log(lo), math.log(hi)).map(lambda u: min(max(math.exp(u), lo), hi))
    return st.floats(lo, hi)


def _entries(draw, p: Parameter, n: int, edges: float) -> np.ndarray:
    """``n`` values of an interval parameter (typical, or with probability ``edges`` an edge)."""
    out = np.empty(n)
    for i in range(n):
        if _coin(draw, edges):
            out[i] = draw(st.sampled_from(edge_values(p)))
        else:
            out[i] = draw(_typical(p))
    return out


def _simplex_rows(draw, p: Parameter, shape: tuple[int, ...], edges: float) -> np.ndarray:
    K = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=int))
    weight = Parameter(p.name, Domain(low=0.0), p.typical, log_scale=p.log_scale)
    out = np.empty((rows, K))
    for r in range(rows):
        w = _entries(draw, weight, K, 0.0)
        if K >= 2 and _coin(draw, edges):
            w[draw(st.integers(0, K - 1))] = 0.0
        out[r] = w / w.sum()
    return out.reshape(shape)


def _spd(draw, p: Parameter, n: int, edges: float) -> np.ndarray:
    eig = _entries(draw, Parameter(p.name, Domain(low=0.0), p.typical, log_scale=p.log_scale), n, 0.0)
    if _coin(draw, edges):
        eig[draw(st.integers(0, n - 1))] = draw(st.sampled_from(edge_values(
            Parameter(p.name, Domain(low=0.0), p.typical, log_scale=p.log_scale))))
    b = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=n * n, max_size=n * n))).reshape(n, n)
    q, _ = np.linalg.qr(np.eye(n) + b)
    c = (q * eig) @ q.T
    return 0.5 * (c + c.T)


def _values(draw, p: Parameter, shape: tuple[int, ...], edges: float) -> np.ndarray:
    kind = p.domain.kind
    if kind == "simplex":
        return _simplex_rows(draw, p, shape, edges)
    if kind == "positive-definite":
        if len(shape) != 2:
            raise NotImplementedError(f"batched {kind} parameters ({p.name!r}, shape {shape})")
        return _spd(draw, p, shape[-1], edges)
    if kind != "interval":
        raise NotImplementedError(f"parameter {p.name!r}: no generator for domain kind {kind!r}")
    return _entries(draw, p, int(np.prod(shape, dtype=int)), edges).reshape(shape)


def _sizes_strategy(x, what: str) -> st.SearchStrategy:
    """A strategy of ints from a strategy, an int, or a sequence of ints."""
    if isinstance(x, st.SearchStrategy):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return st.just(int(x))
    items = list(x) if isinstance(x, (list, tuple, range)) else None
    if not items or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{what} must be a strategy, an int or a non-empty sequence of ints, got {x!r}")
    return st.sampled_from([int(v) for v in items])


def _shapes_strategy(x, what: str) -> st.SearchStrategy:
    """A strategy of shapes from a strategy, one shape (a tuple of ints) or a sequence of shapes."""
    if isinstance(x, st.SearchStrategy):
        return x
    if isinstance(x, tuple) and all(isinstance(v, (int, np.integer)) for v in x):
        return st.just(tuple(int(v) for v in x))
    items = list(x) if isinstance(x, (list, tuple)) else None
    if not items or not all(isinstance(s, tuple) and all(isinstance(v, (int, np.integer)) for v in s)
                            for s in items):
        raise TypeError(f"{what} must be a strategy, a shape or a non-empty sequence of shapes, got {x!r}")
    return st.sampled_from([tuple(int(v) for v in s) for s in items])


DEFAULT_EVENT_SHAPES = ((), (1,), (2,), (3,), (2, 2))
DEFAULT_SIZES = (1, 2, 3)


def _reduced_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Shapes that broadcast to ``shape`` (the full one first)."""
    out = [shape, ()]
    if shape:
        out.append((1,) * len(shape))
        out.append(shape[1:])
    seen = []
    for s in out:
        if s not in seen:
            seen.append(s)
    return seen


def _shapes(draw, con: Constructor, event_shapes, sizes) -> dict[str, tuple[int, ...]]:
    layout = con.layout
    batch = tuple(draw(event_shapes)) if layout.batch else ()
    n = max(int(draw(sizes)), layout.min_size)
    shapes = {}
    for p in con.parameters:
        core = (n,) * p.event_ndim
        if con.factorized and p.event_ndim == 0 and len(con.parameters) > 1:
            shapes[p.name] = draw(st.sampled_from(_reduced_shapes(batch)))
        else:
            shapes[p.name] = batch + core
    if con.factorized and shapes and not any(s == batch for s in shapes.values()):
        shapes[con.parameters[0].name] = batch
    return shapes


# ----------------------------------------------------------------------------------------------
# parameter sets
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterSet:
    """Keyword arguments for a constructor; :meth:`build` calls it."""

    constructor: Constructor
    kwargs: dict = field(repr=False)

    def build(self) -> Distribution:
        return self.constructor(**self.kwargs)

    def _kw(self) -> str:
        def show(v):
            if isinstance(v, np.ndarray):
                return np.array2string(v, separator=", ", precision=17, threshold=50)
            return repr(v)

        return ", ".join(f"{k}={show(v)}" for k, v in self.kwargs.items())

    def __repr__(self) -> str:
        return f"{self.constructor.label}({self._kw()})"


@dataclass(frozen=True, repr=False)
class InvalidParameters(ParameterSet):
    """Keyword arguments the constructor must refuse: :meth:`build` raises ``exception`` (a
    ``ValueError`` or ``TypeError``) whose message names ``parameter`` (quoted: ``match`` is the
    pattern for ``pytest.raises``); ``reason`` says what is wrong, ``violation`` is its key in
    :data:`VIOLATIONS`."""

    parameter: str = ""
    exception: type = ValueError
    reason: str = ""
    violation: str = ""

    @property
    def match(self) -> str:
        return f"'{self.parameter}'"

    def __repr__(self) -> str:
        return (f"InvalidParameters({self.constructor.label}({self._kw()}): {self.reason}; expects "
                f"{self.exception.__name__} naming {self.parameter!r})")


def _valid_kwargs(draw, con, event_shapes, sizes, edges) -> dict[str, np.ndarray]:
    shapes = _shapes(draw, con, event_shapes, sizes)
    return {p.name: _values(draw, p, shapes[p.name], edges) for p in con.parameters}


def _index(draw, shape) -> tuple[int, ...]:
    return tuple(draw(st.integers(0, s - 1)) for s in shape)


def violations(con: Constructor, p: Parameter | None = None, size: int = 2) -> tuple[str, ...]:
    """The keys of :data:`VIOLATIONS` that apply to parameter ``p`` of ``con`` (all parameters
    when None) at event-axis length ``size`` (asymmetry needs a matrix of size >= 2).

    >>> violations(constructors(["Gamma"])[0])
    ('nan', 'type', '+inf', '-inf', 'below', 'broadcast')
    """
    if p is None:
        out = []
        for q in con.parameters:
            out += [v for v in violations(con, q, size) if v not in out]
        return tuple(out)
    dom = p.domain
    out = ["nan", "type"]
    if dom.kind == "interval":
        if not (dom.high == math.inf and dom.high_closed):
            out.append("+inf")
        if not (dom.low == -math.inf and dom.low_closed):
            out.append("-inf")
        if math.isfinite(dom.low):
            out.append("below")
        if math.isfinite(dom.high):
            out.append("above")
    else:
        out.append("+inf")
    if dom.kind == "simplex":
        out += ["negative", "sum"]
    if dom.kind == "positive-definite":
        out += ["indefinite"] + (["asymmetric"] if size >= 2 else [])
    if p.event_ndim >= 1:
        out += ["too-few-dims", "empty"]
        if con.layout.min_size >= 2:
            out.append("too-small")
        if not con.layout.batch:
            out.append("batch")
        if len(con.parameters) >= 2 and not con.factorized:
            out.append("size-mismatch")
    if con.factorized and len(con.parameters) >= 2:
        out.append("broadcast")
    return tuple(out)


def _corruptions(con: Constructor, p: Parameter, kw: dict) -> tuple[str, ...]:
    v = np.asarray(kw[p.name])
    return violations(con, p, v.shape[-1] if v.ndim else 1)


def _corrupt(draw, con: Constructor, p: Parameter, kw: dict, how: str) -> tuple[dict, type]:
    kw = {k: np.array(v, dtype=float) for k, v in kw.items()}
    v = kw[p.name]
    dom = p.domain
    if how in ("nan", "+inf", "-inf", "below", "above", "negative"):
        v = v.copy()
        idx = _index(draw, v.shape)
        if how == "nan":
            v[idx] = math.nan
        elif how == "+inf":
            v[idx] = math.inf
        elif how == "-inf":
            v[idx] = -math.inf
        elif how in ("below", "above"):
            lo, hi = p.typical
            width = max(hi - lo, 1.0)
            if how == "below":
                x = draw(st.floats(dom.low - width, dom.low))
                v[idx] = x if x < dom.low or not dom.low_closed else dom.low - width
            else:
                x = draw(st.floats(dom.high, dom.high + width))
                v[idx] = x if x > dom.high or not dom.high_closed else dom.high + width
        else:  # negative simplex entry
            v[idx] = -draw(st.floats(1e-3, 1.0))
        kw[p.name] = v
        return kw, ValueError
    if how == "type":
        kw[p.name] = draw(st.sampled_from(["a string", 1.0 + 1.0j, None]))
        if isinstance(kw[p.name], complex) and v.ndim:
            kw[p.name] = v.astype(complex) + 1j
        return kw, TypeError
    if how == "sum":  # a simplex row scaled: sums off 1 by far more than the sqrt(eps) tolerance
        factor = draw(st.sampled_from([0.5, 0.9, 1.1, 2.0]))
        kw[p.name] = v * factor
        return kw, ValueError
    if how == "indefinite":
        w, q = np.linalg.eigh(v)
        w[draw(st.integers(0, len(w) - 1))] *= -1.0
        c = (q * w) @ q.T
        kw[p.name] = 0.5 * (c + c.T)
        return kw, ValueError
    if how == "asymmetric":
        c = v.copy()
        c[0, -1] += draw(st.floats(0.1, 1.0)) * max(1.0, float(np.abs(v).max()))
        kw[p.name] = c
        return kw, ValueError
    if how == "too-few-dims":
        kw[p.name] = v.reshape(-1)[0] if p.event_ndim == 1 else v.reshape(-1)
        return kw, ValueError
    if how == "empty":
        kw[p.name] = np.zeros(v.shape[:-1] + (0,))
        return kw, ValueError
    if how == "too-small":
        # every parameter with event axes down to one entry (K = 1)
        for q in con.parameters:
            if q.event_ndim >= 1:
                x = kw[q.name]
                kw[q.name] = x[(Ellipsis,) + (slice(0, 1),) * q.event_ndim]
                if q.domain.kind == "simplex":
                    kw[q.name] = np.ones_like(kw[q.name])
        return kw, ValueError
    if how == "batch":
        kw[p.name] = v[None]
        return kw, ValueError
    if how == "size-mismatch":
        # this parameter one entry longer along its event axes, valid in itself
        n = v.shape[-1] + 1
        kw[p.name] = _values(draw, p, v.shape[: v.ndim - p.event_ndim] + (n,) * p.event_ndim, 0.0)
        return kw, ValueError
    if how == "broadcast":
        others = [q for q in con.parameters if q is not p]
        q = draw(st.sampled_from(others))
        kw[p.name] = _values(draw, p, (2,), 0.0)
        kw[q.name] = _values(draw, q, (3,), 0.0)
        return kw, ValueError
    raise AssertionError(how)  # pragma: no cover


@st.composite
def _parameter_set(draw, cons, valid, event_shapes, sizes, edges):
    con = draw(st.sampled_from(cons))
    if valid is None:
        valid = draw(st.booleans())
    kw = _valid_kwargs(draw, con, event_shapes, sizes, edges if valid else 0.0)
    if valid:
        return ParameterSet(con, kw)
    p = draw(st.sampled_from(con.parameters))
    how = draw(st.sampled_from(_corruptions(con, p, kw)))
    bad, exc = _corrupt(draw, con, p, kw, how)
    return InvalidParameters(con, bad, parameter=p.name, exception=exc, reason=VIOLATIONS[how].format(p=p),
                             violation=how)


#: the ways a parameter set is made invalid (key: description)
VIOLATIONS = {
    "nan": "a NaN entry in {p.name!r}",
    "+inf": "+inf in {p.name!r}",
    "-inf": "-inf in {p.name!r}",
    "below": "an entry of {p.name!r} below its domain",
    "above": "an entry of {p.name!r} above its domain",
    "negative": "a negative entry in the simplex {p.name!r}",
    "type": "{p.name!r} of a non-real type",
    "sum": "rows of {p.name!r} that do not sum to 1",
    "indefinite": "{p.name!r} not positive definite",
    "asymmetric": "{p.name!r} not symmetric",
    "too-few-dims": "{p.name!r} with fewer dimensions than its event rank",
    "empty": "{p.name!r} with an empty event axis",
    "too-small": "{p.name!r} with fewer entries along its event axis than the family needs",
    "batch": "{p.name!r} with batch axes the family does not support",
    "size-mismatch": "{p.name!r} of a size that does not match the other parameters",
    "broadcast": "{p.name!r} of a shape that does not broadcast with the other parameters",
}


def parameter_sets(families=None, valid: bool | None = True, event_shapes=DEFAULT_EVENT_SHAPES,
                   sizes=DEFAULT_SIZES, edges: float = 0.1) -> st.SearchStrategy:
    """:class:`ParameterSet` (``valid=True``), :class:`InvalidParameters` (``valid=False``) or
    either (``valid=None``) for the constructors of ``families`` (see :func:`constructors`).

    ``event_shapes``: the shapes of the elementwise (batch) axes -- the event shape of a
    factorized family, the leading axes of Dirichlet concentrations and Categorical
    probabilities, unused for families without batches; ``sizes``: the length of the axes of
    vector and matrix parameters (raised to the family's minimum, :data:`LAYOUTS`); each a
    strategy, a value or a list of values.  ``edges``: probability that an entry is an edge value.
    """
    if valid not in (True, False, None):
        raise TypeError(f"valid must be True, False or None, got {valid!r}")
    if not 0.0 <= edges <= 1.0:
        raise ValueError(f"edges must be a probability in [0, 1], got {edges!r}")
    cons = constructors(families)
    return _parameter_set(cons, valid, _shapes_strategy(event_shapes, "event_shapes"),
                          _sizes_strategy(sizes, "sizes"), edges)


def distributions(families=None, valid: bool | None = True, event_shapes=DEFAULT_EVENT_SHAPES,
                  sizes=DEFAULT_SIZES, edges: float = 0.1) -> st.SearchStrategy:
    """Distribution instances (``valid=True``), :class:`InvalidParameters` (``valid=False``), or
    a mix of both (``valid=None``); arguments as for :func:`parameter_sets`.

    A valid draw is built on the spot, so a constructor that refuses declared-valid parameters
    fails the test that draws it.

    >>> from hypothesis import find, settings
    >>> d = find(distributions(families=["Dirichlet"], sizes=3, event_shapes=[()]),
    ...          lambda d: d.event_shape == (3,), settings=settings(database=None, derandomize=True))
    >>> d.event_shape
    (3,)
    >>> bad = find(distributions(families=["Gaussian"], valid=False), lambda b: b.reason.startswith("a NaN"),
    ...            settings=settings(database=None, derandomize=True))
    >>> bad.exception.__name__, bad.parameter in ("loc", "scale")
    ('ValueError', True)
    """
    sets = parameter_sets(families, valid, event_shapes, sizes, edges)
    return sets.map(lambda s: s if isinstance(s, InvalidParameters) else s.build())


# ----------------------------------------------------------------------------------------------
# test functions
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Formula:
    """A drawn formula: ``expr`` with keyword ``constants``; ``kinds`` the kinds of its pieces;
    ``separable`` whether it was built as ``a + b sum_j g_j(z_j)`` or ``prod_j g_j(z_j)``."""

    expr: str
    constants: dict = field(default_factory=dict)
    kinds: tuple[str, ...] = ()
    separable: bool = True

    def build(self) -> Function:
        return function(self.expr, **self.constants)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={np.asarray(v).tolist()!r}" for k, v in self.constants.items())
        return f"Formula({self.expr!r}{extra}, kinds={self.kinds})"


@dataclass(frozen=True)
class _Context:
    """What the constants of a formula must respect: the support of one coordinate, the strip
    where ``E[exp(c z)]`` is finite, a location and spread, and points where a kink would make
    the gradient undefined (point masses)."""

    dim: int
    support: tuple[float, float] = (-math.inf, math.inf)
    strip: tuple[float, float] = (-math.inf, math.inf)
    center: float = 0.0
    spread: float = 1.0
    atoms: tuple[float, ...] = ()

    @property
    def positive(self) -> bool:
        return self.support[0] >= 0.0

    @property
    def length(self) -> float:
        """The length scale of the features of f (widths of bumps and transitions): the spread,
        at least 1/4 (1 for a point mass)."""
        return max(self.spread, 0.25) if self.spread > 0 else 1.0


def _support(dist: Distribution) -> tuple[float, float]:
    if dist.discrete:
        v = dist.values
        return (float(min(v)), float(max(v)))
    if isinstance(dist, Factorized):
        return tuple(float(x) for x in type(dist).support)
    layout = LAYOUTS.get(type(dist).__name__)
    if layout is None or layout.support is None:
        raise LookupError(f"{type(dist).__name__}: no support declared; add it to gsbref.strategies.LAYOUTS")
    return layout.support


def _strip(dist: Distribution) -> tuple[float, float]:
    """Intersection over coordinates of the declared ``_mgf_strip`` (entire when undeclared:
    Gaussian, bounded or discrete supports)."""
    cls = type(dist)
    if not (isinstance(dist, Factorized) and hasattr(cls, "_mgf_strip")):
        return (-math.inf, math.inf)
    lo, hi = -math.inf, math.inf
    for j in range(dist.event_size):
        a, b = cls._mgf_strip(MP, **dist.coordinate(j))
        lo, hi = max(lo, float(a)), min(hi, float(b))
    return (lo, hi)


def context(dist: Distribution) -> _Context:
    """The constraints :func:`formulas` reads from a distribution."""
    mean = np.asarray(dist.mean(), dtype=float).reshape(-1)
    var = np.asarray(dist.variance(), dtype=float).reshape(-1)
    atoms = ()
    if not dist.discrete and not np.any(var > 0):  # a point mass: f is differentiated there
        atoms = tuple(float(x) for x in mean)
    return _Context(dim=dist.event_size, support=_support(dist), strip=_strip(dist),
                    center=float(mean.mean()), spread=float(np.sqrt(var.max())) if var.size else 0.0,
                    atoms=atoms)


def _num(x: float) -> str:
    s = f"{x:.6g}"
    return s


def _grid(draw, lo: float, hi: float, steps: int = 16, nonzero: bool = False) -> float:
    """A value on a grid of ``steps`` intervals over ``[lo, hi]``, rounded to 4 significant digits
    (short formulas); shrinks toward ``lo``."""
    vals = sorted({float(f"{lo + (hi - lo) * k / steps:.4g}") for k in range(steps + 1)})
    vals = [v for v in vals if lo <= v <= hi and not (nonzero and v == 0.0)]
    if not vals:
        raise ValueError(f"empty grid on [{lo}, {hi}]")
    return draw(st.sampled_from(vals))


class _Builder:
    """Draws the constants of one formula inside a :class:`_Context`."""

    def __init__(self, draw, ctx: _Context, x: str = "z", vector_constants: bool = False):
        self.draw, self.ctx, self.x = draw, ctx, x
        self.constants: dict[str, np.ndarray] = {}
        self.vector_constants = vector_constants and ctx.dim >= 2

    # -- constants --------------------------------------------------------------------------
    def slope(self) -> str:
        """A coefficient in [-2, 2] (polynomials, combinations)."""
        return _num(_grid(self.draw, -2.0, 2.0, 16, nonzero=True))

    def rate(self) -> str:
        """The inverse width of a transition (softplus, sigmoid, ...): ``|a| length`` in [0.25, 2]."""
        return _num(_grid(self.draw, -2.0, 2.0, 16, nonzero=True) / self.ctx.length)

    def _location(self) -> float:
        c = self.ctx
        lo, hi = c.support
        s = c.spread if c.spread > 0 else 1.0
        a, b = max(lo, c.center - s), min(hi, c.center + s)
        if not a < b:
            a, b = c.center - s, c.center + s
        v = _grid(self.draw, a, b, 16)
        if any(abs(v - t) < 0.1 for t in c.atoms):  # no kink on a point mass
            v = max(c.atoms) + 0.5
        return v

    def location(self) -> str:
        """A point in the bulk of the distribution (kinks, bumps, polynomial centres): a literal
        or a per-coordinate keyword vector."""
        if self.vector_constants and self.draw(st.booleans()):
            name = f"b{len(self.constants)}"
            self.constants[name] = np.array([self._location() for _ in range(self.ctx.dim)])
            return name
        return _num(self._location())

    def offset(self) -> str:
        return _num(_grid(self.draw, -1.0, 1.0, 8))

    def exponent(self) -> str:
        """``c`` with ``E[exp(c z)]`` finite with room to spare: half the declared strip, and
        ``|c| spread <= 1`` so the values stay moderate."""
        c = self.ctx
        bound = 1.0 / max(c.spread, 0.5)
        lo, hi = max(-bound, c.strip[0] / 2), min(bound, c.strip[1] / 2)
        return _num(_grid(self.draw, lo, hi, 16, nonzero=True))

    def frequency(self) -> str:
        bound = 3.0 / max(self.ctx.spread, 1.0)
        return _num(_grid(self.draw, -bound, bound, 12, nonzero=True))

    def width(self) -> str:
        """The width of a bump or of a smoothed kink: ``length`` times [0.5, 2]."""
        return _num(self.ctx.length * _grid(self.draw, 0.5, 2.0, 6))

    def positive_shift(self) -> str:
        """``a`` in ``log(a + z)``, ``1/(a + z)``: the singularity at ``-a`` one length or so
        outside a support that starts at 0."""
        return _num(self.ctx.length * _grid(self.draw, 0.5, 2.0, 6))

    def affine(self) -> str:
        """``a (x - b)``: a transition of width ``1/|a|`` (of the order of the spread) at a point
        ``b`` of the bulk."""
        return f"{self.rate()}*{_sub(self.x, self.location())}"


def _plus(a: str, b: str) -> str:
    """``a + b`` written with the sign of the literal or name ``b``."""
    return f"{a} - {b[1:]}" if b.startswith("-") else f"{a} + {b}"


def _sub(x: str, b: str) -> str:
    """``(x - b)`` written with the sign of ``b``."""
    return f"({x} + {b[1:]})" if b.startswith("-") else f"({x} - {b})"


# Elementwise templates: (name, kinds, needs a non-negative support, builder(B) -> expression in
# B.x).  Together they use every elementwise primitive of the grammar (gsbref.functions._expr).
_TEMPLATES: tuple[tuple[str, frozenset, bool, Callable[[_Builder], str]], ...] = (
    ("power", frozenset({"polynomial", "smooth"}), False,
     lambda B: f"{_sub(B.x, B.location())}**{B.draw(st.sampled_from([1, 2, 3]))}"),
    ("quadratic", frozenset({"polynomial", "smooth"}), False,
     lambda B: _plus(f"{B.slope()}*{B.x}**2", f"{B.slope()}*{B.x}")),
    ("exp", frozenset({"exp-type", "smooth"}), False, lambda B: f"exp({B.exponent()}*{B.x})"),
    ("expm1", frozenset({"exp-type", "smooth"}), False, lambda B: f"expm1({B.exponent()}*{B.x})"),
    ("sin", frozenset({"exp-type", "smooth"}), False,
     lambda B: f"sin({_plus(f'{B.frequency()}*{B.x}', B.offset())})"),
    ("cos", frozenset({"exp-type", "smooth"}), False,
     lambda B: f"cos({_plus(f'{B.frequency()}*{B.x}', B.offset())})"),
    ("poly-exp", frozenset({"exp-type", "smooth"}), False,
     lambda B: f"{_sub(B.x, B.location())}*exp({B.exponent()}*{B.x})"),
    ("softplus", frozenset({"smooth", "divergent-series"}), False, lambda B: f"softplus({B.affine()})"),
    ("log_sigmoid", frozenset({"smooth", "divergent-series"}), False, lambda B: f"log_sigmoid({B.affine()})"),
    ("sigmoid", frozenset({"smooth", "divergent-series"}), False, lambda B: f"sigmoid({B.affine()})"),
    ("tanh", frozenset({"smooth", "divergent-series"}), False, lambda B: f"tanh({B.affine()})"),
    ("sqrt", frozenset({"smooth", "divergent-series"}), False,
     lambda B: f"sqrt(1 + ({_sub(B.x, B.location())}/{B.width()})**2)"),
    ("log1p", frozenset({"smooth", "divergent-series"}), False,
     lambda B: f"log1p(({_sub(B.x, B.location())}/{B.width()})**2)"),
    ("bump", frozenset({"smooth", "divergent-series"}), False,
     lambda B: f"exp(-({_sub(B.x, B.location())}/{B.width()})**2)"),
    ("cauchy", frozenset({"smooth", "divergent-series"}), False,
     lambda B: f"1/(1 + ({_sub(B.x, B.location())}/{B.width()})**2)"),
    ("log", frozenset({"smooth", "divergent-series"}), True, lambda B: f"log({B.positive_shift()} + {B.x})"),
    ("inverse", frozenset({"smooth", "divergent-series"}), True, lambda B: f"1/({B.positive_shift()} + {B.x})"),
    ("abs", frozenset({"kinked"}), False, lambda B: f"abs{_sub(B.x, B.location())}"),
    ("relu", frozenset({"kinked"}), False, lambda B: f"relu{_sub(B.x, B.location())}"),
    ("relu-left", frozenset({"kinked"}), False,
     lambda B: f"relu({B.location()} - {B.x})"),
)


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"kinds must be a non-empty selection of {KINDS}, got {kinds!r}")
    return kinds


def _pool(kinds, ctx: _Context, affine_argument: bool, pieces=None):
    """Templates of the requested ``kinds`` usable in ``ctx``; ``pieces``: only templates that
    carry one of these kinds (the oracle's limits, :data:`ORACLE_LIMITS`)."""
    out = [t for t in _TEMPLATES if t[1] & set(kinds) and (ctx.positive or not t[2])
           and (pieces is None or t[1] & set(pieces))]
    if affine_argument:  # W @ z + c is not confined to the support: no log / inverse there
        out = [t for t in out if not t[2]]
    return out


def _template(draw, B: _Builder, pool) -> tuple[str, frozenset]:
    _, kinds, _, build = draw(st.sampled_from(pool))
    return build(B), kinds & set(KINDS)


@st.composite
def _formula(draw, kinds, dims, ctx_for, separable, pieces=None):
    ctx = ctx_for(draw(dims))
    kinds = _check_kinds(kinds)
    allow_nonsep = separable is not True and ctx.dim >= 2
    nonsep = allow_nonsep and (separable is False or draw(st.booleans()))
    if nonsep:
        h = draw(st.integers(1, 3))
        W = np.array(draw(st.lists(_grid_strategy(-1.0, 1.0, 8), min_size=h * ctx.dim,
                                   max_size=h * ctx.dim))).reshape(h, ctx.dim)
        if not W.any():
            W[0, 0] = 1.0
        c = np.array(draw(st.lists(_grid_strategy(-1.0, 1.0, 8), min_size=h, max_size=h)))
        # W @ z has spread up to sum |W| times that of z: widen the context accordingly
        atoms = tuple(float(a) for a in W @ np.array(ctx.atoms) + c) if ctx.atoms else ()
        inner = _Context(dim=h, support=(-math.inf, math.inf),
                         strip=_scaled_strip(ctx.strip, W), center=0.0,
                         spread=ctx.spread * float(np.abs(W).sum(axis=1).max()), atoms=atoms)
        B = _Builder(draw, inner, x="(W @ z + c)")
        pool = _pool(kinds, inner, affine_argument=True, pieces=pieces)
        g, tags = _template(draw, B, pool)
        expr = draw(st.sampled_from([f"sum({g})", f"mean({g})"]))
        return Formula(expr, {"W": W, "c": c}, tuple(sorted(tags)), separable=False)
    B = _Builder(draw, ctx, vector_constants=True)
    pool = _pool(kinds, ctx, affine_argument=False, pieces=pieces)
    g, tags = _template(draw, B, pool)
    form = draw(st.sampled_from(["sum", "mean", "prod", "affine", "two"]))
    if form in ("sum", "mean", "prod"):
        expr = f"{form}({g})"
    elif form == "affine":
        expr = _plus(_num(_grid(draw, -2.0, 2.0, 8)), f"{B.slope()}*sum({g})")
    else:
        g2, tags2 = _template(draw, B, pool)
        tags = tags | tags2
        expr = _plus(f"sum({g})", f"{B.slope()}*sum({g2})")
    return Formula(expr, dict(B.constants), tuple(sorted(tags)), separable=True)


def _grid_strategy(lo, hi, steps):
    return st.sampled_from(sorted({float(f"{lo + (hi - lo) * k / steps:.4g}") for k in range(steps + 1)}))


def _scaled_strip(strip, W):
    """Strip for ``c`` in ``exp(c (W z + c0)_h)``: ``c W[h, j]`` must lie in the strip of every
    coordinate ``j``."""
    lo, hi = strip
    m = float(np.abs(W).max())
    if m == 0:
        return (-math.inf, math.inf)
    bound = min(-lo, hi) / m  # W has entries of both signs in general
    return (-bound, bound)


def formulas(kinds=KINDS, dim=None, *, dist: Distribution | None = None,
             separable: bool | None = None, pieces: tuple[str, ...] | None = None) -> st.SearchStrategy:
    """:class:`Formula` objects from the grammar of :mod:`gsbref.functions` (see :func:`functions`);
    ``pieces``: use only elementwise pieces that are also of one of these kinds."""
    kinds = _check_kinds(kinds)
    if pieces is not None:
        pieces = _check_kinds(pieces)
    if dist is not None:
        if dim is not None and dim != dist.event_size:
            raise ValueError(f"dim={dim!r} contradicts the distribution's event size {dist.event_size}")
        ctx = context(dist)
        if not _pool(kinds, ctx, False, pieces):
            raise ValueError(f"formulas: no piece of kinds {kinds} (and {pieces}) suits {dist!r}")
        return _formula(kinds, st.just(ctx.dim), lambda d: ctx, separable, pieces)
    dims = _sizes_strategy(st.integers(1, 3) if dim is None else dim, "dim")
    if not _pool(kinds, _Context(dim=1), False, pieces):
        raise ValueError(f"formulas: no piece is of kinds {kinds} and {pieces}")
    return _formula(kinds, dims, lambda d: _Context(dim=int(d)), separable, pieces)


def functions(kinds=KINDS, dim=None, *, dist: Distribution | None = None,
              separable: bool | None = None) -> st.SearchStrategy:
    """Test functions (:class:`gsbref.Function`) of ``z`` with ``dim`` coordinates.

    ``kinds`` selects elementwise pieces: ``"polynomial"``, ``"exp-type"`` (exp, expm1, sin, cos,
    polynomial times exp: the paper's series converge for small constants), ``"smooth"`` (every
    analytic piece), ``"divergent-series"`` (analytic pieces of which the series of eqs. 18-19
    diverge for every scale: softplus, log-sigmoid, sigmoid, tanh, ``sqrt(1 + x^2)``,
    ``log1p(x^2)``, Gaussian and Cauchy bumps, ``log(a + z)`` and ``1/(a + z)`` on non-negative
    supports), ``"kinked"`` (abs, relu).  Pieces are combined as ``sum``, ``mean``, ``prod``,
    ``a + b sum`` or a sum of two pieces (separable), or -- unless ``separable=True`` -- applied
    to ``W @ z + c`` (not separable).

    ``dist``: bound the constants for this distribution (``dim`` is then its event size):
    ``log`` and ``1/(a + z)`` only on non-negative supports, exponents inside half the declared
    moment-generating strip and ``|c| sd <= 1``, kinks and bumps in the bulk, never on a point
    mass.  Without ``dist`` the constants suit a unit-scale distribution on the real line.

    >>> from hypothesis import find, settings
    >>> import gsbref
    >>> dist = gsbref.Gamma(shape=2.0, scale=4.0)
    >>> f = find(functions("exp-type", dist=dist), lambda f: "exp(" in f.expr and "-" not in f.expr,
    ...          settings=settings(database=None, derandomize=True))
    >>> c = float(f.expr.split("exp(")[1].split("*")[0])
    >>> 0 < c <= 1 / (2 * 4.0)        # inside half the strip Re(c) < 1/scale
    True
    """
    return formulas(kinds, dim, dist=dist, separable=separable).map(Formula.build)


# ----------------------------------------------------------------------------------------------
# cases with the oracle's truth
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DrawnCase:
    """A drawn ``(dist, f)`` with the oracle's gradient: ``exact`` (an
    :class:`~gsbref.oracle.OracleGradient` at ``dps`` digits) and ``truth`` (its float64 view,
    ``{name: float or array}``); both None when drawn ``with_truth=False``."""

    dist: Distribution
    formula: Formula
    f: Function
    exact: Any = None
    truth: dict | None = None
    dps: int | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.formula.kinds

    def __repr__(self) -> str:
        t = "" if self.truth is None else f", truth={ {k: np.asarray(v).tolist() for k, v in self.truth.items()} }"
        return f"DrawnCase({self.dist!r}, {self.formula!r}{t})"


DEFAULT_CASE_SHAPES = ((), (1,), (2,), (3,))


def _case_pieces(con: Constructor, kinds: tuple[str, ...], size: int) -> tuple[str, ...] | None:
    """The kinds of pieces of f the oracle handles cheaply under ``con`` at event size ``size``
    (None: no limit); empty when none of them is among ``kinds``."""
    limit = ORACLE_LIMITS.get(con.target.__name__)
    if limit is None:
        return None
    if size <= limit.max_size:
        pieces = limit.pieces
    elif size <= limit.max_size_polynomial:
        pieces = ("polynomial",)
    else:
        return ()
    ok = [t for t in _TEMPLATES if t[1] & set(kinds) and t[1] & set(pieces)]
    return pieces if ok else ()


def _case_sizes(con: Constructor, kinds) -> list[int]:
    """Event sizes at which ``con`` has cheap cases of ``kinds`` (nested-quadrature families)."""
    limit = ORACLE_LIMITS[con.target.__name__]
    top = max(limit.max_size, limit.max_size_polynomial)
    return [n for n in range(con.layout.min_size, top + 1) if _case_pieces(con, kinds, n)]


@st.composite
def _case(draw, cons, kinds, with_truth, dps, event_shapes, sizes, edges):
    con = draw(st.sampled_from(cons))
    pieces = None
    if con.target.__name__ in ORACLE_LIMITS:  # one distribution of a small event size
        ok = _case_sizes(con, kinds)
        size = max(int(draw(sizes)), con.layout.min_size)
        if size not in ok:
            size = draw(st.sampled_from(ok))
        pieces = _case_pieces(con, kinds, size)
        kw = _valid_kwargs(draw, con, st.just(()), st.just(size), edges)
    else:
        kw = _valid_kwargs(draw, con, event_shapes, sizes, edges)
    dist = ParameterSet(con, kw).build()
    cheap_any_f = dist.discrete or type(dist).__name__ == "Dirac"
    formula = draw(formulas(kinds, dist=dist, separable=None if cheap_any_f else True, pieces=pieces))
    f = formula.build()
    if not with_truth:
        return DrawnCase(dist, formula, f)
    from . import oracle

    exact = oracle.gradient(dist, f, dps=dps)
    return DrawnCase(dist, formula, f, exact, exact.to_float(), dps)


def cases(families=None, kinds=KINDS, with_truth: bool = True, dps: int | None = 12,
          event_shapes=DEFAULT_CASE_SHAPES, sizes=(1, 2), edges: float = 0.05) -> st.SearchStrategy:
    """:class:`DrawnCase` pairs ``(dist, f)`` that the oracle integrates cheaply, with its exact
    gradient (``oracle.gradient(dist, f, dps=dps)``, method ``"auto"``).

    Cheap means: separable ``f`` for continuous families (one-dimensional integrals at any
    dimension), any ``f`` for discrete families and Dirac (enumeration, evaluation), and for the
    families of :data:`ORACLE_LIMITS` (nested quadrature) small event sizes and the pieces of f
    listed there, polynomials only at the larger sizes.  Constants follow
    :func:`functions` with the drawn distribution, so ``E[f]`` and its gradient are finite.  At
    ``dps=12`` a case costs 1-250 ms of oracle time on one core.

    >>> from hypothesis import given, settings
    >>> import mpmath
    >>> from gsbref import oracle
    >>> @settings(max_examples=3, derandomize=True, database=None, deadline=None)
    ... @given(cases(families=["Gaussian", "Bernoulli"], dps=12))
    ... def check(case):
    ...     second = oracle.gradient(case.dist, case.f, dps=12, method="diff")
    ...     for k, v in case.exact.items():
    ...         a, b = np.asarray(v).reshape(-1), np.asarray(second[k]).reshape(-1)
    ...         assert all(abs(x - y) <= 1e-7 * max(1, abs(x)) for x, y in zip(a, b))
    >>> check()
    """
    kinds = _check_kinds(kinds)
    cons = tuple(c for c in constructors(families)
                 if c.target.__name__ not in ORACLE_LIMITS or _case_sizes(c, kinds))
    if not cons:
        raise ValueError(f"cases: no family among {families!r} has cheap oracle cases of kinds {kinds}")
    return _case(cons, kinds, with_truth, dps, _shapes_strategy(event_shapes, "event_shapes"),
                 _sizes_strategy(sizes, "sizes"), edges)


# ----------------------------------------------------------------------------------------------
# settings
# ----------------------------------------------------------------------------------------------
PROFILES = {
    "ci": {"derandomize": True, "database": None, "deadline": None, "print_blob": True,
           "suppress_health_check": [hypothesis.HealthCheck.too_slow]},
    "dev": {"derandomize": False, "deadline": None, "suppress_health_check": [hypothesis.HealthCheck.too_slow]},
    "explore": {"derandomize": False, "deadline": None,
                "suppress_health_check": [hypothesis.HealthCheck.too_slow]},
}
_EXPLORE_FACTOR = 10


def property_settings(max_examples: int, profile: str | None = None, **overrides) -> hypothesis.settings:
    """Hypothesis settings for a property test of ``max_examples`` examples under ``profile``
    (default: ``$GSBREF_HYPOTHESIS_PROFILE``, else ``"ci"`` when ``$CI`` is set, else ``"dev"``).

    >>> property_settings(20, "ci").derandomize
    True
    >>> property_settings(20, "explore").max_examples
    200
    """
    if profile is None:
        profile = os.environ.get("GSBREF_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    n = max_examples * (_EXPLORE_FACTOR if profile == "explore" else 1)
    return hypothesis.settings(max_examples=n, **{**PROFILES[profile], **overrides})
