"""Regenerate ``tests/data/implicit_reference.npz``: mpmath reference values of the implicit
reparameterisation derivatives on the accuracy grid of ``tests/test_special.py``.

Gamma: 28 log-spaced shapes 1e-4 ... 1e5 (three per decade) x quantile levels (QUANTILES) plus
two far tails (z = 1e-300 and the upper point with Q(k, z) = 1e-300); z values that underflow to 0
are dropped.
Beta: shapes BETA_SHAPES squared x the same quantile levels.  Each value by ``method="quad"``
(tanh-sinh quadrature of the one-signed integral form) at DPS digits.

Run: ``python tests/data/make_implicit_reference.py`` (a few minutes on one core).
"""

from __future__ import annotations

import pathlib

import numpy as np
from scipy import special as sc

from gsbref.oracle.implicit import beta_dz_dab_mp, gamma_dz_dk_mp

DPS = 25
QUANTILES = np.array([1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-6, 1 - 1e-12])
GAMMA_SHAPES = np.logspace(-4, 5, 28)
BETA_SHAPES = np.array([1e-4, 1e-2, 0.3, 1.0, 10.0, 1e3, 1e4])


def gamma_grid():
    ks, zs, qs = [], [], []
    for k in GAMMA_SHAPES:
        z = np.concatenate([sc.gammaincinv(k, QUANTILES[QUANTILES <= 0.5]),
                            sc.gammainccinv(k, 1 - QUANTILES[QUANTILES > 0.5]),
                            [1e-300, sc.gammainccinv(k, 1e-300)]])
        q = np.concatenate([QUANTILES, [0.0, 1.0]])  # 0 / 1 flag the far tails
        keep = (z > 0) & np.isfinite(z)
        ks += [k] * int(keep.sum())
        zs += list(z[keep])
        qs += list(q[keep])
    return np.array(ks), np.array(zs), np.array(qs)


def beta_grid():
    as_, bs, zs, qs = [], [], [], []
    for a in BETA_SHAPES:
        for b in BETA_SHAPES:
            z = np.concatenate([sc.betaincinv(a, b, QUANTILES[QUANTILES <= 0.5]),
                                sc.betainccinv(a, b, 1 - QUANTILES[QUANTILES > 0.5])])
            keep = (z > 0) & (z < 1)
            n = int(keep.sum())
            as_ += [a] * n
            bs += [b] * n
            zs += list(z[keep])
            qs += list(QUANTILES[keep])
    return np.array(as_), np.array(bs), np.array(zs), np.array(qs)


def main(path=pathlib.Path(__file__).with_name("implicit_reference.npz")):
    gk, gz, gq = gamma_grid()
    gref = np.array([float(gamma_dz_dk_mp(z, k, DPS)) for k, z in zip(gk, gz)])
    ba, bb, bz, bq = beta_grid()
    bref = np.array([[float(v) for v in beta_dz_dab_mp(z, a, b, DPS)] for a, b, z in zip(ba, bb, bz)])
    np.savez_compressed(path, gamma_k=gk, gamma_z=gz, gamma_q=gq, gamma_ref=gref,
                        beta_a=ba, beta_b=bb, beta_z=bz, beta_q=bq, beta_ref=bref, dps=DPS)
    print(f"wrote {path}: {gk.size} gamma and {ba.size} beta points")


if __name__ == "__main__":
    main()
