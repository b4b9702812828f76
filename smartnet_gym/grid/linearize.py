"""Build the linear T&D model from a pandapower net and evaluate it around an AC operating point.

The transmission part (every in-service, supplied bus that belongs to no distribution area) becomes
a DC model (:class:`~smartnet_gym.grid.linear.DCModel`); each distribution area becomes a
LinDistFlow forest (:class:`~smartnet_gym.grid.linear.FeederModel`) hanging off transmission buses
through its interface transformers. Topology is read from pandapower's own internal case
(``net._ppc`` and ``net._pd2ppc_lookups``) after a base-case ``runpp``, so closed bus-bus switches
are fused, open line/trafo switches disconnect their branch, and transformer taps and phase shifts
are the ones pandapower uses.

Modelling choices (SPEC §3):

* **Units.** Powers in MW / Mvar; impedances in pu on a **1 MVA** base (``r_ohm / vn_kv²``), so
  that ``Δw = -2 (r ΔP + x ΔQ)`` with ΔP in MW gives squared voltages in pu². Transformer
  impedances are referred to the low-voltage side (pandapower's π-model convention).
* **DC model.** Branch susceptance ``b = 1 / (x · τ)`` [MW/rad] with the off-nominal ratio τ;
  resistance, shunts and phase shifts only enter through the base flows taken from the AC point.
  External grids (and slack generators) are ``fixed`` (Δθ = 0) and absorb any imbalance.
* **LinDistFlow.** Flows are positive downstream; feeder branch *k* feeds D bus *k*. Parallel
  branches between the same two fused nodes (the two 110/20 kV substation transformers behind a
  closed busbar coupler) are replaced by their parallel equivalent ``z_eq = 1 / Σ 1/z_i`` with
  rating ``min_i rating_i · |z_i| / |z_eq|`` (the rating at which the first member reaches its own
  limit; twice one rating for an identical pair). Without the equivalent a spanning tree drops one
  transformer and the voltage error reaches 0.055 pu (STACK-NOTES §2). Δw at a T root is 0; D
  losses are ignored, so a D injection change reaches T unchanged at its root bus.
* **Ratings.** Lines ``√3 · vn_kv · max_i_ka · df · parallel · max_loading_percent / 100``;
  transformers ``sn_mva · parallel · max_loading_percent / 100`` (MW for T, MVA for D).

Injection vectors (``inj_p_mw``, ``dp_bus``, …) are indexed by **position in** ``net.bus.index``
(stored as :attr:`LinearTD.net_bus`); :func:`bus_positions` and :func:`bus_vector` map element
values onto that layout, :func:`bus_injections` reads the set-points of a net (generation positive,
loads negative; external grids excluded). Buses outside the model (out of service or unsupplied)
are ignored.

The operating point is an AC power flow: :func:`point_from_net` reads it into a
:class:`LinearizationPoint`; :func:`base_state` returns point + linear increments for other
injections, :func:`activation_response` the increments alone. Both run one numba kernel over
structures built once per model and cached (the ``splu`` factors of the reduced susceptance
matrix, the D trees as one parent array): every env step evaluates the model twice, and the dozen
small sparse products it replaces cost ~0.1 ms a call (H = 4 on the default 845-bus system:
~0.025 ms now).

**Transmission voltage coupling.** FeederModel keeps Δw = 0 at its T root. With the OLTCs fixed,
that is the largest error source: a 100 MW T activation next to a substation moves the HV voltage
by up to 0.014 pu, and the whole feeder with it (measured with :mod:`.validate`: 0.013–0.015 pu
max error with stiff roots, 0.003 pu in normal operation with the coupling). The point therefore
also carries the AC sensitivity of each feeder root's squared voltage to T injections
(``root_dw_dp``/``root_dw_dq``, from the Jacobian of the point's power flow, ~10 ms), which
:func:`base_state` and :func:`activation_response` (given the point) add to every D bus of the
tree. A clearing program that wants the same accuracy can add those rows to its root equations.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from smartnet_gym.grid.linear import BaseState, DCModel, FeederModel, LinearTD

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

    from smartnet_gym.grid.system import Area

__all__ = [
    "LinearIncrement",
    "LinearizationPoint",
    "activation_response",
    "base_state",
    "build_linear_td",
    "bus_aggregation",
    "bus_injections",
    "bus_positions",
    "bus_vector",
    "point_from_net",
    "run_ac",
]

# pypower column indices (pandapower.pypower.idx_bus / idx_brch); fixed by the format.
_BUS_TYPE, _BUS_NONE = 1, 4
_F_BUS, _T_BUS, _BR_R, _BR_X, _TAP, _BR_STATUS = 0, 1, 2, 3, 8, 10


def run_ac(net: pandapowerNet, **kwargs: Any) -> None:
    """``pp.runpp`` without pandapower's numba JIT (no controllers are run).

    Its ~2.5 s compile in every process (nothing cached) costs more than it saves: the env's AC
    steps run on :class:`~smartnet_gym.grid.fast_ac.FastAC`, not on ``runpp``."""
    import pandapower as pp

    kwargs.setdefault("numba", False)
    pp.runpp(net, **kwargs)


# --------------------------------------------------------------------------- bus vectors


def bus_positions(net: pandapowerNet, buses: np.ndarray | Sequence[int]) -> np.ndarray:
    """Position of each pandapower bus id in ``net.bus.index``; raises KeyError on an unknown id."""
    buses = np.asarray(buses, dtype=np.int64)
    pos = net.bus.index.get_indexer(buses)
    if (pos < 0).any():
        raise KeyError(f"bus {int(buses[np.flatnonzero(pos < 0)[0]])} is not in net.bus")
    return pos


def bus_aggregation(net: pandapowerNet, buses: np.ndarray | Sequence[int],
                    weights: np.ndarray | None = None) -> sp.csr_matrix:
    """(n_bus × n_elements) matrix that sums element values onto their buses (net.bus.index
    order), each element scaled by its weight (default 1)."""
    pos = bus_positions(net, buses)
    w = np.ones(len(pos)) if weights is None else np.asarray(weights, dtype=np.float64)
    return sp.csr_matrix((w, (pos, np.arange(len(pos)))), shape=(len(net.bus), len(pos)))


def bus_vector(net: pandapowerNet, buses: np.ndarray | Sequence[int], values: np.ndarray) -> np.ndarray:
    """Sum element values onto buses: ``values`` (..., n_el) at pandapower ``buses`` → (..., n_bus).

    The result is indexed by position in ``net.bus.index`` (the layout of every injection vector of
    this module). Use the sign convention of injections: generation positive, load negative.
    """
    values = np.asarray(values, dtype=np.float64)
    agg = bus_aggregation(net, buses)
    n_el = agg.shape[1]
    if values.shape[-1] != n_el:
        raise ValueError(f"values has {values.shape[-1]} elements in its last axis, buses has {n_el}")
    flat = values.reshape(-1, n_el)
    out = np.asarray((agg @ flat.T).T)
    return out.reshape(*values.shape[:-1], len(net.bus))


def bus_injections(net: pandapowerNet) -> tuple[np.ndarray, np.ndarray]:
    """Active and reactive set-point injections per bus (n_bus,) [MW, Mvar], net.bus.index order.

    Sums in-service ``sgen`` (+), ``load`` (−), ``storage`` (− charging), ``gen`` (+p only),
    ``ward``/``xward`` (−) and ``shunt`` (−, nominal at 1 pu), each times its ``scaling``/``step``.
    External grids are not injections (they are the slack).
    """
    n = len(net.bus)
    p = np.zeros(n)
    q = np.zeros(n)
    idx = net.bus.index

    def add(table: str, sign: float, pcol: str | None, qcol: str | None, scale: str | None) -> None:
        if table not in net or len(net[table]) == 0:
            return
        df = net[table]
        on = df["in_service"].to_numpy(dtype=bool) if "in_service" in df else np.ones(len(df), bool)
        if not on.any():
            return
        pos = idx.get_indexer(df["bus"].to_numpy())[on]
        s = df[scale].to_numpy(dtype=float)[on] if scale and scale in df else 1.0
        if pcol:
            p[:] += sign * np.bincount(pos, weights=df[pcol].to_numpy(dtype=float)[on] * s, minlength=n)
        if qcol:
            q[:] += sign * np.bincount(pos, weights=df[qcol].to_numpy(dtype=float)[on] * s, minlength=n)

    add("sgen", 1.0, "p_mw", "q_mvar", "scaling")
    add("load", -1.0, "p_mw", "q_mvar", "scaling")
    add("storage", -1.0, "p_mw", "q_mvar", "scaling")
    add("gen", 1.0, "p_mw", None, "scaling")
    add("ward", -1.0, "ps_mw", "qs_mvar", None)
    add("xward", -1.0, "ps_mw", "qs_mvar", None)
    add("shunt", -1.0, "p_mw", "q_mvar", "step")
    return p, q


# --------------------------------------------------------------------------- model building


def _ratings(net: pandapowerNet, kind: str, idx: np.ndarray) -> np.ndarray:
    """Flow limits [MW or MVA] of pandapower lines/trafos (np.inf where no limit is given)."""
    if len(idx) == 0:
        return np.zeros(0)
    df = net[kind].loc[idx]
    mlp = df["max_loading_percent"].to_numpy(dtype=float) if "max_loading_percent" in df else np.full(len(df), 100.0)
    mlp = np.where(np.isnan(mlp), 100.0, mlp)
    par = df["parallel"].to_numpy(dtype=float) if "parallel" in df else 1.0
    if kind == "line":
        vn = net.bus.loc[df["from_bus"].to_numpy(), "vn_kv"].to_numpy(dtype=float)
        dfac = df["df"].to_numpy(dtype=float) if "df" in df else 1.0
        out = np.sqrt(3.0) * vn * df["max_i_ka"].to_numpy(dtype=float) * dfac * par * mlp / 100.0
    else:
        out = df["sn_mva"].to_numpy(dtype=float) * par * mlp / 100.0
    return np.where(np.isfinite(out) & (out > 0), out, np.inf)


def _raise_loop(area_name: str, adj: dict[int, list[tuple[int, int]]], a: int, b: int,
                closing: list[tuple[str, int]], group_elems: list[list[tuple[str, int]]],
                node_bus: dict[int, int]) -> None:
    """Find the tree path a→b and raise a ValueError naming the loop it closes with `closing`."""
    prev: dict[int, tuple[int, int]] = {a: (-1, -1)}
    stack = [a]
    while stack:
        u = stack.pop()
        if u == b:
            break
        for v, g in adj[u]:
            if v not in prev:
                prev[v] = (u, g)
                stack.append(v)
    elems: list[tuple[str, int]] = list(closing)
    u = b
    while prev.get(u, (-1, -1))[0] >= 0:
        u, g = prev[u]
        elems += group_elems[g]
    names = ", ".join(f"{k} {i}" for k, i in elems)
    raise ValueError(f"area {area_name!r} is not radial: loop through buses {node_bus[a]} and "
                     f"{node_bus[b]} over {names}")


def build_linear_td(net: pandapowerNet, areas: Sequence[Area], *, v_min_pu: float | None = None,
                    v_max_pu: float | None = None, run: bool = True, **runpp_kwargs: Any) -> LinearTD:
    """Build the linear T&D model (DC transmission + one LinDistFlow forest per area).

    :param net: the T&D net (taps as set; no controllers are run).
    :param areas: distribution areas, in index order (``area.index`` = 0, 1, …); each gives its own
        pandapower buses (``area.buses``). Every other in-service bus is transmission.
    :param v_min_pu: lower voltage limit of every D bus [pu]; None: each bus's ``min_vm_pu``
        (the tightest of buses fused by switches), 0.95 where the net gives none.
    :param v_max_pu: upper voltage limit of every D bus [pu]; None: ``max_vm_pu``, else 1.05.
    :param run: run the base-case AC power flow first (needed unless ``net._ppc`` is current).
    :param runpp_kwargs: passed to ``pandapower.runpp``.
    :raises ValueError: an area is not radial (names the area and a loop), is fed from two
        transmission nodes, spans two areas, a transmission island has no slack, or the net holds
        branch types this model does not cover (trafo3w, impedance, …).
    """
    if v_min_pu is not None and v_max_pu is not None and not v_min_pu < v_max_pu:
        raise ValueError(f"v_min_pu ({v_min_pu}) must be below v_max_pu ({v_max_pu})")
    areas = tuple(areas)
    for i, a in enumerate(areas):
        if int(a.index) != i:
            raise ValueError(f"areas must be given in index order 0..{len(areas) - 1}; "
                             f"position {i} holds area {a.name!r} with index {a.index}")
    if run:
        run_ac(net, **runpp_kwargs)
    ppc = net._ppc
    lookups = net._pd2ppc_lookups
    base_mva = float(np.real(ppc["baseMVA"]))
    bus_ids = net.bus.index.to_numpy(dtype=np.int64)
    n_net = len(bus_ids)
    n_node = ppc["bus"].shape[0]
    node_of = np.asarray(lookups["bus"])[bus_ids].astype(np.int64)
    btype = np.real(ppc["bus"][:, _BUS_TYPE]).astype(int)
    ok = node_of >= 0
    active = net.bus["in_service"].to_numpy(dtype=bool) & ok
    active[ok] &= btype[node_of[ok]] != _BUS_NONE

    # area of each pandapower bus / fused node
    bus_area = np.full(n_net, -1, dtype=np.int64)
    for a in areas:
        pos = net.bus.index.get_indexer(np.asarray(a.buses, dtype=np.int64))
        if (pos < 0).any():
            raise ValueError(f"area {a.name!r}: bus {int(np.asarray(a.buses)[pos < 0][0])} is not in net.bus")
        clash = pos[bus_area[pos] >= 0]
        if len(clash):
            raise ValueError(f"bus {int(bus_ids[clash[0]])} belongs to two areas "
                             f"({areas[bus_area[clash[0]]].name!r} and {a.name!r})")
        bus_area[pos] = a.index
    node_area = np.full(n_node, -2, dtype=np.int64)   # -2: not a pandapower node of the model
    act = np.flatnonzero(active)
    for i in act:  # consistency of fused groups (a closed switch between a T and a D bus)
        nd = node_of[i]
        if node_area[nd] == -2:
            node_area[nd] = bus_area[i]
        elif node_area[nd] != bus_area[i]:
            other = act[(node_of[act] == nd) & (bus_area[act] != bus_area[i])][0]
            raise ValueError(f"buses {int(bus_ids[other])} and {int(bus_ids[i])} are fused by closed "
                             "switches but belong to different areas/levels")
    # representative pandapower bus of each node: the first in net.bus order
    node_rep = np.full(n_node, -1, dtype=np.int64)
    for i in act[::-1]:
        node_rep[node_of[i]] = bus_ids[i]
    # voltage limits per node: the arguments, else the tightest bus limits of the fused group
    node_vmin = np.full(n_node, -np.inf)
    node_vmax = np.full(n_node, np.inf)
    for arr, lim, col, default, red in ((node_vmin, v_min_pu, "min_vm_pu", 0.95, np.maximum),
                                        (node_vmax, v_max_pu, "max_vm_pu", 1.05, np.minimum)):
        if lim is not None:
            arr[:] = float(lim)
            continue
        vals = net.bus[col].to_numpy(dtype=float) if col in net.bus else np.full(n_net, np.nan)
        red.at(arr, node_of[act], np.where(np.isnan(vals[act]), default, vals[act]))

    # branches of the internal case
    br = ppc["branch"]
    rows: list[np.ndarray] = []
    kinds: list[str] = []
    for kind, (s, e) in lookups["branch"].items():
        on = np.real(br[s:e, _BR_STATUS]) > 0
        if kind not in ("line", "trafo"):
            if on.any():
                raise ValueError(f"build_linear_td supports lines and 2-winding trafos only; the net "
                                 f"has in-service {kind!r} branches")
            continue
        rows.append(np.arange(s, e))
        kinds += [kind] * (e - s)
    rows_a = np.concatenate(rows) if rows else np.zeros(0, int)
    kind_a = np.array(kinds, dtype=object)
    elem_a = np.empty(len(rows_a), dtype=np.int64)
    for kind, (s, e) in lookups["branch"].items():
        if kind in ("line", "trafo"):
            elem_a[kind_a == kind] = net[kind].index.to_numpy()
    f_node = np.real(br[rows_a, _F_BUS]).astype(np.int64)
    t_node = np.real(br[rows_a, _T_BUS]).astype(np.int64)
    r = np.real(br[rows_a, _BR_R]) / base_mva      # pu on 1 MVA base
    x = np.real(br[rows_a, _BR_X]) / base_mva
    tap = np.real(br[rows_a, _TAP])
    tap = np.where(tap == 0, 1.0, tap)
    keep = (np.real(br[rows_a, _BR_STATUS]) > 0) & (node_area[f_node] > -2) & (node_area[t_node] > -2)
    keep &= f_node != t_node
    rating = np.full(len(rows_a), np.inf)
    for kind in ("line", "trafo"):
        k = kind_a == kind
        rating[k] = _ratings(net, kind, elem_a[k])
    fa, ta = node_area[f_node], node_area[t_node]

    # ---- transmission (DC)
    t_nodes = np.flatnonzero(node_area == -1)
    t_pos = np.full(n_node, -1, dtype=np.int64)
    t_pos[t_nodes] = np.arange(len(t_nodes))
    tb = np.flatnonzero(keep & (fa == -1) & (ta == -1))
    if (x[tb] <= 0).any():
        k = tb[x[tb] <= 0][0]
        raise ValueError(f"{kind_a[k]} {elem_a[k]} has a non-positive reactance; the DC model needs x > 0")
    fixed = np.zeros(len(t_nodes), dtype=bool)
    for table, cond in (("ext_grid", None), ("gen", "slack")):
        if table in net and len(net[table]):
            df = net[table]
            sel = df["in_service"].to_numpy(dtype=bool)
            if cond is not None:
                sel &= df[cond].fillna(False).to_numpy(dtype=bool) if cond in df else False
            for b in df["bus"].to_numpy()[sel]:
                nd = lookups["bus"][int(b)]
                if t_pos[nd] < 0:
                    raise ValueError(f"{table} at bus {int(b)} is not a transmission bus")
                fixed[t_pos[nd]] = True
    if len(t_nodes) == 0 or not fixed.any():
        raise ValueError("the transmission part has no external grid (slack)")
    dc = DCModel(
        bus=node_rep[t_nodes],
        fixed=fixed,
        branch_from=t_pos[f_node[tb]],
        branch_to=t_pos[t_node[tb]],
        branch_b_mw=1.0 / (x[tb] * tap[tb]),
        rating_mw=rating[tb],
        branch_element=tuple((str(kind_a[k]), int(elem_a[k])) for k in tb),
    )
    adj = sp.csr_matrix((np.ones(len(tb)), (dc.branch_from, dc.branch_to)), shape=(dc.n_bus, dc.n_bus))
    n_comp, comp = connected_components(adj, directed=False)
    for c in range(n_comp):
        if not fixed[comp == c].any():
            raise ValueError(f"transmission island around bus {int(dc.bus[comp == c][0])} has no "
                             "external grid (slack)")

    # ---- distribution areas (LinDistFlow forests)
    cross = np.flatnonzero(keep & (fa >= 0) & (ta >= 0) & (fa != ta))
    if len(cross):
        k = cross[0]
        raise ValueError(f"{kind_a[k]} {elem_a[k]} connects area {areas[fa[k]].name!r} to area "
                         f"{areas[ta[k]].name!r}; areas must be fed from transmission only")
    feeders = []
    b_area: dict[int, int] = {}
    b_pos: dict[int, int] = {}
    for i in act[bus_area[act] == -1]:
        b_area[int(bus_ids[i])] = -1
        b_pos[int(bus_ids[i])] = int(t_pos[node_of[i]])
    for a in areas:
        f, order = _build_feeder(a, keep, fa, ta, f_node, t_node, r, x, rating, kind_a, elem_a,
                                 node_area, node_rep, t_pos, node_vmin, node_vmax)
        feeders.append(f)
        node_to_pos = {nd: k for k, nd in enumerate(order)}
        for i in act[bus_area[act] == a.index]:
            b_area[int(bus_ids[i])] = int(a.index)
            b_pos[int(bus_ids[i])] = node_to_pos[int(node_of[i])]
    return LinearTD(dc=dc, feeders=tuple(feeders), bus_area=b_area, bus_pos=b_pos,
                    net_bus=bus_ids.copy())


def _build_feeder(a: Area, keep: np.ndarray, fa: np.ndarray, ta: np.ndarray, f_node: np.ndarray,
                  t_node: np.ndarray, r: np.ndarray, x: np.ndarray, rating: np.ndarray,
                  kind_a: np.ndarray, elem_a: np.ndarray, node_area: np.ndarray,
                  node_rep: np.ndarray, t_pos: np.ndarray, node_vmin: np.ndarray,
                  node_vmax: np.ndarray) -> tuple[FeederModel, list[int]]:
    """One area's radial forest: group parallel branches, check radiality, order by BFS."""
    ai = int(a.index)
    nodes = np.flatnonzero(node_area == ai)
    node_bus = {int(nd): int(node_rep[nd]) for nd in nodes}
    internal = np.flatnonzero(keep & (fa == ai) & (ta == ai))
    roots = np.flatnonzero(keep & (((fa == ai) & (ta == -1)) | ((fa == -1) & (ta == ai))))
    # group parallel branches by their (unordered) node pair
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k in internal:
        u, v = int(f_node[k]), int(t_node[k])
        groups[(min(u, v), max(u, v))].append(int(k))
    root_groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k in roots:
        tn, dn = (int(f_node[k]), int(t_node[k])) if fa[k] == -1 else (int(t_node[k]), int(f_node[k]))
        root_groups[(tn, dn)].append(int(k))

    g_keys = list(groups) + list(root_groups)
    g_rows = [groups[k] for k in groups] + [root_groups[k] for k in root_groups]
    g_elems = [[(str(kind_a[k]), int(elem_a[k])) for k in rows] for rows in g_rows]
    n_int = len(groups)
    # radiality of the internal graph (union-find), naming a loop if there is one
    parent_uf = {int(nd): int(nd) for nd in nodes}

    def find(u: int) -> int:
        while parent_uf[u] != u:
            parent_uf[u] = parent_uf[parent_uf[u]]
            u = parent_uf[u]
        return u

    adj: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for g in range(n_int):
        u, v = g_keys[g]
        ru, rv = find(u), find(v)
        if ru == rv:
            _raise_loop(a.name, adj, u, v, g_elems[g], g_elems, node_bus)
        parent_uf[ru] = rv
        adj[u].append((v, g))
        adj[v].append((u, g))
    comp_roots: dict[int, list[int]] = defaultdict(list)
    for g in range(n_int, len(g_keys)):
        comp_roots[find(g_keys[g][1])].append(g)
    comps = sorted({find(int(nd)) for nd in nodes}, key=lambda c: min(
        int(nd) for nd in nodes if find(int(nd)) == c))
    for c in comps:
        rs = comp_roots.get(c, [])
        if not rs:
            raise ValueError(f"area {a.name!r}: bus {node_bus[c]} and its feeder are not fed from "
                             "transmission")
        if len(rs) > 1:
            names = ", ".join(f"{k} {i}" for g in rs for k, i in g_elems[g])
            raise ValueError(f"area {a.name!r} is not radial: one feeder is fed from several "
                             f"transmission nodes (loop through transmission over {names})")

    # BFS order from each root; parents before children
    order: list[int] = []
    parent_node: dict[int, int] = {}
    feed_group: dict[int, int] = {}
    for c in sorted(comps, key=lambda c: g_keys[comp_roots[c][0]]):
        g = comp_roots[c][0]
        tn, dn = g_keys[g]
        parent_node[dn] = -1
        feed_group[dn] = g
        queue = [dn]
        head = 0
        while head < len(queue):
            u = queue[head]
            head += 1
            for v, gg in sorted(adj[u]):
                if v not in parent_node:
                    parent_node[v] = u
                    feed_group[v] = gg
                    queue.append(v)
        order += queue
    pos_of = {nd: k for k, nd in enumerate(order)}
    n = len(order)
    parent = np.array([pos_of[parent_node[nd]] if parent_node[nd] >= 0 else -1 for nd in order],
                      dtype=np.int64)
    root_t = np.array([t_pos[g_keys[feed_group[nd]][0]] if parent_node[nd] < 0 else -1
                       for nd in order], dtype=np.int64)
    rr = np.zeros(n)
    xx = np.zeros(n)
    rat = np.zeros(n)
    label = []
    members = []
    for k, nd in enumerate(order):
        rows = g_rows[feed_group[nd]]
        z = r[rows] + 1j * x[rows]
        if len(rows) == 1:
            zeq, req = z[0], rating[rows[0]]
            label.append((str(kind_a[rows[0]]), int(elem_a[rows[0]])))
        else:
            if np.any(np.abs(z) == 0):
                raise ValueError(f"area {a.name!r}: parallel branches with zero impedance "
                                 f"({g_elems[feed_group[nd]]})")
            zeq = 1.0 / np.sum(1.0 / z)
            req = float(np.min(rating[rows] * np.abs(z) / np.abs(zeq)))
            kinds = {str(kind_a[j]) for j in rows}
            lab = f"{kinds.pop()}_eq" if len(kinds) == 1 else "branch_eq"
            label.append((lab, int(elem_a[rows[0]])))
        rr[k], xx[k], rat[k] = zeq.real, zeq.imag, req
        members.append(tuple(g_elems[feed_group[nd]]))
    order_a = np.asarray(order, dtype=np.int64)
    if n and not np.all(node_vmin[order_a] < node_vmax[order_a]):
        k = int(np.flatnonzero(~(node_vmin[order_a] < node_vmax[order_a]))[0])
        raise ValueError(f"area {a.name!r}: bus {int(node_rep[order_a[k]])} has min_vm_pu "
                         f"{node_vmin[order_a[k]]} >= max_vm_pu {node_vmax[order_a[k]]}")
    f = FeederModel(
        area=ai,
        bus=node_rep[order_a] if n else np.zeros(0, np.int64),
        parent=parent,
        root_t=root_t,
        r_pu=rr,
        x_pu=xx,
        rating_mva=rat,
        v_min_pu=node_vmin[order_a].copy(),
        v_max_pu=node_vmax[order_a].copy(),
        branch_element=tuple(label),
        branch_members=tuple(members),
    )
    return f, order


# --------------------------------------------------------------------------- operating point

_EMPTY = np.zeros((0, 0))


@dataclass(frozen=True)
class LinearizationPoint:
    """AC results of the operating point a :class:`LinearTD` is evaluated around.

    ``t_flow_mw`` (n_t_branch,): P at the ``branch_from`` end of each DC branch (line from-bus,
    trafo HV side). ``d_p_mw``/``d_q_mvar`` per area (n_d,): flows into each feeding branch at its
    parent end (downstream positive; summed over parallel members). ``d_w_pu2`` per area (n_d,):
    squared voltage magnitudes. ``inj_p_mw``/``inj_q_mvar`` (n_bus,): set-point injections of every
    pandapower bus (net.bus.index order, :func:`bus_injections`) at which the point was taken.

    Transmission voltage coupling (optional, empty when not computed): the feeder roots are not
    infinitely stiff. ``root_t`` (n_r,) are the T-model positions feeding any feeder;
    ``root_dw_dp``/``root_dw_dq`` (n_r, n_t) the AC sensitivity of their squared voltage [pu²] to
    an injection of 1 MW / 1 Mvar at each T-model bus (zero at fixed buses), from the Jacobian of
    the point; ``d_root_scale`` per area (n_d,) carries a root's Δw into each D bus of its tree
    (``w_D,top / w_T,root`` at the point, ≈ 1/τ² of the substation transformer). With it,
    ``Δw_k = d_root_scale_k · Δw_root(k) − 2 Σ_path (r ΔP + x ΔQ)``.
    """

    t_flow_mw: np.ndarray
    d_p_mw: tuple[np.ndarray, ...]
    d_q_mvar: tuple[np.ndarray, ...]
    d_w_pu2: tuple[np.ndarray, ...]
    inj_p_mw: np.ndarray
    inj_q_mvar: np.ndarray
    root_t: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    root_dw_dp: np.ndarray = field(default_factory=lambda: _EMPTY)
    root_dw_dq: np.ndarray = field(default_factory=lambda: _EMPTY)
    d_root_scale: tuple[np.ndarray, ...] = ()

    @property
    def has_voltage_coupling(self) -> bool:
        return len(self.root_t) > 0 and self.root_dw_dp.size > 0

    def without_voltage_coupling(self) -> LinearizationPoint:
        """The same point with stiff feeder roots (Δw at a T root = 0, the FeederModel contract)."""
        return replace(self, root_t=np.zeros(0, dtype=np.int64), root_dw_dp=_EMPTY, root_dw_dq=_EMPTY,
                       d_root_scale=())


@dataclass(frozen=True)
class LinearIncrement:
    """Linear response to an injection change (same layout as :class:`BaseState`, increments only).

    Arrays carry a leading axis when the injection change did (H operating points).
    """

    t_flow_mw: np.ndarray
    d_p_mw: tuple[np.ndarray, ...]
    d_q_mvar: tuple[np.ndarray, ...]
    d_w_pu2: tuple[np.ndarray, ...]


class Sensitivity:
    """A bus injection change → T flows, D flows and D squared voltages, by one numba kernel.

    Each bus's change lands on its node: a T node, or a D node that passes it on to the T root of
    its tree (D is lossless). T: one solve with the LU factors of the reduced susceptance matrix
    (Δθ at the free nodes, 0 at the fixed ones), then ``Δf = b (Δθ_from − Δθ_to)``. D:
    ΔP = −(subtree sum of Δp), then Δw_j = Δw_parent(j) − 2 (r_j ΔP_j + x_j ΔQ_j) from the tree tops
    down, plus the point's root voltage coupling.
    """

    def __init__(self, lin: LinearTD) -> None:
        n = len(lin.net_bus)
        if n == 0:
            raise ValueError("LinearTD.net_bus is empty; build the model with build_linear_td")
        self.n_bus = n
        dc = lin.dc
        col_of = {int(b): i for i, b in enumerate(lin.net_bus)}
        # T root and top D bus (tree head) of every D position
        d_root, d_top = [], []
        for f in lin.feeders:
            top = np.arange(f.n_bus)
            for k in range(f.n_bus):
                j = k
                while f.parent[j] >= 0:
                    j = f.parent[j]
                top[k] = j
            d_top.append(top)
            d_root.append(f.root_t[top] if f.n_bus else np.zeros(0, np.int64))
        self.d_top = d_top
        self.d_root_all = np.concatenate(d_root) if d_root else np.zeros(0, np.int64)
        self.roots = np.unique(self.d_root_all)
        self.d_root_idx = np.searchsorted(self.roots, self.d_root_all)
        self.offsets = [0]
        for f in lin.feeders:
            self.offsets.append(self.offsets[-1] + f.n_bus)
        self.n_t, self.n_d = dc.n_bus, self.offsets[-1]
        self._areas = [slice(s, e) for s, e in zip(self.offsets[:-1], self.offsets[1:], strict=True)]
        # node of each net bus: T position, or n_t + D position over all areas; -1 outside the model
        cols = np.array([col_of[b] for b in lin.bus_area], dtype=np.int64)
        area = np.array(list(lin.bus_area.values()), dtype=np.int64)
        pos = np.array([lin.bus_pos[b] for b in lin.bus_area], dtype=np.int64)
        self.node_of = np.full(n, -1, dtype=np.int64)
        self.node_of[cols] = pos + np.where(area < 0, 0, self.n_t + np.asarray(self.offsets)[np.maximum(area, 0)])
        # T: LU factors of B_free (Pr B Pc = L U, sorted CSC columns) and the branch ends
        self.free = np.flatnonzero(~dc.fixed)
        self.factors = _lu_factors(dc.susceptance_matrix()[self.free][:, self.free].tocsc())
        self.branch = (dc.branch_from.astype(np.int64), dc.branch_to.astype(np.int64),
                       dc.branch_b_mw.astype(np.float64))
        # D forest over all areas: global parents, an order with parents first, tree tops' T roots
        parent = [np.where(f.parent >= 0, f.parent + off, -1)
                  for f, off in zip(lin.feeders, self.offsets[:-1], strict=True)]
        self.parent = np.concatenate(parent).astype(np.int64) if parent else np.zeros(0, np.int64)
        depth = np.zeros(self.n_d, dtype=np.int64)
        for j in range(self.n_d):
            a = self.parent[j]
            while a >= 0:
                depth[j] += 1
                a = self.parent[a]
        self.order = np.argsort(depth, kind="stable").astype(np.int64)
        self.tops = np.flatnonzero(self.parent < 0)
        self.top_t = self.d_root_all[self.tops]
        self.r = np.concatenate([f.r_pu for f in lin.feeders]).astype(np.float64) if lin.feeders else np.zeros(0)
        self.x = np.concatenate([f.x_pu for f in lin.feeders]).astype(np.float64) if lin.feeders else np.zeros(0)
        # increments alone (activation_response): zero base values, stiff roots
        zero_d = np.zeros(self.n_d)
        self._zero_base = (np.zeros(n), np.zeros(n), np.zeros(dc.n_branch), zero_d, zero_d, zero_d)
        self._stiff = (False, np.zeros((0, dc.n_bus)), np.zeros((0, dc.n_bus)), zero_d)
        self._points: list[tuple[LinearizationPoint, tuple, tuple]] = []

    def _point_arrays(self, point: LinearizationPoint) -> tuple[tuple, tuple]:
        """The point's base values and root coupling as the kernel reads them, checked against the model.

        Per-area arrays are concatenated; the last few points are kept (a point is immutable and
        each serves several calls)."""
        for pt, base, coupling in self._points:
            if pt is point:
                return base, coupling

        def c(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(a, dtype=np.float64)

        def cat(parts: tuple[np.ndarray, ...]) -> np.ndarray:
            return c(np.concatenate(parts)) if parts else np.zeros(0)

        base = (c(point.inj_p_mw), c(point.inj_q_mvar), c(point.t_flow_mw), cat(point.d_p_mw),
                cat(point.d_q_mvar), cat(point.d_w_pu2))
        if tuple(len(a) for a in base) != (self.n_bus, self.n_bus, len(self.branch[0]), *(self.n_d,) * 3):
            raise ValueError("the point was taken for another model (sizes of its injections or flows differ)")
        coupling = self._stiff
        if point.has_voltage_coupling and len(self.d_root_all):
            coupling = (True, c(point.root_dw_dp), c(point.root_dw_dq), cat(point.d_root_scale))
            if (not np.array_equal(point.root_t, self.roots) or coupling[1].shape != (len(self.roots), self.n_t)
                    or coupling[2].shape != coupling[1].shape or len(coupling[3]) != self.n_d):
                raise ValueError("the point's voltage coupling was computed for another model")
        self._points = [(point, base, coupling), *self._points[:3]]
        return base, coupling

    def apply(self, p: np.ndarray, q: np.ndarray | None, point: LinearizationPoint | None = None,
              around_point: bool = False) -> tuple[np.ndarray, ...]:
        """p, q (H, n_bus) → T flows (H, n_br), P, Q, w (H, Σ n_d); q None: no reactive change.

        ``around_point``: p, q are injections and the result is the point plus the increments
        (:func:`base_state`); else they are changes and the result the increments alone (the point,
        if any, only gives the root coupling)."""
        base, coupling = self._zero_base, self._stiff
        if point is not None and (around_point or point.has_voltage_coupling):
            point_base, coupling = self._point_arrays(point)
            if around_point:
                base = point_base
        return _linear_state(p, p if q is None else q, q is not None, *base, self.node_of, self.n_t,
                             *self.factors, self.free, *self.branch, self.parent, self.order, self.tops,
                             self.top_t, self.r, self.x, *coupling, self.d_root_idx)

    def split(self, arr: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple([arr[..., s] for s in self._areas])


@numba.njit(cache=True)
def _linear_state(p, q, has_q, p0, q0, t0, dp0, dq0, dw0, node_of, n_t, l_ptr, l_idx, l_val,
                  u_ptr, u_idx, u_val, perm_r, perm_c, free, br_from, br_to, br_b, parent, order, tops,
                  top_t, r, x, coupled, dw_dp, dw_dq, scale, root_idx):
    """Base values (t0, dp0, dq0, dw0) + the linear increments of each row of p − p0, q − q0.

    Node arrays are (H, n); loops over the periods run innermost where the index arithmetic of a
    node or factor entry is shared (tree sweeps, LU), outermost where the rows are contiguous."""
    n_h, n_bus = p.shape
    n_d = len(parent)
    n_br = len(br_from)
    n_r = dw_dp.shape[0]
    n_f = len(free)
    xp = np.zeros((n_h, n_t + n_d))     # injection change per node: T nodes, then D nodes
    xq = np.zeros((n_h, n_t + n_d))
    for h in range(n_h):
        for b in range(n_bus):
            nd = node_of[b]
            if nd >= 0:
                xp[h, nd] += p[h, b] - p0[b]
                if has_q:
                    xq[h, nd] += q[h, b] - q0[b]
    sp_ = xp[:, n_t:]                   # D: summed over the subtree below
    sq = xq[:, n_t:]
    for m in range(n_d - 1, -1, -1):    # children before parents
        j = order[m]
        a = parent[j]
        if a >= 0:
            for h in range(n_h):
                sp_[h, a] += sp_[h, j]
                sq[h, a] += sq[h, j]
    for m in range(len(tops)):          # a tree's whole change reaches T at its root
        j, t = tops[m], top_t[m]
        for h in range(n_h):
            xp[h, t] += sp_[h, j]
            xq[h, t] += sq[h, j]
    # T: B_free Δθ = Δp_free with Pr B Pc = L U: z[perm_r] = Δp, L y = z, U w = y, Δθ = w[perm_c]
    z = np.empty((n_h, n_f))
    for j in range(n_f):
        for h in range(n_h):
            z[h, perm_r[j]] = xp[h, free[j]]
    for j in range(n_f):                # L: diagonal stored first
        d = l_val[l_ptr[j]]
        for h in range(n_h):
            zj = z[h, j] / d
            z[h, j] = zj
            for k in range(l_ptr[j] + 1, l_ptr[j + 1]):
                z[h, l_idx[k]] -= l_val[k] * zj
    for j in range(n_f - 1, -1, -1):    # U: diagonal stored last
        d = u_val[u_ptr[j + 1] - 1]
        for h in range(n_h):
            wj = z[h, j] / d
            z[h, j] = wj
            for k in range(u_ptr[j], u_ptr[j + 1] - 1):
                z[h, u_idx[k]] -= u_val[k] * wj
    theta = np.zeros((n_h, n_t))        # fixed nodes: Δθ = 0
    for h in range(n_h):
        for i in range(n_f):
            theta[h, free[i]] = z[h, perm_c[i]]
    t_out = np.empty((n_h, n_br))
    for h in range(n_h):
        for i in range(n_br):
            b = br_b[i]
            t_out[h, i] = t0[i] + (b * theta[h, br_from[i]] - b * theta[h, br_to[i]])
    w_root = np.zeros((n_h, n_r))       # the roots' Δw from the T injection changes (coupled)
    for h in range(n_h):
        for k in range(n_r):
            acc_p = 0.0
            acc_q = 0.0
            for t in range(n_t):
                acc_p += dw_dp[k, t] * xp[h, t]
                acc_q += dw_dq[k, t] * xq[h, t]
            w_root[h, k] = acc_p + acc_q
    u = np.empty((n_h, n_d))            # Σ_path (r ΔP + x ΔQ): parents before children
    for m in range(n_d):
        j = order[m]
        a = parent[j]
        rj, xj = r[j], x[j]
        for h in range(n_h):
            drop = rj * -sp_[h, j] + xj * -sq[h, j]
            u[h, j] = drop if a < 0 else u[h, a] + drop
    p_out = np.empty((n_h, n_d))
    q_out = np.empty((n_h, n_d))
    w_out = np.empty((n_h, n_d))
    for h in range(n_h):
        for j in range(n_d):
            dw = -2.0 * u[h, j]
            if coupled:
                dw += scale[j] * w_root[h, root_idx[j]]
            p_out[h, j] = dp0[j] + -sp_[h, j]
            q_out[h, j] = dq0[j] + -sq[h, j]
            w_out[h, j] = dw0[j] + dw
    return t_out, p_out, q_out, w_out


def _lu_factors(b: sp.csc_matrix) -> tuple[np.ndarray, ...]:
    """SuperLU's factors of ``b`` for the kernel: L and U as sorted CSC (ptr, idx, val), perm_r, perm_c."""
    if b.shape[0] == 0:
        empty_i, empty_f = np.zeros(1, np.int64), np.zeros(0)
        return empty_i, empty_i[:0], empty_f, empty_i, empty_i[:0], empty_f, empty_i[:0], empty_i[:0]
    lu = spla.splu(b)
    out: list[np.ndarray] = []
    for m in (lu.L.tocsc(), lu.U.tocsc()):
        m.sort_indices()
        out += [m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.float64)]
    return (*out, lu.perm_r.astype(np.int64), lu.perm_c.astype(np.int64))


_CACHE: dict[int, Sensitivity] = {}


def sensitivity(lin: LinearTD) -> Sensitivity:
    """The :class:`Sensitivity` of ``lin``, built once per model and kept while ``lin`` lives."""
    key = id(lin)
    s = _CACHE.get(key)
    if s is None:
        s = Sensitivity(lin)
        _CACHE[key] = s
        weakref.finalize(lin, _CACHE.pop, key, None)
    return s


def _as_2d(name: str, arr: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    a = np.asarray(arr, dtype=np.float64)
    one = a.ndim == 1
    a = a.reshape(1, -1) if one else a
    if a.ndim != 2 or a.shape[1] != n:
        raise ValueError(f"{name} must have shape (n_bus,) or (H, n_bus) with n_bus = {n} "
                         f"(net.bus order), got {np.shape(arr)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(a), one


def activation_response(lin: LinearTD, dp_bus: np.ndarray, dq_bus: np.ndarray | None = None,
                        point: LinearizationPoint | None = None) -> LinearIncrement:
    """Linear change of T flows, D flows and D squared voltages for an injection change.

    :param dp_bus: (n_bus,) or (H, n_bus) active injection change [MW] in net.bus.index order
        (generation / up activation positive).
    :param dq_bus: same shape, reactive injection change [Mvar]; None = 0.
    :param point: with a point that carries voltage coupling, the feeder roots move with the
        T voltages; without one, Δw at a T root is 0 (the FeederModel contract).
    """
    s = sensitivity(lin)
    dp, one = _as_2d("dp_bus", dp_bus, s.n_bus)
    dq = _as_2d("dq_bus", dq_bus, s.n_bus)[0] if dq_bus is not None else None
    if dq is not None and dq.shape != dp.shape:
        raise ValueError(f"dq_bus has shape {dq.shape}, dp_bus {dp.shape}")
    t, p, q, w = s.apply(dp, dq, point)
    if one:
        t, p, q, w = t[0], p[0], q[0], w[0]
    return LinearIncrement(t_flow_mw=t, d_p_mw=s.split(p), d_q_mvar=s.split(q), d_w_pu2=s.split(w))


def base_state(lin: LinearTD, point: LinearizationPoint, inj_p_mw: np.ndarray,
               inj_q_mvar: np.ndarray | None = None) -> BaseState:
    """Flows and squared voltages at H operating points: point + linear increments.

    :param inj_p_mw: (H, n_bus) active injections [MW] (net.bus.index order, :func:`bus_vector`).
    :param inj_q_mvar: (H, n_bus) reactive injections [Mvar]; None = those of the point.
    """
    s = sensitivity(lin)
    p, _ = _as_2d("inj_p_mw", inj_p_mw, s.n_bus)
    q = None
    if inj_q_mvar is not None:
        q, _ = _as_2d("inj_q_mvar", inj_q_mvar, s.n_bus)
        if q.shape != p.shape:
            raise ValueError(f"inj_q_mvar has shape {q.shape}, inj_p_mw {p.shape}")
    t, dp, dq, dw = s.apply(p, q, point, around_point=True)
    return BaseState(t_flow_mw=t, d_p_mw=s.split(dp), d_q_mvar=s.split(dq), d_w_pu2=s.split(dw))


class PointReader:
    """Where the point's quantities sit in ``net.res_*`` (positions; valid for copies of the net)."""

    def __init__(self, net: pandapowerNet, lin: LinearTD) -> None:
        self.sizes = (len(net.bus), len(net.line), len(net.trafo))
        dc = lin.dc
        kinds = np.array([k for k, _ in dc.branch_element])
        ids = np.array([i for _, i in dc.branch_element], dtype=np.int64)
        # T flows: (table, column, branch positions, row positions)
        self.t_parts = []
        for kind, col in (("line", "p_from_mw"), ("trafo", "p_hv_mw")):
            m = np.flatnonzero(kinds == kind)
            if len(m):
                self.t_parts.append((kind, col, m, net[kind].index.get_indexer(ids[m])))
        # D flows: per feeder, per (table, side): (branch positions k, row positions)
        self.d_parts = []
        for f in lin.feeders:
            groups: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
            for k, members in enumerate(f.branch_members or tuple((e,) for e in f.branch_element)):
                for kind, idx in members:
                    kind = kind.removesuffix("_eq")
                    bus_a = int(net[kind].at[idx, "from_bus" if kind == "line" else "hv_bus"])
                    # the child side is the end that maps to D position k of this area
                    child_is_a = lin.bus_area.get(bus_a) == f.area and lin.bus_pos.get(bus_a) == k
                    if kind == "line":
                        side = "to" if child_is_a else "from"
                    else:
                        side = "lv" if child_is_a else "hv"
                    g = groups[(kind, side)]
                    g[0].append(k)
                    g[1].append(int(net[kind].index.get_loc(idx)))
            self.d_parts.append([(kind, side, np.array(ks), np.array(rows))
                                 for (kind, side), (ks, rows) in groups.items()])
        self.d_bus_rows = [net.bus.index.get_indexer(f.bus) for f in lin.feeders]
        self.t_bus_rows = net.bus.index.get_indexer(dc.bus)

    def read(self, net: pandapowerNet, lin: LinearTD) -> tuple[np.ndarray, list, list, list, np.ndarray]:
        t_flow = np.zeros(lin.dc.n_branch)
        for kind, col, m, rows in self.t_parts:
            t_flow[m] = net[f"res_{kind}"][col].to_numpy()[rows]
        vm = net.res_bus["vm_pu"].to_numpy()
        d_p, d_q, d_w = [], [], []
        for f, parts, brow in zip(lin.feeders, self.d_parts, self.d_bus_rows, strict=True):
            p = np.zeros(f.n_bus)
            q = np.zeros(f.n_bus)
            for kind, side, ks, rows in parts:
                res = net[f"res_{kind}"]
                np.add.at(p, ks, res[f"p_{side}_mw"].to_numpy()[rows])
                np.add.at(q, ks, res[f"q_{side}_mvar"].to_numpy()[rows])
            d_p.append(p)
            d_q.append(q)
            d_w.append(vm[brow] ** 2)
        return t_flow, d_p, d_q, d_w, vm[self.t_bus_rows] ** 2


_READERS: dict[int, PointReader] = {}


def point_reader(net: pandapowerNet, lin: LinearTD) -> PointReader:
    """The :class:`PointReader` of ``lin`` for nets shaped like ``net``, kept while ``lin`` lives."""
    r = _READERS.get(id(lin))
    if r is None or r.sizes != (len(net.bus), len(net.line), len(net.trafo)):
        if r is None:
            weakref.finalize(lin, _READERS.pop, id(lin), None)
        r = PointReader(net, lin)
        _READERS[id(lin)] = r
    return r


def _jacobian_lu(it: dict) -> spla.SuperLU:
    """LU of the power-flow Jacobian of pandapower's last run (its own, else rebuilt at the solution).

    Rows P at pv+pq, Q at pq; columns θ at pv+pq, |V| at pq (pandapower's layout).
    """
    v = it["V"]
    pv, pq = np.asarray(it["pv"], dtype=np.int64), np.asarray(it["pq"], dtype=np.int64)
    pvpq = np.r_[pv, pq]
    jac = it.get("J")
    if jac is None or jac.shape != (len(pvpq) + len(pq),) * 2:
        from pandapower.pypower.dSbus_dV import dSbus_dV

        d_vm, d_va = dSbus_dV(it["Ybus"], v)
        full = sp.bmat([[sp.csr_matrix(d_va).real, sp.csr_matrix(d_vm).real],
                        [sp.csr_matrix(d_va).imag, sp.csr_matrix(d_vm).imag]]).tocsr()
        n0 = len(v)
        jac = full[np.r_[pvpq, n0 + pq]][:, np.r_[pvpq, n0 + pq]]
    return spla.splu(sp.csc_matrix(jac))


def root_voltage_sensitivity(lu: spla.SuperLU, v: np.ndarray, pv: np.ndarray, pq: np.ndarray,
                             base_mva: float, t_int: np.ndarray, lin: LinearTD,
                             s: Sensitivity) -> tuple[np.ndarray, np.ndarray]:
    """(n_r, n_t) d(V²)/dP and d(V²)/dQ of the feeder roots from the LU of an AC Jacobian.

    ``lu`` factors the Jacobian in pandapower's layout (:func:`_jacobian_lu`) at voltages ``v`` of
    the internal case, ``t_int`` the internal bus of each T-model bus. One transposed solve per
    root: a row of J⁻¹ is the sensitivity of that root's |V| to every injection.
    """
    pvpq = np.r_[pv, pq]
    n = len(v)
    p_row = np.full(n, -1, dtype=np.int64)
    p_row[pvpq] = np.arange(len(pvpq))
    q_row = np.full(n, -1, dtype=np.int64)
    q_row[pq] = len(pvpq) + np.arange(len(pq))
    r_int = t_int[s.roots]
    n_r, n_t = len(s.roots), lin.dc.n_bus
    dw_dp = np.zeros((n_r, n_t))
    dw_dq = np.zeros((n_r, n_t))
    sel = np.flatnonzero(q_row[r_int] >= 0)           # PV/slack roots keep their voltage
    if len(sel) == 0:
        return dw_dp, dw_dq
    e = np.zeros((len(pvpq) + len(pq), len(sel)))
    e[q_row[r_int[sel]], np.arange(len(sel))] = 1.0
    rows = lu.solve(e, trans="T")                       # rows of J⁻¹: d|V_root| / dS
    scale = 2.0 * np.abs(v[r_int[sel]]) / base_mva      # d(V²) = 2 V dV; pu → MW
    jp = np.flatnonzero(p_row[t_int] >= 0)
    jq = np.flatnonzero(q_row[t_int] >= 0)
    dw_dp[np.ix_(sel, jp)] = (rows[p_row[t_int[jp]]] * scale).T
    dw_dq[np.ix_(sel, jq)] = (rows[q_row[t_int[jq]]] * scale).T
    dw_dp[:, lin.dc.fixed] = 0.0
    dw_dq[:, lin.dc.fixed] = 0.0
    return dw_dp, dw_dq


def make_point(lin: LinearTD, t_flow: np.ndarray, d_p: list, d_q: list, d_w: list, w_t: np.ndarray,
               inj_p: np.ndarray, inj_q: np.ndarray,
               coupling: tuple[np.ndarray, np.ndarray] | None = None) -> LinearizationPoint:
    """Assemble a point from AC results (``w_t``: squared T voltages) and optional root sensitivities."""
    point = LinearizationPoint(t_flow_mw=t_flow, d_p_mw=tuple(d_p), d_q_mvar=tuple(d_q),
                               d_w_pu2=tuple(d_w), inj_p_mw=inj_p, inj_q_mvar=inj_q)
    if coupling is None:
        return point
    s = sensitivity(lin)
    scale = tuple(d_w[a][s.d_top[a]] / w_t[f.root_t[s.d_top[a]]] if f.n_bus else np.zeros(0)
                  for a, f in enumerate(lin.feeders))
    return replace(point, root_t=s.roots.copy(), root_dw_dp=coupling[0], root_dw_dq=coupling[1],
                   d_root_scale=scale)


def point_from_net(net: pandapowerNet, lin: LinearTD, voltage_coupling: bool = True) -> LinearizationPoint:
    """Read the AC results of ``net`` (right after ``runpp``) as the linearisation point of ``lin``.

    :param voltage_coupling: also compute the T voltage sensitivities of the feeder roots from the
        Jacobian of that power flow (a few ms; needs ``net._ppc`` of the same run).
    """
    if not len(net.res_bus) or net.res_bus["vm_pu"].isna().all():
        raise ValueError("net has no power flow results; run pandapower.runpp first")
    t_flow, d_p, d_q, d_w, w_t = point_reader(net, lin).read(net, lin)
    inj_p, inj_q = bus_injections(net)
    coupling = None
    if voltage_coupling and lin.feeders:
        it = net._ppc["internal"]
        t_int = np.asarray(net._pd2ppc_lookups["bus"])[lin.dc.bus].astype(np.int64)
        coupling = root_voltage_sensitivity(
            _jacobian_lu(it), it["V"], np.asarray(it["pv"], dtype=np.int64), np.asarray(it["pq"], dtype=np.int64),
            float(np.real(it["baseMVA"])), t_int, lin, sensitivity(lin))
    return make_point(lin, t_flow, d_p, d_q, d_w, w_t, inj_p, inj_q, coupling)
