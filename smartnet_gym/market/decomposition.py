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
from smartnet_gym.market.stages import T, Stage, _apply, _sub, bid_areas

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
        areas = [f.area for f in self.lin.feeders]
        # interface virtual bids: per (area, root, period) one up and one down, price 0
        subs, v_bus, v_dir, v_per, v_qty, v_key = [], [], [], [], [], []
        for a in areas:
            a_idx = np.flatnonzero(area == a)
            a_book = _sub(book, a_idx, state, inst.horizon)
            roots, members = self._trees(book, a_idx, a)
            spec = ProgramSpec(False, (a,), tuple(members))
            subs.append((a, a_idx, a_book, roots, self.program(a_book, spec, h, tag=f"sub{a}", cfg=self.sub_cfg)))
            for j, r in enumerate(roots):
                mem = members[j]
                for t in range(h):
                    for d in (1, -1):
                        sel = mem[(a_book.period[mem] == t) & (a_book.direction[mem] == d)]
                        v_bus.append(self.lin.dc.bus[r]); v_dir.append(d); v_per.append(t)
                        v_qty.append(a_book.qty_mw[sel].sum()); v_key.append((len(subs) - 1, j, t))
        nv = len(v_bus)
        master_book = BidBook.from_arrays(
            bus=np.r_[t_book.bus, v_bus], direction=np.r_[t_book.direction, v_dir],
            period=np.r_[t_book.period, v_per], qty_mw=np.r_[t_book.qty_mw, v_qty],
            price_eur_per_mwh=np.r_[t_book.price_eur_per_mwh, np.zeros(nv)],
            storage=np.r_[t_book.storage, np.full(nv, -1)], storage_state=t_book.storage_state)
        master = self.program(master_book, ProgramSpec(True, (), ((T,),)), h, tag="master", backend="highs-full")
        hs = master.backend.h
        n0 = master.m.n_col
        if not hasattr(master, "eta_cols"):
            for _ in subs:   # one cost-to-go variable η_a ≥ 0 per area (φ_a ≥ 0: costs ≥ 0)
                hs.addCol(1.0, 0.0, np.inf, 0, np.zeros(0, np.int32), np.zeros(0))
            master.eta_cols = np.arange(n0, n0 + len(subs))
        # drop the previous clearing's cuts
        n_rows = hs.getNumRow()
        if n_rows > master.m.n_row:
            extra = np.arange(master.m.n_row, n_rows, dtype=np.int32)
            hs.deleteRows(len(extra), extra)
        xcols = np.arange(master.m.x.start, master.m.x.stop)
        v_cols = xcols[len(t_idx):]
        need = inst.need_mw[None, :]
        sub_res = [None] * len(subs)
        for rnd in range(MAX_ROUNDS):
            mres = master.solve(master_book, state.base, need)
            if not mres.ok:
                break
            x_v = mres.x_mw[len(t_idx):]
            p_hat = np.zeros((len(subs), max(len(s[3]) for s in subs), h)) if subs else np.zeros((0, 0, h))
            for k, (si, j, t) in enumerate(v_key):
                p_hat[si, j, t] += v_dir[k] * x_v[k]
            eta = mres.z[master.eta_cols]
            master_cost = mres.objective_eur
            ub = master_cost - eta.sum()
            cuts = []
            for si, (a, a_idx, a_book, roots, prog) in enumerate(subs):
                nr = len(roots)
                res = prog.solve(a_book, state.base, p_hat[si, :nr, :])
                sub_res[si] = res
                if not res.ok:
                    ub = np.inf
                    continue
                ub += res.objective_eur
                g = res.uniform_price[:nr, :] * DT_H  # ∂φ/∂P̂ [EUR/MW], the balance duals
                cuts.append((si, nr, g, res.objective_eur))
            lb = master_cost
            self.rounds, self.gap = rnd + 1, ub - lb
            if ub - lb <= REL_GAP * max(1.0, abs(ub)) + 1e-7:
                break
            for si, nr, g, phi in cuts:
                # η_a − Σ g (x_up − x_dn) ≥ φ_a − Σ g P̂
                idx, val = [int(master.eta_cols[si])], [1.0]
                for k, (sj, j, t) in enumerate(v_key):
                    if sj == si and g[j, t] != 0.0:
                        idx.append(int(v_cols[k])); val.append(-v_dir[k] * g[j, t])
                rhs = phi - float((g * p_hat[si, :nr, :]).sum())
                hs.addRow(rhs, np.inf, len(idx), np.array(idx, np.int32), np.array(val))
        if not mres.ok or any(r is None or not r.ok for r in sub_res):
            bad = mres if not mres.ok else next(r for r in sub_res if r is not None and not r.ok)
            _apply(state, inst, t_idx, replace(mres, x_mw=np.zeros(len(t_idx)), status=bad.status,
                                               bid_price=np.zeros(len(t_idx))), "tso_master", response)
            return
        eta_sum = float(mres.z[master.eta_cols].sum())
        t_res = replace(mres, objective_eur=mres.objective_eur - eta_sum, x_mw=mres.x_mw[:len(t_idx)],
                        bid_price=mres.bid_price[:len(t_idx)], flow_slack_mw=mres.flow_slack_mw)
        _apply(state, inst, t_idx, t_res, "tso_master", response)
        for (a, a_idx, _, _, prog), res in zip(subs, sub_res):
            _apply(state, inst, a_idx, res, f"dso_{a}", response, prog)
