"""Values of ``f`` at every small change of a batch of points ("flips"), computed in batches.

Theorem 2 needs, for each sample ``z`` and each coordinate (or clique) ``c``, the values of ``f``
with ``z_c`` replaced by other values while ``z_-c`` is kept.  :func:`flipped_values` computes a
whole table of such values at once:

    ``F[s, g, a] = f(z[s] with z[s, idx[g, :]] replaced by values[s, g, a, :])``

for ``S`` points ``z`` of shape ``(S, d)``, ``G`` groups of ``m`` coordinates ``idx`` (``(G, m)``;
``m = 1`` for independent coordinates, the clique's coordinates otherwise) and ``n`` replacement
assignments per group (``values`` broadcastable to ``(S, G, n, m)``).

Two strategies, both exact (they differ by rounding only):

``"naive"``   build the ``(S, G, n, d)`` modified points and evaluate ``f`` on them in one batched
              call (per block of samples).  Works for every ``f``; for ``f(z) = rest(W z + c)`` with
              ``W`` of shape ``(h, d)`` it costs ``O(d h)`` per flip (the matrix product).
``"affine"``  for ``f(z) = rest(W z + c)`` (:meth:`gsbref.functions.Function.first_affine`):
              replacing ``z_c`` by ``v`` moves the pre-activation ``u = W z + c`` by
              ``W[:, c] (v - z_c)``, a rank-``m`` update.  All updated pre-activations come from one
              broadcast, ``O(m h)`` per flip, and ``rest`` is applied to the ``(S, G, n, h)`` batch.

``"auto"`` takes ``"affine"`` when ``f`` has that form and ``d >= AFFINE_MIN_D``, else ``"naive"``.
(Measured with ``benchmarks/discrete_flips.py --crossover``, one thread, f = sum(log_sigmoid(W z + c)),
h in {10, 200}, S from 1 to 8000: for d <= 2 the naive batch is 0-7 % faster at small S, from
d = 4 on the affine updates are 5-25 % faster, and the gap grows like d: 9-10x at d = 1000.)
Work is done in blocks of at most about ``BLOCK_ELEMENTS`` array elements so that the temporaries
stay in cache and memory stays bounded whatever ``S`` and ``d``; the loops run over blocks, never
over single coordinates.

Array backends: ``z`` (and ``values``) may be arrays of any array-API namespace; the table is then
built in that namespace (the flipped points by masks instead of NumPy's ``put_along_axis``; the
affine updates by ``take`` and matrix products), and ``f`` (or ``rest``) is evaluated on the host
until the functions layer is array-API generic.  NumPy inputs take the NumPy code.

>>> import numpy as np
>>> from gsbref.functions import function
>>> f = function("sum(log_sigmoid(W @ z + c))", W=np.array([[1.0, -2.0, 0.5]]), c=np.array([0.3]))
>>> z = np.array([[0.0, 1.0, 1.0]])
>>> idx = np.arange(3)[:, None]                    # three groups of one coordinate
>>> vals = (1.0 - z)[:, :, None, None]             # flip each bit: (S, G, n=1, m=1)
>>> a = flipped_values(f, z, idx, vals, strategy="affine")
>>> b = flipped_values(f, z, idx, vals, strategy="naive")
>>> a.shape, bool(np.allclose(a, b, rtol=0, atol=1e-14))
((1, 3, 1), True)
>>> float(a[0, 0, 0]) == float(f(np.array([1.0, 1.0, 1.0])))
True
"""

from __future__ import annotations

import numpy as np

from .._backend import asarray, call_host, is_numpy, namespace, to_numpy

__all__ = ["AFFINE_MIN_D", "BLOCK_ELEMENTS", "STRATEGIES", "base_values", "choose_strategy", "flipped_values"]

STRATEGIES = ("auto", "affine", "naive")
#: "auto" uses the rank-1 (rank-m) updates from this many coordinates on (see the module docstring)
AFFINE_MIN_D = 4
#: elements per block of temporaries (2**17 float64 = 1 MiB: the measured plateau is 2**13..2**20)
BLOCK_ELEMENTS = 2**17


def choose_strategy(f, d: int, strategy: str = "auto"):
    """``("affine", (W, c, rest))`` or ``("naive", None)`` for ``f`` on ``d`` coordinates.

    ``strategy="affine"`` raises ``ValueError`` when ``f`` does not start with an affine map.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "naive":
        return "naive", None
    aff = f.first_affine() if hasattr(f, "first_affine") else None
    if aff is None:
        if strategy == "affine":
            raise ValueError(
                f"strategy='affine' needs f of the form rest(W @ z + c) (Function.first_affine); {f!r} is not"
            )
        return "naive", None
    W, c, rest = aff
    if W.ndim != 2 or W.shape[1] != d:
        raise ValueError(f"f's first affine map has W of shape {W.shape}, but z has {d} coordinates")
    if strategy == "auto" and d < AFFINE_MIN_D:
        return "naive", None
    return "affine", (W, c, rest)


def base_values(f, z: np.ndarray, strategy: str = "auto") -> np.ndarray:
    """``f(z)`` for ``z`` of shape ``(S, d)``, in blocks (through ``rest(W z + c)`` on the affine
    strategy, so that the values are computed the same way as the flipped ones)."""
    xp = namespace(z)
    if not is_numpy(xp):
        return _base_values_xp(xp, f, asarray(z, xp, xp.float64), strategy)
    z = np.asarray(z, dtype=float)
    S, d = z.shape
    _, aff = choose_strategy(f, d, strategy)
    width = d if aff is None else max(d, aff[0].shape[0])
    rows = max(1, BLOCK_ELEMENTS // width)
    out = np.empty(S)
    for s0 in range(0, S, rows):
        zb = z[s0 : s0 + rows]
        if aff is None:
            out[s0 : s0 + rows] = f(zb)
        else:
            W, c, rest = aff
            out[s0 : s0 + rows] = rest(zb @ W.T + c)
    return out


def flipped_values(f, z: np.ndarray, idx: np.ndarray, values: np.ndarray, strategy: str = "auto") -> np.ndarray:
    """The table ``F[s, g, a]`` of the module docstring, shape ``(S, G, n)``.

    ``z``: ``(S, d)`` points; ``idx``: ``(G, m)`` integer coordinate indices (a group's ``m``
    coordinates are distinct); ``values``: broadcastable to ``(S, G, n, m)``, the replacement
    values; ``strategy``: ``"auto"``, ``"affine"`` or ``"naive"``.  The table is in the namespace of
    ``z`` (module docstring).
    """
    xp = namespace(z, values)
    if not is_numpy(xp):
        return _flipped_values_xp(xp, f, z, idx, values, strategy)
    z = np.asarray(z, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"z must have shape (S, d), got {z.shape}")
    S, d = z.shape
    idx = np.asarray(idx)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must be an integer array of shape (G, m), got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise ValueError(f"idx must lie in [0, {d}), got values in [{idx.min()}, {idx.max()}]")
    G, m = idx.shape
    values = np.asarray(values, dtype=float)
    if values.ndim != 4 or values.shape[-1] != m:
        raise ValueError(f"values must have shape (S, G, n, m={m}) (broadcastable), got {values.shape}")
    n = values.shape[2]
    values = np.broadcast_to(values, (S, G, n, m))
    _, aff = choose_strategy(f, d, strategy)
    out = np.empty((S, G, n))
    if S == 0 or G == 0 or n == 0:
        return out
    if aff is None:
        _naive(f, z, idx, values, out)
    else:
        _affine(aff, z, idx, values, out)
    return out


def _blocks(S, G, per_group):
    """Yield ``(s-slice, g-slice)`` blocks with about ``BLOCK_ELEMENTS`` elements each, where one
    (sample, group) pair costs ``per_group`` elements: whole samples when they fit, else groups
    of one sample."""
    per_sample = G * per_group
    if per_sample <= BLOCK_ELEMENTS:
        rows = max(1, BLOCK_ELEMENTS // per_sample)
        for s0 in range(0, S, rows):
            yield slice(s0, min(S, s0 + rows)), slice(0, G)
        return
    gs = max(1, BLOCK_ELEMENTS // per_group)
    for s0 in range(S):
        for g0 in range(0, G, gs):
            yield slice(s0, s0 + 1), slice(g0, min(G, g0 + gs))


def _naive(f, z, idx, values, out):
    S, d = z.shape
    G, m = idx.shape
    n = values.shape[2]
    for sb, gb in _blocks(S, G, n * d):
        zb = z[sb]
        Gb = gb.stop - gb.start
        pts = np.empty((zb.shape[0], Gb, n, d))
        pts[...] = zb[:, None, None, :]
        where = np.broadcast_to(idx[None, gb, None, :], (zb.shape[0], Gb, n, m))
        np.put_along_axis(pts, where, values[sb, gb], axis=-1)
        out[sb, gb] = f(pts)


def _affine(aff, z, idx, values, out):
    W, c, rest = aff
    S = z.shape[0]
    G, m = idx.shape
    n = values.shape[2]
    h = W.shape[0]
    WT = np.ascontiguousarray(W.T)  # (d, h): row j is the column W[:, j]
    U = z @ WT + c  # (S, h) pre-activations of the unflipped points
    cols = WT[idx]  # (G, m, h)
    for sb, gb in _blocks(S, G, n * h):
        delta = values[sb, gb] - z[sb][:, idx[gb]][:, :, None, :]  # (Sb, Gb, n, m)
        if m == 1:
            pre = delta[..., 0, None] * cols[None, gb, None, 0, :]  # (Sb, Gb, n, h)
        else:
            pre = np.matmul(delta, cols[None, gb])  # (Sb, Gb, n, m) @ (1, Gb, m, h)
        pre += U[sb, None, None, :]
        out[sb, gb] = rest(pre)


# ----------------------------------------------------------------------------------------------
# any array namespace
# ----------------------------------------------------------------------------------------------
def _call(xp, fn, x):
    """``fn(x)`` as float64 in ``xp`` (``fn`` runs on the host: phase 1 of the array backends)."""
    return call_host(fn, x, xp=xp, dtype=float)


def _base_values_xp(xp, f, z, strategy):
    S, d = z.shape
    _, aff = choose_strategy(f, d, strategy)
    width = d if aff is None else max(d, aff[0].shape[0])
    rows = max(1, BLOCK_ELEMENTS // width)
    out = xp.empty((S,), dtype=xp.float64)
    if aff is not None:
        W, c, rest = aff
        WT = asarray(np.ascontiguousarray(W.T), xp, xp.float64)
        c = asarray(c, xp, xp.float64)
    for s0 in range(0, S, rows):
        blk = slice(s0, min(S, s0 + rows))  # the standard leaves out-of-bounds slice ends unspecified
        zb = z[blk, ...]
        out[blk] = _call(xp, f, zb) if aff is None else _call(xp, rest, zb @ WT + c)
    return out


def _flipped_values_xp(xp, f, z, idx, values, strategy):
    z = asarray(z, xp, xp.float64)
    if z.ndim != 2:
        raise ValueError(f"z must have shape (S, d), got {tuple(z.shape)}")
    S, d = z.shape
    idx_h = to_numpy(idx)  # the indices are small: checked on the host
    if idx_h.ndim != 2 or not np.issubdtype(idx_h.dtype, np.integer):
        raise ValueError(f"idx must be an integer array of shape (G, m), got {idx_h.dtype} {idx_h.shape}")
    if idx_h.size and (idx_h.min() < 0 or idx_h.max() >= d):
        raise ValueError(f"idx must lie in [0, {d}), got values in [{idx_h.min()}, {idx_h.max()}]")
    G, m = idx_h.shape
    values = asarray(values, xp, xp.float64)
    if values.ndim != 4 or values.shape[-1] != m:
        raise ValueError(f"values must have shape (S, G, n, m={m}) (broadcastable), got {tuple(values.shape)}")
    n = values.shape[2]
    values = xp.broadcast_to(values, (S, G, n, m))
    _, aff = choose_strategy(f, d, strategy)
    out = xp.empty((S, G, n), dtype=xp.float64)
    if S == 0 or G == 0 or n == 0:
        return out
    idx = asarray(idx_h.astype(np.int64), xp)
    if aff is None:
        _naive_xp(xp, f, z, idx, values, out)
    else:
        _affine_xp(xp, aff, z, idx, values, out)
    return out


def _naive_xp(xp, f, z, idx, values, out):
    """:func:`_naive` with masks: coordinate ``idx[g, i]`` of the copies of ``z`` takes
    ``values[..., i]``."""
    S, d = z.shape
    G, m = idx.shape
    n = values.shape[2]
    coords = xp.arange(d, dtype=idx.dtype)
    for sb, gb in _blocks(S, G, n * d):
        zb = z[sb, ...]
        pts = xp.broadcast_to(zb[:, None, None, :], (zb.shape[0], gb.stop - gb.start, n, d))
        for i in range(m):
            hit = coords == idx[gb, i][:, None]  # (Gb, d)
            pts = xp.where(hit[None, :, None, :], values[sb, gb, :, i][..., None], pts)
        out[sb, gb, :] = _call(xp, f, pts)


def _affine_xp(xp, aff, z, idx, values, out):
    """:func:`_affine` with ``take`` for the gathers."""
    W, c, rest = aff
    S = z.shape[0]
    G, m = idx.shape
    n = values.shape[2]
    h = W.shape[0]
    WT = asarray(np.ascontiguousarray(W.T), xp, xp.float64)  # (d, h)
    U = z @ WT + asarray(c, xp, xp.float64)  # (S, h)
    flat = xp.reshape(idx, (-1,))
    cols = xp.reshape(xp.take(WT, flat, axis=0), (G, m, h))
    for sb, gb in _blocks(S, G, n * h):
        Gb = gb.stop - gb.start
        zsel = xp.reshape(xp.take(z[sb, ...], xp.reshape(idx[gb, ...], (-1,)), axis=1), (-1, Gb, 1, m))
        delta = values[sb, gb, ...] - zsel  # (Sb, Gb, n, m)
        if m == 1:
            pre = delta[..., 0][..., None] * cols[None, gb, 0, :][:, :, None, :]  # (Sb, Gb, n, h)
        else:
            pre = xp.matmul(delta, cols[None, gb, ...])  # (Sb, Gb, n, m) @ (1, Gb, m, h)
        pre = pre + U[sb, ...][:, None, None, :]
        out[sb, gb, :] = _call(xp, rest, pre)
