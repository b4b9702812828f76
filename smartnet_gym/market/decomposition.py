"""CS_D decentralized: DSO interface supply curves (Benders cuts) → TSO clearing → disaggregation.

Each DSO's cost of delivering a net injection P at each of its interface buses and periods is
a convex piecewise-linear function φ_a(P) (its local clearing with D limits and the exchange
fixed). The TSO clears T bids plus interface exchanges against lower approximations of φ_a
built from cuts (supply curves) that the DSOs return; when the TSO's estimate equals the DSOs'
true cost the optimum is the centralized one, and the DSOs' last local clearings are the
disaggregation. For an LP this terminates exactly in finitely many rounds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from smartnet_gym.market.bids import BidBook
from smartnet_gym.market.program import DT_H, ProgramSpec
from smartnet_gym.market.stages import T, Stage, _apply, _book, _queue_shift, _sub, bid_areas, period_sums

MAX_ROUNDS = 200
REL_GAP = 1e-9


class DecentralizedJoint(Stage):
    """Benders decomposition of the joint program by distribution area."""

    name = "decentralized_joint"

    def __init__(self, lin, cfg, backend):
        # HiGHS only: the DSOs' programs on the configured HiGHS path; the TSO's master gets its cuts
        # added to its HiGHS model in place, so it runs on the explicit program
        super().__init__(lin, cfg, backend if backend in ("highs", "highs-full") else "highs")
        # a DSO must deliver the exchange the TSO cleared: missing it costs more than any network
        # slack, otherwise the shortfall would act as a fake flexible unit at the interface
        worst = max(cfg.balance_penalty_eur_per_mwh, cfg.network_penalty_eur_per_mwh,
                    cfg.voltage_penalty_eur_per_pu2h * 0.1)
        self.sub_cfg = cfg.model_copy(update={"balance_penalty_eur_per_mwh": 100 * worst})
        self.rounds = 0
        self.gap = np.nan

    def _trees(self, book: BidBook, area_idx: np.ndarray, a: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Root T positions of area ``a`` and, per root, the positions (in area_idx) of its bids."""
        f = next(f for f in self.lin.feeders if f.area == a)
        root = f.root_of_bus()
        roots = np.unique(f.root_t[f.parent < 0])
        _, pos = self.lin.locate(book.bus[area_idx])
        bid_root = root[pos]
        return roots, [np.flatnonzero(bid_root == r) for r in roots]

    def run(self, inst, state, response):
        book, h = inst.book, inst.horizon
        area = bid_areas(self.lin, book)
        t_idx = np.flatnonzero(area == T)
        t_book = _sub(book, t_idx, state, inst.horizon)
        areas = tuple(f.area for f in self.lin.feeders)
        # the DSOs' programs: independent, so solved as one block-diagonal program and split per
        # area (as in LocalClearing); one balance group per feeding tree (root T bus) of each area
        d_idx = np.flatnonzero(np.isin(area, areas))
        d_area = area[d_idx]
        d_book = _sub(book, d_idx, state, inst.horizon)
        groups, group_of_area = [], []
        # interface virtual bids: per (tree, period) one up and one down, price 0
        v_bus, v_dir, v_per, v_qty, v_group = [], [], [], [], []
        for a in areas:
            a_pos = np.flatnonzero(d_area == a)
            roots, members = self._trees(book, d_idx[a_pos], a)
            group_of_area.append(np.arange(len(groups), len(groups) + len(roots)))
            for r, mem in zip(roots, members):
                g = len(groups)
                groups.append(a_pos[mem])
                for t in range(h):
                    for d in (1, -1):
                        sel = groups[g][(d_book.period[groups[g]] == t) & (d_book.direction[groups[g]] == d)]
                        v_bus.append(self.lin.dc.bus[r]); v_dir.append(d); v_per.append(t)
                        v_qty.append(d_book.qty_mw[sel].sum()); v_group.append(g)
        tree_area = tuple(a for a, gs in zip(areas, group_of_area) for _ in gs)
        subs = self.program(d_book, ProgramSpec(False, areas, tuple(groups), group_areas=tree_area), h, tag="subs",
                            cfg=self.sub_cfg)
        nv = len(v_bus)
        v_dir, v_per, v_group = np.asarray(v_dir, float), np.asarray(v_per, int), np.asarray(v_group, int)
        master_book = BidBook.from_arrays(
            bus=np.r_[t_book.bus, v_bus], direction=np.r_[t_book.direction, v_dir],
            period=np.r_[t_book.period, v_per], qty_mw=np.r_[t_book.qty_mw, v_qty],
            price_eur_per_mwh=np.r_[t_book.price_eur_per_mwh, np.zeros(nv)],
            storage=np.r_[t_book.storage, np.full(nv, -1)], storage_state=t_book.storage_state)
        master = self.program(master_book, ProgramSpec(True, (), ((T,),)), h, tag="master", backend="highs-full")
        hs = master.backend.h
        n0 = master.m.n_col
        if not hasattr(master, "eta_cols"):
            for _ in areas:   # one cost-to-go variable η_a ≥ 0 per area (φ_a ≥ 0: costs ≥ 0)
                hs.addCol(1.0, 0.0, np.inf, 0, np.zeros(0, np.int32), np.zeros(0))
            master.eta_cols = np.arange(n0, n0 + len(areas))
        # drop the previous clearing's cuts
        n_rows = hs.getNumRow()
        if n_rows > master.m.n_row:
            extra = np.arange(master.m.n_row, n_rows, dtype=np.int32)
            hs.deleteRows(len(extra), extra)
        xcols = np.arange(master.m.x.start, master.m.x.stop)
        v_cols = xcols[len(t_idx):]
        need = inst.need_mw[None, :]
        sub_res = None
        for rnd in range(MAX_ROUNDS):
            mres = master.solve(master_book, state.base, need)
            if not mres.ok:
                break
            x_v = mres.x_mw[len(t_idx):]
            # the exchange the TSO asks of each tree, per period
            p_hat = period_sums(v_group, v_per, v_dir * x_v, len(groups), h)
            eta = mres.z[master.eta_cols]
            lb = mres.objective_eur
            sub_res = subs.solve(d_book, state.base, p_hat)
            parts = subs.area_parts(sub_res, d_area)
            ub = lb - eta.sum() + (sum(p.objective_eur for p in parts) if sub_res.ok else np.inf)
            self.rounds, self.gap = rnd + 1, ub - lb
            if ub - lb <= REL_GAP * max(1.0, abs(ub)) + 1e-7 or not sub_res.ok:
                break
            g_all = sub_res.uniform_price * DT_H      # ∂φ/∂P̂ per tree and period [EUR/MW], balance duals
            for si, part in enumerate(parts):
                # η_a − Σ g (x_up − x_dn) ≥ φ_a − Σ g P̂   over the virtual bids of area a's trees
                mine = np.isin(v_group, group_of_area[si])
                gk = g_all[v_group[mine], v_per[mine]]
                nz = gk != 0.0
                idx = np.r_[master.eta_cols[si], v_cols[mine][nz]].astype(np.int32)
                val = np.r_[1.0, -v_dir[mine][nz] * gk[nz]]
                rows = group_of_area[si]
                rhs = part.objective_eur - float((g_all[rows] * p_hat[rows]).sum())
                hs.addRow(rhs, np.inf, len(idx), idx, val)
        if not mres.ok or sub_res is None or not sub_res.ok:
            bad = mres if not mres.ok else sub_res
            _apply(state, inst, t_idx, replace(mres, x_mw=np.zeros(len(t_idx)), status=bad.status,
                                               bid_price=np.zeros(len(t_idx))), "tso_master", response)
            return
        eta_sum = float(mres.z[master.eta_cols].sum())
        t_res = replace(mres, objective_eur=mres.objective_eur - eta_sum, x_mw=mres.x_mw[:len(t_idx)],
                        bid_price=mres.bid_price[:len(t_idx)], flow_slack_mw=mres.flow_slack_mw)
        _apply(state, inst, t_idx, t_res, "tso_master", response)
        for a, part in zip(areas, parts):
            _book(state, inst, d_idx[d_area == a], part, f"dso_{a}", subs)
        _queue_shift(state, inst, response, d_idx, sub_res.x_mw)
