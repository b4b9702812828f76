"""SuperLU's factors of the screened network block, solved by numba triangular kernels.

``scipy``'s ``SuperLU.solve`` costs ~0.1 ms on the 4,000-row network block of the default
preset although its factors hold only ~15,000 nonzeros: most of it is call and supernode
overhead. The fast path needs one such solve per round (the network state of the answer), so
the factors are taken out once (``Pr A Pc = L U``) and solved here by plain CSC sweeps.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


class FastLU:
    """``A x = b`` and ``Aᵀ X = B`` for a square sparse ``A`` factorised once (``lu``: SuperLU's object)."""

    def __init__(self, a: sp.spmatrix):
        self.lu = spla.splu(sp.csc_matrix(a))
        low, up = self.lu.L.tocsc(), self.lu.U.tocsc()
        low.sort_indices()
        up.sort_indices()
        if len(low.data) and not np.all(low.data[low.indptr[:-1]] == 1.0):
            raise ValueError("SuperLU's L factor is expected to have a unit diagonal")
        self._l = (low.indptr.astype(np.int64), low.indices.astype(np.int64), low.data)
        self._u = (up.indptr.astype(np.int64), up.indices.astype(np.int64), up.data)
        self._perm_r = self.lu.perm_r.astype(np.int64)
        self._perm_c = self.lu.perm_c.astype(np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        return self.lu.shape

    def solve(self, b: np.ndarray) -> np.ndarray:
        """x with A x = b (b one vector)."""
        return lu_solve(*self._l, *self._u, self._perm_r, self._perm_c, np.ascontiguousarray(b, dtype=float))

    @property
    def factors(self) -> tuple[np.ndarray, ...]:
        """(L indptr, indices, data, U indptr, indices, data, perm_r, perm_c): the kernels' arguments."""
        return (*self._l, *self._u, self._perm_r, self._perm_c)

    def solve_t(self, b: np.ndarray) -> np.ndarray:
        """X with Aᵀ X = B (B: (n, k), one column per right-hand side)."""
        b = np.asarray(b, dtype=float)
        out = np.empty_like(b)
        for j in range(b.shape[1]):
            out[:, j] = lu_solve_t(*self._l, *self._u, self._perm_r, self._perm_c, np.ascontiguousarray(b[:, j]))
        return out


@numba.njit(cache=True)
def lu_solve(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, b):
    """A = Prᵀ L U Pcᵀ: y[perm_r] = b, L z = y, U w = z, x = w[perm_c] (sorted CSC columns)."""
    n = len(b)
    z = np.empty(n)
    for j in range(n):
        z[perm_r[j]] = b[j]
    for j in range(n):                      # L: unit lower triangular, diagonal (1) stored first
        zj = z[j]
        if zj != 0.0:
            for k in range(l_ptr[j] + 1, l_ptr[j + 1]):
                z[l_idx[k]] -= l_val[k] * zj
    for j in range(n - 1, -1, -1):          # U: upper triangular, diagonal stored last
        wj = z[j] / u_val[u_ptr[j + 1] - 1]
        z[j] = wj
        if wj != 0.0:
            for k in range(u_ptr[j], u_ptr[j + 1] - 1):
                z[u_idx[k]] -= u_val[k] * wj
    x = np.empty(n)
    for i in range(n):
        x[i] = z[perm_c[i]]
    return x


@numba.njit(cache=True)
def lu_solve_t(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, b):
    """Aᵀ = Pc Uᵀ Lᵀ Pr: v[perm_c] = b, Uᵀ s = v, Lᵀ t = s, x = t[perm_r] (columns as rows)."""
    n = len(b)
    z = np.empty(n)
    for i in range(n):
        z[perm_c[i]] = b[i]
    for j in range(n):                      # Uᵀ lower triangular: column j of U is row j of Uᵀ
        acc = z[j]
        for k in range(u_ptr[j], u_ptr[j + 1] - 1):
            acc -= u_val[k] * z[u_idx[k]]
        z[j] = acc / u_val[u_ptr[j + 1] - 1]
    for j in range(n - 1, -1, -1):          # Lᵀ upper triangular, unit diagonal
        acc = z[j]
        for k in range(l_ptr[j] + 1, l_ptr[j + 1]):
            acc -= l_val[k] * z[l_idx[k]]
        z[j] = acc
    x = np.empty(n)
    for j in range(n):
        x[j] = z[perm_r[j]]
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
