"""Test functions written once; values, derivatives of any order, and mpmath versions.

A test function ``f(z)`` takes ``z`` of shape ``(..., d)`` (the last axis holds the coordinates,
leading axes are a batch) and returns shape ``(...)``.  Write it as a formula::

    f = function("sum(log_sigmoid(W @ z + c))", W=W, c=c)

or as a Python callable built from :mod:`gsbref.ops` primitives and pass it to
:func:`as_function`.  A :class:`Function` gives float64 values (``f(z)``), mpmath values at the
caller's precision (``f.mp(z)``), pure partial derivatives of any order (``f.derivatives(z, n)``),
gradients and Hessians, in float64 and mpmath, through truncated Taylor arithmetic
(:class:`~gsbref.functions.jet.Jet`).  Formula functions also expose their structure:
:meth:`Function.separable` (``f = a + b * sum_j g_j(z_j)`` or a product) with univariate pieces
that know their kinks and exponential-polynomial form, and :meth:`Function.first_affine`.

Formula conventions: ``z[i]`` is coordinate ``i`` (``z[..., i]``), ``W @ z`` is
``sum_j W[h, j] z[..., j]``, constant vectors run along the coordinate axis, and scalar-valued
subexpressions (``sum(...)``, ``z[0]``) broadcast against vector ones.  A result that still has a
coordinate axis of length 1 is squeezed; a longer one is an error (wrap it in ``sum()``).

Kink convention
---------------
``abs`` and ``relu`` are not differentiable at 0.  Here ``abs'(x) = sign(x)`` (0 at 0) and
``relu'(x) = H(x)``, the Heaviside step with ``H(0) = 1/2`` (as ``relu(x) = (x + |x|) / 2``
requires); every higher pointwise derivative is 0.  The Dirac terms of the distributional second
derivative are therefore **not** represented: rules that use derivatives of order >= 2 are biased
for such ``f``.  ``Function.has_kinks`` / ``kink_primitives`` say when this applies.

>>> import numpy as np
>>> f = function("abs(z - 0.5)")
>>> f.has_kinks, f.kink_primitives
(True, ('abs',))
>>> f.derivatives(np.array([[0.5], [0.7]]), 2)[:, :, 0]
array([[0. , 0.2],
       [0. , 1. ],
       [0. , 0. ]])
"""

from ._function import Function, as_function, function
from ._separable import Separable, Univariate
from .jet import Jet

__all__ = ["function", "as_function", "Function", "Jet", "Separable", "Univariate"]
