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
per-period functions φ_(a,t)(P_t, battery_t), and each round returns one cut per area and period.
The master's first estimate of φ_(a,t) is the DSO's merit order without its network limits
(its D bids at their own prices at the tree's root, a lower bound of φ): when no D limit binds,
round 1 is the centralized optimum (1 round instead of 9 at 1,000 bids on the default preset).
Round 1 runs on the fast path (``screening.py``); later rounds on a HiGHS master in bid space
with the cuts (``cut_master.py``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

import numpy as np

from smartnet_gym.market.bids import BidBook
from smartnet_gym.market.cut_master import CutMasterBackend, ExplicitCutMaster
from smartnet_gym.market.penalties import balance_penalty, flow_penalty
from smartnet_gym.market.program import DT_H, ProgramSpec
from smartnet_gym.market.screening import ScreenedBackend
from smartnet_gym.market.solvers import HighsBackend
from smartnet_gym.market.stages import (
    Stage,
    T,
    apply_stage,
    bid_areas,
    book_stage,
    in_areas,
    period_sums,
    queue_shift,
    remaining_book,
)

MAX_ROUNDS = 200
REL_GAP = 1e-9


@dataclass(frozen=True)
class _Layout:
    """What a bid layout fixes in the decomposition: trees, the master's D bids, batteries, cut pattern."""

    d_idx: np.ndarray          # book rows of the D bids (of the modelled areas)
    d_area: np.ndarray         # their areas
    groups: tuple[np.ndarray, ...]   # per feeding tree: positions (in d_idx) of its bids
    tree_area: tuple[int, ...]
    root_bus: np.ndarray       # (n_trees,) T bus feeding each tree
    y_pos: np.ndarray          # positions (in d_idx) of the D bids the master sees at their root
    y_tree: np.ndarray
    y_per: np.ndarray
    y_dir: np.ndarray
    s_pos: np.ndarray          # positions (in d_idx) of the battery bids
    s_tree: np.ndarray
    s_per: np.ndarray
    s_dir: np.ndarray
    y_cut: np.ndarray          # cut (area index · H + period) of each master D bid
    s_cut: np.ndarray          # and of each battery bid
    order: np.ndarray          # cut entries (cuts' η, then D bids, then batteries) by cut

    @property
    def n_trees(self) -> int:
        return len(self.groups)


def _starts(cut: np.ndarray, n_cuts: int) -> np.ndarray:
    """CSR row starts of cut entries sorted by ``cut``."""
    return np.r_[0, np.cumsum(np.bincount(cut, minlength=n_cuts))[:-1]].astype(np.int32)


class DecentralizedJoint(Stage):
    """Benders decomposition of the joint program by distribution area and period."""

    name = "decentralized_joint"

    def __init__(self, lin, cfg, backend):
        # HiGHS only: the DSOs' programs on the configured HiGHS path; the TSO's master gets its cuts
        # added to a HiGHS model in place (bid space, or the explicit program: ``_cuts``)
        super().__init__(lin, cfg, backend if backend in ("highs", "highs-full") else "highs")
        # a DSO must deliver the exchange the TSO cleared: missing it costs more than any network
        # slack, otherwise the shortfall would act as a fake flexible unit at the interface (with
        # the per-bus voltage prices a MW of relief is worth at most the flow penalty)
        flat = cfg.voltage_penalty_eur_per_pu2h
        worst = max(balance_penalty(cfg), flow_penalty(cfg), 0.1 * flat * cfg.penalty_scale if flat else 0.0)
        self.sub_cfg = cfg.model_copy(update={"balance_penalty_eur_per_mwh": 100 * worst / cfg.penalty_scale})
        # the master is an LP (the DSOs' programs carry any quadratic regularisation): its D bids'
        # linear cost is then a lower bound of φ that the cuts can raise exactly
        self.master_cfg = cfg.model_copy(update={"qp_epsilon": 0.0})
        self.rounds = 0
        self.gap = np.nan
        self._layouts: dict[tuple, _Layout] = {}
        # the cut model of each master program (gone with the program when the cache drops it)
        self._cut_models: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def reset(self) -> None:
        super().reset()       # the master (HiGHS with its cuts) is dropped, the DSOs' programs reset
        self.rounds = 0
        self.gap = np.nan

    def _cuts(self, master, n_cuts: int):
        """The master's cut model: the bid-space one for an LP with line limits, else HiGHS's
        explicit program with η columns and cuts added in place (built once per program)."""
        cuts = self._cut_models.get(master)
        if cuts is None:
            if isinstance(master.backend, ScreenedBackend):
                master.backend = CutMasterBackend(master.m, n_cuts)
                cuts = master.backend
            else:
                if not isinstance(master.backend, HighsBackend):
                    master.backend = HighsBackend(master.m)
                cuts = ExplicitCutMaster(master.backend, n_cuts)
            self._cut_models[master] = cuts
        return cuts

    def _trees(self, book: BidBook, area_idx: np.ndarray, a: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Root T positions of area ``a`` and, per root, the positions (in area_idx) of its bids."""
        f = next(f for f in self.lin.feeders if f.area == a)
        root = f.root_of_bus()
        roots = np.unique(f.root_t[f.parent < 0])
        _, pos = self.lin.locate(book.bus[area_idx])
        bid_root = root[pos]
        return roots, [np.flatnonzero(bid_root == r) for r in roots]

    def _layout(self, book: BidBook, h: int) -> _Layout:
        """The decomposition's structure for this bid layout (built once, like the programs)."""
        key = (h, book.layout_key())
        lay = self._layouts.get(key)
        if lay is not None:
            return lay
        if len(self._layouts) > 8:
            self._layouts.clear()
        area = bid_areas(self.lin, book)
        areas = tuple(f.area for f in self.lin.feeders)
        d_idx = in_areas(area, areas)
        d_area = area[d_idx]
        d_storage = book.storage[d_idx] >= 0
        groups, tree_area, roots_t, group_area_idx = [], [], [], []
        for ai, a in enumerate(areas):
            a_pos = np.flatnonzero(d_area == a)
            roots, members = self._trees(book, d_idx[a_pos], a)
            for r, mem in zip(roots, members):
                groups.append(a_pos[mem])
                tree_area.append(a)
                roots_t.append(r)
                group_area_idx.append(ai)
        tree_of = np.full(len(d_idx), -1)
        for g, mem in enumerate(groups):
            tree_of[mem] = g
        per, direction = book.period[d_idx], book.direction[d_idx].astype(float)
        y_pos = np.flatnonzero(~d_storage & (tree_of >= 0))
        s_pos = np.flatnonzero(d_storage)
        g_area = np.asarray(group_area_idx, int)
        y_cut = g_area[tree_of[y_pos]] * h + per[y_pos]
        s_cut = g_area[tree_of[s_pos]] * h + per[s_pos]
        n_cuts = len(areas) * h
        order = np.argsort(np.r_[np.arange(n_cuts), y_cut, s_cut], kind="stable")
        lay = _Layout(d_idx, d_area, tuple(groups), tuple(tree_area),
                      np.asarray(self.lin.dc.bus[np.asarray(roots_t, int)], int), y_pos, tree_of[y_pos], per[y_pos],
                      direction[y_pos], s_pos, tree_of[s_pos], per[s_pos], direction[s_pos], y_cut, s_cut, order)
        self._layouts[key] = lay
        return lay

    def run(self, inst, state, response):
        book, h = inst.book, inst.horizon
        if book.forced_rows.any():
            raise ValueError("MarketInstance.forced: CS_D's decomposition (market.variant 'decentralized') "
                             "exchanges the DSOs' bids only and cannot hold forced measures as options; "
                             "clear it with forced=None or with variant 'centralized'")
        area = bid_areas(self.lin, book)
        t_idx = np.flatnonzero(area == T)
        t_book = remaining_book(book, t_idx, state, inst.horizon)
        areas = tuple(f.area for f in self.lin.feeders)
        lay = self._layout(book, h)
        # the DSOs' programs: independent, so solved as one block-diagonal program and split per
        # area (as in LocalClearing); one balance group per feeding tree (root T bus) of each area
        d_book = remaining_book(book, lay.d_idx, state, inst.horizon)
        subs = self.program(d_book, ProgramSpec(False, areas, lay.groups, group_areas=lay.tree_area), h,
                            tag="subs", cfg=self.sub_cfg)
        # the master: T bids, and the D bids and batteries at their tree's root
        y_pos, s_pos, s_dir = lay.y_pos, lay.s_pos, lay.s_dir
        ny, nt = len(y_pos), len(t_idx)
        y_bus = lay.root_bus[lay.y_tree]
        master_book = BidBook.from_arrays(
            bus=np.r_[t_book.bus, y_bus, lay.root_bus[lay.s_tree]],
            direction=np.r_[t_book.direction, lay.y_dir, s_dir], period=np.r_[t_book.period, lay.y_per, lay.s_per],
            qty_mw=np.r_[t_book.qty_mw, d_book.qty_mw[y_pos], d_book.qty_mw[s_pos]],
            price_eur_per_mwh=np.r_[t_book.price_eur_per_mwh, d_book.price_eur_per_mwh[y_pos], d_book.price_eur_per_mwh[s_pos]],
            unit=np.r_[t_book.unit, d_book.unit[y_pos], d_book.unit[s_pos]],
            storage=np.r_[t_book.storage, np.full(ny, -1), d_book.storage[s_pos]], storage_state=t_book.storage_state)
        n_cuts = len(areas) * h
        spec = ProgramSpec(True, (), ((T,),))
        # round 1 is the master without cuts: the D bids at their own prices, i.e. every DSO's cost
        # without its network limits, a lower bound of φ (the fast path, as CS_A's TSO program);
        # when the DSOs can deliver its exchanges at that cost it is the centralized optimum
        master = self.program(master_book, spec, h, tag="master", cfg=self.master_cfg)
        need = inst.need_mw[None, :]
        mres = master.solve(master_book, state.base, need)
        y_cost = DT_H * d_book.price_eur_per_mwh[y_pos]
        y_cell = lay.y_tree * h + lay.y_per         # (tree, period) of each master D bid and battery
        s_cell = lay.s_tree * h + lay.s_per
        cuts = cut_prog = sub_res = None
        for rnd in range(MAX_ROUNDS):
            if not mres.ok:
                break
            x_y, x_s = mres.x_mw[nt:nt + ny], mres.x_mw[nt + ny:]
            # the exchange the TSO asks of each tree per period: its D bids and its batteries
            p_hat = (period_sums(lay.y_tree, lay.y_per, lay.y_dir * x_y, lay.n_trees, h)
                     + period_sums(lay.s_tree, lay.s_per, s_dir * x_s, lay.n_trees, h))
            # the master's estimate of φ_(a,t): its D bids' cost plus the cuts' excess ζ over it
            est = np.bincount(lay.y_cut, weights=y_cost * x_y, minlength=n_cuts).astype(float)
            if cuts is not None:
                est += cuts.eta_of(mres.z)
            sub_res = subs.solve(d_book, state.base, p_hat, pin=(s_pos, x_s))
            if not sub_res.ok:
                self.rounds, self.gap = rnd + 1, np.inf
                break
            phi = subs.area_period_costs(sub_res, s_pos)[np.asarray(areas) + 1].reshape(-1)   # (n_areas·H,)
            lb = mres.objective_eur
            ub = lb - est.sum() + phi.sum()
            self.rounds, self.gap = rnd + 1, ub - lb
            if ub - lb <= REL_GAP * max(1.0, abs(ub)) + 1e-7:
                break
            if cuts is None:
                # from round 2 on: the master on HiGHS with ζ columns and the cuts (``cut_master.py``)
                cut_prog = self.program(master_book, spec, h, tag="cut_master", cfg=self.master_cfg)
                cuts = self._cuts(cut_prog, n_cuts)
                cuts.drop_cuts()            # the previous clearing's cuts need not hold for this one
                x0 = cut_prog.m.x.start
                entry_col = np.r_[cuts.eta_col(np.arange(n_cuts)),
                                  cuts.bid_col(x0 + nt + np.arange(ny + len(s_pos)))][lay.order]
                entry_cut = np.r_[np.arange(n_cuts), lay.y_cut, lay.s_cut][lay.order]
            # ∂φ/∂P̂ per tree and period [EUR/MW] (balance duals); a pinned battery moves only
            # the network rows: ∂φ/∂x = s (g − Δt · locational price at its bus)
            g = (sub_res.uniform_price * DT_H).reshape(-1)
            gy = lay.y_dir * g[y_cell]
            gs = s_dir * (g[s_cell] - DT_H * sub_res.bid_price[s_pos])
            # per (area, period), η = c'y + ζ ≥ φ̂ + g (y − ŷ) + h (x_s − x̂_s):
            # ζ + Σ (c_i − g_i) y_i − Σ h x_s ≥ φ̂ − Σ g ŷ − Σ h x̂_s
            rhs = (phi - np.bincount(lay.y_cut, weights=gy * x_y, minlength=n_cuts)
                   - np.bincount(lay.s_cut, weights=gs * x_s, minlength=n_cuts))
            val = np.r_[np.ones(n_cuts), y_cost - gy, -gs][lay.order]
            nz = val != 0.0
            cuts.add_cuts(rhs, _starts(entry_cut[nz], n_cuts), entry_col[nz], val[nz])
            mres = cut_prog.solve(master_book, state.base, need) if rnd == 0 else cut_prog.resolve(need, master_book)
        if not mres.ok or sub_res is None or not sub_res.ok:
            bad = mres if not mres.ok else sub_res
            apply_stage(state, inst, t_idx, replace(mres, x_mw=np.zeros(nt), status=bad.status,
                                                    bid_price=np.zeros(nt)), "tso_master", response)
            return
        battery_eur = DT_H * float(master_book.price_eur_per_mwh[nt + ny:] @ mres.x_mw[nt + ny:])
        t_res = replace(mres, objective_eur=mres.objective_eur - float(est.sum()) - battery_eur, x_mw=mres.x_mw[:nt],
                        bid_price=mres.bid_price[:nt], flow_slack_mw=mres.flow_slack_mw)
        apply_stage(state, inst, t_idx, t_res, "tso_master", response)
        parts = subs.area_parts(sub_res, lay.d_area)
        for a, part in zip(areas, parts):
            book_stage(state, inst, lay.d_idx[lay.d_area == a], part, f"dso_{a}", subs)
        queue_shift(state, inst, response, lay.d_idx, sub_res.x_mw)
