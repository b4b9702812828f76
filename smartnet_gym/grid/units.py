"""Flexible units: which elements offer flexibility, their ranges and true costs.

Per distribution area: the largest PV plants and MV wind parks (curtailment), the largest loads
(demand response, a share of their yearly peak) and batteries at seeded random load buses.
In transmission (area -1): dispatchable units at seeded HV buses (preferring buses with load)
and the largest HV wind parks. True costs are uniform draws in the configured ranges, seeded;
distribution units get ``d_cost_markup``. Each unit gets one sgen ``flex:<unit name>`` at its bus
(p = q = 0) that carries its activation in the net, added **after** the profiles were taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smartnet_gym.grid.simbench_system import (
    FLEX_PREFIX,
    area_bus_set,
    profiled_elements,
    sgen_class,
)
from smartnet_gym.grid.system import Area, UnitKind, UnitTable

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

    from smartnet_gym.config import FlexConfig
    from smartnet_gym.data.profiles import ProfileSet


@dataclass
class _Row:
    name: str
    kind: UnitKind
    bus: int
    area: int
    element: str = ""
    element_idx: int = -1
    p_rated_mw: float = 0.0
    energy_mwh: float = 0.0
    soc0: float = 0.0


def _largest(cand: np.ndarray, size: np.ndarray, count: int) -> np.ndarray:
    """Positions in ``cand`` of the ``count`` largest ``size`` (stable: ties by position)."""
    cand = cand[size[cand] > 0]
    return cand[np.argsort(-size[cand], kind="stable")][:count]


def transmission_unit_buses(net: pandapowerNet, areas: tuple[Area, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Candidate buses of T units: (with load, without load).

    In-service buses outside every area at the most common T voltage, excluding slack buses
    and the areas' interface buses.
    """
    in_area = area_bus_set(areas)
    iface = {b for a in areas for b in a.interface_buses}
    slack = set(net.ext_grid.bus[net.ext_grid.in_service.astype(bool)])
    bus = net.bus[net.bus.in_service.astype(bool) & ~net.bus.index.isin(list(in_area | iface | slack))]
    if bus.empty:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bus = bus[bus.vn_kv == bus.vn_kv.mode().iloc[0]]
    loaded = set(net.load.bus[net.load.in_service.astype(bool)])
    has = bus.index.isin(list(loaded))
    return bus.index[has].to_numpy(np.int64), bus.index[~has].to_numpy(np.int64)


def select_units(net: pandapowerNet, areas: tuple[Area, ...], profiles: ProfileSet,
                 flex: FlexConfig, rng: np.random.Generator) -> UnitTable:
    """Choose the flexible units, draw their costs and add one flex sgen per unit to ``net``.

    ``profiles`` must be in :func:`~smartnet_gym.grid.simbench_system.profiled_elements` order of
    ``net``; ``element_idx`` is the position in those arrays. Fewer candidates than asked: all
    candidates are taken.
    """
    load_idx, sgen_idx = profiled_elements(net)
    if len(load_idx) != len(profiles.load_p_mw) or len(sgen_idx) != len(profiles.sgen_p_mw):
        raise ValueError(f"profiles ({len(profiles.load_p_mw)} loads, {len(profiles.sgen_p_mw)} sgens) do not "
                         f"match the net ({len(load_idx)} loads, {len(sgen_idx)} sgens)")
    sgen_bus = net.sgen.bus.loc[sgen_idx].to_numpy(np.int64)
    load_bus = net.load.bus.loc[load_idx].to_numpy(np.int64)
    cls = pd.Series(sgen_class(net), index=net.sgen.index).loc[sgen_idx].to_numpy()
    cap = profiles.sgen_p_mw
    peak = profiles.load_rel_p.max(axis=0)[profiles.load_profile] * profiles.load_p_mw

    rows: list[_Row] = []
    for a in areas:
        in_a = np.isin(sgen_bus, a.buses)
        for kind, label, count in ((UnitKind.PV, "pv", flex.pv_units_per_area),
                                   (UnitKind.WIND, "wind", flex.wind_units_per_area)):
            for k, pos in enumerate(_largest(np.flatnonzero(in_a & (cls == label)), cap, count)):
                rows.append(_Row(f"{a.name}/{kind.name}/{k}", kind, int(sgen_bus[pos]), a.index,
                                 "sgen", int(pos), float(cap[pos])))
        cand = np.flatnonzero(np.isin(load_bus, a.buses))
        for k, pos in enumerate(_largest(cand, peak, flex.load_units_per_area)):
            rows.append(_Row(f"{a.name}/LOAD/{k}", UnitKind.LOAD, int(load_bus[pos]), a.index,
                             "load", int(pos), float(flex.load_flex_share * peak[pos])))
        hosts = np.unique(load_bus[cand]) if len(cand) else a.buses
        n_st = min(flex.storage_per_area, len(hosts))
        for k, b in enumerate(rng.choice(hosts, size=n_st, replace=False) if n_st else []):
            rows.append(_Row(f"{a.name}/STORAGE/{k}", UnitKind.STORAGE, int(b), a.index,
                             p_rated_mw=flex.storage_power_mw,
                             energy_mwh=flex.storage_power_mw * flex.storage_energy_h, soc0=0.5))

    loaded, other = transmission_unit_buses(net, areas)
    t_bus = np.r_[rng.permutation(loaded), rng.permutation(other)][:flex.t_generators]
    for k, b in enumerate(t_bus):
        rows.append(_Row(f"T/GENERATOR/{k}", UnitKind.GENERATOR, int(b), -1, p_rated_mw=flex.t_generator_mw))
    t_wind = np.flatnonzero(~np.isin(sgen_bus, list(area_bus_set(areas))) & (cls == "wind"))
    for k, pos in enumerate(_largest(t_wind, cap, flex.t_wind_units)):
        rows.append(_Row(f"T/WIND/{k}", UnitKind.WIND, int(sgen_bus[pos]), -1, "sgen", int(pos), float(cap[pos])))

    n = len(rows)
    area = np.array([r.area for r in rows], dtype=np.int64)
    markup = np.where(area >= 0, flex.d_cost_markup, 1.0)
    cost_up = rng.uniform(*flex.cost_up_eur_per_mwh, size=n) * markup
    cost_down = rng.uniform(*flex.cost_down_eur_per_mwh, size=n) * markup
    flex_sgen = _add_flex_sgens(net, [r.name for r in rows], [r.bus for r in rows])
    return UnitTable(
        name=tuple(r.name for r in rows),
        kind=np.array([int(r.kind) for r in rows], dtype=np.int64),
        bus=np.array([r.bus for r in rows], dtype=np.int64),
        area=area,
        element=tuple(r.element for r in rows),
        element_idx=np.array([r.element_idx for r in rows], dtype=np.int64),
        p_rated_mw=np.array([r.p_rated_mw for r in rows], dtype=np.float64),
        cost_up_eur_per_mwh=cost_up,
        cost_down_eur_per_mwh=cost_down,
        energy_mwh=np.array([r.energy_mwh for r in rows], dtype=np.float64),
        soc0=np.array([r.soc0 for r in rows], dtype=np.float64),
        flex_sgen=flex_sgen,
    )


def _add_flex_sgens(net: pandapowerNet, names: list[str], buses: list[int]) -> np.ndarray:
    """One in-service sgen at p = q = 0 per unit, named ``flex:<unit name>``; returns their indices."""
    import pandapower as pp

    if not names:
        return np.zeros(0, dtype=np.int64)
    idx = pp.create_sgens(net, buses, p_mw=0.0, q_mvar=0.0, name=[FLEX_PREFIX + n for n in names],
                          in_service=True, type="flex")
    return np.asarray(idx, dtype=np.int64)
