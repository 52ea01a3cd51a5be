"""A deliberately broken estimator, for showing that the suite fails loudly.

``gsbref verify --quick --plugin verification.demo_broken:plugin`` adds two rows whose estimator
is the score-function estimator with its sign flipped (registered under the method name
``"score-sign-flipped"``, not in gsbref's registry); the run must exit non-zero and name these rows
first in report.md.  A plugin is any ``module:callable`` whose callable returns ``{"rows": [...],
"estimators": {name: fn(dist, f, n_samples, rng, **options) -> {param: samples}}}``.
"""

from __future__ import annotations

from .rows import make_row

__all__ = ["score_sign_flipped", "plugin"]


def score_sign_flipped(dist, f, n_samples, rng, **options):
    """The score-function estimator with the wrong sign (a plausible slip: ``-log p``)."""
    from gsbref.estimators import estimate

    return {k: -e.samples for k, e in estimate(dist, f, "score", n_samples, rng, **options).items()}


def plugin():
    return {
        "rows": [make_row("gamma-softplus", "score-sign-flipped", checks=("mc", "variance")),
                 make_row("bernoulli-prod", "score-sign-flipped", checks=("mc", "variance"))],
        "estimators": {"score-sign-flipped": score_sign_flipped},
    }
