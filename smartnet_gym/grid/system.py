"""The T&D system: a pandapower net plus numpy index maps (areas, interfaces, flexible units).

Sign convention (stated once): injections are positive (generation), a load is a negative
injection; an *up* activation means more injection or less consumption, *down* the opposite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from smartnet_gym.grid.linear import LinearTD

if TYPE_CHECKING:  # pandapower is heavy; only typing needs it here
    from pandapower.auxiliary import pandapowerNet

    from smartnet_gym.data.profiles import ProfileSet


class UnitKind(IntEnum):
    """What a flexible unit is; decides which directions it can offer and from what."""

    PV = 0          # curtailment: down only, up to its forecast output
    WIND = 1        # curtailment: down only, up to its forecast output
    LOAD = 2        # demand response: up (consume less) and down (consume more), share of its load
    STORAGE = 3     # battery: up (discharge) and down (charge), limited by power and state of charge
    GENERATOR = 4   # dispatchable unit at a transmission bus: up and down around its schedule


@dataclass(frozen=True)
class Area:
    """One distribution area operated by one DSO."""

    index: int
    name: str                      # e.g. "MV1.101"
    dso: str                       # e.g. "DSO1"
    interface_buses: tuple[int, ...]   # pandapower ids of the T-side (HV) buses it hangs off
    interface_trafos: tuple[int, ...]  # pandapower trafo ids of the HV/MV interface
    buses: np.ndarray                  # pandapower ids of the area's own (MV) buses


@dataclass(frozen=True)
class UnitTable:
    """Flexible units as a struct of arrays (one entry per unit)."""

    name: tuple[str, ...]
    kind: np.ndarray          # (n,) UnitKind values
    bus: np.ndarray           # (n,) pandapower bus id
    area: np.ndarray          # (n,) area index, -1 for a transmission unit
    element: tuple[str, ...]  # "sgen" | "load" | "" : the profiled element whose forecast bounds it
    element_idx: np.ndarray   # (n,) index into the ProfileSet arrays of that element type, -1 if none
    p_rated_mw: np.ndarray    # (n,) rated power / flexible range [MW]
    cost_up_eur_per_mwh: np.ndarray    # (n,) true marginal cost of up activation
    cost_down_eur_per_mwh: np.ndarray  # (n,) true marginal cost of down activation
    energy_mwh: np.ndarray    # (n,) storage energy capacity, 0 for others
    soc0: np.ndarray          # (n,) initial state of charge [share of energy_mwh]
    flex_sgen: np.ndarray     # (n,) pandapower sgen index carrying the unit's activation in the net

    def __len__(self) -> int:
        return len(self.name)


@dataclass
class TDSystem:
    """Everything the market and the loop need about the grid, built once per scenario."""

    name: str
    net: pandapowerNet        # built net; flex sgens at p_mw = 0; OLTCs configured
    areas: tuple[Area, ...]
    units: UnitTable
    linear: LinearTD          # linearised at the base case (see grid.linear_build)
    profiles: ProfileSet
    load_bus: np.ndarray      # (n_load,) pandapower bus of each profiled load (ProfileSet order)
    sgen_bus: np.ndarray      # (n_sgen,) pandapower bus of each profiled sgen (ProfileSet order)
    sgen_kind: np.ndarray     # (n_sgen,) UnitKind.PV or UnitKind.WIND of each profiled sgen
    # pandapower index of each profiled load / sgen (ProfileSet order): where the physical layer
    # writes profile values (all in-service loads / sgens except the flex sgens, net order)
    load_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sgen_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_areas(self) -> int:
        return len(self.areas)
