"""Exact implicit-reparameterisation derivatives ``dz/dtheta`` per sample, with mpmath.

``implicit_derivative(dist, z, dps=30, method="quad")`` returns ``{parameter: object array of mpf}``
(shape of ``z``; a Dirichlet gives ``(..., K, K)``) with ``.to_float()``.  Two independent methods:

``"quad"``  tanh-sinh quadrature (``mpmath.quad``) of the one-signed integral form
            ``dz/dk = -+int (d log p / dk)(t) p(t) dt / p(z)`` over ``[0, z]`` or ``[z, end]``
            (whichever side has a one-signed integrand), in ``u = log t`` (Gamma) or the logit
            variable (Beta), split at the mode and at the scale of the integrand;
``"diff"``  numerical differentiation (``mpmath.diff``) of ``mpmath.gammainc`` / ``mpmath.betainc``
            (of the smaller of the CDF and its complement) divided by the density.

Families: ``Gamma(shape, scale)`` (``dz/dscale = z / scale``), ``Exponential(scale)`` (``dz/dscale =
z / scale``), ``ChiSquared(df)`` (``z = 2 g``, ``g ~ Gamma(df/2)``, so ``dz/ddf = dg/dk`` at ``g =
z/2``), ``Beta(alpha, beta)`` (CDF-implicit), ``Dirichlet(concentration)``: there ``z`` must be
the *gamma variates* ``g`` of shape ``(..., K)`` (the sample is ``g / sum(g)``) and the result is
the Jacobian ``d(g/sum g)_i / dalpha_j`` of the gamma construction.

>>> import gsbref, mpmath
>>> r = implicit_derivative(gsbref.Gamma(shape=1.0, scale=1.0), [1.0], dps=20)
>>> mpmath.nstr(r["shape"][0], 15)
'1.17356302722473'
"""

from __future__ import annotations

import mpmath
import numpy as np

from ._results import to_float

__all__ = ["implicit_derivative", "ImplicitDerivative", "gamma_dz_dk_mp", "beta_dz_dab_mp"]


class ImplicitDerivative(dict):
    """``{parameter: object array of mpf}`` with ``method``, ``dps`` and :meth:`to_float`."""

    def __init__(self, values, method, dps):
        super().__init__(values)
        self.method = method
        self.dps = dps

    def to_float(self):
        return {k: to_float(v) for k, v in self.items()}


def _tail(dps):
    return (dps + 25) * mpmath.log(10)


def gamma_dz_dk_mp(x, k, dps=30, method="quad"):
    """``dz/dk`` of Gamma(k, 1) at ``z = x`` as an mpf (``dps`` significant digits)."""
    with mpmath.workdps(dps + 20):
        x, k = mpmath.mpf(x), mpmath.mpf(k)
        if x == 0:
            return mpmath.mpf(0)
        if method == "diff":
            low = mpmath.gammainc(k, 0, x, regularized=True) < 0.5
            if low:
                d = mpmath.diff(lambda kk: mpmath.gammainc(kk, 0, x, regularized=True), k)
            else:
                d = -mpmath.diff(lambda kk: mpmath.gammainc(kk, x, mpmath.inf, regularized=True), k)
            logpdf = (k - 1) * mpmath.log(x) - x - mpmath.loggamma(k)
            return -d / mpmath.exp(logpdf)
        c = mpmath.log(x) - mpmath.digamma(k)
        if x > (k + 1) * mpmath.mpf(10) ** ((dps + 20) / 2):
            # far upper tail: Q(k, x) = p(x) S with S = 1 + (k-1)/x + O(k^2/x^2), so
            # dz/dk = dQ/dk / p = c S + dS/dk = c (1 + (k-1)/x) + 1/x, the rest below 10^-(dps+20)
            return c * (1 + (k - 1) / x) + 1 / x
        T = _tail(dps)
        if c >= 0:  # upper form, t = x e^u
            f = lambda u: (c + u) * mpmath.exp(k * u - x * mpmath.expm1(u))  # noqa: E731
            U = mpmath.log1p(T / x)
            for _ in range(60):
                U = mpmath.log1p((T + k * U) / x)
            U += 1
            pts = [mpmath.mpf(0)]
            if x < k:
                pts.append(mpmath.log(k / x))
            s = 1 / mpmath.sqrt(x)
            extra = [pts[-1] + s, pts[-1] + 4 * s] + ([mpmath.log(1 / x)] if x < 1 else [])
            pts = sorted(set(pts + [p for p in extra if pts[-1] < p < U])) + [U]
        else:  # lower form, t = x e^-u
            f = lambda u: (-c + u) * mpmath.exp(-k * u - x * mpmath.expm1(-u))  # noqa: E731
            U = (T + x) / k
            s = min(1 / (k - x), 1 / mpmath.sqrt(x))
            pts = [mpmath.mpf(0)] + [p for p in (s, 4 * s, 16 * s) if p < U] + [U]
        return x * mpmath.quad(f, pts)


def beta_dz_dab_mp(x, a, b, dps=30, method="quad"):
    """``(dz/da, dz/db)`` of Beta(a, b) at ``z = x`` as mpf."""
    with mpmath.workdps(dps + 20):
        x, a, b = mpmath.mpf(x), mpmath.mpf(a), mpmath.mpf(b)
        if x == 0 or x == 1:
            return mpmath.mpf(0), mpmath.mpf(0)
        y = 1 - x
        logpdf = (a - 1) * mpmath.log(x) + (b - 1) * mpmath.log(y) - mpmath.log(mpmath.beta(a, b))
        if method == "diff":
            if mpmath.betainc(a, b, 0, x, regularized=True) < 0.5:
                F, sg = (lambda aa, bb: mpmath.betainc(aa, bb, 0, x, regularized=True)), 1
            else:
                F, sg = (lambda aa, bb: mpmath.betainc(aa, bb, x, 1, regularized=True)), -1
            da = sg * mpmath.diff(lambda t: F(t, b), a)
            db = sg * mpmath.diff(lambda t: F(a, t), b)
            p = mpmath.exp(logpdf)
            return -da / p, -db / p
        ca = mpmath.digamma(a) - mpmath.digamma(a + b)
        cb = mpmath.digamma(b) - mpmath.digamma(a + b)
        sx = mpmath.log(x / y)
        T = _tail(dps)
        # phi(s) - phi(s_x) and log t, log(1-t) in the logit variable s
        phix = -a * mpmath.log1p(mpmath.exp(-sx)) - b * mpmath.log1p(mpmath.exp(sx))

        def parts(s):
            lt = -mpmath.log1p(mpmath.exp(-s))
            l1t = -mpmath.log1p(mpmath.exp(s))
            return lt, l1t, mpmath.exp(a * lt + b * l1t - phix)

        def ends(direction):
            # march outwards until phi fell by T below its maximum on the half line
            sm = mpmath.log(a / b)
            start = sx
            pts = [sx]
            if direction * (sm - sx) > 0:
                pts.append(sm)
                start = sm
            lt, l1t, e = parts(start)
            top = a * lt + b * l1t
            step = 1 / mpmath.sqrt(a * b / (a + b))
            s = start
            while True:
                s = s + direction * step
                lt, l1t, _ = parts(s)
                pts.append(s)
                if a * lt + b * l1t < top - T:
                    break
                step *= 2
            return sorted(pts)

        def integral(direction, g):
            pts = ends(direction)
            return mpmath.quad(lambda s: g(*parts(s)[:2]) * parts(s)[2], pts)

        lower_a = mpmath.log(x) <= ca
        lower_b = mpmath.log(y) >= cb
        # w(t) dt / w(x) = x y exp(phi(s) - phi(s_x)) ds
        if lower_a:
            da = x * y * integral(-1, lambda lt, l1t: ca - lt)
        else:
            da = x * y * integral(1, lambda lt, l1t: lt - ca)
        if lower_b:
            db = -x * y * integral(-1, lambda lt, l1t: l1t - cb)
        else:
            db = x * y * integral(1, lambda lt, l1t: l1t - cb)
        return da, db


def _check_z(z, lo, hi, name="z"):
    arr = np.asarray(z, dtype=float)
    if np.isnan(arr).any() or (arr < lo).any() or (arr > hi).any():
        raise ValueError(f"{name} must lie in [{lo}, {hi}]")
    return arr


def implicit_derivative(dist, z, dps=30, method="quad"):
    """Per-sample ``dz/dtheta`` at the samples ``z`` (see the module docstring); ``dps`` decimal
    digits (integer >= 5); ``method`` ``"quad"`` or ``"diff"``.  Parameters of ``dist`` must be
    scalars (one distribution, many samples)."""
    from . import _check_dps

    if dps is None:
        raise ValueError("implicit_derivative needs an integer dps >= 5 (no float64 path: use gsbref.special)")
    dps = _check_dps(dps)
    if method not in ("quad", "diff"):
        raise ValueError(f"method must be 'quad' or 'diff', got {method!r}")
    name = type(dist).__name__
    params = {k: np.asarray(v, dtype=float) for k, v in dist.params.items()}
    if name != "Dirichlet" and any(v.ndim for v in params.values()):
        raise ValueError("implicit_derivative takes a distribution with scalar parameters")
    out = {}
    if name in ("Gamma", "Exponential", "ChiSquared"):
        zz = _check_z(z, 0.0, np.inf)
        if name == "Gamma":
            k, mu = float(params["shape"]), float(params["scale"])
        elif name == "Exponential":
            k, mu = 1.0, float(params["scale"])
        else:
            k, mu = float(params["df"]) / 2, 2.0
        flat = zz.reshape(-1)
        with mpmath.workdps(dps + 10):
            dk = np.array([mpmath.mpf(mu) * gamma_dz_dk_mp(mpmath.mpf(v) / mu, k, dps, method) for v in flat],
                          dtype=object).reshape(zz.shape)
            dmu = np.array([mpmath.mpf(v) / mu for v in flat], dtype=object).reshape(zz.shape)
        if name == "Gamma":
            out = {"shape": dk, "scale": dmu}
        elif name == "Exponential":
            out = {"scale": dmu}
        else:
            out = {"df": np.array([d / 2 for d in dk.reshape(-1)], dtype=object).reshape(zz.shape)}
    elif name == "Beta":
        zz = _check_z(z, 0.0, 1.0)
        a, b = float(params["alpha"]), float(params["beta"])
        res = [beta_dz_dab_mp(v, a, b, dps, method) for v in zz.reshape(-1)]
        out = {"alpha": np.array([r[0] for r in res], dtype=object).reshape(zz.shape),
               "beta": np.array([r[1] for r in res], dtype=object).reshape(zz.shape)}
    elif name == "Dirichlet":
        g = _check_z(z, 0.0, np.inf, "z (the gamma variates)")
        alpha = np.broadcast_to(params["concentration"], g.shape)
        if g.ndim == 0 or g.shape[-1] < 2:
            raise ValueError("z must be the gamma variates, shape (..., K) with K >= 2")
        K = g.shape[-1]
        gf, af = g.reshape(-1, K), alpha.reshape(-1, K)
        J = np.empty((gf.shape[0], K, K), dtype=object)
        with mpmath.workdps(dps + 10):
            for r in range(gf.shape[0]):
                gs = [mpmath.mpf(v) for v in gf[r]]
                S = mpmath.fsum(gs)
                if S == 0:
                    raise ValueError("each sample needs a positive gamma variate")
                dg = [gamma_dz_dk_mp(gs[j], af[r, j], dps, method) for j in range(K)]
                for i in range(K):
                    for j in range(K):
                        J[r, i, j] = ((1 if i == j else 0) - gs[i] / S) * dg[j] / S
        out = {"concentration": J.reshape(g.shape[:-1] + (K, K))}
    else:
        raise TypeError(f"implicit_derivative does not support {name} (Gamma, Exponential, ChiSquared, Beta, Dirichlet)")
    return ImplicitDerivative(out, method, dps)
