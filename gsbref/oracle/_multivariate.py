"""Exact E[f] and gradients for MultivariateGaussian and Dirichlet by nested quadrature.

MultivariateGaussian(loc, cov): product Gauss-Hermite in whitened coordinates ``z = loc + L u``
(``cov = L L^T``, ``u`` standard normal).  Gradient convention: every entry of ``cov`` is a free
variable, so ``dE/dcov = E[f (S^-1 (z - loc)(z - loc)^T S^-1 - S^-1) / 2]`` (symmetric, equal to
``E[hessian f] / 2``).  ``"diff"`` perturbs ``cov[i, j]`` and ``cov[j, i]`` together by ``h/2`` each
(``h`` on the diagonal) -- for a symmetric gradient this is the same number -- and integrates
``f (N(z; theta + h) - N(z; theta - h)) / 2h`` on the same nodes (the density differentiated
numerically under the integral).

Dirichlet(concentration): stick-breaking ``v_i ~ Beta(a_i, a_{i+1} + ... + a_K)`` independent,
``z_i = v_i prod_{l<i} (1 - v_l)``, ``z_K = prod_l (1 - v_l)`` -- nested tanh-sinh over Beta
coordinates with the endpoint transforms for small shapes.  ``"diff"`` integrates the perturbed
Dirichlet densities ``Dir(z; alpha +- h e_k)`` over the same nodes (their central difference).
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mp

from ._factorized import MAX_NESTED, diff_precision, diff_steps, diff_tolerance
from ._quad import Piece, gauss_hermite, nested_vquad

__all__ = ["mvn_moments", "dirichlet_moments"]


def _mvn_logpdf(z, loc, Sinv, logdet):
    r = z - loc
    d = len(loc)
    q = (r.T * Sinv * r)[0, 0]
    return -q / 2 - logdet / 2 - d * mpmath.log(2 * mp.pi) / 2


def mvn_moments(dist, f, method, with_grad=True):
    d = dist.event_size
    if d > MAX_NESTED:
        raise ValueError(f"MultivariateGaussian: nested quadrature is limited to d <= {MAX_NESTED}, got d = {d}")
    mode = method if with_grad else "E"
    prec = mp.prec
    h = diff_steps({"x": max(np.max(np.abs(dist.cov)), np.max(np.abs(dist.loc)), 1.0)})["x"] if mode == "diff" else None
    tol = diff_tolerance() if mode == "diff" else None
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    with mpmath.workprec(diff_precision() if mode == "diff" else prec):
        loc = mpmath.matrix([mpmath.mpf(float(x)) for x in dist.loc])
        cov = mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in dist.cov])
        L = mpmath.cholesky(cov)
        Linv = L**-1
        Sinv = Linv.T * Linv
        if mode == "diff":
            perturbed = []
            for i in range(d):
                for sgn in (1, -1):
                    l2 = loc.copy()
                    l2[i] += sgn * h
                    perturbed.append((l2, Sinv, mpmath.log(mpmath.det(cov))))
            for (i, j) in pairs:
                for sgn in (1, -1):
                    c2 = cov.copy()
                    if i == j:
                        c2[i, i] += sgn * h
                    else:
                        c2[i, j] += sgn * h / 2
                        c2[j, i] += sgn * h / 2
                    perturbed.append((loc, c2**-1, mpmath.log(mpmath.det(c2))))
            base_logdet = mpmath.log(mpmath.det(cov))

        def fun(u):
            uu = mpmath.matrix(u)
            z = loc + L * uu
            fz = f.mp([z[i] for i in range(d)])
            out = [fz]
            if mode == "quad":
                r = Linv.T * uu  # S^-1 (z - loc)
                out += [fz * r[i] for i in range(d)]
                out += [fz * (r[i] * r[j] - Sinv[i, j]) / 2 for i in range(d) for j in range(d)]
            elif mode == "diff":
                lp0 = _mvn_logpdf(z, loc, Sinv, base_logdet)
                ratios = [mpmath.exp(_mvn_logpdf(z, l2, S2, ld2) - lp0) for (l2, S2, ld2) in perturbed]
                out += [fz * (ratios[2 * m] - ratios[2 * m + 1]) / (2 * h) for m in range(len(ratios) // 2)]
            return out

        vals, errs = gauss_hermite(fun, d, tol=tol)
        E, E_err = +vals[0], +errs[0]
        if mode == "E":
            return E, E_err, {}, {}
        if mode == "quad":
            g_loc = np.array([+v for v in vals[1:1 + d]], dtype=object)
            e_loc = np.array([+v for v in errs[1:1 + d]], dtype=object)
            g_cov = np.array([+v for v in vals[1 + d:]], dtype=object).reshape(d, d)
            e_cov = np.array([+v for v in errs[1 + d:]], dtype=object).reshape(d, d)
            return E, E_err, {"loc": g_loc, "cov": g_cov}, {"loc": e_loc, "cov": e_cov}
        diffs = vals[1:]
        derr = [e + abs(v) * h * h for v, e in zip(vals[1:], errs[1:])]
        g_loc = np.array([+x for x in diffs[:d]], dtype=object)
        e_loc = np.array([+x for x in derr[:d]], dtype=object)
        g_cov = np.empty((d, d), dtype=object)
        e_cov = np.empty((d, d), dtype=object)
        for m, (i, j) in enumerate(pairs):
            g_cov[i, j] = g_cov[j, i] = +diffs[d + m]
            e_cov[i, j] = e_cov[j, i] = +derr[d + m]
        return E, E_err, {"loc": g_loc, "cov": g_cov}, {"loc": e_loc, "cov": e_cov}


def _beta_pieces(a, b):
    m = a / (a + b)
    m = min(max(m, mpmath.mpf("0.01")), mpmath.mpf("0.99"))
    return [Piece(0, m, a if a < 1 else None, None), Piece(m, 1, None, b if b < 1 else None)]


def _dirichlet_lognorm(alpha):
    return mpmath.loggamma(mpmath.fsum(alpha)) - mpmath.fsum(mpmath.loggamma(a) for a in alpha)


def dirichlet_moments(dist, f, method, with_grad=True):
    conc = np.asarray(dist.concentration)
    if conc.ndim != 1:
        raise ValueError("the oracle handles one Dirichlet (concentration of shape (K,)) at a time")
    K = conc.shape[0]
    if K - 1 > MAX_NESTED:
        raise ValueError(f"Dirichlet: nested quadrature is limited to K <= {MAX_NESTED + 1}, got K = {K}")
    mode = method if with_grad else "E"
    steps = diff_steps({k: float(a) for k, a in enumerate(conc)}) if mode == "diff" else None
    tol = diff_tolerance() if mode == "diff" else None
    with mpmath.workprec(diff_precision() if mode == "diff" else mp.prec):
        alpha = [mpmath.mpf(float(x)) for x in conc]
        a0 = mpmath.fsum(alpha)
        tails = [mpmath.fsum(alpha[i + 1:]) for i in range(K)]
        pieces = [_beta_pieces(alpha[i], tails[i]) for i in range(K - 1)]
        logB = [mpmath.log(mpmath.beta(alpha[i], tails[i])) for i in range(K - 1)]
        psi = [mpmath.digamma(a) for a in alpha]
        psi0 = mpmath.digamma(a0)
        if mode == "diff":
            pert = []
            for k in range(K):
                for sgn in (1, -1):
                    a2 = list(alpha)
                    a2[k] += sgn * steps[k]
                    pert.append(a2)
            # log density ratio to the unperturbed alpha: only alpha_k changed
            pert_c = [_dirichlet_lognorm(a2) - _dirichlet_lognorm(alpha) for a2 in pert]
        def fun(v):
            lw = mp.zero
            z, logz = [], []
            rest, logrest = mp.one, mp.zero
            for i, vi in enumerate(v):
                if vi <= 0 or vi >= 1:
                    return None
                l1v = mpmath.log(1 - vi)
                lw += (alpha[i] - 1) * mpmath.log(vi) + (tails[i] - 1) * l1v - logB[i]
                z.append(rest * vi)
                logz.append(logrest + mpmath.log(vi))
                rest *= 1 - vi
                logrest += l1v
            z.append(rest)
            logz.append(logrest)
            w = mpmath.exp(lw) * f.mp(z)
            if mode == "E":
                return [w]
            if mode == "quad":
                return [w, *(w * (logz[k] - psi[k] + psi0) for k in range(K))]
            r = [mpmath.exp(pert_c[m] + (pert[m][m // 2] - alpha[m // 2]) * logz[m // 2]) for m in range(2 * K)]
            return [w, *(w * (r[2 * k] - r[2 * k + 1]) / (2 * steps[k]) for k in range(K))]

        vals, errs = nested_vquad(fun, pieces, tol=tol)
        E, E_err = +vals[0], +errs[0]
        if mode == "E":
            return E, E_err, {}, {}
        if mode == "quad":
            return (E, E_err, {"concentration": np.array([+v for v in vals[1:]], dtype=object)},
                    {"concentration": np.array([+v for v in errs[1:]], dtype=object)})
        g = np.array([+v for v in vals[1:]], dtype=object)
        e = np.array([+(er + abs(v) * steps[k] ** 2) for k, (v, er) in enumerate(zip(vals[1:], errs[1:]))], dtype=object)
        return E, E_err, {"concentration": g}, {"concentration": e}
