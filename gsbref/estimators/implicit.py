r"""``method="implicit"``: implicit reparameterisation gradients (Figurnov, Mohamed & Mnih 2018).

What it estimates
-----------------
``dE_{z~p_theta}[f(z)] / dtheta`` for families whose CDF ``F(z; theta)`` is differentiable in
``theta`` but whose inverse is not explicit: Gamma (shape and scale), Exponential, ChiSquared,
Beta and Dirichlet.  Holding the "noise" ``u = F(z; theta)`` fixed and differentiating
``F(z(theta); theta) = u`` gives the derivative of the sample along the transport map,

    dz/dtheta = -(dF/dtheta)(z; theta) / p(z; theta),

without inverting ``F``; each sample gives ``grad f(z) . dz/dtheta``.  In one dimension this
``dz/dtheta`` is the unique velocity field that moves ``p_theta`` with ``theta`` (the continuity
equation ``dp/dtheta + d(p v)/dz = 0`` with no flux through the ends of the support), so every
coupling of the ``p_theta`` (e.g. a Gamma construction) has this field as its conditional mean
``E[dz/dtheta | z]``: the CDF form is the Rao–Blackwellised version of any other.

=============================  ==============================================================
family                         ``dz/dtheta`` per coordinate
=============================  ==============================================================
Gamma(shape k, scale mu)       ``dz/dk = mu D(z / mu, k)``, ``dz/dmu = z / mu``
Exponential(scale mu)          ``dz/dmu = z / mu``
ChiSquared(df)                 ``dz/ddf = D(z / 2, df / 2)``  (``z = 2 zeta``, ``k = df / 2``)
Beta(alpha, beta), ``"cdf"``    ``(dz/dalpha, dz/dbeta)`` = :func:`gsbref.special.beta_dz_dparams`
Beta, ``form="gamma"``          ``zeta_1 ~ Gamma(alpha)``, ``zeta_2 ~ Gamma(beta)``, ``s = zeta_1 + zeta_2``:
                               ``dz/dalpha = (1 - z) / s D(zeta_1, alpha)``,
                               ``dz/dbeta = -z / s D(zeta_2, beta)``
Dirichlet(alpha), K comps.     gamma construction, ``dz_i/dalpha_k`` from
                               :func:`gsbref.special.dirichlet_dz_dconcentration`
                               (``= (delta_ik - z_i) / s D(zeta_k, alpha_k)``)
=============================  ==============================================================

with ``D(x, k) = -(dP/dk)(k, x) / p(x; k)`` the shape derivative of a standard Gamma(k, 1)
variate at ``x`` (:func:`gsbref.special.gamma_dz_dshape`, ``P`` the regularised lower incomplete
gamma function).  A coordinate's estimate uses ``df/dz_j``; a parameter shared by several
coordinates receives the sum over them.  The estimate is unbiased whenever
``E|grad f . dz/dtheta|`` is finite and ``f`` is differentiable almost everywhere along the
transport (kinks such as ``abs`` are fine), up to the accuracy of the special functions of
:mod:`gsbref.special` (a relative error of at most ``r`` in ``dz/dtheta`` moves the mean by at most
``r E|grad f . dz/dtheta|``).  Cost: ``dz/dk`` of the Gamma shape is an integral evaluated per
variate; measured (CPU time, two runs of ``benchmarks/variance_baselines.py``) at 105-240 times
the cost of drawing the variate for shapes 3 and 30, 14-20 times for shape 0.3.

Beta ``form``: ``"cdf"`` (default; the incomplete-beta derivatives, lower variance by the
Rao–Blackwell argument above) or ``"gamma"`` (the construction of the paper's eq. 20; samplers that
build the Beta from two Gamma variates and differentiate through them imply this per-sample
derivative).  ``tests/test_estimators_implicit.py`` checks both the equal means and the variance
ordering by quadrature.

Array backends: the estimator runs on the namespace of the distribution's parameters
(:mod:`gsbref._backend`), sampling and ``grad f`` included; the CDF derivatives
(``gamma_dz_dshape``, ``beta_dz_dparams``, ``dirichlet_dz_dconcentration`` of
:mod:`gsbref.special`, float64 NumPy code) run on the host through
:func:`gsbref._backend.call_host` (a copy there and back per call).

>>> import numpy as np, gsbref
>>> from gsbref.estimators import estimate
>>> est = estimate(gsbref.Gamma(3.0, 0.5), "sum((z - 0.49)**2)", "implicit", 40000, 0)
>>> bool(abs(est["shape"].mean - 1.26) < 5 * est["shape"].stderr)  # exact: mu(2 k mu + mu - 0.98)
True
"""

from __future__ import annotations

import numpy as np

from .._backend import asarray, call_host, generator, namespace, special
from ..distributions import Beta, ChiSquared, Dirichlet, Exponential, Gamma
from ..functions import as_function
from ._base import register

__all__ = ["FORMS", "SUPPORTED", "gamma_dz_dshape_scaled", "implicit", "implicit_at"]

#: the families this estimator handles
SUPPORTED = ("Gamma", "Exponential", "ChiSquared", "Beta", "Dirichlet")
#: the Beta forms
FORMS = ("cdf", "gamma")


def _special():
    from .. import special

    return special


def gamma_dz_dshape_scaled(z, k, mu):
    """``dz/dk`` for ``z ~ Gamma(k, mu)`` at ``z``: ``mu D(z / mu, k)`` (elementwise; arrays of
    another namespace go to :mod:`gsbref.special` on the host and come back)."""
    xp = namespace(z, k, mu)
    x = asarray(z, xp, xp.float64) / mu
    return mu * call_host(_special().gamma_dz_dshape, x, xp.broadcast_to(asarray(k, xp, xp.float64), tuple(x.shape)),
                          xp=xp, dtype=xp.float64)


def implicit_at(dist, f, points, *, form="cdf") -> dict[str, np.ndarray]:
    """Per-sample implicit reparameterisation estimates at given points, ``{name: (S, *param_shape)}``.

    ``points``: the draws ``z`` (``(S, *event_shape)``) for Gamma, Exponential, ChiSquared and the
    Beta's ``"cdf"`` form; ``(log zeta_1, log zeta_2)`` for the Beta's ``"gamma"`` form; ``log zeta``
    (``(S, *event_shape)``, standard Gamma variables) for the Dirichlet.
    """
    f = as_function(f)
    _check_form(dist, form)
    if points is None:
        return _unsupported(dist)
    xp = namespace(*(points if isinstance(points, tuple) else (points,)), *dist.params.values())
    return _implicit_at(dist, f, points, form, xp)


def _unsupported(dist):
    raise ValueError(
        f"implicit: no implicit reparameterisation for {type(dist).__name__}; it applies to "
        f"{', '.join(SUPPORTED)} (Gaussian, MultivariateGaussian, Laplace and Dirac have explicit "
        "ones: method='pathwise'; discrete families: 'gsb-discrete' or 'score')"
    )


def _implicit_at(dist, f, points, form, xp):
    """:func:`implicit_at` on arrays of namespace ``xp`` (NumPy included); the CDF derivatives of
    :mod:`gsbref.special` (float64 NumPy code) run on the host through
    :func:`gsbref._backend.call_host`."""
    from .grg import _reduce, gamma_family_params, simplex_from_log_gammas

    sp = _special()

    def host(fn, *args):
        return call_host(fn, *args, xp=xp, dtype=xp.float64)

    if isinstance(dist, (Gamma, Exponential, ChiSquared)):
        z = asarray(points, xp, xp.float64)
        S = z.shape[0]
        z = xp.reshape(z, (S, dist.event_size))
        g = f.gradient(z)
        k, mu = gamma_family_params(dist, xp)
        if isinstance(dist, Gamma):
            out = {"shape": g * gamma_dz_dshape_scaled(z, k, mu), "scale": g * (z / mu)}
        elif isinstance(dist, Exponential):
            out = {"scale": g * (z / mu)}
        else:
            out = {"df": g * gamma_dz_dshape_scaled(z, k, mu) / 2.0}
        return _reduce(dist, out, S)
    if isinstance(dist, Beta):
        bp = {k: xp.reshape(v, (-1,)) for k, v in dist.broadcast_params().items()}
        if form == "cdf":
            z = asarray(points, xp, xp.float64)
            S = z.shape[0]
            z = xp.reshape(z, (S, dist.event_size))
            shp = tuple(z.shape)
            da, db = host(sp.beta_dz_dparams, z, xp.broadcast_to(bp["alpha"], shp), xp.broadcast_to(bp["beta"], shp))
        else:
            l1, l2 = (asarray(p, xp, xp.float64) for p in points)
            S = l1.shape[0]
            l1, l2 = xp.reshape(l1, (S, -1)), xp.reshape(l2, (S, -1))
            z = special(xp).expit(l1 - l2)
            inv_s = xp.exp(-xp.logaddexp(l1, l2))
            shp = tuple(z.shape)
            da = (1.0 - z) * inv_s * host(sp.gamma_dz_dshape, xp.exp(l1), xp.broadcast_to(bp["alpha"], shp))
            db = -z * inv_s * host(sp.gamma_dz_dshape, xp.exp(l2), xp.broadcast_to(bp["beta"], shp))
        g = f.gradient(z)
        return _reduce(dist, {"alpha": g * da, "beta": g * db}, S)
    if isinstance(dist, Dirichlet):
        lz = asarray(points, xp, xp.float64)
        S = lz.shape[0]
        alpha = dist.concentration
        lz = xp.reshape(lz, (S, *alpha.shape))
        z = simplex_from_log_gammas(lz, xp)
        J = host(sp.dirichlet_dz_dconcentration, xp.exp(lz), xp.broadcast_to(alpha, tuple(lz.shape)))
        g = xp.reshape(f.gradient(xp.reshape(z, (S, -1))), tuple(z.shape))
        # sum_i g_i dz_i/dalpha_k, summed in the order of NumPy's einsum
        return {"concentration": xp.sum(g[..., :, None] * J, axis=-2)}
    return _unsupported(dist)


def _check_form(dist, form):
    if form not in FORMS:
        raise ValueError(f"implicit: form must be one of {FORMS}, got {form!r}")
    if form != "cdf" and not isinstance(dist, Beta):
        raise ValueError(f"implicit: form= applies to Beta only, not {type(dist).__name__}")


@register("implicit", array_api=True)
def implicit(dist, f, n_samples, rng, *, form="cdf"):
    """Per-sample implicit reparameterisation gradients ``grad f(z) . dz/dtheta`` with
    ``dz/dtheta = -(dF/dtheta) / p`` (module docstring; Figurnov et al. 2018).

    Approximates ``dE[f(z)] / dtheta`` for Gamma (shape and scale), Exponential, ChiSquared, Beta
    (``form="cdf"``: incomplete-beta derivatives; ``form="gamma"``: through ``zeta_1 / (zeta_1 +
    zeta_2)``) and Dirichlet (gamma construction), with ``z`` drawn from ``dist``, ``grad f`` from
    Taylor jets and the CDF derivatives from :mod:`gsbref.special`.  Requires ``f`` differentiable
    almost everywhere along the transport and ``E|grad f . dz/dtheta|`` finite; unbiased up to the
    accuracy of the special functions.  Returns ``{name: (n_samples, *param_shape)}``.
    """
    _check_form(dist, form)
    n = n_samples
    xp = namespace(*dist.params.values())
    rng = generator(xp, rng)
    if isinstance(dist, (Gamma, Exponential, ChiSquared)):
        from .resummed import _sample_fast

        pts = xp.reshape(_sample_fast(dist, rng, n), (n, *dist.event_shape))
    elif isinstance(dist, Beta):
        if form == "cdf":
            pts = dist.sample(rng, n)
        else:
            from .grg import log_standard_gamma

            bp = dist.broadcast_params()
            shp = (n, *dist.event_shape)
            pts = (log_standard_gamma(rng, xp.broadcast_to(bp["alpha"], shp)),
                   log_standard_gamma(rng, xp.broadcast_to(bp["beta"], shp)))
    elif isinstance(dist, Dirichlet):
        from .grg import log_standard_gamma

        pts = log_standard_gamma(rng, xp.broadcast_to(dist.concentration, (n, *dist.event_shape)))
    else:
        return _unsupported(dist)
    return implicit_at(dist, f, pts, form=form)
