"""The Benders master of decentralized CS_D in bid space: HiGHS on bids, cost-to-go and cuts.

Decentralized CS_D's rounds after the first use it. The TSO's master holds the transmission bids
and, at their tree's root, the D bids and batteries; its explicit program carries every
transmission angle and line row, which is what HiGHS spends its time on. As in the
fast path (``screening.py``), the network is eliminated once and a line limit enters as a row
over the bids when the answer violates it; the cost-to-go columns η and the cut rows are added
to the same small HiGHS model, so a round costs the bid columns instead of the whole network.
Answers come back in the explicit program's coordinates (network state, limit slacks, nodal
duals from the limit duals), so the master's prices are those of the explicit master.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from smartnet_gym.market.program import ProgramMatrices
from smartnet_gym.market.screening import VIOLATION_TOL, EliminatedNetwork
from smartnet_gym.market.solvers import SentValues, Solution, highs_lp, new_highs

MAX_ROUNDS = 100
CUT = -1          # kind of a model row that is a Benders cut (others: the explicit row index)


def _add_cut_rows(h, lo: np.ndarray, starts: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
    """Rows ``Σ vals · z[cols] ≥ lo`` (CSR by ``starts``) into the HiGHS model ``h``."""
    h.addRows(len(lo), lo, np.full(len(lo), np.inf), len(vals), starts.astype(np.int32), cols.astype(np.int32), vals)


class CutMasterBackend:
    """Bid-space LP on HiGHS with ``n_eta`` cost-to-go columns, lazily added line limits and cuts."""

    def __init__(self, m: ProgramMatrices, n_eta: int):
        import highspy

        self.m = m
        self.net = EliminatedNetwork(m)        # LU, bid-space rows, network state, duals
        net = self.net
        self.n_bid, self.n_eta = len(net.bid_cols), n_eta
        a = sp.hstack([net.a_keep, sp.csr_matrix((net.a_keep.shape[0], n_eta))]).tocsc()
        cost = np.r_[m.cost[net.bid_cols], np.ones(n_eta)]
        lb = np.r_[m.col_lb[net.bid_cols], np.zeros(n_eta)]
        ub = np.r_[m.col_ub[net.bid_cols], np.full(n_eta, np.inf)]
        self.h = new_highs()
        self.h.passModel(highs_lp(a, cost, lb, ub, m.row_lo[net.keep_rows], m.row_hi[net.keep_rows]))
        self._optimal = highspy.HighsModelStatus.kOptimal
        self.col_explicit = np.r_[net.bid_cols, np.full(n_eta, -1)]   # explicit column of each model column
        self.row_kind = net.keep_rows.astype(np.int64)                # explicit row (or CUT) of each model row
        self.active = np.zeros(0, np.int64)        # line limits (positions in net.lim) in the model
        self.cut_lo = np.zeros(0)                  # right-hand sides of the cuts in the model
        self.eta = np.zeros(n_eta)                 # η of the last answer
        self.sent = SentValues()
        self.rounds = 0

    def eta_col(self, j: np.ndarray) -> np.ndarray:
        """Model columns of η_j."""
        return self.n_bid + np.asarray(j)

    def bid_col(self, explicit: np.ndarray) -> np.ndarray:
        """Model columns of explicit bid columns."""
        return np.searchsorted(self.net.bid_cols, explicit)

    def eta_of(self, sol_z: np.ndarray) -> np.ndarray:
        """η of the last answer."""
        return self.eta

    def add_cuts(self, lo: np.ndarray, starts: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        """Rows ``Σ vals · z[cols] ≥ lo`` (model columns), one per entry of ``lo``."""
        _add_cut_rows(self.h, lo, starts, cols, vals)
        self.row_kind = np.r_[self.row_kind, np.full(len(lo), CUT)]
        self.cut_lo = np.r_[self.cut_lo, lo]
        self.sent.extend("rows", lo, np.full(len(lo), np.inf))

    def drop_cuts(self) -> None:
        cuts = np.flatnonzero(self.row_kind == CUT).astype(np.int32)
        if len(cuts):
            self.h.deleteRows(len(cuts), cuts)
            self.row_kind = self.row_kind[self.row_kind != CUT]
            self.cut_lo = np.zeros(0)
            self.sent.forget()

    def _add_limits(self, k: np.ndarray, c, lb, ub, lo, hi) -> None:
        """Line limits ``k`` as rows over the bids, with their two slacks."""
        net = self.net
        rows = net.bid_rows(k)
        n_model = len(self.col_explicit)
        new_cols = net.slack_cols[k].reshape(-1)
        self.h.addCols(len(new_cols), c[new_cols], lb[new_cols], ub[new_cols], 0,
                       np.zeros(len(new_cols), np.int32), np.zeros(0, np.int32), np.zeros(0))
        slack_pos = np.arange(len(new_cols)).reshape(-1, 2) + n_model
        full = sp.hstack([sp.csr_matrix(rows), sp.csr_matrix((len(k), n_model - self.n_bid + len(new_cols)))]).tolil()
        full[np.repeat(np.arange(len(k)), 2), slack_pos.ravel()] = net.slack_sign[k].ravel()
        csr = full.tocsr()
        r = net.lim[k]
        self.h.addRows(len(k), lo[r], hi[r], csr.nnz, csr.indptr[:-1].astype(np.int32),
                       csr.indices.astype(np.int32), csr.data)
        self.col_explicit = np.r_[self.col_explicit, new_cols]
        self.row_kind = np.r_[self.row_kind, r]
        self.active = np.r_[self.active, k]
        self.sent.forget()

    def solve(self, c, lb, ub, lo, hi) -> Solution:
        m, h, net = self.m, self.h, self.net
        t0 = time.perf_counter()
        for self.rounds in range(1, MAX_ROUNDS + 1):
            cols = self.col_explicit
            is_x = cols >= 0
            mc = np.where(is_x, c[np.maximum(cols, 0)], 1.0)
            mlb = np.where(is_x, lb[np.maximum(cols, 0)], 0.0)
            mub = np.where(is_x, ub[np.maximum(cols, 0)], np.inf)
            kind = self.row_kind
            is_cut = kind == CUT
            mlo = np.where(is_cut, 0.0, lo[np.maximum(kind, 0)])
            mhi = np.where(is_cut, np.inf, hi[np.maximum(kind, 0)])
            mlo[is_cut] = self.cut_lo
            self.sent.send(h, mc, mlb, mub, mlo, mhi)
            h.run()
            if h.getModelStatus() != self._optimal:
                h.clearSolver()
                self.sent.forget()
                return Solution(f"failed: {h.modelStatusToString(h.getModelStatus())}", float("nan"),
                                np.zeros(m.n_col), np.zeros(m.n_row), (time.perf_counter() - t0) * 1e3)
            zm = np.asarray(h.getSolution().col_value)
            z_net, above, below = net.network_state(zm[:self.n_bid], lo, hi)
            excess = np.maximum(above, below)
            excess[self.active] = 0.0
            k = np.flatnonzero(excess > VIOLATION_TOL)
            if not len(k):
                break
            self._add_limits(k, c, lb, ub, lo, hi)
        else:
            return Solution("failed: line limits kept appearing", float("nan"), np.zeros(m.n_col),
                            np.zeros(m.n_row), (time.perf_counter() - t0) * 1e3)
        y = np.asarray(h.getSolution().row_dual)
        z = np.zeros(m.n_col)
        z[cols[is_x]] = zm[is_x]
        z[net.net_cols] = z_net
        self.eta = zm[self.n_bid:self.n_bid + self.n_eta]
        dual = np.zeros(m.n_row)
        lim_rows = kind >= 0
        dual[kind[lim_rows]] = y[lim_rows]
        limit_pos = np.flatnonzero(lim_rows)[len(net.keep_rows):]       # model rows of the line limits
        dual[net.node] = net.nodal_duals(y[limit_pos], self.active)
        return Solution("optimal", float(h.getObjectiveValue()), z, dual, (time.perf_counter() - t0) * 1e3)


class ExplicitCutMaster:
    """The same interface on HiGHS's explicit program (the QP variant, or a master without line
    limits to screen): η columns and cuts added to its model in place."""

    def __init__(self, backend, n_eta: int):
        self.h = backend.h
        n0 = backend.m.n_col
        for _ in range(n_eta):
            self.h.addCol(1.0, 0.0, np.inf, 0, np.zeros(0, np.int32), np.zeros(0))
        self.eta_cols = np.arange(n0, n0 + n_eta)
        self.n_row = backend.m.n_row

    def eta_col(self, j: np.ndarray) -> np.ndarray:
        return self.eta_cols[np.asarray(j)]

    def bid_col(self, explicit: np.ndarray) -> np.ndarray:
        return np.asarray(explicit)

    def eta_of(self, sol_z: np.ndarray) -> np.ndarray:
        return sol_z[self.eta_cols]

    def add_cuts(self, lo: np.ndarray, starts: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        _add_cut_rows(self.h, lo, starts, cols, vals)

    def drop_cuts(self) -> None:
        extra = np.arange(self.n_row, self.h.getNumRow(), dtype=np.int32)
        if len(extra):
            self.h.deleteRows(len(extra), extra)
