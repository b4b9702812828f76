"""The linearisation point read from AC results: a pandapower net after ``runpp``, or any AC solution.

:func:`point_from_net` reads ``net.res_*`` (where the point's quantities sit is found once per
model, :class:`PointReader`) and the root-voltage sensitivities from the Jacobian of the same
run; :func:`make_point` assembles a point from arrays (the fast AC path's results).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from smartnet_gym.grid.bus_vectors import bus_injections
from smartnet_gym.grid.linear import LinearTD
from smartnet_gym.grid.operating_point import LinearizationPoint
from smartnet_gym.grid.root_voltage import jacobian_lu, root_voltage_sensitivity
from smartnet_gym.grid.sensitivity import sensitivity

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

__all__ = ["PointReader", "make_point", "point_from_net", "point_reader"]


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
        """T flows, D flows (P, Q) and squared voltages per area, squared T voltages of ``net.res_*``."""
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
            jacobian_lu(it), it["V"], np.asarray(it["pv"], dtype=np.int64), np.asarray(it["pq"], dtype=np.int64),
            float(np.real(it["baseMVA"])), t_int, lin, sensitivity(lin))
    return make_point(lin, t_flow, d_p, d_q, d_w, w_t, inj_p, inj_q, coupling)
