"""Multivariate Gaussian, ``MultivariateGaussian(loc, cov)``: ``loc`` of shape ``(d,)``, ``cov`` a
symmetric positive-definite ``(d, d)`` matrix; one (unbatched) d-dimensional Gaussian,
``event_shape = (d,)``.

Gradient convention for ``cov``: every entry ``cov[k, l]`` is treated as a free variable of the
formula ``log p = -(z - mu)^T cov^-1 (z - mu) / 2 - log det(cov) / 2 - d log(2 pi) / 2`` (no
symmetry constraint), so ``score(z)["cov"] = (S^-1 (z - mu)(z - mu)^T S^-1 - S^-1) / 2`` and
``grad_log_cf(w)["cov"] = -w w^T / 2``; then ``d E[f] / d cov = E[Hessian f] / 2`` (eq. 14).  These
gradients ``G`` are symmetric, and ``dL = sum_kl G[k, l] dcov[k, l]`` for every symmetric
perturbation ``dcov``; for a symmetric parametrisation with one variable per pair ``k < l`` (both
entries move together) the derivative is ``G[k, l] + G[l, k] = 2 G[k, l]``.

Theorem 1 coefficients (``a_coefficients(order)``) use a multi-index form, because a coordinate's
derivative can involve mixed partials: the result is ``{name: {alpha: A}}`` where ``alpha`` is a
multi-index (a tuple of d non-negative ints, ``|alpha| <= order``) and ``A`` an array of the
parameter's shape holding ``a_alpha`` for every entry of that parameter, so that
``d log phi / d theta = sum_alpha A[...] (i w)**alpha`` with ``(i w)**alpha = prod_j (i w_j)**alpha_j``.
Only non-zero coefficients are listed:

* ``"loc"``: ``alpha = e_k`` (order 1) -> the unit vector ``e_k`` (``d/d loc_k log phi = i w_k``);
* ``"cov"``: ``alpha = e_k + e_l`` (order 2) -> ``1/2`` at entries ``[k, l]`` and ``[l, k]``
  (``d/d cov_kl log phi = (i w_k)(i w_l) / 2``).

So ``d/d cov_kl E[f] = sum_alpha A[k, l] E[d^alpha f] = E[d_k d_l f] / 2``.

>>> g = MultivariateGaussian(loc=[0.0, 1.0], cov=[[2.0, 0.5], [0.5, 1.0]])
>>> a = g.a_coefficients(2)
>>> sorted(a["cov"])
[(0, 2), (1, 1), (2, 0)]
>>> a["cov"][(1, 1)].tolist()
[[0.0, 0.5], [0.5, 0.0]]
>>> a["loc"][(0, 1)].tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy import linalg as _la

from .._backend import asarray, generator, is_numpy, to_numpy
from ._base import POSITIVE_DEFINITE, REAL, Distribution, Parameter, _check_n

__all__ = ["MultivariateGaussian"]


class MultivariateGaussian(Distribution):
    parameters = (
        Parameter("loc", REAL, (-3.0, 3.0), event_ndim=1, doc="mean vector, shape (d,)"),
        Parameter(
            "cov", POSITIVE_DEFINITE, (0.1, 3.0), event_ndim=2, log_scale=True,
            doc="covariance matrix, shape (d, d); 'typical' is the range of its eigenvalues",
        ),
    )

    def __init__(self, loc=(0.0,), cov=((1.0,),)):
        self._set_params(loc=loc, cov=cov)
        d = self.loc.shape[-1]
        if self.loc.ndim != 1:
            raise ValueError(
                f"MultivariateGaussian: parameter 'loc' must be a vector of shape (d,) with entries in "
                f"{REAL.describe()} (batches are not supported); got shape {self.loc.shape}"
            )
        if self.cov.shape != (d, d):
            raise ValueError(
                f"MultivariateGaussian: parameter 'cov' must be a ({d}, {d}) matrix in "
                f"{POSITIVE_DEFINITE.describe()} to match 'loc' of shape ({d},); got shape {self.cov.shape}"
            )
        cov = to_numpy(self.cov)
        chol = np.linalg.cholesky(cov)
        object.__setattr__(self, "event_shape", (d,))
        if not is_numpy(self.xp):
            chol = asarray(chol, self.xp)
        else:
            chol.setflags(write=False)
        object.__setattr__(self, "_chol", chol)

    @property
    def dim(self) -> int:
        return self.event_shape[0]

    # -- helpers ---------------------------------------------------------------------------
    def _solve(self, x: np.ndarray) -> np.ndarray:
        """``cov^-1 x`` for ``x`` of shape (..., d), via the Cholesky factor."""
        flat = x.reshape(-1, self.dim).T
        out = _la.cho_solve((self._chol, True), flat)
        return out.T.reshape(x.shape)

    def _precision(self) -> np.ndarray:
        return _la.cho_solve((self._chol, True), np.eye(self.dim))

    # -- sampling and density --------------------------------------------------------------
    def _host_factors(self) -> dict:
        """``L^-1``, ``sym(cov^-1)`` (NumPy) and ``log det cov``, computed once on the host: for
        other namespaces, which have no triangular solve in the standard, the per-sample work is
        then matrix products with these d x d factors."""
        cache = self._params_by_ns
        if "host" not in cache:
            chol = to_numpy(self._chol)
            prec = _la.cho_solve((chol, True), np.eye(self.dim))
            cache["host"] = {
                "chol_inv": _la.solve_triangular(chol, np.eye(self.dim), lower=True),
                "prec_sym": 0.5 * (prec + prec.T),
                "logdet": float(2.0 * np.log(np.diag(chol)).sum()),
                "loc": to_numpy(self.loc),
                "cov": to_numpy(self.cov),
            }
        return cache["host"]

    def _in(self, xp, name):
        """Host factor or parameter ``name`` in namespace ``xp`` (converted once, cached)."""
        cache = self._params_by_ns.setdefault(name, {})
        if id(xp) not in cache:
            cache[id(xp)] = asarray(self._host_factors()[name], xp)
        return cache[id(xp)]

    def sample(self, rng, n: int) -> np.ndarray:
        rng = generator(self.xp, rng)
        n = _check_n(n)
        e = rng.standard_normal((n, self.dim))
        return self.loc + e @ self._chol.T

    def log_prob(self, z) -> np.ndarray:
        z = self._check_z(z)
        xp = self._ns_of(z)
        if not is_numpy(xp):
            r = z - self._in(xp, "loc")
            u = r @ self._in(xp, "chol_inv").T  # rows L^-1 r
            maha = xp.sum(u * u, axis=-1)
            return -0.5 * (maha + self._host_factors()["logdet"] + self.dim * math.log(2 * math.pi))
        r = z - self.loc
        flat = r.reshape(-1, self.dim).T
        u = _la.solve_triangular(self._chol, flat, lower=True)  # L^-1 r
        maha = (u * u).sum(0).reshape(r.shape[:-1])
        logdet = 2.0 * np.log(np.diag(self._chol)).sum()
        return -0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))

    def score(self, z) -> dict[str, np.ndarray]:
        z = self._check_z(z)
        xp = self._ns_of(z)
        if not is_numpy(xp):
            P = self._in(xp, "prec_sym")
            s = (z - self._in(xp, "loc")) @ P  # P symmetric: rows cov^-1 (z - mu)
            return {"loc": s, "cov": 0.5 * (s[..., :, None] * s[..., None, :] - P)}
        s = self._solve(z - self.loc)  # cov^-1 (z - mu)
        P = self._precision()
        P = 0.5 * (P + P.T)
        return {"loc": s, "cov": 0.5 * (s[..., :, None] * s[..., None, :] - P)}

    # -- characteristic function and theorem 1 ---------------------------------------------
    def log_cf(self, omega) -> np.ndarray:
        w = self._check_z(omega)
        xp = self._ns_of(w)
        if not is_numpy(xp):
            quad = xp.sum((w @ self._in(xp, "cov")) * w, axis=-1)
            return 1j * (w @ self._in(xp, "loc")) - 0.5 * quad
        quad = np.einsum("...i,ij,...j->...", w, self.cov, w)
        return 1j * (w @ self.loc) - 0.5 * quad

    def grad_log_cf(self, omega) -> dict[str, np.ndarray]:
        w = self._check_z(omega)
        xp = self._ns_of(w)
        if not is_numpy(xp):
            return {"loc": 1j * w, "cov": xp.astype(-0.5 * w[..., :, None] * w[..., None, :], xp.complex128)}
        return {
            "loc": 1j * w,
            "cov": (-0.5 * w[..., :, None] * w[..., None, :]).astype(complex),
        }

    def a_coefficients(self, order: int) -> dict[str, dict[tuple[int, ...], np.ndarray]]:
        """Theorem-1 coefficients in multi-index form (see the module docstring)."""
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
            raise ValueError(f"order must be a non-negative integer, got {order!r}")
        d = self.dim
        out: dict[str, dict[tuple[int, ...], np.ndarray]] = {"loc": {}, "cov": {}}
        if order >= 1:
            for k in range(d):
                idx = [0] * d
                idx[k] = 1
                out["loc"][tuple(idx)] = np.eye(d)[k]
        if order >= 2:
            for k in range(d):
                for l in range(k, d):
                    idx = [0] * d
                    idx[k] += 1
                    idx[l] += 1
                    A = np.zeros((d, d))
                    A[k, l] = A[l, k] = 0.5
                    out["cov"][tuple(idx)] = A
        if not is_numpy(self.xp):
            out = {k: {i: asarray(A, self.xp) for i, A in v.items()} for k, v in out.items()}
        return out

    # -- moments ---------------------------------------------------------------------------
    def mean(self) -> np.ndarray:
        return self.xp.asarray(self.loc, copy=True)

    def variance(self) -> np.ndarray:
        if not is_numpy(self.xp):
            return asarray(np.diag(to_numpy(self.cov)), self.xp)
        return np.diag(self.cov).copy()

    def covariance(self) -> np.ndarray:
        return self.xp.asarray(self.cov, copy=True)

    # -- mpmath (used by the oracle) -------------------------------------------------------
    @classmethod
    def mp_logpdf(cls, z_seq, loc_seq, cov_rows):
        """log density at ``z_seq`` for mean ``loc_seq`` and covariance ``cov_rows`` (a list of rows),
        at the working precision.  ``cov`` need not be symmetric (the free-entry convention:
        ``-(z - mu)^T cov^-1 (z - mu) / 2 - log det(cov) / 2 - d log(2 pi) / 2``)."""
        d = len(loc_seq)
        S = mpmath.matrix(cov_rows)
        r = mpmath.matrix([z - m for z, m in zip(z_seq, loc_seq)])
        x = mpmath.lu_solve(S, r)
        maha = mpmath.fsum(r[i] * x[i] for i in range(d))
        return -(maha + mpmath.log(mpmath.det(S)) + d * mpmath.log(2 * mpmath.pi)) / 2

    @classmethod
    def mp_score(cls, z_seq, loc_seq, cov_rows):
        """``{"loc": [d mpf], "cov": [[d x d mpf]]}`` at the working precision."""
        d = len(loc_seq)
        S = mpmath.matrix(cov_rows)
        P = S**-1
        r = mpmath.matrix([z - m for z, m in zip(z_seq, loc_seq)])
        s = P * r
        return {
            "loc": [s[i] for i in range(d)],
            "cov": [[(s[i] * s[j] - P[i, j]) / 2 for j in range(d)] for i in range(d)],
        }
