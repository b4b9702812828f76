"""Element values as per-bus vectors of a pandapower net, and the set-point injections of a net.

Injection vectors (``inj_p_mw``, ``dp_bus``, …) of the linear model are indexed by **position in**
``net.bus.index`` (stored as :attr:`~smartnet_gym.grid.linear.LinearTD.net_bus`):
:func:`bus_positions` and :func:`bus_vector` map element values onto that layout,
:func:`bus_injections` reads the set-points of a net (generation positive, loads negative;
external grids excluded). Buses outside the model (out of service or unsupplied) are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

__all__ = ["bus_aggregation", "bus_injections", "bus_positions", "bus_vector"]


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
