"""PyTorch adapter: the library's per-sample pathwise derivatives, at given points and by sampling.

Nothing here imports ``torch`` at module import; every function imports it when called.  What is
called, exactly (the conformance report quotes this list):

* ``torch._standard_gamma_grad(alpha, x)`` -- the backward formula of ``torch._standard_gamma``,
  which ``Gamma.rsample`` (and ``Chi2``) call: ``dx/dalpha`` for ``x ~ Gamma(alpha, 1)`` holding
  the CDF fixed.  Evaluated at chosen ``(x, alpha)``, so grids over quantiles are exact inputs.
* ``torch.distributions.dirichlet._Dirichlet_backward(x, alpha, grad_output)`` -- the backward of
  ``Dirichlet.rsample`` (and of ``Beta.rsample``, which is ``Dirichlet([a, b]).rsample()[..., 0]``).
  It calls ``torch._dirichlet_grad(x, alpha, total)``, which returns ``(dx_i/dalpha_i) / (1 - x_i)``
  with ``dx_i/dalpha_i`` the inverse-CDF derivative of the Beta marginal
  ``x_i ~ Beta(alpha_i, total - alpha_i)`` at fixed ``total - alpha_i``; the Jacobian is
  ``dx_j/dalpha_i = grad_i (delta_ij - x_j)``.  This is *not* the gamma construction of the sampler
  (torch draws the gammas and normalises them, then differentiates along a different transport),
  so the exact value to compare with is that transport's: for a Beta it is the unique
  inverse-CDF derivative, for a Dirichlet the same formula with exact marginal derivatives.
* ``rsample`` of ``Normal``, ``Laplace``, ``Gamma``, ``Exponential``, ``Chi2``, ``Beta``,
  ``Dirichlet``, ``RelaxedBernoulli`` with ``torch.autograd.grad`` (vector-Jacobian products with
  ``grad f`` from gsbref's functions layer) for the per-sample estimators.

Randomness: torch's samplers draw from its global generator; every call runs inside
``torch.random.fork_rng`` seeded from the caller's NumPy ``rng``, so the global state is restored
afterwards and results are reproducible from ``rng``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

NAME = "torch"
DTYPES = ("float64", "float32")


def _torch():
    import torch

    return torch


def version() -> str:
    return _torch().__version__


def _tdtype(dtype: str):
    torch = _torch()
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return {"float64": torch.float64, "float32": torch.float32}[dtype]


def _t(x, dtype):
    return _torch().as_tensor(np.asarray(x, dtype=dtype), dtype=_tdtype(dtype))


def _np(t) -> np.ndarray:
    return t.detach().to(_torch().float64).numpy().copy()


# ----------------------------------------------------------------------------------------------
# backward formulas at given points (check (a) on grids)
# ----------------------------------------------------------------------------------------------
def gamma_dz_dshape(z, k, dtype: str) -> np.ndarray:
    """``torch._standard_gamma_grad(k, z)``: dz/dk of a standard Gamma(k, 1) sample at ``z``
    (inputs rounded to ``dtype``; the result returned as float64)."""
    torch = _torch()
    z, k = np.broadcast_arrays(np.asarray(z, float), np.asarray(k, float))
    with torch.no_grad():
        return _np(torch._standard_gamma_grad(_t(k, dtype), _t(z, dtype)))


def beta_dz_dparams(z, a, b, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``(dz/da, dz/db)`` of a Beta(a, b) sample at ``z`` as ``Beta.rsample``'s backward computes
    them: ``_Dirichlet_backward(x=(z, 1 - z), alpha=(a, b), grad_output=(1, 0))``."""
    torch = _torch()
    from torch.distributions.dirichlet import _Dirichlet_backward

    z, a, b = np.broadcast_arrays(*(np.asarray(v, float) for v in (z, a, b)))
    zt = _t(z, dtype)
    x = torch.stack([zt, 1 - zt], -1)
    conc = torch.stack([_t(a, dtype), _t(b, dtype)], -1)
    go = torch.zeros_like(x)
    go[..., 0] = 1
    with torch.no_grad():
        g = _Dirichlet_backward(x, conc, go)
    return _np(g[..., 0]), _np(g[..., 1])


# ----------------------------------------------------------------------------------------------
# sampling with autograd (check (a) random search, end to end)
# ----------------------------------------------------------------------------------------------
def _seeded(rng):
    torch = _torch()
    seed = int(rng.integers(2**63 - 1))

    class _Ctx:
        def __enter__(self):
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            torch.manual_seed(seed)

        def __exit__(self, *exc):
            return self._fork.__exit__(*exc)

    return _Ctx()


def sample_jacobian(family: str, params: dict, rng, dtype: str) -> tuple[np.ndarray, dict]:
    """Draw one sample per row of ``params`` (arrays ``(n,)``, or ``(n, K)`` for the Dirichlet)
    with ``rsample`` and return ``(z, {name: dz/dtheta})`` from autograd.

    ``family``: ``"gamma"`` (params shape, scale), ``"beta"`` (alpha, beta), ``"dirichlet"``
    (concentration; the Jacobian ``[n, i, j] = dz_j / dalpha_i``).
    """
    torch = _torch()
    D = torch.distributions
    leaves = {k: _t(v, dtype).requires_grad_(True) for k, v in params.items()}
    with _seeded(rng):
        if family == "gamma":
            z = D.Gamma(leaves["shape"], 1 / leaves["scale"]).rsample()
        elif family == "beta":
            z = D.Beta(leaves["alpha"], leaves["beta"]).rsample()
        elif family == "dirichlet":
            z = D.Dirichlet(leaves["concentration"]).rsample()
        else:
            raise ValueError(f"family must be gamma, beta or dirichlet, got {family!r}")
    if family == "dirichlet":
        K = z.shape[-1]
        rows = []
        for j in range(K):
            go = torch.zeros_like(z)
            go[:, j] = 1
            (g,) = torch.autograd.grad(z, leaves["concentration"], go, retain_graph=j < K - 1)
            rows.append(_np(g))
        return _np(z), {"concentration": np.stack(rows, axis=-1)}
    names = list(leaves)
    grads = torch.autograd.grad(z, [leaves[k] for k in names], torch.ones_like(z))
    return _np(z), {k: _np(g) for k, g in zip(names, grads)}


# ----------------------------------------------------------------------------------------------
# per-sample estimators (check (b))
# ----------------------------------------------------------------------------------------------
FAMILIES = ("Gaussian", "Laplace", "Gamma", "Exponential", "ChiSquared", "Beta", "Dirichlet", "Bernoulli")


def _maker(dist, temperature):
    torch = _torch()
    D = torch.distributions
    name = type(dist).__name__
    if name == "Gaussian":
        return lambda loc, scale: D.Normal(loc, scale).rsample()
    if name == "Laplace":
        return lambda loc, scale: D.Laplace(loc, scale).rsample()
    if name == "Gamma":
        return lambda shape, scale: D.Gamma(shape, 1 / scale).rsample()
    if name == "Exponential":
        return lambda scale: D.Exponential(1 / scale).rsample()
    if name == "ChiSquared":
        return lambda df: D.Chi2(df).rsample()
    if name == "Beta":
        return lambda alpha, beta: D.Beta(alpha, beta).rsample()
    if name == "Dirichlet":
        return lambda concentration: D.Dirichlet(concentration).rsample()
    if name == "Bernoulli":
        return lambda probs: D.RelaxedBernoulli(torch.as_tensor(temperature, dtype=probs.dtype), probs=probs).rsample()
    if name == "BernoulliLogits":
        return lambda logits: D.RelaxedBernoulli(torch.as_tensor(temperature, dtype=logits.dtype), logits=logits).rsample()
    raise ValueError(f"no torch.distributions counterpart wired for {name}; supported: {FAMILIES}")


def estimator(dtype: str = "float64", temperature: float = 0.5) -> Callable:
    """A gsbref.testing estimator ``(dist, f, n, rng) -> {param: (n, *param_shape)}``: one
    ``rsample`` per sample with per-sample parameter leaves, ``grad f`` (float64, gsbref) as the
    cotangent of ``torch.autograd.grad``.  Bernoulli uses ``RelaxedBernoulli(temperature)`` (the
    binary Concrete; biased for the discrete objective)."""
    torch = _torch()

    def run(dist, f, n, rng):
        from ..functions import as_function

        f = as_function(f)
        make = _maker(dist, temperature)
        ev = tuple(dist.event_shape)
        factorized = type(dist).__name__ != "Dirichlet"
        leaves = {}
        for k, v in dist.params.items():
            full = np.broadcast_to(v, (n, *ev)) if factorized else np.broadcast_to(v, (n, *np.shape(v)))
            leaves[k] = _t(np.ascontiguousarray(full), dtype).requires_grad_(True)
        with _seeded(rng):
            z = make(**leaves)
        zf = _np(z).reshape(n, -1)
        g = np.asarray(f.gradient(zf), float).reshape(z.shape)
        grads = torch.autograd.grad(z, list(leaves.values()), _t(g, dtype))
        out = {}
        for (k, _), gk in zip(leaves.items(), grads):
            gk = _np(gk)
            out[k] = dist._reduce_to_param(k, gk, 1) if factorized else gk
        return out

    return run
