"""The fast path: the clearing LP in bid space with network limits added only when they bind.

The explicit program (``program.py``) carries every bus angle, feeder flow and squared voltage
as columns. Its network rows ``A_nz z_net + A_nx x = 0`` are square in the network columns, so
``z_net = G x`` with ``G = −A_nz⁻¹ A_nx`` (one sparse LU, built once). A limit row ``L z_net +
slack ∈ [lo, hi]`` is then a row ``(L G) x + slack`` over the bids alone. The fast path solves
the LP over bids, balance rows and the limit rows found binding so far; it computes all flows
and voltages of the answer (one LU solve), adds the violated limit rows and re-solves (hot
start) until none is violated. The answer is then optimal for the explicit program: the
reduced LP is a relaxation whose optimum is feasible there at the same cost.

Row duals come back in the explicit program's coordinates, so prices are unchanged: the network
columns are free with zero cost, hence ``A_nzᵀ π = −Lᵀ μ`` gives the nodal duals π from the
limit duals μ. Rows found binding stay in the model for the next solves (a rolling market sees
the same congestion step after step), so later solves usually need one round; a row that has
stayed slack for ``IDLE_SOLVES`` solves leaves it again, so the LP keeps only the limits that
matter now (its bid-space coefficients are kept: coming back costs no LU solve).

The reduced LP has few rows and boxed columns, so it is solved by the dense bounded dual
simplex of ``dual_simplex.py`` from the previous basis (HiGHS's per-call floor would be most
of a clearing). When it fails, the explicit program is solved by HiGHS instead; the count of
such fallbacks is kept in ``fallbacks``. So is a solve whose binding limits would take the LP
past ``MAX_LP_ROWS`` rows (congestion all over a feeder, e.g. a voltage band at every node):
a dense basis of that size costs more than HiGHS's sparse one (counted in ``oversized``); the
next ``EXPLICIT_AFTER_OVERSIZED`` solves then go to HiGHS directly, as such congestion lasts.

A violated limit that finds no room in the LP is *folded* instead: its slack's penalty ``c_s·(r_k x − hi_k)`` (or
``c_s·(lo_k − r_k x)``) becomes a linear cost on the bids, ``Σ w_k r_k = −A_nxᵀ A_nz⁻ᵀ L_Fᵀ w``
(one LU solve for all folded rows), instead of a row of the LP. The linear penalty is below the
true one (``max(0, v) ≥ v``), so this is again a relaxation; where the answer still violates
every folded row in its direction, the relaxation is tight there and the answer is optimal. A
folded row the answer no longer violates is unfolded into an ordinary LP row. So a voltage band
that no activation can restore (violated at every node of a feeder, 1,840 rows on the default
preset) costs one LU solve per round, not 1,840 rows of a dense basis.

Forced-measure options (``ProgramMatrices.forced_cols``: every bus's shedding and curtailment,
each period) are *priced in*: they sit outside the LP until, at an answer free of violated
limits, one has a negative reduced cost at the LP's row duals (cost − its kept- and limit-row
coefficients times those duals, less a folded row's cost); those enter and the LP is solved
again. An answer no outside option would improve is optimal with all of them. Options at zero
leave again every ``IDLE_SOLVES`` solves. Most clearings need none, so their LP stays as narrow
as without the options.
"""

from __future__ import annotations

import time

import numba
import numpy as np
import scipy.sparse as sp

from smartnet_gym.market.dual_simplex import DualSimplex
from smartnet_gym.market.program import ProgramMatrices, block_indices
from smartnet_gym.market.solvers import HighsBackend, Solution
from smartnet_gym.numerics.sparse_lu import FastLU, csr_matvec, lu_solve, lu_solve_t, period_blocks

NODE_ROWS = ("t_node", "d_node", "d_volt")
LIMIT_ROWS = ("t_limit", "d_limit", "v_limit")
NET_COLS = ("theta", "dp", "dw")
LIMIT_SLACKS = ("tslack", "dslack", "vslack")
VIOLATION_TOL = 1e-7      # MW or milli-pu², the units of the limit rows
ROWS_PER_ROUND = 64       # most violated limits added per round
MAX_ROUNDS = 100
IDLE_SOLVES = 16          # a limit row slack for this many solves in a row leaves the LP (until violated)
MAX_LP_ROWS = 160         # beyond this the dense basis inverse costs more than HiGHS on the explicit program
EXPLICIT_AFTER_OVERSIZED = 4   # solves then left to HiGHS directly (such congestion lasts)
ENTER_TOL = 1e-9          # relative reduced cost below which a forced-measure option joins the LP


def screenable(m: ProgramMatrices) -> bool:
    """Whether the fast path applies: an LP with network limit rows to screen."""
    return not (m.quad > 0).any() and len(block_indices(m.rows, LIMIT_ROWS)) > 0


class EliminatedNetwork:
    """The explicit program with its network columns eliminated (one sparse LU, built once per
    program): limit rows over the bids, the network state of an answer, nodal duals from limit
    duals. The fast path and decentralized CS_D's cut master both solve in these coordinates."""

    def __init__(self, m: ProgramMatrices):
        self.m = m
        a = m.a.tocsr()
        self.node = block_indices(m.rows, NODE_ROWS)
        self.lim = block_indices(m.rows, LIMIT_ROWS)
        keep_rows = np.setdiff1d(np.arange(m.n_row), np.r_[self.node, self.lim])
        net = block_indices(m.cols, NET_COLS)
        lim_slack = block_indices(m.cols, LIMIT_SLACKS)
        self.bid_cols = np.setdiff1d(np.arange(m.n_col), np.r_[net, lim_slack])   # x, y, balance slacks
        self.net_cols, self.keep_rows = net, keep_rows
        a_node = a[self.node]
        self.lu = FastLU(a_node[:, net], period_blocks(a_node[:, net], m.col_period[net]))
        self.a_nx = a_node[:, self.bid_cols].tocsr()
        a_lim = a[self.lim]
        self.l_net = a_lim[:, net].tocsr()
        # the kernels' view of the same matrices (one call per network state)
        self._a_nx_csr, self._l_net_csr = _csr_arrays(self.a_nx), _csr_arrays(self.l_net)
        slack = a_lim[:, lim_slack].tocsr()
        self.slack_cols = lim_slack[slack.indices].reshape(-1, 2)         # two slacks per limit row
        self.slack_sign = slack.data.reshape(-1, 2)
        self._row_slot = np.full(len(self.lim), -1, np.int64)   # slot of each limit row in _rows (-1: not yet)
        self._rows = np.zeros((0, len(self.bid_cols)))           # bid-space coefficients of limit rows seen
        self._n_rows = 0
        # slack columns of the kept rows (balance slacks; storage and interface rows have none)
        self.a_keep = a[keep_rows][:, self.bid_cols].tocsr()
        self._keep_csr = _csr_arrays(self.a_keep)
        self.keep_slack = ~np.isfinite(m.col_ub[self.bid_cols])
        sl = self.a_keep[:, self.keep_slack].tocoo()
        slack_col = self.bid_cols[self.keep_slack]
        self.keep_up = np.full(len(keep_rows), -1)
        self.keep_down = np.full(len(keep_rows), -1)
        self.keep_up[sl.row[sl.data > 0]] = slack_col[sl.col[sl.data > 0]]
        self.keep_down[sl.row[sl.data < 0]] = slack_col[sl.col[sl.data < 0]]

    def bid_rows(self, k: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """Limit rows ``k`` as dense rows over the bid-space columns (positions ``cols`` only, if
        given): ``−L_k A_nz⁻¹ A_nx`` (cached, one slot per row)."""
        k = np.asarray(k, np.int64)
        new = np.unique(k[self._row_slot[k] < 0])
        if len(new):
            u = self.lu.solve_t(self.l_net[new].toarray().T)
            r = -(self.a_nx.T @ u).T
            r[np.abs(r) < 1e-12] = 0.0
            n = self._n_rows
            if n + len(new) > len(self._rows):          # grow by doubling: rows are added a few at a time
                grown = np.zeros((max(2 * len(self._rows), n + len(new), 16), self._rows.shape[1]))
                grown[:n] = self._rows[:n]
                self._rows = grown
            self._rows[n:n + len(new)] = r
            self._row_slot[new] = n + np.arange(len(new))
            self._n_rows = n + len(new)
        slots = self._row_slot[k]
        return self._rows[slots] if cols is None else self._rows[np.ix_(slots, cols)]

    def nodal_duals(self, mu: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Duals of the eliminated network rows for limit duals ``mu`` of ``rows`` (positions in
        ``self.lim``): ``A_nzᵀ π = −Lᵀ μ``, one sparse product and one LU solve for all rows."""
        if not mu.any():
            return np.zeros(len(self.node))
        return -self._through_network(rows, mu)

    def _through_network(self, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``A_nz⁻ᵀ Lᵀ w`` for weights ``w`` on limit rows ``rows`` (positions in ``self.lim``, distinct)."""
        order = np.argsort(rows, kind="stable")
        return _through_network(*self.lu.factors, *self._l_net_csr, np.asarray(rows, np.int64)[order],
                                np.asarray(w, float)[order], len(self.net_cols))

    def network_state(self, x_bid: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network state of the bid-space answer and every limit row's excess above hi and below lo."""
        return _network_state(*self._a_nx_csr, *self.lu.factors, *self._l_net_csr, self.lim,
                              np.ascontiguousarray(x_bid, dtype=float), lo, hi)


class ScreenedBackend(EliminatedNetwork):
    """The bid-space LP with lazily added network limits (dual simplex); answers in explicit coordinates."""

    def __init__(self, m: ProgramMatrices):
        super().__init__(m)
        self._close = np.argmin(self.slack_sign, axis=1)   # per row: which of its slacks closes an excess above
        neg = self.slack_sign < 0
        self._lowering, self._raising = self.slack_cols[neg], self.slack_cols[~neg]   # per row, in row order
        self._fixed_cols = self.bid_cols[~self.keep_slack]  # bid and buy columns (fixed in an evaluation)
        # forced-measure options (bid-space positions) join the LP only when they would lower its cost
        self._pool = np.flatnonzero(np.isin(self.bid_cols, m.forced_cols))
        self._lean = np.setdiff1d(np.arange(len(self.bid_cols)), self._pool)
        self._keep_dense = self.a_keep.toarray()
        self._pool_cols = self.bid_cols[self._pool]
        pool_keep = self.a_keep[:, self._pool].tocsc()
        self._pool_keep_t = _csr_arrays(pool_keep.T.tocsr())         # the options' kept-row coefficients
        self._pool_keep_rows = np.flatnonzero(np.diff(pool_keep.tocsr().indptr))   # … which rows they touch
        self._pool_nx_t = _csr_arrays(self.a_nx[:, self._pool].T.tocsr())   # … and nodal-row coefficients
        self.reset()

    def reset(self) -> None:
        """Back to the state of a new backend (no limit rows, no basis, no counts); the network's
        factors and the bid-space rows computed so far are kept, as they depend on the layout only."""
        self._lp_bid = self._lean.copy()             # bid-space position of each of the LP's first columns
        self._in_lp = np.zeros(len(self.bid_cols), bool)
        self._in_lp[self._lp_bid] = True
        self.lp = DualSimplex(self._keep_dense[:, self._lp_bid])
        self._model_cols = self.bid_cols[self._lp_bid]   # explicit column of each LP column
        self._model_rows = self.keep_rows.astype(np.int64)    # explicit row of each LP row
        self.active = np.zeros(0, np.int64)         # limit rows (positions in self.lim) in the LP
        self.idle = np.zeros(0, np.int64)           # solves each active row has stayed slack
        self.folded = np.zeros(0, np.int64)         # violated limit rows priced as linear costs
        self.fold_above = np.zeros(0, bool)         # … violated above hi (else below lo)
        self._solves = 0
        self._option_solves = 0
        self._fallback: HighsBackend | None = None
        self.rounds = 0                               # rounds of the last solve (diagnostics)
        self.fallbacks = 0                            # solves the dual simplex failed and handed to HiGHS
        self.oversized = 0                            # solves that needed more than MAX_LP_ROWS rows (HiGHS)
        self._explicit_left = 0                       # solves still left to HiGHS after an oversized one

    def _add_rows(self, k: np.ndarray) -> None:
        """Put limit rows ``k`` (positions in ``self.lim``) and their two slacks into the LP."""
        n0 = self.lp.shape[1]
        cols = self.slack_cols[k].reshape(-1)
        self._model_cols = np.concatenate((self._model_cols, cols))
        rows = np.zeros((len(k), n0 + len(cols)))
        rows[:, :len(self._lp_bid)] = self.bid_rows(k, self._lp_bid)
        slack_pos = n0 + np.arange(len(cols)).reshape(-1, 2)
        rows[np.arange(len(k))[:, None], slack_pos] = self.slack_sign[k]
        self.lp.extend(rows, len(cols))
        self._model_rows = np.concatenate((self._model_rows, self.lim[k]))
        self.active = np.concatenate((self.active, k))
        self.idle = np.concatenate((self.idle, np.zeros(len(k), np.int64)))

    def _lp_limit_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LP positions of the limit rows and their slacks, and which rows are slack in the basis."""
        n_lp, k = self.lp.shape[1], len(self.active)
        rows = len(self.keep_rows) + np.arange(k)
        slacks = len(self._lp_bid) + np.arange(2 * k).reshape(-1, 2)
        basic = self.lp.is_basic(np.concatenate((n_lp + rows, slacks.reshape(-1))))
        slack_now = basic[:k] & ~(basic[k::2] | basic[k + 1::2])
        return rows, slacks, slack_now

    def _drop(self, out: np.ndarray, rows: np.ndarray, slacks: np.ndarray) -> None:
        """Take limit rows ``out`` (positions in ``self.active``) and their slacks out of the LP."""
        if len(out) and self.lp.drop(rows[out], slacks[out].reshape(-1)):
            self._model_rows = np.delete(self._model_rows, rows[out])
            self._model_cols = np.delete(self._model_cols, slacks[out].reshape(-1))
            self.active = np.delete(self.active, out)
            self.idle = np.delete(self.idle, out)

    def _retire_idle_rows(self) -> None:
        """Count the solves each limit row of the LP has stayed slack; every ``IDLE_SOLVES`` solves,
        drop those idle that long."""
        if not len(self.active):
            return
        rows, slacks, slack_now = self._lp_limit_rows()
        self.idle = np.where(slack_now, self.idle + 1, 0)
        self._solves += 1
        if self._solves % IDLE_SOLVES:      # retire in batches: a drop copies the LP
            return
        self._drop(np.flatnonzero(self.idle >= IDLE_SOLVES), rows, slacks)

    def _bid_space(self, x_lp: np.ndarray) -> np.ndarray:
        """The LP's answer over all bid-space columns (options outside the LP at 0)."""
        if not len(self._pool):
            return x_lp[:len(self.bid_cols)]
        x = np.zeros(len(self.bid_cols))
        x[self._lp_bid] = x_lp[:len(self._lp_bid)]
        return x

    def _entering_options(self, c, lb, ub, y: np.ndarray, u_fold: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Options outside the LP whose reduced cost at the LP's row duals ``y`` is negative (the
        only columns whose entry could lower the cost; none: the answer is optimal with all of
        them), and the nodal duals of the limit rows, which price them: a column's limit-row
        coefficients are ``−L A_nz⁻¹ A_nx``, so their dual-weighted sum is ``A_nxᵀ`` times those
        duals (one LU solve for all options, not one row product per binding limit)."""
        n_keep = len(self.keep_rows)
        nodal = self.nodal_duals(y[n_keep:], self.active)
        if u_fold is None and not nodal.any() and not y[self._pool_keep_rows].any():
            return self._pool[:0], nodal       # no dual reaches an option: every reduced cost is its cost ≥ 0
        u = nodal if u_fold is None else nodal + u_fold
        enter = _negative_reduced_costs(self._pool, self._pool_cols, self._in_lp, c, lb, ub, *self._pool_keep_t,
                                        np.ascontiguousarray(y[:n_keep]), *self._pool_nx_t, u, ENTER_TOL)
        return enter, nodal

    def _insert_options(self, enter: np.ndarray) -> None:
        """Put options ``enter`` (bid-space positions) into the LP after its bid columns."""
        nb, n_keep = len(self._lp_bid), len(self.keep_rows)
        cols = np.zeros((self.lp.shape[0], len(enter)))
        cols[:n_keep] = self._keep_dense[:, enter]
        if len(self.active):
            cols[n_keep:] = self.bid_rows(self.active, enter)
        self.lp.insert(nb, cols)
        self._lp_bid = np.concatenate((self._lp_bid, enter))
        self._model_cols = np.concatenate((self._model_cols[:nb], self.bid_cols[enter], self._model_cols[nb:]))
        self._in_lp[enter] = True

    def _retire_idle_options(self) -> None:
        """Every ``IDLE_SOLVES`` solves, take the options that sit at zero out of the LP (they come
        back when their reduced cost turns negative)."""
        self._option_solves += 1
        n_lean, nb = len(self._lean), len(self._lp_bid)
        if self._option_solves % IDLE_SOLVES or nb == n_lean:
            return
        pos = np.arange(n_lean, nb)                  # options sit after the lean columns
        out = pos[~self.lp.is_basic(pos) & ~self.lp.upper[pos]]
        if len(out) and self.lp.drop(np.zeros(0, np.int64), out):
            self._in_lp[self._lp_bid[out]] = False
            self._lp_bid = np.delete(self._lp_bid, out)
            self._model_cols = np.delete(self._model_cols, out)

    def _closing_slacks(self) -> np.ndarray:
        """The slack column that closes each folded row (the one lowering it when above hi)."""
        k = self.folded
        return self.slack_cols[k, np.where(self.fold_above, self._close[k], 1 - self._close[k])]

    def _fold(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per folded row its weight w (EUR per unit of the row's value: + closing slack's cost
        above hi, − below lo) and ``u = A_nz⁻ᵀ L_Fᵀ w``; ``Σ_k w_k r_k = −A_nxᵀ u`` is their cost on
        the bids and ``u`` their part of the nodal duals (``μ_k = −w_k``): one LU solve for all."""
        w = np.where(self.fold_above, 1.0, -1.0) * c[self._closing_slacks()]
        return w, self._through_network(self.folded, w)

    def _zero_is_optimal(self, c, lb, ub, lo, hi) -> bool:
        """Whether nothing activated is an optimum: zero is feasible (every bound admits it; the
        network rows are homogeneous) and no column has a negative cost. Then the zero duals
        certify it. A DSO's congestion-only market on an uncongested grid is such a case."""
        # the few kept rows first: a balance row with a need fails it at once, on most solves
        return _zero_feasible_and_free(self.keep_rows, self.bid_cols, self.lim, c, lb, ub, lo, hi)

    def solve(self, c, lb, ub, lo, hi) -> Solution:
        m = self.m
        t0 = time.perf_counter()
        if self._explicit_left:            # congestion all over: stay with HiGHS for a while
            self._explicit_left -= 1
            self.oversized += 1
            return self._explicit(c, lb, ub, lo, hi, t0, failed=False)
        if self._zero_is_optimal(c, lb, ub, lo, hi):
            self.rounds = 0
            return Solution("optimal", 0.0, np.zeros(m.n_col), np.zeros(m.n_row), (time.perf_counter() - t0) * 1e3)
        unfolded = np.zeros(len(self.lim), bool)    # rows unfolded in this solve: LP rows from now on
        for self.rounds in range(1, MAX_ROUNDS + 1):
            cols, rows, nb = self._model_cols, self._model_rows, len(self._lp_bid)
            c_lp = c[cols]
            u_fold = None
            if len(self.folded):
                w_fold, u_fold = self._fold(c)
                c_lp = c_lp.copy()
                c_lp[:nb] -= (self.a_nx.T @ u_fold)[self._lp_bid]
            res = self.lp.solve(c_lp, lb[cols], ub[cols], lo[rows], hi[rows])
            if not res.ok:
                return self._explicit(c, lb, ub, lo, hi, t0)
            z_net, above, below = self.network_state(self._bid_space(res.x), lo, hi)
            # folded rows the answer no longer violates in their direction: ordinary rows again
            still = np.where(self.fold_above, above[self.folded], below[self.folded]) > VIOLATION_TOL
            back = self.folded[~still]
            self.folded, self.fold_above = self.folded[still], self.fold_above[still]
            unfolded[back] = True
            excess = np.maximum(above, below)
            excess[self.active] = 0.0
            excess[self.folded] = 0.0
            excess[back] = 0.0
            k = np.flatnonzero(excess > VIOLATION_TOL)
            add = np.concatenate([back, k[unfolded[k]]]).astype(np.int64)
            new = k[~unfolded[k]]
            if not len(new) and not len(add):
                if not len(self._pool):
                    break
                enter, nodal = self._entering_options(c, lb, ub, res.row_dual, u_fold)
                if not len(enter):
                    break
                self._insert_options(enter)
                continue
            if self.lp.shape[0] + len(add) + len(new) <= MAX_LP_ROWS:
                add = np.concatenate((add, new))
            else:                          # no room in the LP: price them as linear costs first
                self.folded = np.concatenate((self.folded, new))
                self.fold_above = np.concatenate((self.fold_above, above[new] > 0))
            if len(add) > ROWS_PER_ROUND:
                add = add[np.argsort(-np.maximum(above, below)[add])[:ROWS_PER_ROUND]]
            if len(add) and self.lp.shape[0] + len(add) > MAX_LP_ROWS and len(self.active):
                rows, slacks, slack_now = self._lp_limit_rows()    # make room: rows slack right now leave
                self._drop(np.flatnonzero(slack_now), rows, slacks)
            if len(add) and self.lp.shape[0] + len(add) > MAX_LP_ROWS:   # congestion everywhere: not a small LP
                self.oversized += 1
                self._explicit_left = EXPLICIT_AFTER_OVERSIZED
                return self._explicit(c, lb, ub, lo, hi, t0, failed=False)
            if len(add):
                self._add_rows(add)
        else:
            return self._explicit(c, lb, ub, lo, hi, t0)
        z = np.zeros(m.n_col)
        z[self._model_cols] = res.x
        z[self.net_cols] = z_net
        dual = np.zeros(m.n_row)
        dual[self._model_rows] = res.row_dual
        dual[self.node] = nodal if len(self._pool) else self.nodal_duals(res.row_dual[len(self.keep_rows):], self.active)
        objective = res.objective
        if len(self.folded):
            # each folded row closed by its slack, priced by it: μ = sign · cost of that slack = −w;
            # the folded set is the one the last LP was priced with (it ends a solve unchanged)
            k, up = self.folded, self.fold_above
            z[self._closing_slacks()] = np.where(up, above[k], below[k])
            dual[self.lim[k]] = -w_fold
            dual[self.node] += u_fold
            objective = float(c @ z)
        self._retire_idle_rows()
        if len(self._pool):
            self._retire_idle_options()
        ms = (time.perf_counter() - t0) * 1e3
        return Solution("optimal", objective, z, dual, ms)

    def evaluate(self, c, lb, ub, lo, hi) -> Solution:
        """The program with its bid and buy columns fixed (``lb == ub``), without a solver.

        Only slacks are free then, each priced ≥ 0 on one row: the network state follows from
        the activations (one LU solve) and each violated row is closed by its own slack. A
        storage or interface row has no slack: violating it makes the program infeasible, as
        for HiGHS. Row duals are not defined by this evaluation and come back NaN.
        """
        m = self.m
        t0 = time.perf_counter()
        z = np.zeros(m.n_col)
        fixed = self._fixed_cols
        if not np.array_equal(lb[fixed], ub[fixed]):
            return self.solve(c, lb, ub, lo, hi)
        z[fixed] = lb[fixed]
        x_bid = z[self.bid_cols]
        z_net, above, below = self.network_state(x_bid, lo, hi)
        z[self.net_cols] = z_net
        nan_dual = np.full(m.n_row, np.nan)
        v = csr_matvec(*self._keep_csr, x_bid)
        r = self.keep_rows
        over, under = np.maximum(v - hi[r], 0.0), np.maximum(lo[r] - v, 0.0)
        tol = VIOLATION_TOL * (1.0 + np.abs(v))
        if ((over > tol) & (self.keep_down < 0)).any() or ((under > tol) & (self.keep_up < 0)).any():
            return Solution("failed: infeasible with the activations fixed", float("nan"), z, nan_dual,
                            (time.perf_counter() - t0) * 1e3)
        for amount, col in ((over, self.keep_down), (under, self.keep_up)):
            k = (amount > 0) & (col >= 0)
            z[col[k]] += amount[k]
        z[self._lowering] += np.maximum(above, 0.0)
        z[self._raising] += np.maximum(below, 0.0)
        return Solution("optimal", float(c @ z), z, nan_dual, (time.perf_counter() - t0) * 1e3)

    def _explicit(self, c, lb, ub, lo, hi, t0: float, failed: bool = True) -> Solution:
        """A failed, endless or oversized screening: solve the explicit program by HiGHS instead."""
        self.fallbacks += failed
        if self._fallback is None:
            self._fallback = HighsBackend(self.m)
        sol = self._fallback.solve(c, lb, ub, lo, hi)
        return Solution(sol.status, sol.objective_eur, sol.z, sol.row_dual, (time.perf_counter() - t0) * 1e3)


def _csr_arrays(a: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of a CSR matrix in its stored order, as the kernels read them."""
    return a.indptr.astype(np.int64), a.indices.astype(np.int64), np.ascontiguousarray(a.data, dtype=float)


@numba.njit(cache=True)
def _network_state(a_ptr, a_idx, a_val, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, b_rows, b_cols,
                   lim_ptr, lim_idx, lim_val, lim, x, lo, hi):
    """``z = A_nz⁻¹ (−A_nx x)``, the limit rows' values ``v = L z`` and their excess ``v − hi``,
    ``lo − v`` in one call (:meth:`EliminatedNetwork.network_state`)."""
    z = lu_solve(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, b_rows, b_cols,
                 -csr_matvec(a_ptr, a_idx, a_val, x))
    val = csr_matvec(lim_ptr, lim_idx, lim_val, z)
    above, below = np.empty(len(lim)), np.empty(len(lim))
    for k in range(len(lim)):
        above[k] = val[k] - hi[lim[k]]
        below[k] = lo[lim[k]] - val[k]
    return z, above, below


@numba.njit(cache=True)
def _through_network(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, b_rows, b_cols,
                     lim_ptr, lim_idx, lim_val, rows, w, n_net):
    """``A_nz⁻ᵀ Lᵀ w`` for weights ``w`` on limit rows ``rows`` (increasing): ``Lᵀ w`` entry by entry
    in limit-row order (the additions of ``l_net_t @ w_all``), then one transposed LU solve."""
    v = np.zeros(n_net)
    for k in range(len(rows)):
        i = rows[k]
        for q in range(lim_ptr[i], lim_ptr[i + 1]):
            v[lim_idx[q]] += lim_val[q] * w[k]
    return lu_solve_t(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, perm_r, perm_c, b_rows, b_cols, v)


@numba.njit(cache=True)
def _negative_reduced_costs(pool, cols, in_lp, c, lb, ub, k_ptr, k_idx, k_val, y_keep, n_ptr, n_idx, n_val, u, tol):
    """Positions ``pool[i]`` outside the LP (``in_lp``), with room (ub > lb), whose reduced cost
    ``c − (kept-row coefficients)·y_keep − (nodal-row coefficients)·u`` is below ``−tol (1 + |c|)``
    (:meth:`ScreenedBackend._entering_options`), in one pass."""
    out = np.empty(len(pool), np.int64)
    n = 0
    for i in range(len(pool)):
        j, col = pool[i], cols[i]
        if in_lp[j] or not ub[col] > lb[col]:
            continue
        d = c[col]
        for q in range(k_ptr[i], k_ptr[i + 1]):
            d -= k_val[q] * y_keep[k_idx[q]]
        for q in range(n_ptr[i], n_ptr[i + 1]):
            d -= n_val[q] * u[n_idx[q]]
        if d < -tol * (1.0 + abs(c[col])):
            out[n] = j
            n += 1
    return out[:n]


@numba.njit(cache=True)
def _zero_feasible_and_free(keep, cols, lim, c, lb, ub, lo, hi):
    """Whether every kept and limit row admits 0 and every bid-space column admits 0 at a cost
    ≥ 0 (:meth:`ScreenedBackend._zero_is_optimal`), stopping at the first that does not."""
    for i in keep:
        if not (lo[i] <= 0.0 and hi[i] >= 0.0):
            return False
    for j in cols:
        if not (c[j] >= 0.0 and lb[j] <= 0.0 and ub[j] >= 0.0):
            return False
    for i in lim:
        if not (lo[i] <= 0.0 and hi[i] >= 0.0):
            return False
    return True
