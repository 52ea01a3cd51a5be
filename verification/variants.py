"""Seeded wrong variants of the estimators: the checks' power.

Each variant is a wrapper around a row's estimator that a plausible implementation slip would
produce; the suite must flag every one with the same Monte Carlo check it applies to the correct
estimator.  Each variant also states the exact mean shift it causes (from the oracle bundle), so
the sample size at which it is caught with probability :data:`DETECT` can be designed from the
measured variance instead of being guessed:

================  ===========================================================  ==================
variant           what it does                                                 exact mean shift
================  ===========================================================  ==================
``sign-flip``     ``-g``                                                        ``-2 target``
``scale-5pct``    ``1.05 g``                                                    ``0.05 target``
``dropped-term``  the order-``N-1`` rule reported as order ``N``                ``-T_N``
``off-by-one``    the order-``N+1`` rule reported as order ``N``                ``+T_{N+1}``
``swapped``       the estimates of two parameters of equal shape exchanged     ``t_b - t_a``
================  ===========================================================  ==================

(``T_n``: the exact expectation of series term ``n``; ``t``: the target.)

>>> sorted(VARIANTS)
['dropped-term', 'off-by-one', 'scale-5pct', 'sign-flip', 'swapped']
"""

from __future__ import annotations

import numpy as np

from .rows import Row

__all__ = ["VARIANTS", "DETECT", "SCALE_ERROR", "variant_call", "expected_shift", "swap_pair"]

#: probability with which the designed sample size catches a variant
DETECT = 0.999
#: relative scale error of the ``scale-5pct`` variant
SCALE_ERROR = 0.05


def swap_pair(dist) -> tuple[str, str] | None:
    """The first two parameters of ``dist`` with the same shape, or None."""
    ps = dist.parameters
    for i, a in enumerate(ps):
        for b in ps[i + 1:]:
            if dist.params[a.name].shape == dist.params[b.name].shape:
                return a.name, b.name
    return None


def variant_call(name: str, row: Row, call):
    """The wrong estimator: ``call(n, rng, **options) -> {param: samples}`` is the row's correct
    estimator; returns a function ``(dist, n, rng) -> {param: samples}``."""
    opts = row.opts

    def run(dist, n, rng):
        if name == "sign-flip":
            return {k: -v for k, v in call(n, rng, **opts).items()}
        if name == "scale-5pct":
            return {k: (1 + SCALE_ERROR) * v for k, v in call(n, rng, **opts).items()}
        if name == "dropped-term":
            return call(n, rng, **{**opts, "order": opts["order"] - 1})
        if name == "off-by-one":
            return call(n, rng, **{**opts, "order": opts["order"] + 1})
        if name == "swapped":
            pair = swap_pair(dist)
            out = dict(call(n, rng, **opts))
            a, b = pair
            out[a], out[b] = out[b], out[a]
            return out
        raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")

    return run


def expected_shift(name: str, row: Row, dist, target: dict, terms: dict | None) -> dict:
    """``{param: exact mean shift}`` of the variant (float arrays), from the target and the
    series-term expectations ``terms`` (``{param: (N + 2, *shape)}`` floats of the truncated
    parameters; parameters with an exact rule, e.g. the Laplace location, are absent there and
    not shifted by the series variants)."""
    if name == "sign-flip":
        return {k: -2 * np.asarray(v) for k, v in target.items()}
    if name == "scale-5pct":
        return {k: SCALE_ERROR * np.asarray(v) for k, v in target.items()}
    if name in ("dropped-term", "off-by-one"):
        N = row.opts["order"]
        if name == "dropped-term" and N < 2:
            raise ValueError(f"{row.id}: dropped-term needs order >= 2")
        if not terms or any(v.shape[0] <= N + (name == "off-by-one") for v in terms.values()):
            raise ValueError(f"{row.id}: the series terms needed for {name} are not available")
        out = {k: np.zeros_like(np.asarray(v, float)) for k, v in target.items()}
        out.update({k: (-v[N] if name == "dropped-term" else v[N + 1]) for k, v in terms.items()})
        return out
    if name == "swapped":
        pair = swap_pair(dist)
        if pair is None:
            raise ValueError(f"{row.id}: no two parameters of equal shape to swap")
        a, b = pair
        out = {k: np.zeros_like(np.asarray(v, float)) for k, v in target.items()}
        out[a] = np.asarray(target[b]) - np.asarray(target[a])
        out[b] = -out[a]
        return out
    raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")


VARIANTS = ("sign-flip", "scale-5pct", "dropped-term", "off-by-one", "swapped")
