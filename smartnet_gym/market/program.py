"""The clearing program: one sparse explicit LP/QP, assembled once, re-solved with new values.

    minimise  Δt Σ c·x − Δt Σ wtp·y + ε Σ (x² + y²) + Δt Σ penalty·slack
    s.t.      balance per group and period:  Σ_g s·x − Σ s_y·y + b⁺ − b⁻ = need
              DC transmission (non-slack buses):  B θ + R ΔP_root − A_T s·x = 0
              soft T limits:  Bf θ − v⁺ + v⁻ ∈ [−F − f0, F − f0]
              LinDistFlow per modelled area:  C ΔP − A_D s·x = 0,  M Δw − σ Δw_root + 2 r ΔP = 0 (Δw in milli-pu²)
              feeder roots (``root_coupling``, forced measures):  Δw_root − G B θ = 0  (G = d(V²)/dP of the roots)
              soft D limits:  ΔP ∈ ±P̄ − P0,  Δw ∈ [v_min² − w0, v_max² − w0]   (with slacks)
              storage:  Δt Σ_{τ≤t} s·x ∈ [soc − E, soc];  optional aggregate limits per area
              0 ≤ x ≤ qty, 0 ≤ y ≤ buy qty

The matrix is constant for a given bid layout and :class:`ProgramSpec`; prices, quantities,
needs, base flows and limits only move the cost vector and the bounds. The same
:class:`ProgramMatrices` feed every backend (HiGHS fast path, CVXPY+OSQP reference), so they
solve the identical program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
import scipy.sparse as sp

from smartnet_gym.config import MarketConfig
from smartnet_gym.grid.linear import BaseState, LinearTD
from smartnet_gym.market.bids import BidBook, BuyBook
from smartnet_gym.market.penalties import (
    balance_penalty,
    flow_penalty,
    root_gains,
    transmission_flow_penalty,
    voltage_penalty,
)

DT_H = 0.25  # market time unit [h]
W_SCALE = 1e3  # squared-voltage columns are in milli-pu² so that all rows are O(1) (OSQP scaling)


@dataclass(frozen=True)
class ProgramSpec:
    """What a clearing stage models.

    ``groups``: balance groups; each is a tuple of area indices (``-1`` = transmission bids)
    whose bids count in that group's balance row, or an array of bid indices (used to balance
    each feeding tree of an area separately); ``()`` means no balance row.
    ``interface_limits``: areas whose aggregate net activation per period gets a limit row.
    ``group_areas``: the area each group belongs to, for bid-index groups that may be empty
    (default: inferred from the group's areas or bids).
    """

    transmission: bool
    areas: tuple[int, ...]
    groups: tuple[tuple[int, ...] | np.ndarray, ...] = ()
    interface_limits: tuple[int, ...] = ()
    group_areas: tuple[int, ...] = ()
    root_coupling: bool = False     # move the feeder roots with the T injections (LinearTD.root_coupling)


@dataclass(frozen=True)
class FeederRows:
    """Where the distribution limit rows sit, so their bounds are filled for all areas at once.

    Feeder nodes are concatenated over the program's ``areas`` in order (as the base state's
    per-area arrays are, when stacked along their node axis)."""

    areas: tuple[int, ...]
    lim_node: np.ndarray        # (Σ n_lim,) concatenated node of each flow-limited feeding branch
    lim_rating_mva: np.ndarray  # (Σ n_lim,)
    lim_rows: np.ndarray        # (H, Σ n_lim) d_limit row of each (period, limited branch)
    v_min2: np.ndarray          # (Σ n_d,) squared voltage limits
    v_max2: np.ndarray
    v_rows: np.ndarray          # (H, Σ n_d) v_limit row of each (period, node)


def _feeder_rows(lin: LinearTD, areas: tuple[int, ...], d_lim: list[tuple[int, np.ndarray]],
                 rows: dict[str, slice], h: int) -> FeederRows:
    feeders = {f.area: f for f in lin.feeders}
    lim = dict(d_lim)
    offset = np.cumsum([0] + [feeders[a].n_bus for a in areas])
    cat = (lambda xs, dtype=float: np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype))
    no_rows = slice(0, 0)                      # an area without limited branches has no d_limit rows
    lim_rows = [np.arange(rows.get(f"d_limit{a}", no_rows).start, rows.get(f"d_limit{a}", no_rows).stop
                          ).reshape(h, -1) for a in areas]
    v_rows = [np.arange(rows[f"v_limit{a}"].start, rows[f"v_limit{a}"].stop).reshape(h, -1) for a in areas]
    return FeederRows(
        areas, cat([offset[k] + lim[a] for k, a in enumerate(areas)], np.int64),
        cat([feeders[a].rating_mva[lim[a]] for a in areas]),
        np.hstack(lim_rows) if areas else np.zeros((h, 0), np.int64),
        cat([feeders[a].v_min_pu ** 2 for a in areas]), cat([feeders[a].v_max_pu ** 2 for a in areas]),
        np.hstack(v_rows) if areas else np.zeros((h, 0), np.int64))


@dataclass
class ProgramMatrices:
    """Constraint matrix, column/row blocks and the map from market data to bounds."""

    a: sp.csc_matrix
    n_col: int
    n_row: int
    horizon: int
    x: slice                     # bid activations
    y: slice                     # buy activations
    bounded: np.ndarray          # columns with finite bounds (x, y, slacks)
    col_lb: np.ndarray           # constant lower bounds of all columns (-inf for free)
    col_ub: np.ndarray           # constant upper bounds (x/y overwritten per solve)
    cost: np.ndarray             # constant cost (penalties); x/y costs overwritten per solve
    quad: np.ndarray             # diagonal of the quadratic term (ε on x and y)
    row_lo: np.ndarray           # constant row bounds; parametric blocks overwritten per solve
    row_hi: np.ndarray
    row_range: np.ndarray        # True for range rows (limits), False for equalities
    rows: dict[str, slice] = field(default_factory=dict)
    cols: dict[str, slice] = field(default_factory=dict)
    # where each bid injects: row index of its nodal constraint per bid (-1 if none)
    bid_node_row: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    bid_group_row: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    # parametric data maps
    t_lim_branch: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    t_lim_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))  # flow limit the clearing keeps [MW]
    d_lim: list[tuple[int, np.ndarray]] = field(default_factory=list)   # (area, branch idx)
    d_area: list[int] = field(default_factory=list)
    storage_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    group_members: list[np.ndarray] = field(default_factory=list)       # bid idx per group
    limit_areas: tuple[int, ...] = ()
    col_area: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # owner area of each column (−1 = T)
    col_period: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # period of each column
    group_area: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # area of each balance group
    feeder_rows: FeederRows | None = None
    forced_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, int))   # x columns of forced-measure options

    @property
    def eq_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.row_range)


def _block(n_rows: int, n_cols: int) -> sp.coo_matrix:
    return sp.coo_matrix((n_rows, n_cols))


def build_matrices(lin: LinearTD, book: BidBook, spec: ProgramSpec, horizon: int, cfg: MarketConfig,
                   n_buy: int = 0, buy_direction: np.ndarray | None = None,
                   buy_period: np.ndarray | None = None) -> ProgramMatrices:
    """Assemble the program for this bid layout (quantities and prices are filled at solve time)."""
    h = horizon
    n_b = len(book)
    s = book.direction.astype(float)
    area, pos = lin.locate(book.bus)
    per = book.period
    dc = lin.dc
    feeders = {f.area: f for f in lin.feeders}
    # root T position of each D bus (for D bids injected straight into T)
    d_root = {f.area: f.root_of_bus() for f in lin.feeders}

    cols: dict[str, slice] = {}
    lb_parts, ub_parts, cost_parts = [], [], []
    n_col = 0

    def add_cols(name: str, n: int, lb: float, ub: float, cost: float | np.ndarray) -> slice:
        nonlocal n_col
        cols[name] = slice(n_col, n_col + n)
        n_col += n
        lb_parts.append(np.full(n, lb))
        ub_parts.append(np.full(n, ub))
        cost_parts.append(np.broadcast_to(np.asarray(cost, float), (n,)).copy())
        return cols[name]

    removal = bool(book.forced_rows.any())   # forced measures are options: slacks last
    pen_bal = balance_penalty(cfg, removal) * DT_H
    pen_flow = flow_penalty(cfg, removal) * DT_H
    cx = add_cols("x", n_b, 0.0, 0.0, 0.0)
    cy = add_cols("y", n_buy, 0.0, 0.0, 0.0)
    n_free = int((~dc.fixed).sum()) if spec.transmission else 0
    free_pos = np.full(dc.n_bus, -1)
    free_pos[~dc.fixed] = np.arange(int((~dc.fixed).sum()))
    if spec.transmission:
        add_cols("theta", h * n_free, -np.inf, np.inf, 0.0)
    for a in spec.areas:
        nd = feeders[a].n_bus
        add_cols(f"dp{a}", h * nd, -np.inf, np.inf, 0.0)
        add_cols(f"dw{a}", h * nd, -np.inf, np.inf, 0.0)
    roots, root_dw = _coupled_roots(lin, spec, feeders)
    if len(roots):
        add_cols("dwroot", h * len(roots), -np.inf, np.inf, 0.0)
    n_groups = len(spec.groups)
    add_cols("bal", 2 * h * n_groups, 0.0, np.inf, pen_bal)
    t_lim = np.flatnonzero(np.isfinite(dc.rating_mw)) if spec.transmission else np.zeros(0, int)
    # two slacks per (period, branch), periods outermost: each branch's own price
    pen_t = transmission_flow_penalty(dc, cfg, removal)[t_lim] * DT_H
    add_cols("tslack", 2 * h * len(t_lim), 0.0, np.inf, np.repeat(np.tile(pen_t, h), 2))
    d_lim = []
    gains = root_gains(lin)
    for a in spec.areas:
        f = feeders[a]
        lim = np.flatnonzero(np.isfinite(f.rating_mva))
        d_lim.append((a, lim))
        add_cols(f"dslack{a}", 2 * h * len(lim), 0.0, np.inf, pen_flow)
        # two slacks per (period, bus), periods outermost: each bus's own price
        pen_v = voltage_penalty(f, cfg, gains[a], removal) * DT_H / W_SCALE
        add_cols(f"vslack{a}", 2 * h * f.n_bus, 0.0, np.inf, np.repeat(np.tile(pen_v, h), 2))

    rows: dict[str, slice] = {}
    n_row = 0
    lo_parts, hi_parts, range_parts = [], [], []
    mats = []
    range_blocks = ("t_limit", "d_limit", "v_limit", "storage", "iface")

    def add_rows(name: str, m: sp.coo_matrix, lo: np.ndarray, hi: np.ndarray) -> slice:
        nonlocal n_row
        rows[name] = slice(n_row, n_row + m.shape[0])
        n_row += m.shape[0]
        mats.append(m.tocoo())
        lo_parts.append(np.asarray(lo, float))
        hi_parts.append(np.asarray(hi, float))
        range_parts.append(np.full(m.shape[0], name.startswith(range_blocks)))
        return rows[name]

    def coo(r, c, v, nr):
        return sp.coo_matrix((np.asarray(v, float), (np.asarray(r, int), np.asarray(c, int))),
                             shape=(nr, n_col))

    # balance groups
    group_members = []
    bid_group_row = np.full(n_b, -1)
    if n_groups:
        r, c, v = [], [], []
        bal = cols["bal"]
        for g, members in enumerate(spec.groups):
            # forced measures are outside every balance: their imbalance is left to aFRR
            idx = members if isinstance(members, np.ndarray) else np.flatnonzero(np.isin(area, members))
            idx = idx[~book.forced_rows[idx]]
            group_members.append(idx)
            r += list(g * h + per[idx]); c += list(cx.start + idx); v += list(s[idx])
            rr = g * h + np.arange(h)
            r += list(rr) + list(rr)
            c += list(bal.start + 2 * rr) + list(bal.start + 2 * rr + 1)
            v += [1.0] * h + [-1.0] * h
        if n_buy:
            # buyers sit in the first group (CS_E has one global group)
            r += list(buy_period); c += list(cy.start + np.arange(n_buy)); v += list(-buy_direction)
        sl = add_rows("balance", coo(r, c, v, n_groups * h), np.zeros(n_groups * h), np.zeros(n_groups * h))
        for g, idx in enumerate(group_members):
            bid_group_row[idx] = sl.start + g * h + per[idx]

    bid_node_row = np.full(n_b, -1)
    # DC transmission
    if spec.transmission:
        bmat = dc.susceptance_matrix()[~dc.fixed][:, ~dc.fixed].tocoo()
        th = cols["theta"]
        r, c, v = [], [], []
        for t in range(h):
            r.append(t * n_free + bmat.row); c.append(th.start + t * n_free + bmat.col); v.append(bmat.data)
        # bids injecting into T: T bids, and D bids of areas not modelled (lossless via their root)
        tpos = np.full(n_b, -1)
        tpos[area == -1] = pos[area == -1]
        for a, root in d_root.items():
            if a not in spec.areas:
                k = area == a
                tpos[k] = root[pos[k]]
        inj = np.flatnonzero((tpos >= 0) & (free_pos[np.maximum(tpos, 0)] >= 0))
        rr = per[inj] * n_free + free_pos[tpos[inj]]
        r.append(rr); c.append(cx.start + inj); v.append(-s[inj])
        # flow from T into modelled feeders at their roots
        for a in spec.areas:
            f = feeders[a]
            kroot = np.flatnonzero((f.parent < 0) & (free_pos[np.maximum(f.root_t, 0)] >= 0))
            dp = cols[f"dp{a}"]
            for t in range(h):
                r.append(t * n_free + free_pos[f.root_t[kroot]]); c.append(dp.start + t * f.n_bus + kroot)
                v.append(np.ones(len(kroot)))
        sl = add_rows("t_node", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), h * n_free),
                      np.zeros(h * n_free), np.zeros(h * n_free))
        bid_node_row[inj] = sl.start + rr
        # flow limits
        bf = dc.flow_matrix()[t_lim][:, ~dc.fixed].tocoo()
        nl = len(t_lim)
        ts = cols["tslack"]
        r, c, v = [], [], []
        for t in range(h):
            r.append(t * nl + bf.row); c.append(th.start + t * n_free + bf.col); v.append(bf.data)
            rr = t * nl + np.arange(nl)
            r += [rr, rr]; c += [ts.start + 2 * rr, ts.start + 2 * rr + 1]; v += [-np.ones(nl), np.ones(nl)]
        if nl:
            add_rows("t_limit", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), h * nl),
                     np.zeros(h * nl), np.zeros(h * nl))
        if len(roots):
            # the roots' voltage: Δw_root = dw_dp · Δp with Δp = B θ the net T injections
            g = sp.coo_matrix(W_SCALE * root_dw[:, ~dc.fixed] @ dc.susceptance_matrix()[~dc.fixed][:, ~dc.fixed])
            wr = cols["dwroot"]
            nr = len(roots)
            r, c, v = [], [], []
            for t in range(h):
                r += [t * nr + g.row, t * nr + np.arange(nr)]
                c += [th.start + t * n_free + g.col, wr.start + t * nr + np.arange(nr)]
                v += [-g.data, np.ones(nr)]
            add_rows("d_volt_root", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), h * nr),
                     np.zeros(h * nr), np.zeros(h * nr))
    # LinDistFlow per modelled area
    for a in spec.areas:
        f = feeders[a]
        nd = f.n_bus
        dp, dw = cols[f"dp{a}"], cols[f"dw{a}"]
        cm = f.incidence().tocoo()
        mm = f.voltage_matrix().tocoo()
        r, c, v = [], [], []
        k = np.flatnonzero(area == a)
        for t in range(h):
            r.append(t * nd + cm.row); c.append(dp.start + t * nd + cm.col); v.append(cm.data)
        rr = per[k] * nd + pos[k]
        r.append(rr); c.append(cx.start + k); v.append(-s[k])
        sl = add_rows(f"d_node{a}", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), h * nd),
                      np.zeros(h * nd), np.zeros(h * nd))
        bid_node_row[k] = sl.start + rr
        r, c, v = [], [], []
        for t in range(h):
            r.append(t * nd + mm.row); c.append(dw.start + t * nd + mm.col); v.append(mm.data)
            r.append(t * nd + np.arange(nd)); c.append(dp.start + t * nd + np.arange(nd))
            v.append(2 * W_SCALE * f.r_pu)
        top = np.flatnonzero((f.parent < 0) & np.isin(f.root_t, roots))
        if len(top):                    # a tree's top follows its root: Δw_top = scale · Δw_root − …
            j = np.searchsorted(roots, f.root_t[top])
            scale = lin.root_coupling.top_scale[a][top]
            for t in range(h):
                r.append(t * nd + top); c.append(cols["dwroot"].start + t * len(roots) + j); v.append(-scale)
        add_rows(f"d_volt{a}", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), h * nd),
                 np.zeros(h * nd), np.zeros(h * nd))
        lim = dict(d_lim)[a]
        nl = len(lim)
        ds, vs = cols[f"dslack{a}"], cols[f"vslack{a}"]
        r, c, v = [], [], []
        for t in range(h):
            rr = t * nl + np.arange(nl)
            r += [rr, rr, rr]; c += [dp.start + t * nd + lim, ds.start + 2 * rr, ds.start + 2 * rr + 1]
            v += [np.ones(nl), -np.ones(nl), np.ones(nl)]
        if nl:
            add_rows(f"d_limit{a}", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), h * nl),
                     np.zeros(h * nl), np.zeros(h * nl))
        r, c, v = [], [], []
        for t in range(h):
            rr = t * nd + np.arange(nd)
            r += [rr, rr, rr]; c += [dw.start + rr, vs.start + 2 * rr, vs.start + 2 * rr + 1]
            v += [np.ones(nd), -np.ones(nd), np.ones(nd)]
        add_rows(f"v_limit{a}", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), h * nd),
                 np.zeros(h * nd), np.zeros(h * nd))
    # storage state of charge: Δt Σ_{τ≤t} s x ∈ [soc − E, soc]
    storage_ids = np.unique(book.storage[book.storage >= 0])
    if len(storage_ids):
        r, c, v = [], [], []
        for j, sid in enumerate(storage_ids):
            k = np.flatnonzero(book.storage == sid)
            for t in range(h):
                kk = k[per[k] <= t]
                r.append(np.full(len(kk), j * h + t)); c.append(cx.start + kk); v.append(DT_H * s[kk])
        m = len(storage_ids) * h
        add_rows("storage", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), m),
                 np.zeros(m), np.zeros(m))
    if spec.interface_limits:
        r, c, v = [], [], []
        for j, a in enumerate(spec.interface_limits):
            k = np.flatnonzero(area == a)
            r.append(j * h + per[k]); c.append(cx.start + k); v.append(s[k])
        m = len(spec.interface_limits) * h
        add_rows("iface", coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), m),
                 np.zeros(m), np.zeros(m))

    a_mat = sp.vstack(mats, format="csc") if mats else sp.csc_matrix((0, n_col))
    group_area = _group_areas(spec, area)
    col_area = _column_areas(cols, area, spec, group_area, h, n_col)
    col_period = _column_periods(cols, per, buy_period, h, n_col)
    col_lb = np.concatenate(lb_parts)
    col_ub = np.concatenate(ub_parts)
    quad = np.zeros(n_col)
    quad[cx] = quad[cy] = 2 * cfg.qp_epsilon * DT_H   # ½ zᵀQz with Q = 2εΔt
    return ProgramMatrices(
        a=a_mat, n_col=n_col, n_row=n_row, horizon=h, x=cx, y=cy,
        bounded=np.flatnonzero(np.isfinite(col_lb)), col_lb=col_lb, col_ub=col_ub,
        cost=np.concatenate(cost_parts), quad=quad,
        row_lo=np.concatenate(lo_parts) if lo_parts else np.zeros(0),
        row_hi=np.concatenate(hi_parts) if hi_parts else np.zeros(0),
        row_range=np.concatenate(range_parts) if range_parts else np.zeros(0, bool),
        rows=rows, cols=cols, bid_node_row=bid_node_row, bid_group_row=bid_group_row,
        t_lim_branch=t_lim, t_lim_mw=dc.rating_mw[t_lim] * (1.0 - cfg.flow_reliability_margin_pct / 100.0),
        d_lim=d_lim, d_area=list(spec.areas), storage_ids=storage_ids,
        group_members=group_members, limit_areas=tuple(spec.interface_limits), col_area=col_area,
        col_period=col_period, group_area=group_area,
        feeder_rows=_feeder_rows(lin, tuple(spec.areas), d_lim, rows, h),
        forced_cols=cx.start + np.flatnonzero(book.forced_rows))


def _coupled_roots(lin: LinearTD, spec: ProgramSpec, feeders: dict) -> tuple[np.ndarray, np.ndarray]:
    """Feeder roots whose voltage the program moves with its T injections, and their ``dw_dp`` rows.

    Only a program that asks for it (``spec.root_coupling``: the forced measures) and models
    transmission and feeders moves the roots (``lin.root_coupling``); roots the sensitivities
    hold (slack, PV buses) stay held. The market programs hold them: their voltage slacks are
    priced bus by bus, so relief that lowers a whole area's voltage through its HV root would be
    valued at the sum over its buses, above what removing those violations together costs."""
    rc = lin.root_coupling
    if rc is None or not spec.root_coupling or not spec.transmission or not spec.areas:
        return np.zeros(0, np.int64), np.zeros((0, lin.dc.n_bus))
    tops = [feeders[a].root_t[feeders[a].parent < 0] for a in spec.areas]
    k = np.flatnonzero(np.isin(rc.roots, np.concatenate(tops)) & np.any(rc.dw_dp != 0.0, axis=1))
    return rc.roots[k], rc.dw_dp[k]


def block_indices(blocks: dict[str, slice], prefixes: tuple[str, ...]) -> np.ndarray:
    """Indices of the row or column blocks whose names start with ``prefixes``."""
    parts = [np.arange(sl.start, sl.stop) for name, sl in blocks.items() if name.startswith(prefixes)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _column_areas(cols: dict[str, slice], bid_area: np.ndarray, spec: ProgramSpec, group_area: np.ndarray,
                  h: int, n_col: int) -> np.ndarray:
    """Owner area of every column: a bid's area, an area's network and slack columns, the area of a
    single-area balance group's slacks; −1 for transmission, buyers and multi-area groups."""
    out = np.full(n_col, -1)
    out[cols["x"]] = bid_area
    for a in spec.areas:
        for name in (f"dp{a}", f"dw{a}", f"dslack{a}", f"vslack{a}"):
            out[cols[name]] = a
    out[cols["bal"]] = np.repeat(group_area, 2 * h)
    return out


def _column_periods(cols: dict[str, slice], bid_period: np.ndarray, buy_period: np.ndarray | None, h: int,
                    n_col: int) -> np.ndarray:
    """Period of every column, from the block layouts of :func:`build_matrices`: state blocks are
    period-major (``t·n + i``), slack blocks pairs of period-major rows (``2(t·n + i) + side``),
    balance slacks pairs per group-major row (``2(g·h + t) + side``)."""
    out = np.zeros(n_col, int)
    out[cols["x"]] = bid_period
    if buy_period is not None and len(buy_period):
        out[cols["y"]] = buy_period
    for name, sl in cols.items():
        n = sl.stop - sl.start
        k = np.arange(n)
        if n == 0:
            continue
        if name.startswith(("theta", "dp", "dw")):
            out[sl] = k // (n // h)
        elif name.startswith(("tslack", "dslack", "vslack")):
            out[sl] = (k // 2) // (n // (2 * h))
        elif name == "bal":
            out[sl] = (k // 2) % h
    return out


def _group_areas(spec: ProgramSpec, bid_area: np.ndarray) -> np.ndarray:
    """The one area each balance group belongs to (its areas or its bids' areas), −1 if several."""
    if spec.group_areas:
        return np.asarray(spec.group_areas, int)
    out = np.full(len(spec.groups), -1)
    for g, members in enumerate(spec.groups):
        areas = np.unique(bid_area[members]) if isinstance(members, np.ndarray) else np.unique(members)
        if len(areas) == 1:
            out[g] = areas[0]
    return out


@dataclass(frozen=True)
class ProgramInputs:
    """Values of one clearing: everything that changes between solves."""

    price: np.ndarray                # (n_b,) EUR/MWh
    qty: np.ndarray                  # (n_b,) MW
    needs: np.ndarray                # (n_groups, H) MW, per balance group
    base: BaseState | None           # base flows/voltages (None if no network modelled)
    storage_soc_mwh: np.ndarray      # (n_storage_in_book,)
    storage_energy_mwh: np.ndarray
    storage_committed_mwh: np.ndarray | None = None   # (n_storage_in_book, H) by earlier stages
    limits_lo: np.ndarray | None = None   # (n_limit_areas, H) MW
    limits_hi: np.ndarray | None = None
    buy: BuyBook | None = None


def write_feeder_bounds(fr: FeederRows, base: BaseState, lo: np.ndarray, hi: np.ndarray) -> None:
    """Bounds of the feeder flow and voltage rows around ``base``, written into ``lo``/``hi``
    (one numba pass over the areas' concatenated nodes)."""
    def cat(parts: tuple[np.ndarray, ...]) -> np.ndarray:
        return np.concatenate([parts[a] for a in fr.areas], axis=1)

    _feeder_bounds(cat(base.d_p_mw), cat(base.d_q_mvar), cat(base.d_w_pu2), fr.lim_node, fr.lim_rating_mva,
                   fr.v_min2, fr.v_max2, W_SCALE, fr.lim_rows, fr.v_rows, lo, hi)


@numba.njit(cache=True)
def _feeder_bounds(p0, q0, w0, lim, rating, v_min2, v_max2, w_scale, lim_rows, v_rows, lo, hi):
    """Flow rows ``±√(S² − Q₀²) − P₀`` (the P room left by the base Q), voltage rows
    ``w_scale · (v² limit − w₀)``, per period, into the rows ``lim_rows``/``v_rows`` of lo and hi."""
    for t in range(p0.shape[0]):
        for k in range(len(lim)):
            j = lim[k]
            pmax = np.sqrt(max(rating[k] ** 2 - q0[t, j] ** 2, 0.0))
            lo[lim_rows[t, k]] = -pmax - p0[t, j]
            hi[lim_rows[t, k]] = pmax - p0[t, j]
        for j in range(w0.shape[1]):
            lo[v_rows[t, j]] = w_scale * (v_min2[j] - w0[t, j])
            hi[v_rows[t, j]] = w_scale * (v_max2[j] - w0[t, j])


def fill_vectors(m: ProgramMatrices, lin: LinearTD, inp: ProgramInputs,
                 out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cost, column bounds and row bounds for one solve (no Python loop over bids).

    ``out``: the (cost, upper bound, row lo, row hi) arrays of an earlier call for ``m``, filled
    again in place (every entry that depends on the inputs is written on every call), which
    saves four copies of program-sized arrays per solve."""
    h = m.horizon
    c, ub, lo, hi = out if out is not None else (m.cost.copy(), m.col_ub.copy(), m.row_lo.copy(), m.row_hi.copy())
    c[m.x] = DT_H * inp.price
    ub[m.x] = inp.qty
    if inp.buy is not None and len(inp.buy):
        c[m.y] = -DT_H * inp.buy.wtp_eur_per_mwh
        ub[m.y] = inp.buy.qty_mw
    else:
        c[m.y], ub[m.y] = m.cost[m.y], m.col_ub[m.y]
    if "balance" in m.rows:
        need = np.asarray(inp.needs, float).reshape(-1)
        lo[m.rows["balance"]] = hi[m.rows["balance"]] = need
    if "t_limit" in m.rows:
        f0 = inp.base.t_flow_mw[:, m.t_lim_branch]
        fmax = m.t_lim_mw[None, :]
        lo[m.rows["t_limit"]] = (-fmax - f0).reshape(-1)
        hi[m.rows["t_limit"]] = (fmax - f0).reshape(-1)
    fr = m.feeder_rows
    if fr is not None and fr.areas:
        write_feeder_bounds(fr, inp.base, lo, hi)
    if "storage" in m.rows:
        soc = inp.storage_soc_mwh[m.storage_ids]
        e = inp.storage_energy_mwh[m.storage_ids]
        used = (np.zeros((len(soc), h)) if inp.storage_committed_mwh is None
                else inp.storage_committed_mwh[m.storage_ids])
        lo[m.rows["storage"]] = ((soc - e)[:, None] - used).reshape(-1)
        hi[m.rows["storage"]] = (soc[:, None] - used).reshape(-1)
    if "iface" in m.rows:
        lo[m.rows["iface"]] = np.minimum(np.asarray(inp.limits_lo).reshape(-1), 0.0)
        hi[m.rows["iface"]] = np.maximum(np.asarray(inp.limits_hi).reshape(-1), 0.0)
    return c, m.col_lb, ub, lo, hi
