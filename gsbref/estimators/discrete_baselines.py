"""Baseline gradient estimators for discrete latent variables: ARM, DisARM, Gumbel-softmax and
straight-through (relaxations), REBAR and RELAX.

Every estimator follows the contract of :mod:`gsbref.estimators._base` (per-sample estimates
``{parameter name: (S, *param_shape)}``) and is registered under a method name.  The unbiased ones
(``"arm"``, ``"disarm"``, ``"rebar"``, ``"relax"``) are written natively for the *logits* ``l_j``
of independent Bernoulli coordinates (``pi_j = sigmoid(l_j)``); for ``Bernoulli(probs)`` the
logit gradient is converted by the chain rule ``d l / d pi = 1 / (pi (1 - pi))`` (which requires
``0 < pi < 1``).  The relaxation estimators (``"gumbel-softmax"``, ``"straight-through"``) are
biased and also take Categorical coordinates.

Conventions shared by all of them
---------------------------------
* ``f`` sees the flattened coordinates, ``z.reshape(S, -1)``, as in theorem 2 and the oracle.
* ``sigma`` is the logistic function, ``logit(u) = log(u / (1 - u))``; logistic noise is
  ``logit(u)`` with ``u`` uniform on ``(0, 1)`` (a draw of exactly 0, probability ``2^-53``, is
  replaced by ``2^-60`` so that no logarithm of zero is taken).
* A Bernoulli sample is thresholded logistic noise: ``b = H(x)`` with ``x = l + logit(u)``;
  ``P[b = 1] = sigma(l)``.  Its relaxation at temperature ``tau > 0`` is ``sigma(x / tau)``
  (the binary Concrete), which tends to ``b`` as ``tau -> 0``.
* Array backends: every registered estimator here runs on the namespace of the distribution's
  parameters (noise drawn by :func:`gsbref._backend.generator`, ``f`` and ``f.gradient`` evaluated
  on the host for now); :func:`arm_at` and :func:`disarm_at` take the uniform noise as input.
  :func:`relaxed_gradient_1d` and :func:`relaxation_bias` (scalar quadrature) run on the host.

>>> import numpy as np, gsbref
>>> from gsbref.estimators import estimate
>>> b = gsbref.Bernoulli.from_logits([0.3, -0.2])
>>> est = estimate(b, "sum((z - 0.499)**2)", "disarm", 4, rng=0)
>>> est["logits"].samples.shape
(4, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate
from scipy import special as _sp

from .._backend import asarray, call_host, generator, namespace, special
from ..distributions._base import _check_n, as_generator
from ..distributions.bernoulli import Bernoulli, BernoulliLogits
from ..distributions.categorical import Categorical, CategoricalLogits
from ._base import register

__all__ = [
    "arm",
    "arm_at",
    "disarm",
    "disarm_at",
    "gumbel_softmax",
    "straight_through",
    "relaxation_bias",
    "relaxed_gradient_1d",
    "rebar",
    "relax",
    "RelaxSurrogate",
    "fit_relax_surrogate",
    "relax_at",
    "rebar_at",
    "rebar_noise_from",
    "relax_variance_gradient",
]

_TINY_U = 2.0**-60


def _as_function(f):
    from ..functions import as_function

    return as_function(f)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _open_uniform(rng, shape) -> np.ndarray:
    u = rng.random(shape)
    if isinstance(u, np.ndarray):
        u[u == 0.0] = _TINY_U
        return u
    return namespace(u).where(u == 0.0, _TINY_U, u)


def _logit(u, one_minus_u=None):
    """``log(u) - log(1 - u)``; ``one_minus_u`` may be given when it is known more accurately."""
    xp = namespace(u)
    v = 1.0 - u if one_minus_u is None else one_minus_u
    return xp.log(u) - xp.log(v)


def _bernoulli_logits(dist):
    """``(logits, probs, 1 - probs)`` per flattened coordinate, shape ``(d,)``, and the parameter
    name; raises for a non-Bernoulli or for probabilities at 0 or 1 under ``Bernoulli(probs)``.
    Arrays of the distribution's namespace."""
    if not isinstance(dist, Bernoulli):
        raise TypeError(f"this estimator takes a Bernoulli or BernoulliLogits, got {type(dist).__name__}")
    ev = dist.event_shape
    d = dist.event_size
    xp = dist.xp
    sp = special(xp)
    if isinstance(dist, BernoulliLogits):
        lg = xp.astype(xp.reshape(xp.broadcast_to(dist.params["logits"], ev), (d,)), xp.float64)
        return lg, sp.expit(lg), sp.expit(-lg), "logits"
    p = xp.astype(xp.reshape(xp.broadcast_to(dist.params["probs"], ev), (d,)), xp.float64)
    if bool(xp.any((p <= 0.0) | (p >= 1.0))):
        raise ValueError("Bernoulli(probs): the logit chain rule d l / d pi = 1/(pi (1 - pi)) needs 0 < probs < 1")
    return sp.logit(p), p, 1.0 - p, "probs"


def _finish_bernoulli(dist, name, g_logit, p, q):
    """Logit gradients ``(S, d)`` -> the distribution's parameter (chain rule for probs)."""
    S = g_logit.shape[0]
    g = g_logit if name == "logits" else g_logit / (p * q)
    return {name: dist._reduce_to_param(name, namespace(g).reshape(g, (S, *dist.event_shape)), 1)}


def _fvals(f, z):
    """``f(z)``, shape ``(S,)``, in the namespace of ``z`` (``f`` runs on the host for now)."""
    xp = namespace(z)
    return xp.reshape(call_host(f, z, xp=xp, dtype=float), (z.shape[0],))


def _fgrad(f, z):
    xp = namespace(z)
    return xp.reshape(call_host(f.gradient, z, xp=xp, dtype=float), z.shape)


def _as_float(xp, b):
    return xp.astype(b, xp.float64)


# ----------------------------------------------------------------------------------------------
# ARM and DisARM
# ----------------------------------------------------------------------------------------------
@register("arm", array_api=True)
def arm(dist, f, n_samples: int, rng):
    """ARM, the Augment-REINFORCE-Merge estimator (M. Yin and M. Zhou, 2019, "ARM:
    Augment-REINFORCE-Merge gradient estimator for binary latent variables", ICLR).

    Approximates ``d E[f(b)] / d l`` for independent ``b_j ~ Bernoulli(sigmoid(l_j))`` with one
    uniform vector ``u`` per sample and two evaluations of ``f``::

        g_j = (f(H(u - sigma(-l))) - f(H(sigma(l) - u))) (u_j - 1/2)

    (``H`` the unit step, applied coordinate-wise; the two binary vectors are each distributed as
    ``b``).  Requires only that ``f`` be finite on ``{0, 1}^d``.  Unbiased.  For
    ``Bernoulli(probs)`` the estimate is divided by ``pi (1 - pi)``.
    """
    n = _check_n(n_samples)
    _bernoulli_logits(dist)
    return arm_at(dist, f, generator(dist.xp, rng).random((n, dist.event_size)))


def arm_at(dist, f, u):
    """The per-sample ARM estimates for given uniforms ``u`` of shape ``(S, d)`` (``d`` the number
    of coordinates): what :func:`arm` returns after drawing ``u``."""
    f = _as_function(f)
    lg, p, q, name = _bernoulli_logits(dist)
    xp = dist.xp
    u = asarray(u, xp, xp.float64)
    b1 = _as_float(xp, u > q)
    b2 = _as_float(xp, u < p)
    g = (_fvals(f, b1) - _fvals(f, b2))[:, None] * (u - 0.5)
    return _finish_bernoulli(dist, name, g, p, q)


@register("disarm", array_api=True)
def disarm(dist, f, n_samples: int, rng):
    """DisARM (Z. Dong, A. Mnih and G. Tucker, 2020, "DisARM: An antithetic gradient estimator for
    binary latent variables", NeurIPS): ARM with the uniform noise integrated out analytically
    given the antithetic pair.

    Approximates ``d E[f(b)] / d l`` for independent ``b_j ~ Bernoulli(sigmoid(l_j))``.  With
    ``b = H(sigma(l) - u)`` and its antithetic partner ``b' = H(sigma(l) - (1 - u))`` (same
    distribution), two evaluations of ``f`` per sample::

        g_j = 1/2 (f(b) - f(b')) (-1)^{b'_j} [b_j != b'_j] sigma(|l_j|)

    Requires ``f`` finite on ``{0, 1}^d``.  Unbiased; its variance never exceeds ARM's (the
    Rao-Blackwellisation argument of the paper).  ``Bernoulli(probs)``: divided by ``pi (1 - pi)``.
    """
    n = _check_n(n_samples)
    _bernoulli_logits(dist)
    return disarm_at(dist, f, generator(dist.xp, rng).random((n, dist.event_size)))


def disarm_at(dist, f, u):
    """The per-sample DisARM estimates for given uniforms ``u`` of shape ``(S, d)``: what
    :func:`disarm` returns after drawing ``u``."""
    f = _as_function(f)
    lg, p, q, name = _bernoulli_logits(dist)
    xp = dist.xp
    u = asarray(u, xp, xp.float64)
    b = _as_float(xp, u < p)
    bt = _as_float(xp, u > q)  # 1 - u < p
    sign = 1.0 - 2.0 * bt  # -1 where bt = 1, else +1
    w = xp.where(b != bt, sign, 0.0) * xp.maximum(p, q)  # sigma(|l|)
    g = 0.5 * (_fvals(f, b) - _fvals(f, bt))[:, None] * w
    return _finish_bernoulli(dist, name, g, p, q)


# ----------------------------------------------------------------------------------------------
# Relaxations: Gumbel-softmax (Concrete) and straight-through
# ----------------------------------------------------------------------------------------------
def _check_temperature(temperature):
    if temperature is None:
        raise TypeError("the relaxation estimators need the option temperature=tau (> 0)")
    t = float(temperature)
    if not (t > 0.0 and math.isfinite(t)):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
    return t


def _categorical_logits(dist):
    """``(logits (d, K), name)``; Categorical(probs) uses ``log pi`` (requires ``pi > 0``)."""
    K = dist.num_categories
    d = dist.event_size
    xp = dist.xp
    if isinstance(dist, CategoricalLogits):
        lg = xp.reshape(xp.broadcast_to(dist.params["logits"], (*dist.event_shape, K)), (d, K))
        return xp.astype(lg, xp.float64), "logits"
    p = xp.reshape(dist.probs, (d, K))
    if bool(xp.any(p <= 0.0)):
        raise ValueError("Categorical(probs): the relaxation uses log pi and needs every probability > 0")
    return xp.log(p), "probs"


def _relaxed(dist, f, n, rng, temperature, hard_forward: bool):
    f = _as_function(f)
    tau = _check_temperature(temperature)
    if isinstance(dist, Bernoulli):
        lg, p, q, name = _bernoulli_logits(dist)
        xp = dist.xp
        sp = special(xp)
        rng = generator(xp, rng)
        x = lg + _logit(_open_uniform(rng, (n, lg.shape[0])))
        s = sp.expit(x / tau)
        at = _as_float(xp, x > 0) if hard_forward else s
        g = _fgrad(f, at) * (s * sp.expit(-x / tau) / tau)
        return _finish_bernoulli(dist, name, g, p, q)
    if isinstance(dist, Categorical):
        th, name = _categorical_logits(dist)
        xp = dist.xp
        rng = generator(xp, rng)
        d, K = th.shape
        gum = -xp.log(-xp.log(_open_uniform(rng, (n, d, K))))
        y = special(xp).softmax((th + gum) / tau, axis=-1)  # (n, d, K)
        k = xp.arange(K, dtype=xp.float64)
        r = xp.sum(y * k, axis=-1)  # relaxed index
        at = xp.astype(xp.argmax(th + gum, axis=-1), xp.float64) if hard_forward else r
        dr = y * (k - r[..., None]) / tau  # d r_j / d theta_jk
        g = _fgrad(f, at)[..., None] * dr  # (n, d, K) gradient w.r.t. theta
        ev = dist.event_shape
        if name == "logits":
            return {"logits": xp.reshape(g, (n, *ev, K))}
        pk = xp.reshape(dist.probs, (d, K))
        gp = g / pk
        return {"probs": xp.reshape(gp[..., :-1] - gp[..., -1:], (n, *ev, K - 1))}
    raise TypeError(f"the relaxation estimators take Bernoulli or Categorical, got {type(dist).__name__}")


@register("gumbel-softmax", array_api=True)
def gumbel_softmax(dist, f, n_samples: int, rng, temperature=None, convention: str | None = None):
    """The Gumbel-softmax / Concrete relaxation estimator (E. Jang, S. Gu and B. Poole, 2017,
    "Categorical reparameterization with Gumbel-softmax"; C. J. Maddison, A. Mnih and Y. W. Teh,
    2017, "The Concrete distribution: a continuous relaxation of discrete random variables", both
    ICLR).  **Biased.**

    Approximates ``d E[f(z)] / d theta`` by the reparameterisation gradient of the relaxed
    objective ``E[f(z_tau)]``, where ``z_tau`` is a continuous relaxation of the discrete sample
    at temperature ``tau = temperature`` (required, ``> 0``):

    * Bernoulli: ``z_tau = sigma((l + logit(u)) / tau)`` in ``(0, 1)`` (binary Concrete);
      ``g = f'(z_tau) z_tau (1 - z_tau) / tau``.
    * Categorical (K categories, values ``0 .. K-1``): ``y = softmax((theta + G) / tau)`` with
      Gumbel noise ``G``; since gsbref's ``f`` takes category *indices*, the relaxed value of a
      coordinate is the relaxed index ``r = sum_k k y_k`` in ``[0, K-1]`` (exactly the binary
      Concrete for ``K = 2``), and ``d r / d theta_k = y_k (k - r) / tau``.  This relaxation is a
      choice: it makes sense when ``f`` is meaningful between the integer indices (ordinal
      categories); for ``f`` defined on one-hot encodings it differs from the usual one.

    Requires ``f`` differentiable at the relaxed points (``f.gradient``, Taylor jets).  The bias
    is nonzero for ``tau > 0`` and vanishes as ``tau -> 0``, while the variance grows like
    ``1 / tau`` (see :func:`relaxation_bias`).  Parameters: logits natively; ``Bernoulli(probs)``
    by the chain rule ``/ (pi (1 - pi))``; ``Categorical(probs)`` with ``theta = log pi`` in the
    ``"reference-last"`` convention only (``d/d pi_k - d/d pi_{K-1}``, each ``d/d theta / pi``).
    """
    _check_convention(dist, convention)
    return _relaxed(dist, f, _check_n(n_samples), rng, temperature, hard_forward=False)


@register("straight-through", array_api=True)
def straight_through(dist, f, n_samples: int, rng, temperature=None, convention: str | None = None):
    """Straight-through Gumbel-softmax (Y. Bengio, N. Leonard and A. Courville, 2013, "Estimating
    or propagating gradients through stochastic neurons for conditional computation"; in this form
    E. Jang, S. Gu and B. Poole, 2017).  **Biased**, also as ``tau -> 0``.

    The forward pass uses the hard sample ``b`` (``H(l + logit(u))`` / the Gumbel argmax), the
    backward pass the relaxed Jacobian: ``g = f'(b) * d z_tau / d theta``, with ``z_tau`` and its
    Jacobian exactly as in :func:`gumbel_softmax` (same noise; option ``temperature`` required).
    Requires ``f`` differentiable at the discrete points.  Same parameter conventions.
    """
    _check_convention(dist, convention)
    return _relaxed(dist, f, _check_n(n_samples), rng, temperature, hard_forward=True)


def _check_convention(dist, convention):
    if isinstance(dist, Categorical) and not isinstance(dist, CategoricalLogits):
        if convention not in (None, "reference-last"):
            raise ValueError("the relaxation estimators give Categorical(probs) gradients in the "
                             f"'reference-last' convention only, got {convention!r}")
    elif convention is not None:
        raise ValueError(f"{type(dist).__name__} takes no convention, got {convention!r}")


def relaxed_gradient_1d(dist, f, temperature, method: str = "gumbel-softmax") -> float:
    """The exact expectation of the relaxation estimator ``method`` for a single Bernoulli
    coordinate (``event_size == 1``), by adaptive quadrature over the uniform noise ``u``
    (``scipy.integrate.quad``, split at the threshold ``u = 1 - pi``, where the integrand peaks
    with width ``~ tau pi (1 - pi)``).  In the parameter of ``dist`` (logits or probs)."""
    f = _as_function(f)
    tau = _check_temperature(temperature)
    if isinstance(dist, Bernoulli):
        dist = dist.to_namespace("numpy")  # scalar quadrature on the host
    lg, p, q, name = _bernoulli_logits(dist)
    if lg.size != 1:
        raise ValueError("relaxed_gradient_1d needs a single Bernoulli coordinate")
    l0, q0 = float(lg[0]), float(q[0])
    hard = {"gumbel-softmax": False, "straight-through": True}[method]

    def integrand(u):
        x = l0 + math.log(u) - math.log1p(-u)
        s = float(_sp.expit(x / tau))
        at = (1.0 if x > 0 else 0.0) if hard else s
        return float(f.gradient(np.array([[at]]))[0, 0]) * s * float(_sp.expit(-x / tau)) / tau

    w = tau * float(p[0] * q0)
    pts = sorted({max(min(q0 + c * w, 1 - 1e-300), 1e-300) for c in (-10.0, -1.0, 0.0, 1.0, 10.0)})
    edges = [0.0] + [t for t in pts if 0.0 < t < 1.0] + [1.0]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            total += integrate.quad(integrand, a, b, limit=200, epsabs=1e-13, epsrel=1e-11)[0]
    return total if name == "logits" else total / float(p[0] * q0)


def relaxation_bias(dist, f, temperature, n_samples: int | None = None, rng=None,
                    method: str = "gumbel-softmax") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bias of a relaxation estimator against the oracle: ``{name: (mean - exact, stderr)}``.

    ``n_samples=None`` (single Bernoulli coordinate only): the mean is the exact quadrature of
    :func:`relaxed_gradient_1d` and the stderr is 0.  Otherwise the mean is a Monte Carlo average
    of ``n_samples`` draws (seeded by ``rng``) with its standard error.  The exact gradient is
    ``oracle.gradient(dist, f, dps=None)`` (enumeration).
    """
    from .. import oracle
    from ._base import estimate

    if hasattr(dist, "to_namespace"):
        dist = dist.to_namespace("numpy")  # the oracle and the quadrature run on the host
    exact = oracle.gradient(dist, f, dps=None).to_float()
    if n_samples is None:
        name = dist.parameters[0].name
        m = relaxed_gradient_1d(dist, f, temperature, method)
        return {name: (np.asarray(m - np.asarray(exact[name]).reshape(-1)[0]), np.asarray(0.0))}
    est = estimate(dist, f, method, n_samples, rng, temperature=temperature)
    return {k: (e.mean - np.asarray(exact[k], dtype=float), e.stderr) for k, e in est.items()}


# ----------------------------------------------------------------------------------------------
# REBAR and RELAX (Bernoulli): control variates from the Concrete relaxation
# ----------------------------------------------------------------------------------------------
def _rebar_noise(lg, p, q, n, rng):
    """``x = l + logit(u)``, ``b = H(x)``, the conditional draw ``xt ~ x | b`` from fresh noise
    ``v`` and ``dxt / dl`` (with ``v`` and ``b`` held fixed)."""
    d = lg.shape[0]
    u = _open_uniform(rng, (n, d))
    v = _open_uniform(rng, (n, d))
    return rebar_noise_from(lg, p, q, u, v)


def rebar_noise_from(lg, p, q, u, v):
    """:func:`_rebar_noise` at given uniforms ``u, v`` in ``(0, 1)`` (shape ``(n, d)``): the
    map used for exact integration over the noise."""
    xp = namespace(u, v, lg)
    x = lg + _logit(u)
    b = _as_float(xp, x > 0)
    # x | b=0 is l + logit(v q) (v q < q = 1 - p); x | b=1 is l + logit(q + v p)
    vp = xp.where(b == 1.0, q + v * p, v * q)
    one_m = xp.where(b == 1.0, p * (1.0 - v), 1.0 - v * q)
    xt = lg + _logit(vp, one_m)
    dvp_dp = xp.where(b == 1.0, v - 1.0, -v)  # d vp / d p
    dxt = 1.0 + p * q * dvp_dp / (vp * one_m)
    return x, b, xt, dxt


@dataclass
class RelaxSurrogate:
    """The RELAX control variate ``c(x) = eta f(s) + w2 . tanh(W1 s + b1) + b2`` with ``s =
    sigma(x / tau)`` the relaxed sample (``x`` the logistic pre-activation).  ``eta = 1`` and zero
    network weights give REBAR's control variate at ``eta = 1``."""

    temperature: float
    eta: float
    W1: np.ndarray  # (H, d)
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H,)
    b2: float
    history: list = field(default_factory=list, repr=False)

    def in_namespace(self, xp) -> "RelaxSurrogate":
        """The surrogate with its weights in namespace ``xp`` (``self`` when they are already)."""
        if namespace(self.W1) is xp:
            return self
        conv = {k: asarray(getattr(self, k), xp, xp.float64) for k in ("W1", "b1", "w2")}
        return RelaxSurrogate(self.temperature, self.eta, b2=self.b2, history=self.history, **conv)

    def _parts(self, f, x):
        tau = self.temperature
        xp = namespace(x)
        sp = special(xp)
        s = sp.expit(x / tau)
        qd = s * sp.expit(-x / tau) / tau  # ds/dx
        h = xp.tanh(s @ self.W1.T + self.b1)  # (n, H)
        a = self.w2 * (1.0 - h * h)
        fv = _fvals(f, s)
        fg = _fgrad(f, s)
        c = self.eta * fv + h @ self.w2 + self.b2
        D = self.eta * fg * qd + (a @ self.W1) * qd  # dc/dx
        return dict(s=s, qd=qd, h=h, a=a, fv=fv, fg=fg, c=c, D=D)


def rebar_at(f, lg, p, q, x, b, xt, dxt, cv):
    """The per-sample estimate ``(n, d)`` w.r.t. logits for a control variate ``cv`` (a
    :class:`RelaxSurrogate`) at given noise: ``(f(b) - c(xt)) (b - p) + dc(x)/dl - dc(xt)/dl``.
    Also returns the pieces needed by the variance gradient."""
    P = cv._parts(f, x)
    Pt = cv._parts(f, xt)
    fb = _fvals(f, b)
    g = (fb - Pt["c"])[:, None] * (b - p) + P["D"] - Pt["D"] * dxt
    return g, P, Pt


def _sum_w_dD(cv, P, w):
    """``sum_j w_j d D_j / d phi`` per sample for ``phi = (eta, W1, b1, w2)``."""
    qd, s, h, a = P["qd"], P["s"], P["h"], P["a"]
    xp = namespace(s)
    wq = w * qd  # (n, d)
    m = wq @ cv.W1.T  # (n, H)
    e = -2.0 * cv.w2 * h * (1.0 - h * h)
    return dict(
        eta=xp.sum(w * P["fg"] * qd, axis=1),
        W1=a[:, :, None] * wq[:, None, :] + (m * e)[:, :, None] * s[:, None, :],
        b1=m * e,
        w2=m * (1.0 - h * h),
        b2=xp.zeros((s.shape[0],), dtype=xp.float64),
    )


def _dc(cv, P):
    """``d c / d phi`` per sample."""
    xp = namespace(P["s"])
    return dict(eta=P["fv"], W1=P["a"][:, :, None] * P["s"][:, None, :], b1=P["a"], w2=P["h"],
                b2=xp.ones((P["s"].shape[0],), dtype=xp.float64))


def relax_variance_gradient(f, lg, p, q, x, b, xt, dxt, cv):
    """``(mean_s sum_j g_j^2, {phi: d/dphi of it})`` -- the gradient of the single-sample variance
    (``E[g]`` does not depend on ``phi``, the estimator being unbiased for every ``phi``)."""
    g, P, Pt = rebar_at(f, lg, p, q, x, b, xt, dxt, cv)
    xp = namespace(g)
    R = 2.0 * g
    w_score = xp.sum(R * (b - p), axis=1)
    A = _sum_w_dD(cv, P, R)
    B = _sum_w_dD(cv, Pt, R * dxt)
    C = _dc(cv, Pt)
    grads = {}
    for k in A:
        shape = (-1,) + (1,) * (A[k].ndim - 1)
        grads[k] = xp.mean(A[k] - B[k] - xp.reshape(w_score, shape) * C[k], axis=0)
    return float(xp.mean(xp.sum(g * g, axis=1))), grads


def fit_relax_surrogate(dist, f, rng, temperature: float = 0.5, hidden: int = 8, n_steps: int = 300,
                        batch_size: int = 64, lr: float = 0.01, eta0: float = 1.0) -> RelaxSurrogate:
    """Train the RELAX surrogate by Adam on the single-sample variance ``E[sum_j g_j^2]`` (its
    gradient hand-derived in :func:`relax_variance_gradient`), ``n_steps`` steps of ``batch_size``
    fresh draws each.  The first layer starts at small random weights (``rng``), the output at 0,
    ``eta`` at ``eta0``; ``history`` records the batch mean of ``sum_j g_j^2`` per step."""
    f = _as_function(f)
    lg, p, q, _ = _bernoulli_logits(dist)
    xp = dist.xp
    rng = generator(xp, rng)
    d = lg.shape[0]
    cv = RelaxSurrogate(float(_check_temperature(temperature)), float(eta0),
                        rng.normal(0.0, 1.0 / math.sqrt(d), (hidden, d)), xp.zeros((hidden,), dtype=xp.float64),
                        xp.zeros((hidden,), dtype=xp.float64), 0.0)
    names = ("eta", "W1", "b1", "w2", "b2")

    def arr(v):
        return xp.asarray(v, dtype=xp.float64)

    m1 = {k: xp.zeros_like(arr(getattr(cv, k))) for k in names}
    m2 = {k: xp.zeros_like(v) for k, v in m1.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(1, n_steps + 1):
        noise = _rebar_noise(lg, p, q, batch_size, rng)
        val, grads = relax_variance_gradient(f, lg, p, q, *noise, cv)
        cv.history.append(val)
        for k in names:
            gk = arr(grads[k])
            m1[k] = beta1 * m1[k] + (1 - beta1) * gk
            m2[k] = beta2 * m2[k] + (1 - beta2) * gk * gk
            step = lr * (m1[k] / (1 - beta1**t)) / (xp.sqrt(m2[k] / (1 - beta2**t)) + eps)
            new = arr(getattr(cv, k)) - step
            setattr(cv, k, float(new) if new.ndim == 0 else new)
    return cv


def relax_at(dist, f, cv: RelaxSurrogate, n: int, rng):
    """Per-sample RELAX estimates (w.r.t. the parameter of ``dist``) with a given surrogate."""
    f = _as_function(f)
    lg, p, q, name = _bernoulli_logits(dist)
    if cv.W1.shape[1] != lg.shape[0]:
        raise ValueError(f"the surrogate was fitted for d = {cv.W1.shape[1]}, the distribution has d = {lg.shape[0]}")
    cv = cv.in_namespace(dist.xp)
    g, _, _ = rebar_at(f, lg, p, q, *_rebar_noise(lg, p, q, n, generator(dist.xp, rng)), cv)
    return _finish_bernoulli(dist, name, g, p, q)


@register("rebar", array_api=True)
def rebar(dist, f, n_samples: int, rng, eta: float = 1.0, temperature: float = 0.5):
    """REBAR (G. Tucker, A. Mnih, C. J. Maddison, D. Lawson and J. Sohl-Dickstein, 2017, "REBAR:
    Low-variance, unbiased gradient estimates for discrete latent variable models", NeurIPS).

    Approximates ``d E[f(b)] / d l`` for independent ``b_j ~ Bernoulli(sigmoid(l_j))``.  Draw the
    logistic pre-activation ``x = l + logit(u)``, ``b = H(x)``, and, from fresh noise ``v``, a
    draw ``xt`` of ``x`` conditional on ``b`` (reparameterised: ``xt = l + logit(v (1 - pi))``
    if ``b = 0``, ``l + logit(1 - pi + v pi)`` if ``b = 1``).  With the Concrete control variate
    ``c(x) = eta f(sigma(x / tau))``::

        g = (f(b) - c(xt)) (b - pi) + d c(x) / d l - d c(xt) / d l

    (the last two derivatives through the reparameterisations, ``v`` and ``b`` held fixed).
    Options ``eta`` (scale, default 1) and ``temperature`` (``tau > 0``, default 0.5); they are
    fixed here, not optimised.  Requires ``f`` finite on ``{0,1}^d`` and differentiable on
    ``(0,1)^d``.  Unbiased for every ``eta`` and ``tau``.  Three evaluations of ``f`` and two
    gradients per sample.  ``Bernoulli(probs)``: divided by ``pi (1 - pi)``.
    """
    _bernoulli_logits(dist)
    f = _as_function(f)
    d = dist.event_size
    xp = dist.xp
    z1 = xp.zeros((1,), dtype=xp.float64)
    cv = RelaxSurrogate(_check_temperature(temperature), float(eta), xp.zeros((1, d), dtype=xp.float64), z1, z1, 0.0)
    return relax_at(dist, f, cv, _check_n(n_samples), rng)


@register("relax", array_api=True)
def relax(dist, f, n_samples: int, rng, surrogate: RelaxSurrogate | None = None, **fit_options):
    """RELAX (W. Grathwohl, D. Choi, Y. Wu, G. Roeder and D. Duvenaud, 2018, "Backpropagation
    through the void: optimizing control variates for black-box gradient estimation", ICLR), for
    independent Bernoulli coordinates.

    The estimator of :func:`rebar` with a learned control variate ``c_phi(x) = eta f(sigma(x /
    tau)) + w2 . tanh(W1 sigma(x / tau) + b1) + b2`` (:class:`RelaxSurrogate`) whose parameters
    ``phi = (eta, W1, b1, w2, b2)`` minimise the single-sample variance.  ``surrogate``: a fitted
    one (:func:`fit_relax_surrogate`); if omitted, one is fitted first with ``fit_options`` on a
    stream spawned from ``rng`` (independent of the estimation draws, so unbiasedness holds).
    Requirements as REBAR.  Unbiased for every fixed ``phi``.
    """
    rng = as_generator(rng)
    if surrogate is None:
        surrogate = fit_relax_surrogate(dist, f, rng.spawn(1)[0], **fit_options)
    elif fit_options:
        raise TypeError(f"fit options {sorted(fit_options)} given together with a fitted surrogate")
    return relax_at(dist, f, surrogate, _check_n(n_samples), rng)
