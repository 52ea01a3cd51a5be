"""Parameter derivatives of the regularised incomplete beta function and the implicit
reparameterisation derivatives ``dz/da``, ``dz/db`` of a Beta(a, b) variate (float64).

Work in the logit variable ``s = log(t / (1 - t))``: the Beta density times ``dt`` is
``exp(phi(s)) ds`` with ``phi(s) = -a softplus(-s) - b softplus(s)``, a concave function analytic in
the strip ``|Im s| < pi``, so the integrands below have no endpoint singularity for any ``a, b > 0``.
With ``w(t) = t^(a-1) (1-t)^(b-1)``, ``c_a = E[log z] = psi(a) - psi(a+b)``, ``c_b = E[log(1-z)] =
psi(b) - psi(a+b)``, differentiating ``I_x(a, b)`` under the integral sign gives::

    dz/da = -int_0^x (log t - c_a) w(t) dt / w(x) = +int_x^1 (log t - c_a) w(t) dt / w(x)
    dz/db = -int_0^x (log(1-t) - c_b) w(t) dt / w(x) = +int_x^1 (log(1-t) - c_b) w(t) dt / w(x)

and, as for the Gamma, the lower form has a one-signed integrand for ``log x <= c_a`` (resp.
``log(1-x) >= c_b``) and the upper form otherwise: each derivative is evaluated from the side where
nothing cancels.  With ``v = s - s_x``, ``y = 1 - x`` (carried separately so that ``x`` near 0 and
near 1 keep full relative precision),
``Q_a(v) = log(1/t) - log(1/x)`` and ``Q_b(v) = log(1/(1-t)) - log(1/y)``::

    Q_a(v) = log1p(y expm1(-v)),  Q_b(v) = log1p(x expm1(v)),  Q_b - Q_a = v,
    phi(s) - phi(s_x) = -a Q_a(v) - b Q_b(v),  w(t) dt / w(x) = x y exp(-a Q_a - b Q_b) dv.

The integral over the half line is done by composite Gauss--Legendre quadrature on panels marched
away from ``s_x``; each panel's width is limited by the distance to the singularities at
``s = +-i pi``, by the change of slope of ``phi`` across it (curvature) and by the slope itself,
and may at most double from one panel to the next; the march stops once past the mode where
``phi`` has dropped by :data:`_TAIL` below its maximum on the half line.  Elements are marched in
blocks of :data:`_BLOCK` (the node arrays stay in cache), finished elements leave the block, and
``Q_a, Q_b`` are evaluated only by the formula of the half line being marched.
"""

from __future__ import annotations

import numpy as np
from scipy import special as sc

from ._gamma import log_minus_digamma

__all__ = ["beta_dz_dparams_std", "digamma_diff", "log_beta_pdf"]

_TAIL = 45.0
_NODES = 20
_MAX_PANELS = 400
#: elements per block of the panel march (its node arrays stay in cache)
_BLOCK = 2048
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_NODES)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W


def digamma_diff(a, b):
    """``psi(a + b) - psi(a)`` (> 0) without cancellation when ``b << a`` or ``a`` is large."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    out = sc.psi(a + b) - sc.psi(a)
    big = (a >= 10.0) & ~(b <= 0.01 * a)
    if big.any():
        ab, bb = a[big], b[big]
        out[big] = np.log1p(bb / ab) - (log_minus_digamma(ab + bb) - log_minus_digamma(ab))
    small = b <= 0.01 * a
    if small.any():
        ab, bb = a[small], b[small]
        # Taylor series in b: ratio of successive terms <= b/a <= 0.01, 12 terms -> 1e-24
        acc = np.zeros_like(ab)
        term = np.ones_like(ab)
        for n in range(1, 13):
            term = term * bb / n
            acc = acc + term * sc.polygamma(n, ab)
        out[small] = acc
    return out


def log_beta_pdf(x, y, a, b):
    """``log`` of the Beta(a, b) density at ``x`` (``y = 1 - x``)."""
    return (a - 1) * np.log(x) + (b - 1) * np.log(y) - sc.betaln(a, b)


def _q(v, x, y, direction):
    """``(Q_a(v), Q_b(v))`` accurately on the half line ``direction * v >= 0`` (module docstring)."""
    if direction > 0:
        # v >= 0: Q_a = log(x + y e^-v) = log1p(y expm1(-v)), through log() once y expm1(-v) <= -1/2
        g = y * np.expm1(-v)
        q = np.log1p(np.maximum(g, -0.5))
        far = g <= -0.5
        if far.any():
            q = np.where(far, np.log(x + y * np.exp(-v)), q)
        return q, q + v
    # v <= 0: Q_b = log(y + x e^v) = log1p(x expm1(v)), likewise
    g = x * np.expm1(v)
    q = np.log1p(np.maximum(g, -0.5))
    far = g <= -0.5
    if far.any():
        q = np.where(far, np.log(y + x * np.exp(v)), q)
    return q - v, q


def _slope(s, a, b):
    """``phi'(s) = a sigma(-s) - b sigma(s)``."""
    return a * sc.expit(-s) - b * sc.expit(s)


def _march(x, y, a, b, direction):
    """Moments ``int exp(E) dv``, ``int Q_a exp(E) dv``, ``int Q_b exp(E) dv`` over the half line
    ``direction * v >= 0``; arrays of one shape (1-d), processed in blocks of :data:`_BLOCK`."""
    out = np.empty((3, x.size))
    for i in range(0, x.size, _BLOCK):
        s = slice(i, i + _BLOCK)
        out[:, s] = _march_block(x[s], y[s], a[s], b[s], direction)
    return out[0], out[1], out[2]


def _march_block(x, y, a, b, direction):
    n = x.shape[0]
    M = np.zeros((3, n))
    sx = np.log(x) - np.log(y)
    sm = np.log(a) - np.log(b)
    vm = sm - sx
    mode_ahead = direction * vm > 0
    qa_m, qb_m = _q(np.where(mode_ahead, vm, 0.0), x, y, direction)
    emax = np.where(mode_ahead, -a * qa_m - b * qb_m, 0.0)
    pos = np.zeros(n)  # |v| at the start of the current panel
    H = np.full(n, np.inf)
    idx = np.arange(n)
    for _ in range(_MAX_PANELS):
        if idx.size == 0:
            break
        p, h = pos[idx], H[idx]
        xa, ya, aa, ba, sxa = x[idx], y[idx], a[idx], b[idx], sx[idx]
        s0 = sxa + direction * p
        d0 = _slope(s0, aa, ba)
        # proposed width: at most doubling, slope- and curvature-limited, inside the analytic strip
        h = np.minimum(h * 2.0, np.sqrt(s0 * s0 + np.pi**2))
        h = np.minimum(h, 20.0 / np.maximum(np.abs(d0), 1e-300))
        for _ in range(60):
            s1 = s0 + direction * h
            d1 = _slope(s1, aa, ba)
            mid = s0 + direction * 0.5 * h
            bad = (np.abs(d1 - d0) * h > 8.0) | (h > 0.9 * np.sqrt(mid * mid + np.pi**2))
            if not bad.any():
                break
            h = np.where(bad, 0.5 * h, h)
        v = (direction * p)[:, None] + (direction * h)[:, None] * _GL_X
        qa, qb = _q(v, xa[:, None], ya[:, None], direction)
        e = np.exp(-aa[:, None] * qa - ba[:, None] * qb)
        qa *= e
        qb *= e
        M[0, idx] += h * (e @ _GL_W)
        M[1, idx] += h * (qa @ _GL_W)
        M[2, idx] += h * (qb @ _GL_W)
        pos[idx] = p + h
        H[idx] = h
        vend = direction * pos[idx]
        qa1, qb1 = _q(vend, xa, ya, direction)
        e_end = -aa * qa1 - ba * qb1
        past_mode = ~mode_ahead[idx] | (direction * (vend - vm[idx]) >= 0)
        done = past_mode & (e_end < emax[idx] - _TAIL)
        idx = idx[~done]
    else:  # pragma: no cover - the panel rules above make this unreachable for valid input
        raise RuntimeError("beta quadrature did not converge")
    return M


def beta_dz_dparams_std(x, a, b, y=None):
    """``(dz/da, dz/db)`` at ``z = x`` for Beta(a, b); 1-d float64 arrays, ``x`` in [0, 1]; ``y`` is
    ``1 - x`` when known more accurately than ``1 - x`` rounds (default ``1 - x``)."""
    x = np.asarray(x, dtype=float)
    y = 1.0 - x if y is None else np.asarray(y, dtype=float)
    da = np.zeros(x.shape)
    db = np.zeros(x.shape)
    ok = (x > 0) & (y > 0)
    if not ok.any():
        return da, db
    xo, yo, ao, bo = x[ok], y[ok], a[ok], b[ok]
    ca = -digamma_diff(ao, bo)  # E[log z]
    cb = -digamma_diff(bo, ao)  # E[log(1 - z)]
    # log(1 - x) from x itself where 1 - x rounds (x < 1/2); 1 - x is exact for x >= 1/2
    lx = np.log(xo)
    ly = np.where(xo < 0.5, np.log1p(-np.minimum(xo, 0.5)), np.log(yo))
    lower_a = lx <= ca
    lower_b = ly >= cb
    res_a = np.empty(xo.shape)
    res_b = np.empty(xo.shape)
    for direction, sel_a, sel_b in ((-1, lower_a, lower_b), (1, ~lower_a, ~lower_b)):
        sel = sel_a | sel_b
        if not sel.any():
            continue
        M0, Ma, Mb = _march(xo[sel], yo[sel], ao[sel], bo[sel], direction)
        xy = xo[sel] * yo[sel]
        if direction < 0:
            # v <= 0: Q_a >= 0, Q_b <= 0
            ra = xy * ((ca[sel] - lx[sel]) * M0 + Ma)
            rb = -xy * ((ly[sel] - cb[sel]) * M0 - Mb)
        else:
            ra = xy * ((lx[sel] - ca[sel]) * M0 - Ma)
            rb = -xy * ((cb[sel] - ly[sel]) * M0 + Mb)
        ia = np.flatnonzero(sel)
        res_a[ia[sel_a[sel]]] = ra[sel_a[sel]]
        res_b[ia[sel_b[sel]]] = rb[sel_b[sel]]
    da[ok] = res_a
    db[ok] = res_b
    return da, db
