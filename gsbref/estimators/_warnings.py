"""Warning classes of the gradient estimators (each a :class:`UserWarning`, so that
``filterwarnings = error::RuntimeWarning`` never turns them into errors and callers can filter
them by class).

* :class:`GSBKinkWarning` -- ``f`` contains ``abs`` or ``relu`` and the rule uses derivatives of
  order >= 2: the Dirac terms of the distributional derivatives at the kinks are missing, so the
  estimate is biased (DESIGN section 1.3).
* :class:`GSBTruncationWarning` -- a truncated series (eq. 26) did not show convergence at the
  requested order: its last term is not small compared with the previous term or the partial sum.
"""

from __future__ import annotations

__all__ = ["GSBKinkWarning", "GSBTruncationWarning"]


class GSBKinkWarning(UserWarning):
    """The rule needs derivatives of order >= 2 of a function with kinks (``abs``, ``relu``)."""


class GSBTruncationWarning(UserWarning):
    """A truncated series has not converged (or diverges) at the requested order."""
