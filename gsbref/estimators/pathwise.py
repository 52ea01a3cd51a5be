r"""``method="pathwise"``: reparameterisation (pathwise) gradients.

What it estimates
-----------------
``dE_{z~p_theta}[f(z)] / dtheta`` for families that can be written ``z = g(eps; theta)`` with ``eps``
drawn from a law that does not depend on ``theta`` and ``g`` differentiable in ``theta``; then
``dE[f(z)]/dtheta = E[grad f(z) . dg/dtheta]`` and each sample gives ``grad f(z) . dz/dtheta``
(Kingma & Welling 2014, Rezende et al. 2014; "pathwise" in the terminology of Glasserman 2003 and
Mohamed et al. 2020).  ``grad f`` comes from the functions layer (``f.gradient``: Taylor jets).
Every ``dz/dtheta`` below is written as a function of the sample ``z`` itself, so that
:func:`pathwise_at` can evaluate the per-sample estimate at any points (the deterministic tests
integrate it by Gauss quadrature):

=============================  ========================================  ===========================
family                         transformation                            per-sample estimate
=============================  ========================================  ===========================
Gaussian(loc m, scale s)       ``z = m + s eps``, ``eps ~ N(0, 1)``       loc ``f'(z)``,
                                                                         scale ``f'(z) (z - m) / s``
MultivariateGaussian(loc, cov) ``z = m + L eps``, ``L = chol(cov)``       loc ``grad f(z)``,
                                                                         cov: see below
Dirac(loc)                     ``z = loc``                               loc ``grad f(loc)``
                                                                         (backpropagation, eq. 15)
Laplace(loc m, scale b)        inverse CDF: ``z = m - b sgn(u)``          loc ``f'(z)``,
                               ``log(1 - 2|u|)``, ``u ~ U(-1/2, 1/2)``    scale ``f'(z) (z - m) / b``
Gamma(shape k, scale mu)       ``z = mu zeta``, ``zeta ~ Gamma(k, 1)``    scale ``f'(z) z / mu``;
                                                                         shape: none (see below)
Exponential(scale mu)          ``z = mu zeta``, ``zeta ~ Exp(1)``         scale ``f'(z) z / mu``
=============================  ========================================  ===========================

A coordinate's estimate uses the partial derivative ``df/dz_j``; a parameter shared by several
coordinates (broadcast) receives the sum over them, as ``dist.score`` does.

The covariance of the MultivariateGaussian.  The sampler differentiates through the Cholesky
factor: per sample, ``dz_i/dL_ij = eps_j`` (``i >= j``), so the gradient with respect to the free
(lower-triangular) entries of ``L`` is ``G_L = tril(grad f(z) eps^T)``.  The oracle's convention
for ``cov`` (:mod:`gsbref.distributions.mvn`) is the symmetric matrix ``G`` with
``dL = sum_kl G[k, l] dcov[k, l]`` for every symmetric perturbation ``dcov`` (so that
``E[G] = E[hess f] / 2``, eq. 14).  The chain rule through ``cov = L L^T``: a symmetric ``dcov``
moves ``L`` by ``dL = L Phi(L^-1 dcov L^-T)`` (``Phi`` keeps the strict lower triangle and halves
the diagonal), hence with ``M = L^T G_L``

    G = L^-T P L^-1,    P = (tril(M, -1) + tril(M, -1)^T + diag(M)) / 2,

the usual backward pass of the Cholesky factorisation (Murray 2016), symmetric by construction.
(A library that treats the off-diagonal pair ``cov[k, l] = cov[l, k]`` as *one* variable reports
``2 G[k, l]`` there; ``tests/test_estimators_pathwise.py`` shows that doubling is rejected.)

Families without an explicit reparameterisation.  The Gamma **shape** (hence ``ChiSquared``,
``Beta``, ``Dirichlet``) has no closed-form standardisation ``z = g(eps; k)``: the inverse CDF
exists but is not explicit.  By default the estimator raises ``ValueError`` pointing to
``method="implicit"`` (implicit reparameterisation, Figurnov et al. 2018, which differentiates the
inverse CDF implicitly) and ``method="grg"``.  With ``shape="implicit"`` the Gamma shape gradient
is taken from the implicit reparameterisation (the combination that implicit-reparameterisation
samplers such as PyTorch's ``Gamma.rsample`` differentiate); the scale stays explicit.  Discrete families (Bernoulli,
Categorical) have no reparameterisation at all: ``ValueError`` pointing to theorem 2
(``"gsb-discrete"``) and the score function.

Requirements: ``f`` differentiable along the path, almost everywhere with respect to ``p_theta``,
with ``E|grad f . dz/dtheta|`` finite, and ``f(g(eps; theta))`` absolutely continuous in ``theta``
(kinks such as ``abs`` and ``relu`` are fine: unlike rules with second derivatives, the pathwise
estimator needs only the first derivative, and the jump of ``f'`` at a kink carries no mass).
Unbiased under those conditions; exact for Dirac.

Array backends: the estimator runs on the namespace of the distribution's parameters (or of the
points given to :func:`pathwise_at`; :mod:`gsbref._backend`), ``grad f`` included.  Two steps
have no array-API version and use host factors or the host: the multivariate Gaussian's triangular
solves become products with ``L^-1`` (computed once on the host: the same values to rounding), and
the implicit Gamma-shape derivative (``shape="implicit"``) runs :mod:`gsbref.special` on the host
(:func:`gsbref._backend.call_host`).

>>> import numpy as np, gsbref
>>> from gsbref.estimators import estimate
>>> est = estimate(gsbref.Gaussian(0.3, 1.2), "sum((z - 0.49)**2)", "pathwise", 20000, 0)
>>> bool(abs(est["scale"].mean - 2.4) < 5 * est["scale"].stderr)   # exact: d/ds E = 2 s
True
"""

from __future__ import annotations

import numpy as np
from scipy import linalg as _la

from .._backend import asarray, generator, is_numpy, namespace
from ..distributions import (Beta, ChiSquared, Dirac, Dirichlet, Exponential, Gamma, Gaussian, Laplace,
                             MultivariateGaussian)
from ..functions import as_function
from ._base import register

__all__ = ["SUPPORTED", "cholesky_backward", "pathwise", "pathwise_at"]

#: the families with an explicit reparameterisation of every parameter (Gamma: with shape="implicit")
SUPPORTED = ("Gaussian", "MultivariateGaussian", "Dirac", "Laplace", "Exponential", "Gamma")

_SHAPE_OPTIONS = (None, "implicit")


def _array_ns(dist, z=None):
    """``None`` for NumPy (the NumPy code path), else the namespace of ``z`` / the parameters."""
    xp = namespace(z, *dist.params.values()) if hasattr(dist, "params") else namespace(z)
    return None if is_numpy(xp) else xp


def _refuse(dist):
    name = type(dist).__name__
    if getattr(dist, "discrete", False):
        raise ValueError(
            f"pathwise: {name} is discrete, so z cannot be written as a differentiable function of "
            "the parameters; use method='gsb-discrete' (theorem 2, exact differences of f), 'score', "
            "or a relaxation ('gumbel-softmax', 'rebar', 'relax')"
        )
    if isinstance(dist, (ChiSquared, Beta, Dirichlet)):
        what = {"ChiSquared": "df (a Gamma shape)", "Beta": "alpha and beta (Gamma shapes)",
                "Dirichlet": "concentration (Gamma shapes)"}[name]
        raise ValueError(
            f"pathwise: {name} has no explicit reparameterisation of {what}: the inverse CDF is not "
            "available in closed form; use method='implicit' (implicit reparameterisation, Figurnov "
            "et al. 2018) or 'grg' (generalised reparameterisation, Ruiz et al. 2016), or the exact "
            "'gsb-resummed'"
        )
    raise ValueError(f"pathwise: no reparameterisation for {name}; supported: {', '.join(SUPPORTED)}")


def cholesky_backward(L: np.ndarray, GL: np.ndarray) -> np.ndarray:
    """The symmetric gradient ``G`` with respect to ``cov = L L^T`` from a gradient ``GL`` with
    respect to the lower-triangular ``L`` (batched over leading axes; the upper triangle of ``GL``
    is ignored): ``G = L^-T P L^-1``, ``P = (tril(M,-1) + tril(M,-1)^T + diag(M)) / 2``,
    ``M = L^T tril(GL)`` (see the module docstring).

    >>> L = np.linalg.cholesky(np.array([[2.0, 0.5], [0.5, 1.0]]))
    >>> A = np.array([[1.0, 0.3], [0.3, -0.5]])            # f = tr(A cov) = tr(A L L^T)
    >>> G = cholesky_backward(L, np.tril(2 * A @ L))       # d/dL tr(A L L^T) = 2 A L
    >>> bool(np.allclose(G, A, rtol=0, atol=1e-15))
    True
    """
    L = np.asarray(L, float)
    GL = np.tril(np.asarray(GL, float))
    d = L.shape[-1]
    M = np.einsum("ki,...kj->...ij", L, GL)
    low = np.tril(M, -1)
    P = 0.5 * (low + np.swapaxes(low, -1, -2))
    idx = np.arange(d)
    P[..., idx, idx] = 0.5 * M[..., idx, idx]
    Linv = _la.solve_triangular(L, np.eye(d), lower=True)
    return np.einsum("ki,...kl,lj->...ij", Linv, P, Linv)


def pathwise_at(dist, f, z, *, shape=None) -> dict[str, np.ndarray]:
    """Per-sample pathwise estimates at given points ``z`` (shape ``(S, *event_shape)``, points of
    the support): ``{name: (S, *param_shape)}``.  No sampling; the same formulas as the estimator
    (see the module docstring).  ``shape`` as in :func:`pathwise`."""
    f = as_function(f)
    if shape not in _SHAPE_OPTIONS:
        raise ValueError(f"pathwise: shape must be None or 'implicit', got {shape!r}")
    if shape is not None and not isinstance(dist, Gamma):
        raise ValueError(f"pathwise: shape= applies to Gamma only, not {type(dist).__name__}")
    xp = _array_ns(dist, z)
    if xp is None:
        xp = namespace()  # NumPy
    out = _pathwise_at(dist, f, asarray(z, xp, xp.float64), shape, xp)
    if is_numpy(xp):
        out = {k: np.ascontiguousarray(v) for k, v in out.items()}
    return out


def _cholesky_backward_xp(Linv, L, GL, xp):
    """:func:`cholesky_backward` in namespace ``xp`` with ``L^-1`` given (the standard has no
    triangular solve): ``G = L^-T P L^-1``."""
    M = xp.matmul(L.T, xp.tril(GL))
    d = L.shape[-1]
    low = xp.tril(M, k=-1)
    eye = xp.eye(d, dtype=xp.bool)
    P = xp.where(eye, 0.5 * M, 0.5 * (low + xp.matrix_transpose(low)))
    return xp.matmul(xp.matmul(Linv.T, P), Linv)


def _pathwise_at(dist, f, z, shape, xp):
    """:func:`pathwise_at` on arrays of namespace ``xp`` (NumPy included)."""
    S = z.shape[0]
    if isinstance(dist, MultivariateGaussian):
        z = xp.reshape(dist._check_z(z), (S, dist.dim))
        g = f.gradient(z)
        if is_numpy(xp):  # triangular solves; other namespaces have no such routine and use L^-1
            L = dist._chol
            eps = _la.solve_triangular(L, (z - dist.loc).T, lower=True).T  # (S, d)
            return {"loc": g, "cov": cholesky_backward(L, g[:, :, None] * eps[:, None, :])}
        Linv, loc = dist._in(xp, "chol_inv"), dist._in(xp, "loc")
        L = asarray(dist._chol, xp)
        eps = (z - loc) @ Linv.T  # rows L^-1 (z - loc)
        GL = g[:, :, None] * eps[:, None, :]
        return {"loc": g, "cov": _cholesky_backward_xp(Linv, L, GL, xp)}
    if not isinstance(dist, (Gaussian, Dirac, Laplace, Gamma, Exponential)):
        _refuse(dist)
    if isinstance(dist, Gamma) and shape is None:
        raise ValueError(
            "pathwise: the Gamma shape has no explicit reparameterisation (z = scale * zeta, "
            "zeta ~ Gamma(shape, 1), and the inverse CDF of zeta in the shape is not explicit); use "
            "method='implicit' (implicit reparameterisation, Figurnov et al. 2018) or 'grg', or pass "
            "shape='implicit' here to take the shape gradient from the implicit reparameterisation "
            "and the scale gradient f'(z) z / scale from the explicit one"
        )
    d = dist.event_size
    zf = xp.reshape(z, (S, d))
    lead = (S, *dist.event_shape)

    def flat(name):
        return xp.reshape(xp.broadcast_to(asarray(dist.params[name], xp), dist.event_shape), (-1,))

    if isinstance(dist, Dirac):
        if S > 1 and bool(xp.all(zf == zf[:1, ...])):
            g = xp.broadcast_to(f.gradient(zf[:1, ...]), (S, d))
        else:
            g = f.gradient(zf)
        return {"loc": dist._reduce_to_param("loc", xp.reshape(g, lead), 1)}
    g = f.gradient(zf)
    out = {}
    if isinstance(dist, (Gaussian, Laplace)):
        m, s = flat("loc"), flat("scale")
        out["loc"] = g
        out["scale"] = g * ((zf - m) / s)
    elif isinstance(dist, Exponential):
        out["scale"] = g * (zf / flat("scale"))
    else:  # Gamma, shape="implicit"
        from .implicit import gamma_dz_dshape_scaled

        k, mu = flat("shape"), flat("scale")
        out["shape"] = g * gamma_dz_dshape_scaled(zf, k, mu)
        out["scale"] = g * (zf / mu)
    return {k: dist._reduce_to_param(k, xp.reshape(v, lead), 1) for k, v in out.items()}


def _sample(dist, rng, n):
    from .resummed import _sample_fast

    if isinstance(dist, (Gamma, Exponential, Laplace)):
        return _sample_fast(dist, rng, n).reshape((n, *dist.event_shape))
    return dist.sample(rng, n)


@register("pathwise", array_api=True)
def pathwise(dist, f, n_samples, rng, *, shape=None):
    """Per-sample reparameterisation gradients ``grad f(z) . dz/dtheta`` (module docstring).

    Approximates ``dE[f(z)] / dtheta`` for Gaussian, MultivariateGaussian (``cov`` in the oracle's
    symmetric convention, through the Cholesky factor), Dirac (backpropagation, eq. 15), Laplace
    (inverse CDF), Exponential and the Gamma scale, with ``z`` drawn from ``dist`` and ``grad f``
    from Taylor jets.  Requires ``f`` differentiable almost everywhere along the path; unbiased.
    The Gamma shape has no explicit reparameterisation: ``ValueError`` unless ``shape="implicit"``
    (the implicit reparameterisation gradient of :mod:`gsbref.estimators.implicit` for the shape);
    ChiSquared, Beta and Dirichlet: use ``method="implicit"`` or ``"grg"``; discrete families raise.
    Returns ``{name: (n_samples, *param_shape)}``.
    """
    # refuse before drawing anything
    if not isinstance(dist, (Gaussian, MultivariateGaussian, Dirac, Laplace, Gamma, Exponential)):
        _refuse(dist)
    if isinstance(dist, Gamma) and shape is None:
        return pathwise_at(dist, f, np.ones((1, *dist.event_shape)))  # raises the explanation
    xp = _array_ns(dist)
    if xp is not None:
        return pathwise_at(dist, f, dist.sample(generator(xp, rng), n_samples), shape=shape)
    z = _sample(dist, rng, n_samples)
    return pathwise_at(dist, f, z, shape=shape)
