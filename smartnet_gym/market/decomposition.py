"""CS_D decentralized: DSO interface supply curves (Benders cuts) → TSO clearing → disaggregation.

Each DSO's cost of delivering a net injection P at each of its interface buses and periods is
a convex piecewise-linear function φ_a(P) (its local clearing with D limits and the exchange
fixed). The TSO clears T bids plus interface exchanges against lower approximations of φ_a
built from cuts (supply curves) that the DSOs return; when the TSO's estimate equals the DSOs'
true cost the optimum is the centralized one, and the DSOs' last local clearings are the
disaggregation. For an LP this terminates exactly in finitely many rounds.

A battery's state of charge is the only constraint that links the periods of a DSO's program.
The D batteries are therefore offered to the TSO's master (at their tree's root, with their
energy limits) and pinned to the master's schedule in the DSOs' programs; φ_a is then a sum of
per-period functions φ_(a,t)(P_t, battery_t), and each round returns one cut per area and period
(48 → 9 rounds on the default preset at 1,000 bids).
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
    """Benders decomposition of the joint program by distribution area and period."""

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
        # D batteries go to the master at their tree's root (their state of charge is the only
        # link between periods) and are pinned in the DSOs' programs: each area's cost is then a
        # sum of per-period functions, and the master gets one cut per area and period
        d_storage = d_book.storage >= 0
        groups, group_of_area = [], []
        tree_of = np.full(len(d_book), -1)
        # interface virtual bids: per (tree, period) one up and one down, price 0
        v_bus, v_dir, v_per, v_qty, v_group = [], [], [], [], []
        for a in areas:
            a_pos = np.flatnonzero(d_area == a)
            roots, members = self._trees(book, d_idx[a_pos], a)
            group_of_area.append(np.arange(len(groups), len(groups) + len(roots)))
            for r, mem in zip(roots, members):
                g = len(groups)
                groups.append(a_pos[mem])
                tree_of[groups[g]] = g
                v_bus.append(self.lin.dc.bus[r])
                for t in range(h):
                    for d in (1, -1):
                        sel = groups[g][(d_book.period[groups[g]] == t) & (d_book.direction[groups[g]] == d)
                                        & ~d_storage[groups[g]]]
                        v_dir.append(d); v_per.append(t)
                        v_qty.append(d_book.qty_mw[sel].sum()); v_group.append(g)
        root_bus = np.asarray(v_bus, int)
        tree_area = tuple(a for a, gs in zip(areas, group_of_area) for _ in gs)
        subs = self.program(d_book, ProgramSpec(False, areas, tuple(groups), group_areas=tree_area), h, tag="subs",
                            cfg=self.sub_cfg)
        nv = len(v_dir)
        v_dir, v_per, v_group = np.asarray(v_dir, float), np.asarray(v_per, int), np.asarray(v_group, int)
        v_bus = np.repeat(root_bus, 2 * h)
        s_pos = np.flatnonzero(d_storage)
        s_tree, s_per = tree_of[s_pos], d_book.period[s_pos]
        s_dir = d_book.direction[s_pos].astype(float)
        ns = len(s_pos)
        master_book = BidBook.from_arrays(
            bus=np.r_[t_book.bus, v_bus, root_bus[s_tree]], direction=np.r_[t_book.direction, v_dir, s_dir],
            period=np.r_[t_book.period, v_per, s_per], qty_mw=np.r_[t_book.qty_mw, v_qty, d_book.qty_mw[s_pos]],
            price_eur_per_mwh=np.r_[t_book.price_eur_per_mwh, np.zeros(nv), d_book.price_eur_per_mwh[s_pos]],
            unit=np.r_[t_book.unit, np.full(nv, -1), d_book.unit[s_pos]],
            storage=np.r_[t_book.storage, np.full(nv, -1), d_book.storage[s_pos]], storage_state=t_book.storage_state)
        master = self.program(master_book, ProgramSpec(True, (), ((T,),)), h, tag="master", backend="highs-full")
        hs = master.backend.h
        n0 = master.m.n_col
        n_eta = len(areas) * h
        if not hasattr(master, "eta_cols"):
            for _ in range(n_eta):   # cost-to-go η_(a,t) ≥ 0 per area and period (costs ≥ 0)
                hs.addCol(1.0, 0.0, np.inf, 0, np.zeros(0, np.int32), np.zeros(0))
            master.eta_cols = np.arange(n0, n0 + n_eta)
        # drop the previous clearing's cuts
        n_rows = hs.getNumRow()
        if n_rows > master.m.n_row:
            extra = np.arange(master.m.n_row, n_rows, dtype=np.int32)
            hs.deleteRows(len(extra), extra)
        xcols = np.arange(master.m.x.start, master.m.x.stop)
        nt = len(t_idx)
        v_cols, s_cols = xcols[nt:nt + nv], xcols[nt + nv:]
        v_cell = v_group * h + v_per        # (tree, period) of each virtual bid and battery bid
        s_cell = s_tree * h + s_per
        # the master's columns of each (area, period) cut
        cut_v = [[np.flatnonzero(np.isin(v_group, gs) & (v_per == t)) for t in range(h)] for gs in group_of_area]
        cut_s = [[np.flatnonzero(np.isin(s_tree, gs) & (s_per == t)) for t in range(h)] for gs in group_of_area]
        need = inst.need_mw[None, :]
        sub_res = None
        for rnd in range(MAX_ROUNDS):
            mres = master.solve(master_book, state.base, need)
            if not mres.ok:
                break
            x_v, x_s = mres.x_mw[nt:nt + nv], mres.x_mw[nt + nv:]
            # the exchange the TSO asks of each tree per period: interface bids and its batteries
            p_v = period_sums(v_group, v_per, v_dir * x_v, len(groups), h)
            p_hat = p_v + period_sums(s_tree, s_per, s_dir * x_s, len(groups), h)
            eta = mres.z[master.eta_cols]
            lb = mres.objective_eur
            sub_res = subs.solve(d_book, state.base, p_hat, pin=(s_pos, x_s))
            if not sub_res.ok:
                self.rounds, self.gap = rnd + 1, np.inf
                break
            phi = subs.area_period_costs(sub_res, s_pos)[np.asarray(areas) + 1]     # (n_areas, H)
            ub = lb - eta.sum() + phi.sum()
            self.rounds, self.gap = rnd + 1, ub - lb
            if ub - lb <= REL_GAP * max(1.0, abs(ub)) + 1e-7:
                break
            # ∂φ/∂P̂ per tree and period [EUR/MW] (balance duals); a pinned battery moves only
            # the network rows: ∂φ/∂x = s (g − Δt · locational price at its bus)
            g = (sub_res.uniform_price * DT_H).reshape(-1)
            gv = v_dir * g[v_cell]
            gs_ = s_dir * (g[s_cell] - DT_H * sub_res.bid_price[s_pos])
            for ai in range(len(areas)):
                for t in range(h):
                    # η_(a,t) − Σ g (x_up − x_dn) − Σ h x_s ≥ φ_(a,t) − Σ g x̂_v − Σ h x̂_s
                    kv, ks = cut_v[ai][t], cut_s[ai][t]
                    idx = np.r_[master.eta_cols[ai * h + t], v_cols[kv], s_cols[ks]].astype(np.int32)
                    val = np.r_[1.0, -gv[kv], -gs_[ks]]
                    nz = val != 0.0
                    nz[0] = True
                    rhs = phi[ai, t] - float(gv[kv] @ x_v[kv]) - float(gs_[ks] @ x_s[ks])
                    hs.addRow(rhs, np.inf, int(nz.sum()), idx[nz], val[nz])
        if not mres.ok or sub_res is None or not sub_res.ok:
            bad = mres if not mres.ok else sub_res
            _apply(state, inst, t_idx, replace(mres, x_mw=np.zeros(nt), status=bad.status,
                                               bid_price=np.zeros(nt)), "tso_master", response)
            return
        eta_sum = float(mres.z[master.eta_cols].sum())
        battery_eur = DT_H * float(master_book.price_eur_per_mwh[nt + nv:] @ mres.x_mw[nt + nv:])
        t_res = replace(mres, objective_eur=mres.objective_eur - eta_sum - battery_eur, x_mw=mres.x_mw[:nt],
                        bid_price=mres.bid_price[:nt], flow_slack_mw=mres.flow_slack_mw)
        _apply(state, inst, t_idx, t_res, "tso_master", response)
        parts = subs.area_parts(sub_res, d_area)
        for a, part in zip(areas, parts):
            _book(state, inst, d_idx[d_area == a], part, f"dso_{a}", subs)
        _queue_shift(state, inst, response, d_idx, sub_res.x_mw)
