"""Random linear T&D models, base states, bid books and market instances for market tests.

Reusable by any test (``from random_instances import random_case``): everything is drawn from
a ``numpy.random.Generator`` so that a failing case is reproduced by its seed.

Conventions follow :mod:`smartnet_gym.grid.linear`:
- transmission: a connected graph (a random spanning tree plus, if meshed, a few extra
  branches) with one or two fixed (slack) buses; some branches unlimited (``np.inf``);
- distribution: per area a radial *forest* (1..3 trees, each hanging off a random T bus,
  possibly a slack bus); D positions are optionally shuffled so that parents need not come
  before their children; areas are numbered 0..n-1 in ``lin.feeders`` order (the order of the
  per-area tuples in :class:`BaseState` and of ``area_need_mw``);
- pandapower bus ids: T bus i → 1000 + i, D bus k of area a → 2000 + 100 a + k.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from smartnet_gym.grid.linear import BaseState, DCModel, FeederModel, LinearTD
from smartnet_gym.market.bids import BidBook, StorageState
from smartnet_gym.market.stages import MarketInstance

T_ID0 = 1000
D_ID0 = 2000


def random_dc(
    rng: np.random.Generator,
    n_t: int,
    meshed: bool = True,
    n_fixed: int = 1,
    p_unlimited: float = 0.2,
) -> DCModel:
    """Connected DC model: random spanning tree + (if meshed) up to n_t extra branches."""
    edges = set()
    order = rng.permutation(n_t)
    for i in range(1, n_t):
        a, b = int(order[i]), int(order[rng.integers(0, i)])
        edges.add((min(a, b), max(a, b)))
    if meshed and n_t >= 3:
        for _ in range(int(rng.integers(1, n_t + 1))):
            a, b = rng.choice(n_t, 2, replace=False)
            edges.add((int(min(a, b)), int(max(a, b))))
    edges = sorted(edges)
    n_br = len(edges)
    fr = np.array([e[0] for e in edges], int)
    to = np.array([e[1] for e in edges], int)
    flip = rng.random(n_br) < 0.5  # branch orientation must not matter
    fr, to = np.where(flip, to, fr), np.where(flip, fr, to)
    fixed = np.zeros(n_t, bool)
    fixed[rng.choice(n_t, min(n_fixed, n_t), replace=False)] = True
    rating = rng.uniform(10.0, 80.0, n_br)
    rating[rng.random(n_br) < p_unlimited] = np.inf
    return DCModel(
        bus=T_ID0 + np.arange(n_t),
        fixed=fixed,
        branch_from=fr,
        branch_to=to,
        branch_b_mw=rng.uniform(200.0, 3000.0, n_br),
        rating_mw=rating,
        branch_element=tuple(("line", i) for i in range(n_br)),
    )


def random_feeder(
    rng: np.random.Generator,
    area: int,
    n_d: int,
    n_t: int,
    n_trees: int = 1,
    shuffle: bool = True,
    p_unlimited: float = 0.2,
) -> FeederModel:
    """A radial forest of ``n_d`` D buses in ``n_trees`` trees, each fed from a random T bus."""
    n_trees = max(1, min(n_trees, n_d))
    parent = np.full(n_d, -1)
    for k in range(n_trees, n_d):  # topological order first: roots 0..n_trees-1
        parent[k] = int(rng.integers(0, k))
    root_t = np.full(n_d, -1)
    root_t[:n_trees] = rng.integers(0, n_t, n_trees)
    if shuffle:
        perm = rng.permutation(n_d)  # new position of old bus k is inv[k]
        inv = np.empty(n_d, int)
        inv[perm] = np.arange(n_d)
        parent = np.where(parent[perm] >= 0, inv[np.maximum(parent[perm], 0)], -1)
        root_t = root_t[perm]
    r = rng.uniform(0.0005, 0.006, n_d)
    x = r * rng.uniform(0.5, 2.0, n_d)
    rating = rng.uniform(5.0, 40.0, n_d)
    rating[rng.random(n_d) < p_unlimited] = np.inf
    return FeederModel(
        area=area,
        bus=D_ID0 + 100 * area + np.arange(n_d),
        parent=parent,
        root_t=root_t,
        r_pu=r,
        x_pu=x,
        rating_mva=rating,
        v_min_pu=np.full(n_d, 0.95),
        v_max_pu=np.full(n_d, 1.05),
        branch_element=tuple(("line", 100 * area + k) for k in range(n_d)),
    )


def assemble(dc: DCModel, feeders: tuple[FeederModel, ...]) -> LinearTD:
    """LinearTD with the bus → (area, position) maps filled."""
    bus_area = {int(b): -1 for b in dc.bus}
    bus_pos = {int(b): i for i, b in enumerate(dc.bus)}
    for f in feeders:
        for k, b in enumerate(f.bus):
            bus_area[int(b)] = f.area
            bus_pos[int(b)] = k
    net_bus = np.r_[dc.bus, *[f.bus for f in feeders]].astype(np.int64)
    return LinearTD(
        dc=dc, feeders=tuple(feeders), bus_area=bus_area, bus_pos=bus_pos, net_bus=net_bus
    )


def random_linear_td(
    rng: np.random.Generator,
    n_t: tuple[int, int] = (2, 6),
    n_feeders: tuple[int, int] = (1, 3),
    n_d: tuple[int, int] = (1, 6),
    meshed: bool | None = None,
) -> LinearTD:
    """A random radial/meshed T model with 1..3 random feeders (inclusive ranges)."""
    nt = int(rng.integers(n_t[0], n_t[1] + 1))
    mesh = bool(rng.random() < 0.7) if meshed is None else meshed
    dc = random_dc(rng, nt, meshed=mesh, n_fixed=1 if nt < 4 or rng.random() < 0.7 else 2)
    nf = int(rng.integers(n_feeders[0], n_feeders[1] + 1))
    feeders = []
    for a in range(nf):
        nd = int(rng.integers(n_d[0], n_d[1] + 1))
        trees = 1 if rng.random() < 0.6 else int(rng.integers(1, 4))
        feeders.append(
            random_feeder(rng, a, nd, nt, n_trees=trees, shuffle=bool(rng.random() < 0.5))
        )
    return assemble(dc, tuple(feeders))


def random_base(
    rng: np.random.Generator, lin: LinearTD, horizon: int, stress: float = 0.3
) -> BaseState:
    """Base flows/voltages; with probability ``stress`` per element close to or beyond a limit."""

    def around(limit: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        lim = np.where(np.isfinite(limit), limit, 50.0)
        val = rng.uniform(-0.7, 0.7, shape) * lim
        hot = rng.random(shape) < stress
        val[hot] = (
            rng.choice([-1.0, 1.0], int(hot.sum()))
            * rng.uniform(0.9, 1.1, int(hot.sum()))
            * np.broadcast_to(lim, shape)[hot]
        )
        return val

    h = horizon
    t_flow = around(lin.dc.rating_mw[None, :], (h, lin.dc.n_branch))
    d_p, d_q, d_w = [], [], []
    for f in lin.feeders:
        nd = f.n_bus
        d_p.append(around(f.rating_mva[None, :], (h, nd)) * 0.9)
        d_q.append(
            rng.uniform(-0.3, 0.3, (h, nd))
            * np.where(np.isfinite(f.rating_mva), f.rating_mva, 20.0)
        )
        v = rng.uniform(0.97, 1.03, (h, nd))
        hot = rng.random((h, nd)) < stress
        v[hot] = rng.choice([0.945, 0.955, 1.045, 1.055], int(hot.sum()))
        d_w.append(v**2)
    return BaseState(t_flow_mw=t_flow, d_p_mw=tuple(d_p), d_q_mvar=tuple(d_q), d_w_pu2=tuple(d_w))


def all_buses(lin: LinearTD) -> np.ndarray:
    return np.array(sorted(lin.bus_area), int)


def d_buses(lin: LinearTD) -> np.ndarray:
    """Pandapower ids of all distribution buses."""
    return np.array(sorted(b for b, a in lin.bus_area.items() if a >= 0), int)


def random_book(
    rng: np.random.Generator,
    lin: LinearTD,
    horizon: int,
    n_bids: int,
    n_storage: int = 0,
    p_zero_qty: float = 0.05,
    storage_buses: np.ndarray | None = None,
) -> BidBook:
    """Random sell bids at random buses, directions and periods; optional batteries.

    Every battery gets one up and one down bid per period at one random bus (of
    ``storage_buses`` if given).
    """
    buses = all_buses(lin)
    bus = rng.choice(buses, n_bids)
    direction = rng.choice([-1, 1], n_bids)
    period = rng.integers(0, horizon, n_bids)
    qty = rng.uniform(0.0, 30.0, n_bids)
    qty[rng.random(n_bids) < p_zero_qty] = 0.0
    price = np.round(rng.uniform(0.0, 200.0, n_bids), 2)
    storage = np.full(n_bids, -1)
    st = StorageState.empty()
    if n_storage:
        sb, sd, sp_, sq, spr, sid = [], [], [], [], [], []
        for j in range(n_storage):
            b = rng.choice(buses if storage_buses is None else np.asarray(storage_buses))
            for t in range(horizon):
                for d in (1, -1):
                    sb.append(b)
                    sd.append(d)
                    sp_.append(t)
                    sq.append(rng.uniform(1.0, 20.0))
                    spr.append(round(float(rng.uniform(0.0, 100.0)), 2))
                    sid.append(j)
        bus = np.r_[bus, sb]
        direction = np.r_[direction, sd]
        period = np.r_[period, sp_]
        qty = np.r_[qty, sq]
        price = np.r_[price, spr]
        storage = np.r_[storage, sid]
        energy = rng.uniform(0.5, 6.0, n_storage)
        st = StorageState(energy, energy * rng.uniform(0.0, 1.0, n_storage))
    return BidBook.from_arrays(
        bus=bus,
        direction=direction,
        period=period,
        qty_mw=qty,
        price_eur_per_mwh=price,
        storage=storage,
        storage_state=st,
    )


def random_needs(
    rng: np.random.Generator, lin: LinearTD, book: BidBook, horizon: int, feasible: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(need_mw (H,), area_need_mw (n_areas, H)); if ``feasible`` the need is within the offers."""
    up = np.zeros(horizon)
    dn = np.zeros(horizon)
    np.add.at(up, book.period[book.direction > 0], book.qty_mw[book.direction > 0])
    np.add.at(dn, book.period[book.direction < 0], book.qty_mw[book.direction < 0])
    share = rng.uniform(-0.8, 0.8, horizon) if feasible else rng.uniform(-1.5, 1.5, horizon)
    need = np.where(share >= 0, share * up, share * dn)
    need = np.round(need, 3)
    n_a = len(lin.feeders)
    w = rng.uniform(-0.5, 0.5, (n_a, horizon))
    area_need = np.round(w * need[None, :] / max(n_a, 1), 3)
    return need, area_need


def random_instance(
    rng: np.random.Generator,
    lin: LinearTD,
    horizon: int | None = None,
    n_bids: int | None = None,
    n_storage: int | None = None,
    stress: float = 0.3,
    feasible: bool = True,
    storage_buses: np.ndarray | None = None,
) -> MarketInstance:
    """Random book (4..29 bids, a battery in 30 % of cases), base state and needs; H in 1..4."""
    h = int(rng.integers(1, 5)) if horizon is None else horizon
    nb = int(rng.integers(4, 30)) if n_bids is None else n_bids
    ns = int(rng.random() < 0.3) if n_storage is None else n_storage
    book = random_book(rng, lin, h, nb, n_storage=ns, storage_buses=storage_buses)
    need, area_need = random_needs(rng, lin, book, h, feasible)
    return MarketInstance(
        book=book, base=random_base(rng, lin, h, stress), need_mw=need, area_need_mw=area_need
    )


def revalue(
    rng: np.random.Generator, lin: LinearTD, inst: MarketInstance, stress: float = 0.3
) -> MarketInstance:
    """Same bid layout (so cached programs are re-solved, not rebuilt), new values everywhere."""
    b = inst.book
    n = len(b)
    qty = rng.uniform(0.0, 30.0, n)
    price = np.round(rng.uniform(0.0, 200.0, n), 2)
    st = b.storage_state
    if len(st):
        st = StorageState(st.energy_mwh, st.energy_mwh * rng.uniform(0.0, 1.0, len(st)))
    book = replace(
        b.with_values(qty_mw=qty, price_eur_per_mwh=price),
        true_cost_eur_per_mwh=price.copy(),
        storage_state=st,
    )
    h = inst.horizon
    need, area_need = random_needs(rng, lin, book, h)
    return MarketInstance(
        book=book, base=random_base(rng, lin, h, stress), need_mw=need, area_need_mw=area_need
    )


@dataclass(frozen=True)
class RandomCase:
    seed: int
    lin: LinearTD
    inst: MarketInstance


def random_case(seed: int, **kw) -> RandomCase:
    """A whole random case (network + instance) from one seed."""
    rng = np.random.default_rng(seed)
    lin = random_linear_td(rng)
    return RandomCase(seed, lin, random_instance(rng, lin, **kw))


__all__ = [
    "RandomCase",
    "all_buses",
    "assemble",
    "d_buses",
    "random_base",
    "random_book",
    "random_case",
    "random_dc",
    "random_feeder",
    "random_instance",
    "random_linear_td",
    "random_needs",
    "revalue",
]
