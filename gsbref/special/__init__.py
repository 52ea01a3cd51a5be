"""Accurate float64 derivatives for implicit reparameterisation (Figurnov, Mohamed & Mnih, 2018).

For a univariate ``z`` with CDF ``F(z; theta)`` and density ``p(z; theta)`` the implicit
reparameterisation derivative of a sample is ``dz/dtheta = -(dF/dtheta)(z; theta) / p(z; theta)``.
This module computes it for the Gamma and Beta families directly as one well-conditioned integral
of a one-signed integrand (never as a ratio of two numbers that under- or overflow), and the
CDF derivatives themselves:

``gammainc_dshape(k, x)``        ``dP(k, x)/dk`` (``P = scipy.special.gammainc``);
``gamma_dz_dshape(z, k)``        ``dz/dk`` for ``z ~ Gamma(k, 1)``; for ``Gamma(k, scale mu)`` the
                                 derivative is ``mu * gamma_dz_dshape(z / mu, k)`` (and
                                 ``dz/dmu = z / mu``);
``betainc_dparams(a, b, x)``     ``(dI_x/da, dI_x/db)``;
``beta_dz_dparams(z, a, b)``     ``(dz/da, dz/db)`` for ``z ~ Beta(a, b)`` by the CDF;
``beta_dz_dparams_gamma_construction(gammas, a, b)``  the same for ``z = g1 / (g1 + g2)``;
``dirichlet_dz_dconcentration(gammas, concentration)``  ``dz_i/dalpha_j`` for ``z = g / sum(g)``.

Per-sample derivatives depend on how the sample is constructed.  ``beta_dz_dparams`` holds the
uniform ``u = I_z(a, b)`` fixed; the gamma construction holds the two gamma uniforms fixed.  The
two differ sample by sample but have the same expectation against any smooth ``f'`` (both are
unbiased for ``d E[f(z)] / d theta``).  PyTorch and JAX sample the Beta and the Dirichlet through
gamma variates.

Accuracy (measured against the mpmath oracle, ``gsbref.oracle.implicit_derivative``, at quantile
levels 1e-12 ... 1 - 1e-12 plus far tails, over shapes 1e-4 ... 1e5 for the Gamma, maximum relative
error 2.3e-14, and 1e-4 ... 1e4 for the Beta, 5.4e-12): see ``docs/results/implicit_accuracy.md``,
which also lists the cost per variate; the tests in ``tests/test_special.py`` assert the bounds.

>>> import numpy as np
>>> round(float(gamma_dz_dshape(1.0, 1.0)), 13)  # mpmath oracle: 1.173563027224727
1.1735630272247
>>> da, db = beta_dz_dparams(0.3, 2.0, 3.0)
>>> bool(da > 0 > db)
True
"""

from __future__ import annotations

import numpy as np

from ._beta import beta_dz_dparams_std, log_beta_pdf
from ._gamma import gamma_dz_dshape_std, gammainc_dshape_std

__all__ = [
    "beta_dz_dparams",
    "beta_dz_dparams_gamma_construction",
    "betainc_dparams",
    "dirichlet_dz_dconcentration",
    "gamma_dz_dshape",
    "gammainc_dshape",
]


def _arr(name, value):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number or array of real numbers, got {type(value).__name__}") from None
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not contain NaN")
    return arr


def _positive(name, value):
    arr = _arr(name, value)
    if (arr <= 0).any() or np.isinf(arr).any():
        raise ValueError(f"parameter '{name}' must lie in (0, inf)")
    return arr


def _halfline(name, value):
    arr = _arr(name, value)
    if (arr < 0).any():
        raise ValueError(f"'{name}' must lie in [0, inf]")
    return arr


def _unit(name, value):
    arr = _arr(name, value)
    if (arr < 0).any() or (arr > 1).any():
        raise ValueError(f"'{name}' must lie in [0, 1]")
    return arr


def _flat(fn, *arrays):
    """Broadcast, flatten, apply ``fn`` (1-d in, tuple or array out), restore the shape."""
    arrs = np.broadcast_arrays(*arrays)
    shape = arrs[0].shape
    out = fn(*[np.ascontiguousarray(a).reshape(-1) for a in arrs])
    if isinstance(out, tuple):
        return tuple(o.reshape(shape)[()] for o in out)
    return out.reshape(shape)[()]


def gamma_dz_dshape(z, k):
    """``dz/dk`` of ``z ~ Gamma(shape k, scale 1)`` at fixed CDF value (implicit reparameterisation).

    ``z`` in ``[0, inf]`` and ``k`` in ``(0, inf)`` broadcast against each other; float64 result
    (> 0 for ``0 < z < inf``; 0 at ``z = 0``, inf at ``z = inf``).  For a scale ``mu``:
    ``dz/dk = mu * gamma_dz_dshape(z / mu, k)``.  Computed by a power series of non-negative terms
    where ``log z <= psi(k + 1)`` and (``z <= 1`` or ``k <= 16``), elsewhere as one integral of a
    positive function (lower or upper incomplete form, whichever has a one-signed integrand) by
    24-point Gauss--Legendre quadrature in a logarithmic variable; vectorised over the regions, with
    the shape-only terms computed once when ``k`` is one number.  Validated for shapes 1e-4 ... 1e5
    (relative error <= 2.3e-14); see :mod:`gsbref.special._gamma`.

    >>> round(float(gamma_dz_dshape(2.0, 1.0)), 13)   # mpmath oracle: 1.631691462349701
    1.6316914623497
    """
    z = _halfline("z", z)
    k = _positive("k", k)
    return _flat(gamma_dz_dshape_std, z, k)


def gammainc_dshape(k, x):
    """``dP(k, x) / dk`` (<= 0), ``P`` the regularised lower incomplete gamma function.

    ``k`` in ``(0, inf)``, ``x`` in ``[0, inf]``; computed as ``-p(x; k) dz/dk`` with the density in
    a cancellation-free (Stirling) form for large ``k``.
    """
    k = _positive("k", k)
    x = _halfline("x", x)
    return _flat(gammainc_dshape_std, k, x)


def beta_dz_dparams(z, a, b):
    """``(dz/da, dz/db)`` of ``z ~ Beta(a, b)`` at fixed CDF value ``I_z(a, b)``.

    ``z`` in ``[0, 1]``, ``a, b`` in ``(0, inf)``, broadcast; ``dz/da > 0 > dz/db`` inside
    ``(0, 1)``, both 0 at the end points.  For ``z`` close to 1 the result is limited by the
    float64 spacing of ``z`` (``1 - z`` is known to ``eps`` only absolutely); see
    :mod:`gsbref.special._beta` for the method.
    """
    z = _unit("z", z)
    a = _positive("a", a)
    b = _positive("b", b)
    return _flat(lambda x, aa, bb: beta_dz_dparams_std(x, aa, bb), z, a, b)


def betainc_dparams(a, b, x):
    """``(dI_x(a, b)/da, dI_x(a, b)/db)``: ``-p(x) dz/da`` (<= 0) and ``-p(x) dz/db`` (>= 0)."""
    a = _positive("a", a)
    b = _positive("b", b)
    x = _unit("x", x)

    def fn(aa, bb, xx):
        da, db = beta_dz_dparams_std(xx, aa, bb)
        pdf = np.zeros(xx.shape)
        inside = (xx > 0) & (xx < 1)
        pdf[inside] = np.exp(log_beta_pdf(xx[inside], 1.0 - xx[inside], aa[inside], bb[inside]))
        return -pdf * da, -pdf * db

    return _flat(fn, a, b, x)


def beta_dz_dparams_gamma_construction(gammas, a, b):
    """``(dz/da, dz/db)`` for ``z = g1 / (g1 + g2)``, ``g1 ~ Gamma(a, 1)``, ``g2 ~ Gamma(b, 1)``.

    ``gammas`` has shape ``(..., 2)`` (``g1, g2``); ``a, b`` broadcast against ``gammas[..., 0]``.
    Holding each gamma variate's uniform fixed: ``dz/da = (1 - z) (dg1/da) / (g1 + g2)`` and
    ``dz/db = -z (dg2/db) / (g1 + g2)``.  This is the per-sample derivative that PyTorch/JAX-style
    samplers (Beta through two gammas) imply; it differs per sample from :func:`beta_dz_dparams`
    and agrees with it in expectation.
    """
    g = _halfline("gammas", gammas)
    if g.ndim == 0 or g.shape[-1] != 2:
        raise ValueError(f"gammas must have shape (..., 2), got {g.shape}")
    a = _positive("a", a)
    b = _positive("b", b)
    conc = np.stack(np.broadcast_arrays(a, b, g[..., 0])[:2], axis=-1)
    jac = dirichlet_dz_dconcentration(g, conc)
    return jac[..., 0, 0][()], jac[..., 0, 1][()]


def dirichlet_dz_dconcentration(gammas, concentration):
    """Per-sample Jacobian ``J[..., i, j] = dz_i / dalpha_j`` for ``z = g / sum(g)``.

    ``gammas``: the gamma variates ``g_j ~ Gamma(alpha_j, 1)`` the sample was built from, shape
    ``(..., K)``; ``concentration``: ``alpha``, broadcast to the same shape.  With ``S = sum(g)``,
    ``dz_i/dg_j = (delta_ij - z_i) / S`` and each ``g_j`` moves only with its own ``alpha_j``
    (``dg_j/dalpha_j`` = :func:`gamma_dz_dshape`), so ``J_ij = (delta_ij - z_i) dg_j/dalpha_j / S``.

    Per-sample derivatives depend on the construction: this is the gamma construction (what
    PyTorch and JAX sample); other constructions (stick breaking, marginal Beta CDFs) give other
    per-sample values with the same expectation.  Rows sum to zero (``sum_i z_i = 1``).  At least
    one gamma variate per sample must be positive (``S > 0``).
    """
    g = _halfline("gammas", gammas)
    alpha = _positive("concentration", concentration)
    if g.ndim == 0:
        raise ValueError("gammas must have shape (..., K)")
    g, alpha = np.broadcast_arrays(g, alpha)
    if np.isinf(g).any():
        raise ValueError("'gammas' must be finite")
    S = g.sum(-1, keepdims=True)
    if (S <= 0).any():
        raise ValueError("each sample needs at least one positive gamma variate (sum(gammas) > 0)")
    z = g / S
    dg = _flat(gamma_dz_dshape_std, g, alpha)
    K = g.shape[-1]
    eye = np.eye(K)
    return (eye - z[..., :, None]) * (dg / S)[..., None, :]
