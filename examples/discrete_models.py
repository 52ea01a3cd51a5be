"""Discrete latent-variable models trained with theorem 2 (BSB, eq. 16; CSB, eq. 17) and baselines.

Reproduces, at the size of a CPU and of scikit-learn's 8x8 handwritten digits (binarised, no
download), the experiments behind tables 1-3 of the paper:

* ``sbn`` -- a one-layer sigmoid belief network: ``z ~ Bernoulli(sigmoid(b))`` (``d`` units),
  ``x | z ~ Bernoulli(sigmoid(W z + c))``, linear encoder ``q(z | x) = Bernoulli(sigmoid(V x + e))``;
* ``vae`` -- a Bernoulli VAE: encoder and decoder with one tanh hidden layer each, same prior;
* ``cat`` -- a one-layer categorical model: ``d`` categorical units with ``K`` values, learned
  prior logits, decoder logits ``sum_j E_j[z_j] + c`` (a linear map of the one-hot code), linear
  encoder (the paper's "one layer" model of table 2).

Objective: the ELBO ``E_q[log p(x, z)] + H[q]``, with the entropy of the factorised ``q`` in
closed form, so that every estimator estimates the same quantity, the gradient of
``E_q[f(z)]``, ``f(z) = log p(x, z)``, with respect to the encoder logits (then backpropagated
through the encoder); the decoder and prior gradients are ordinary backpropagation of
``log p(x, z)`` at the samples (at the relaxed samples for Gumbel-softmax).

Estimators of the encoder-logit gradient:

``bsb`` / ``csb``    theorem 2: for each sample and unit, ``f`` at every value of the unit with the
                     others kept.  The values of ``f`` come from gsbref's fast-flip kernel
                     (:func:`gsbref.estimators._flips.flipped_values`, rank-1 updates of the
                     decoder's first pre-activation) on a :class:`gsbref.functions.Function`
                     whose first affine map is the decoder's; the data point rides along as extra,
                     never-flipped coordinates (the estimators have no per-datum context).
``rebar`` / ``relax`` gsbref's per-noise kernel :func:`~gsbref.estimators.discrete_baselines.rebar_at`
                     (REBAR: fixed Concrete control variate, eta = 1, tau = 0.5; RELAX: the
                     :class:`RelaxSurrogate` trained jointly with the model on the variance, by
                     :func:`~gsbref.estimators.discrete_baselines.relax_variance_gradient`).
``disarm``           DisARM (one antithetic pair per sample), written here in array code: gsbref's
                     ``disarm`` draws its own noise and takes one distribution, so it cannot see
                     a batch of data points with their own ``q``.
``reinforce-loo``    the score function with the leave-one-out baseline (array code, same reason).
``gumbel-softmax``   Concrete relaxation at tau = 0.5 of the one-hot code (array code: gsbref's
                     relaxes the category *index*, which a decoder of one-hot codes cannot use).

Reported: the exact test log-likelihood ``log p(x) = log sum_z p(z) p(x | z)`` by enumeration
when the latent space has at most 2^16 states, else the 200-sample importance-sampling estimate
under ``q``; mean +/- std over runs; the training-ELBO and gradient-log-variance curves (variance
from Adam's moment averages over the encoder parameters, as in the paper); the time per epoch of
each estimator (one thread; the fastest epoch of all runs, the machine being shared) as a
ratio to Gumbel-softmax.

Run: ``python examples/discrete_models.py`` (``--quick`` for CI, ``--full`` for the larger run).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import numpy as np
from scipy.special import expit, log_expit, logsumexp, softmax

from gsbref.estimators._flips import base_values, flipped_values
from gsbref.estimators.discrete_baselines import (
    RelaxSurrogate,
    rebar_at,
    rebar_noise_from,
    relax_variance_gradient,
)
from gsbref.functions import Function

NAME = "discrete_models"

#: sizes: latent units (Bernoulli models d, categorical model d x K), epochs, runs, data subsample
SIZES = {
    "smoke": dict(d=6, cat=(4, 3), hidden=16, epochs=1, runs=1, n_train=128, n_test=32, S=(1, 2),
                  models=("sbn", "vae", "cat"), base_S=1, loo_S=2),
    "quick": dict(d=8, cat=(6, 4), hidden=32, epochs=2, runs=2, n_train=384, n_test=96, S=(1, 5),
                  models=("sbn", "vae", "cat"), base_S=1, loo_S=5),
    "default": dict(d=16, cat=(8, 4), hidden=64, epochs=20, runs=3, n_train=None, n_test=None, S=(1, 5, 10),
                    models=("sbn", "vae", "cat"), base_S=1, loo_S=5),
    "full": dict(d=16, cat=(20, 10), hidden=64, epochs=150, runs=5, n_train=None, n_test=None, S=(1, 5, 10),
                 models=("sbn", "vae", "cat"), base_S=1, loo_S=5),
}
BATCH = 64
LR = 3e-3
TAU = 0.5
IS_SAMPLES = 200
MAX_ENUMERATED = 2**16


def softplus(x):
    return np.logaddexp(0.0, x)


def _init(rng, shape, fan_in):
    return rng.normal(0.0, 1.0 / math.sqrt(fan_in), shape)


# ----------------------------------------------------------------------------------------------
# models: f(z) = log p(x, z) = rest(W z + c; x) + r . z + const, with z the (one-hot) code
# ----------------------------------------------------------------------------------------------
class _Model:
    """Common parts.  ``code(Z)`` is the input of the decoder's first affine map (``Z`` itself for
    Bernoulli units, the flattened one-hot code for categorical ones)."""

    encoder_keys: tuple = ()

    def first(self):
        """``(W (h, m), c (h,), r (m,), const)``: first affine map and the linear prior term."""
        raise NotImplementedError

    def rest(self, pre, X):
        """``log p(x | z)`` from the first pre-activation ``pre`` (..., h) and data ``X`` (..., D)."""
        raise NotImplementedError

    def logp(self, code, X):
        W, c, r, const = self.first()
        return self.rest(code @ W.T + c, X) + code @ r + const

    def flip_function(self, D):
        """A gsbref Function of ``[code, x]`` whose first affine map is ``[W z + c; x; r . z]``
        (so the fast-flip kernel updates it by rank-1 steps and the data rides along)."""
        W, c, r, const = self.first()
        h, m = W.shape
        Wa = np.zeros((h + D + 1, m + D))
        Wa[:h, :m] = W
        Wa[h:h + D, m:] = np.eye(D)
        Wa[h + D, :m] = r
        ca = np.concatenate([c, np.zeros(D + 1)])

        def rest(pre):
            return self.rest(pre[..., :h], pre[..., h:h + D]) + pre[..., h + D] + const

        def value(za):
            return rest(za @ Wa.T + ca)

        return _AffineFunction(Wa, ca, rest, value)


class _AffineFunction(Function):
    """A callable Function that declares ``f = rest(W z + c)`` (for the affine flip strategy)."""

    def __init__(self, W, c, rest, value):
        super().__init__(fn=value)
        self._aff = (W, c, rest)

    def first_affine(self):
        return self._aff


def _bern_loglik(U, X):
    return (X * U - softplus(U)).sum(axis=-1)


class SBN(_Model):
    """One-layer sigmoid belief network with a linear encoder."""

    encoder_keys = ("V", "e")

    def __init__(self, D, d, rng, X_train):
        xm = np.clip(X_train.mean(axis=0), 1e-3, 1 - 1e-3)
        self.p = {"W": _init(rng, (D, d), d), "c": np.log(xm / (1 - xm)), "b": np.zeros(d),
                  "V": _init(rng, (d, D), D), "e": np.zeros(d)}

    def encode(self, X):
        return X @ self.p["V"].T + self.p["e"], X

    def encoder_backward(self, gL, cache):
        return {"V": gL.T @ cache, "e": gL.sum(axis=0)}

    def first(self):
        b = self.p["b"]
        return self.p["W"], self.p["c"], b, -softplus(b).sum()

    def rest(self, pre, X):
        return _bern_loglik(pre, X)

    def grad_code(self, Z, X):
        U = Z @ self.p["W"].T + self.p["c"]
        return (X - expit(U)) @ self.p["W"] + self.p["b"]

    def decoder_grads(self, Z, X, w):
        U = Z @ self.p["W"].T + self.p["c"]
        dU = (X - expit(U)) * w[:, None]
        return {"W": dU.T @ Z, "c": dU.sum(axis=0), "b": (w[:, None] * (Z - expit(self.p["b"]))).sum(axis=0)}


class VAE(_Model):
    """Bernoulli VAE: tanh MLP encoder and decoder with one hidden layer each."""

    encoder_keys = ("A1", "a1", "A2", "a2")

    def __init__(self, D, d, rng, X_train, hidden=64):
        xm = np.clip(X_train.mean(axis=0), 1e-3, 1 - 1e-3)
        H = hidden
        self.p = {"A1": _init(rng, (H, D), D), "a1": np.zeros(H), "A2": _init(rng, (d, H), H), "a2": np.zeros(d),
                  "B1": _init(rng, (H, d), d), "b1": np.zeros(H), "B2": _init(rng, (D, H), H),
                  "b2": np.log(xm / (1 - xm)), "b": np.zeros(d)}

    def encode(self, X):
        Hh = np.tanh(X @ self.p["A1"].T + self.p["a1"])
        return Hh @ self.p["A2"].T + self.p["a2"], (X, Hh)

    def encoder_backward(self, gL, cache):
        X, Hh = cache
        gH = (gL @ self.p["A2"]) * (1.0 - Hh * Hh)
        return {"A2": gL.T @ Hh, "a2": gL.sum(axis=0), "A1": gH.T @ X, "a1": gH.sum(axis=0)}

    def first(self):
        b = self.p["b"]
        return self.p["B1"], self.p["b1"], b, -softplus(b).sum()

    def rest(self, pre, X):
        return _bern_loglik(np.tanh(pre) @ self.p["B2"].T + self.p["b2"], X)

    def _forward(self, Z):
        G = np.tanh(Z @ self.p["B1"].T + self.p["b1"])
        return G, G @ self.p["B2"].T + self.p["b2"]

    def grad_code(self, Z, X):
        G, U = self._forward(Z)
        dpre = ((X - expit(U)) @ self.p["B2"]) * (1.0 - G * G)
        return dpre @ self.p["B1"] + self.p["b"]

    def decoder_grads(self, Z, X, w):
        G, U = self._forward(Z)
        dU = (X - expit(U)) * w[:, None]
        dpre = (dU @ self.p["B2"]) * (1.0 - G * G)
        return {"B2": dU.T @ G, "b2": dU.sum(axis=0), "B1": dpre.T @ Z, "b1": dpre.sum(axis=0),
                "b": (w[:, None] * (Z - expit(self.p["b"]))).sum(axis=0)}


class CatModel(_Model):
    """One-layer categorical model: ``d`` units with ``K`` values, decoder linear in the one-hot
    code, learned prior logits ``a`` (d, K), linear encoder to logits (d, K)."""

    encoder_keys = ("V", "e")

    def __init__(self, D, d, K, rng, X_train):
        xm = np.clip(X_train.mean(axis=0), 1e-3, 1 - 1e-3)
        self.d, self.K = d, K
        self.p = {"E": _init(rng, (D, d * K), d), "c": np.log(xm / (1 - xm)), "a": np.zeros((d, K)),
                  "V": _init(rng, (d * K, D), D), "e": np.zeros(d * K)}

    def encode(self, X):
        return (X @ self.p["V"].T + self.p["e"]).reshape(len(X), self.d, self.K), X

    def encoder_backward(self, gL, cache):
        g = gL.reshape(len(gL), -1)
        return {"V": g.T @ cache, "e": g.sum(axis=0)}

    def log_prior(self):
        a = self.p["a"]
        return a - logsumexp(a, axis=-1, keepdims=True)

    def first(self):
        return self.p["E"], self.p["c"], self.log_prior().reshape(-1), 0.0

    def rest(self, pre, X):
        return _bern_loglik(pre, X)

    def grad_code(self, Y, X):
        """``d log p(x, y) / d y`` for a (relaxed) one-hot code ``Y`` (n, d*K)."""
        U = Y @ self.p["E"].T + self.p["c"]
        return (X - expit(U)) @ self.p["E"] + self.log_prior().reshape(-1)

    def decoder_grads(self, Y, X, w):
        U = Y @ self.p["E"].T + self.p["c"]
        dU = (X - expit(U)) * w[:, None]
        pa = softmax(self.p["a"], axis=-1)
        Yw = (w[:, None] * Y).reshape(len(Y), self.d, self.K).sum(axis=0)
        # d/da of sum_j log pi_j[y_j] for a (relaxed) one-hot y: y - pi * sum_k y_k
        return {"E": dU.T @ Y, "c": dU.sum(axis=0), "a": Yw - pa * Yw.sum(axis=-1, keepdims=True)}


# ----------------------------------------------------------------------------------------------
# entropies of the factorised q (closed form) and their logit gradients
# ----------------------------------------------------------------------------------------------
def bern_entropy(L):
    p = expit(L)
    return (softplus(L) - p * L).sum(axis=-1), -L * p * (1.0 - p)


def cat_entropy(L):
    lp = L - logsumexp(L, axis=-1, keepdims=True)
    p = np.exp(lp)
    ent = -(p * lp).sum(axis=-1)
    return ent.sum(axis=-1), -p * (lp + ent[..., None])


# ----------------------------------------------------------------------------------------------
# one gradient step's estimate of the encoder-logit gradient and the decoder gradient
# ----------------------------------------------------------------------------------------------
class _RowFunction:
    """``f(z) = log p(x_r, z)`` row by row, for row-aligned data ``Xr`` (duck-types what
    :func:`rebar_at` and :func:`relax_variance_gradient` call: values and gradients)."""

    def __init__(self, model, Xr):
        self.model, self.Xr = model, Xr

    def __call__(self, Z):
        return self.model.logp(Z, self.Xr)

    def gradient(self, Z):
        return self.model.grad_code(Z, self.Xr)


def _repeat(A, S):
    return np.repeat(A, S, axis=0)


def bernoulli_step(model, X, method, S, rng, state):
    """``(gL (B, d), decoder grads, per-datum E_q[f] estimate (B,))`` for a Bernoulli model."""
    L, cache = model.encode(X)
    B, d = L.shape
    Lr = _repeat(L, S)
    Xr = _repeat(X, S)
    p, q = expit(Lr), expit(-Lr)
    D = X.shape[1]
    if method == "bsb":
        Z = (rng.random(Lr.shape) < p).astype(float)
        za = np.hstack([Z, Xr])
        f = model.flip_function(D)
        base = base_values(f, za, "affine")
        flip = flipped_values(f, za, np.arange(d)[:, None], (1.0 - Z)[:, :, None, None], "affine")[..., 0]
        diff = np.where(Z == 1.0, base[:, None] - flip, flip - base[:, None])  # f(z_j=1) - f(z_j=0)
        g = diff * p * q
        dec = model.decoder_grads(Z, Xr, np.full(B * S, 1.0 / S))
        fz = base
    elif method in ("rebar", "relax"):
        cv = state["cv"]
        u, v = _open_uniform(rng, Lr.shape), _open_uniform(rng, Lr.shape)
        noise = rebar_noise_from(Lr, p, q, u, v)
        frow = _RowFunction(model, Xr)
        g, _, _ = rebar_at(frow, Lr, p, q, *noise, cv)
        Z = noise[1]
        if method == "relax":
            _, cg = relax_variance_gradient(frow, Lr, p, q, *noise, cv)
            state["cv_opt"].step({k: np.atleast_1d(cg[k]) if k in ("eta", "b2") else cg[k] for k in cg})
            cv.eta, cv.b2 = float(state["cv_p"]["eta"][0]), float(state["cv_p"]["b2"][0])
        dec = model.decoder_grads(Z, Xr, np.full(B * S, 1.0 / S))
        fz = model.logp(Z, Xr)
    elif method == "disarm":
        u = rng.random(Lr.shape)
        b = (u < p).astype(float)
        bt = (u > q).astype(float)
        fb, fbt = model.logp(b, Xr), model.logp(bt, Xr)
        w = np.where(b != bt, np.where(bt == 1.0, -1.0, 1.0), 0.0) * np.maximum(p, q)
        g = 0.5 * (fb - fbt)[:, None] * w
        half = np.full(B * S, 0.5 / S)
        dec = model.decoder_grads(np.vstack([b, bt]), np.vstack([Xr, Xr]), np.concatenate([half, half]))
        fz = 0.5 * (fb + fbt)
    elif method == "reinforce-loo":
        Z = (rng.random(Lr.shape) < p).astype(float)
        fz = model.logp(Z, Xr)
        F = fz.reshape(B, S)
        loo = (F.sum(axis=1, keepdims=True) - F) / (S - 1)
        g = (F - loo).reshape(-1)[:, None] * (Z - p)
        dec = model.decoder_grads(Z, Xr, np.full(B * S, 1.0 / S))
    elif method == "gumbel-softmax":
        u = _open_uniform(rng, Lr.shape)
        x = Lr + np.log(u) - np.log1p(-u)
        s = expit(x / TAU)
        g = model.grad_code(s, Xr) * s * (1.0 - s) / TAU
        dec = model.decoder_grads(s, Xr, np.full(B * S, 1.0 / S))
        fz = model.logp((x > 0).astype(float), Xr)  # logged only: the ELBO at the hard sample
    else:
        raise ValueError(f"unknown Bernoulli method {method!r}")
    gL = g.reshape(B, S, d).mean(axis=1)
    return gL, dec, fz.reshape(B, S).mean(axis=1), cache, L


def _open_uniform(rng, shape):
    """Uniforms on the open interval (0, 1) (a draw of exactly 0 is replaced by 2**-60)."""
    u = rng.random(shape)
    u[u == 0.0] = 2.0**-60
    return u


def categorical_step(model, X, method, S, rng, state):
    L, cache = model.encode(X)  # (B, d, K)
    B, d, K = L.shape
    Lr = _repeat(L, S)
    Xr = _repeat(X, S)
    P = softmax(Lr, axis=-1)
    D = X.shape[1]
    eye = np.eye(K)
    if method == "csb":
        # categories by inverse CDF, then f at every value of every unit (one-hot groups of K)
        cdf = np.cumsum(P, axis=-1)
        k = (rng.random((B * S, d, 1)) > cdf[..., :-1]).sum(axis=-1)
        Y = eye[k].reshape(B * S, d * K)
        f = model.flip_function(D)
        idx = np.arange(d * K).reshape(d, K)
        T = flipped_values(f, np.hstack([Y, Xr]), idx, eye[None, None], "affine")  # (n, d, K)
        g = P * (T - (T * P).sum(axis=-1, keepdims=True))
        fz = np.take_along_axis(T[:, 0, :], k[:, 0:1], axis=-1)[:, 0]
        dec = model.decoder_grads(Y, Xr, np.full(B * S, 1.0 / S))
    elif method == "gumbel-softmax":
        G = -np.log(-np.log(_open_uniform(rng, Lr.shape)))
        Yr = softmax((Lr + G) / TAU, axis=-1)  # (n, d, K)
        gy = model.grad_code(Yr.reshape(B * S, -1), Xr).reshape(B * S, d, K)
        g = Yr * (gy - (gy * Yr).sum(axis=-1, keepdims=True)) / TAU
        dec = model.decoder_grads(Yr.reshape(B * S, -1), Xr, np.full(B * S, 1.0 / S))
        hard = eye[np.argmax(Lr + G, axis=-1)].reshape(B * S, -1)
        fz = model.logp(hard, Xr)  # logged only
    else:
        raise ValueError(f"unknown categorical method {method!r}")
    gL = g.reshape(B, S, d, K).mean(axis=1)
    return gL, dec, fz.reshape(B, S).mean(axis=1), cache, L


# ----------------------------------------------------------------------------------------------
# test log-likelihood
# ----------------------------------------------------------------------------------------------
def _all_codes(model):
    if isinstance(model, CatModel):
        d, K = model.d, model.K
        idx = np.indices((K,) * d).reshape(d, -1).T
        return np.eye(K)[idx].reshape(len(idx), d * K)
    d = model.p["b"].size
    return ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(float)


def n_states(model):
    return model.K**model.d if isinstance(model, CatModel) else 2 ** model.p["b"].size


def heldout_loglik(model, X, rng, chunk=64):
    """Mean ``log p(x)``: exact by enumeration when the latent space has <= 2^16 states, else the
    IS_SAMPLES-sample importance-sampling estimate with proposal ``q(z | x)``.  Returns
    ``(value, "exact" | "is200")``."""
    W, c, r, const = model.first()
    if n_states(model) <= MAX_ENUMERATED:
        Z = _all_codes(model)
        prior = Z @ r + const
        pre = Z @ W.T + c  # (N, h)
        if isinstance(model, VAE):
            U = np.tanh(pre) @ model.p["B2"].T + model.p["b2"]
        else:
            U = pre
        spU = softplus(U).sum(axis=1)
        out = [logsumexp(X[i:i + chunk] @ U.T - spU + prior, axis=1) for i in range(0, len(X), chunk)]
        return float(np.concatenate(out).mean()), "exact"
    L, _ = model.encode(X)
    tot = 0.0
    for i in range(len(X)):
        Li = L[i]
        if isinstance(model, CatModel):
            lp = Li - logsumexp(Li, axis=-1, keepdims=True)
            cdf = np.cumsum(np.exp(lp), axis=-1)
            k = (rng.random((IS_SAMPLES, model.d, 1)) > cdf[:, :-1]).sum(axis=-1)
            Z = np.eye(model.K)[k].reshape(IS_SAMPLES, -1)
            logq = np.take_along_axis(np.broadcast_to(lp, (IS_SAMPLES, *lp.shape)), k[..., None], -1).sum(axis=(1, 2))
        else:
            p = expit(Li)
            Z = (rng.random((IS_SAMPLES, Li.size)) < p).astype(float)
            logq = (Z * log_expit(Li) + (1 - Z) * log_expit(-Li)).sum(axis=1)
        lw = model.logp(Z, np.broadcast_to(X[i], (IS_SAMPLES, X.shape[1]))) - logq
        tot += logsumexp(lw) - math.log(IS_SAMPLES)
    return tot / len(X), f"is{IS_SAMPLES}"


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------
def make_model(kind, cfg, rng, X_train):
    D = X_train.shape[1]
    if kind == "sbn":
        return SBN(D, cfg["d"], rng, X_train)
    if kind == "vae":
        return VAE(D, cfg["d"], rng, X_train, hidden=cfg["hidden"])
    d, K = cfg["cat"]
    return CatModel(D, d, K, rng, X_train)


def train(kind, method, S, cfg, X_train, X_test, seed):
    """One training run; returns per-epoch curves, the test log-likelihood and the time per epoch."""
    rng = np.random.default_rng(seed)
    model = make_model(kind, cfg, rng, X_train)
    opt = C.Adam(model.p, lr=LR)
    state = {}
    if method in ("rebar", "relax"):
        d = cfg["d"]
        hid = 8 if method == "relax" else 1
        cvp = {"eta": np.ones(1), "W1": (rng.normal(0, 1 / math.sqrt(d), (hid, d)) if method == "relax"
                                         else np.zeros((hid, d))), "b1": np.zeros(hid), "w2": np.zeros(hid),
               "b2": np.zeros(1)}
        state["cv"] = RelaxSurrogate(TAU, 1.0, cvp["W1"], cvp["b1"], cvp["w2"], 0.0)
        state["cv_p"] = cvp
        state["cv_opt"] = C.Adam(cvp, lr=LR)
    step = categorical_step if kind == "cat" else bernoulli_step
    entropy = cat_entropy if kind == "cat" else bern_entropy
    n = len(X_train)
    elbo_curve, logvar_curve, epoch_times = [], [], []
    for epoch in range(cfg["epochs"]):
        perm = rng.permutation(n)
        tot = 0.0
        timer = C.Timer()
        with C.one_thread(), timer:
            for i in range(0, n, BATCH):
                X = X_train[perm[i:i + BATCH]]
                gL, dec, fmean, cache, L = step(model, X, method, S, rng, state)
                ent, gent = entropy(L)
                B = len(X)
                enc = model.encoder_backward((gL + gent) / B, cache)
                grads = {k: -v / B for k, v in dec.items()}
                grads.update({k: -v for k, v in enc.items()})
                opt.step(grads)
                tot += float((fmean + ent).sum())
        epoch_times.append(timer.total)
        elbo_curve.append(tot / n)
        logvar_curve.append(math.log(opt.gradient_variance(model.encoder_keys)))
    ll, how = heldout_loglik(model, X_test, np.random.default_rng(seed + 10_000))
    return {"elbo": elbo_curve, "logvar": logvar_curve, "test_ll": ll, "ll_method": how,
            "epoch_times": epoch_times}


def estimator_list(kind, cfg):
    if kind == "cat":
        return [("csb", s) for s in cfg["S"]] + [("gumbel-softmax", cfg["base_S"])]
    b = cfg["base_S"]
    return ([("bsb", s) for s in cfg["S"]]
            + [("rebar", b), ("relax", b), ("disarm", b), ("reinforce-loo", cfg["loo_S"]), ("gumbel-softmax", b)])


def main(argv=None):
    args = C.parser(NAME, __doc__).parse_args(argv)
    cfg = dict(SIZES[args.size])
    started = time.perf_counter()
    X_train, X_test = C.binarised_digits()
    if cfg["n_train"]:
        X_train, X_test = X_train[: cfg["n_train"]], X_test[: cfg["n_test"]]
    C.log(f"[{NAME}] size={args.size}: {len(X_train)} train / {len(X_test)} test digits, "
          f"{cfg['runs']} runs x {cfg['epochs']} epochs")
    results = {}
    for kind in cfg["models"]:
        res_k = {}
        for method, S in estimator_list(kind, cfg):
            label = f"{method} (S={S})"
            runs = [train(kind, method, S, cfg, X_train, X_test, args.seed + r) for r in range(cfg["runs"])]
            lls = np.array([r["test_ll"] for r in runs])
            res_k[label] = {
                "method": method, "S": S, "ll_method": runs[0]["ll_method"],
                "test_ll_mean": float(lls.mean()), "test_ll_std": float(lls.std()), "test_ll_runs": lls,
                # the fastest epoch over all runs: the machine is shared, and the minimum is the
                # time least disturbed by other processes
                "sec_per_epoch": float(np.min([r["epoch_times"] for r in runs])),
                "sec_per_epoch_median": float(np.median([r["epoch_times"] for r in runs])),
                "elbo": C.mean_std([r["elbo"] for r in runs]), "logvar": C.mean_std([r["logvar"] for r in runs]),
            }
            C.log(f"  {kind:4s} {label:24s} test log p(x) {lls.mean():9.3f} +/- {lls.std():.3f} "
                  f"({runs[0]['ll_method']}), {res_k[label]['sec_per_epoch']:.3f} s/epoch")
        gs = next(v for v in res_k.values() if v["method"] == "gumbel-softmax")["sec_per_epoch"]
        for v in res_k.values():
            v["time_ratio_to_gumbel_softmax"] = v["sec_per_epoch"] / gs
        results[kind] = res_k
    config = {**cfg, "batch": BATCH, "lr": LR, "tau": TAU, "is_samples": IS_SAMPLES, "seed": args.seed,
              "n_train": len(X_train), "n_test": len(X_test)}
    path = C.write_json(args.out, NAME, {"config": config, "results": results}, C.command_line(NAME, argv), started)
    if not args.no_plots:
        plot(results, cfg, args.out)
    C.log(f"[{NAME}] wrote {path} in {time.perf_counter() - started:.0f} s")
    return results


def plot(results, cfg, out):
    plt = C.pyplot()
    for kind, res in results.items():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        ep = np.arange(1, cfg["epochs"] + 1)
        for label, v in res.items():
            C.band(axes[0], ep, v["elbo"], label)
            C.band(axes[1], ep, v["logvar"], label)
        axes[0].set(xlabel="epoch", ylabel="training ELBO (nats)", title=f"{kind}: training ELBO")
        axes[1].set(xlabel="epoch", ylabel="log gradient variance", title=f"{kind}: encoder gradient log-variance")
        axes[1].legend(fontsize=7)
        C.save(fig, out, f"{kind}_curves")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    rows = [(k, lab, v) for k, res in results.items() for lab, v in res.items()]
    ax.barh(range(len(rows)), [v["time_ratio_to_gumbel_softmax"] for _, _, v in rows])
    ax.set_yticks(range(len(rows)), [f"{k}: {lab}" for k, lab, _ in rows], fontsize=7)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set(xlabel="time per epoch / Gumbel-softmax's (one thread)")
    C.save(fig, out, "time_per_epoch")


if __name__ == "__main__":
    main()
