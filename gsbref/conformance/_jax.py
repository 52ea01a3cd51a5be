"""JAX adapter: the library's per-sample pathwise derivatives, at given points and by sampling.

Nothing here imports ``jax`` at module import.  float64 runs inside ``jax.enable_x64(True)``
(a context manager: the global flag is restored on exit).  What is called, exactly:

* ``jax.lax.random_gamma_grad(k, x)`` -- the derivative ``dx/dk`` of a standard Gamma(k, 1)
  sample holding the CDF fixed; it is the tangent rule of ``jax.random.gamma``.  Evaluated at
  chosen ``(x, k)``.
* ``jax._src.random.core._gamma_grad(log_x, k, log_space=True)`` (private) -- the tangent rule of
  ``jax.random.loggamma``, which ``jax.random.beta`` and ``jax.random.dirichlet`` sample through:
  ``d log x / dk = random_gamma_grad(k, exp(log_x)) / exp(log_x)`` with ``exp(log_x)`` replaced
  by the smallest normal number when it underflows to 0.  Evaluated at chosen ``(log x, k)``.
* ``jax.random.gamma``, ``beta``, ``dirichlet``, ``normal``, ``laplace``, ``exponential`` with
  ``jax.vjp`` for the per-sample estimators; for Beta and Dirichlet samples the underlying gamma
  variates are reproduced with the same keys (``jax.random.split`` then ``loggamma``, as
  ``jax.random.beta`` does; ``loggamma`` with the same key for ``dirichlet``) so that the exact
  gamma-construction derivative can be evaluated at them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

NAME = "jax"
DTYPES = ("float64", "float32")


def _jax():
    import jax

    return jax


def version() -> str:
    import jax
    import jaxlib

    return f"{jax.__version__} (jaxlib {jaxlib.__version__})"


def _x64(dtype: str):
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return _jax().enable_x64(dtype == "float64")


def _a(x, dtype):
    return _jax().numpy.asarray(np.asarray(x, dtype=dtype))


def _np(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).copy()


def _key(rng):
    return _jax().random.key(int(rng.integers(2**31 - 1)))


# ----------------------------------------------------------------------------------------------
# tangent rules at given points (check (a) on grids)
# ----------------------------------------------------------------------------------------------
def gamma_dz_dshape(z, k, dtype: str) -> np.ndarray:
    """``jax.lax.random_gamma_grad(k, z)`` at ``dtype``-rounded inputs, returned as float64."""
    z, k = np.broadcast_arrays(np.asarray(z, float), np.asarray(k, float))
    with _x64(dtype):
        return _np(_jax().lax.random_gamma_grad(_a(k, dtype), _a(z, dtype)))


def loggamma_dlogz_dshape(log_z, k, dtype: str) -> np.ndarray:
    """The tangent rule of ``jax.random.loggamma`` (private ``_gamma_grad(..., log_space=True)``):
    ``d log z / dk`` at ``dtype``-rounded ``(log z, k)``."""
    from jax._src.random.core import _gamma_grad

    log_z, k = np.broadcast_arrays(np.asarray(log_z, float), np.asarray(k, float))
    with _x64(dtype):
        return _np(_gamma_grad(_a(log_z, dtype), _a(k, dtype), log_space=True))


# ----------------------------------------------------------------------------------------------
# sampling with autodiff (check (a) random search, end to end)
# ----------------------------------------------------------------------------------------------
def sample_jacobian(family: str, params: dict, rng, dtype: str) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """One sample per row of ``params`` and its per-sample derivatives by ``jax.jvp`` (one
    tangent per parameter component).  Returns ``(z, {name: dz/dtheta}, log_gammas)`` with
    ``log_gammas`` the reproduced underlying log-gamma variates (Beta: ``(n, 2)``, Dirichlet:
    ``(n, K)``; ``None`` for the Gamma).  Dirichlet Jacobian: ``[n, i, j] = dz_j / dalpha_i``."""
    jax = _jax()
    jnp = jax.numpy
    key = _key(rng)
    with _x64(dtype):
        p = {k: _a(v, dtype) for k, v in params.items()}
        if family == "gamma":
            fn = lambda shape, scale: jax.random.gamma(key, shape, dtype=shape.dtype) * scale
        elif family == "beta":
            fn = lambda alpha, beta: jax.random.beta(key, alpha, beta, dtype=alpha.dtype)
        elif family == "dirichlet":
            fn = lambda concentration: jax.random.dirichlet(key, concentration, dtype=concentration.dtype)
        else:
            raise ValueError(f"family must be gamma, beta or dirichlet, got {family!r}")
        names = list(p)
        z = fn(**p)
        jac = {}
        for k in names:
            if family == "dirichlet":
                K = p[k].shape[-1]
                cols = []
                for i in range(K):
                    t = {m: jnp.zeros_like(v) for m, v in p.items()}
                    t[k] = t[k].at[:, i].set(1)
                    cols.append(_np(jax.jvp(fn, (p[k],), (t[k],))[1]))
                jac[k] = np.stack(cols, axis=1)  # [n, i, j]
            else:
                tang = tuple(jnp.ones_like(p[m]) if m == k else jnp.zeros_like(p[m]) for m in names)
                jac[k] = _np(jax.jvp(fn, tuple(p[m] for m in names), tang)[1])
        logg = None
        if family == "beta":
            ka, kb = jax.random.split(key)
            logg = np.stack([_np(jax.random.loggamma(ka, p["alpha"], dtype=p["alpha"].dtype)),
                             _np(jax.random.loggamma(kb, p["beta"], dtype=p["beta"].dtype))], -1)
        elif family == "dirichlet":
            c = p["concentration"]
            logg = _np(jax.random.loggamma(key, c, dtype=c.dtype))
        return _np(z), jac, logg


def beta_draws(seeds, a, b, dtype: str) -> dict:
    """One ``jax.random.beta(jax.random.key(seed), a_i, b_i)`` per element (``jax.vmap`` over the
    keys, so each element is the scalar call of the same key), its ``jax.jvp`` tangents in ``a``
    and ``b``, and the two log-gamma variates it is built from (``jax.random.split`` of the key,
    then ``loggamma``, as ``jax.random.beta`` does).  Returns float64 arrays ``z, dz_da, dz_db,
    log_ga, log_gb``."""
    jax = _jax()
    jnp = jax.numpy
    seeds = np.asarray(seeds, dtype=np.uint32)
    with _x64(dtype):
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        A, B = _a(a, dtype), _a(b, dtype)

        def one(key, aa, bb):
            z, da = jax.jvp(lambda x: jax.random.beta(key, x, bb, dtype=aa.dtype), (aa,), (jnp.ones_like(aa),))
            _, db = jax.jvp(lambda x: jax.random.beta(key, aa, x, dtype=aa.dtype), (bb,), (jnp.ones_like(bb),))
            ka, kb = jax.random.split(key)
            return z, da, db, jax.random.loggamma(ka, aa, dtype=aa.dtype), jax.random.loggamma(kb, bb, dtype=bb.dtype)

        out = jax.jit(jax.vmap(one))(keys, A, B)
        return dict(zip(("z", "dz_da", "dz_db", "log_ga", "log_gb"), (_np(o) for o in out)))


# ----------------------------------------------------------------------------------------------
# per-sample estimators (check (b))
# ----------------------------------------------------------------------------------------------
FAMILIES = ("Gaussian", "Laplace", "Gamma", "Exponential", "ChiSquared", "Beta", "Dirichlet")


def _maker(dist, key):
    jax = _jax()
    r = jax.random
    name = type(dist).__name__
    if name == "Gaussian":
        return lambda loc, scale: loc + scale * r.normal(key, loc.shape, dtype=loc.dtype)
    if name == "Laplace":
        return lambda loc, scale: loc + scale * r.laplace(key, loc.shape, dtype=loc.dtype)
    if name == "Gamma":
        return lambda shape, scale: scale * r.gamma(key, shape, dtype=shape.dtype)
    if name == "Exponential":
        return lambda scale: scale * r.exponential(key, scale.shape, dtype=scale.dtype)
    if name == "ChiSquared":
        return lambda df: 2 * r.gamma(key, df / 2, dtype=df.dtype)
    if name == "Beta":
        return lambda alpha, beta: r.beta(key, alpha, beta, dtype=alpha.dtype)
    if name == "Dirichlet":
        return lambda concentration: r.dirichlet(key, concentration, dtype=concentration.dtype)
    raise ValueError(f"no jax.random counterpart wired for {name}; supported: {FAMILIES}")


def estimator(dtype: str = "float64") -> Callable:
    """A gsbref.testing estimator ``(dist, f, n, rng) -> {param: (n, *param_shape)}``: one draw
    per sample with per-sample parameters, ``grad f`` (float64, gsbref) as the cotangent of
    ``jax.vjp``.  ChiSquared is ``2 * gamma(df / 2)`` (JAX's own ``chisquare`` is the same
    construction)."""
    jax = _jax()

    def run(dist, f, n, rng):
        from ..functions import as_function

        f = as_function(f)
        key = _key(rng)
        ev = tuple(dist.event_shape)
        factorized = type(dist).__name__ != "Dirichlet"
        with _x64(dtype):
            p = {}
            for k, v in dist.params.items():
                full = np.broadcast_to(v, (n, *ev)) if factorized else np.broadcast_to(v, (n, *np.shape(v)))
                p[k] = _a(np.ascontiguousarray(full), dtype)
            names = list(p)
            make = _maker(dist, key)
            z, vjp = jax.vjp(lambda *a: make(**dict(zip(names, a))), *(p[k] for k in names))
            zf = _np(z).reshape(n, -1)
            g = np.asarray(f.gradient(zf), float).reshape(z.shape)
            grads = vjp(_a(g, dtype))
        out = {}
        for k, gk in zip(names, grads):
            gk = _np(gk)
            out[k] = dist._reduce_to_param(k, gk, 1) if factorized else gk
        return out

    return run
