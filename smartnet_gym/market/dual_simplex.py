"""A bounded dual simplex for the fast path's bid-space LP: few rows, many boxed columns, hot starts.

The screened clearing LP (``screening.py``) has ~2,000 bid columns, each boxed by its offered
quantity, and a handful of rows: balance per period, storage, interface limits and the network
limits found binding. HiGHS costs ≥ 0.6–1 ms per call on such a model even with nothing to
pivot (its per-call floor), which is most of a clearing. Here the basis is a dense m × m
inverse; an iteration is three (m × n) products, the bound-flipping ratio test (one merit-order
step across many bids is one iteration) and a rank-one update, and a rolling market needs a few
iterations from the previous basis.

Nothing is guessed: a singular basis, a column that would have to sit at an infinite bound, a
primal infeasible LP or the iteration limit end the solve with a failed status, and the caller
solves that LP by HiGHS instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRIMAL_TOL = 1e-9        # MW (or milli-pu²) a basic variable may sit outside its bounds
DUAL_TOL = 1e-9          # EUR per unit of reduced cost treated as zero when a bound is chosen
PIVOT_TOL = 1e-9         # smallest |α| of an entering column
REFACTOR_EVERY = 32      # rank-one updates between fresh inverses of the basis
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
    """``min c·x  s.t.  lo ≤ A x ≤ hi,  l ≤ x ≤ u`` on a dense ``A`` (m × n) kept between solves.

    Row ``i`` has a logical column ``s_i = A_i x`` bounded by ``[lo_i, hi_i]``, so the system is
    ``[A −I] (x, s) = 0``; variables ``0…n−1`` are the columns, ``n…n+m−1`` the logicals. The
    basis of the last solve (and which nonbasic variables sit at their upper bound) is the start
    of the next one: only costs and bounds change between clearings, and a boxed nonbasic
    variable is made dual feasible by putting it at the other bound.
    """

    def __init__(self, a: np.ndarray):
        self.a = np.array(a, dtype=float, ndmin=2)
        m, n = self.a.shape
        self.basic = np.arange(n, n + m)
        self.upper = np.zeros(n + m, bool)
        self.iterations = 0                       # of the last solve (diagnostics)
        self._binv: np.ndarray | None = None      # inverse of the kept basis, if known
        self._updates = 0                         # rank-one updates since it was computed afresh

    @property
    def shape(self) -> tuple[int, int]:
        return self.a.shape

    def add_columns(self, cols: np.ndarray) -> None:
        """Append columns (m × k); they start nonbasic at their lower bound (the basis is unchanged)."""
        m, n = self.a.shape
        k = cols.shape[1]
        self.a = np.hstack([self.a, cols])
        self.basic = np.where(self.basic >= n, self.basic + k, self.basic)
        self.upper = np.concatenate((self.upper[:n], np.zeros(k, bool), self.upper[n:]))

    def add_rows(self, rows: np.ndarray) -> None:
        """Append rows (k × n); their logicals enter the basis (the dual simplex then repairs them).

        The basis inverse grows by a block, ``[[B⁻¹, 0], [R_B B⁻¹, −I]]``: no refactorisation."""
        m, n = self.a.shape
        k = rows.shape[0]
        if self._binv is not None:
            r_b = np.where(self.basic < n, rows[:, np.minimum(self.basic, n - 1)], 0.0)
            self._binv = np.block([[self._binv, np.zeros((m, k))], [r_b @ self._binv, -np.eye(k)]])
        self.a = np.vstack([self.a, rows])
        self.basic = np.concatenate((self.basic, n + m + np.arange(k)))
        self.upper = np.concatenate((self.upper, np.zeros(k, bool)))

    def drop(self, rows: np.ndarray, cols: np.ndarray) -> bool:
        """Remove rows whose logical is basic and nonbasic columns (False, nothing removed: not so).

        The basis inverse loses the rows' basis positions and the rows' columns, which is exact:
        a basic logical is a unit column, so the rest of the basis does not depend on its row."""
        m, n = self.a.shape
        pos = np.flatnonzero(np.isin(self.basic, n + rows))
        if len(pos) != len(rows) or self.is_basic(cols).any():
            return False
        keep_b = np.ones(m, bool)
        keep_b[pos] = False
        basic = self.basic[keep_b]
        new_col = np.cumsum(np.isin(np.arange(n), cols, invert=True)) - 1
        new_row = np.cumsum(np.isin(np.arange(m), rows, invert=True)) - 1
        n2 = n - len(cols)
        self.basic = np.where(basic < n, new_col[np.minimum(basic, n - 1)], n2 + new_row[np.maximum(basic - n, 0)])
        keep_var = np.ones(n + m, bool)
        keep_var[cols] = False
        keep_var[n + rows] = False
        self.upper = self.upper[keep_var]
        self.a = np.delete(np.delete(self.a, rows, axis=0), cols, axis=1)
        if self._binv is not None:
            self._binv = np.delete(self._binv[keep_b], rows, axis=1)
        return True

    def is_basic(self, idx: np.ndarray) -> np.ndarray:
        """Which variables of ``idx`` are basic (columns ``< n``, logicals ``n + row``)."""
        mask = np.zeros(self.a.shape[0] + self.a.shape[1], bool)
        mask[self.basic] = True
        return mask[idx]

    def cold_start(self) -> None:
        """Forget the basis: all logicals basic."""
        m, n = self.a.shape
        self.basic = np.arange(n, n + m)
        self.upper[:] = False
        self._binv = None

    def _basis_inverse(self) -> np.ndarray | None:
        m, n = self.a.shape
        b = np.zeros((m, m))
        struct = self.basic < n
        b[:, struct] = self.a[:, self.basic[struct]]
        logical = np.flatnonzero(~struct)
        b[self.basic[logical] - n, logical] = -1.0
        try:
            inv = np.linalg.inv(b)
        except np.linalg.LinAlgError:
            return None
        return inv if np.isfinite(inv).all() else None

    def solve(self, c: np.ndarray, l: np.ndarray, u: np.ndarray, lo: np.ndarray, hi: np.ndarray
              ) -> SimplexResult:
        """Solve from the kept basis; on a singular or failed start, once more from a cold basis."""
        res = _Run(self, c, l, u, lo, hi).iterate()
        if not res.ok and not res.status.endswith("primal infeasible"):
            self.cold_start()
            res = _Run(self, c, l, u, lo, hi).iterate()
        if not res.ok:
            self.cold_start()
        return res


class _Run:
    """The state of one solve: basis inverse, reduced costs ``d``, nonbasic values and ``M z_N``."""

    def __init__(self, lp: DualSimplex, c, l, u, lo, hi):
        self.lp = lp
        self.a = a = lp.a
        self.m, self.n = a.shape
        self.c = c
        self.cost = np.concatenate((c, np.zeros(self.m)))
        self.lb, self.ub = np.concatenate((l, lo)), np.concatenate((u, hi))
        self.span = self.ub - self.lb
        self.movable = self.span > 0                        # fixed variables never enter
        self.has_ub, self.has_lb = np.isfinite(self.ub), np.isfinite(self.lb)

    def fail(self, why: str, it: int) -> SimplexResult:
        return SimplexResult(f"failed: {why}", np.zeros(self.n), np.zeros(self.m), float("nan"), it)

    def refresh(self, reuse: bool = False) -> bool:
        """Duals, reduced costs, nonbasic values and ``M z_N`` from a fresh basis inverse (or,
        with ``reuse``, the one the last solve left); False: singular basis."""
        lp = self.lp
        if reuse and lp._binv is not None and lp._updates < REFACTOR_EVERY:
            self.binv, self.updates = lp._binv, lp._updates
        else:
            self.binv, self.updates = lp._basis_inverse(), 0
        self.checked = True            # a fresh inverse, or one the last solve confirmed
        if self.binv is None:
            return False
        self.nonbasic = np.ones(self.n + self.m, bool)
        self.nonbasic[lp.basic] = False
        y = self.cost[lp.basic] @ self.binv
        self.d = np.concatenate((self.c - y @ self.a, y))
        self.d[lp.basic] = 0.0
        self.at = np.where(lp.upper, self.ub, self.lb)
        self.at[~self.nonbasic] = 0.0
        self.at[~np.isfinite(self.at)] = 0.0                # moved to a finite bound below
        self.mz = self.a @ self.at[:self.n] - self.at[self.n:]
        return True

    def move(self, idx: np.ndarray, value: np.ndarray) -> None:
        """Set the values of variables ``idx`` (nonbasic or leaving) and keep ``M z_N`` in step."""
        n = self.n
        delta = value - self.at[idx]
        self.at[idx] = value
        s = idx < n
        if s.any():
            self.mz += self.a[:, idx[s]] @ delta[s]
        if (~s).any():
            np.subtract.at(self.mz, idx[~s] - n, delta[~s])

    def place_nonbasic(self) -> bool:
        """Each nonbasic variable at the bound its reduced cost asks for (False: an infinite one).

        Needed when costs or bounds are new; the ratio test keeps it true afterwards."""
        lp, d, nb = self.lp, self.d, self.nonbasic
        up = d < -DUAL_TOL
        upper = lp.upper
        upper[:] = ((upper | up) & (d <= DUAL_TOL) & self.has_ub) | ~self.has_lb
        if (nb & ((up & ~upper) | ~np.where(upper, self.has_ub, self.has_lb))).any():
            return False
        want = np.where(upper, self.ub, self.lb)
        changed = np.flatnonzero(nb & (want != self.at))
        if len(changed):
            self.move(changed, want[changed])
        return True

    def accurate(self, xb: np.ndarray) -> bool:
        """Primal and dual residuals of the updated inverse are negligible (no refactor needed)."""
        lp, a, n = self.lp, self.a, self.n
        x = self.at.copy()
        x[lp.basic] = xb
        primal = a @ x[:n] - x[n:]
        y = self.d[n:]
        dual = np.concatenate((self.c - y @ a, y))[lp.basic]
        scale = 1.0 + np.abs(self.cost).max(initial=0.0)
        return bool(np.abs(primal).max(initial=0.0) <= PRIMAL_TOL and np.abs(dual).max(initial=0.0) <= 1e-9 * scale)

    def iterate(self) -> SimplexResult:
        lp, a, m, n = self.lp, self.a, self.m, self.n
        if not self.refresh(reuse=True):
            return self.fail("singular basis", 0)
        basic, upper = lp.basic, lp.upper
        placed = False
        for it in range(MAX_ITERATIONS):
            lp.iterations = it
            if not placed and not self.place_nonbasic():
                return self.fail("dual infeasible (a column at an infinite bound)", it)
            placed = True
            binv = self.binv
            xb = -binv @ self.mz
            lbb, ubb = self.lb[basic], self.ub[basic]
            viol = np.maximum(lbb - xb, xb - ubb)
            tol = PRIMAL_TOL * (1.0 + np.minimum(np.abs(xb), 1e6))
            if (viol <= tol).all():
                if not self.checked and not self.accurate(xb):   # else confirm on a fresh inverse
                    if not self.refresh():
                        return self.fail("singular basis", it)
                    placed = False
                    continue
                x = self.at.copy()
                x[basic] = xb
                lp._binv, lp._updates = binv, self.updates
                return SimplexResult("optimal", x[:n], self.d[n:].copy(), float(self.c @ x[:n]), it)
            score = np.where(viol > tol, viol * viol / np.einsum("ij,ij->i", binv, binv), -1.0)
            r = int(np.argmax(score))
            above = bool(xb[r] > ubb[r])
            rho = binv[r]
            alpha = np.concatenate((rho @ a, -rho))
            signed = alpha if above else -alpha
            cand = np.flatnonzero(self.nonbasic & self.movable
                                  & np.where(upper, signed < -PIVOT_TOL, signed > PIVOT_TOL))
            ratio = np.maximum(self.d[cand] / signed[cand], 0.0)
            order = np.argsort(ratio, kind="stable")
            # violation left after passing each breakpoint; within tolerance counts as repaired
            # (flipping every candidate may close it exactly, up to rounding)
            slope = viol[r] - np.cumsum(np.abs(alpha[cand[order]]) * self.span[cand[order]])
            stop = np.flatnonzero(slope <= tol[r])
            if not len(stop):
                if not self.checked:             # an updated inverse may mislead: confirm afresh
                    if not self.refresh():
                        return self.fail("singular basis", it)
                    placed = False
                    continue
                return self.fail("primal infeasible", it)
            k = int(stop[0])
            q, p = int(cand[order[k]]), int(basic[r])
            flip = cand[order[:k]]                          # passed breakpoints: to the other bound
            upper[flip] = ~upper[flip]
            flip_to = np.where(upper[flip], self.ub[flip], self.lb[flip])
            col = -np.eye(m)[q - n] if q >= n else a[:, q]
            w = binv @ col
            if abs(w[r]) < PIVOT_TOL:
                return self.fail("tiny pivot", it)
            # the dual step: d ← d − t·signed; the entering variable's reduced cost becomes 0
            self.d -= ratio[order[k]] * signed
            upper[p] = above                                # p leaves at the bound it violated
            self.nonbasic[p], self.nonbasic[q] = True, False
            basic[r] = q
            self.d[basic] = 0.0
            self.d[p] = min(self.d[p], 0.0) if above else max(self.d[p], 0.0)
            # flips to their other bound, q enters the basis (value kept in xb), p to its bound
            self.move(np.concatenate((flip, (q, p))),
                      np.concatenate((flip_to, (0.0, self.ub[p] if above else self.lb[p]))))
            self.updates += 1
            self.checked = False
            if self.updates >= REFACTOR_EVERY:
                if not self.refresh():
                    return self.fail("singular basis", it)
                placed = False
            else:
                row = binv[r] / w[r]
                binv -= np.outer(w, row)
                binv[r] = row
        return self.fail("iteration limit", MAX_ITERATIONS)
