"""SuperLU's factors of a sparse matrix, solved by numba triangular sweeps.

``scipy``'s ``SuperLU.solve`` costs ~0.1 ms on the 4,000-row network block of the default
preset although its factors hold only ~15,000 nonzeros: most of it is call and supernode
overhead. The factors are therefore taken out once (``Pr A Pc = L U``, :func:`lu_factors`) and
solved by plain CSC sweeps (:func:`lu_sweeps`, :func:`lu_sweeps_t`) on a work array with one
column per right-hand side, inside the callers' numba kernels: the market clearing's network
block (:class:`FastLU`) and the linear grid model's reduced susceptance matrix
(:mod:`smartnet_gym.grid.sensitivity`).

The network block of a clearing program is one copy of the same matrix per period of the
horizon (the grid does not change within it). :func:`period_blocks` finds such copies; then only
one copy is factorised and the sweeps run over all periods at once (each factor entry is read
once for the H periods), which costs about what one period did.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def period_blocks(a: sp.spmatrix, col_period: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Row and column sets ``(rows, cols)``, each (H, n_b) in increasing order, on which the square
    ``a`` is H identical blocks and zero elsewhere (``col_period``: period of each column); None
    if it is not so (or H = 1)."""
    a = sp.csr_matrix(a)
    col_period = np.asarray(col_period, dtype=np.int64)
    h = int(col_period.max(initial=-1)) + 1
    n = a.shape[0]
    if h < 2 or n % h or a.shape != (n, n) or np.bincount(col_period, minlength=h).min() != n // h:
        return None
    if (np.diff(a.indptr) == 0).any():                  # an empty row: singular, no blocks to find
        return None
    row_period = col_period[a.indices[a.indptr[:-1]]]    # the period of each row's first entry
    if (col_period[a.indices] != np.repeat(row_period, np.diff(a.indptr))).any():   # a row across periods
        return None
    if np.bincount(row_period, minlength=h).min() != n // h:
        return None
    rows = np.stack([np.flatnonzero(row_period == t) for t in range(h)])
    cols = np.stack([np.flatnonzero(col_period == t) for t in range(h)])
    block = a[rows[0]][:, cols[0]]
    for t in range(1, h):
        other = a[rows[t]][:, cols[t]]
        if (block != other).nnz:
            return None
    return rows, cols


def lu_factors(b: sp.csc_matrix) -> tuple[np.ndarray, ...]:
    """SuperLU's factors of the square ``b`` (``Pr b Pc = L U``) as the sweeps read them:
    L and U as sorted CSC (indptr, indices, data), then perm_r and perm_c; empty for a 0 × 0 ``b``."""
    if b.shape[0] == 0:
        empty_i, empty_f = np.zeros(1, np.int64), np.zeros(0)
        return empty_i, empty_i[:0], empty_f, empty_i, empty_i[:0], empty_f, empty_i[:0], empty_i[:0]
    lu = spla.splu(b)
    low, up = lu.L.tocsc(), lu.U.tocsc()
    low.sort_indices()
    up.sort_indices()
    if len(low.data) and not np.all(low.data[low.indptr[:-1]] == 1.0):
        raise ValueError("SuperLU's L factor is expected to have a unit diagonal")
    return (low.indptr.astype(np.int64), low.indices.astype(np.int64), low.data.astype(np.float64),
            up.indptr.astype(np.int64), up.indices.astype(np.int64), up.data.astype(np.float64),
            lu.perm_r.astype(np.int64), lu.perm_c.astype(np.int64))


class FastLU:
    """``A x = b`` and ``Aᵀ X = B`` for a square sparse ``A`` factorised once (``lu``: SuperLU's object).

    ``blocks = (rows, cols)`` (:func:`period_blocks`): ``A`` is H copies of one block on those
    sets, and only that block is factorised; None: the whole ``A`` is the one block."""

    def __init__(self, a: sp.spmatrix, blocks: tuple[np.ndarray, np.ndarray] | None = None):
        a = sp.csr_matrix(a)
        n = a.shape[0]
        rows, cols = blocks if blocks is not None else (np.arange(n)[None, :], np.arange(n)[None, :])
        self.shape = a.shape
        self._factors = (*lu_factors(sp.csc_matrix(a[rows[0]][:, cols[0]])),
                         np.ascontiguousarray(rows, dtype=np.int64), np.ascontiguousarray(cols, dtype=np.int64))

    @property
    def factors(self) -> tuple[np.ndarray, ...]:
        """(L indptr, indices, data, U indptr, indices, data, perm_r, perm_c, rows, cols): the kernels' arguments."""
        return self._factors

    def solve(self, b: np.ndarray) -> np.ndarray:
        """x with A x = b (b one vector)."""
        return lu_solve(*self._factors, np.ascontiguousarray(b, dtype=float))

    def solve_t(self, b: np.ndarray) -> np.ndarray:
        """X with Aᵀ X = B (B: (n, k), one column per right-hand side)."""
        b = np.asarray(b, dtype=float)
        out = np.empty_like(b)
        for j in range(b.shape[1]):
            out[:, j] = lu_solve_t(*self._factors, np.ascontiguousarray(b[:, j]))
        return out


@numba.njit(cache=True)
def lu_sweeps(z, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val):
    """In place ``z ← U⁻¹ L⁻¹ z`` for a (n, k) work array, one column per right-hand side (sorted CSC
    factors; L with its unit diagonal stored first, U with its diagonal stored last), the columns
    innermost."""
    nb, h = z.shape
    for j in range(nb):                     # L: unit lower triangular, diagonal (1) stored first
        for k in range(l_ptr[j] + 1, l_ptr[j + 1]):
            i, v = l_idx[k], l_val[k]
            for t in range(h):
                z[i, t] -= v * z[j, t]
    for j in range(nb - 1, -1, -1):         # U: upper triangular, diagonal stored last
        d = u_val[u_ptr[j + 1] - 1]
        for t in range(h):
            z[j, t] = z[j, t] / d
        for k in range(u_ptr[j], u_ptr[j + 1] - 1):
            i, v = u_idx[k], u_val[k]
            for t in range(h):
                z[i, t] -= v * z[j, t]


@numba.njit(cache=True)
def lu_sweeps_t(z, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val):
    """In place ``z ← L⁻ᵀ U⁻ᵀ z`` for a (n, k) work array (factors as in :func:`lu_sweeps`; columns
    of the factors read as rows), the columns innermost."""
    nb, h = z.shape
    for j in range(nb):                     # Uᵀ lower triangular: column j of U is row j of Uᵀ
        for k in range(u_ptr[j], u_ptr[j + 1] - 1):
            i, v = u_idx[k], u_val[k]
            for t in range(h):
                z[j, t] -= v * z[i, t]
        d = u_val[u_ptr[j + 1] - 1]
        for t in range(h):
            z[j, t] = z[j, t] / d
    for j in range(nb - 1, -1, -1):         # Lᵀ upper triangular, unit diagonal
        for k in range(l_ptr[j] + 1, l_ptr[j + 1]):
            i, v = l_idx[k], l_val[k]
            for t in range(h):
                z[j, t] -= v * z[i, t]


@numba.njit(cache=True)
def lu_solve(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, rows, cols, b):
    """A x = b for A = H copies of B = Prᵀ L U Pcᵀ on ``(rows[t], cols[t])``: per period
    y[perm_r] = b[rows[t]], L z = y, U w = z, x[cols[t]] = w[perm_c] (sorted CSC columns), the
    periods innermost."""
    z = _to_blocks(b, rows, perm_r)
    lu_sweeps(z, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val)
    return _from_blocks(z, cols, perm_c)


@numba.njit(cache=True)
def lu_solve_t(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, rows, cols, b):
    """Aᵀ x = b for A as in :func:`lu_solve`: per period v[perm_c] = b[cols[t]], Uᵀ s = v,
    Lᵀ w = s, x[rows[t]] = w[perm_r] (columns read as rows), the periods innermost."""
    z = _to_blocks(b, cols, perm_c)
    lu_sweeps_t(z, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val)
    return _from_blocks(z, rows, perm_r)


@numba.njit(cache=True)
def _to_blocks(b, sets, perm):
    """(n_b, H) work array ``z[perm[j], t] = b[sets[t, j]]`` (the periods innermost)."""
    h, nb = sets.shape
    z = np.empty((nb, h))
    for t in range(h):
        for j in range(nb):
            z[perm[j], t] = b[sets[t, j]]
    return z


@numba.njit(cache=True)
def _from_blocks(z, sets, perm):
    """The vector ``x[sets[t, i]] = z[perm[i], t]`` of a work array."""
    h, nb = sets.shape
    x = np.empty(h * nb)
    for t in range(h):
        for i in range(nb):
            x[sets[t, i]] = z[perm[i], t]
    return x


@numba.njit(cache=True)
def csr_matvec(ptr, idx, val, x):
    """``A x`` for CSR arrays, row by row in stored order (the additions of scipy's ``csr_matvec``,
    so the same bits)."""
    out = np.empty(len(ptr) - 1)
    for i in range(len(ptr) - 1):
        acc = 0.0
        for k in range(ptr[i], ptr[i + 1]):
            acc += val[k] * x[idx[k]]
        out[i] = acc
    return out
