"""A bounded dual simplex for the fast path's bid-space LP: few rows, many boxed columns, hot starts.

The screened clearing LP (``screening.py``) has ~2,000 bid columns, each boxed by its offered
quantity, and a handful of rows: balance per period, storage, interface limits and the network
limits found binding. HiGHS costs ≥ 0.6–1 ms per call on such a model even with nothing to
pivot (its per-call floor), which is most of a clearing. Here the basis is a dense m × m
inverse; an iteration is a row product over the sparse rows, the bound-flipping ratio test (one merit-order
step across many bids is one iteration) and a rank-one update, and a rolling market needs a few
iterations from the previous basis. The iterations run in one numba kernel (compiled once,
cached on disk): as NumPy calls, their ~30 calls of a few µs each were most of an iteration.

Nothing is guessed: a singular basis, a column that would have to sit at an infinite bound, a
primal infeasible LP or the iteration limit end the solve with a failed status, and the caller
solves that LP by HiGHS instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from smartnet_gym.numerics.sparse_lu import csr_matvec

PRIMAL_TOL = 1e-9        # MW (or milli-pu²) a basic variable may sit outside its bounds
DUAL_TOL = 1e-9          # EUR per unit of reduced cost treated as zero when a bound is chosen
PIVOT_TOL = 1e-9         # smallest |α| of an entering column
REFACTOR_EVERY = 128     # rank-one updates between fresh inverses of the basis
MAX_ITERATIONS = 2_000


@dataclass(frozen=True)
class SimplexResult:
    """The answer of one solve; ``x``, ``row_dual`` and ``objective`` are meaningful when ``ok``."""

    status: str              # "optimal" | "failed: <reason>"
    x: np.ndarray            # (n,) column values
    row_dual: np.ndarray     # (m,) ∂ objective / ∂ row bound (the active one)
    objective: float
    iterations: int

    @property
    def ok(self) -> bool:
        return self.status == "optimal"


class DualSimplex:
    """``min c·x  s.t.  lo ≤ A x ≤ hi,  l ≤ x ≤ u`` on a sparse ``A`` (m × n) kept between solves.

    Row ``i`` has a logical column ``s_i = A_i x`` bounded by ``[lo_i, hi_i]``, so the system is
    ``[A −I] (x, s) = 0``; variables ``0…n−1`` are the columns, ``n…n+m−1`` the logicals. The
    basis of the last solve (and which nonbasic variables sit at their upper bound) is the start
    of the next one: only costs and bounds change between clearings, and a boxed nonbasic
    variable is made dual feasible by putting it at the other bound.

    ``A`` is kept as CSR arrays (and CSC, derived when read): the rows over the bids are sparse (a
    period's rows touch that period's bids, a limit its area's), and so are the columns, so the
    kernel's row products and column updates read a few % of a dense matrix, and rows or columns
    added, inserted or dropped move only the nonzeros.
    """

    def __init__(self, a: np.ndarray):
        a = np.ascontiguousarray(np.array(a, dtype=float, ndmin=2))
        m, n = a.shape
        self._shape = (m, n)
        self._rows = _csr(a)
        self._cols: tuple[np.ndarray, ...] | None = None
        self.basic = np.arange(n, n + m)
        self.upper = np.zeros(n + m, bool)
        self.iterations = 0                       # of the last solve (diagnostics)
        self._binv: np.ndarray | None = None      # inverse of the kept basis, if known
        self._updates = 0                         # rank-one updates since it was computed afresh

    @property
    def a(self) -> np.ndarray:
        """The matrix, dense (a copy: for inspection)."""
        ptr, idx, val = self._rows
        out = np.zeros(self._shape)
        out[np.repeat(np.arange(self._shape[0]), np.diff(ptr)), idx] = val
        return out

    def _set_rows(self, rows: tuple[np.ndarray, ...], shape: tuple[int, int]) -> None:
        self._rows, self._shape, self._cols = rows, shape, None

    def sparse(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """CSR and CSC arrays (indptr, indices, data) of ``A`` (the CSC rebuilt after a change)."""
        if self._cols is None:
            self._cols = _transpose(*self._rows, self._shape[1])
        return self._rows, self._cols

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    def extend(self, rows: np.ndarray, n_cols: int) -> None:
        """Append ``n_cols`` columns, zero on the present rows (they start nonbasic at their lower
        bound), then ``rows`` (k × (n + n_cols)), whose logicals enter the basis (the dual simplex
        then repairs them). The basis inverse grows by a block, ``[[B⁻¹, 0], [R_B B⁻¹, −I]]``: no
        refactorisation."""
        m, n = self._shape
        k = rows.shape[0]
        basic = np.where(self.basic >= n, self.basic + n_cols, self.basic)
        if self._binv is not None:             # the new columns are nonbasic: basic structurals are < n
            r_b = np.where(basic < n, rows[:, np.minimum(basic, n - 1)], 0.0)
            self._binv = np.ascontiguousarray(np.block([[self._binv, np.zeros((m, k))], [r_b @ self._binv, -np.eye(k)]]))
        # the present rows' nonzeros keep their columns: only the new rows are read
        ptr, idx, val = self._rows
        new_ptr, new_idx, new_val = _csr(np.ascontiguousarray(rows, dtype=float))
        self._set_rows((np.concatenate((ptr, ptr[-1] + new_ptr[1:])), np.concatenate((idx, new_idx)),
                        np.concatenate((val, new_val))), (m + k, n + n_cols))
        self.basic = np.concatenate((basic, n + n_cols + m + np.arange(k)))
        self.upper = np.concatenate((self.upper[:n], np.zeros(n_cols, bool), self.upper[n:], np.zeros(k, bool)))

    def insert(self, at: int, cols: np.ndarray) -> None:
        """Insert columns (m × q) before column ``at``, nonbasic: the basis and its inverse stay as
        they are, and the next solve puts each new column at the bound its reduced cost asks for."""
        m, n = self._shape
        q = cols.shape[1]
        self._set_rows(_insert_columns(*self._rows, at, np.ascontiguousarray(cols, dtype=float)), (m, n + q))
        self.basic = np.where(self.basic >= at, self.basic + q, self.basic)
        self.upper = np.concatenate((self.upper[:at], np.zeros(q, bool), self.upper[at:]))

    def drop(self, rows: np.ndarray, cols: np.ndarray) -> bool:
        """Remove rows whose logical is basic and nonbasic columns (False, nothing removed: not so).

        The basis inverse loses the rows' basis positions and the rows' columns, which is exact:
        a basic logical is a unit column, so the rest of the basis does not depend on its row."""
        m, n = self._shape
        pos = np.flatnonzero(np.isin(self.basic, n + rows))
        if len(pos) != len(rows) or self.is_basic(cols).any():
            return False
        keep_b = np.ones(m, bool)
        keep_b[pos] = False
        basic = self.basic[keep_b]
        keep_c, keep_r = np.isin(np.arange(n), cols, invert=True), np.isin(np.arange(m), rows, invert=True)
        new_col, new_row = np.cumsum(keep_c) - 1, np.cumsum(keep_r) - 1
        n2 = n - len(cols)
        self.basic = np.where(basic < n, new_col[np.minimum(basic, n - 1)], n2 + new_row[np.maximum(basic - n, 0)])
        keep_var = np.ones(n + m, bool)
        keep_var[cols] = False
        keep_var[n + rows] = False
        self.upper = self.upper[keep_var]
        self._set_rows(_drop_entries(*self._rows, keep_r, np.where(keep_c, new_col, -1)), (m - len(rows), n2))
        if self._binv is not None:
            self._binv = np.ascontiguousarray(np.delete(self._binv[keep_b], rows, axis=1))
        return True

    def is_basic(self, idx: np.ndarray) -> np.ndarray:
        """Which variables of ``idx`` are basic (columns ``< n``, logicals ``n + row``)."""
        mask = np.zeros(self._shape[0] + self._shape[1], bool)
        mask[self.basic] = True
        return mask[idx]

    def cold_start(self) -> None:
        """Forget the basis: all logicals basic."""
        m, n = self._shape
        self.basic = np.arange(n, n + m)
        self.upper[:] = False
        self._binv = None

    def _basis_inverse(self) -> np.ndarray | None:
        m, n = self._shape
        b = _basis_matrix(m, n, *self.sparse()[1], self.basic)
        try:
            inv = np.linalg.inv(b)
        except np.linalg.LinAlgError:
            return None
        return np.ascontiguousarray(inv) if np.isfinite(inv).all() else None

    def solve(self, c: np.ndarray, l: np.ndarray, u: np.ndarray, lo: np.ndarray, hi: np.ndarray
              ) -> SimplexResult:
        """Solve from the kept basis; on a singular or failed start, once more from a cold basis."""
        res = _iterate(self, c, l, u, lo, hi)
        if not res.ok and not res.status.endswith("primal infeasible"):
            self.cold_start()
            res = _iterate(self, c, l, u, lo, hi)
        if not res.ok:
            self.cold_start()
        return res


# kernel return codes
_OPTIMAL, _REFRESH, _PRIMAL_INFEASIBLE, _DUAL_INFEASIBLE, _TINY_PIVOT, _ITERATION_LIMIT = range(6)
_FAILURES = {_PRIMAL_INFEASIBLE: "primal infeasible", _DUAL_INFEASIBLE: "dual infeasible (a column at an infinite bound)",
             _TINY_PIVOT: "tiny pivot", _ITERATION_LIMIT: "iteration limit"}


def _iterate(lp: DualSimplex, c, l, u, lo, hi) -> SimplexResult:
    """One solve from the kept basis: the kernel runs until optimal or failed, asking for a fresh
    basis inverse (every ``REFACTOR_EVERY`` updates, or to confirm an answer) on the way."""
    m, n = lp.shape
    cost = np.ascontiguousarray(c, dtype=float)
    lb = np.concatenate((l, lo)).astype(float, copy=False)
    ub = np.concatenate((u, hi)).astype(float, copy=False)
    x, d = np.zeros(n + m), np.zeros(n + m)
    if lp._binv is not None and lp._updates < REFACTOR_EVERY:
        binv, updates = lp._binv, lp._updates     # the last solve confirmed it
    else:
        binv, updates = lp._basis_inverse(), 0
    it = 0
    while True:
        if binv is None:
            return SimplexResult("failed: singular basis", np.zeros(n), np.zeros(m), float("nan"), it)
        code, it, updates = _kernel(m, n, *lp.sparse(), cost, lb, ub, lp.basic, lp.upper, binv, updates, it, x, d)
        if code != _REFRESH:
            break
        binv, updates = lp._basis_inverse(), 0
    lp.iterations = it
    if code != _OPTIMAL:
        return SimplexResult(f"failed: {_FAILURES[code]}", np.zeros(n), np.zeros(m), float("nan"), it)
    lp._binv, lp._updates = binv, updates
    return SimplexResult("optimal", x[:n].copy(), d[n:].copy(), float(cost @ x[:n]), it)


@numba.njit(cache=True)
def _move(n, cols, at, mz, j, value):
    """Set nonbasic (or leaving) variable ``j`` to ``value`` and keep ``M z_N`` in step."""
    delta = value - at[j]
    at[j] = value
    if j < n:
        ptr, idx, val = cols
        for k in range(ptr[j], ptr[j + 1]):
            mz[idx[k]] += val[k] * delta
    else:
        mz[j - n] -= delta


@numba.njit(cache=True)
def _csr(a):
    """(indptr, indices, data) of the nonzeros of dense ``a``, row by row."""
    m, n = a.shape
    indptr = np.zeros(m + 1, np.int64)
    for i in range(m):
        k = 0
        for j in range(n):
            if a[i, j] != 0.0:
                k += 1
        indptr[i + 1] = indptr[i] + k
    indices = np.empty(indptr[m], np.int64)
    data = np.empty(indptr[m])
    for i in range(m):
        k = indptr[i]
        for j in range(n):
            if a[i, j] != 0.0:
                indices[k], data[k] = j, a[i, j]
                k += 1
    return indptr, indices, data


@numba.njit(cache=True)
def _insert_columns(ptr, idx, val, at, cols):
    """CSR arrays with the dense columns ``cols`` (m × q) inserted before column ``at``."""
    m, q = cols.shape
    nnz_new = 0
    for i in range(m):
        for j in range(q):
            if cols[i, j] != 0.0:
                nnz_new += 1
    out_ptr = np.zeros(m + 1, np.int64)
    out_idx = np.empty(len(idx) + nnz_new, np.int64)
    out_val = np.empty(len(idx) + nnz_new)
    k = 0
    for i in range(m):
        e = ptr[i]
        while e < ptr[i + 1] and idx[e] < at:
            out_idx[k], out_val[k] = idx[e], val[e]
            k += 1
            e += 1
        for j in range(q):
            if cols[i, j] != 0.0:
                out_idx[k], out_val[k] = at + j, cols[i, j]
                k += 1
        while e < ptr[i + 1]:
            out_idx[k], out_val[k] = idx[e] + q, val[e]
            k += 1
            e += 1
        out_ptr[i + 1] = k
    return out_ptr, out_idx, out_val


@numba.njit(cache=True)
def _drop_entries(ptr, idx, val, keep_row, new_col):
    """CSR arrays without the rows ``~keep_row`` and the columns whose ``new_col`` is −1 (the
    others renumbered to ``new_col``)."""
    m = len(keep_row)
    out_ptr = np.zeros(int(keep_row.sum()) + 1, np.int64)
    out_idx = np.empty(len(idx), np.int64)
    out_val = np.empty(len(idx))
    k = 0
    r = 0
    for i in range(m):
        if not keep_row[i]:
            continue
        for e in range(ptr[i], ptr[i + 1]):
            j = new_col[idx[e]]
            if j >= 0:
                out_idx[k], out_val[k] = j, val[e]
                k += 1
        r += 1
        out_ptr[r] = k
    return out_ptr, out_idx[:k].copy(), out_val[:k].copy()


@numba.njit(cache=True)
def _basis_matrix(m, n, cptr, cidx, cval, basic):
    """Dense basis ``B`` (m × m) of ``[A −I]``: the basic columns of ``A`` (CSC) and −1 units."""
    b = np.zeros((m, m))
    for p in range(m):
        j = basic[p]
        if j < n:
            for e in range(cptr[j], cptr[j + 1]):
                b[cidx[e], p] = cval[e]
        else:
            b[j - n, p] = -1.0
    return b


@numba.njit(cache=True)
def _transpose(indptr, indices, data, n):
    """CSC arrays of the CSR ``(indptr, indices, data)`` with ``n`` columns (rows in order)."""
    ptr = np.zeros(n + 1, np.int64)
    for k in range(len(indices)):
        ptr[indices[k] + 1] += 1
    for j in range(n):
        ptr[j + 1] += ptr[j]
    fill = ptr[:-1].copy()
    idx = np.empty(len(indices), np.int64)
    val = np.empty(len(indices))
    for i in range(len(indptr) - 1):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            idx[fill[j]], val[fill[j]] = i, data[k]
            fill[j] += 1
    return ptr, idx, val


@numba.njit(cache=True)
def _vec_mat(rows, v, n):
    """``v @ a`` from the CSR rows (rows with v_i = 0 skipped)."""
    indptr, indices, data = rows
    out = np.zeros(n)
    for i in range(len(indptr) - 1):
        vi = v[i]
        if vi != 0.0:
            for k in range(indptr[i], indptr[i + 1]):
                out[indices[k]] += vi * data[k]
    return out


@numba.njit(cache=True)
def _breakpoints(ratio, cand, alpha, span, viol, tol):
    """The ratio test's breakpoints in increasing ratio (ties: candidate order) until the
    violation left after passing them is within ``tol``: (order, k), ``order[k]`` entering;
    k = −1 if passing all leaves it violated. The first few are picked one by one (usually
    the step needs only those), the rest sorted once."""
    k_c = len(ratio)
    order = np.empty(k_c, np.int64)
    taken = np.zeros(k_c, np.bool_)
    slope = viol
    for i in range(k_c):
        if i == 8:                                # many flips: sort what is left once
            rest = np.flatnonzero(~taken)
            order[i:] = rest[np.argsort(ratio[rest], kind="mergesort")]
            for i2 in range(i, k_c):
                j = cand[order[i2]]
                slope -= abs(alpha[j]) * span[j]
                if slope <= tol:
                    return order, i2
            return order, -1
        best = -1
        for c in range(k_c):
            if not taken[c] and (best < 0 or ratio[c] < ratio[best]):
                best = c
        taken[best] = True
        order[i] = best
        j = cand[best]
        slope -= abs(alpha[j]) * span[j]          # violation left after passing this breakpoint
        if slope <= tol:
            return order, i
    return order, -1


@numba.njit(cache=True)
def _kernel(m, n, rows, cols, c, lb, ub, basic, upper, binv, updates, it, x, d):
    """Bounded dual simplex iterations on a kept inverse ``binv`` (updated in place).

    ``alpha`` is the pivot row signed so that a positive entry moves the violated basic variable
    towards its bound. Returns (code, next iteration, updates); on ``_OPTIMAL`` ``x`` holds all variables and
    ``d`` the reduced costs (``d[n:]`` the row duals). ``_REFRESH`` asks the caller for a fresh
    inverse, after which every derived quantity is recomputed here (the inverse is then
    trusted: ``updates == 0``).
    """
    nv = n + m
    checked = True                             # a fresh inverse, or one the last solve confirmed
    span = ub - lb
    nonbasic = np.ones(nv, np.bool_)
    cb = np.zeros(m)
    for r in range(m):
        nonbasic[basic[r]] = False
        if basic[r] < n:
            cb[r] = c[basic[r]]
    y = cb @ binv
    d[:n] = c - _vec_mat(rows, y, n)
    d[n:] = y
    at = x
    for j in range(nv):
        v = ub[j] if upper[j] else lb[j]
        at[j] = v if (nonbasic[j] and np.isfinite(v)) else 0.0
    for r in range(m):
        d[basic[r]] = 0.0
    mz = csr_matvec(rows[0], rows[1], rows[2], at[:n]) - at[n:]
    cmax = np.abs(c).max() if n else 0.0
    # each nonbasic variable at the bound its reduced cost asks for (needed as costs and bounds are new)
    for j in range(nv):
        has_ub, has_lb = np.isfinite(ub[j]), np.isfinite(lb[j])
        up = d[j] < -DUAL_TOL
        upper[j] = ((upper[j] or up) and d[j] <= DUAL_TOL and has_ub) or not has_lb
        if nonbasic[j]:
            if (up and not upper[j]) or not (has_ub if upper[j] else has_lb):
                return _DUAL_INFEASIBLE, it, updates
            want = ub[j] if upper[j] else lb[j]
            if want != at[j]:
                _move(n, cols, at, mz, j, want)
    xb = np.empty(m)
    viol = np.empty(m)
    tol = np.empty(m)
    alpha = np.empty(nv)
    while it < MAX_ITERATIONS:
        xb[:] = -(binv @ mz)
        worst, r = -1.0, -1
        for i in range(m):
            b = basic[i]
            viol[i] = max(lb[b] - xb[i], xb[i] - ub[b])
            tol[i] = PRIMAL_TOL * (1.0 + min(abs(xb[i]), 1e6))
            if viol[i] > tol[i]:
                score = viol[i] * viol[i] / (binv[i] @ binv[i])
                if score > worst:
                    worst, r = score, i
        if r < 0:                                 # primal feasible: optimal
            for i in range(m):
                at[basic[i]] = xb[i]
            if not checked:                       # residuals of the updated inverse, else refresh
                primal = np.abs(csr_matvec(rows[0], rows[1], rows[2], at[:n]) - at[n:]).max() if m else 0.0
                yd = d[n:]
                resid = c - _vec_mat(rows, yd, n)
                dual = 0.0
                for i in range(m):
                    b = basic[i]
                    dual = max(dual, abs(resid[b]) if b < n else abs(yd[b - n]))
                if primal > PRIMAL_TOL or dual > 1e-9 * (1.0 + cmax):
                    return _REFRESH, it + 1, updates
            return _OPTIMAL, it, updates
        above = xb[r] > ub[basic[r]]
        rho = binv[r]
        alpha[:n] = _vec_mat(rows, rho, n)
        alpha[n:] = -rho
        if not above:
            alpha *= -1.0                         # "signed": > 0 moves the violated variable up
        cand = np.empty(nv, np.int64)
        k_c = 0
        for j in range(nv):
            if nonbasic[j] and span[j] > 0 and (
                    (alpha[j] < -PIVOT_TOL) if upper[j] else (alpha[j] > PIVOT_TOL)):
                cand[k_c] = j
                k_c += 1
        cand = cand[:k_c]
        ratio = np.empty(k_c)
        for i in range(k_c):
            ratio[i] = max(d[cand[i]] / alpha[cand[i]], 0.0)
        order, k = _breakpoints(ratio, cand, alpha, span, viol[r], tol[r])
        if k < 0:
            if not checked:                       # an updated inverse may mislead: confirm afresh
                return _REFRESH, it + 1, updates
            return _PRIMAL_INFEASIBLE, it, updates
        q, p = cand[order[k]], basic[r]
        if q >= n:
            w = -binv[:, q - n]
        else:
            a_q = np.zeros(m)
            for e in range(cols[0][q], cols[0][q + 1]):
                a_q[cols[1][e]] = cols[2][e]
            w = binv @ a_q
        if abs(w[r]) < PIVOT_TOL:
            return _TINY_PIVOT, it, updates
        t = ratio[order[k]]
        for j in range(nv):
            d[j] -= t * alpha[j]                  # the dual step; the entering reduced cost becomes 0
        upper[p] = above                          # p leaves at the bound it violated
        nonbasic[p], nonbasic[q] = True, False
        basic[r] = q
        for i in range(m):
            d[basic[i]] = 0.0
        d[p] = min(d[p], 0.0) if above else max(d[p], 0.0)
        for i in range(k):                        # passed breakpoints: to the other bound
            j = cand[order[i]]
            upper[j] = not upper[j]
            _move(n, cols, at, mz, j, ub[j] if upper[j] else lb[j])
        _move(n, cols, at, mz, q, 0.0)            # q's value is kept in xb
        _move(n, cols, at, mz, p, ub[p] if above else lb[p])
        updates += 1
        checked = False
        it += 1
        if updates >= REFACTOR_EVERY:
            return _REFRESH, it, updates
        row = binv[r] / w[r]
        for i in range(m):                        # B⁻¹ −= w rowᵀ in place (rows with w_i = 0 unchanged)
            wi = w[i]
            if wi != 0.0:
                for j in range(m):
                    binv[i, j] -= wi * row[j]
        binv[r] = row
    return _ITERATION_LIMIT, it, updates
