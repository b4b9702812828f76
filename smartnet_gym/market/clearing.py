"""ClearingProgram: a program built once for a bid layout, re-solved per clearing, with prices.

Prices come from the duals (∂cost/∂rhs): the uniform price of a balance group is its balance
dual per MWh; the locational price of a bid is the balance dual minus the dual of the nodal
row where it injects, also per MWh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartnet_gym.config import MarketConfig
from smartnet_gym.grid.linear import BaseState, LinearTD
from smartnet_gym.market.backends import make_backend
from smartnet_gym.market.bids import BidBook, BuyBook, tie_break
from smartnet_gym.market.program import (
    DT_H,
    W_SCALE,
    ProgramInputs,
    ProgramSpec,
    build_matrices,
    fill_vectors,
)
from smartnet_gym.market.solvers import Backend, Solution

#: cost perturbation per bid [EUR/MWh] × :func:`tie_break`: equal-price bids are not tied, so the
#: LP optimum is unique and the same whichever program groups them or path solves them; far
#: below any price step, and 250× HiGHS's dual feasibility tolerance per MW of a 15-min bid
TIE_EUR_PER_MWH = 1e-6


@dataclass(frozen=True)
class ProgramResult:
    """One solve of one program, in market terms."""

    status: str
    objective_eur: float
    x_mw: np.ndarray                 # (n_bids,) activation of each bid of the program's book
    y_mw: np.ndarray                 # (n_buy,) served buy bids
    balance_slack_mw: np.ndarray     # (n_groups, H) unmet need (+ shortage, − surplus)
    flow_slack_mw: float             # Σ over periods of T and D flow-limit slacks
    voltage_slack_pu2: float         # Σ over periods of squared-voltage slacks
    uniform_price: np.ndarray        # (n_groups, H) EUR/MWh
    bid_price: np.ndarray            # (n_bids,) locational price where each bid injects [EUR/MWh]
    solve_ms: float
    z: np.ndarray

    @property
    def ok(self) -> bool:
        return self.status == "optimal"


class ClearingProgram:
    """Program + backend for one stage; :meth:`solve` only updates values (no rebuild)."""

    def __init__(self, lin: LinearTD, layout: BidBook, spec: ProgramSpec, horizon: int, cfg: MarketConfig,
                 backend: str = "highs", buy_layout: BuyBook | None = None):
        self.lin, self.spec, self.cfg, self.horizon = lin, spec, cfg, horizon
        nb = 0 if buy_layout is None else len(buy_layout)
        self.m = build_matrices(lin, layout, spec, horizon, cfg, n_buy=nb,
                                buy_direction=None if buy_layout is None else buy_layout.direction.astype(float),
                                buy_period=None if buy_layout is None else buy_layout.period)
        self.backend_name = backend
        self.backend: Backend = make_backend(self.m, backend)
        self.n_bids = len(layout)
        self._quadratic = bool((self.m.quad > 0).any())
        self.last_vectors: tuple | None = None
        self._buffers: tuple | None = None      # the arrays :meth:`vectors` fills in place
        self._filled: tuple | None = None       # the inputs they were last filled for (see vectors)
        self._areas_of: tuple | None = None     # (bid areas, per-area index arrays) of area_parts
        self._tie_units: np.ndarray | None = None
        self._tie_price = np.zeros(len(layout))
        self.tie_cost = np.zeros(len(layout))   # EUR per MW of each bid: the tie-break part of its cost
        # per-solve reads of the answer, prepared once for the layout: (group, period) of each
        # group member (balance rows), the bids without a group or node row, the slack blocks
        m, h = self.m, horizon
        members = m.group_members
        self._members = (None if len(members) == 1 and np.array_equal(members[0], np.arange(self.n_bids))
                         else np.concatenate(members).astype(np.int64) if members else np.zeros(0, np.int64))
        self._member_key = (np.concatenate([g * h + layout.period[idx] for g, idx in enumerate(members)])
                            if members else np.zeros(0, np.int64)).astype(np.int64)
        self._group_rows, self._no_group = np.maximum(m.bid_group_row, 0), np.flatnonzero(m.bid_group_row < 0)
        self._node_rows, self._no_node = np.maximum(m.bid_node_row, 0), np.flatnonzero(m.bid_node_row < 0)
        self._flow_blocks = _slices(m.cols, ("tslack", "dslack"))
        self._volt_blocks = _slices(m.cols, ("vslack",))

    def reset(self) -> bool:
        """Cold solver state, as if new, keeping what depends on the layout only; False when the
        backend cannot (then build a new program)."""
        reset = getattr(self.backend, "reset", None)
        if reset is None:
            return False
        reset()
        self.last_vectors = self._filled = None
        return True

    def vectors(self, book: BidBook, base: BaseState | None, needs: np.ndarray,
                limits: tuple[np.ndarray, np.ndarray] | None = None, buy: BuyBook | None = None):
        """Cost, column bounds and row bounds of a solve (:func:`fill_vectors`, into the buffers).

        Asked again for the same book, base state, limits and buyers (the same objects: they are
        immutable) and equal needs, the buffers are returned as they are: evaluating several
        activations of one instance (the yardstick of the operator envs) fills them once."""
        needs = np.asarray(needs, float)
        last = self._filled
        if (last is not None and last[0] is book and last[1] is base and last[2] is limits and last[3] is buy
                and np.array_equal(last[4], needs)):
            return last[5]
        st = book.storage_state
        inp = ProgramInputs(price=book.price_eur_per_mwh + self._tie(book), qty=book.qty_mw, needs=needs, base=base,
                            storage_soc_mwh=st.soc_mwh, storage_energy_mwh=st.energy_mwh,
                            storage_committed_mwh=st.committed_mwh,
                            limits_lo=None if limits is None else limits[0],
                            limits_hi=None if limits is None else limits[1], buy=buy)
        vec = fill_vectors(self.m, self.lin, inp, self._buffers)
        self._buffers = (vec[0], vec[2], vec[3], vec[4])
        self._filled = (book, base, limits, buy, needs.copy(), vec)
        return vec

    def _tie(self, book: BidBook) -> np.ndarray:
        """TIE_EUR_PER_MWH × :func:`tie_break` of ``book`` (and its cost per MW, ``tie_cost``);
        the layout is this program's, so it is recomputed only when the units change."""
        if self._tie_units is None or not np.array_equal(self._tie_units, book.unit):
            self._tie_units = book.unit.copy()
            self._tie_price = TIE_EUR_PER_MWH * tie_break(book)
            self.tie_cost = DT_H * self._tie_price
        return self._tie_price

    def solve(self, book: BidBook, base: BaseState | None, needs: np.ndarray,
              limits: tuple[np.ndarray, np.ndarray] | None = None, buy: BuyBook | None = None,
              fix_x: np.ndarray | None = None, pin: tuple[np.ndarray, np.ndarray] | None = None) -> ProgramResult:
        """Clear ``book`` (same layout as built); ``fix_x`` evaluates given activations instead;
        ``pin = (bids, mw)`` clears the rest with those bids' activations fixed."""
        sol = self._run(book, base, needs, limits, buy, fix_x, pin)
        return self._result(sol, needs, book, buy)

    def activations(self, book: BidBook, base: BaseState | None, needs: np.ndarray) -> np.ndarray | None:
        """Only the bids' activations of a solve (None if it failed): for stages that use no
        prices, duals or slacks (CS_B's forwarding limits)."""
        sol = self._run(book, base, needs)
        return self._activations_of(sol) if sol.ok else None

    def _run(self, book: BidBook, base: BaseState | None, needs: np.ndarray,
             limits: tuple[np.ndarray, np.ndarray] | None = None, buy: BuyBook | None = None,
             fix_x: np.ndarray | None = None, pin: tuple[np.ndarray, np.ndarray] | None = None) -> Solution:
        """The backend's solve (or evaluation, with ``fix_x``) of this clearing's values."""
        c, lb, ub, lo, hi = self.vectors(book, base, needs, limits, buy)
        if fix_x is not None:
            lb = lb.copy()
            ub = ub.copy()
            lb[self.m.x] = ub[self.m.x] = fix_x
        elif pin is not None and len(pin[0]):
            lb = lb.copy()
            ub = ub.copy()
            cols = self.m.x.start + np.asarray(pin[0])
            lb[cols] = ub[cols] = pin[1]
        self.last_vectors = (c, lb, ub, lo, hi)
        run = self.backend.solve if fix_x is None else self.backend.evaluate
        return run(c, lb, ub, lo, hi)

    def _activations_of(self, sol: Solution) -> np.ndarray:
        """The bids' activations of the last solve within their bounds: interior-point / ADMM
        answers may overshoot a bound by their tolerance (~1e-5)."""
        x = np.maximum(sol.z[self.m.x], 0.0)
        return np.minimum(x, self.last_vectors[2][self.m.x], out=x)

    def area_parts(self, res: ProgramResult, bid_area: np.ndarray) -> list[ProgramResult]:
        """Split ``res`` of a program over independent areas (no transmission, no buyers, no
        interface limits, each balance group inside one area) into one result per area of
        ``spec.areas``, as if each area had been cleared alone; an area's balance rows are its
        groups in order. Objectives and solve time add up to ``res``'s."""
        spec, m = self.spec, self.m
        if spec.transmission or spec.interface_limits or (m.group_area < 0).any() or m.y.stop > m.y.start:
            raise ValueError(f"area_parts: needs independent areas, got {spec}")
        c = self.last_vectors[0]
        z = res.z
        ok = res.ok and z is not None and len(z) == m.n_col
        if ok:
            w = self._column_costs(c, z)
            nz = np.flatnonzero(w)               # most columns are free network variables at cost 0
            obj = np.bincount(m.col_area[nz] + 1, weights=w[nz], minlength=max(spec.areas, default=-1) + 2)
        parts = []
        add = np.add.reduce
        for a, (k, rows, dslack, vslack) in zip(spec.areas, self._area_index(bid_area)):
            tie = float(self.tie_cost[k] @ res.x_mw[k])
            parts.append(ProgramResult(
                res.status, float(obj[a + 1]) - tie if ok else float("nan"), res.x_mw[k], res.y_mw,
                res.balance_slack_mw[rows], float(add(z[dslack])) if ok else 0.0,
                float(add(z[vslack])) / W_SCALE if ok else 0.0, res.uniform_price[rows],
                res.bid_price[k], res.solve_ms / len(spec.areas), z))
        return parts

    def _area_index(self, bid_area: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, slice, slice]]:
        """Per area of the spec: its bids, its balance rows and its flow and voltage slack blocks
        (kept for the last ``bid_area``: the layout, and so the split, rarely changes)."""
        if self._areas_of is None or not np.array_equal(self._areas_of[0], bid_area):
            m = self.m
            self._areas_of = (np.array(bid_area, copy=True), [
                (np.flatnonzero(bid_area == a), np.flatnonzero(m.group_area == a), m.cols[f"dslack{a}"],
                 m.cols[f"vslack{a}"]) for a in self.spec.areas])
        return self._areas_of[1]

    def resolve(self, needs: np.ndarray, book: BidBook, buy: BuyBook | None = None) -> ProgramResult:
        """Solve again with the last solve's values, after the model changed in place (rows added
        to a HiGHS model, as Benders does with its cuts)."""
        sol = self.backend.solve(*self.last_vectors)
        return self._result(sol, needs, book, buy)

    def area_period_costs(self, res: ProgramResult, skip_bids: np.ndarray | None = None) -> np.ndarray:
        """(n_areas + 1, H) objective of ``res`` by owner area (row a + 1; row 0 transmission and
        shared columns) and period, at the bids' own prices; ``skip_bids`` contribute nothing.
        For a program without inter-period rows among the rest, each entry is that area's and
        period's own optimal cost."""
        m = self.m
        c, z = self.last_vectors[0], res.z
        w = self._column_costs(c, z)
        w[m.x] -= self.tie_cost * res.x_mw
        if skip_bids is not None:
            w[m.x.start + np.asarray(skip_bids)] = 0.0
        n = max(self.spec.areas, default=-1) + 2
        out = np.bincount((m.col_area + 1) * self.horizon + m.col_period, weights=w, minlength=n * self.horizon)
        return out.reshape(n, self.horizon)

    def _column_costs(self, c: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Objective term of every column at ``z``."""
        return c * z + 0.5 * self.m.quad * z * z if self._quadratic else c * z

    def _result(self, sol: Solution, needs: np.ndarray, book: BidBook, buy: BuyBook | None) -> ProgramResult:
        m, h = self.m, self.horizon
        n_groups = len(self.spec.groups)
        needs = np.asarray(needs, float).reshape(n_groups, h) if n_groups else np.zeros((0, h))
        if not sol.ok:
            # nothing activated: the whole need stays open and is priced downstream
            return ProgramResult(sol.status, float("nan"), np.zeros(self.n_bids), np.zeros(m.y.stop - m.y.start),
                                 needs.copy(), 0.0, 0.0, np.full((n_groups, h), np.nan),
                                 np.full(self.n_bids, np.nan), sol.solve_ms, sol.z)
        z = sol.z
        x = self._activations_of(sol)
        y = np.maximum(z[m.y], 0.0)
        # unmet need per group from the (clipped) activations, so that balance holds exactly
        moved = book.direction * x
        if self._members is not None:
            moved = moved[self._members]
        unmet = needs - np.bincount(self._member_key, weights=moved, minlength=n_groups * h).reshape(n_groups, h)
        if n_groups and buy is not None and len(buy):
            unmet[0] += np.bincount(buy.period, weights=buy.direction * y, minlength=h)
        add = np.add.reduce               # = ndarray.sum, without its Python wrapper
        flow = sum(float(add(z[b])) for b in self._flow_blocks)
        volt = sum(float(add(z[b])) for b in self._volt_blocks) / W_SCALE
        dual = sol.row_dual
        if n_groups:
            uniform = dual[m.rows["balance"]].reshape(n_groups, h) / DT_H
        else:
            uniform = np.zeros((0, h))
        g, nd = dual[self._group_rows], dual[self._node_rows]
        g[self._no_group] = 0.0
        nd[self._no_node] = 0.0
        objective = sol.objective_eur - float(self.tie_cost @ x)   # at the bids' own prices
        return ProgramResult(sol.status, objective, x, y, unmet, flow, volt, uniform,
                             (g - nd) / DT_H, sol.solve_ms, z)


def _slices(blocks: dict[str, slice], prefixes: tuple[str, ...]) -> tuple[slice, ...]:
    """The blocks whose names start with ``prefixes``, as slices (sums over them need no gather)."""
    return tuple(sl for name, sl in blocks.items() if name.startswith(prefixes))
